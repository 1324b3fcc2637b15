"""The arguments of ``mesh pki init|revoke|issue|crl|operator``; the commands are :mod:`mesh.pki.commands`.

The fault recipes, CA names and CRL URL the help shows are the engine's
(:mod:`mesh.pki.faults`, :mod:`mesh.pki.deployment`), copied here because
importing those loads cryptography; ``tests/cli/test_pki.py`` keeps the
copies equal to the originals.
"""

from __future__ import annotations

import argparse
import sys

from mesh.passphrase import add_passphrase_options

__all__ = ["add_parser", "RECIPE_NAMES", "DEFAULT_ROOT", "DEFAULT_INTERMEDIATE",
           "DEFAULT_CRL_BASE_URL"]

#: ``tuple(mesh.pki.faults.RECIPES)``.
RECIPE_NAMES = (
    "ca-signed", "expired", "not-yet-valid", "revoked", "untrusted", "self-signed",
    "missing-intermediate", "no-cdp", "crl-unreachable", "weak-key", "sha1",
    "missing-subject-fields", "key-mismatch", "wrong-passphrase", "expired-intermediate",
    "revoked-intermediate",
)
#: ``mesh.pki.deployment``'s defaults of the same names.
DEFAULT_ROOT = "Contoso Root CA"
DEFAULT_INTERMEDIATE = "Contoso Issuing CA"
DEFAULT_CRL_BASE_URL = "http://127.0.0.1/crl"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pki = subparsers.add_parser(
        "pki", help="make a CA hierarchy and appliance certificates, good or faulty"
    )
    sub = pki.add_subparsers(dest="pki_command", metavar="SUBCOMMAND")

    init = sub.add_parser(
        "init",
        help="create a root CA, an optional intermediate and one certificate per appliance",
        description="Fault recipes: " + ", ".join(RECIPE_NAMES),
    )
    init.add_argument("dir", metavar="DIR", help="folder to write (gets pki.json)")
    init.add_argument(
        "--appliance",
        "-a",
        action="append",
        default=[],
        metavar="NAME[:ROLE][:FAULT]",
        help="an appliance certificate; repeat for each (role defaults to sensor, fault to ca-signed)",
    )
    init.add_argument(
        "--intermediate", action="store_true", help="issue leaves from an intermediate CA"
    )
    init.add_argument(
        "--root-name", default=DEFAULT_ROOT, help=f"root CA name (default {DEFAULT_ROOT!r})"
    )
    init.add_argument(
        "--intermediate-name",
        default=DEFAULT_INTERMEDIATE,
        help=f"intermediate CA name (default {DEFAULT_INTERMEDIATE!r})",
    )
    init.add_argument(
        "--crl-base-url",
        default=DEFAULT_CRL_BASE_URL,
        metavar="URL",
        help=f"where CRLs are published (default {DEFAULT_CRL_BASE_URL})",
    )
    init.add_argument(
        "--key-size",
        type=int,
        choices=(2048, 4096),
        default=2048,
        help="RSA bits for appliance keys",
    )
    add_passphrase_options(init, what="the passphrase appliance keys are encrypted with")
    init.add_argument(
        "--at",
        default=None,
        metavar="ISO-TIME",
        help="the instant certificates start (default now)",
    )
    init.add_argument(
        "--force", action="store_true", help="write into a folder that already holds a PKI"
    )
    init.set_defaults(func="mesh.pki.commands:_init")

    revoke = sub.add_parser(
        "revoke", help="revoke an appliance's certificate and re-issue its CA's CRL"
    )
    revoke.add_argument("dir", metavar="DIR", help="a folder made by mesh pki init")
    revoke.add_argument("name", metavar="NAME", help="the appliance to revoke")
    revoke.add_argument(
        "--at",
        default=None,
        metavar="ISO-TIME",
        help="revocation time and CRL thisUpdate (default: now)",
    )
    add_passphrase_options(revoke, what="the PKI's passphrase (its keys are encrypted with it)")
    revoke.set_defaults(func="mesh.pki.commands:_revoke")

    issue = sub.add_parser(
        "issue",
        help="issue a replacement certificate (new key and serial) for an appliance",
        description="Fault recipes: " + ", ".join(RECIPE_NAMES),
    )
    issue.add_argument("dir", metavar="DIR", help="a folder made by mesh pki init")
    issue.add_argument("name", metavar="NAME", help="the appliance")
    issue.add_argument(
        "--fault", default="ca-signed", choices=RECIPE_NAMES, metavar="RECIPE",
        help="the certificate's fault recipe (default ca-signed)",
    )
    issue.add_argument(
        "--at", default=None, metavar="ISO-TIME", help="the instant it starts (default: now)"
    )
    add_passphrase_options(issue, what="the PKI's passphrase (its keys are encrypted with it)")
    issue.set_defaults(func="mesh.pki.commands:_issue")

    crl = sub.add_parser("crl", help="re-issue every CA's CRL")
    crl.add_argument("dir", metavar="DIR", help="a folder made by mesh pki init")
    crl.add_argument(
        "--renew", action="store_true",
        help="sign a new CRL for every CA, dated --at, with the next CRL number",
    )
    crl.add_argument(
        "--at", default=None, metavar="ISO-TIME", help="thisUpdate of the new CRLs (default: now)"
    )
    add_passphrase_options(crl, what="the PKI's passphrase (its keys are encrypted with it)")
    crl.set_defaults(func="mesh.pki.commands:_crl")

    operator = sub.add_parser(
        "operator",
        help="issue an operator's client certificate (mutual TLS to the consoles' API)",
        description="Write DIR/NAME.crt and DIR/NAME.key (0600), a client certificate "
        "(clientAuth only, EC P-256) from the operator CA in DIR/operator-ca.crt and "
        "operator-ca.key (0600), made on first use. Consoles whose node config names "
        "operator_ca = \"operator-ca.crt\" let it change state: "
        "curl --cert NAME.crt --key NAME.key ...",
    )
    operator.add_argument("dir", metavar="DIR", help="folder to write (a PKI folder, or any)")
    operator.add_argument("--name", default="operator",
                          help="the operator's name: the certificate's CN and file names "
                               "(default operator)")
    operator.add_argument("--days", type=int, default=365,
                          help="days the certificate is valid from --at (default 365)")
    operator.add_argument(
        "--at", default=None, metavar="ISO-TIME",
        help="the instant it starts, on the appliances' (emulated) clock (default: now)",
    )
    operator.add_argument("--force", action="store_true",
                          help="replace an operator certificate of that name")
    operator.set_defaults(func="mesh.pki.operator:_command")

    pki.set_defaults(func=lambda args: _help(pki))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2
