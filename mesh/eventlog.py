"""The one event stream: an in-memory record, live subscribers and a JSON-lines sink.

``append`` never blocks and never awaits, so any code path (a TLS handshake
failing, a sync API call like ``set_validation``) can record what happened at
the moment it happens. Subscribers get their own trio memory channel with an
unbounded buffer: a slow reader costs memory, never a stalled appliance.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Iterator, TextIO, TypeVar

import trio

from mesh.events import Event

__all__ = ["EventLog"]

E = TypeVar("E", bound=Event)


class EventLog:
    """Append-only list of events, fanned out to subscribers and an optional sink.

    Args:
        sink: where JSON lines go: a path (appended to, created 0644) or an open
            text stream (``sys.stdout``); None keeps events in memory only.
    """

    def __init__(self, sink: str | os.PathLike[str] | TextIO | None = None) -> None:
        self._events: list[Event] = []
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
        return len(self._events)

    def __getitem__(self, index: int) -> Event:
        return self._events[index]

    @property
    def events(self) -> list[Event]:
        return list(self._events)

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
        return self._events[index:]

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
