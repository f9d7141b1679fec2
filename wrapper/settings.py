"""Command-line options: a setting has an environment twin `FN_WRAPPER_<FLAG>` (flags win); an
operand (what one command acts on, e.g. `store`'s `--name`) has none (DESIGN §10)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from wrapper.errors import SpecError

if TYPE_CHECKING:
    import argparse

ENV_PREFIX = "FN_WRAPPER_"

OPERATOR_VARIABLES = ("FN_WRAPPER_ALLOWED_BASE_IMAGE", "FN_WRAPPER_SECRET_VARIABLES")
"""Variables an operator sets that are no flag's twin (the build's base-image allow-list, the
names of more variables whose values are secrets)."""

GRACEFUL_TIMEOUT = 30.0
"""Seconds in-flight requests get after SIGTERM, unless `--graceful-timeout` says otherwise
(the serve door's default, and the pod's termination grace the deploy renders from it)."""


def json_object(text: str) -> dict[str, Any]:
    """A JSON object given as text."""
    value: dict[str, Any] = _json(text, dict, "object")
    return value


def _json(text: str, kind: type, name: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON, expected a JSON {name} ({exc})") from None
    if not isinstance(value, kind):
        raise ValueError(f"expected a JSON {name}, got {type(value).__name__}")
    return value


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def byte_size(text: str) -> int:
    """A size in bytes: `1048576`, `512MiB`, `1G`, `64k` (suffix case and a final B ignored)."""
    match = re.fullmatch(r"\s*([0-9]+)\s*([kKmMgG][iI]?)?[bB]?\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 1048576, 64KiB, 512MiB, 1G)")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


def seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise ValueError(f"{text!r} must be more than 0 seconds")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """A span of time in seconds, given with its unit: `90s`, `30m`, `12h`, `7d`, `1.5h`."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([smhd])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: a number and s, m, h or d (e.g. 12h, 7d)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def count(text: str) -> int:
    """A whole number, 0 or more."""
    if not text.strip().isdigit():
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def boolean(text: str) -> bool:
    """`1/true/yes/on` or `0/false/no/off`, any case."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


class Option:
    """One flag and its environment twin. A `positional` one is given as a bare word, in
    order (`fn-wrapper store put FILE`); its name still makes the twin. An operand
    (`twin=False`) has no twin: it names what one command acts on, so a variable set for
    another command (FN_WRAPPER_NAME, a function's name) never reaches it."""

    __slots__ = (
        "arity",
        "choices",
        "default",
        "flag",
        "help",
        "metavar",
        "parse",
        "positional",
        "repeat",
        "switch",
        "twin",
    )

    def __init__(
        self,
        flag: str,
        help: str,
        parse: Callable[[str], Any] = str,
        default: Any = None,
        repeat: bool = False,
        switch: bool = False,
        choices: Optional[Sequence[str]] = None,
        metavar: Union[str, tuple[str, ...], None] = None,
        positional: bool = False,
        twin: bool = True,
        arity: int = 1,
    ) -> None:
        self.flag, self.help, self.parse, self.default = flag, help, parse, default
        self.repeat, self.switch, self.choices, self.metavar = repeat, switch, choices, metavar
        self.positional, self.twin, self.arity = positional, twin, arity

    def __repr__(self) -> str:
        return f"Option({self.flag!r})"

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Register the flag; its default stays None so a given flag can be told apart."""
        import argparse

        array = " (a JSON array)" if self.repeat else ""
        twin = f"env {self.env}{array}" if self.twin else "no env twin"
        shown = f"; default: {self.default}" if self.default not in (None, False) else ""
        text = f"{self.help} [{twin}{shown}]".replace("%", "%%")
        if self.switch:
            parser.add_argument(
                self.flag, action=argparse.BooleanOptionalAction, default=None, help=text
            )
            return
        if self.positional:
            parser.add_argument(
                self.dest,
                type=_argparse_type(self.parse),
                nargs="?",
                default=None,
                choices=self.choices,
                metavar=self.metavar,
                help=text,
            )
            return
        parser.add_argument(
            self.flag,
            type=_argparse_type(self.parse),
            action="append" if self.repeat else "store",
            nargs=self.arity if self.arity > 1 else None,
            default=None,
            choices=self.choices,
            metavar=self.metavar,
            help=text,
        )

    def from_env(self, text: str) -> Any:
        """Parse the environment twin's text; a bad value is a SpecError naming the variable."""
        try:
            if self.switch:
                return boolean(text)
            if self.repeat:
                items = _json(text, list, "array")
                return [self.parse(str(item)) for item in items]
            value = self.parse(text)
        except ValueError as exc:
            raise SpecError(f"{self.env}: {exc}") from None
        if self.choices and value not in self.choices:
            raise SpecError(f"{self.env}: {value!r} is not one of {', '.join(self.choices)}")
        return value


def parse_plain(words: Sequence[str], options: Sequence[Option]) -> Optional[dict[str, Any]]:
    """The flags of a plain command line (`--flag value`, `--switch`), as argparse would
    give them, without loading argparse; None for anything else (help, `--flag=value`,
    `--no-switch`, repeats, an unknown or bad value), which then goes to argparse, whose
    messages and help stay the reference (so do bare words, for positional options).
    Saves ~10 ms of start-up."""
    by_flag = {option.flag: option for option in options}
    values: dict[str, Any] = {}
    position = 0
    while position < len(words):
        option = by_flag.get(words[position])
        if option is None or option.repeat:
            return None
        if option.switch:
            values[option.dest] = True
            position += 1
            continue
        if position + 1 >= len(words) or words[position + 1].startswith("--"):
            return None
        try:
            value = option.parse(words[position + 1])
        except ValueError:
            return None
        if option.choices and value not in option.choices:
            return None
        values[option.dest] = value
        position += 2
    return values


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    import argparse

    if parse is str:
        return str

    def converted(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    converted.__name__ = parse.__name__
    return converted


class Settings:
    """Resolved option values and which layer gave each: "flag", "env" or "default"."""

    def __init__(self, values: dict[str, Any], layers: dict[str, str]) -> None:
        self.values = values
        self.layers = layers

    def __repr__(self) -> str:
        return f"Settings({self.values!r})"

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values")  # absent while unpickling
        if values is None or name not in values:
            raise AttributeError(name)
        return values[name]


def resolve(
    args: Mapping[str, Any], options: Sequence[Option], environ: Mapping[str, str]
) -> Settings:
    """Each option's value by precedence: flag, then environment twin, then default.

    An empty twin counts as unset, and an operand has none. A JSON-object option merges its
    flag over its twin.
    """
    values: dict[str, Any] = {}
    layers: dict[str, str] = {}
    for option in options:
        given = args.get(option.dest)
        merges = option.parse is json_object
        wanted = option.twin and environ.get(option.env) and (given is None or merges)
        twin = option.from_env(environ[option.env]) if wanted else None
        if given is not None and twin is not None:
            given = {**twin, **given}
        if given is not None:
            values[option.dest], layers[option.dest] = given, "flag"
        elif twin is not None:
            values[option.dest], layers[option.dest] = twin, "env"
        else:
            default = option.default
            if isinstance(default, str) and option.parse is not str:
                default = option.parse(default)  # defaults written for people, e.g. "256MiB"
            values[option.dest], layers[option.dest] = default, "default"
    return Settings(values, layers)


COMMON_OPTIONS = (
    Option(
        "--log-level",
        "log level (any case)",
        str.lower,
        default="info",
        choices=("debug", "info", "warning", "error"),
    ),
    Option(
        "--log-format",
        "log format: json lines, readable text, or auto (text on a terminal, else json)",
        default="auto",
        choices=("auto", "json", "text"),
    ),
    Option("--debug", "put exception details in error responses (local work only)", switch=True),
)

SOURCE_OPTIONS = (
    Option(
        "--spec",
        "run spec document: inline JSON ({...}), - for stdin, a JSON / YAML file, or a Nuclio"
        " function config (function.yaml, a folder holding one, a .py with @nuclio.configure)",
        metavar="SPEC",
    ),
    Option("--code", "function source as plain text (replaces the spec's source)", metavar="TEXT"),
    Option(
        "--base64",
        "function source or a zip / tar archive, base64-encoded (replaces the spec's source)",
        metavar="B64",
    ),
    Option(
        "--code-src",
        "URI or path of the code: file.py, folder, archive, file://... (replaces the spec source)",
        metavar="URI",
    ),
    Option(
        "--handler",
        "handler: func, module:func, path/file.py:func or module:Class.method (default: handler)",
    ),
    Option("--init-function", "function called once per worker with (context, **init_parameters)"),
    Option(
        "--init-parameters",
        "init parameters, a JSON object merged over the spec's",
        parse=json_object,
        metavar="JSON",
    ),
    Option(
        "--parameters",
        "handler parameters, a JSON object merged over the spec's",
        parse=json_object,
        metavar="JSON",
    ),
    Option("--name", "function name (default: the source file's name)"),
    Option(
        "--python-version",
        "PYTHON3_9 ... PYTHON3_13 (default: the running interpreter's)",
        metavar="VERSION",
    ),
    Option("--requirements", "a pip requirement (repeat the flag for more)", repeat=True),
    Option(
        "--cache-dir",
        "where materialised code is cached (default: $XDG_CACHE_HOME/fn-wrapper)",
        metavar="DIR",
    ),
    Option("--connect-timeout", "seconds to connect to a code server", seconds, default=10.0),
    Option("--read-timeout", "seconds a code server may stay silent", seconds, default=30.0),
    Option("--download-timeout", "seconds a whole code download may take", seconds, default=300.0),
    Option("--max-download-size", "largest code download", byte_size, default="256MiB"),
    Option(
        "--max-unpacked-size", "most bytes an archive may unpack to", byte_size, default="512MiB"
    ),
    Option("--max-archive-members", "most members an archive may have", count, default=20000),
    Option("--max-redirects", "most HTTP redirects followed", count, default=5),
    Option(
        "--git-credential-hosts",
        "comma-separated host or host:port list that GIT_TOKEN / GIT_USERNAME / GIT_PASSWORD "
        "may be sent to (unset: no host)",
        metavar="HOSTS",
    ),
    Option(
        "--allow-git-http", "allow git+http:// sources (plain HTTP, local servers)", switch=True
    ),
)

STORE_OPTIONS = (
    Option(
        "--store",
        "where entities and run documents live: file:///path, a path, or s3://bucket/prefix "
        "(default: $XDG_DATA_HOME/fn-wrapper/store)",
        metavar="URI",
    ),
    Option("--project", "the project runs and entities belong to", default="default"),
)


def project_of(settings: Settings, from_spec: Optional[str]) -> str:
    """--project or its twin, else the spec's project, else the default (DESIGN §5)."""
    if settings.layers.get("project") == "default" and from_spec:
        return from_spec
    return str(settings.project)
