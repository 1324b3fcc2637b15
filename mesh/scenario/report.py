"""Reports of a run: a terminal table, the JSON report and JUnit XML.

The terminal table is for a person reading at a glance: one row per link
(link, state, code, message) and one per expectation with PASS/FAIL. On a
terminal it is drawn with rich and coloured; piped into a file or a CI log it
is plain aligned text, so logs stay greppable. A big mesh shows every link
that is not plainly up and folds the healthy rest into one line: 200 sensors
do not flood the screen.

JSON is the ``--json`` contract of ``mesh run``; JUnit XML has one test case
per expectation, so CI systems show which expectation broke and why.

A ``--validation both`` run (:class:`~mesh.scenario.both.BothResult`) is one
table with each link's outcome with validation on beside its outcome with
validation off and what would have failed there; one JSON object holding both
runs' reports; one JUnit suite whose test cases name the run that judged them.
An expectation a run does not judge (its ``mode`` names the other run) is
SKIP in the table and skipped in JUnit, never passed or failed.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from typing import IO, Sequence

from mesh.errors import FailureCode
from mesh.pki.file_output import write_file
from mesh.scenario.both import BothResult, ScenarioResult
from mesh.scenario.result import REPORT_FORMAT, ExpectationVerdict, LinkRow, RunResult

__all__ = [
    "print_result",
    "render_plain",
    "render_both_plain",
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


def summary_line(result: ScenarioResult) -> str:
    """'PASS revoked-sensor: 3/3 expectations hold (8 links: 5 up, 3 halted)'.

    Expectations of the other validation run are counted apart ('..., 1 not
    judged'): they neither hold nor fail here.
    """
    if isinstance(result, BothResult):
        return _both_summary(result)
    judged = result.judged
    held = sum(v.met for v in judged)
    skipped = len(result.not_judged)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    verdict = "PASS" if result.ok else "FAIL"
    return (
        f"{verdict} {_title(result)}: {held}/{len(judged)} expectations hold"
        + (f", {skipped} not judged" if skipped else "")
        + f" ({plural(len(result.links), 'link')}: {counts or 'none'})"
    )


def _title(result: RunResult) -> str:
    """The scenario's name, marked when it is the validation off run."""
    name = result.scenario.name
    return f"{name} [validation off]" if result.validation == "off" else name


def _header(result: RunResult) -> str:
    span = f"{result.started:%Y-%m-%d %H:%M}Z -> {result.ended:%Y-%m-%d %H:%M}Z"
    text = f"scenario {_title(result)}"
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
    got = "" if v.met else f"got {v.actual}" if v.judged else f"not judged: {v.message}"
    return (f"expect[{v.index}] {v.subject}", v.expected, v.when, got)


def _mark(v: ExpectationVerdict) -> str:
    return "SKIP" if not v.judged else "PASS" if v.met else "FAIL"


_MARK_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIP": "dim"}


def render_plain(result: RunResult, max_rows: int = MAX_ROWS) -> str:
    """The table as plain aligned text (what a log or a pipe gets)."""
    lines = [_header(result), ""]
    rows, folded = visible_rows(result, max_rows)
    table = [("LINK", "STATE", "CODE", "MESSAGE")] + [
        (r.link, r.state, r.code or r.reason or "-", r.message) for r in rows
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
            lines.append(
                f"{_mark(v)}  {c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}  {c[3]}".rstrip()
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
        table.add_row(r.link, Text(r.state, style=style), Text(r.code or r.reason or "-", style=style), r.message)
    if folded:
        table.add_row(Text(f"... and {folded} more links up", style="dim"), "", "", "")
    console.print(table)
    if result.expectations:
        cells = [_expectation_cells(v) for v in result.expectations]
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        for v, c in zip(result.expectations, cells):
            line = Text()
            line.append(_mark(v), style=_MARK_STYLE[_mark(v)])
            line.append(f"  {c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}")
            if c[3]:
                line.append(f"  {c[3]}", style="red" if v.judged else "dim")
            console.print(line, overflow="fold")
    console.print(summary_line(result), style="bold green" if result.ok else "bold red")


def print_result(result: ScenarioResult, file: IO[str] | None = None, *,
                 max_rows: int = MAX_ROWS) -> None:
    """Print the final table: rich on a terminal, plain text otherwise."""
    file = file or sys.stdout
    rich = file.isatty() and os.environ.get("TERM") != "dumb"
    if isinstance(result, BothResult):
        if rich:
            _print_both_rich(result, file, max_rows)
        else:
            file.write(render_both_plain(result, max_rows))
    elif rich:
        _print_rich(result, file, max_rows)
    else:
        file.write(render_plain(result, max_rows))
    file.flush()


def plural(count: int, noun: str) -> str:
    """``1 link``, ``2 links``, ``0 links``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def json_report(results: Sequence[ScenarioResult], *, interrupted: str | None = None,
                validation: str = "on") -> object:
    """One scenario: its report object. Several: a list of them, in run order.

    ``interrupted`` names the scenario a Ctrl-C stopped: it closes the report
    as ``{"scenario", "ok": false, "interrupted": true}`` with nothing judged,
    and ``validation`` as asked (even "both": it holds no run).
    """
    reports = [r.to_json() for r in results]
    if interrupted is not None:
        reports.append({"format": REPORT_FORMAT, "scenario": interrupted, "ok": False, "interrupted": True,
                        "validation": validation, "start": {"at": None, "links": []},
                        "links": [], "expectations": [], "steps": []})
    return reports[0] if len(reports) == 1 else reports


def write_json(
    results: Sequence[ScenarioResult], path: str | os.PathLike[str], *, interrupted: str | None = None,
    validation: str = "on",
) -> None:
    # Atomically (a temporary file, then renamed): a reader never sees half a report.
    report = json_report(results, interrupted=interrupted, validation=validation)
    write_file(path, (json.dumps(report, indent=2) + "\n").encode())


def _junit_cases(result: ScenarioResult) -> list[tuple[ExpectationVerdict, str]]:
    """(verdict, test case name) of each expectation. A name carries the run
    that judges it, except in a plain run as written, whose names stay as
    they always were: a CI history keeps following the same test cases."""
    if isinstance(result, BothResult):
        verdicts, plain = result.verdicts, False
    else:
        verdicts, plain = list(result.expectations), result.validation == "on"
    return [
        (v, f"expect[{v.index}] {v.subject} is {v.expected} {v.when}"
            + ("" if plain and v.mode == "on" else f" [validation {v.mode}]"))
        for v in verdicts
    ]


def junit_xml(results: Sequence[ScenarioResult], *, interrupted: str | None = None) -> str:
    """JUnit XML: one testsuite per scenario, one testcase per expectation; a
    scenario a Ctrl-C stopped is a testsuite with one error; an expectation
    its run does not judge is a skipped test case."""
    suites = ET.Element("testsuites", name="mesh")
    total = failures = errors = skipped = 0
    for result in results:
        cases = _junit_cases(result)
        bad = sum(v.judged and not v.met for v, _ in cases)
        unjudged = sum(not v.judged for v, _ in cases)
        suite = ET.SubElement(
            suites, "testsuite", name=result.scenario.name, tests=str(len(cases)),
            failures=str(bad), errors="0", skipped=str(unjudged), time=f"{result.seconds:.3f}",
        )
        if result.scenario.source:
            suite.set("file", result.scenario.source)
        total += len(cases)
        failures += bad
        skipped += unjudged
        for v, name in cases:
            case = ET.SubElement(
                suite, "testcase", classname=f"mesh.{result.scenario.name}", name=name,
            )
            if not v.judged:
                ET.SubElement(case, "skipped", message=f"not judged: {v.message}")
            elif not v.met:
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
        out.text = render_both_plain(result) if isinstance(result, BothResult) else render_plain(result)
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
    suites.set("skipped", str(skipped))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(
    results: Sequence[ScenarioResult], path: str | os.PathLike[str], *, interrupted: str | None = None
) -> None:
    write_file(path, junit_xml(results, interrupted=interrupted).encode())


# -- validation on and off, side by side --------------------------------------


def _outcome(record_outcome: str, code: str | None) -> str:
    return f"{record_outcome} ({code})" if code else record_outcome


def _both_header(result: BothResult) -> str:
    on, off = result.on, result.off
    span = f"{on.started:%Y-%m-%d %H:%M}Z -> {on.ended:%Y-%m-%d %H:%M}Z"
    text = f"scenario {result.scenario.name}"
    if result.scenario.description:
        text += f": {result.scenario.description}"
    lines = [
        text,
        "  validation on (as written) and off (on every appliance from the start), side by side",
        f"  emulated {span}, {len(on.steps)} steps, {on.seconds:.1f} s + {off.seconds:.1f} s",
    ]
    off_records = {r.index: r for r in off.steps}
    for record in on.steps[:MAX_STEPS]:
        mine = _outcome(record.outcome, record.code)
        line = f"  step {record.index}  {record.at:%Y-%m-%d %H:%M}Z  {record.step.describe()}"
        if mine != "done":
            line += f" -> {mine}"
        other = off_records.get(record.index)
        theirs = _outcome(other.outcome, other.code) if other is not None else "not played"
        if theirs != mine:
            line += f"; off run: {theirs}"
        lines.append(line)
    if len(on.steps) > MAX_STEPS:
        lines.append(f"  ... and {len(on.steps) - MAX_STEPS} more steps")
    return "\n".join(lines)


def _would_fail(row: LinkRow | None) -> str:
    """What the off run's unvalidated link would have failed: codes, then the first's message."""
    if row is None or not row.would_fail:
        return "-"
    try:
        message = FailureCode.from_code(row.would_fail[0]).message
    except ValueError:
        return ", ".join(row.would_fail)
    return f"{', '.join(row.would_fail)}: {message}"


def _healthy_both_ways(on: LinkRow, off: LinkRow | None) -> bool:
    return on.state == "up" and off is not None and off.state in ("up", "up-unvalidated") \
        and not off.would_fail


def visible_pairs(
    result: BothResult, max_rows: int = MAX_ROWS
) -> tuple[list[tuple[LinkRow, LinkRow | None]], int]:
    """The link pairs worth showing, and how many healthy-both-ways ones were folded away."""
    pairs = result.pairs()
    if len(pairs) <= max_rows:
        return pairs, 0
    named = {v.subject for v in result.verdicts}
    shown = [(on, off) for on, off in pairs if not _healthy_both_ways(on, off) or on.link in named]
    return shown, len(pairs) - len(shown)


def _both_cells(pair: tuple[LinkRow, LinkRow | None]) -> tuple[str, str, str, str]:
    on, off = pair
    return (on.link, on.outcome, off.outcome if off is not None else "absent", _would_fail(off))


_FOLDED = "... and {} more links up, and nothing would fail with validation off"


def render_both_plain(result: BothResult, max_rows: int = MAX_ROWS) -> str:
    """The ``--validation both`` table as plain aligned text."""
    lines = [_both_header(result), ""]
    pairs, folded = visible_pairs(result, max_rows)
    table = [("LINK", "VALIDATION ON", "VALIDATION OFF", "OFF: WOULD FAIL")] + [
        _both_cells(pair) for pair in pairs
    ]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        lines.append(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}".rstrip()
        )
    if folded:
        lines.append(_FOLDED.format(folded))
    verdicts = result.verdicts
    if verdicts:
        lines.append("")
        cells = [_expectation_cells(v) for v in verdicts]
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        for v, c in zip(verdicts, cells):
            lines.append(
                f"{_mark(v)}  {v.mode:<3}  {c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  "
                f"{c[2]:<{widths[2]}}  {c[3]}".rstrip()
            )
    lines.append(_both_summary(result))
    return "\n".join(lines) + "\n"


def _both_summary(result: BothResult) -> str:
    """'PASS s: 3/3 expectations hold (validation on 1/1, off 2/2; 2 links: on 1 halted, 1 up; off ...)'."""

    def held(run: RunResult) -> str:
        return f"{sum(v.met for v in run.judged)}/{len(run.judged)}"

    def counts(run: RunResult) -> str:
        return ", ".join(f"{n} {state}" for state, n in sorted(run.counts().items())) or "none"

    verdicts = result.verdicts
    verdict = "PASS" if result.ok else "FAIL"
    return (
        f"{verdict} {result.scenario.name}: {sum(v.met for v in verdicts)}/{len(verdicts)} "
        f"expectations hold (validation on {held(result.on)}, off {held(result.off)}; "
        f"{plural(len(result.on.links), 'link')}: on {counts(result.on)}; off {counts(result.off)})"
    )


def _print_both_rich(result: BothResult, file: IO[str], max_rows: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=file, highlight=False)
    console.print(_both_header(result), style="bold")
    pairs, folded = visible_pairs(result, max_rows)
    table = Table(show_edge=False, pad_edge=False, expand=False)
    for column in ("link", "validation on", "validation off"):
        table.add_column(column, no_wrap=True)
    table.add_column("off: would fail", overflow="fold")
    for on, off in pairs:
        link, on_cell, off_cell, would = _both_cells((on, off))
        table.add_row(
            link,
            Text(on_cell, style=_STYLE.get(on.state, "")),
            Text(off_cell, style=_STYLE.get(off.state, "") if off is not None else "dim"),
            Text(would, style="yellow" if would != "-" else "dim"),
        )
    if folded:
        table.add_row(Text(_FOLDED.format(folded), style="dim"), "", "", "")
    console.print(table)
    verdicts = result.verdicts
    if verdicts:
        cells = [_expectation_cells(v) for v in verdicts]
        widths = [max(len(c[i]) for c in cells) for i in range(3)]
        for v, c in zip(verdicts, cells):
            line = Text()
            line.append(_mark(v), style=_MARK_STYLE[_mark(v)])
            line.append(f"  {v.mode:<3}  {c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}")
            if c[3]:
                line.append(f"  {c[3]}", style="red")
            console.print(line, overflow="fold")
    console.print(_both_summary(result), style="bold green" if result.ok else "bold red")
