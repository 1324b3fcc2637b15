"""Engine figures: sensors brought up to one management console in one process.

For 100, 1,000 and 5,000 sensors: a PKI (``mesh.pki.deployment.Pki``) whose CRLs
a real ``CrlServer`` publishes, one ``Mesh`` with every sensor dialing one
console, all started at once. Measured: the time from ``Mesh.run`` starting
until every link is up (validated at both ends), and the growth of the
process's resident memory per link; each beside the floor measured in the
same run (a child process handshaking pairs of TLS streams with nothing
else): the time over sensors x the CPU of one handshake, both ends here, and
the memory beyond what one idle handshaken pair holds. The targets read those
two ratios, never a time or a size on its own. Beside the floor, the bare link
(:mod:`mesh.bench.bare_link`): what a link's transport alone costs, a figure no
target reads. At 1,000 sensors, the CRL fetches: how
many HTTP requests reached the CRL server per URL, and how many times any one
appliance fetched the same URL (its own single flight: one is the goal, as
each appliance keeps its own CRL cache).

Keys: every certificate is unique, but the sensors' RSA keys come from a
small pool (generating 5,000 RSA keys would take minutes and measure nothing
the engine does).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import gc
import itertools
import multiprocessing
import resource
import sys
import time
from collections import Counter
from typing import Literal, Sequence, TypedDict, overload

import trio

from mesh.appliances import ApplianceSpec, Mesh
from mesh.bench.bare_link import bare_links
from mesh.bench.context import Bench
from mesh.bench.procstat import rss_bytes
from mesh.bench.targets import Key
from mesh.events import CrlFetched
from mesh.net.crl_server import CrlServer
from mesh.net.links import LinkState
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.issue import KeySource

__all__ = ["NAME", "run", "bring_up", "floor_in_child", "handshake_floor", "tls_pair_floor"]

NAME = "engine"

#: The bare link's figures (:mod:`mesh.bench.bare_link`): no target reads
#: them; they tell how much of twice the floor a link's transport takes.
BARE_LINK = "bare link: CPU per link, both ends here"
BARE_LINK_RATIO = "bare link / floor"

_KEY_POOL = 16


class BringUp(TypedDict, total=False):
    """What ``bring_up`` found, filled in as it goes."""

    sensors: int
    pki_seconds: float
    add_seconds: float
    listening_seconds: float
    up_seconds: float
    up: int
    states: dict[str, int]
    rss_per_link: float
    tasks_per_link: float
    max_fetches_one_appliance_one_url: int
    console_fetches: int
    server_requests: dict[str, int]


class Floor(TypedDict):
    """What ``tls_pair_floor`` found."""

    rss_per_pair: float
    cpu_per_pair: float


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


class TooSlow(Exception):
    """Setting up the mesh took longer than the run can spend on it."""


async def bring_up(
    bench: Bench | _KeysOnly, sensors: int, *, deadline: float = 150.0, add_budget: float = 30.0
) -> BringUp:
    """Run one console and ``sensors`` sensors until every link is up; return the facts.

    Raises TooSlow when adding the appliances to the ``Mesh`` alone exceeds
    ``add_budget`` seconds (the figure is then "not measured", with why).
    """
    pool = [bench.keys(2048) for _ in range(_KEY_POOL)]
    cycle = itertools.cycle(pool)
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    server = CrlServer()
    facts: BringUp = {"sensors": sensors}
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        names = [f"sensor-{i:05d}" for i in range(sensors)]
        started = time.perf_counter()
        pki = Pki.build(
            at=at,
            appliances=[ApplianceRequest(name="console", role="management-console")]
            + [ApplianceRequest(name=n, role="sensor") for n in names],
            crl_base_url=f"{server.base_url}/crl",
            keys=lambda bits: next(cycle),
        )
        server.set_documents(pki.crl_documents(at=at))
        facts["pki_seconds"] = time.perf_counter() - started
        trust = tuple(pki.trust_roots())

        def spec(name: str, role: str, connects_to: Sequence[str] = ()) -> ApplianceSpec:
            material = pki.appliances[name]
            from mesh.pki.issue import Issued

            identity = Issued(cert=material.cert, key=material.issued.key, chain=material.chain)
            return ApplianceSpec(
                name=name, role=role, identity=identity, trust=trust, connects_to=connects_to
            )

        # Memory baseline before the Mesh exists: a link's cost includes its
        # appliance objects, and heap left over from building them must not
        # be mistaken for room the links did not need.
        gc.collect()
        rss0 = rss_bytes()
        mesh = Mesh(start=at, pki=pki, crl_server=server)
        started = time.perf_counter()
        mesh.add(spec("console", "management-console"))
        for done, name in enumerate(names, 1):
            mesh.add(spec(name, "sensor", connects_to=["console"]))
            if time.perf_counter() - started > add_budget:
                too_slow = f"Mesh.add of {done:,} of {sensors:,} sensors took over {add_budget:g} s"
                nursery.cancel_scope.cancel()
                break
        else:
            too_slow = ""
        facts["add_seconds"] = time.perf_counter() - started
        if too_slow:
            await trio.lowlevel.checkpoint()  # the cancellation ends the nursery here
        started = time.perf_counter()
        await nursery.start(mesh.run)
        facts["listening_seconds"] = time.perf_counter() - started
        up = 0
        while time.perf_counter() - started < deadline:
            # Count from the link records, not mesh.links(): building 5,000
            # LinkStatus objects every poll took a visible share of the loop
            # the links are coming up on.
            up = sum(1 for link in mesh.book if link.state is LinkState.UP)
            if up == sensors:
                break
            await trio.sleep(0.05)
        facts["up_seconds"] = time.perf_counter() - started
        facts["up"] = up
        facts["states"] = {s.value: n for s, n in Counter(l.state for l in mesh.links()).items()}
        gc.collect()
        facts["rss_per_link"] = (rss_bytes() - rss0) / max(1, sensors)
        mesh_task = next(t for t in nursery.child_tasks if t.name.endswith("Mesh.run"))
        facts["tasks_per_link"] = _tasks_under(mesh_task) / max(1, sensors)
        fetched = mesh.events.of(CrlFetched)
        per_appliance = Counter((e.appliance, e.url) for e in fetched)
        facts["max_fetches_one_appliance_one_url"] = max(per_appliance.values(), default=0)
        facts["console_fetches"] = sum(n for (a, _u), n in per_appliance.items() if a == "console")
        facts["server_requests"] = {p: server.requests(p) for p in server.paths}
        nursery.cancel_scope.cancel()
    if too_slow:
        raise TooSlow(too_slow)
    return facts


async def tls_pair_floor(bench: Bench | _KeysOnly, pairs: int) -> Floor:
    """What one link's TLS alone costs, both ends in this process: the floor under a link.

    ``pairs`` mutual-TLS connections over real loopback sockets, each end a
    ``TlsStream`` on a shared context with its own credentials (as the engine
    makes them), handshaken and kept open idle. Measured: RSS growth and CPU
    per pair. Nothing else of a link is here (no validation, events, tasks
    beyond the handshake), so a link can cost no less than this.
    """
    from mesh.net import tls
    from mesh.pki.issue import CertificateAuthority

    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    root = CertificateAuthority.root("Floor Root CA", not_before=at, key=bench.keys(2048))
    issuing = root.intermediate("Floor Issuing CA", not_before=at, key=bench.keys(2048))
    server = issuing.issue("console.floor.test", not_before=at, key=bench.keys(2048))
    client = issuing.issue("sensor.floor.test", not_before=at, key=bench.keys(2048))
    trust = [root.cert]
    server_creds = tls.Credentials(server.cert, server.key)
    client_creds = tls.Credentials(client.cert, client.key)
    server_ctx = tls.shared_context(server_creds, server=True, chain=server.chain, trust=trust)
    client_ctx = tls.shared_context(client_creds, server=False, chain=client.chain, trust=trust)
    kept: list[tuple[tls.TlsStream, tls.TlsStream]] = []
    gc.collect()
    rss0, cpu0 = rss_bytes(), time.process_time()
    for _ in range(pairs):
        a, b = trio.socket.socketpair()
        ours = tls.TlsStream.client(trio.SocketStream(a), client_ctx, credentials=client_creds)
        theirs = tls.TlsStream.server(trio.SocketStream(b), server_ctx, credentials=server_creds)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ours.do_handshake)
            nursery.start_soon(theirs.do_handshake)
        kept.append((ours, theirs))
    cpu = time.process_time() - cpu0
    gc.collect()
    facts: Floor = {"rss_per_pair": (rss_bytes() - rss0) / pairs, "cpu_per_pair": cpu / pairs}
    for ours, theirs in kept:
        await ours.aclose_forcefully()
        await theirs.aclose_forcefully()
    return facts


def _tasks_under(task: trio.lowlevel.Task) -> int:
    """How many tasks run under ``task`` (itself included)."""
    return 1 + sum(_tasks_under(child) for nursery in task.child_nurseries
                   for child in nursery.child_tasks)


class _KeysOnly:
    """What ``bring_up`` and ``tls_pair_floor`` use of a Bench, in a child process."""

    def __init__(self) -> None:
        from mesh.pki.keys import KeyPool

        self.keys: KeySource = KeyPool().cursor()


def _in_this_process(
    kind: str, size: int, bench: Bench | _KeysOnly | None = None
) -> Floor | BringUp | float:
    _raise_fd_limit(4 * size + 256)
    if bench is None:
        bench = _KeysOnly()
    if kind == "floor":
        return trio.run(tls_pair_floor, bench, size)
    if kind == "bare-link":
        return trio.run(bare_links, bench.keys, size)
    return trio.run(bring_up, bench, size)


@overload
def _measure(kind: Literal["floor"], size: int, bench: Bench) -> Floor: ...
@overload
def _measure(kind: Literal["bring-up"], size: int, bench: Bench) -> BringUp: ...
@overload
def _measure(kind: Literal["bare-link"], size: int, bench: Bench) -> float: ...
def _measure(
    kind: Literal["floor", "bring-up", "bare-link"], size: int, bench: Bench
) -> Floor | BringUp | float:
    """One measurement in a fresh child process, so its memory figure is its own.

    RSS growth is only meaningful from a clean heap: in one process, memory
    freed by an earlier measurement (the floor's 2,000 pairs, the 1,000
    sensors) is reused by the next, which then looks smaller than it is
    (measured: 126 kB per link at 5,000 sensors after the others in one
    process, against 181 kB in a process of its own). Under ``--profile``
    the measurement runs here instead, so the profile sees it.
    """
    if sys.getprofile() is not None:
        return _in_this_process(kind, size, bench)
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_in_this_process, kind, size).result()


def floor_in_child(bench: Bench, pairs: int) -> Floor:
    """``tls_pair_floor`` as this measurement takes it: ``pairs`` pairs, a fresh child process.

    For any measurement that sets its figures against the floor under a
    link, so they all use the same code on the same clean heap.
    """
    return _measure("floor", pairs, bench)


def handshake_floor(bench: Bench, pairs: int, *, tries: int = 3) -> float:
    """CPU per mutual-TLS handshake, both ends in one process: the lowest of ``tries`` children.

    Why the lowest: it is a floor, and one child of a few hundred pairs
    read 2.05 ms in one run and 2.23 ms in another on the same machine; a
    figure set against a floor that moved 9 % would move as much.
    """
    return min(floor_in_child(bench, pairs)["cpu_per_pair"] for _ in range(max(1, tries)))


def run(bench: Bench) -> None:
    sizes = bench.pick((100, 1_000, 5_000), (20,))
    pairs = bench.pick(2_000, 50)
    floor = floor_in_child(bench, pairs)
    bench.record(
        NAME, f"floor: one mutual-TLS pair, both ends here, idle ({pairs:,} pairs)",
        floor["rss_per_pair"] / 1000, "kB",
        "RSS per handshaken pair of TlsStreams: what a link's TLS alone holds",
    )
    # The lowest of this child and three shorter ones, as the scenario takes
    # its floor: one child's figure moved 7 % between runs (1.99, 2.14 ms).
    tries = bench.pick(3, 1)
    cpu = min(floor["cpu_per_pair"], handshake_floor(bench, bench.pick(300, 20), tries=tries))
    bench.record(
        NAME, "floor: CPU per mutual-TLS handshake, both ends here", cpu * 1000, "ms",
        f"no validation; 5,000 links cannot come up faster than 5,000 of these; the lowest of "
        f"{tries + 1} child processes",
    )
    bare_count = bench.pick(1_000, 50)
    bare = _measure("bare-link", bare_count, bench)
    bench.record(
        NAME, BARE_LINK, bare * 1000, "ms",
        f"{bare_count:,} links, as many dialing at once as the dial slots: TCP connect and "
        "accept, the handshake, a record each way, close_notify; nothing else of mesh "
        "(mesh.bench.bare_link)",
    )
    bench.record(
        NAME, BARE_LINK_RATIO, bare / cpu, "x",
        "what a link's transport alone costs over the floor; the 2x targets leave the rest "
        "of twice the floor for everything mesh does besides",
    )
    for sensors in sizes:
        label = f"{sensors:,} sensors"
        try:
            facts = _measure("bring-up", sensors, bench)
        except TooSlow as exc:
            bench.log(f"  {label}: not measured: {exc}")
            bench.results.status[f"{NAME} {label}"] = f"not measured: {exc}"
            continue
        if facts["up"] != sensors:
            bench.log(f"  only {facts['up']} of {sensors} links up: {facts['states']}")
        ratio_name = Key.BRINGUP_RATIO[1] if sensors == 5_000 else f"{label}: bring-up / floor"
        beyond_name = (
            Key.BRINGUP_BEYOND[1] if sensors == 5_000 else f"{label}: RSS per link beyond the TLS floor"
        )
        bench.record(NAME, f"{label}: PKI build (not in bring-up)", facts["pki_seconds"], "s")
        bench.record(NAME, f"{label}: Mesh.add of every appliance (not in bring-up)", facts["add_seconds"], "s")
        bench.record(NAME, f"{label}: links up", facts["up"], "links", str(facts["states"]))
        bench.record(
            NAME, f"{label}: time until every link is up", facts["up_seconds"], "s",
            "" if facts["up"] == sensors else f"not all up within the deadline: {facts['states']}",
        )
        bench.record(
            NAME, ratio_name, facts["up_seconds"] / (sensors * cpu), "x",
            f"over {sensors:,} x {cpu * 1000:.2f} ms: no link can come up before its handshake",
        )
        bench.record(
            NAME, f"{label}: RSS per link", facts["rss_per_link"] / 1000, "kB",
            "RSS growth from before the Mesh is built until every link is up",
        )
        bench.record(
            NAME, f"{label}: trio tasks per link", facts["tasks_per_link"], "tasks",
            "every task the mesh runs once all are up, over the links: memory and scheduling",
        )
        bench.record(
            NAME, beyond_name,
            (facts["rss_per_link"] - floor["rss_per_pair"]) / 1000, "kB",
            "the appliance, its tasks, events and verdicts: what mesh adds to a link's TLS",
        )
        if sensors == 1_000 or bench.quick:
            worst = facts["max_fetches_one_appliance_one_url"]
            name = Key.FETCHES_PER_URL[1] if sensors == 1_000 else f"{label} at once: CRL fetches per URL"
            bench.record(NAME, name, worst, "fetches", "most fetches of one URL by any one appliance")
            bench.record(NAME, f"{label}: console's CRL fetches", facts["console_fetches"], "fetches")
            for path, count in sorted(facts["server_requests"].items()):
                bench.record(NAME, f"{label}: requests at the CRL server for {path}", count, "requests")
