"""A scenario played on appliances that are already running, through their APIs.

Theory of operation. :class:`FleetBackend` is a backend of the scenario
driver (:mod:`.driver`) that never starts, stops or reconfigures a process:
every step is a request to an appliance's console (:mod:`mesh.web.api`) or
to the CRL server's control API (:class:`CrlControl`), sent through the one
client of :mod:`.fleet_client`. It serves ``mesh run --processes`` and
``--workers N`` (the nodes started once, :mod:`.processes`) and ``mesh run
--inventory`` (a fleet someone else started, :mod:`.inventory`).

The steps:

* ``revoke``: the PKI revokes and its CRLs, signed now, are published on the
  CRL server; ``advance``: every node's clock is moved to the new instant
  (``POST /api/v1/clock`` with ``now``: a shard's consoles share a clock, and
  asking each for the same instant moves it once) and the CRLs are
  republished as of that instant (unless a ``stale``/``wrong-key`` fault
  serves old ones), as in a run in one process;
* ``upload``: the reissued certificate, its .key file (encrypted as the PKI
  wrote it) and chain go to ``POST /api/v1/certificate``; the verdict is the
  node's answer (422 carries the refusal's code);
* ``set-validation``, ``stop``/``start``: ``PUT /api/v1/validation``,
  ``PUT /api/v1/running``; CRL faults: the CRL server's ``PUT /api/v1/fault``.

Settling: a scenario asks what the *next* connection does after each step,
so every node is asked to refetch its CRLs and judge its links afresh
(``POST /api/v1/crls/refresh``), which answers once each link the node dials
has a new outcome, with its link table. A shard refreshes as a whole (its
appliances share one retry gate), so when the driver knows which appliances
share a process (``--workers``) it asks one console per process and reads
every link of the process from the answer (``process_links``); otherwise
(an inventory) it asks every console and the shard answers them together.
Listeners are asked before the appliances that dial them (waves along the
topology, per process), so that a listener has dropped its cached CRLs and
judged the links it accepted before a dialer's new connection reaches it.
The link table is each dialer's own view from its answer (the listener's,
for a dialer without an API). Nothing here sleeps or polls: every wait is an
answer.

The emulated instant is the driver's (the scenario's start plus every
``advance``); nodes are moved to it, never back, so they read at least it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Mapping, Protocol, Sequence

import trio

from mesh.errors import with_notes
from mesh.eventlog import EventLog
from mesh.net.crl_server import CrlServer
from mesh.pki.deployment import Pki
from mesh.scenario.backend import NoNetwork, UploadVerdict
from mesh.scenario.fleet_client import Api, FleetClient, FleetError, upload_parts
from mesh.scenario.model import Scenario
from mesh.scenario.inventory import Inventory
from mesh.scenario.result import LinkRow, RunResult
from mesh.scenario.runner import SETTLE_TIMEOUT, Progress, ScenarioNotSettled

__all__ = ["CrlControl", "FleetBackend", "LocalCrl", "RemoteCrl", "listeners_first", "row_of",
           "run_on_inventory"]

#: Faults under which the CRL server serves its own old documents: an
#: ``advance`` does not republish over them (as in one process).
_OWN_DOCUMENTS = ("stale", "wrong-key")


class CrlControl(Protocol):
    """The CRL server as the driver changes it."""

    async def publish(self, documents: Mapping[str, bytes]) -> None: ...

    async def fault(self, fault: str) -> None: ...


class LocalCrl:
    """A CRL server running in the driver's own process (``--processes``, ``--workers``)."""

    def __init__(self, server: CrlServer) -> None:
        self.server = server

    async def publish(self, documents: Mapping[str, bytes]) -> None:
        self.server.set_documents(documents)
        await trio.lowlevel.checkpoint()

    async def fault(self, fault: str) -> None:
        self.server.set_fault(fault)
        await trio.lowlevel.checkpoint()


class RemoteCrl:
    """``mesh crl serve --api-port`` somewhere: its control API."""

    def __init__(self, client: FleetClient, api: Api) -> None:
        self.client = client
        self.api = api

    async def publish(self, documents: Mapping[str, bytes]) -> None:
        await self.client.publish(self.api, documents)

    async def fault(self, fault: str) -> None:
        await self.client.fault(self.api, fault)


def listeners_first(names: Iterable[str], links: Iterable[tuple[str, str]]) -> list[list[str]]:
    """``names`` in waves: each after every appliance it dials (a cycle: the rest together)."""
    waiting = list(names)
    dials: dict[str, set[str]] = {name: set() for name in waiting}
    for dialer, listener in links:
        if dialer in dials and listener in dials and listener != dialer:
            dials[dialer].add(listener)
    placed: set[str] = set()
    waves = []
    while waiting:
        wave = [name for name in waiting if dials[name] <= placed] or list(waiting)
        waves.append(wave)
        placed.update(wave)
        waiting = [name for name in waiting if name not in placed]
    return waves


