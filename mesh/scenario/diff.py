"""``mesh diff BEFORE.json AFTER.json``: the links two runs' reports disagree on.

Why a command: after a scenario is edited, a certificate swapped or mesh
upgraded, the question is which links came out differently, and two tables of
a thousand links side by side do not answer it. So: one line per link whose
state, code or message differs (``a -> b: up -> halted/revoked "..."``), one
per link or scenario found in only one report; exit 1 when anything differs
(a CI job can fail on it), 0 when nothing does, 2 when a report is unusable.

Reading. Every format this mesh has written is read: 1 (no ``format`` key,
no ``notes``), 2, 3 (which adds the table after start and after every step
that ``--step N`` compares), 4 and 5 (:data:`~mesh.scenario.result.REPORT_FORMAT`,
whose rows add ``reason``: a down link's network cause, compared when given).
Their link rows share ``from``, ``to``, ``state``, ``code`` and ``message``,
and those are what is compared; ``notes`` is not, since the message already
carries the notes' text (and format 1 has none). A newer format is refused in
one line naming both versions: its rows may mean what this mesh cannot tell.
A file that is no report is one line naming it and where its shape broke.

Matching. A report holds one scenario (an object) or several (a list); they
are matched by name, the n-th run of a name with the n-th. The report of a
``mesh run --validation both`` run (``"validation": "both"``, ``"runs"``)
stands for its two runs: the run as written under the scenario's name, the
validation off run under ``<name>, validation off``, as a ``--validation
off`` run is named; so each run of the pair meets its like in the other report. Two reports of one
scenario each are compared whatever their names: the usual pair is a scenario
and a variant of it (the same mesh with a sensor revoked) under another name.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from attrs import define, field

from mesh.errors import InputError
from mesh.scenario.model import link_name
from mesh.scenario.report import plural
from mesh.scenario.result import REPORT_FORMAT

__all__ = [
    "Change",
    "Diff",
    "LinkDifference",
    "Report",
    "ReportedLink",
    "ScenarioDifference",
    "ScenarioReport",
    "compare",
    "compare_tables",
    "diff_command",
    "parse_report",
    "read_report",
]

#: What every unusable file is told.
_FIX = "pass a report written by mesh run --json"

#: A link as (dialer, listener).
LinkKey = tuple[str, str]


@define(frozen=True, kw_only=True)
class ReportedLink:
    """One row of a report's link table, as far as it is compared."""

    state: str
    code: str | None = None
    message: str = ""
    #: Format 5: why a down link is down when the network is why.
    reason: str | None = None

    @property
    def outcome(self) -> str:
        """'up', 'halted/revoked', 'down (network: blocked)': the form expectations are written in."""
        if self.reason:
            return f"{self.state} ({self.reason})"
        return f"{self.state}/{self.code}" if self.code else self.state

    def describe(self) -> str:
        """'up', or 'halted/revoked "This certificate has been revoked ..."'."""
        return f'{self.outcome} "{self.message}"' if self.message else self.outcome

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "code": self.code, "message": self.message}


LinkTable = Mapping[LinkKey, ReportedLink]


@define(frozen=True, kw_only=True)
class ScenarioReport:
    """One scenario's entry in a report."""

    name: str
    format: int
    interrupted: bool = False
    #: The final table, in the report's order.
    links: LinkTable
    #: Format 3: the table after start (0) and after each step, by step index.
    tables: Mapping[int, LinkTable] | None = None

    def table(self, step: int | None, where: str) -> LinkTable:
        """The final table (``step`` None) or the one after ``step``.

        Raises:
            InputError: the scenario played no step ``step``.
        """
        if step is None:
            return self.links
        assert self.tables is not None  # compare() refuses --step on older formats first
        if step not in self.tables:
            played = len(self.tables) - 1
            raise InputError(where, f"scenario {self.name!r} has no step {step} (it played {played})",
                             f"pick a step from 0 (after start) to {played}")
        return self.tables[step]


@define(frozen=True, kw_only=True)
class Report:
    """A report file, read: where it came from and its scenarios in order."""

    where: str
    scenarios: tuple[ScenarioReport, ...] = field(converter=tuple[ScenarioReport, ...])


