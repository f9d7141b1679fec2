"""Import the user's handler and init function from a source tree (DESIGN §3)."""

from __future__ import annotations

import importlib
import logging
import re
import sys
import traceback
from pathlib import Path, PurePosixPath
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from wrapper import stand_ins
from wrapper.errors import (
    HandlerModuleNotFound,
    HandlerNotFound,
    InitError,
    LoadError,
    ShadowingError,
    SpecError,
    UserCodeSyntaxError,
)

if TYPE_CHECKING:
    from wrapper.sources import SourceTree

log = logging.getLogger("wrapper.loader")

RUNTIME_PACKAGE = "wrapper"
_IDENT = r"[A-Za-z_]\w*"
_ATTR = re.compile(rf"^{_IDENT}(\.{_IDENT})?$")
_MODULE = re.compile(r"^\w[\w-]*(\.\w[\w-]*)*$")
"""A dotted module name; hyphens allowed, as Nuclio's handler pattern has them (`my-func`)."""
_user_roots: list[Path] = []
_RUNTIME_DIR = Path(__file__).resolve().parent
_MISSING = object()


class HandlerRef(NamedTuple):
    """A parsed handler reference: `func`, `mod:func`, `path/file.py:func`, `mod:Class.method`."""

    text: str
    attr: str
    module: Optional[str] = None
    file: Optional[str] = None

    @classmethod
    def parse(cls, text: str, field_name: str = "handler") -> HandlerRef:
        """Parse `text`; a malformed reference is a SpecError naming the field."""
        location, sep, attr = text.rpartition(":")
        if not sep:
            if _ATTR.match(text) and "." not in text:
                return cls(text, attr=text)
            hint = " (write module:function)" if _MODULE.match(text) else ""
            raise SpecError(f"{field_name}: {text!r} is not a valid reference{hint}; {_GRAMMAR}")
        if not _ATTR.match(attr):
            raise SpecError(f"{field_name}: {attr!r} in {text!r} is not a name; {_GRAMMAR}")
        if location.endswith(".py") or "/" in location:
            path = PurePosixPath(location)
            if path.is_absolute() or ".." in path.parts or path.suffix != ".py":
                raise SpecError(
                    f"{field_name}: {location!r} must be a relative path to a .py file "
                    "inside the source"
                )
            return cls(text, attr=attr, file=str(path))
        if not _MODULE.match(location):
            raise SpecError(f"{field_name}: {location!r} is not a module name; {_GRAMMAR}")
        return cls(text, attr=attr, module=location)


_GRAMMAR = "forms: func, module:func, pkg.module:func, path/to/file.py:func, module:Class.method"


class LoadedCode:
    """The user's callables, imported once."""

    def __init__(
        self,
        handler: Callable[..., Any],
        handler_name: str,
        init: Optional[Callable[..., Any]] = None,
        init_name: Optional[str] = None,
        module: Optional[ModuleType] = None,
    ) -> None:
        self.handler = handler
        self.handler_name = handler_name
        self.init = init
        self.init_name = init_name
        self.module = module
        self._instances: dict[type, Any] = {}


def load_code(tree: SourceTree, handler: str, init_function: Optional[str] = None) -> LoadedCode:
    """Import the handler's module from `tree` and resolve the handler and init function.

    With no `init_function`, a module-level `init_context` (Nuclio's convention) is used.
    """
    ref = HandlerRef.parse(handler, "handler")
    stand_ins.install()
    module = _import(tree, ref)
    loaded = LoadedCode(handler=lambda: None, handler_name=ref.text, module=module)
    loaded.handler = _resolve(module, ref.attr, loaded, "handler")
    if init_function:
        if ":" in init_function:  # a full reference, possibly to another module
            init_ref = HandlerRef.parse(init_function, "init_function")
            init_module, attr = _import(tree, init_ref), init_ref.attr
        elif _ATTR.match(init_function):  # `init` or `Class.method` in the handler's module
            init_module, attr = module, init_function
        else:
            raise SpecError(
                f"init_function: {init_function!r} is not a valid reference; {_GRAMMAR}"
            )
        loaded.init = _resolve(init_module, attr, loaded, "init_function")
        loaded.init_name = init_function
    elif callable(getattr(module, "init_context", None)):
        loaded.init = module.init_context
        loaded.init_name = "init_context"
    return loaded


