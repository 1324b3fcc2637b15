"""``mesh run --processes`` / ``--workers N``: the nodes start once, the steps go through their APIs.

Why: restarting every node at every step (a new clock instant, switch and
identity in its config, an empty CRL cache) is what the step means only
approximately, and it made a 1,000-sensor run over two workers spend most
of its time starting processes. Here the processes start once, as
:class:`~mesh.scenario.processes.ProcessesBackend` starts them (its configs,
its listeners-first order, its event reading for the start), every
appliance that can have a console serves one (port 0, its URL and token file
from its ``api-listening`` event), and from the first step on the run is a
:class:`~mesh.scenario.fleet.FleetBackend` over those consoles and the
run's CRL server (in this process). Nodes keep their CRL caches across
steps, as they would in the field and as the in-process run does.

The link table at start comes from the nodes' events (as before); after each
step from the refresh answers (:mod:`.fleet`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import trio

from mesh.consoles import has_console
from mesh.errors import InputError
from mesh.events import ApiListening
from mesh.scenario.backend import UploadVerdict
from mesh.scenario.fleet import FleetBackend, LocalCrl
from mesh.scenario.fleet_client import Api, FleetClient
from mesh.scenario.processes import NODE_TIMEOUT, Placement, ProcessesBackend
from mesh.scenario.result import LinkRow
from mesh.scenario.runner import SCENARIO_BACKOFF, ScenarioNotSettled

__all__ = ["LiveNodesBackend"]


class LiveNodesBackend(ProcessesBackend):
    """Nodes started once, then driven through their consoles (see the module docstring)."""

    #: As in one process (:data:`mesh.scenario.runner.SCENARIO_BACKOFF`): every
    #: step asks each link for a fresh attempt anyway, and a thousand halted
    #: links redialing every second between steps would only load the machine.
    backoff_cap = SCENARIO_BACKOFF

    #: Nodes run for the whole scenario and keep their CRLs in memory: a copy
    #: on disk per appliance would be 40,000 files for a 20,000-sensor fleet.
    keeps_crls = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Appliances a step acts on that have no console (forwarding targets:
        # third-party servers) are changed the old way: their own process,
        # restarted with the new state on the same address.
        role = {a.name: a.role for a in self.scenario.appliances}
        self._restarted = {t for t in self._targets() if not has_console(role.get(t, ""))}
        if self._restarted:
            kept = [[n for n in shard if n not in self._restarted] for shard in self.shards]
            self.shards = [shard for shard in kept if shard] + [[n] for n in sorted(self._restarted)]
            self.shard_of = {name: number for number, shard in enumerate(self.shards)
                             for name in shard}
        self._same_address: dict[str, str] = {}
        self.placement = _SameAddress(self.placement, self._same_address)
        # Every appliance that can serve a console does (the driver's way in),
        # on a port it picks; the URLs printed stay those the scenario asks for.
        asked = set(self.api_port_of)
        self.api_port_of = {name: 0 for name in self._driven(asked)}
        self._asked = asked
        self.consoles = {}
        self.console_tokens = {}
        self.client = FleetClient()
        self.fleet: FleetBackend | None = None

    def _driven(self, asked: set[str]) -> list[str]:
        """The appliances whose consoles the driver uses (port 0 each): one per
        process (its refresh is the process's, its clock the process's), each
        target of a step that acts on one appliance, and those the scenario
        asks for. A thousand consoles would cost the start more than the steps."""
        targeted = self._targets()
        role = {a.name: a.role for a in self.scenario.appliances}
        chosen = set(asked) | {t for t in targeted if t and has_console(role.get(t, ""))}
        for shard in self.shards:
            if not chosen & set(shard):
                first = next((name for name in shard if has_console(role[name])), None)
                if first is not None:
                    chosen.add(first)
        return [a.name for a in self.scenario.appliances if a.name in chosen]

    def _targets(self) -> set[str]:
        """The appliances a step acts on by name (upload, set-validation, stop, start)."""
        return {step.target for step in self.scenario.steps
                if str(step.action) in ("upload", "set-validation", "stop", "start") and step.target}

    # -- start: the processes, once --

    async def settle(self, where: str) -> None:
        if self.fleet is not None:
            await self.fleet.settle(where)
            return
        # Starting Python processes is not what a step's settle timeout bounds:
        # at least NODE_TIMEOUT for the start (a loaded machine takes seconds).
        start_timeout = max(self.settle_timeout, NODE_TIMEOUT)
        with trio.move_on_after(start_timeout) as waiting:
            await self.start_all()
            while self._without_api():
                self._check_alive()
                await self._changed.wait()
            await self.until_settled(waiting, start_timeout, self._check_alive)
        if waiting.cancelled_caught:
            pending = [f"{d} -> {l}" for d, l in self._unsettled()] + self._without_api()
            raise ScenarioNotSettled(self.scenario.name, where,
                                     f"the mesh nodes did not settle within {start_timeout:g} s"
                                     + (": waiting for " + ", ".join(pending[:5]) if pending else ""))
        apis = {}
        for name in self.api_port_of:
            listening = self._listening(name)
            assert listening is not None
            token = Path(listening.token_file).read_text(encoding="utf-8").strip()
            apis[name] = Api(name=name, url=listening.url, token=token)
            if name in self._asked:
                self.consoles[name] = listening.url
                self.console_tokens[name] = listening.token_file
        assert self.crl_server is not None
        self.fleet = FleetBackend(self.scenario, self.pki, client=self.client, apis=apis,
                                  crl=LocalCrl(self.crl_server), now=self._now,
                                  settle_timeout=self.settle_timeout, processes=self.shards)

    def _listening(self, name: str) -> ApiListening | None:
        node = self.nodes.get(name)
        return None if node is None else node.api

    def _without_api(self) -> list[str]:
        return [f"{name}'s console" for name in self.api_port_of if self._listening(name) is None]

    def _check_alive(self) -> None:
        # One look per process, not per appliance: a shard holds thousands.
        for node in {id(node.process): node for node in self.nodes.values()}.values():
            if node.process.returncode is not None:
                detail = node.stderr.decode(errors="replace").strip().splitlines()
                raise InputError(f"mesh node {node.name}", "exited during the run",
                                 detail[-1] if detail else f"exit status {node.process.returncode}")

    # -- steps: through the fleet --

    def _fleet(self) -> FleetBackend:
        if self.fleet is None:
            raise RuntimeError("the nodes have not started: settle first")
        return self.fleet

    def now(self) -> dt.datetime:
        return self.fleet.now() if self.fleet is not None else self._now

    def links(self) -> list[LinkRow]:
        if self.fleet is None or not self.fleet.settled:
            return self.rows()
        return self.fleet.links()

    async def advance(self, delta: dt.timedelta) -> None:
        await self._fleet().advance(delta)

    async def revoke(self, target: str) -> None:
        await self._fleet().revoke(target)

    async def upload(self, target: str, certificate: str) -> UploadVerdict:
        if target not in self._restarted:
            return await self._fleet().upload(target, certificate)
        # Judged here as `mesh cert check` judges the files, then the process
        # restarts presenting them (the way every step used to work).
        self._now = self._fleet().now()
        verdict = await ProcessesBackend.upload(self, target, certificate)
        if verdict.accepted:
            await self._restart(target)
        return verdict

    async def set_validation(self, target: str, enabled: bool) -> None:
        if target not in self._restarted:
            await self._fleet().set_validation(target, enabled)
            return
        self.validation[target] = bool(enabled)
        await self._restart(target)

    async def crl_fault(self, fault: str) -> None:
        await self._fleet().crl_fault(fault)

    async def stop(self, target: str) -> None:
        if target not in self._restarted:
            await self._fleet().stop(target)
            return
        self.running[target] = self._fleet().running[target] = False
        await self._restart(target)

    async def start(self, target: str) -> None:
        if target not in self._restarted:
            await self._fleet().start(target)
            return
        self.running[target] = self._fleet().running[target] = True
        await self._restart(target)

    async def _restart(self, name: str) -> None:
        """Stop ``name``'s own process and, if it runs, start it again with its
        state now, listening where it did (its dialers' configs name that address)."""
        node = self.nodes.pop(name, None)
        if node is not None:
            if node.process.returncode is None:
                node.process.terminate()
            await node.process.wait()
        address = self.last_address.get(name)
        if not self.running[name] or address is None:
            return
        self._same_address[name] = address
        self._now = self._fleet().now()
        await self._spawn([name])
        with trio.fail_after(self.settle_timeout):
            await self._started([self.nodes[name]])

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        finally:
            await self.stop_all()


class _SameAddress:
    """A placement whose nodes listen again where they did, once restarted."""

    def __init__(self, inner: Placement, fixed: dict[str, str]) -> None:
        self._inner = inner
        self._fixed = fixed

    def listen(self, name: str) -> str:
        return self._fixed.get(name) or self._inner.listen(name)

    def dial(self, name: str, reported: str | None) -> str:
        return self._inner.dial(name, reported)

    def command(self, name: str, argv: list[str]) -> list[str]:
        return self._inner.command(name, argv)

    def api_ports(self, consoles: list[str]) -> dict[str, int]:
        return self._inner.api_ports(consoles)

    def console_url(self, name: str, port: int) -> str:
        return self._inner.console_url(name, port)
