"""Answers remembered by object identity, for the per-handshake hot path.

Why not ``functools.lru_cache``: it finds an entry by hashing its arguments,
and ``cryptography`` hashes a certificate by walking its whole parsed
structure, about 2 us each time (measured on the 2-core machine). One
``validate_peer`` call looked certificates up a dozen times that way: a
third of its cost with nothing to compute.

Identity is enough because the objects are immutable and, on the hot path,
the same objects come back: the TLS layer interns a peer's certificates by
their DER (:func:`certificate_from_der`), so a repeat handshake with the
same peer presents the very objects it presented last time. A lookup here
is a tuple of ``id()`` values; an entry holds its argument objects alive,
so no id in a live key can be reused by another object. A miss costs one
such lookup before the computation the caller would have done anyway.

Entries are dropped oldest first beyond ``maxsize``; thread-safe (the CRL
worker thread and scenario verdict threads share these memos).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Generic, Sequence, TypeVar

from cryptography import x509

__all__ = ["IdentityMemo", "MEMO_SIZE", "certificate_from_der"]

T = TypeVar("T")


class IdentityMemo(Generic[T]):
    """A bounded map from a sequence of objects (by identity) to an answer."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._entries: dict[tuple[int, ...], tuple[tuple[Any, ...], T]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, objects: Sequence[Any], compute: Callable[[], T]) -> T:
        """The answer remembered for exactly these objects, or ``compute()``'s."""
        key = tuple(map(id, objects))
        entry = self._entries.get(key)
        if entry is not None:
            # The entry holds its objects, so these ids are still theirs.
            return entry[1]
        answer = compute()
        with self._lock:
            self._entries[key] = (tuple(objects), answer)
            while len(self._entries) > self._maxsize:
                del self._entries[next(iter(self._entries))]
        return answer

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: Certificates (and, in each verifier, chosen paths) remembered per process.
#: A console re-checks every sensor at each scenario step, and a memo smaller
#: than the fleet misses on every one of them (oldest first, in a cycle):
#: at 5,000 sensors in one process, 4,096 made each re-check 17% slower
#: (35-38 s against 30 s) for 2.6 kB less per link.
MEMO_SIZE = 16_384


@functools.lru_cache(maxsize=MEMO_SIZE)
def certificate_from_der(der: bytes) -> x509.Certificate:
    """One ``x509.Certificate`` object per DER seen recently.

    Keyed by the bytes (their hash is cheap and kept by the bytes object), so
    the same certificate presented on every handshake is parsed once and is
    the same object each time: what makes :class:`IdentityMemo` hit.
    :data:`MEMO_SIZE` covers the certificates a shard of thousands of
    appliances sees at every step.

    Raises:
      ValueError: not a DER certificate (``cryptography``'s error, uncached).
    """
    return x509.load_der_x509_certificate(der)