class Change(enum.Enum):
    """How a link (or a scenario) differs between the two reports."""

    CHANGED = "changed"
    ONLY_BEFORE = "only-before"
    ONLY_AFTER = "only-after"
    #: A scenario a Ctrl-C stopped in either report: it has no table to compare.
    INTERRUPTED = "interrupted"


@define(frozen=True, kw_only=True)
class LinkDifference:
    """A link whose state, code or message differs, or that only one report has."""

    scenario: str
    change: Change
    dialer: str
    listener: str
    before: ReportedLink | None = None
    after: ReportedLink | None = None

    def line(self, before: str, after: str) -> str:
        link = link_name(self.dialer, self.listener)
        if self.before is not None and self.after is not None:
            return f"{link}: {self.before.describe()} -> {self.after.describe()}"
        if self.before is not None:
            return f"{link}: only in {before}: {self.before.describe()}"
        assert self.after is not None
        return f"{link}: only in {after}: {self.after.describe()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "change": self.change.value,
            "link": link_name(self.dialer, self.listener),
            "from": self.dialer,
            "to": self.listener,
            "before": self.before.to_json() if self.before else None,
            "after": self.after.to_json() if self.after else None,
        }


@define(frozen=True, kw_only=True)
class ScenarioDifference:
    """A scenario only one report has, or one a Ctrl-C stopped (nothing to compare)."""

    scenario: str
    change: Change
    before: ScenarioReport | None = None
    after: ScenarioReport | None = None

    def line(self, before: str, after: str) -> str:
        if self.change is Change.INTERRUPTED:
            where = [name for name, side in ((before, self.before), (after, self.after))
                     if side is not None and side.interrupted]
            return f"interrupted in {' and '.join(where)}: its links were not compared"
        side, name = (self.before, before) if self.before is not None else (self.after, after)
        assert side is not None
        return f"scenario only in {name} ({plural(len(side.links), 'link')})"

    def to_json(self) -> dict[str, Any]:
        def summary(side: ScenarioReport | None) -> dict[str, Any] | None:
            return None if side is None else {"interrupted": side.interrupted,
                                              "links": len(side.links)}

        return {
            "scenario": self.scenario,
            "change": self.change.value,
            "link": None,
            "from": None,
            "to": None,
            "before": summary(self.before),
            "after": summary(self.after),
        }


Difference = LinkDifference | ScenarioDifference


@define(frozen=True, kw_only=True)
class Diff:
    """What differs between two reports, in the before report's order."""

    before: str
    after: str
    differences: tuple[Difference, ...] = field(converter=tuple[Difference, ...])
    #: Each line names its scenario (``[name] ...``): more than one was compared.
    several: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.differences)

    def lines(self) -> list[str]:
        """One line per difference, or ``no link changed``."""
        if not self.differences:
            return ["no link changed"]
        return [(f"[{d.scenario}] " if self.several else "") + d.line(self.before, self.after)
                for d in self.differences]

    def to_json(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in self.differences]


# -- reading --


def _not_report(where: str, detail: str) -> InputError:
    return InputError(where, f"is not a mesh report ({detail})", _FIX)


