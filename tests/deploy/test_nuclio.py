"""The Nuclio function configuration, validated against deploy/nuclio-function.schema.json
(written from Nuclio's documented function configuration; Nuclio publishes none)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import pytest

from tests.deploy.test_kubernetes import IMAGE, TASK_FIELDS, document
from wrapper.deploy.nuclio import entry_path, function_config
from wrapper.errors import SpecError

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "deploy" / "nuclio-function.schema.json").read_text()
)


def validate(config: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(config)


@pytest.mark.parametrize("field", sorted(TASK_FIELDS))
def test_the_function_config_validates_for_each_task_field(field: str) -> None:
    config = function_config(document("serve", **TASK_FIELDS[field]), IMAGE, workers=4)
    validate(config)
    spec = config["spec"]
    assert spec["runtime"] == "python:3.11" and "image" not in spec
    assert spec["triggers"]["http"] == {"kind": "http", "maxWorkers": 4}
    env = {item["name"]: item["value"] for item in spec["env"]}
    assert env["NUCLIO_PYTHON_WRAPPER_PATH"] == entry_path("PYTHON3_11")
    assert json.loads(env["FN_WRAPPER_SPEC"])["run"]["parameters"] == {"n": 1}


def test_nuclio_builds_the_processor_image_on_ours() -> None:
    """spec.image would name a pre-built processor image (ours has no processor): Nuclio
    builds one from build.baseImage and a source file instead."""
    spec = function_config(document("serve"), IMAGE)["spec"]
    assert "image" not in spec
    assert spec["build"]["baseImage"] == IMAGE
    assert spec["build"]["codeEntryType"] == "sourceCode"
    stub = base64.b64decode(spec["build"]["functionSourceCode"]).decode()
    compile(stub, "main.py", "exec")  # a Python file Nuclio's build can copy in
    config = function_config(document("serve"), IMAGE)
    del config["spec"]["build"]
    with pytest.raises(jsonschema.ValidationError):
        validate(config)  # neither an image nor a build: nothing Nuclio could run


def test_task_fields_in_nuclios_shapes() -> None:
    task = {**TASK_FIELDS["secrets"], **TASK_FIELDS["service"], **TASK_FIELDS["resources"]}
    spec = function_config(document("serve", **task), IMAGE)["spec"]
    mounts = {v["volumeMount"]["mountPath"]: v["volume"] for v in spec["volumes"]}
    assert mounts["/var/run/secrets/fn-wrapper/db-credentials"] == {
        "name": "secret-db-credentials", "secret": {"secretName": "db-credentials"},
    }  # fmt: skip
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 3)
    assert spec["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["handler"] == "main:handler"


def test_code_in_the_image_keeps_the_images_own_spec() -> None:
    spec = function_config(document("serve", code_src="app/predict.py"), IMAGE)["spec"]
    assert "FN_WRAPPER_SPEC" not in {item["name"] for item in spec["env"]}
    assert spec["handler"] == "predict:handler"


def test_only_serve_runs_on_nuclio() -> None:
    with pytest.raises(SpecError, match=r"--target nuclio: task\.action 'job'"):
        function_config(document("job"), IMAGE)


def test_the_schema_catches_a_misspelt_field() -> None:
    config = function_config(document("serve"), IMAGE)
    config["spec"]["minReplica"] = 2
    with pytest.raises(jsonschema.ValidationError, match="minReplica"):
        validate(config)
    config["spec"].pop("minReplica")
    config["spec"]["resources"] = {"limits": {"cpu": "lots"}}
    with pytest.raises(jsonschema.ValidationError, match="lots"):
        validate(config)


def test_replicas_scale_between_the_tasks_and_max_replicas() -> None:
    spec = function_config(document("serve", replicas=2), IMAGE, autoscale=(6, 60))["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"], spec["targetCPU"]) == (2, 6, 60)
    spec = function_config(document("serve"), IMAGE)["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 1)
    with pytest.raises(SpecError, match=r"--max-replicas 1: below task\.replicas"):
        function_config(document("serve", replicas=2), IMAGE, autoscale=(1, 60))


def test_secret_volumes_have_valid_names() -> None:
    config = function_config(document("serve", secrets=["tls.example.com"]), IMAGE)
    validate(config)
    (volume,) = config["spec"]["volumes"]
    assert volume["volume"]["name"] == volume["volumeMount"]["name"] == "secret-tls-example-com"
    assert volume["volume"]["secret"] == {"secretName": "tls.example.com"}
    assert volume["volumeMount"]["mountPath"] == "/var/run/secrets/fn-wrapper/tls.example.com"
