"""Where a command takes a passphrase from: a file, the environment, a prompt, or its argument.

Why: a passphrase given as ``--passphrase P`` is visible to every user of the
machine in the process list and stays in shell history. Each command that
takes one also takes it from ``--passphrase-file FILE`` (its first line), an
environment variable, or ``--passphrase-prompt`` (asked on the terminal,
not echoed). The argument still works, for scripts that already use it.

Precedence: the option given (they exclude each other), else the variable.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from mesh.errors import InputError

__all__ = ["add_passphrase_options", "passphrase_from"]


def add_passphrase_options(
    parser: argparse.ArgumentParser, *, flag: str = "--passphrase", env: str = "MESH_PASSPHRASE",
    what: str = "the key's passphrase",
) -> None:
    """``FLAG P``, ``FLAG-file FILE`` and ``FLAG-prompt``, mutually exclusive."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(flag, metavar="P", default=None,
                       help=f"{what} (seen by other users in the process list; "
                            f"prefer {flag}-file, {flag}-prompt or ${env})")
    group.add_argument(f"{flag}-file", metavar="FILE", default=None,
                       help=f"read {what} from the first line of FILE")
    group.add_argument(f"{flag}-prompt", action="store_true",
                       help=f"ask for {what} on the terminal, without echo")


def passphrase_from(args: argparse.Namespace, *, flag: str = "--passphrase",
                    env: str = "MESH_PASSPHRASE") -> str | None:
    """The passphrase the options (or ``env``) give; None when none does."""
    dest = flag.lstrip("-").replace("-", "_")
    path = getattr(args, f"{dest}_file", None)
    if path is not None:
        # Here, not at the top: the parsers import this module, and mesh.pki
        # loads cryptography (see mesh.cli).
        from mesh.pki import files

        data = files.read_input(path, "passphrase file")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(path, "is not UTF-8 text", "save the passphrase as text") from None
        return text.splitlines()[0] if text.strip() else None
    if getattr(args, f"{dest}_prompt", False):
        if not sys.stdin.isatty():
            raise InputError(f"{flag}-prompt", "needs a terminal to ask on",
                             f"use {flag}-file FILE or the {env} variable")
        return getpass.getpass(f"{flag.lstrip('-').replace('-', ' ')}: ") or None
    value = getattr(args, dest, None)
    if value is not None:
        return value or None
    return os.environ.get(env) or None