def _path(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _text(item: Mapping[str, Any], key: str, where: str, at: str, noun: str = "") -> str:
    if key not in item:
        missing = f"no {key!r}" + (f" {noun}" if noun else "")
        raise _not_report(where, f"{at}: {missing}" if at else missing)
    value = item[key]
    if not isinstance(value, str):
        raise _not_report(where, f"{_path(at, key)} is {_shown(value)}, not text")
    return value


def _format(entry: Mapping[str, Any], where: str, at: str) -> int:
    """The entry's format version (1 when absent); a newer one than ours is refused."""
    value = entry.get("format", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _not_report(where, f"{_path(at, 'format')} is {_shown(value)}, not a version number")
    if value > REPORT_FORMAT:
        raise InputError(where, f"report format {value} is newer than this mesh reads "
                                f"({REPORT_FORMAT})", "upgrade mesh")
    return value


def _table(parent: Mapping[str, Any], where: str, at: str) -> dict[LinkKey, ReportedLink]:
    """``parent["links"]`` as a table keyed by link, in the report's order."""
    if "links" not in parent:
        raise _not_report(where, f"{at}: no 'links' list" if at else "no 'links' list")
    path = _path(at, "links")
    items = parent["links"]
    if not isinstance(items, list):
        raise _not_report(where, f"{path} is {_shown(items)}, not a list")
    table: dict[LinkKey, ReportedLink] = {}
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise _not_report(where, f"{here} is {_shown(item)}, not an object")
        key = (_text(item, "from", where, here), _text(item, "to", where, here))
        state = _text(item, "state", where, here)
        code = item.get("code")
        if code is not None and not isinstance(code, str):
            raise _not_report(where, f"{here}.code is {_shown(code)}, not text or null")
        message = item.get("message") or ""
        if not isinstance(message, str):
            raise _not_report(where, f"{here}.message is {_shown(message)}, not text")
        reason = item.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise _not_report(where, f"{here}.reason is {_shown(reason)}, not text")
        table[key] = ReportedLink(state=state, code=code, message=message, reason=reason)
    return table


def _tables(entry: Mapping[str, Any], where: str, at: str) -> dict[int, LinkTable]:
    """Format 3: the table after start (0) and after each step, by step index."""
    start = entry.get("start")
    if not isinstance(start, Mapping):
        raise _not_report(where, f"{_path(at, 'start')} is {_shown(start)}, not an object")
    tables: dict[int, LinkTable] = {0: _table(start, where, _path(at, "start"))}
    steps = entry.get("steps")
    if not isinstance(steps, list):
        raise _not_report(where, f"{_path(at, 'steps')} is {_shown(steps)}, not a list")
    for i, step in enumerate(steps):
        here = f"{_path(at, 'steps')}[{i}]"
        if not isinstance(step, Mapping):
            raise _not_report(where, f"{here} is {_shown(step)}, not an object")
        index = step.get("index")
        if isinstance(index, bool) or not isinstance(index, int):
            raise _not_report(where, f"{here}.index is {_shown(index)}, not a step number")
        tables[index] = _table(step, where, here)
    return tables


def _runs(
    entries: Sequence[Mapping[str, Any]], places: list[str], formats: list[int], where: str
) -> list[tuple[Mapping[str, Any], str, int]]:
    """(entry, key path, format) of each run: a ``--validation both`` entry
    stands for its two runs (see the module docstring)."""
    out: list[tuple[Mapping[str, Any], str, int]] = []
    for entry, at, version in zip(entries, places, formats):
        if entry.get("validation") != "both" or entry.get("interrupted") is True:
            out.append((entry, at, version))
            continue
        runs = entry.get("runs")
        if not isinstance(runs, Mapping):
            raise _not_report(where, f"{_path(at, 'runs')} is {_shown(runs)}, not an object")
        for name in ("on", "off"):
            run, here = runs.get(name), _path(_path(at, "runs"), name)
            if not isinstance(run, Mapping):
                raise _not_report(where, f"{here} is {_shown(run)}, not an object")
            out.append((run, here, _format(run, where, here)))
    return out


def parse_report(document: object, *, where: str) -> Report:
    """A ``mesh run --json`` document, checked and read; ``where`` names it in errors.

    Raises:
        InputError: not a mesh report, or one of a newer format than this mesh's.
    """
    if isinstance(document, Mapping):
        entries: Sequence[Mapping[str, Any]] = [document]
        places = [""]
    elif isinstance(document, list) and all(isinstance(e, Mapping) for e in document):
        if not document:
            raise _not_report(where, "an empty list")
        entries = document
        places = [f"[{i}]" for i in range(len(document))]
    else:
        raise _not_report(where, "the top level is not an object or a list of objects")
    # Versions first: a newer report may be shaped in ways this mesh cannot check.
    formats = [_format(entry, where, at) for entry, at in zip(entries, places)]
    scenarios = []
    for entry, at, version in _runs(entries, places, formats, where):
        off = ", validation off" if entry.get("validation") == "off" else ""
        scenarios.append(ScenarioReport(
            name=_text(entry, "scenario", where, at, "name") + off,
            format=version,
            interrupted=entry.get("interrupted") is True,
            links=_table(entry, where, at),
            tables=_tables(entry, where, at) if version >= 3 else None,
        ))
    return Report(where=where, scenarios=scenarios)


def read_report(path: str | os.PathLike[str]) -> Report:
    """The report file at ``path``.

    Raises:
        InputError: missing, unreadable, not JSON, not a mesh report, or newer.
    """
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(where, "no such file", _FIX) from None
    except IsADirectoryError:
        raise InputError(where, "is a folder", _FIX) from None
    except UnicodeDecodeError:
        raise InputError(where, "is not JSON (not UTF-8 text)", _FIX) from None
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror or exc})", _FIX) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(where, f"is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
                         _FIX) from None
    return parse_report(document, where=where)


