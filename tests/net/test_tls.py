"""TlsStream over real loopback sockets and memory streams; openssl CLI as the oracle peer."""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import random
import shutil
import subprocess
from contextlib import asynccontextmanager
from functools import partial
from typing import AsyncIterator

import pytest
import trio
import trio.testing
from attrs import define
from OpenSSL import SSL

from mesh.errors import FailureCode, ValidationFailed
from mesh.net import tls
from mesh.net.tls import HandshakeTimeout, TlsStream, make_context
from mesh.pki.files import save_certificate, save_chain, save_key
from mesh.pki.issue import CertificateAuthority, Issued

MiB = 1024 * 1024


@define(frozen=True, kw_only=True)
class Material:
    root: CertificateAuthority
    server: Issued
    client: Issued
    stranger: Issued  # issued by an unrelated root


@pytest.fixture
def pki(keys, epoch) -> Material:
    root = CertificateAuthority.root("Contoso Root CA", not_before=epoch, key=keys(2048))
    issuing = root.intermediate("Contoso Issuing CA", not_before=epoch, key=keys(2048))
    other = CertificateAuthority.root("Elsewhere Root CA", not_before=epoch, key=keys(2048))
    return Material(
        root=root,
        server=issuing.issue("console.contoso.test", not_before=epoch, key=keys(2048)),
        client=issuing.issue("sensor-1.contoso.test", not_before=epoch, key=keys(2048)),
        stranger=other.issue("sensor-9.elsewhere.test", not_before=epoch, key=keys(2048)),
    )


@pytest.fixture
def server_ctx(pki: Material) -> SSL.Context:
    return make_context(pki.server, server=True, trust=[pki.root.cert])


@pytest.fixture
def client_ctx(pki: Material) -> SSL.Context:
    return make_context(pki.client, server=False, trust=[pki.root.cert])


async def handshake_pair(client_ctx: SSL.Context, server_ctx: SSL.Context):
    """Both ends of a memory stream pair, handshaken concurrently."""
    a, b = trio.testing.memory_stream_pair()
    client = TlsStream.client(a, client_ctx)
    server = TlsStream.server(b, server_ctx)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)
    return client, server


async def handshake_outcomes(client: TlsStream, server: TlsStream) -> dict[str, BaseException]:
    """Handshake both ends; the errors each raised (none for success)."""
    failures: dict[str, BaseException] = {}

    async def one(name: str, stream: TlsStream) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            failures[name] = exc
            await stream.aclose()  # a broken stream closes its transport: the peer sees EOF

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "client", client)
        nursery.start_soon(one, "server", server)
    return failures


def reasons(exc: BaseException) -> str:
    """OpenSSL's reason strings from the SSL.Error behind a broken stream."""
    cause = exc.__cause__
    assert isinstance(cause, SSL.Error), f"expected an SSL.Error cause, got {cause!r}"
    return "; ".join(str(part[-1]) for part in cause.args[0])


