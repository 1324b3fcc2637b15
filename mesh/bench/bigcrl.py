"""Large CRLs for the benchmarks, built fast and once per run.

Theory of operation: ``CertificateRevocationListBuilder.add_revoked_certificate``
returns a new builder holding a *copy* of the entry list, so adding n entries
one by one costs O(n^2) (about 0.3 s for 20,000 entries here, which puts
1,000,000 entries at roughly ten minutes). The builder's constructor takes the
whole list at once, and signing is done in Rust, so building the list of
``RevokedCertificate`` objects and handing it over in one go costs O(n)
(about 4 s for 1,000,000). :func:`build_crl` does that; :func:`build_crl_chained`
is the one-by-one way, kept so the harness can show the difference.

The DER is written under the run's temporary directory and read back from
there, so every measurement in a run uses the same bytes and nothing large is
ever committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mesh.pki.issue import CertificateAuthority

__all__ = ["revoked_serials", "build_crl", "build_crl_chained", "CrlCache"]

#: Serials the size ``x509.random_serial_number`` makes (159 bits), so a
#: million entries weigh what a real CA's would (about 37 MiB of DER).
_SERIAL_BITS = 159


def revoked_serials(count: int, *, seed: int = 7, avoid: frozenset[int] = frozenset()) -> list[int]:
    """``count`` distinct 159-bit serials, the same for the same seed."""
    rng = random.Random(seed)
    top = 1 << (_SERIAL_BITS - 1)
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < count:
        serial = rng.getrandbits(_SERIAL_BITS - 1) | top
        if serial in seen or serial in avoid:
            continue
        seen.add(serial)
        out.append(serial)
    return out


def _entries(serials: list[int], at: dt.datetime) -> list[x509.RevokedCertificate]:
    return [
        x509.RevokedCertificateBuilder().serial_number(s).revocation_date(at).build()
        for s in serials
    ]


def build_crl(
    ca: CertificateAuthority,
    serials: list[int],
    *,
    this_update: dt.datetime,
    validity: dt.timedelta = dt.timedelta(days=7),
    number: int = 1,
) -> x509.CertificateRevocationList:
    """A CRL of ``ca`` listing ``serials``, built in O(n)."""
    extensions = [
        x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
        x509.Extension(
            x509.AuthorityKeyIdentifier.oid,
            False,
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
        ),
    ]
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=ca.cert.subject,
        last_update=this_update,
        next_update=this_update + validity,
        extensions=extensions,
        revoked_certificates=_entries(serials, this_update),
    )
    return builder.sign(ca.key, hashes.SHA256())


def build_crl_chained(
    ca: CertificateAuthority, serials: list[int], *, this_update: dt.datetime
) -> x509.CertificateRevocationList:
    """The documented one-entry-at-a-time way; O(n^2), for comparison only."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(this_update)
        .next_update(this_update + dt.timedelta(days=7))
    )
    for entry in _entries(serials, this_update):
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca.key, hashes.SHA256())


class CrlCache:
    """Large CRLs of one CA, built on first use and kept as DER files."""

    def __init__(
        self,
        ca: CertificateAuthority,
        directory: Path,
        *,
        this_update: dt.datetime,
        avoid: frozenset[int] = frozenset(),
    ) -> None:
        self.ca = ca
        self.directory = directory
        self.this_update = this_update
        self.avoid = avoid
        self.build_seconds: dict[int, float] = {}

    def path(self, count: int) -> Path:
        # Named after the signing key too: a --workdir kept between runs holds
        # CRLs of earlier runs' CAs, which must not be taken for this one's.
        return self.directory / f"revoked-{count}-{self._key_tag}.crl"

    @property
    def _key_tag(self) -> str:
        spki = self.ca.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).hexdigest()[:12]

    def serials(self, count: int) -> list[int]:
        return revoked_serials(count, avoid=self.avoid)

    def der(self, count: int) -> bytes:
        """The DER of a CRL with ``count`` entries (built once per run)."""
        path = self.path(count)
        if not path.exists():
            started = time.perf_counter()
            crl = build_crl(self.ca, self.serials(count), this_update=self.this_update)
            data = crl.public_bytes(serialization.Encoding.DER)
            self.build_seconds[count] = time.perf_counter() - started
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(path)
            return data
        return path.read_bytes()
