"""The shards of an exported fleet and their node configs, written by the ``--workers`` code.

Theory of operation. ``mesh run --workers`` writes each shard's node config
in :class:`~mesh.scenario.processes.ProcessesBackend`; the export uses that
very code (:class:`NodeFiles`, a backend that never starts a process), so a
config means the same on a cluster as on this machine. Three things differ,
each through a hook the backend offers:

- **Where** (:class:`InCluster`, a ``Placement``): appliance *i* of a shard
  listens on port ``NODE_BASE + i`` of its pod (and its console on
  ``API_BASE + i``), on every address; it dials its peers by Service name on
  the hosts backend's ports (``cm-contoso-test:8443``), which the Service
  maps to that pod port.
- **Files** (``_save``): the certificates, keys and chains a config names
  are collected, not written, and named relative to the config, so the
  config and its files sit in one mounted folder (a ConfigMap and the
  shard's Secrets in one projected volume). ``load_shard`` reads them so.
- **Tokens** (``_token_file``): each console's token file is a file of the
  Secret, the same token the driver's inventory names.

The plan. Appliances a ``[[block]]`` names get a shard of their own
(:func:`~.policies.isolated`); the rest are cut by
:func:`~mesh.scenario.shards.plan_shards` into ``workers`` shards, as ``mesh
run --workers`` cuts them. A shard whose config would pass the size of one
ConfigMap (:data:`~.objects.OBJECT_BUDGET`) means more shards: the plan grows
until every config fits, and says so.
"""

from __future__ import annotations

import math
import secrets
from pathlib import Path

from attrs import define, field

from mesh.errors import InputError
from mesh.export.objects import OBJECT_BUDGET
from mesh.export.policies import isolated
from mesh.pki.deployment import Pki
from mesh.scenario.hosts import API_PORT, NODE_PORT
from mesh.scenario.model import Scenario
from mesh.scenario.processes import ProcessesBackend
from mesh.scenario.shards import MAX_SOCKETS, plan_shards

__all__ = ["API_BASE", "CONFIG", "InCluster", "NODE_BASE", "NodeFiles", "Shard", "plan_fleet"]

#: Pod ports: appliance i of a shard listens on NODE_BASE + i, its console on API_BASE + i.
#: Both below the usual ephemeral range (32768-60999), so no outgoing connection holds one.
NODE_BASE = 10000
API_BASE = 21000

#: A shard's node config, in its mounted folder.
CONFIG = "node.toml"


class InCluster:
    """The ``Placement`` of a Kubernetes fleet (see the module docstring)."""

    def __init__(self, shards: list[list[str]], services: dict[str, str]) -> None:
        self.index = {name: i for shard in shards for i, name in enumerate(shard)}
        self.services = services

    def listen(self, name: str) -> str:
        return f"0.0.0.0:{NODE_BASE + self.index[name]}"

    def dial(self, name: str, reported: str | None) -> str:
        return f"{self.services[name]}:{NODE_PORT}"

    def command(self, name: str, argv: list[str]) -> list[str]:
        return argv

    def api_ports(self, consoles: list[str]) -> dict[str, int]:
        return {name: API_BASE + self.index[name] for name in consoles}

    def console_url(self, name: str, port: int) -> str:
        return f"https://{self.services[name]}:{API_PORT}"


class NodeFiles(ProcessesBackend):
    """The ``--workers`` backend's node configs, with their files kept in memory.

    Never started: it has no nursery and no CRL server. Its pods run for the
    whole scenario, their CRLs in memory (a ConfigMap's folder is read-only).
    """

    keeps_crls = False

    def __init__(self, scenario: Scenario, pki: Pki, shards: list[list[str]],
                 placement: InCluster) -> None:
        #: {file name: (bytes, holds a key)} saved since the last ``take``.
        self.saved: dict[str, tuple[bytes, bool]] = {}
        super().__init__(scenario, pki, Path("."), proxy_url=None, sink=None, nursery=None,
                         placement=placement)
        self.shards = shards
        self.shard_of = {name: number for number, shard in enumerate(shards) for name in shard}
        #: What every shard's folder holds: the trust anchors and start CRLs.
        self.common = self.take()

    def _save(self, path: Path, data: bytes, *, private: bool = False) -> None:
        self.saved[str(path)] = (data, private)

    def _token_file(self, name: str) -> str | None:
        return f"{name}.api-token"

    def take(self) -> dict[str, tuple[bytes, bool]]:
        saved, self.saved = self.saved, {}
        return saved


