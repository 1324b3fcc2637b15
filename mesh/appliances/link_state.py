"""The link as a state machine: its states, what moves them, and what each end reports.

Why here, in the engine, and not in ``mesh.net``: what a pair of verdicts
means for a link, which end keeps its record and which outcome is news are
the engine's policy; ``mesh.net.links`` keeps what crosses the wire (the
verdict frames and their exchange). All of a link's life is in this module
and nowhere else, and it is pure (no trio, no I/O: it is handed the time and
returns the events to report), so it is tested as tables, like h11's
``_state.py``. ``mesh.appliances.ends`` feeds it and appends what it reports.

States (:class:`LinkState`): ``connecting`` until a first outcome, then
``up``, ``up-unvalidated``, ``halted`` (an end refused) or ``down`` (no
connection). A redial keeps the state of the last outcome until the next.

What moves them (:class:`Trigger`), each brought by one event class:

* :class:`Judged` -- both verdicts are known (:func:`decide`), or this end
  refused and the peer said nothing; also a live re-judgement that refuses;
* :class:`Lost` -- unreachable, closed, broken, or silent after our accept;
* :class:`Stopped` -- this end's appliance stopped;
* :class:`Attempted` -- a connection attempt began (the state stays);
* :class:`Rechecked` -- the dialer closes the live link on purpose to judge
  it afresh (``Mesh.refresh``); only a live link can be.

:data:`TRANSITIONS` is the one table of where each trigger takes each state;
a trigger a state does not list raises :class:`LinkStateError`.

Who moves the record: one :class:`Link` per dialer/listener pair, shared by
both ends when they run in one process. Its *owner* moves it: the dialer, or
the listener when the dialer is in another process (``mesh node``,
``openssl s_client``). The other end's events only change what that end has
said (:class:`LinkEnd`), so a listener's late news about an older connection
never overwrites a newer outcome.

What is news:

* the owner reports the lifecycle: ``link-connecting`` (the dialer's first
  attempt), ``link-up``/``link-up-unvalidated`` on entering an up state (or
  another set of unvalidating ends), ``link-down`` on entering ``down``
  (not when its own appliance stops), ``link-recheck``;
* each end reports its own refusal (``link-halted``) once per episode of
  ``halted`` (the episode moves when the link leaves ``halted``), and again
  after it accepted in between; the owner also reports the peer's refusal
  when the peer cannot report it here;
* each end with validation off reports ``validation-skipped`` once per
  certificate and list of would-be failures, again after it enforced or
  refused, or the link went down.

:func:`decide` turns both ends' verdicts into one outcome: either end refused
-> ``halted`` (the listener's refusal is read first: it judges a client the
way the source's console judges a sensor; the dialer's is kept in
``refusals``); both accepted, one with validation off -> ``up-unvalidated``;
both accepted with validation on -> ``up``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from typing import TYPE_CHECKING, ClassVar

from attrs import define, field

from mesh.errors import FailureCode, MeshError
from mesh.events import (
    RECHECK_REASON,
    Event,
    LinkConnecting,
    LinkDown,
    LinkHalted,
    LinkRecheck,
    LinkUp,
    LinkUpUnvalidated,
    ValidationSkipped,
)

if TYPE_CHECKING:
    from mesh.net.links import Judgement

__all__ = [
    "LinkState", "Outcome", "decide", "Trigger", "TRANSITIONS", "next_state", "LinkStateError",
    "Attempted", "Judged", "Lost", "Stopped", "Rechecked", "LinkEvent", "Link", "LinkEnd",
]


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


def _an_outcome(instance: object, attribute: object, state: LinkState) -> None:
    if state not in _BY_OUTCOME:
        raise ValueError(f"an outcome is up, up-unvalidated or halted, not {state.value}")


@define(frozen=True, kw_only=True)
class Outcome:
    """The link's state once both verdicts are known."""

    state: LinkState = field(validator=_an_outcome)
    primary: Judgement | None = None  # the refusal shown first, for a halted link
    refusals: tuple[Judgement, ...] = ()
    unvalidated_by: tuple[str, ...] = ()
    would_fail: tuple[FailureCode, ...] = ()
    #: What either accepting end noted (``no_cdp``, ...), for an up link.
    notes: tuple[FailureCode, ...] = ()

    @classmethod
    def refused(cls, judgement: Judgement) -> Outcome:
        """Halted by one end's refusal (the other's verdict is unknown or moot)."""
        return cls(state=LinkState.HALTED, primary=judgement, refusals=(judgement,))


