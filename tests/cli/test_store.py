"""`fn-wrapper store` end to end, as real subprocesses, on the local store and on S3 (moto's
server): put (files uploaded, URLs registered in place), get, ls, runs, rm, prune with its
lineage rule, and operand flags that have no environment twin (DESIGN §5, §10)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from tests.conftest import RunCLI
from wrapper.cli import render, store
from wrapper.entities.record import EntityRecord
from wrapper.entities.store import Store, open_store
from wrapper.errors import ExitCode
from wrapper.settings import resolve

PYTHON_TRACEBACK = "Traceback (most recent call last)"
DAY = 86400 * 10**9
"""A day in nanoseconds (creation times)."""


def ok(result: subprocess.CompletedProcess) -> str:
    """stdout of a command that succeeded."""
    assert result.returncode == 0, result.stderr.decode()
    return str(result.stdout.decode())


def refused(result: subprocess.CompletedProcess) -> str:
    """stderr of a command refused with exit 2: one message, no traceback, nothing done."""
    stderr = str(result.stderr.decode())
    assert result.returncode == ExitCode.BAD_INPUT, stderr
    assert PYTHON_TRACEBACK not in stderr
    assert result.stdout == b""
    return stderr


def lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def version(
    store_: Store, name: str, days_old: float, entity_type: str = "dataitem", project: str = "demo"
) -> EntityRecord:
    """A version of `name` made `days_old` days ago, with a little content."""
    created = time.time_ns() - int(days_old * DAY)
    kind = {"dataitem": "table", "artifact": "artifact", "model": "model"}[entity_type]
    record = EntityRecord(project, entity_type, kind, name, created_ns=created)
    return store_.put(record, io.BytesIO(b"a\n1\n"), f"{name}.csv")


def run_document(
    run_id: str,
    days_old: float,
    state: str = "COMPLETED",
    function: str = "train",
    project: str = "demo",
    **lineage: Any,
) -> dict[str, Any]:
    moment = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() - days_old * 86400))
    return {
        "id": run_id, "project": project, "function": function, "action": "job",
        "state": state, "started": moment, "finished": None if state == "RUNNING" else moment,
        "results": {}, "outputs": {}, "inputs": {}, "message": "", "metrics": {},
        "consumed": [], "produced": [], **lineage,
    }  # fmt: skip


@pytest.fixture
def fw(run_cli: RunCLI, store_uri: str, tmp_path: Path) -> Any:
    """`fn-wrapper store ACTION ARGS --store STORE_URI` in tmp_path."""

    def command(*args: str, env: Optional[dict[str, str]] = None) -> Any:
        return run_cli("store", *args, "--store", store_uri, env=env, cwd=tmp_path)

    return command


# --- put: a file is uploaded, a URL registered in place ---------------------------------------


HANDLER = """
def total(di, column):
    frame = di.as_df()
    path = di.download()
    with open(path) as copy:
        return int(frame[column].sum()), len(copy.read().splitlines())
