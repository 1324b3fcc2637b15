"""``mesh node --config FILE.toml``: one appliance as its own OS process, on real ports.

Two or more such processes on one machine form a mesh, the first step to
spreading appliances across hosts. A shard config (``[[appliance]]`` tables,
:func:`mesh.node_config.load_shard`) runs several appliances in one process
as one :class:`ShardMesh` (:func:`run_shard`). The process prints every event as one JSON
object per line on stdout (``appliance-started`` carries the address it
listens on, useful with port 0) and runs until it is killed; SIGTERM or
SIGINT stops it cleanly (``appliance-stopped``, exit status 0).

The config file is read by :mod:`mesh.node_config` and documented in :data:`mesh.cli.node.CONFIG` (what ``mesh node
--help`` prints, and the README).

With ``api`` on, an ``api-listening`` event follows ``appliance-started`` and
carries the console's URL (``https://127.0.0.1:PORT``) and its token file
(``api_token_file``, default ``<name>.api-token`` beside the config, 0600,
a new token at every start unless the file already holds one); ``curl --cacert ROOT URL/api/v1/status``
answers once the certificate is dated on the wall clock (``start`` near
now), ``curl -k`` always. Changes need ``-H "Authorization: Bearer $(cat
FILE)"``.

The console also moves the node's emulated clock (``POST /api/v1/clock``)
and stops and starts its appliance (``PUT /api/v1/running``) without
stopping the process (:mod:`mesh.node_control`): what a scenario driver
reaching running nodes uses. A shard's appliances share one clock.

A node caches each CRL until its nextUpdate, as real appliances do; ``curl
-k -X POST URL/api/v1/crls/refresh`` makes it refetch them and judge its live
links afresh now (with the token header) (``Appliance.refresh_crls``: the links it dials through
this node's own ``RetryGate``, those other nodes dial judged in place).

Which end dials is the config's choice: with processes there is no shared
topology to choose one dialer per pair, so list each link in one config only.
Relative paths are relative to the config file. Every config problem is one
line naming the file and key, all of them at once, and exit status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Sequence, TextIO

import trio

from mesh.appliances.appliance import Appliance, RetryGate
from mesh.appliances.mesh import Mesh
from mesh.appliances.spec import LinkPair, Role
from mesh.clock import EmulatedClock
from mesh.consoles import open_console, private_folder
from mesh.errors import InputError
from mesh.eventlog import EventLog
from mesh.net.links import LinkBook
from mesh.node_control import LoneControl, ShardControl, ShardRefresh

from mesh.node_config import NodeConfig, PeerAddress, ShardConfig, load_config, load_shard

__all__ = ["NodeConfig", "PeerAddress", "ShardConfig", "load_config", "load_shard", "run_node",
           "run_shard"]


class NodeDirectory:
    """What a lone appliance knows about others: its config's peers."""

    def __init__(self, config: NodeConfig) -> None:
        self._peers = {p.name: p for p in (*config.connects_to, *config.forwards_to)}
        self._name = config.spec.name
        self._hostname = config.spec.hostname or config.spec.name
        self._accept_from = config.accept_from

    def address_of(self, name: str) -> tuple[str, int] | None:
        peer = self._peers.get(name)
        return (peer.host, peer.port) if peer else None

    def role_of(self, name: str) -> Role | None:
        peer = self._peers.get(name)
        return peer.role if peer else None

    def is_local(self, name: str) -> bool:
        return name == self._name

    def expected_dialers(self, listener: str) -> Sequence[str]:
        return self._accept_from

    def speaks_mesh(self, name: str) -> bool:
        peer = self._peers.get(name)
        return peer.speaks_mesh if peer else True

    def hostname_of(self, name: str) -> str:
        if name == self._name:
            return self._hostname
        peer = self._peers.get(name)
        return peer.hostname if peer else name


# -- loading --