def load_module_handler(handler: str) -> LoadedCode:
    """Nuclio's way: import `module:func` from `sys.path` as it is (no source tree)."""
    ref = HandlerRef.parse(handler, "handler")
    if ref.module is None:
        raise SpecError(f"handler: {handler!r} must be module:function when no source is given")
    stand_ins.install()
    module = _import_module(ref.module, None)
    loaded = LoadedCode(handler=lambda: None, handler_name=handler, module=module)
    loaded.handler = _resolve(module, ref.attr, loaded, "handler")
    if callable(getattr(module, "init_context", None)):
        loaded.init, loaded.init_name = module.init_context, "init_context"
    return loaded


def _import(tree: SourceTree, ref: HandlerRef) -> ModuleType:
    try:
        root = tree.root.resolve()
        if ref.module:
            _add_import_root(root)
            return _import_module(ref.module, root)
        file = ref.file or default_module_file(tree)
        path = (root / file).resolve()
        if not path.is_relative_to(root):
            raise SpecError(f"handler: {file!r} points outside the source")
        if not path.is_file():
            raise HandlerModuleNotFound(
                f"handler {ref.text!r}: no file {file!r} in the source ({_listing(root)})"
            )
        import_root, name = _module_name(path)
        if import_root == path.parent and _imports_relatively(path):
            # a module of a folder without __init__.py that imports relatively (a KFP
            # component's src/): imported as a module of that folder's package, its folder
            # never on sys.path (where its math.py would hide the standard library's)
            if import_root == root:
                name = f"{_source_package(root)}.{path.stem}"
            else:
                _add_import_root(root)
                name = ".".join(path.relative_to(root).with_suffix("").parts)
            import_root = root
        else:
            _add_import_root(root)
            _add_import_root(import_root)
    except OSError as exc:  # e.g. a folder of the source this user may not read
        raise LoadError(f"cannot read the source: {exc.filename}: {exc.strerror}") from None
    return _import_module(name, import_root)


def default_module_file(tree: SourceTree) -> str:
    """The module of a bare handler: the one-file source's file, else main.py."""
    if tree.single_file:
        return tree.single_file
    if (tree.root / "main.py").is_file():
        return "main.py"
    modules = sorted(p.name for p in tree.root.glob("*.py"))
    if len(modules) == 1:
        return modules[0]
    raise HandlerModuleNotFound(
        f"a bare handler name needs a one-file source or a main.py ({_listing(tree.root)}); "
        "write module:function"
    )


def _module_name(path: Path) -> tuple[Path, str]:
    """The folder to import from and the dotted name of `path`, walking up through packages."""
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def _imports_relatively(path: Path) -> bool:
    """Whether the file has a relative import (`from .x import y`), read without running it.

    Such a file in a folder without `__init__.py` (a KFP component's `src/`) is imported as a
    module of a namespace package from the source root, `src.my_component`, so the import
    works and its folder stays off sys.path, where its `math.py` would hide the stdlib's.
    """
    import ast  # only for a file in a folder that is not a package

    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):  # the import reports it, with its file and line
        return False
    return any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))


def _source_package(root: Path) -> str:
    """A package standing for the source folder itself, for a file at its top that imports
    relatively (`from .math import add_numbers`): named after the folder when that name is
    free (nothing installed or imported has it), else `fn_wrapper_source`."""
    import importlib.util
    import types

    name = root.name
    ours = getattr(sys.modules.get(name), "__path__", None) == [str(root)]
    if not ours and (
        not name.isidentifier()
        or name in sys.modules
        or name in stdlib_module_names()
        or importlib.util.find_spec(name) is not None
    ):
        name = "fn_wrapper_source"
    package = sys.modules.get(name)
    if getattr(package, "__path__", None) != [str(root)]:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]  # an earlier source's
        package = types.ModuleType(name, f"the source folder {root}")
        package.__path__ = [str(root)]
        sys.modules[name] = package
    return name