def row_of(link: Mapping[str, Any]) -> LinkRow:
    """A link of the status document as a report row (as the in-process run makes it)."""
    state = str(link.get("state"))
    code = link.get("code")
    message = str(link.get("message") or "")
    notes = tuple(str(n) for n in link.get("notes") or ())
    would = tuple(str(c) for c in link.get("would_fail") or ()) if state == "up-unvalidated" else ()
    if state == "up-unvalidated":
        off = ", ".join(link.get("unvalidated_by") or ())
        messages = link.get("would_fail_messages") or []
        if would:
            code = would[0]
            message = f"validation off on {off}; would fail: {messages[0] if messages else code}"
        else:
            code = None
            message = f"validation off on {off}"
        message = with_notes(message, notes)
    return LinkRow(dialer=str(link["dialer"]), listener=str(link["listener"]), state=state,
                   code=code if isinstance(code, str) else None, message=message,
                   refused_by=link.get("refused_by"), notes=notes, would_fail=would)


class FleetBackend(NoNetwork):
    """The scenario's appliances, running somewhere, driven through their APIs."""

    def __init__(self, scenario: Scenario, pki: Pki, *, client: FleetClient,
                 apis: Mapping[str, Api], crl: CrlControl, now: dt.datetime,
                 settle_timeout: float, processes: Sequence[Sequence[str]] | None = None) -> None:
        self.scenario = scenario
        self.pki = pki
        self.client = client
        #: Appliance name -> its console's API (appliances without one, such
        #: as forwarding targets, are not asked anything).
        self.apis = dict(apis)
        self.crl = crl
        self.settle_timeout = settle_timeout
        self._now = now
        self._fault = "ok"
        self._links = scenario.links()
        # Who is asked to refresh: one console per process when the driver knows
        # which appliances share one (a shard refreshes as a whole), else every console.
        known = processes if processes is not None else [[name] for name in self.apis]
        self._processes: dict[str, tuple[Api, tuple[str, ...]]] = {}
        for members in known:
            asked = next((name for name in members if name in self.apis), None)
            if asked is not None:
                self._processes[asked] = (self.apis[asked], tuple(members))
        process_of = {name: asked for asked, (_, members) in self._processes.items()
                      for name in members}
        self._process_of = process_of
        self._waves = listeners_first(
            list(self._processes),
            [(process_of[d], process_of[l]) for d, l in self._links
             if d in process_of and l in process_of])
        #: (dialer, listener) -> the link document last answered for it.
        self._seen: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.running = {a.name: True for a in scenario.appliances}
        #: True once a settle has answered: :meth:`links` is the fleet's table.
        self.settled = False

    # -- the Backend protocol --

    def now(self) -> dt.datetime:
        return self._now

    def links(self) -> list[LinkRow]:
        rows = []
        for dialer, listener in self._links:
            document = self._seen.get((dialer, listener))
            if document is not None:
                rows.append(row_of(document))
            elif not self.running[dialer]:
                rows.append(LinkRow(dialer=dialer, listener=listener, state="down",
                                    message=f"{dialer} is stopped"))
            else:
                rows.append(LinkRow(dialer=dialer, listener=listener, state="connecting"))
        return rows

    async def advance(self, delta: dt.timedelta) -> None:
        self._now += delta
        # One request per process: a shard's appliances share one clock.
        await self._each([api for api, _ in self._processes.values()],
                         lambda api: self.client.move_clock(api, self._now))
        if self._fault not in _OWN_DOCUMENTS:
            await self.publish()

    async def revoke(self, target: str) -> None:
        self.pki.revoke(target, at=self._now)
        await self.publish()

    async def upload(self, target: str, certificate: str) -> UploadVerdict:
        material = self.pki.reissue(target, certificate, at=self._now)
        crt, key, chain, passphrase = upload_parts(material)
        return await self.client.upload(self._api(target, "upload"), crt=crt, key=key,
                                        chain=chain, passphrase=passphrase)

    async def set_validation(self, target: str, enabled: bool) -> None:
        await self.client.set_validation(self._api(target, "set-validation"), enabled)

    async def crl_fault(self, fault: str) -> None:
        await self.crl.fault(fault)
        self._fault = fault

    async def stop(self, target: str) -> None:
        await self.client.set_running(self._api(target, "stop"), False)
        self.running[target] = False

    async def start(self, target: str) -> None:
        await self.client.set_running(self._api(target, "start"), True)
        self.running[target] = True

    async def settle(self, where: str) -> None:
        """Every node refetches its CRLs and judges its links afresh, listeners first.

        ``settle_timeout`` is a stall limit, passed to each node: a node
        answers once every link has its outcome, or once none has had a new
        one for that long. A node that keeps making progress is waited for,
        however many links it re-checks.

        Raises:
            ScenarioNotSettled: a node still had links without an outcome when
                it answered.
        """
        pending: list[str] = []

        async def one(asked: str) -> None:
            api, members = self._processes[asked]
            body = await self.client.refresh(api, self.settle_timeout)
            pending.extend(str(p) for p in body.get("pending") or ())
            # Every link of the process (a node of another version: its appliance's own).
            for link in body.get("process_links", body.get("links")) or ():
                key = (str(link.get("dialer")), str(link.get("listener")))
                # The dialer's view; the listener's only for a dialer no process answers for.
                if key[0] in members or (key[0] not in self._process_of and key[1] in members):
                    self._seen[key] = link

        for wave in self._waves:
            async with trio.open_nursery() as nursery:
                for name in wave:
                    nursery.start_soon(one, name)
        self.settled = True
        if pending:
            unique = list(dict.fromkeys(pending))
            problem = f"the mesh nodes did not settle within {self.settle_timeout:g} s: "
            problem += "no outcome yet for " + ", ".join(unique[:5])
            problem += f" and {len(unique) - 5} more" if len(unique) > 5 else ""
            raise ScenarioNotSettled(self.scenario.name, where, problem)

    async def publish(self) -> None:
        """The CRLs as of the emulated instant, on the CRL server."""
        await self.crl.publish(self.pki.crl_documents(at=self._now))

    # -- helpers --

    def _api(self, target: str, action: str) -> Api:
        api = self.apis.get(target)
        if api is None:
            raise FleetError(f"scenario {self.scenario.name!r}: {action} {target}",
                             "this appliance has no API the driver can reach",
                             "give it one (forwarding targets have none), or drop the step")
        return api

    async def _each(self, apis: list[Api], call: Any) -> None:
        async with trio.open_nursery() as nursery:
            for api in apis:
                nursery.start_soon(call, api)


