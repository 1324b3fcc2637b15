"""CRLs of 1,000 / 100,000 / 1,000,000 entries: build, parse, signature, lookup, handshakes.

The naive baseline is what ``cryptography`` offers out of the box:
``get_revoked_certificate_by_serial_number``, a linear scan over the entries on
every call. mesh's :class:`~mesh.validation.revocation.CrlIndex` pays once at
parse time for a set of serials and answers each lookup in constant time.
"""

from __future__ import annotations

import time
import timeit
from typing import Callable, TypeVar

from cryptography import x509

from mesh.bench.bigcrl import build_crl, build_crl_chained
from mesh.bench.context import Bench, best_of
from mesh.validation.revocation import CrlIndex

__all__ = ["NAME", "run"]

NAME = "crl"

T = TypeVar("T")


def _per_call(fn: Callable[[T], object], arg: T, budget_calls: int) -> float:
    """Seconds per call of ``fn(arg)``, best of three batches."""
    timer = timeit.Timer(lambda: fn(arg))
    return min(timer.repeat(repeat=3, number=budget_calls)) / budget_calls


def _builders(bench: Bench) -> None:
    """One-by-one against all-at-once CRL building, at sizes the slow way can bear."""
    material = bench.material()
    sizes = bench.pick((20_000, 40_000), (1_000, 2_000))
    for count in sizes:
        serials = bench.crls.serials(count)
        chained = best_of(1, lambda: build_crl_chained(material.issuing, serials, this_update=material.at))
        listed = best_of(1, lambda: build_crl(material.issuing, serials, this_update=material.at))
        bench.record(NAME, f"build {count:,} one-by-one (add_revoked_certificate)", chained, "s")
        bench.record(NAME, f"build {count:,} all-at-once (builder constructor)", listed, "s")
    small, large = sizes
    growth = bench.results.get(NAME, f"build {large:,} one-by-one (add_revoked_certificate)")
    base = bench.results.get(NAME, f"build {small:,} one-by-one (add_revoked_certificate)")
    if growth and base:
        bench.record(
            NAME,
            "one-by-one growth when entries double",
            growth / base,
            "x",
            "2 = linear, 4 = quadratic",
        )


def run(bench: Bench) -> None:
    material = bench.material()
    issuer_key = material.issuing.key.public_key()
    _builders(bench)
    for count in bench.crl_sizes:
        label = f"{count:,}"
        data = bench.crls.der(count)
        if count in bench.crls.build_seconds:
            bench.record(NAME, f"{label}: build + sign + DER", bench.crls.build_seconds[count], "s")
        bench.record(NAME, f"{label}: DER size", len(data) / 2**20, "MiB")
        repeat = 1 if count >= 1_000_000 else 3
        load = best_of(repeat, x509.load_der_x509_crl, data)
        bench.record(NAME, f"{label}: load_der_x509_crl", load * 1e3, "ms")
        parse = best_of(repeat, CrlIndex.from_bytes, data)
        bench.record(NAME, f"{label}: parse (CrlIndex.from_bytes)", parse * 1e3, "ms")

        fresh = x509.load_der_x509_crl(data)
        index = CrlIndex.from_bytes(data)
        started = time.perf_counter()
        assert index.signed_by(material.issuing.cert), "bench CRL must verify"
        signature = time.perf_counter() - started
        bench.record(NAME, f"{label}: signature check, first (CrlIndex.signed_by)", signature * 1e3, "ms")
        library = best_of(1, fresh.is_signature_valid, issuer_key)
        bench.record(NAME, f"{label}: signature check, crl.is_signature_valid", library * 1e3, "ms")
        memo = _per_call(index.signed_by, material.issuing.cert, 1_000)
        bench.record(NAME, f"{label}: signature check (remembered)", memo * 1e6, "us")

        revoked = bench.crls.serials(count)
        hit_serial = revoked[len(revoked) // 2]
        miss_serial = material.client.serial
        assert index.is_revoked(hit_serial) and not index.is_revoked(miss_serial)
        hit = _per_call(index.is_revoked, hit_serial, 200_000)
        miss = _per_call(index.is_revoked, miss_serial, 200_000)
        bench.record(NAME, f"{label}: lookup hit (CrlIndex.is_revoked)", hit * 1e9, "ns")
        bench.record(NAME, f"{label}: lookup miss (CrlIndex.is_revoked)", miss * 1e9, "ns")

        calls = max(1, min(200, 200_000 // count))
        naive_hit = _per_call(fresh.get_revoked_certificate_by_serial_number, hit_serial, calls)
        naive_miss = _per_call(fresh.get_revoked_certificate_by_serial_number, miss_serial, calls)
        bench.record(NAME, f"{label}: naive hit, middle entry (linear scan)", naive_hit * 1e6, "us")
        bench.record(NAME, f"{label}: naive miss (linear scan)", naive_miss * 1e6, "us")
        bench.record(NAME, f"{label}: index vs naive, miss", naive_miss / miss, "x faster")
        _handshakes_with(bench, index, label)
        del fresh, index


def _handshakes_with(bench: Bench, index: CrlIndex, label: str) -> None:
    """The validated mesh handshake rate while this CRL is the issuing CA's cached CRL."""
    from mesh.bench.context import Unavailable
    from mesh.bench.handshake import lookup_for, mesh_rate

    material = bench.material()
    seconds = bench.pick(2.0, 0.2)
    try:
        rate = mesh_rate(material, seconds, lookup=lookup_for(material, index))
    except Unavailable as exc:
        bench.log(f"  handshakes with the {label}-entry CRL skipped: {exc}")
        return
    bench.record(
        NAME,
        f"{label}: validated mesh handshakes/s with this CRL cached",
        rate.per_second,
        "handshakes/s",
        f"CPU {rate.cpu_per_handshake * 1e3:.2f} ms per handshake; one {seconds:g} s trial",
    )
