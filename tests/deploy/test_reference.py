"""The reference manifests under deploy/ are what `fn-wrapper render` makes of
deploy/reference-run.yaml today; no secret value from the renderer's environment gets in."""

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

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.example/fn-wrapper-base:0.1.0-python3.11"
RENDERS = {
    "kubernetes/serve": ["--action", "serve", "--max-replicas", "5"],
    "kubernetes/job": ["--action", "job"],
    "nuclio": ["--target", "nuclio", "--workers", "4"],
}


def render(folder: Path, args: list[str], env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "wrapper", "render", "--spec",
               str(ROOT / "deploy" / "reference-run.yaml"), "--image", IMAGE,
               "--output", str(folder), *args]  # fmt: skip
    result = subprocess.run(command, capture_output=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.parametrize("target", sorted(RENDERS))
def test_the_reference_manifests_are_current_and_valid(target: str, tmp_path: Path) -> None:
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-123",
        "FN_WRAPPER_GIT_TOKEN": "git-token-value-456",
        "GITHUB_TOKEN": "github-token-value-789",
    }
    render(tmp_path, RENDERS[target], {**os.environ, **secrets})
    kept = ROOT / "deploy" / target
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept.iterdir())
    for path in tmp_path.iterdir():
        text = path.read_text()
        assert text == (kept / path.name).read_text(), (
            f"deploy/{target}/{path.name} is stale: render it again (deploy/reference-run.yaml)"
        )
        assert not any(value in text for value in secrets.values())
        manifest = yaml.safe_load(text)
        if manifest["kind"] == "NuclioFunction":
            jsonschema.Draft202012Validator(SCHEMA).validate(manifest)
        else:
            kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
        if "model-registry-credentials" in text:  # a secret only ever by its name
            assert "secretRef" in text or "secretName" in text
