"""Reports of a run: a terminal table, the JSON report and JUnit XML.

The terminal table is for a person reading at a glance: one row per link
(link, state, code, message) and one per expectation with PASS/FAIL. On a
terminal it is drawn with rich and coloured; piped into a file or a CI log it
is plain aligned text, so logs stay greppable. A big mesh shows every link
that is not plainly up and folds the healthy rest into one line: 200 sensors
do not flood the screen.

JSON is the ``--json`` contract of ``mesh run``; JUnit XML has one test case
per expectation, so CI systems show which expectation broke and why.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from typing import IO, Sequence

from mesh.pki.file_output import write_file
from mesh.scenario.result import REPORT_FORMAT, ExpectationVerdict, LinkRow, RunResult

__all__ = [
    "print_result",
    "render_plain",
    "summary_line",
    "write_json",
    "write_junit",
    "junit_xml",
    "json_report",
    "visible_rows",
]

#: Beyond this many links the table folds healthy links into one line.
MAX_ROWS = 40

#: The timeline under the header lists at most this many steps.
MAX_STEPS = 12

_STYLE = {
    "up": "green",
    "up-unvalidated": "yellow",
    "halted": "bold red",
    "down": "magenta",
    "connecting": "dim",
}


def visible_rows(result: RunResult, max_rows: int = MAX_ROWS) -> tuple[list[LinkRow], int]:
    """The rows worth showing, and how many healthy ones were folded away."""
    rows = list(result.links)
    if len(rows) <= max_rows:
        return rows, 0
    named = {v.subject for v in result.expectations}
    shown = [r for r in rows if r.state != "up" or r.link in named]
    return shown, len(rows) - len(shown)


def summary_line(result: RunResult) -> str:
    """'PASS revoked-sensor: 3/3 expectations hold (8 links: 5 up, 3 halted)'."""
    held = sum(v.met for v in result.expectations)
    total = len(result.expectations)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    verdict = "PASS" if result.ok else "FAIL"
    return (
        f"{verdict} {result.scenario.name}: {held}/{total} expectations hold "
        f"({plural(len(result.links), 'link')}: {counts or 'none'})"
    )


def _header(result: RunResult) -> str:
    span = f"{result.started:%Y-%m-%d %H:%M}Z -> {result.ended:%Y-%m-%d %H:%M}Z"
    text = f"scenario {result.scenario.name}"
    if result.scenario.description:
        text += f": {result.scenario.description}"
    lines = [text, f"  emulated {span}, {len(result.steps)} steps, {result.seconds:.1f} s"]
    for record in result.steps[:MAX_STEPS]:
        outcome = "" if record.outcome == "done" else f" -> {record.outcome}"
        if record.code:
            outcome += f" ({record.code})"
        lines.append(f"  step {record.index}  {record.at:%Y-%m-%d %H:%M}Z  "
                     f"{record.step.describe()}{outcome}")
    if len(result.steps) > MAX_STEPS:
        lines.append(f"  ... and {len(result.steps) - MAX_STEPS} more steps")
    return "\n".join(lines)


def _expectation_cells(v: ExpectationVerdict) -> tuple[str, str, str, str]:
    got = "" if v.met else f"got {v.actual}"
    return (f"expect[{v.index}] {v.subject}", v.expected, v.when, got)


def render_plain(result: RunResult, max_rows: int = MAX_ROWS) -> str:
    """The table as plain aligned text (what a log or a pipe gets)."""
    lines = [_header(result), ""]
    rows, folded = visible_rows(result, max_rows)
    table = [("LINK", "STATE", "CODE", "MESSAGE")] + [
        (r.link, r.state, r.code or "-", r.message) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        lines.append(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip()
        )
    if folded:
        lines.append(f"... and {folded} more links up")
    if result.expectations:
        lines.append("")
        cells = [_expectation_cells(v) for v in result.expectations]
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        for v, c in zip(result.expectations, cells):
            mark = "PASS" if v.met else "FAIL"
            lines.append(
                f"{mark}  {c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}  {c[3]}".rstrip()
            )
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


def _print_rich(result: RunResult, file: IO[str], max_rows: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file, highlight=False)
    console.print(_header(result), style="bold")
    rows, folded = visible_rows(result, max_rows)
    table = Table(show_edge=False, pad_edge=False, expand=False)
    for column in ("link", "state", "code"):
        table.add_column(column, no_wrap=True)
    table.add_column("message", overflow="fold")
    for r in rows:
        style = _STYLE.get(r.state, "")
        table.add_row(r.link, Text(r.state, style=style), Text(r.code or "-", style=style), r.message)
    if folded:
        table.add_row(Text(f"... and {folded} more links up", style="dim"), "", "", "")
    console.print(table)
    if result.expectations:
        cells = [_expectation_cells(v) for v in result.expectations]
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        for v, c in zip(result.expectations, cells):
            line = Text()
            line.append("PASS" if v.met else "FAIL", style="green" if v.met else "bold red")
            line.append(f"  {c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}")
            if c[3]:
                line.append(f"  {c[3]}", style="red")
            console.print(line, overflow="fold")
    console.print(summary_line(result), style="bold green" if result.ok else "bold red")


def print_result(result: RunResult, file: IO[str] | None = None, *, max_rows: int = MAX_ROWS) -> None:
    """Print the final table: rich on a terminal, plain text otherwise."""
    file = file or sys.stdout
    if file.isatty() and os.environ.get("TERM") != "dumb":
        _print_rich(result, file, max_rows)
    else:
        file.write(render_plain(result, max_rows))
        file.flush()


def plural(count: int, noun: str) -> str:
    """``1 link``, ``2 links``, ``0 links``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def json_report(results: Sequence[RunResult], *, interrupted: str | None = None) -> object:
    """One scenario: its report object. Several: a list of them, in run order.

    ``interrupted`` names the scenario a Ctrl-C stopped: it closes the report
    as ``{"scenario", "ok": false, "interrupted": true}`` with nothing judged.
    """
    reports = [r.to_json() for r in results]
    if interrupted is not None:
        reports.append({"format": REPORT_FORMAT, "scenario": interrupted, "ok": False, "interrupted": True,
                        "start": {"at": None, "links": []},
                        "links": [], "expectations": [], "steps": []})
    return reports[0] if len(reports) == 1 else reports


