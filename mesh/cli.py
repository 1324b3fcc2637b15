"""The ``mesh`` command line: one argparse tree, one ``main(argv) -> int``.

Each command lives beside the concept it drives and registers itself through
an ``add_parser(subparsers)`` function listed in ``_COMMANDS``; this module
only wires them up and turns the errors a person can cause into one line and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from mesh.errors import InputError

__all__ = ["main"]

#: Modules that contribute commands. Each may define ``add_parser(subparsers)``
#: for top-level commands and ``add_cert_parser(cert_subparsers)`` for
#: ``mesh cert ...`` subcommands.
_COMMANDS = [
    "mesh.pki.commands",
    "mesh.scenario.commands",
    "mesh.graph",
    "mesh.web.commands",
    "mesh.net.crl_commands",
    "mesh.upload",
    "mesh.node",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesh",
        description="Mutual-TLS component mesh emulator.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    cert = subparsers.add_parser(
        "cert", help="check, lint and convert certificate files"
    )
    cert_subparsers = cert.add_subparsers(dest="cert_command", metavar="SUBCOMMAND")
    for name in _COMMANDS:
        module = importlib.import_module(name)
        if hasattr(module, "add_parser"):
            module.add_parser(subparsers)
        if hasattr(module, "add_cert_parser"):
            module.add_cert_parser(cert_subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"mesh: {exc.line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
