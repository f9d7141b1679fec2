"""DigitalHub's package names inside fn-wrapper's doors (DESIGN §5): user code loaded by the
loader gets fn-wrapper's `handler` and entity classes from `digitalhub_runtime_python` and
`digitalhub`, never the real packages; what they do not offer is an error saying what they do."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.digitalhub_fakes import NAMES, on_path, raising_packages
from wrapper import stand_ins
from wrapper.entities.objects import DataItem, Model
from wrapper.entities.run import Run
from wrapper.errors import InitError, LoadError
from wrapper.job.outputs import declared_outputs, handler
from wrapper.loader import load_code
from wrapper.sources import SourceTree

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("restore_imports")


def load(write_tree: Any, code: str) -> Any:
    root = write_tree({"main.py": code})
    return load_code(SourceTree(root, single_file="main.py"), "main:handler").handler


def test_a_digitalhub_function_gets_fn_wrappers_objects(write_tree: Any, tmp_path: Path) -> None:
    sys.path.insert(0, str(raising_packages(tmp_path / "fakes")))  # the real ones would raise
    code = """
        import digitalhub as dh
        import digitalhub_runtime_python
        from digitalhub.entities.dataitem.table.entity import DataitemTable
        from digitalhub.entities.model.sklearn.entity import ModelSklearn
        from digitalhub_runtime_python import handler
        from digitalhub_runtime_python.entities.run.python_job.entity import RunPythonRunJob

        @handler(outputs=["dataset", {"name": "model", "kind": "sklearn"}])
        def handler(di: DataitemTable, run: RunPythonRunJob):
            return di

        CLASSES = (DataitemTable, ModelSklearn, RunPythonRunJob, digitalhub_runtime_python.handler)
    """
    loaded = load(write_tree, code)
    assert (DataItem, Model, Run, handler) == sys.modules[loaded.__module__].CLASSES
    assert [d.name for d in declared_outputs(loaded)] == ["dataset", "model"]
    assert declared_outputs(loaded)[1].kind == "sklearn"


def test_a_real_package_imported_before_is_not_given_to_user_code(
    write_tree: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    finders = [f for f in sys.meta_path if type(f).__name__ != "_StandInFinder"]
    monkeypatch.setattr(sys, "meta_path", finders)  # as in a process that loaded no code yet
    real = tmp_path / "installed" / "digitalhub_runtime_python"
    real.mkdir(parents=True)
    (real / "__init__.py").write_text("REAL = True\ndef handler(outputs=None):\n    return None\n")
    sys.path.insert(0, str(real.parent))
    import digitalhub_runtime_python  # type: ignore[import-not-found]

    assert digitalhub_runtime_python.REAL
    loaded = load(write_tree, "from digitalhub_runtime_python import handler\n")
    assert sys.modules[loaded.__module__].handler is handler


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "from digitalhub import from_mlflow_run",
            "cannot import name 'from_mlflow_run' from 'digitalhub' (unknown location) "
            "(main.py line 1) (fn-wrapper stands in for digitalhub inside its doors: it offers "
            "the entity classes for type hints",
        ),
        (
            "import digitalhub.client",
            "imports 'digitalhub.client' (main.py line 1), which is not one of the modules it "
            "has (fn-wrapper stands in for digitalhub inside its doors",
        ),
        (
            "from digitalhub_runtime_python import collect_outputs",
            "(fn-wrapper stands in for digitalhub_runtime_python inside its doors: it offers "
            "`handler` (the outputs declaration) and the entity classes)",
        ),
    ],
)
def test_what_a_stand_in_lacks_is_an_error_saying_what_it_offers(
    write_tree: Any, code: str, message: str
) -> None:
    with pytest.raises(LoadError) as caught:
        load(write_tree, code + "\ndef handler():\n    return 1\n")
    assert message in caught.value.message
    assert "requirements" not in caught.value.message  # installing DigitalHub would not help


def test_a_module_function_of_the_sdk_says_to_use_the_project_argument() -> None:
    stand_ins.install()
    import digitalhub  # type: ignore[import-not-found]

    with pytest.raises(AttributeError) as caught:
        digitalhub.get_dataitem("x")
    assert "take the handler's `project` argument (or context.project)" in str(caught.value)


@pytest.mark.parametrize("name", NAMES)
def test_the_invoke_door_never_imports_the_real_packages(
    run_cli: Any, tmp_path: Path, name: str
) -> None:
    fakes = raising_packages(tmp_path / "fakes")
    (tmp_path / "f.py").write_text(
        f"import {name}\nfrom digitalhub_runtime_python import handler\n\n"
        "@handler(outputs=['x'])\ndef main(context, event):\n    return 'ok'\n"
    )
    result = run_cli(
        "invoke", "--code-src", str(tmp_path / "f.py"), "--handler", "main",
        env={"PYTHONPATH": on_path(fakes, ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"ok"


class _NoKfp:
    """Wraps the path finder so that it finds no installed kfp: kfp "not installed", where it
    is (kfp is a test extra from Python 3.10)."""

    def __init__(self, finder: Any) -> None:
        self.finder = finder

    def find_spec(self, fullname: str, *args: Any) -> Any:
        if fullname.partition(".")[0] == "kfp":
            return None
        return self.finder.find_spec(fullname, *args)


@pytest.fixture
def without_kfp(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n.partition(".")[0] == "kfp"]:
        monkeypatch.delitem(sys.modules, name)
    hidden = [_NoKfp(f) if getattr(f, "__name__", "") == "PathFinder" else f for f in sys.meta_path]
    monkeypatch.setattr(sys, "meta_path", hidden)


SEED_COMPONENT = """
    from kfp import dsl
    import kfp

    @dsl.component(base_image="python:3.11", packages_to_install=["six"])
    def add(a: int, b: int) -> int:
        return a + b

    @kfp.dsl.component
    def twice(n: int) -> int:
        return 2 * n
"""


@pytest.mark.usefixtures("without_kfp")
def test_without_kfp_a_component_module_gets_its_functions(write_tree: Any) -> None:
    root = write_tree({"comp.py": SEED_COMPONENT})
    add = load_code(SourceTree(root), "comp:add").handler
    assert add(2, 3) == 5
    assert load_code(SourceTree(root), "comp:twice").handler(4) == 8
    assert sys.modules["kfp"].__fn_wrapper_stand_in__


@pytest.mark.usefixtures("without_kfp")
def test_what_the_kfp_stand_in_lacks_is_an_error_saying_so(write_tree: Any) -> None:
    root = write_tree({"comp.py": "from kfp import dsl\n\n@dsl.pipeline\ndef p():\n    pass\n"})
    with pytest.raises(InitError, match=r"fn-wrapper stands in for its `dsl\.component`"):
        load_code(SourceTree(root), "comp:p")


@pytest.mark.filterwarnings("ignore::FutureWarning")  # kfp's, on a bare @dsl.component
def test_an_installed_kfp_comes_first(write_tree: Any) -> None:
    import importlib
    from importlib.machinery import PathFinder

    from tests.pipelines.conftest import require_kfp

    require_kfp()  # a skip on Python 3.9 only; elsewhere kfp is a test extra
    assert PathFinder.find_spec("kfp") is not None  # told apart from the stand-in
    stand_ins.install()
    kfp = importlib.import_module("kfp")
    root = write_tree({"comp.py": SEED_COMPONENT})
    load_code(SourceTree(root), "comp:add")
    assert not getattr(sys.modules["kfp"], "__fn_wrapper_stand_in__", False)
    assert sys.modules["kfp"] is kfp
