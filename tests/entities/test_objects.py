"""DataItem, Artifact and Model over the real local store, and remote paths over a real
HTTP server on 127.0.0.1; transfers with progress."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas
import pytest

from wrapper.entities import transfer
from wrapper.entities.project import Project, Run
from wrapper.entities.record import EntityRecord
from wrapper.entities.store import EntityNotFound, StoreError, open_store
from wrapper.errors import SpecError


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project("demo", open_store(str(tmp_path / "store")), Run("demo"))


def test_csv_tsv_and_parquet_dataitems_read_as_dataframes(project: Project, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x;y\n1;2\n")
    (tmp_path / "b.tsv").write_text("x\ty\n3\t4\n")
    frame = pandas.DataFrame({"x": [5], "y": [6]})
    csv = project.log_dataitem("a", source=tmp_path / "a.csv")
    tsv = project.log_dataitem("b", source=tmp_path / "b.tsv")
    table = project.log_dataitem("c", data=frame)
    assert csv.as_df(sep=";").to_dict("list") == {"x": [1], "y": [2]}
    assert tsv.as_df().to_dict("list") == {"x": [3], "y": [4]}
    assert table.as_df().to_dict("list") == {"x": [5], "y": [6]}
    assert project.get_dataitem("c").key == table.key  # by name: the latest version
    assert project.run is not None and project.run.produced == [csv.key, tsv.key, table.key]


def test_an_unknown_format_names_the_dataitem(project: Project, tmp_path: Path) -> None:
    (tmp_path / "notes.bin").write_text("hello")
    item = project.log_dataitem("notes", source=tmp_path / "notes.bin")
    with pytest.raises(SpecError, match=r"notes:.*cannot tell the format of 'notes.bin'"):
        item.as_df()
    with pytest.raises(SpecError, match=r"cannot read format 'xml' as a DataFrame \(csv, "):
        item.as_df(file_format="xml")
    assert item.as_df(file_format="txt").columns.tolist() == ["hello"]  # txt is csv


def test_download_as_file_and_overwrite(project: Project, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    model = project.log_model("m", source=source, framework="torch")
    assert model.framework == "torch" and model.kind == "model"
    assert Path(model.as_file()).read_bytes() == b"weights"  # the store's own file
    target = tmp_path / "out"
    target.mkdir()
    first = model.download(target)
    assert Path(first).name == "model.bin" and Path(first).read_bytes() == b"weights"
    with pytest.raises(StoreError, match="exists: pass overwrite=True"):
        model.download(target)
    assert model.download(target, overwrite=True) == first


def test_a_remote_dataitem_is_streamed_from_its_url(
    project: Project, server: str, tmp_path: Path
) -> None:
    (tmp_path / "www" / "remote.csv").write_text("n\n1\n2\n")
    item = project.log_dataitem("remote", path=f"{server}/remote.csv?token=s3cr3t")
    assert item.record.sha256 is None  # the content stays where it is
    with item.open() as stream:
        assert stream.read() == b"n\n1\n2\n"
    assert Path(item.as_file()).read_bytes() == b"n\n1\n2\n"
    missing = project.log_dataitem("gone", path=f"{server}/gone.csv?token=s3cr3t")
    with pytest.raises(StoreError) as caught:
        missing.open()
    assert "HTTP 404" in caught.value.message
    assert "s3cr3t" not in caught.value.message  # a query string may hold a secret


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give source (a local file or folder) or data"),
        ({"data": b"x", "source": "/x"}, "give source or data, not both"),
        ({"data": 3}, "data must be bytes or a DataFrame, not int"),
        ({"source": "/nonexistent/file"}, "cannot read /nonexistent/file"),
    ],
)
def test_logging_errors_name_the_call(project: Project, kwargs: dict, message: str) -> None:
    with pytest.raises(SpecError, match="log_artifact\\('a'\\)") as caught:
        project.log_artifact("a", **kwargs)
    assert message in caught.value.message


def test_names_and_keys_that_find_nothing(project: Project) -> None:
    project.log_artifact("a", data=b"1")
    with pytest.raises(EntityNotFound, match="no dataitem named 'b' in project 'demo'"):
        project.get_dataitem("b")
    with pytest.raises(EntityNotFound, match="is a artifact, not a dataitem"):
        project.get_dataitem("store://demo/artifact/artifact/a")
    with pytest.raises(SpecError, match=r"name '\.\./a' is not a name"):
        project.log_artifact("../a", data=b"1")


def test_large_transfers_report_progress(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(transfer, "LOG_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger="wrapper.entities")
    size = transfer.PROGRESS_FROM + 3 * 1024 * 1024
    written = transfer.write_file(tmp_path / "big", io.BytesIO(b"x" * size), "copy big", size)
    assert written == size == (tmp_path / "big").stat().st_size
    lines = [r.getMessage() for r in caplog.records]
    assert lines and lines[-1].startswith("copy big: 11.0 of 11.0 MiB (100%)")
    assert lines[-1].endswith("(done)")
    caplog.clear()
    transfer.write_file(tmp_path / "small", io.BytesIO(b"x" * 1024), "copy small", 1024)
    assert caplog.records == []  # small transfers stay quiet


def test_as_df_takes_digitalhubs_engine_and_refuses_other_libraries(
    project: Project, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_text("x;y\n1;2\n")
    item = project.log_dataitem("a", source=tmp_path / "a.csv")
    assert item.as_df(engine="pandas", sep=";").to_dict("list") == {"x": [1], "y": [2]}
    with pytest.raises(SpecError) as caught:
        item.as_df(engine="polars")
    assert caught.value.message == f"{item.key}: as_df(engine='polars'): only 'pandas' is supported"


AS_FILE_AND_EXIT = """
import sys
from wrapper.entities.project import Project
from wrapper.entities.store import open_store

