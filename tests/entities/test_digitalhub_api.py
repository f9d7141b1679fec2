"""The entity objects and the project API as a DigitalHub 0.15 handler uses them, on both
stores (the local store and the S3 store on moto's server, a fresh bucket per test): download
and as_file paths, as_df formats, new_* registering content in place, log_* signatures and
fields, versions and list filters, model metrics and metadata kept, runs read back, and the
current run's lineage. Remote content is served over real HTTP on 127.0.0.1 and from the
bucket; DigitalHub's source (entities/_base/material/entity.py, stores/data/s3/store.py,
entities/project/_base/entity.py, entities/_commons/metrics.py) is what is matched.
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas
import pytest

from tests.moto_s3 import point_aws_at
from wrapper.entities.objects import DataItem, Model
from wrapper.entities.project import Project
from wrapper.entities.run import Run
from wrapper.entities.store import EntityNotFound, Store, StoreError, open_store
from wrapper.errors import SpecError

# --- stores, servers and content ------------------------------------------------------------


@dataclass
class Bucket:
    """A fresh bucket on moto's server and the tests' own client to it."""

    client: Any
    name: str

    def put(self, key: str, body: bytes) -> str:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)
        return f"s3://{self.name}/{key}"


@pytest.fixture
def bucket(s3_server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    """A fresh bucket, with the AWS variables pointing at the server (s3:// paths read it)."""
    url, client = s3_server
    point_aws_at(url, monkeypatch, tmp_path)
    made = Bucket(client, f"api-{uuid.uuid4().hex[:12]}")
    client.create_bucket(Bucket=made.name)
    return made


@pytest.fixture(params=["local", "s3"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The local store, or the S3 store in a fresh bucket."""
    if request.param == "local":
        return str(tmp_path / "store")
    made: Bucket = request.getfixturevalue("bucket")
    return f"s3://{made.name}/store"


@pytest.fixture
def store(store_uri: str) -> Iterator[Store]:
    opened = open_store(store_uri)
    yield opened
    opened.close()


@pytest.fixture
def project(store: Store) -> Project:
    """Project "demo" inside a current run, as a handler gets it."""
    return Project("demo", store, Run("demo", store=store))


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder for the files the tests log or register (never the working folder)."""
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class Web:
    """An HTTP server on 127.0.0.1 answering chosen paths with a body and a Content-Type."""

    def __init__(self) -> None:
        pages: dict[str, tuple[str, bytes]] = {}
        self.pages = pages

        class Pages(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                content_type, body = pages.get(self.path, ("text/plain", b""))
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """No request lines on the test's stderr."""

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
        serve = {"poll_interval": 0.01}  # shut down at once when the test ends
        threading.Thread(target=self.httpd.serve_forever, kwargs=serve, daemon=True).start()

    def serve(self, path: str, body: bytes, content_type: str) -> str:
        self.pages[path] = (content_type, body)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def web() -> Iterator[Web]:
    server = Web()
    yield server
    server.close()


@pytest.fixture
def csv_item(project: Project, files: Path) -> DataItem:
    return project.log_dataitem("table", "table", source=write(files / "table.csv", "a,b\n1,2\n"))


@pytest.fixture
def model_folder(files: Path) -> Path:
    """A model's folder: two files, one in a subfolder."""
    write(files / "model" / "weights.bin", "weights")
    write(files / "model" / "conf" / "params.json", '{"depth": 3}')
    return files / "model"


def rows(frame: Any) -> list[dict[str, Any]]:
    return frame.to_dict("records")  # type: ignore[no-any-return]


# --- 1. download ------------------------------------------------------------------------------


def test_download_into_a_new_destination_without_suffix_makes_a_folder(
    csv_item: DataItem, tmp_path: Path
) -> None:
    path = csv_item.download(tmp_path / "dataset")
    assert isinstance(path, str)
    assert path == str(tmp_path / "dataset" / "table.csv")
    assert Path(path).read_text() == "a,b\n1,2\n"


def test_download_to_a_destination_with_a_suffix_writes_that_file(
    csv_item: DataItem, tmp_path: Path
) -> None:
    path = csv_item.download(str(tmp_path / "out" / "copy.csv"))
    assert path == str(tmp_path / "out" / "copy.csv")
    assert Path(path).read_text() == "a,b\n1,2\n"


def test_download_into_an_existing_folder_puts_the_file_in_it(
    csv_item: DataItem, tmp_path: Path
) -> None:
    folder = tmp_path / "existing.d"  # a suffix, but a folder already
    folder.mkdir()
    assert csv_item.download(folder) == str(folder / "table.csv")
    assert (folder / "table.csv").read_text() == "a,b\n1,2\n"


def test_download_onto_an_existing_file_needs_overwrite(csv_item: DataItem, tmp_path: Path) -> None:
    target = write(tmp_path / "copy.csv", "old")
    with pytest.raises(StoreError, match="exists: pass overwrite=True"):
        csv_item.download(target)
    assert target.read_text() == "old"
    assert csv_item.download(target, overwrite=True) == str(target)
    assert target.read_text() == "a,b\n1,2\n"


def test_download_without_destination_goes_to_the_runs_own_folder(
    store: Store, files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    first, second = (Project("demo", store, Run("demo", store=store)) for _ in range(2))
    first.log_artifact("notes", "artifact", source=write(files / "notes.txt", "hello"))
    paths = [p.get_artifact("notes").download() for p in (first, second)]
    assert first.run is not None and second.run is not None
    assert paths == [
        str(first.run.folder / "artifact" / "notes.txt"),
        str(second.run.folder / "artifact" / "notes.txt"),
    ]
    assert first.run.folder != second.run.folder
    assert [Path(p).read_text() for p in paths] == ["hello", "hello"]
    assert list(work.iterdir()) == []  # DigitalHub writes ./artifact: never here


def test_a_folder_entity_downloads_its_files_into_the_folder(
    project: Project, model_folder: Path, tmp_path: Path
) -> None:
    model = project.log_model("m", "sklearn", source=model_folder)
    path = model.download(tmp_path / "restored")
    assert path == str(tmp_path / "restored")
    assert (tmp_path / "restored" / "weights.bin").read_text() == "weights"
    assert (tmp_path / "restored" / "conf" / "params.json").read_text() == '{"depth": 3}'
    with pytest.raises(StoreError, match="exists: pass overwrite=True"):
        model.download(tmp_path / "restored")


def test_a_folder_entity_of_one_file_downloads_to_that_file(
    project: Project, files: Path, tmp_path: Path
) -> None:
    write(files / "single" / "weights.bin", "weights")
    model = project.log_model("m", "sklearn", source=files / "single")
    path = model.download(tmp_path / "restored")
    assert path == str(tmp_path / "restored" / "weights.bin")  # as DigitalHub's s3 store
    assert Path(path).read_text() == "weights"


# --- 2. as_file -------------------------------------------------------------------------------


def test_as_file_is_one_readable_path(csv_item: DataItem) -> None:
    path = csv_item.as_file()
    assert isinstance(path, str)
    with open(path) as opened:
        assert opened.read() == "a,b\n1,2\n"


def test_as_file_of_a_folder_entity_is_a_folder(project: Project, model_folder: Path) -> None:
    folder = Path(project.log_model("m", "sklearn", source=model_folder).as_file())
    assert folder.is_dir()
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert found == ["conf/params.json", "weights.bin"]


# --- 3. as_df ---------------------------------------------------------------------------------


def test_as_df_reads_csv_with_the_readers_options(project: Project, files: Path) -> None:
    item = project.log_dataitem("semi", "table", source=write(files / "semi.csv", "x;y\n1;2\n"))
    assert rows(item.as_df(sep=";")) == [{"x": 1, "y": 2}]


def test_as_df_reads_a_logged_dataframe_from_parquet(project: Project) -> None:
    frame = pandas.DataFrame({"x": [1, 2], "name": ["a", "b"]})
    item = project.log_dataitem("frame", "table", data=frame)
    assert item.filename == "frame.parquet"
    assert rows(item.as_df()) == [{"x": 1, "name": "a"}, {"x": 2, "name": "b"}]


def test_as_df_reads_json_records(project: Project, files: Path) -> None:
    source = write(files / "records.json", json.dumps([{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]))
    item = project.log_dataitem("records", "table", source=source)
    assert rows(item.as_df()) == [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]


def test_as_df_reads_a_txt_file_as_csv(project: Project, files: Path) -> None:
    item = project.log_dataitem("text", "table", source=write(files / "rows.txt", "x,y\n3,4\n"))
    assert rows(item.as_df()) == [{"x": 3, "y": 4}]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("text/csv", b"x,y\n1,2\n3,4\n", id="csv"),
        pytest.param("application/json", b'[{"x": 1, "y": 2}, {"x": 3, "y": 4}]', id="json"),
    ],
)
def test_as_df_of_a_url_without_suffix_follows_its_content_type(
    project: Project, web: Web, content_type: str, body: bytes
) -> None:
    url = web.serve("/export/table", body, content_type)
    item = project.new_dataitem(name="remote", kind="table", path=url)
    assert rows(item.as_df()) == [{"x": 1, "y": 2}, {"x": 3, "y": 4}]


def test_as_df_of_a_url_reads_the_file_format_asked_for(project: Project, web: Web) -> None:
    url = web.serve("/export/table", b"x,y\n5,6\n", "application/octet-stream")
    item = project.new_dataitem(name="remote", kind="table", path=url)
    with pytest.raises(SpecError, match="cannot tell the format of 'table': pass file_format="):
        item.as_df()
    assert rows(item.as_df(file_format="csv")) == [{"x": 5, "y": 6}]


def test_as_df_of_an_s3_path_reads_the_object(project: Project, bucket: Bucket) -> None:
    buffer = io.BytesIO()
    pandas.DataFrame({"x": [7, 8]}).to_parquet(buffer, index=False)
    path = bucket.put("shared/numbers.parquet", buffer.getvalue())
    item = project.new_dataitem(name="numbers", kind="table", path=path)
    assert item.record.sha256 is None and item.path == path
    assert rows(item.as_df()) == [{"x": 7}, {"x": 8}]


def test_as_df_of_an_s3_partition_is_the_rows_of_its_objects(
    project: Project, bucket: Bucket
) -> None:
    bucket.put("parts/a.csv", b"x\n1\n")
    bucket.put("parts/b.csv", b"x\n2\n")
    item = project.new_dataitem(name="parts", kind="table", path=f"s3://{bucket.name}/parts/")
    assert item.as_df()["x"].tolist() == [1, 2]


def test_an_s3_folder_object_that_would_leave_the_folder_is_refused(
    project: Project, bucket: Bucket, tmp_path: Path
) -> None:
    bucket.put("parts/a.csv", b"x\n1\n")
    bucket.put("parts/../escape.csv", b"x\n2\n")
    item = project.new_dataitem(name="parts", kind="table", path=f"s3://{bucket.name}/parts/")
    with pytest.raises(StoreError, match=r"the object 'parts/\.\./escape.csv' would leave"):
        item.download(tmp_path / "out")
    assert not (tmp_path / "escape.csv").exists() and not list((tmp_path / "out").iterdir())


def test_as_df_of_a_folder_is_the_rows_of_its_files(project: Project, files: Path) -> None:
    write(files / "parts" / "a.csv", "x\n1\n2\n")
    write(files / "parts" / "b.csv", "x\n3\n")
    item = project.log_dataitem("d", "table", source=files / "parts")
    assert item.as_df()["x"].tolist() == [1, 2, 3]


def test_as_df_of_a_folder_of_one_file_is_its_rows(project: Project, files: Path) -> None:
    write(files / "parts" / "a.csv", "x\n1\n2\n")
    item = project.log_dataitem("d", "table", source=files / "parts")
    assert item.as_df()["x"].tolist() == [1, 2]


def test_as_df_with_another_engine_is_a_spec_error(csv_item: DataItem) -> None:
    with pytest.raises(SpecError, match=r"as_df\(engine='polars'\): only 'pandas'"):
        csv_item.as_df(engine="polars")


# --- 4. new_* ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "kind"), [("dataitem", "table"), ("artifact", "artifact"), ("model", "sklearn")]
)
def test_new_registers_content_in_place(project: Project, web: Web, call: str, kind: str) -> None:
    url = web.serve("/shared/content.bin", b"remote bytes", "application/octet-stream")
    made = getattr(project, f"new_{call}")(name="x", kind=kind, path=url)
    assert made.record.sha256 is None and made.path == url  # nothing uploaded
    found = getattr(project, f"get_{call}")("x")
    assert found.key == made.key and found.kind == kind and found.path == url
    with found.open() as stream:
        assert stream.read() == b"remote bytes"


def test_new_with_a_relative_local_path_keeps_it_absolute(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "local" / "rows.csv", "x\n9\n")
    monkeypatch.chdir(tmp_path / "local")
    item = project.new_dataitem("x", "table", path="rows.csv")
    assert item.path == str(tmp_path / "local" / "rows.csv") and item.record.sha256 is None
    monkeypatch.chdir(tmp_path)
    found = project.get_dataitem("x")
    assert found.path == str(tmp_path / "local" / "rows.csv")
    with found.open() as stream:
        assert stream.read() == b"x\n9\n"
    assert rows(found.as_df()) == [{"x": 9}]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "path= is required"),
        ({"path": "/nonexistent/rows.csv"}, "path '/nonexistent/rows.csv' does not exist"),
    ],
)
def test_new_without_a_usable_path_is_a_spec_error(
    project: Project, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(SpecError, match=r"new_dataitem\('x'\)") as caught:
        project.new_dataitem("x", "table", **fields)
    assert message in caught.value.message
    assert project.list_dataitems() == []


def test_new_with_uuid_sets_the_id(project: Project, files: Path) -> None:
    path = str(write(files / "rows.csv", "x\n1\n"))
    item = project.new_dataitem("x", "table", uuid="0123abcd", path=path)
    assert item.id == "0123abcd"
    assert item.key == "store://demo/dataitem/table/x:0123abcd"
    assert project.get_dataitem("x", entity_id="0123abcd").path == path


def test_get_by_key_with_entity_id_finds_that_version(project: Project) -> None:
    first = project.log_dataitem("d", "table", data=b"1")
    project.log_dataitem("d", "table", data=b"2")
    assert project.get_dataitem(first.key, entity_id=first.id).key == first.key


# --- 5. log_* ---------------------------------------------------------------------------------


def test_log_artifact_takes_digitalhubs_positional_arguments(project: Project, files: Path) -> None:
    artifact = project.log_artifact("a", "artifact", str(write(files / "file.txt", "text")))
    assert artifact.kind == "artifact" and artifact.filename == "file.txt"
    assert artifact.record.sha256 is not None  # kept in the store
    with project.get_artifact("a").open() as stream:
        assert stream.read() == b"text"


def test_log_model_keeps_digitalhubs_extra_fields_in_spec(
    project: Project, model_folder: Path
) -> None:
    project.log_model(
        name="m",
        kind="sklearn",
        source=model_folder,
        framework="sklearn",
        algorithm="x",
        parameters={"depth": 3},
    )
    model = Project("demo", project.store).get_model("m")
    assert model.kind == "sklearn" and model.framework == "sklearn"
    assert model.spec.algorithm == "x"
    assert model.spec["parameters"] == {"depth": 3}


def test_log_table_keeps_a_dataframe_as_parquet(project: Project) -> None:
    frame = pandas.DataFrame({"x": [1.5, 2.5]})
    project.log_table("t", data=frame)
    table = project.get_dataitem("t")
    assert table.kind == "table" and table.filename == "t.parquet"
    with table.open() as stream:
        assert stream.read(4) == b"PAR1"
    assert rows(table.as_df()) == [{"x": 1.5}, {"x": 2.5}]


def test_log_dataitem_with_extension_csv_keeps_csv(project: Project) -> None:
    frame = pandas.DataFrame({"x": [1, 2]})
    project.log_dataitem("t", "table", data=frame, extension="csv")
    table = project.get_dataitem("t")
    assert table.filename == "t.csv"
    with table.open() as stream:
        assert stream.read() == b"x\n1\n2\n"  # no index column, as DigitalHub writes it


def test_labels_and_description_are_read_back(project: Project, files: Path) -> None:
    source = write(files / "rows.csv", "x\n1\n")
    project.log_dataitem("d", "table", source=source, labels=["a", "b"], description="rows")
    found = Project("demo", project.store).get_dataitem("d")
    assert found.metadata.labels == ["a", "b"]
    assert found.metadata.description == "rows"
    assert found.metadata.name == "d" and found.metadata.version == found.id


def test_path_with_source_warns_and_keeps_the_content_in_the_store(
    project: Project, files: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = write(files / "rows.csv", "x\n1\n")
    with caplog.at_level(logging.WARNING, logger="wrapper.entities"):
        item = project.log_dataitem("d", "table", source=source, path="s3://elsewhere/rows.csv")
    assert "path='s3://elsewhere/rows.csv'" in caplog.text
    assert "is not used: the content is kept in the store" in caplog.text
    assert item.record.sha256 is not None and "elsewhere" not in item.path
    source.unlink()
    with project.get_dataitem("d").open() as stream:
        assert stream.read() == b"x\n1\n"


def test_drop_existing_leaves_only_the_new_version(project: Project, files: Path) -> None:
    project.log_dataitem("d", "table", source=write(files / "v1.csv", "x\n1\n"))
    project.log_dataitem("d", "table", source=write(files / "v2.csv", "x\n2\n"))
    newest = project.log_dataitem(
        "d", "table", source=write(files / "v3.csv", "x\n3\n"), drop_existing=True
    )
    assert [item.key for item in project.get_dataitem_versions("d")] == [newest.key]
    assert rows(project.get_dataitem("d").as_df()) == [{"x": 3}]


# --- 6. versions and lists --------------------------------------------------------------------


@pytest.fixture
def catalogue(project: Project) -> Project:
    """Dataitem `a` in two versions (table), then `b` (a generic dataitem); each version's
    description names it."""
    for name, kind, version in [
        ("a", "table", "a1"),
        ("a", "table", "a2"),
        ("b", "dataitem", "b1"),
    ]:
        project.log_dataitem(name, kind, data=version.encode(), description=version)
    return project


def test_versions_are_newest_first(catalogue: Project) -> None:
    versions = catalogue.get_dataitem_versions("a")
    assert [item.metadata.description for item in versions] == ["a2", "a1"]
    by_key = catalogue.get_dataitem_versions(versions[1].key)  # a key finds the same entity
    assert [item.key for item in by_key] == [item.key for item in versions]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["b1", "a2"], id="latest-of-each"),
        pytest.param({"kind": "table"}, ["a2"], id="kind"),
        pytest.param({"name": "a"}, ["a2"], id="name"),
        pytest.param({"name": "b", "kind": "table"}, [], id="name-and-kind"),
        pytest.param({"versions": "all"}, ["b1", "a2", "a1"], id="all"),
        pytest.param({"name": "a", "versions": "all"}, ["a2", "a1"], id="name-all"),
    ],
)
def test_list_dataitems_filters(
    catalogue: Project, filters: dict[str, str], expected: list[str]
) -> None:
    assert [item.metadata.description for item in catalogue.list_dataitems(**filters)] == expected


