"""The certificate an appliance presents: self-signed at first start, then uploads.

The source document: "Following sensor and on-premises management console
installation, a local self-signed certificate is generated and used", until an
admin uploads a CA-signed one. Upload runs the upload-time check (unless
validation is off): a refused upload changes nothing, an accepted one is used
from the next connection on (live links keep the certificate they started with).

A certificate whose key does not match is refused even with validation off:
an appliance cannot present a certificate it holds no key for.
"""

from __future__ import annotations

import datetime as dt


from mesh.errors import FailureCode, ValidationFailed
from mesh.pki import key_process
from mesh.pki.issue import Issued, KeySource, new_key, self_signed_leaf
from mesh.validation.finding import Finding
from mesh.validation.verdict import Verdict

__all__ = ["first_start_identity", "open_key", "refused", "refusal_of"]

#: How long a locally generated certificate lasts.
SELF_SIGNED_DAYS = 825


def first_start_identity(
    name: str, *, at: dt.datetime, keys: KeySource | None = None
) -> Issued:
    """A locally generated self-signed certificate: RSA 2048, CN = the appliance name."""
    key = (keys or new_key)(2048)
    return self_signed_leaf(
        name, not_before=at - dt.timedelta(minutes=5), days=SELF_SIGNED_DAYS, key=key
    )


async def open_key(issued: Issued, key_pem: bytes | None, passphrase: str | None) -> Issued:
    """The uploaded certificate with the key the .key file opens to.

    The key is opened off the event loop when opening it costs anything (an
    encrypted or large key: see :mod:`mesh.pki.key_process`), within the
    limits of :mod:`mesh.pki.key_cost`: every other appliance and console in
    the process keeps answering meanwhile.

    Raises:
        ValidationFailed(PASSPHRASE_MISMATCH): the passphrase does not open it.
        InputError: not a usable key, or one over a cost limit.
    """
    if key_pem is None:
        return issued
    key = await key_process.open_key(key_pem, passphrase, where="uploaded key")
    return Issued(cert=issued.cert, key=key, chain=issued.chain)


def refused(code: FailureCode, detail: str) -> Verdict:
    """A verdict refusing an upload before any chain check (e.g. a wrong passphrase)."""
    return Verdict.judge([Finding(code=code, detail=detail)], enabled=True)


def refusal_of(exc: ValidationFailed) -> Verdict:
    return refused(exc.code, exc.detail)
