"""Who may change an appliance through its console: one judgement for every credential.

Why: before this, anyone who could reach a console (any local user, on
loopback too) could upload a certificate, switch validation off or make the
appliance refetch its CRLs. Now every request that changes state needs one of:

* ``Authorization: Bearer <token>``: each console has a token in a file only
  its owner can read (0600, :func:`console_token`); whoever reads the file
  may change the appliance (a person with curl);
* a client certificate issued by the console's operator CA (``operator_ca``,
  :mod:`mesh.pki.operator`) presented in the TLS handshake: mutual TLS, what a
  driving program uses. It is judged here, by the appliance's emulated clock,
  so an expired or not-yet-valid certificate is a 403 with its own code;
* the web page's session cookie (``Secure; HttpOnly; SameSite=Strict``), got
  by signing in with the token or the admin password (``admin_password_hash``,
  :mod:`mesh.password_hash`), together with the session's CSRF token in an
  ``X-CSRF-Token`` header for anything that changes state.

Which decides: the ``Authorization`` header when present, else the session
cookie when present, else the client certificate, else nothing (401). So one
request is judged on one credential, and a refusal says which one failed.
:meth:`ConsoleAuth.check` is the one function that decides, for the node's
console and for any other API served with a :class:`ConsoleAuth` (the CRL
server's control API): routes only ask it.

Browsers add two things: a change whose ``Sec-Fetch-Site`` says another site
(``cross-site`` or ``same-site``: another port of the same host is same-site,
and cookies and client certificates ride along to it) is refused whatever it
carries, as the ``Origin`` check in :mod:`mesh.web.api` does for browsers
that send one. Reads (GET) stay open on loopback, where only this machine's
users reach them, and need a credential too elsewhere.

Secrets are compared in constant time and never logged, evented or echoed: a
refusal names the method, the path, the source address and the reason only,
and a flood of refusals from one address is one ``api-denied`` event a second
for each reason, with a count of the rest (:data:`DENIED_EVENT_INTERVAL`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections import OrderedDict
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Sequence

import trio
from attrs import define, evolve, field
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from mesh.errors import InputError
from mesh.events import ApiDenied, Event
from mesh.password_hash import PasswordHash
from mesh.pki.file_output import write_file

__all__ = [
    "ADMIN_USER", "ConsoleAuth", "CSRF_HEADER", "DENIED_EVENT_INTERVAL", "Denial", "MAX_SESSIONS",
    "Presented", "TOKEN_FILE_MODE", "console_token", "is_loopback", "judge_operator_certificate",
    "new_token_file", "peer_certificate",
]

#: The token file: its owner reads it, nobody else.
TOKEN_FILE_MODE = 0o600

#: Sessions a console keeps; signing in past this forgets the oldest.
MAX_SESSIONS = 64

#: The header a signed-in page sends its session's CSRF token in.
CSRF_HEADER = "x-csrf-token"

#: The one user name the admin password signs in with.
ADMIN_USER = "admin"

#: At most one ``api-denied`` event per source address and reason in this many seconds.
DENIED_EVENT_INTERVAL = 1.0

#: Source addresses whose refusals are being coalesced; the oldest is forgotten past this.
MAX_SOURCES = 1024

#: Shortest token a token file may hold (a generated one has 43 characters).
MIN_TOKEN_LENGTH = 16

_SIGN_IN = "sign in on the page with the console's token or the admin password"


class Denial(Enum):
    """Why a request was refused: HTTP status, stable code, the event's reason, the message."""

    MISSING = (401, "unauthorized", "no-credential",
               "this request needs the console's token: send 'Authorization: Bearer <token>' "
               "with the token from the file the api-listening event names, or sign in on the page")
    UNKNOWN_SESSION = (401, "unauthorized", "unknown-session",
                       "the session is unknown or signed out; sign in again with the console's token")
    WRONG_TOKEN = (403, "forbidden", "wrong-token",
                   "the token is not this console's; use the token from the file this "
                   "console's api-listening event names")
    WRONG_PASSWORD = (403, "forbidden", "wrong-password",
                      "the user name or password is wrong; sign in as admin with the "
                      "password whose hash is the node's admin_password_hash, or with the token")
    NO_PASSWORD = (403, "forbidden", "no-admin-password",
                   "this console has no admin password (admin_password_hash in its config); "
                   "sign in with the console's token")
    NO_CSRF_TOKEN = (403, "forbidden_csrf", "no-csrf-token",
                     "a change made with the session cookie must carry the session's "
                     "X-CSRF-Token; reload the console page and try again")
    CROSS_SITE = (403, "forbidden_cross_site", "cross-site",
                  "a page of another site may not change this appliance; use its own console page")
    NO_OPERATOR_CA = (403, "operator_cert_untrusted", "no-operator-ca",
                      "this console trusts no operator certificates; set operator_ca in its "
                      "config, or send the console's token")
    CERT_WRONG_CA = (403, "operator_cert_untrusted", "operator-cert-wrong-ca",
                     "the client certificate was not issued by this console's operator CA; "
                     "present one that mesh pki operator issued from the operator_ca it names")
    CERT_EXPIRED = (403, "operator_cert_expired", "operator-cert-expired",
                    "the operator certificate (or its CA) has expired by this appliance's clock; "
                    "issue a new one with mesh pki operator")
    CERT_NOT_YET_VALID = (403, "operator_cert_not_yet_valid", "operator-cert-not-yet-valid",
                          "the operator certificate (or its CA) is not valid yet by this "
                          "appliance's clock; issue one dated at or before the appliance's now")
    CERT_UNFIT = (403, "operator_cert_invalid", "operator-cert-invalid",
                  "the client certificate is not an operator certificate (clientAuth usage, "
                  "not a CA, signed by the operator CA); issue one with mesh pki operator")

    def __init__(self, status: int, code: str, reason: str, message: str) -> None:
        self.status = status
        self.code = code
        #: What the api-denied event says; never what was presented.
        self.reason = reason
        self.message = message


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: only this machine reaches it."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token_file(path: Path) -> str:
    """A fresh random token, written atomically to ``path`` (0600); returns the token.

    Raises:
        InputError: the folder does not exist or cannot be written.
    """
    token = secrets.token_urlsafe(32)
    write_file(path, (token + "\n").encode(), mode=TOKEN_FILE_MODE)
    return token


