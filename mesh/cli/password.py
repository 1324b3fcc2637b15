"""The arguments of ``mesh hash-password``; the command is in :mod:`mesh.password_hash`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hash-password",
        help="make an admin_password_hash for a node config (the password from a prompt or stdin)",
        description="Print a salted scrypt hash of a password, for a node config's "
        "admin_password_hash: the web console's admin user then signs in with that password. "
        "The password is asked for twice on a terminal (not echoed), or read from the first "
        "line of standard input; never from the command line, where other users would see it.",
    )
    parser.set_defaults(func="mesh.password_hash:_command")