async def receive_exactly(stream: trio.abc.ReceiveStream, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = await stream.receive_some()
        assert chunk, f"stream ended after {len(buf)} of {size} bytes"
        buf += chunk
    return bytes(buf)


async def receive_line(stream: trio.abc.ReceiveStream) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = await stream.receive_some()
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


class Server:
    """A ``tls.serve`` on 127.0.0.1:0 that records failed handshakes."""

    def __init__(self) -> None:
        self.port = 0
        self.failures: list[BaseException] = []
        self.failed = trio.Event()

    def on_error(self, exc: BaseException) -> None:
        self.failures.append(exc)
        self.failed.set()

    async def start(self, nursery: trio.Nursery, ctx: SSL.Context, handler, **kw) -> Server:
        listeners = await nursery.start(
            partial(tls.serve, handler, ctx, 0, on_handshake_error=self.on_error, **kw)
        )
        self.port = listeners[0].port
        return self


async def echo(stream: TlsStream) -> None:
    while data := await stream.receive_some():
        await stream.send_all(data)
    await stream.aclose()


# -- contexts --


def test_make_context_refuses_a_key_that_is_not_the_certificates(pki: Material) -> None:
    with pytest.raises(ValidationFailed) as info:
        make_context(cert=pki.server.cert, key=pki.client.key, server=True)
    assert info.value.code is FailureCode.KEY_MISMATCH


def test_make_context_takes_identity_or_parts_not_both(pki: Material) -> None:
    with pytest.raises(TypeError):
        make_context(pki.server, cert=pki.server.cert, key=pki.server.key, server=True)
    with pytest.raises(TypeError):
        make_context(cert=pki.server.cert, server=True)


# -- one shared context per side, credentials per connection --


@pytest.fixture
def creds(pki: Material) -> tuple[tls.Credentials, tls.Credentials]:
    """(server's, client's) credentials."""
    return (
        tls.Credentials(pki.server.cert, pki.server.key),
        tls.Credentials(pki.client.cert, pki.client.key),
    )


def test_shared_context_serves_every_identity_with_the_same_chain_and_trust(
    pki: Material, creds: tuple[tls.Credentials, tls.Credentials]
) -> None:
    trust = [pki.root.cert]
    server_creds, client_creds = creds
    one = tls.shared_context(server_creds, server=False, chain=pki.server.chain, trust=trust)
    two = tls.shared_context(client_creds, server=False, chain=pki.client.chain, trust=trust)
    assert one is two
    # A different side, trust or peer-certificate rule is another context.
    assert tls.shared_context(client_creds, server=True, chain=pki.client.chain, trust=trust) is not one
    assert tls.shared_context(client_creds, server=False, chain=pki.client.chain) is not one
    stranger = tls.Credentials(pki.stranger.cert, pki.stranger.key)
    assert tls.shared_context(stranger, server=False, trust=trust) is not one


def test_shared_context_refuses_a_key_that_is_not_the_certificates(pki: Material) -> None:
    wrong = tls.Credentials(pki.server.cert, pki.client.key)
    with pytest.raises(ValidationFailed) as info:
        tls.shared_context(wrong, server=True, chain=pki.server.chain)
    assert info.value.code is FailureCode.KEY_MISMATCH


def test_shared_context_loads_a_weak_certificate_at_security_level_0(keys, epoch) -> None:
    root = CertificateAuthority.root("Weak Root CA", not_before=epoch, key=keys(2048))
    weak = root.issue("weak.contoso.test", not_before=epoch, key=keys(1024))
    strong = root.issue("strong.contoso.test", not_before=epoch, key=keys(2048))
    with pytest.raises(SSL.Error, match="ee key too small"):
        make_context(weak, server=False)  # OpenSSL's default level refuses RSA-1024
    weak_ctx = tls.shared_context(tls.Credentials(weak.cert, weak.key), server=False)
    strong_ctx = tls.shared_context(tls.Credentials(strong.cert, strong.key), server=False)
    assert weak_ctx is not strong_ctx  # the strong keep the default level


async def test_credentials_on_a_shared_context_present_each_leaf_with_the_chain(
    pki: Material, creds: tuple[tls.Credentials, tls.Credentials]
) -> None:
    trust = [pki.root.cert]
    server_creds, client_creds = creds
    server_ctx = tls.shared_context(server_creds, server=True, chain=pki.server.chain, trust=trust)
    client_ctx = tls.shared_context(client_creds, server=False, chain=pki.client.chain, trust=trust)
    a, b = trio.testing.memory_stream_pair()
    client = TlsStream.client(a, client_ctx, credentials=client_creds)
    server = TlsStream.server(b, server_ctx, credentials=server_creds)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)
    assert client.peer_chain() == [pki.server.cert, *pki.server.chain]
    assert server.peer_chain() == [pki.client.cert, *pki.client.chain]
    await client.aclose()
    await server.aclose()


# -- handshake and what it established --


@pytest.mark.parametrize("max_version", [tls.TLS1_2, tls.TLS1_3], ids=["tls1.2", "tls1.3"])
async def test_mutual_handshake_presents_both_chains_leaf_first(
    pki: Material, server_ctx: SSL.Context, max_version: int
) -> None:
    ctx = make_context(pki.client, server=False, max_version=max_version)
    client, server = await handshake_pair(ctx, server_ctx)

    expected = "TLSv1.3" if max_version == tls.TLS1_3 else "TLSv1.2"
    assert client.version == server.version == expected
    assert client.cipher == server.cipher and client.cipher
    assert client.peer_chain() == [pki.server.cert, *pki.server.chain]
    assert server.peer_chain() == [pki.client.cert, *pki.client.chain]
    # Why peer_chain() puts the leaf back on a server: OpenSSL leaves it out there.
    assert server._conn.get_peer_cert_chain(as_cryptography=True) == list(pki.client.chain)
    await client.aclose()
    await server.aclose()


