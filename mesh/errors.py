"""Failure codes and the errors that carry them.

Every verdict an operator sees is a :class:`FailureCode`: a stable machine code
(what reports, tests and scripts match on) and the exact sentence the operator
reads. The first six are the source document's troubleshooting table, word for
word; the rest fill gaps the document leaves, in the same voice.

Codes are data, not exception classes: one :class:`ValidationFailed` carries any
of them, the way h11's errors carry an ``error_status_hint``.

Input errors (a file that is not a certificate, a scenario key that does not
exist) are a different thing: :class:`InputError` renders as one line naming
the thing and the fix, and the CLI turns it into exit status 2.
"""

from __future__ import annotations

import enum

__all__ = [
    "FailureCode",
    "Severity",
    "MeshError",
    "ValidationFailed",
    "InputError",
    "with_notes",
]


class Severity(enum.Enum):
    """How much a finding matters: an error halts a link, a warning or note does not."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


class FailureCode(enum.Enum):
    """A stable code and its exact operator message.

    ``FailureCode.REVOKED.code == "revoked"``;
    ``FailureCode.REVOKED.message`` is the sentence from the source document.
    ``FailureCode.from_code("revoked")`` goes the other way.
    """

    # -- The source document's troubleshooting table, exact texts. --
    PASSPHRASE_MISMATCH = (
        "passphrase_mismatch",
        "Passphrase does not match to the key",
    )
    CHAIN_UNTRUSTED = (
        "chain_untrusted",
        "Cannot validate chain of trust. The provided Certificate and Root CA do not match.",
    )
    EXPIRED = (
        "expired",
        "This SSL certificate has expired and is not considered valid.",
    )
    REVOKED = (
        "revoked",
        "This certificate has been revoked by the CRL and cannot be trusted for a secure connection",
    )
    CRL_UNREACHABLE = (
        "crl_unreachable",
        "The CRL (Certificate Revocation List) location is not reachable. "
        "Verify the URL can be accessed from this appliance",
    )
    VALIDATION_FAILED = (
        "validation_failed",
        "Certificate validation failed",
    )

    # -- Codes the source document has no row for, in the same voice. --
    NOT_YET_VALID = (
        "not_yet_valid",
        "This SSL certificate is not yet valid. Its valid-from date is in the future.",
    )
    KEY_MISMATCH = (
        "key_mismatch",
        "The private key does not match the certificate.",
    )
    KEY_UNREADABLE = (
        "key_unreadable",
        "The key file could not be read as an RSA private key.",
    )
    WEAK_CRYPTO = (
        "weak_crypto",
        "This certificate uses a weak key or signature algorithm and is not considered secure.",
    )
    NAME_MISMATCH = (
        "name_mismatch",
        "The certificate does not match the name of the appliance that presented it.",
    )
    WRONG_PURPOSE = (
        "wrong_purpose",
        "This certificate is not allowed for this kind of connection.",
    )
    CRL_SIGNATURE_INVALID = (
        "crl_signature_invalid",
        "The CRL is not signed by the certificate's issuer and cannot be trusted.",
    )
    CRL_STALE = (
        "crl_stale",
        "The CRL (Certificate Revocation List) is out of date. Its next update time has passed.",
    )
    CRL_INVALID = (
        "crl_invalid",
        "The CRL (Certificate Revocation List) location did not return a valid CRL.",
    )
    CRL_HTTP_ERROR = (
        "crl_http_error",
        "The CRL (Certificate Revocation List) location answered with an HTTP error. "
        "Verify the URL points to the CRL file",
    )
    CRL_URL_UNSUPPORTED = (
        "crl_url_unsupported",
        "The CRL (Certificate Revocation List) location must be an http:// URL. "
        "Reissue the certificate with an http:// CRL Distribution Point",
    )
    NO_CDP = (
        "no_cdp",
        "This certificate names no CRL Distribution Point, so its revocation was not checked.",
    )

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message

    @classmethod
    def from_code(cls, code: str) -> FailureCode:
        """Look a member up by its stable code; ValueError names the known ones."""
        for member in cls:
            if member.code == code:
                return member
        known = ", ".join(m.code for m in cls)
        raise ValueError(f"unknown failure code {code!r}; known codes: {known}")

    @property
    def is_crl_retrieval(self) -> bool:
        """True for codes that mean 'we could not get a usable CRL'.

        Soft-fail revocation turns exactly these into warnings.
        """
        return self in _CRL_RETRIEVAL

    def __str__(self) -> str:
        return self.code


_CRL_RETRIEVAL = frozenset(
    {
        FailureCode.CRL_UNREACHABLE,
        FailureCode.CRL_HTTP_ERROR,
        FailureCode.CRL_INVALID,
        FailureCode.CRL_URL_UNSUPPORTED,
    }
)


class MeshError(Exception):
    """Root of every error mesh raises on purpose."""


class ValidationFailed(MeshError):
    """A check failed: carries the code and a technical detail."""

    def __init__(self, code: FailureCode, detail: str = "") -> None:
        super().__init__(f"{code.code}: {code.message}" + (f" ({detail})" if detail else ""))
        self.code = code
        self.detail = detail


class InputError(MeshError):
    """Input a person gave us is unusable: one line naming it, the problem and the fix.

    Rendered by the CLI as ``mesh: <where>: <problem>; <fix>`` with exit status 2.
    """

    def __init__(self, where: str, problem: str, fix: str = "") -> None:
        self.where = str(where)
        self.problem = problem
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.problem}"
        if self.fix:
            text += f"; {self.fix}"
        return text


def with_notes(message: str, notes: tuple[str, ...]) -> str:
    """A row's message with what an accepting end noted (``no_cdp``) after it.

    A note never changes a link's state or code (expectations read those), so
    the message is where a person reading the table meets it.
    """
    texts = []
    for code in notes:
        try:
            texts.append(f"note: {code}: {FailureCode.from_code(code).message}")
        except ValueError:
            texts.append(f"note: {code}")
    return "; ".join(([message] if message else []) + texts)
