"""The Nuclio function configuration, validated against deploy/nuclio-function.schema.json
(written from Nuclio's documented function configuration; Nuclio publishes none)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.deploy.test_kubernetes import IMAGE, TASK_FIELDS, document
from wrapper.deploy.nuclio import entry_path, function_config
from wrapper.errors import SpecError
from wrapper.spec.document import validate_document

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
    assert spec["triggers"]["http"] == {"kind": "http", "numWorkers": 4}  # not the deprecated
    # maxWorkers (Nuclio 1.13, nuclio#3180)
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
    volume = mounts["/var/run/secrets/fn-wrapper/db-credentials"]
    assert volume["secret"] == {"secretName": "db-credentials"}
    assert re.fullmatch(r"secret-db-credentials-[0-9a-f]{8}", volume["name"])
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 3)
    assert spec["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert spec["handler"] == "main:handler"


def test_disk_mounts_a_sized_scratch_volume() -> None:
    """Nuclio's root filesystem is writable: the scratch volume comes only to be sized, with
    the doors' cache and data in it as on Kubernetes."""
    task = {"resources": {"cpu": "500m", "disk": "2Gi"}, "envs": [{"name": "A", "value": "b"}]}
    config = function_config(document("serve", **task), IMAGE)
    validate(config)
    spec = config["spec"]
    assert spec["volumes"][0] == {
        "volume": {"name": "scratch", "emptyDir": {"sizeLimit": "2Gi"}},
        "volumeMount": {"name": "scratch", "mountPath": "/tmp"},
    }
    assert spec["resources"] == {"requests": {"cpu": "500m"}, "limits": {"cpu": "500m"}}
    names = [item["name"] for item in spec["env"]]
    assert names[-3:] == ["XDG_CACHE_HOME", "XDG_DATA_HOME", "A"]  # the task's envs last
    plain = function_config(document("serve"), IMAGE)["spec"]
    assert "volumes" not in plain and "XDG_CACHE_HOME" not in str(plain["env"])


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
    assert volume["volume"]["name"] == volume["volumeMount"]["name"]
    assert re.fullmatch(r"secret-tls-example-com-[0-9a-f]{8}", volume["volume"]["name"])
    assert volume["volume"]["secret"] == {"secretName": "tls.example.com"}
    assert volume["volumeMount"]["mountPath"] == "/var/run/secrets/fn-wrapper/tls.example.com"


def test_long_secret_names_alike_at_the_start_stay_two_volumes() -> None:
    """Volume names are cut to fit a DNS label; a hash of the whole name keeps them apart."""
    common = "team-analytics-production-object-store-credentials"
    secrets = [f"{common}-eu-west", f"{common}-us-east", "a.b", "a-b"]
    config = function_config(document("serve", secrets=secrets), IMAGE)
    validate(config)
    names = [v["volume"]["name"] for v in config["spec"]["volumes"]]
    assert len(set(names)) == 4
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name) for name in names)
    assert [v["volumeMount"]["name"] for v in config["spec"]["volumes"]] == names


@pytest.mark.parametrize(
    ("code_src", "inline", "handler", "expected"),
    [
        ("src/app.py", True, "handler", "src.app:handler"),  # written at that path
        ("pkg/sub/app.py", True, "Model.predict", "pkg.sub.app:Model.predict"),
        (None, True, "handler", "main:handler"),  # inline code is main.py
        ("https://code.local/models/app.py", True, "handler", "app:handler"),
        ("https://code.local/models/app.py#sha256=" + "0" * 64, False, "handler", "app:handler"),
        ("git+https://git.local/repo.git#main", False, "handler", "main:handler"),
        ("app/predict.py", False, "handler", "predict:handler"),  # in the image, on its own
        ("src/app.py", True, "other:run", "other:run"),  # a module given stays as it is
    ],
)  # fmt: skip
def test_the_handler_names_the_module_the_wrapper_imports(
    code_src: str | None, inline: bool, handler: str, expected: str
) -> None:
    """The processor passes spec.handler as --handler, over the run spec's: it must import."""
    function = {"name": "hello", "python_version": "PYTHON3_11", "handler": handler}
    if code_src:
        function["code_src"] = code_src
    if inline:
        function["code"] = "def handler(context, event):\n    return 1\n"
    data = {"function": function, "task": {"action": "serve"}}
    config = function_config(validate_document(data).model_dump(mode="json"), IMAGE)
    assert config["spec"]["handler"] == expected


def test_the_handler_of_inline_code_at_a_path_imports(tmp_path: Path) -> None:
    """As the processor starts the wrapper: the run spec's source, with its --handler."""
    code = "def handler(context, event):\n    return 'from src/app.py'\n"
    data = {
        "function": {"name": "app", "python_version": "PYTHON3_11", "code_src": "src/app.py",
                     "code": code},
        "task": {"action": "serve"},
    }  # fmt: skip
    document = validate_document(data).model_dump(mode="json")
    handler = function_config(document, IMAGE)["spec"]["handler"]
    command = [sys.executable, "-m", "wrapper", "invoke", "--spec", json.dumps(data),
               "--handler", handler, "--cache-dir", str(tmp_path)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from src/app.py"


@pytest.mark.parametrize("version", ["PYTHON3_9", "PYTHON3_13"])
def test_a_python_nuclio_has_no_runtime_for_is_refused(version: str) -> None:
    """Nuclio documents python:3.10, 3.11 and 3.12 (and ships its wheels for those only)."""
    data = document("serve")
    data["function"]["python_version"] = version
    dotted = version.removeprefix("PYTHON").replace("_", ".")
    with pytest.raises(SpecError, match=rf"function\.python_version '{version}': Nuclio has no"
                       rf" python:{re.escape(dotted)} runtime"):  # fmt: skip
        function_config(data, IMAGE)


@pytest.mark.parametrize("version", ["PYTHON3_10", "PYTHON3_11", "PYTHON3_12"])
def test_the_runtimes_nuclio_has(version: str) -> None:
    data = document("serve")
    data["function"]["python_version"] = version
    config = function_config(data, IMAGE)
    validate(config)
    assert config["spec"]["runtime"] == "python:" + version[6:].replace("_", ".")


def test_the_schema_refuses_a_python_runtime_nuclio_lacks() -> None:
    config = function_config(document("serve"), IMAGE)
    config["spec"]["runtime"] = "python:3.9"
    with pytest.raises(jsonschema.ValidationError, match=r"python:3\.9"):
        validate(config)


def test_code_in_the_image_still_gets_the_runs_parameters() -> None:
    data = document("serve", code_src="app/predict.py")
    data["run"]["init_parameters"] = {"model": "/models/current"}
    env = {e["name"]: e["value"] for e in function_config(data, IMAGE)["spec"]["env"]}
    assert json.loads(env["FN_WRAPPER_PARAMETERS"]) == {"n": 1}
    assert json.loads(env["FN_WRAPPER_INIT_PARAMETERS"]) == {"model": "/models/current"}