"""


def test_put_registers_a_url_without_uploading_and_a_job_reads_it(
    run_cli: RunCLI, tmp_path: Path, server: str, store_root: Path
) -> None:
    (tmp_path / "www" / "spire.csv").write_text("x,y\n1,2\n3,4\n")
    url = f"{server}/spire.csv"
    put = run_cli("store", "put", url, "--store", str(store_root), "--project", "demo")
    key = ok(put).strip()
    assert key.startswith("store://demo/dataitem/table/spire:")
    record = open_store(str(store_root)).find(key, "demo", "dataitem", "test")
    assert (record.path, record.size, record.sha256) == (url, None, None)
    assert not (store_root / "content" / "demo" / "dataitem" / "spire").exists()
    listed = ok(run_cli("store", "ls", "--store", str(store_root), "--project", "demo"))
    assert lines(listed)[0][:2] == [key, "-"]

    (tmp_path / "total.py").write_text(HANDLER)
    job = subprocess.run(
        [
            sys.executable, "-m", "wrapper", "job", "--code-src", "total.py",
            "--handler", "total:total", "--project", "demo", "--store", str(store_root),
            "--inputs", json.dumps({"di": key}), "--parameters", '{"column": "y"}',
        ],
        cwd=tmp_path, capture_output=True, timeout=60,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr.decode()
    summary = json.loads(job.stdout.decode().splitlines()[-1])
    assert summary["state"] == "COMPLETED"
    assert summary["results"] == {"output_0": 6, "output_1": 3}


def test_put_uploads_a_file_and_its_options_shape_the_entity(
    fw: Any, tmp_path: Path, store_uri: str
) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01")
    key = ok(fw("put", "weights.bin", "--type", "model", "--kind", "numpy", "--name", "clf",
                "--label", "team=ml", "--project", "demo")).strip()  # fmt: skip
    assert key.startswith("store://demo/model/numpy/clf:")
    document = json.loads(ok(fw("get", key)))
    assert document["metadata"]["labels"] == {"team": "ml"}
    assert document["content"]["size"] == 2
    (tmp_path / "back").mkdir()
    assert ok(fw("get", key, "--output", "back/w.bin")).strip() == "back/w.bin"
    assert (tmp_path / "back" / "w.bin").read_bytes() == b"\x00\x01"
    assert lines(ok(fw("ls", "--project", "demo", "--type", "model")))[0][:2] == [key, "2"]
    s3_key = ok(fw("put", "s3://bucket/data/wine.parquet")).strip()  # registered, not read
    assert s3_key.startswith("store://default/dataitem/table/wine:")
    registered = open_store(store_uri).find(s3_key, "default", "dataitem", "test")
    assert registered.path == "s3://bucket/data/wine.parquet" and registered.sha256 is None


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["put", "zip+http://host/code.zip"],
            "store put: 'zip+http://host/code.zip': a zip+http://"
            " path cannot be registered: a job reads http://, https:// and s3:// paths",
        ),
        (["put", "http://host/"], "store put: 'http://host/' gives no entity name: give --name"),
        (["put", "http://host/a.csv", "--name", "a b"], "store put --name: name 'a b' is not a"),
        (["put", "http://host/a.csv", "--kind", "../x"], "store put --kind: kind '../x' is not"),
        (["put", "http://host/a.csv", "--label", "team"], "--label 'team': expected key=value"),
        (["put", "missing.csv"], "cannot read missing.csv: No such file or directory"),
        (["put"], "store put: give a FILE or URL"),
        (["get"], "store get: give a store:// key or a run id"),
        (["get", "nope"], "store get: no run 'nope' in project 'default' (store "),
        (["get", "nope"], "if 'nope' is a name: say its --type"),
        (["get", "nope", "--type", "model"], "no model named 'nope' in project 'default'"),
        (
            ["get", "store://default/data/table/x"],
            "store get: 'store://default/data/table/x'"
            " is not an entity key: entity type 'data' is not one of",
        ),
        (["rm", "nope"], "store rm: no run 'nope' in project 'default'"),
        (["ls", "x"], "store ls takes no operand, got 'x'"),
        (["ls", "--keep", "2"], "store ls: --keep does not apply (it is for prune)"),
        (
            ["runs", "--type", "model"],
            "store runs: --type does not apply (it is for put, get, ls, rm, prune)",
        ),
        (["put", "a.csv", "--force"], "store put: --force does not apply (it is for rm, prune)"),
        (["prune"], "store prune: say what goes: --older-than AGE, --keep N, or both"),
        (["prune", "--older-than", "7"], "argument --older-than: '7' is not a duration"),
        (["prune", "--older-than", "7w"], "argument --older-than: '7w' is not a duration"),
        (["prune", "--keep", "-1"], "argument --keep: '-1' is not a whole number"),
        (["prune", "--keep", "two"], "argument --keep: 'two' is not a whole number"),
        (
            ["prune", "--keep", "1", "--runs", "--name", "x"],
            "store prune --runs: --name filters entity versions, not runs",
        ),
        (
            ["prune", "--keep", "1", "--state", "ERROR"],
            "store prune: --state filters runs: add --runs",
        ),
        (["runs", "--state", "done"], "argument --state: invalid choice: 'DONE'"),
        (["move"], "argument action: invalid choice: 'move'"),
    ],
)
def test_bad_operands_exit_2_naming_the_flag_or_value(
    run_cli: RunCLI, tmp_path: Path, store_root: Path, args: list[str], fragment: str
) -> None:
    result = run_cli("store", *args, "--store", str(store_root), cwd=tmp_path)
    assert fragment in refused(result)


# --- operands have no environment twin ------------------------------------------------------


def test_operand_flags_do_not_read_the_environment(
    run_cli: RunCLI, tmp_path: Path, store_root: Path
) -> None:
    (tmp_path / "d.csv").write_text("a\n1\n")
    twins = {
        "FN_WRAPPER_NAME": "x", "FN_WRAPPER_TYPE": "model", "FN_WRAPPER_KIND": "k",
        "FN_WRAPPER_LABEL": '["a=b"]', "FN_WRAPPER_ACTION": "ls", "FN_WRAPPER_TARGET": "nope",
        "FN_WRAPPER_OUTPUT": "elsewhere", "FN_WRAPPER_FORCE": "1", "FN_WRAPPER_KEEP": "0",
        "FN_WRAPPER_PROJECT": "demo",  # a setting: its twin is read
    }  # fmt: skip
    put = run_cli("store", "put", "d.csv", "--store", str(store_root), env=twins, cwd=tmp_path)
    key = ok(put).strip()
    assert key.startswith("store://demo/dataitem/table/d:")
    record = open_store(str(store_root)).find(key, "demo", "dataitem", "test")
    assert record.labels == {}
    listed = run_cli("store", "ls", "--store", str(store_root), env=twins)
    assert lines(ok(listed))[0][0] == key  # FN_WRAPPER_KEEP did not make ls refuse


def test_help_says_which_flags_have_twins(run_cli: RunCLI) -> None:
    text = " ".join(ok(run_cli("store", "--help")).split())
    for flag in ("--name NAME", "--type", "--older-than AGE", "--keep N", "--force"):
        assert f"{flag}" in text
    assert "the entity's name (default: the file's stem); ls, prune: a filter [no env twin]" in text
    assert "[env FN_WRAPPER_STORE]" in text and "[env FN_WRAPPER_PROJECT; default: default]" in text
    assert "FN_WRAPPER_NAME" not in text and "FN_WRAPPER_KEEP" not in text
    render_help = ok(run_cli("render", "--help"))
    twins = set(re.findall(r"FN_WRAPPER_[A-Z_]+", render_help))
    assert {"FN_WRAPPER_IMAGE", "FN_WRAPPER_TARGET_CPU"} <= twins
    assert not {"FN_WRAPPER_TARGET", "FN_WRAPPER_ACTION", "FN_WRAPPER_OUTPUT"} & twins


def test_render_operands_ignore_their_namesakes_in_the_environment() -> None:
    environ = {"FN_WRAPPER_TARGET": "nuclio", "FN_WRAPPER_ACTION": "job", "FN_WRAPPER_OUTPUT": "x"}
    settings = resolve({}, render.OPTIONS, {**environ, "FN_WRAPPER_WORKERS": "3"})
    assert (settings.target, settings.action, settings.output) == ("kubernetes", None, None)
    assert settings.layers["target"] == "default" and settings.workers == 3
    twinned = {option.flag for option in store.OPTIONS if option.twin}
    assert twinned == {"--store", "--project"}


# --- runs, get and rm -----------------------------------------------------------------------


def test_runs_are_listed_filtered_and_shown(fw: Any, store_uri: str) -> None:
    kept = open_store(store_uri)
    documents = [
        run_document("r1", 3, function="train"),
        run_document("r2", 2, state="ERROR", function="score", attempts=[{"n": 1}]),
        run_document("r3", 1, state="RUNNING", function="train"),
        run_document("r9", 1, project="other"),
    ]
    for document in documents:
        kept.put_run(document)
    listed = lines(ok(fw("runs", "--project", "demo")))
    assert [row[:4] for row in listed] == [
        ["r3", "train", "job", "RUNNING"],
        ["r2", "score", "job", "ERROR"],
        ["r1", "train", "job", "COMPLETED"],
    ]
    assert listed[0][4] == documents[2]["started"]
    trains = lines(ok(fw("runs", "--project", "demo", "--function", "train")))
    assert [row[0] for row in trains] == ["r3", "r1"]
    assert [row[0] for row in lines(ok(fw("runs", "--project", "demo", "--state", "error")))] == [
        "r2"
    ]
    assert json.loads(ok(fw("get", "r2", "--project", "demo"))) == documents[1]  # whole
    assert ok(fw("runs")) == ""  # the default project has none


def test_rm_removes_a_version_by_key_or_name_and_a_run(
    fw: Any, store_uri: str, tmp_path: Path
) -> None:
    kept = open_store(store_uri)
    old, middle, new = (version(kept, "iris", days) for days in (3, 2, 1))
    assert ok(fw("rm", str(middle.key), "--project", "demo")).strip() == str(middle.key)
    assert [r.id for r in kept.versions("demo", "dataitem", "iris")] == [new.id, old.id]
    assert ok(fw("rm", "iris", "--type", "dataitem", "--project", "demo")).strip() == str(new.key)
    assert [r.id for r in kept.versions("demo", "dataitem", "iris")] == [old.id]
    gone = refused(fw("rm", str(middle.key), "--project", "demo"))
    assert f"store rm: '{middle.key}': no version '{middle.id}' of dataitem 'iris'" in gone

    kept.put_run(run_document("r1", 1))
    kept.put_run(run_document("r2", 1, state="RUNNING"))
    assert ok(fw("rm", "r1", "--project", "demo")).strip() == "r1"
    assert "store rm: run 'r2' is RUNNING" in refused(fw("rm", "r2", "--project", "demo"))
    assert ok(fw("rm", "r2", "--project", "demo", "--force")).strip() == "r2"
    assert kept.runs("demo") == []


def test_rm_refuses_a_version_a_run_needs_unless_forced(fw: Any, store_uri: str) -> None:
    kept = open_store(store_uri)
    used, latest = version(kept, "iris", 2), version(kept, "iris", 1)
    kept.put_run(run_document("r1", 1, project="other", consumed=[str(used.key)]))
    kept.put_run(run_document("r2", 1, inputs={"t": str(used.key.latest())}))  # the latest
    for record, runs in ((used, "r1"), (latest, "r2")):
        message = refused(fw("rm", str(record.key)))
        assert f"'{record.key}' is in the lineage of run(s) {runs}: remove those runs" in message
    assert ok(fw("rm", str(used.key), "--force")).strip() == str(used.key)
    assert [r.id for r in kept.versions("demo")] == [latest.id]


# --- prune ----------------------------------------------------------------------------------


def test_prune_by_age_keeps_what_a_kept_runs_lineage_needs(fw: Any, store_uri: str) -> None:
    kept = open_store(store_uri)
    iris = [version(kept, "iris", days) for days in (30, 20, 10, 1)]  # oldest first
    wine = [version(kept, "wine", days, "artifact") for days in (40, 2)]
    other = version(kept, "iris", 50, project="other")
    kept.put_run(run_document("r1", 1, consumed=[str(iris[0].key)]))
    kept.put_run(run_document("r2", 1, outputs={"m": str(wine[0].key)}, produced=["bad key"]))
    kept.put_run(run_document("r3", 1, project="other", inputs={"t": str(iris[0].key)}))

    dry = fw("prune", "--older-than", "7d", "--dry-run", "--project", "demo")
    assert lines(ok(dry)) == [
        ["would remove", str(iris[2].key), iris[2].created],
        ["would remove", str(iris[1].key), iris[1].created],
        ["kept", str(iris[0].key), "in the lineage of run(s) r1, r3"],
        ["kept", str(wine[0].key), "in the lineage of run(s) r2"],
    ]
    assert "store prune: would remove 2 version(s), kept 2 for the lineage of runs" in (
        dry.stderr.decode()
    )
    assert len(kept.versions()) == 7  # nothing removed

    ok(fw("prune", "--older-than", "7d", "--project", "demo"))
    remaining = {record.id for record in kept.versions()}
    assert remaining == {iris[0].id, iris[3].id, wine[0].id, wine[1].id, other.id}
    forced = lines(ok(fw("prune", "--older-than", "7d", "--project", "demo", "--force")))
    assert sorted(row[1] for row in forced) == sorted([str(iris[0].key), str(wine[0].key)])
    assert {record.id for record in kept.versions()} == {iris[3].id, wine[1].id, other.id}


def test_prune_keeps_the_newest_n_per_entity_and_filters(fw: Any, store_uri: str) -> None:
    kept = open_store(store_uri)
    iris = [version(kept, "iris", days) for days in (4, 3, 2, 1)]
    wine = [version(kept, "wine", days) for days in (4, 3, 2, 1)]
    model = [version(kept, "iris", days, "model") for days in (4, 3)]
    kept.put_run(run_document("r1", 1, inputs={"t": str(iris[0].key)}))

    ok(fw("prune", "--keep", "2", "--type", "dataitem", "--name", "iris", "--project", "demo"))
    assert [r.id for r in kept.versions("demo", "dataitem", "iris")] == [
        iris[3].id, iris[2].id, iris[0].id
    ]  # fmt: skip
    assert len(kept.versions("demo", "dataitem", "wine")) == 4  # other names untouched
    assert len(kept.versions("demo", "model")) == 2  # other types untouched

    # both rules keep: beyond the newest 1 *and* older than 2.5 days
    ok(fw("prune", "--keep", "1", "--older-than", "60h", "--project", "demo"))
    assert [r.id for r in kept.versions("demo", "dataitem", "wine")] == [wine[3].id, wine[2].id]
    assert [r.id for r in kept.versions("demo", "model")] == [model[1].id]


def test_prune_runs_by_age_and_count_keeping_running_ones(fw: Any, store_uri: str) -> None:
    kept = open_store(store_uri)
    for document in [
        run_document("a1", 30), run_document("a2", 20), run_document("a3", 1),
        run_document("b1", 25, function="score", state="ERROR"),
        run_document("s1", 40, state="RUNNING"),
        {**run_document("u1", 1), "started": None, "finished": "not a time"},
        run_document("o1", 30, project="other"),
    ]:  # fmt: skip
        kept.put_run(document)
    version(kept, "iris", 30)

    dry = lines(ok(fw("prune", "--runs", "--older-than", "7d", "--dry-run", "--project", "demo")))
    assert [row[:4] for row in dry] == [
        ["would remove", "a2", "train", "COMPLETED"],
        ["would remove", "b1", "score", "ERROR"],
        ["would remove", "a1", "train", "COMPLETED"],
        ["kept", "s1", "RUNNING (--force removes it)"],
    ]
    ok(fw("prune", "--runs", "--older-than", "7d", "--state", "error", "--project", "demo"))
    assert [d["id"] for d in kept.runs("demo")] == ["a3", "a2", "a1", "s1", "u1"]
    ok(fw("prune", "--runs", "--keep", "1", "--function", "train", "--project", "demo"))
    assert [d["id"] for d in kept.runs("demo")] == ["a3", "s1"]  # u1: no time, but beyond 1
    ok(fw("prune", "--runs", "--older-than", "2d", "--force", "--project", "demo"))
    assert [d["id"] for d in kept.runs("demo")] == ["a3"]
    assert [d["id"] for d in kept.runs("other")] == ["o1"]
    assert len(kept.versions()) == 1  # runs only


def test_prune_after_pruning_runs_frees_their_lineage(fw: Any, store_uri: str) -> None:
    kept = open_store(store_uri)
    old = version(kept, "iris", 30)
    new = version(kept, "iris", 1)
    kept.put_run(run_document("r1", 30, consumed=[str(old.key)], produced=[str(new.key)]))
    assert lines(ok(fw("prune", "--keep", "1", "--project", "demo")))[0][0] == "kept"
    ok(fw("prune", "--runs", "--older-than", "7d", "--project", "demo"))
    removed = lines(ok(fw("prune", "--keep", "1", "--project", "demo")))
    assert removed == [["removed", str(old.key), old.created]]
    assert [r.id for r in kept.versions()] == [new.id]
