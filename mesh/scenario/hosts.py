"""``mesh run --hosts``: every appliance a ``mesh node`` on a host of its own.

Theory of operation. The hosts are Linux network namespaces on a private
switch (:mod:`mesh.hosts.netns`: names, addresses, hosts files, cleanup).
Everything else is the ``--processes`` backend (:mod:`.processes`): the
same node configs, restarts at every settle, event parsing and link table.
What differs is a :class:`~.processes.Placement`, the CRL server and proxy,
and a network between the hosts:

- **Nodes** run as ``ip netns exec NS python -m mesh node --config ...``,
  listen on their host's address, port :data:`NODE_PORT` (the same on every
  host: each has its own address), and dial peers by DNS name
  (``cm.contoso.test:8443``), which the namespace's hosts file resolves.
  A stopped peer's name still resolves; nothing listens there, so its
  dialers are refused, as on a real network. Consoles serve on
  :data:`API_PORT` of their host, reachable from inside the run's
  namespaces only (``ip netns exec <ns> curl -k https://NAME:9443/``).
- **The CRL server** is ``mesh crl serve`` on a host of its own,
  ``crl.<domain>`` port 80 (:func:`mesh.hosts.netns.crl_domain` gives the
  domain: the appliances' common DNS suffix), and the scenario's PKI names
  ``http://crl.<domain>/crl/...`` in every CRL Distribution Point. It serves
  files of the run's folder: a step that changes the CRLs (a revocation, a
  clock jump) rewrites them and sends SIGHUP, and the step settles only once
  the server's ``SIGHUP:`` line says it serves them (its own once-a-second
  poll would get there too, but a node restarted meanwhile would fetch the
  old ones). ``crl-down`` stops that process (connections are refused),
  ``crl-up`` starts it again.
- **The CRL proxy**, when an appliance fetches through one, is ``mesh crl
  proxy`` on a host of its own, ``proxy.<domain>`` port :data:`PROXY_PORT`;
  nodes with ``crl_proxy`` name it in their configs. It resolves
  ``crl.<domain>`` through its hosts file like any host. ``crl_proxy_only``
  becomes a kernel rule: every appliance is refused at the CRL host, so only
  the proxy reaches it (:func:`network_policy`).
- **Uploads** are judged on the target's own host: ``mesh cert check`` with
  the appliance's policy (and proxy) runs in its namespace, so its CRLs come
  over the run's network, as the node's would.
- **Network policy** is the kernel's (:mod:`mesh.hosts.firewall`): the
  ``[[block]]`` tables are nftables rules loaded before any node starts;
  ``block`` / ``unblock`` / ``partition`` / ``heal`` / ``loss`` steps change
  the :class:`~mesh.hosts.firewall.NetworkPolicy` and reload every host's
  table, ``bandwidth`` puts a tc token bucket on the host's veth. The
  methods here are one line each: the policy lives in :mod:`mesh.hosts`.
  A link that is ``down`` between two running nodes, where the policy in
  force cuts that pair on :data:`NODE_PORT`, gets the policy's ``reason``
  (``network: blocked``, ``network: partitioned``, ``network: loss``): the
  state stays ``down``, the report says the network did it. There is no
  ``latency`` step: the kernel here has no ``netem``, and nftables cannot
  delay a packet.

**Shards on hosts** (``--hosts --workers N``): the appliances are planned
into shards as ``--workers`` plans them (:mod:`.shards`), one ``mesh node``
process and one host per shard, so a fleet of thousands needs a few hosts,
not one each (a run's /24 holds 252). Every appliance's name resolves to its
shard's host; the first listens on :data:`NODE_PORT`, the others on
``SHARD_PORTS + i`` (:class:`OnHosts`). The kernel's rules are per host, so
every appliance a ``[[block]]`` or a network step names gets a shard (a
host) of its own: a rule on sensor-7's host cuts sensor-7 alone.

Not there yet (each refused in one line before anything is made): the CRL
server's other faults (``crl-slow``, ``crl-garbage``: ``mesh crl serve`` has
no faults).

Cleanup is guaranteed by a shielded ``finally``: the node, CRL and proxy
processes are stopped, then every namespace and ``/etc/netns`` folder of the run is
removed (rules and qdiscs live in them, so they go too), on a result, an
error or Ctrl-C. A run killed with SIGKILL leaves them: ``mesh hosts clean``
removes them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Mapping, TextIO

import trio
from attrs import evolve
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode, InputError
from mesh.eventlog import EventLog
from mesh.hosts import firewall, netns, run_lock
from mesh.hosts.firewall import NetworkPolicy, Partition, Rule
from mesh.hosts.netns import Host, HostsPlan
from mesh.hosts.service import HostService
from mesh.pki import files
from mesh.pki.deployment import ApplianceMaterial, Pki
from mesh.pki.issue import KeySource
from mesh.scenario.actions import Action
from mesh.scenario.backend import UploadVerdict
from mesh.scenario.load import check_scenario
from mesh.scenario.model import Scenario
from mesh.scenario.processes import NODE_TIMEOUT, ProcessesBackend, check_fleet_size, play_nodes
from mesh.scenario.result import LinkRow, RunResult
from mesh.scenario.shards import plan_shards
from mesh.scenario.runner import Progress
from mesh.scenario.world import make_pki

__all__ = [
    "API_PORT",
    "CRL_PORT",
    "HostsBackend",
    "NODE_PORT",
    "OnHosts",
    "PROXY_PORT",
    "check_hosts_scenario",
    "crl_base_url",
    "run_on_hosts",
]

#: The port every node listens on, on its own host's address.
NODE_PORT = 8443

#: The port a console's API listens on, on its host.
API_PORT = 9443

#: Where the ports of a shard's other appliances start (``--hosts --workers``):
#: its second appliance listens on 10001, and 20,000 end by 30000.
SHARD_PORTS = 10_000

#: Where the API ports of a shard's other consoles start: 31001 onwards, up to
#: 1,766 consoles on one host below Linux's ephemeral range (32768).
SHARD_API_PORTS = 31_000

#: The CRL server's port: the CRL Distribution Points name no port.
CRL_PORT = 80

#: The CRL proxy's port on its host (a common forward proxy port).
PROXY_PORT = 3128

#: Steps a hosts run cannot play yet, and why.
UNSUPPORTED = {
    Action.CRL_SLOW: "mesh crl serve has no slow fault",
    Action.CRL_GARBAGE: "mesh crl serve has no garbage fault",
}


def crl_base_url(plan: HostsPlan) -> str:
    """What every CRL Distribution Point of a hosts run starts with."""
    return f"http://{plan.crl.name}/crl"


def check_hosts_scenario(scenario: Scenario) -> None:
    """One line naming what a hosts run cannot play yet (see the module docstring).

    Raises:
        InputError: the first such step or setting.
    """
    where = scenario.source or scenario.name
    for index, step in enumerate(scenario.steps, 1):
        why = UNSUPPORTED.get(step.action)
        if why is not None:
            raise InputError(f"{where}: step[{index}] {step.action}",
                             f"is not supported by --hosts yet ({why})", "run it without --hosts")


class OnHosts:
    """The :class:`~.processes.Placement` of a hosts run: a namespace each, DNS names, fixed ports.

    On a host shared by a shard's appliances (``--workers``), the first
    listens on :data:`NODE_PORT` and the others on ``SHARD_PORTS + i``; the
    first console's API on :data:`API_PORT`, the others' on
    ``SHARD_API_PORTS + j``. Fixed numbers below Linux's ephemeral range, so
    no outgoing connection can hold one.
    """

    def __init__(self, plan: HostsPlan) -> None:
        self.plan = plan
        self._port: dict[str, int] = {}
        for host in plan.appliances:
            for index, name in enumerate(plan.names_on(host)):
                self._port[name] = NODE_PORT if index == 0 else SHARD_PORTS + index

    def port(self, name: str) -> int:
        """The port ``name`` listens on, on its host."""
        return self._port.get(name, NODE_PORT)

    def listen(self, name: str) -> str:
        return f"{self.plan.host(name).address}:{self.port(name)}"

    def dial(self, name: str, reported: str | None) -> str:
        return f"{name}:{self.port(name)}"

    def command(self, name: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.plan.host(name).namespace, *argv]

    def api_ports(self, consoles: list[str]) -> dict[str, int]:
        taken: dict[str, int] = {}
        ports = {}
        for name in consoles:
            host = self.plan.host(name).name
            index = taken[host] = taken.get(host, -1) + 1
            ports[name] = API_PORT if index == 0 else SHARD_API_PORTS + index
        return ports

    def console_url(self, name: str, port: int) -> str:
        return f"https://{name}:{port}"


class CrlHost(HostService):
    """``mesh crl serve`` on the run's CRL host, serving CRL files of ``folder``."""

    def __init__(self, host: Host, folder: Path, nursery: trio.Nursery) -> None:
        super().__init__(host, nursery, what="mesh crl serve", timeout=NODE_TIMEOUT)
        self.folder = folder
        #: False between a crl-down and a crl-up.
        self.wanted = True
        #: CRL URL -> (its file, the bytes last written there).
        self._files: dict[str, tuple[Path, bytes]] = {}
        folder.mkdir(parents=True, exist_ok=True)

    async def publish(self, documents: Mapping[str, bytes]) -> None:
        """Serve ``documents`` ({CRL URL: DER}) from the next fetch on.

        Returns once the server serves them (or at once while it is down).
        """
        changed, new_urls = self._write(documents)
        if not self.wanted:
            return
        if self.process is None or new_urls:
            await self.stop()  # new URLs: the server reads pki.json at start only
            await self.start()
        elif changed:
            await self._reload()

    async def set_up(self, up: bool) -> None:
        """``crl-up`` / ``crl-down``: the server process runs, or it does not."""
        self.wanted = up
        if up and self.process is None:
            await self.start()
        elif not up:
            await self.stop()

    def _write(self, documents: Mapping[str, bytes]) -> tuple[bool, bool]:
        """Write the changed CRL files (and ``pki.json`` for new URLs): (changed, new URLs)."""
        changed = new_urls = False
        for url, data in documents.items():
            if url not in self._files:
                path = self.folder / "crl" / f"{len(self._files)}.crl"
                path.parent.mkdir(exist_ok=True)
                self._files[url] = (path, b"")
                new_urls = True
            path, written = self._files[url]
            if data != written:
                files.write_file(path, data)
                self._files[url] = (path, data)
                changed = True
        if new_urls:
            manifest = {"crls": {url: str(path.relative_to(self.folder))
                                 for url, (path, _) in self._files.items()}}
            files.write_file(self.folder / "pki.json", json.dumps(manifest, indent=2).encode())
        return changed, new_urls

    async def start(self) -> None:
        """Start the server; return once it listens.

        Raises:
            InputError: it exited first (one line, with its last words).
        """
        await self.launch([sys.executable, "-m", "mesh", "crl", "serve", str(self.folder),
                           "--host", str(self.host.address), "--port", str(CRL_PORT)],
                          ready="mesh: serving")

    async def _reload(self) -> None:
        """SIGHUP, then wait for the server's answer (its one ``SIGHUP:`` line)."""
        assert self.process is not None
        seen = len(self.stderr)
        self.process.send_signal(signal.SIGHUP)
        with self.within("did not answer SIGHUP"):
            while not any(line.startswith("mesh: SIGHUP:") for line in self.stderr[seen:]):
                if self.process.returncode is not None:
                    raise InputError(f"mesh crl serve on {self.host.name}",
                                     "exited instead of reloading its CRL files",
                                     self.stderr[-1] if self.stderr else "")
                await self.changed()


