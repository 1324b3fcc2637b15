"""Links: each end's verdict, the accept/refuse exchange, and the link record.

Theory of operation. After the TLS handshake each end judges the other's
presented chain (``Judgement``) and sends it as one frame: ``ACCEPT`` or
``REFUSE`` with the code, the certificate concerned and the detail. Each end
sends its own verdict *before* reading the peer's, so neither waits on the
other and both learn both verdicts, then :func:`decide` turns the pair into
one outcome:

* either end refused -> ``halted``; the connection is closed forcefully and no
  application frame is ever sent (the refusing end closes right after its
  ``REFUSE``; the accepting end reads the ``REFUSE`` before it writes any
  application byte);
* both accepted, at least one with validation off -> ``up-unvalidated``;
* both accepted with validation on -> ``up``.

Which refusal is shown first when both refused: the listener's, because the
listener judges a client the way the source's console judges a sensor; the
dialer's refusal is kept in ``refusals``.

:class:`Link` is the mutable record of one link (one per dialer/listener
pair), shared by both ends when they run in one process; :class:`LinkBook`
holds them and wakes anyone waiting for a change (``Mesh.settle``).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import Counter
from typing import Any, Iterator

import trio
from attrs import define, field
from OpenSSL import SSL

from mesh.errors import FailureCode
from mesh.net.framing import Frame, FrameError, FramedStream, FrameType
from mesh.validation.verdict import Verdict

__all__ = [
    "LinkState",
    "LinkStatus",
    "Judgement",
    "Outcome",
    "decide",
    "exchange_verdicts",
    "Link",
    "LinkBook",
    "PeerSilent",
    "PeerRefusedTls",
    "tls_refusal",
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


class PeerSilent(Exception):
    """The peer closed (or went quiet) before sending its verdict."""


class PeerRefusedTls(PeerSilent):
    """The peer ended the connection with a TLS alert: its TLS stack refused us.

    That is how a peer outside the emulator (``openssl s_server -Verify 1``,
    a real server) refuses a certificate; the engine reports it as the peer's
    ``validation_failed``.
    """


def tls_refusal(exc: BaseException) -> str | None:
    """The OpenSSL reason if ``exc`` (a broken TlsStream) was a TLS alert from the peer.

    A reset or an abrupt close is not a refusal; an ``SSL.Error`` that is not
    a system-call error or a clean close is.
    """
    cause = exc.__cause__
    if isinstance(cause, SSL.Error) and not isinstance(
        cause, (SSL.SysCallError, SSL.ZeroReturnError, SSL.WantReadError)
    ):
        reasons = [str(part[2]) for part in (cause.args[0] if cause.args else []) if len(part) > 2]
        return "; ".join(r for r in reasons if r) or str(cause)
    return None


@define(frozen=True, kw_only=True)
class Judgement:
    """One end's verdict on the other's certificate."""

    by: str
    accepted: bool
    enforced: bool = True
    code: FailureCode | None = None
    subject: str = ""
    serial: int | None = None
    detail: str = ""
    would_fail: tuple[FailureCode, ...] = ()

    @classmethod
    def from_verdict(cls, by: str, verdict: Verdict, *, enforced: bool) -> Judgement:
        primary = verdict.primary
        failures = tuple(dict.fromkeys(f.code for f in verdict.failures))
        return cls(
            by=by,
            accepted=verdict.accepted,
            enforced=enforced,
            code=primary.code if primary is not None else None,
            subject=primary.subject if primary is not None else "",
            serial=primary.serial if primary is not None else None,
            detail=primary.detail if primary is not None else "",
            would_fail=failures if verdict.accepted else (),
        )

    @classmethod
    def not_checked(cls, by: str) -> Judgement:
        """A server-auth-only listener (forwarding target) does not judge clients.

        Not judging is not "validation off": such a link is ``up`` when the
        dialer validated the server.
        """
        return cls(by=by, accepted=True, enforced=True, detail="client certificate not requested")

    def to_frame(self) -> Frame:
        body: dict[str, Any] = {"appliance": self.by, "enforced": self.enforced}
        if self.code is not None:
            body["code"] = self.code.code
        if self.subject:
            body["subject"] = self.subject
        if self.serial is not None:
            body["serial"] = format(self.serial, "X")
        if self.detail:
            body["detail"] = self.detail
        if self.would_fail:
            body["would_fail"] = [c.code for c in self.would_fail]
        return Frame(type=FrameType.ACCEPT if self.accepted else FrameType.REFUSE, body=body)

    @classmethod
    def from_frame(cls, frame: Frame, *, default_by: str) -> Judgement:
        if frame.type not in (FrameType.ACCEPT, FrameType.REFUSE):
            raise FrameError(f"expected the peer's verdict, got a {frame.type.label} frame")
        body = frame.body

        def code_of(text: object) -> FailureCode:
            try:
                return FailureCode.from_code(str(text))
            except ValueError:
                return FailureCode.VALIDATION_FAILED

        code = code_of(body["code"]) if "code" in body else None
        if frame.type is FrameType.REFUSE and code is None:
            code = FailureCode.VALIDATION_FAILED
        serial = body.get("serial")
        try:
            serial_int = int(str(serial), 16) if serial is not None else None
        except ValueError:
            serial_int = None
        return cls(
            by=str(body.get("appliance") or default_by),
            accepted=frame.type is FrameType.ACCEPT,
            enforced=bool(body.get("enforced", True)),
            code=code,
            subject=str(body.get("subject", "")),
            serial=serial_int,
            detail=str(body.get("detail", "")),
            would_fail=tuple(code_of(c) for c in body.get("would_fail", ())),
        )


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


async def exchange_verdicts(
    framed: FramedStream, mine: Judgement, *, peer_name: str, timeout: float
) -> Judgement:
    """Send our verdict, then read the peer's (within ``timeout`` trio seconds).

    Raises:
        PeerSilent: the peer closed, broke or sent nothing in time.
        FrameError: the peer sent something other than a verdict.
    """
    try:
        await framed.send(mine.to_frame())
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise PeerSilent(f"{peer_name} closed the connection before our verdict was sent") from exc
    with trio.move_on_after(timeout):
        try:
            frame = await framed.receive()
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            refusal = tls_refusal(exc)
            if refusal is not None:
                raise PeerRefusedTls(refusal) from exc
            raise PeerSilent(f"{peer_name} closed the connection before sending its verdict") from exc
        if frame is None:
            raise PeerSilent(f"{peer_name} closed the connection before sending its verdict")
        return Judgement.from_frame(frame, default_by=peer_name)
    raise PeerSilent(f"{peer_name} sent no verdict within {timeout:g} s")


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


class LinkBook:
    """Every link record, by (dialer, listener); wakes waiters on any change."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, str], Link] = {}
        self._changed = trio.Event()

    def get(self, dialer: str, listener: str, *, mutual: bool = True) -> Link:
        key = (dialer, listener)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = Link(dialer=dialer, listener=listener, mutual=mutual)
        return link

    def find(self, dialer: str, listener: str) -> Link | None:
        return self._links.get((dialer, listener))

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links.values()))

    def touch(self) -> None:
        """Something changed: wake every :meth:`wait_changed`."""
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_changed(self) -> None:
        await self._changed.wait()
