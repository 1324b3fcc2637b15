"""The dialing side of an appliance: one loop per link it dials, and when to try again.

A :class:`Dialer` runs one loop per link its appliance dials: connect, TLS
handshake, then the conversation (``mesh.appliances.conversation``), and
again once the connection ends. It validates afresh on every attempt, so an
upload, a toggle, a revocation or a clock jump changes the outcome at the
next attempt.

A dialer that fails (the listener is down, refused us, or broke off) tries
again after a capped exponential :class:`Backoff` on the *emulated* clock, so
a clock jump ends a long wait as it ends every other emulated sleep. That is
engine policy, not networking, which is why it lives here and not in
``mesh.net``.

:class:`RetryGate` is how ``Mesh.settle``/``Mesh.refresh`` wait without
sleeping: one gate per mesh (or per ``mesh node``), shared by every dialer.
A request (or any clock jump) cuts every backoff short; a recheck also makes
every dialer close its live link cleanly and redial at once.
"""

from __future__ import annotations

import os
from typing import Callable, Collection

import trio
from attrs import define, field

from mesh.appliances.book import LinkBook
from mesh.appliances.conversation import CONNECTION_ERRORS, Contexts, Conversation, why
from mesh.appliances.directory import Directory
from mesh.appliances.ends import LinkEnds
from mesh.appliances.link_state import Link
from mesh.appliances.settings import EngineSettings
from mesh.appliances.spec import LinkPair
from mesh.clock import EmulatedClock
from mesh.events import RECHECK_REASON
from mesh.net import tls
from mesh.net.links import tls_refusal

__all__ = ["Backoff", "DialSlot", "RetryGate", "Dialer"]


