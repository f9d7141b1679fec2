"""The loader: every handler form, packages, init discovery and each classified load error."""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

from wrapper import loader
from wrapper.errors import (
    HandlerModuleNotFound,
    HandlerNotFound,
    InitError,
    LoadError,
    ShadowingError,
    SpecError,
    UserCodeSyntaxError,
)
from wrapper.loader import HandlerRef, load_code, load_module_handler
from wrapper.signature import parameters
from wrapper.sources import SourceTree

pytestmark = pytest.mark.usefixtures("restore_imports")


GREET = "def handler(context, event):\n    return 'hi from ' + __name__\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("handler", HandlerRef("handler", attr="handler")),
        ("main:handler", HandlerRef("main:handler", attr="handler", module="main")),
        ("pkg.mod:run", HandlerRef("pkg.mod:run", attr="run", module="pkg.mod")),
        ("my-func:handler", HandlerRef("my-func:handler", attr="handler", module="my-func")),
        ("pkg.my-mod:run", HandlerRef("pkg.my-mod:run", attr="run", module="pkg.my-mod")),
        ("src/func.py:run", HandlerRef("src/func.py:run", attr="run", file="src/func.py")),
        (
            "model:Model.predict",
            HandlerRef("model:Model.predict", attr="Model.predict", module="model"),
        ),
    ],
)
def test_handler_grammar(text: str, expected: HandlerRef) -> None:
    assert HandlerRef.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("main.handler", "write module:function"),
        ("/abs/x.py:f", "must be a relative path to a .py file"),
        ("../up.py:f", "must be a relative path to a .py file"),
        ("main:1bad", "'1bad' in 'main:1bad' is not a name"),
        ("-mod:f", "'-mod' is not a module name"),
        ("a..b:f", "'a..b' is not a module name"),
        ("my mod:f", "'my mod' is not a module name"),
        ("..\\up:f", "is not a module name"),
        ("", "is not a valid reference"),
    ],
)
def test_malformed_references_name_the_field(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=r"^handler: ") as caught:
        HandlerRef.parse(text)
    assert message in caught.value.message


def test_bare_handler_uses_the_one_file_source(write_tree) -> None:
    root = write_tree({"func.py": GREET, "other.py": "def handler(c, e): return 'wrong'\n"})
    loaded = load_code(SourceTree(root, single_file="func.py"), "handler")
    assert loaded.handler(None, None) == "hi from func"


def test_bare_handler_uses_main_py_of_a_folder(write_tree) -> None:
    root = write_tree({"main.py": GREET, "helpers.py": "X = 1\n"})
    assert load_code(SourceTree(root), "handler").handler(None, None) == "hi from main"


def test_bare_handler_uses_the_only_module_of_a_folder(write_tree) -> None:
    root = write_tree({"only.py": GREET})
    assert load_code(SourceTree(root), "handler").handler(None, None) == "hi from only"


def test_bare_handler_without_main_lists_modules(write_tree) -> None:
    root = write_tree({"a.py": GREET, "b.py": GREET})
    with pytest.raises(
        HandlerModuleNotFound, match=r"\(modules found: a, b\); write module:function"
    ):
        load_code(SourceTree(root), "handler")


def test_module_and_dotted_module_forms(write_tree) -> None:
    root = write_tree({"app.py": GREET, "pkg/__init__.py": "", "pkg/mod.py": GREET})
    assert load_code(SourceTree(root), "app:handler").handler(None, None) == "hi from app"
    assert load_code(SourceTree(root), "pkg.mod:handler").handler(None, None) == "hi from pkg.mod"


def test_a_hyphenated_module_name_is_imported_as_nuclio_does(write_tree) -> None:
    root = write_tree({"my-func.py": GREET})
    assert load_code(SourceTree(root), "my-func:handler").handler(None, None) == "hi from my-func"


PACKAGE = {
    "src/shop/__init__.py": "",
    "src/shop/prices.py": "def price(n):\n    return n * 2\n",
    "src/shop/api.py": """
        from .prices import price
        from . import prices

        def handler(context, event):
            return price(event) + prices.price(1)
        """,
}


def test_package_with_relative_imports_by_file_path(write_tree) -> None:
    root = write_tree(PACKAGE)
    loaded = load_code(SourceTree(root), "src/shop/api.py:handler")
    assert loaded.handler(None, 20) == 42
    assert loaded.module is not None and loaded.module.__name__ == "shop.api"
    assert str(root / "src") in sys.path


