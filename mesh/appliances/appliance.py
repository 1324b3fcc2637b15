"""One appliance as trio tasks: its lifecycle, its certificate and switch, its status.

Theory of operation. ``Appliance.run`` listens on its port, serves each
inbound connection through its :class:`Conversation`, starts one
:class:`Dialer` loop per link it dials and its :class:`ExpiryWatcher`, and
says ``appliance-started``; cancelled, it says ``appliance-stopped`` and
takes the links it owns down with it. The parts, each in its own module:

* ``mesh.appliances.conversation``: one connection, either side: judge the
  peer, exchange verdicts, carry traffic;
* ``mesh.appliances.dialer``: the dial loops, their backoff and the
  ``RetryGate`` that ``Mesh.settle`` uses to cut it short;
* ``mesh.appliances.expiry_watch``: ``certificate-expiring`` when its own
  certificate nears its end;
* ``mesh.appliances.link_state``: where each link goes and what is news,
  fed through this appliance's ``LinkEnds`` (``mesh.appliances.ends``).

What stays here is the appliance itself: a first start makes a self-signed
certificate; an upload is checked (``mesh.appliances.identity`` and the
appliance's own validation) before it is used, its live links then made
again with it (a certificate is presented at the handshake);
its trust, the configured roots or, without any, the root an accepted upload
was judged against (``mesh.upload.upload_anchors``, the rule ``mesh cert
check`` follows too; a ``trust-anchor-set`` event says so); the validation
switch; the TLS contexts of its identity; its status, with the last
:data:`ERROR_LINES` error lines; and :meth:`Appliance.refresh_crls`, the
operator's "refetch the CRLs now": like a real appliance it otherwise keeps
a cached CRL until its nextUpdate, whatever the CA published since.
"""

from __future__ import annotations

from collections import deque
from typing import Awaitable, Callable, Sequence

import attrs
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from mesh.appliances.book import LinkBook
from mesh.appliances.checks import PeerChecker
from mesh.appliances.conversation import Conversation
from mesh.appliances.dialer import Dialer, RetryGate
from mesh.appliances.directory import Directory
from mesh.appliances.ends import LinkEnds
from mesh.appliances.expiry_watch import ExpiryWatch, ExpiryWatcher
from mesh.appliances.identity import first_start_identity, open_key, refusal_of
from mesh.appliances.settings import EngineSettings
from mesh.appliances.settle import MeshNotSettled, Settler
from mesh.appliances.spec import ApplianceSpec, LinkPair, Role
from mesh.appliances.status import ApplianceStatus, LinkStatus
from mesh.appliances.traffic import AlertBoard, Inbox
from mesh.clock import EmulatedClock
from mesh.errors import InputError, ValidationFailed
from mesh.eventlog import EventLog
from mesh.events import (
    ApplianceStarted,
    ApplianceStopped,
    CertificateUploaded,
    CrlsRefreshed,
    TrustAnchorSet,
    UploadRefused,
    ValidationSwitched,
)
from mesh.net import tls
from mesh.net.accepting import serve_listener
from mesh.net.crl_store import CrlStore
from mesh.pki.issue import Issued, KeySource
from mesh.upload import APPLIANCE_TRUST, UploadMaterial
from mesh.validation.verdict import Verdict

# Directory, EngineSettings and RetryGate are imported from here by ``mesh node``.
__all__ = ["Appliance", "Directory", "EngineSettings", "RetryGate", "ERROR_LINES"]

#: How many error lines an appliance's status keeps (the newest).
ERROR_LINES = 20

