"""``mesh run --processes``: every appliance its own ``mesh node`` OS process;
``mesh run --workers N``: the appliances spread over N shard processes.

Those two start their processes once and play every step through the nodes'
APIs (:class:`~mesh.scenario.live_nodes.LiveNodesBackend`, a subclass of the
backend below that keeps its start); the restart-per-step settle described
here is what ``--hosts`` (:mod:`.hosts`) still does.

Theory of operation. :class:`ProcessesBackend` is one backend of the scenario
driver (:mod:`.driver`). It keeps what the in-process engine keeps in memory —
each appliance's certificate files, its validation switch, whether a step
stopped it, and the emulated instant — and the CRL server (and proxy) run
here, on real ports. Actions change that state (an upload is judged by the
same upload check as ``mesh cert check``, with the appliance's policy, on the
files an admin would upload); ``settle`` then stops every node and starts
them again with the new state and ``start`` = the emulated instant, which is
how a node without a control channel connects afresh.

Nodes listen on port 0 and say where in their ``appliance-started`` event, so
no port is probed and released (a race with every other program). That needs
an order: a node starts only once every appliance it dials has reported its
address, so its config names real addresses and its first attempt is
meaningful. In a cycle of dialers (rare: each pair has one dialer) the rest
start together, and a dialer's outcome counts only once it arrived after its
listener had started. Consoles keep one API port for the whole run (chosen
below the ephemeral range, so a restart can always rebind it): a person
following a console URL keeps it across steps.

Every line a node prints is parsed into its typed event
(:meth:`mesh.events.Event.from_json`); the link table is the dialer's last
link outcome, with ``validation-skipped`` naming what an unvalidated link
would have failed. Settling waits for events, not for time.

A node restarted for a step starts with the CRLs it had fetched: each node
keeps them in the run's folder (``crl_cache``, :mod:`mesh.net.crl_store`),
marked for refresh, so a CRL server that is down leaves its links on their
current cached CRLs, as in a long-running in-process appliance.

Which appliances a process runs is ``ProcessesBackend.shards``: one each
(``--processes``), or the plan of :mod:`.shards` (``--workers N``), whose
processes are ``mesh node`` with a shard config. A process's events go to
every appliance of it they name, so a link within a shard (one outcome, from
its shared link book) is seen from both ends; a listener names its dialers
in other shards (``accept_from``) so it checks names as one mesh would.

Where a node runs and how its peers reach it is a :class:`Placement`:
:class:`Loopback` here; ``--hosts`` (:mod:`.hosts`) puts every node in a
network namespace of its own and keeps everything else of this backend,
through :func:`play_nodes` and a subclass that serves CRLs from a host.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Awaitable, Callable, Iterable, Protocol, TextIO

import trio
from attrs import evolve
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode, InputError, with_notes
from mesh.eventlog import EventLog
from mesh.node_config import LOCAL
from mesh.events import (
    ApiListening,
    ApplianceStarted,
    Event,
    LinkDown,
    LinkHalted,
    LinkUp,
    LinkUpUnvalidated,
    ValidationSkipped,
)
from mesh.net.crl_server import CrlServer
from mesh.pki import files
from mesh.pki.deployment import ApplianceMaterial, Pki
from mesh.pki.issue import KeySource, slug
from mesh.validation.policy import ValidationPolicy
from mesh.scenario.load import check_scenario
from mesh.scenario.backend import NoNetwork, UploadVerdict
from mesh.scenario.certificates import certificates_in_play
from mesh.scenario.driver import Driver
from mesh.parent_watch import for_child
from mesh.scenario.model import Scenario
from mesh.scenario.node_folder import node_folder
from mesh.scenario.result import LinkRow, RunResult
from mesh.scenario.runner import (
    Progress,
    ScenarioNotSettled,
    not_settled_in,
    upload_verdict,
)
from mesh.scenario.shards import plan_shards
from mesh.scenario.world import start_world

__all__ = [
    "run_in_processes",
    "play_nodes",
    "Loopback",
    "Placement",
    "ProcessesBackend",
    "NODE_TIMEOUT",
    "MAX_NODES",
]

#: Real seconds a node may take to start listening, or a step to settle.
NODE_TIMEOUT = 60.0

#: One Python process per appliance costs tens of megabytes each; past this
#: the in-process run is the tool.
MAX_NODES = 64

_OUTCOMES = (LinkUp, LinkUpUnvalidated, LinkHalted, LinkDown)
_STATE = {LinkUp: "up", LinkUpUnvalidated: "up-unvalidated", LinkHalted: "halted",
          LinkDown: "down"}


class _Node:
    """One running ``mesh node`` process and the events it printed, in arrival order."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        #: (arrival number across the whole fleet, event).
        self.events: list[tuple[int, Event]] = []
        #: Its last outcome event of each link, with its arrival number: what
        #: settling asks after every line, so a console's thousands of events
        #: are not scanned per link.
        self.outcomes: dict[tuple[str, str], tuple[int, Event]] = {}
        self.address: str | None = None
        #: Arrival number of its ``appliance-started`` event (None: not yet).
        self.started_at: int | None = None
        #: Its console's ``api-listening`` event (None: none yet, or no console).
        self.api: ApiListening | None = None
        self.stderr = b""


