"""The one scenario driver: play the timeline on a backend, judge the expectations.

Every way of running a scenario (in this process, ``--processes``, and the
backends to come) goes through this loop, so a step means the same thing
everywhere: the clock jumps by ``after``, the action runs (its
:class:`~mesh.scenario.actions.Action` knows which backend call it is), a
``scenario-step`` event is logged, the backend settles (every link attempts
afresh and has an outcome), and the expectations due after that step are
judged on the link table. That table is kept, after the start and after every
step, for the report (``start.links``, ``steps[].links``): read once per
moment, the table the report shows is the one the expectations were judged on.

The same loop plays the "off" run of ``mesh run --validation off|both``
(``validation="off"``): the backend runs the scenario with validation off on
every appliance from the start, and the driver skips the timeline's
``set-validation`` steps, which would otherwise switch it back on, while
keeping their place (the clock still jumps, the mesh still settles, the
step record says it was skipped), so step numbers and ``after_step`` mean
the same moment in both runs. Each run judges the expectations whose ``mode``
names it; the others are kept as not judged.
"""

from __future__ import annotations

import datetime as dt
import time

from attrs import evolve

from mesh.eventlog import EventLog
from mesh.scenario.actions import Action
from mesh.scenario.backend import Backend, UploadVerdict
from mesh.scenario.events import ExpectationsChecked, StepPlayed
from mesh.scenario.model import VALIDATION_RUNS, Scenario, Step
from mesh.scenario.result import (
    ExpectationVerdict, LinkRow, RunResult, StepRecord, judge, not_judged,
)

__all__ = ["Driver", "SKIPPED_IN_OFF_RUN"]

#: The outcome of a ``set-validation`` step in the validation off run.
SKIPPED_IN_OFF_RUN = "skipped (validation off run)"


class Driver:
    """Plays one scenario on one backend and keeps what it found."""

    def __init__(self, scenario: Scenario, backend: Backend, events: EventLog, *,
                 validation: str = "on") -> None:
        if validation not in VALIDATION_RUNS:
            raise ValueError(f"validation: {validation!r} is not one of {', '.join(VALIDATION_RUNS)}")
        self.scenario = scenario
        self.backend = backend
        self.events = events
        #: "on" (the scenario as written) or "off" (see the module docstring).
        self.validation = validation
        self.records: list[StepRecord] = []
        self._uploads: dict[int, StepRecord] = {}
        self._verdicts: dict[int, ExpectationVerdict] = {}
        #: The link table after the start settle (:meth:`check` of step 0).
        self.start_links: tuple[LinkRow, ...] = ()
        self._started_wall = time.monotonic()

    async def start(self) -> None:
        """Wait for the first outcome of every link, then judge ``after_step = 0``."""
        await self.backend.settle("at start")
        self.check(0)

    async def play(self, index: int, step: Step) -> StepRecord:
        """Jump the clock, act, settle, record and judge step ``index``.

        Raises:
            ScenarioNotSettled: some link had no outcome after the step.
        """
        backend = self.backend
        if step.after:
            await backend.advance(step.after)
        at = backend.now()
        if self.validation == "off" and step.action is Action.SET_VALIDATION:
            outcome: object = None
            record = StepRecord(index=index, step=step, at=at, outcome=SKIPPED_IN_OFF_RUN)
        else:
            outcome = await step.action.apply(backend, step)
            record = _record(index, step, at, outcome)
        self.events.append(
            StepPlayed(at=at, scenario=self.scenario.name, index=index,
                       action=str(step.action), target=step.target, outcome=record.outcome,
                       code=record.code)
        )
        await backend.settle(f"step {index} ({step.describe()})")
        links = tuple(backend.links())
        record = evolve(record, links=links)
        self.records.append(record)
        if isinstance(outcome, UploadVerdict):
            self._uploads[index] = record
        self.check(index, links)
        return record

    def check(self, after: int, links: tuple[LinkRow, ...] | None = None) -> None:
        """Judge the expectations due after step ``after`` (0 = after start).

        ``links`` is the table read once the mesh settled (read now when not
        given). After start that table is kept as :attr:`start_links`: the
        runners settle at start in their own way and then call this.
        """
        last = len(self.scenario.steps)
        rows = tuple(self.backend.links()) if links is None else links
        if after == 0:
            self.start_links = rows
        judged = []
        for i, expectation in enumerate(self.scenario.expectations, 1):
            due = expectation.due if expectation.due is not None else last
            if due != after or i in self._verdicts or expectation.mode != self.validation:
                continue
            self._verdicts[i] = judge(i, expectation, links=rows, uploads=self._uploads,
                                      checked_after=after, at=self.backend.now())
            judged.append(self._verdicts[i])
        if judged:
            self.events.append(
                ExpectationsChecked(
                    at=self.backend.now(), scenario=self.scenario.name, after_step=after,
                    met=sum(v.met for v in judged),
                    failed=tuple(f"expect[{v.index}] {v.subject}: expected {v.expected}, "
                                 f"got {v.actual}" for v in judged if not v.met),
                )
            )

    def result(self, *, mode: str) -> RunResult:
        last = len(self.scenario.steps)
        at = self.backend.now()
        verdicts = [
            self._verdicts.get(i) or not_judged(
                i, expectation, checked_after=last if expectation.due is None else expectation.due, at=at
            )
            for i, expectation in enumerate(self.scenario.expectations, 1)
            if i in self._verdicts or expectation.mode != self.validation
        ]
        return RunResult(
            scenario=self.scenario,
            links=self.backend.links(),
            expectations=verdicts,
            steps=self.records,
            start_links=self.start_links,
            started=self.scenario.start,
            ended=self.backend.now(),
            seconds=time.monotonic() - self._started_wall,
            mode=mode,
            validation=self.validation,
        )


def _record(index: int, step: Step, at: dt.datetime, outcome: object) -> StepRecord:
    if not isinstance(outcome, UploadVerdict):
        return StepRecord(index=index, step=step, at=at, outcome="done")
    if outcome.accepted:
        return StepRecord(index=index, step=step, at=at, outcome="accepted")
    return StepRecord(index=index, step=step, at=at, outcome="refused",
                      code=outcome.code, message=outcome.message)