#: Seconds :meth:`Appliance.refresh_crls` waits for its links' new outcomes.
REFRESH_TIMEOUT = 30.0


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
        expiry_watch: ExpiryWatch | None = None,
    ) -> None:
        self.spec = spec
        #: The mesh-wide expiry watch (None: this appliance runs its own task).
        self._expiry_watch = expiry_watch
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
        #: The roots peers are judged against: the spec's, or (without any)
        #: the root of the first accepted upload's chain. Like the uploaded
        #: identity, it lasts as long as this object (a Mesh stop and start);
        #: a ``mesh node`` process starts from its config again.
        self.trust: tuple[x509.Certificate, ...] = spec.trust
        self.port: int | None = spec.port or None
        #: Whether it opens a listener when it runs. A ``Mesh`` turns it off
        #: for a sensor that nothing dials: at thousands of sensors, a
        #: listening socket each is a descriptor, a task and memory that no
        #: connection ever uses (real sensors only dial out, too).
        self.listens = True
        self.running = False
        self.checker = PeerChecker(
            spec.name,
            clock=clock,
            events=events,
            proxy=spec.crl_proxy,
            crl_timeout=settings.crl_timeout,
            crl_store=None if spec.crl_cache is None else CrlStore(spec.crl_cache),
        )
        self.alerts = AlertBoard()
        self.inbox = Inbox()
        #: Made at the first error (an empty deque is ~0.8 kB, and most never get one).
        self._errors: deque[str] | None = None
        self._subject: tuple[x509.Certificate, str] | None = None
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
        self.conversation = Conversation(
            self,
            spec=spec,
            validation=lambda: self.validation,
            trust=lambda: self.trust,
            checker=self.checker,
            directory=directory,
            settings=settings,
            book=book,
            gate=gate,
            ends=self.ends,
            contexts=self._tls,
            error=self._error,
        )
        self.dialer = Dialer(
            spec.name,
            directory=directory,
            settings=settings,
            book=book,
            gate=gate,
            ends=self.ends,
            conversation=self.conversation,
            contexts=self._tls,
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

    async def run(
        self,
        *,
        task_status: trio.TaskStatus[int | None] = trio.TASK_STATUS_IGNORED,
        scope: trio.CancelScope | None = None,
        done: trio.Event | None = None,
    ) -> None:
        """Listen and dial until cancelled; ``task_status.started(port)`` once listening.

        The port is None for an appliance that does not listen (:attr:`listens`).

        ``scope`` stops the appliance when cancelled and ``done`` is set once it
        has stopped: what a ``Mesh`` keeps per appliance, passed in so that it
        needs no wrapper task per appliance to hold them.
        """
        try:
            with scope or trio.CancelScope():
                await self._run(task_status)
        finally:
            if done is not None:
                done.set()

    async def _run(self, task_status: trio.TaskStatus[int | None]) -> None:
        if self.identity is None:
            self.identity = first_start_identity(
                self.directory.hostname_of(self.name), at=self.clock.now(), keys=self._keys
            )
            self.self_signed = True
        listeners: list[trio.SocketListener] = []
        if self.listens:
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
                subject=self.subject_text(self.identity.cert),
                serial=self.identity.cert.serial_number,
                self_signed=self.self_signed,
            )
        )
        self.check_expiry()
        try:
            if not listeners and len(self.dials) == 1 and self._expiry_watch is not None:
                # A sensor: one dial, nothing to listen on, its expiry watched
                # by the mesh. It dials in this task: a nursery and a task of
                # its own are ~3.5 kB a sensor, at thousands of sensors.
                self._expiry_watch.add(self.expiry)
                task_status.started(self.port)
                await self.dialer.run(self.dials[0])
                return
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(serve_listener, listener, self.conversation.accept, nursery,
                                       self._out_of_room)
                if self._expiry_watch is None:
                    nursery.start_soon(self.expiry.watch)
                else:
                    self._expiry_watch.add(self.expiry)
                for pair in self.dials:
                    nursery.start_soon(self.dialer.run, pair)
                task_status.started(self.port)
        finally:
            self.running = False
            if self._expiry_watch is not None:
                self._expiry_watch.discard(self.expiry)
            for link in self.book.of(self.name):
                if self.ends.owns(link):
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
        """The upload-time check, then (if accepted) the new identity for new connections.

        Judged against this appliance's trust or, when it has none, the root in
        the uploaded chain, which it then trusts (``mesh.upload.upload_anchors``).
        """
        try:
            issued = await open_key(issued, key_pem, passphrase)
        except ValidationFailed as exc:
            return self._refuse_upload(refusal_of(exc), issued.cert)
        material = UploadMaterial.of(
            issued.cert,
            issued.key,
            chain=issued.chain,
            trust=self.trust,
            anchor_source="the uploaded chain" if issued.chain else "",
            trust_setting=APPLIANCE_TRUST,
        )
        policy = attrs.evolve(
            self.spec.policy, enabled=self.validation, purpose=None, expected_name=None
        )
        verdict = await self.checker.judge_upload(
            material, policy=policy, crl_files=self.spec.crl_files
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
        root = material.adopted_root(verdict)
        if root is not None and not self.trust:
            self._adopt(root)
        self.expiry.renewed()
        self._remake_links(f"to present {self.name}'s new certificate")
        return verdict

    def _remake_links(self, reason: str) -> None:
        """Close this appliance's live links cleanly so each is made again now.

        A certificate is presented at the handshake, so live links would keep
        the old one: links dialed in this process (by this appliance or to
        it) redial at once through the gate, links dialed from another
        process are closed for their dialer to redial. Each says ``reason``
        in a ``link-recheck`` event.
        """
        live = {link.key for link in self.book.of(self.name) if link.state.is_up}
        self.gate.recheck_links(live, reason)
        self.conversation.remake_accepted(reason)

    async def refresh_crls(
        self,
        *,
        timeout: float = REFRESH_TIMEOUT,
        settle: Callable[[float], Awaitable[None]] | None = None,
    ) -> tuple[str, ...]:
        """Refetch every cached CRL at the next check and judge the live links afresh now.

        The path ``Mesh.revoke`` and ``Mesh.refresh`` take, for this one
        appliance: its CRL cache is marked for refresh (a failed refetch keeps
        a current CRL, as :mod:`mesh.net.crl_cache` rules), live links dialed
        from another process are judged again in place
        (``Conversation.recheck_accepted``), and ``settle`` (default: this
        appliance's dials, closed cleanly and redialed through its
        ``RetryGate``) waits for the new outcomes.

        Returns:
            The links (``"dialer -> listener"``) still without a new outcome
            after ``timeout`` seconds; () when every one has it.
        """
        self.checker.invalidate()
        self.events.append(CrlsRefreshed(at=self.clock.now(), appliance=self.name))
        await self.conversation.recheck_accepted()
        if settle is None:
            settler = Settler(
                book=self.book,
                gate=self.gate,
                pairs=lambda: self.dials,
                running=lambda name: name == self.name and self.running,
            )

            async def settle(timeout: float) -> None:
                await settler.settle(timeout=timeout, quiet=0.0, fresh=True, idle=False)

        try:
            await settle(timeout)
        except MeshNotSettled as exc:
            return exc.pending
        return ()
    def _adopt(self, root: x509.Certificate) -> None:
        """Trust ``root`` from now on: it had no trust, and an upload was judged against it."""
        self.trust = (root,)
        self._contexts.clear()
        self.events.append(
            TrustAnchorSet(
                at=self.clock.now(),
                appliance=self.name,
                subject=root.subject.rfc4514_string(),
                sha256_fingerprint=root.fingerprint(hashes.SHA256()).hex(":").upper(),
            )
        )

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
            subject=self.subject_text(identity.cert) if identity else "",
            serial=identity.cert.serial_number if identity else None,
            self_signed=self.self_signed,
            links=tuple(LinkStatus.of(link) for link in self.book.of(self.name)),
            errors=tuple(self._errors or ()),
            conflicts=self.conversation.claims.conflicts(),
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
                trust=self.trust,
                require_peer_cert=self.role.validates_clients if server else True,
            )
            cached = self._contexts[server] = (ctx, credentials)
        return cached

    def subject_text(self, cert: x509.Certificate) -> str:
        """``cert``'s subject as RFC 4514 text, read from a copy of it.

        Why a copy: ``cryptography`` keeps a parsed name on the certificate
        object for the object's life (~2.7 kB), and an appliance's own
        certificate lives as long as the appliance, which only ever needs
        this text. Worked out once per certificate.
        """
        if self._subject is None or self._subject[0] is not cert:
            copy = x509.load_der_x509_certificate(cert.public_bytes(Encoding.DER))
            self._subject = (cert, copy.subject.rfc4514_string())
        return self._subject[1]

    def _error(self, line: str) -> None:
        if self._errors is None:
            self._errors = deque(maxlen=ERROR_LINES)
        self._errors.append(line)

    def _out_of_room(self, exc: OSError) -> None:
        self._error(f"{self.name}: cannot accept a connection ({exc.strerror or exc}); "
                    "retrying: raise the descriptor limit or run fewer appliances here")