async def run_on_inventory(
    scenario: Scenario,
    inventory: Inventory,
    *,
    progress: Progress | None = None,
    settle_timeout: float | None = None,
    events: EventLog | None = None,
) -> RunResult:
    """Play ``scenario`` on the fleet ``inventory`` describes (``mesh run --inventory``).

    The fleet runs as it was started (its switches, certificates, clocks):
    the CRLs are published as of the scenario's start, every node is asked
    to refresh (the start's table), then the steps are played through the
    APIs. Nothing is started or stopped but by ``stop``/``start`` steps.

    Raises:
        InputError: the inventory lacks an appliance of the scenario or the
            CRL API, or an API answered what the driver cannot use.
        ScenarioNotSettled: a node had links without an outcome after a step.
    """
    from attrs import evolve

    from mesh.scenario.certificates import certificates_in_play
    from mesh.scenario.driver import Driver
    from mesh.scenario.inventory import check_inventory
    from mesh.scenario.load import check_scenario
    from mesh.scenario.processes import input_error_in

    check_scenario(scenario)
    check_inventory(inventory, scenario)
    pki = Pki.load(inventory.pki)
    try:
        async with FleetClient(operator=inventory.operator) as client:
            crl: CrlControl = (RemoteCrl(client, inventory.crl) if inventory.crl is not None
                               else _NoCrl())
            backend = FleetBackend(
                scenario, pki, client=client, apis=inventory.nodes, crl=crl, now=scenario.start,
                settle_timeout=SETTLE_TIMEOUT if settle_timeout is None else settle_timeout)
            certificates = certificates_in_play(scenario, pki)
            if inventory.crl is not None:
                await backend.publish()
            driver = Driver(scenario, backend, events if events is not None else EventLog())
            await driver.start()
            if progress:
                progress("started", None, _View(scenario, backend))
            for index, step in enumerate(scenario.steps, 1):
                record = await driver.play(index, step)
                if progress:
                    progress("step", record, _View(scenario, backend))
            return evolve(driver.result(mode="inventory"), certificates=certificates)
    except BaseExceptionGroup as group:
        error = input_error_in(group)
        if error is None:
            raise
        raise error from None


class _NoCrl:
    """An inventory without ``[crl]``: its scenario has no step that needs one."""

    async def publish(self, documents: Mapping[str, bytes]) -> None:
        await trio.lowlevel.checkpoint()

    async def fault(self, fault: str) -> None:
        raise FleetError("the inventory", "has no [crl] table", "add the CRL server's control API")


class _View:
    """What progress lines read of a fleet run (no consoles of its own to print)."""

    def __init__(self, scenario: Scenario, backend: FleetBackend) -> None:
        self.scenario = scenario
        self.consoles: dict[str, str] = {}
        self.console_tokens: dict[str, str] = {}
        self._backend = backend

    def links(self) -> list[LinkRow]:
        return self._backend.links()
