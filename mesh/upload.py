"""The upload-time check, and ``mesh cert check`` that runs it on real files.

The source document checks an uploaded certificate before an appliance will
use it, and refuses the upload when a check fails. Its order, kept here:

1. the key opens with the passphrase (``passphrase_mismatch``);
2. the key matches the certificate (``key_mismatch``);
3. the chain of trust holds, up to the anchors :func:`upload_anchors` picks:
   the configured ones (``--trust``, an appliance's ``trust``), else the
   self-signed root found in the chain file (``chain_untrusted``);
4. the dates (``expired``, ``not_yet_valid``);
5. the CRL named by each CRL Distribution Point, fetched over HTTP
   (``revoked``, ``crl_*``).

Every failure is kept; the one printed is the first in that order (the
verdict's documented order, :mod:`mesh.validation.verdict`). Steps 3-5 (and
the strength check the design brief adds) are :func:`validate_peer`; this
module adds the files and the key.

Split in two so that an event loop can fetch in between:
:meth:`UploadMaterial.load` reads the files (bad input is an ``InputError``,
exit 2), :meth:`UploadMaterial.crl_urls` names what to fetch and
:meth:`UploadMaterial.judge` is pure. :func:`check_upload` does all three,
fetching with :class:`mesh.net.crl_fetch.CrlFetcher` unless given a lookup.

Which roots an upload is judged against is one rule, :func:`upload_anchors`,
for ``mesh cert check`` and every appliance alike: the source document has the
admin upload a .pem holding every CA up to the root, so an appliance with no
trust of its own judges the upload against that root, and takes it as its
trust anchor when the upload is accepted (:meth:`UploadMaterial.adopted_root`;
the appliance says so with a ``trust-anchor-set`` event). Configured trust is
never replaced by an upload.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import warnings
from typing import Iterable, Sequence, TextIO

import attrs
from attrs import define, field
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.errors import FailureCode, InputError, Severity, ValidationFailed
from mesh.passphrase import passphrase_from
from mesh.pki import files
from mesh.pki.crl_files import load_crl_files
from mesh.printable import printable
from mesh.validation.chain import PARSE_ERRORS, is_self_issued, malformation, public_key_der
from mesh.validation.finding import Finding
from mesh.validation.period import as_utc
from mesh.validation.policy import ValidationPolicy
from mesh.validation.revocation import CrlIndex, CrlLookup
from mesh.validation.verdict import Verdict, crl_urls
from mesh.validation.verifier import Verifier

__all__ = [
    "upload_anchors",
    "UploadAnchors",
    "TrustSetting",
    "CLI_TRUST",
    "APPLIANCE_TRUST",
    "judge_upload",
    "UploadMaterial",
    "check_upload",
    "fetch_crls",
    "UPLOAD_POLICY",
]

Path = str | os.PathLike[str]

#: What an upload is judged by: the source document's defaults. No purpose
#: and no expected name: the certificate serves both ends of every channel.
UPLOAD_POLICY = ValidationPolicy()


@define(frozen=True, kw_only=True)
class UploadAnchors:
    """The roots an upload is judged against (made by :func:`upload_anchors`).

    ``from_chain``: no trust was configured, so ``roots`` are the self-signed
    roots of the uploaded chain (maybe none).
    """

    roots: tuple[x509.Certificate, ...]
    from_chain: bool


def _self_signed(cert: x509.Certificate) -> bool:
    """Names itself as issuer and carries its own key's signature: a root."""
    if malformation(cert) is not None or not is_self_issued(cert):
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, *PARSE_ERRORS):
        return False
    return True


def upload_anchors(
    trust: Sequence[x509.Certificate], chain: Sequence[x509.Certificate]
) -> UploadAnchors:
    """Which roots an upload is judged against: the one rule every upload path follows.

    The configured trust when there is any (``mesh cert check --trust``, an
    appliance's ``trust``). Without it, the self-signed roots of the uploaded
    chain: the source document has the admin upload a .pem holding every CA up
    to the root, and refuses with "the provided Certificate and Root CA do not
    match" when they do not. Only a certificate signed by its own key counts:
    a certificate that merely names itself as its issuer is no root.
    """
    if trust:
        return UploadAnchors(roots=tuple(trust), from_chain=False)
    return UploadAnchors(roots=tuple(c for c in chain if _self_signed(c)), from_chain=True)


