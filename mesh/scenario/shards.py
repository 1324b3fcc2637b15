"""Which shard process runs which appliance under ``mesh run --workers N``.

A pure plan, so it is tested as a table. Appliances are put in
listeners-first order (each after every appliance it dials) and cut into N
contiguous runs of near-equal length. Why contiguous: a dial between shards
then always goes from a later shard to an earlier one, so the shards start
in waves exactly as ``--processes`` nodes do (each after those it dials has
reported its port-0 address); only a cycle of dialers, which the topology
rarely has, starts together.

Why a budget: a process may hold at most 20,000 file descriptors (the hard
limit here). Each link end is a socket, so a link within a shard costs two
and a link to another shard one; a plan that would put more than
:data:`MAX_SOCKETS` in one worker uses more workers, and an appliance that
alone has more links than that is one line.
"""

from __future__ import annotations

from typing import Collection, Sequence

from mesh.errors import InputError

__all__ = ["MAX_SOCKETS", "plan_shards", "sockets"]

#: Link sockets one worker may hold: ~9,000 links within a shard, leaving
#: 2,000 of the 20,000 descriptors for listeners, CRL fetches, consoles and stdio.
MAX_SOCKETS = 18_000


def sockets(shard: Sequence[str], links: Sequence[tuple[str, str]]) -> int:
    """The link sockets a worker running ``shard`` holds: one per link end in it."""
    here = set(shard)
    return sum((dialer in here) + (listener in here) for dialer, listener in links)


def _listeners_first(names: Sequence[str], links: Sequence[tuple[str, str]]) -> list[str]:
    dials: dict[str, set[str]] = {name: set() for name in names}
    for dialer, listener in links:
        if dialer in dials and listener in dials:
            dials[dialer].add(listener)
    order: list[str] = []
    placed: set[str] = set()
    waiting = list(names)
    while waiting:
        ready = [name for name in waiting if dials[name] <= placed] or waiting[:1]
        order += ready
        placed.update(ready)
        waiting = [name for name in waiting if name not in placed]
    return order


def _components(names: Sequence[str], links: Sequence[tuple[str, str]]) -> list[list[str]]:
    """The groups of appliances that links join, each in ``names``' order, largest first."""
    parent = {name: name for name in names}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    for dialer, listener in links:
        if dialer in parent and listener in parent:
            parent[root(dialer)] = root(listener)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return sorted(groups.values(), key=len, reverse=True)


def _pack(groups: list[list[str]], degree: dict[str, int], workers: int) -> list[list[str]]:
    """Whole groups into ``workers`` shards, fewest appliances first; more when none has room."""
    shards: list[list[str]] = [[] for _ in range(workers)]
    held = [0] * workers
    for group in groups:
        need = sum(degree.get(name, 0) for name in group)
        room = [i for i in range(len(shards)) if held[i] + need <= MAX_SOCKETS]
        if not room:
            shards.append([])
            held.append(0)
            room = [len(shards) - 1]
        best = min(room, key=lambda i: (len(shards[i]), i))
        shards[best] += group
        held[best] += need
    return [shard for shard in shards if shard]


def _cut(order: list[str], degree: dict[str, int], count: int) -> list[list[str]]:
    """``order`` in runs of near-equal length, a run ending early where the budget says."""
    size, extra = divmod(len(order), count)
    shards: list[list[str]] = []
    current: list[str] = []
    held = 0
    for name in order:
        length = size + (1 if len(shards) < extra else 0)
        need = degree.get(name, 0)
        if current and (len(current) >= length or held + need > MAX_SOCKETS):
            shards.append(current)
            current, held = [], 0
        current.append(name)
        held += need
    if current:
        shards.append(current)
    return shards


def plan_shards(names: Sequence[str], links: Sequence[tuple[str, str]], workers: int, *,
                where: str, alone: Collection[str] = ()) -> list[list[str]]:
    """``names`` in at most ``workers`` shards (more when a worker would exceed the budget).

    ``alone``: appliances that each get a shard of their own, besides the
    ``workers`` (on hosts, those the network policy names: its rules are per
    host).

    ``workers`` at or above the number of appliances is one appliance per
    shard: the ``--processes`` case. When every group of linked appliances
    fits in its fair share (a console and its sensors, four times over),
    groups stay whole and no link crosses between workers; otherwise the
    appliances are cut, listeners first, into contiguous runs.

    Raises:
        InputError: one appliance alone has more links than a worker may hold.
    """
    degree: dict[str, int] = {}
    for dialer, listener in links:
        degree[dialer] = degree.get(dialer, 0) + 1
        degree[listener] = degree.get(listener, 0) + 1
    for name in names:
        if degree.get(name, 0) > MAX_SOCKETS:
            raise InputError(
                where,
                f"{name} has {degree[name]} links, more sockets than one worker may hold "
                f"(at most {MAX_SOCKETS} of its 20,000 file descriptors)",
                "spread its links over more appliances",
            )
    if alone:
        rest = [name for name in names if name not in alone]
        lone = [[name] for name in _listeners_first([n for n in names if n in alone], links)]
        if not rest:
            return lone
        inside = [(d, l) for d, l in links if d not in alone and l not in alone]
        return lone + plan_shards(rest, inside, workers, where=where)
    count = max(1, min(workers, len(names)))
    if count >= len(names):
        return [[name] for name in _listeners_first(names, links)]
    groups = _components(names, links)
    fair = -(-len(names) // count)
    if len(groups) > 1 and len(groups[0]) <= fair:
        return [_listeners_first(shard, links)
                for shard in _pack([_listeners_first(g, links) for g in groups], degree, count)]
    return _cut(_listeners_first(names, links), degree, count)