async def run_node(
    config: NodeConfig,
    *,
    out: TextIO | None = None,
    task_status: trio.TaskStatus[Appliance] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one appliance until cancelled, events as JSON lines on ``out``.

    With ``config.api_port`` set, its REST API and web console serve from the
    moment it has started; the ``api-listening`` event carries their URL.
    """
    clock = EmulatedClock(config.start)
    events = EventLog(out if out is not None else sys.stdout)
    dials = [LinkPair(dialer=config.spec.name, listener=p.name) for p in config.connects_to]
    dials += [
        LinkPair(dialer=config.spec.name, listener=p.name, mutual=False) for p in config.forwards_to
    ]
    appliance = Appliance(
        config.spec,
        clock=clock,
        events=events,
        book=LinkBook(),
        directory=NodeDirectory(config),
        gate=RetryGate(clock, dial_slots=config.settings.dial_slots),
        dials=dials,
        settings=config.settings,
    )
    async with trio.open_nursery() as nursery:
        # In a scope of its own, so the console can stop and start it (PUT /api/v1/running).
        control = LoneControl(appliance, clock=clock, events=events, nursery=nursery)
        await control.start()
        if config.api_port is not None:
            from mesh.web.mesh_backend import ApplianceConsole

            # After the appliance's start: a first start makes the
            # self-signed certificate the console presents.
            token_file = config.api_token_file or private_folder(nursery) / "api-token"
            await open_console(
                nursery, ApplianceConsole(appliance), events=events, now=clock.now,
                operator_cas=config.operator_cas, admin_password=config.admin_password,
                token_file=token_file, host=config.spec.host, port=config.api_port,
                where=f"{config.source or 'node config'}: api_port", control=control,
            )
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        task_status.started(appliance)


class ShardMesh(Mesh):
    """A ``Mesh`` that also knows what its config says of appliances elsewhere.

    A listener here may be dialled from other shards too: those dialers are
    its config's ``accept_from``, so a listener with one dialer in all
    requires that dialer's name, as in one in-process mesh, and a listener
    with several requires none (a lone ``Mesh`` would see only its own).
    """

    def __init__(self, shard: ShardConfig, out: TextIO | None) -> None:
        super().__init__(clock=EmulatedClock(shard.start),
                         events=EventLog(out if out is not None else sys.stdout),
                         settings=shard.nodes[0].settings)
        self._accept_from = {n.spec.name: n.accept_from for n in shard.nodes}
        self._roles = {p.name: p.role for p in shard.external()}
        self._merged: dict[str, tuple[str, ...]] = {}
        for node in shard.nodes:
            self.add(node.spec)
        for peer in shard.external():
            self.add_external(peer.name, peer.host, peer.port, hostname=peer.hostname,
                              speaks_mesh=peer.speaks_mesh)

    def expected_dialers(self, listener: str) -> Sequence[str]:
        # Asked at every handshake: merged once (its appliances are all added in __init__),
        # not per call, since a console's list names every sensor.
        merged = self._merged.get(listener)
        if merged is None:
            here = super().expected_dialers(listener)
            elsewhere = self._accept_from.get(listener, ())
            merged = self._merged[listener] = tuple(dict.fromkeys((*here, *elsewhere)))
        return merged

    def role_of(self, name: str) -> Role | None:
        return super().role_of(name) or self._roles.get(name)


async def run_shard(
    shard: ShardConfig,
    *,
    out: TextIO | None = None,
    task_status: trio.TaskStatus[Mesh] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a shard's appliances in this process until cancelled, events as JSON lines.

    One :class:`ShardMesh`: each appliance fetches its own CRLs and keeps its
    own state; links between them go over loopback TCP within this process,
    links to other shards to the addresses the config gives.
    """
    mesh = ShardMesh(shard, out)
    refresh = ShardRefresh(mesh)
    async with trio.open_nursery() as nursery:
        await nursery.start(mesh.run)
        for node in shard.nodes:
            if node.api_port is None:
                continue
            from mesh.web.mesh_backend import ApplianceConsole

            token_file = node.api_token_file or private_folder(nursery) / f"{node.spec.name}.api-token"
            await open_console(
                nursery, ApplianceConsole(mesh.appliance(node.spec.name), refresh=refresh.refresh,
                                 process_links=mesh.links),
                events=mesh.events,
                now=mesh.clock.now, token_file=token_file, host=node.spec.host,
                operator_cas=node.operator_cas, admin_password=node.admin_password,
                port=node.api_port,
                where=f"{node.source or 'node config'}: {node.spec.name}: api_port",
                control=ShardControl(mesh, node.spec.name),
            )
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        task_status.started(mesh)


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    """SIGTERM or SIGINT: stop cleanly, so the last line is ``appliance-stopped``."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _command(args: argparse.Namespace) -> int:
    shard = load_shard(args.config)
    try:
        if len(shard.nodes) == 1:
            trio.run(run_node, shard.nodes[0])
        else:
            trio.run(run_shard, shard)
    except BaseExceptionGroup as group:
        # A port in use surfaces from inside the appliance's nursery: still one line.
        error = _first(group, InputError)
        if error is None:
            raise
        raise error from None
    return 0


def _first(group: BaseExceptionGroup, cls: type[InputError]) -> InputError | None:
    for exc in group.exceptions:
        if isinstance(exc, cls):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first(exc, cls)
            if found is not None:
                return found
    return None
