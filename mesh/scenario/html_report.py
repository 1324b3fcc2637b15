"""``mesh run --html REPORT.html``: a run report people open, in one file.

Why a page: the JSON report is for machines and ``mesh diff``; the terminal
table shows the end. A person reviewing a run (a failed CI job, a scenario
to show a customer) wants the story: the mesh drawn at start and after every
step, what each step changed in the operator's words, which expectations
held, the events on the emulated clock, and which certificate each appliance
started with and the fault recipe that made it.

One self-contained file: inline CSS and a little inline JS (the timeline's
filters), no network, no fonts, no scripts from elsewhere, so it opens from
a CI artefact store or a mail attachment as it is. Every text is escaped.

The page stays light whatever the mesh's size: each drawing folds the
healthy links of a big mesh (:func:`mesh.graph.grouped`), a step's change
list, the certificate table and the timeline are capped, and what was left
out is counted, never silently dropped.

Pure functions from the results (and each run's first events) to a string;
:func:`write_html` writes it atomically, like ``--json``.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from typing import Sequence

from attrs import define, evolve, field

from mesh.eventlog import EventLog
from mesh.events import Event
from mesh.graph import Graph, grouped, render_svg
from mesh.pki.file_output import write_file
from mesh.scenario.both import BothResult, ScenarioResult
from mesh.scenario.diff import LinkTable, ReportedLink, compare_tables
from mesh.scenario.model import format_duration
from mesh.scenario.report import plural
from mesh.scenario.result import CertificateFacts, ExpectationVerdict, LinkRow, RunResult

__all__ = [
    "EVENTS_SHOWN",
    "CHANGES_SHOWN",
    "CERTIFICATES_SHOWN",
    "Timeline",
    "Played",
    "html_report",
    "write_html",
]

#: Events shown per run: the first ones (a big mesh appends millions).
EVENTS_SHOWN = 2_000
#: Changed links listed under one drawing.
CHANGES_SHOWN = 200
#: Certificate rows per run.
CERTIFICATES_SHOWN = 500


@define(frozen=True, kw_only=True)
class Timeline:
    """The first events of a run, and how many it appended in all."""

    events: tuple[Event, ...] = field(converter=tuple[Event, ...])
    total: int

    @classmethod
    def of(cls, log: EventLog) -> Timeline:
        """What ``log`` kept of the run's beginning (make it with ``head=EVENTS_SHOWN``)."""
        return cls(events=log.head[:EVENTS_SHOWN], total=len(log))


