"""``mesh run --validation both``: one scenario played as written and with validation off.

Regression suites pin what a link does with validation on and with it off.
Two twin files drift apart (a step added to one, not the other); one file
played twice cannot. The "off" run is the same scenario with validation off
on every appliance from the start and its ``set-validation`` steps skipped
(:mod:`mesh.scenario.driver`), so the two runs differ in exactly one thing.

A :class:`BothResult` pairs the two :class:`~mesh.scenario.result.RunResult`
and answers what one run answers (``ok``, the verdicts, the JSON report), so
the reports and ``mesh run``'s exit status treat it like any run. Each
expectation is judged in the run its ``mode`` names and only there.
"""

from __future__ import annotations

from typing import Any, Callable

from attrs import Attribute, define, field

from mesh.scenario.model import Scenario
from mesh.scenario.result import REPORT_FORMAT, ExpectationVerdict, LinkRow, RunResult

__all__ = ["BothResult", "ScenarioResult"]


def _run_of(validation: str) -> Callable[[object, Attribute[RunResult], RunResult], None]:
    def check(instance: object, attribute: Attribute[RunResult], value: RunResult) -> None:
        if value.validation != validation:
            raise ValueError(f"{attribute.name}: the validation {value.validation} run, "
                             f"not the validation {validation} one")

    return check


@define(frozen=True, kw_only=True)
class BothResult:
    """The validation on run (the scenario as written) and the validation off run of one scenario."""

    on: RunResult = field(validator=_run_of("on"))
    off: RunResult = field(validator=_run_of("off"))

    def __attrs_post_init__(self) -> None:
        if self.on.scenario.name != self.off.scenario.name:
            raise ValueError(f"runs of two scenarios: {self.on.scenario.name!r} "
                             f"and {self.off.scenario.name!r}")

    @property
    def scenario(self) -> Scenario:
        """The scenario as written."""
        return self.on.scenario

    @property
    def seconds(self) -> float:
        return self.on.seconds + self.off.seconds

    @property
    def ok(self) -> bool:
        return self.on.ok and self.off.ok

    @property
    def verdicts(self) -> list[ExpectationVerdict]:
        """Every expectation once, from the run its ``mode`` names, in file order."""
        judged = [v for run in (self.on, self.off) for v in run.judged]
        return sorted(judged, key=lambda v: v.index)

    @property
    def failures(self) -> list[ExpectationVerdict]:
        return [v for v in self.verdicts if not v.met]

    def pairs(self) -> list[tuple[LinkRow, LinkRow | None]]:
        """Each link of the on run beside the same link in the off run (None: absent)."""
        off = {(r.dialer, r.listener): r for r in self.off.links}
        return [(row, off.get((row.dialer, row.listener))) for row in self.on.links]

    def to_json(self) -> dict[str, Any]:
        """``{"format", "scenario", "validation": "both", "ok", "interrupted",
        "runs": {"on": <report>, "off": <report>}}``: each run's report whole."""
        return {
            "format": REPORT_FORMAT,
            "scenario": self.scenario.name,
            "validation": "both",
            "ok": self.ok,
            "interrupted": False,
            "runs": {"on": self.on.to_json(), "off": self.off.to_json()},
        }


#: What playing one scenario gives: one run, or both validation runs.
ScenarioResult = RunResult | BothResult