@pytest.mark.parametrize("call", ["list_dataitems", "list_artifacts", "list_models", "list_runs"])
def test_an_unsupported_filter_is_a_spec_error(project: Project, call: str) -> None:
    with pytest.raises(SpecError, match=rf"{call}\(user=…\): not supported"):
        getattr(project, call)(user="me")


# --- 7. metrics and metadata kept -------------------------------------------------------------

Call = tuple[str, tuple[Any, ...], dict[str, Any]]


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        pytest.param([("log_metrics", ({"acc": 0.5},), {})], {"acc": 0.5}, id="new-is-single"),
        pytest.param(
            [("log_metrics", ({"acc": 0.5},), {}), ("log_metrics", ({"acc": 0.6},), {})],
            {"acc": [0.5, 0.6]},
            id="known-is-appended",
        ),
        pytest.param(
            [("log_metric", ("loss", 1), {}), ("log_metric", ("loss", [2, 3]), {})],
            {"loss": [1, 2, 3]},
            id="lists-extend",
        ),
        pytest.param(
            [("log_metrics", ({"loss": [1, 2]},), {}), ("log_metrics", ({"loss": [3]},), {})],
            {"loss": [1, 2, 3]},
            id="log-metrics-lists-extend",
        ),
        pytest.param(
            [
                ("log_metric", ("f1", 0.1), {"single_value": True}),
                ("log_metric", ("f1", 0.2), {"single_value": True}),
            ],
            {"f1": 0.1},
            id="single-value-set-once",
        ),
        pytest.param(
            [
                ("log_metric", ("f1", 0.1), {"single_value": True}),
                ("log_metric", ("f1", 0.3), {"single_value": True, "overwrite": True}),
            ],
            {"f1": 0.3},
            id="single-value-overwritten",
        ),
        pytest.param(
            [
                ("log_metrics", ({"acc": 0.5},), {}),
                ("log_metrics", ({"acc": 0.9},), {"overwrite": True}),
            ],
            {"acc": 0.9},
            id="log-metrics-overwrite",
        ),
    ],
)
def test_model_metrics_follow_digitalhubs_rules_and_persist(
    project: Project, files: Path, store_uri: str, calls: list[Call], expected: dict[str, Any]
) -> None:
    model = project.log_model("m", "sklearn", source=write(files / "w.bin", "w"))
    for method, args, kwargs in calls:
        getattr(model, method)(*args, **kwargs)
    assert model.metrics == expected
    fresh = open_store(store_uri)
    try:
        assert Project("demo", fresh).get_model("m").metrics == expected
    finally:
        fresh.close()


