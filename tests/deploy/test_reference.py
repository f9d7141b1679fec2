"""The reference manifests under deploy/ are what `fn-wrapper render` (and the Kaniko build Job
of `fn-wrapper build --builder kaniko`) make of deploy/reference-run.yaml today, and valid; no
credential given to the renderer reaches its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.test_kubernetes import KUBERNETES
from tests.deploy.test_nuclio import SCHEMA
from wrapper.deploy.kaniko import job

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "deploy" / "reference-run.yaml"
IMAGE = "registry.example/fn-wrapper-base:0.1.0-python3.11"
RENDERS = {
    "kubernetes/serve": ["--action", "serve", "--max-replicas", "5"],
    "kubernetes/job": ["--action", "job"],
    "nuclio": ["--target", "nuclio", "--workers", "4", "--max-replicas", "5"],
}
KANIKO = ("predict", "registry.example/models/predict:1", "s3://builds/predict/context.tar.gz")
TOKEN = "ghp_Zx9TOKENnever-in-output"


def render(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "wrapper", "render", "--image", IMAGE, *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def validate(manifest: dict) -> None:
    if manifest["kind"] == "NuclioFunction":
        jsonschema.Draft202012Validator(SCHEMA).validate(manifest)
    else:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


@pytest.mark.parametrize("target", sorted(RENDERS))
def test_the_reference_manifests_are_current_and_valid(target: str, tmp_path: Path) -> None:
    result = render(["--spec", str(REFERENCE), "--output", str(tmp_path), *RENDERS[target]])
    assert result.returncode == 0, result.stderr
    kept = ROOT / "deploy" / target
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept.iterdir())
    for path in tmp_path.iterdir():
        text = path.read_text()
        assert text == (kept / path.name).read_text(), (
            f"deploy/{target}/{path.name} is stale: render it again (deploy/reference-run.yaml)"
        )
        validate(yaml.safe_load(text))
        if "model-registry-credentials" in text:  # a secret only ever by its name
            assert "secretRef" in text or "secretName" in text


def test_the_reference_kaniko_job_is_current_and_valid() -> None:
    """As `fn-wrapper build --builder kaniko --push-image --registry-secret registry-credentials
    --storage-secret build-context-credentials` writes it (kaniko-job.yaml)."""
    manifest = job(*KANIKO, push=True, registry_secret="registry-credentials",
                   storage_secret="build-context-credentials")  # fmt: skip
    kept = ROOT / "deploy" / "kubernetes" / "build" / "kaniko-job.yaml"
    assert yaml.safe_dump(manifest, sort_keys=False) == kept.read_text(), f"{kept} is stale"
    validate(manifest)


LEAKS = {
    "code_src in the spec": ({"code_src": f"git+https://ada:{TOKEN}@git.example/m.git#main"}, []),
    "a token as the URL's user": ({"code_src": f"https://{TOKEN}@code.example/p.py"}, []),
    "--code-src": ({}, ["--code-src", f"https://ada:{TOKEN}@code.example/p.py"]),
    "FN_WRAPPER_CODE_SRC": ({}, []),
    "a requirement": ({"requirements": [f"m @ git+https://ada:{TOKEN}@git.example/m.git"]}, []),
    "a profile": ({}, ["--profiles"]),
}


@pytest.mark.parametrize("target", ["kubernetes", "nuclio"])
@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_credentials_never_reach_the_output(tmp_path: Path, target: str, leak: str) -> None:
    """A URL with credentials is refused (not stripped: the code could not be fetched without
    them); a profile cannot carry a secret's value. The token is in neither output stream."""
    function, args = LEAKS[leak]
    document = yaml.safe_load(REFERENCE.read_text())
    document["function"].update(function)
    env = dict(os.environ)
    if leak == "FN_WRAPPER_CODE_SRC":
        env[leak] = f"s3://ada:{TOKEN}@bucket/p.py"
    if args == ["--profiles"]:
        profile = {"secrets": ["model-registry-credentials"], "password": TOKEN}
        (tmp_path / "team.yaml").write_text(yaml.safe_dump(profile))
        document["task"]["profile"] = "team"
        args = ["--profiles", str(tmp_path)]
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump(document))
    result = render(["--spec", str(spec), "--target", target, *args], env)
    assert result.returncode == 2, result.stdout
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    assert "Traceback" not in result.stderr