def write_json(
    results: Sequence[RunResult], path: str | os.PathLike[str], *, interrupted: str | None = None
) -> None:
    # Atomically (a temporary file, then renamed): a reader never sees half a report.
    write_file(path, (json.dumps(json_report(results, interrupted=interrupted), indent=2) + "\n").encode())


def junit_xml(results: Sequence[RunResult], *, interrupted: str | None = None) -> str:
    """JUnit XML: one testsuite per scenario, one testcase per expectation; a
    scenario a Ctrl-C stopped is a testsuite with one error."""
    suites = ET.Element("testsuites", name="mesh")
    total = failures = errors = 0
    for result in results:
        bad = len(result.failures)
        suite = ET.SubElement(
            suites, "testsuite", name=result.scenario.name, tests=str(len(result.expectations)),
            failures=str(bad), errors="0", time=f"{result.seconds:.3f}",
        )
        if result.scenario.source:
            suite.set("file", result.scenario.source)
        total += len(result.expectations)
        failures += bad
        for v in result.expectations:
            case = ET.SubElement(
                suite, "testcase", classname=f"mesh.{result.scenario.name}",
                name=f"expect[{v.index}] {v.subject} is {v.expected} {v.when}",
            )
            if not v.met:
                failure = ET.SubElement(
                    case, "failure", type="ExpectationNotMet",
                    message=f"expected {v.expected}, actual {v.actual}",
                )
                failure.text = (
                    f"expected: {v.expected}\nactual: {v.actual}\n"
                    f"checked: {v.when} (emulated {v.at.isoformat()})\n"
                    + (f"message: {v.message}\n" if v.message else "")
                )
        out = ET.SubElement(suite, "system-out")
        out.text = render_plain(result)
    if interrupted is not None:
        suite = ET.SubElement(suites, "testsuite", name=interrupted, tests="1", failures="0",
                              errors="1", time="0")
        case = ET.SubElement(suite, "testcase", classname=f"mesh.{interrupted}", name="the run")
        ET.SubElement(case, "error", type="Interrupted", message="interrupted (Ctrl-C)")
        total += 1
        errors += 1
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(
    results: Sequence[RunResult], path: str | os.PathLike[str], *, interrupted: str | None = None
) -> None:
    write_file(path, junit_xml(results, interrupted=interrupted).encode())
