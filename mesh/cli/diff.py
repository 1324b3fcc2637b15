"""The arguments of ``mesh diff``; the command is :mod:`mesh.scenario.diff`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="list the links whose outcome differs between two runs' JSON reports",
        description="Compare the link tables of two JSON reports (mesh run --json): one line "
        "per link whose state, code or message differs, and per link or scenario in only one "
        "report. Scenarios are matched by name (two reports of one scenario each are compared "
        "whatever their names). Exit 0 when nothing differs, 1 when something does, 2 when a "
        "report is unusable.",
    )
    parser.add_argument("before", metavar="BEFORE.json", help="the earlier run's report")
    parser.add_argument("after", metavar="AFTER.json", help="the later run's report")
    parser.add_argument("--json", action="store_true", help="print the differences as a JSON list")
    parser.add_argument(
        "--step", type=int, metavar="N",
        help="compare the tables after step N (0: after start) instead of the final ones "
        "(reports of format 3 or later on both sides)",
    )
    parser.set_defaults(func="mesh.scenario.diff:diff_command")
