"""Event-loop stall while the CrlFetcher fetches and loads the largest CRL.

A 10 ms ticker task records how late each wake-up is. Meanwhile, in the same
trio process, the fetcher downloads the run's largest CRL (1,000,000 entries,
37 MiB) from a real ``CrlServer`` on 127.0.0.1, parses it and checks its
signature against the issuing CA, as an appliance does when a peer's
certificate names that CRL. A stall is the time the loop could not run the
ticker beyond its 10 ms period; the target is that none exceeds 50 ms.

The process's first fetch (of a small CRL) comes before, and its stall is
reported apart: it is a one-time cost of the HTTP client, not of the CRL.
For contrast the same parse done inline on the loop is timed: that is the
stall the fetcher's worker thread avoids.
"""

from __future__ import annotations

import datetime as dt
import time

import trio
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.bench.context import Bench, Unavailable
from mesh.bench.targets import Key

__all__ = ["NAME", "run", "Ticker"]

NAME = "stall"

PERIOD = 0.010


class Ticker:
    """Wakes every ``PERIOD`` seconds and keeps the lateness of every wake-up."""

    def __init__(self) -> None:
        self.late: list[float] = []
        #: perf_counter() of each wake-up, beside its lateness
        self.when: list[float] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        expected = time.perf_counter() + PERIOD
        while True:
            await trio.sleep_until(trio.current_time() + max(0.0, expected - time.perf_counter()))
            now = time.perf_counter()
            self.late.append(max(0.0, now - expected))
            self.when.append(now)
            expected = now + PERIOD

    def worst(self, start: float = float("-inf"), end: float = float("inf")) -> float:
        """The latest wake-up between ``start`` and ``end`` (perf_counter seconds)."""
        return max((l for l, w in zip(self.late, self.when) if start <= w <= end), default=0.0)


async def _fetch_under_ticker(bench: Bench, data: bytes, small: bytes) -> dict[str, float]:
    """Fetch ``small`` then ``data`` under the ticker; worst lateness in each phase.

    The first fetch in a
    process pays one-time costs (httpx's lazy imports and first client), which
    are reported apart from the large CRL's load.
    """
    try:
        from mesh.net.crl_fetch import CrlFetcher
        from mesh.net.crl_server import CrlServer
    except ImportError as exc:  # pragma: no cover - while modules land
        raise Unavailable(f"needs {exc.name}") from None
    material = bench.material(2048)
    at = dt.datetime.now(dt.timezone.utc)
    server = CrlServer({"/crl/issuing.crl": data, "/crl/small.crl": small})
    ticker = Ticker()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        url = server.url("/crl/issuing.crl")
        async with CrlFetcher(now=lambda: at, trust_env=False) as fetcher:
            await nursery.start(ticker.run)
            await trio.sleep(0.5)  # quiet ticks first: the machine's own noise
            first = time.perf_counter()
            await fetcher.get(server.url("/crl/small.crl"))
            await trio.sleep(0.05)
            first_worst = ticker.worst(start=first)
            started = time.perf_counter()
            index = await fetcher.get(url, issuer=material.issuing.cert)
            finished = time.perf_counter()
            await trio.sleep(0.05)
            if not index.signed_by(material.issuing.cert):
                raise RuntimeError("the fetched CRL did not verify")
            nursery.cancel_scope.cancel()
    return {
        "idle": ticker.worst(end=first),
        "first": first_worst,
        "big": ticker.worst(start=started),
        "big_seconds": finished - started,
        "requests": server.requests("/crl/issuing.crl"),
    }


async def _phases(data: bytes, issuer: x509.Certificate) -> dict[str, tuple[float, float]]:
    """Each step of loading a big CRL, alone in a worker thread under the ticker.

    Returns step -> (seconds it took, worst tick lateness meanwhile). A step
    that holds the GIL for its whole length stalls the loop for that long even
    in a thread.
    """
    from mesh.validation.revocation import CrlIndex

    crl = x509.load_der_x509_crl(data)
    key = issuer.public_key()
    assert isinstance(key, rsa.RSAPublicKey)  # the bench's CAs hold RSA keys
    fresh = CrlIndex.from_bytes(data)
    steps = {
        "load_der_x509_crl": lambda: x509.load_der_x509_crl(data),
        "parse and index (CrlIndex.from_bytes)": lambda: CrlIndex.from_bytes(data),
        "first signature check (CrlIndex.signed_by)": lambda: fresh.signed_by(issuer),
        "cryptography's crl.is_signature_valid, for contrast": lambda: crl.is_signature_valid(key),
    }
    out: dict[str, tuple[float, float]] = {}
    ticker = Ticker()
    async with trio.open_nursery() as nursery:
        await nursery.start(ticker.run)
        for name, step in steps.items():
            await trio.sleep(0.05)
            started = time.perf_counter()
            await trio.to_thread.run_sync(step)
            took = time.perf_counter() - started
            await trio.sleep(0.03)
            out[name] = (took, ticker.worst(start=started))
        nursery.cancel_scope.cancel()
    return out


def run(bench: Bench) -> None:
    from mesh.validation.revocation import CrlIndex

    count = bench.big_crl_size
    data = bench.crls.der(count)
    small = bench.crls.der(bench.crl_sizes[0])
    seen = trio.run(_fetch_under_ticker, bench, data, small)
    label = f"{count:,}-entry CRL ({len(data) / 2**20:.0f} MiB)"
    bench.record(NAME, f"fetch + parse + signature check, {label}", seen["big_seconds"] * 1e3, "ms")
    bench.record(NAME, Key.STALL[1], seen["big"] * 1e3, "ms", label)
    bench.record(
        NAME,
        "max stall during a small CRL fetch made first",
        seen["first"] * 1e3,
        "ms",
        "includes httpx's one-time start-up only if no earlier measurement in this process "
        "fetched (run --only stall to see it)",
    )
    bench.record(
        NAME,
        "max tick lateness before any fetch (machine noise)",
        seen["idle"] * 1e3,
        "ms",
        "0.5 s of idle ticks",
    )
    bench.record(NAME, "HTTP requests at the CRL server", seen["requests"], "requests")
    for step, (took, worst) in trio.run(_phases, data, bench.material(2048).issuing.cert).items():
        bench.record(NAME, f"in a worker thread: {step}", worst * 1e3, "ms stall", f"step took {took * 1e3:.0f} ms")
    started = time.perf_counter()
    CrlIndex.from_bytes(data)
    bench.record(
        NAME,
        "inline parse on the loop would stall for",
        (time.perf_counter() - started) * 1e3,
        "ms",
        "CrlIndex.from_bytes without a worker thread",
    )
