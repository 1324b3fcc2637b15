"""Links on the wire: each end's verdict and the accept/refuse exchange.

Theory of operation. After the TLS handshake each end judges the other's
presented chain (``Judgement``) and sends it as one frame: ``ACCEPT`` or
``REFUSE`` with the code, the certificate concerned and the detail. The
dialer sends its verdict first and then reads the listener's
(:func:`exchange_verdicts`); the listener reads the dialer's first
(:func:`receive_verdict`), because only that frame tells it who the dialer
claims to be, and a listener that already has a live link with that name
answers ``DECLINE`` instead of a verdict (:func:`decline`): the newcomer
learns why, and the live link is untouched. Both ends judge before the
exchange, so the order costs no judging time, and both learn both verdicts. What the pair means for the link (up only
when both accept, which refusal is read first) is the engine's rule, with the
link's states and its record: ``mesh.appliances.link_state``.

A refusing end closes right after its ``REFUSE``; the accepting end reads the
``REFUSE`` before it writes any application byte, so nothing crosses a halted
link.

The link record, its states and the book of links used to live here; they
are the engine's now, and the old names still import from here for code that
has not moved (``mesh node`` imports ``LinkBook``, the benchmarks ``LinkState``).
"""

from __future__ import annotations

import importlib
from typing import Any

import trio
from attrs import define
from OpenSSL import SSL

from mesh.errors import FailureCode, Severity
from mesh.net.framing import Frame, FrameError, FramedStream, FrameType
from mesh.validation.verdict import Verdict

__all__ = [
    "Judgement",
    "PeerDeclined",
    "PeerRefusedTls",
    "PeerSilent",
    "decline",
    "exchange_verdicts",
    "receive_verdict",
    "send_verdict",
    "tls_refusal",
]

#: Names that moved to the engine and are still imported from here (see the header).
_MOVED = {"LinkBook": "mesh.appliances.book", "LinkState": "mesh.appliances.link_state"}


def __getattr__(name: str) -> Any:
    """The moved names, looked up when first asked for.

    Not imported at the top: the engine imports this module, so importing
    the engine from here would be an import cycle.
    """
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


class PeerSilent(Exception):
    """The peer closed (or went quiet) before sending its verdict."""


class PeerRefusedTls(PeerSilent):
    """The peer ended the connection with a TLS alert: its TLS stack refused us.

    That is how a peer outside the emulator (``openssl s_server -Verify 1``,
    a real server) refuses a certificate; the engine reports it as the peer's
    ``validation_failed``.
    """


class PeerDeclined(PeerSilent):
    """The listener declined the connection instead of judging it (see :func:`decline`)."""


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
    #: What an accepting end noted without refusing (``no_cdp``: revocation
    #: not checked; a soft-fail CRL problem): shown wherever the link's state is.
    notes: tuple[FailureCode, ...] = ()

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
            notes=tuple(
                dict.fromkeys(
                    f.code for f in verdict.findings if f.severity is not Severity.ERROR
                )
            )
            if verdict.accepted
            else (),
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
        if self.notes:
            body["notes"] = [c.code for c in self.notes]
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
            notes=tuple(code_of(c) for c in body.get("notes", ())),
        )


async def send_verdict(framed: FramedStream, mine: Judgement, *, peer_name: str) -> None:
    """Send our verdict.

    Raises:
        PeerSilent: the peer closed or broke before it was sent.
    """
    try:
        await framed.send(mine.to_frame())
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise PeerSilent(f"{peer_name} closed the connection before our verdict was sent") from exc


async def receive_verdict(framed: FramedStream, *, peer_name: str, timeout: float) -> Judgement:
    """Read the peer's verdict (within ``timeout`` trio seconds).

    Raises:
        PeerDeclined: the listener declined the connection; the message says why.
        PeerRefusedTls: the peer's TLS stack refused us with an alert.
        PeerSilent: the peer closed, broke or sent nothing in time.
        FrameError: the peer sent something other than a verdict.
    """
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
        if frame.type is FrameType.DECLINE:
            by = str(frame.body.get("appliance") or peer_name)
            raise PeerDeclined(f"{by} declined the connection: {frame.body.get('reason', '')}")
        return Judgement.from_frame(frame, default_by=peer_name)
    raise PeerSilent(f"{peer_name} sent no verdict within {timeout:g} s")


async def exchange_verdicts(
    framed: FramedStream, mine: Judgement, *, peer_name: str, timeout: float
) -> Judgement:
    """The dialer's exchange: send our verdict, then read the peer's.

    Raises: what :func:`send_verdict` and :func:`receive_verdict` raise.
    """
    await send_verdict(framed, mine, peer_name=peer_name)
    return await receive_verdict(framed, peer_name=peer_name, timeout=timeout)


async def decline(framed: FramedStream, *, by: str, reason: str) -> None:
    """The listener's answer to a dialer it will not link with, in place of a verdict.

    Best effort: a dialer that already went away needs no reason.
    """
    try:
        await framed.send(Frame(type=FrameType.DECLINE, body={"appliance": by, "reason": reason}))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
