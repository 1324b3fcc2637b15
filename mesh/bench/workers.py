"""Past one process: 20,000 sensors over four worker processes, against two cores' floor.

``workers_scenario.toml`` (beside this module; not one of ``scenarios/``)
is the fleet no single process can hold here: four management consoles
with 5,000 sensors each, the first paired with an HA console (20,001 links,
40,002 socket ends against a 20,000-descriptor limit per process), and one
step (revoke one sensor) whose re-check judges every link again. It runs as
``mesh run --workers 4`` does (:func:`mesh.scenario.processes.run_in_processes`
in this process, the shards as ``mesh node`` child processes), with one
difference the issue allows: the appliances' RSA keys come from a small pool
(every certificate stays unique), so 20,000 key generations do not swamp
the measurement. ``--quick`` runs 5 sensors per console.

Measured:

- **bring-up**: from the first ``appliance-started`` event a worker reports
  until every link has its first outcome (the driver's "started" milestone);
- **each step**: from the end of the previous milestone until the step's
  re-check has settled;
- **RSS per link**: the workers' resident memory, summed, over the links
  (read once the last step settled);
- **the handshake rate during bring-up as a share of two cores' floor**:
  links up per second, over what two cores could do if each link cost only
  its mutual-TLS handshake with both ends in one process (``handshake_floor``:
  the engine measurement's ``tls_pair_floor``, CPU per pair, the lowest of
  three child processes). Two cores,
  because that is the machine: the workers share them.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path
from typing import Any

import trio

from mesh.bench.context import Bench
from mesh.bench.engine import handshake_floor
from mesh.bench.procstat import rss_bytes
from mesh.bench.scenario_run import packaged_scenario
from mesh.bench.targets import Key
from mesh.eventlog import EventLog
from mesh.events import Event
from mesh.pki.issue import KeySource
from mesh.scenario.load import load_scenario

__all__ = ["NAME", "SCENARIO", "run", "scenario_file"]

NAME = "workers"

#: The scenario file, packaged with the bench.
SCENARIO = "workers_scenario.toml"

#: The sensors' tables' count lines (the consoles' ``count = 4`` stays).
_SENSORS = re.compile(r"^count = 5000$", re.MULTILINE)

#: Worker processes: what the fleet needs under the descriptor limit.
WORKERS = 4

#: RSA keys the appliances share (certificates stay unique).
_KEY_POOL = 16

#: Real seconds the start and each step may take: 20,000 links on two shared
#: cores take minutes; this only stops a run that hangs.
_SETTLE = 1200.0


def scenario_file(directory: Path, per_console: int | None = None) -> Path:
    """Write the bench's scenario into ``directory``, with ``per_console`` sensors per console."""
    return packaged_scenario(SCENARIO, directory, _SENSORS, 4, per_console)


class _Arrivals(EventLog):
    """The run's event log, noting when the first worker reported an appliance started."""

    def __init__(self) -> None:
        super().__init__(window=1_000)
        self.first_started: float | None = None

    def append(self, event: Event) -> Event:
        if self.first_started is None and event.kind == "appliance-started":
            self.first_started = time.perf_counter()
        return super().append(event)


