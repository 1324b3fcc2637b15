"""The arguments of ``mesh graph``; the command is :mod:`mesh.scenario.graph_command`.

The formats are :data:`mesh.graph.FORMATS`, copied here because that module
loads attrs; ``tests/cli/test_graph.py`` keeps the copy equal to the original.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "FORMATS"]

#: ``mesh.graph.FORMATS``.
FORMATS = ("dot", "mermaid", "svg")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "graph",
        help="draw a scenario's topology (DOT, Mermaid or SVG), coloured by a run",
        description="Draw the appliances of a scenario and their links. With --from-run, "
        "each link takes the colour of its state at the end of that run.",
    )
    parser.add_argument("scenario", metavar="FILE.toml", help="scenario file")
    parser.add_argument(
        "--from-run", metavar="REPORT.json", help="JSON report of a run (mesh run --json)"
    )
    parser.add_argument("--format", choices=FORMATS, default="dot", help="output format")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.set_defaults(func="mesh.scenario.graph_command:graph_command")
