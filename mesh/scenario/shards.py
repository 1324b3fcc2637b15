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

from typing import Sequence

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


def _cut(order: list[str], count: int) -> list[list[str]]:
    size, extra = divmod(len(order), count)
    shards, at = [], 0
    for number in range(count):
        length = size + (1 if number < extra else 0)
        shards.append(order[at:at + length])
        at += length
    return shards


def plan_shards(names: Sequence[str], links: Sequence[tuple[str, str]], workers: int, *,
                where: str) -> list[list[str]]:
    """``names`` in at most ``workers`` shards (more when a worker would exceed the budget).

    ``workers`` at or above the number of appliances is one appliance per
    shard: the ``--processes`` case.

    Raises:
        InputError: one appliance alone has more links than a worker may hold.
    """
    own: dict[str, int] = {}
    for dialer, listener in links:
        own[dialer] = own.get(dialer, 0) + 1
        own[listener] = own.get(listener, 0) + 1
    for name in names:
        if own.get(name, 0) > MAX_SOCKETS:
            raise InputError(
                where,
                f"{name} has {own[name]} links, more sockets than one worker may hold "
                f"(at most {MAX_SOCKETS} of its 20,000 file descriptors)",
                "spread its links over more appliances",
            )
    order = _listeners_first(names, links)
    count = max(1, min(workers, len(order)))
    while True:
        shards = _cut(order, count)
        if count >= len(order) or max(sockets(s, links) for s in shards) <= MAX_SOCKETS:
            return shards
        count += 1