def console_token(path: Path) -> str:
    """The token in ``path`` when it holds one, else a new one written there.

    Why: a token file may be provided rather than made, a mounted Kubernetes
    Secret (mode 0400, read-only) for one, so that whatever deployed the node
    knows its token beforehand. A provided file must be as private as one
    we write: readable by its owner only.

    Raises:
        InputError: the file is readable or writable by group or others, is
            not a regular file, cannot be read, or holds no usable token.
    """
    where = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return new_token_file(path)
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror or exc})", "check the path") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(where, "is not a file", "name the token file itself")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise InputError(where, f"is open to group or others (mode {mode:04o})",
                         f"chmod 600 {path} (a Kubernetes Secret: defaultMode 0400)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror or exc})",
                         "make it readable by the user the node runs as") from None
    if not data.strip():
        return new_token_file(path)
    token = data.decode("ascii", "replace").strip()
    if (len(token) < MIN_TOKEN_LENGTH or any(not (33 <= ord(c) <= 126) for c in token)):
        raise InputError(where, "does not hold a token (one line of at least "
                         f"{MIN_TOKEN_LENGTH} visible ASCII characters)",
                         "put a random token in it (e.g. openssl rand -base64 32), or delete it "
                         "to have one made")
    return token


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _operator_verifier(cas: Sequence[x509.Certificate], at: dt.datetime) -> Any:
    # Operator certificates name a person (CN), not a host: no SAN required.
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    return (PolicyBuilder().store(Store(list(cas))).time(at)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
            .build_client_verifier())


def judge_operator_certificate(
    cert: x509.Certificate, *, cas: Sequence[x509.Certificate], at: dt.datetime
) -> Denial | None:
    """None when ``cert`` is a good operator certificate at ``at``, else why not.

    Our own typed checks first (which CA, then the validity windows by the
    appliance's clock), then the maintained verifier for the rest (the
    signature, clientAuth, basic constraints), given the same instant.
    """
    if not cas:
        return Denial.NO_OPERATOR_CA
    issuer = None
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        issuer = ca
        break
    if issuer is None:
        return Denial.CERT_WRONG_CA
    for checked in (cert, issuer):
        if at < checked.not_valid_before_utc:
            return Denial.CERT_NOT_YET_VALID
        if at > checked.not_valid_after_utc:
            return Denial.CERT_EXPIRED
    try:
        _operator_verifier(cas, at).verify(cert, [])
    except VerificationError:
        return Denial.CERT_UNFIT
    return None


