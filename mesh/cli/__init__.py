"""The ``mesh`` command line: one argparse tree, one ``main(argv) -> int``.

Why a package of parser modules: ``mesh --help``, a typo and every command's
``--help`` must answer at once, without loading trio, OpenSSL, cryptography or
the engine. So each command group's arguments are declared in a module here
(:mod:`mesh.cli.pki` for ``mesh pki``, :mod:`mesh.cli.cert` for ``mesh cert``,
...) that imports only the standard library and mesh's light modules
(:mod:`mesh.errors`, :mod:`mesh.passphrase`), and names its handler as a
``"module:function"`` string, imported only when that command runs. The
handlers stay beside the concepts they drive (``mesh.pki.commands``,
``mesh.scenario.commands``, ``mesh.upload``, ...).

The declarations cannot sit beside their concepts (``mesh/pki/cli.py``, say):
importing any module of a package runs the package's ``__init__``, and
``mesh.pki``, ``mesh.scenario``, ``mesh.net`` and ``mesh.web`` re-export their
engine-laden API there.

This module turns the errors a person can cause into one line and exit status
2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from mesh.cli import cert, console, crl, diff, export, graph, hosts, node, password, pki, scenario
from mesh.errors import InputError
from mesh.parent_watch import follow_parent

__all__ = ["main", "build_parser", "handler"]

#: The command groups, in the order ``mesh --help`` lists them. Each has
#: ``add_parser(subparsers)``.
_GROUPS = (cert, pki, scenario, diff, graph, console, password, crl, node, hosts, export)

Handler = Callable[[argparse.Namespace], "int | None"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh",
        description="Mutual-TLS component mesh emulator.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.add_parser(subparsers)
    return parser


def handler(func: str | Handler) -> Handler:
    """The function a parser's ``func`` default names (``"module:function"``), imported now."""
    if callable(func):
        return func
    module, _, name = func.partition(":")
    imported: Handler = getattr(importlib.import_module(module), name)
    return imported


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    follow_parent()  # a run's child ends with the run (mesh.parent_watch)
    try:
        return int(handler(args.func)(args) or 0)
    except InputError as exc:
        print(f"mesh: {exc.line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
