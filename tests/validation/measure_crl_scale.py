"""Measure: does a check against a 1,000,000-entry CRL cost what a 1,000-entry one does?

Not a test (timings do not belong in assertions); run it by hand:

    .venv/bin/python tests/validation/measure_crl_scale.py [ENTRIES ...]

It builds CRLs of each size for a lab issuing CA (the big ones assembled in
DER directly: cryptography's builder copies its entry list on every add),
indexes them once (``CrlIndex.from_bytes``), then times ``validate_peer`` on a
leaf + intermediate chain whose leaf is not listed (a miss, the common case)
and is listed (a hit). For contrast it times cryptography's own serial lookup,
a linear scan.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from mesh.pki.keys import KeyPool
from mesh.validation import CrlIndex, crl_lookup, validate_peer

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from pkilab import Lab  # noqa: E402

EPOCH = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _read(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of body, end of element) of the DER element at ``at``."""
    tag, first = data[at], data[at + 1]
    if first < 0x80:
        return tag, at + 2, at + 2 + first
    size = first & 0x7F
    length = int.from_bytes(data[at + 2 : at + 2 + size], "big")
    return tag, at + 2 + size, at + 2 + size + length


def _integer(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return _der(0x02, raw)


def big_crl(ca, serials: range, extra: list[int]) -> bytes:
    """A DER CRL signed by ``ca`` listing ``serials`` and ``extra``."""
    small = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(EPOCH)
        .next_update(EPOCH + dt.timedelta(days=7))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(1).revocation_date(EPOCH).build()
        )
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    tbs = small.tbs_certlist_bytes
    _, body, end = _read(tbs, 0)
    items = []
    at = body
    while at < end:
        _, _, nxt = _read(tbs, at)
        items.append(tbs[at:nxt])
        at = nxt
    when = _der(0x17, EPOCH.strftime("%y%m%d%H%M%SZ").encode())
    entries = b"".join(_der(0x30, _integer(s) + when) for s in [*serials, *extra])
    # version, signature, issuer, thisUpdate, nextUpdate, revokedCertificates, [0] extensions
    items[5] = _der(0x30, entries)
    new_tbs = _der(0x30, b"".join(items))
    signature = ca.key.sign(new_tbs, padding.PKCS1v15(), hashes.SHA256())
    outer = small.public_bytes(serialization.Encoding.DER)
    alg_start = _read(outer, 0)[1] + len(tbs)
    alg = outer[alg_start : _read(outer, alg_start)[2]]
    return _der(0x30, new_tbs + alg + _der(0x03, b"\x00" + signature))


def per_call(fn, seconds: float = 2.0) -> float:
    """Microseconds per call, over at least ``seconds``."""
    calls, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            fn()
        calls += 200
        spent = time.perf_counter() - start
        if spent >= seconds:
            return spent / calls * 1e6


def main(sizes: list[int]) -> None:
    lab = Lab.make(KeyPool().cursor(), EPOCH)
    listed = lab.leaf("listed.contoso.com")
    clean = lab.leaf("clean.contoso.com")
    root_crl = CrlIndex.from_crl(lab.root.crl(this_update=EPOCH))
    at = EPOCH + dt.timedelta(hours=1)
    print(f"{'entries':>9} {'DER MiB':>8} {'index s':>8} {'1st sig ms':>10} "
          f"{'miss us':>8} {'hit us':>7} {'crypto miss ms':>14}")
    for size in sizes:
        der = big_crl(lab.inter, range(10**12, 10**12 + size - 1), [listed.serial])
        start = time.perf_counter()
        index = CrlIndex.from_bytes(der)
        indexed = time.perf_counter() - start
        assert len(index) == size
        start = time.perf_counter()
        assert index.signed_by(lab.inter.cert)
        first_sig = (time.perf_counter() - start) * 1e3
        lookup = crl_lookup({lab.inter.crl_url: index, lab.root.crl_url: root_crl})
        miss_chain, hit_chain = lab.chain(clean), lab.chain(listed)
        assert validate_peer(miss_chain, trust=lab.trust, at=at, crls=lookup).accepted
        assert not validate_peer(hit_chain, trust=lab.trust, at=at, crls=lookup).accepted
        miss = per_call(lambda: validate_peer(miss_chain, trust=lab.trust, at=at, crls=lookup))
        hit = per_call(lambda: validate_peer(hit_chain, trust=lab.trust, at=at, crls=lookup))
        start = time.perf_counter()
        assert index.crl.get_revoked_certificate_by_serial_number(clean.serial) is None
        crypto_miss = (time.perf_counter() - start) * 1e3
        print(f"{size:>9,} {len(der) / 2**20:>8.1f} {indexed:>8.2f} {first_sig:>10.1f} "
              f"{miss:>8.0f} {hit:>7.0f} {crypto_miss:>14.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 100_000, 1_000_000])