def test_package_with_relative_imports_by_module_name(write_tree) -> None:
    root = write_tree({k.removeprefix("src/"): v for k, v in PACKAGE.items()})
    assert load_code(SourceTree(root), "shop.api:handler").handler(None, 1) == 4


NAMESPACED = {  # a KFP component's layout: relative imports, no __init__.py, a stdlib name
    "src/math.py": "def add_numbers(num1, num2):\n    return num1 + num2\n",
    "src/my_component.py": """
        from .math import add_numbers

        def add(a: int, b: int) -> int:
            return add_numbers(a, b)
        """,
}


def test_relative_imports_without_init_py_load_from_a_namespace_package(
    write_tree, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree(NAMESPACED)
    caplog.set_level(logging.WARNING, logger="wrapper.loader")
    loaded = load_code(SourceTree(root), "src/my_component.py:add")
    assert loaded.handler(2, 3) == 5
    assert loaded.module is not None and loaded.module.__name__ == "src.my_component"
    assert str(root / "src") not in sys.path and str(root) in sys.path
    assert not [r for r in caplog.records if "shadows" in r.getMessage()]
    monkeypatch.delitem(sys.modules, "math")  # imported afresh: src/math.py must not be found
    assert importlib.import_module("math").pi == pytest.approx(3.14159, abs=1e-5)


def test_the_source_folder_itself_is_the_package_of_a_top_level_relative_import(
    write_tree, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fn-wrapper build src/`: the source is src/ itself, my_component.py at its top."""
    root = write_tree(NAMESPACED) / "src"
    caplog.set_level(logging.WARNING, logger="wrapper.loader")
    loaded = load_code(SourceTree(root), "my_component.py:add")
    assert loaded.handler(2, 3) == 5
    assert loaded.module is not None and loaded.module.__name__ == "src.my_component"
    assert str(root) not in sys.path
    assert not [r for r in caplog.records if "shadows" in r.getMessage()]
    monkeypatch.delitem(sys.modules, "math")
    assert importlib.import_module("math").pi == pytest.approx(3.14159, abs=1e-5)
    other = write_tree({"src/math.py": "def add_numbers(x, y):\n    return x - y\n",
                        "src/my_component.py": NAMESPACED["src/my_component.py"]})  # fmt: skip
    assert load_code(SourceTree(other / "src"), "my_component.py:add").handler(2, 3) == -1


def test_a_taken_folder_name_becomes_a_private_package(write_tree) -> None:
    root = write_tree({"json/my_component.py": NAMESPACED["src/my_component.py"],
                       "json/math.py": NAMESPACED["src/math.py"]})  # fmt: skip
    loaded = load_code(SourceTree(root / "json"), "my_component.py:add")
    assert loaded.module is not None
    assert loaded.module.__name__ == "fn_wrapper_source.my_component"
    assert loaded.handler(2, 3) == 5 and sys.modules["json"].__name__ == "json"


@pytest.mark.parametrize("package", [{}, {"src/__init__.py": ""}], ids=["namespace", "package"])
def test_a_second_source_after_a_namespace_package_gets_its_own(
    write_tree, package: dict[str, str]
) -> None:
    first = write_tree(NAMESPACED)
    second = write_tree(
        {**NAMESPACED, **package, "src/math.py": "def add_numbers(x, y):\n    return x * y\n"}
    )
    add = load_code(SourceTree(first), "src/my_component.py:add").handler
    multiply = load_code(SourceTree(second), "src/my_component.py:add").handler
    assert (add(2, 3), multiply(2, 3)) == (5, 6)


def test_a_file_without_relative_imports_is_imported_from_its_folder(write_tree) -> None:
    root = write_tree({"src/func.py": GREET})
    loaded = load_code(SourceTree(root), "src/func.py:handler")
    assert loaded.handler(None, None) == "hi from func"
    assert str(root / "src") in sys.path


class PythonComponent:
    """A stand-in for what kfp's `@dsl.component` returns, so the loader's rule is tested where
    kfp cannot be installed (3.9); tests/pipelines/test_seed.py runs the real SDK."""

    __module__ = "kfp.dsl.python_component"

    def __init__(self, python_func: Callable[..., Any]) -> None:
        self.python_func = python_func

    def __call__(self, **kwargs: Any) -> Any:
        raise AssertionError("a component called as such makes a pipeline task")


def test_a_kfp_component_resolves_to_its_python_func(monkeypatch: pytest.MonkeyPatch) -> None:
    def add(a: int, b: int) -> int:
        return a + b

    module = ModuleType("components")
    module.add = PythonComponent(add)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "components", module)
    loaded = load_module_handler("components:add")
    assert loaded.handler is add and loaded.handler(2, 3) == 5
    assert [p.name for p in parameters(loaded.handler, "handler")] == ["a", "b"]


def test_class_method_handler_shares_one_instance_with_init(write_tree) -> None:
    root = write_tree(
        {
            "model.py": """
                class Model:
                    created = 0

                    def __init__(self):
                        Model.created += 1
                        self.weights = None

                    def load(self, context, weights=1):
                        self.weights = weights

                    def predict(self, context, event):
                        return event * self.weights
                """
        }
    )
    loaded = load_code(SourceTree(root), "model:Model.predict", "Model.load")
    assert loaded.init is not None
    loaded.init(None, weights=3)
    assert loaded.handler(None, 5) == 15
    assert loaded.module is not None and loaded.module.Model.created == 1


def test_init_context_is_found_when_no_init_function_is_named(write_tree) -> None:
    root = write_tree({"main.py": GREET + "def init_context(context):\n    pass\n"})
    loaded = load_code(SourceTree(root), "handler")
    assert loaded.init_name == "init_context"
    assert load_code(SourceTree(root), "handler", "handler").init_name == "handler"


def test_init_function_in_another_module(write_tree) -> None:
    root = write_tree({"main.py": GREET, "setup.py": "def init(context):\n    return 'set'\n"})
    loaded = load_code(SourceTree(root), "main:handler", "setup:init")
    assert loaded.init is not None and loaded.init(None) == "set"


def test_two_sources_with_the_same_module_name_each_get_their_own(write_tree) -> None:
    first = write_tree({"main.py": "def handler(c, e):\n    return 1\n"})
    second = write_tree({"main.py": "def handler(c, e):\n    return 2\n"})
    assert load_code(SourceTree(first), "main:handler").handler(None, None) == 1
    assert load_code(SourceTree(second), "main:handler").handler(None, None) == 2


def test_missing_module_lists_what_the_source_has(write_tree) -> None:
    root = write_tree({"main.py": GREET, "pkg/__init__.py": ""})
    with pytest.raises(HandlerModuleNotFound) as caught:
        load_code(SourceTree(root), "mian:handler")
    assert caught.value.message == "no module named 'mian' (modules found: main, pkg)"
    assert caught.value.exit_code == 3


def test_missing_file_is_named(write_tree) -> None:
    root = write_tree({"main.py": GREET})
    with pytest.raises(HandlerModuleNotFound, match=r"no file 'src/x.py' in the source"):
        load_code(SourceTree(root), "src/x.py:handler")


def test_syntax_error_names_file_and_line(write_tree) -> None:
    root = write_tree({"pkg/__init__.py": "", "pkg/bad.py": "x = 1\n\ndef handler(:\n    pass\n"})
    with pytest.raises(UserCodeSyntaxError) as caught:
        load_code(SourceTree(root), "pkg.bad:handler")
    message = caught.value.message
    assert message.startswith("syntax error in pkg/bad.py line 3: ")
    assert message.endswith("def handler(:")


def test_handler_not_found_lists_callables_and_suggests(write_tree) -> None:
    root = write_tree(
        {"main.py": "import os\nVALUE = 1\ndef handle(c, e): pass\nclass Tool: pass\n"}
    )
    with pytest.raises(HandlerNotFound) as caught:
        load_code(SourceTree(root), "main:handler")
    assert caught.value.message == (
        "handler: module 'main' has no 'handler'; did you mean 'handle'? "
        "the module defines: Tool, handle"
    )


def test_handler_that_is_not_callable(write_tree) -> None:
    root = write_tree({"main.py": "handler = 42\n"})
    with pytest.raises(
        HandlerNotFound, match="'handler' in module 'main' is a int, not a function"
    ):
        load_code(SourceTree(root), "main:handler")


def test_method_of_something_that_is_not_a_class(write_tree) -> None:
    root = write_tree({"main.py": GREET})
    with pytest.raises(HandlerNotFound, match="'handler' in module 'main' is not a class"):
        load_code(SourceTree(root), "main:handler.run")


def test_missing_method_lists_the_class_methods(write_tree) -> None:
    root = write_tree({"main.py": "class M:\n    def predict(self, c, e): pass\n"})
    with pytest.raises(
        HandlerNotFound, match="class 'M' has no method 'run'; its methods: predict"
    ):
        load_code(SourceTree(root), "main:M.run")


def test_class_that_needs_arguments_is_an_init_error(write_tree) -> None:
    root = write_tree(
        {"main.py": "class M:\n    def __init__(self, path): pass\n    def run(self): pass\n"}
    )
    with pytest.raises(
        InitError, match="class 'M' could not be created with no arguments: TypeError"
    ):
        load_code(SourceTree(root), "main:M.run")


def test_missing_dependency_is_named_with_its_line(write_tree) -> None:
    root = write_tree({"main.py": "import os\nimport not_installed_pkg_xyz\n" + GREET})
    with pytest.raises(LoadError) as caught:
        load_code(SourceTree(root), "main:handler")
    assert caught.value.message == (
        "module 'main' imports 'not_installed_pkg_xyz' (main.py line 2), which is not installed: "
        "add it to the function's requirements"
    )


def test_module_level_exception_is_an_init_error_with_user_traceback(write_tree) -> None:
    root = write_tree({"main.py": "def boom():\n    raise RuntimeError('no config')\n\nboom()\n"})
    with pytest.raises(InitError) as caught:
        load_code(SourceTree(root), "main:handler")
    assert caught.value.message == (
        "importing module 'main' raised RuntimeError: no config (main.py line 2)"
    )
    assert caught.value.exit_code == 4
    details = caught.value.details or ""
    assert details.startswith("Traceback (user code):")
    assert "boom()" in details and "wrapper/loader.py" not in details


@pytest.mark.parametrize("shadow", ["wrapper.py", "wrapper/__init__.py"])
def test_user_module_shadowing_the_runtime_is_refused(write_tree, shadow: str) -> None:
    root = write_tree({"main.py": GREET, shadow: "X = 1\n"})
    with pytest.raises(ShadowingError, match=r"would hide the runtime's own 'wrapper' package"):
        load_code(SourceTree(root), "main:handler")
    assert str(root) not in sys.path


def test_stdlib_shadow_is_a_warning_naming_both(
    write_tree, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_tree(
        {
            "src/main.py": "from math import double\ndef handler(c, e): return double(2)\n",
            "src/math.py": "def double(x):\n    return 2 * x\n",
        }
    )
    caplog.set_level(logging.WARNING, logger="wrapper.loader")
    with pytest.raises(LoadError, match=r"module 'main' could not be imported: cannot import name"):
        load_code(SourceTree(root), "src/main.py:handler")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{root / 'src' / 'math.py'} shadows the standard-library module 'math' when imported "
        "as a top-level module: rename it or import it relatively from a package"
    ]


def test_stdlib_shadow_inside_a_package_is_harmless(
    write_tree, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_tree(
        {
            "app/__init__.py": "",
            "app/math.py": "def double(x):\n    return 2 * x\n",
            "app/main.py": "from .math import double\ndef handler(c, e): return double(21)\n",
        }
    )
    caplog.set_level(logging.WARNING, logger="wrapper.loader")
    assert load_code(SourceTree(root), "app.main:handler").handler(None, None) == 42
    assert not [r for r in caplog.records if "shadows" in r.getMessage()]


def test_handler_module_named_like_a_loaded_stdlib_module_is_refused(write_tree) -> None:
    root = write_tree({"json.py": GREET})
    with pytest.raises(
        ShadowingError, match=r"module 'json' resolved to .*json.*not to the source"
    ):
        load_code(SourceTree(root), "json:handler")


def test_nuclio_style_module_handler_from_sys_path(
    write_tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_tree({"nuclio_fn.py": GREET + "def init_context(context):\n    pass\n"})
    monkeypatch.syspath_prepend(str(root))
    loaded = load_module_handler("nuclio_fn:handler")
    assert loaded.handler(None, None) == "hi from nuclio_fn"
    assert loaded.init_name == "init_context"
    with pytest.raises(HandlerModuleNotFound, match=r"'absent_mod_xyz' on sys\.path"):
        load_module_handler("absent_mod_xyz:handler")
    with pytest.raises(SpecError, match="must be module:function"):
        load_module_handler("handler")


def test_a_source_this_user_may_not_read_is_a_load_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root here, who reads everything: the error a non-root image user gets
    # from a folder it may not list is raised by hand.
    (tmp_path / "main.py").write_text("def handler(context, event):\n    return 1\n")

    def denied(folder: Path) -> dict[str, str]:
        raise PermissionError(13, "Permission denied", str(folder))

    monkeypatch.setattr(loader, "_top_level_entries", denied)
    with pytest.raises(LoadError, match=f"cannot read the source: {tmp_path}: Permission denied"):
        load_code(SourceTree(tmp_path, single_file="main.py"), "handler")
