"""What a scenario run produced: the final link table, verdicts, the steps played.

Plain frozen data, independent of the engine, so the reports, the pytest
plugin and the comparison between in-process and multi-process runs all read
the same thing. ``to_json`` is the ``--json`` report of ``mesh run``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from attrs import define, field

from mesh.scenario.model import Expectation, Scenario, Step, format_duration, link_name, parse_link

__all__ = [
    "LinkRow", "ExpectationVerdict", "StepRecord", "RunResult", "CertificateFacts", "judge",
    "not_judged", "REPORT_FORMAT",
]

#: The JSON report's format version, its first key (``"format"``). Every
#: writer of a report uses it; a change to the shape raises it.
#:
#: 1. (unnumbered) scenario, ok, interrupted, links (from, to, state, code,
#:    message), expectations, steps.
#: 2. ``format`` itself, and ``links[].notes``: the codes an accepting end
#:    noted without refusing (``no_cdp``: revocation not checked).
#: 3. the link table as it stood after the start settle (``start``: ``at``,
#:    ``links``) and after every step (``steps[].links``), rows shaped as the
#:    final ``links``: what the expectations of that moment were judged on,
#:    so two runs can be compared step by step (``mesh diff --step N``).
#:    ``start`` is its own object, not a step 0: every entry of ``steps`` is
#:    an action that was played.
#: 4. which validation run a report is (``validation``: ``on`` or ``off``),
#:    and per expectation its ``mode`` and whether it was ``judged`` (an
#:    expectation for the other run is not: ``actual`` and ``met`` null); a
#:    ``--validation both`` scenario is one object holding both reports
#:    (``validation: "both"``, ``runs: {"on", "off"}``).
#: 5. ``links[].reason``: why a ``down`` link is down when the network is
#:    why (``network: blocked``, ``network: partitioned``, ``network: loss``;
#:    null otherwise), so a report tells a link cut by a firewall from one
#:    halted by validation; an expectation's ``expected``/``actual`` then read
#:    ``down (network: blocked)``. Only ``mesh run --hosts`` has a network to
#:    blame; other runs write null.
REPORT_FORMAT = 5


@define(frozen=True, kw_only=True)
class LinkRow:
    """One link as the mesh reported it at a moment."""

    dialer: str
    listener: str
    state: str
    code: str | None = None
    message: str = ""
    refused_by: str | None = None
    delivered: int = 0
    #: Codes an accepting end noted (``no_cdp``: revocation not checked).
    notes: tuple[str, ...] = ()
    #: Of an up-unvalidated link: every check that would have failed with
    #: validation on (``code`` is the first), for the validation-off column.
    would_fail: tuple[str, ...] = ()
    #: Of a ``down`` link: the network's part in it (``network: blocked``...;
    #: :data:`~mesh.scenario.model.NETWORK_REASONS`), None when it had none.
    reason: str | None = None

    @property
    def link(self) -> str:
        return link_name(self.dialer, self.listener)

    @property
    def outcome(self) -> str:
        """'halted/revoked', 'up', 'down (network: blocked)': the form expectations are written in."""
        if self.reason:
            return f"{self.state} ({self.reason})"
        return f"{self.state}/{self.code}" if self.code else self.state

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.dialer,
            "to": self.listener,
            "state": self.state,
            "code": self.code,
            "message": self.message,
            "notes": list(self.notes),
            "reason": self.reason,
        }


@define(frozen=True, kw_only=True)
class ExpectationVerdict:
    """One expectation checked: what was expected, what was seen, whether it held.

    An expectation whose ``mode`` names a run that was not played (``mode =
    "off"`` in a run as written) is not judged: ``judged`` is false, and it
    counts neither as met nor as failed, so it never changes a run's verdict.
    """

    index: int
    expectation: Expectation
    actual: str
    met: bool
    #: The step it was checked after (0 = after start); None never happens
    #: after a run, since "at the end" is resolved to the last step.
    checked_after: int
    at: dt.datetime
    message: str = ""
    judged: bool = True

    @property
    def subject(self) -> str:
        return self.expectation.subject

    @property
    def mode(self) -> str:
        """The run it is judged in: "on" (as written) or "off"."""
        return self.expectation.mode

    @property
    def expected(self) -> str:
        return self.expectation.expected

    @property
    def when(self) -> str:
        if self.expectation.due is None:
            return "at the end"
        if self.checked_after == 0:
            return "after start"
        return f"after step {self.checked_after}"

    def to_json(self) -> dict[str, Any]:
        """The report's entry: exactly the keys of the documented JSON contract.

        One not judged has ``"judged": false`` and null ``actual`` and ``met``.
        """
        return {
            "link": self.subject,
            "expected": self.expected,
            "actual": self.actual if self.judged else None,
            "met": self.met if self.judged else None,
            "mode": self.mode,
            "judged": self.judged,
        }


@define(frozen=True, kw_only=True)
class StepRecord:
    """One step as played: when it ran and what came of it."""

    index: int
    step: Step
    at: dt.datetime
    outcome: str = "done"
    code: str | None = None
    message: str = ""
    #: The link table once the mesh settled after the step (what the
    #: expectations due after it were judged on).
    links: tuple[LinkRow, ...] = field(default=(), converter=tuple[LinkRow, ...])

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "after": format_duration(self.step.after),
            "action": str(self.step.action),
            "target": self.step.target,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "code": self.code,
            "message": self.message,
            "links": [row.to_json() for row in self.links],
        }


@define(frozen=True, kw_only=True)
class CertificateFacts:
    """What an appliance's certificate said when the run started, as text.

    Text, not the certificate: a report shows it, and the result stays plain
    data (:func:`mesh.scenario.certificates.certificates_in_play` reads them).
    """

    appliance: str
    #: The scenario's ``certificate`` key: the fault recipe that made it.
    recipe: str
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    #: The CRL Distribution Point URLs, or "(none)".
    cdp: str
    #: "RSA 2048 bits".
    key: str


@define(frozen=True, kw_only=True)
class RunResult:
    """Everything a run found out."""

    scenario: Scenario
    links: tuple[LinkRow, ...] = field(converter=tuple[LinkRow, ...])
    expectations: tuple[ExpectationVerdict, ...] = field(converter=tuple[ExpectationVerdict, ...])
    steps: tuple[StepRecord, ...] = field(default=(), converter=tuple[StepRecord, ...])
    #: The link table once the mesh settled at start (before any step).
    start_links: tuple[LinkRow, ...] = field(default=(), converter=tuple[LinkRow, ...])
    started: dt.datetime
    ended: dt.datetime
    #: Wall-clock seconds the run took (for progress and the summary only).
    seconds: float = 0.0
    #: "in-process", "processes" or "workers".
    mode: str = "in-process"
    #: Which run of ``mesh run --validation`` this is: "on" (as written) or
    #: "off" (validation off on every appliance from the start).
    validation: str = "on"
    #: Each appliance's certificate at start (not in the JSON report).
    certificates: tuple[CertificateFacts, ...] = field(
        default=(), converter=tuple[CertificateFacts, ...]
    )

    @property
    def ok(self) -> bool:
        return all(v.met for v in self.judged)

    @property
    def judged(self) -> list[ExpectationVerdict]:
        return [v for v in self.expectations if v.judged]

    @property
    def failures(self) -> list[ExpectationVerdict]:
        return [v for v in self.judged if not v.met]

    @property
    def not_judged(self) -> list[ExpectationVerdict]:
        """Expectations whose ``mode`` names the other run."""
        return [v for v in self.expectations if not v.judged]

    def link(self, name: str) -> LinkRow:
        """The row of 'a -> b'; KeyError naming the links there are."""
        dialer, listener = parse_link(name)
        for row in self.links:
            if row.dialer == dialer and row.listener == listener:
                return row
        known = ", ".join(row.link for row in self.links[:10])
        raise KeyError(f"no link {name!r} in this run; links: {known}")

    def counts(self) -> dict[str, int]:
        """How many links are in each state."""
        out: dict[str, int] = {}
        for row in self.links:
            out[row.state] = out.get(row.state, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "scenario": self.scenario.name,
            "ok": self.ok,
            "interrupted": False,
            "validation": self.validation,
            "start": {"at": self.started.isoformat(),
                      "links": [row.to_json() for row in self.start_links]},
            "links": [row.to_json() for row in self.links],
            "expectations": [v.to_json() for v in self.expectations],
            "steps": [s.to_json() for s in self.steps],
        }


def judge(
    index: int, expectation: Expectation, *, links: list[LinkRow] | tuple[LinkRow, ...],
    uploads: dict[int, StepRecord], checked_after: int, at: dt.datetime,
) -> ExpectationVerdict:
    """Check one expectation against the link table (or an upload step's record)."""
    if expectation.link is not None:
        dialer, listener = parse_link(expectation.link)
        row = next((r for r in links if r.dialer == dialer and r.listener == listener), None)
        if row is None:
            actual, message, met = "absent", "the mesh reported no such link", False
        else:
            actual, message = row.outcome, row.message
            met = row.state == expectation.state and (
                expectation.code is None or row.code == expectation.code
            ) and (expectation.reason is None or row.reason == expectation.reason)
    else:
        record = uploads.get(expectation.upload_step or 0)
        if record is None:
            actual, message, met = "not played", "the upload step did not run", False
        else:
            actual = f"{record.outcome}/{record.code}" if record.code else record.outcome
            message = record.message
            met = record.outcome == expectation.verdict and (
                expectation.code is None or record.code == expectation.code
            )
    return ExpectationVerdict(
        index=index, expectation=expectation, actual=actual, met=met,
        checked_after=checked_after, at=at, message=message,
    )


def not_judged(
    index: int, expectation: Expectation, *, checked_after: int, at: dt.datetime
) -> ExpectationVerdict:
    """An expectation whose ``mode`` names a run that was not played; says which run judges it."""
    mode = expectation.mode
    return ExpectationVerdict(
        index=index, expectation=expectation, actual="not judged", met=False, judged=False,
        checked_after=checked_after, at=at,
        message=f"judged only in the validation {mode} run (mesh run --validation {mode} or both)",
    )