class Placement(Protocol):
    """Where each node runs and how its peers reach it.

    The one thing that differs between ``--processes`` (:class:`Loopback`:
    every node on 127.0.0.1, a port of its own) and ``--hosts`` (every node
    in a network namespace of its own, :mod:`mesh.scenario.hosts`); the
    backend's bookkeeping, configs, settling and link table are shared.
    """

    def listen(self, name: str) -> str:
        """The ``listen`` address of ``name``'s node config."""
        ...

    def dial(self, name: str, reported: str | None) -> str:
        """The address its dialers' configs name for ``name``.

        ``reported``: where its node said it listens, now or last time
        (None: it never started).
        """
        ...

    def command(self, name: str, argv: list[str]) -> list[str]:
        """The command that runs ``argv`` (``python -m mesh node ...``) where ``name`` lives."""
        ...

    def api_ports(self, consoles: list[str]) -> dict[str, int]:
        """The API port of each console, fixed for the whole run."""
        ...

    def console_url(self, name: str, port: int) -> str: ...


class Loopback:
    """``--processes``: every node on 127.0.0.1, on a port it picks (see the module docstring)."""

    def listen(self, name: str) -> str:
        return "127.0.0.1:0"

    def dial(self, name: str, reported: str | None) -> str:
        return reported or _NOWHERE

    def command(self, name: str, argv: list[str]) -> list[str]:
        return argv

    def api_ports(self, consoles: list[str]) -> dict[str, int]:
        # A console keeps its port across node generations: see the module docstring.
        return dict(zip(consoles, _api_ports(len(consoles))))

    def console_url(self, name: str, port: int) -> str:
        return f"https://127.0.0.1:{port}"


