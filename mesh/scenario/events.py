"""Events the scenario runner adds to the mesh's one event stream.

A reader of ``--events`` sees, between the engine's own events, where each
step of the timeline happened and what the expectations due there found.
After every step the runner makes every link validate afresh (``Mesh.refresh``,
see :mod:`mesh.scenario.runner`), so the ``link-recheck`` events that follow a
``scenario-step`` are live links closed on purpose and redialed, not faults;
only outcomes that changed are reported after them.
"""

from __future__ import annotations

from typing import ClassVar

from attrs import define

from mesh.events import Event

__all__ = ["StepPlayed", "ExpectationsChecked"]


@define(frozen=True, kw_only=True)
class StepPlayed(Event):
    """A timeline step ran (the clock already jumped); links reconnect next."""

    kind: ClassVar[str] = "scenario-step"

    scenario: str
    index: int
    action: str
    target: str | None = None
    outcome: str = "done"
    code: str | None = None

    def describe(self) -> str:
        text = f"{self.scenario}: step {self.index} {self.action}"
        if self.target:
            text += f" {self.target}"
        if self.outcome != "done":
            text += f" -> {self.outcome}" + (f" ({self.code})" if self.code else "")
        return text + "; every link now connects afresh"


@define(frozen=True, kw_only=True)
class ExpectationsChecked(Event):
    """The expectations due after a step (0: after start) were judged."""

    kind: ClassVar[str] = "scenario-checked"

    scenario: str
    after_step: int
    met: int
    failed: tuple[str, ...] = ()

    def describe(self) -> str:
        where = "after start" if self.after_step == 0 else f"after step {self.after_step}"
        text = f"{self.scenario}: {self.met} expectation(s) hold {where}"
        if self.failed:
            text += "; failed: " + ", ".join(self.failed)
        return text