def decide(dialer: Judgement, listener: Judgement) -> Outcome:
    """Both verdicts -> one outcome; a link is up only when both ends accept."""
    refusals = tuple(j for j in (listener, dialer) if not j.accepted)
    if refusals:
        return Outcome(state=LinkState.HALTED, primary=refusals[0], refusals=refusals)
    unvalidated = tuple(j.by for j in (dialer, listener) if not j.enforced)
    would_fail = tuple(dict.fromkeys(c for j in (dialer, listener) for c in j.would_fail))
    notes = tuple(dict.fromkeys(c for j in (dialer, listener) for c in j.notes))
    state = LinkState.UP_UNVALIDATED if unvalidated else LinkState.UP
    return Outcome(state=state, unvalidated_by=unvalidated, would_fail=would_fail, notes=notes)


# -- what moves a link --


class Trigger(enum.Enum):
    """What moves a link: the outcome an attempt reached, or what befell its connection."""

    ATTEMPTED = "attempted"
    ACCEPTED = "accepted"
    ACCEPTED_UNVALIDATED = "accepted-unvalidated"
    REFUSED = "refused"
    LOST = "lost"
    STOPPED = "stopped"
    RECHECKED = "rechecked"


_BY_OUTCOME = {
    LinkState.UP: Trigger.ACCEPTED,
    LinkState.UP_UNVALIDATED: Trigger.ACCEPTED_UNVALIDATED,
    LinkState.HALTED: Trigger.REFUSED,
}


@define(frozen=True, kw_only=True)
class Attempted:
    """A connection attempt began: the dialer's, or one its listener saw from another process."""

    trigger: ClassVar[Trigger] = Trigger.ATTEMPTED


@define(frozen=True, kw_only=True)
class Judged:
    """This end knows the outcome: both verdicts, or its own refusal and the peer's silence.

    Attributes:
        theirs: the peer's verdict (None: unknown, or a live re-judgement).
        peer_reports: the peer reports its own refusals into this process's
            events (it runs here); else the owner reports them for it.
        attempt: the ``RetryGate`` generation of the attempt this answers
            (None: it answers none, as a live re-judgement does).
    """

    outcome: Outcome
    mine: Judgement
    theirs: Judgement | None = None
    peer_reports: bool = True
    attempt: int | None = None

    @property
    def trigger(self) -> Trigger:
        return _BY_OUTCOME[self.outcome.state]


@define(frozen=True, kw_only=True)
class Lost:
    """No link: the peer is unreachable, closed it, broke it, or never sent its verdict."""

    trigger: ClassVar[Trigger] = Trigger.LOST

    reason: str
    attempt: int | None = None


@define(frozen=True, kw_only=True)
class Stopped:
    """This end's appliance stopped (its ``appliance-stopped`` says so: no ``link-down``)."""

    trigger: ClassVar[Trigger] = Trigger.STOPPED

    reason: str
    attempt: int | None = None


@define(frozen=True, kw_only=True)
class Rechecked:
    """The live link is closed on purpose and made again (``Mesh.refresh``, an upload)."""

    trigger: ClassVar[Trigger] = Trigger.RECHECKED

    #: Why, for the ``link-recheck`` event: the words after "closed ".
    reason: str = RECHECK_REASON


LinkEvent = Attempted | Judged | Lost | Stopped | Rechecked

_S, _T = LinkState, Trigger

