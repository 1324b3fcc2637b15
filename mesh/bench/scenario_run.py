"""A user's scenario end to end: ``mesh run -q`` of 1,000 sensors, twice, against its floor.

The other measurements time parts of mesh; this one times what a user waits
for. ``big_scenario.toml`` (beside this module) is the shape users run: a
management console, an HA console dialing it and 1,000 sensors dialing the
console, then four steps (revoke one sensor, the CRL server down, eight days
on so every cached CRL is past its next update, the server back) and one
expectation (the revoked sensor's link halted). ``--quick`` runs the same file
with 20 sensors.

It runs as a user runs it: ``python -m mesh run -q FILE`` in a child process,
twice, with ``MESH_KEY_CACHE`` naming a new, empty directory. The first run
generates and stores every key (the cost of a user's first run); the second
finds them all there (every later run). Measured for each: wall time, which
includes the interpreter's start-up and the imports as a user's does, and the
child's CPU (its own and its key workers', from ``RUSAGE_CHILDREN``). A run
that does not exit 0 (a broken run, or the expectation not holding) fails the
measurement: a figure of a run that did not do its work would mean nothing.
Under ``--profile DIR`` the second run runs under cProfile in its own process
(``DIR/scenario-second-run.pstats``, summarized in the log): the harness's
profile of this process would show only the wait for the child.

The floor is what the TLS of that run's links costs at the least, measured
in the same bench run: links x (steps + 1) x the CPU of one mutual-TLS
handshake with both ends in one process (the engine measurement's
``tls_pair_floor``, in a child process of its own). Each link comes up at the
start and may come up again after every step, and one process does both ends
of every handshake. It leaves out key generation, certificates, CRLs and
validation, so no run can reach it; the target asks the warm run to stay
within twice it.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

from attrs import define

import mesh
from mesh.bench.context import Bench
from mesh.bench.engine import handshake_floor
from mesh.bench.profiling import summarize
from mesh.bench.targets import Key
from mesh.pki.key_cache import ENVIRONMENT, KeyCache
from mesh.roles import Role
from mesh.scenario.load import load_scenario

__all__ = ["NAME", "SCENARIO", "run", "scenario_file"]

NAME = "scenario"

#: The scenario file, packaged with the bench.
SCENARIO = "big_scenario.toml"

#: The sensors' table's count line; ``--quick`` rewrites it.
_COUNT = re.compile(r"^count = \d+$", re.MULTILINE)

#: A full-size run takes about a minute; this only stops one that hangs.
_TIMEOUT = 900.0


@define(frozen=True, kw_only=True)
class Play:
    """One ``mesh run -q`` of the scenario, and the key cache it left."""

    wall: float
    cpu: float
    keys_stored: int
    #: SHA-256 of the cache's RSA-2048 file after the run ("" if there is none)
    cache_digest: str


def packaged_scenario(name: str, directory: Path, count: re.Pattern[str], lines: int,
                      replacement: int | None = None) -> Path:
    """Write the bench's scenario file ``name`` into ``directory``, its ``count`` lines
    (exactly ``lines`` of them) set to ``replacement`` if given.

    A copy, even at full size, so both sizes run the same way; the packaged
    file is read through ``importlib.resources`` so an installed mesh finds it.
    """
    text = resources.files("mesh.bench").joinpath(name).read_text(encoding="utf-8")
    if replacement is not None:
        text, found = count.subn(f"count = {replacement}", text)
        if found != lines:
            raise RuntimeError(f"{name} has {found} count lines; the bench rewrites {lines}")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def scenario_file(directory: Path, sensors: int | None = None) -> Path:
    """Write the bench's scenario into ``directory``, with ``sensors`` sensors if given."""
    return packaged_scenario(SCENARIO, directory, _COUNT, 1, sensors)


