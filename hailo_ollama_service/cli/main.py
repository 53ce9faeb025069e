"""The full ``hailo-ollama-service`` command line: the parser built from the
command table, and one line on stderr for every error, never a traceback
(set HAILO_OLLAMA_DEBUG=1 to see one for an internal error)."""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable, Sequence

from hailo_ollama_service import __version__
from hailo_ollama_service.cli.commands import COMMANDS, DESCRIPTION, PROG, ROOT_HELP, Option
from hailo_ollama_service.cli.handlers import EXIT_FAIL, err

_TYPES: dict[str, Callable[[str], object]] = {"str": str, "int": int, "float": float}


def _escaped(text: str) -> str:
    """Text for argparse, which %-formats help and descriptions."""
    return text.replace("%", "%%")


def _add(target: Any, option: Option) -> None:
    """Add ``option`` to ``target``: a parser or one of its mutually exclusive groups."""
    kwargs: dict[str, object] = {"help": _escaped(option.help) if option.help else None}
    if option.kind == "flag":
        kwargs["action"] = "store_true"
    else:
        kwargs["type"] = _TYPES[option.kind]
        kwargs["default"] = option.default() if callable(option.default) else option.default
        if option.metavar:
            kwargs["metavar"] = option.metavar
        if option.nargs:
            kwargs["nargs"] = option.nargs
    if option.dest:
        kwargs["dest"] = option.dest
    target.add_argument(*option.names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand of the table."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--root", metavar="DIR", default=os.environ.get("HAILO_OLLAMA_ROOT"), help=ROOT_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=_escaped(command.help),
                           description=_escaped(command.description) if command.description else None)
        groups: dict[str, Any] = {}
        for option in command.options:
            target: Any = p
            if option.exclusive:
                if option.exclusive not in groups:
                    groups[option.exclusive] = p.add_mutually_exclusive_group()
                target = groups[option.exclusive]
            _add(target, option)
        p.set_defaults(func=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    from hailo_ollama_service.config.load import ConfigError
    from hailo_ollama_service.fs.atomic import WriteError
    from hailo_ollama_service.fs.nofollow import Unsafe
    try:
        return func(args)
    except (ConfigError, WriteError, Unsafe) as error:
        err(f"error: {error}")
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except OSError as error:
        err(f"error: {error.filename or ''}{': ' if error.filename else ''}{error.strerror or error}")
        return EXIT_FAIL
    except Exception as error:  # a bug: one line, unless debugging
        if os.environ.get("HAILO_OLLAMA_DEBUG"):
            raise
        err(f"internal error: {type(error).__name__}: {error} (run with HAILO_OLLAMA_DEBUG=1 for details)")
        return 70
