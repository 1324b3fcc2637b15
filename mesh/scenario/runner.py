"""Play a scenario: build its PKI and CRL server, run the mesh, check expectations.

Theory of operation. The CRL server starts first, on port 0, because the
port it gets goes into every certificate's CRL Distribution Point; then the
PKI is built for the scenario's start instant, its CRLs published, and every
appliance added to one :class:`~mesh.appliances.Mesh` that runs on real
loopback sockets.

The engine validates at connection start and keeps a live link up, as the
source's appliances do, but a scenario asks what the *next* connection does
after each step. So each step is played as: the clock jumps by ``after``
(``mesh.advance`` republishes the CA's CRLs for the new instant, as a CA's
schedule would), the action runs, and ``mesh.refresh()`` makes every dialer
close its live link cleanly (a ``link-recheck`` event), redial at once and
judge afresh; it returns once every link has the outcome of that new attempt.
Only then are the expectations due at that step judged. Appliances keep
running through the steps, on the same ports and with their CRL caches, so a
cached CRL outlives a CRL server outage until its nextUpdate, as it would, and
``--events`` shows a step's consequences, not a stop/start of every dialer.

A mesh that does not settle (some link with no outcome after
``settle_timeout`` real seconds) ends the run with :class:`ScenarioNotSettled`:
one line naming the scenario, the step and the links still waiting, which
``mesh run`` prints with exit status 2 (the expectations could not be judged,
which is not the same as judged and failed).

Nothing here sleeps: readiness comes from ``nursery.start`` and ``settle``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterable, Mapping, Protocol

import trio
from attrs import evolve

from mesh.clock import EmulatedClock
from mesh.errors import InputError, with_notes
from mesh.scenario.shards import MAX_SOCKETS
from mesh.eventlog import EventLog
from mesh.net.crl_server import CrlServer
from mesh.net.proxy import ForwardProxy
from mesh.pki.deployment import Pki
from mesh.pki.issue import KeySource
from mesh.scenario.consoles import open_scenario_consoles
from mesh.scenario.backend import NoNetwork, UploadVerdict
from mesh.scenario.certificates import certificates_in_play
from mesh.scenario.driver import Driver
from mesh.scenario.load import check_scenario
from mesh.scenario.model import ROLES, Scenario, Step
from mesh.scenario.result import LinkRow, RunResult, StepRecord
from mesh.scenario.world import appliance_specs, start_world, upload_files

if TYPE_CHECKING:  # the engine is imported when a run starts
    from mesh.appliances import EngineSettings, LinkStatus, Mesh
    from mesh.validation.verdict import Verdict

__all__ = [
    "run_scenario",
    "start_scenario",
    "ScenarioRun",
    "ScenarioNotSettled",
    "not_settled_in",
    "link_rows",
    "Progress",
    "SETTLE_TIMEOUT",
    "MeshBackend",
    "upload_verdict",
]


class RunView(Protocol):
    """What progress lines read of a running scenario: a :class:`ScenarioRun`,
    or the ``mesh node`` processes of ``mesh run --processes``."""

    @property
    def scenario(self) -> Scenario: ...
    @property
    def consoles(self) -> Mapping[str, str]: ...
    @property
    def console_tokens(self) -> Mapping[str, str]: ...
    def links(self) -> list[LinkRow]: ...


#: Called as the run goes: ("building", None, None) before the PKI is made,
#: ("started", None, run) once the mesh is up, then ("step", StepRecord, run)
#: after each step settles.
Progress = Callable[[str, "StepRecord | None", "RunView | None"], None]

#: Real seconds a CRL fetch may take. The scenario's CRL server is on
#: loopback and answers in milliseconds unless a ``crl-slow`` step made it
#: never answer; the engine's default (5 s, for real networks) would only
#: make such a step wait longer for the same verdict.
CRL_TIMEOUT = 1.0

#: Emulated seconds a scenario's dialer waits before redialing a link that
#: failed. Every step asks each link for a fresh attempt (``Mesh.refresh``)
#: and waits for it, so what a retry between steps would find, the next step
#: finds anyway; a short backoff only makes a big mesh whose links halted
#: (a CRL outage) redial, in the background, while the next step is judged.
SCENARIO_BACKOFF = 600.0

#: Real seconds the mesh may take to reach an outcome on every link after the
#: start or a step. The engine's own timeouts (handshake, verdict, CRL fetch)
#: end every attempt well within it, so reaching it means the run is stuck.
SETTLE_TIMEOUT = 60.0


def not_settled_in(group: BaseExceptionGroup) -> ScenarioNotSettled | None:
    """The :class:`ScenarioNotSettled` a nursery wrapped, if that is all ``group`` holds."""
    stuck, rest = group.split(ScenarioNotSettled)
    if stuck is None or rest is not None:
        return None
    found: ScenarioNotSettled | ExceptionGroup[ScenarioNotSettled] = stuck
    while isinstance(found, ExceptionGroup):
        found = found.exceptions[0]
    return found


class ScenarioNotSettled(InputError):
    """The mesh did not settle after a step: the run cannot judge its expectations.

    An :class:`InputError`, so ``mesh run`` prints it as one line and exits 2.
    """

    def __init__(self, scenario: str, where: str, problem: str) -> None:
        self.scenario = scenario
        super().__init__(
            f"scenario {scenario!r} {where}",
            problem,
            "a peer or CRL server that never answers keeps a link waiting; "
            "check what that step changed",
        )


def _engine() -> type[Mesh]:
    from mesh.appliances import Mesh

    return Mesh


def _settings() -> EngineSettings:
    from mesh.appliances import EngineSettings

    return EngineSettings(
        crl_timeout=CRL_TIMEOUT, backoff_initial=SCENARIO_BACKOFF, backoff_cap=SCENARIO_BACKOFF
    )


def link_rows(statuses: Iterable[LinkStatus]) -> list[LinkRow]:
    """The engine's LinkStatus list as report rows, in the engine's order."""
    rows = []
    for status in statuses:
        state = status.state.value
        code = status.code.code if status.code is not None else None
        message = status.message or ""
        if state == "halted" and status.refused_by:
            message = message or (status.code.message if status.code else "")
        elif state == "up-unvalidated":
            would = status.would_fail
            off = ", ".join(status.unvalidated_by)
            if would:
                code = would[0].code
                message = f"validation off on {off}; would fail: {would[0].message}"
            else:
                message = f"validation off on {off}"
        elif state == "down":
            message = message or status.reason
        notes = tuple(c.code for c in status.notes)
        would_fail = tuple(c.code for c in status.would_fail) if state == "up-unvalidated" else ()
        rows.append(
            LinkRow(
                dialer=status.dialer, listener=status.listener, state=state, code=code,
                message=with_notes(message, notes), refused_by=status.refused_by,
                delivered=status.delivered, notes=notes, would_fail=would_fail,
            )
        )
    return rows


class MeshBackend(NoNetwork):
    """The in-process backend: every appliance a task of one :class:`~mesh.appliances.Mesh`.

    ``settle`` is ``Mesh.settle(fresh=True)``: every dialer closes its live
    link cleanly (a ``link-recheck`` event), redials at once and judges
    afresh; it returns once every link has the outcome of that attempt.
    """

    def __init__(self, scenario: Scenario, *, mesh: Mesh, pki: Pki, clock: EmulatedClock,
                 settle_timeout: float) -> None:
        self.scenario = scenario
        self.mesh = mesh
        self.pki = pki
        self.clock = clock
        self.settle_timeout = settle_timeout

    def now(self) -> dt.datetime:
        return self.clock.now()

    def links(self) -> list[LinkRow]:
        return link_rows(self.mesh.links())

    async def advance(self, delta: dt.timedelta) -> None:
        # Every step ends in a settle that judges each link afresh at the new
        # instant, after the step's action (and wakes every sleeper). Woken by
        # the jump itself, every halted dialer whose backoff the jump ended
        # would first retry against the world before the action: a second
        # handshake per halted link, whose outcome the settle then replaces.
        await self.mesh.advance(delta, wake=False)

    async def revoke(self, target: str) -> None:
        await self.mesh.revoke(target)

    async def upload(self, target: str, certificate: str) -> UploadVerdict:
        material = self.pki.reissue(target, certificate, at=self.now())
        issued, key_pem, passphrase = upload_files(material)
        verdict = await self.mesh.upload(target, issued, key_pem=key_pem, passphrase=passphrase)
        return upload_verdict(verdict)

    async def set_validation(self, target: str, enabled: bool) -> None:
        self.mesh.set_validation(target, enabled)

    async def crl_fault(self, fault: str) -> None:
        await self.mesh.crl_fault(fault)

    async def stop(self, target: str) -> None:
        await self.mesh.stop(target)

    async def start(self, target: str) -> None:
        try:
            await self.mesh.start(target)
        except InputError:
            # Its old port is now the local end of another appliance's
            # outgoing connection; dialers look addresses up at each attempt.
            self.mesh.appliance(target).port = None
            await self.mesh.start(target)

    async def settle(self, where: str, *, fresh: bool = True) -> None:
        # Every link's outcome and every new link's first frame, not a quiet
        # process: halted dialers go on retrying on their backoff meanwhile.
        try:
            await self.mesh.settle(timeout=self.settle_timeout, fresh=fresh, idle=False)
        except trio.TooSlowError as exc:
            raise ScenarioNotSettled(self.scenario.name, where, str(exc)) from None


class ScenarioRun:
    """A scenario whose mesh is running: play steps, read links, judge expectations.

    Made by :func:`start_scenario`; the pytest plugin hands one to tests that
    want to act on the mesh between steps. The steps are played by the one
    :class:`~mesh.scenario.driver.Driver`, on a :class:`MeshBackend`.
    """

    def __init__(self, scenario: Scenario, *, mesh: Mesh, pki: Pki, clock: EmulatedClock,
                 crl_server: CrlServer, proxy: ForwardProxy | None, events: EventLog,
                 settle_timeout: float | None = None, validation: str = "on") -> None:
        self.scenario = scenario
        #: Real seconds each settle may take (None: :data:`SETTLE_TIMEOUT`).
        self.settle_timeout = SETTLE_TIMEOUT if settle_timeout is None else settle_timeout
        self.mesh = mesh
        self.pki = pki
        self.clock = clock
        self.crl_server = crl_server
        self.proxy = proxy
        self.events = events
        self.backend = MeshBackend(scenario, mesh=mesh, pki=pki, clock=clock,
                                   settle_timeout=self.settle_timeout)
        self.driver = Driver(scenario, self.backend, events, validation=validation)
        #: Appliance name -> URL of the REST API and web console it serves
        #: during the run (those the scenario's ``api`` keys ask for).
        self.consoles: dict[str, str] = {}
        #: Each appliance's certificate as the run started (the HTML report's table).
        self.certificates = certificates_in_play(scenario, pki)
        #: Appliance name -> the file holding its console's token (0600).
        self.console_tokens: dict[str, str] = {}

    @property
    def records(self) -> list[StepRecord]:
        return self.driver.records

    # -- reading --

    def links(self) -> list[LinkRow]:
        return self.backend.links()

    def now(self) -> dt.datetime:
        return self.clock.now()

    # -- acting --

    async def disconnect(self) -> list[str]:
        """Stop every running appliance that dials; returns their names, sensors first.

        Not part of playing a step (steps settle with ``mesh.refresh()``);
        kept for tools and suites that want the dialers away, e.g. to act
        while nothing is connected. Uploads and switches are kept.
        """
        dialers = sorted(
            (n for n in self.mesh.names
             if self.mesh.appliance(n).running and self.mesh.appliance(n).dials),
            key=lambda n: ROLES.index(self.scenario.appliance(n).role),
        )
        for name in dialers:
            await self.mesh.stop(name)
        return dialers

    async def reconnect(self, names: list[str]) -> None:
        """Start ``names`` again (listeners first), then settle.

        Each comes back on a fresh port: its old one may meanwhile be the local
        end of another appliance's outgoing connection. Dialers look addresses
        up at every attempt, so they find the new port.
        """
        for name in reversed(names):
            appliance = self.mesh.appliance(name)
            if not appliance.running:
                appliance.port = None
                await self.mesh.start(name)
        await self.backend.settle("after reconnecting", fresh=False)

    async def settle(self, *, where: str = "after a settle") -> None:
        """Make every link connect afresh (``mesh.refresh()``), then wait until the mesh is idle.

        Raises:
            ScenarioNotSettled: some link had no outcome in ``settle_timeout``.
        """
        await self.backend.settle(where)

    async def play(self, index: int, step: Step) -> StepRecord:
        """Play step ``index`` (see :class:`~mesh.scenario.driver.Driver`).

        Raises:
            ScenarioNotSettled: some link had no outcome after the step.
        """
        return await self.driver.play(index, step)

    async def step(self, step: Step) -> StepRecord:
        """Play one more step (numbered after those already played); for tests and tools."""
        return await self.play(len(self.records) + 1, step)

    # -- judging --

    def check(self, after: int) -> None:
        """Judge the expectations due after step ``after`` (0 = after start)."""
        self.driver.check(after)

    def result(self, *, started: dt.datetime | None = None, mode: str = "in-process") -> RunResult:
        return evolve(self.driver.result(mode=mode), certificates=self.certificates)


def upload_verdict(verdict: Verdict) -> UploadVerdict:
    """An upload step's outcome from the appliance's :class:`~mesh.validation.Verdict`."""
    if verdict.accepted:
        return UploadVerdict(accepted=True)
    primary = verdict.primary
    code = primary.code if primary is not None else None
    return UploadVerdict(
        accepted=False,
        code=code.code if code is not None else None,
        message=code.message if code is not None else "",
    )


@contextlib.asynccontextmanager
async def start_scenario(
    scenario: Scenario,
    *,
    keys: KeySource | None = None,
    events: EventLog | None = None,
    progress: Progress | None = None,
    settle_timeout: float | None = None,
    consoles: bool = True,
    validation: str = "on",
) -> AsyncIterator[ScenarioRun]:
    """Start a scenario's mesh and yield it once every link has made its first attempt.

    The expectations due "after start" (``after_step = 0``) are already judged
    when this yields. Leaving the block stops everything. ``consoles=False``
    serves none of the consoles the scenario's ``api`` keys ask for: for a
    caller that serves its own (``mesh console``), so that no appliance is
    served twice. ``validation="off"`` plays the validation off run: every
    appliance starts with validation off and ``set-validation`` steps are
    skipped (see :mod:`mesh.scenario.driver`).

    Raises:
        ScenarioNotSettled: the mesh did not settle at start or after a step.
    """
    check_scenario(scenario)
    if (firewall := scenario.firewall_line("a run in one process")) is not None:
        raise InputError(*firewall)
    if (crowded := scenario.descriptor_line("a run in one process", MAX_SOCKETS)) is not None:
        raise InputError(*crowded)
    if validation == "off":
        scenario = scenario.with_validation_off()
    Mesh = _engine()
    events = events if events is not None else EventLog()
    try:
        async with trio.open_nursery() as nursery:
            crl_server, proxy, pki, keys = await start_world(
                scenario, nursery, keys=keys, progress=progress
            )
            clock = EmulatedClock(scenario.start)
            crl_server.set_documents(pki.crl_documents(at=scenario.start))
            mesh = Mesh(clock=clock, events=events, pki=pki, crl_server=crl_server, keys=keys,
                        settings=_settings())
            for spec in appliance_specs(scenario, pki, proxy_url=proxy.url if proxy else None):
                mesh.add(spec)
            await nursery.start(mesh.run)
            run = ScenarioRun(scenario, mesh=mesh, pki=pki, clock=clock, crl_server=crl_server,
                              proxy=proxy, events=events, settle_timeout=settle_timeout,
                              validation=validation)
            if consoles:
                run.consoles = await open_scenario_consoles(run, nursery)
            await run.backend.settle("at start", fresh=False)
            run.check(0)
            if progress:
                progress("started", None, run)
            try:
                yield run
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps what the run raised; a stuck mesh is one line.
        stuck = not_settled_in(group)
        if stuck is None:
            raise
        raise stuck from None


async def run_scenario(
    scenario: Scenario,
    *,
    keys: KeySource | None = None,
    events: EventLog | None = None,
    progress: Progress | None = None,
    settle_timeout: float | None = None,
    validation: str = "on",
) -> RunResult:
    """Play a whole scenario in this process and return what it found.

    ``validation`` is "on" (the scenario as written) or "off" (validation off
    on every appliance from the start, ``set-validation`` steps skipped).

    Raises:
        ScenarioNotSettled: the mesh did not settle at start or after a step.
    """
    async with start_scenario(scenario, keys=keys, events=events, progress=progress,
                              settle_timeout=settle_timeout, validation=validation) as run:
        for index, step in enumerate(run.scenario.steps, 1):
            record = await run.play(index, step)
            if progress:
                progress("step", record, run)
        return run.result(started=scenario.start)
