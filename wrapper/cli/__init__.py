"""The `fn-wrapper` command line: one console script, a subcommand per door (DESIGN §10)."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from wrapper import __version__
from wrapper.errors import ExitCode, WrapperError

if TYPE_CHECKING:
    import argparse

    from wrapper.settings import Option

COMMANDS = {
    "serve": "serve the function over HTTP (gunicorn + uvicorn workers, admin endpoints)",
    "invoke": "run one event through the function without a server and print the response",
    "nuclio": "answer a Nuclio processor's events on its sockets, in place of its Python wrapper",
    "job": "run the handler once with entity inputs; write its results, outputs and status",
    "store": "register, read, list, remove and prune entities and runs in the store",
    "build": "make a function's image: a build context, then buildah or docker",
    "render": "render deploy manifests (Kubernetes) from a run spec",
}
"""Subcommand name → summary; each lives in `wrapper.cli.<name>` with OPTIONS and run()."""

PREWARMED = ("serve", "invoke", "job")
"""Commands whose spec validation starts in a child before their arguments are parsed."""

EPILOG = """\
Every setting flag has an environment twin FN_WRAPPER_<FLAG> (e.g. --code-src:
FN_WRAPPER_CODE_SRC); flags that only name a command's operand (marked [no env twin]) have
none. Flags win over the twins, the twins over the --spec document, the document over defaults.
Exit codes: 0 completed, 1 handler failed, 2 bad spec or argument, 3 source could not be
materialised or imported, 4 init failed, 5 internal error (a bug: please report it).
"""


def stray_variables(environ: Mapping[str, str], options: Sequence[Option]) -> list[str]:
    """The FN_WRAPPER_* variables no setting of any command reads (typos, leftovers): every
    command's twins are looked at only when this command's do not explain them all."""
    from wrapper.settings import ENV_PREFIX, OPERATOR_VARIABLES

    known = {option.env for option in options if option.twin} | set(OPERATOR_VARIABLES)
    unexplained = sorted(k for k in environ if k.startswith(ENV_PREFIX) and k not in known)
    if unexplained:
        for name in COMMANDS:
            module = importlib.import_module(f"wrapper.cli.{name}")
            known |= {option.env for option in module.OPTIONS if option.twin}
    return [k for k in unexplained if k not in known]


def _masked(text: str) -> str:
    """`text` with the secrets of this environment masked (an error may quote one)."""
    from wrapper.secrets import Redaction

    return Redaction.from_environment().text(text)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand, with env twins and defaults in each flag's help."""
    import argparse

    from wrapper.settings import COMMON_OPTIONS

    parser = argparse.ArgumentParser(
        prog="fn-wrapper",
        description="Run a Python function behind HTTP, the Nuclio processor, or as a job.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fn-wrapper {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, summary in COMMANDS.items():
        module = importlib.import_module(f"wrapper.cli.{name}")
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for option in (*module.OPTIONS, *COMMON_OPTIONS):
            option.add_to(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one subcommand; errors print one clear message and map to the exit-code table.

    A command in PREWARMED forks its spec validator first of all, before the argument
    machinery is even imported, so the validator's imports overlap everything else.
    """
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] in PREWARMED:
        from wrapper.spec.background import prewarm

        prewarm()
    from wrapper.settings import COMMON_OPTIONS, parse_plain, resolve

    given: Optional[dict[str, Any]] = None
    if words and words[0] in COMMANDS:  # a plain command line needs no argparse
        name = words[0]
        command = importlib.import_module(f"wrapper.cli.{name}")
        options = (*command.OPTIONS, *COMMON_OPTIONS)
        given = parse_plain(words[1:], options)
    if given is None:
        args = vars(build_parser().parse_args(argv))
        name = args["command"]
        command = importlib.import_module(f"wrapper.cli.{name}")
        options = (*command.OPTIONS, *COMMON_OPTIONS)
        given = {option.dest: args.get(option.dest) for option in options}
    prog = f"fn-wrapper {name}"
    try:
        settings = resolve(given, options, os.environ)
        from wrapper.logs import configure_logging

        configure_logging(settings.log_level, settings.log_format)
        for variable in stray_variables(os.environ, options):
            logging.getLogger("wrapper").warning(
                "%s is set but no setting of fn-wrapper reads it (a typo? `%s --help` lists "
                "this command's twins)", variable, prog,
            )  # fmt: skip
        return int(command.run(settings))
    except WrapperError as exc:
        print(f"{prog}: error: {_masked(exc.message)}", file=sys.stderr)
        if exc.details:
            print(_masked(exc.details), file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `fn-wrapper store ls | head`: the reader is gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:
        import traceback

        print(_masked(traceback.format_exc()), end="", file=sys.stderr)
        print(f"{prog}: internal error (a bug in fn-wrapper: please report it)", file=sys.stderr)
        return int(ExitCode.INTERNAL_ERROR)
