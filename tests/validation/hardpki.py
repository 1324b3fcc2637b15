"""Hard PKIs: path-building and profile cases for a strict validator.

What this covers: PKIs where the presented bag of certificates offers more
than one candidate path, or where one certificate breaks one rule of the
RFC 5280 profile, so that "does it verify?" depends on the validator building
the right path and applying every rule on it. The families:

* ``cross``: a leaf under root B, with root B also cross-signed by root A;
  trust A, B or both; the cross certificate presented or not, in various
  orders, expired, or limited by pathLen.
* ``bridge``: two PKIs joined by a bridge CA that cross-certifies both roots
  (paths of five certificates, distractor cross certificates, pathLen and
  name constraints on the bridge's certificate).
* ``same-name``: several candidate issuers with the same subject name and
  different keys; only one signed the leaf (one lies in its SKI).
* ``expired-candidate``: an expired (or not yet valid) copy of the issuer,
  same name and key, beside the valid one.
* ``weak-candidate``: a SHA-1-signed copy of the issuer beside the SHA-256 one.
* ``bad-candidate``: a copy of the issuer that breaks a constraint (name
  constraints excluding the leaf, pathLen 0, cA=false, no keyCertSign, EKU
  emailProtection only) beside a good one.
* ``eku``: extended key usage on intermediates and leaves, server and client.
* ``name-constraints``: permitted/excluded dNSName, iPAddress and rfc822Name
  subtrees in intermediates and roots, and a CN-only leaf.
* ``structure``: RFC 5280 profile violations (missing AKI/SKI/basicConstraints,
  non-critical basicConstraints, keyCertSign on a leaf, a v1 intermediate,
  unknown critical extensions, duplicate extensions).
* ``pathlen``: pathLenConstraint along the path, self-issued certificates,
  long chains.
* ``crl``: CRLs given out of band for the leaf's issuer (leaves without a CDP):
  revoked, scope (issuingDistributionPoint), CRL profile, dates, signature.
* ``hostname``: RFC 6125 name matching (wildcards, SAN before CN, IP names).

Why: the validator in ``mesh.validation`` is being replaced by a strict one,
and the differential test (``test_differential.py``) compares it, pyca's
verifier and ``openssl verify`` against the answers written here. Each case
carries the RFC 5280 (or RFC 6125) answer and the rule it tests; where the
answer is a choice between readings of the RFC, the case's ``rule`` says
which reading and why.

By default every certificate here is RFC 5280 well formed: CAs carry a
critical basicConstraints cA=TRUE and a critical keyUsage keyCertSign+cRLSign;
every certificate an SKI and an AKI (roots too); leaves a SAN dNSName, EKU
serverAuth+clientAuth, a critical keyUsage digitalSignature and a critical
basicConstraints cA=FALSE. Keys are ECDSA P-256, except RSA-2048 where a
SHA-1 signature is needed (cryptography cannot sign with SHA-1, so
:func:`mesh.pki.faults.resign_sha1` re-signs by hand). Certificates that
cryptography will not build (a v1 CA, duplicate extensions) are spliced in
DER and re-signed. Every key is made once per process and every case is
built once (:func:`cases`), in well under a second.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from typing import Any, Iterable, Sequence

from attrs import define, field, validators
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesh.pki.faults import resign_sha1

__all__ = [
    "AT",
    "CODES",
    "FAMILIES",
    "HardCase",
    "cases",
    "case_by_id",
]

UTC = dt.timezone.utc
#: The instant every case is judged at (an emulated instant, never the wall clock).
AT = dt.datetime(2027, 1, 15, 9, 0, tzinfo=UTC)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
CA_FROM, CA_TO = AT - 3 * 365 * DAY, AT + 7 * 365 * DAY
LEAF_FROM, LEAF_TO = AT - 30 * DAY, AT + 300 * DAY

#: The mesh failure codes a case may expect.
CODES = frozenset(
    {
        "chain_untrusted",
        "expired",
        "not_yet_valid",
        "weak_crypto",
        "wrong_purpose",
        "name_mismatch",
        "revoked",
        "crl_invalid",
        "crl_signature_invalid",
        "crl_stale",
    }
)

FAMILIES = (
    "cross",
    "bridge",
    "same-name",
    "expired-candidate",
    "weak-candidate",
    "bad-candidate",
    "eku",
    "name-constraints",
    "structure",
    "pathlen",
    "crl",
    "hostname",
)

HOST = "svc.example.com"
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
EMAIL_PROTECTION = ExtendedKeyUsageOID.EMAIL_PROTECTION
ANY_EKU = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
#: A private-enterprise OID no validator knows.
UNKNOWN_OID = x509.ObjectIdentifier("1.3.6.1.4.1.55555.7.1")


def _kebab(instance: Any, attribute: Any, value: str) -> None:
    if not value or value != value.lower() or not all(
        part.isalnum() for part in value.split("-")
    ):
        raise ValueError(f"case id {value!r} is not kebab-case")


def _code(instance: Any, attribute: Any, value: str | None) -> None:
    if (value is None) != instance.expect_valid:
        raise ValueError(f"{instance.id}: expect_code must be None exactly when valid")
    if value is not None and value not in CODES:
        raise ValueError(f"{instance.id}: unknown code {value!r}")


@define(frozen=True, kw_only=True)
class HardCase:
    """One PKI judged at one instant, with the RFC 5280 answer.

    ``chain`` is what the peer presents: the leaf, then intermediates in the
    order given (candidates and distractors included). ``trust`` holds the
    trust anchors. ``crls`` are given out of band and apply to every
    certificate whose issuer issued them. ``expect_code`` is mesh's primary
    failure code (None when valid); ``also_accept`` lists other codes a strict
    validator may reasonably give as primary for the same failure.
    """

    id: str = field(validator=_kebab)
    family: str = field(validator=validators.in_(FAMILIES))
    description: str
    chain: tuple[x509.Certificate, ...]
    trust: tuple[x509.Certificate, ...]
    at: dt.datetime = AT
    crls: tuple[x509.CertificateRevocationList, ...] = ()
    purpose: str = field(default="server", validator=validators.in_(("server", "client")))
    expected_name: str | None = None
    expect_valid: bool
    expect_code: str | None = field(default=None, validator=_code)
    also_accept: tuple[str, ...] = ()
    rule: str

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.chain[1:]

    @property
    def expected(self) -> str:
        """``valid`` or the expected code, for reports."""
        return "valid" if self.expect_valid else str(self.expect_code)


# -- keys: one per label, made once per process --------------------------------

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_KEYS: dict[str, PrivateKey] = {}


def ec_key(label: str) -> ec.EllipticCurvePrivateKey:
    key = _KEYS.get(label)
    if key is None:
        key = _KEYS[label] = ec.generate_private_key(ec.SECP256R1())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def rsa_key(label: str) -> rsa.RSAPrivateKey:
    key = _KEYS.get(label)
    if key is None:
        key = _KEYS[label] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


# -- certificates ---------------------------------------------------------------


@define(frozen=True)
class Authority:
    """A CA certificate and the key that signs with it."""

    cert: x509.Certificate
    key: PrivateKey

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


def dn(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hard PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def key_usage(**bits: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    unknown = set(bits) - set(names)
    assert not unknown, unknown
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


CA_USAGE = key_usage(key_cert_sign=True, crl_sign=True)
LEAF_USAGE = key_usage(digital_signature=True)
_DEFAULT: Any = object()


def dns(*names: str) -> list[x509.GeneralName]:
    return [x509.DNSName(n) for n in names]


def ips(*addresses: str) -> list[x509.GeneralName]:
    return [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]


def constraints(
    permitted: Sequence[x509.GeneralName] | None = None,
    excluded: Sequence[x509.GeneralName] | None = None,
) -> x509.NameConstraints:
    return x509.NameConstraints(
        permitted_subtrees=list(permitted) if permitted else None,
        excluded_subtrees=list(excluded) if excluded else None,
    )


def net(text: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_network(text))


def make_cert(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Authority | None = None,
    *,
    ca: bool,
    path_len: int | None = None,
    basic_constraints: bool = True,
    bc_critical: bool = True,
    usage: x509.KeyUsage | None = _DEFAULT,
    eku: Sequence[x509.ObjectIdentifier] | None = _DEFAULT,
    san: Sequence[x509.GeneralName] | None = None,
    name_constraints: x509.NameConstraints | None = None,
    cdp: str | None = None,
    aki: bool = True,
    aki_critical: bool = False,
    ski: bool = True,
    ski_digest: bytes | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """One certificate; ``issuer`` None means self-signed by ``key``.

    The defaults make a well-formed CA (``ca=True``) or leaf (``ca=False``);
    each keyword breaks or changes one thing.
    """
    public = key.public_key()
    signer = issuer.key if issuer else key
    if not_before is None:
        not_before = CA_FROM if ca else LEAF_FROM
    if not_after is None:
        not_after = CA_TO if ca else LEAF_TO
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name if issuer else subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if basic_constraints:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_len if ca else None),
            critical=bc_critical,
        )
    if usage is _DEFAULT:
        usage = CA_USAGE if ca else LEAF_USAGE
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    if eku is _DEFAULT:
        eku = None if ca else [SERVER_AUTH, CLIENT_AUTH]
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    if cdp is not None:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(cdp)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    if ski:
        value = (
            x509.SubjectKeyIdentifier(ski_digest)
            if ski_digest is not None
            else x509.SubjectKeyIdentifier.from_public_key(public)
        )
        builder = builder.add_extension(value, critical=False)
    if aki:
        builder = builder.add_extension(_aki_for(issuer, public), critical=aki_critical)
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def _aki_for(issuer: Authority | None, own_public: Any) -> x509.AuthorityKeyIdentifier:
    """The issuer's SKI as a keyIdentifier (the key's hash when it has none)."""
    if issuer is None:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(own_public)
    try:
        ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except (x509.ExtensionNotFound, x509.DuplicateExtension):
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def root(cn: str, key: PrivateKey, **kw: Any) -> Authority:
    return Authority(make_cert(dn(cn), key, None, ca=True, **kw), key)


def sub_ca(cn: str, key: PrivateKey, issuer: Authority, **kw: Any) -> Authority:
    return Authority(make_cert(dn(cn), key, issuer, ca=True, **kw), key)


def leaf(
    issuer: Authority,
    host: str = HOST,
    *,
    san: Sequence[x509.GeneralName] | None = _DEFAULT,
    key: PrivateKey | None = None,
    **kw: Any,
) -> x509.Certificate:
    """A leaf for ``host`` (CN and, by default, the only SAN dNSName)."""
    if san is _DEFAULT:
        san = dns(host)
    return make_cert(dn(host), key or ec_key("leaf"), issuer, ca=False, san=san, **kw)


# -- DER surgery for what cryptography will not build ------------------------------


def _header(data: bytes, offset: int) -> tuple[int, int]:
    """(offset of the body, length of the body) of the TLV at ``offset``."""
    first = data[offset + 1]
    if first < 0x80:
        return offset + 2, first
    count = first & 0x7F
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    return offset + 2 + count, length


def _children(tlv: bytes) -> list[bytes]:
    """The TLVs inside a constructed TLV."""
    start, length = _header(tlv, 0)
    out, offset, end = [], start, start + length
    while offset < end:
        body, size = _header(tlv, offset)
        out.append(tlv[offset : body + size])
        offset = body + size
    return out


def _wrap(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _resign(cert: x509.Certificate, tbs: bytes, key: PrivateKey) -> x509.Certificate:
    """``cert`` with its to-be-signed part replaced by ``tbs`` and signed by ``key``
    (SHA-256, the algorithm the original was signed with)."""
    from cryptography.hazmat.primitives import serialization

    algorithm = _children(cert.public_bytes(serialization.Encoding.DER))[1]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    else:
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    der = _wrap(0x30, tbs + algorithm + _wrap(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def as_v1(cert: x509.Certificate, signer: PrivateKey) -> x509.Certificate:
    """``cert`` as a version 1 certificate: no version field, no extensions."""
    kept = [t for t in _children(cert.tbs_certificate_bytes) if t[0] not in (0xA0, 0xA3)]
    return _resign(cert, _wrap(0x30, b"".join(kept)), signer)


def _ext_oid_der(arc: int) -> bytes:
    """DER of the OID 2.5.29.<arc> (an id-ce extension)."""
    assert arc < 0x80
    return bytes([0x06, 0x03, 0x55, 0x1D, arc])


def with_duplicate(
    subject: x509.Name,
    key: PrivateKey,
    issuer: Authority,
    duplicate: x509.ExtensionType,
    *,
    arc: int,
    critical: bool,
    **kw: Any,
) -> x509.Certificate:
    """A certificate carrying the extension id-ce ``arc`` twice.

    cryptography refuses to build that, so the second copy goes in under a
    placeholder OID of the same length (2.5.29.99) which is then renamed in
    the DER and the certificate re-signed.
    """
    placeholder = x509.ObjectIdentifier("2.5.29.99")
    extra = [(x509.UnrecognizedExtension(placeholder, duplicate.public_bytes()), critical)]
    cert = make_cert(subject, key, issuer, extra=extra, **kw)
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(_ext_oid_der(99)) == 1
    return _resign(cert, tbs.replace(_ext_oid_der(99), _ext_oid_der(arc)), issuer.key)


# -- CRLs -------------------------------------------------------------------------


def make_crl(
    issuer: Authority,
    *,
    revoked: Iterable[int] = (),
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    number: int | None = 1,
    number_critical: bool = False,
    idp: x509.IssuingDistributionPoint | None = None,
    delta_of: int | None = None,
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
    signer: PrivateKey | None = None,
) -> x509.CertificateRevocationList:
    """``issuer``'s CRL: AKI, CRLNumber, published an hour before AT, for a week."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.name)
        .last_update(this_update or AT - HOUR)
        .next_update(next_update or AT + 7 * DAY)
        .add_extension(_aki_for(issuer, None), critical=False)
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=number_critical)
    if idp is not None:
        builder = builder.add_extension(idp, critical=True)
    if delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(delta_of), critical=True)
    for extension, critical in extra:
        builder = builder.add_extension(extension, critical=critical)
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(AT - 2 * DAY)
            .build()
        )
    return builder.sign(signer or issuer.key, hashes.SHA256())


