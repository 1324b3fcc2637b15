"""Complete CRL processing for the strict profile (RFC 5280 sections 5 and 6.3).

A CRL that was fetched and is signed by the certificate's issuer is still
not usable for every certificate. The strict profile refuses, as
``crl_invalid`` with a detail naming the rule, a CRL that:

* carries a critical extension mesh does not process (5.2), or a critical
  entry extension it does not process on any entry (5.3);
* has no CRLNumber (5.2.3: conforming issuers must include it) or marks it
  critical (5.2.3: it must be non-critical), or has no nextUpdate (5.1.2.5);
* lists one serial twice (the CA/Browser Forum forbids it; RFC 5280 5.1.2.6
  lists each revoked certificate once);
* is a delta CRL (5.2.4): mesh does not combine deltas with a base CRL, so a
  delta is refused with "delta CRLs are not supported" rather than read as a
  complete list;
* has a thisUpdate after the instant judged (5.1.2.4; 6.3.3 (a)): a CRL from
  the future cannot say what was revoked now (beyond :data:`CLOCK_SKEW`, five
  minutes of disagreement between the CA's clock and the appliance's);
* comes from an issuer whose keyUsage lacks cRLSign (4.2.1.3; 6.3.3 (f));
* does not cover the certificate by its issuingDistributionPoint (5.2.5;
  6.3.3 (b)): only user certificates and the certificate is a CA, only CA
  certificates and it is not, only attribute certificates, only some
  reasons (an incomplete list), an indirect CRL (not supported), or a
  distribution point name that matches none of the certificate's CRL
  Distribution Points.

Each rule is a fact of one CRL version, so the facts are read once per
:class:`~mesh.validation.revocation.CrlIndex` (:func:`crl_facts`).
"""

from __future__ import annotations

import datetime as dt

from typing import AbstractSet

from attrs import define
from cryptography import x509
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

__all__ = ["CrlFacts", "read_crl_facts", "crl_problem"]

#: CRL extensions mesh processes (or that carry no rule to process).
_KNOWN_CRL_EXTENSIONS = frozenset(
    {
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.ISSUING_DISTRIBUTION_POINT,
        ExtensionOID.DELTA_CRL_INDICATOR,
        ExtensionOID.FRESHEST_CRL,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)

#: Entry extensions mesh processes: the reason and the invalidity date are
#: informational; certificateIssuer (indirect CRLs) is refused below.
_KNOWN_ENTRY_EXTENSIONS = frozenset(
    {CRLEntryExtensionOID.CRL_REASON, CRLEntryExtensionOID.INVALIDITY_DATE}
)


@define(frozen=True, kw_only=True)
class CrlFacts:
    """What the strict rules need to know of one CRL, read once."""

    problem: str | None
    idp: x509.IssuingDistributionPoint | None


def read_crl_facts(crl: x509.CertificateRevocationList) -> tuple[AbstractSet[int], CrlFacts]:
    """The revoked serials, and the version-wide problem (or None) with the IDP.

    One pass over the entries reads each serial and its extensions: for a
    large CRL the pass is most of the cost of indexing it (about 2 us an
    entry here), so it is made once per CRL version, in the worker thread
    that parses it.
    """
    # The set grows entry by entry, in Python: a worker thread that indexes a
    # 37 MiB CRL gives the event loop the GIL between entries, where one
    # frozenset() over a million serials would hold it for tens of ms.
    serials: set[int] = set()
    entries = 0
    entry_problem: str | None = None
    for entry in crl:
        serials.add(entry.serial_number)
        entries += 1
        if entry_problem is None:
            entry_problem = _entry_problem(entry)
    problem, idp = _crl_problem(crl)
    if problem is None:
        problem = entry_problem
    if problem is None and len(serials) != entries:
        problem = (
            "a serial is listed twice (CA/Browser Forum BR 7.2.2; RFC 5280 5.1.2.6 "
            "lists each revoked certificate once)"
        )
    return serials, CrlFacts(problem=problem, idp=idp)


def _entry_problem(entry: x509.RevokedCertificate) -> str | None:
    for extension in entry.extensions:
        if extension.oid == CRLEntryExtensionOID.CERTIFICATE_ISSUER:
            return "RFC 5280 5.3.3: indirect CRL entries (certificateIssuer) are not supported"
        if extension.critical and extension.oid not in _KNOWN_ENTRY_EXTENSIONS:
            return (
                "RFC 5280 5.3: unrecognised critical CRL entry extension "
                f"{extension.oid.dotted_string}"
            )
    return None


def _crl_problem(
    crl: x509.CertificateRevocationList,
) -> tuple[str | None, x509.IssuingDistributionPoint | None]:
    """The problem of the CRL's own fields and extensions, and its IDP."""
    idp: x509.IssuingDistributionPoint | None = None
    number_seen = False
    for extension in crl.extensions:
        oid = extension.oid
        if oid == ExtensionOID.DELTA_CRL_INDICATOR:
            return "RFC 5280 5.2.4: delta CRLs are not supported", None
        if oid == ExtensionOID.CRL_NUMBER:
            number_seen = True
            if extension.critical:
                return "RFC 5280 5.2.3: the CRLNumber extension must not be critical", None
        elif oid == ExtensionOID.ISSUING_DISTRIBUTION_POINT:
            idp = extension.value
        elif extension.critical and oid not in _KNOWN_CRL_EXTENSIONS:
            return f"RFC 5280 5.2: unrecognised critical CRL extension {oid.dotted_string}", None
    if not number_seen:
        return "RFC 5280 5.2.3: the CRL has no CRLNumber extension", None
    if crl.next_update_utc is None:
        return "RFC 5280 5.1.2.5: the CRL has no nextUpdate", idp
    if idp is not None and any(
        not isinstance(name, x509.UniformResourceIdentifier) for name in idp.full_name or ()
    ):
        return (
            "the CRL's issuing distribution point names something other than a URI "
            "(CA/Browser Forum BR 7.2.2.1)",
            idp,
        )
    return None, idp


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _cdp_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name for point in points for name in (point.full_name or ())]


