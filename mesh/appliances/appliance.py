"""One appliance as trio tasks: a TLS listener, a dialer per link, its status.

Theory of operation. ``Appliance.run`` listens on its port and starts one
dial loop per link it dials. Every connection, inbound or outbound, goes the
same way (``_converse``):

1. TLS handshake (``mesh.net.tls``): the verify callback only records; no
   application byte can move before step 3 is done.
2. Judge the peer's presented chain: fetch the CRLs it names with this
   appliance's own fetcher and proxy, then ``validate_peer`` with this
   appliance's trust, policy, validation switch and the emulated clock. A
   dialer requires the server purpose and (``check_names``) the listener's
   host name; a listener requires the client purpose, and the dialer's host
   name when exactly one appliance is configured to dial it. A forwarding target does
   not judge clients (server-auth only).
3. Exchange verdicts (``mesh.net.links``): halted unless both ends accept;
   a refusing end logs a ``link-halted`` event with the exact message and
   closes the connection forcefully. Validation off: the link comes up with a
   ``validation-skipped`` warning listing what would have failed.
4. Only then application frames flow (``mesh.appliances.traffic``).

Live links are not judged again (the source validates at connection start)
unless the spec asks for it (``revalidate_every``): then each end re-judges
the chain its peer presented, and a refusal halts the live link.

A dialer retries with capped exponential backoff on the emulated clock and
validates afresh on every attempt, so an upload, a toggle, a revocation or a
clock jump changes the outcome at the next attempt. A :class:`RetryGate`
request (``Mesh.settle``) or any clock jump cuts the backoff short. A
:meth:`RetryGate.recheck` (``Mesh.refresh``) also makes every dialer close its
live link cleanly (a ``link-recheck`` event, not ``link-down``) and redial at
once, so a live link too is judged afresh; the listener's end in the same
process takes that close as no news.

Each appliance also watches its own certificate: ``certificate-expiring``
once per certificate when it comes within ``EngineSettings.expiry_window`` of
its end (``mesh.appliances.expiry_watch``).

Who reports what, and where each link goes, is the link's state machine
(``mesh.appliances.link_state``); this appliance feeds it through its
``LinkEnds`` (``mesh.appliances.ends``).
"""

from __future__ import annotations

import os
from typing import Awaitable, Callable, Sequence

import attrs
import trio
from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from mesh.appliances.book import LinkBook
from mesh.appliances.checks import PeerChecker
from mesh.appliances.dialer import Backoff, RetryGate
from mesh.appliances.directory import Directory
from mesh.appliances.ends import LinkEnds
from mesh.appliances.expiry_watch import ExpiryWatcher
from mesh.appliances.identity import first_start_identity, open_key, refusal_of, upload_findings
from mesh.appliances.link_state import Link, LinkState, Outcome, decide
from mesh.appliances.settings import EngineSettings
from mesh.appliances.spec import ApplianceSpec, LinkPair, Role
from mesh.appliances.status import ApplianceStatus, LinkStatus
from mesh.appliances.traffic import LINK_ERRORS, AlertBoard, Inbox, listen, plan_for, voices
from mesh.clock import EmulatedClock
from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.eventlog import EventLog
from mesh.events import (
    ApplianceStarted,
    ApplianceStopped,
    CertificateUploaded,
    ConnectionDropped,
    UploadRefused,
    ValidationSwitched,
)
from mesh.net import tls
from mesh.net.framing import FrameError, FramedStream, LineStream
from mesh.net.links import (
    Judgement,
    PeerRefusedTls,
    PeerSilent,
    exchange_verdicts,
    tls_refusal,
)
from mesh.pki.issue import Issued, KeySource
from mesh.validation.verdict import Verdict

__all__ = ["Appliance", "Directory", "EngineSettings", "RetryGate"]

#: How many error lines an appliance's status keeps.
_ERROR_LINES = 20


def _label_of(chain: Sequence[x509.Certificate]) -> str:
    if not chain:
        return "unknown client"
    names = chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else chain[0].subject.rfc4514_string() or "unknown client"


#: What one connection may fail with without taking the appliance down.
_CONNECTION_ERRORS = (
    SSL.Error,
    ValidationFailed,
    FrameError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
)


def _why(exc: BaseException) -> str:
    if isinstance(exc, ValidationFailed):
        return f"{exc.code.message} ({exc.detail})" if exc.detail else exc.code.message
    return f"{type(exc).__name__}: {exc}"


def _peer_address(transport: trio.SocketStream) -> str:
    try:
        host, port = transport.socket.getpeername()[:2]
    except OSError:
        return "a client"
    return f"{host}:{port}"