class ProcessesBackend(NoNetwork):
    """The scenario's appliances as ``mesh node`` processes (see the module docstring)."""

    #: Seconds a node's dialer waits at most before redialing a failed link:
    #: short, as a node lives for one step here.
    backoff_cap = 1.0

    #: Nodes keep their fetched CRLs on disk (``crl_cache``), so a node
    #: restarted for the next step starts with them, as a restarted appliance
    #: would, and a CRL server that is down does not halt links that a
    #: long-running appliance keeps up on its cached CRL.
    keeps_crls = True

    def __init__(self, scenario: Scenario, pki: Pki, folder: Path, *, proxy_url: str | None,
                 sink: TextIO | None, nursery: trio.Nursery | None,
                 crl_server: CrlServer | None = None, settle_timeout: float | None = None,
                 placement: Placement | None = None, workers: int | None = None,
                 shards: list[list[str]] | None = None) -> None:
        self.scenario = scenario
        names = [a.name for a in scenario.appliances]
        #: The appliances each process runs: ``shards`` as given, one each
        #: (``--processes``, ``workers=None``) or a plan of at most ``workers``.
        self.shards: list[list[str]] = (
            shards if shards is not None
            else [[name] for name in names] if workers is None
            else plan_shards(names, scenario.links(), workers, where=scenario.source or scenario.name)
        )
        self.shard_of = {name: number for number, shard in enumerate(self.shards) for name in shard}
        # The topology never changes during a run: computed once, not per config
        # line (a console's config names every sensor that dials it).
        self._link_list = scenario.links()
        #: {name: appliance}: a config line looks an appliance up by name, and
        #: ``Scenario.appliance`` scans the list (quadratic over a big fleet).
        self._appliance = {a.name: a for a in scenario.appliances}
        self._link_set = set(self._link_list)
        self._dialers_of: dict[str, list[str]] = {}
        for dialer, listener in self._link_list:
            self._dialers_of.setdefault(listener, []).append(dialer)
        #: Where every node's events are appended too, parsed (the HTML report's
        #: timeline); :func:`play_nodes` sets the run's.
        self.log: EventLog | None = None
        self.pki = pki
        self.folder = folder
        self.proxy_url = proxy_url
        self.sink = sink
        self.nursery = nursery
        self.crl_server = crl_server
        self.settle_timeout = NODE_TIMEOUT if settle_timeout is None else settle_timeout
        self.placement: Placement = placement or Loopback()
        self._now = scenario.start
        self.validation = {a.name: a.validation for a in scenario.appliances}
        self.running = {a.name: True for a in scenario.appliances}
        self.identity: dict[str, ApplianceMaterial | None] = {
            a.name: (None if a.certificate == "self-signed" else pki.appliances[a.name])
            for a in scenario.appliances
        }
        self.nodes: dict[str, _Node] = {}
        #: Where each appliance listened last (a stopped one is dialled there: refused).
        self.last_address: dict[str, str] = {}
        self._arrivals = 0
        self._changed = trio.Event()
        self._uploads = 0
        self.api_port_of = self.placement.api_ports(scenario.consoles())
        self.consoles = {n: self.placement.console_url(n, p) for n, p in self.api_port_of.items()}
        # Each node writes its token beside its config (the run's private folder),
        # a new one at every node generation.
        self.console_tokens = {n: str(folder / f"{n}.api-token") for n in self.api_port_of}
        self._save(folder / "root.crt", files.certificate_bytes(pki.root.cert))
        for ca in pki.authorities.values():
            if ca.parent is None:
                self._save(folder / f"trust-{slug(ca.name)}.crt", files.certificate_bytes(ca.cert))
        # CRL files handed out of band: the CRLs as published at the start.
        self.crl_files = []
        if any(a.crl_files for a in scenario.appliances):
            for number, crl in enumerate(pki.crls(at=scenario.start).values()):
                path = folder / f"start-{number}.crl"
                self._save(path, crl.public_bytes(serialization.Encoding.DER))
                self.crl_files.append(str(path))

    # -- the Backend protocol --

    def now(self) -> dt.datetime:
        return self._now

    def links(self) -> list[LinkRow]:
        return self.rows()

    async def advance(self, delta: dt.timedelta) -> None:
        self._now = self._now + delta
        await self.publish()

    async def revoke(self, target: str) -> None:
        """Revoke and republish. No node is asked to refetch its CRLs
        (``POST /api/v1/crls/refresh``): the settle after every step restarts
        each node, and a node starts with an empty CRL cache."""
        self.pki.revoke(target, at=self._now)
        await self.publish()

    async def upload(self, target: str, certificate: str) -> UploadVerdict:
        material = self.pki.reissue(target, certificate, at=self._now)
        self._uploads += 1
        paths = self._write_identity(target, material, f"upload{self._uploads}")
        verdict = await self.judge_upload(target, paths, material)
        if verdict.accepted:
            self.identity[target] = material
        return verdict

    async def judge_upload(self, target: str, paths: dict[str, str],
                           material: ApplianceMaterial) -> UploadVerdict:
        """``target``'s upload check on the uploaded files ``paths``, in this process.

        The same check as ``mesh cert check``, with the appliance's policy;
        its CRLs are fetched from here, where the CRL server (and proxy) run.
        """
        from mesh.upload import check_upload

        appliance = self._appliance[target]
        proxy = self.proxy_url if appliance.crl_proxy else None
        verdict = await trio.to_thread.run_sync(
            lambda: check_upload(
                Path(paths["certificate"]), Path(paths["key"]),
                Path(paths["chain"]) if "chain" in paths else None,
                self._trust_files(target), material.passphrase,
                at=self._now, validation=self.validation[target], proxy=proxy,
                policy=ValidationPolicy(
                    revocation=appliance.revocation,  # type: ignore[arg-type]
                    validator=appliance.validator,  # type: ignore[arg-type]
                ),
            )
        )
        return upload_verdict(verdict)

    async def set_validation(self, target: str, enabled: bool) -> None:
        self.validation[target] = bool(enabled)

    async def crl_fault(self, fault: str) -> None:
        assert self.crl_server is not None
        self.crl_server.set_fault(fault)

    async def stop(self, target: str) -> None:
        self.running[target] = False

    async def start(self, target: str) -> None:
        self.running[target] = True

    async def settle(self, where: str) -> None:
        """Restart every node with the current state, then wait for every outcome.

        Raises:
            ScenarioNotSettled: not within ``settle_timeout`` seconds.
        """
        await self.stop_all()
        with trio.move_on_after(self.settle_timeout) as waiting:
            await self.start_all()
            await self.until_settled(waiting, self.settle_timeout)
        if waiting.cancelled_caught:
            pending = [f"{d} -> {l}" for d, l in self._unsettled()]
            problem = f"the mesh nodes did not settle within {self.settle_timeout:g} s"
            if pending:
                problem += ": no outcome yet for " + ", ".join(pending[:5])
                problem += f" and {len(pending) - 5} more" if len(pending) > 5 else ""
            raise ScenarioNotSettled(self.scenario.name, where, problem)

    async def publish(self) -> None:
        """Serve the CRLs as of the emulated instant."""
        if self.crl_server is not None:
            self.crl_server.set_documents(self.pki.crl_documents(at=self._now))

    # -- files --

    def _save(self, path: Path, data: bytes, *, private: bool = False) -> None:
        """Write one file a node config names (``private``: it holds a key, 0600).

        The one place node files are made, so another writer (the Kubernetes
        export's Secrets) keeps the same configs.
        """
        if private:
            files.write_file(path, data, mode=files.KEY_MODE)
        else:
            files.write_file(path, data)

    def _write_identity(self, name: str, material: ApplianceMaterial, tag: str) -> dict[str, str]:
        base = self.folder / f"{name}.{tag}"
        self._save(Path(f"{base}.crt"), files.certificate_bytes(material.cert))
        self._save(Path(f"{base}.key"),
                   files.key_bytes(material.key_file_key, passphrase=material.key_passphrase),
                   private=True)
        out = {"certificate": f"{base}.crt", "key": f"{base}.key"}
        if material.chain:
            self._save(Path(f"{base}.pem"), files.chain_bytes(material.chain))
            out["chain"] = f"{base}.pem"
        return out

    def _config(self, names: list[str]) -> Path:
        """The node config of a process running ``names``: one appliance's, or a shard's."""
        name = names[0] if len(names) == 1 else f"shard-{self.shard_of[names[0]]}"
        config = self.folder / f"{name}.toml"
        # It may name the key's passphrase: as private as the key itself.
        files.write_file(config, self.config_text(names).encode(), mode=files.KEY_MODE)
        return config

    def config_text(self, names: list[str]) -> str:
        """The node config of a process running ``names`` (its files saved by ``_save``)."""
        lines = [f"start = {json.dumps(self._now.isoformat())}", f"backoff_cap = {self.backoff_cap:g}"]
        if len(names) == 1:
            lines += self._settings(names[0], table="")
        else:
            here = frozenset(names)  # once, not per appliance: a shard may hold thousands
            for name in names:
                lines += ["", "[[appliance]]", *self._settings(name, table="appliance.", here=here)]
        return "\n".join(lines) + "\n"

    def _token_file(self, name: str) -> str | None:
        """The ``api_token_file`` of ``name``'s config (None: the node's default, beside it)."""
        return None

    def _settings(self, name: str, *, table: str, here: frozenset[str] | None = None) -> list[str]:
        """``name``'s keys of a node config; its peers in ``[{table}connects_to]`` tables.

        ``here``: the appliances of its shard, whose peers are ``"local"`` and
        whose listeners name the dialers in other shards (``accept_from``).
        """
        a = self._appliance[name]
        local = here or frozenset()
        lines = [
            f"name = {json.dumps(name)}",
            f"role = {json.dumps(a.role)}",
            f"listen = {json.dumps(self.placement.listen(name))}",
            f"trust = {json.dumps([str(p) for p in self._trust_files(name)])}",
            f"validation = {'true' if self.validation[name] else 'false'}",
            f"revocation = {json.dumps(a.revocation)}",
            f"validator = {json.dumps(a.validator)}",
            f"api_port = {self.api_port_of[name]}" if name in self.api_port_of else "api = false",
        ]
        if name in self.api_port_of and (token := self._token_file(name)) is not None:
            lines.append(f"api_token_file = {json.dumps(token)}")
        if here is not None:
            dialers = self._dialers_of.get(name, [])
            if any(d not in local for d in dialers):
                lines.append(f"accept_from = {json.dumps(dialers)}")
        material = self.identity[name]
        if material is not None:
            for key, path in self._write_identity(name, material, "current").items():
                lines.append(f"{key} = {json.dumps(path)}")
            if material.passphrase:
                lines.append(f"passphrase = {json.dumps(material.passphrase)}")
        if a.crl_proxy and self.proxy_url:
            lines.append(f"crl_proxy = {json.dumps(self.proxy_url)}")
        if a.crl_files:
            lines.append(f"crl_files = {json.dumps(self.crl_files)}")
        if self.keeps_crls:
            lines.append(f"crl_cache = {json.dumps(str(self.folder / 'crl-cache' / slug(name)))}")
        for key, peers in (("connects_to", a.connects_to), ("forwards_to", a.forwards_to)):
            dialed = [p for p in peers if (name, p) in self._links]
            if not dialed:
                continue
            lines.append(f"\n[{table}{key}]")
            for peer in dialed:
                address = LOCAL if peer in local and self.running[peer] else self._address_of(peer)
                role = self._appliance[peer].role
                lines.append(f"{json.dumps(peer)} = {{ address = {json.dumps(address)}, "
                             f"role = {json.dumps(role)} }}")
        return lines

    @property
    def _links(self) -> set[tuple[str, str]]:
        return self._link_set

    def _address_of(self, peer: str) -> str:
        """Where ``peer`` listens now, or where it last did (a stopped one refuses)."""
        node = self.nodes.get(peer)
        if node is not None and node.address is not None:
            return self.placement.dial(peer, node.address)
        return self.placement.dial(peer, self.last_address.get(peer))

    # -- processes --

    async def _spawn(self, names: list[str]) -> None:
        """One process running ``names`` (one appliance, or a shard's running ones)."""
        config = self._config(names)
        assert self.nursery is not None  # a backend that runs nodes has one
        env, fds = for_child({**os.environ, "PYTHONUNBUFFERED": "1"})  # ends if we are killed
        process = await trio.lowlevel.open_process(
            self.placement.command(names[0], [sys.executable, "-m", "mesh", "node", "--config", str(config)]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=fds,
        )
        group = {name: _Node(name, process) for name in names}
        self.nodes.update(group)
        self.nursery.start_soon(self._read, group)
        self.nursery.start_soon(self._read_stderr, group)

    async def _started(self, nodes: list[_Node]) -> None:
        """Wait until every one of ``nodes`` (one process's) reported its address
        (or the process died: one line).

        One waiter per process, not per appliance, and only the appliances
        still unheard of are looked at again: every chunk a shard prints
        wakes this, and a shard holds thousands of appliances.
        """
        waiting = nodes
        while waiting := [node for node in waiting if node.address is None]:
            node = waiting[0]
            if node.process.returncode is not None:
                await trio.sleep(0)
                detail = node.stderr.decode(errors="replace").strip().splitlines()
                raise InputError(f"mesh node {node.name}", "exited before listening",
                                 detail[-1] if detail else f"exit status {node.process.returncode}")
            await self._changed.wait()

    async def _read(self, group: dict[str, _Node]) -> None:
        """Parse the lines of one process; an event goes to every appliance of it that it names.

        A link between two appliances of one shard has one outcome (its
        shared link book's), so both ends see it.
        """
        buffer = b""
        process = next(iter(group.values())).process
        assert process.stdout is not None
        async for chunk in process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                if self.sink is not None:
                    self.sink.write(line.decode("utf-8", errors="replace") + "\n")
                try:
                    event = Event.from_json(line)
                except ValueError:
                    continue  # not an event of a kind this mesh knows
                self._arrivals += 1
                named = [getattr(event, key, None) for key in ("appliance", "dialer", "listener")]
                for node in {n: group[n] for n in named if isinstance(n, str) and n in group}.values():
                    node.events.append((self._arrivals, event))
                    if isinstance(event, _OUTCOMES):
                        node.outcomes[(event.dialer, event.listener)] = (self._arrivals, event)
                if self.log is not None:
                    self.log.append(event)
                if isinstance(event, ApplianceStarted) and event.appliance in group:
                    node = group[event.appliance]
                    node.address = self.last_address[node.name] = event.address
                    node.started_at = self._arrivals
                elif isinstance(event, ApiListening) and event.appliance in group:
                    group[event.appliance].api = event
            self._poke()
        self._poke()

    async def _read_stderr(self, group: dict[str, _Node]) -> None:
        process = next(iter(group.values())).process
        assert process.stderr is not None
        async for chunk in process.stderr:
            for node in group.values():
                node.stderr += chunk
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def start_all(self) -> None:
        """Start every shard's running appliances, each shard after those its appliances dial."""
        self.nodes = {}
        waiting = [[n for n in shard if self.running[n]] for shard in self.shards]
        waiting = [shard for shard in waiting if shard]
        dials = {}
        for shard in waiting:
            members = set(shard)
            dials[shard[0]] = {l for d, l in self._links
                               if d in members and self.running[l] and l not in members}
        while waiting:
            listening = {n for n, node in self.nodes.items() if node.address is not None}
            ready = [shard for shard in waiting if dials[shard[0]] <= listening]
            # A cycle of dialers: start the rest together (see the module docstring).
            wave = ready or list(waiting)
            for shard in wave:
                await self._spawn(shard)
            waiting = [shard for shard in waiting if shard not in wave]
            async with trio.open_nursery() as nursery:
                for shard in wave:
                    nursery.start_soon(self._started, [self.nodes[name] for name in shard])

    async def aclose(self) -> None:
        """Stop every process this backend started (the run's shielded cleanup)."""
        await self.stop_all()

    async def stop_all(self) -> None:
        processes = list({id(n.process): n.process for n in self.nodes.values()}.values())
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await process.wait()

    # -- reading the link table --

    def _final(self, name: str, link: tuple[str, str], *, after: int = 0) -> Event | None:
        """``name``'s last outcome event for ``link`` that arrived after ``after``."""
        node = self.nodes.get(name)
        if node is None:
            return None
        arrival, event = node.outcomes.get(link, (0, None))
        return event if event is not None and arrival > after else None

    async def until_settled(self, scope: trio.CancelScope, stall: float,
                            check: Callable[[], None] = lambda: None) -> None:
        """Return once no link is :meth:`_unsettled`; ``check()`` at every wake may raise.

        Each link that settles moves ``scope``'s deadline to at least
        ``stall`` seconds from now: a fleet of thousands of links comes up
        for minutes, and only a wait in which nothing moves is a failure.
        Once a link has its outcomes it keeps them (nodes do not restart
        while this waits), so each wake looks again only at the links still
        waiting: a fleet's thousands of lines would otherwise cost a pass
        over every link each.
        """
        waiting = self._unsettled()
        while waiting:
            check()
            await self._changed.wait()
            before, waiting = len(waiting), self._unsettled(waiting)
            if len(waiting) < before:
                scope.deadline = max(scope.deadline, trio.current_time() + stall)

    def _unsettled(self, among: Iterable[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
        """The links (of ``among``: all) of running dialers that have no outcome yet from both ends."""
        waiting = []
        for dialer, listener in self._link_list if among is None else among:
            if dialer not in self.nodes:
                continue
            link = (dialer, listener)
            peer = self.nodes.get(listener)
            # A dialer started before its listener (a cycle): only what came after counts.
            since = (peer.started_at or 0) if peer is not None else 0
            mine = self._final(dialer, link, after=since)
            if mine is None:
                waiting.append(link)
            elif peer is None or isinstance(mine, LinkDown):
                continue
            elif self._final(listener, link) is None:
                waiting.append(link)
        return waiting

    def rows(self) -> list[LinkRow]:
        out = []
        for dialer, listener in self._link_list:
            key = (dialer, listener)
            event = self._final(dialer, key) or self._final(listener, key)
            if event is None:
                state = "down" if dialer not in self.nodes else "connecting"
                out.append(LinkRow(dialer=dialer, listener=listener, state=state,
                                   message=f"{dialer} is stopped" if dialer not in self.nodes else ""))
                continue
            state = _STATE[type(event)]
            code = message = None
            refused_by = None
            notes: tuple[str, ...] = ()
            would: list[str] = []
            if isinstance(event, (LinkUp, LinkUpUnvalidated)):
                notes = event.notes
            if isinstance(event, LinkHalted):
                code, message, refused_by = event.code.code, event.code.message, event.refused_by
            elif isinstance(event, LinkUpUnvalidated):
                skipped = [e for name in key if name in self.nodes
                           for _, e in self.nodes[name].events
                           if isinstance(e, ValidationSkipped)
                           and (e.dialer, e.listener) == key]
                off = ", ".join(event.unvalidated_by)
                would = list(dict.fromkeys(c for e in skipped for c in e.would_fail))
                if would:
                    code = would[0]
                    message = (f"validation off on {off}; would fail: "
                               f"{FailureCode.from_code(code).message}")
                else:
                    message = f"validation off on {off}"
            elif isinstance(event, LinkDown):
                message = event.reason
            out.append(LinkRow(dialer=dialer, listener=listener, state=state, code=code,
                               message=with_notes(message or "", notes), refused_by=refused_by,
                               notes=notes, would_fail=tuple(would)))
        return out

    def _trust_files(self, name: str) -> list[Path]:
        """The files of the roots ``name`` trusts (default: the scenario's root)."""
        roots = self._appliance[name].trust
        if not roots:
            return [self.folder / "root.crt"]
        return [self.folder / f"trust-{slug(root)}.crt" for root in roots]


#: Where a stopped appliance that never listened is dialled: nothing listens
#: on port 1 of loopback, so the dial is refused at once.
_NOWHERE = "127.0.0.1:1"

#: Console API ports come from below the usual ephemeral ranges (Linux
#: 32768-60999, BSD/macOS 49152-65535), so no outgoing connection of another
#: node can hold one when its node restarts.
_PORTS = range(20000, 32000)


def _api_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free on 127.0.0.1 right now."""
    chosen: list[int] = []
    candidates = list(_PORTS)
    random.shuffle(candidates)
    for port in candidates:
        if len(chosen) == count:
            break
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    if len(chosen) < count:
        raise InputError("127.0.0.1", f"has no {count} free ports in {_PORTS.start}-{_PORTS.stop - 1}",
                         "stop what holds them, or run fewer consoles")
    return chosen


async def run_in_processes(
    scenario: Scenario,
    *,
    keys: KeySource | None = None,
    sink: TextIO | None = None,
    progress: Progress | None = None,
    settle_timeout: float | None = None,
    validation: str = "on",
    events: EventLog | None = None,
    workers: int | None = None,
) -> RunResult:
    """Play ``scenario`` with every appliance as a ``mesh node`` process.

    ``workers``: spread the appliances over that many shard processes
    instead (``mesh run --workers N``; :mod:`.shards` plans which runs where).

    ``sink`` receives every node's events, as the JSON lines the nodes print;
    ``events`` (give it no sink of its own) gets them parsed, in the order
    they arrive, with the scenario's own events (steps, verdicts).
    ``validation="off"`` plays the validation off run: every node's config
    says ``validation = false`` and ``set-validation`` steps are skipped.

    Raises:
        ScenarioNotSettled: the nodes did not settle (``settle_timeout``
            seconds, default NODE_TIMEOUT) at start or after a step.
    """
    check_scenario(scenario)
    option = "--processes" if workers is None else "--workers"
    if (firewall := scenario.firewall_line(option)) is not None:
        raise InputError(*firewall)
    if validation == "off":
        scenario = scenario.with_validation_off()
    if workers is None:
        check_fleet_size(scenario, "--processes", "run it without --processes")
    elif min(workers, len(scenario.appliances)) > MAX_NODES:
        raise InputError("--workers", f"{workers} shard processes are too many "
                         f"(a Python process each; at most {MAX_NODES})", "give fewer")

    async def backend(nursery: trio.Nursery, folder: Path) -> ProcessesBackend:
        crl_server, proxy, pki, _ = await start_world(
            scenario, nursery, keys=keys, progress=progress
        )
        from mesh.scenario.live_nodes import LiveNodesBackend

        return LiveNodesBackend(
            scenario, pki, folder, proxy_url=proxy.url if proxy else None, sink=sink,
            nursery=nursery, crl_server=crl_server, settle_timeout=settle_timeout,
            workers=workers,
        )

    return await play_nodes(
        scenario, backend, progress=progress,
        mode="processes" if workers is None else "workers", validation=validation,
        events=events,
    )


def check_fleet_size(scenario: Scenario, option: str, fix: str) -> None:
    """One line when ``scenario`` has more appliances than node processes make sense for."""
    if len(scenario.appliances) > MAX_NODES:
        raise InputError(
            scenario.source or scenario.name,
            f"has {len(scenario.appliances)} appliances, too many for {option} "
            f"(one Python process each; at most {MAX_NODES})",
            fix,
        )


async def play_nodes(
    scenario: Scenario,
    make_backend: Callable[[trio.Nursery, Path], Awaitable[ProcessesBackend]],
    *,
    progress: Progress | None,
    mode: str,
    validation: str = "on",
    events: EventLog | None = None,
) -> RunResult:
    """Play ``scenario`` on the node backend ``make_backend(nursery, folder)`` builds.

    ``validation`` is the run's (``"off"``: the driver skips ``set-validation``
    steps; the caller has already switched validation off in ``scenario``).
    ``events`` (with no sink of its own) gets the nodes' events, parsed as
    they arrive, and the driver's; the result keeps each appliance's
    certificate as the backend's PKI had it before the first step.

    The loop of every node backend (``--processes``, ``--hosts``): a private
    temporary folder for the node configs and files (:mod:`.node_folder`: held
    while the run lives, swept by a later run if this one is killed), the
    driver, and on every
    way out (a result, an error, Ctrl-C) the backend's processes stopped
    under a shield before the folder goes.

    Raises:
        ScenarioNotSettled: the nodes did not settle at start or after a step.
    """
    try:
        with node_folder() as folder:
            async with trio.open_nursery() as nursery:
                backend: ProcessesBackend | None = None
                try:
                    backend = await make_backend(nursery, folder)
                    certificates = certificates_in_play(scenario, backend.pki)  # before any upload
                    backend.log = events
                    await backend.publish()
                    driver = Driver(scenario, backend, events if events is not None else EventLog(),
                                    validation=validation)
                    await driver.start()
                    if progress:
                        progress("started", None, backend)
                    for index, step in enumerate(scenario.steps, 1):
                        record = await driver.play(index, step)
                        if progress:
                            progress("step", record, backend)
                    return evolve(driver.result(mode=mode), certificates=certificates)
                finally:
                    if backend is not None:
                        with trio.CancelScope(shield=True):
                            await backend.aclose()
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps what the run raised; stuck nodes, or a node that
        # answered what the driver cannot use, are one line.
        stuck = not_settled_in(group) or input_error_in(group)
        if stuck is None:
            raise
        raise stuck from None


def input_error_in(group: BaseExceptionGroup) -> InputError | None:
    """The first :class:`InputError` of ``group`` when that is all it holds (one line to print)."""
    found, rest = group.split(InputError)
    if found is None or rest is not None:
        return None
    leaf: BaseException = found
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf if isinstance(leaf, InputError) else None
