"""Certificate files as the source document names them, read and written.

- ``.crt``: one certificate, PEM or DER (sniffed, whatever the extension).
- ``.key``: an RSA private key, PEM, PKCS#8 or traditional ("BEGIN RSA
  PRIVATE KEY"), optionally encrypted with a passphrase. DER is accepted too.
- ``.pem`` chain: the issuing CAs' certificates, one PEM block each. The
  text ``openssl pkcs12 -nodes`` puts around blocks ("Bag Attributes",
  ``subject=``/``issuer=`` lines) is ignored, as the source document allows.
- ``.pfx``/``.p12``: PKCS#12, a key with its certificate and chain.

Why a module of its own: everything that reaches mesh from a person's disk
passes through here, so every way a file can be wrong ends here too, as one
:class:`~mesh.errors.InputError` naming the file, the problem and the fix (the
CLI prints it as one line, exit 2). The one exception is a passphrase that does
not open a key: that is the source document's own upload error, so it is a
``ValidationFailed(FailureCode.PASSPHRASE_MISMATCH)``.

Anything holding a private key (``.key``, PKCS#12) is written with mode 0600
from its creation (never chmod-ed down after the bytes are on disk), through a
temporary file in the same folder and an atomic rename.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

from attrs import define
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki.key_cost import check_key_cost, check_rsa_bits
from mesh.validation.chain import PARSE_ERRORS

__all__ = [
    "Pkcs12Contents",
    "read_input",
    "load_certificate",
    "load_certificates",
    "load_key",
    "load_pkcs12",
    "load_crl",
    "key_from_bytes",
    "certificates_from_bytes",
    "pkcs12_from_bytes",
    "certificate_bytes",
    "key_bytes",
    "chain_bytes",
    "save_certificate",
    "save_chain",
    "save_key",
    "save_pkcs12",
    "save_crl",
    "write_file",
    "KEY_MODE",
]

#: Mode of every file that holds a private key.
KEY_MODE = 0o600
_PUBLIC_MODE = 0o644

Passphrase = str | bytes | None

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_CERT_LABELS = {b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"}
_KEY_LABELS = {b"PRIVATE KEY", b"RSA PRIVATE KEY", b"ENCRYPTED PRIVATE KEY"}


@define(frozen=True, kw_only=True)
class Pkcs12Contents:
    """What a PKCS#12 file held: the key, its certificate and the other certificates."""

    key: rsa.RSAPrivateKey | None
    cert: x509.Certificate | None
    chain: tuple[x509.Certificate, ...]


# -- reading --


def read_input(path: str | os.PathLike[str], what: str = "file") -> bytes:
    """The bytes of a file a person named, or an InputError saying what is wrong."""
    where = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(where, f"no such {what}", "check the path")
    if p.is_dir():
        raise InputError(where, f"is a folder, not a {what}", f"name the {what} itself")
    try:
        data = p.read_bytes()
    except PermissionError:
        raise InputError(
            where, "cannot be read (permission denied)", "check its permissions"
        ) from None
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror})", "check the path") from None
    if not data.strip():
        raise InputError(where, "is empty", f"give a {what} with content")
    return data


def _blocks(data: bytes, where: str) -> list[tuple[bytes, bytes]]:
    """(label, whole PEM block) for each block; a BEGIN without END is truncated."""
    text = data.replace(b"\r\n", b"\n")
    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    begins = _PEM_BEGIN.findall(text)
    if len(begins) > len(blocks):
        label = begins[len(blocks)].decode()
        raise InputError(
            where,
            f"truncated PEM: a BEGIN {label} has no matching END line",
            "copy the whole file again",
        )
    return blocks


def _looks_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def _kind_of(label: bytes) -> str:
    if label in _CERT_LABELS:
        return "certificate"
    if label.endswith(b"PRIVATE KEY"):
        return "private key"
    if label == b"X509 CRL":
        return "CRL"
    if label == b"CERTIFICATE REQUEST":
        return "certificate signing request"
    return label.decode().lower()