async def test_peer_chain_is_interned_across_handshakes(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    """A repeat peer presents the very same objects: what the validation
    core's identity memos rely on to answer without re-reading them."""
    first = await handshake_pair(client_ctx, server_ctx)
    second = await handshake_pair(client_ctx, server_ctx)
    for a, b in zip(first, second):
        assert a.peer_chain() == b.peer_chain()
        assert all(x is y for x, y in zip(a.peer_chain(), b.peer_chain()))
    for stream in (*first, *second):
        await stream.aclose()


def test_fresh_bios_after_the_handshake_keep_bytes_already_received(pki: Material) -> None:
    """The handshake's memory BIOs are swapped for empty ones (they keep their
    largest buffer otherwise); ciphertext already fed in must survive it."""
    client = SSL.Connection(make_context(pki.client, server=False), None)
    server = SSL.Connection(make_context(pki.server, server=True), None)
    client.set_connect_state()
    server.set_accept_state()
    for _ in range(6):
        for me, peer in ((client, server), (server, client)):
            try:
                me.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                peer.bio_write(me.bio_read(65536))
            except SSL.WantReadError:
                pass
    server.send(b"already here")
    client.bio_write(server.bio_read(65536))  # fed in, not yet read
    old = client._into_ssl
    tls._release_handshake_buffers(client)
    tls._release_handshake_buffers(server)
    assert client._into_ssl != old
    assert client.recv(100) == b"already here"
    client.send(b"and back")
    server.bio_write(client.bio_read(65536))
    assert server.recv(100) == b"and back"


async def test_every_operation_is_a_checkpoint(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    """trio's rule, kept although the inner locks are taken without one."""
    client, server = await handshake_pair(client_ctx, server_ctx)
    with trio.testing.assert_checkpoints():
        await client.do_handshake()  # already done: still a checkpoint
    with trio.testing.assert_checkpoints():
        await client.send_all(b"ping")
    with trio.testing.assert_checkpoints():
        assert await server.receive_some(4) == b"ping"
    with trio.testing.assert_checkpoints():
        await server.send_all(b"")
    await client.aclose()
    await server.aclose()


async def test_verify_callback_records_but_never_refuses(
    pki: Material, server_ctx: SSL.Context
) -> None:
    stranger = make_context(pki.stranger, server=False)
    client, server = await handshake_pair(stranger, server_ctx)
    # The server trusts only Contoso: OpenSSL could not find the stranger's
    # issuer, said so, and the handshake went on; the verdict is the validator's.
    assert server.peer_chain() == [pki.stranger.cert]
    assert (0, 20) in {(e.depth, e.code) for e in server.openssl_verify_errors}
    # The client trusts nothing: the server's chain is incomplete to OpenSSL.
    assert 20 in {e.code for e in client.openssl_verify_errors}


async def test_trusted_chain_has_no_chain_errors(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    client, server = await handshake_pair(client_ctx, server_ctx)
    # OpenSSL judges validity by the wall clock (9/10: not yet valid/expired);
    # with the root trusted there is nothing else to say about these chains.
    for stream in (client, server):
        assert {e.code for e in stream.openssl_verify_errors} <= {9, 10}


async def test_no_application_bytes_before_the_handshake(client_ctx: SSL.Context) -> None:
    a, _b = trio.testing.memory_stream_pair()
    stream = TlsStream.client(a, client_ctx)
    with pytest.raises(trio.NeedHandshakeError):
        await stream.send_all(b"too early")
    with pytest.raises(trio.NeedHandshakeError):
        await stream.receive_some()
    with pytest.raises(trio.NeedHandshakeError):
        stream.peer_chain()
    await stream.aclose()


# -- refusals at the TLS layer --


async def test_tls_1_1_is_refused(server_ctx: SSL.Context) -> None:
    old = SSL.Context(SSL.TLS_CLIENT_METHOD)
    old.set_min_proto_version(SSL.TLS1_1_VERSION)
    old.set_max_proto_version(SSL.TLS1_1_VERSION)
    old.set_cipher_list(b"DEFAULT:@SECLEVEL=0")  # let the client really offer TLS 1.1
    a, b = trio.testing.memory_stream_pair()
    failures = await handshake_outcomes(
        TlsStream(a, SSL.Connection(old, None), server_side=False),
        TlsStream.server(b, server_ctx),
    )
    assert "unsupported protocol" in reasons(failures["server"])
    assert "protocol version" in reasons(failures["client"])


async def test_tls_1_3_client_without_certificate_learns_of_refusal_on_first_read(
    server_ctx: SSL.Context,
) -> None:
    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, echo)
        client = await tls.connect(
            "127.0.0.1", server.port, make_context(server=False), handshake_timeout=5
        )
        # TLS 1.3: the client is done before the server reads its (empty) Certificate.
        with pytest.raises(trio.BrokenResourceError) as info:
            await client.receive_some()
        assert "certificate required" in reasons(info.value)
        await client.aclose()
        await server.failed.wait()
        assert "peer did not return a certificate" in reasons(server.failures[0])
        nursery.cancel_scope.cancel()


async def test_tls_1_2_client_without_certificate_is_refused_in_the_handshake(
    server_ctx: SSL.Context,
) -> None:
    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, echo)
        with pytest.raises(trio.BrokenResourceError) as info:
            await tls.connect(
                "127.0.0.1",
                server.port,
                make_context(server=False, max_version=tls.TLS1_2),
                handshake_timeout=5,
            )
        assert not isinstance(info.value, HandshakeTimeout)
        assert "handshake failure" in reasons(info.value)
        nursery.cancel_scope.cancel()


async def test_server_that_does_not_require_a_client_certificate(pki: Material) -> None:
    web = make_context(pki.server, server=True, require_peer_cert=False)
    client, server = await handshake_pair(make_context(server=False), web)
    assert server.peer_chain() == []
    await client.send_all(b"GET /")
    assert await server.receive_some() == b"GET /"


async def test_random_bytes_instead_of_a_client_hello(server_ctx: SSL.Context) -> None:
    noise = b"\x00" + random.Random(4).randbytes(511)
    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, echo, handshake_timeout=30)
        raw = await trio.open_tcp_stream("127.0.0.1", server.port)
        await raw.send_all(noise)
        await server.failed.wait()
        (failure,) = server.failures
        assert type(failure) is trio.BrokenResourceError
        assert "wrong version number" in reasons(failure)  # not a TLS record at all
        await raw.aclose()
        nursery.cancel_scope.cancel()


