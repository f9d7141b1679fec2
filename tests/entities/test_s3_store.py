"""The S3 store (DESIGN §5) against moto's S3 server on 127.0.0.1: streamed content with its
size and sha256, entity.json written last, versions and the latest-version rule, run
documents, and clear errors."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import tempfile
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.moto_s3 import SECRET, point_aws_at
from wrapper.entities import s3store
from wrapper.entities.keys import EntityKey
from wrapper.entities.project import Project
from wrapper.entities.record import EntityRecord
from wrapper.entities.s3store import PART, S3Store
from wrapper.entities.store import EntityNotFound, StoreError, open_store
from wrapper.errors import SpecError

MIB = 1024 * 1024


@dataclass
class Bucket:
    """A fresh bucket on the server, the tests' own client to look inside it, and a store."""

    url: str
    client: Any
    name: str = field(default_factory=lambda: f"store-{uuid.uuid4().hex[:12]}")

    def store(self, prefix: str = "team/store") -> S3Store:
        return S3Store(f"s3://{self.name}/{prefix}")

    def object_keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def get(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())


@pytest.fixture
def bucket(s3_server: tuple[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Bucket:
    url, client = s3_server
    point_aws_at(url, monkeypatch, tmp_path)
    made = Bucket(url, client)
    client.create_bucket(Bucket=made.name)
    return made


def dataitem(name: str = "iris", project: str = "demo", **fields: Any) -> EntityRecord:
    return EntityRecord(project, "dataitem", "table", name, **fields)


class Generated:
    """`size` bytes made on demand, never held whole; notes the largest read asked for."""

    def __init__(self, size: int, fail_at: Optional[int] = None) -> None:
        self.left, self.fail_at, self.sent, self.largest = size, fail_at, 0, 0
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        self.largest = max(self.largest, size if size >= 0 else sys.maxsize)
        if self.fail_at is not None and self.sent >= self.fail_at:
            raise OSError("the producer died")
        piece = bytes([self.sent % 251]) * min(self.left, size if size >= 0 else self.left, MIB)
        self.left -= len(piece)
        self.sent += len(piece)
        self.sha256.update(piece)
        return piece


# --- content ----------------------------------------------------------------------------------


def test_put_and_open_round_trip(bucket: Bucket) -> None:
    store = bucket.store()
    body = b"sepal,petal\n1,2\n"
    record = store.put(dataitem(labels={"team": "a"}), io.BytesIO(body), "iris.csv")
    folder = f"team/store/entities/demo/dataitem/iris/{record.id}/"
    assert record.size == len(body)
    assert record.sha256 == hashlib.sha256(body).hexdigest()
    assert record.path == f"s3://{bucket.name}/{folder}content/iris.csv"
    assert bucket.object_keys() == [f"{folder}content/iris.csv", f"{folder}entity.json"]
    assert json.loads(bucket.get(f"{folder}entity.json")) == record.to_dict()
    found = store.version("demo", "dataitem", "iris", record.id)
    assert found.to_dict() == record.to_dict()
    assert store.local_file(found) is None
    with store.open(found) as stream:
        assert stream.read() == body


def test_large_content_is_streamed_in_parts(bucket: Bucket) -> None:
    store = bucket.store()
    content = Generated(12 * MIB)
    record = store.put(dataitem(), content, "big.bin")  # type: ignore[arg-type]
    assert content.largest <= PART < 12 * MIB  # never asked for the whole stream
    assert record.size == 12 * MIB
    assert record.sha256 == content.sha256.hexdigest()
    key = record.path.split("/", 3)[3]
    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert head["ETag"].endswith('-2"')  # a multipart upload of two parts
    digest = hashlib.sha256()
    with store.open(record) as stream:
        while piece := stream.read(MIB):
            digest.update(piece)
    assert digest.hexdigest() == record.sha256


class ShortReads(io.RawIOBase):
    """A raw stream that answers at most 1000 bytes per read, as a pipe or socket may."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        piece = self.data.read(min(len(buffer), 1000))
        buffer[: len(piece)] = piece
        return len(piece)


def test_short_reads_still_make_full_parts(bucket: Bucket) -> None:
    data = bytes(range(256)) * (PART // 256 + 40)  # a little over one part
    record = bucket.store().put(dataitem(), ShortReads(data), "d.bin")  # type: ignore[arg-type]
    assert record.size == len(data)
    with bucket.store().open(record) as stream:
        assert stream.read() == data


@pytest.mark.parametrize(
    "fail_at", [MIB, PART + MIB], ids=["in-the-first-part", "in-the-second-part"]
)
def test_a_failing_stream_leaves_no_version(bucket: Bucket, fail_at: int) -> None:
    store = bucket.store()
    with pytest.raises(OSError, match="the producer died"):
        store.put(dataitem(), Generated(3 * PART, fail_at), "d.bin")  # type: ignore[arg-type]
    assert store.versions() == []
    assert not [key for key in bucket.object_keys() if key.endswith("entity.json")]
    assert "Uploads" not in bucket.client.list_multipart_uploads(Bucket=bucket.name)


def test_remote_path_record(bucket: Bucket) -> None:
    store = bucket.store()
    remote = dataitem(spec={"path": "https://example.com/iris.csv"})
    store.put(remote, None, "ignored")
    found = store.latest("demo", "dataitem", "iris")
    assert (found.path, found.size, found.sha256) == ("https://example.com/iris.csv", None, None)
    assert bucket.object_keys() == [
        f"team/store/entities/demo/dataitem/iris/{found.id}/entity.json"
    ]
    with pytest.raises(StoreError, match="holds no content for it") as caught:
        store.open(found)
    assert "its path is 'https://example.com/iris.csv'" in caught.value.message


def test_unsafe_parts_build_no_key(bucket: Bucket) -> None:
    store = bucket.store()
    with pytest.raises(SpecError, match=re.escape("name '..' is not a name")):
        store.put(dataitem(".."), io.BytesIO(b"x"), "x.csv")
    with pytest.raises(SpecError, match="is not an entity key"):
        store.put(dataitem("a/../../b"), io.BytesIO(b"x"), "x.csv")
    record = store.put(dataitem(), io.BytesIO(b"x"), "../../escape.csv")
    assert record.path.endswith(f"/iris/{record.id}/content/iris")  # the fallback name
    assert store.versions("..") == []
    assert store.versions("demo", "dataitem", "iris/..") == []
    with pytest.raises(EntityNotFound, match=re.escape("no version '../x' of dataitem 'iris'")):
        store.version("demo", "dataitem", "iris", "../x")


# --- versions -------------------------------------------------------------------------------


def test_versions_newest_first_latest_and_by_id(bucket: Bucket) -> None:
    store = bucket.store("")
    old, new, middle = (dataitem(created_ns=ns) for ns in (1, 3, 2))
    tie = dataitem(created_ns=3, id="0" * 32)  # same time as `new`: the higher id wins
    for record in (old, new, middle, tie):
        store.put(record, io.BytesIO(b"x"), "entity.json")  # a content named like metadata
    other_name = store.put(dataitem("wine", created_ns=5), None, "-")
    model = store.put(EntityRecord("demo", "model", "sklearn", "iris", created_ns=9), None, "-")
    elsewhere = store.put(dataitem(project="other", created_ns=7), None, "-")

    def ids(records: list[EntityRecord]) -> list[str]:
        return [record.id for record in records]

    assert ids(store.versions("demo", "dataitem", "iris")) == ids([new, tie, middle, old])
    assert ids(store.versions("demo", "dataitem")) == ids([other_name, new, tie, middle, old])
    assert ids(store.versions("demo"))[:2] == ids([model, other_name])
    assert ids(store.versions(name="iris")) == ids([model, elsewhere, new, tie, middle, old])
    assert len(store.versions()) == 7
    assert store.latest("demo", "dataitem", "iris").id == new.id
    assert store.version("demo", "dataitem", "iris", middle.id).created_ns == 2
    assert store.uri == f"s3://{bucket.name}"
    assert bucket.object_keys()[0].startswith("entities/demo/dataitem/iris/")


def test_versions_page_through_long_listings(bucket: Bucket) -> None:
    store = bucket.store()
    pages: list[int] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["MaxKeys"] = 2  # as if a page held 2 keys, not 1000
        pages.append(1)

    store._client.meta.events.register("provide-client-params.s3.ListObjectsV2", small_pages)
    made = [store.put(dataitem(created_ns=n), io.BytesIO(b"x"), "x.csv") for n in range(5)]
    assert [found.id for found in store.versions()] == [record.id for record in made[::-1]]
    assert len(pages) == 5  # 10 keys, 2 a page


def test_find_by_key_and_by_name(bucket: Bucket) -> None:
    store = bucket.store()
    first = store.put(dataitem(created_ns=1), io.BytesIO(b"v1"), "iris.csv")
    second = store.put(dataitem(created_ns=2), io.BytesIO(b"v2"), "iris.csv")
    assert store.find("iris", "demo", "dataitem", "inputs.df").id == second.id
    assert store.find(str(first.key), "demo", "dataitem", "inputs.df").id == first.id
    assert store.find(first.key.latest(), "other", "dataitem", "inputs.df").id == second.id
    with store.open(store.find(str(first.key), "x", "dataitem", "f")) as stream:
        assert stream.read() == b"v1"

    def not_found(reference: str, entity_type: str = "dataitem") -> str:
        with pytest.raises(EntityNotFound) as caught:
            store.find(reference, "demo", entity_type, "inputs.df")
        return caught.value.message

    wrong_kind = str(EntityKey("demo", "dataitem", "csv", "iris"))
    assert not_found(wrong_kind) == (
        f"inputs.df: {wrong_kind!r}: the dataitem 'iris' is of kind 'table', not 'csv'"
    )
    assert not_found(str(first.key), "model") == (
        f"inputs.df: {str(first.key)!r} is a dataitem, not a model"
    )
    assert not_found("wine") == f"no dataitem named 'wine' in project 'demo' (store {store.uri})"
    missing = str(first.key._replace(id="abc"))
    assert not_found(missing) == (
        f"inputs.df: {missing!r}: no version 'abc' of dataitem 'iris' in project 'demo' "
        f"(store {store.uri})"
    )


def test_a_broken_entity_document_is_a_store_error(bucket: Bucket) -> None:
    key = "team/store/entities/demo/dataitem/iris/abc/entity.json"
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=b'{"metadata": {}}')
    with pytest.raises(StoreError) as caught:
        bucket.store().versions()
    assert caught.value.message == f"S3 store: s3://{bucket.name}/{key} is not an entity document"


def test_remove_deletes_entity_json_first_then_the_content(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = bucket.store()
    first = store.put(dataitem(created_ns=1), io.BytesIO(b"v1"), "iris.csv")
    second = store.put(dataitem(created_ns=2), io.BytesIO(b"v2"), "iris.csv")
    folder = f"team/store/entities/demo/dataitem/iris/{second.id}/"
    for n in range(3):  # more under the version than one (shrunk) batch deletes
        bucket.client.put_object(Bucket=bucket.name, Key=f"{folder}content/extra{n}", Body=b"")
    monkeypatch.setattr(s3store, "_BATCH", 2)
    deleted: list[list[str]] = []

    def one(params: dict[str, Any], **_: Any) -> None:
        deleted.append([params["Key"]])

    def many(params: dict[str, Any], **_: Any) -> None:
        deleted.append([item["Key"] for item in params["Delete"]["Objects"]])

    store._client.meta.events.register("provide-client-params.s3.DeleteObject", one)
    store._client.meta.events.register("provide-client-params.s3.DeleteObjects", many)
    store.remove(second)
    assert deleted[0] == [f"{folder}entity.json"]
    assert [len(batch) for batch in deleted[1:]] == [2, 2]
    assert sorted(key for batch in deleted[1:] for key in batch) == [
        f"{folder}content/{name}" for name in ("extra0", "extra1", "extra2", "iris.csv")
    ]
    assert not [key for key in bucket.object_keys() if second.id in key]
    assert store.latest("demo", "dataitem", "iris").id == first.id
    with store.open(store.latest("demo", "dataitem", "iris")) as stream:
        assert stream.read() == b"v1"

    remote = store.put(dataitem("wine", spec={"path": f"s3://{bucket.name}/raw/w.csv"}), None, "")
    bucket.client.put_object(Bucket=bucket.name, Key="raw/w.csv", Body=b"kept")
    store.remove(remote)
    assert store.versions(name="wine") == []
    assert [key for key in bucket.object_keys() if "wine" in key or "raw" in key] == ["raw/w.csv"]

    with pytest.raises(EntityNotFound) as caught:
        store.remove(second)
    assert caught.value.message == (
        f"no version {second.id!r} of dataitem 'iris' in project 'demo' (store {store.uri})"
    )
    with pytest.raises(EntityNotFound, match=re.escape("no version '../x' of dataitem 'iris'")):
        store.remove(dataitem(id="../x"))


def test_update_rewrites_entity_json_and_keeps_the_content(bucket: Bucket) -> None:
    store = bucket.store()
    old = store.put(dataitem(created_ns=1, labels={"team": "a"}), io.BytesIO(b"v1"), "iris.csv")
    new = store.put(dataitem(created_ns=2), io.BytesIO(b"v2"), "iris.csv")
    keys = bucket.object_keys()
    changed = store.version("demo", "dataitem", "iris", old.id)
    changed.labels = {"team": "b", "stage": "prod"}
    changed.spec["schema"] = {"fields": ["sepal"]}
    store.update(changed)
    again = store.version("demo", "dataitem", "iris", old.id)
    assert again.to_dict() == changed.to_dict()
    assert (again.labels, again.spec["schema"]) == (changed.labels, {"fields": ["sepal"]})
    found = store.versions("demo", "dataitem", "iris")
    assert [record.id for record in found] == [new.id, old.id]
    assert found[1].to_dict() == changed.to_dict()
    assert bucket.object_keys() == keys
    with store.open(again) as stream:
        assert stream.read() == b"v1"

    with pytest.raises(EntityNotFound, match=r"^no version 'abc' of dataitem 'iris'"):
        store.update(dataitem(id="abc"))
    assert not [key for key in bucket.object_keys() if "/abc/" in key]
    changed.spec["path"] = f"s3://{bucket.name}/elsewhere.csv"
    with pytest.raises(StoreError, match="an update cannot change its kind, creation time or"):
        store.update(changed)
    assert store.version("demo", "dataitem", "iris", old.id).path == old.path


# --- runs -----------------------------------------------------------------------------------


def test_run_documents_round_trip_and_missing(bucket: Bucket) -> None:
    store = bucket.store()
    document = {"id": "r1", "project": "demo", "state": "RUNNING", "results": {}}
    store.put_run(document)
    store.put_run({**document, "state": "COMPLETED", "results": {"n": 1}})
    assert store.get_run("demo", "r1") == {**document, "state": "COMPLETED", "results": {"n": 1}}
    assert "team/store/runs/demo/r1.json" in bucket.object_keys()
    with pytest.raises(EntityNotFound) as caught:
        store.get_run("demo", "r2")
    assert caught.value.message == f"no run 'r2' in project 'demo' (store {store.uri})"
    with pytest.raises(EntityNotFound, match=re.escape("no run '../r1'")):
        store.get_run("demo", "../r1")
    with pytest.raises(StoreError, match=re.escape("project 'demo' or id '../x' is no name")):
        store.put_run({"id": "../x", "project": "demo"})


def test_remove_run_deletes_its_document_only(bucket: Bucket) -> None:
    store = bucket.store()
    record = store.put(dataitem(run="r1"), io.BytesIO(b"x"), "d.csv")
    store.put_run({"id": "r1", "project": "demo", "produced": [str(record.key)]})
    store.put_run({"id": "r2", "project": "demo"})
    store.remove_run("demo", "r1")
    assert [document["id"] for document in store.runs("demo")] == ["r2"]
    assert [key for key in bucket.object_keys() if "/runs/" in f"/{key}"] == [
        "team/store/runs/demo/r2.json"
    ]
    assert [found.id for found in store.versions()] == [record.id]  # what it made stays
    with pytest.raises(EntityNotFound) as caught:
        store.remove_run("demo", "r1")
    assert caught.value.message == f"no run 'r1' in project 'demo' (store {store.uri})"
    with pytest.raises(EntityNotFound, match=re.escape("no run '../r2' in project 'demo'")):
        store.remove_run("demo", "../r2")
    with pytest.raises(EntityNotFound, match="no run 'r2' in project 'other'"):
        store.remove_run("other", "r2")
    assert store.get_run("demo", "r2") == {"id": "r2", "project": "demo"}


def test_runs_newest_first_by_project_skipping_what_is_no_run(bucket: Bucket) -> None:
    store = bucket.store()
    for run_id, project, started in [
        ("a1", "demo", "2024-01-01T00:00:00+00:00"),
        ("b2", "demo", "2024-03-01T00:00:00.000001+00:00"),
        ("c3", "demo", None),
        ("d4", "demo", "2024-03-01T00:00:00.000001+00:00"),  # same time as b2: higher id first
        ("z9", "other", "2024-02-01T00:00:00+00:00"),
    ]:
        store.put_run({"id": run_id, "project": project, "state": "RUNNING", "started": started})
    store.put_run({"id": "e5", "project": "demo"})  # no "started" at all
    for key, body in [
        ("runs/demo/broken.json", b'{"id": "x1", "started": "2030'),
        ("runs/demo/list.json", b'[{"id": "x2"}]'),
        ("runs/demo/deeper/x3.json", b'{"id": "x3", "started": "2030"}'),
        ("entities/demo/x4.json", b'{"id": "x4", "started": "2030"}'),
    ]:
        bucket.client.put_object(Bucket=bucket.name, Key=f"team/store/{key}", Body=body)

    def ids(found: list[dict[str, Any]]) -> list[str]:
        return [document["id"] for document in found]

    assert ids(store.runs("demo")) == ["d4", "b2", "a1", "e5", "c3"]
    assert ids(store.runs()) == ["d4", "b2", "z9", "a1", "e5", "c3"]
    assert store.runs("demo")[0] == store.get_run("demo", "d4")
    assert store.runs("nobody") == []
    assert store.runs("../demo") == []


# --- settings and errors --------------------------------------------------------------------


def test_uri_is_normalised_and_a_bucket_is_required(bucket: Bucket) -> None:
    assert S3Store(f"s3://{bucket.name}//a/b/").uri == f"s3://{bucket.name}/a/b"
    store = open_store(f"s3://{bucket.name}/")
    assert isinstance(store, S3Store) and store.uri == f"s3://{bucket.name}"
    for uri in ("s3:///prefix", "s3://", f"s3://{bucket.name}/a/../b"):
        with pytest.raises(StoreError) as caught:
            S3Store(uri)
        assert caught.value.message == f"--store {uri!r}: expected s3://bucket/prefix"
    with pytest.raises(StoreError) as caught:
        S3Store(f"s3://key:{SECRET}@{bucket.name}/p")
    assert (
        caught.value.message == "--store: S3 credentials come from the AWS variables, not the URI"
    )


def test_missing_bucket_is_named(bucket: Bucket) -> None:
    store = S3Store(f"s3://no-such-{bucket.name}/p")
    where = f"s3://no-such-{bucket.name}/p"
    with pytest.raises(StoreError) as caught:
        store.put(dataitem(), io.BytesIO(b"x"), "x.csv")
    assert caught.value.message.startswith(f"S3 store: cannot write {where}/entities/demo/")
    assert caught.value.message.endswith(": no such bucket")
    with pytest.raises(StoreError) as caught:
        store.versions("demo")
    assert caught.value.message == f"S3 store: cannot list {where}/entities/demo/: no such bucket"
    with pytest.raises(StoreError) as caught:
        store.get_run("demo", "r1")
    assert (
        caught.value.message == f"S3 store: cannot read {where}/runs/demo/r1.json: no such bucket"
    )


def test_vanished_content_is_a_store_error(bucket: Bucket) -> None:
    store = bucket.store()
    record = store.put(dataitem(), io.BytesIO(b"x"), "x.csv")
    key = record.path.split("/", 3)[3]
    bucket.client.delete_object(Bucket=bucket.name, Key=key)
    with pytest.raises(StoreError) as caught:
        store.open(record)
    assert caught.value.message == f"S3 store: cannot read {record.path}: no such key"


def test_unknown_credentials_are_refused_without_showing_them(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    _moto_auth(bucket.url, "0")  # from now on moto checks keys against its IAM users
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
        with pytest.raises(StoreError) as caught:
            bucket.store().put_run({"id": "r1", "project": "demo"})
    finally:
        _moto_auth(bucket.url, "inf")
    assert caught.value.message.startswith(f"S3 store: cannot write s3://{bucket.name}/")
    assert "does not know this AWS access key id" in caught.value.message
    assert SECRET not in caught.value.message


def _moto_auth(url: str, initial_no_auth_count: str) -> None:
    request = urllib.request.Request(
        f"{url}/moto-api/reset-auth",
        data=initial_no_auth_count.encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()


def test_missing_boto3_says_what_to_install(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what `import boto3` sees when absent
    with pytest.raises(StoreError) as caught:
        bucket.store()
    assert caught.value.message == "the S3 store needs boto3: pip install 'fn-wrapper[s3]'"


def test_a_dataitem_whose_path_is_an_s3_object_is_streamed_from_there(bucket: Bucket) -> None:
    bucket.client.put_object(Bucket=bucket.name, Key="raw/x.csv", Body=b"a\n1\n")
    project = Project("demo", bucket.store())
    item = project.log_dataitem("x", path=f"s3://{bucket.name}/raw/x.csv")
    assert item.record.sha256 is None and bucket.object_keys()[0] == "raw/x.csv"
    with item.open() as stream:
        assert stream.read() == b"a\n1\n"
    gone = project.log_dataitem("gone", path=f"s3://{bucket.name}/raw/none.csv")
    with pytest.raises(StoreError, match=f"cannot read s3://{bucket.name}/raw/none.csv: NoSuchKey"):
        gone.open()


def test_a_parquet_dataitem_read_from_s3_leaves_no_copy_on_disk(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas

    project = Project("demo", bucket.store())
    item = project.log_dataitem("t", data=pandas.DataFrame({"a": [1, 2]}))
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    assert item.as_df().to_dict("list") == {"a": [1, 2]}
    assert list(temporary.iterdir()) == []