def _parse_cert_block(block: bytes, where: str) -> x509.Certificate:
    if block.startswith(b"-----BEGIN TRUSTED CERTIFICATE-----"):
        # ``openssl x509 -trustout`` output: the DER certificate, then trust settings.
        body = b"".join(block.splitlines()[1:-1])
        try:
            der = base64.b64decode(body, validate=False)
            return x509.load_der_x509_certificate(_first_der_element(der))
        except (ValueError, binascii.Error):
            raise InputError(
                where, "holds a damaged trusted certificate", "export the certificate again"
            ) from None
    try:
        return x509.load_pem_x509_certificate(block)
    except (ValueError, x509.InvalidVersion) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(
            where, f"holds a damaged certificate ({reason})", "export the certificate again"
        ) from None


def _first_der_element(der: bytes) -> bytes:
    """The first ASN.1 element of ``der`` (length from its header)."""
    if len(der) < 2:
        return der
    first = der[1]
    if first < 0x80:
        return der[: 2 + first]
    count = first & 0x7F
    length = int.from_bytes(der[2 : 2 + count], "big")
    return der[: 2 + count + length]


def _certs_from(data: bytes, where: str) -> list[x509.Certificate]:
    if _looks_pem(data):
        blocks = _blocks(data, where)
        certs = [
            _parse_cert_block(block, where) for label, block in blocks if label in _CERT_LABELS
        ]
        if certs:
            return certs
        kinds = sorted({_kind_of(label) for label, _ in blocks})
        raise InputError(
            where,
            f"holds a {' and a '.join(kinds)}, not a certificate",
            "give the certificate (.crt) file",
        )
    try:
        return [x509.load_der_x509_certificate(data)]
    except (ValueError, x509.InvalidVersion):
        pass
    if _der_private_key(data):
        raise InputError(where, "holds a private key, not a certificate", "give the .crt file")
    if _looks_pkcs12(data):
        raise InputError(
            where,
            "is a PKCS#12 (.pfx/.p12) file, not a certificate",
            "convert it first: mesh cert convert FILE.pfx FILE.crt",
        )
    raise InputError(
        where,
        "is not a certificate (neither PEM nor DER)",
        "give a .crt in PEM or DER form",
    )


def certificates_from_bytes(data: bytes, *, where: str = "certificate") -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM blocks, bag attributes ignored, or one DER)."""
    if not data.strip():
        raise InputError(where, "is empty", "give a certificate file with content")
    return _certs_from(data, where)


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in a file (a .pem chain, or a .crt with its chain appended)."""
    data = read_input(path, "certificate file")
    return _certs_from(data, str(path))


def load_certificate(path: str | os.PathLike[str]) -> x509.Certificate:
    """The certificate of a .crt (the first one if the file holds several)."""
    return load_certificates(path)[0]


def _der_private_key(data: bytes) -> bool:
    try:
        serialization.load_der_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except TypeError:
        return True  # an encrypted PKCS#8 key: a key all the same
    except Exception:  # ValueError, UnsupportedAlgorithm: not a key we know
        return False
    return True


def _looks_pkcs12(data: bytes) -> bool:
    """PFX ::= SEQUENCE { version INTEGER (3), ... }: the version right after the header."""
    return data[:1] == b"\x30" and b"\x02\x01\x03" in data[2:8]


def _as_bytes(passphrase: Passphrase) -> bytes | None:
    if passphrase is None or passphrase == "" or passphrase == b"":
        return None
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase


def _rsa_only(key: object, where: str) -> rsa.RSAPrivateKey:
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.lstrip("_").replace("PrivateKey", "") or "non-RSA"
        raise InputError(
            where, f"holds a {kind} key, not an RSA key", "use an RSA 2048 or 4096 key"
        )
    return key


def load_key(path: str | os.PathLike[str], passphrase: Passphrase = None) -> rsa.RSAPrivateKey:
    """The RSA private key of a .key file, opened with ``passphrase`` if encrypted.

    A passphrase that does not open the key, or an encrypted key without one,
    raises ``ValidationFailed(PASSPHRASE_MISMATCH)``. A passphrase given for a
    key that is not encrypted is ignored, as ``openssl rsa -passin`` does.
    """
    where = str(path)
    data = read_input(path, "key file")
    return key_from_bytes(data, passphrase, where=where)