def _worker_pids() -> list[int]:
    """This process's children that run ``mesh node`` (the shards)."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = stat.rsplit(")", 1)[1].split()[1]
        if ppid == me and b"node" in cmdline:
            found.append(int(entry.name))
    return found


async def _play(path: Path, keys: KeySource, workers: int) -> dict[str, Any]:
    from mesh.scenario.processes import run_in_processes

    scenario = load_scenario(path)
    arrivals = _Arrivals()
    marks: list[tuple[str, float]] = []
    facts: dict[str, Any] = {"links": len(scenario.links())}

    def progress(kind: str, record: Any, run: Any) -> None:
        marks.append((kind, time.perf_counter()))
        if run is not None:
            rows = run.links()
            facts.setdefault(f"up after {kind}", []).append(sum(1 for row in rows if row.state == "up"))
            # Besides the one halted on purpose: a link down or halted for
            # anything else is a failure of the run, not a figure.
            odd = [row for row in rows if row.state != "up" and row.code != "revoked"]
            facts.setdefault("not up", []).append(len(odd))
            if odd:
                facts.setdefault("first not up", f"{odd[0].dialer} -> {odd[0].listener}: "
                                 f"{odd[0].state} {odd[0].code or ''} {odd[0].message}")
        if kind == "step" and record is not None and record.index == len(scenario.steps):
            pids = _worker_pids()
            facts["workers_seen"] = len(pids)
            facts["rss"] = sum(rss_bytes(pid) for pid in pids)

    began = time.perf_counter()
    result = await run_in_processes(scenario, keys=keys, workers=workers, events=arrivals,
                                    progress=progress, settle_timeout=_SETTLE)
    facts["ok"] = result.ok
    facts["total_seconds"] = time.perf_counter() - began
    started = dict(marks).get("started")
    if arrivals.first_started is not None and started is not None:
        facts["bring_up_seconds"] = started - arrivals.first_started
        facts["before_nodes_seconds"] = arrivals.first_started - began
    previous = started
    facts["step_seconds"] = []
    for kind, at in marks:
        if kind == "step" and previous is not None:
            facts["step_seconds"].append(at - previous)
            previous = at
    return facts


def run(bench: Bench) -> None:
    per_console = bench.pick(5_000, 5)
    tries = bench.pick(3, 1)
    cpu_per_pair = handshake_floor(bench, bench.pick(300, 50), tries=tries)
    bench.record(NAME, "floor: CPU per mutual-TLS handshake, both ends here", cpu_per_pair * 1000, "ms",
                 f"measured in this run: the lowest of {tries} child process(es)")
    pool = [bench.keys(2048) for _ in range(_KEY_POOL)]
    cycle = itertools.cycle(pool)
    path = scenario_file(bench.workdir / NAME, per_console)
    facts = trio.run(_play, path, lambda bits: next(cycle), WORKERS)
    links = facts["links"]
    label = f"{4 * per_console:,} sensors over {WORKERS} workers"
    if not facts["ok"]:
        bench.log(f"  {label}: the scenario's expectation did not hold: {facts}")
    not_up = sum(facts.get("not up", []))
    bench.record(NAME, f"{label}: links neither up nor the revoked one, summed over milestones",
                 not_up, "links", facts.get("first not up", "every link up at every milestone"))
    bench.record(NAME, f"{label}: links", links, "links", f"up after start: {(facts.get('up after started') or ['?'])[0]}")
    bench.record(NAME, f"{label}: keys, PKI and configs before the first node", facts.get(
        "before_nodes_seconds", float("nan")), "s")
    bring_up = facts.get("bring_up_seconds")
    if bring_up:
        bench.record(NAME, f"{label}: bring-up", bring_up, "s",
                     "first appliance-started until every link has its first outcome")
        rate = links / bring_up
        bench.record(NAME, f"{label}: links up per second during bring-up", rate, "links/s")
        share = rate * cpu_per_pair / 2
        name = Key.WORKERS_SHARE[1] if per_console == 5_000 else f"{label}: bring-up rate / two cores' floor"
        bench.record(NAME, name, share, "x",
                     f"two cores' floor: {2 / cpu_per_pair:,.0f} handshakes/s at {cpu_per_pair * 1000:.2f} ms each")
    for index, seconds in enumerate(facts["step_seconds"], 1):
        bench.record(NAME, f"{label}: step {index} (re-check of every link)", seconds, "s")
    if facts.get("rss"):
        bench.record(NAME, f"{label}: workers' RSS per link", facts["rss"] / links / 1000, "kB",
                     f"summed over {facts.get('workers_seen')} worker processes after the last step")
    bench.record(NAME, f"{label}: whole run", facts["total_seconds"], "s")
