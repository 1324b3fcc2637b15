"""Three judges of a :class:`hardpki.HardCase`: mesh, pyca's verifier, openssl verify.

* :func:`mesh_verdict` — ``mesh.validation.validate_peer``. CRLs go through
  the ``crl_files=`` keyword when validate_peer has it (the strict validator:
  CRLs given out of band apply to every certificate whose issuer issued
  them), and always through a ``crl_lookup`` keyed by each presented
  certificate's CDP URL (the CRL of that certificate's issuer). Today's
  validator has only the latter, so it does not revocation-check a
  certificate without a CDP.
* :func:`pyca_verdict` — ``cryptography.x509.verification`` (the web-PKI
  profile of CA/B Forum), server verifier for a server with an expected name,
  client verifier otherwise. It has no CRL support: after a successful verify
  the leaf's serial is looked up in any given CRL issued (name and signature)
  by the leaf's issuer ("pyca + a leaf CRL check").
* :func:`openssl_verdict` — Debian's ``openssl verify -x509_strict
  -auth_level 2 -purpose sslserver|sslclient -attime T`` in a temporary
  directory, with ``-crl_check_all -CRLfile`` when the case has CRLs and
  ``-verify_hostname``/``-verify_ip`` when it names the peer. ``-auth_level 2``
  (112-bit security: no SHA-1, no RSA under 2048) is mesh's weak-crypto line,
  as in ``test_oracle.py``.

Each returns the accept/reject answer and a short reason; they never raise
for anything a certificate contains.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from hardpki import HardCase
from mesh.errors import ValidationFailed
from mesh.validation import CrlIndex, ValidationPolicy, crl_lookup, validate_peer

__all__ = [
    "ORACLES",
    "mesh_takes_crl_files",
    "mesh_verdict",
    "openssl_available",
    "openssl_verdict",
    "pyca_verdict",
]

PEM = serialization.Encoding.PEM


# -- mesh ---------------------------------------------------------------------------


def mesh_takes_crl_files() -> bool:
    """Does validate_peer take CRLs out of band (the strict validator's keyword)?"""
    return "crl_files" in inspect.signature(validate_peer).parameters


def _crls_by_cdp(case: HardCase) -> dict[str, CrlIndex | ValidationFailed]:
    """url -> CRL for every presented certificate naming a CDP: the first given
    CRL whose issuer name is the certificate's issuer name."""
    found: dict[str, CrlIndex | ValidationFailed] = {}
    for cert in case.chain:
        try:
            points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except (x509.ExtensionNotFound, x509.DuplicateExtension, ValueError):
            continue
        urls = [
            str(name.value)
            for point in points
            for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)
        ]
        crl = next((c for c in case.crls if c.issuer == cert.issuer), None)
        if crl is None:
            continue
        for url in urls:
            try:
                found.setdefault(url, CrlIndex.from_crl(crl, source=url))
            except ValidationFailed as exc:
                found.setdefault(url, exc)
    return found


def mesh_verdict(case: HardCase) -> tuple[bool, str | None, str]:
    """(accepted, primary failure code or None, detail) from validate_peer."""
    policy = ValidationPolicy(purpose=case.purpose, expected_name=case.expected_name)
    kwargs: dict[str, Any] = {}
    if mesh_takes_crl_files():
        kwargs["crl_files"] = case.crls
    # Certificates that do name a CDP find the same CRL there either way.
    lookup = crl_lookup(_crls_by_cdp(case))
    try:
        verdict = validate_peer(
            list(case.chain), trust=list(case.trust), at=case.at, crls=lookup, policy=policy,
            **kwargs,
        )
    except Exception as exc:  # a crash is an answer too, and must show in the report
        return False, "raised", f"{type(exc).__name__}: {exc}"
    primary = verdict.primary
    if primary is None:
        return verdict.accepted, None, "ok"
    return verdict.accepted, primary.code.code, primary.detail


# -- pyca ---------------------------------------------------------------------------


def _subject(name: str) -> verification.Subject:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def pyca_verdict(case: HardCase) -> tuple[bool, str]:
    """cryptography's verifier plus a CRL check of the leaf."""
    try:
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(list(case.trust)))
            .time(case.at)
        )
        if case.purpose == "server" and case.expected_name:
            verifier: Any = builder.build_server_verifier(_subject(case.expected_name))
            chain = verifier.verify(case.leaf, list(case.intermediates))
        else:
            verifier = builder.build_client_verifier()
            chain = verifier.verify(case.leaf, list(case.intermediates)).chain
    except Exception as exc:  # VerificationError, or a parse error of a bad certificate
        return False, f"{type(exc).__name__}: {exc}"
    if len(chain) > 1:
        issuer = chain[1]
        for crl in case.crls:
            if crl.issuer != issuer.subject:
                continue
            try:
                signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
            except Exception:
                signed = False
            if signed and crl.get_revoked_certificate_by_serial_number(case.leaf.serial_number):
                return False, "revoked (leaf CRL check)"
    return True, "ok"


# -- openssl ------------------------------------------------------------------------


@functools.cache
def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def _pem(items: Any) -> bytes:
    return b"".join(item.public_bytes(PEM) for item in items)


def openssl_command(case: HardCase, where: Path) -> list[str]:
    """Write the case's files into ``where``; the ``openssl verify`` command line."""
    purpose = "sslserver" if case.purpose == "server" else "sslclient"
    cmd = [
        "openssl", "verify", "-x509_strict", "-auth_level", "2", "-purpose", purpose,
        "-attime", str(int(case.at.timestamp())),
    ]
    (where / "trust.pem").write_bytes(_pem(case.trust))
    cmd += ["-CAfile", str(where / "trust.pem")]
    if case.intermediates:
        (where / "inters.pem").write_bytes(_pem(case.intermediates))
        cmd += ["-untrusted", str(where / "inters.pem")]
    if case.crls:
        (where / "crls.pem").write_bytes(_pem(case.crls))
        cmd += ["-crl_check_all", "-CRLfile", str(where / "crls.pem")]
    if case.expected_name:
        try:
            ipaddress.ip_address(case.expected_name)
        except ValueError:
            cmd += ["-verify_hostname", case.expected_name]
        else:
            cmd += ["-verify_ip", case.expected_name]
    (where / "leaf.pem").write_bytes(case.leaf.public_bytes(PEM))
    cmd.append(str(where / "leaf.pem"))
    return cmd


def openssl_verdict(case: HardCase) -> tuple[bool, str]:
    """``openssl verify`` on the case's files: (accepted, its error line or "ok")."""
    with tempfile.TemporaryDirectory(prefix="hardpki-") as tmp:
        where = Path(tmp)
        done = subprocess.run(
            openssl_command(case, where), capture_output=True, text=True, timeout=30
        )
    text = (done.stdout + done.stderr).replace(str(where) + "/", "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if done.returncode == 0:
        return True, "ok"
    errors = [line for line in lines if line.startswith("error ")]
    return False, (errors[0] if errors else " ".join(lines))[:200]


#: name -> judge returning (accepted, reason), for tables and the report.
ORACLES = {"pyca": pyca_verdict, "openssl": openssl_verdict}