def _scope_problem(idp: x509.IssuingDistributionPoint, cert: x509.Certificate) -> str | None:
    if idp.only_contains_user_certs and _is_ca(cert):
        return (
            "RFC 5280 5.2.5: the CRL covers only end-entity certificates "
            "(onlyContainsUserCerts) and this one is a CA"
        )
    if idp.only_contains_ca_certs and not _is_ca(cert):
        return (
            "RFC 5280 5.2.5: the CRL covers only CA certificates "
            "(onlyContainsCACerts) and this one is not a CA"
        )
    if idp.only_contains_attribute_certs:
        return "RFC 5280 5.2.5: the CRL covers only attribute certificates"
    if idp.only_some_reasons is not None:
        return (
            "RFC 5280 5.2.5: the CRL lists only some revocation reasons "
            "(onlySomeReasons), so it cannot show the certificate is not revoked"
        )
    if idp.indirect_crl:
        return "RFC 5280 5.2.5: indirect CRLs are not supported"
    if idp.full_name is not None:
        names = _cdp_names(cert)
        if any(not isinstance(name, x509.UniformResourceIdentifier) for name in names):
            return (
                "the certificate's CRL Distribution Point names something other than a URI, "
                "so it cannot be matched to the CRL's issuing distribution point "
                "(CA/Browser Forum BR 7.1.2.11.2)"
            )
        if not any(name in names for name in idp.full_name):
            return (
                "RFC 5280 6.3.3 (b)(2): the CRL's issuing distribution point "
                "matches none of the certificate's CRL Distribution Points"
            )
    elif idp.relative_name is not None:
        return "RFC 5280 5.2.5: relative distribution point names are not supported"
    return None


#: How far ahead of the clock a CRL's thisUpdate may be: clock skew between
#: the CA that signed it and the appliance, not a CRL from the future. (Two
#: processes of one emulation, or two real hosts, never agree to the second.)
CLOCK_SKEW = dt.timedelta(minutes=5)


def crl_problem(
    facts: CrlFacts,
    *,
    this_update: dt.datetime,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    at: dt.datetime,
) -> str | None:
    """Why this CRL cannot decide ``cert``'s status at ``at``, or None."""
    if facts.problem is not None:
        return facts.problem
    if this_update > at + CLOCK_SKEW:
        return (
            f"RFC 5280 5.1.2.4: the CRL's thisUpdate {this_update.isoformat()} "
            f"is after {at.isoformat()} (more than the "
            f"{int(CLOCK_SKEW.total_seconds() // 60)} minutes of clock skew allowed)"
        )
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.crl_sign:
        return "RFC 5280 4.2.1.3 and 6.3.3 (f): the CRL issuer's keyUsage lacks cRLSign"
    if facts.idp is not None:
        return _scope_problem(facts.idp, cert)
    return None
