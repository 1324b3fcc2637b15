"""Where RSA keys come from.

Key generation is the slowest thing the PKI does (about 30 ms for RSA-2048 and
170 ms for RSA-4096 here). A :class:`KeyPool` keeps the keys it has made in
memory and hands each PKI a fresh cursor over them: keys are unique within one
PKI (one per appliance, as the source document expects) but a test session or
a benchmark that builds many PKIs pays for each key once. Keys never touch the
disk here.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.pki.issue import KeySource, new_key

__all__ = ["KeyPool", "fresh_keys"]


def fresh_keys(bits: int) -> rsa.RSAPrivateKey:
    """The default KeySource: a new key every time."""
    return new_key(bits)


class KeyPool:
    """Pre-made keys by size, shared across PKIs, unique within one."""

    def __init__(self) -> None:
        self._keys: dict[int, list[rsa.RSAPrivateKey]] = {}
        self._lock = threading.Lock()

    def _nth(self, bits: int, index: int) -> rsa.RSAPrivateKey:
        with self._lock:
            keys = self._keys.setdefault(bits, [])
            while len(keys) <= index:
                keys.append(new_key(bits))
            return keys[index]

    def cursor(self) -> KeySource:
        """A KeySource that walks the pool from the start, one key per call."""
        used: dict[int, int] = {}

        def take(bits: int) -> rsa.RSAPrivateKey:
            index = used.get(bits, 0)
            used[bits] = index + 1
            return self._nth(bits, index)

        return take
