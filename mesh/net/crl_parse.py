"""A fetched body turned into a :class:`CrlIndex`, and its signature checked, off the loop when big.

- **Big CRLs are handled in a worker thread** (``trio.to_thread``): joining
  the body, parsing and indexing it, and, given the issuer (``get(url,
  issuer=)``, ``prefetch(urls, issuers=)``), checking its signature once per CRL
  version and issuer key, so the core's ``CrlIndex.signed_by`` answers from
  memory on the connection path. Small CRLs are handled inline. Measured at
  1,000,000 entries (37 MiB): the loop's longest pause while a fetch parses is
  about 90 ms, spent in ``cryptography``'s DER parser, which holds the GIL even
  in a thread; its ``is_signature_valid`` holds it for about 0.9 s. Hashing
  the DER's TBS bytes with ``hashlib`` (which drops the GIL) and verifying the
  prehashed digest would remove that pause; it belongs in ``CrlIndex.signed_by``.
- **A failed parse keeps nothing of the body**: its failure is raised afresh,
  without the parser's traceback, whose frames held it.
"""

from __future__ import annotations

import functools
import hashlib
import weakref

import trio
from cryptography import x509

from mesh.errors import ValidationFailed
from mesh.validation.revocation import CrlIndex

__all__ = ["parse_crl", "signed_by"]

#: Bodies above this parse in a worker thread. A 1,000-entry CRL is about
#: 40 kB and parses in about a millisecond; a thread hop would cost more.
_THREAD_PARSE_BYTES = 256 * 1024
#: CRLs with more entries than this have their signature checked in a worker
#: thread (hashing a 37 MiB CRL takes tens of milliseconds).
_THREAD_SIGNATURE_ENTRIES = 20_000

#: Parsed CRLs by (URL, SHA-256 of the body), shared by every fetcher in the
#: process while any of them holds one: a thousand sensors fetching the same
#: CRL keep one parsed copy, not a thousand. Each fetcher still fetches and
#: decides for itself; a CrlIndex is immutable (its signature memo is keyed
#: by the issuer), so sharing it changes no verdict.
_PARSED: weakref.WeakValueDictionary[tuple[str, bytes], CrlIndex] = weakref.WeakValueDictionary()


async def parse_crl(chunks: list[bytes], size: int, url: str) -> CrlIndex:
    """The CRL in ``chunks`` (``size`` bytes, emptied as they are joined), from ``url``."""
    parse = functools.partial(_parse, chunks, url)
    if size > _THREAD_PARSE_BYTES:
        return await trio.to_thread.run_sync(parse)
    return parse()


async def signed_by(index: CrlIndex, issuer: x509.Certificate) -> bool:
    """``index.signed_by(issuer)`` (memoised by the index), big CRLs in a worker thread."""
    if len(index) > _THREAD_SIGNATURE_ENTRIES:
        return await trio.to_thread.run_sync(index.signed_by, issuer)
    return index.signed_by(issuer)


def _parse(chunks: list[bytes], url: str) -> CrlIndex:
    # The join happens here, in the worker thread for big bodies: CPython
    # drops the GIL while joining large bytes, so a 37 MiB copy (about 70 ms
    # of page faults) does not stall the event loop.
    body = b"".join(chunks)
    chunks.clear()
    key = (url, hashlib.sha256(body).digest())
    index = _PARSED.get(key)
    if index is None:
        try:
            index = _PARSED[key] = CrlIndex.from_bytes(body, source=url)
        except ValidationFailed as exc:
            failure = ValidationFailed(exc.code, exc.detail)
        else:
            return index
        # Raised afresh, with the body dropped: the parser's traceback (kept
        # by whoever holds the failure) would keep the whole body alive.
        del body
        raise failure
    return index