class ProxyHost(HostService):
    """``mesh crl proxy`` on the run's proxy host: the CRL proxy appliances may fetch through."""

    def __init__(self, host: Host, nursery: trio.Nursery) -> None:
        super().__init__(host, nursery, what="mesh crl proxy", timeout=NODE_TIMEOUT)

    @property
    def url(self) -> str:
        return f"http://{self.host.name}:{PROXY_PORT}"

    async def start(self) -> None:
        await self.launch([sys.executable, "-m", "mesh", "crl", "proxy",
                           "--host", str(self.host.address), "--port", str(PROXY_PORT)],
                          ready="mesh: proxying")


class HostsBackend(ProcessesBackend):
    """The scenario's appliances as ``mesh node`` processes, each on a host of its own."""

    def __init__(self, scenario: Scenario, pki: Pki, folder: Path, *, plan: HostsPlan,
                 sink: TextIO | None, nursery: trio.Nursery,
                 settle_timeout: float | None = None,
                 policy: NetworkPolicy | None = None,
                 shards: list[list[str]] | None = None) -> None:
        proxy = ProxyHost(plan.proxy, nursery) if plan.proxy is not None else None
        self.on_hosts = OnHosts(plan)
        super().__init__(scenario, pki, folder, proxy_url=proxy.url if proxy else None, sink=sink,
                         nursery=nursery, settle_timeout=settle_timeout, placement=self.on_hosts,
                         shards=shards)
        self.plan = plan
        self.crl_host = CrlHost(plan.crl, folder / "crl-server", nursery)
        self.proxy_host = proxy
        #: What the network does now: ``[[block]]`` tables, then the steps'.
        self.policy = policy or network_policy(scenario, plan)

    async def publish(self) -> None:
        crls = self.pki.crls(at=self._now)
        await self.crl_host.publish(
            {url: crl.public_bytes(serialization.Encoding.DER) for url, crl in crls.items()}
        )
        if self.proxy_host is not None and self.proxy_host.process is None:
            await self.proxy_host.start()

    def links(self) -> list[LinkRow]:
        """The link table, each ``down`` link between running nodes with the network's part in it."""
        rows = super().links()
        port = self.on_hosts.port
        return [
            evolve(row, reason=self.policy.reason(row.dialer, row.listener, port(row.listener)))
            if row.state == "down" and row.dialer in self.nodes and row.listener in self.nodes
            else row
            for row in rows
        ]

    # -- network policy: the kernel's (mesh.hosts.firewall) --

    async def block(self, source: str, destination: str, port: int | None, drop: bool) -> None:
        self.policy.block(Rule(source=source, destination=destination, port=port, drop=drop))
        await firewall.apply(self.policy)

    async def unblock(self, source: str, destination: str, port: int | None) -> None:
        self.policy.unblock(source, destination, port)
        await firewall.apply(self.policy)

    async def partition(self, groups: tuple[tuple[str, ...], ...], drop: bool) -> None:
        self.policy.partition(Partition(groups=groups, drop=drop))
        await firewall.apply(self.policy)

    async def heal(self) -> None:
        self.policy.heal()
        await firewall.apply(self.policy)

    async def loss(self, target: str, percent: int) -> None:
        self.policy.set_loss(target, percent)
        await firewall.apply(self.policy)

    async def bandwidth(self, target: str, rate: str) -> None:
        host = self.policy.host(target)
        if host is not None:  # "proxy" in a run without one: nothing to slow
            await firewall.set_bandwidth(self.plan, host, None if rate == "off" else rate)

    async def crl_fault(self, fault: str) -> None:
        if fault not in ("down", "ok"):  # check_hosts_scenario refused these
            raise InputError(f"crl fault {fault!r}", "is not supported by --hosts yet",
                             "run it without --hosts")
        await self.crl_host.set_up(fault == "ok")

    async def judge_upload(self, target: str, paths: dict[str, str],
                           material: ApplianceMaterial) -> UploadVerdict:
        """``mesh cert check`` on ``target``'s own host, with the appliance's policy."""
        appliance = self.scenario.appliance(target)
        argv = [sys.executable, "-m", "mesh", "cert", "check", "--json",
                "--crt", paths["certificate"], "--key", paths["key"],
                "--at", self._now.isoformat(), "--profile", appliance.validator,
                "--revocation", appliance.revocation]
        if "chain" in paths:
            argv += ["--chain", paths["chain"]]
        if appliance.crl_proxy and self.proxy_url:
            argv += ["--proxy", self.proxy_url]
        for trust in self._trust_files(target):
            argv += ["--trust", str(trust)]
        if not self.validation[target]:
            argv.append("--no-validation")
        if material.passphrase:
            secret = Path(paths["key"]).with_suffix(".passphrase")
            files.write_file(secret, material.passphrase.encode() + b"\n", mode=files.KEY_MODE)
            argv += ["--passphrase-file", str(secret)]
        # The admin's passphrase is the one given here, never the runner's own.
        env = {k: v for k, v in os.environ.items() if k != "MESH_PASSPHRASE"}
        done = await trio.run_process(self.placement.command(target, argv), env=env,
                                      capture_stdout=True, capture_stderr=True, check=False)
        if done.returncode not in (0, 1):
            said = done.stderr.decode(errors="replace").strip().splitlines()
            raise InputError(f"mesh cert check on {target}", "failed",
                             said[-1] if said else f"exit status {done.returncode}")
        report = json.loads(done.stdout)
        if report["valid"]:
            return UploadVerdict(accepted=True)
        code = report["failures"][0]["code"] if report["failures"] else None
        return UploadVerdict(accepted=False, code=code,
                             message=FailureCode.from_code(code).message if code else "")

    async def aclose(self) -> None:
        await super().aclose()
        await self.crl_host.stop()
        if self.proxy_host is not None:
            await self.proxy_host.stop()


