"""``mesh pki init|revoke`` and ``mesh cert lint|convert``.

Thin: call :mod:`mesh.pki.deployment`, :mod:`mesh.pki.files` and
:mod:`mesh.pki.lint`, print; the arguments are declared in :mod:`mesh.cli.pki`
and :mod:`mesh.cli.cert`. Bad input surfaces as an
:class:`~mesh.errors.InputError` (one line, exit 2, printed by ``mesh.cli``);
a passphrase that does not open a key is the source document's own message,
also exit 2.

``mesh cert convert IN OUT`` covers the source document's conversion table,
choosing the output form from OUT's extension (or ``--to``):

=================================  ==============================================
source document                    mesh
=================================  ==============================================
.crt (PEM) -> .pem, .pem -> .crt   ``mesh cert convert a.pem a.crt`` (PEM stays PEM)
PEM <-> DER                        ``mesh cert convert a.crt a.der`` / ``--to pem``
.pfx -> .pem (``-nodes``)          ``mesh cert convert a.pfx a.pem [--nocerts|--nokeys]``
.pfx -> .key / .crt                ``mesh cert convert a.pfx a.key`` / ``a.crt``
.crt + .key -> .pfx                ``mesh cert convert a.crt a.pfx --key a.key [--chain c.pem]``
=================================  ==============================================
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.errors import InputError, ValidationFailed
from mesh.passphrase import passphrase_from
from mesh.pki import file_input, files
from mesh.pki.faults import HEALTHY, RECIPES
from mesh.roles import ROLES
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.manifest import MANIFEST
from mesh.pki.lint import LintFinding, broken, lint, reuse
from mesh.validation.chain import malformation

__all__ = ["parse_appliance", "parse_instant", "ROLES"]


# -- argument helpers --


def parse_instant(text: str | None, *, where: str = "--at") -> dt.datetime:
    """An ISO time (``2027-01-15T09:00:00Z``; a date alone means midnight UTC).

    None means now, on the wall clock: the CLI is the one place mesh asks it.
    """
    if text is None:
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            where, f"{text!r} is not an ISO time", "write it like 2027-01-15T09:00:00Z"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def parse_appliance(text: str) -> ApplianceRequest:
    """``NAME[:ROLE][:FAULT]``; ``NAME:FAULT`` works too when FAULT is a recipe name."""
    parts = text.split(":")
    where = f"--appliance {text}"
    if len(parts) > 3 or not parts[0]:
        raise InputError(
            where, "is not NAME[:ROLE][:FAULT]", "write it like sensor-1:sensor:revoked"
        )
    name = parts[0]
    role = parts[1] if len(parts) > 1 and parts[1] else "sensor"
    fault = parts[2] if len(parts) > 2 and parts[2] else HEALTHY
    if len(parts) == 2 and parts[1] in RECIPES:
        role, fault = "sensor", parts[1]
    if role not in ROLES:
        raise InputError(where, f"unknown role {role!r}", "use one of: " + ", ".join(ROLES))
    if fault not in RECIPES:
        raise InputError(
            where, f"unknown certificate fault {fault!r}", "use one of: " + ", ".join(RECIPES)
        )
    return ApplianceRequest(name=name, role=role, fault=fault)


# -- mesh pki --


def _init(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if (folder / MANIFEST).exists() and not args.force:
        raise InputError(
            str(folder), "already holds a PKI (pki.json)", "choose another folder or pass --force"
        )
    requests = [parse_appliance(text) for text in args.appliance]
    pki = Pki.build(
        at=parse_instant(args.at),
        root=args.root_name,
        intermediate=args.intermediate_name if args.intermediate else None,
        appliances=requests,
        key_size=args.key_size,
        crl_base_url=args.crl_base_url,
        passphrase=passphrase_from(args),
    )
    pki.write(folder)
    print(f"wrote {folder / MANIFEST}: root {pki.root.name!r}", end="")
    if pki.intermediate:
        print(f", intermediate {pki.intermediate.name!r}", end="")
    print(f", certificates valid from {pki.at.isoformat()}")
    rows = [(m.name, m.role, m.fault, f"CN={m.common_name}") for m in pki.appliances.values()]
    for line in _table(rows):
        print(line)
    return 0


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """``rows`` in columns as wide as their longest cell, two spaces apart.

    Widths come from the content: appliance names are DNS names, often
    longer than any fixed width would allow for.
    """
    widths = [max(map(len, column)) for column in zip(*rows)]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in rows]


def _revoke(args: argparse.Namespace) -> int:
    pki = Pki.load(args.dir, passphrase=passphrase_from(args))
    at = parse_instant(args.at)
    material = pki.material(args.name)
    if material.issuer is None:
        raise InputError(
            f"appliance {args.name!r}", "has a self-signed certificate: no CA can revoke it", ""
        )
    issuer = pki.authority(material.issuer)
    if issuer.crl_url is None:
        raise InputError(
            f"CA {issuer.name!r}", "has no CRL address in pki.json: no CRL could list the revocation",
            "re-create the folder with mesh pki init",
        )
    serial = pki.revoke(args.name, at=at)
    crls = pki.crls(at=at)
    pki.write(args.dir)
    number = (
        crls[issuer.crl_url].extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    )
    print(f"revoked {args.name} (serial {serial:X}) at {issuer.name!r}; CRL number {number}")
    return 0


def _issue(args: argparse.Namespace) -> int:
    pki = Pki.load(args.dir, passphrase=passphrase_from(args))
    at = parse_instant(args.at)
    material = pki.reissue(args.name, args.fault, at=at)
    pki.write(args.dir)
    print(
        f"issued {args.name} ({material.fault}, serial {material.serial:X}) "
        f"valid from {material.cert.not_valid_before_utc.isoformat()} "
        f"to {material.cert.not_valid_after_utc.isoformat()}"
    )
    return 0


def _crl(args: argparse.Namespace) -> int:
    if not args.renew:
        raise InputError("mesh pki crl", "needs --renew", "run mesh pki crl DIR --renew")
    pki = Pki.load(args.dir, passphrase=passphrase_from(args))
    at = parse_instant(args.at)
    pki.renew_crls(at=at)
    pki.write(args.dir)
    count = sum(1 for ca in pki.authorities.values() if ca.crl_url)
    print(f"renewed {count} CRLs, thisUpdate {at.isoformat()}")
    return 0


# -- mesh cert show / lint / convert --


def _show(args: argparse.Namespace) -> int:
    from mesh.pki.show import show_file

    try:
        lines, sound = show_file(args.file, passphrase_from(args))
    except ValidationFailed as exc:
        raise InputError(args.file, exc.code.message, "give the right --passphrase") from None
    for line in lines:
        print(line)
    return 0 if sound else 1


#: The files ``mesh cert lint FOLDER`` reads: certificates, not chain files.
_CERTIFICATE_SUFFIXES = (".crt", ".cer", ".der")


def _lint(args: argparse.Namespace) -> int:
    folder = Path(args.file)
    paths = (
        sorted(p for p in folder.iterdir() if p.suffix.lower() in _CERTIFICATE_SUFFIXES)
        if folder.is_dir()
        else [folder]
    )
    if not paths:
        raise InputError(
            args.file, "holds no certificate files (.crt, .cer, .der)", "give a file or a deployment folder"
        )
    at = parse_instant(args.at)
    # (label, file, position in the file, certificate, findings) for every certificate.
    entries: list[tuple[str, str, int, x509.Certificate, list[LintFinding]]] = []
    for path in paths:
        where = str(path)
        certs = files.load_certificates(where)
        for cert in certs:
            problem = malformation(cert)  # fields parse lazily: a damaged one is one line, here
            if problem is not None:
                raise InputError(
                    where, f"holds a damaged certificate ({problem})", "export the certificate again"
                )
        for n, cert in enumerate(certs):
            label = where if len(certs) == 1 else f"{where} [{n + 1}: {cert.subject.rfc4514_string()}]"
            # The first certificate is the appliance's; the name applies to it alone.
            findings = lint(
                cert, at=at, expected_name=args.name if n == 0 else None,
                validation=not args.no_validation,
            )
            entries.append((label, where, n + 1, cert, findings))
    if len(paths) > 1:
        for entry, extra in zip(entries, reuse([(e[0], e[3]) for e in entries])):
            entry[4].extend(extra)
    failed = any(broken(findings) for *_, findings in entries)
    if args.json:
        reports = [
            {"file": where, "certificate": n, "subject": cert.subject.rfc4514_string(),
             "ok": not broken(findings), "findings": [f.to_json() for f in findings]}
            for _, where, n, cert, findings in entries
        ]
        if len(reports) == 1:
            reports[0] = {k: v for k, v in reports[0].items() if k not in ("certificate", "subject")}
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        for label, *_, findings in entries:
            for finding in findings:
                print(f"{label}: {finding.line()}")
            if not broken(findings):
                print(f"{label}: meets the certificate requirements")
    return 1 if failed else 0


_FORMS = {
    ".crt": "pem",
    ".cer": "pem",
    ".pem": "pem",
    ".der": "der",
    ".key": "key",
    ".pfx": "pkcs12",
    ".p12": "pkcs12",
}


def _convert(args: argparse.Namespace) -> int:
    args.passphrase = passphrase_from(args)
    args.out_passphrase = passphrase_from(args, flag="--out-passphrase", env="MESH_OUT_PASSPHRASE")
    try:
        return _do_convert(args)
    except ValidationFailed as exc:
        # A passphrase that does not open the input: the upload message, one line.
        raise InputError(args.input, exc.code.message, "give the right --passphrase") from None


def _do_convert(args: argparse.Namespace) -> int:
    out = Path(args.output)
    form = args.to or _FORMS.get(out.suffix.lower())
    if form is None:
        raise InputError(
            args.output,
            f"extension {out.suffix or '(none)'} says nothing about the form",
            "pass --to pem|der|key|pkcs12",
        )
    data = files.read_input(args.input, "file")
    key: rsa.RSAPrivateKey | None = None
    certs: list[x509.Certificate] = []
    if file_input.looks_pkcs12(data) or Path(args.input).suffix.lower() in (".pfx", ".p12"):
        bundle = files.pkcs12_from_bytes(data, args.passphrase, where=args.input)
        key = bundle.key
        certs = ([bundle.cert] if bundle.cert else []) + list(bundle.chain)
    elif _holds_key(data) and not _holds_cert(data):
        key = files.key_from_bytes(data, args.passphrase, where=args.input)
    else:
        certs = files.load_certificates(args.input)
        if _holds_key(data):
            key = files.key_from_bytes(data, args.passphrase, where=args.input)

    if form == "der":
        if not certs:
            raise InputError(
                args.input, "holds no certificate to write as DER", "give a certificate file"
            )
        files.save_certificate(out, certs[0], der=True)
    elif form == "key":
        if key is None:
            raise InputError(args.input, "holds no private key", "give a .key or a .pfx with a key")
        files.save_key(out, key, passphrase=args.out_passphrase, traditional=args.traditional)
    elif form == "pkcs12":
        if args.key:
            key = files.load_key(args.key, args.passphrase)
        if key is None or not certs:
            raise InputError(
                args.input,
                "a PKCS#12 needs a certificate and its key",
                "pass the .crt as IN and --key KEY",
            )
        if key.public_key() != certs[0].public_key():
            raise InputError(
                args.key or args.input,
                "the key does not belong to the certificate",
                "give the matching .key",
            )
        chain = certs[1:] + (files.load_certificates(args.chain) if args.chain else [])
        files.save_pkcs12(
            out,
            key=key,
            cert=certs[0],
            chain=chain,
            passphrase=args.out_passphrase,
            name=_cn(certs[0]),
        )
    else:  # pem
        body = b""
        # A certificate file (.crt, .cer) never receives key material: a key
        # goes out only where one is asked for (.key, .pem, .pfx).
        certificate_file = out.suffix.lower() in (".crt", ".cer")
        if certificate_file:
            key = None
        if key is not None and not args.nokeys:
            body += files.key_bytes(
                key, passphrase=args.out_passphrase, traditional=args.traditional
            )
        if not args.nocerts:
            wanted = certs[:1] if certificate_file else certs
            body += files.chain_bytes(wanted)
        if not body:
            raise InputError(
                args.input,
                "leaves nothing to write with these options",
                "drop --nocerts or --nokeys",
            )
        files.write_file(
            out, body, mode=files.KEY_MODE if key is not None and not args.nokeys else 0o644
        )
    print(f"wrote {out}")
    return 0


def _holds_key(data: bytes) -> bool:
    return b"PRIVATE KEY-----" in data or (not file_input.looks_pem(data) and _der_key(data))


def _der_key(data: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(data)
        return False
    except (ValueError, x509.InvalidVersion):
        return file_input.is_der_private_key(data)


def _holds_cert(data: bytes) -> bool:
    return b"CERTIFICATE-----" in data


def _cn(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
