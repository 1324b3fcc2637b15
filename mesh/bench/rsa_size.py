"""RSA-2048 against RSA-4096: handshake rate and CPU per handshake, and the factor.

The source document says 4096-bit certificates are slower; this says by how
much. Every certificate of the deployment (root, issuing CA, both appliances)
has the one key size, and each handshake is the validated mesh handshake of
:mod:`mesh.bench.handshake`. The openssl pair runs at both sizes too, so the
factor can be told apart from anything mesh adds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mesh.bench import openssl_pair
from mesh.bench.context import Bench, Unavailable
from mesh.bench.handshake import lookup_for, mesh_rate
from mesh.bench.loop import Rate

__all__ = ["NAME", "run"]

NAME = "rsa"


def _sign_costs(bench: Bench) -> None:
    """Raw RSA-PSS signing time (what each end pays per TLS 1.3 handshake) in both OpenSSLs.

    mesh signs with the OpenSSL inside ``cryptography``'s wheel; the openssl
    CLI is the system's. Their RSA code differs (vector units used per key
    size), which is most of the difference between the two factors.
    """
    for bits in (2048, 4096):
        key = bench.material(bits).server.key
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
        calls = bench.pick(200, 10)
        started = time.perf_counter()
        for _ in range(calls):
            key.sign(b"x" * 32, pss, hashes.SHA256())
        per = (time.perf_counter() - started) / calls
        bench.record(NAME, f"RSA-{bits} PSS sign, cryptography's OpenSSL", per * 1e3, "ms")
    openssl = shutil.which("openssl")
    if openssl is None or bench.quick:
        return
    done = subprocess.run(
        [openssl, "speed", "-seconds", "1", "rsa2048", "rsa4096"],
        capture_output=True, text=True, check=False,
    )
    for bits, sign in re.findall(r"^rsa (\d+) bits\s+([\d.]+)s", done.stdout, re.MULTILINE):
        bench.record(NAME, f"RSA-{bits} sign, openssl speed (CLI's OpenSSL)", float(sign) * 1e3, "ms")


def run(bench: Bench) -> None:
    seconds = bench.pick(3.0, 0.2)
    rounds = bench.pick(2, 1)
    rates: dict[int, Rate] = {}
    for _ in range(rounds):
        for bits in (2048, 4096):
            material = bench.material(bits)
            rate = mesh_rate(material, seconds, lookup=lookup_for(material))
            if bits not in rates or rate.per_second > rates[bits].per_second:
                rates[bits] = rate
    for bits, rate in rates.items():
        bench.record(NAME, f"mesh validated, RSA-{bits}", rate.per_second, "handshakes/s")
        bench.record(
            NAME, f"mesh CPU per handshake, RSA-{bits} (both ends)", rate.cpu_per_handshake * 1e3, "ms"
        )
    bench.record(
        NAME,
        "mesh RSA-4096 slowdown (rate 2048 / rate 4096)",
        rates[2048].per_second / rates[4096].per_second,
        "x",
    )
    bench.record(
        NAME,
        "mesh RSA-4096 CPU factor (CPU 4096 / CPU 2048)",
        rates[4096].cpu_per_handshake / rates[2048].cpu_per_handshake,
        "x",
    )
    if not bench.quick:
        try:
            pair = {}
            for bits in (2048, 4096):
                pair[bits], _cpu = openssl_pair.measure(
                    bench.material(bits), 3, bench.workdir / f"s_server-{bits}.log"
                )
                bench.record(NAME, f"openssl pair, RSA-{bits}", pair[bits], "handshakes/s")
            bench.record(NAME, "openssl pair RSA-4096 slowdown", pair[2048] / pair[4096], "x")
        except Unavailable as exc:
            bench.log(f"  openssl pair skipped: {exc}")
    _sign_costs(bench)
