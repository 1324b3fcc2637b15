"""Decoding an HTTP body's Content-Encoding under a size cap, piece by piece.

Why not httpx's own decoding: it inflates each received chunk whole, so a
64 KiB chunk of a gzip bomb becomes 64 MiB before anyone can count it, and
with stacked encodings (``gzip, gzip``) a 1,827-byte body became a gigabyte
at once. Here every layer is a ``zlib.decompressobj`` driven with
``max_length``: no single step produces more than :data:`STEP` bytes, every
layer's running total is held to the cap (the last layer's total is the
body), and decoding stops the moment a total passes it. Memory therefore
stays within the cap plus a few steps, whatever the encodings.

Supported: ``gzip`` (``x-gzip``; several members in a row, as RFC 1952
allows), ``deflate`` (zlib-wrapped, or raw as some servers send it) and
``identity``. Anything else is refused by name before a byte is decoded.
"""

from __future__ import annotations

import zlib
from typing import Iterable, Iterator

__all__ = ["BodyDecoder", "DecodeError", "TooLarge", "STEP", "SUPPORTED"]

#: The most one decompression step produces.
STEP = 64 * 1024

SUPPORTED = ("gzip", "deflate", "identity")
_ALIASES = {"x-gzip": "gzip"}


class DecodeError(ValueError):
    """The body or its Content-Encoding header cannot be decoded; ``str`` says why."""


class TooLarge(Exception):
    """A layer decoded to more than the cap; ``size`` is how far it got."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _Layer:
    """One gzip or deflate layer, inflated at most :data:`STEP` bytes per step."""

    def __init__(self, name: str, cap: int) -> None:
        self.name = name
        self.cap = cap
        self.size = 0
        self._raw_fallback = name == "deflate"  # try raw deflate if zlib's header is wrong
        self._started = False
        self._inflate = self._new()

    def _new(self) -> zlib._Decompress:
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self.name == "gzip" else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._inflate.eof:
                if self.name == "gzip" and data.strip(b"\x00"):
                    self._inflate = self._new()  # another gzip member
                elif data.strip(b"\x00"):
                    raise DecodeError(f"the body has data after the end of its {self.name} encoding")
                else:
                    return  # zero padding after the end
            try:
                out = self._inflate.decompress(data, STEP)
            except zlib.error as exc:
                if self._raw_fallback and not self._started:
                    self._raw_fallback = False
                    self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise DecodeError(f"the body is not valid {self.name} ({exc})") from None
            self._started = True
            self._raw_fallback = False
            data = self._inflate.unconsumed_tail or self._inflate.unused_data
            if out:
                yield self._count(out)
            elif not self._inflate.eof and not self._inflate.unconsumed_tail:
                return  # everything given is consumed; wait for more

    def finish(self) -> Iterator[bytes]:
        if not self._started and self.size == 0 and not self._inflate.eof:
            raise DecodeError(f"the body ends before its {self.name} encoding begins")
        # Not flush(): it inflates all pending input at once, unbounded.
        while not self._inflate.eof:
            out = self._inflate.decompress(self._inflate.unconsumed_tail, STEP)
            if not out:
                break
            yield self._count(out)
        if not self._inflate.eof:
            raise DecodeError(f"the body ends inside its {self.name} encoding")

    def _count(self, out: bytes) -> bytes:
        self.size += len(out)
        if self.size > self.cap:
            raise TooLarge(self.size)
        return out


class BodyDecoder:
    """Undo a response's Content-Encoding, refusing more than ``cap`` bytes at any layer.

    Args:
        encodings: the header's codings in the order the server applied them
            (``Content-Encoding: gzip, deflate`` is gzip first); empty or
            ``identity`` leaves the body as it is.
        cap: the most any layer, and so the body, may decode to.

    Raises:
        DecodeError: an encoding that is not supported (at construction), or a
            body that is not what its encoding says.
        TooLarge: from :meth:`feed` / :meth:`finish`, once a layer passes the cap.
    """

    def __init__(self, encodings: Iterable[str], cap: int) -> None:
        self.cap = cap
        self.size = 0  # decoded bytes handed out so far
        self._layers: list[_Layer] = []
        names = [_ALIASES.get(e.strip().lower(), e.strip().lower()) for e in encodings]
        for name in names:
            if name and name not in SUPPORTED:
                raise DecodeError(
                    f"Content-Encoding {name!r} is not supported (only gzip, deflate and identity)"
                )
        # The last coding applied is the outermost: undo it first.
        for name in reversed(names):
            if name in ("gzip", "deflate"):
                self._layers.append(_Layer(name, cap))

    def feed(self, raw: bytes) -> Iterator[bytes]:
        """The decoded pieces ``raw`` (the next bytes from the wire) yields, as they come."""
        return self._through(0, [raw], final=False)

    def finish(self) -> Iterator[bytes]:
        """What is left once the wire ends; fails if an encoding is incomplete."""
        return self._through(0, [], final=True)

    def _through(self, depth: int, pieces: Iterable[bytes], *, final: bool) -> Iterator[bytes]:
        if depth == len(self._layers):
            for piece in pieces:
                self.size += len(piece)
                if self.size > self.cap:
                    raise TooLarge(self.size)
                yield piece
            return
        layer = self._layers[depth]

        def decoded() -> Iterator[bytes]:
            for piece in pieces:
                yield from layer.feed(piece)
            if final:
                yield from layer.finish()

        yield from self._through(depth + 1, decoded(), final=final)