#: Every state, and where each trigger takes a link from it. Outcomes and
#: losses go to their state from anywhere; an attempt keeps the last outcome;
#: only a live link can be closed for a re-check.
TRANSITIONS: dict[LinkState, dict[Trigger, LinkState]] = {
    _S.CONNECTING: {
        _T.ATTEMPTED: _S.CONNECTING,
        _T.ACCEPTED: _S.UP,
        _T.ACCEPTED_UNVALIDATED: _S.UP_UNVALIDATED,
        _T.REFUSED: _S.HALTED,
        _T.LOST: _S.DOWN,
        _T.STOPPED: _S.DOWN,
    },
    _S.UP: {
        _T.ATTEMPTED: _S.UP,
        _T.ACCEPTED: _S.UP,
        _T.ACCEPTED_UNVALIDATED: _S.UP_UNVALIDATED,
        _T.REFUSED: _S.HALTED,
        _T.LOST: _S.DOWN,
        _T.STOPPED: _S.DOWN,
        _T.RECHECKED: _S.UP,
    },
    _S.UP_UNVALIDATED: {
        _T.ATTEMPTED: _S.UP_UNVALIDATED,
        _T.ACCEPTED: _S.UP,
        _T.ACCEPTED_UNVALIDATED: _S.UP_UNVALIDATED,
        _T.REFUSED: _S.HALTED,
        _T.LOST: _S.DOWN,
        _T.STOPPED: _S.DOWN,
        _T.RECHECKED: _S.UP_UNVALIDATED,
    },
    _S.HALTED: {
        _T.ATTEMPTED: _S.HALTED,
        _T.ACCEPTED: _S.UP,
        _T.ACCEPTED_UNVALIDATED: _S.UP_UNVALIDATED,
        _T.REFUSED: _S.HALTED,
        _T.LOST: _S.DOWN,
        _T.STOPPED: _S.DOWN,
    },
    _S.DOWN: {
        _T.ATTEMPTED: _S.DOWN,
        _T.ACCEPTED: _S.UP,
        _T.ACCEPTED_UNVALIDATED: _S.UP_UNVALIDATED,
        _T.REFUSED: _S.HALTED,
        _T.LOST: _S.DOWN,
        _T.STOPPED: _S.DOWN,
    },
}


class LinkStateError(MeshError):
    """An event the link's state does not allow: a bug in the engine, not in the mesh."""


def next_state(state: LinkState, trigger: Trigger) -> LinkState:
    """Where ``trigger`` takes a link in ``state``.

    Raises:
        LinkStateError: the table has no such transition.
    """
    try:
        return TRANSITIONS[state][trigger]
    except KeyError:
        raise LinkStateError(
            f"a link cannot be {trigger.value} in state {state.value}"
        ) from None


# -- the record and one end's memory --


@define(kw_only=True, eq=False)
class Link:
    """The live record of one link (mutable; ``LinkStatus.of`` takes a snapshot).

    Its state and outcome change only through :meth:`LinkEnd.handle`; the
    traffic counters (``received``, ``cursors``) are the traffic's.
    """

    dialer: str
    listener: str
    mutual: bool = True
    state: LinkState = LinkState.CONNECTING
    outcome: Outcome | None = None
    reason: str = ""
    since: dt.datetime | None = None
    attempts: int = 0
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
    #: True from an up outcome until the first application frame of that
    #: connection arrived, on a link where an end speaks at once (a sensor's
    #: heartbeat, a console's snapshot): what ``Mesh.settle`` waits for
    #: instead of the whole process going quiet.
    greeting: bool = False
    received: Counter[str] = field(factory=Counter)
    cursors: dict[str, int] = field(factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.dialer, self.listener)

    @property
    def delivered(self) -> int:
        return sum(self.received.values())

    @property
    def unvalidated_by(self) -> tuple[str, ...]:
        """The ends with validation off, while the link is up (else none)."""
        outcome = self.outcome
        return outcome.unvalidated_by if outcome is not None and self.state.is_up else ()

    @property
    def notes(self) -> tuple[FailureCode, ...]:
        """What the ends noted when they accepted (``no_cdp``, ...), while the link is up."""
        outcome = self.outcome
        return outcome.notes if outcome is not None and self.state.is_up else ()


