"""Abuse of an appliance's TLS port while its good link keeps flowing.

Random bytes, plain HTTP, a client without a certificate, a client that stops
mid-handshake, a client trickling one byte a second, a flood of 500
connections: each bad connection is dropped with a ``connection-dropped``
event, the console's link with its sensor stays up (same attempt, messages
still delivered), and no task, file descriptor or memory is left behind per
connection.

Time-outs run on trio's MockClock (rate 0, jumped by hand), so "a second"
costs nothing; everything else is real sockets on 127.0.0.1.
"""

from __future__ import annotations

import os
import random

import pytest
import trio
import trio.testing
from OpenSSL import SSL

from mesh.appliances import LinkState
from mesh.events import ConnectionDropped, LinkDown
from mesh.net import tls
from mesh.net.framing import FrameType

from .conftest import FAST, rss_bytes, task_count, wait_delivered

HANDSHAKE_TIMEOUT = FAST.handshake_timeout


@pytest.fixture
async def running(deployment, nursery):
    mesh = deployment.pair()
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP
    return mesh


def _port(mesh) -> int:
    port = mesh.appliance("console").port
    assert port is not None
    return port


async def _still_flowing(mesh) -> None:
    """The good link is the same connection as before and carries a new message."""
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.UP
    assert link.attempts == 1, "the good link was not disturbed"
    mesh.raise_alert("sensor-1", "still here")
    await wait_delivered(mesh, "sensor-1", "console", link.delivered)


async def _wait_dropped(mesh, count: int) -> list[ConnectionDropped]:
    with mesh.events.subscribe() as events:
        while len(mesh.events.of(ConnectionDropped, appliance="console")) < count:
            await events.receive()
    return mesh.events.of(ConnectionDropped, appliance="console")


async def _drain(stream: trio.SocketStream) -> bytes:
    """Read until the appliance closes the connection (what it sent, e.g. an alert)."""
    got = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:  # a reset is a close too
            return got
        if not chunk:
            return got
        got += chunk


def _client_hello() -> bytes:
    """The first flight of a real TLS client, from a memory-BIO connection."""
    conn = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), None)
    conn.set_connect_state()
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        pass
    return conn.bio_read(65536)


@pytest.mark.parametrize(
    "payload",
    [
        random.Random(7).randbytes(4096),
        random.Random(8).randbytes(17),
        b"GET / HTTP/1.1\r\nHost: console\r\n\r\n",
        b"\x16\x03\x01\xff\xff" + b"\x00" * 64,  # a TLS record header announcing 64 KiB
    ],
    ids=["random-4k", "random-17", "plain-http", "bogus-record"],
)
async def test_junk_is_dropped_with_an_event(running, payload):
    mesh = running
    stream = await trio.open_tcp_stream("127.0.0.1", _port(mesh))
    local = "%s:%d" % stream.socket.getsockname()[:2]
    try:
        await stream.send_all(payload)
        if payload.startswith(b"\x16\x03\x01\xff\xff"):
            await stream.send_eof()  # the promised record never comes
    except trio.BrokenResourceError:
        pass  # the appliance hung up before it had all of it: fine
    with trio.fail_after(10):
        await _drain(stream)
    await stream.aclose()
    [dropped] = await _wait_dropped(mesh, 1)
    assert dropped.peer == local
    assert dropped.reason.startswith("TLS handshake failed")
    await _still_flowing(mesh)


async def test_client_without_a_certificate_is_dropped(running):
    mesh = running
    context = tls.make_context(server=False)  # presents nothing
    with trio.fail_after(10):
        try:
            stream = await tls.connect("127.0.0.1", _port(mesh), context)
        except trio.BrokenResourceError:
            pass  # TLS 1.2 would refuse inside the handshake
        else:
            with pytest.raises(trio.BrokenResourceError):
                await stream.receive_some()  # TLS 1.3: the refusal arrives after it
            await stream.aclose_forcefully()
    [dropped] = await _wait_dropped(mesh, 1)
    assert "certificate" in dropped.reason
    await _still_flowing(mesh)


async def test_client_that_stops_mid_handshake_is_dropped_at_the_timeout(running, mock_clock):
    mesh = running
    baseline = task_count()
    stream = await trio.open_tcp_stream("127.0.0.1", _port(mesh))
    await stream.send_all(_client_hello())
    reply = await stream.receive_some(65536)
    assert reply[:1] == b"\x16"  # the ServerHello came; we never answer it
    started = trio.current_time()

    mock_clock.jump(HANDSHAKE_TIMEOUT - 0.1)
    await trio.testing.wait_all_tasks_blocked()
    assert not mesh.events.of(ConnectionDropped)
    mock_clock.jump(0.2)
    [dropped] = await _wait_dropped(mesh, 1)
    assert f"within {HANDSHAKE_TIMEOUT:g} s" in dropped.reason
    assert trio.current_time() - started < HANDSHAKE_TIMEOUT + 0.15
    await _drain(stream)  # the appliance closed its end
    await stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert task_count() <= baseline
    await _still_flowing(mesh)