def idp(
    *,
    url: str | None = None,
    users: bool = False,
    cas: bool = False,
) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)] if url else None,
        relative_name=None,
        only_contains_user_certs=users,
        only_contains_ca_certs=cas,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )


# -- cases ------------------------------------------------------------------------


class _Family:
    """Collects one family's cases."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.cases: list[HardCase] = []

    def add(
        self,
        id: str,
        description: str,
        chain: Sequence[x509.Certificate],
        trust: Sequence[x509.Certificate],
        *,
        rule: str,
        code: str | None = None,
        name: str | None = _DEFAULT,
        purpose: str = "server",
        crls: Sequence[x509.CertificateRevocationList] = (),
        also: Sequence[str] = (),
        at: dt.datetime = AT,
    ) -> None:
        if name is _DEFAULT:
            # The leaf's first DNS SAN when the leaf is a server's.
            name = _first_dns(chain[0]) if purpose == "server" else None
        self.cases.append(
            HardCase(
                id=id,
                family=self.family,
                description=description,
                chain=tuple(chain),
                trust=tuple(trust),
                at=at,
                crls=tuple(crls),
                purpose=purpose,
                expected_name=name,
                expect_valid=code is None,
                expect_code=code,
                also_accept=tuple(also),
                rule=rule,
            )
        )


def _first_dns(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    names = san.get_values_for_type(x509.DNSName)
    return names[0] if names else None


def _cross() -> list[HardCase]:
    f = _Family("cross")
    root_a = root("X Root A", ec_key("x-root-a"))
    root_b = root("X Root B", ec_key("x-root-b"))
    other = root("X Unrelated Root", ec_key("x-other"))
    cross_b = make_cert(root_b.name, root_b.key, root_a, ca=True)
    cross_b_expired = make_cert(
        root_b.name, root_b.key, root_a, ca=True, not_before=CA_FROM, not_after=AT - DAY
    )
    cross_b_pl0 = make_cert(root_b.name, root_b.key, root_a, ca=True, path_len=0)
    inter = sub_ca("X Issuing", ec_key("x-inter"), root_b)
    end = leaf(inter)
    i = inter.cert
    direct = "RFC 5280 6.1 (a path to any trust anchor will do)"
    f.add("cross-trust-b-direct", "trust B only; leaf, inter: the direct path",
          [end, i], [root_b.cert], rule=direct)
    f.add("cross-trust-a-via-cross", "trust A only; leaf, inter, B-by-A cross certificate",
          [end, i, cross_b], [root_a.cert], rule=direct)
    f.add("cross-trust-a-cross-first", "trust A only; the cross certificate presented first",
          [end, cross_b, i], [root_a.cert], rule=direct)
    f.add("cross-trust-a-missing-cross", "trust A only; the cross certificate not presented",
          [end, i], [root_a.cert], code="chain_untrusted",
          rule="RFC 5280 6.1: no path to a trust anchor")
    f.add("cross-trust-both-cross-presented",
          "trust A and B; cross certificate presented although the direct path exists",
          [end, cross_b, i], [root_a.cert, root_b.cert], rule=direct)
    f.add("cross-trust-b-cross-presented",
          "trust B only; the cross certificate (issuer A, untrusted) must be ignored",
          [end, cross_b, i], [root_b.cert], rule=direct)
    f.add("cross-trust-a-self-signed-b-presented",
          "trust A only; untrusted self-signed B presented before the cross certificate",
          [end, i, root_b.cert, cross_b], [root_a.cert],
          rule=direct + "; a self-signed certificate that is not a trust anchor is a dead end, "
          "not a failure")
    f.add("cross-trust-a-cross-expired", "trust A only; the only cross certificate has expired",
          [end, i, cross_b_expired], [root_a.cert], code="expired",
          rule="RFC 5280 6.1.3 (a)(2): every certificate of the path must be valid at the time")
    f.add("cross-trust-both-cross-expired",
          "trust A and B; an expired cross certificate presented, direct path to B valid",
          [end, i, cross_b_expired], [root_a.cert, root_b.cert], rule=direct)
    f.add("cross-trust-a-expired-and-good-cross",
          "trust A only; an expired and a valid cross certificate, expired first",
          [end, i, cross_b_expired, cross_b], [root_a.cert],
          rule=direct + "; the expired candidate must not end the search")
    f.add("cross-trust-a-cross-pathlen0",
          "trust A only; cross certificate with pathLen 0 above the intermediate",
          [end, i, cross_b_pl0], [root_a.cert], code="chain_untrusted",
          rule="RFC 5280 6.1.4 (l)/(m): pathLenConstraint 0 leaves no room for the intermediate")
    f.add("cross-trust-b-cross-pathlen0-presented",
          "trust B; the pathLen-0 cross certificate presented but not on the path",
          [end, i, cross_b_pl0], [root_b.cert], rule=direct)
    f.add("cross-trust-unrelated", "trust an unrelated root only",
          [end, i, cross_b], [other.cert], code="chain_untrusted",
          rule="RFC 5280 6.1: no path to a trust anchor")
    return f.cases


def _bridge() -> list[HardCase]:
    f = _Family("bridge")
    root1 = root("Bridge PKI-1 Root", ec_key("b-root-1"))
    root2 = root("Bridge PKI-2 Root", ec_key("b-root-2"))
    bridge_key = ec_key("b-bridge")
    by1 = make_cert(dn("Bridge CA"), bridge_key, root1, ca=True)
    by2 = make_cert(dn("Bridge CA"), bridge_key, root2, ca=True)
    bridge = Authority(by1, bridge_key)
    r1_by_bridge = make_cert(root1.name, root1.key, bridge, ca=True)
    r2_by_bridge = make_cert(root2.name, root2.key, bridge, ca=True)
    inter1 = sub_ca("Bridge PKI-1 Issuing", ec_key("b-inter-1"), root1)
    inter2 = sub_ca("Bridge PKI-2 Issuing", ec_key("b-inter-2"), root2)
    leaf1 = leaf(inter1, "a.pki1.example")
    leaf2 = leaf(inter2, "b.pki2.example")
    by1_pl1 = make_cert(dn("Bridge CA"), bridge_key, root1, ca=True, path_len=1)
    by1_pl2 = make_cert(dn("Bridge CA"), bridge_key, root1, ca=True, path_len=2)
    by1_nc_ok = make_cert(dn("Bridge CA"), bridge_key, root1, ca=True,
                          name_constraints=constraints(dns("pki2.example")))
    by1_nc_bad = make_cert(dn("Bridge CA"), bridge_key, root1, ca=True,
                           name_constraints=constraints(dns("pki1.example")))
    i1, i2 = inter1.cert, inter2.cert
    rule = "RFC 5280 6.1 (bridge paths are ordinary paths through cross certificates)"
    f.add("bridge-pki1-leaf-trust-root2", "PKI-1 leaf, trusting only PKI-2's root, via the bridge",
          [leaf1, i1, r1_by_bridge, by2], [root2.cert], rule=rule)
    f.add("bridge-pki2-leaf-trust-root1", "PKI-2 leaf, trusting only PKI-1's root, via the bridge",
          [leaf2, i2, r2_by_bridge, by1], [root1.cert], rule=rule)
    f.add("bridge-all-cross-certs-shuffled",
          "PKI-2 leaf, trust root 1; all four cross certificates presented, shuffled",
          [leaf2, by2, r1_by_bridge, by1, i2, r2_by_bridge], [root1.cert],
          rule=rule + "; by2 and r1_by_bridge lead to loops or untrusted ends")
    f.add("bridge-missing-bridge-cert", "PKI-2 leaf, trust root 1; bridge-by-root-1 missing",
          [leaf2, i2, r2_by_bridge, by2], [root1.cert], code="chain_untrusted",
          rule="RFC 5280 6.1: no path to a trust anchor")
    f.add("bridge-own-root-with-distractors",
          "PKI-1 leaf, trust root 1, with bridge certificates presented too",
          [leaf1, by1, r2_by_bridge, i1, r1_by_bridge], [root1.cert], rule=rule)
    f.add("bridge-pathlen-too-small",
          "bridge certificate from root 1 with pathLen 1; two CAs follow it",
          [leaf2, i2, r2_by_bridge, by1_pl1], [root1.cert], code="chain_untrusted",
          rule="RFC 5280 6.1.4 (l)/(m): two non-self-issued intermediates follow a pathLen 1")
    f.add("bridge-pathlen-enough", "bridge certificate from root 1 with pathLen 2",
          [leaf2, i2, r2_by_bridge, by1_pl2], [root1.cert], rule="RFC 5280 6.1.4 (l)/(m)")
    f.add("bridge-name-constraints-permit",
          "root 1's bridge certificate permits only dNSName pki2.example; leaf b.pki2.example",
          [leaf2, i2, r2_by_bridge, by1_nc_ok], [root1.cert],
          rule="RFC 5280 4.2.1.10, 6.1.4 (g)")
    f.add("bridge-name-constraints-exclude",
          "root 1's bridge certificate permits only dNSName pki1.example; leaf b.pki2.example",
          [leaf2, i2, r2_by_bridge, by1_nc_bad], [root1.cert], code="chain_untrusted",
          rule="RFC 5280 4.2.1.10, 6.1.3 (b): the leaf's dNSName is outside the permitted subtree")
    return f.cases


def _same_name() -> list[HardCase]:
    f = _Family("same-name")
    top = root("SN Root", ec_key("sn-root"))
    right = sub_ca("SN Issuing", ec_key("sn-a"), top)
    wrong_b = sub_ca("SN Issuing", ec_key("sn-b"), top)
    wrong_c = sub_ca("SN Issuing", ec_key("sn-c"), top)
    right_ski = right.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    liar = sub_ca("SN Issuing", ec_key("sn-b"), top, ski_digest=right_ski.value.digest)
    end = leaf(right)
    end_no_aki = leaf(right, aki=False)
    a, b, c = right.cert, wrong_b.cert, wrong_c.cert
    rule = "RFC 5280 6.1.3 (a)(1): the issuer is the one whose key verifies the signature"
    f.add("same-name-right-last", "two issuers named alike; the wrong key first",
          [end, b, a], [top.cert], rule=rule)
    f.add("same-name-right-first", "two issuers named alike; the right key first",
          [end, a, b], [top.cert], rule=rule)
    f.add("same-name-three-right-middle", "three issuers named alike; the right one in the middle",
          [end, b, a, c], [top.cert], rule=rule)
    f.add("same-name-only-wrong", "only an issuer with the right name and the wrong key",
          [end, b], [top.cert], code="chain_untrusted", rule=rule)
    f.add("same-name-ski-spoof",
          "a wrong-key issuer whose SKI copies the right one's (so the leaf's AKI matches both), "
          "presented first",
          [end, liar.cert, a], [top.cert],
          rule=rule + "; the AKI/SKI match is a path-building hint (4.2.1.1), not proof")
    f.add("same-name-ski-spoof-only", "only the wrong-key issuer with the copied SKI",
          [end, liar.cert], [top.cert], code="chain_untrusted", rule=rule)
    f.add("same-name-leaf-without-aki",
          "two issuers named alike, the leaf has no AKI (a lax validator would try both keys)",
          [end_no_aki, b, a], [top.cert], code="chain_untrusted",
          rule="RFC 5280 4.2.1.1: the AKI MUST be present in every certificate but a "
          "self-signed one; a strict validator refuses the leaf")
    root_1 = root("SN Twin Root", ec_key("sn-twin-1"))
    root_2 = root("SN Twin Root", ec_key("sn-twin-2"))
    twin_inter = sub_ca("SN Twin Issuing", ec_key("sn-twin-inter"), root_2)
    twin_leaf = leaf(twin_inter)
    f.add("same-name-two-trusted-roots",
          "two trusted roots named alike; the intermediate was signed by the second",
          [twin_leaf, twin_inter.cert], [root_1.cert, root_2.cert], rule=rule)
    f.add("same-name-wrong-root-only", "only the same-named root with the wrong key is trusted",
          [twin_leaf, twin_inter.cert], [root_1.cert], code="chain_untrusted", rule=rule)
    return f.cases


def _expired_candidate() -> list[HardCase]:
    f = _Family("expired-candidate")
    top = root("EC Root", ec_key("ec-root"))
    key = ec_key("ec-inter")
    old = sub_ca("EC Issuing", key, top, not_before=CA_FROM, not_after=AT - DAY)
    new = sub_ca("EC Issuing", key, top, not_before=AT - 365 * DAY, not_after=AT + 4 * 365 * DAY)
    future = sub_ca("EC Issuing", key, top, not_before=AT + DAY, not_after=CA_TO)
    end = leaf(new)
    rule = "RFC 5280 6.1.3 (a)(2): a path whose certificates are all valid at the time exists"
    f.add("expired-candidate-first", "expired copy of the issuer (same name and key) first",
          [end, old.cert, new.cert], [top.cert], rule=rule)
    f.add("expired-candidate-last", "expired copy of the issuer after the valid one",
          [end, new.cert, old.cert], [top.cert], rule=rule)
    f.add("expired-candidate-only", "only the expired copy of the issuer",
          [end, old.cert], [top.cert], code="expired",
          rule="RFC 5280 6.1.3 (a)(2): the issuer had expired")
    f.add("not-yet-valid-candidate-first", "a not-yet-valid copy of the issuer first",
          [end, future.cert, new.cert], [top.cert], rule=rule)
    f.add("not-yet-valid-candidate-only", "only the not-yet-valid copy of the issuer",
          [end, future.cert], [top.cert], code="not_yet_valid",
          rule="RFC 5280 6.1.3 (a)(2): the issuer is not valid yet")
    f.add("expired-and-future-candidates-first",
          "expired and not-yet-valid copies before the valid one",
          [end, old.cert, future.cert, new.cert], [top.cert], rule=rule)
    old_root = root("EC Twin Root", ec_key("ec-twin"), not_before=CA_FROM - 2000 * DAY,
                    not_after=AT - DAY)
    new_root = root("EC Twin Root", ec_key("ec-twin"))
    twin_inter = sub_ca("EC Twin Issuing", ec_key("ec-twin-inter"), new_root)
    f.add("expired-root-candidate",
          "an expired and a valid root with the same name and key both trusted, expired first",
          [leaf(twin_inter), twin_inter.cert], [old_root.cert, new_root.cert], rule=rule)
    return f.cases


def _weak_candidate() -> list[HardCase]:
    f = _Family("weak-candidate")
    top = root("WC Root", rsa_key("wc-root"))
    key = rsa_key("wc-inter")
    strong = sub_ca("WC Issuing", key, top)
    weak = resign_sha1(sub_ca("WC Issuing", key, top).cert, top.key)  # another serial
    end = leaf(strong)
    s, w = strong.cert, weak
    rule = "RFC 5280 6.1 with a SHA-1 policy (RFC 9155, CA/B BR 7.1.3.2): a strong path exists"
    f.add("sha1-candidate-first", "SHA-1-signed copy of the issuer before the SHA-256 one",
          [end, w, s], [top.cert], rule=rule)
    f.add("sha1-candidate-last", "SHA-1-signed copy of the issuer after the SHA-256 one",
          [end, s, w], [top.cert], rule=rule)
    f.add("sha1-candidate-only", "only the SHA-1-signed issuer",
          [end, w], [top.cert], code="weak_crypto",
          rule="SHA-1 signatures are not accepted (RFC 9155; mesh's weak_crypto rule)")
    f.add("sha1-leaf", "the leaf itself is SHA-1-signed",
          [resign_sha1(end, key), s], [top.cert], code="weak_crypto",
          rule="SHA-1 signatures are not accepted (RFC 9155; mesh's weak_crypto rule)")
    sha1_root = resign_sha1(top.cert, top.key)
    f.add("sha1-self-signed-anchor", "the trust anchor's self-signature is SHA-1",
          [end, s], [sha1_root],
          rule="RFC 5280 6.1.1 (d): a trust anchor is a name and a key; its self-signature "
          "is never verified, so its algorithm does not matter")
    f.add("sha1-candidate-first-anchor-also-sha1",
          "SHA-1 issuer copy first, SHA-256 one after, SHA-1 self-signed anchor",
          [end, w, s], [sha1_root], rule=rule + " (anchor signature unused, 6.1.1 (d))")
    return f.cases


def _bad_candidate() -> list[HardCase]:
    f = _Family("bad-candidate")
    top = root("BC Root", ec_key("bc-root"))
    key = ec_key("bc-inter")
    good = sub_ca("BC Issuing", key, top)
    excluded = sub_ca("BC Issuing", key, top,
                      name_constraints=constraints(excluded=dns("example.com")))
    not_ca = make_cert(dn("BC Issuing"), key, top, ca=False, eku=None, san=None)
    no_sign = sub_ca("BC Issuing", key, top, usage=key_usage(digital_signature=True,
                                                             crl_sign=True))
    email = sub_ca("BC Issuing", key, top, eku=[EMAIL_PROTECTION])
    end = leaf(good)
    g = good.cert
    rule = "RFC 5280 6.1: one valid path is enough; the broken candidate must not end the search"
    f.add("nc-candidate-first",
          "a copy of the issuer whose name constraints exclude the leaf first",
          [end, excluded.cert, g], [top.cert], rule=rule)
    f.add("nc-candidate-only", "only the copy whose name constraints exclude example.com",
          [end, excluded.cert], [top.cert], code="chain_untrusted",
          rule="RFC 5280 4.2.1.10, 6.1.3 (b): the leaf's dNSName is excluded")
    f.add("not-ca-candidate-first", "a cA=FALSE copy of the issuer first",
          [end, not_ca, g], [top.cert], rule=rule)
    f.add("not-ca-candidate-only", "only the cA=FALSE copy of the issuer",
          [end, not_ca], [top.cert], code="chain_untrusted",
          rule="RFC 5280 6.1.4 (k): an intermediate must assert cA")
    f.add("no-keycertsign-candidate-first", "a copy whose keyUsage lacks keyCertSign first",
          [end, no_sign.cert, g], [top.cert], rule=rule)
    f.add("no-keycertsign-candidate-only", "only the copy whose keyUsage lacks keyCertSign",
          [end, no_sign.cert], [top.cert], code="chain_untrusted",
          rule="RFC 5280 6.1.4 (n): keyCertSign must be set")
    f.add("eku-email-candidate-first", "a copy limited to EKU emailProtection first",
          [end, email.cert, g], [top.cert], rule=rule)
    f.add("eku-email-candidate-only", "only the copy limited to EKU emailProtection",
          [end, email.cert], [top.cert], code="wrong_purpose", also=("chain_untrusted",),
          rule="EKU on a CA limits its subtree (RFC 5280 4.2.1.12 as applied by OpenSSL, "
          "pyca and the CA/B BR 7.1.2.2)")
    policy_key = ec_key("bc-policy")
    policy_good = sub_ca("BC Policy CA", policy_key, top)
    policy_pl0 = sub_ca("BC Policy CA", policy_key, top, path_len=0)
    issuing = sub_ca("BC Deep Issuing", ec_key("bc-deep"), policy_good)
    deep = leaf(issuing)
    f.add("pathlen0-candidate-first", "a pathLen 0 copy of the policy CA before the good one",
          [deep, issuing.cert, policy_pl0.cert, policy_good.cert], [top.cert], rule=rule)
    f.add("pathlen0-candidate-only", "only the pathLen 0 copy of the policy CA",
          [deep, issuing.cert, policy_pl0.cert], [top.cert], code="chain_untrusted",
          rule="RFC 5280 6.1.4 (l)/(m): pathLenConstraint 0 exceeded")
    return f.cases


def _eku() -> list[HardCase]:
    f = _Family("eku")
    top = root("EKU Root", ec_key("eku-root"))
    key = ec_key("eku-inter")

    def under(usages: Sequence[x509.ObjectIdentifier] | None) -> x509.Certificate:
        return sub_ca("EKU Issuing", key, top, eku=usages).cert

    plain = Authority(under(None), key)
    end = leaf(plain)
    ca_rule = ("EKU on a CA limits the usages below it (RFC 5280 4.2.1.12 leaves CAs open; "
               "OpenSSL, pyca and CA/B BR 7.1.2.2 apply it)")
    f.add("inter-eku-email-server", "intermediate EKU emailProtection; server leaf",
          [end, under([EMAIL_PROTECTION])], [top.cert], code="wrong_purpose",
          also=("chain_untrusted",), rule=ca_rule)
    f.add("inter-eku-server-server", "intermediate EKU serverAuth; server connection",
          [end, under([SERVER_AUTH])], [top.cert], rule=ca_rule)
    f.add("inter-eku-server-client", "intermediate EKU serverAuth; client connection",
          [end, under([SERVER_AUTH])], [top.cert], purpose="client", code="wrong_purpose",
          also=("chain_untrusted",), rule=ca_rule)
    f.add("inter-eku-server-client-both", "intermediate EKU serverAuth+clientAuth; client",
          [end, under([SERVER_AUTH, CLIENT_AUTH])], [top.cert], purpose="client", rule=ca_rule)
    f.add("inter-eku-any-server", "intermediate EKU anyExtendedKeyUsage; server",
          [end, under([ANY_EKU])], [top.cert],
          rule="RFC 5280 4.2.1.12: anyExtendedKeyUsage places no restriction")
    f.add("inter-eku-any-client", "intermediate EKU anyExtendedKeyUsage; client",
          [end, under([ANY_EKU])], [top.cert], purpose="client",
          rule="RFC 5280 4.2.1.12: anyExtendedKeyUsage places no restriction")
    f.add("leaf-eku-client-only-server", "leaf EKU clientAuth only, used as a server",
          [leaf(plain, eku=[CLIENT_AUTH]), plain.cert], [top.cert], code="wrong_purpose",
          rule="RFC 5280 4.2.1.12: the leaf's EKU must include the purpose")
    f.add("leaf-eku-server-only-client", "leaf EKU serverAuth only, used as a client",
          [leaf(plain, eku=[SERVER_AUTH]), plain.cert], [top.cert], purpose="client",
          code="wrong_purpose", rule="RFC 5280 4.2.1.12: the leaf's EKU must include the purpose")
    f.add("leaf-eku-any-server", "leaf EKU anyExtendedKeyUsage only, used as a server",
          [leaf(plain, eku=[ANY_EKU]), plain.cert], [top.cert], code="wrong_purpose",
          rule="RFC 5280 4.2.1.12: an application that needs a purpose MAY reject "
          "anyExtendedKeyUsage alone; the strict profile does, as OpenSSL and pyca do")
    f.add("leaf-no-eku-server", "leaf without an EKU extension, used as a server",
          [leaf(plain, eku=None), plain.cert], [top.cert],
          rule="RFC 5280 4.2.1.12: no EKU extension, no restriction")
    return f.cases


def _name_constraints() -> list[HardCase]:
    f = _Family("name-constraints")
    top = root("NC Root", ec_key("nc-root"))
    key = ec_key("nc-inter")

    def inter(nc: x509.NameConstraints, issuer: Authority = top) -> Authority:
        return sub_ca("NC Issuing", key, issuer, name_constraints=nc)

    rule = "RFC 5280 4.2.1.10, 6.1.3 (b)/(c)"
    bad = "chain_untrusted"
    permit_dns = inter(constraints(dns("example.com")))
    f.add("nc-dns-permitted-ok", "intermediate permits example.com; leaf svc.example.com",
          [leaf(permit_dns), permit_dns.cert], [top.cert], rule=rule)
    f.add("nc-dns-permitted-violated", "intermediate permits example.com; leaf svc.example.org",
          [leaf(permit_dns, "svc.example.org"), permit_dns.cert], [top.cert], code=bad, rule=rule)
    f.add("nc-dns-label-boundary", "intermediate permits example.com; leaf badexample.com",
          [leaf(permit_dns, "badexample.com"), permit_dns.cert], [top.cert], code=bad,
          rule=rule + ": a dNSName subtree matches whole labels")
    f.add("nc-dns-second-san-violates",
          "intermediate permits example.com; leaf SANs svc.example.com and evil.example.org",
          [leaf(permit_dns, san=dns(HOST, "evil.example.org")), permit_dns.cert], [top.cert],
          code=bad, rule=rule + ": every name in the SAN is checked")
    f.add("nc-dns-only-ip-unconstrained",
          "intermediate permits dNSName example.com only; leaf also has IP 198.51.100.7",
          [leaf(permit_dns, san=dns(HOST) + ips("198.51.100.7")), permit_dns.cert], [top.cert],
          rule=rule + ": names of a type with no subtree of that type are not constrained")
    exclude_dns = inter(constraints(excluded=dns("bad.example.com")))
    f.add("nc-dns-excluded-violated",
          "intermediate excludes bad.example.com; leaf x.bad.example.com",
          [leaf(exclude_dns, "x.bad.example.com"), exclude_dns.cert], [top.cert], code=bad,
          rule=rule)
    f.add("nc-dns-excluded-ok", "intermediate excludes bad.example.com; leaf good.example.com",
          [leaf(exclude_dns, "good.example.com"), exclude_dns.cert], [top.cert], rule=rule)
    permit_ip = inter(constraints([net("192.0.2.0/24")]))
    f.add("nc-ip-permitted-ok", "intermediate permits 192.0.2.0/24; leaf IP 192.0.2.10",
          [leaf(permit_ip, san=dns(HOST) + ips("192.0.2.10")), permit_ip.cert], [top.cert],
          name="192.0.2.10", rule=rule)
    f.add("nc-ip-permitted-violated", "intermediate permits 192.0.2.0/24; leaf IP 198.51.100.7",
          [leaf(permit_ip, san=dns(HOST) + ips("198.51.100.7")), permit_ip.cert], [top.cert],
          name="198.51.100.7", code=bad, rule=rule)
    exclude_ip = inter(constraints(excluded=[net("10.0.0.0/8")]))
    f.add("nc-ip-excluded-violated", "intermediate excludes 10.0.0.0/8; leaf IP 10.1.2.3",
          [leaf(exclude_ip, san=dns(HOST) + ips("10.1.2.3")), exclude_ip.cert], [top.cert],
          name="10.1.2.3", code=bad, rule=rule)
    permit_v6 = inter(constraints([net("2001:db8::/32")]))
    f.add("nc-ipv6-permitted-ok", "intermediate permits 2001:db8::/32; leaf IP 2001:db8::5",
          [leaf(permit_v6, san=dns(HOST) + ips("2001:db8::5")), permit_v6.cert], [top.cert],
          name="2001:db8::5", rule=rule)
    permit_mail = inter(constraints([x509.RFC822Name("example.com")]))
    f.add("nc-email-permitted-ok", "intermediate permits mail at example.com; leaf ops@example.com",
          [leaf(permit_mail, san=dns(HOST) + [x509.RFC822Name("ops@example.com")]),
           permit_mail.cert], [top.cert], rule=rule)
    f.add("nc-email-permitted-violated",
          "intermediate permits mail at example.com; leaf ops@example.org",
          [leaf(permit_mail, san=dns(HOST) + [x509.RFC822Name("ops@example.org")]),
           permit_mail.cert], [top.cert], code=bad, rule=rule)
    exclude_mail = inter(constraints(excluded=[x509.RFC822Name("example.org")]))
    f.add("nc-email-excluded-violated",
          "intermediate excludes mail at example.org; leaf ops@example.org",
          [leaf(exclude_mail, san=dns(HOST) + [x509.RFC822Name("ops@example.org")]),
           exclude_mail.cert], [top.cert], code=bad, rule=rule)
    anchor_rule = (rule + "; a trust anchor's constraints are applied (RFC 5280 6.1.1 (d) lets "
                   "the anchor carry them, RFC 5937; OpenSSL and pyca apply them)")
    nc_root = root("NC Constrained Root", ec_key("nc-croot"),
                   name_constraints=constraints(dns("example.com")))
    plain_under = sub_ca("NC Plain Issuing", ec_key("nc-plain"), nc_root)
    f.add("nc-root-dns-permitted-ok", "root permits example.com; leaf svc.example.com",
          [leaf(plain_under), plain_under.cert], [nc_root.cert], rule=anchor_rule)
    f.add("nc-root-dns-permitted-violated", "root permits example.com; leaf svc.example.org",
          [leaf(plain_under, "svc.example.org"), plain_under.cert], [nc_root.cert], code=bad,
          rule=anchor_rule)
    narrow = sub_ca("NC Narrow Issuing", ec_key("nc-narrow"), nc_root,
                    name_constraints=constraints(dns("a.example.com")))
    f.add("nc-root-and-inter-intersection-ok",
          "root permits example.com, intermediate a.example.com; leaf x.a.example.com",
          [leaf(narrow, "x.a.example.com"), narrow.cert], [nc_root.cert], rule=anchor_rule)
    f.add("nc-root-and-inter-intersection-violated",
          "root permits example.com, intermediate a.example.com; leaf b.example.com",
          [leaf(narrow, "b.example.com"), narrow.cert], [nc_root.cert], code=bad,
          rule=anchor_rule + ": the permitted set is the intersection")
    widen = sub_ca("NC Widening Issuing", ec_key("nc-widen"), nc_root,
                   name_constraints=constraints(dns("example.org")))
    f.add("nc-inter-cannot-widen-root",
          "root permits example.com, intermediate permits example.org; leaf svc.example.org",
          [leaf(widen, "svc.example.org"), widen.cert], [nc_root.cert], code=bad,
          rule=anchor_rule + ": an intermediate cannot widen the permitted set")
    cn_rule = (rule + "; name constraints cover the SAN, not the subject CN, so a CA that "
               "constrains names cannot vouch for a name read from a CN (RFC 6125 6.4.4): a "
               "SAN-less leaf under name constraints is refused, as Go's verifier does")
    f.add("nc-cn-only-within", "intermediate permits example.com; CN-only leaf host.example.com",
          [leaf(permit_dns, "host.example.com", san=None), permit_dns.cert], [top.cert],
          name="host.example.com", code=bad, rule=cn_rule)
    f.add("nc-cn-only-violated", "intermediate permits example.com; CN-only leaf host.example.org",
          [leaf(permit_dns, "host.example.org", san=None), permit_dns.cert], [top.cert],
          name="host.example.org", code=bad, rule=cn_rule)
    return f.cases


def _structure() -> list[HardCase]:
    f = _Family("structure")
    top = root("ST Root", ec_key("st-root"))
    key = ec_key("st-inter")
    good = sub_ca("ST Issuing", key, top)
    bad = "chain_untrusted"

    def through(inter: x509.Certificate, **leaf_kw: Any) -> list[x509.Certificate]:
        return [leaf(Authority(inter, key), **leaf_kw), inter]

    f.add("struct-well-formed-baseline", "root, intermediate, leaf, all well formed",
          through(good.cert), [top.cert], rule="RFC 5280 6.1")
    f.add("struct-inter-no-aki", "intermediate without an AKI",
          through(sub_ca("ST Issuing", key, top, aki=False).cert), [top.cert], code=bad,
          rule="RFC 5280 4.2.1.1: AKI MUST be present except in self-signed certificates")
    f.add("struct-leaf-no-aki", "leaf without an AKI",
          through(good.cert, aki=False), [top.cert], code=bad,
          rule="RFC 5280 4.2.1.1: AKI MUST be present except in self-signed certificates")
    f.add("struct-leaf-aki-critical", "leaf whose AKI is marked critical",
          through(good.cert, aki_critical=True), [top.cert], code=bad,
          rule="RFC 5280 4.2.1.1: conforming CAs MUST mark the AKI non-critical")
    f.add("struct-inter-no-ski", "intermediate CA without an SKI",
          through(sub_ca("ST Issuing", key, top, ski=False).cert), [top.cert], code=bad,
          rule="RFC 5280 4.2.1.2: SKI MUST appear in all conforming CA certificates")
    f.add("struct-inter-no-basic-constraints", "intermediate without basicConstraints",
          through(sub_ca("ST Issuing", key, top, basic_constraints=False).cert), [top.cert],
          code=bad, rule="RFC 5280 6.1.4 (k), 4.2.1.9")
    f.add("struct-inter-bc-not-critical", "intermediate CA whose basicConstraints is not critical",
          through(sub_ca("ST Issuing", key, top, bc_critical=False).cert), [top.cert], code=bad,
          rule="RFC 5280 4.2.1.9: MUST be critical in CA certificates whose key verifies "
          "certificate signatures")
    f.add("struct-inter-no-key-usage", "intermediate CA without keyUsage",
          through(sub_ca("ST Issuing", key, top, usage=None).cert), [top.cert], code=bad,
          rule="RFC 5280 4.2.1.3: CAs MUST include keyUsage in certificates whose key "
          "verifies certificate signatures")
    f.add("struct-inter-ku-without-keycertsign", "intermediate CA keyUsage cRLSign only",
          through(sub_ca("ST Issuing", key, top, usage=key_usage(crl_sign=True)).cert),
          [top.cert], code=bad, rule="RFC 5280 6.1.4 (n)")
    f.add("struct-leaf-keycertsign", "leaf (cA=FALSE) asserting keyCertSign",
          through(good.cert, usage=key_usage(digital_signature=True, key_cert_sign=True)),
          [top.cert], code=bad,
          rule="RFC 5280 4.2.1.3: keyCertSign only with basicConstraints cA=TRUE")
    v1 = as_v1(sub_ca("ST Issuing", key, top).cert, top.key)
    f.add("struct-v1-intermediate", "a version 1 certificate acting as intermediate CA",
          through(v1), [top.cert], code=bad,
          rule="RFC 5280 6.1.4 (k): a v1 intermediate must be rejected unless known to be a CA "
          "out of band")
    unknown = (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True)
    unknown_soft = (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), False)
    f.add("struct-leaf-unknown-critical-ext", "leaf with an unknown critical extension",
          through(good.cert, extra=[unknown]), [top.cert], code=bad,
          rule="RFC 5280 4.2: MUST reject a certificate with an unrecognised critical extension")
    f.add("struct-inter-unknown-critical-ext", "intermediate with an unknown critical extension",
          through(sub_ca("ST Issuing", key, top, extra=[unknown]).cert), [top.cert], code=bad,
          rule="RFC 5280 4.2, 6.1.4 (o)")
    f.add("struct-leaf-unknown-noncritical-ext", "leaf with an unknown non-critical extension",
          through(good.cert, extra=[unknown_soft]), [top.cert],
          rule="RFC 5280 4.2: an unrecognised non-critical extension may be ignored")
    dup_leaf = with_duplicate(
        dn(HOST), ec_key("leaf"), good,
        x509.SubjectAlternativeName(dns("evil.example.net")), arc=17, critical=False,
        ca=False, san=dns(HOST),
    )
    f.add("struct-leaf-duplicate-san", "leaf with two subjectAltName extensions",
          [dup_leaf, good.cert], [top.cert], name=HOST, code=bad,
          rule="RFC 5280 4.2: a certificate MUST NOT include more than one instance of an "
          "extension")
    dup_inter = with_duplicate(
        dn("ST Issuing"), key, top, key_usage(digital_signature=True), arc=15, critical=True,
        ca=True,
    )
    f.add("struct-inter-duplicate-key-usage", "intermediate with two keyUsage extensions",
          through(dup_inter), [top.cert], code=bad,
          rule="RFC 5280 4.2: a certificate MUST NOT include more than one instance of an "
          "extension")
    return f.cases


def _pathlen() -> list[HardCase]:
    f = _Family("pathlen")
    top = root("PL Root", ec_key("pl-root"))
    bad = "chain_untrusted"
    rule = "RFC 5280 6.1.4 (l)/(m), 4.2.1.9"

    def ladder(label: str, lens: Sequence[int | None]) -> list[x509.Certificate]:
        """leaf, then CAs nearest first, the first of ``lens`` under the root."""
        issuer, cas = top, []
        for depth, path_len in enumerate(lens):
            issuer = sub_ca(f"PL {label} CA {depth}", ec_key(f"pl-{label}-{depth}"), issuer,
                            path_len=path_len)
            cas.append(issuer.cert)
        return [leaf(issuer), *reversed(cas)]

    f.add("pathlen-0-exceeded", "pathLen 0 CA above another CA",
          ladder("a", [0, None]), [top.cert], code=bad, rule=rule)
    f.add("pathlen-0-leaf-direct", "pathLen 0 CA issuing the leaf directly",
          ladder("b", [0]), [top.cert], rule=rule)
    f.add("pathlen-1-ok", "pathLen 1 CA, one CA below it",
          ladder("c", [1, None]), [top.cert], rule=rule)
    f.add("pathlen-1-exceeded", "pathLen 1 CA, two CAs below it",
          ladder("d", [1, None, None]), [top.cert], code=bad, rule=rule)
    f.add("pathlen-inner-zero-violated", "pathLen 2 CA, then a pathLen 0 CA with a CA below it",
          ladder("e", [2, 0, None]), [top.cert], code=bad,
          rule=rule + ": every constraint on the path applies")
    f.add("pathlen-inner-larger-ignored", "pathLen 1 CA, then a pathLen 5 CA, then a CA",
          ladder("f", [1, 5, None]), [top.cert], code=bad,
          rule=rule + ": a later, larger pathLen does not raise max_path_length")
    old_key, new_key = ec_key("pl-roll-old"), ec_key("pl-roll-new")
    old = sub_ca("PL Rollover CA", old_key, top, path_len=0)
    new = Authority(make_cert(dn("PL Rollover CA"), new_key, old, ca=True), new_key)
    f.add("pathlen-self-issued-not-counted",
          "pathLen 0 CA, then its self-issued key-rollover certificate, then the leaf",
          [leaf(new), new.cert, old.cert], [top.cert],
          rule=rule + ": self-issued intermediates do not count towards pathLen")
    f.add("pathlen-deep-chain-6", "six CAs without pathLen",
          ladder("g", [None] * 6), [top.cert], rule=rule)
    f.add("pathlen-deep-chain-10", "ten CAs without pathLen",
          ladder("h", [None] * 10), [top.cert], code=bad,
          rule="mesh rule: at most policy.max_depth (8) intermediates by default, as pyca")
    f.add("pathlen-deep-chain-limited", "pathLen 3 at the top of a five-CA chain",
          ladder("i", [3, None, None, None, None]), [top.cert], code=bad, rule=rule)
    return f.cases


def _crl() -> list[HardCase]:
    f = _Family("crl")
    top = root("CRL Root", ec_key("crl-root"))
    inter = sub_ca("CRL Issuing", ec_key("crl-inter"), top)
    end = leaf(inter)
    chain = [end, inter.cert]
    trust = [top.cert]
    root_crl = make_crl(top)

    def add(id: str, description: str, leaf_crl: x509.CertificateRevocationList, *,
            rule: str, code: str | None = None, upper: x509.CertificateRevocationList = root_crl,
            path: Sequence[x509.Certificate] = chain) -> None:
        f.add(id, description, path, trust, crls=[upper, leaf_crl], rule=rule, code=code)

    add("crl-not-revoked", "issuer's CRL does not list the leaf", make_crl(inter),
        rule="RFC 5280 6.3.3")
    add("crl-leaf-revoked", "issuer's CRL lists the leaf",
        make_crl(inter, revoked=[end.serial_number]),
        code="revoked", rule="RFC 5280 6.3.3 (i)")
    add("crl-other-issuer-lists-serial",
        "the root's CRL lists the leaf's serial number; the issuer's does not",
        make_crl(inter), upper=make_crl(top, revoked=[end.serial_number]),
        rule="RFC 5280 5.1, 6.3.3: a serial number is unique per issuer; another issuer's CRL "
        "does not revoke this certificate")
    add("crl-intermediate-revoked-by-root", "the root's CRL lists the intermediate",
        make_crl(inter), upper=make_crl(top, revoked=[inter.cert.serial_number]),
        code="revoked", rule="RFC 5280 6.3.3 (i), 6.1.3 (a)(3)")
    unknown = (x509.UnrecognizedExtension(UNKNOWN_OID, b"\x05\x00"), True)
    add("crl-unknown-critical-extension", "issuer's CRL carries an unknown critical extension",
        make_crl(inter, extra=[unknown]), code="crl_invalid",
        rule="RFC 5280 5.2: a CRL with an unrecognised critical extension MUST NOT be used")
    add("crl-unknown-noncritical-extension",
        "issuer's CRL carries an unknown non-critical extension",
        make_crl(inter, extra=[(unknown[0], False)]),
        rule="RFC 5280 5.2: unrecognised non-critical CRL extensions may be ignored")
    add("crl-number-missing", "issuer's CRL has no CRLNumber",
        make_crl(inter, number=None), code="crl_invalid",
        rule="RFC 5280 5.2.3: CRL issuers MUST include the CRL number (strict reading: a CRL "
        "without one is not a conforming CRL and is not used)")
    add("crl-number-critical", "issuer's CRL marks CRLNumber critical",
        make_crl(inter, number_critical=True), code="crl_invalid",
        rule="RFC 5280 5.2.3: the CRL number MUST be non-critical")
    no_crl_sign = sub_ca("CRL Cert-only Issuing", ec_key("crl-nosign"), top,
                         usage=key_usage(key_cert_sign=True))
    f.add("crl-issuer-without-crlsign",
          "the leaf's issuer signed its CRL but its keyUsage lacks cRLSign",
          [leaf(no_crl_sign), no_crl_sign.cert], trust, crls=[root_crl, make_crl(no_crl_sign)],
          code="crl_invalid", rule="RFC 5280 6.3.3 (f): the CRL issuer's keyUsage must assert "
          "cRLSign")
    add("crl-idp-only-ca-certs-for-leaf",
        "issuer's CRL is onlyContainsCACerts; the leaf is not a CA",
        make_crl(inter, idp=idp(cas=True)), code="crl_invalid",
        rule="RFC 5280 6.3.3 (b)(2)(iii): the CRL does not cover the leaf, so its status is "
        "undetermined")
    add("crl-idp-only-user-certs-for-leaf", "issuer's CRL is onlyContainsUserCerts; leaf covered",
        make_crl(inter, idp=idp(users=True)), rule="RFC 5280 6.3.3 (b)(2)(ii)")
    add("crl-root-idp-only-user-certs", "the root's CRL is onlyContainsUserCerts; intermediate "
        "not covered", make_crl(inter), upper=make_crl(top, idp=idp(users=True)),
        code="crl_invalid", rule="RFC 5280 6.3.3 (b)(2)(ii): the CRL does not cover CA "
        "certificates, so the intermediate's status is undetermined")
    add("crl-root-idp-only-ca-certs", "the root's CRL is onlyContainsCACerts; intermediate covered",
        make_crl(inter), upper=make_crl(top, idp=idp(cas=True)),
        rule="RFC 5280 6.3.3 (b)(2)(iii)")
    cdp = "http://crl.hardpki.example/issuing.crl"
    with_cdp = leaf(inter, cdp=cdp)
    add("crl-idp-dp-match", "leaf CDP and the CRL's IDP name the same URL",
        make_crl(inter, idp=idp(url=cdp)), path=[with_cdp, inter.cert],
        rule="RFC 5280 6.3.3 (b)(2)(i)")
    add("crl-idp-dp-mismatch", "leaf CDP names another URL than the CRL's IDP",
        make_crl(inter, idp=idp(url="http://crl.hardpki.example/other.crl")),
        path=[with_cdp, inter.cert], code="crl_invalid",
        rule="RFC 5280 6.3.3 (b)(2)(i): the CRL is for another distribution point, so the "
        "leaf's status is undetermined")
    add("crl-delta-only", "only a delta CRL (DeltaCRLIndicator) for the issuer",
        make_crl(inter, number=2, delta_of=1), code="crl_invalid",
        rule="RFC 5280 5.2.4, 6.3.3 (c)/(d): a delta CRL needs its complete CRL; alone it "
        "determines nothing")
    add("crl-this-update-future", "issuer's CRL thisUpdate is after the judgement time",
        make_crl(inter, this_update=AT + HOUR), code="crl_invalid",
        rule="RFC 5280 5.1.2.4 (a CRL from the future is not yet issued; OpenSSL: CRL not "
        "yet valid)")
    add("crl-next-update-passed", "issuer's CRL nextUpdate has passed",
        make_crl(inter, this_update=AT - 8 * DAY, next_update=AT - HOUR), code="crl_stale",
        rule="RFC 5280 6.3.3 (a)(2): the CRL must be current")
    add("crl-wrong-key", "issuer's CRL (right name and AKI) signed by another key",
        make_crl(inter, signer=ec_key("crl-impostor")), code="crl_signature_invalid",
        rule="RFC 5280 6.3.3 (g)")
    return f.cases


def _hostname() -> list[HardCase]:
    f = _Family("hostname")
    top = root("HN Root", ec_key("hn-root"))
    inter = sub_ca("HN Issuing", ec_key("hn-inter"), top)
    trust = [top.cert]
    miss = "name_mismatch"
    wild = "RFC 6125 6.4.3: a wildcard is the whole left-most label and matches one label"

    def check(id: str, description: str, san: Sequence[x509.GeneralName] | None, name: str, *,
              rule: str, code: str | None = None, cn: str = HOST) -> None:
        f.add(id, description, [leaf(inter, cn, san=san), inter.cert], trust, name=name,
              rule=rule, code=code)

    check("host-exact-dns", "SAN svc.example.com, expected svc.example.com", dns(HOST), HOST,
          rule="RFC 6125 6.4.1")
    check("host-case-insensitive", "SAN *.Example.COM, expected A.EXAMPLE.com",
          dns("*.Example.COM"), "A.EXAMPLE.com", rule="RFC 6125 6.4.1: case-insensitive")
    check("host-wildcard-one-label", "SAN *.example.com, expected a.example.com",
          dns("*.example.com"), "a.example.com", rule=wild)
    check("host-wildcard-bare-domain", "SAN *.example.com, expected example.com",
          dns("*.example.com"), "example.com", code=miss, rule=wild)
    check("host-wildcard-two-labels", "SAN *.example.com, expected a.b.example.com",
          dns("*.example.com"), "a.b.example.com", code=miss, rule=wild)
    check("host-partial-wildcard-prefix", "SAN f*.example.com, expected foo.example.com",
          dns("f*.example.com"), "foo.example.com", code=miss,
          rule="RFC 6125 6.4.3 (partial-label wildcards MAY be refused; CA/B BR 7.1.4.2.1 "
          "forbid them) and RFC 9525 6.3")
    check("host-partial-wildcard-suffix", "SAN *oo.example.com, expected foo.example.com",
          dns("*oo.example.com"), "foo.example.com", code=miss,
          rule="RFC 6125 6.4.3 / RFC 9525 6.3: partial-label wildcards refused")
    check("host-wildcard-not-leftmost", "SAN a.*.example.com, expected a.b.example.com",
          dns("a.*.example.com"), "a.b.example.com", code=miss, rule=wild)
    check("host-san-beats-cn", "CN cn.example.com, SAN san.example.com, expected the CN",
          dns("san.example.com"), "cn.example.com", cn="cn.example.com", code=miss,
          rule="RFC 6125 6.4.4: no CN-ID check when the certificate has a DNS-ID")
    check("host-san-match-other-cn", "CN cn.example.com, SAN san.example.com, expected the SAN",
          dns("san.example.com"), "san.example.com", cn="cn.example.com",
          rule="RFC 6125 6.4.4")
    check("host-cn-only", "no SAN, CN cn.example.com, expected cn.example.com",
          None, "cn.example.com", cn="cn.example.com",
          rule="RFC 6125 6.4.4: the CN is used only when there is no SAN")
    check("host-cn-only-mismatch", "no SAN, CN cn.example.com, expected other.example.com",
          None, "other.example.com", cn="cn.example.com", code=miss, rule="RFC 6125 6.4.4")
    check("host-ip-san", "SAN IP 192.0.2.10, expected 192.0.2.10",
          dns(HOST) + ips("192.0.2.10"), "192.0.2.10",
          rule="RFC 6125 / RFC 5280 4.2.1.6: iPAddress")
    check("host-ipv6-san-other-spelling", "SAN IP 2001:db8::1, expected 2001:db8:0:0::1",
          dns(HOST) + ips("2001:db8::1"), "2001:db8:0:0::1",
          rule="RFC 5280 4.2.1.6: IP addresses compare as octets")
    check("host-ip-in-dns-san", "SAN dNSName \"192.0.2.10\", expected IP 192.0.2.10",
          dns("192.0.2.10"), "192.0.2.10", code=miss,
          rule="RFC 6125 / RFC 9525 6.2.1: an IP reference identity matches only an iPAddress SAN")
    check("host-ip-in-cn-only", "no SAN, CN 192.0.2.10, expected IP 192.0.2.10",
          None, "192.0.2.10", cn="192.0.2.10", code=miss,
          rule="RFC 9525 6.2.1 (and OpenSSL X509_check_ip): IPs only from iPAddress SANs")
    check("host-dns-expected-ip-san-only", "SAN IP 192.0.2.10 only, expected svc.example.com",
          ips("192.0.2.10"), HOST, cn="other.example.com", code=miss,
          rule="RFC 6125 6.4: no DNS-ID matches (the CN names another host)")
    return f.cases


_BUILDERS = (
    _cross,
    _bridge,
    _same_name,
    _expired_candidate,
    _weak_candidate,
    _bad_candidate,
    _eku,
    _name_constraints,
    _structure,
    _pathlen,
    _crl,
    _hostname,
)


@functools.cache
def cases() -> tuple[HardCase, ...]:
    """Every case, built once per process."""
    out: list[HardCase] = []
    for build in _BUILDERS:
        out.extend(build())
    ids = [c.id for c in out]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, duplicates
    return tuple(out)


def case_by_id(case_id: str) -> HardCase:
    for case in cases():
        if case.id == case_id:
            return case
    raise KeyError(case_id)