def _add_import_root(folder: Path) -> None:
    """Put `folder` first on sys.path, refusing a shadowed runtime and warning of stdlib names."""
    for candidate in (folder / f"{RUNTIME_PACKAGE}.py", folder / RUNTIME_PACKAGE / "__init__.py"):
        if candidate.exists():
            raise ShadowingError(
                f"the source defines a top-level {candidate.relative_to(folder)}, which would "
                f"hide the runtime's own '{RUNTIME_PACKAGE}' package: rename it"
            )
    if str(folder) in sys.path:
        return
    entries = _top_level_entries(folder)
    for name in sorted(entries.keys() & stdlib_module_names()):
        log.warning(
            "%s shadows the standard-library module '%s' when imported as a top-level module: "
            "rename it or import it relatively from a package",
            folder / entries[name],
            name,
        )
    sys.path.insert(0, str(folder))
    _user_roots.append(folder)


def _top_level_entries(folder: Path) -> dict[str, str]:
    """Importable top-level names in `folder`: module name → `name.py` or `name/`."""
    entries = {p.parent.name: p.parent.name + "/" for p in folder.glob("*/__init__.py")}
    entries.update({p.stem: p.name for p in folder.glob("*.py")})
    return entries


def stdlib_module_names() -> frozenset[str]:
    """Names of the standard library's top-level modules."""
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return frozenset(names)
    import sysconfig  # Python 3.9: list the stdlib folder and its extension modules

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    found = {p.stem for p in stdlib.glob("*.py")} | {p.name for p in stdlib.iterdir() if p.is_dir()}
    found |= {p.name.split(".")[0] for p in (stdlib / "lib-dynload").glob("*.so")}
    return frozenset(found | set(sys.builtin_module_names))


def _import_module(name: str, root: Optional[Path]) -> ModuleType:
    """Import `name`, turning failures into classified load errors."""
    if root is not None:
        _forget_stale(name.split(".")[0], root)
    try:
        module = importlib.import_module(name)
    except SyntaxError as exc:
        where = f"{_shown(exc.filename, root)} line {exc.lineno}"
        code = f": {exc.text.strip()}" if exc.text else ""
        raise UserCodeSyntaxError(f"syntax error in {where}: {exc.msg}{code}") from None
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            listing = f" ({_listing(root)})" if root else " on sys.path"
            raise HandlerModuleNotFound(f"no module named {name!r}{listing}") from None
        where = _user_frame(exc.__traceback__, root)
        missing = (
            f"which is not one of the modules it has{stand_ins.hint(exc.name)}"
            if stand_ins.hint(exc.name)
            else "which is not installed: add it to the function's requirements"
        )
        raise LoadError(f"module {name!r} imports {exc.name!r}{where}, {missing}") from None
    except ImportError as exc:
        where = _user_frame(exc.__traceback__, root) + stand_ins.hint(exc.name)
        raise LoadError(f"module {name!r} could not be imported: {exc}{where}") from None
    except (Exception, SystemExit) as exc:
        where = _user_frame(exc.__traceback__, root)
        raise InitError(
            f"importing module {name!r} raised {type(exc).__name__}: {exc}{where}",
            details=user_traceback(exc, root),
        ) from None
    origin = getattr(module, "__file__", None)
    if root is not None and origin and not Path(origin).resolve().is_relative_to(root):
        raise ShadowingError(
            f"module {name!r} resolved to {origin}, not to the source: it shadows an installed "
            "or standard-library module, rename it"
        )
    return module


def _forget_stale(top: str, root: Path) -> None:
    """Drop modules named `top` that an earlier load imported from another user source."""
    for key in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
        module = sys.modules[key]
        origin = getattr(module, "__file__", None)
        places = [origin] if origin else list(getattr(module, "__path__", []))  # namespace: folders
        paths = [Path(place).resolve() for place in places]
        if (
            paths
            and not any(path.is_relative_to(root) for path in paths)
            and any(path.is_relative_to(r) for path in paths for r in _user_roots)
        ):
            del sys.modules[key]


