"""The arguments of ``mesh hosts clean``; the command is :mod:`mesh.hosts.commands`."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hosts = subparsers.add_parser("hosts", help="the network namespaces of `mesh run --hosts`")
    hosts_sub = hosts.add_subparsers(dest="hosts_command", metavar="SUBCOMMAND")
    clean = hosts_sub.add_parser(
        "clean",
        help="remove what a killed `mesh run --hosts` left",
        description="Remove the network namespaces and /etc/netns folders named like a "
        "`mesh run --hosts` run's (mesh-<6 hex digits>-...), ending the processes still in "
        "them; nothing else is touched. A run still going is left alone and named. Prints one "
        "line per thing removed or kept. Needs root.",
    )
    clean.add_argument("--run", metavar="ID", default=None,
                       help="only the run whose objects are named mesh-ID-... (6 hex digits), "
                       "leaving other runs alone")
    clean.set_defaults(func="mesh.hosts.commands:clean_command")
    hosts.set_defaults(func=lambda args: _help(hosts))


def _help(parser: argparse.ArgumentParser) -> int:
    """``mesh hosts`` alone: its help, exit 2 (as ``mesh pki`` does)."""
    parser.print_help(sys.stderr)
    return 2
