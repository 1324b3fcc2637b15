"""One appliance's ends of its links: what happened goes into the state machine, its news out.

The pure machine (``mesh.appliances.link_state``) decides where a link goes
and what is news; this is the thin shell around it that knows the running
world: which end owns a record (the dialer, or the listener when the dialer
is not in this process, per the :class:`Directory`), which attempt an
outcome answers (the ``RetryGate`` generation), the time, the event log, the
appliance's error lines (its own refusals) and the book that ``Mesh.settle``
waits on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from mesh.appliances.book import LinkBook
from mesh.appliances.directory import Directory
from mesh.appliances.link_state import (
    Attempted,
    Judged,
    Link,
    LinkEnd,
    LinkEvent,
    Lost,
    Outcome,
    Rechecked,
    Stopped,
)
from mesh.clock import EmulatedClock
from mesh.eventlog import EventLog
from mesh.events import RECHECK_REASON, LinkHalted
from mesh.net.links import Judgement

if TYPE_CHECKING:
    from mesh.appliances.dialer import RetryGate  # the dialer imports this module, through the conversation

__all__ = ["LinkEnds"]


class LinkEnds:
    """The ends of links that one appliance has, by link."""

    def __init__(
        self,
        name: str,
        *,
        clock: EmulatedClock,
        events: EventLog,
        book: LinkBook,
        directory: Directory,
        gate: RetryGate,
        error: Callable[[str], None],
    ) -> None:
        self.name = name
        self.clock = clock
        self.events = events
        self.book = book
        self.directory = directory
        self.gate = gate
        self._error = error
        self._ends: dict[tuple[str, str], LinkEnd] = {}

    def owns(self, link: Link) -> bool:
        """This end moves the shared record: it dials, or it listens and its dialer is elsewhere."""
        if link.dialer == self.name:
            return True
        return link.listener == self.name and not self.directory.is_local(link.dialer)

    def attempted(self, link: Link) -> None:
        self._handle(link, Attempted(), touch=False)

    def judged(
        self,
        link: Link,
        outcome: Outcome,
        mine: Judgement,
        theirs: Judgement | None,
        *,
        generation: int | None,
    ) -> None:
        """An outcome; ``generation`` is the dialer's attempt (None on the listener's end)."""
        event = Judged(
            outcome=outcome,
            mine=mine,
            theirs=theirs,
            peer_reports=theirs is None or self.directory.is_local(theirs.by),
            attempt=self._attempt(link, generation),
        )
        self._handle(link, event)

    def lost(self, link: Link, reason: str, *, generation: int | None = None) -> None:
        self._handle(link, Lost(reason=reason, attempt=self._attempt(link, generation)))

    def stopped(self, link: Link, reason: str) -> None:
        self._handle(link, Stopped(reason=reason, attempt=self._attempt(link, None)))

    def rechecked(self, link: Link, reason: str = RECHECK_REASON) -> None:
        self._handle(link, Rechecked(reason=reason), touch=False)

    def _attempt(self, link: Link, generation: int | None) -> int | None:
        """The attempt an outcome answers: the dialer's; for a dialer elsewhere, every one so far."""
        if generation is not None:
            return generation
        return None if self.directory.is_local(link.dialer) else self.gate.generation

    def _handle(self, link: Link, event: LinkEvent, *, touch: bool = True) -> None:
        end = self._ends.get(link.key)
        if end is None:
            end = self._ends[link.key] = LinkEnd(me=self.name, link=link)
        for news in end.handle(event, owner=self.owns(link), at=self.clock.now()):
            self.events.append(news)
            if isinstance(news, LinkHalted) and news.refused_by == self.name:
                self._error(news.log_line())
        if touch:  # an outcome, which is what Mesh.settle waits for
            self.book.touch()