def test_metrics_logged_through_two_handles_are_both_kept(project: Project, files: Path) -> None:
    project.log_model("m", "sklearn", source=write(files / "w.bin", "w"))
    first, second = project.get_model("m"), project.get_model("m")
    first.log_metric("acc", 1)
    second.log_metric("loss", 2)
    second.log_metric("acc", 3)
    assert Project("demo", project.store).get_model("m").metrics == {"acc": [1, 3], "loss": [2]}


def test_changed_labels_are_kept_with_save_update(
    project: Project, files: Path, store_uri: str
) -> None:
    model = project.log_model("m", "sklearn", source=write(files / "w.bin", "w"), labels=["a"])
    model.metadata.labels = ["a", "best"]
    model.metadata.description = "the best one"
    assert model.save(update=True) is model
    fresh = open_store(store_uri)
    try:
        found: Model = Project("demo", fresh).get_model("m")
        assert found.metadata.labels == ["a", "best"]
        assert found.metadata.description == "the best one"
        assert found.key == model.key  # the same version, changed in place
        assert len(Project("demo", fresh).get_model_versions("m")) == 1
    finally:
        fresh.close()


# --- 8. runs read back ------------------------------------------------------------------------


@pytest.fixture
def runs(project: Project, files: Path) -> dict[str, str]:
    """Three run documents of project demo (r1 oldest), one of another project, and the keys
    r1 names."""
    notes = project.log_artifact("notes", "artifact", source=write(files / "n.txt", "notes"))
    table = project.log_table("scaled", data=pandas.DataFrame({"x": [1]}))
    documents = [
        {
            "id": "r1", "function": "train", "action": "job", "state": "COMPLETED",
            "started": "2025-01-01T10:00:00+00:00", "results": {"rows": 3, "score": 0.5},
            "outputs": {"scaled": table.key}, "inputs": {"notes": notes.key},
            "metrics": {"acc": [0.5, 0.75]},
        },
        {
            "id": "r2", "function": "train", "action": "job", "state": "ERROR",
            "started": "2025-01-02T10:00:00+00:00", "results": {}, "outputs": {}, "inputs": {},
            "metrics": {},
        },
        {
            "id": "r3", "function": "serve", "action": "serve", "state": "RUNNING",
            "started": "2025-01-03T10:00:00+00:00", "results": {}, "outputs": {}, "inputs": {},
            "metrics": {},
        },
    ]  # fmt: skip
    for document in documents:
        project.store.put_run({"project": "demo", **document})
    project.store.put_run({"project": "other", "id": "r9", "state": "COMPLETED"})  # not demo's
    return {"scaled": table.key, "notes": notes.key}