async def test_one_byte_a_second_cannot_hold_the_port(running, mock_clock):
    """The handshake deadline is for the whole handshake, not per byte."""
    mesh = running
    stream = await trio.open_tcp_stream("127.0.0.1", _port(mesh))
    started = trio.current_time()
    hello = _client_hello()
    sent = 0
    for byte in hello:
        try:
            await stream.send_all(bytes([byte]))
        except trio.BrokenResourceError:
            break
        sent += 1
        await trio.testing.wait_all_tasks_blocked()
        if mesh.events.of(ConnectionDropped):
            break
        mock_clock.jump(1.0)  # "a second" later
    [dropped] = await _wait_dropped(mesh, 1)
    assert f"within {HANDSHAKE_TIMEOUT:g} s" in dropped.reason
    assert sent < len(hello)  # it never got to finish its ClientHello
    assert HANDSHAKE_TIMEOUT <= trio.current_time() - started <= HANDSHAKE_TIMEOUT + 1.0
    await _drain(stream)
    await stream.aclose()
    await _still_flowing(mesh)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _flood(port: int, count: int, *, parallel: int = 100) -> None:
    """``count`` connections, ``parallel`` at a time, each sending junk then closing."""
    limit = trio.CapacityLimiter(parallel)

    async def one(index: int) -> None:
        async with limit:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            try:
                if index % 3 == 0:
                    await stream.send_all(_HELLO)  # a real start, then gone
                elif index % 3 == 1:
                    await stream.send_all(os.urandom(64))
                # else: connect and close without a word
            except trio.BrokenResourceError:
                pass
            finally:
                await stream.aclose()

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(one, index)


_HELLO = _client_hello()


async def test_flood_of_500_connections(running):
    mesh = running
    port = _port(mesh)
    # Warm up allocator pools and caches so the measurement sees growth, not first use.
    await _flood(port, 50)
    await _wait_dropped(mesh, 50)
    await trio.testing.wait_all_tasks_blocked()
    tasks, fds, rss = task_count(), _open_fds(), rss_bytes()

    with trio.fail_after(30):
        await _flood(port, 500)
        dropped = await _wait_dropped(mesh, 550)
    await trio.testing.wait_all_tasks_blocked()
    assert len(dropped) == 550  # every bad connection: one event, none twice
    assert len({d.peer for d in dropped[50:]}) == 500
    assert task_count() <= tasks, "a task outlived its connection"
    assert _open_fds() <= fds, "a socket outlived its connection"
    growth = rss_bytes() - rss
    assert growth < 16 * 1024 * 1024, f"RSS grew {growth / 1e6:.1f} MB over 500 connections"
    assert len(mesh.status("console").errors) <= 20  # the status keeps a bounded tail
    await _still_flowing(mesh)


# -- clients that pass the handshake and then misbehave --


async def _valid_client(deployment, mesh) -> tls.TlsStream:
    """A client with a good certificate (a copy of the sensor's) that then plays no rules."""
    context = tls.make_context(deployment.identity("sensor-1"), server=False)
    return await tls.connect("127.0.0.1", _port(mesh), context)


async def test_valid_client_announcing_a_huge_frame_is_dropped(deployment, running):
    mesh = running
    stream = await _valid_client(deployment, mesh)
    with mesh.events.subscribe() as events:
        await stream.send_all(b"\x7f\xff\xff\xff" + b"\x01" * 16)  # "2 GiB follow"
        with trio.fail_after(10):
            frames = await _drain_tls(stream)
            while not [e for e in mesh.events.of(LinkDown) if "frame" in e.reason]:
                await events.receive()
    await stream.aclose_forcefully()
    # The console reads a dialer's verdict before it sends its own: nothing at all.
    assert _frame_types(b"".join(frames)) == []
    [down] = [e for e in mesh.events.of(LinkDown) if "frame" in e.reason]
    assert "limit" in down.reason
    await _still_flowing(mesh)


async def test_valid_client_that_never_sends_its_verdict_is_dropped(deployment, running, mock_clock):
    mesh = running
    stream = await _valid_client(deployment, mesh)
    await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(FAST.verdict_timeout + 0.1)
    with mesh.events.subscribe() as events:
        with trio.fail_after(10):
            while not [e for e in mesh.events.of(LinkDown) if "no verdict" in e.reason]:
                await events.receive()
    await _drain_tls(stream)
    await stream.aclose_forcefully()
    await _still_flowing(mesh)


def _frame_types(data: bytes) -> list[FrameType]:
    types = []
    while data:
        length = int.from_bytes(data[:4], "big")
        types.append(FrameType(data[4]))
        data = data[4 + length :]
    return types


async def _drain_tls(stream: tls.TlsStream) -> list[bytes]:
    chunks = []
    while True:
        try:
            chunk = await stream.receive_some()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return chunks
        if not chunk:
            return chunks
        chunks.append(chunk)