@define(kw_only=True, eq=False)
class LinkEnd:
    """One appliance's end of one link: it moves the record if it owns it, and says what is news.

    It remembers what it has said: per refusing appliance, the refusal it
    last reported (code, serial, episode), and the validation-skipped warning
    it last gave (would-be failures, serial).
    """

    me: str
    link: Link
    _halted: dict[str, tuple[FailureCode | None, int | None, int]] = field(
        factory=dict, alias="_halted"
    )
    _skipped: tuple[tuple[FailureCode, ...], int | None] | None = field(
        default=None, alias="_skipped"
    )

    def handle(self, event: LinkEvent, *, owner: bool, at: dt.datetime) -> list[Event]:
        """Take ``event`` at instant ``at``; returns the events to report, in order.

        Raises:
            LinkStateError: the link's state does not allow the event.
        """
        link = self.link
        before = (link.state, link.unvalidated_by, link.notes)
        try:
            after = next_state(link.state, event.trigger)
        except LinkStateError as exc:
            raise LinkStateError(f"{link.dialer} -> {link.listener}: {exc}") from None
        if owner:
            self._move(event, after, at)
        if isinstance(event, Judged):
            return self._judged(event, before, owner=owner, at=at)
        if isinstance(event, (Lost, Stopped)):
            self._halted.clear()
            self._skipped = None
            if owner and isinstance(event, Lost) and before[0] is not LinkState.DOWN:
                return [LinkDown(at=at, dialer=link.dialer, listener=link.listener, reason=event.reason)]
            return []
        if not owner:
            return []
        if isinstance(event, Rechecked):
            return [
                LinkRecheck(
                    at=at,
                    dialer=link.dialer,
                    listener=link.listener,
                    state=after.value,
                    reason=event.reason,
                )
            ]
        if link.dialer == self.me and link.attempts == 1:  # the dialer's first attempt
            return [LinkConnecting(at=at, dialer=link.dialer, listener=link.listener, attempt=1)]
        return []

    def _move(self, event: LinkEvent, after: LinkState, at: dt.datetime) -> None:
        link = self.link
        if after is not link.state:
            link.since = at
            if link.state is LinkState.HALTED:
                link.episode += 1
        link.state = after
        if isinstance(event, Attempted):
            link.attempts += 1
        elif isinstance(event, Rechecked):
            link.rechecks += 1
        else:
            if isinstance(event, Judged):
                link.outcome = event.outcome
                link.reason = ""
            else:
                link.reason = event.reason
            if event.attempt is not None:
                link.done_generation = max(link.done_generation, event.attempt)

    def _judged(
        self,
        event: Judged,
        before: tuple[LinkState, tuple[str, ...], tuple[FailureCode, ...]],
        *,
        owner: bool,
        at: dt.datetime,
    ) -> list[Event]:
        link, mine, theirs, outcome = self.link, event.mine, event.theirs, event.outcome
        news: list[Event] = []
        refusals = [mine] if not mine.accepted else []
        if owner and theirs is not None and not theirs.accepted and not event.peer_reports:
            refusals.append(theirs)  # the peer cannot report into this process
        for judgement in refusals:
            said = (judgement.code, judgement.serial, link.episode)
            if self._halted.get(judgement.by) != said:
                self._halted[judgement.by] = said
                assert judgement.code is not None
                news.append(
                    LinkHalted(
                        at=at,
                        dialer=link.dialer,
                        listener=link.listener,
                        refused_by=judgement.by,
                        code=judgement.code,
                        subject=judgement.subject,
                        serial=judgement.serial,
                        detail=judgement.detail,
                    )
                )
        if mine.accepted:
            self._halted.pop(self.me, None)

        if mine.accepted and not mine.enforced:
            skipped = (mine.would_fail, mine.serial)
            if self._skipped != skipped:
                self._skipped = skipped
                news.append(
                    ValidationSkipped(
                        at=at,
                        appliance=self.me,
                        peer=link.listener if link.dialer == self.me else link.dialer,
                        dialer=link.dialer,
                        listener=link.listener,
                        would_fail=tuple(c.code for c in mine.would_fail),
                        messages=tuple(c.message for c in mine.would_fail),
                        subject=mine.subject,
                        serial=mine.serial,
                    )
                )
        else:
            self._skipped = None

        now = (outcome.state, outcome.unvalidated_by, outcome.notes)
        if owner and outcome.state.is_up and before != now:
            notes = tuple(c.code for c in outcome.notes)
            if outcome.state is LinkState.UP:
                news.append(
                    LinkUp(at=at, dialer=link.dialer, listener=link.listener, notes=notes)
                )
            else:
                news.append(
                    LinkUpUnvalidated(
                        at=at,
                        dialer=link.dialer,
                        listener=link.listener,
                        unvalidated_by=outcome.unvalidated_by,
                        notes=notes,
                    )
                )
        return news
