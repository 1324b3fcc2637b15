"""``mesh graph FILE.toml``: a scenario's topology drawn, coloured by a run's report.

The drawing is :mod:`mesh.graph`, which the web console uses too; this
command reads the scenario file and the ``mesh run --json`` report, so it
belongs to the scenario layer, and the consoles never import that layer
(docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mesh.errors import InputError
from mesh.graph import Graph, render, states_from_report
from mesh.scenario.load import load_scenario

__all__ = ["graph_command"]


def graph_command(args: argparse.Namespace) -> int:
    graph = Graph.from_scenario(load_scenario(args.scenario))  # the loader raises InputError itself
    if args.from_run:
        report = Path(args.from_run)
        try:
            document = json.loads(report.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(args.from_run, "no such file", "pass the path of a run's JSON report") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(args.from_run, f"is not a JSON report ({exc})",
                             "pass the file written by mesh run --json") from None
        graph = graph.with_states(
            states_from_report(document, where=args.from_run, scenario=graph.title)
        )
    text = render(graph, args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