def test_get_run_reads_the_state_results_and_metrics(
    project: Project, runs: dict[str, str]
) -> None:
    run = project.get_run("r1")
    assert run.id == "r1" and run.function == "train"
    assert run.status.state == "COMPLETED"
    assert run.status.metrics == {"acc": [0.5, 0.75]}
    assert run.results() == {"rows": 3, "score": 0.5}
    assert run.result("rows") == 3 and run.result("missing") is None


def test_run_outputs_are_entities_or_keys(project: Project, runs: dict[str, str]) -> None:
    run = project.get_run("r1")
    outputs = run.outputs()
    assert list(outputs) == ["scaled"] and isinstance(outputs["scaled"], DataItem)
    assert outputs["scaled"].key == runs["scaled"]
    assert rows(outputs["scaled"].as_df()) == [{"x": 1}]
    assert run.outputs(as_key=True) == {"scaled": runs["scaled"]}
    assert run.output("scaled").key == runs["scaled"]
    assert run.output("scaled", as_key=True) == runs["scaled"]
    assert run.output("missing") is None


def test_run_inputs_are_entities(project: Project, runs: dict[str, str]) -> None:
    inputs = project.get_run("r1").inputs()
    assert list(inputs) == ["notes"] and inputs["notes"].key == runs["notes"]
    with inputs["notes"].open() as stream:
        assert stream.read() == b"notes"


