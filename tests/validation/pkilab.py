"""A small lab PKI for the validation tests: a root, an intermediate, leaves, CRLs.

The CAs are backdated three years before the epoch so that expired and
not-yet-valid leaves nest inside their issuers' validity and fail only their
own date check.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from attrs import define, field
from cryptography import x509

from mesh.pki.issue import CertificateAuthority, Issued, KeySource
from mesh.validation.revocation import CrlIndex, crl_lookup

CA_BACKDATE = dt.timedelta(days=3 * 365)


@define(kw_only=True)
class Lab:
    keys: KeySource
    epoch: dt.datetime
    root: CertificateAuthority
    inter: CertificateAuthority
    _crl_cache: dict[Any, CrlIndex] = field(factory=dict, alias="_crl_cache")

    @classmethod
    def make(cls, keys: KeySource, epoch: dt.datetime, name: str = "Lab") -> Lab:
        root = CertificateAuthority.root(
            f"{name} Root", not_before=epoch - CA_BACKDATE, key=keys(2048)
        )
        inter = root.intermediate(
            f"{name} Issuing", not_before=epoch - CA_BACKDATE, key=keys(2048)
        )
        return cls(keys=keys, epoch=epoch, root=root, inter=inter)

    def leaf(self, cn: str = "sensor-1.contoso.com", *, ca=None, **kw) -> Issued:
        ca = ca or self.inter
        kw.setdefault("not_before", self.epoch)
        kw.setdefault("key", self.keys(kw.pop("key_size", 2048)))
        return ca.issue(cn, **kw)

    def chain(self, issued: Issued) -> list[x509.Certificate]:
        return [issued.cert, *issued.chain]

    @property
    def trust(self) -> list[x509.Certificate]:
        return [self.root.cert]

    def crls(self, at: dt.datetime | None = None, **kw):
        """A CrlLookup with fresh CRLs of both CAs, published at ``at``."""
        at = at or self.epoch
        return crl_lookup(
            {
                ca.crl_url: CrlIndex.from_crl(ca.crl(this_update=at, **kw))
                for ca in (self.root, self.inter)
            }
        )


# -- certificates cryptography will not sign for us --------------------------

_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
_WEAK_RSA_OIDS = {
    "sha1": bytes.fromhex("06092a864886f70d010105"),
    "md5": bytes.fromhex("06092a864886f70d010104"),
}


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def resign(cert: x509.Certificate, issuer_key, digest: str) -> x509.Certificate:
    """``cert`` re-signed by ``issuer_key`` with SHA-1 or MD5 (sha1/md5WithRSA).

    cryptography refuses to build SHA-1 or MD5 signed certificates, but weak
    certificates are exactly what the strength check must see: swap the
    algorithm OID in the to-be-signed part and sign it by hand.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    oid = _WEAK_RSA_OIDS[digest]
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(_SHA256_RSA) == 1
    tbs = tbs.replace(_SHA256_RSA, oid)
    algorithm = {"sha1": hashes.SHA1(), "md5": hashes.MD5()}[digest]
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), algorithm)
    alg_id = _der(0x30, oid + b"\x05\x00")
    der = _der(0x30, tbs + alg_id + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def tamper(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` with one bit of its signature flipped."""
    from cryptography.hazmat.primitives import serialization

    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    return x509.load_der_x509_certificate(bytes(der))
