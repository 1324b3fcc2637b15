"""The certificates every benchmark shares: one small deployment per key size.

A root CA, an issuing CA below it, and two appliance certificates made by
``mesh.pki.issue`` (a management console that listens, a sensor that dials),
all RSA of one size. The same objects feed mesh's TLS streams, the standard
library's ``ssl`` and the ``openssl`` CLI (as PEM files, keys 0600), so every
handshake in a run is over the same certificates.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from attrs import define
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mesh.pki.issue import CertificateAuthority, Issued, KeySource
from mesh.validation.revocation import CrlIndex

__all__ = ["Material", "PemFiles"]

SERVER_NAME = "console.bench.example"
CLIENT_NAME = "sensor.bench.example"


@define(frozen=True, kw_only=True)
class PemFiles:
    """One identity as files the openssl CLI reads."""

    cert: Path
    key: Path
    chain: Path
    #: leaf + chain in one file, for tools that take a single -cert
    fullchain: Path


@define(frozen=True, kw_only=True)
class Material:
    bits: int
    at: dt.datetime
    root: CertificateAuthority
    issuing: CertificateAuthority
    server: Issued
    client: Issued
    directory: Path

    @classmethod
    def build(
        cls,
        bits: int,
        keys: KeySource,
        directory: Path,
        *,
        crl_base_url: str = "http://127.0.0.1:8080/crl",
        intermediate: bool = True,
    ) -> Material:
        """The deployment; ``intermediate=False`` issues the appliances from the root.

        (``openssl s_time`` cannot send a chain with its certificate, so a
        client it plays must be issued by a root the server trusts.)
        """
        # The wall clock, not an emulated instant: the openssl CLI and the
        # standard library's ssl judge validity against the real time.
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        at = now - dt.timedelta(days=1)
        root = CertificateAuthority.root(
            f"Bench Root CA {bits}", not_before=at, key=keys(bits), crl_base_url=crl_base_url
        )
        issuing = root
        if intermediate:
            issuing = root.intermediate(
                f"Bench Issuing CA {bits}", not_before=at, key=keys(bits), crl_base_url=crl_base_url
            )
        server = issuing.issue(SERVER_NAME, not_before=at, key=keys(bits))
        client = issuing.issue(CLIENT_NAME, not_before=at, key=keys(bits))
        material = cls(
            bits=bits, at=now, root=root, issuing=issuing,
            server=server, client=client, directory=directory / f"rsa{bits}",
        )
        material._write()
        return material

    @property
    def trust(self) -> tuple[x509.Certificate, ...]:
        return (self.root.cert,)

    @property
    def leaf_serials(self) -> frozenset[int]:
        return frozenset({self.server.serial, self.client.serial})

    def small_crls(self) -> dict[str, CrlIndex]:
        """Current, empty CRLs for both CAs, keyed by the URL the certificates name."""
        out: dict[str, CrlIndex] = {}
        for ca in (self.root, self.issuing):
            assert ca.crl_url is not None
            out[ca.crl_url] = CrlIndex.from_crl(ca.crl(this_update=self.at - dt.timedelta(hours=1)))
        return out

    def crl_documents(self) -> dict[str, bytes]:
        """{URL path: DER} of both CAs' current CRLs, for a ``CrlServer``."""
        from urllib.parse import urlsplit

        out: dict[str, bytes] = {}
        for ca in dict.fromkeys((self.root, self.issuing)):
            assert ca.crl_url is not None
            crl = ca.crl(this_update=self.at - dt.timedelta(hours=1))
            out[urlsplit(ca.crl_url).path] = crl.public_bytes(serialization.Encoding.DER)
        return out

    # -- files for the openssl CLI --

    def pem(self, role: str) -> PemFiles:
        base = self.directory / role
        return PemFiles(
            cert=base.with_suffix(".crt"),
            key=base.with_suffix(".key"),
            chain=base.with_suffix(".chain.pem"),
            fullchain=base.with_suffix(".full.pem"),
        )

    @property
    def root_pem(self) -> Path:
        return self.directory / "root.crt"

    @property
    def trust_pem(self) -> Path:
        """Root and issuing CA: ``s_time`` sends its leaf without the chain."""
        return self.directory / "trust.pem"

    def _write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        root = self.root.cert.public_bytes(serialization.Encoding.PEM)
        self.root_pem.write_bytes(root)
        self.trust_pem.write_bytes(root + self.issuing.cert.public_bytes(serialization.Encoding.PEM))
        for role, issued in (("server", self.server), ("client", self.client)):
            files = self.pem(role)
            cert = issued.cert.public_bytes(serialization.Encoding.PEM)
            chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.chain)
            files.cert.write_bytes(cert)
            files.chain.write_bytes(chain)
            files.fullchain.write_bytes(cert + chain)
            key = issued.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key)
