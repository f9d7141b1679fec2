"""The Kaniko build Job: rendered by `fn-wrapper build --builder kaniko` and validated offline
against the Kubernetes API schemas; credentials only as secret references."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from wrapper.deploy.kaniko import job
from wrapper.deploy.kubernetes import dns_label
from wrapper.errors import SpecError

KUBERNETES = "1.30"


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


@pytest.mark.parametrize("push", [True, False])
@pytest.mark.parametrize("secrets", [(None, None), ("registry-creds", "s3-creds")])
def test_the_job_validates_with_and_without_each_option(
    push: bool, secrets: tuple[str | None, str | None]
) -> None:
    manifest = job("Hello World", "reg.local/team/hello:1", "s3://ctx/hello.tar.gz", push, *secrets)
    validate(manifest)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == [
        "--context=s3://ctx/hello.tar.gz",
        "--dockerfile=Containerfile",
    ]
    assert container["args"][2] == ("--destination=reg.local/team/hello:1" if push else "--no-push")
    assert manifest["spec"]["backoffLimit"] == 0
    assert manifest["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert manifest["metadata"]["generateName"] == "build-hello-world-"
    assert ("volumeMounts" in container) == (secrets[0] is not None)
    assert ("envFrom" in container) == (secrets[1] is not None)


def test_a_context_kaniko_cannot_read_is_refused() -> None:
    with pytest.raises(SpecError, match=r"--kaniko-context '/tmp/ctx\.tar\.gz'"):
        job("f", "reg/f:1", "/tmp/ctx.tar.gz", True)


def test_names_become_label_values() -> None:
    assert dns_label("My_Function.v2") == "my-function-v2"
    assert dns_label("___") == "function"
    assert len(dns_label("x" * 100)) == 40


def test_the_cli_packs_the_context_and_renders_the_job(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def handler(context, event):\n    return 'hi'\n")
    result = subprocess.run(
        [sys.executable, "-m", "wrapper", "build", "main.py", "--builder", "kaniko",
         "--target-image", "reg.local/hello:1", "--push-image", "--context-dir", "ctx",
         "--kaniko-context", "s3://builds/hello.tar.gz", "--registry-secret", "regcred"],
        cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["builder"] == "kaniko"
    manifest = yaml.safe_load((tmp_path / "ctx" / "kaniko-job.yaml").read_text())
    validate(manifest)
    with tarfile.open(tmp_path / "ctx" / "context.tar.gz") as archive:
        names = sorted(archive.getnames())
    assert "Containerfile" in names and "function/code/main.py" in names
    assert "context.tar.gz" not in names and "kaniko-job.yaml" not in names
    text = (tmp_path / "ctx" / "kaniko-job.yaml").read_text()
    assert "regcred" in text and "password" not in text.lower()


def test_kaniko_needs_the_context_uri_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def handler(context, event):\n    return 'hi'\n")
    result = subprocess.run(
        [sys.executable, "-m", "wrapper", "build", "main.py", "--builder", "kaniko",
         "--target-image", "reg.local/hello:1", "--context-dir", "ctx"],
        cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert b"--kaniko-context: say where" in result.stderr
    assert not (tmp_path / "ctx").exists()