def _tls_judgement(peer: str, reason: str) -> Judgement:
    return Judgement(
        by=peer,
        accepted=False,
        code=FailureCode.VALIDATION_FAILED,
        detail=f"{peer} refused the TLS handshake ({reason})",
    )


class Appliance:
    """A running (or stopped) appliance. Built and driven by ``Mesh`` or ``mesh node``."""

    def __init__(
        self,
        spec: ApplianceSpec,
        *,
        clock: EmulatedClock,
        events: EventLog,
        book: LinkBook,
        directory: Directory,
        gate: RetryGate,
        dials: Sequence[LinkPair] = (),
        settings: EngineSettings = EngineSettings(),
        keys: KeySource | None = None,
    ) -> None:
        self.spec = spec
        self.clock = clock
        self.events = events
        self.book = book
        self.directory = directory
        self.gate = gate
        self.dials = list(dials)
        self.settings = settings
        self._keys = keys
        self.identity: Issued | None = spec.identity
        self.self_signed = False
        self.validation = spec.validation
        self.port: int | None = spec.port or None
        self.running = False
        self.checker = PeerChecker(
            spec.name,
            clock=clock,
            events=events,
            proxy=spec.crl_proxy,
            crl_timeout=settings.crl_timeout,
        )
        self.alerts = AlertBoard()
        self.inbox = Inbox()
        self.errors: list[str] = []
        self._contexts: dict[bool, tuple[SSL.Context, tls.Credentials]] = {}
        self.ends = LinkEnds(
            spec.name,
            clock=clock,
            events=events,
            book=book,
            directory=directory,
            gate=gate,
            error=self._error,
        )
        self.expiry = ExpiryWatcher(
            spec.name,
            clock=clock,
            events=events,
            window=settings.expiry_window,
            identity=lambda: self.identity,
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def role(self) -> Role:
        return self.spec.role

    @property
    def heartbeat_interval(self) -> float:
        return self.spec.heartbeat_interval

    @property
    def address(self) -> str | None:
        return f"{self.spec.host}:{self.port}" if self.port else None

    # -- lifecycle --

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and dial until cancelled; ``task_status.started(port)`` once listening."""
        if self.identity is None:
            self.identity = first_start_identity(
                self.directory.hostname_of(self.name), at=self.clock.now(), keys=self._keys
            )
            self.self_signed = True
        try:
            listeners = await trio.open_tcp_listeners(self.port or 0, host=self.spec.host)
        except OSError as exc:
            raise InputError(
                f"appliance {self.name!r} address {self.spec.host}:{self.port or 0}",
                f"cannot listen ({exc.strerror or exc})",
                "pick a free port or stop whatever holds it",
            ) from None
        self.port = int(listeners[0].socket.getsockname()[1])
        self.running = True
        self.events.append(
            ApplianceStarted(
                at=self.clock.now(),
                appliance=self.name,
                role=self.role.value,
                address=self.address or "",
                subject=self.identity.cert.subject.rfc4514_string(),
                serial=self.identity.cert.serial_number,
                self_signed=self.self_signed,
            )
        )
        self.check_expiry()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, self._inbound, listeners)
                nursery.start_soon(self.expiry.watch)
                for pair in self.dials:
                    nursery.start_soon(self._dial_loop, pair)
                task_status.started(self.port)
        finally:
            self.running = False
            for link in self.book:
                if link.dialer == self.name or (
                    link.listener == self.name and not self.directory.is_local(link.dialer)
                ):
                    self.ends.stopped(link, f"{self.name} stopped")
            with trio.CancelScope(shield=True):
                await self.checker.aclose()
            self.events.append(ApplianceStopped(at=self.clock.now(), appliance=self.name))
            self.book.touch()

    # -- runtime actions --

    def set_validation(self, enabled: bool) -> None:
        self.validation = bool(enabled)
        self.events.append(
            ValidationSwitched(at=self.clock.now(), appliance=self.name, enabled=self.validation)
        )

    async def upload(
        self, issued: Issued, *, passphrase: str | None = None, key_pem: bytes | None = None
    ) -> Verdict:
        """The upload-time check, then (if accepted) the new identity for new connections."""
        try:
            issued = await open_key(issued, key_pem, passphrase)
        except ValidationFailed as exc:
            return self._refuse_upload(refusal_of(exc), issued.cert)
        findings = upload_findings(issued)
        if findings:
            return self._refuse_upload(Verdict.judge(findings, enabled=True), issued.cert)
        policy = attrs.evolve(
            self.spec.policy, enabled=self.validation, purpose=None, expected_name=None
        )
        verdict = await self.checker.check(
            [issued.cert, *issued.chain],
            trust=self.spec.trust,
            policy=policy,
            crl_files=self.spec.crl_files,
        )
        if not verdict.accepted:
            return self._refuse_upload(verdict, issued.cert)
        self.identity = issued
        self.self_signed = False
        self._contexts.clear()
        self.events.append(
            CertificateUploaded(
                at=self.clock.now(),
                appliance=self.name,
                subject=issued.cert.subject.rfc4514_string(),
                serial=issued.cert.serial_number,
                validated=self.validation,
            )
        )
        self.expiry.renewed()
        return verdict

    # -- expiry warnings --

    def check_expiry(self) -> None:
        """Say ``certificate-expiring`` now if this appliance's certificate just entered the window."""
        self.expiry.check()

    def _refuse_upload(self, verdict: Verdict, cert: x509.Certificate) -> Verdict:
        primary = verdict.primary
        assert primary is not None
        event = UploadRefused(
            at=self.clock.now(),
            appliance=self.name,
            code=primary.code,
            subject=primary.subject or cert.subject.rfc4514_string(),
            serial=primary.serial if primary.serial is not None else cert.serial_number,
            detail=primary.detail,
        )
        self.events.append(event)
        self._error(event.log_line())
        return verdict

    def status(self) -> ApplianceStatus:
        identity = self.identity
        return ApplianceStatus(
            name=self.name,
            role=self.role.value,
            running=self.running,
            address=self.address,
            validation=self.validation,
            subject=identity.cert.subject.rfc4514_string() if identity else "",
            serial=identity.cert.serial_number if identity else None,
            self_signed=self.self_signed,
            links=tuple(
                LinkStatus.of(link)
                for link in self.book
                if self.name in (link.dialer, link.listener)
            ),
            errors=tuple(self.errors),
        )

    # -- TLS contexts --

    def _tls(self, *, server: bool) -> tuple[SSL.Context, tls.Credentials]:
        """The context and credentials for this appliance's side of a connection.

        The context is shared with every appliance of the process that has the
        same chain and trust (``tls.shared_context``); the certificate and key
        go on each connection. Worked out once per identity and side; both
        sides present the same converted credentials (~45 us each to make).
        """
        cached = self._contexts.get(server)
        if cached is None:
            identity = self.identity
            assert identity is not None
            other = self._contexts.get(not server)
            credentials = (
                other[1] if other is not None else tls.Credentials(identity.cert, identity.key)
            )
            ctx = tls.shared_context(
                credentials,
                server=server,
                chain=identity.chain,
                trust=self.spec.trust,
                require_peer_cert=self.role.validates_clients if server else True,
            )
            cached = self._contexts[server] = (ctx, credentials)
        return cached

    # -- dialing --

    async def _dial_loop(self, pair: LinkPair) -> None:
        link = self.book.get(pair.dialer, pair.listener, mutual=pair.mutual)
        backoff = Backoff(initial=self.settings.backoff_initial, cap=self.settings.backoff_cap)
        while True:
            generation = self.gate.generation
            self.ends.attempted(link)
            try:
                was_up = await self._attempt(pair, link, generation)
            except _CONNECTION_ERRORS as exc:
                # Our own side cannot take part (no usable certificate for TLS,
                # a peer that broke the protocol): the link is down, the mesh lives on.
                self._error(f"{self.name} -> {pair.listener}: {_why(exc)}")
                self.ends.lost(link, _why(exc), generation=generation)
                was_up = False
            if was_up:
                backoff.reset()
            await self.gate.pause(backoff.next_delay(), generation)

    async def _attempt(self, pair: LinkPair, link: Link, generation: int) -> bool:
        address = self.directory.address_of(pair.listener)
        if address is None:
            self.ends.lost(link, f"{pair.listener} has no known address", generation=generation)
            return False
        host, port = address
        context, credentials = self._tls(server=False)
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
                self._refused_by_tls(link, pair.listener, refusal, generation)
                return False
            why = exc.__cause__ or exc
            self.ends.lost(
                link, f"TLS handshake with {pair.listener} failed: {why}", generation=generation
            )
            return False
        except OSError as exc:
            self.ends.lost(
                link,
                f"{pair.listener} at {host}:{port} is not reachable ({_os_reason(exc)})",
                generation=generation,
            )
            return False
        return await self._converse(stream, pair=pair, generation=generation)

    # -- accepting --

    async def _inbound(self, transport: trio.SocketStream) -> None:
        try:
            await self._serve_one(transport)
        except _CONNECTION_ERRORS as exc:
            self._error(f"{self.name}: an inbound connection failed: {_why(exc)}")
            await transport.aclose()

    async def _serve_one(self, transport: trio.SocketStream) -> None:
        client = _peer_address(transport)  # now: a client that reset cannot be asked later
        context, credentials = self._tls(server=True)
        stream = tls.TlsStream.server(transport, context, credentials=credentials)
        try:
            with trio.move_on_after(self.settings.handshake_timeout) as scope:
                await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            self._error(f"{self.name}: TLS handshake with a client failed: {exc.__cause__ or exc}")
            self._dropped(client, f"TLS handshake failed: {exc.__cause__ or exc}")
            await stream.aclose_forcefully()
            return
        if scope.cancelled_caught:
            self._dropped(
                client,
                f"TLS handshake did not finish within {self.settings.handshake_timeout:g} s",
            )
            await stream.aclose_forcefully()
            return
        await self._converse(stream, pair=None, generation=None)

    def _dropped(self, client: str, reason: str) -> None:
        """An inbound connection that never became a link: one event, then it is closed."""
        self.events.append(
            ConnectionDropped(at=self.clock.now(), appliance=self.name, peer=client, reason=reason)
        )

    # -- one connection, either side --

    async def _judge(
        self, chain: Sequence[x509.Certificate], *, purpose: str, expected: str | None
    ) -> Judgement:
        policy = attrs.evolve(
            self.spec.policy,
            enabled=self.validation,
            purpose=purpose,
            expected_name=expected if self.spec.check_names else None,
        )
        verdict = await self.checker.check(
            chain, trust=self.spec.trust, policy=policy, crl_files=self.spec.crl_files
        )
        return Judgement.from_verdict(self.name, verdict, enforced=self.validation)

    async def _converse(
        self, stream: tls.TlsStream, *, pair: LinkPair | None, generation: int | None
    ) -> bool:
        """Judge, exchange verdicts, then carry traffic; True if the link came up."""
        as_dialer = pair is not None
        clean = False
        try:
            chain = stream.peer_chain()
            check: tuple[str, str | None] | None
            if pair is not None:
                peer = pair.listener
                check = ("server", self.directory.hostname_of(peer))
            elif not self.role.validates_clients:
                peer = _label_of(chain)
                check = None
            else:
                peer = _label_of(chain)
                # Not copied nor kept: a console's list names every sensor,
                # and this frame lives as long as the link.
                dialers = self.directory.expected_dialers(self.name)
                check = (
                    "client",
                    self.directory.hostname_of(dialers[0]) if len(dialers) == 1 else None,
                )
                del dialers
            if check is None:
                mine = Judgement.not_checked(self.name)
            else:
                mine = await self._judge(chain, purpose=check[0], expected=check[1])
            framed: FramedStream | LineStream
            theirs: Judgement | None
            silence = ""
            if pair is not None and not self.directory.speaks_mesh(peer):
                # A third-party server: its TLS stack already let us in, it sends
                # no verdict, and it gets application data as JSON lines.
                framed = LineStream(stream, max_frame=self.settings.max_frame)
                theirs = Judgement.not_checked(peer) if mine.accepted else None
            else:
                framed = FramedStream(stream, max_frame=self.settings.max_frame)
                try:
                    theirs = await exchange_verdicts(
                        framed, mine, peer_name=peer, timeout=self.settings.verdict_timeout
                    )
                except PeerRefusedTls as exc:
                    theirs = _tls_judgement(peer, str(exc))
                except (PeerSilent, FrameError) as exc:
                    theirs, silence = None, str(exc)
            if pair is not None:
                link = self.book.get(pair.dialer, pair.listener, mutual=pair.mutual)
            else:
                peer = theirs.by if theirs is not None else peer  # the dialer's own name
                link = self.book.get(peer, self.name, mutual=self.role.validates_clients)
                if not self.directory.is_local(peer):
                    self.ends.attempted(link)  # its dialer, elsewhere, counts none here
            if theirs is None:
                if mine.accepted:
                    self.ends.lost(link, silence, generation=generation)
                    return False
                outcome = Outcome.refused(mine)
            elif as_dialer:
                outcome = decide(mine, theirs)
            else:
                outcome = decide(theirs, mine)
            self.ends.judged(link, outcome, mine, theirs, generation=generation)
            if outcome.state is LinkState.HALTED:
                return False
            # The peer's parsed chain is kept for the link's life only when
            # it will be judged again (revalidate_every): parsed certificates
            # and their names are kilobytes per link.
            recheck = None
            if check is not None and self.spec.revalidate_every is not None:
                recheck = (chain, *check)
            del chain
            clean = await self._carry(
                link, framed, peer=peer, recheck=recheck, generation=generation
            )
            return True
        finally:
            with trio.CancelScope(shield=True):
                if clean:  # a deliberate re-check: close_notify, not a reset
                    with trio.move_on_after(self.settings.handshake_timeout):
                        await stream.aclose()
                await stream.aclose_forcefully()

    def _refused_by_tls(self, link: Link, peer: str, reason: str, generation: int) -> None:
        """The listener's TLS stack refused us during the handshake (TLS 1.2)."""
        theirs = _tls_judgement(peer, reason)
        mine = Judgement(by=self.name, accepted=True, enforced=self.validation)
        self.ends.judged(link, Outcome.refused(theirs), mine, theirs, generation=generation)

    async def _carry(
        self,
        link: Link,
        framed: FramedStream | LineStream,
        *,
        peer: str,
        recheck: tuple[Sequence[x509.Certificate], str, str | None] | None = None,
        generation: int | None = None,
    ) -> bool:
        """Carry a live link's traffic until it ends; True if closed for a re-check.

        ``generation`` is the dialer's attempt (None on the listener's end):
        a :meth:`RetryGate.recheck` after it closes the link on purpose, with a
        ``link-recheck`` event instead of ``link-down``, and the dial loop
        redials at once. The listener's end of such a link, in the same process,
        sees ``link.rechecks`` move and records nothing: the new attempt tells.
        """
        as_dialer = generation is not None
        plan = plan_for(
            self.role, self.directory.role_of(peer), as_dialer=as_dialer, mutual=link.mutual
        )
        halted_live = False
        rechecked = False
        rechecks = link.rechecks

        watch: object | None = None

        def recheck_now(scope: trio.CancelScope) -> None:
            nonlocal rechecked
            rechecked = True
            self.ends.rechecked(link)
            scope.cancel()

        async def revalidate(scope: trio.CancelScope) -> None:
            """Optional: judge the live peer's chain again every ``revalidate_every``."""
            nonlocal halted_live
            interval = self.spec.revalidate_every
            if interval is None or recheck is None:
                return
            chain, purpose, expected = recheck
            while True:
                await self.clock.sleep(interval, kickable=False)
                mine = await self._judge(chain, purpose=purpose, expected=expected)
                if not mine.accepted:
                    if watch is not None:  # a halted link is no longer live to re-check
                        self.gate.unwatch(watch)
                    self.ends.judged(link, Outcome.refused(mine), mine, None, generation=None)
                    halted_live = True
                    scope.cancel()
                    return

        async def quietly(voice: Callable[[], Awaitable[None]]) -> None:
            # A send into a link that went away ends the speaking, never the
            # appliance: hear() reports why the link ended.
            try:
                await voice()
            except LINK_ERRORS:
                pass

        async def hear() -> str:
            try:
                return await listen(self, link, framed, peer)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                return f"connection to {peer} broke ({exc.__cause__ or exc or 'closed'})"
            except FrameError as exc:
                return f"{peer} broke the protocol: {exc}"

        # Only the tasks this end needs: at thousands of links every task is
        # memory and scheduling. A console's end of a sensor link says
        # nothing, re-checks nothing, and needs no nursery at all.
        reason = "the link was halted"
        speaking = voices(self, link, framed, plan)
        revalidating = self.spec.revalidate_every is not None and recheck is not None
        if not speaking and not revalidating and generation is None:
            reason = await hear()
        else:
            async with trio.open_nursery() as nursery:
                if generation is not None:
                    scope = nursery.cancel_scope
                    watch = self.gate.watch_recheck(generation, lambda: recheck_now(scope))
                for voice in speaking:
                    nursery.start_soon(quietly, voice)
                if revalidating:
                    nursery.start_soon(revalidate, nursery.cancel_scope)
                try:
                    reason = await hear()
                finally:
                    if watch is not None:
                        self.gate.unwatch(watch)
                nursery.cancel_scope.cancel()
        if rechecked:
            return True
        if link.rechecks != rechecks and not self.ends.owns(link):
            return False  # our dialer closed it to validate afresh
        if not halted_live:
            self.ends.lost(link, reason)
        return False

    def _error(self, line: str) -> None:
        self.errors.append(line)
        del self.errors[:-_ERROR_LINES]


def _os_reason(exc: OSError) -> str:
    """The operating system's words for a failed connect: "Connection refused"."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)
