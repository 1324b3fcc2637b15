"""Is this the peer we meant, and may its certificate be used this way?

Purpose: a leaf with an Extended Key Usage extension must list the usage the
connection needs (``clientAuth`` for the dialling side of a mutual channel,
``serverAuth`` for the listening side) or ``anyExtendedKeyUsage``; a leaf
without the extension is unrestricted (RFC 5280 section 4.2.1.12).

Name: a valid certificate for ``sensor-7`` must not pass as the HA console.
RFC 6125 rules: the SAN's DNS names (or IP addresses) when the certificate
has a SAN, the subject CN only when it has none; a wildcard is allowed only
as the whole left-most label and matches exactly one label
(``*.contoso.com`` matches ``sensor.contoso.com``, not ``contoso.com`` nor
``a.b.contoso.com``). Comparison ignores case and a trailing dot.
"""

from __future__ import annotations

import ipaddress
from typing import Sequence

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesh.errors import FailureCode
from mesh.validation.finding import Finding

__all__ = [
    "check_constrained_cn",
    "check_name",
    "check_path_purpose",
    "check_purpose",
    "name_matches",
    "names_of",
]

_USAGE = {
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
}
#: RFC 5280 names of the usages a detail may mention; others print dotted.
_USAGE_NAMES = {
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


def _usage_name(oid: x509.ObjectIdentifier) -> str:
    return _USAGE_NAMES.get(oid, oid.dotted_string)


def check_purpose(
    leaf: x509.Certificate, purpose: str | None, *, any_usage: bool = True
) -> list[Finding]:
    """``wrong_purpose`` when the leaf's EKU excludes ``purpose`` (client/server).

    ``any_usage=False`` (the strict profile): an EKU listing only
    anyExtendedKeyUsage does not name the purpose either. RFC 5280 4.2.1.12
    lets an application that needs a particular purpose reject it, and
    OpenSSL's purpose check and pyca's verifier both do.
    """
    if purpose is None:
        return []
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    wanted = _USAGE[purpose]
    if wanted in eku or (any_usage and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku):
        return []
    listed = ", ".join(_usage_name(oid) for oid in eku) or "nothing"
    return [
        Finding.about(
            FailureCode.WRONG_PURPOSE,
            leaf,
            f"extended key usage lists {listed}; this connection needs {_usage_name(wanted)}",
            depth=0,
        )
    ]


def names_of(leaf: x509.Certificate) -> list[str]:
    """The names the certificate claims: SAN DNS names and IPs, else the CN(s)."""
    dns, ips, has_san = _presented(leaf)
    if has_san:
        return dns + [str(ip) for ip in ips]
    return dns


def _presented(
    leaf: x509.Certificate,
) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]:
    """(DNS names, IP addresses, whether a SAN exists). Without a SAN the DNS
    names are the subject's CNs; IP addresses only ever come from IP SANs."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = [ip for ip in san.get_values_for_type(x509.IPAddress) if not isinstance(ip, (ipaddress.IPv4Network, ipaddress.IPv6Network))]
        return dns, ips, True
    cns = [
        str(attr.value) for attr in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    return cns, [], False


def name_matches(pattern: str, name: str) -> bool:
    """RFC 6125 matching of one presented DNS ``pattern`` against the wanted ``name``."""
    pattern = pattern.strip().rstrip(".").lower()
    name = name.strip().rstrip(".").lower()
    if not pattern or not name:
        return False
    if _is_ip(name) or _is_ip(pattern):
        return _is_ip(name) and _is_ip(pattern) and ipaddress.ip_address(
            pattern
        ) == ipaddress.ip_address(name)
    if pattern.startswith("*."):
        suffix = pattern[2:]
        if "*" in suffix or "." not in suffix:
            return False
        head, _, tail = name.partition(".")
        return bool(head) and tail == suffix
    return "*" not in pattern and pattern == name


def check_name(leaf: x509.Certificate, expected: str | None) -> list[Finding]:
    """``name_mismatch`` unless one of the leaf's names matches ``expected``.

    An expected IP address matches only an IP address SAN (RFC 6125 section
    6.2.1 and RFC 5280 4.2.1.6: an address written as a DNS name or a CN is
    not an IP identity); an expected DNS name matches the SAN's DNS names,
    or the CN when the certificate has no SAN at all.
    """
    if expected is None:
        return []
    dns, ips, _ = _presented(leaf)
    if _is_ip(expected):
        wanted = ipaddress.ip_address(expected)
        matched = any(ip == wanted for ip in ips)
    else:
        matched = any(not _is_ip(pattern) and name_matches(pattern, expected) for pattern in dns)
    if matched:
        return []
    shown = ", ".join(names_of(leaf)) or "no name"
    return [
        Finding.about(
            FailureCode.NAME_MISMATCH,
            leaf,
            f"expected {expected!r}; the certificate names {shown}",
            depth=0,
        )
    ]


def check_constrained_cn(path: Sequence[x509.Certificate], expected: str | None) -> list[Finding]:
    """``chain_untrusted`` for a SAN-less leaf that would be named by its CN under name constraints.

    Name constraints (RFC 5280 4.2.1.10) constrain the SAN, not the subject
    CN, which RFC 6125 6.4.4 keeps only as a legacy fallback. A CA that
    constrains names therefore cannot vouch for a name read from a CN, so
    mesh does not read one there: a leaf without a SAN, checked for a DNS
    name on a path where any CA carries name constraints, is refused, as
    Go's verifier refuses it (its NameConstraintsWithoutSANs). Without name
    constraints on the path the CN still names the leaf (mesh's rule for the
    source document's CN-named certificates).
    """
    if expected is None or _is_ip(expected) or not path:
        return []
    _, _, has_san = _presented(path[0])
    if has_san:
        return []
    for depth, cert in enumerate(path[1:], 1):
        try:
            cert.extensions.get_extension_for_class(x509.NameConstraints)
        except x509.ExtensionNotFound:
            continue
        return [
            Finding.about(
                FailureCode.CHAIN_UNTRUSTED,
                path[0],
                f"RFC 5280 4.2.1.10: {cert.subject.rfc4514_string() or 'a CA'} constrains names, "
                "and this certificate has no subjectAltName, so its name would come from its CN, "
                "which name constraints do not cover; put the name in a DNS subjectAltName",
                depth=0,
            )
        ]
    return []


def check_path_purpose(
    path: Sequence[x509.Certificate], purpose: str | None, *, anchored: bool
) -> list[Finding]:
    """``wrong_purpose`` for a CA on the path whose EKU excludes ``purpose``.

    RFC 5280 4.2.1.12 defines EKU for the certificate that carries it; the
    common reading (OpenSSL's purpose check, pyca's verifier, the CA/Browser
    Forum) extends it to CAs: an intermediate limited to emailProtection
    cannot vouch for a TLS server. The trust anchor is not judged (RFC 5280
    6.1: it is a name and a key).
    """
    if purpose is None:
        return []
    wanted = _USAGE[purpose]
    last = len(path) - 1 if anchored else len(path)
    found = []
    for depth in range(1, last):
        cert = path[depth]
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            continue
        if wanted in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku:
            continue
        listed = ", ".join(_usage_name(oid) for oid in eku) or "nothing"
        found.append(
            Finding.about(
                FailureCode.WRONG_PURPOSE,
                cert,
                f"RFC 5280 4.2.1.12: this CA's extended key usage lists {listed}, "
                f"which excludes {_usage_name(wanted)} for every certificate below it",
                depth=depth,
            )
        )
    return found


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
