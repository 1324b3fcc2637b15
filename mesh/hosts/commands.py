"""``mesh hosts clean``: what a ``mesh run --hosts`` killed with SIGKILL left behind.

A run removes its namespaces itself on every way out it sees (a result, an
error, Ctrl-C); SIGKILL is the one it cannot see. Its nodes then keep
running in their namespaces, which is why cleaning ends them first. A run
that is still going is left alone, and named (:mod:`mesh.hosts.run_lock`).
"""

from __future__ import annotations

import argparse

import trio

from mesh.errors import InputError
from mesh.hosts import netns

__all__ = ["clean_command"]


def clean_command(args: argparse.Namespace) -> int:
    missing = netns.missing_privilege()
    if missing is not None:
        raise InputError("mesh hosts clean", missing, "run it as root")
    run = getattr(args, "run", None)
    if run is not None and not netns.RUN_ID.fullmatch(run):
        raise InputError("--run", f"{run!r} is not a run id",
                         "give the 6 hex digits after mesh- in its namespaces' names")
    cleaned = trio.run(netns.clean, run)
    for line in cleaned.removed:
        print(f"removed {line}")
    for run_id, pid in cleaned.kept.items():
        by = f" (pid {pid})" if pid else ""
        print(f"kept run {run_id}: its mesh run{by} is still going; stop it and it removes "
              "its namespaces itself")
    if not cleaned.removed and not cleaned.kept:
        print("nothing to clean: no network namespace or /etc/netns folder is named "
              f"mesh-{run or '<6 hex digits>'}-")
    return 0