@define(frozen=True, kw_only=True)
class Played:
    """One scenario as ``mesh run`` played it, with each run's events.

    ``timelines`` follows the runs: one for a run, (on, off) for a
    ``--validation both`` pair; None (or missing) where no events were kept.
    """

    result: ScenarioResult
    timelines: tuple[Timeline | None, ...] = field(default=(), converter=tuple[Timeline | None, ...])

    def runs(self) -> list[tuple[RunResult, Timeline | None, str]]:
        """(run, its events, its heading suffix) for each run of the scenario."""
        timelines = list(self.timelines)
        if isinstance(self.result, BothResult):
            timelines += [None] * (2 - len(timelines))
            return [(self.result.on, timelines[0], "validation on (as written)"),
                    (self.result.off, timelines[1], "validation off")]
        tag = "validation off" if self.result.validation == "off" else ""
        return [(self.result, timelines[0] if timelines else None, tag)]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _instant(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _offset(at: dt.datetime, start: dt.datetime) -> str:
    delta = at - start
    return "+" + format_duration(delta) if delta > dt.timedelta() else "+0s"


# -- drawings and changes --


def _table(rows: Sequence[LinkRow]) -> LinkTable:
    return {(r.dialer, r.listener): _reported(r) for r in rows}


def _reported(r: LinkRow) -> ReportedLink:
    return ReportedLink(state=r.state, code=r.code, message=r.message, reason=r.reason)


def _drawing(base: Graph, rows: Sequence[LinkRow], ids: str) -> str:
    states = {(r.dialer, r.listener): {"state": r.state, "code": r.code, "message": r.message}
              for r in rows}
    return render_svg(grouped(base.with_states(states)), ids=ids)


def _change_list(before: Sequence[LinkRow] | None, after: Sequence[LinkRow]) -> str:
    """The links that differ from the moment before (at start: those not up)."""
    if before is None:
        lines = [f"{r.link}: {_reported(r).describe()}" for r in after if r.state != "up"]
        if not lines:
            return '<p class="changes none" data-testid="changes">every link up</p>'
        heading = "not up at start"
    else:
        lines = [d.line("before", "after") for d in compare_tables("", _table(before), _table(after))]
        if not lines:
            return '<p class="changes none" data-testid="changes">no link changed</p>'
        heading = f"{plural(len(lines), 'link')} changed"
    items = "".join(f'<li class="change">{_e(line)}</li>' for line in lines[:CHANGES_SHOWN])
    more = len(lines) - CHANGES_SHOWN
    if more > 0:
        items += f'<li class="more">… and {_e(plural(more, "more link"))}</li>'
    return (f'<div class="changes" data-testid="changes"><h4>{_e(heading)}</h4>'
            f"<ul>{items}</ul></div>")


def _moments(run: RunResult, anchor: str) -> str:
    base = evolve(Graph.from_scenario(run.scenario), title="")
    parts = [(
        '<div class="moment" data-testid="moment" data-step="0">'
        f'<h4>At start <span class="when">{_e(_instant(run.started))}</span></h4>'
        f'<div class="drawing">{_drawing(base, run.start_links, f"{anchor}-0-")}</div>'
        f"{_change_list(None, run.start_links)}</div>"
    )]
    before: Sequence[LinkRow] = run.start_links
    for record in run.steps:
        outcome = ""
        if record.outcome != "done" or record.code:
            outcome = f" → {record.outcome}" + (f" ({record.code})" if record.code else "")
        message = (f'<p class="step-message">{_e(record.message)}</p>' if record.message else "")
        note = f'<p class="note">{_e(record.step.note)}</p>' if record.step.note else ""
        parts.append(
            f'<div class="moment" data-testid="moment" data-step="{record.index}">'
            f"<h4>After step {record.index}: {_e(record.step.describe())}{_e(outcome)} "
            f'<span class="when">{_e(_instant(record.at))} '
            f"({_e(_offset(record.at, run.started))})</span></h4>{note}{message}"
            f'<div class="drawing">{_drawing(base, record.links, f"{anchor}-{record.index}-")}</div>'
            f"{_change_list(before, record.links)}</div>"
        )
        before = record.links
    return "".join(parts)


# -- expectations, certificates, events --


def _verdict_class(v: ExpectationVerdict) -> tuple[str, str]:
    if not v.judged:
        return "not-judged", "not judged"
    return ("pass", "pass") if v.met else ("fail", "FAIL")


def _expectations(run: RunResult) -> str:
    if not run.expectations:
        return '<p class="none">no expectations</p>'
    rows = []
    for v in run.expectations:
        css, word = _verdict_class(v)
        rows.append(
            f'<tr class="verdict-{css}" data-verdict="{css}"><td>{v.index}</td><td>{_e(v.subject)}</td>'
            f"<td>{_e(v.expected)}</td><td>{_e(v.when)}</td><td>{_e(v.actual)}</td>"
            f'<td class="verdict">{_e(word)}</td><td class="message">{_e(v.message)}</td></tr>'
        )
    return ('<table class="expectations" data-testid="expectations"><thead><tr><th>#</th>'
            "<th>link or upload</th><th>expected</th><th>when</th><th>actual</th><th>verdict</th>"
            f"<th>message</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _certificate_row(c: CertificateFacts) -> str:
    return (f'<tr data-appliance="{_e(c.appliance)}"><td>{_e(c.appliance)}</td>'
            f'<td class="recipe">{_e(c.recipe)}</td><td>{_e(c.subject)}</td><td>{_e(c.issuer)}</td>'
            f"<td>{_e(_instant(c.not_before))}</td><td>{_e(_instant(c.not_after))}</td>"
            f"<td>{_e(c.cdp)}</td><td>{_e(c.key)}</td></tr>")


def _certificates(run: RunResult) -> str:
    if not run.certificates:
        return '<p class="none" data-testid="certificates">no certificates recorded for this run</p>'
    rows = "".join(_certificate_row(c) for c in run.certificates[:CERTIFICATES_SHOWN])
    more = len(run.certificates) - CERTIFICATES_SHOWN
    left = f'<p class="more">{_e(plural(more, "more certificate"))} not shown</p>' if more > 0 else ""
    return ('<table class="certificates" data-testid="certificates"><thead><tr><th>appliance</th>'
            "<th>recipe</th><th>subject</th><th>issuer</th><th>not before</th><th>not after</th>"
            f"<th>CRL distribution point</th><th>key</th></tr></thead><tbody>{rows}</tbody></table>{left}")


def _involved(event: Event) -> list[str]:
    """The appliances an event is about (the timeline's appliance filter)."""
    names: list[str] = []
    fields = event.as_dict()
    for key in ("appliance", "dialer", "listener", "refused_by", "peer"):
        value = fields.get(key)
        if isinstance(value, str) and value and value not in names:
            names.append(value)
    return names


def _options(items: Sequence[str]) -> str:
    return "".join(f'<option value="{_e(i)}">{_e(i)}</option>' for i in items)


def _timeline(run: RunResult, timeline: Timeline | None) -> str:
    if timeline is None:
        return '<p class="none" data-testid="timeline">no events were kept for this run</p>'
    events = timeline.events
    appliances = [a.name for a in run.scenario.appliances]
    kinds = sorted({e.kind for e in events})
    rows = []
    for event in events:
        names = _involved(event)
        rows.append(
            f'<tr class="event severity-{_e(event.severity.value)}" data-kind="{_e(event.kind)}" '
            f'data-appliances="{_e(" ".join(names))}"><td>{_e(_instant(event.at))}</td>'
            f"<td>{_e(_offset(event.at, run.started))}</td><td>{_e(event.kind)}</td>"
            f'<td class="text">{_e(event.describe())}</td></tr>'
        )
    left = timeline.total - len(events)
    count = (f"the first {len(events):,} of {timeline.total:,} events; "
             f"{left:,} left out" if left > 0 else plural(len(events), "event"))
    return (
        '<div class="timeline" data-testid="timeline">'
        f'<p class="count" data-testid="event-count">{_e(count)}</p>'
        '<p class="filters"><label>appliance <select class="filter-appliance">'
        f'<option value="">all</option>{_options(appliances)}</select></label> '
        '<label>kind <select class="filter-kind">'
        f'<option value="">all</option>{_options(kinds)}</select></label> '
        '<span class="shown"></span></p>'
        '<table class="events"><thead><tr><th>emulated time</th><th>since start</th><th>kind</th>'
        f"<th>what happened</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


# -- the page --


def _run_section(run: RunResult, timeline: Timeline | None, tag: str, anchor: str) -> str:
    verdict = "passed" if run.ok else "FAILED"
    counts = ", ".join(f"{n} {state}" for state, n in sorted(run.counts().items())) or "no links"
    judged = run.judged
    summary = (f"{sum(v.met for v in judged)}/{len(judged)} expectations met"
               + (f", {len(run.not_judged)} not judged" if run.not_judged else "")
               + f"; {plural(len(run.steps), 'step')}; final links: {counts}")
    heading = f"<h3>{_e(tag)} — {_e(verdict)}</h3>" if tag else ""
    return (
        f'<div class="run {"ok" if run.ok else "failed"}" id="{anchor}" data-testid="run" '
        f'data-validation="{_e(run.validation)}">{heading}'
        f'<p class="summary">{_e(summary)}; emulated {_e(_instant(run.started))} → '
        f"{_e(_instant(run.ended))}</p>"
        f"<h3>Expectations</h3>{_expectations(run)}"
        f"<h3>The mesh, step by step</h3>{_moments(run, anchor)}"
        f"<h3>Certificates at start</h3>{_certificates(run)}"
        f"<h3>Events</h3>{_timeline(run, timeline)}</div>"
    )


def _scenario_section(n: int, played: Played) -> str:
    result = played.result
    scenario = result.scenario
    verdict = "passed" if result.ok else "FAILED"
    description = (f'<p class="description">{_e(scenario.description)}</p>'
                   if scenario.description else "")
    source = f'<p class="source">{_e(scenario.source)}</p>' if scenario.source else ""
    runs = "".join(_run_section(run, timeline, tag, f"scenario-{n}-{run.validation}")
                   for run, timeline, tag in played.runs())
    return (
        f'<section class="scenario {"ok" if result.ok else "failed"}" id="scenario-{n}" '
        f'data-testid="scenario" data-scenario="{_e(scenario.name)}">'
        f'<h2>{_e(scenario.name)} <span class="badge">{_e(verdict)}</span></h2>'
        f"{description}{source}{runs}</section>"
    )


def _index(played: Sequence[Played]) -> str:
    items = "".join(
        f'<li class="{"ok" if p.result.ok else "failed"}"><a href="#scenario-{n}">'
        f'{_e(p.result.scenario.name)}</a> — {"passed" if p.result.ok else "FAILED"}</li>'
        for n, p in enumerate(played, 1)
    )
    return f'<nav class="index" data-testid="index"><h2>Scenarios</h2><ol>{items}</ol></nav>'


def html_report(played: Sequence[Played], *, interrupted: str | None = None) -> str:
    """The whole page: an index when there are several scenarios, then one section each.

    ``interrupted`` names the scenario a Ctrl-C stopped (it has no section).
    """
    names = ", ".join(p.result.scenario.name for p in played)
    title = f"mesh run: {names}" if names else "mesh run"
    passed = sum(p.result.ok for p in played)
    status = f"{passed}/{len(played)} scenarios passed"
    stopped = (f'<p class="interrupted" data-testid="interrupted">interrupted during scenario '
               f"{_e(interrupted)}: it has no section</p>" if interrupted else "")
    index = _index(played) if len(played) > 1 else ""
    sections = "".join(_scenario_section(n, p) for n, p in enumerate(played, 1))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f'<body><header><h1>mesh run report</h1><p class="status">{_e(status)}</p>{stopped}</header>'
        f"{index}<main>{sections}</main><script>{_JS}</script></body></html>\n"
    )


def write_html(
    played: Sequence[Played], path: str | os.PathLike[str], *, interrupted: str | None = None
) -> None:
    # Atomically (a temporary file, then renamed): a reader never sees half a page.
    write_file(path, html_report(played, interrupted=interrupted).encode())


_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:0 auto;max-width:1200px;padding:0 1.5em 3em;
color:#263238;font-size:14px}
h1{margin:.8em 0 .2em}h2{border-bottom:2px solid #cfd8dc;padding-bottom:.2em;margin-top:1.6em}
h3{margin:1.2em 0 .4em}h4{margin:.6em 0 .3em}
.badge{font-size:.6em;padding:.15em .5em;border-radius:.3em;vertical-align:middle;color:#fff;
background:#2e7d32}
.failed>h2 .badge{background:#c62828}
.description{font-size:1.05em;max-width:60em}.source,.when,.count,.summary{color:#546e7a}
.interrupted{color:#c62828;font-weight:bold}
nav.index li.failed a{color:#c62828}
table{border-collapse:collapse;margin:.3em 0;width:100%}
th,td{border:1px solid #cfd8dc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eceff1}
tr.verdict-pass .verdict{color:#2e7d32;font-weight:bold}
tr.verdict-fail .verdict{color:#c62828;font-weight:bold}tr.verdict-fail{background:#ffebee}
tr.verdict-not-judged{color:#78909c}
.moment{border-left:4px solid #cfd8dc;padding:.2em 0 .6em 1em;margin:1em 0}
.drawing{overflow-x:auto}.drawing svg{max-width:100%;height:auto}
.changes ul{margin:.2em 0;padding-left:1.4em}.change{font-family:monospace;white-space:pre-wrap}
.step-message{color:#c62828}
.events td{font-size:.92em}.events td.text{font-family:monospace;white-space:pre-wrap}
tr.severity-error{background:#ffebee}tr.severity-warning{background:#fff8e1}
.certificates td{font-size:.92em;word-break:break-word}.certificates td:last-child{white-space:nowrap}
"""

# The timeline's filters: rows carry their kind and the appliances they are
# about; a row shows when it matches both selects of its own run.
_JS = """
document.querySelectorAll('.timeline').forEach(function (box) {
  var who = box.querySelector('.filter-appliance'), kind = box.querySelector('.filter-kind');
  var shown = box.querySelector('.shown'), rows = box.querySelectorAll('tr.event');
  function apply() {
    var n = 0;
    rows.forEach(function (row) {
      var ok = (!who.value || row.dataset.appliances.split(' ').indexOf(who.value) >= 0) &&
               (!kind.value || row.dataset.kind === kind.value);
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + ' of ' + rows.length + ' shown';
  }
  who.addEventListener('change', apply);
  kind.addEventListener('change', apply);
  apply();
});
"""