# -- handshake timeouts (MockClock: no real waiting) --


async def test_handshake_timeout_on_a_silent_peer(
    autojump_clock: trio.testing.MockClock, server_ctx: SSL.Context
) -> None:
    a, _silent = trio.testing.memory_stream_pair()
    stream = TlsStream.server(a, server_ctx)
    start = trio.current_time()
    with pytest.raises(HandshakeTimeout):
        await tls.handshake(stream, timeout=10)
    assert trio.current_time() - start == pytest.approx(10)
    with pytest.raises(trio.ClosedResourceError):
        await stream.do_handshake()


async def test_serve_times_out_a_client_that_sends_nothing(
    autojump_clock: trio.testing.MockClock, server_ctx: SSL.Context
) -> None:
    # Real sockets under the autojump clock: once every task is blocked (the
    # silent client, the server waiting for a ClientHello) time jumps to the
    # handshake deadline.
    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, echo, handshake_timeout=10)
        raw = await trio.open_tcp_stream("127.0.0.1", server.port)
        await server.failed.wait()
        assert isinstance(server.failures[0], HandshakeTimeout)
        assert await raw.receive_some() == b""  # closed on us, no alert
        await raw.aclose()
        nursery.cancel_scope.cancel()


async def test_connect_times_out_on_a_server_that_never_answers(
    autojump_clock: trio.testing.MockClock, client_ctx: SSL.Context
) -> None:
    # A listening socket nobody accepts from: TCP connects, TLS never answers.
    (listener,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listener.socket.getsockname()[1]
    with pytest.raises(HandshakeTimeout):
        await tls.connect("127.0.0.1", port, client_ctx, handshake_timeout=3)
    await listener.aclose()


# -- data --


async def test_echo_over_loopback(
    pki: Material, client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    names: list[str | None] = []

    async def named_echo(stream: TlsStream) -> None:
        names.append(stream.server_name)
        await echo(stream)

    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, named_echo)
        client = await tls.connect(
            "127.0.0.1",
            server.port,
            client_ctx,
            server_hostname="console.contoso.test",
            handshake_timeout=5,
        )
        assert client.peer_chain()[0] == pki.server.cert
        for message in (b"heartbeat\n", b"alert: port scan\n", b"x" * 40000):
            await client.send_all(message)
            assert await receive_exactly(client, len(message)) == message
        await client.aclose()
        nursery.cancel_scope.cancel()
    assert server.failures == []
    assert names == ["console.contoso.test"]


async def test_serve_on_listeners_the_caller_opened(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    transport_listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(tls.serve, echo, server_ctx, transport_listeners)
        assert listener.transport_listener is transport_listeners[0]
        client = await tls.connect("127.0.0.1", listener.port, client_ctx, handshake_timeout=5)
        await client.send_all(b"ping")
        assert await client.receive_some() == b"ping"
        await client.aclose()
        nursery.cancel_scope.cancel()


def test_a_foreign_context_needs_the_side_spelled_out(pki: Material) -> None:
    foreign = SSL.Context(SSL.TLS_METHOD)
    a, _b = trio.testing.memory_stream_pair()
    with pytest.raises(TypeError):
        TlsStream(a, SSL.Connection(foreign, None))
    assert TlsStream(a, SSL.Connection(foreign, None), server_side=True).server_side


async def test_one_mebibyte_both_ways_at_once(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    rng = random.Random(1)
    up, down = rng.randbytes(MiB), rng.randbytes(MiB)
    got: dict[str, bytes] = {}

    async def server_side(stream: TlsStream) -> None:
        # One task sends while another receives on the same stream.
        async with trio.open_nursery() as inner:
            inner.start_soon(stream.send_all, down)
            got["server"] = await receive_exactly(stream, MiB)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, server_side)
        client = await tls.connect("127.0.0.1", server.port, client_ctx, handshake_timeout=5)
        async with trio.open_nursery() as inner:
            inner.start_soon(client.send_all, up)
            got["client"] = await receive_exactly(client, MiB)
        assert await client.receive_some() == b""  # the server's close_notify
        await client.aclose()
        nursery.cancel_scope.cancel()
    assert hashlib.sha256(got["server"]).digest() == hashlib.sha256(up).digest()
    assert hashlib.sha256(got["client"]).digest() == hashlib.sha256(down).digest()


async def test_two_senders_at_once_is_a_usage_error(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    a, b = trio.testing.lockstep_stream_pair()  # send_all blocks until the peer reads
    client, server = TlsStream.client(a, client_ctx), TlsStream.server(b, server_ctx)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.do_handshake)
        nursery.start_soon(server.do_handshake)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.send_all, b"first")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await client.send_all(b"second")
        assert await server.receive_some() == b"first"


async def test_a_cancelled_read_leaves_the_stream_usable(
    autojump_clock: trio.testing.MockClock, client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    client, server = await handshake_pair(client_ctx, server_ctx)
    with trio.move_on_after(30) as scope:  # nothing to read yet: cancelled
        await server.receive_some()
    assert scope.cancelled_caught
    await client.send_all(b"heartbeat")
    assert await server.receive_some() == b"heartbeat"


async def test_every_task_waiting_on_a_failed_handshake_hears_of_it(
    server_ctx: SSL.Context,
) -> None:
    a, b = trio.testing.memory_stream_pair()
    server = TlsStream.server(b, server_ctx)
    outcomes: list[type[BaseException]] = []

    async def handshake() -> None:
        try:
            await server.do_handshake()
        except trio.BrokenResourceError as exc:
            outcomes.append(type(exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(handshake)
        nursery.start_soon(handshake)
        await trio.testing.wait_all_tasks_blocked()
        await a.send_all(b"\x00" * 64)
    assert outcomes == [trio.BrokenResourceError, trio.BrokenResourceError]


# -- closing --


async def test_aclose_during_a_handshake_does_not_wait_for_it(server_ctx: SSL.Context) -> None:
    _silent, b = trio.testing.memory_stream_pair()
    server = TlsStream.server(b, server_ctx)
    failures: list[BaseException] = []

    async def handshake() -> None:
        try:
            await server.do_handshake()
        except trio.ClosedResourceError as exc:
            failures.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(handshake)
        await trio.testing.wait_all_tasks_blocked()
        await server.aclose()
    assert len(failures) == 1


async def test_clean_close_is_end_of_stream(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    client, server = await handshake_pair(client_ctx, server_ctx)
    await client.send_all(b"bye")
    await client.aclose()
    assert await server.receive_some() == b"bye"
    assert await server.receive_some() == b""
    assert await server.receive_some() == b""  # and stays so
    await server.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await client.send_all(b"after close")


async def test_abrupt_close_breaks_the_peer(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    async with trio.open_nursery() as nursery:
        received: list[BaseException] = []
        done = trio.Event()

        async def reader(stream: TlsStream) -> None:
            try:
                await stream.receive_some()
            except trio.BrokenResourceError as exc:
                received.append(exc)
            done.set()

        server = await Server().start(nursery, server_ctx, reader)
        client = await tls.connect("127.0.0.1", server.port, client_ctx, handshake_timeout=5)
        await client.aclose_forcefully()  # no close_notify: a halted link
        await done.wait()
        (failure,) = received
        assert isinstance(failure.__cause__, SSL.Error)  # EOF without close_notify
        nursery.cancel_scope.cancel()


async def test_aclose_tolerates_a_peer_that_vanished(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    gone = trio.Event()

    async def vanish(stream: TlsStream) -> None:
        await stream.aclose_forcefully()
        gone.set()

    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, vanish)
        client = await tls.connect("127.0.0.1", server.port, client_ctx, handshake_timeout=5)
        await gone.wait()
        await client.aclose()  # close_notify into a dead socket: no error
        await client.aclose()  # idempotent
        nursery.cancel_scope.cancel()



async def test_a_forceful_close_in_a_cancelled_scope_closes_and_does_not_raise(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    """What ``trio.aclose_forcefully`` promises, kept by the socket fast path: the
    socket is closed at once, the call is a schedule point, and it does not
    raise the cancellation (a cleanup path in a cancelled task runs on)."""

    async def idle(stream: TlsStream) -> None:
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, idle)
        client = await tls.connect("127.0.0.1", server.port, client_ctx, handshake_timeout=5)
        sock = client.transport_stream.socket
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.aclose_forcefully()
            assert sock.fileno() == -1
            await trio.lowlevel.checkpoint()  # still cancelled: this one raises
        assert scope.cancelled_caught
        with pytest.raises(trio.ClosedResourceError):
            await client.send_all(b"x")
        nursery.cancel_scope.cancel()


# -- the openssl CLI as an independent peer --

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _write(tmp_path, stem: str, issued: Issued) -> tuple[str, str, str]:
    cert = save_certificate(tmp_path / f"{stem}.crt", issued.cert)
    key = save_key(tmp_path / f"{stem}.key", issued.key)
    chain = save_chain(tmp_path / f"{stem}.pem", issued.chain)
    return str(cert), str(key), str(chain)


def _attime(epoch: dt.datetime) -> str:
    """Have openssl judge validity at the scenario's instant, not the wall clock."""
    return str(int((epoch + dt.timedelta(days=1)).timestamp()))


@pytest.mark.oracle
@needs_openssl
async def test_openssl_s_client_with_a_client_certificate_talks_to_our_server(
    tmp_path, pki: Material, server_ctx: SSL.Context, epoch: dt.datetime
) -> None:
    cert, key, chain = _write(tmp_path, "sensor", pki.client)
    root = str(save_certificate(tmp_path / "root.crt", pki.root.cert))
    seen: list[list] = []

    async def handler(stream: TlsStream) -> None:
        seen.append(stream.peer_chain())
        line = await receive_line(stream)
        await stream.send_all(b"pong " + line)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        server = await Server().start(nursery, server_ctx, handler)
        result = await trio.run_process(
            [
                "openssl", "s_client", "-connect", f"127.0.0.1:{server.port}",
                "-cert", cert, "-key", key, "-cert_chain", chain,
                "-CAfile", root, "-verify_return_error", "-attime", _attime(epoch),
                "-quiet",
            ],
            stdin=b"ping\n",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        nursery.cancel_scope.cancel()
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"pong ping\n"
    assert seen == [[pki.client.cert, *pki.client.chain]]


@pytest.mark.oracle
@needs_openssl
async def test_our_client_talks_to_openssl_s_server_that_requires_a_certificate(
    tmp_path, pki: Material, client_ctx: SSL.Context, epoch: dt.datetime
) -> None:
    cert, key, chain = _write(tmp_path, "console", pki.server)
    root = str(save_certificate(tmp_path / "root.crt", pki.root.cert))
    process = await trio.lowlevel.open_process(
        [
            "openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
            "-cert", cert, "-key", key, "-cert_chain", chain,
            "-Verify", "2", "-verify_return_error", "-CAfile", root, "-attime", _attime(epoch),
            "-rev",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        banner = b""
        with trio.fail_after(10):  # real time: another OS process starting up
            while b"ACCEPT" not in banner or not banner.endswith(b"\n"):
                chunk = await process.stdout.receive_some()
                assert chunk, f"s_server exited: {banner!r}"
                banner += chunk
        port = int(banner.split(b"ACCEPT", 1)[1].split(b"\n", 1)[0].rsplit(b":", 1)[1])
        with trio.fail_after(10):
            client = await tls.connect("127.0.0.1", port, client_ctx, handshake_timeout=5)
            assert client.peer_chain() == [pki.server.cert, *pki.server.chain]
            await client.send_all(b"hello from a sensor\n")
            assert await receive_line(client) == b"rosnes a morf olleh\n"
            await client.aclose()
    finally:
        with trio.move_on_after(5):
            process.kill()
            await process.wait()


async def test_connect_to_a_closed_port_is_the_plain_refusal(client_ctx: SSL.Context) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # bound, never listening, now closed: nothing answers there
    with pytest.raises(ConnectionRefusedError) as info:
        await tls.connect("127.0.0.1", port, client_ctx, handshake_timeout=5)
    assert info.value.errno == errno.ECONNREFUSED


# -- an idle reader's shallow wait --


@asynccontextmanager
async def socket_handshake_pair(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> AsyncIterator[tuple[TlsStream, TlsStream]]:
    """Both ends over a real socket pair (``wait_readable`` waits on the socket)."""
    a, b = trio.socket.socketpair()
    client = TlsStream.client(trio.SocketStream(a), client_ctx)
    server = TlsStream.server(trio.SocketStream(b), server_ctx)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.do_handshake)
            nursery.start_soon(server.do_handshake)
        yield client, server
    finally:
        await client.aclose_forcefully()
        await server.aclose_forcefully()


async def test_wait_readable_returns_at_once_for_a_record_already_received(
    autojump_clock: trio.testing.MockClock, client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    async with socket_handshake_pair(client_ctx, server_ctx) as (client, server):
        await server.send_all(b"one")
        await server.send_all(b"two")
        await trio.testing.wait_all_tasks_blocked()
        # Both records came in with one socket read; the second waits in OpenSSL.
        assert await receive_exactly(client, 3) == b"one"
        with trio.fail_after(5):  # waiting on the socket would never end: nothing more comes
            await client.wait_readable()
        assert await client.receive_some() == b"two"


async def test_wait_readable_waits_for_the_peer_then_the_data_is_there(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    async with socket_handshake_pair(client_ctx, server_ctx) as (client, server):
        woke: list[bytes] = []

        async def idle_reader() -> None:
            await client.wait_readable()
            woke.append(await client.receive_some())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(idle_reader)
            await trio.testing.wait_all_tasks_blocked()
            assert woke == []  # the session ticket is not data: it still waits
            await server.send_all(b"heartbeat")
        assert woke == [b"heartbeat"]


async def test_wait_readable_wakes_for_close_notify(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    async with socket_handshake_pair(client_ctx, server_ctx) as (client, server):
        await server.aclose()
        await client.wait_readable()
        assert await client.receive_some() == b""


async def test_wait_readable_beside_a_receive_is_a_usage_error(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    async with socket_handshake_pair(client_ctx, server_ctx) as (client, server):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.receive_some)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await client.wait_readable()
            await server.send_all(b"x")


async def test_wait_readable_reports_a_broken_record_already_received_with_its_reason(
    client_ctx: SSL.Context, server_ctx: SSL.Context
) -> None:
    async with socket_handshake_pair(client_ctx, server_ctx) as (client, server):
        await server.send_all(b"one")
        # An application-data record that does not decrypt, right behind it.
        await server.transport_stream.send_all(b"\x17\x03\x03\x00\x20" + bytes(32))
        await trio.testing.wait_all_tasks_blocked()
        assert await receive_exactly(client, 3) == b"one"
        with pytest.raises(trio.BrokenResourceError) as info:
            await client.wait_readable()
        assert "bad record mac" in reasons(info.value)
