"""The arguments of ``mesh node``; the command is in :mod:`mesh.node`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run one appliance as its own process, on real ports",
        description="Run one appliance as its own OS process; events go to stdout as JSON lines.",
    )
    parser.add_argument("--config", required=True, metavar="FILE.toml", help="the node's config file")
    parser.set_defaults(func="mesh.node:_command")
