"""`fn-wrapper render`: deploy manifests from a run spec (DESIGN §9, §10): Kubernetes
manifests, a Nuclio function configuration, or a Kubeflow Pipelines component."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from wrapper.errors import SpecError
from wrapper.settings import SOURCE_OPTIONS, Option, Settings, count, json_object

OPTIONS = (
    *SOURCE_OPTIONS,
    Option(
        "--target",
        "kubernetes (Deployment + Service, or a Job), nuclio (a function.yaml, serve only) or"
        " kfp (a Kubeflow Pipelines component running the job door)",
        choices=("kubernetes", "nuclio", "kfp"),
        default="kubernetes",
        twin=False,
    ),
    Option("--workers", "nuclio: the HTTP trigger's workers (numWorkers)", count, default=1),
    Option(
        "--max-replicas",
        "serve: autoscale up to this many replicas (kubernetes: a HorizontalPodAutoscaler;"
        " nuclio: maxReplicas)",
        count,
    ),
    Option("--target-cpu", "with --max-replicas: the CPU use to keep (%)", count, default=75),
    Option(
        "--profiles",
        "the operator's folder of task profiles (task.profile names one)",
        metavar="DIR",
    ),
    Option(
        "--image",
        "the image the manifests run (default: the spec's function.image, else the runtime's"
        " fn-wrapper base image)",
    ),
    Option(
        "--action",
        "serve or job (default: the spec's task.action)",
        choices=("serve", "job"),
        twin=False,
    ),
    Option(
        "--inputs", "the run's inputs, merged over the spec's", parse=json_object, metavar="JSON"
    ),
    Option(
        "--output", "write one file per manifest into this folder (default: stdout)", twin=False
    ),
)


def run(settings: Settings) -> int:
    """Validate the spec, render, print the manifests as YAML documents (or write files)."""
    from wrapper.build.runtimes import runtime
    from wrapper.deploy.kubernetes import in_image, manifests
    from wrapper.deploy.profiles import apply_profile
    from wrapper.spec.background import validate

    pending = validate(settings)
    try:
        document = pending.document()
    finally:
        pending.close()
    section = document.get("nuclio")
    if settings.action:
        document["task"]["action"] = settings.action
    elif section is not None:
        document["task"]["action"] = "serve"  # a Nuclio function is served
    profiles = Path(settings.profiles) if settings.profiles else None
    document["task"] = apply_profile(document["task"], profiles)
    function = document["function"]
    image = settings.image or function.get("image")
    nuclio_builds = settings.target == "nuclio" and image is None  # on the base image
    if image is None and in_image(function["source"]) and not (nuclio_builds and section):
        raise SpecError(
            f"function.source.code_src {function['source']['code_src']!r}: a local path is not"
            " in the base image: build an image with `fn-wrapper build` and pass it (--image or"
            " function.image), or give code, base64 or a remote code_src"
        )
    if image is None and function["requirements"] and not nuclio_builds:
        raise SpecError(
            f"function.requirements {function['requirements']!r}: the base image does not have"
            " them (only `fn-wrapper build` installs requirements): build an image with"
            " `fn-wrapper build` and pass it (--image or function.image), or render for Nuclio"
            " (--target nuclio), whose build installs them"
        )
    given_image = image is not None
    image = image or runtime(function["python_version"]).base_image
    workers = _setting(settings, section, "workers")
    target_cpu = _setting(settings, section, "target_cpu")
    maximum = _setting(settings, section, "max_replicas")
    least = document["task"].get("replicas") or 1
    asked = {settings.layers[name] for name in ("max_replicas", "target_cpu")} != {"default"}
    targeted = bool(section and section.get("target_cpu"))
    scale = None
    if maximum is not None and (maximum > least or asked or targeted):
        scale = (maximum, target_cpu)
    if settings.target == "kfp":
        rendered = [_component(settings, document, image)]
    elif settings.target == "nuclio":
        from wrapper.deploy.nuclio import function_config

        rendered = [function_config(document, image, workers, scale, given_image)]
    else:
        rendered = manifests(document, image, scale)
    if not settings.output:
        print(to_yaml(rendered), end="")
        return 0
    folder = Path(settings.output)
    folder.mkdir(parents=True, exist_ok=True)
    for manifest in rendered:
        kinds = {"NuclioFunction": "function", None: "component"}
        kind = kinds.get(manifest.get("kind")) or manifest["kind"].lower()
        path = folder / f"{kind}.yaml"
        path.write_text(to_yaml([manifest]))
        print(path)
    return 0


def _component(settings: Settings, document: dict[str, Any], image: str) -> dict[str, Any]:
    """The KFP component: the source is fetched (never run) to read the handler's signature;
    code the image lacks comes with the run spec, as an argument of the command."""
    import os

    from wrapper.config import source_settings
    from wrapper.deploy.kubernetes import Workload
    from wrapper.kfp.component import component_spec
    from wrapper.plan import FunctionPlan
    from wrapper.sources import materialise_source

    tree = materialise_source(
        FunctionPlan.from_dump(document), source_settings(settings, os.environ)
    )
    component = component_spec(document, tree.root, tree.single_file, image)
    spec = Workload(document, image).spec
    if spec is not None:
        container = component["implementation"]["container"]
        container["command"] += ["--spec", json.dumps(spec, sort_keys=True)]
    return component


def _setting(settings: Settings, section: Optional[dict[str, Any]], name: str) -> Any:
    """A setting: its flag or twin, else what the document's Nuclio config gave (`section`),
    else its default."""
    from_config = (section or {}).get(name)
    if settings.layers.get(name) == "default" and from_config is not None:
        return from_config
    return settings.values[name]


def to_yaml(documents: list[dict[str, Any]]) -> str:
    """YAML for people: no anchors, multi-line strings as literal blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return str(yaml.dump_all(documents, Dumper=Dumper, sort_keys=False))