@define(frozen=True, kw_only=True)
class Shard:
    """One pod's appliances, its node config and the files beside it."""

    number: int
    names: tuple[str, ...]
    config: str
    #: {file name: bytes}: certificates, keys, chains, start CRLs, console tokens.
    files: dict[str, bytes] = field(repr=False)
    #: {appliance: (mesh port, API port or None)} in the pod.
    ports: dict[str, tuple[int, int | None]]

    @property
    def key(self) -> str:
        return f"mesh-shard-{self.number}"


def _shards(scenario: Scenario, count: int, where: str) -> list[list[str]]:
    names = [a.name for a in scenario.appliances]
    alone = isolated(scenario.blocks, names)
    rest = [name for name in names if name not in set(alone)]
    planned = plan_shards(rest, scenario.links(), count, where=where) if rest else []
    return [[name] for name in alone] + planned


def _grown(shards: int, workers: int, count: int, *, alone: int) -> str | None:
    """Why ``shards`` are more than the ``workers`` asked for (None: they are not)."""
    if shards <= max(1, workers):
        return None
    reasons = []
    if alone:
        reasons.append(f"the {alone} appliances [[block]] rules name run alone")
    if count > workers:
        reasons.append("each shard's node config must fit one ConfigMap")
    if shards - alone > count:
        reasons.append(f"a worker holds at most {MAX_SOCKETS:,} link sockets")
    return f"{shards} shards, not {workers}: " + "; ".join(reasons)


def plan_fleet(scenario: Scenario, pki: Pki, services: dict[str, str], *, workers: int,
               tokens: dict[str, str] | None = None) -> tuple[list[Shard], str | None]:
    """The shards and their configs; and a line saying why there are more than asked, or None.

    ``tokens``: {console: its API token} (made here when not given).

    Raises:
        InputError: an appliance's config alone passes the budget, or a shard
            would need more ports than its pod has below the ephemeral range.
    """
    where = scenario.source or scenario.name
    names = [a.name for a in scenario.appliances]
    count = max(1, workers)
    consoles = set(scenario.consoles())
    tokens = tokens if tokens is not None else {
        name: secrets.token_urlsafe(32) for name in scenario.consoles()
    }
    while True:
        plan = _shards(scenario, count, where)
        biggest = max(len(shard) for shard in plan)
        if biggest > API_BASE - NODE_BASE:
            raise InputError(where, f"a shard of {biggest} appliances needs more ports than a pod "
                             f"has below {NODE_BASE + 2 * (API_BASE - NODE_BASE)}",
                             "give more --workers")
        writer = NodeFiles(scenario, pki, plan, InCluster(plan, services))
        shards = []
        for number, members in enumerate(plan):
            config = writer.config_text(members)
            files = {**writer.common, **writer.take()}
            shards.append(Shard(
                number=number, names=tuple(members), config=config,
                files={**{n: data for n, (data, _) in files.items()},
                       **{f"{n}.api-token": (tokens[n] + "\n").encode() for n in members if n in consoles}},
                ports={n: (NODE_BASE + i, API_BASE + i if n in consoles else None)
                       for i, n in enumerate(members)},
            ))
        size = max(len(s.config.encode()) for s in shards)
        if size <= OBJECT_BUDGET:
            return shards, _grown(len(plan), workers, count, alone=len(isolated(scenario.blocks, names)))
        if all(len(members) == 1 for members in plan):
            raise InputError(where, f"one appliance's node config is {size:,} bytes, more than "
                             f"one ConfigMap may hold ({OBJECT_BUDGET:,})", "give it fewer peers")
        count = max(count + 1, math.ceil(count * size / OBJECT_BUDGET))
