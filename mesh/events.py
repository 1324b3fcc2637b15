"""Every state change in a mesh, as a frozen attrs event.

One event stream feeds everything that reports: the appliances' status, the
scenario reports, live views and tests all read these objects (or their JSON
lines), so a link that halted is described the same way everywhere.

Rules every event keeps:

* ``kind`` is a stable kebab-case name (``link-halted``), ``at`` the *emulated*
  instant it happened (from :class:`mesh.clock.EmulatedClock`).
* Fields are plain data: names, codes, messages, serials, URLs. No event can
  carry a private key or a passphrase: there is no field for them, and
  construction refuses any text that looks like PEM key material (an event
  that could leak a key cannot exist, as an invalid h11 event cannot).
* ``to_json()`` is one JSON object on one line; failure codes appear as their
  stable code with the exact operator message beside them, serials as upper-case
  hex (JSON numbers lose precision past 2**53).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, ClassVar

import attrs
from attrs import define, field

from mesh.errors import FailureCode, Severity, with_notes
from mesh.validation.expiry import expiry_message

__all__ = [
    "Event",
    "ApiDenied",
    "ApiListening",
    "ApplianceStarted",
    "ApplianceStopped",
    "LinkConnecting",
    "LinkUp",
    "LinkUpUnvalidated",
    "ValidationSkipped",
    "LinkHalted",
    "LinkDown",
    "LinkRecheck",
    "CertificateShared",
    "ConnectionDropped",
    "DuplicatePeer",
    "CrlFetched",
    "CrlFetchFailed",
    "CrlsRefreshed",
    "CertificateUploaded",
    "TrustAnchorSet",
    "CertificateExpiring",
    "UploadRefused",
    "CertificateRevoked",
    "ValidationSwitched",
    "ClockAdvanced",
    "CrlServerChanged",
    "MessageDelivered",
    "EVENT_KINDS",
    "looks_secret",
]

_SECRET_MARKS = ("PRIVATE KEY-----", "ENCRYPTED PRIVATE KEY", "BEGIN RSA PRIVATE")


def looks_secret(text: str) -> bool:
    """True if ``text`` contains PEM private-key material."""
    return any(mark in text for mark in _SECRET_MARKS)


def _no_secrets(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    values = value if isinstance(value, tuple) else (value,)
    for item in values:
        if isinstance(item, str) and looks_secret(item):
            raise ValueError(
                f"{type(instance).__name__}.{attribute.name} contains private key material; "
                "events must never carry keys"
            )


def _aware(instance: Any, attribute: attrs.Attribute[dt.datetime], value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{type(instance).__name__}.at must be timezone-aware (emulated UTC)")


def _text(default: str | None = None) -> Any:
    return field(default=default, validator=_no_secrets)


def _render(value: Any, name: str) -> Any:
    if isinstance(value, FailureCode):
        return value.code
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Severity):
        return value.value
    if isinstance(value, int) and not isinstance(value, bool) and name == "serial":
        return format(value, "X")
    if isinstance(value, tuple):
        return [_render(item, "") for item in value]
    return value


def _parse(value: Any, name: str, annotation: str) -> Any:
    """One field back from its JSON form (see :func:`_render`)."""
    if value is None:
        return None
    if name == "at" or annotation.startswith("dt.datetime"):
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if "FailureCode" in annotation:
        return FailureCode.from_code(str(value))
    if annotation.startswith("dt.timedelta"):
        return dt.timedelta(seconds=float(value))
    if name == "serial" and isinstance(value, str):
        return int(value, 16)
    if isinstance(value, list):
        return tuple(value)
    return value


@define(frozen=True, kw_only=True)
class Event:
    """Base of every event: the emulated instant and a stable kind."""

    kind: ClassVar[str] = "event"
    severity: ClassVar[Severity] = Severity.NOTE

    at: dt.datetime = field(validator=_aware)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "severity": self.severity.value}
        for a in attrs.fields(type(self)):
            value = getattr(self, a.name)
            out[a.name] = _render(value, a.name)
            if isinstance(value, FailureCode):
                out["message"] = value.message
        return out

    def to_json(self) -> str:
        """One JSON object, one line, keys in a stable order."""
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def from_json(line: str | bytes | dict[str, Any]) -> Event:
        """The event a :meth:`to_json` line describes (the inverse of :meth:`as_dict`).

        What reads another process's events (``mesh node`` prints them) gets
        the same typed objects an in-process mesh appends, not dictionaries.

        Raises:
            ValueError: not JSON, an unknown ``kind``, or fields the kind does
                not accept (the message names which).
        """
        data = json.loads(line) if isinstance(line, (str, bytes)) else dict(line)
        if not isinstance(data, dict):
            raise ValueError("an event is a JSON object")
        kind = data.get("kind")
        cls = EVENT_KINDS.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise ValueError(f"unknown event kind {kind!r}")
        values: dict[str, Any] = {}
        for a in attrs.fields(cls):
            if a.name not in data:
                continue
            values[a.name] = _parse(data[a.name], a.name, str(a.type))
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{kind}: {exc}") from None

    def describe(self) -> str:
        """A one-line log message for a person."""
        return self.kind

    def log_line(self) -> str:
        """``<instant> <severity> <kind>: <description>``."""
        return f"{_render(self.at, 'at')} {self.severity.value.upper()} {self.describe()}"


# -- appliances --


@define(frozen=True, kw_only=True)
class ApplianceStarted(Event):
    kind: ClassVar[str] = "appliance-started"

    appliance: str
    role: str
    address: str
    subject: str = _text("")
    serial: int | None = None
    self_signed: bool = False

    def describe(self) -> str:
        origin = "a locally generated self-signed certificate" if self.self_signed else self.subject
        return f"{self.appliance} ({self.role}) listening on {self.address} with {origin}"


@define(frozen=True, kw_only=True)
class ApplianceStopped(Event):
    kind: ClassVar[str] = "appliance-stopped"

    appliance: str

    def describe(self) -> str:
        return f"{self.appliance} stopped"


# -- links --


@define(frozen=True, kw_only=True)
class LinkConnecting(Event):
    kind: ClassVar[str] = "link-connecting"

    dialer: str
    listener: str
    attempt: int = 1

    def describe(self) -> str:
        return f"{self.dialer} -> {self.listener}: connecting (attempt {self.attempt})"


def _noted(codes: tuple[str, ...]) -> str:
    """``; note: no_cdp: This certificate names no CRL ...`` for a link-up line."""
    return "; " + with_notes("", codes) if codes else ""


@define(frozen=True, kw_only=True)
class LinkUp(Event):
    """Both ends ran every check and accepted."""

    kind: ClassVar[str] = "link-up"

    dialer: str
    listener: str
    #: Codes an end noted without refusing (``no_cdp``: revocation not checked).
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.dialer} -> {self.listener}: up, both ends validated" + _noted(self.notes)


@define(frozen=True, kw_only=True)
class LinkUpUnvalidated(Event):
    """Both ends accepted, but at least one had validation switched off."""

    kind: ClassVar[str] = "link-up-unvalidated"
    severity: ClassVar[Severity] = Severity.WARNING

    dialer: str
    listener: str
    unvalidated_by: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        who = ", ".join(self.unvalidated_by)
        return f"{self.dialer} -> {self.listener}: up, not validated by {who}" + _noted(self.notes)


@define(frozen=True, kw_only=True)
class ValidationSkipped(Event):
    """Validation is off at ``appliance``: the link came up despite these findings."""

    kind: ClassVar[str] = "validation-skipped"
    severity: ClassVar[Severity] = Severity.WARNING

    appliance: str
    peer: str
    dialer: str
    listener: str
    would_fail: tuple[str, ...] = field(default=(), validator=_no_secrets)
    messages: tuple[str, ...] = field(default=(), validator=_no_secrets)
    subject: str = _text("")
    serial: int | None = None

    def describe(self) -> str:
        if self.would_fail:
            checks = "; ".join(
                f"{code}: {message}" for code, message in zip(self.would_fail, self.messages)
            )
            return (
                f"{self.appliance}: validation is off, accepted {self.peer} "
                f"although these checks would have failed: {checks}"
            )
        return f"{self.appliance}: validation is off; {self.peer} would have passed every check"


@define(frozen=True, kw_only=True)
class LinkHalted(Event):
    """A check failed with validation on: the connection was closed before any data."""

    kind: ClassVar[str] = "link-halted"
    severity: ClassVar[Severity] = Severity.ERROR

    dialer: str
    listener: str
    refused_by: str
    code: FailureCode
    subject: str = _text("")
    serial: int | None = None
    detail: str = _text("")

    @property
    def message(self) -> str:
        return self.code.message

    def describe(self) -> str:
        text = f"{self.dialer} -> {self.listener}: halted by {self.refused_by}: {self.code.message}"
        if self.subject:
            text += f" [{self.subject}]"
        return text


@define(frozen=True, kw_only=True)
class LinkDown(Event):
    """The peer could not be reached, or a live link broke."""

    kind: ClassVar[str] = "link-down"
    severity: ClassVar[Severity] = Severity.WARNING

    dialer: str
    listener: str
    reason: str = _text("")

    def describe(self) -> str:
        return f"{self.dialer} -> {self.listener}: down ({self.reason})"


#: Why a live link is closed on purpose unless said otherwise (``Mesh.refresh``).
RECHECK_REASON = "to validate afresh"


@define(frozen=True, kw_only=True)
class LinkRecheck(Event):
    """The dialer closed a live link on purpose to validate it afresh (not a fault).

    ``Mesh.refresh`` asks for it: the connection is closed cleanly and the
    dialer redials at once. The outcome of the new attempt is reported only
    if it differs from ``state``, the state the link had until now.
    """

    kind: ClassVar[str] = "link-recheck"

    dialer: str
    listener: str
    state: str
    reason: str = _text(RECHECK_REASON)

    def describe(self) -> str:
        return f"{self.dialer} -> {self.listener}: {self.state} link closed {self.reason}"


@define(frozen=True, kw_only=True)
class ConnectionDropped(Event):
    """An inbound connection never became a link: its TLS handshake failed or stalled.

    What an appliance logs for random bytes on its port, a client that stops
    mid-handshake or trickles bytes, a client without a certificate. The
    connection is closed; the appliance's links are not affected.
    """

    kind: ClassVar[str] = "connection-dropped"
    severity: ClassVar[Severity] = Severity.WARNING

    appliance: str
    peer: str
    reason: str = _text("")

    def describe(self) -> str:
        return f"{self.appliance}: dropped a connection from {self.peer} ({self.reason})"


@define(frozen=True, kw_only=True)
class DuplicatePeer(Event):
    """A second connection claimed the name of a peer that is already connected.

    Two appliances configured with one name would otherwise share one link
    record, and whichever stopped last would decide the state shown for both.
    The connection already live (from ``live``) is untouched; the newcomer
    (from ``refused``) is declined and told why.
    """

    kind: ClassVar[str] = "duplicate-peer"
    severity: ClassVar[Severity] = Severity.WARNING

    appliance: str
    peer: str
    live: str
    refused: str

    def describe(self) -> str:
        return (
            f"{self.appliance}: declined {self.peer} from {self.refused}: "
            f"{self.peer} is already connected from {self.live}"
        )


@define(frozen=True, kw_only=True)
class CertificateShared(Event):
    """Two connected peers presented one certificate.

    Each sensor, console and HA machine needs a certificate of its own: a
    copied certificate and key make two appliances indistinguishable to
    every check. A warning, not a refusal: the chain itself is valid.
    """

    kind: ClassVar[str] = "certificate-shared"
    severity: ClassVar[Severity] = Severity.WARNING

    appliance: str
    peer: str
    other: str
    subject: str = _text("")
    serial: int | None = None

    def describe(self) -> str:
        return (
            f"{self.appliance}: {self.peer} presents the certificate {self.other} presents "
            f"({self.subject}); each appliance needs a certificate of its own"
        )


# -- CRLs --


@define(frozen=True, kw_only=True)
class CrlFetched(Event):
    kind: ClassVar[str] = "crl-fetched"

    appliance: str
    url: str
    number: int | None = None
    size: int = 0
    kept_cached: bool = False

    def describe(self) -> str:
        number = f" #{self.number}" if self.number is not None else ""
        kept = ", kept the cached one" if self.kept_cached else ""
        return f"{self.appliance}: fetched CRL{number} from {self.url} ({self.size} bytes{kept})"


@define(frozen=True, kw_only=True)
class CrlFetchFailed(Event):
    kind: ClassVar[str] = "crl-fetch-failed"
    severity: ClassVar[Severity] = Severity.WARNING

    appliance: str
    url: str
    code: FailureCode
    detail: str = _text("")

    def describe(self) -> str:
        return f"{self.appliance}: CRL {self.url}: {self.code.message}"


@define(frozen=True, kw_only=True)
class CrlsRefreshed(Event):
    """Someone asked ``appliance`` to refetch its CRLs now (``POST /api/v1/crls/refresh``).

    Its cached CRLs are refetched at the next check instead of at their
    nextUpdate, and its live links are judged afresh; what that finds follows
    as ``crl-fetched``, ``link-recheck`` and link events.
    """

    kind: ClassVar[str] = "crls-refreshed"

    appliance: str

    def describe(self) -> str:
        return f"{self.appliance}: CRLs refetched and live links judged afresh on request"


# -- certificates and switches --


@define(frozen=True, kw_only=True)
class CertificateUploaded(Event):
    kind: ClassVar[str] = "certificate-uploaded"

    appliance: str
    subject: str = _text("")
    serial: int | None = None
    validated: bool = True

    def describe(self) -> str:
        return f"{self.appliance}: certificate {self.subject} uploaded; live links are made again with it"


@define(frozen=True, kw_only=True)
class TrustAnchorSet(Event):
    """An appliance without configured trust took the root of an accepted upload as its anchor.

    The source document has the admin upload a .pem holding every CA up to
    the root; an appliance with no ``trust`` judges the upload against that
    root and, once it is accepted, validates its peers against it. A change of
    what an appliance trusts is never silent: this event names the root by
    subject and SHA-256 fingerprint (hex with colons, as ``openssl x509
    -fingerprint -sha256`` prints it), so an operator can compare it.
    """

    kind: ClassVar[str] = "trust-anchor-set"

    appliance: str
    subject: str = _text("")
    sha256_fingerprint: str = _text("")

    def describe(self) -> str:
        return (
            f"{self.appliance}: no trust was configured; trusts {self.subject} "
            f"(SHA-256 {self.sha256_fingerprint}), the root of the accepted upload's chain, "
            "from now on"
        )


@define(frozen=True, kw_only=True)
class CertificateExpiring(Event):
    """``appliance``'s own certificate came within the warning window of its end.

    Once per certificate each time it crosses into the window: at start, after
    an upload, or when time (a jump or plain elapsed time) carries it there.
    """

    kind: ClassVar[str] = "certificate-expiring"
    severity: ClassVar[Severity] = Severity.WARNING

    appliance: str
    subject: str = _text("")
    serial: int | None = None
    not_after: dt.datetime
    days_until_expiry: int
    window_days: int

    @property
    def message(self) -> str:
        return expiry_message(self.subject, self.days_until_expiry)

    def as_dict(self) -> dict[str, Any]:
        out = super().as_dict()
        out["message"] = self.message
        return out

    def describe(self) -> str:
        return f"{self.appliance}: {self.message}"


@define(frozen=True, kw_only=True)
class UploadRefused(Event):
    kind: ClassVar[str] = "upload-refused"
    severity: ClassVar[Severity] = Severity.ERROR

    appliance: str
    code: FailureCode
    subject: str = _text("")
    serial: int | None = None
    detail: str = _text("")

    def describe(self) -> str:
        return f"{self.appliance}: upload refused: {self.code.message}"


@define(frozen=True, kw_only=True)
class CertificateRevoked(Event):
    kind: ClassVar[str] = "certificate-revoked"

    appliance: str
    serial: int | None = None
    subject: str = _text("")

    def describe(self) -> str:
        return f"{self.appliance}: certificate {self.subject} revoked and its CRL republished"


@define(frozen=True, kw_only=True)
class ValidationSwitched(Event):
    kind: ClassVar[str] = "validation-switched"

    appliance: str
    enabled: bool

    @property
    def severity(self) -> Severity:  # type: ignore[override]
        return Severity.NOTE if self.enabled else Severity.WARNING

    def describe(self) -> str:
        return f"{self.appliance}: certificate validation {'on' if self.enabled else 'off'}"


@define(frozen=True, kw_only=True)
class ClockAdvanced(Event):
    kind: ClassVar[str] = "clock-advanced"

    delta: dt.timedelta
    previous: dt.datetime

    def describe(self) -> str:
        return f"clock advanced by {self.delta} from {_render(self.previous, 'previous')}"


@define(frozen=True, kw_only=True)
class CrlServerChanged(Event):
    kind: ClassVar[str] = "crl-server-changed"

    state: str
    address: str = ""

    def describe(self) -> str:
        return f"CRL server {self.address}: {self.state}"


@define(frozen=True, kw_only=True)
class MessageDelivered(Event):
    """An application frame crossed a link (only ever after both ends accepted)."""

    kind: ClassVar[str] = "message-delivered"

    dialer: str
    listener: str
    sender: str
    receiver: str
    message: str
    delivered: int

    def describe(self) -> str:
        return f"{self.sender} -> {self.receiver}: {self.message} (#{self.delivered} on this link)"


#: kind -> class, for readers of the JSON lines.
@define(frozen=True, kw_only=True)
class ApiListening(Event):
    """An appliance's REST API and web console answer at ``url`` (HTTPS)."""

    kind: ClassVar[str] = "api-listening"

    appliance: str
    role: str
    url: str
    #: The file holding the console's token (0600); the token itself is never in an event.
    token_file: str = ""

    def describe(self) -> str:
        where = f" (token in {self.token_file})" if self.token_file else ""
        return f"{self.appliance} ({self.role}): REST API and web console at {self.url}/{where}"


