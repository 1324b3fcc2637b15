"""Operator credentials for mutual TLS: a CA of their own, and client certificates from it.

Why a separate CA: the appliances' CA vouches for appliances to each other;
if a console accepted its certificates from operators too, every appliance's
key (and every copy of the PKI folder) would be an operator credential. So
operators get their own root, which consoles name in ``operator_ca`` and
trust for nothing else, and their certificates say what they are for: the
``clientAuth`` extended key usage alone (a web server's certificate cannot
double as one, nor the other way round), ``digitalSignature`` as the only key
usage, not a CA. EC P-256 keys: small, fast, and what curl, browsers and
``ssl`` all take.

``mesh pki operator DIR`` writes, as a serious tool's ``ca``/``client``
commands do (and as the appliance PKI's files are):

* ``operator-ca.crt`` (0644) and ``operator-ca.key`` (0600): made on first
  use, reused afterwards so that every operator of a run shares one CA;
* ``NAME.crt`` (0644) and ``NAME.key`` (0600) for the operator ``NAME``.

Every instant is passed in: a run whose emulated clock starts in 2027 issues
operator certificates valid then, as the consoles judge them by that clock.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesh.errors import InputError
from mesh.pki.file_input import read_input
from mesh.pki.file_output import KEY_MODE, certificate_bytes, write_file

__all__ = [
    "OperatorCa", "OperatorCredential", "OPERATOR_CA_FILE", "OPERATOR_CA_KEY_FILE",
    "issue_operator", "load_operator_cas",
]

OPERATOR_CA_FILE = "operator-ca.crt"
OPERATOR_CA_KEY_FILE = "operator-ca.key"
DEFAULT_CA_NAME = "Mesh Operator CA"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_usage(*, sign_certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=sign_certs,
        crl_sign=sign_certs, encipher_only=False, decipher_only=False,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mesh operators"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@define(frozen=True, kw_only=True)
class OperatorCredential:
    """An operator's client certificate and its key (never logged: the key is not in repr)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)


@define(frozen=True, kw_only=True)
class OperatorCa:
    """The CA that issues operator certificates, and nothing else."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey = field(repr=False)

    @classmethod
    def create(cls, *, not_before: dt.datetime, days: int = 3650,
               name: str = DEFAULT_CA_NAME) -> OperatorCa:
        key = _key()
        subject = _name(name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_before + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign_certs=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert=cert, key=key)

    def issue(self, name: str, *, not_before: dt.datetime, days: int = 365,
              not_after: dt.datetime | None = None) -> OperatorCredential:
        """A client certificate for the operator ``name`` (CN), clientAuth only."""
        key = _key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name)).issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after or not_before + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign_certs=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return OperatorCredential(cert=cert, key=key)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_ca(folder: Path) -> OperatorCa | None:
    cert_path, key_path = folder / OPERATOR_CA_FILE, folder / OPERATOR_CA_KEY_FILE
    if not cert_path.exists() and not key_path.exists():
        return None
    cert = x509.load_pem_x509_certificate(read_input(cert_path, "operator CA certificate"))
    try:
        key = serialization.load_pem_private_key(read_input(key_path, "operator CA key"), None)
    except (TypeError, ValueError):
        raise InputError(str(key_path), "is not an unencrypted PEM key",
                         "restore it, or remove both operator-ca files to make a new CA") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or (
            key.public_key().public_numbers() != cert.public_key().public_numbers()):  # type: ignore[union-attr]
        raise InputError(str(key_path), f"is not the key of {cert_path}",
                         "restore it, or remove both operator-ca files to make a new CA")
    return OperatorCa(cert=cert, key=key)


def issue_operator(folder: Path, name: str, *, at: dt.datetime, days: int = 365,
                   force: bool = False) -> tuple[Path, Path, Path]:
    """Write ``NAME.crt``/``NAME.key`` (and the CA, the first time) into ``folder``.

    Returns:
        The CA certificate, the operator certificate and its key.

    Raises:
        InputError: the folder is missing, the name is not a file name, the
            operator's files exist (without ``force``), or the CA files are broken.
    """
    if not folder.is_dir():
        raise InputError(str(folder), "is not a folder", "create it first, or give a PKI folder")
    if not name or "/" in name or name.startswith(".") or name.startswith("operator-ca"):
        raise InputError("--name", f"{name!r} cannot name the operator's files",
                         "use a plain name such as 'operator' or 'alice'")
    if days <= 0:
        raise InputError("--days", f"{days} is not a number of days", "give a positive number")
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    if (cert_path.exists() or key_path.exists()) and not force:
        raise InputError(str(cert_path), "already exists",
                         "choose another --name, or pass --force to replace it")
    ca = _load_ca(folder)
    if ca is None:
        ca = OperatorCa.create(not_before=at)
        write_file(folder / OPERATOR_CA_KEY_FILE, _key_pem(ca.key), mode=KEY_MODE)
        write_file(folder / OPERATOR_CA_FILE, certificate_bytes(ca.cert))
    issued = ca.issue(name, not_before=at, days=days,
                      not_after=min(at + dt.timedelta(days=days), ca.cert.not_valid_after_utc))
    write_file(key_path, _key_pem(issued.key), mode=KEY_MODE)
    write_file(cert_path, certificate_bytes(issued.cert))
    return folder / OPERATOR_CA_FILE, cert_path, key_path


def load_operator_cas(path: Path) -> tuple[x509.Certificate, ...]:
    """The CA certificates in ``path`` (PEM); a one-line error when there are none."""
    data = read_input(path, "operator CA file")
    try:
        certs = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        certs = ()
    if not certs:
        raise InputError(str(path), "holds no PEM certificate",
                         "name the operator-ca.crt that mesh pki operator wrote")
    for cert in certs:
        try:
            ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise InputError(str(path), f"holds {cert.subject.rfc4514_string()}, not a CA certificate",
                             "name the operator CA's certificate (operator-ca.crt), not an operator's")
    return certs


def _command(args: argparse.Namespace) -> int:
    """``mesh pki operator DIR [--name N] [--days D] [--at T] [--force]``."""
    from mesh.pki.commands import parse_instant

    ca, cert, key = issue_operator(Path(args.dir), args.name, at=parse_instant(args.at),
                                   days=args.days, force=args.force)
    print(f"wrote {cert} and {key} (0600), issued by {ca}")
    print(f"consoles trust it with operator_ca = \"{ca}\" in their node config; then:")
    print(f"  curl --cacert ROOT --cert {cert} --key {key} -X POST URL/api/v1/crls/refresh")
    return 0