@define(frozen=True, kw_only=True)
class TrustSetting:
    """How one surface configures trust, for the detail of an upload that found none.

    ``missing`` says that nothing was configured, ``fix`` how to configure it.
    """

    missing: str
    fix: str


#: ``mesh cert check``: trust is its ``--trust`` option.
CLI_TRUST = TrustSetting(missing="no --trust was given", fix="pass it with --trust ROOT.crt")

#: An appliance (``mesh node``, a scenario, the web console): its ``trust`` setting.
APPLIANCE_TRUST = TrustSetting(
    missing="this appliance has no trust configured", fix="configure trust"
)


def _certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a file, each with every field a check reads parsed.

    ``mesh.pki.files`` reads the file; the parse errors it does not turn
    into an InputError (cryptography raises some outside ValueError) and
    fields that only fail when read are turned into one here.
    """
    try:
        certs = files.load_certificates(path)
    except PARSE_ERRORS as exc:
        raise InputError(
            str(path), f"holds a damaged certificate ({exc})", "export the certificate again"
        ) from None
    for cert in certs:
        problem = malformation(cert)
        if problem is not None:
            raise InputError(
                str(path), f"holds a malformed certificate ({problem})", "export the certificate again"
            )
    return certs


@define(frozen=True, kw_only=True)
class UploadMaterial:
    """What an admin uploads: certificate, key, optional chain, and the anchors.

    ``key`` is None when the passphrase did not open it (``key_findings``
    then says so). ``anchors`` are the trust anchors the chain is judged
    against (:func:`upload_anchors`); ``anchors_from_chain`` says they are the
    chain's own roots. ``anchor_source`` names the chain and ``trust_setting``
    the surface, for the detail of a ``chain_untrusted`` without any anchor.
    """

    cert: x509.Certificate
    key: rsa.RSAPrivateKey | None
    chain: tuple[x509.Certificate, ...] = ()
    anchors: tuple[x509.Certificate, ...] = ()
    anchors_from_chain: bool = False
    anchor_source: str = ""
    trust_setting: TrustSetting = CLI_TRUST
    key_findings: tuple[Finding, ...] = field(default=())

    # -- building --

    @classmethod
    def load(
        cls,
        crt_path: Path,
        key_path: Path,
        chain_path: Path | None = None,
        trust_paths: Iterable[Path] = (),
        passphrase: str | bytes | None = None,
    ) -> UploadMaterial:
        """Read the files. Unusable input raises InputError; a passphrase that
        does not open the key is a finding (the source document's first error)."""
        cert = _certificates(crt_path)[0]
        chain: tuple[x509.Certificate, ...] = ()
        if chain_path is not None:
            chain = tuple(_certificates(chain_path))
        trust: list[x509.Certificate] = []
        for path in trust_paths:
            trust += _certificates(path)
        try:
            key: rsa.RSAPrivateKey | None = files.load_key(key_path, passphrase)
            opened: list[Finding] = []
        except ValidationFailed as exc:
            key = None
            opened = [Finding.about(exc.code, cert, exc.detail)]
        return cls.of(
            cert,
            key,
            chain=chain,
            trust=trust,
            anchor_source=f"the chain file {chain_path}" if chain_path is not None else "",
            trust_setting=CLI_TRUST,
            key_findings=opened,
        )

    @classmethod
    def of(
        cls,
        cert: x509.Certificate,
        key: rsa.RSAPrivateKey | None,
        *,
        chain: Sequence[x509.Certificate] = (),
        trust: Sequence[x509.Certificate] = (),
        anchor_source: str = "",
        trust_setting: TrustSetting = CLI_TRUST,
        key_findings: Sequence[Finding] = (),
    ) -> UploadMaterial:
        """Material already in memory, judged against :func:`upload_anchors`
        (``trust``, the configured anchors; none: the chain's self-signed root)."""
        findings = list(key_findings)
        if key is not None and public_key_der(key.public_key()) != public_key_der(cert.public_key()):
            findings.append(
                Finding.about(
                    FailureCode.KEY_MISMATCH,
                    cert,
                    "the key's public half is not the certificate's public key",
                )
            )
        anchors = upload_anchors(trust, chain)
        return cls(
            cert=cert,
            key=key,
            chain=tuple(chain),
            anchors=anchors.roots,
            anchors_from_chain=anchors.from_chain,
            anchor_source=anchor_source,
            trust_setting=trust_setting,
            key_findings=tuple(findings),
        )

    # -- judging --

    @property
    def presented(self) -> list[x509.Certificate]:
        """The chain as an appliance would send it: the certificate, then the rest."""
        return [self.cert, *(c for c in self.chain if c != self.cert)]

    def crl_urls(
        self,
        *,
        at: dt.datetime | None = None,
        policy: ValidationPolicy = UPLOAD_POLICY,
        crl_files: Sequence[CrlIndex] = (),
    ) -> list[str]:
        """The CRLs :meth:`judge` needs (none when the chain does not verify)."""
        return crl_urls(self.presented, self.anchors, at=at, policy=policy, crl_files=crl_files)

    def judge(
        self,
        *,
        at: dt.datetime,
        crls: CrlLookup,
        validation: bool = True,
        policy: ValidationPolicy = UPLOAD_POLICY,
        crl_files: Sequence[CrlIndex] = (),
    ) -> Verdict:
        """The upload verdict (:func:`judge_upload` with a verifier for these
        anchors). ``validation=False``: only the key checks count, and the
        verdict says validation was skipped. ``crl_files``: CRLs the appliance
        was given out of band."""
        verifier = Verifier(
            self.anchors, attrs.evolve(policy, enabled=validation), crl_files=crl_files
        )
        return judge_upload(self, verifier=verifier, at=at, crls=crls)

    def adopted_root(self, verdict: Verdict) -> x509.Certificate | None:
        """The root an appliance without trust takes as its anchor after ``verdict``.

        Only the root the accepted chain was validated to, and only when no
        trust was configured: an upload never replaces configured trust, and a
        refused upload, or one whose chain was not judged (validation off),
        sets nothing.
        """
        if not (self.anchors_from_chain and verdict.accepted and not verdict.skipped):
            return None
        root = verdict.path[-1] if verdict.path else None
        return root if root is not None and root in self.anchors else None

    def no_anchor_detail(self) -> str:
        """The detail of a ``chain_untrusted`` when nothing was given to trust."""
        missing, fix = self.trust_setting.missing, self.trust_setting.fix
        if not self.anchor_source:
            return (
                f"no trust anchor: {missing} and no chain was given; "
                f"give a chain (.pem) file holding every CA up to the root, or {fix}"
            )
        return (
            f"no trust anchor: {missing} and {self.anchor_source} holds no self-signed root; "
            f"include the root CA in the chain (.pem) file or {fix}"
        )


def judge_upload(
    material: UploadMaterial, *, verifier: Verifier, at: dt.datetime, crls: CrlLookup
) -> Verdict:
    """The one upload judgement: every path that accepts a certificate calls it.

    The source document's order: the files first (the passphrase opens the
    key, the key is the certificate's), then, unless the verifier's policy
    has validation off, the chain as a peer's would be judged (trust, dates,
    strength, CRLs). A key problem refuses the upload even with validation
    off: an appliance cannot present a certificate it holds no key for. Pure:
    ``crls`` are already fetched (:meth:`Verifier.crl_urls` names them).
    """
    findings = list(material.key_findings)
    if not verifier.policy.enabled:
        errors = any(f.severity is Severity.ERROR for f in findings)
        return Verdict(accepted=not errors, findings=tuple(findings), skipped=True)
    verdict = verifier.verify(material.presented, at=at, crls=crls)
    for finding in verdict.findings:
        if (
            finding.code is FailureCode.CHAIN_UNTRUSTED
            and not material.anchors
            and finding.depth == 0
        ):
            finding = attrs.evolve(finding, detail=material.no_anchor_detail())
        findings.append(finding)
    return Verdict.judge(findings, path=verdict.path)


def fetch_crls(
    urls: Sequence[str], *, at: dt.datetime, proxy: str | None = None, timeout: float = 5.0
) -> CrlLookup:
    """Fetch ``urls`` over HTTP (through ``proxy``) and return the lookup.

    Runs its own trio loop: for command-line use, not from inside one (an
    event loop fetches with its own :class:`~mesh.net.crl_fetch.CrlFetcher`
    and calls :meth:`UploadMaterial.judge`).
    """
    import trio

    from mesh.net.crl_fetch import CrlFetcher

    async def run() -> CrlLookup:
        async with CrlFetcher(now=lambda: at, proxy=proxy, timeout=timeout) as fetcher:
            return await fetcher.prefetch(urls)

    return trio.run(run)


def check_upload(
    crt_path: Path,
    key_path: Path,
    chain_path: Path | None = None,
    trust_paths: Iterable[Path] = (),
    passphrase: str | bytes | None = None,
    *,
    at: dt.datetime,
    crls: CrlLookup | None = None,
    validation: bool = True,
    proxy: str | None = None,
    policy: ValidationPolicy = UPLOAD_POLICY,
    crl_files: Sequence[CrlIndex] = (),
) -> Verdict:
    """The upload-time check on files, in the source document's order.

    Args:
        at: the instant to judge at (an emulated one; the CLI passes now).
        crls: a lookup with the CRLs already fetched; None fetches them over
            HTTP (through ``proxy``) with :func:`fetch_crls`.
        validation: False runs only the key checks (``Verdict.skipped``).

    Raises:
        InputError: a file that cannot be used (missing, not a certificate,
            not a key). A wrong passphrase is a finding, not an error.
    """
    material = UploadMaterial.load(crt_path, key_path, chain_path, trust_paths, passphrase)
    at = as_utc(at)
    if validation and crls is None:
        urls = material.crl_urls(at=at, policy=policy, crl_files=crl_files)
        crls = fetch_crls(urls, at=at, proxy=proxy)
    return material.judge(
        at=at,
        crls=crls if crls is not None else _nothing_fetched,
        validation=validation,
        policy=policy,
        crl_files=crl_files,
    )


def _nothing_fetched(url: str) -> ValidationFailed:
    return ValidationFailed(FailureCode.CRL_UNREACHABLE, f"no CRL was fetched from {url}")


# -- mesh cert check ---------------------------------------------------------


def _parse_at(text: str | None) -> dt.datetime:
    if text is None:
        return dt.datetime.now(dt.timezone.utc)  # the command's boundary: a real upload is judged now
    try:
        return as_utc(dt.datetime.fromisoformat(text.strip()))
    except ValueError:
        raise InputError(
            f"--at {text!r}", "is not an ISO 8601 time", "write it like 2027-01-15T09:00:00Z"
        ) from None


def _check_command(args: argparse.Namespace) -> int:
    at = _parse_at(args.at)
    with warnings.catch_warnings():
        # cryptography warns about some non-conformant fields (a negative
        # serial, a country name of the wrong length) and still parses them;
        # the check judges such a certificate as OpenSSL would, and `mesh cert
        # lint` is where conformance is reported, so no warning text here.
        warnings.simplefilter("ignore", UserWarning)
        verdict = check_upload(
            args.crt,
            args.key,
            args.chain,
            args.trust,
            passphrase_from(args),
            at=at,
            validation=not args.no_validation,
            proxy=args.proxy,
            policy=attrs.evolve(UPLOAD_POLICY, validator=args.profile, revocation=args.revocation),
            crl_files=load_crl_files(args.crl),
        )
    if args.json:
        print(json.dumps(_report(verdict), indent=2))
    else:
        _print(verdict)
    return 0 if verdict.accepted else 1


def _report(verdict: Verdict) -> dict[str, object]:
    def row(f: Finding) -> dict[str, str]:
        return {"code": f.code.code, "message": f.message, "subject": f.subject, "detail": f.detail}

    return {
        "valid": verdict.accepted,
        "skipped": verdict.skipped,
        "failures": [row(f) for f in verdict.failures],
        "warnings": [row(f) for f in verdict.findings if f.severity is not Severity.ERROR],
    }


def _print(verdict: Verdict, out: TextIO | None = None) -> None:
    # Subjects and details quote certificates and servers: shown escaped.
    out = out or sys.stdout
    primary = verdict.primary
    if primary is not None:
        print(primary.message, file=out)
        print(f"  {primary.code.code}: {printable(primary.subject)}: "
              f"{printable(primary.detail, 1000)}", file=out)
        more = len(verdict.failures) - 1
        if more:
            print(f"  ({more} more failure{'s' if more > 1 else ''}; --json lists all)", file=out)
    elif verdict.skipped:
        print("The key opens and matches the certificate; certificate validation was skipped.", file=out)
    else:
        print("The certificate is valid.", file=out)
    for finding in verdict.findings:
        if finding.severity is not Severity.ERROR:
            print(f"  {finding.severity.value}: {finding.code.code}: "
                  f"{printable(finding.detail, 1000)}", file=out)
