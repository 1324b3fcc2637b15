"""Who may change an appliance through its console: a bearer token, or a signed-in page.

Why: before this, anyone who could reach a console (any local user, on
loopback too) could upload a certificate, switch validation off or make the
appliance refetch its CRLs. Now each console makes a random token when it
starts and writes it to a file only its owner can read (0600); whoever can
read that file may change the appliance:

* scripts send ``Authorization: Bearer <token>``;
* the web page signs in once with the token (``POST /api/v1/session``) and
  gets a session cookie (``Secure; HttpOnly; SameSite=Strict``), a random id
  the console maps to "signed in"; the token itself never reaches a cookie.

Every request that changes state needs one of them; reads (GET) stay open on
loopback, where only this machine's users reach them, and need one too when
the console listens on any other address. The token and session ids are
compared in constant time and never logged, evented or echoed: a refusal
names the method, the path and the reason only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections import OrderedDict
from enum import Enum
from pathlib import Path
from typing import Callable

from attrs import define, field

from mesh.events import ApiDenied, Event
from mesh.pki.file_output import write_file

__all__ = ["ConsoleAuth", "Denial", "MAX_SESSIONS", "TOKEN_FILE_MODE", "is_loopback", "new_token_file"]

#: The token file: its owner reads it, nobody else.
TOKEN_FILE_MODE = 0o600

#: Sessions a console keeps; signing in past this forgets the oldest.
MAX_SESSIONS = 64


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


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


@define(kw_only=True, eq=False)
class ConsoleAuth:
    """One console's credential: its token, its file, its signed-in sessions.

    ``record`` receives the ``api-denied`` events (an EventLog's ``append``).
    """

    token: str = field(repr=False)
    token_file: Path
    record: Callable[[Event], object] = field(default=lambda event: None, repr=False)
    #: sha256(session id) -> None, oldest first: ids themselves are not kept.
    _sessions: OrderedDict[bytes, None] = field(factory=OrderedDict, init=False, repr=False)

    def token_matches(self, presented: str) -> bool:
        """Constant-time comparison with the token."""
        return hmac.compare_digest(_digest(presented), _digest(self.token))

    def judge(self, authorization: str | None, session: str | None) -> Denial | None:
        """None when the request carries the token or a live session, else why not.

        A bearer token, when present, decides alone; a cookie is judged only
        without one.
        """
        if authorization is not None:
            scheme, _, presented = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                return Denial.MISSING
            return None if self.token_matches(presented.strip()) else Denial.WRONG_TOKEN
        if session is not None:
            return None if _digest(session) in self._sessions else Denial.UNKNOWN_SESSION
        return Denial.MISSING

    def sign_in(self) -> str:
        """A new session id (the caller has checked the token)."""
        session = secrets.token_urlsafe(32)
        self._sessions[_digest(session)] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return session

    def sign_out(self, session: str | None) -> None:
        if session is not None:
            self._sessions.pop(_digest(session), None)

    def signed_in(self, session: str | None) -> bool:
        return session is not None and _digest(session) in self._sessions

    def deny(self, event: ApiDenied) -> None:
        self.record(event)