def test_get_run_accepts_a_digitalhub_run_key(project: Project, runs: dict[str, str]) -> None:
    run = project.get_run("store://demo/run/python+run/r2")
    assert run.id == "r2" and run.status.state == "ERROR"


def test_get_run_of_another_project_finds_nothing(project: Project, runs: dict[str, str]) -> None:
    with pytest.raises(EntityNotFound):
        project.get_run("r9")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["r3", "r2", "r1"], id="all"),
        pytest.param({"state": "COMPLETED"}, ["r1"], id="state"),
        pytest.param({"function": "train"}, ["r2", "r1"], id="function"),
        pytest.param({"action": "serve"}, ["r3"], id="action"),
        pytest.param({"function": "train", "state": "RUNNING"}, [], id="none-match"),
    ],
)
def test_list_runs_filters(
    project: Project, runs: dict[str, str], filters: dict[str, str], expected: list[str]
) -> None:
    assert [run.id for run in project.list_runs(**filters)] == expected


# --- 9. the current run's lineage -------------------------------------------------------------


def test_logged_entities_are_the_runs_outputs(project: Project, files: Path) -> None:
    item = project.log_dataitem("d", "table", source=write(files / "rows.csv", "x\n1\n"))
    model = project.log_model("m", "sklearn", source=write(files / "w.bin", "w"))
    assert project.run is not None
    assert project.run.logged == {"d": item.key, "m": model.key}
    assert project.run.produced == [item.key, model.key]
    assert project.run.consumed == []


def test_got_entities_are_consumed(store: Store, files: Path) -> None:
    before = Project("demo", store)  # outside a run: no lineage
    item = before.log_dataitem("d", "table", source=write(files / "rows.csv", "x\n1\n"))
    artifact = before.log_artifact("a", "artifact", source=write(files / "a.txt", "a"))
    run = Run("demo", store=store)
    project = Project("demo", store, run)
    project.get_dataitem("d")
    project.get_artifact(artifact.key)
    project.get_dataitem("d")  # each once
    assert run.consumed == [item.key, artifact.key]
    assert run.produced == [] and run.logged == {}


def test_new_entities_are_produced_but_not_logged(project: Project, web: Web) -> None:
    url = web.serve("/rows.csv", b"x\n1\n", "text/csv")
    item = project.new_dataitem("remote", "table", path=url)
    assert project.run is not None
    assert project.run.produced == [item.key]
    assert project.run.logged == {}