def peer_certificate(scope: Any) -> x509.Certificate | None:
    """The client certificate of the connection a request came on, if it sent one.

    Read from the ASGI TLS extension (``scope["extensions"]["tls"]
    ["client_cert_chain"]``, PEM strings, the client's own first), which
    :mod:`mesh.web.connection` fills in.
    """
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    if not chain:
        return None
    try:
        return x509.load_pem_x509_certificate(str(chain[0]).encode())
    except ValueError:
        return None


@define(frozen=True, kw_only=True)
class Presented:
    """What one request carries that may be a credential; its repr shows none of it."""

    authorization: str | None = field(default=None, repr=False)
    session: str | None = field(default=None, repr=False)
    csrf: str | None = field(default=None, repr=False)
    client_cert: x509.Certificate | None = field(default=None, repr=False)
    fetch_site: str | None = None
    source: str = ""

    @classmethod
    def of(cls, request: Any, *, cookie: str) -> Presented:
        """From a Starlette request; ``cookie`` is the session cookie's name."""
        client = request.client
        return cls(
            authorization=request.headers.get("authorization"),
            session=request.cookies.get(cookie),
            csrf=request.headers.get(CSRF_HEADER),
            client_cert=peer_certificate(request.scope),
            fetch_site=request.headers.get("sec-fetch-site"),
            source=client.host if client is not None else "",
        )


def _cross_site(fetch_site: str | None) -> bool:
    """A browser says the request comes from a page of another site (or origin on this host)."""
    return fetch_site is not None and fetch_site.strip().lower() in ("cross-site", "same-site")


@define
class _Quiet:
    last: float
    coalesced: int = 0


