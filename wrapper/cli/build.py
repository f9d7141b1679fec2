"""`fn-wrapper build`: a function spec → a build context → an image (DESIGN §8, §10), with
`kfp component build`'s options."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from wrapper.build.builders import BUILDERS
from wrapper.errors import SpecError
from wrapper.settings import SOURCE_OPTIONS, Option, Settings, json_object

OPTIONS = (
    Option(
        "--src",
        "the function's code (a file, folder, archive or URI): the same as --code-src",
        positional=True,
        metavar="SRC",
    ),
    *SOURCE_OPTIONS,
    Option("--target-image", "the image to build, e.g. registry.local/team/hello:1"),
    Option("--base-image", "the image to build on (default: the runtime's fn-wrapper base image)"),
    Option("--push-image", "push the image once built (default: no push)", switch=True),
    Option(
        "--build-image",
        "build the image (--no-build-image: the context only)",
        switch=True,
        default=True,
    ),
    Option(
        "--builder",
        "buildah (the default where installed), docker, kaniko (a Kubernetes Job to apply),"
        " or none (the context only)",
        choices=BUILDERS,
    ),
    Option(
        "--kaniko-context",
        "kaniko: where the Job reads context.tar.gz from (s3://, gs://, https://)",
        metavar="URI",
    ),
    Option("--registry-secret", "kaniko: the docker-config secret to push with", metavar="NAME"),
    Option(
        "--storage-secret",
        "kaniko: a secret whose keys become the Job's environment (e.g. AWS keys for s3://)",
        metavar="NAME",
    ),
    Option("--context-dir", "where the build context is written (default: a new temp folder)"),
    Option(
        "--component-filepattern",
        "Kubeflow Pipelines: the file (a name or glob under SRC, a local folder) with the"
        " @dsl.component function to build; its decorator gives base_image, target_image and"
        " packages_to_install where flags do not",
        metavar="PATTERN",
    ),
    Option(
        "--wheelhouse",
        "a folder of wheels to take requirements from (repeat the flag for more)",
        repeat=True,
        metavar="DIR",
    ),
    Option("--index", "fetch requirements from the package index too", switch=True, default=True),
    Option(
        "--inputs",
        "a run's inputs, recorded with the build (they do not change the image)",
        parse=json_object,
        metavar="JSON",
    ),
)


def run(settings: Settings) -> int:
    """Write the context, build (and push) the image; one JSON summary line on stdout."""
    from wrapper.build.builders import build_image, choose
    from wrapper.build.context import BuildPlan, ContextSettings, operator_allow_list, write_context
    from wrapper.config import source_settings
    from wrapper.spec.background import validate

    if settings.src and not any(settings.values.get(k) for k in ("code", "base64", "code_src")):
        settings.values["code_src"], settings.layers["code_src"] = settings.src, "flag"
    if settings.component_filepattern:
        _from_decorator(settings)
    builder = choose(settings.builder) if settings.build_image else "none"
    if builder != "none" and not settings.target_image:
        raise SpecError("--target-image: say which image to build (or --no-build-image)")
    if builder == "kaniko" and not settings.kaniko_context:
        raise SpecError("--kaniko-context: say where the Job will read context.tar.gz from")
    pending = validate(settings)
    try:
        document = pending.document()
    finally:
        pending.close()
    plan = BuildPlan.from_dump(document)
    context = Path(settings.context_dir or tempfile.mkdtemp(prefix="fn-wrapper-build-"))
    recipe = write_context(
        plan,
        context,
        ContextSettings(
            source_settings(settings, os.environ),
            tuple(Path(folder) for folder in settings.wheelhouse or ()),
            bool(settings.index),
            operator_allow_list(os.environ),
        ),
    )
    component = None
    if settings.target_image:  # as `kfp component build` writes its component metadata
        component = write_component(document, context, settings.target_image)
    if builder == "kaniko":
        render_kaniko(settings, plan.function.name, context)
    elif builder != "none":
        build_image(builder, context, settings.target_image, bool(settings.push_image))
    summary = {
        "context": str(context),
        "image": settings.target_image if builder != "none" else None,
        "base_image": recipe.base_image,
        "builder": builder,
        "pushed": bool(settings.push_image) and builder in ("buildah", "docker"),
        "component": str(component) if component else None,
        "inputs": document["run"]["inputs"],
        "parameters": document["run"]["parameters"],
    }
    print(json.dumps(summary, sort_keys=True), flush=True)
    return 0


def _from_decorator(settings: Settings) -> None:
    """The handler, and the target image, base image and requirements flags do not give,
    from the one `@dsl.component` function the pattern finds in SRC (a local folder)."""
    from wrapper.kfp.component import decorated_components

    pattern = settings.component_filepattern
    folder = Path(str(settings.values.get("code_src") or ""))
    if not folder.is_dir():
        raise SpecError(f"--component-filepattern {pattern}: needs SRC, a local folder")
    found = decorated_components(folder, pattern)
    if settings.handler:
        found = [d for d in found if d.handler == settings.handler] or found
    if len(found) != 1:
        names = ", ".join(d.handler for d in found) or "none"
        raise SpecError(
            f"--component-filepattern {pattern}: {len(found)} @dsl.component functions under"
            f" {folder} ({names}): name one with --handler or a narrower pattern"
        )
    options = found[0].options
    fills = {
        "name": found[0].function.replace("_", "-"),  # as kfp names its component
        "handler": found[0].handler,
        "target_image": options.get("target_image"),
        "base_image": options.get("base_image"),
        "requirements": list(options.get("packages_to_install") or []) or None,
    }
    for name, value in fills.items():
        if value is not None and settings.layers.get(name) == "default":
            settings.values[name], settings.layers[name] = value, "flag"


def write_component(document: dict[str, Any], context: Path, image: str) -> Path:
    """`component_metadata/<name>.yaml` in the context: the function's KFP component, running
    the job door in `image` with the code and run spec the image has."""
    from wrapper.cli.render import to_yaml
    from wrapper.kfp.component import component_spec

    component = component_spec(document, context / "function" / "code", None, image)
    path = context / "component_metadata" / f"{document['function']['name']}.yaml"
    path.parent.mkdir()
    path.write_text(to_yaml([component]))
    return path


def render_kaniko(settings: Settings, name: str, context: Path) -> None:
    """context.tar.gz and kaniko-job.yaml in the context folder, to upload and apply."""
    import yaml

    from wrapper.deploy.kaniko import job, pack

    manifest = job(
        name,
        settings.target_image,
        settings.kaniko_context,
        bool(settings.push_image),
        settings.registry_secret,
        settings.storage_secret,
    )
    pack(context)
    (context / "kaniko-job.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