item = Project("demo", open_store(sys.argv[1])).get_dataitem("remote")
print(item.as_file())
"""


def test_a_downloaded_as_file_is_removed_when_the_process_exits(
    project: Project, server: str, tmp_path: Path
) -> None:
    (tmp_path / "www" / "remote.csv").write_text("n\n1\n")
    project.log_dataitem("remote", path=f"{server}/remote.csv")
    child = subprocess.run(
        [sys.executable, "-c", AS_FILE_AND_EXIT, project.store.uri],
        capture_output=True, check=True,
    )  # fmt: skip
    path = Path(child.stdout.decode().strip())
    assert path.name == "remote.csv" and path.parent.name.startswith("fn-wrapper-entity-")
    assert not path.parent.exists()


def test_run_metrics_and_status_so_far(project: Project) -> None:
    run = project.run
    assert run is not None and run.status.state == "RUNNING" and run.status.metrics == {}
    run.log_metric("loss", 0.5)
    run.log_metric("loss", [0.4, 0.3])
    run.log_metric("epochs", 3, single_value=True)
    run.log_metric("epochs", 4, single_value=True)  # DigitalHub: a single value is set once
    run.log_metrics({"acc": 0.7, "loss": 0.2})  # new: a single value; kept: appended
    assert run.status.metrics == {"loss": [0.5, 0.4, 0.3, 0.2], "epochs": 3, "acc": 0.7}
    run.log_metrics({"loss": 0.1}, overwrite=True)
    assert run.status.metrics["loss"] == 0.1
    run.status.metrics["acc"] = 9  # a copy: the run's own stays as it is
    assert run.metrics == {"loss": 0.1, "epochs": 3, "acc": 0.7}
    with pytest.raises(SpecError, match=r"log_metric\('m'\): a dict is not a metric value"):
        run.log_metric("m", {"a": 1})
    with pytest.raises(SpecError, match=r"log_metric\('m'\): a str is not a metric value"):
        run.log_metric("m", [1, "2"])


def test_a_model_folder_is_kept_whole_and_downloaded_as_a_folder(
    project: Project, tmp_path: Path
) -> None:
    source = tmp_path / "bert"
    (source / "tokenizer").mkdir(parents=True)
    (source / "weights.bin").write_bytes(b"\x00weights")
    (source / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    model = project.log_model("bert", source=source, framework="torch")
    assert model.is_folder and model.framework == "torch"
    target = tmp_path / "out"  # DigitalHub: the folder's files go into the destination
    folder = Path(model.download(target))
    assert folder == target
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "tokenizer", "tokenizer/vocab.txt", "weights.bin"
    ]  # fmt: skip
    assert (folder / "weights.bin").read_bytes() == b"\x00weights"
    (folder / "weights.bin").write_bytes(b"changed")
    with pytest.raises(StoreError, match=r"out/tokenizer/vocab.txt exists: pass overwrite=True"):
        model.download(target)
    assert (folder / "weights.bin").read_bytes() == b"changed"  # nothing written
    (folder / "stale.txt").write_text("old")
    assert model.download(target, overwrite=True) == str(folder)
    assert (folder / "weights.bin").read_bytes() == b"\x00weights"
    assert sorted(p.name for p in target.iterdir()) == ["stale.txt", "tokenizer", "weights.bin"]
    local = Path(project.get_model("bert").as_file())
    assert (local / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"


def test_a_folder_with_files_from_before_1980_is_kept(project: Project, tmp_path: Path) -> None:
    source = tmp_path / "old"
    source.mkdir()
    (source / "epoch.txt").write_text("1970")
    os.utime(source / "epoch.txt", (0, 0))  # zip cannot date it: it is dated 1980 instead
    path = Path(project.log_model("old", source=source).download(tmp_path / "out"))
    assert path == tmp_path / "out" / "epoch.txt"  # DigitalHub: a folder's one file's path
    assert path.read_text() == "1970"


@pytest.mark.parametrize(
    ("member", "fault"),
    [("../escape.txt", "escape.txt"), ("/etc/owned", "owned"), ("a/../../up", "up")],
)
def test_a_folder_whose_zip_leaves_the_folder_is_refused(
    project: Project, tmp_path: Path, member: str, fault: str
) -> None:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("fine.txt", "ok")
        archive.writestr(member, "planted")
    record = EntityRecord("demo", "model", "model", "planted", spec={"archive": "zip"})
    project.store.put(record, io.BytesIO(packed.getvalue()), "planted.zip")
    target = tmp_path / "deep" / "out"
    target.mkdir(parents=True)
    with pytest.raises(StoreError, match="cannot unpack into"):
        project.get_model("planted").download(target)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name in (fault, "fine.txt")) == []
    assert list(target.iterdir()) == []  # nothing half unpacked, no temporary left


def test_a_folder_that_unpacks_past_its_declared_size_is_refused(
    project: Project, tmp_path: Path
) -> None:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", b"\x00" * 1_000_000)
    data = bytearray(packed.getvalue())
    for header in (b"PK\x03\x04", b"PK\x01\x02"):  # declare 10 bytes where 1 MB inflates
        at = data.index(header)
        size_at = at + (22 if header == b"PK\x03\x04" else 24)
        data[size_at : size_at + 4] = (10).to_bytes(4, "little")
    record = EntityRecord("demo", "model", "model", "bomb", spec={"archive": "zip"})
    project.store.put(record, io.BytesIO(bytes(data)), "bomb.zip")
    with pytest.raises(StoreError, match="cannot unpack into"):
        project.get_model("bomb").download(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


@pytest.mark.parametrize(
    "url",
    [
        "http://user:Sup3rSecret@host/x.csv",
        "https://user:Sup3r/Secret@host/x.csv",  # urllib would say "nonnumeric port: 'Sup3r'"
        "s3://AKIAKEY:Sup3rSecret@bucket/x.csv",
    ],
)
def test_credentials_in_a_path_are_refused_without_being_echoed(tmp_path: Path, url: str) -> None:
    project = Project("demo", open_store(str(tmp_path / "store")), Run("demo"))
    with pytest.raises(SpecError) as caught:
        project.new_dataitem("x", "table", path=url)
    assert "Sup3r" not in caught.value.message and "give" in caught.value.message
    command = [sys.executable, "-m", "wrapper", "store", "put", url, "--name", "x",
               "--kind", "table", "--store", str(tmp_path / "store")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Sup3r" not in result.stderr + result.stdout
    assert project.store.versions("demo") == []