def key_from_bytes(
    data: bytes, passphrase: Passphrase = None, *, where: str = "key"
) -> rsa.RSAPrivateKey:
    """:func:`load_key` over bytes already read."""
    password = _as_bytes(passphrase)
    encrypted: bool | None  # None: DER that opens as no key at all
    if _looks_pem(data):
        blocks = _blocks(data, where)
        keys = [(label, block) for label, block in blocks if label.endswith(b"PRIVATE KEY")]
        if not keys:
            kinds = sorted({_kind_of(label) for label, _ in blocks})
            raise InputError(
                where,
                f"holds a {' and a '.join(kinds)}, not a private key",
                "give the .key file",
            )
        label, block = keys[0]
        encrypted = label == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
        if label not in _KEY_LABELS:
            kind = label.decode().replace(" PRIVATE KEY", "")
            raise InputError(
                where, f"holds a {kind} key, not an RSA key", "use an RSA 2048 or 4096 key"
            )
        if b"Proc-Type:" not in block:
            check_key_cost(_pem_der(block), where)
        return _open_key(
            lambda pw: serialization.load_pem_private_key(
                block, password=pw, unsafe_skip_rsa_key_validation=True),
            encrypted=encrypted,
            password=password,
            where=where,
        )
    if data[:1] == b"\x30":
        check_key_cost(data, where)
        try:
            serialization.load_der_private_key(
                data, password=None, unsafe_skip_rsa_key_validation=True)
            encrypted = False
        except TypeError:
            encrypted = True
        except UnsupportedAlgorithm:
            encrypted = False  # a key, of a kind _open_key reports as unreadable
        except ValueError:
            encrypted = None
        if encrypted is not None:
            return _open_key(
                lambda pw: serialization.load_der_private_key(
                    data, password=pw, unsafe_skip_rsa_key_validation=True),
                encrypted=encrypted,
                password=password,
                where=where,
            )
        try:
            x509.load_der_x509_certificate(data)
        except (ValueError, x509.InvalidVersion):
            pass
        else:
            raise InputError(where, "holds a certificate, not a private key", "give the .key file")
    raise InputError(
        where, "is not a private key (neither PEM nor DER)", "give the .key file in PEM form"
    )


def _open_key(
    load: Callable[[bytes | None], PrivateKeyTypes],
    *,
    encrypted: bool,
    password: bytes | None,
    where: str,
) -> rsa.RSAPrivateKey:
    if encrypted and password is None:
        raise ValidationFailed(
            FailureCode.PASSPHRASE_MISMATCH,
            f"{where}: the key is encrypted and no passphrase was given",
        )
    try:
        key = load(password if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise ValidationFailed(
                FailureCode.PASSPHRASE_MISMATCH,
                f"{where}: the passphrase does not open the key",
            ) from None
        raise InputError(
            where, f"holds a damaged private key ({exc})", "export the key again"
        ) from None
    except TypeError as exc:  # pragma: no cover - guarded by `encrypted` above
        raise ValidationFailed(FailureCode.PASSPHRASE_MISMATCH, f"{where}: {exc}") from None
    except Exception as exc:  # unsupported algorithms surface as UnsupportedAlgorithm
        raise InputError(
            where, f"holds a key that cannot be read ({exc})", "export the key again"
        ) from None
    key = _rsa_only(key, where)
    # Loaded unchecked so that the size is known before OpenSSL's key check,
    # whose cost grows with it (19 s at 65,536 bits); then checked in full.
    check_rsa_bits(key.key_size, where)
    try:
        return serialization.load_der_private_key(  # type: ignore[return-value]
            key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            password=None,
        )
    except ValueError as exc:
        raise InputError(
            where, f"holds a damaged private key ({exc})", "export the key again"
        ) from None


def _pem_der(block: bytes) -> bytes:
    """The DER inside one PEM block (empty when it is not base64)."""
    body = block.split(b"-----", 2)[-1].rsplit(b"-----END", 1)[0]
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return b""


def load_pkcs12(path: str | os.PathLike[str], passphrase: Passphrase = None) -> Pkcs12Contents:
    """The key, certificate and chain of a .pfx/.p12 file."""
    where = str(path)
    data = read_input(path, "PKCS#12 file")
    return pkcs12_from_bytes(data, passphrase, where=where)


def pkcs12_from_bytes(
    data: bytes, passphrase: Passphrase = None, *, where: str = "PKCS#12"
) -> Pkcs12Contents:
    """:func:`load_pkcs12` over bytes already read."""
    if not _looks_pkcs12(data):
        kind = "a PEM file" if _looks_pem(data) else "not a PKCS#12 file"
        raise InputError(where, f"is {kind}, not a PKCS#12 (.pfx/.p12) file", "give the .pfx file")
    password = _as_bytes(passphrase)
    attempts = [password] if password is not None else [None, b""]
    for attempt in attempts:
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, attempt)
            break
        except ValueError:
            continue
    else:
        detail = (
            "the PKCS#12 file is protected and no passphrase was given"
            if password is None
            else "the passphrase does not open the PKCS#12 file"
        )
        raise ValidationFailed(FailureCode.PASSPHRASE_MISMATCH, f"{where}: {detail}")
    return Pkcs12Contents(
        key=_rsa_only(key, where) if key is not None else None,
        cert=cert,
        chain=tuple(extra),
    )