def uses_proxy(scenario: Scenario) -> bool:
    """Does any appliance fetch its CRLs through the proxy (so the run needs its host)?"""
    return scenario.pki.crl_proxy_only or any(a.crl_proxy for a in scenario.appliances)


def network_policy(scenario: Scenario, plan: HostsPlan) -> NetworkPolicy:
    """The rules in force from the start: the ``[[block]]`` tables, and with
    ``crl_proxy_only`` every appliance blocked from the CRL host (only the
    proxy reaches it: what the in-process run imitates with an address
    nothing listens on, the kernel enforces here)."""
    rules = [Rule(source=b.source, destination=b.destination, port=b.port, drop=b.drop)
             for b in scenario.blocks]
    if scenario.pki.crl_proxy_only:
        rules += [Rule(source=a.name, destination="crl") for a in scenario.appliances]
    return NetworkPolicy(plan, rules)


def has_policy(scenario: Scenario) -> bool:
    """Does the run load rules or qdiscs (so needs ``nft`` and ``tc``)?"""
    return scenario.needs_hosts or scenario.pki.crl_proxy_only


async def run_on_hosts(
    scenario: Scenario,
    *,
    keys: KeySource | None = None,
    sink: TextIO | None = None,
    progress: Progress | None = None,
    settle_timeout: float | None = None,
    run_id: str | None = None,
    validation: str = "on",
    events: EventLog | None = None,
    workers: int | None = None,
) -> RunResult:
    """Play ``scenario`` with every appliance a ``mesh node`` on a host of its own.

    ``validation="off"`` plays the validation off run, and ``events`` gets the
    nodes' events, as ``run_in_processes`` does. ``workers``: the appliances
    in shards as ``mesh run --workers`` plans them, a host per shard; every
    appliance the network policy names gets a shard (a host) of its own, as
    the kernel's rules are per host.

    Raises:
        InputError: no root or no ``ip`` (one line); a step or setting hosts
            cannot play yet; an ``ip`` command failed.
        ScenarioNotSettled: the nodes did not settle at start or after a step.
    """
    check_scenario(scenario)
    if validation == "off":
        scenario = scenario.with_validation_off()
    names = [a.name for a in scenario.appliances]
    shards = None
    if workers is None:
        check_fleet_size(scenario, "--hosts", "run it with --workers N too, or without --hosts")
    else:
        shards = plan_shards(names, scenario.links(), workers, where=scenario.source or scenario.name,
                             alone=scenario.policy_names)
    check_hosts_scenario(scenario)
    plan = netns.plan_hosts(names, run_id=run_id or netns.new_run_id(), proxy=uses_proxy(scenario),
                            groups=shards)
    missing = netns.missing_privilege()
    if missing is None and has_policy(scenario):
        missing = firewall.missing_nft()
    if missing is not None:
        raise InputError("mesh run --hosts", missing, "run it as root, or without --hosts")
    policy = network_policy(scenario, plan)

    async def backend(nursery: trio.Nursery, folder: Path) -> ProcessesBackend:
        pki, _ = await make_pki(scenario, crl_base_url=crl_base_url(plan), keys=keys,
                                progress=progress)
        return HostsBackend(scenario, pki, folder, plan=plan, sink=sink, nursery=nursery,
                            settle_timeout=settle_timeout, policy=policy, shards=shards)

    # Held from before the first namespace until after the last is gone:
    # `mesh hosts clean` leaves a run that holds it alone.
    with run_lock.held(plan.run_id):
        try:
            await netns.create(plan)
            if has_policy(scenario):
                await firewall.apply(policy)  # in force before any node starts
            return await play_nodes(
                scenario, backend, progress=progress, mode="hosts", validation=validation,
                events=events,
            )
        finally:
            with trio.CancelScope(shield=True):
                await netns.destroy(plan)