@define(kw_only=True, eq=False)
class ConsoleAuth:
    """One console's credentials: its token, operator CA, admin password and sessions.

    ``record`` receives the ``api-denied`` events (an EventLog's ``append``);
    ``monotonic`` is the clock that spaces them (trio's, emulated in tests).
    """

    token: str = field(repr=False)
    token_file: Path
    record: Callable[[Event], object] = field(default=lambda event: None, repr=False)
    #: The CAs whose client certificates are operator credentials (``operator_ca``).
    operator_cas: tuple[x509.Certificate, ...] = ()
    #: The admin password's hash (``admin_password_hash``); None: token sign-in only.
    admin_password: PasswordHash | None = field(default=None, repr=False)
    monotonic: Callable[[], float] = field(default=trio.current_time, repr=False)
    #: sha256(session id) -> None, oldest first: ids themselves are not kept.
    _sessions: OrderedDict[bytes, None] = field(factory=OrderedDict, init=False, repr=False)
    _csrf_key: bytes = field(factory=lambda: os.urandom(32), init=False, repr=False)
    _quiet: OrderedDict[tuple[str, str], _Quiet] = field(factory=OrderedDict, init=False, repr=False)
    #: One scrypt at a time: guesses cost their time, and memory stays bounded.
    _password_limiter: trio.CapacityLimiter = field(
        factory=lambda: trio.CapacityLimiter(1), init=False, repr=False)

    def token_matches(self, presented: str) -> bool:
        """Constant-time comparison with the token."""
        return hmac.compare_digest(_digest(presented), _digest(self.token))

    def judge(self, authorization: str | None, session: str | None, *,
              client_cert: x509.Certificate | None = None, csrf: str | None = None,
              at: dt.datetime | None = None, changes: bool = False) -> Denial | None:
        """None when the request carries a good credential, else why not.

        The ``Authorization`` header decides alone when present; else the
        session cookie (and, for a change, its CSRF token); else the client
        certificate, judged at ``at`` (the appliance's clock; required with one).
        """
        if authorization is not None:
            scheme, _, presented = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                return Denial.MISSING
            return None if self.token_matches(presented.strip()) else Denial.WRONG_TOKEN
        if session is not None:
            if _digest(session) not in self._sessions:
                return Denial.UNKNOWN_SESSION
            if changes and not (csrf and hmac.compare_digest(csrf.strip(), self.csrf_token(session))):
                return Denial.NO_CSRF_TOKEN
            return None
        if client_cert is not None:
            if at is None:
                raise ValueError("judging a client certificate needs the appliance's instant")
            return judge_operator_certificate(client_cert, cas=self.operator_cas, at=at)
        return Denial.MISSING

    def check(self, request: Any, *, appliance: str, at: dt.datetime, changes: bool,
              cookie: str) -> Denial | None:
        """The judgement of one HTTP request (Starlette's), its refusal evented.

        What every route that needs a credential asks: None lets it through.
        """
        presented = Presented.of(request, cookie=cookie)
        denial = (Denial.CROSS_SITE if changes and _cross_site(presented.fetch_site) else
                  self.judge(presented.authorization, presented.session,
                             client_cert=presented.client_cert, csrf=presented.csrf, at=at,
                             changes=changes))
        if denial is not None:
            self.deny(ApiDenied(at=at, appliance=appliance, method=request.method,
                                path=request.url.path, reason=denial.reason),
                      source=presented.source)
        return denial

    def cross_site(self, request: Any, *, appliance: str, at: dt.datetime) -> Denial | None:
        """:data:`Denial.CROSS_SITE` (evented) when a browser says another site sent it."""
        if not _cross_site(request.headers.get("sec-fetch-site")):
            return None
        client = request.client
        self.deny(ApiDenied(at=at, appliance=appliance, method=request.method,
                            path=request.url.path, reason=Denial.CROSS_SITE.reason),
                  source=client.host if client is not None else "")
        return Denial.CROSS_SITE

    async def sign_in_with(self, *, token: str | None = None, user: str | None = None,
                           password: str | None = None) -> Denial | None:
        """None when the token, or the admin user and password, are right."""
        if token is not None:
            return None if self.token_matches(token) else Denial.WRONG_TOKEN
        if self.admin_password is None:
            return Denial.NO_PASSWORD
        matches = await trio.to_thread.run_sync(
            self.admin_password.matches, password or "", limiter=self._password_limiter)
        # Both checked whatever the user name: no answer comes faster for a wrong one.
        return None if matches and hmac.compare_digest(
            _digest(user or ""), _digest(ADMIN_USER)) else Denial.WRONG_PASSWORD

    def sign_in(self) -> str:
        """A new session id (the caller has checked the credential)."""
        session = secrets.token_urlsafe(32)
        self._sessions[_digest(session)] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def csrf_token(self, session: str) -> str:
        """The CSRF token of ``session``: a keyed hash only this console can make.

        The page reads it from the sign-in answer (or ``GET /api/v1/session``)
        and sends it in :data:`CSRF_HEADER`; a page of another origin can make
        a browser send the cookie but can read neither answer, nor set the header
        on a form post.
        """
        mac = hmac.new(self._csrf_key, session.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def sign_out(self, session: str | None) -> None:
        if session is not None:
            self._sessions.pop(_digest(session), None)

    def signed_in(self, session: str | None) -> bool:
        return session is not None and _digest(session) in self._sessions

    def deny(self, event: ApiDenied, *, source: str = "") -> bool:
        """Record ``event``: at most one per source and reason each :data:`DENIED_EVENT_INTERVAL`.

        A refusal within the interval of the last recorded one from the same
        source for the same reason is counted instead, and the count rides on
        the next event of that source and reason (``coalesced``). A new kind
        of refusal is always news. Returns whether ``event`` was recorded.
        """
        now = self.monotonic()
        key = (source, event.reason)
        quiet = self._quiet.get(key)
        if quiet is not None and now - quiet.last < DENIED_EVENT_INTERVAL:
            quiet.coalesced += 1
            return False
        self.record(evolve(event, source=source, coalesced=quiet.coalesced if quiet else 0))
        self._quiet[key] = _Quiet(last=now)
        self._quiet.move_to_end(key)
        while len(self._quiet) > MAX_SOURCES:
            self._quiet.popitem(last=False)
        return True
