"""The console's admin password, kept as a salted scrypt hash and never as itself.

Why scrypt: a node config is a file people copy around; what it holds must
not give the password back, and each guess against a stolen hash must cost
memory as well as time (RFC 7914). Parameters follow OWASP's password
storage guidance for scrypt (N=2^17, r=8, p=1: 128 MiB and about a third of
a second per guess); they are written into the hash, so a hash made with
other parameters still verifies and a later default does not break old
configs.

The format is one ASCII line a config can quote::

    scrypt$N$r$p$<salt, base64>$<hash, base64>

Checking compares in constant time. The password is read from a prompt or
standard input by ``mesh hash-password``, never from the command line, and
it is never logged, evented or echoed: errors name the setting, not its value.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import getpass
import hmac
import secrets
import sys
from typing import TextIO

from attrs import define, field
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mesh.errors import InputError

__all__ = ["PasswordHash", "hash_password", "DEFAULT_N", "DEFAULT_R", "DEFAULT_P"]

DEFAULT_N = 2**17
DEFAULT_R = 8
DEFAULT_P = 1

#: Bounds a hash read from a config may ask for: a typo must not make each
#: sign-in allocate gigabytes (N*r*128 bytes) or take minutes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_SALT_BYTES = 16
_HASH_BYTES = 32

_FIX = "make one with: mesh hash-password (it reads the password from a prompt or stdin)"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


@define(frozen=True, kw_only=True)
class PasswordHash:
    """A parsed ``scrypt$N$r$p$salt$hash``; :meth:`matches` checks a password against it."""

    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)

    @classmethod
    def parse(cls, text: str, *, where: str) -> PasswordHash:
        """Read a hash from a config value.

        Raises:
            InputError: not a hash this module makes (the value is not repeated).
        """
        parts = text.strip().split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise InputError(where, "is not a scrypt$N$r$p$salt$hash password hash", _FIX)
        try:
            n, r, p = (int(x) for x in parts[1:4])
            salt, digest = _unb64(parts[4]), _unb64(parts[5])
        except (ValueError, binascii.Error):
            raise InputError(where, "is not a scrypt$N$r$p$salt$hash password hash", _FIX) from None
        if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
            raise InputError(where, f"asks for scrypt parameters out of bounds (N={n}, r={r}, p={p})",
                             f"N a power of two up to 2^20, r up to {_MAX_R}, p up to {_MAX_P}; "
                             + _FIX)
        if len(salt) < 8 or len(digest) < 16:
            raise InputError(where, "has a salt or hash too short to be one of ours", _FIX)
        return cls(n=n, r=r, p=p, salt=salt, digest=digest)

    def text(self) -> str:
        return f"scrypt${self.n}${self.r}${self.p}${_b64(self.salt)}${_b64(self.digest)}"

    def matches(self, password: str) -> bool:
        """Whether ``password`` is the one hashed; constant time in the comparison.

        Slow on purpose (the scrypt cost): call it off the event loop.
        """
        derived = Scrypt(salt=self.salt, length=len(self.digest), n=self.n, r=self.r,
                         p=self.p).derive(password.encode("utf-8", "surrogatepass"))
        return hmac.compare_digest(derived, self.digest)


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R,
                  p: int = DEFAULT_P) -> PasswordHash:
    """A new salted hash of ``password`` (a fresh random salt every time)."""
    if not password:
        raise InputError("password", "is empty", "choose a password")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = Scrypt(salt=salt, length=_HASH_BYTES, n=n, r=r, p=p).derive(
        password.encode("utf-8", "surrogatepass"))
    return PasswordHash(n=n, r=r, p=p, salt=salt, digest=digest)


def read_password(stdin: TextIO | None = None) -> str:
    """The password: asked twice on a terminal (no echo), else stdin's first line.

    Raises:
        InputError: empty, or the two entries differ.
    """
    stream = stdin if stdin is not None else sys.stdin
    if stream.isatty():
        first = getpass.getpass("admin password: ")
        if getpass.getpass("again: ") != first:
            raise InputError("password", "the two entries differ", "type the same password twice")
        password = first
    else:
        line = stream.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise InputError("password", "is empty", "type one at the prompt, or pipe it on stdin")
    return password


def _command(args: argparse.Namespace) -> int:
    """``mesh hash-password``: the hash on stdout, nothing else."""
    print(hash_password(read_password()).text())
    return 0