def _environment(cache: Path) -> dict[str, str]:
    """This process's environment, the key cache, and this mesh first on the path.

    The child must run the mesh being measured, not whichever one the
    interpreter would find on its own (another checkout's editable install).
    """
    here = str(Path(mesh.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return dict(
        os.environ,
        **{ENVIRONMENT: str(cache), "PYTHONPATH": here + (os.pathsep + path if path else "")},
    )


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def play(scenario: Path, cache: Path, *, profile: Path | None = None) -> Play:
    """Run ``mesh run -q scenario`` as a user would, the key cache at ``cache``.

    ``profile``: run it under cProfile, its stats written there (the
    figures of such a run are the profiler's, not the run's).

    Raises RuntimeError with the end of the run's output when it does not
    exit 0.
    """
    profiler = [] if profile is None else ["-m", "cProfile", "-o", str(profile)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, *profiler, "-m", "mesh", "run", "-q", str(scenario)],
            capture_output=True, text=True, check=False, env=_environment(cache), timeout=_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"mesh run -q {scenario.name} did not finish in {_TIMEOUT:g} s") from None
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        # An expectation that fails is reported on stdout, a crash on stderr.
        raise RuntimeError(
            f"mesh run -q {scenario.name} exited {done.returncode}:\n"
            + _tail(done.stderr or done.stdout)
        )
    keys = KeyCache(cache)
    try:
        digest = hashlib.sha256((cache / "rsa-2048.der").read_bytes()).hexdigest()
    except FileNotFoundError:
        digest = ""
    return Play(
        wall=wall,
        cpu=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        keys_stored=len(keys.stored(2048)),
        cache_digest=digest,
    )


def run(bench: Bench) -> None:
    path = scenario_file(bench.workdir / "scenario", bench.pick(None, 20))
    scenario = load_scenario(path)
    sensors = sum(1 for a in scenario.appliances if a.role == Role.SENSOR.value)
    links = len(scenario.links())
    steps = len(scenario.steps)
    label = f"{sensors:,} sensors"
    bench.log(f"  {path}: {len(scenario.appliances):,} appliances, {links:,} links, {steps} steps")

    # A directory of its own under the workdir, new even when --workdir is reused.
    with tempfile.TemporaryDirectory(prefix="key-cache-", dir=bench.workdir) as tmp:
        cache = Path(tmp)
        first = play(path, cache)
        # Under --profile, the run users repeat is the one profiled.
        where = None if bench.profile is None else bench.profile / f"{NAME}-second-run.pstats"
        if where is not None:
            where.parent.mkdir(parents=True, exist_ok=True)
        second = play(path, cache, profile=where)
    if where is not None:
        bench.log(f"  the second run of `mesh run -q {path.name}`, profiled in its own process:")
        summarize(where, bench.log)

    pairs = bench.pick(300, 20)
    tries = bench.pick(3, 1)
    handshake = handshake_floor(bench, pairs, tries=tries)
    floor = links * (steps + 1) * handshake

    cold = "first run (empty key cache)"
    warm = "second run (warm key cache)"
    bench.record(NAME, f"{label}: {cold}", first.wall, "s", "wall time of `mesh run -q`")
    bench.record(NAME, f"{label}: {cold}, child CPU", first.cpu, "s", "its key workers included")
    bench.record(NAME, f"{label}: {cold}, keys generated", first.keys_stored, "keys",
                 "RSA-2048 keys the cache holds after it")
    bench.record(NAME, f"{label}: {warm}", second.wall, "s", "wall time of `mesh run -q`")
    bench.record(NAME, f"{label}: {warm}, child CPU", second.cpu, "s")
    bench.record(
        NAME, f"{label}: {warm}, keys generated", second.keys_stored - first.keys_stored, "keys",
        "cache file unchanged" if second.cache_digest == first.cache_digest else "cache file rewritten",
    )
    bench.record(NAME, "CPU per mutual-TLS handshake, both ends here", handshake * 1000, "ms",
                 f"the engine's floor: the lowest of {tries} run(s) of {pairs:,} pairs, each in a child process")
    bench.record(
        NAME, f"{label}: floor", floor, "s",
        f"{links:,} links x ({steps} steps + 1) x {handshake * 1000:.2f} ms",
    )
    second_name = Key.SCENARIO_SECOND[1] if sensors == 1_000 else f"{label}: {warm} / floor"
    bench.record(NAME, f"{label}: {cold} / floor", first.wall / floor, "x")
    bench.record(NAME, second_name, second.wall / floor, "x")
