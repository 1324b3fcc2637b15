"""The link's states, the both-ends-accept rule, and the record of one link.

Why here, in the engine, and not in ``mesh.net``: what a pair of verdicts
means for a link, and what a link's record holds, is the engine's policy;
``mesh.net.links`` keeps what crosses the wire (the verdict frames and their
exchange). This module is pure: no trio, no I/O, so it is tested as tables.

:func:`decide` turns both ends' verdicts into one outcome:

* either end refused -> ``halted``; the connection is closed forcefully and no
  application frame is ever sent;
* both accepted, at least one with validation off -> ``up-unvalidated``;
* both accepted with validation on -> ``up``.

Which refusal is shown first when both refused: the listener's, because the
listener judges a client the way the source's console judges a sensor; the
dialer's refusal is kept in ``refusals``.

:class:`Link` is the mutable record of one link (one per dialer/listener
pair), shared by both ends when they run in one process.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from typing import TYPE_CHECKING

from attrs import define, field

from mesh.errors import FailureCode

if TYPE_CHECKING:
    from mesh.net.links import Judgement

__all__ = ["LinkState", "LinkStatus", "Outcome", "decide", "Link"]


class LinkState(enum.Enum):
    """Where a link is. ``halted`` carries a code; ``down`` means unreachable."""

    CONNECTING = "connecting"
    UP = "up"
    UP_UNVALIDATED = "up-unvalidated"
    HALTED = "halted"
    DOWN = "down"

    @property
    def is_up(self) -> bool:
        return self in (LinkState.UP, LinkState.UP_UNVALIDATED)

    def __str__(self) -> str:
        return self.value


@define(frozen=True, kw_only=True)
class LinkStatus:
    """One link as it stands.

    ``code``/``message``/``refused_by``/``subject``/``serial``/``detail`` describe
    the refusal of a halted link (the refusal the operator should read first:
    the listener's when both ends refused). ``refusals`` lists every end that
    refused as ``(appliance, code)``. ``delivered`` counts application
    messages that crossed the link, both directions, over its whole life.
    """

    dialer: str
    listener: str
    state: LinkState
    code: FailureCode | None = None
    message: str | None = None
    refused_by: str | None = None
    delivered: int = 0
    subject: str = ""
    serial: int | None = None
    detail: str = ""
    refusals: tuple[tuple[str, FailureCode], ...] = ()
    unvalidated_by: tuple[str, ...] = ()
    would_fail: tuple[FailureCode, ...] = ()
    attempts: int = 0
    since: dt.datetime | None = None
    reason: str = ""

    def involves(self, name: str) -> bool:
        return name in (self.dialer, self.listener)

    def peer_of(self, name: str) -> str:
        return self.listener if name == self.dialer else self.dialer

    def line(self) -> str:
        text = f"{self.dialer} -> {self.listener}: {self.state.value}"
        if self.state is LinkState.HALTED and self.code is not None:
            text += f" by {self.refused_by} [{self.code.code}] {self.code.message}"
        elif self.state is LinkState.UP_UNVALIDATED and self.would_fail:
            text += " (validation off; would fail: " + ", ".join(c.code for c in self.would_fail) + ")"
        elif self.state is LinkState.DOWN and self.reason:
            text += f" ({self.reason})"
        return text + f", {self.delivered} delivered"


@define(frozen=True, kw_only=True)
class Outcome:
    """The link's state once both verdicts are known."""

    state: LinkState
    primary: Judgement | None = None  # the refusal shown first, for a halted link
    refusals: tuple[Judgement, ...] = ()
    unvalidated_by: tuple[str, ...] = ()
    would_fail: tuple[FailureCode, ...] = ()


def decide(dialer: Judgement, listener: Judgement) -> Outcome:
    """Both verdicts -> one outcome; a link is up only when both ends accept."""
    refusals = tuple(j for j in (listener, dialer) if not j.accepted)
    if refusals:
        return Outcome(state=LinkState.HALTED, primary=refusals[0], refusals=refusals)
    unvalidated = tuple(j.by for j in (dialer, listener) if not j.enforced)
    would_fail = tuple(dict.fromkeys(c for j in (dialer, listener) for c in j.would_fail))
    state = LinkState.UP_UNVALIDATED if unvalidated else LinkState.UP
    return Outcome(state=state, unvalidated_by=unvalidated, would_fail=would_fail)


@define(kw_only=True, eq=False)
class Link:
    """The live record of one link (mutable; snapshot with :meth:`status`)."""

    dialer: str
    listener: str
    mutual: bool = True
    state: LinkState = LinkState.CONNECTING
    outcome: Outcome | None = None
    reason: str = ""
    since: dt.datetime | None = None
    attempts: int = 0
    completed: int = 0
    #: The RetryGate generation of the newest attempt that reached an outcome.
    done_generation: int = -1
    #: Bumped each time the link leaves ``halted``, so a repeated refusal is
    #: reported again after the link was down or up in between, not on every
    #: retry (whichever end records an attempt first).
    episode: int = 0
    #: Bumped each time the dialer closes the live link for a deliberate
    #: re-check (``Mesh.refresh``), so the listener's end, in the same
    #: process, knows that close was not a fault.
    rechecks: int = 0
    received: Counter[str] = field(factory=Counter)
    cursors: dict[str, int] = field(factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.dialer, self.listener)

    @property
    def delivered(self) -> int:
        return sum(self.received.values())

    def status(self) -> LinkStatus:
        outcome = self.outcome
        primary = outcome.primary if outcome is not None and self.state is LinkState.HALTED else None
        return LinkStatus(
            dialer=self.dialer,
            listener=self.listener,
            state=self.state,
            code=primary.code if primary else None,
            message=primary.code.message if primary and primary.code else None,
            refused_by=primary.by if primary else None,
            delivered=self.delivered,
            subject=primary.subject if primary else "",
            serial=primary.serial if primary else None,
            detail=primary.detail if primary else "",
            refusals=tuple(
                (j.by, j.code or FailureCode.VALIDATION_FAILED) for j in outcome.refusals
            )
            if outcome is not None and self.state is LinkState.HALTED
            else (),
            unvalidated_by=outcome.unvalidated_by
            if outcome is not None and self.state is LinkState.UP_UNVALIDATED
            else (),
            would_fail=outcome.would_fail
            if outcome is not None and self.state is LinkState.UP_UNVALIDATED
            else (),
            attempts=self.attempts,
            since=self.since,
            reason=self.reason if self.state is LinkState.DOWN else "",
        )
