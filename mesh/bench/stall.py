"""Event-loop stall while the CrlFetcher fetches and loads the largest CRL.

A 10 ms ticker task records how late each wake-up is. Meanwhile, in the same
trio process, the fetcher downloads the run's largest CRL (1,000,000 entries,
37 MiB) from a real ``CrlServer`` on 127.0.0.1, parses it and checks its
signature against the issuing CA, as an appliance does when a peer's
certificate names that CRL. A stall is the time the loop could not run the
ticker beyond its 10 ms period; the target is that none exceeds 50 ms.

For contrast the same parse done inline on the loop is timed: that is the
stall the fetcher's worker thread avoids.
"""

from __future__ import annotations

import datetime as dt
import time

import trio

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

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
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


async def _fetch_under_ticker(bench: Bench, data: bytes) -> tuple[Ticker, float, float, int]:
    try:
        from mesh.net.crl_fetch import CrlFetcher
        from mesh.net.crl_server import CrlServer
    except ImportError as exc:  # pragma: no cover - while modules land
        raise Unavailable(f"needs {exc.name}") from None
    material = bench.material(2048)
    at = dt.datetime.now(dt.timezone.utc)
    server = CrlServer({"/crl/issuing.crl": data})
    ticker = Ticker()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        url = server.url("/crl/issuing.crl")
        async with CrlFetcher(now=lambda: at, trust_env=False) as fetcher:
            await nursery.start(ticker.run)
            await trio.sleep(0.5)  # quiet ticks first: the machine's own noise
            started = time.perf_counter()
            index = await fetcher.get(url, issuer=material.issuing.cert)
            finished = time.perf_counter()
            await trio.sleep(0.05)
            if not index.signed_by(material.issuing.cert):
                raise RuntimeError("the fetched CRL did not verify")
            nursery.cancel_scope.cancel()
    return ticker, started, finished, server.requests("/crl/issuing.crl")


def _tbs_bytes(der: bytes) -> memoryview:
    """The TBSCertList exactly as signed, sliced out of the CRL's DER (no re-encoding)."""

    def header(at: int) -> tuple[int, int]:
        first = der[at + 1]
        if first < 0x80:
            return 2, first
        n = first & 0x7F
        return 2 + n, int.from_bytes(der[at + 2 : at + 2 + n], "big")

    outer, _ = header(0)
    head, length = header(outer)
    return memoryview(der)[outer : outer + head + length]


def _chunked_signature_check(der: bytes, crl, issuer_key) -> None:
    """Hash the raw TBS in 1 MiB steps, verify the prehashed digest (a proposed fix)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, utils

    tbs = _tbs_bytes(der)
    digest = hashes.Hash(hashes.SHA256())
    for offset in range(0, len(tbs), 1 << 20):
        digest.update(tbs[offset : offset + (1 << 20)])
    issuer_key.verify(
        crl.signature, digest.finalize(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256())
    )


async def _phases(data: bytes, issuer) -> dict[str, tuple[float, float]]:
    """Each step of loading a big CRL, alone in a worker thread under the ticker.

    Returns step -> (seconds it took, worst tick lateness meanwhile). A step
    that holds the GIL for its whole length stalls the loop for that long even
    in a thread.
    """
    from cryptography import x509

    from mesh.validation.revocation import CrlIndex

    crl = x509.load_der_x509_crl(data)
    key = issuer.public_key()
    steps = {
        "load_der_x509_crl": lambda: x509.load_der_x509_crl(data),
        "serial set (CrlIndex.from_crl)": lambda: CrlIndex.from_crl(x509.load_der_x509_crl(data)),
        "crl.is_signature_valid": lambda: crl.is_signature_valid(key),
        "chunked hash of raw TBS + prehashed verify": lambda: _chunked_signature_check(data, crl, key),
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
    ticker, started, finished, requests = trio.run(_fetch_under_ticker, bench, data)
    label = f"{count:,}-entry CRL ({len(data) / 2**20:.0f} MiB)"
    bench.record(NAME, f"fetch + parse + signature check, {label}", (finished - started) * 1e3, "ms")
    bench.record(NAME, Key.STALL[1], ticker.worst(started, finished) * 1e3, "ms", label)
    bench.record(
        NAME,
        "max tick lateness before the fetch (machine noise)",
        ticker.worst(end=started) * 1e3,
        "ms",
        "0.5 s of idle ticks",
    )
    bench.record(NAME, "HTTP requests at the CRL server", requests, "requests")
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
