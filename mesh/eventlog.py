"""The one event stream: an in-memory window, counts, live subscribers and a JSON-lines sink.

``append`` never blocks and never awaits, so any code path (a TLS handshake
failing, a sync API call like ``set_validation``) can record what happened at
the moment it happens. Subscribers get their own trio memory channel with an
unbounded buffer: a slow reader costs memory, never a stalled appliance.

Memory stays bounded in long runs: the log keeps the last ``window`` events
(:data:`DEFAULT_WINDOW`) and a count of every kind ever appended, while the
JSON-lines sink, when there is one, receives every event. Positions count in
the whole stream (``len(log)`` is how many were ever appended), so a reader
that asks for events :meth:`since` a position older than the window learns
from :attr:`first` how many it missed. A report of the whole run wants its
beginning instead, however long it grew: ``head`` keeps the first events too.
"""

from __future__ import annotations

import io
import math
import os
from collections import Counter, deque
from pathlib import Path
from typing import Iterator, TextIO, TypeVar

import trio

from mesh.events import Event

__all__ = ["EventLog", "DEFAULT_WINDOW"]

#: Events kept in memory. A sensor's heartbeat is an event, so a long run of a
#: big mesh appends millions; the window holds the recent ones, the counts and
#: the sink hold the rest.
DEFAULT_WINDOW = 50_000

E = TypeVar("E", bound=Event)


class EventLog:
    """Append-only list of events, fanned out to subscribers and an optional sink.

    Args:
        sink: where JSON lines go: a path (appended to, created 0644) or an open
            text stream (``sys.stdout``); None keeps events in memory only.
        window: how many recent events stay in memory (None: all of them).
        head: how many of the first events stay in memory too (:attr:`head`).
    """

    def __init__(
        self,
        sink: str | os.PathLike[str] | TextIO | None = None,
        *,
        window: int | None = DEFAULT_WINDOW,
        head: int = 0,
    ) -> None:
        self._events: deque[Event] = deque(maxlen=window)
        self._head_size = head
        self._head: list[Event] = []
        self._total = 0
        self._counts: Counter[str] = Counter()
        self._subscribers: list[trio.MemorySendChannel[Event]] = []
        self._owned = False
        self._sink: TextIO | None
        if sink is None or isinstance(sink, io.TextIOBase) or hasattr(sink, "write"):
            self._sink = sink  # type: ignore[assignment]
        else:
            self._sink = Path(sink).open("a", encoding="utf-8")
            self._owned = True

    # -- writing --

    def append(self, event: Event) -> Event:
        self._events.append(event)
        if len(self._head) < self._head_size:
            self._head.append(event)
        self._total += 1
        self._counts[event.kind] += 1
        if self._sink is not None:
            self._sink.write(event.to_json() + "\n")
            self._sink.flush()
        alive = []
        for channel in self._subscribers:
            try:
                channel.send_nowait(event)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                continue
            alive.append(channel)
        self._subscribers = alive
        return event

    # -- reading --

    def subscribe(self) -> trio.MemoryReceiveChannel[Event]:
        """A channel that receives every event appended from now on."""
        send, receive = trio.open_memory_channel[Event](math.inf)
        self._subscribers.append(send)
        return receive

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))

    def __len__(self) -> int:
        """How many events were ever appended (positions count in the whole stream)."""
        return self._total

    def __getitem__(self, index: int) -> Event:
        """The event at ``index`` of the in-memory window."""
        return self._events[index]

    @property
    def first(self) -> int:
        """The stream position of the oldest event still in memory."""
        return self._total - len(self._events)

    @property
    def events(self) -> list[Event]:
        """The events in memory (the window), oldest first."""
        return list(self._events)

    @property
    def head(self) -> list[Event]:
        """The first events ever appended, up to the ``head`` asked for, oldest first."""
        return list(self._head)

    def counts(self) -> dict[str, int]:
        """How many events of each kind were ever appended."""
        return dict(self._counts)

    def of(self, cls: type[E], **fields: object) -> list[E]:
        """Events of one class whose attributes equal ``fields``."""
        return [
            e
            for e in self._events
            if isinstance(e, cls) and all(getattr(e, k) == v for k, v in fields.items())
        ]

    def kinds(self) -> list[str]:
        return [e.kind for e in self._events]

    def since(self, index: int) -> list[Event]:
        """The events from stream position ``index`` on that are still in memory
        (from :attr:`first` when ``index`` is older than the window)."""
        start = max(index, self.first) - self.first
        return [self._events[i] for i in range(start, len(self._events))]

    def to_jsonl(self) -> str:
        return "".join(e.to_json() + "\n" for e in self._events)

    # -- closing --

    def close(self) -> None:
        """End every subscription and close a sink this log opened itself."""
        for channel in self._subscribers:
            channel.close()
        self._subscribers = []
        if self._owned and self._sink is not None:
            self._sink.close()
            self._sink = None