def load_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    """A CRL file, DER or PEM."""
    where = str(path)
    data = read_input(path, "CRL file")
    try:
        if _looks_pem(data):
            crl = x509.load_pem_x509_crl(data.strip())
        else:
            crl = x509.load_der_x509_crl(data)
    except PARSE_ERRORS:  # ValueError, and InvalidVersion for a damaged version field
        raise InputError(where, "is not a CRL (neither DER nor PEM)", "give a .crl file") from None
    # cryptography parses a CRL's fields lazily: read every one a caller uses
    # now, so a damaged field is this one line and not a traceback later.
    try:
        crl.issuer, crl.last_update_utc, crl.next_update_utc
        for extension in crl.extensions:
            extension.value
        for entry in crl:
            entry.serial_number, entry.revocation_date_utc
            for extension in entry.extensions:
                extension.value
    except PARSE_ERRORS as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InputError(
            where, f"holds a damaged CRL ({reason})", "publish the CRL again"
        ) from None
    return crl


# -- encoding --


def certificate_bytes(cert: x509.Certificate, *, der: bool = False) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER if der else serialization.Encoding.PEM)


def chain_bytes(certs: Iterable[x509.Certificate]) -> bytes:
    return b"".join(certificate_bytes(c) for c in certs)


def key_bytes(
    key: rsa.RSAPrivateKey, *, passphrase: Passphrase = None, traditional: bool = False
) -> bytes:
    """PEM: PKCS#8 by default, "BEGIN RSA PRIVATE KEY" when ``traditional``."""
    password = _as_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if traditional
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


# -- writing --


def write_file(path: str | os.PathLike[str], data: bytes, *, mode: int = _PUBLIC_MODE) -> Path:
    """Write ``data`` atomically, the file created with ``mode`` from the start."""
    p = Path(path)
    where = str(path)
    if p.is_dir():
        raise InputError(where, "is a folder", "name a file to write")
    parent = p.parent
    if not parent.is_dir():
        raise InputError(where, f"folder {str(parent)!r} does not exist", "create it first")
    tmp = parent / f".{p.name}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except PermissionError:
        raise InputError(
            where, "cannot be written (permission denied)", "choose another folder"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def save_certificate(
    path: str | os.PathLike[str], cert: x509.Certificate, *, der: bool = False
) -> Path:
    return write_file(path, certificate_bytes(cert, der=der))


def save_chain(path: str | os.PathLike[str], certs: Sequence[x509.Certificate]) -> Path:
    return write_file(path, chain_bytes(certs))


def save_key(
    path: str | os.PathLike[str],
    key: rsa.RSAPrivateKey,
    *,
    passphrase: Passphrase = None,
    traditional: bool = False,
) -> Path:
    """A .key file, mode 0600, encrypted when a passphrase is given."""
    return write_file(
        path, key_bytes(key, passphrase=passphrase, traditional=traditional), mode=KEY_MODE
    )


def save_pkcs12(
    path: str | os.PathLike[str],
    *,
    key: rsa.RSAPrivateKey | None,
    cert: x509.Certificate | None,
    chain: Sequence[x509.Certificate] = (),
    passphrase: Passphrase = None,
    name: str | None = None,
) -> Path:
    """A .pfx/.p12 file, mode 0600 (it may hold a key)."""
    password = _as_bytes(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    data = pkcs12.serialize_key_and_certificates(
        name.encode() if name else None, key, cert, list(chain) or None, encryption
    )
    return write_file(path, data, mode=KEY_MODE)


def save_crl(
    path: str | os.PathLike[str], crl: x509.CertificateRevocationList, *, pem: bool = False
) -> Path:
    encoding = serialization.Encoding.PEM if pem else serialization.Encoding.DER
    return write_file(path, crl.public_bytes(encoding))
