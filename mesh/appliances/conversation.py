"""One connection, either side, once TCP is up: judge the peer, exchange verdicts, carry traffic.

Theory of operation. Every connection of an appliance, inbound
(:meth:`Conversation.accept`) or dialed (``mesh.appliances.dialer``), goes
the same way (:meth:`Conversation.converse`):

1. TLS handshake (``mesh.net.tls``): the verify callback only records; no
   application byte can move before step 3 is done.
2. Judge the peer's presented chain: fetch the CRLs it names with this
   appliance's own fetcher and proxy, then ``validate_peer`` with this
   appliance's trust, policy, validation switch and the emulated clock. A
   dialer requires the server purpose and (``check_names``) the listener's
   host name; a listener requires the client purpose, and the dialer's host
   name when exactly one appliance is configured to dial it. A forwarding
   target does not judge clients (server-auth only).
3. Exchange verdicts (``mesh.net.links``): halted unless both ends accept;
   a refusing end logs a ``link-halted`` event with the exact message and
   closes the connection forcefully. Validation off: the link comes up with a
   ``validation-skipped`` warning listing what would have failed.
4. Only then application frames flow (``mesh.appliances.traffic``), until the
   connection ends.

Live links are not judged again (the source validates at connection start)
unless the spec asks for it (``revalidate_every``): then each end re-judges
the chain its peer presented, and a refusal halts the live link. A
``RetryGate.recheck`` (``Mesh.refresh``) makes the dialer close its live link
cleanly (``link-recheck``, not ``link-down``) to redial at once; the
listener's end in the same process takes that close as no news. A live link
dialed from *another* process (``mesh node``) is out of reach of this
process's gate: :meth:`Conversation.recheck_accepted` judges the chain its
dialer presented again, in place, as ``revalidate_every`` does, and a refusal
halts it (``Appliance.refresh_crls``, after a revocation).

What each outcome means for the link, and what is reported, is the link's
state machine (``mesh.appliances.link_state``), fed through ``LinkEnds``.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Awaitable, Callable, Sequence

import attrs
import trio
from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from mesh.appliances.book import LinkBook
from mesh.appliances.checks import PeerChecker
from mesh.appliances.claims import Claim, PeerClaims
from mesh.appliances.directory import Directory
from mesh.appliances.ends import LinkEnds
from mesh.appliances.link_state import Link, LinkState, Outcome, decide
from mesh.appliances.settings import EngineSettings
from mesh.appliances.spec import ApplianceSpec, LinkPair
from mesh.appliances.traffic import LINK_ERRORS, TrafficEnd, greets, listen, plan_for, voices
from mesh.errors import FailureCode, ValidationFailed
from mesh.events import ConnectionDropped
from mesh.net import tls
from mesh.net.framing import FrameError, FramedStream, LineStream
from mesh.net.links import (
    Judgement,
    PeerRefusedTls,
    PeerSilent,
    decline,
    exchange_verdicts,
    receive_verdict,
    send_verdict,
    tls_refusal,
)
from mesh.validation.policy import Purpose


if TYPE_CHECKING:
    from mesh.appliances.dialer import RetryGate  # the dialer imports this module

__all__ = ["Conversation", "CONNECTION_ERRORS", "why"]

#: What one connection may fail with without taking the appliance down.
CONNECTION_ERRORS = (
    SSL.Error,
    ValidationFailed,
    FrameError,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    OSError,
)

#: How long a deliberate close waits to hand its close_notify over (trio seconds):
#: an appliance that stops does not wait long on a peer that reads nothing.
CLOSE_TIMEOUT = 1.0

#: This appliance's TLS context and credentials for one side (``server=``).
Contexts = Callable[..., tuple[SSL.Context, tls.Credentials]]


def why(exc: BaseException) -> str:
    """A failed connection, in a line for the status and the ``link-down`` reason."""
    if isinstance(exc, ValidationFailed):
        return f"{exc.code.message} ({exc.detail})" if exc.detail else exc.code.message
    return f"{type(exc).__name__}: {exc}"


def tls_judgement(peer: str, reason: str) -> Judgement:
    """A peer whose TLS stack refused us (``openssl s_server -Verify``): its verdict."""
    return Judgement(
        by=peer,
        accepted=False,
        code=FailureCode.VALIDATION_FAILED,
        detail=f"{peer} refused the TLS handshake ({reason})",
    )


def _label_of(chain: Sequence[x509.Certificate]) -> str:
    if not chain:
        return "unknown client"
    names = chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else chain[0].subject.rfc4514_string() or "unknown client"


def _peer_address(transport: trio.SocketStream) -> str:
    try:
        host, port = transport.socket.getpeername()[:2]
    except OSError:
        return "a client"
    return f"{host}:{port}"


class Conversation:
    """Every connection of one appliance, from its TLS handshake to its end.

    Args:
        me: the appliance, as traffic sees it (name, role, clock, events, ...).
        validation: the appliance's validation switch, read at each judgement.
        trust: the roots the appliance trusts now, read at each judgement (an
            appliance without configured trust takes one at its first upload).
        contexts: the appliance's TLS context and credentials for a side.
        error: adds a line to the appliance's status errors.
    """

    def __init__(
        self,
        me: TrafficEnd,
        *,
        spec: ApplianceSpec,
        validation: Callable[[], bool],
        trust: Callable[[], Sequence[x509.Certificate]],
        checker: PeerChecker,
        directory: Directory,
        settings: EngineSettings,
        book: LinkBook,
        gate: RetryGate,
        ends: LinkEnds,
        contexts: Contexts,
        error: Callable[[str], None],
    ) -> None:
        self.me = me
        self.spec = spec
        self._validation = validation
        self._trust = trust
        self.checker = checker
        self.directory = directory
        self.settings = settings
        self.book = book
        self.gate = gate
        self.ends = ends
        self._contexts = contexts
        self._error = error
        #: The names (and certificates) this listener's live inbound links hold.
        self.claims = PeerClaims(appliance=me.name)
        #: Live links dialed from another process, each with how to judge it again.
        self._accepted: dict[object, Callable[[], Awaitable[None]]] = {}
        #: The same links, each with how to close it so that its dialer makes it again.
        self._remade: dict[object, Callable[[str], None]] = {}

    @property
    def name(self) -> str:
        return self.me.name

    async def recheck_accepted(self) -> int:
        """Judge every live link dialed from another process again; how many there were.

        One by one: after the first, the CRLs come from the fetcher's memory.
        A refusal halts the link (``link-halted``), as ``revalidate_every``
        does; an accepted peer changes nothing and is not reported.
        """
        pending = list(self._accepted.values())
        for judge_again in pending:
            await judge_again()
        return len(pending)

    def remake_accepted(self, reason: str) -> None:
        """Close every live link dialed from another process cleanly, for it to be made again.

        Its dialer sees a clean close and redials; this end logs
        ``link-recheck`` with ``reason``. (Links dialed in this process are
        asked through the gate: ``RetryGate.recheck_links``.)
        """
        for remake in list(self._remade.values()):
            remake(reason)

    # -- accepting --

    async def accept(self, transport: trio.SocketStream) -> None:
        """Serve one inbound connection (``trio.serve_listeners`` calls this per client)."""
        try:
            await self._serve_one(transport)
        except CONNECTION_ERRORS as exc:
            self._error(f"{self.name}: an inbound connection failed: {why(exc)}")
            await transport.aclose()

    async def _serve_one(self, transport: trio.SocketStream) -> None:
        client = _peer_address(transport)  # now: a client that reset cannot be asked later
        context, credentials = self._contexts(server=True)
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
        await self.converse(stream, pair=None, generation=None, address=client)

    def _dropped(self, client: str, reason: str) -> None:
        """An inbound connection that never became a link: one event, then it is closed."""
        self.me.events.append(
            ConnectionDropped(at=self.me.clock.now(), appliance=self.name, peer=client, reason=reason)
        )

    # -- one connection, either side --

    async def judge(
        self, chain: Sequence[x509.Certificate], *, purpose: Purpose, expected: str | None
    ) -> Judgement:
        """This appliance's verdict on a peer's chain, with its switch as it is now."""
        enabled = self._validation()
        policy = attrs.evolve(
            self.spec.policy,
            enabled=enabled,
            purpose=purpose,
            expected_name=expected if self.spec.check_names else None,
        )
        verdict = await self.checker.check(
            chain, trust=self._trust(), policy=policy, crl_files=self.spec.crl_files
        )
        return Judgement.from_verdict(self.name, verdict, enforced=enabled)

    async def converse(
        self,
        stream: tls.TlsStream,
        *,
        pair: LinkPair | None,
        generation: int | None,
        address: str = "a client",
        judged: Callable[[], None] | None = None,
    ) -> bool:
        """Judge, exchange verdicts, then carry traffic; True if the link came up.

        ``pair`` is the link this end dials (None: an inbound connection, from
        ``address``); ``generation`` the dialer's attempt (None on the
        listener's end). ``judged`` is called once the link has its outcome
        (the dialer gives back its ``DialSlot``).
        """
        as_dialer = pair is not None
        clean = False
        claim: Claim | None = None
        try:
            chain = stream.peer_chain()
            check: tuple[Purpose, str | None] | None
            if pair is not None:
                peer = pair.listener
                check = ("server", self.directory.hostname_of(peer))
            elif not self.me.role.validates_clients:
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
                mine = await self.judge(chain, purpose=check[0], expected=check[1])
            framed: FramedStream | LineStream
            theirs: Judgement | None
            silence = ""
            if pair is not None and not self.directory.speaks_mesh(peer):
                # A third-party server: no verdict exchange, application data
                # as JSON lines. Its TLS stack's answer is its verdict.
                framed = LineStream(stream, max_frame=self.settings.max_frame)
                theirs = None
                if mine.accepted:
                    try:
                        theirs = await self._raw_verdict(stream, peer)
                    except PeerSilent as exc:
                        silence = str(exc)
            else:
                framed = FramedStream(stream, max_frame=self.settings.max_frame)
                timeout = self.settings.verdict_timeout
                try:
                    if as_dialer:
                        theirs = await exchange_verdicts(
                            framed, mine, peer_name=peer, timeout=timeout
                        )
                    else:
                        theirs, claim = await self._answer(
                            framed, mine, peer=peer, address=address, chain=chain
                        )
                        if claim is None:
                            return False  # declined: a live link holds that name
                except PeerRefusedTls as exc:
                    theirs = tls_judgement(peer, str(exc))
                except (PeerSilent, FrameError) as exc:
                    theirs, silence = None, str(exc)
            if pair is not None:
                link = self.book.get(pair.dialer, pair.listener, mutual=pair.mutual)
            else:
                peer = theirs.by if theirs is not None else peer  # the dialer's own name
                link = self.book.get(peer, self.name, mutual=self.me.role.validates_clients)
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
            if (outcome.state.is_up and self.ends.owns(link)
                    and self.directory.is_local(link.dialer) and self.directory.is_local(link.listener)):
                # Before the outcome is news: a settle waits for the first frame too
                # (only when both ends are in this process: it is received elsewhere
                # otherwise, and this record would wait for it forever).
                link.greeting = greets(
                    self.directory.role_of(link.dialer),
                    self.directory.role_of(link.listener),
                    mutual=link.mutual,
                )
            self.ends.judged(link, outcome, mine, theirs, generation=generation)
            if judged is not None:
                judged()
            if outcome.state is LinkState.HALTED:
                return False
            # The peer's parsed chain is kept for the link's life only when
            # it will be judged again (revalidate_every): parsed certificates
            # and their names are kilobytes per link.
            recheck = None
            if check is not None and self.spec.revalidate_every is not None:
                recheck = (chain, *check)
            del chain
            # A dialer elsewhere cannot be asked to redial: keep what it
            # takes to judge its chain again here (``recheck_accepted``).
            again = None
            if pair is None and check is not None and not self.directory.is_local(link.dialer):
                again = (stream.peer_chain, *check)
            clean = await self._carry(
                link, framed, peer=peer, recheck=recheck, generation=generation, again=again
            )
            return True
        finally:
            if claim is not None:
                self.claims.release(claim)
            if trio.current_effective_deadline() == -math.inf:
                # The appliance is stopping (a step, SIGTERM, Ctrl-C): its peers
                # get a close_notify and log a normal close, not a broken link.
                clean = True
            with trio.CancelScope(shield=True):
                if clean:  # a deliberate close: close_notify, not a reset
                    with trio.move_on_after(CLOSE_TIMEOUT):
                        await stream.aclose()
                await stream.aclose_forcefully()

    async def _answer(
        self,
        framed: FramedStream,
        mine: Judgement,
        *,
        peer: str,
        address: str,
        chain: Sequence[x509.Certificate],
    ) -> tuple[Judgement, Claim | None]:
        """The listener's exchange: the dialer's verdict, then ours, or a decline.

        The dialer's verdict comes first because it names the dialer: a name
        another live connection holds is answered with ``DECLINE`` (no
        claim returned). A claim is released here if our verdict cannot be
        sent, and by the caller when the connection ends.
        """
        theirs = await receive_verdict(framed, peer_name=peer, timeout=self.settings.verdict_timeout)
        claim = self._claim(theirs.by, address, chain)
        if claim is None:
            await decline(
                framed, by=self.name, reason=f"{theirs.by} is already connected to {self.name}"
            )
            return theirs, None
        try:
            await send_verdict(framed, mine, peer_name=peer)
        except BaseException:
            self.claims.release(claim)
            raise
        return theirs, claim

    def _claim(self, name: str, address: str, chain: Sequence[x509.Certificate]) -> Claim | None:
        """Hold ``name`` for this inbound connection; None (and a warning) if it is held."""
        claim, events = self.claims.claim(
            name, address=address, leaf=chain[0] if chain else None, at=self.me.clock.now()
        )
        for event in events:
            self.me.events.append(event)
        return claim

    async def _raw_verdict(self, stream: tls.TlsStream, peer: str) -> Judgement:
        """A third-party server's verdict on us: its first record after the handshake.

        Under TLS 1.2 its refusal ended the handshake; under TLS 1.3 it judges
        our certificate after our handshake is done and answers with an
        alert (refused: the link halts and is redialed with backoff, instead
        of coming up and breaking at once, over and over) or a session
        ticket. Silence for ``raw_verdict_wait`` counts as acceptance.

        Raises:
            PeerSilent: it closed without an alert: the link is down, not up.
        """
        if stream.version == "TLSv1.3":
            with trio.move_on_after(self.settings.raw_verdict_wait):
                try:
                    heard = await stream.receive_next_record()
                except trio.BrokenResourceError as exc:
                    refusal = tls_refusal(exc)
                    if refusal is not None:
                        return tls_judgement(peer, refusal)
                    raise PeerSilent(f"{peer} broke the connection after the handshake") from exc
                if heard == b"":
                    raise PeerSilent(f"{peer} closed the connection after the handshake")
        return Judgement.not_checked(peer)

    def refused_by_tls(self, link: Link, peer: str, reason: str, generation: int) -> None:
        """The listener's TLS stack refused us during the handshake (TLS 1.2)."""
        theirs = tls_judgement(peer, reason)
        mine = Judgement(by=self.name, accepted=True, enforced=self._validation())
        self.ends.judged(link, Outcome.refused(theirs), mine, theirs, generation=generation)

    # -- a live link --

    async def _carry(
        self,
        link: Link,
        framed: FramedStream | LineStream,
        *,
        peer: str,
        recheck: tuple[Sequence[x509.Certificate], Purpose, str | None] | None = None,
        generation: int | None = None,
        again: tuple[Callable[[], Sequence[x509.Certificate]], Purpose, str | None] | None = None,
    ) -> bool:
        """Carry a live link's traffic until it ends; True if closed for a re-check.

        ``generation`` is the dialer's attempt (None on the listener's end):
        a :meth:`RetryGate.recheck` after it closes the link on purpose, with a
        ``link-recheck`` event instead of ``link-down``, and the dial loop
        redials at once. The listener's end of such a link, in the same process,
        sees ``link.rechecks`` move and records nothing: the new attempt tells.

        ``again`` (the listener's end of a link dialed from another process):
        the presented chain and the checks it passed, for
        :meth:`recheck_accepted` to judge it again.
        """
        as_dialer = generation is not None
        plan = plan_for(
            self.me.role, self.directory.role_of(peer), as_dialer=as_dialer, mutual=link.mutual
        )
        halted_live = False
        rechecked = False
        rechecks = link.rechecks

        async def hear() -> str:
            try:
                return await listen(self.me, link, framed, peer, greeted=self.book.touch)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                return f"connection to {peer} broke ({exc.__cause__ or exc or 'closed'})"
            except FrameError as exc:
                return f"{peer} broke the protocol: {exc}"

        # Only the tasks this end needs: at thousands of links every task is
        # memory and scheduling. A console's end of a sensor link says
        # nothing, re-checks nothing, and needs no nursery at all (nor the
        # functions below, which its frame would hold for the link's life).
        speaking = voices(self.me, link, framed, plan)
        revalidating = self.spec.revalidate_every is not None and recheck is not None
        if not speaking and not revalidating and generation is None and again is None:
            self._lost(link, await hear(), rechecks)
            return False

        watch: object | None = None

        def recheck_now(scope: trio.CancelScope, reason: str) -> None:
            nonlocal rechecked
            rechecked = True
            self.ends.rechecked(link, reason)
            scope.cancel()

        def halt(mine: Judgement, scope: trio.CancelScope) -> None:
            """This end no longer accepts its live peer: the link halts."""
            nonlocal halted_live
            if watch is not None:  # a halted link is no longer live to re-check
                self.gate.unwatch(watch)
            self.ends.judged(link, Outcome.refused(mine), mine, None, generation=None)
            halted_live = True
            scope.cancel()

        def judge_again_in(
            scope: trio.CancelScope, handle: object
        ) -> Callable[[], Awaitable[None]]:
            assert again is not None
            peer_chain, purpose, expected = again

            def live() -> bool:
                return handle in self._accepted and not halted_live and not scope.cancel_called

            async def judge_again() -> None:
                if not live():
                    return
                mine = await self.judge(peer_chain(), purpose=purpose, expected=expected)
                if not mine.accepted and live():  # the link may have ended meanwhile
                    halt(mine, scope)

            return judge_again

        async def revalidate(scope: trio.CancelScope) -> None:
            """Optional: judge the live peer's chain again every ``revalidate_every``."""
            interval = self.spec.revalidate_every
            if interval is None or recheck is None:
                return
            chain, purpose, expected = recheck
            while True:
                await self.me.clock.sleep(interval, kickable=False)
                mine = await self.judge(chain, purpose=purpose, expected=expected)
                if not mine.accepted:
                    halt(mine, scope)
                    return

        async def quietly(voice: Callable[[], Awaitable[None]]) -> None:
            # A send into a link that went away ends the speaking, never the
            # appliance: hear() reports why the link ended.
            try:
                await voice()
            except LINK_ERRORS:
                pass

        reason = "the link was halted"
        handle = object()
        if not speaking and not revalidating and generation is None:
            with trio.CancelScope() as scope:
                self._accepted[handle] = judge_again_in(scope, handle)
                self._remade[handle] = functools.partial(recheck_now, scope)
                try:
                    reason = await hear()
                finally:
                    self._accepted.pop(handle, None)
                    self._remade.pop(handle, None)
        else:
            async with trio.open_nursery() as nursery:
                if generation is not None:
                    watch = self.gate.watch_recheck(
                        generation, link.key, functools.partial(recheck_now, nursery.cancel_scope)
                    )
                if again is not None:
                    self._accepted[handle] = judge_again_in(nursery.cancel_scope, handle)
                    self._remade[handle] = functools.partial(recheck_now, nursery.cancel_scope)
                for voice in speaking:
                    nursery.start_soon(quietly, voice)
                if revalidating:
                    nursery.start_soon(revalidate, nursery.cancel_scope)
                try:
                    reason = await hear()
                finally:
                    self._accepted.pop(handle, None)
                    self._remade.pop(handle, None)
                    if watch is not None:
                        self.gate.unwatch(watch)
                nursery.cancel_scope.cancel()
        if rechecked:
            return True
        if not halted_live:
            self._lost(link, reason, rechecks)
        return False

    def _lost(self, link: Link, reason: str, rechecks: int) -> None:
        """A live link ended for ``reason``: it is down, unless our dialer
        closed it to validate afresh (``link.rechecks`` moved on from ``rechecks``)."""
        if link.rechecks == rechecks or self.ends.owns(link):
            self.ends.lost(link, reason)