# -- comparing --


def _by_name(report: Report) -> dict[str, ScenarioReport]:
    """Scenarios by label: the name, then ``name #2`` for its second run, and so on."""
    out: dict[str, ScenarioReport] = {}
    seen: dict[str, int] = {}
    for scenario in report.scenarios:
        seen[scenario.name] = seen.get(scenario.name, 0) + 1
        label = scenario.name if seen[scenario.name] == 1 else f"{scenario.name} #{seen[scenario.name]}"
        out[label] = scenario
    return out


def compare_tables(label: str, before: LinkTable, after: LinkTable) -> list[LinkDifference]:
    """The links whose state, code or message differ between two tables, and
    those only one has, in ``before``'s order: two reports' tables, or one
    run's tables at two moments (the HTML report's changes per step)."""
    found = []
    for (dialer, listener), old in before.items():
        new = after.get((dialer, listener))
        if new is None:
            found.append(LinkDifference(scenario=label, change=Change.ONLY_BEFORE, dialer=dialer,
                                        listener=listener, before=old))
        elif new != old:
            found.append(LinkDifference(scenario=label, change=Change.CHANGED, dialer=dialer,
                                        listener=listener, before=old, after=new))
    for (dialer, listener), new in after.items():
        if (dialer, listener) not in before:
            found.append(LinkDifference(scenario=label, change=Change.ONLY_AFTER, dialer=dialer,
                                        listener=listener, after=new))
    return found


def compare(before: Report, after: Report, *, step: int | None = None) -> Diff:
    """What differs between the final tables of two reports, or their tables after ``step``.

    Raises:
        InputError: ``step`` is negative, a report is older than format 3
            (it keeps no table per step), or a scenario played no step ``step``.
    """
    if step is not None:
        if step < 0:
            raise InputError("--step", f"{step} is not a step", "use 0 (after start) or a step number")
        for report in (before, after):
            for scenario in report.scenarios:
                if scenario.tables is None:
                    raise InputError(
                        report.where,
                        f"report format {scenario.format} keeps only the final link table",
                        "--step needs format 3 or later on both sides: compare without --step, or run again",
                    )
    pairs: list[tuple[str, ScenarioReport | None, ScenarioReport | None]]
    several = not (len(before.scenarios) == 1 == len(after.scenarios))
    if several:
        old, new = _by_name(before), _by_name(after)
        pairs = [(label, scenario, new.get(label)) for label, scenario in old.items()]
        pairs += [(label, None, scenario) for label, scenario in new.items() if label not in old]
    else:
        # One scenario each: compared whatever the names (a scenario and its variant).
        pairs = [(after.scenarios[0].name, before.scenarios[0], after.scenarios[0])]
    differences: list[Difference] = []
    for label, old_run, new_run in pairs:
        if old_run is None or new_run is None:
            change = Change.ONLY_AFTER if old_run is None else Change.ONLY_BEFORE
            differences.append(ScenarioDifference(scenario=label, change=change, before=old_run,
                                                  after=new_run))
        elif old_run.interrupted or new_run.interrupted:
            differences.append(ScenarioDifference(scenario=label, change=Change.INTERRUPTED,
                                                  before=old_run, after=new_run))
        else:
            differences += compare_tables(label, old_run.table(step, before.where),
                                  new_run.table(step, after.where))
    return Diff(before=before.where, after=after.where, differences=differences, several=several)


def diff_command(args: argparse.Namespace) -> int:
    diff = compare(read_report(args.before), read_report(args.after), step=args.step)
    if args.json:
        print(json.dumps(diff.to_json(), indent=2))
    else:
        for line in diff.lines():
            print(line)
    return 1 if diff.changed else 0
