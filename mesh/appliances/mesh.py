"""``Mesh``: the one runtime API over a set of appliances in one trio run.

Everything a scenario, a test or a live demo does to a running mesh goes
through this class. Its signatures are stable::

    mesh = Mesh(start=datetime(2027, 1, 15, tzinfo=timezone.utc),
                pki=pki, crl_server=server)         # both optional
    mesh.add(ApplianceSpec(name=..., role=..., identity=..., trust=...))

    async with trio.open_nursery() as nursery:
        await nursery.start(mesh.run)               # returns once all listen
        await mesh.settle()                         # every link tried afresh
        mesh.links()       # [LinkStatus(dialer, listener, state, code, message,
                           #             refused_by, delivered, ...)]
        mesh.status(name)  # ApplianceStatus (links, certificate, errors)
        mesh.events        # the EventLog (list, subscribe(), JSON lines)

        await mesh.upload(name, issued, passphrase=None, key_pem=None) -> Verdict
        mesh.set_validation(name, False)
        await mesh.revoke(name)                     # Pki.revoke + republish CRLs
        await mesh.crl_fault("down" | "ok" | "slow" | ...)
        await mesh.advance(timedelta(days=365))     # validation, CRLs, backoff
        await mesh.refresh()                        # every link judged afresh now
        await mesh.refresh_crls(name)               # name refetches its CRLs, then refresh()
        await mesh.stop(name); await mesh.start(name)
        mesh.raise_alert(sensor, "text")            # traffic for forwarding rules
        mesh.add_external(name, host, port, hostname=None, speaks_mesh=True)
        mesh.link(a, b)                             # one LinkStatus, either order
        mesh.appliance(name)                        # the live Appliance
        await mesh.settle()
        nursery.cancel_scope.cancel()

Dialer choice: one connection per pair of appliances; when two specs name
each other the lower role rank dials (sensor, management console, HA console,
forwarding target), then the smaller name (``mesh.appliances.spec``).
Expected peer names: a dialer requires the listener's certificate to name the
listener's host name (``ApplianceSpec.hostname``, else the common name the
PKI issued for it, else its name); a listener requires the dialer's when
exactly one appliance dials it.

or ``async with Mesh(...) as mesh:`` (starts on entry, stops on exit).

``settle()`` is what a caller awaits instead of sleeping: it cuts every
dialer's backoff short, returns once every link whose dialer runs has reached
an outcome on an attempt that started after the call (links that are up stay
up: validation happens at connection start), and then waits until every task
is idle, so the first messages of new links have been delivered. (Idle means
trio's ``wait_all_tasks_blocked``: work in a worker thread, such as parsing a
very large CRL, does not count as busy.) If that takes longer than its
timeout it raises :class:`MeshNotSettled` naming the links still waiting.

``refresh()`` (``settle(fresh=True)``) is what a scenario runner calls after
each step: a scenario asks what the *next* connection does, so every dialer
closes its live link cleanly (a ``link-recheck`` event, not a fault; the
listener records nothing), redials at once and validates afresh, and
``refresh`` returns once every link has that new outcome. No appliance stops
and no port moves; outcomes that did not change are not reported again.

Expiry warnings: an appliance whose own certificate comes within
``EngineSettings.expiry_window`` (30 days) of its notAfter emits one
``certificate-expiring`` event per certificate per crossing: at start, after
an upload, after :meth:`Mesh.advance`, or when plain elapsed time gets there.

Revocation and CRL freshness: a CA that revokes republishes its CRL, and
appliances keep CRLs cached until their nextUpdate. ``revoke`` republishes on
the CRL server and asks every appliance to refresh that CRL at its next check
(the emulated stand-in for an operator who wants the revocation seen now).
``advance`` republishes every CRL at the new instant as a CA's scheduled
publication would, unless the server is in a fault that serves fixed variants.
``refresh_crls(name)`` is that operator's request made to one appliance (its
console's ``POST /api/v1/crls/refresh``): a CRL published behind the mesh's
back (``pki.revoke`` and ``republish`` without ``revoke``) reaches it then.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Any, Sequence

import trio

from mesh.appliances.appliance import Appliance
from mesh.appliances.book import LinkBook
from mesh.appliances.collector import collector_tuned
from mesh.appliances.dialer import RetryGate
from mesh.appliances.expiry_watch import ExpiryWatch
from mesh.appliances.link_state import LinkState
from mesh.appliances.settings import EngineSettings
from mesh.appliances.settle import MeshNotSettled, Settler
from mesh.appliances.spec import ApplianceSpec, LinkPair, Role, link_pairs
from mesh.appliances.status import ApplianceStatus, LinkStatus
from mesh.clock import EmulatedClock
from mesh.eventlog import EventLog
from mesh.events import CertificateRevoked, ClockAdvanced, CrlServerChanged
from mesh.pki.issue import Issued, KeySource
from mesh.validation.verdict import Verdict

if TYPE_CHECKING:
    from mesh.net.crl_server import CrlServer
    from mesh.pki.deployment import Pki

__all__ = ["Mesh", "MeshNotSettled"]


class Mesh:
    """Appliances, their links, one emulated clock and one event stream.

    Args:
        start: the scenario's first instant (or give ``clock``).
        clock: an existing :class:`EmulatedClock` to share.
        events: an existing :class:`EventLog` (e.g. with a JSON-lines sink).
        pki: a ``mesh.pki.folder.Pki`` for :meth:`revoke` and CRL republishing.
        crl_server: a running ``mesh.net.crl_server.CrlServer`` serving the PKI's CRLs.
        settings: timeouts and backoff.
        keys: where first-start self-signed keys come from (tests pass a pool).
    """

    def __init__(
        self,
        *,
        start: dt.datetime | None = None,
        clock: EmulatedClock | None = None,
        events: EventLog | None = None,
        pki: Pki | None = None,
        crl_server: CrlServer | None = None,
        settings: EngineSettings = EngineSettings(),
        keys: KeySource | None = None,
    ) -> None:
        if clock is None:
            if start is None:
                raise TypeError("Mesh needs a start instant or a clock")
            clock = EmulatedClock(start)
        self.clock = clock
        self.events = events if events is not None else EventLog()
        self.pki = pki
        self.crl_server = crl_server
        self.settings = settings
        self.book = LinkBook()
        self.gate = RetryGate(clock, dial_slots=settings.dial_slots)
        #: One task watches every appliance's certificate expiry (see ExpiryWatch).
        self._expiry_watch = ExpiryWatch(clock)
        self._keys = keys
        self._specs: dict[str, ApplianceSpec] = {}
        self._appliances: dict[str, Appliance] = {}
        self._stale = False
        self._pair_list: list[LinkPair] = []
        self._dials: dict[str, list[LinkPair]] = {}
        self._dialers: dict[str, tuple[str, ...]] = {}
        self._external: dict[str, tuple[str, int, str, bool]] = {}
        self._nursery: trio.Nursery | None = None
        self._scopes: dict[str, trio.CancelScope] = {}
        self._done: dict[str, trio.Event] = {}
        self._outer: trio.CancelScope | None = None
        self._settler = Settler(
            book=self.book, gate=self.gate, pairs=self._topology, running=self._running
        )

    # -- building --

    def add(self, spec: ApplianceSpec) -> Appliance:
        """Add an appliance (before :meth:`run`; afterwards, follow with :meth:`start`)."""
        if spec.name in self._specs:
            raise ValueError(f"appliance {spec.name!r} is already in this mesh")
        self._specs[spec.name] = spec
        self._stale = True
        appliance = Appliance(
            spec,
            clock=self.clock,
            events=self.events,
            book=self.book,
            directory=self,
            gate=self.gate,
            settings=self.settings,
            keys=self._keys,
            expiry_watch=self._expiry_watch,
        )
        self._appliances[spec.name] = appliance
        return appliance

    @property
    def _pairs(self) -> list[LinkPair]:
        return self._topology()

    def _topology(self) -> list[LinkPair]:
        """Every link of the topology, recomputed only after an :meth:`add`.

        ``add`` only marks the topology stale: recomputing ``link_pairs`` and
        every appliance's ``dials`` per add made building an n-appliance mesh
        O(n²) (O(n³) with the dial scan), half an hour for 5,000 sensors.
        """
        if self._stale:
            pairs = link_pairs(self._specs.values())
            dials: dict[str, list[LinkPair]] = {}
            dialers: dict[str, list[str]] = {}
            for pair in pairs:
                dials.setdefault(pair.dialer, []).append(pair)
                dialers.setdefault(pair.listener, []).append(pair.dialer)
            for name, appliance in self._appliances.items():
                appliance.dials = dials.get(name, [])
            self._pair_list, self._dials = pairs, dials
            self._dialers = {name: tuple(names) for name, names in dialers.items()}
            self._stale = False
        return self._pair_list

    def _running(self, name: str) -> bool:
        appliance = self._appliances.get(name)
        return appliance is not None and appliance.running

    def appliance(self, name: str) -> Appliance:
        self._topology()  # its dials are current once anyone can see or run it
        try:
            return self._appliances[name]
        except KeyError:
            known = ", ".join(sorted(self._appliances)) or "none"
            raise KeyError(f"no appliance named {name!r} in this mesh (known: {known})") from None

    @property
    def names(self) -> list[str]:
        return list(self._appliances)

    @property
    def pairs(self) -> list[LinkPair]:
        return list(self._pairs)

    # -- Directory (what appliances ask the mesh) --

    def add_external(
        self,
        name: str,
        host: str,
        port: int,
        *,
        hostname: str | None = None,
        speaks_mesh: bool = True,
    ) -> None:
        """A peer outside this mesh that appliances may name in ``connects_to``/``forwards_to``.

        ``speaks_mesh``: another ``mesh node`` exchanges verdicts; a third-party
        server (``openssl s_server``, a SIEM) does not: the link is up once this
        side accepts the server, and alerts go to it as JSON lines.
        """
        self._external[name] = (host, int(port), hostname or name, speaks_mesh)

    def speaks_mesh(self, name: str) -> bool:
        external = self._external.get(name)
        return external[3] if external is not None else True

    def address_of(self, name: str) -> tuple[str, int] | None:
        external = self._external.get(name)
        if external is not None:
            return external[0], external[1]
        appliance = self._appliances.get(name)
        if appliance is None or appliance.port is None:
            return None
        return (appliance.spec.host, appliance.port)

    def role_of(self, name: str) -> Role | None:
        spec = self._specs.get(name)
        return spec.role if spec is not None else None

    def is_local(self, name: str) -> bool:
        return name in self._appliances

    def expected_dialers(self, listener: str) -> Sequence[str]:
        self._topology()
        return self._dialers.get(listener, ())

    def hostname_of(self, name: str) -> str:
        """The domain name ``name``'s certificate must carry: the spec's
        ``hostname``, else the common name the PKI issued for it, else ``name``."""
        spec = self._specs.get(name)
        if spec is not None and spec.hostname:
            return spec.hostname
        if name in self._external:
            return self._external[name][2]
        material = self.pki.appliances.get(name) if self.pki is not None else None
        common_name = material.common_name if material is not None else None
        return str(common_name) if common_name else name

    # -- running --

    async def run(self, *, task_status: trio.TaskStatus[Mesh] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every appliance, report readiness, run until cancelled."""
        try:
            with collector_tuned():
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._expiry_watch.run)
                    for name in self._listeners_first():
                        await self._launch(name)
                    task_status.started(self)
                    await trio.sleep_forever()
        finally:
            self._nursery = None

    def _listeners_first(self) -> list[str]:
        """Every appliance, each after the appliances it dials (add order otherwise).

        So a dialer's first attempt finds its listener listening instead of
        reporting it down; a cycle (not made by ``link_pairs``) keeps add order.
        """
        self._topology()
        order: list[str] = []
        placed: set[str] = set()
        waiting = list(self._appliances)
        while waiting:
            ready = [
                name for name in waiting
                if all(p.listener in placed or p.listener not in self._appliances
                       for p in self._dials.get(name, ()))
            ] or waiting[:1]
            order += ready
            placed.update(ready)
            waiting = [name for name in waiting if name not in placed]
        return order

    async def __aenter__(self) -> Mesh:
        self._outer_nursery_cm = trio.open_nursery()
        nursery = await self._outer_nursery_cm.__aenter__()
        self._outer = nursery.cancel_scope
        await nursery.start(self.run)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._outer is not None
        self._outer.cancel()
        return await self._outer_nursery_cm.__aexit__(*exc_info)

    async def _launch(self, name: str) -> None:
        assert self._nursery is not None
        appliance = self.appliance(name)
        # A sensor that nothing here dials, and that has no port of its own
        # for peers elsewhere, listens for nothing (see Appliance.listens).
        appliance.listens = bool(
            appliance.spec.port
            or appliance.role is not Role.SENSOR
            or self.expected_dialers(name)
        )
        scope = trio.CancelScope()
        done = trio.Event()
        self._scopes[name] = scope
        self._done[name] = done
        await self._nursery.start(functools.partial(appliance.run, scope=scope, done=done))

    async def start(self, name: str) -> None:
        """Start a stopped (or newly added) appliance on its old port."""
        if self._nursery is None:
            raise RuntimeError("the mesh is not running; use run() first")
        if self.appliance(name).running:
            return
        await self._launch(name)

    async def stop(self, name: str) -> None:
        """Stop an appliance: its listener and links close; peers see them go down."""
        appliance = self.appliance(name)
        scope, done = self._scopes.get(name), self._done.get(name)
        if scope is None or done is None or not appliance.running:
            return
        scope.cancel()
        await done.wait()

    # -- runtime actions --

    async def upload(
        self,
        name: str,
        issued: Issued,
        passphrase: str | None = None,
        *,
        key_pem: bytes | None = None,
    ) -> Verdict:
        """Upload a certificate to ``name`` (upload-time check unless validation is off).

        A refused upload changes nothing; an accepted one is used from the next
        connection on. ``key_pem`` (the .key file, maybe encrypted) with
        ``passphrase`` replaces ``issued.key`` — a wrong passphrase refuses the
        upload with ``passphrase_mismatch``.
        """
        return await self.appliance(name).upload(issued, passphrase=passphrase, key_pem=key_pem)

    def set_validation(self, name: str, enabled: bool) -> None:
        self.appliance(name).set_validation(enabled)

    async def revoke(self, name: str) -> int:
        """Revoke ``name``'s certificate in the PKI and republish its CRL now."""
        if self.pki is None:
            raise RuntimeError("revoke needs the mesh's pki")
        now = self.clock.now()
        serial = self.pki.revoke(name, at=now)
        subject = ""
        material = self.pki.appliances.get(name)
        if material is not None:
            subject = material.cert.subject.rfc4514_string()
        self.republish(at=now)
        for appliance in self._appliances.values():
            appliance.checker.invalidate()
        self.events.append(
            CertificateRevoked(at=now, appliance=name, serial=serial, subject=subject)
        )
        await trio.lowlevel.checkpoint()
        return serial

    def republish(self, *, at: dt.datetime | None = None) -> None:
        """Publish the PKI's CRLs, signed at ``at`` (default now), on the CRL server."""
        if self.pki is None or self.crl_server is None:
            return
        self.crl_server.set_documents(self.pki.crl_documents(at=at or self.clock.now()))

    async def refresh_crls(self, name: str, *, timeout: float = 60.0) -> tuple[str, ...]:
        """``name`` refetches its CRLs at its next check, and every link is judged afresh.

        ``Appliance.refresh_crls`` with :meth:`refresh` as the wait: returns
        the links with no new outcome after ``timeout`` trio seconds (() when
        all have one).
        """
        return await self.appliance(name).refresh_crls(
            timeout=timeout, settle=lambda seconds: self.refresh(timeout=seconds)
        )

    async def crl_fault(self, fault: str, *, path: str | None = None) -> None:
        """Make the CRL server misbehave (``down``, ``slow``, ``garbage``, ...) or ``ok``."""
        if self.crl_server is None:
            raise RuntimeError("the mesh has no CRL server")
        self.crl_server.set_fault(fault, path=path)
        for appliance in self._appliances.values():
            appliance.checker.invalidate()
        self.events.append(
            CrlServerChanged(
                at=self.clock.now(),
                state=str(fault),
                address=self.crl_server.base_url,
            )
        )
        await trio.lowlevel.checkpoint()

    async def advance(self, delta: dt.timedelta, *, wake: bool = True) -> dt.datetime:
        """Jump the clock: validation time, CRL freshness and backoff move together.

        Running appliances whose certificate the jump carried into the expiry
        window say so (``certificate-expiring``) before this returns.
        ``wake=False``: sleepers (backoffs) wake at the next kick, not now
        (``EmulatedClock.jump``); the caller settles or refreshes next.
        """
        previous = self.clock.now()
        self.clock.jump(delta, wake=wake)
        self.events.append(ClockAdvanced(at=self.clock.now(), delta=delta, previous=previous))
        for appliance in self._appliances.values():
            if appliance.running:
                appliance.check_expiry()
        if self.crl_server is not None and self.pki is not None:
            if self.crl_server.fault().value not in ("stale", "wrong-key"):
                self.republish()
        await trio.lowlevel.checkpoint()
        return self.clock.now()

    def raise_alert(self, name: str, text: str, **fields: Any) -> None:
        """An alert on ``name``: sent to its console and by its forwarding rules."""
        appliance = self.appliance(name)
        appliance.alerts.post(
            {"origin": name, "text": text, "at": self.clock.now().isoformat(), **fields}
        )

    async def settle(
        self,
        *,
        timeout: float = 60.0,
        quiet: float = 0.002,
        fresh: bool = False,
        idle: bool = True,
    ) -> None:
        """Return once every link has made a fresh attempt and the mesh is idle.

        A link that is up stays up (validation happens at connection start)
        unless ``fresh`` (or an earlier :meth:`refresh` whose outcome is still
        due): then every live link is closed and judged afresh too. A link
        that came up has its first frame delivered (a sensor's heartbeat).
        ``idle=False`` returns then, without waiting for the whole process
        to go quiet: what a scenario step needs (halted dialers retrying on
        their backoff would keep a big mesh busy for seconds).

        Raises:
            MeshNotSettled: (a ``trio.TooSlowError``) some link had no outcome
                after ``timeout`` trio seconds; its message names them.
        """
        await self._settler.settle(timeout=timeout, quiet=quiet, fresh=fresh, idle=idle)

    async def refresh(self, *, timeout: float = 60.0, quiet: float = 0.002) -> None:
        """Judge every link afresh now, as if each had just been dialed.

        Every live link is closed cleanly by its dialer (a ``link-recheck``
        event, not ``link-down``), every dialer redials at once and validates
        afresh, and this returns once every link has its new outcome and the
        mesh is idle (:meth:`settle` with ``fresh=True``). What a scenario
        runner calls after each step: a revocation, an expiry, an upload or a
        CRL outage shows on the next connection, and this makes the next
        connection now. Outcomes that did not change are not reported again.
        """
        await self.settle(timeout=timeout, quiet=quiet, fresh=True)

    # -- reading --

    def links(self) -> list[LinkStatus]:
        """Every configured link, in topology order (plus any inbound from outside)."""
        out = []
        for pair in self._pairs:
            link = self.book.find(pair.dialer, pair.listener)
            if link is None:
                out.append(
                    LinkStatus(dialer=pair.dialer, listener=pair.listener, state=LinkState.CONNECTING)
                )
            else:
                out.append(LinkStatus.of(link))
        known = {p.key for p in self._pairs}
        out += [LinkStatus.of(link) for link in self.book if link.key not in known]
        return out

    def link(self, dialer: str, listener: str) -> LinkStatus:
        """One link's status; either order of the two names works."""
        for status in self.links():
            if {status.dialer, status.listener} == {dialer, listener}:
                return status
        raise KeyError(f"no link between {dialer!r} and {listener!r}")

    def status(self, name: str) -> ApplianceStatus:
        return self.appliance(name).status()

