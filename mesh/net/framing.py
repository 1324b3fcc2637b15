"""The small framed protocol appliances speak over a TLS stream.

Wire format of one frame::

    +----------------+--------+---------------------------+
    | length: u32 BE | type:u8| body: UTF-8 JSON object   |
    +----------------+--------+---------------------------+

``length`` counts the type byte and the body. Frames larger than
``max_frame`` are refused before their body is read, so a peer cannot make an
appliance buffer an arbitrary amount.

Two frames belong to the link itself: ``ACCEPT`` and ``REFUSE`` carry each
end's verdict right after the handshake (a link is up only when both ends
accept). The rest is application traffic and may only flow after both
verdicts were ``ACCEPT``: ``HEARTBEAT`` and ``ALERT`` from sensors,
``REPLICATE`` from the management console to the HA console and ``FORWARD``
to forwarding targets.

:class:`LineStream` is the same interface for a peer that does not speak this
protocol (a third-party server of a forwarding rule, ``openssl s_server``):
frames go out as one JSON object per line, and whatever the peer sends is
read and dropped until it closes.
"""

from __future__ import annotations

import enum
import json
import struct
from typing import Any, Awaitable, Callable

import trio
from attrs import define, field

from mesh.errors import MeshError
from mesh.net.lean_lock import LeanLock

__all__ = [
    "FrameType",
    "Frame",
    "FrameError",
    "FramedStream",
    "LineStream",
    "MAX_FRAME",
    "encode",
]

#: Default largest frame (type byte + body) accepted or sent.
MAX_FRAME = 64 * 1024

_HEADER = struct.Struct(">I")


class FrameType(enum.IntEnum):
    ACCEPT = 1
    REFUSE = 2
    HEARTBEAT = 3
    ALERT = 4
    REPLICATE = 5
    FORWARD = 6
    DECLINE = 7

    @property
    def is_application(self) -> bool:
        """True for traffic that may only cross a link both ends accepted."""
        return self not in (FrameType.ACCEPT, FrameType.REFUSE, FrameType.DECLINE)

    @property
    def label(self) -> str:
        return self.name.lower()


class FrameError(MeshError):
    """The peer sent something that is not a valid frame (or a frame too large)."""


@define(frozen=True, kw_only=True)
class Frame:
    type: FrameType
    body: dict[str, Any] = field(factory=dict)


def encode(frame: Frame, *, max_frame: int = MAX_FRAME) -> bytes:
    payload = bytes([frame.type]) + json.dumps(frame.body, separators=(",", ":")).encode()
    if len(payload) > max_frame:
        raise FrameError(f"{frame.type.label} frame of {len(payload)} bytes exceeds {max_frame}")
    return _HEADER.pack(len(payload)) + payload


def _decode(payload: bytes) -> Frame:
    if not payload:
        raise FrameError("empty frame")
    try:
        kind = FrameType(payload[0])
    except ValueError:
        raise FrameError(f"unknown frame type {payload[0]}") from None
    try:
        body = json.loads(payload[1:].decode("utf-8")) if len(payload) > 1 else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"{kind.label} frame body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise FrameError(f"{kind.label} frame body is not a JSON object")
    return Frame(type=kind, body=body)


class FramedStream:
    """Frames over any ``trio.abc.Stream`` (a TlsStream in the mesh)."""

    def __init__(self, stream: trio.abc.Stream, *, max_frame: int = MAX_FRAME) -> None:
        self.stream = stream
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._send_lock = LeanLock()

    async def send(self, frame: Frame) -> None:
        data = encode(frame, max_frame=self.max_frame)
        async with self._send_lock:
            await self.stream.send_all(data)

    async def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = await self.stream.receive_some(max(4096, size - len(self._buffer)))
            if not chunk:
                if self._buffer:
                    raise FrameError(
                        f"connection closed in the middle of a frame "
                        f"({len(self._buffer)} of {size} bytes)"
                    )
                return False
            self._buffer += chunk
        return True

    async def wait_readable(self) -> None:
        """Return once :meth:`receive` may have a frame: a shallow wait for an idle link.

        See ``TlsStream.wait_readable``; on other streams a checkpoint.
        """
        if self._buffer:
            await trio.lowlevel.checkpoint()
        else:
            await _readable(self.stream)

    async def receive(self) -> Frame | None:
        """The next frame, or None if the peer closed cleanly between frames."""
        if not await self._fill(_HEADER.size):
            return None
        (length,) = _HEADER.unpack_from(self._buffer)
        if length > self.max_frame:
            raise FrameError(f"peer announced a frame of {length} bytes; the limit is {self.max_frame}")
        if not await self._fill(_HEADER.size + length):
            raise FrameError("connection closed in the middle of a frame")
        payload = bytes(self._buffer[_HEADER.size : _HEADER.size + length])
        del self._buffer[: _HEADER.size + length]
        return _decode(payload)

    async def aclose(self) -> None:
        await self.stream.aclose()


class LineStream:
    """Frames as JSON lines to a peer outside the mesh; its input is drained, not parsed."""

    def __init__(self, stream: trio.abc.Stream, *, max_frame: int = MAX_FRAME) -> None:
        self.stream = stream
        self.max_frame = max_frame
        self._send_lock = LeanLock()

    async def send(self, frame: Frame) -> None:
        line = json.dumps({"type": frame.type.label, **frame.body}, separators=(",", ":"))
        data = line.encode() + b"\n"
        if len(data) > self.max_frame:
            raise FrameError(f"{frame.type.label} line of {len(data)} bytes exceeds {self.max_frame}")
        async with self._send_lock:
            await self.stream.send_all(data)

    async def wait_readable(self) -> None:
        """As :meth:`FramedStream.wait_readable`."""
        await _readable(self.stream)

    async def receive(self) -> Frame | None:
        """Drain the peer's bytes until it closes; always None (nothing to count)."""
        while await self.stream.receive_some(65536):
            pass
        return None

    async def aclose(self) -> None:
        await self.stream.aclose()


def _readable(stream: trio.abc.Stream) -> Awaitable[None]:
    """``stream.wait_readable()`` where it has one, else a checkpoint.

    Returned, not awaited here: one coroutine frame less under every idle link.
    """
    wait: Callable[[], Awaitable[None]] | None = getattr(stream, "wait_readable", None)
    return trio.lowlevel.checkpoint() if wait is None else wait()