@define(kw_only=True)
class Backoff:
    """Capped exponential backoff in emulated seconds: 1, 2, 4, ... up to ``cap``."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    _next: float = field(default=0.0, alias="_next")

    def reset(self) -> None:
        self._next = 0.0

    def next_delay(self) -> float:
        self._next = self.initial if self._next == 0.0 else min(self.cap, self._next * self.factor)
        return self._next



class RetryGate:
    """Lets a caller cut every dialer's backoff short and know which attempts are fresh.

    Each attempt records the gate's generation when it started; after
    :meth:`request` returns generation ``g``, an attempt with generation
    ``>= g`` started after the request. :meth:`recheck` goes further: every
    live link whose attempt started before it is closed by its dialer, which
    redials at once (``Mesh.refresh``).
    """

    def __init__(self, clock: EmulatedClock, *, dial_slots: int = EngineSettings().dial_slots) -> None:
        self.clock = clock
        #: Dial attempts between connect and verdict, at most this many at once
        #: (``EngineSettings.dial_slots``: why).
        self.dial_slots = trio.CapacityLimiter(dial_slots)
        self.generation = 0
        #: The generation of the latest :meth:`recheck` (0: none yet).
        self.recheck_generation = 0
        #: What :meth:`recheck` calls: live links, by the attempt they came from.
        self._watchers: dict[object, tuple[int, tuple[str, str], Callable[[str], None]]] = {}

    def request(self) -> int:
        self.generation += 1
        self.clock.kick()
        return self.generation

    def recheck(self) -> int:
        """:meth:`request`, and ask every live link dialed before it to redial."""
        generation = self.request()
        self.recheck_generation = generation
        watchers, self._watchers = self._watchers, {}
        for _since, _link, callback in watchers.values():
            callback(RECHECK_REASON)
        return generation

    def recheck_links(self, links: Collection[tuple[str, str]], reason: str) -> None:
        """Ask the live ``links`` (dialer, listener) dialed in this process to close cleanly
        and redial at once; ``reason`` says why in their ``link-recheck`` events."""
        for handle, (_since, link, callback) in list(self._watchers.items()):
            if link in links:
                del self._watchers[handle]
                callback(reason)

    def watch_recheck(
        self, since: int, link: tuple[str, str], callback: Callable[[str], None]
    ) -> object:
        """Call ``callback(reason)`` at the first :meth:`recheck` after an attempt of
        generation ``since``, or a :meth:`recheck_links` naming ``link``.

        At once if one already came. A callback, not a task waiting on an
        event: every live dialed link has one, and thousands of parked tasks
        are memory and scheduling for something that rarely happens. Returns
        a handle for :meth:`unwatch`.
        """
        handle = object()
        if self.recheck_generation > since:
            callback(RECHECK_REASON)
        else:
            self._watchers[handle] = (since, link, callback)
        return handle

    def unwatch(self, handle: object) -> None:
        self._watchers.pop(handle, None)

    async def pause(self, seconds: float, since: int) -> None:
        """Back off ``seconds`` (emulated) unless a request came since ``since``."""
        if self.generation != since:
            await trio.lowlevel.checkpoint()
            return
        await self.clock.sleep(seconds)


class DialSlot:
    """One attempt's hold on a ``RetryGate.dial_slots`` slot, given back once.

    Given back as soon as the attempt has its outcome, not when the
    connection ends: a live link holds no slot.
    """

    def __init__(self, limiter: trio.CapacityLimiter) -> None:
        self._limiter = limiter
        self._held = False

    async def __aenter__(self) -> "DialSlot":
        await self._limiter.acquire_on_behalf_of(self)
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._limiter.release_on_behalf_of(self)


class Dialer:
    """Dials every link one appliance dials, each in a loop of its own (:meth:`run`).

    Args:
        contexts: the appliance's TLS context and credentials for a side.
        error: adds a line to the appliance's status errors.
    """

    def __init__(
        self,
        name: str,
        *,
        directory: Directory,
        settings: EngineSettings,
        book: LinkBook,
        gate: RetryGate,
        ends: LinkEnds,
        conversation: Conversation,
        contexts: Contexts,
        error: Callable[[str], None],
    ) -> None:
        self.name = name
        self.directory = directory
        self.settings = settings
        self.book = book
        self.gate = gate
        self.ends = ends
        self.conversation = conversation
        self._contexts = contexts
        self._error = error

    async def run(self, pair: LinkPair) -> None:
        """Dial ``pair`` until cancelled: attempt, back off (unless it was up), again."""
        link = self.book.get(pair.dialer, pair.listener, mutual=pair.mutual)
        backoff = Backoff(initial=self.settings.backoff_initial, cap=self.settings.backoff_cap)
        while True:
            generation = self.gate.generation
            rechecks = link.rechecks
            self.ends.attempted(link)
            try:
                was_up = await self._attempt(pair, link, generation)
            except CONNECTION_ERRORS as exc:
                # Our own side cannot take part (no usable certificate for TLS,
                # a peer that broke the protocol): the link is down, the mesh lives on.
                self._error(f"{self.name} -> {pair.listener}: {why(exc)}")
                self.ends.lost(link, why(exc), generation=generation)
                was_up = False
            if was_up:
                backoff.reset()
            if link.rechecks != rechecks:
                continue  # closed on purpose to be made again: at once
            await self.gate.pause(backoff.next_delay(), generation)

    async def _attempt(self, pair: LinkPair, link: Link, generation: int) -> bool:
        """One connection to ``pair.listener``; True if the link came up (and has ended)."""
        address = self.directory.address_of(pair.listener)
        if address is None:
            self.ends.lost(link, f"{pair.listener} has no known address", generation=generation)
            return False
        async with DialSlot(self.gate.dial_slots) as slot:
            return await self._dial(pair, link, generation, address, slot)

    async def _dial(self, pair: LinkPair, link: Link, generation: int,
                    address: tuple[str, int], slot: DialSlot) -> bool:
        host, port = address
        context, credentials = self._contexts(server=False)
        try:
            stream = await tls.connect(
                host,
                port,
                context,
                handshake_timeout=self.settings.handshake_timeout,
                credentials=credentials,
            )
        except tls.HandshakeTimeout as exc:
            self.ends.lost(link, str(exc), generation=generation)
            return False
        except trio.BrokenResourceError as exc:
            refusal = tls_refusal(exc)
            if refusal is not None:
                self.conversation.refused_by_tls(link, pair.listener, refusal, generation)
                return False
            reason = exc.__cause__ or exc
            self.ends.lost(
                link, f"TLS handshake with {pair.listener} failed: {reason}", generation=generation
            )
            return False
        except OSError as exc:
            self.ends.lost(
                link,
                f"{pair.listener} at {host}:{port} is not reachable ({_os_reason(exc)})",
                generation=generation,
            )
            return False
        return await self.conversation.converse(
            stream, pair=pair, generation=generation, judged=slot.release
        )


def _os_reason(exc: OSError) -> str:
    """The operating system's words for a failed connect: "Connection refused"."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)
