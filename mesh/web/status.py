"""The status document: what ``GET /api/v1/status`` answers and the page draws.

Shape (every key always present)::

    {
      "appliance": {"name": ..., "role": ...},
      "now": "2027-01-15T09:00:00Z",            # emulated
      "certificate": {... see certificate_summary ...},
      "validation": {"enabled": true,
                     "trust": ["CN=Contoso Root CA,..."]},  # anchors in use
      "links": [{"name": "a -> b", "dialer", "listener", "state", "code",
                 "message", "refused_by", "unvalidated", "unvalidated_by",
                 "would_fail", "would_fail_messages", "notes"}],
      "roles": {"name": "role", ...},            # every appliance in the graph
      "warnings": [{"kind": "self-signed-certificate", "message"},
                   {"kind": "certificate-expiring", ...},
                   {"kind": "duplicate-peer" | "certificate-shared", "peer", "message"}],
      "expiry_window_days": 30
    }

``validation.trust`` names (by subject) the roots the appliance judges its
peers against now: its configured trust, or the root it adopted from an
accepted upload when it had none (empty: nothing is trusted yet).

A halted link carries its stable ``code`` and the exact operator ``message``.
An unvalidated link names who skipped validation, the codes its checks
would have failed (``would_fail``, for scripts) and, in the same order, the
exact operator message of each (``would_fail_messages``, for people: a bare
``revoked`` does not say what to fix); a down link says why, when the engine knows. An up
link lists what an accepting end noted (``notes``: ``no_cdp``, revocation not checked),
and its message says it in words.

Every warning has a ``kind`` and a ``message`` for a person. The first,
``self-signed-certificate``, stands while the appliance presents a self-signed
certificate (its locally generated one, until an upload), as the source
document has admins prompted at first sign-in to upload a CA-signed one.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from mesh.errors import FailureCode, with_notes
from mesh.web.backend import ConsoleBackend, LinkLike
from mesh.validation.expiry import DEFAULT_EXPIRY_WINDOW, expiry_warning
from mesh.web.certificate import certificate_summary

__all__ = ["link_document", "self_signed_warning", "status_document"]


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _code_of(value: FailureCode | str) -> str:
    return value.code if isinstance(value, FailureCode) else str(value)


def _message_of(value: FailureCode | str) -> str:
    """The operator message of a code; a code this version does not know stands for itself."""
    if isinstance(value, FailureCode):
        return value.message
    try:
        return FailureCode.from_code(str(value)).message
    except ValueError:
        return str(value)


def link_document(link: LinkLike) -> dict[str, Any]:
    """One link (anything shaped like ``LinkStatus``) as plain JSON data."""
    code = link.code
    message = link.message
    if isinstance(code, FailureCode):
        message = message or code.message
        code = code.code
    elif isinstance(code, str) and not message:
        try:
            message = FailureCode.from_code(code).message
        except ValueError:
            pass
    state = str(link.state)
    refused_by = link.refused_by
    unvalidated_by = [str(name) for name in link.unvalidated_by]
    would_fail = [_code_of(c) for c in link.would_fail]
    if not message and state == "up-unvalidated":
        message = "validation is off"
        if unvalidated_by:
            message += " at " + ", ".join(unvalidated_by)
        if would_fail:
            message += "; with it on, this would fail: " + ", ".join(would_fail)
    elif not message and state == "down" and link.reason:
        message = str(link.reason)
    notes = [_code_of(c) for c in link.notes]
    if notes:
        message = with_notes(message or "", tuple(notes))
    return {
        "name": f"{link.dialer} -> {link.listener}",
        "dialer": link.dialer,
        "listener": link.listener,
        "state": state,
        "code": code,
        "message": message,
        "refused_by": refused_by,
        "unvalidated": state == "up-unvalidated",
        "unvalidated_by": unvalidated_by,
        "would_fail": would_fail,
        "would_fail_messages": [_message_of(c) for c in link.would_fail],
        "notes": notes,
    }


def self_signed_warning(certificate: dict[str, Any]) -> dict[str, Any] | None:
    """The warning for a certificate summary that says ``self_signed``, else None."""
    if not certificate["self_signed"]:
        return None
    return {
        "kind": "self-signed-certificate",
        "message": f"The certificate {certificate['subject']} is self-signed; "
                   "upload a CA-signed certificate, key and chain.",
    }


def status_document(
    backend: ConsoleBackend, *, window: dt.timedelta = DEFAULT_EXPIRY_WINDOW
) -> dict[str, Any]:
    """The whole status of ``backend``'s appliance at its emulated now."""
    now = backend.now()
    identity = backend.identity()
    certificate = certificate_summary(
        identity.cert, at=now, window=window, chain=tuple(identity.chain)
    )
    warnings = []
    if (self_signed := self_signed_warning(certificate)) is not None:
        warnings.append(self_signed)
    warning = expiry_warning(identity.cert, at=now, window=window)
    if warning is not None:
        warnings.append(warning.as_dict())
    for conflict in backend.conflicts():
        warnings.append({"kind": conflict.kind, "peer": conflict.peer, "message": conflict.message})
    roles = dict(backend.roles())
    roles.setdefault(backend.name, backend.role)
    links = [link_document(link) for link in backend.links()]
    for link in links:
        roles.setdefault(link["dialer"], "")
        roles.setdefault(link["listener"], "")
    return {
        "appliance": {"name": backend.name, "role": backend.role},
        "now": _instant(now),
        "certificate": certificate,
        "validation": {
            "enabled": bool(backend.validation_enabled()),
            "trust": [root.subject.rfc4514_string() for root in backend.trust_roots()],
        },
        "links": links,
        "roles": roles,
        "warnings": warnings,
        "expiry_window_days": math.floor(window / dt.timedelta(days=1)),
    }
