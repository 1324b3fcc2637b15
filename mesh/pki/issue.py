"""Certificate authorities and appliance certificates, made with ``cryptography``.

This is the pure part of the PKI: it builds keys, certificates and CRLs in
memory and never touches a file or a clock. Every instant is passed in, so a
scenario that starts in 2027 issues certificates that are valid in 2027.

The shapes follow the source document's "CRT file requirements": SHA-256 with
RSA, 2048 or 4096 bits, a CRL Distribution Point over http://, subject CN =
the appliance's domain name with C, O and OU. Anything that deviates from that
is a deliberate fault, asked for by keyword (see ``mesh.pki.faults``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from types import EllipsisType
from typing import Callable, Sequence, Union

from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "SubjectFields",
    "Issued",
    "CertificateAuthority",
    "new_key",
    "slug",
    "KeySource",
    "self_signed_leaf",
]

#: Something that hands out RSA private keys of a given size. Tests pass a pool
#: of pre-generated keys so a suite does not spend its time in key generation.
KeySource = Callable[[int], rsa.RSAPrivateKey]

#: The hashes ``cryptography``'s builders sign with (SHA-1 and MD5 signatures
#: are made by re-signing: ``mesh.pki.faults``).
SigningHash = Union[
    hashes.SHA224, hashes.SHA256, hashes.SHA384, hashes.SHA512,
    hashes.SHA3_224, hashes.SHA3_256, hashes.SHA3_384, hashes.SHA3_512,
]


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA key. 65537 is the only public exponent anyone should use."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def slug(name: str) -> str:
    """A file-name-safe form of a name: 'Contoso Root CA' -> 'contoso-root-ca'."""
    text = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-.")
    return text.replace("*", "star") or "unnamed"


@define(frozen=True, kw_only=True)
class SubjectFields:
    """The organisational fields the source document requires beside CN."""

    country: str | None = "US"
    organization: str | None = "Contoso Inc."
    org_unit: str | None = "Contoso Labs"

    def name(self, common_name: str) -> x509.Name:
        attrs = []
        if self.country:
            attrs.append(x509.NameAttribute(NameOID.COUNTRY_NAME, self.country))
        if self.organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization))
        if self.org_unit:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.org_unit))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return x509.Name(attrs)


@define(frozen=True, kw_only=True)
class Issued:
    """A certificate with its private key and the issuing CAs above it.

    ``chain`` holds the intermediate CAs, nearest first, without the root: it
    is what an appliance sends after its own certificate and what the
    optional .pem chain file holds.
    """

    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def serial(self) -> int:
        return self.cert.serial_number


def _cdp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


@define(kw_only=True, eq=False)
class CertificateAuthority:
    """A CA that issues certificates and publishes one CRL.

    Mutable on purpose: revoking a certificate adds to ``revoked`` and the next
    :meth:`crl` carries a higher CRL number, as a real CA's would.

    ``crl_url`` is where this CA's own CRL is published; it goes into the CRL
    Distribution Point of every certificate this CA issues. ``cert_crl_url`` is
    the CDP in this CA's *own* certificate (its issuer's CRL), None for a root.
    """

    name: str
    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    crl_url: str | None
    parent: CertificateAuthority | None = None
    revoked: dict[int, dt.datetime] = field(factory=dict)
    crl_number: int = 0

    # -- construction --

    @classmethod
    def root(
        cls,
        name: str,
        *,
        not_before: dt.datetime,
        days: int = 3650,
        key: rsa.RSAPrivateKey | None = None,
        key_size: int = 2048,
        crl_base_url: str | None = "http://127.0.0.1/crl",
        subject: SubjectFields = SubjectFields(),
        hash_algorithm: SigningHash | None = None,
    ) -> CertificateAuthority:
        """A self-signed root CA."""
        key = key or new_key(key_size)
        subject_name = subject.name(name)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_name)
            .issuer_name(subject_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + dt.timedelta(days=days))
        )
        builder = _ca_extensions(builder, key.public_key(), key.public_key(), path_length=None)
        cert = builder.sign(key, hash_algorithm or hashes.SHA256())
        return cls(name=name, cert=cert, key=key, crl_url=_crl_url(crl_base_url, name))

    def intermediate(
        self,
        name: str,
        *,
        not_before: dt.datetime,
        days: int = 1825,
        not_after: dt.datetime | None = None,
        key: rsa.RSAPrivateKey | None = None,
        key_size: int = 2048,
        crl_base_url: str | None = "http://127.0.0.1/crl",
        subject: SubjectFields = SubjectFields(),
    ) -> CertificateAuthority:
        """An issuing CA signed by this one."""
        key = key or new_key(key_size)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject.name(name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after or not_before + dt.timedelta(days=days))
        )
        builder = _ca_extensions(builder, key.public_key(), self.key.public_key(), path_length=0)
        if self.crl_url:
            builder = builder.add_extension(_cdp(self.crl_url), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return CertificateAuthority(
            name=name,
            cert=cert,
            key=key,
            crl_url=_crl_url(crl_base_url, name),
            parent=self,
        )

    def cross_certify(self, other: CertificateAuthority) -> x509.Certificate:
        """A cross certificate: ``other``'s subject and key, issued by this CA.

        How a PKI migrates to a new root: the old root vouches for the new one,
        so appliances that trust only the old root still find a path (through
        this certificate) to chains issued under the new one.
        """
        builder = (
            x509.CertificateBuilder()
            .subject_name(other.cert.subject)
            .issuer_name(self.cert.subject)
            .public_key(other.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(other.cert.not_valid_before_utc)
            .not_valid_after(min(other.cert.not_valid_after_utc, self.cert.not_valid_after_utc))
        )
        builder = _ca_extensions(
            builder, other.key.public_key(), self.key.public_key(), path_length=None
        )
        if self.crl_url:
            builder = builder.add_extension(_cdp(self.crl_url), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    # -- issuing --

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates a leaf of this CA sends after itself (no root)."""
        out: list[x509.Certificate] = []
        ca: CertificateAuthority | None = self
        while ca is not None and ca.parent is not None:
            out.append(ca.cert)
            ca = ca.parent
        return tuple(out)

    @property
    def root_ca(self) -> CertificateAuthority:
        ca = self
        while ca.parent is not None:
            ca = ca.parent
        return ca

    def issue(
        self,
        common_name: str,
        *,
        not_before: dt.datetime,
        days: int = 365,
        not_after: dt.datetime | None = None,
        key: rsa.RSAPrivateKey | None = None,
        key_size: int = 2048,
        subject: SubjectFields = SubjectFields(),
        cdp_url: str | None | EllipsisType = ...,
        hash_algorithm: SigningHash | None = None,
        san: bool = True,
        server_auth: bool = True,
        client_auth: bool = True,
        dns_names: Sequence[str] = (),
    ) -> Issued:
        """An appliance (leaf) certificate.

        ``cdp_url`` defaults to this CA's CRL URL; pass None for a certificate
        without a CRL Distribution Point, or any URL to point elsewhere.
        ``dns_names``: more DNS names for the SAN beside ``common_name`` (an
        in-cluster Service name, say).
        """
        key = key or new_key(key_size)
        if cdp_url is ...:
            cdp_url = self.crl_url
        builder = _leaf_builder(
            common_name,
            key=key,
            subject=subject,
            issuer_name=self.cert.subject,
            issuer_public_key=self.key.public_key(),
            not_before=not_before,
            not_after=not_after or not_before + dt.timedelta(days=days),
            cdp_url=cdp_url,
            san=san,
            server_auth=server_auth,
            client_auth=client_auth,
            dns_names=dns_names,
        )
        cert = builder.sign(self.key, hash_algorithm or hashes.SHA256())
        return Issued(cert=cert, key=key, chain=self.chain)

    def certify(
        self, common_name: str, key: ec.EllipticCurvePrivateKey, *, not_before: dt.datetime
    ) -> x509.Certificate:
        """A leaf certificate like :meth:`issue`'s defaults make, for an EC key.

        Appliances hold RSA keys (``Issued.key``); this is for a client that
        does not, such as the benchmarks' P-256 sensor.
        """
        builder = _leaf_builder(
            common_name,
            key=key,
            subject=SubjectFields(),
            issuer_name=self.cert.subject,
            issuer_public_key=self.key.public_key(),
            not_before=not_before,
            not_after=not_before + dt.timedelta(days=365),
            cdp_url=self.crl_url,
            san=True,
            server_auth=True,
            client_auth=True,
        )
        return builder.sign(self.key, hashes.SHA256())

    # -- revocation --

    def revoke(self, serial: int, *, at: dt.datetime) -> None:
        """Mark a serial revoked from ``at``; the next :meth:`crl` lists it."""
        self.revoked.setdefault(serial, at)

    def crl(
        self,
        *,
        this_update: dt.datetime,
        next_update: dt.datetime | None = None,
        validity: dt.timedelta = dt.timedelta(days=7),
    ) -> x509.CertificateRevocationList:
        """Sign and return a new CRL; each call carries the next CRL number."""
        self.crl_number += 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(this_update)
            .next_update(next_update or this_update + validity)
            .add_extension(x509.CRLNumber(self.crl_number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        for serial, when in sorted(self.revoked.items()):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(when)
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())


def self_signed_leaf(
    common_name: str,
    *,
    not_before: dt.datetime,
    days: int = 365,
    not_after: dt.datetime | None = None,
    key: rsa.RSAPrivateKey | None = None,
    key_size: int = 2048,
    subject: SubjectFields = SubjectFields(),
    cdp_url: str | None = None,
    hash_algorithm: SigningHash | None = None,
    dns_names: Sequence[str] = (),
) -> Issued:
    """An appliance certificate signed by its own key, like the one every
    appliance generates at first start: the same fields as a CA-signed leaf,
    but no CA anyone trusts stands behind it."""
    key = key or new_key(key_size)
    builder = _leaf_builder(
        common_name,
        key=key,
        subject=subject,
        issuer_name=subject.name(common_name),
        issuer_public_key=key.public_key(),
        not_before=not_before,
        not_after=not_after or not_before + dt.timedelta(days=days),
        cdp_url=cdp_url,
        san=True,
        server_auth=True,
        client_auth=True,
        dns_names=dns_names,
    )
    return Issued(cert=builder.sign(key, hash_algorithm or hashes.SHA256()), key=key)


def _leaf_builder(
    common_name: str,
    *,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    subject: SubjectFields,
    issuer_name: x509.Name,
    issuer_public_key: rsa.RSAPublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    cdp_url: str | None,
    san: bool,
    server_auth: bool,
    client_auth: bool,
    dns_names: Sequence[str] = (),
) -> x509.CertificateBuilder:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject.name(common_name))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
            critical=False,
        )
    )
    usages = []
    if server_auth:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client_auth:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if san:
        # The DNS name the source document asks for, plus the loopback address
        # every emulated appliance listens on, so that a person can point curl
        # or a browser at https://127.0.0.1:PORT and have the name check pass.
        # ``dns_names`` adds the names it is reached by elsewhere (a Service name).
        extra = [x509.DNSName(name) for name in dns_names if name != common_name]
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(common_name), *extra, x509.IPAddress(_LOOPBACK)]
            ),
            critical=False,
        )
    if cdp_url:
        builder = builder.add_extension(_cdp(str(cdp_url)), critical=False)
    return builder


_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def _crl_url(base: str | None, name: str) -> str | None:
    if not base:
        return None
    return f"{base.rstrip('/')}/{slug(name)}.crl"


def _ca_extensions(
    builder: x509.CertificateBuilder,
    public_key: rsa.RSAPublicKey,
    issuer_public_key: rsa.RSAPublicKey,
    *,
    path_length: int | None,
) -> x509.CertificateBuilder:
    return (
        builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),
            critical=False,
        )
    )