def _resolve(
    module: ModuleType, attr: str, loaded: LoadedCode, field_name: str
) -> Callable[..., Any]:
    """Find `func` or `Class.method` in `module`; a class is instantiated once, no arguments."""
    first, _, method = attr.partition(".")
    target = getattr(module, first, _MISSING)
    if target is _MISSING:
        raise HandlerNotFound(
            f"{field_name}: module {module.__name__!r} has no {first!r}; "
            + _callables(module, first)
        )
    if method:
        if not isinstance(target, type):
            raise HandlerNotFound(
                f"{field_name}: {first!r} in module {module.__name__!r} is not a class, so "
                f"{attr!r} cannot name a method"
            )
        instance = loaded._instances.get(target)
        if instance is None:
            try:
                instance = target()
            except Exception as exc:
                raise InitError(
                    f"{field_name}: class {first!r} could not be created with no arguments: "
                    f"{type(exc).__name__}: {exc}",
                    details=user_traceback(exc, None),
                ) from None
            loaded._instances[target] = instance
        bound = getattr(instance, method, None)
        if not callable(bound):
            import inspect  # only to list a class's members in an error

            public = [n for n, _ in inspect.getmembers(target, callable) if not n.startswith("_")]
            raise HandlerNotFound(
                f"{field_name}: class {first!r} has no method {method!r}; its methods: "
                f"{', '.join(public) or 'none'}"
            )
        return bound  # type: ignore[no-any-return]
    function = _component_function(target)
    if not callable(function):
        raise HandlerNotFound(
            f"{field_name}: {first!r} in module {module.__name__!r} is a "
            f"{type(function).__name__}, not a function"
        )
    return function


def _component_function(target: object) -> object:
    """The plain function of a KFP component (what `@dsl.component` returns), else `target`.

    Told by its type's module and its `python_func`, so kfp is never imported here.
    """
    made_by_kfp = type(target).__module__.startswith("kfp.")
    func = getattr(target, "python_func", None) if made_by_kfp else None
    return func if callable(func) else target


def _callables(module: ModuleType, wanted: str) -> str:
    """`the module defines: a, b` with a close match first, for HandlerNotFound messages."""
    names = sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == module.__name__
    )
    import difflib  # only when a name is missing

    close = difflib.get_close_matches(wanted, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}the module defines: {', '.join(names) or 'no functions or classes'}"


def _listing(root: Optional[Path]) -> str:
    if root is None:
        return "no source"
    names = sorted(_top_level_entries(root))
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f"modules found: {shown}" if names else "the source has no Python modules"


def _shown(filename: Optional[str], root: Optional[Path]) -> str:
    if not filename:
        return "<unknown file>"
    path = Path(filename)
    if root is not None and path.is_absolute() and path.resolve().is_relative_to(root):
        return str(path.resolve().relative_to(root))
    return filename


def _user_frame(tb: Optional[TracebackType], root: Optional[Path]) -> str:
    """` (file line N)` for the innermost traceback frame inside the user's source."""
    frames = [f for f in traceback.extract_tb(tb) if _is_user_file(f.filename, root)]
    if not frames:
        return ""
    return f" ({_shown(frames[-1].filename, root)} line {frames[-1].lineno})"


def user_traceback(exc: BaseException, root: Optional[Path] = None) -> str:
    """The traceback of `exc` keeping only frames of user code (inside `root` when given)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _is_user_file(f.filename, root)]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return "Traceback (user code):\n" + "".join(lines).rstrip()


def _is_user_file(filename: str, root: Optional[Path]) -> bool:
    if filename.startswith("<"):
        return False
    path = Path(filename).resolve()
    if root is not None:
        return path.is_relative_to(root)
    return not path.is_relative_to(_RUNTIME_DIR) and "importlib" not in path.parts