@define(frozen=True, kw_only=True)
class ApiDenied(Event):
    """A console refused a request without a valid credential; nothing changed.

    ``reason`` is one of :class:`mesh.web.auth.Denial`'s reasons
    (``no-credential``, ``wrong-token``, ``operator-cert-expired``, ...);
    what was presented is never recorded. ``source`` is the client's address.
    A flood from one source is one event a second for each reason:
    ``coalesced`` counts the refusals of that source and reason since its
    previous event that got none of their own.
    """

    kind: ClassVar[str] = "api-denied"
    severity: ClassVar[Severity] = Severity.WARNING

    appliance: str
    method: str
    path: str
    reason: str
    source: str = ""
    coalesced: int = 0

    def describe(self) -> str:
        origin = f" from {self.source}" if self.source else ""
        more = f"; {self.coalesced} more refused since the last report" if self.coalesced else ""
        return f"{self.appliance}: {self.method} {self.path}{origin} refused ({self.reason}){more}"


EVENT_KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        ApplianceStarted,
        ApplianceStopped,
        LinkConnecting,
        LinkUp,
        LinkUpUnvalidated,
        ValidationSkipped,
        LinkHalted,
        LinkDown,
        LinkRecheck,
        ConnectionDropped,
        DuplicatePeer,
        CertificateShared,
        CrlFetched,
        CrlFetchFailed,
        CrlsRefreshed,
        CertificateUploaded,
        TrustAnchorSet,
        CertificateExpiring,
        UploadRefused,
        CertificateRevoked,
        ValidationSwitched,
        ClockAdvanced,
        CrlServerChanged,
        MessageDelivered,
        ApiListening,
        ApiDenied,
    )
}
