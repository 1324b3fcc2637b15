"""What an appliance demands of a peer certificate: the validation knobs.

The defaults follow the source document: validation on; an unreachable CRL
fails the check (hard-fail); a certificate without a CRL Distribution Point is
not revocation-checked and that is reported as a note; RSA under 2048 bits and
SHA-1/MD5 signatures are refused. Each knob relaxes one rule the way a lenient
appliance would.
"""

from __future__ import annotations

from typing import Literal

from attrs import define, field, validators

__all__ = ["ValidationPolicy", "DEFAULT_POLICY", "PROFILES"]

Revocation = Literal["hard", "soft"]
MissingCdp = Literal["note", "fail"]
Purpose = Literal["client", "server"]
Profile = Literal["strict", "openssl"]

#: The profiles, for config loaders and the CLI.
PROFILES: tuple[str, ...] = ("strict", "openssl")


def _normalise_name(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().rstrip(".").lower()
    if not text:
        raise ValueError("expected_name must be a non-empty name or None")
    return text


@define(frozen=True, kw_only=True, cache_hash=True)
class ValidationPolicy:
    """The validation knobs of one appliance (frozen; build a new one to change).

    Attributes:
        enabled: validation on (default) or off. Off: every peer is accepted,
            the findings are still computed and listed (``Verdict.skipped``).
        revocation: ``"hard"`` (default) — a CRL that cannot be fetched fails
            the check; ``"soft"`` — fetch failures become warnings. A CRL that
            was fetched but is stale or badly signed fails in both modes.
        missing_cdp: ``"note"`` (default) — a certificate without a CRL
            Distribution Point is not revocation-checked, reported as a note;
            ``"fail"`` — that is an error.
        allow_weak: accept RSA keys under ``min_rsa_bits`` and SHA-1/MD5
            signatures (reported as warnings) instead of refusing them.
        min_rsa_bits: the smallest RSA modulus accepted (2048).
        purpose: the extended key usage the peer's leaf must allow:
            ``"client"``, ``"server"`` or None (any).
        expected_name: the name (DNS name or IP address) the peer must carry
            in its SAN (or CN when it has no SAN); None = no name check.
        validator: the profile: ``"strict"`` (default) searches every
            candidate path and applies RFC 5280 through the whole path and
            complete CRL processing; ``"openssl"`` gives what a stock
            OpenSSL-based appliance gives (its first path, no strict rules).
        max_depth: the most intermediate certificates a path may hold
            between the leaf and the trust anchor (strict profile; 8).

    Its hash is kept (``cache_hash``): every validation looks its verifier
    up by the policy, and hashing nine fields afresh was a fifth of a
    repeat peer's validation.
    """

    enabled: bool = field(default=True, validator=validators.instance_of(bool))
    revocation: Revocation = field(default="hard", validator=validators.in_(("hard", "soft")))
    missing_cdp: MissingCdp = field(default="note", validator=validators.in_(("note", "fail")))
    allow_weak: bool = field(default=False, validator=validators.instance_of(bool))
    min_rsa_bits: int = field(default=2048, validator=validators.instance_of(int))
    purpose: Purpose | None = field(
        default=None, validator=validators.optional(validators.in_(("client", "server")))
    )
    expected_name: str | None = field(default=None, converter=_normalise_name)
    validator: Profile = field(default="strict", validator=validators.in_(PROFILES))
    max_depth: int = field(
        default=8, validator=[validators.instance_of(int), validators.ge(0)]
    )

    @property
    def soft_fail(self) -> bool:
        return self.revocation == "soft"


#: The source document's defaults.
DEFAULT_POLICY = ValidationPolicy()
