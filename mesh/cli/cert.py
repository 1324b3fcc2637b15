"""The arguments of ``mesh cert lint|convert|check``.

``lint`` and ``convert`` run in :mod:`mesh.pki.commands`, ``check`` (the
upload-time check) in :mod:`mesh.upload`. The validator profiles ``--profile``
accepts are :data:`mesh.validation.policy.PROFILES`, copied here because
importing that package loads cryptography; ``tests/cli/test_cert.py`` keeps
the copy equal to the original.
"""

from __future__ import annotations

import argparse

from mesh.passphrase import add_passphrase_options

__all__ = ["add_parser", "PROFILES"]

#: ``mesh.validation.policy.PROFILES``.
PROFILES = ("strict", "openssl")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cert = subparsers.add_parser(
        "cert", help="check, lint and convert certificate files"
    )
    cert_subparsers = cert.add_subparsers(dest="cert_command", metavar="SUBCOMMAND")
    _add_show(cert_subparsers)
    _add_lint(cert_subparsers)
    _add_convert(cert_subparsers)
    _add_check(cert_subparsers)


def _add_show(cert_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    show = cert_subparsers.add_parser(
        "show",
        help="show what the requirements name in a certificate, check a CSR or a key",
        description="A certificate (or chain file): signature algorithm and hash, valid "
        "from/to, public key and size, CRL Distribution Point, subject CN, C, OU, O, issuer "
        "and serial. A certificate request: its subject and key, and whether its signature "
        "holds. A private key: its type and size, and whether it opens and is consistent. "
        "Exit 0 when sound, 1 when a CSR's signature fails, 2 on unusable input.",
    )
    show.add_argument("file", metavar="FILE", help="a .crt/.pem, a .csr or a .key")
    add_passphrase_options(show, what="the key's passphrase (for an encrypted .key)")
    show.set_defaults(func="mesh.pki.commands:_show")


def _add_lint(cert_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lint_p = cert_subparsers.add_parser(
        "lint", help="check a certificate against the certificate requirements",
        description="Check every certificate in FILE against the certificate requirements "
        "(SHA-256 with RSA, RSA 2048 or 4096, valid dates, an http:// CRL Distribution Point, "
        "CN = the appliance's domain name, C, O and OU). CA certificates are judged as CAs. "
        "Given a folder (a deployment made by mesh pki init), every .crt, .cer and .der in it, "
        "and a certificate (or key) that two files share is flagged: each appliance needs its "
        "own. Exit 0 when nothing is broken, 1 when any error or warning is found (notes do not "
        "count), 2 on unusable input.",
    )
    lint_p.add_argument(
        "file", metavar="FILE",
        help="a .crt (PEM or DER), a chain file (every certificate in it), or a folder",
    )
    lint_p.add_argument(
        "--no-validation", action="store_true",
        help="the appliance will not validate: a missing CRL Distribution Point is fine",
    )
    lint_p.add_argument("--json", action="store_true", help="print findings as JSON")
    lint_p.add_argument(
        "--name", default=None, help="the appliance's domain name the CN must match"
    )
    lint_p.add_argument(
        "--at",
        default=None,
        metavar="ISO-TIME",
        help="judge validity at this instant (default now)",
    )
    lint_p.set_defaults(func="mesh.pki.commands:_lint")


def _add_convert(cert_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    convert = cert_subparsers.add_parser(
        "convert",
        help="convert between PEM, DER, .key and PKCS#12 (.pfx/.p12)",
        description=(
            "Output form from OUT's extension (.crt/.cer/.pem = PEM, .der = DER, .key = key, "
            ".pfx/.p12 = PKCS#12) or --to."
        ),
    )
    convert.add_argument("input", metavar="IN", help="a certificate, chain, key or PKCS#12 file")
    convert.add_argument("output", metavar="OUT", help="the file to write")
    convert.add_argument(
        "--to", choices=("pem", "der", "key", "pkcs12"), default=None, help="output form"
    )
    convert.add_argument(
        "--key", default=None, metavar="KEY", help="the .key to bundle into a PKCS#12"
    )
    convert.add_argument(
        "--chain", default=None, metavar="PEM", help="CA certificates to bundle into a PKCS#12"
    )
    add_passphrase_options(convert, what="the input key's or PKCS#12's passphrase")
    add_passphrase_options(convert, flag="--out-passphrase", env="MESH_OUT_PASSPHRASE",
                           what="the passphrase to encrypt the written key or PKCS#12 with")
    convert.add_argument(
        "--traditional", action="store_true", help="write keys as BEGIN RSA PRIVATE KEY"
    )
    convert.add_argument("--nocerts", action="store_true", help="PKCS#12 -> PEM: only the key")
    convert.add_argument(
        "--nokeys", action="store_true", help="PKCS#12 -> PEM: only the certificates"
    )
    convert.set_defaults(func="mesh.pki.commands:_convert")


def _add_check(cert_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = cert_subparsers.add_parser(
        "check",
        help="run the upload-time checks on a certificate, key and chain",
        description=(
            "Run the upload-time checks in the source document's order: the key opens "
            "with the passphrase, the key matches the certificate, the chain of trust "
            "holds, the dates, the CRL. Exit 0 when valid, 1 when not, 2 on unusable input."
        ),
    )
    check.add_argument("--crt", required=True, metavar="FILE", help="the certificate (.crt, PEM or DER)")
    check.add_argument("--key", required=True, metavar="FILE", help="its private key (.key)")
    check.add_argument("--chain", metavar="FILE", help="the chain file (.pem) of the issuing CAs")
    check.add_argument(
        "--trust", action="append", default=[], metavar="FILE",
        help="trusted root CA certificate(s) (default: the self-signed root in --chain)",
    )
    add_passphrase_options(check)
    check.add_argument(
        "--at", metavar="ISO-TIME", help="judge at this instant (default: now), e.g. 2027-01-15T09:00:00Z"
    )
    check.add_argument("--proxy", metavar="URL", help="fetch CRLs through this http:// proxy")
    check.add_argument(
        "--crl", action="append", default=[], metavar="FILE",
        help="a CRL file (DER or PEM) given out of band: used instead of fetching for the "
        "certificates its issuer issued, CRL Distribution Point or not (repeatable)",
    )
    check.add_argument(
        "--profile", choices=PROFILES, default="strict",
        help="strict (default): every candidate path, RFC 5280 through the whole path, "
        "complete CRL processing; openssl: what a stock OpenSSL-based appliance accepts",
    )
    check.add_argument(
        "--revocation", choices=("hard", "soft"), default="hard",
        help="hard (default): a CRL that cannot be fetched fails the check; soft: it is a "
        "warning (what an appliance configured with soft-fail revocation does)",
    )
    check.add_argument(
        "--no-validation", action="store_true",
        help="run only the key checks; report validation as skipped",
    )
    check.add_argument("--json", action="store_true", help="print every finding as JSON")
    check.set_defaults(func="mesh.upload:_check_command")
