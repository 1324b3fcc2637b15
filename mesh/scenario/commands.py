"""``mesh check`` and ``mesh run``: scenario files from the command line.

Exit status is the contract CI systems read: 0 when every expectation holds,
1 when one fails, 2 when a scenario cannot be used at all (a bad key, a
missing file). Every problem of a bad file is printed, one line each.
"""

from __future__ import annotations

import argparse
import sys

from mesh.scenario.load import ScenarioInvalid, load_scenario

__all__ = ["add_parser", "check_command"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    check = subparsers.add_parser(
        "check",
        help="validate scenario files without running them",
        description="Validate scenario files: every problem, one line each, exit 2 if any.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="scenario .toml files")
    check.set_defaults(func=check_command)


def _print_invalid(error: ScenarioInvalid) -> None:
    for line in error.lines():
        print(f"mesh: {line}", file=sys.stderr)


def check_command(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            scenario = load_scenario(path)
        except ScenarioInvalid as error:
            _print_invalid(error)
            status = 2
            continue
        print(
            f"ok: {path}: {scenario.name} — {len(scenario.appliances)} appliances, "
            f"{len(scenario.links())} links, {len(scenario.steps)} steps, "
            f"{len(scenario.expectations)} expectations"
        )
    return status
