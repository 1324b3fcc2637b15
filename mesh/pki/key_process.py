"""Opening an uploaded private key in a child process, so the event loop keeps answering.

Why a process and not ``trio.to_thread``: ``cryptography`` holds the GIL while
OpenSSL derives a key from the passphrase and while it checks an RSA key, so
a thread would stall the loop just the same (measured: a 3,000,000-iteration
PBKDF2 held it for 0.40 s). A child process does the work instead; the loop
only waits on a pipe. The limits of :mod:`mesh.pki.key_cost` still apply (in
the child, before any work), so no child runs long; :data:`TIMEOUT` kills one
that does anyway, and :data:`CHILDREN` bounds how many run at once.

Only keys that cost something go to a child: an unencrypted RSA key of at
most 4,096 bits opens and is checked in a few milliseconds, in place. A
child costs about 0.1 s (starting Python and ``cryptography``).

The child speaks over its standard input and output: in, a JSON line
(``where``, ``passphrase``) then the key's bytes; out, ``key`` and the key as
unencrypted PKCS#8 DER, or ``refused``/``input`` and the error's fields as
JSON. Nothing is written to disk; the passphrase travels only over the pipe.
"""

from __future__ import annotations

import json
import sys

import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki import files

__all__ = ["open_key", "TIMEOUT", "CHILDREN"]

#: Seconds a child may take before it is killed and the key refused.
TIMEOUT = 30.0
#: Children opening keys at once (per trio run); more uploads wait their turn.
CHILDREN = 2
#: Unencrypted RSA keys up to this size are opened in place.
_CHEAP_BITS = 4096

_LIMITER: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("mesh.key_process")


def _limiter() -> trio.CapacityLimiter:
    try:
        return _LIMITER.get()
    except LookupError:
        limiter = trio.CapacityLimiter(CHILDREN)
        _LIMITER.set(limiter)
        return limiter


def _cheap(data: bytes) -> bool:
    """An unencrypted key whose full check takes milliseconds (parsing it is cheap)."""
    try:
        load = (serialization.load_pem_private_key if b"-----BEGIN " in data
                else serialization.load_der_private_key)
        key = load(data, password=None, unsafe_skip_rsa_key_validation=True)
    except Exception:  # encrypted (TypeError) or anything odd: the child judges it
        return False
    return not isinstance(key, rsa.RSAPrivateKey) or key.key_size <= _CHEAP_BITS


async def open_key(data: bytes, passphrase: str | None, *, where: str = "key") -> rsa.RSAPrivateKey:
    """:func:`mesh.pki.files.key_from_bytes`, without blocking the event loop.

    Raises:
        ValidationFailed(PASSPHRASE_MISMATCH): the passphrase does not open it.
        InputError: not a usable key, over a cost limit, or over :data:`TIMEOUT`.
    """
    if _cheap(data):
        return files.key_from_bytes(data, passphrase, where=where)
    request = json.dumps({"where": where, "passphrase": passphrase}).encode() + b"\n" + data
    async with _limiter():
        with trio.move_on_after(TIMEOUT) as scope:
            done = await trio.run_process(
                [sys.executable, "-m", "mesh.pki.key_process"],
                stdin=request, capture_stdout=True, capture_stderr=True, check=False,
            )
    if scope.cancelled_caught:
        raise InputError(where, f"took more than {TIMEOUT:g} s to open",
                         "export the key again without unusual encryption settings")
    kind, _, body = done.stdout.partition(b"\n")
    if kind == b"key":
        return serialization.load_der_private_key(  # type: ignore[return-value]
            body, password=None, unsafe_skip_rsa_key_validation=True)  # the child checked it
    if kind == b"refused":
        fields = json.loads(body)
        raise ValidationFailed(FailureCode.from_code(fields["code"]), fields["detail"])
    if kind == b"input":
        fields = json.loads(body)
        raise InputError(fields["where"], fields["problem"], fields["fix"])
    raise InputError(where, f"could not be opened (the key process exited with {done.returncode})",
                     "try the upload again")


def _child() -> None:
    header, _, data = sys.stdin.buffer.read().partition(b"\n")
    request = json.loads(header)
    try:
        key = files.key_from_bytes(data, request["passphrase"], where=request["where"])
    except ValidationFailed as exc:
        answer = b"refused\n" + json.dumps({"code": exc.code.code, "detail": exc.detail}).encode()
    except InputError as exc:
        answer = b"input\n" + json.dumps(
            {"where": exc.where, "problem": exc.problem, "fix": exc.fix}).encode()
    else:
        answer = b"key\n" + key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
    sys.stdout.buffer.write(answer)


if __name__ == "__main__":
    _child()
