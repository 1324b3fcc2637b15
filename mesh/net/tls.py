"""Mutual TLS as a trio Stream: a pyOpenSSL ``SSL.Connection`` over memory BIOs.

Why pyOpenSSL and not ``trio.SSLStream``: the verdict on a peer is ours, not
OpenSSL's. We need the chain exactly as the peer presented it, a verify
callback that accepts everything and only records what OpenSSL saw, and
control of the moment between the end of the handshake and the first
application byte (the engine validates there and halts the link on failure).
The standard library's ``ssl`` gives none of that cleanly.

Theory of operation (the same as trio's ``_ssl.py``, which this follows
closely): the ``SSL.Connection`` is built with no socket (``Connection(ctx,
None)``), so OpenSSL reads ciphertext from an in-memory BIO we fill and writes
ciphertext to an in-memory BIO we drain. OpenSSL never does I/O itself. Every
operation (handshake, read, write, shutdown) goes through :meth:`TlsStream._retry`,
the only code that moves bytes between those BIOs and the transport stream:
call the OpenSSL function; send whatever it wrote; if it wants to read, receive
from the transport, feed the bytes in and call it again.

One task may send while another receives. Two things make that safe, again as
in trio: sends to the transport are serialised by a FIFO lock, and receives
by a lock plus a counter, so that when two tasks both find OpenSSL wanting
data only one of them reads from the transport and the other simply retries.
Two tasks sending at once (or receiving at once) is a usage error and raises
``trio.BusyResourceError``.

Differences from ``trio.SSLStream``, on purpose:

* The handshake is explicit. :meth:`send_all` and :meth:`receive_some` raise
  ``trio.NeedHandshakeError`` until :meth:`do_handshake` has completed, so no
  code path can move an application byte before the caller has had the chance
  to validate :meth:`peer_chain`.
* Session resumption is off (no session cache, no use of tickets by our
  clients): every connection performs a full handshake, so every connection
  presents a chain to validate, and a revocation or an upload is seen at the
  next connection.
* ``close_notify`` is always sent and expected (our own framed protocol; no
  HTTPS truncation leniency needed).

Which errors mean what: a pyOpenSSL error during any operation breaks the
stream and surfaces as ``trio.BrokenResourceError`` whose ``__cause__`` is the
``OpenSSL.SSL.Error``. A peer's ``close_notify`` is a clean end of stream,
``b""``. A transport that ends without ``close_notify`` is an abrupt close:
``trio.BrokenResourceError``. :class:`HandshakeTimeout` (a
``trio.BrokenResourceError``) is raised by :func:`connect` and :func:`serve`
when the handshake does not finish in time.

TLS 1.3 and client certificates: the client finishes its handshake before the
server has looked at the client's certificate. A server that refuses the
client (no certificate, or a bad one at the TLS layer) therefore shows up on
the client as a ``trio.BrokenResourceError`` from the first
:meth:`receive_some` (or a later :meth:`send_all`), not from
:meth:`do_handshake`. Under TLS 1.2 it shows up in :meth:`do_handshake`.
When OpenSSL fails it usually writes an alert; the stream sends it (best
effort) before breaking, so the peer reads why ("certificate required",
"protocol version") instead of a bare disconnect.

Cost, measured on the 2-core development machine (RSA-2048, TLS 1.3, P-256,
both ends in one trio process over 127.0.0.1): about 1 ms of OpenSSL CPU and
2 ms of CPU in all per mutual handshake, i.e. ~450-490 handshakes per
CPU-second; an idle link (both ends) holds ~86 kB, almost all of it
OpenSSL's per-connection state (a bare TCP link is ~3 kB): a fresh
``SSL_new`` alone is 16.3 kB of malloc in OpenSSL 4.0, the rest is what a
handshake leaves (peer chains, session, keys). See
:func:`_release_handshake_buffers` for the 13.6 kB per pair it no longer
leaves in the memory BIOs.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import operator
import socket
import warnings
import weakref
from typing import Any, Awaitable, Callable, Iterable, Sequence, TypeVar

import trio
from attrs import define
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from OpenSSL import SSL, crypto

from mesh.errors import FailureCode, ValidationFailed
from mesh.net.close_now import close_now
from mesh.net.lean_lock import LeanLock
from mesh.pki.issue import Issued
from mesh.validation.memo import IdentityMemo, certificate_from_der

__all__ = [
    "TlsStream",
    "TlsListener",
    "HandshakeTimeout",
    "VerifyError",
    "make_context",
    "Credentials",
    "shared_context",
    "handshake",
    "connect",
    "serve",
    "TLS1_2",
    "TLS1_3",
]

T = TypeVar("T")

#: Protocol versions, re-exported so callers need not import OpenSSL.
TLS1_2: int = SSL.TLS1_2_VERSION
TLS1_3: int = SSL.TLS1_3_VERSION

#: How much ciphertext to take from the outgoing BIO per call. OpenSSL records
#: are at most ~16 KiB, so this drains several records per call.
_BIO_CHUNK = 65536

#: Default ``receive_some`` size: one full TLS record of plaintext.
_RECEIVE_SIZE = 16384

#: Stable names for the OpenSSL verify errors we expect to see recorded (the
#: X509_V_ERR_* constants of x509_vfy.h). Anything else is recorded by number.
_VERIFY_ERROR_NAMES = {
    2: "unable to get issuer certificate",
    3: "unable to get certificate CRL",
    7: "certificate signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    11: "CRL is not yet valid",
    12: "CRL has expired",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    23: "certificate revoked",
    24: "invalid CA certificate",
    25: "path length constraint exceeded",
    26: "unsupported certificate purpose",
    27: "certificate not trusted",
    28: "certificate rejected",
    66: "EE certificate key too weak",
    67: "CA certificate key too weak",
    68: "CA signature digest algorithm too weak",
}


class HandshakeTimeout(trio.BrokenResourceError):
    """The TLS handshake (or the TCP connect before it) did not finish in time.

    A subclass of ``trio.BrokenResourceError`` so code that treats every broken
    link alike needs no extra ``except``; code that reports *why* can tell it
    apart. The stream has already been closed when this is raised.
    """


@define(frozen=True, kw_only=True)
class VerifyError:
    """One complaint OpenSSL's verifier had about the peer's chain.

    Recorded for diagnosis only: the verify callback accepts every chain, and
    the verdict is the validator's. Note OpenSSL judges validity periods by
    the wall clock, not the emulated clock, so ``certificate has expired``
    here may disagree with the emulator's verdict, by design.
    """

    depth: int
    code: int
    reason: str


class _State(enum.Enum):
    OK = "ok"
    BROKEN = "broken"
    CLOSED = "closed"


@define(kw_only=True, eq=False)
class _ContextInfo:
    """What :func:`make_context` remembers on the context (``set_app_data``)."""

    server: bool


def _record_verify(
    conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
) -> bool:
    """The verify callback: remember what OpenSSL saw, accept regardless.

    The per-connection record is a plain list set as the connection's app
    data (not the TlsStream itself, which would make a reference cycle that
    keeps the SSL object alive until the cyclic GC runs).
    """
    if not ok:
        record = conn.get_app_data()
        if isinstance(record, list):
            reason = _VERIFY_ERROR_NAMES.get(errno, f"X509_V_ERR {errno}")
            record.append(VerifyError(depth=depth, code=errno, reason=reason))
    return True


def make_context(
    identity: Issued | None = None,
    *,
    server: bool,
    cert: x509.Certificate | None = None,
    key: rsa.RSAPrivateKey | None = None,
    chain: Sequence[x509.Certificate] | None = None,
    trust: Iterable[x509.Certificate] = (),
    require_peer_cert: bool = True,
    min_version: int = TLS1_2,
    max_version: int = TLS1_3,
    ecdh_curve: ec.EllipticCurve | None = ec.SECP256R1(),
) -> SSL.Context:
    """A context for one identity on one side; build once, reuse per connection.

    Args:
      identity: the certificate, key and chain to present; or give ``cert``,
        ``key`` and ``chain`` separately. A client may present nothing (both
        None), as a browser talking to a web console would.
      server: True for the accepting side.
      chain: intermediate CAs sent after the certificate, nearest first.
      trust: roots handed to OpenSSL's verifier, so that what it records
        (:attr:`TlsStream.openssl_verify_errors`) is meaningful, and, on a
        server, named in the certificate request. They never decide a verdict.
      require_peer_cert: on a server, refuse a client without a certificate
        (mutual TLS). False asks for one but lets the handshake finish
        without (the web console channel). Clients always ask the server.
      min_version, max_version: :data:`TLS1_2` / :data:`TLS1_3`.
      ecdh_curve: the one key-exchange group offered and accepted. P-256 by
        default because it is what keeps an idle link small: OpenSSL's
        default hybrid X25519MLKEM768 leaves ~5 kB more per connection
        behind (measured: 102 vs 91 kB per connected pair) and costs more
        CPU per handshake, and every OpenSSL peer speaks P-256 (one that
        leads with another key share gets a HelloRetryRequest). None keeps
        OpenSSL's default list.

    Raises:
      ValidationFailed(KEY_MISMATCH): the key is not the certificate's key.
      TypeError: identity and cert/key both given, or only one of cert/key.
    """
    if identity is not None:
        if cert is not None or key is not None or chain is not None:
            raise TypeError("give either identity or cert/key/chain, not both")
        cert, key, chain = identity.cert, identity.key, identity.chain
    if (cert is None) != (key is None):
        raise TypeError("cert and key go together: give both or neither")

    ctx = SSL.Context(SSL.TLS_SERVER_METHOD if server else SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(min_version)
    ctx.set_max_proto_version(max_version)
    options = SSL.OP_NO_COMPRESSION | SSL.OP_NO_TICKET
    if hasattr(SSL, "OP_NO_RENEGOTIATION"):
        options |= SSL.OP_NO_RENEGOTIATION
    ctx.set_options(options)
    # Idle links hold no read/write buffers: matters at thousands of links.
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    # Full handshake on every connection, so every connection has a chain to
    # validate. A session id context is still required by OpenSSL on servers
    # that verify clients, or it refuses any offered resumption noisily.
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    if server:
        ctx.set_session_id(b"mesh")
    if ecdh_curve is not None:
        ctx.set_tmp_ecdh(ecdh_curve)

    if cert is not None and key is not None:
        ctx.use_certificate(cert)
        try:
            ctx.use_privatekey(key)  # OpenSSL refuses a mismatched key right here
            ctx.check_privatekey()
        except SSL.Error as exc:
            raise ValidationFailed(
                FailureCode.KEY_MISMATCH, f"key does not match {cert.subject.rfc4514_string()}"
            ) from exc
        for extra in chain or ():
            ctx.add_extra_chain_cert(extra)

    store = ctx.get_cert_store()
    for root in trust:
        if store is not None:
            store.add_cert(crypto.X509.from_cryptography(root))
        if server:
            ctx.add_client_ca(root)

    mode = SSL.VERIFY_PEER
    if server and require_peer_cert:
        mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    ctx.set_verify(mode, _record_verify)
    ctx.set_app_data(_ContextInfo(server=server))
    return ctx


class Credentials:
    """The certificate and key one end presents, loaded onto each connection.

    Why not on the context: a fleet of appliances issued by the same CA and
    trusting the same roots differs only in these two. With them on the
    connection, every such appliance shares one context per side
    (:func:`shared_context`): a context is ~35 kB of RSS and about 0.3 ms to
    build. The chain (intermediates sent after the certificate) stays on the
    context, which OpenSSL sends for any connection with no chain of its own.

    Converted to OpenSSL's objects once, here. pyOpenSSL deprecates passing
    its own ``X509``/``PKey`` objects and would rather convert a
    ``cryptography`` key on every call, but that makes a new ``EVP_PKEY`` per
    connection and throws away OpenSSL's per-key RSA precomputation:
    measured, +0.55 ms of CPU per handshake pair (1.8 against 1.25 ms). So
    the converted objects are passed, with that one warning silenced.
    """

    __slots__ = ("cert", "key", "_x509", "_pkey")

    def __init__(self, cert: x509.Certificate, key: Any) -> None:
        self.cert = cert
        self.key = key
        self._x509 = crypto.X509.from_cryptography(cert)
        self._pkey = crypto.PKey.from_cryptography_key(key)

    def apply(self, conn: SSL.Connection, *, key: bool = True) -> None:
        """Load the certificate (and, unless ``key`` is False, the key) on ``conn``.

        Raises:
          SSL.Error: OpenSSL refuses the certificate at the context's
            security level, or the key is not the certificate's.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            conn.use_certificate(self._x509)
            if key:
                conn.use_privatekey(self._pkey)


class _Held:
    """``async with _Held(lock)``: take a free ``lock`` without a checkpoint.

    Why: trio's ``Lock.acquire`` always checkpoints, a trip through the
    scheduler, and here every holder goes straight on to a transport
    operation that checkpoints anyway (and raises ``Cancelled`` if due). A
    link's handshake, verdict exchange and first heartbeat took a dozen such
    trips at each end. A lock that is taken still waits in FIFO order.
    """

    __slots__ = ("_lock",)

    def __init__(self, lock: LeanLock) -> None:
        self._lock = lock

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except trio.WouldBlock:
            await self._lock.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()


def _release_handshake_buffers(conn: SSL.Connection) -> None:
    """Give a handshaken connection fresh, empty memory BIOs.

    Why: an OpenSSL memory BIO keeps the largest buffer it ever held, and
    the handshake is the largest thing an idle link ever carries (each
    flight holds a certificate chain). ``MODE_RELEASE_BUFFERS`` frees the
    record layer's buffers, not these. Measured with OpenSSL 4.0 and two
    2048-bit chains: 13.6 kB per connected pair, of about 95 kB, which is
    ~70 MB at 5,000 links. Bytes still waiting in the old incoming BIO (a
    session ticket that came with the server's Finished) move over first.

    pyOpenSSL has no API for this, so it uses the Connection's own BIO
    handles; if a pyOpenSSL release renames them, this does nothing.
    """
    ssl = getattr(conn, "_ssl", None)
    old_in = getattr(conn, "_into_ssl", None)
    if ssl is None or old_in is None or getattr(conn, "_from_ssl", None) is None:
        return
    lib, ffi = _openssl_binding()
    waiting = []
    buf = ffi.new("char[]", 4096)
    while (got := lib.BIO_read(old_in, buf, 4096)) > 0:
        waiting.append(ffi.buffer(buf, got)[:])
    new_in = lib.BIO_new(lib.BIO_s_mem())
    new_out = lib.BIO_new(lib.BIO_s_mem())
    if new_in == ffi.NULL or new_out == ffi.NULL:
        raise MemoryError("BIO_new")
    # SSL_set_bio frees the old pair, which the Connection owned through ssl.
    lib.SSL_set_bio(ssl, new_in, new_out)
    conn._into_ssl = new_in
    conn._from_ssl = new_out
    for data in waiting:
        lib.BIO_write(new_in, data, len(data))


def _held(bio: Any) -> int | None:
    """How many bytes a memory BIO of a Connection holds; None if it cannot tell.

    pyOpenSSL has no call for it (``bio_read`` raises ``WantReadError`` on an
    empty one); ``BIO_get_mem_data`` answers without raising. None when a
    pyOpenSSL release renames the Connection's BIO handles: callers then
    read as if something were there.
    """
    if bio is None:
        return None
    lib, ffi = _openssl_binding()
    return int(lib.BIO_get_mem_data(bio, ffi.NULL))


@functools.cache
def _openssl_binding() -> tuple[Any, Any]:
    from OpenSSL._util import ffi, lib

    return lib, ffi


def _interned(cert: crypto.X509) -> x509.Certificate:
    return certificate_from_der(crypto.dump_certificate(crypto.FILETYPE_ASN1, cert))


#: Contexts built by :func:`shared_context`, alive while any appliance uses one.
_SHARED: weakref.WeakValueDictionary[
    tuple[bool, bool, bool, tuple[bytes, ...], tuple[bytes, ...]], SSL.Context
] = weakref.WeakValueDictionary()


#: Fingerprints of the chains and trust sets appliances bring: the same few
#: objects for a whole fleet, each hashed once.
_FINGERPRINTS: IdentityMemo[tuple[bytes, ...]] = IdentityMemo(maxsize=64)


def _fingerprints(certs: Sequence[x509.Certificate]) -> tuple[bytes, ...]:
    return _FINGERPRINTS.get(certs, lambda: tuple(c.fingerprint(hashes.SHA256()) for c in certs))


def shared_context(
    credentials: Credentials,
    *,
    server: bool,
    chain: Sequence[x509.Certificate] = (),
    trust: Sequence[x509.Certificate] = (),
    require_peer_cert: bool = True,
) -> SSL.Context:
    """A context for presenting ``credentials`` on one side, shared process-wide.

    Built by :func:`make_context` with no certificate, plus ``chain``; the
    caller loads ``credentials`` on each connection (:meth:`TlsStream.client`
    / :meth:`TlsStream.server` take them). One context serves every caller
    with the same side, chain, trust and peer-certificate rule.

    A certificate OpenSSL refuses to load at its default security level
    (RSA-1024, SHA-1) gets a context at level 0: an appliance presents what
    it was given and the peer's validator judges it (``weak_crypto``).
    Checked here, once, on a probe connection, which also catches a key that
    is not the certificate's.

    Raises:
      ValidationFailed(KEY_MISMATCH): the key is not the certificate's key.
    """
    weak = False
    while True:
        key = (server, require_peer_cert, weak, _fingerprints(chain), _fingerprints(trust))
        ctx = _SHARED.get(key)
        if ctx is None:
            ctx = make_context(
                None, server=server, trust=trust, require_peer_cert=require_peer_cert
            )
            if weak:
                ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
            for extra in chain:
                ctx.add_extra_chain_cert(extra)
            _SHARED[key] = ctx
        probe = SSL.Connection(ctx, None)
        try:
            credentials.apply(probe, key=False)
        except SSL.Error:
            if weak:
                raise
            weak = True
            continue
        try:
            credentials.apply(probe)
        except SSL.Error as exc:
            raise ValidationFailed(
                FailureCode.KEY_MISMATCH,
                f"key does not match {credentials.cert.subject.rfc4514_string()}",
            ) from exc
        return ctx


class TlsStream(trio.abc.Stream):
    """Encrypted, mutually authenticated communication over a trio Stream.

    Args:
      transport: the stream carrying ciphertext (a ``trio.SocketStream``, or
        one end of ``trio.testing.memory_stream_pair``).
      conn: an ``SSL.Connection(context, None)``; memory BIOs are required.
        Build it with :meth:`client` / :meth:`server` unless you need to.
      server_side: which end this is; inferred from a :func:`make_context`
        context when omitted.

    Call :meth:`do_handshake`, inspect :meth:`peer_chain`, then talk.
    """

    def __init__(
        self,
        transport: trio.abc.Stream,
        conn: SSL.Connection,
        *,
        server_side: bool | None = None,
    ) -> None:
        if server_side is None:
            info = conn.get_context().get_app_data()
            if not isinstance(info, _ContextInfo):
                raise TypeError("server_side is required for a context not made by make_context")
            server_side = info.server
        self.transport_stream = transport
        self.server_side = server_side
        self._conn = conn
        self._verify_log: list[VerifyError] = []
        conn.set_app_data(self._verify_log)
        if server_side:
            conn.set_accept_state()
        else:
            conn.set_connect_state()
        self._state = _State.OK
        self._handshake_started = False
        self._handshake_ok = False
        self._handshake_done = False  # finished, either way
        #: Made only when a second task waits for the handshake (rare; an
        #: Event is ~0.5 kB a stream, and links hold two streams for life).
        self._handshake_finished: trio.Event | None = None
        # TLS 1.3 servers write session tickets as the handshake ends; see _retry.
        self._delayed_outgoing: bytes | None = None

        self._inner_send_lock = LeanLock()
        self._inner_recv_lock = LeanLock()
        self._holding_send = _Held(self._inner_send_lock)
        self._holding_recv = _Held(self._inner_recv_lock)
        self._inner_recv_count = 0
        self._send_conflict = _ConflictDetector("another task is sending on this TlsStream")
        self._recv_conflict = _ConflictDetector("another task is receiving on this TlsStream")

    @classmethod
    def client(
        cls,
        transport: trio.abc.Stream,
        context: SSL.Context,
        *,
        server_hostname: str | None = None,
        credentials: Credentials | None = None,
    ) -> TlsStream:
        """The dialing end; ``server_hostname`` goes out as SNI (never checked here).

        ``credentials``: what to present, when ``context`` does not carry it
        (see :func:`shared_context`).
        """
        conn = SSL.Connection(context, None)
        if credentials is not None:
            credentials.apply(conn)
        if server_hostname:
            conn.set_tlsext_host_name(server_hostname.encode("idna"))
        return cls(transport, conn, server_side=False)

    @classmethod
    def server(
        cls,
        transport: trio.abc.Stream,
        context: SSL.Context,
        *,
        credentials: Credentials | None = None,
    ) -> TlsStream:
        """The accepting end; ``credentials`` as for :meth:`client`."""
        conn = SSL.Connection(context, None)
        if credentials is not None:
            credentials.apply(conn)
        return cls(transport, conn, server_side=True)

    # -- what the handshake established --

    def _require_handshake(self, what: str) -> None:
        if not self._handshake_ok:
            raise trio.NeedHandshakeError(f"call do_handshake() before {what}")

    def peer_chain(self) -> list[x509.Certificate]:
        """The peer's certificates as presented, leaf first; [] if it sent none.

        OpenSSL's ``SSL_get_peer_cert_chain`` includes the peer's own
        certificate on a client but omits it on a server (documented OpenSSL
        behaviour, checked in the tests); this puts the leaf back so both
        sides see the same shape. Nothing is reordered, deduplicated or
        completed: a missing intermediate stays missing, for the validator to
        find.

        The certificates are interned by their DER: a peer that presents the
        same chain again gets the same objects back, so the validation
        core's identity memos (:mod:`mesh.validation.memo`) answer its
        repeat handshakes without re-reading them.
        """
        self._require_handshake("peer_chain()")
        chain = [_interned(c) for c in self._conn.get_peer_cert_chain() or ()]
        if self.server_side:
            leaf = self._conn.get_peer_certificate()
            if leaf is not None:
                chain = [_interned(leaf), *chain]
        return chain

    @property
    def openssl_verify_errors(self) -> tuple[VerifyError, ...]:
        """What OpenSSL's verifier complained about (informational only)."""
        return tuple(self._verify_log)

    @property
    def server_name(self) -> str | None:
        """The SNI name: what the client asked for (server side) or sent (client side)."""
        name = self._conn.get_servername()
        return name.decode("idna") if name else None

    @property
    def version(self) -> str:
        """The negotiated protocol, e.g. ``"TLSv1.3"``."""
        self._require_handshake("version")
        return self._conn.get_protocol_version_name()

    @property
    def cipher(self) -> str | None:
        """The negotiated cipher suite, e.g. ``"TLS_AES_256_GCM_SHA384"``."""
        self._require_handshake("cipher")
        return self._conn.get_cipher_name()

    # -- the one loop that moves bytes --

    def _check_status(self) -> None:
        if self._state is _State.BROKEN:
            raise trio.BrokenResourceError("this TlsStream is broken")
        if self._state is _State.CLOSED:
            raise trio.ClosedResourceError("this TlsStream was closed")

    def _drain_outgoing(self) -> bytes:
        # A memory BIO hands out everything it holds, up to the size asked:
        # a short read means it is empty, so no further read (and no
        # WantReadError, raised and caught once per drain) is needed. An
        # empty one is not read at all (9 WantReadErrors a link, otherwise).
        if _held(getattr(self._conn, "_from_ssl", None)) == 0:
            return b""
        chunks = []
        while True:
            try:
                chunk = self._conn.bio_read(_BIO_CHUNK)
            except SSL.WantReadError:
                break
            chunks.append(chunk)
            if len(chunk) < _BIO_CHUNK:
                break
        return b"".join(chunks)

    async def _send_alert(self) -> None:
        """Best effort: ship the alert OpenSSL wrote when it failed.

        Without this the peer only sees the connection drop; with it, it
        learns why ("certificate required", "protocol version"). A transport
        that is busy or already gone is not an error here.
        """
        alert = self._drain_outgoing()
        if not alert or self._inner_send_lock.locked():
            return
        if self._delayed_outgoing is not None:
            alert = self._delayed_outgoing + alert
            self._delayed_outgoing = None
        try:
            async with self._holding_send:
                await self.transport_stream.send_all(alert)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            pass

    async def _retry(
        self,
        fn: Callable[..., T],
        *args: Any,
        ignore_want_read: bool = False,
        is_handshake: bool = False,
    ) -> T | None:
        """Call ``fn`` until OpenSSL stops asking for input; ship its output.

        This is trio's ``SSLStream._retry`` with pyOpenSSL's exceptions: see
        the module docstring. ``fn`` must be a Connection method (or a small
        wrapper around one) that raises ``SSL.WantReadError`` when it needs
        more ciphertext.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        yielded = False
        finished = False
        ret: T | None = None
        while not finished:
            want_read = False
            try:
                ret = fn(*args)
            except SSL.WantReadError:
                want_read = True
            except SSL.Error as exc:
                self._state = _State.BROKEN
                await self._send_alert()
                raise trio.BrokenResourceError(_describe(exc)) from exc
            else:
                finished = True
            if ignore_want_read:
                want_read = False
                finished = True
            to_send = self._drain_outgoing()

            # A TLS 1.3 server finishes its handshake and immediately writes
            # session tickets. If the client already closed (say it refused
            # us), sending them now would fail the *server's* handshake with
            # a transport error instead of reporting the client's alert. Hold
            # them until the next send, exactly as trio does (python-trio#819).
            if (
                is_handshake
                and not want_read
                and self.server_side
                and self._conn.get_protocol_version_name() == "TLSv1.3"
            ):
                assert self._delayed_outgoing is None
                self._delayed_outgoing = to_send
                to_send = b""

            if to_send:
                async with self._holding_send:
                    yielded = True
                    try:
                        if self._delayed_outgoing is not None:
                            to_send = self._delayed_outgoing + to_send
                            self._delayed_outgoing = None
                        await self.transport_stream.send_all(to_send)
                    except:
                        self._state = _State.BROKEN
                        raise
            elif want_read:
                # Only one task reads the transport for a given "OpenSSL wants
                # data" moment; a second task waiting on the lock sees the
                # count moved on and retries OpenSSL instead of reading.
                recv_count = self._inner_recv_count
                async with self._holding_recv:
                    # Taking a free lock is no checkpoint (see _Held): only
                    # the transport read below counts as this call's yield.
                    if recv_count == self._inner_recv_count:
                        yielded = True
                        # A cancelled receive consumed nothing: the stream stays
                        # usable (a read under move_on_after is fine).
                        data = await self.transport_stream.receive_some()
                        if data:
                            self._conn.bio_write(data)
                        else:
                            self._conn.bio_shutdown()
                        self._inner_recv_count += 1
        if not yielded:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return ret

    # -- the Stream interface --

    async def do_handshake(self) -> None:
        """Run the handshake; a no-op (but a checkpoint) once it is done.

        A second task calling this while the first runs waits for it. If it
        fails or is cancelled the stream is broken: close it.
        """
        self._check_status()
        if self._handshake_started:
            if self._handshake_done:
                await trio.lowlevel.checkpoint()
            else:
                if self._handshake_finished is None:
                    self._handshake_finished = trio.Event()
                await self._handshake_finished.wait()
            self._check_status()
            return
        self._handshake_started = True
        try:
            await self._retry(self._conn.do_handshake, is_handshake=True)
        except:
            if self._state is _State.OK:
                self._state = _State.BROKEN
            raise
        else:
            self._handshake_ok = True
            _release_handshake_buffers(self._conn)
        finally:
            self._handshake_done = True
            if self._handshake_finished is not None:
                self._handshake_finished.set()

    async def wait_readable(self) -> None:
        """Return once :meth:`receive_some` has something to give, or may have.

        Why: an idle link's reader spends its life waiting for the next
        frame, and waiting inside :meth:`receive_some` keeps the whole chain
        of coroutines below it alive (the framed stream, this stream, the
        socket stream, the socket). Waiting here keeps only the socket's
        readiness wait: measured, ~5 kB less per link at both ends. It may
        return early (a partial record, a session ticket): the receive that
        follows then waits as usual.

        Ciphertext already received and not yet read (a record behind the
        last one, or the session ticket after the handshake) is put through
        OpenSSL first (``SSL_peek``), so nothing received is left waiting.
        On a transport other than a socket this is just a checkpoint.
        """
        with self._recv_conflict:
            if (
                self._state is _State.OK
                and self._handshake_ok
                and isinstance(self.transport_stream, trio.SocketStream)
                and not self._conn.pending()
            ):
                fed = _held(getattr(self._conn, "_into_ssl", None))
                if fed is None or fed:
                    try:
                        self._conn.recv(1, socket.MSG_PEEK)
                    except SSL.WantReadError:
                        fed = 0  # part of a record, or none with data: the rest comes
                    except SSL.ZeroReturnError:
                        pass  # close_notify: the receive that follows returns b""
                    except SSL.Error as exc:
                        # Reported here, as _retry would: OpenSSL says why only once.
                        self._state = _State.BROKEN
                        await self._send_alert()
                        raise trio.BrokenResourceError(_describe(exc)) from exc
                if fed == 0:
                    await trio.lowlevel.wait_readable(self.transport_stream.socket)
                    return
            await trio.lowlevel.checkpoint()

    def _read(self, max_bytes: int) -> bytes:
        try:
            return self._conn.recv(max_bytes)
        except SSL.ZeroReturnError:
            return b""  # the peer's close_notify: a clean end of stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Decrypted bytes; ``b""`` once the peer has sent close_notify."""
        with self._recv_conflict:
            self._check_status()
            self._require_handshake("receive_some()")
            if max_bytes is None:
                max_bytes = _RECEIVE_SIZE
            else:
                max_bytes = operator.index(max_bytes)
                if max_bytes < 1:
                    raise ValueError("max_bytes must be >= 1")
            received = await self._retry(self._read, max_bytes)
            assert received is not None
            return received

    async def receive_next_record(self, max_bytes: int | None = None) -> bytes | None:
        """Like :meth:`receive_some`, but None as soon as a record arrives that carries no data.

        A TLS 1.3 server judges the client's certificate only after the
        client's handshake is done, so the client learns its verdict from the
        server's first record: an alert (this raises BrokenResourceError, as
        :meth:`receive_some` does) or a session ticket (None here).
        """
        with self._recv_conflict:
            self._check_status()
            self._require_handshake("receive_next_record()")
            limit = _RECEIVE_SIZE if max_bytes is None else operator.index(max_bytes)
            start = self._inner_recv_count

            def read_or_none() -> bytes | None:
                try:
                    return self._read(limit)
                except SSL.WantReadError:
                    if self._inner_recv_count != start:
                        return None  # ciphertext came in and held no application data
                    raise

            return await self._retry(read_or_none)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send all of ``data``."""
        with self._send_conflict:
            self._check_status()
            self._require_handshake("send_all()")
            if not data:
                await trio.lowlevel.checkpoint()
                return
            # pyOpenSSL turns on partial writes, so one SSL_write may take
            # less than it was given; bounded chunks also keep the ciphertext
            # waiting in the outgoing BIO small.
            view = memoryview(data).cast("B")
            while view:
                sent = await self._retry(self._conn.send, view[:_BIO_CHUNK])
                assert sent is not None
                view = view[sent:]

    async def wait_send_all_might_not_block(self) -> None:
        with self._send_conflict:
            self._check_status()
            async with self._inner_send_lock:
                await self.transport_stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Send close_notify (if there is a session to close) and close the transport.

        A peer that has already vanished is fine: the close_notify is dropped
        and the transport closed. This waits for the close_notify to be
        handed to the transport, not for the peer's reply.
        """
        if self._state is _State.CLOSED:
            await trio.lowlevel.checkpoint()
            return
        if self._state is _State.BROKEN or not self._handshake_ok:
            # No session to close (never started, failed, or still running in
            # another task, which then fails with ClosedResourceError).
            self._state = _State.CLOSED
            await self.transport_stream.aclose()
            return
        try:
            try:
                await self._retry(self._conn.shutdown, ignore_want_read=True)
            except (trio.BrokenResourceError, trio.BusyResourceError):
                pass
        except:
            await close_now(self.transport_stream)
            raise
        else:
            await self.transport_stream.aclose()
        finally:
            self._state = _State.CLOSED

    async def aclose_forcefully(self) -> None:
        """Close the transport at once, without close_notify (a halted link)."""
        self._state = _State.CLOSED
        await close_now(self.transport_stream)


class _ConflictDetector:
    """Raise BusyResourceError when two tasks enter the same side at once."""

    __slots__ = ("_held", "_msg")

    def __init__(self, msg: str) -> None:
        self._msg = msg
        self._held = False

    def __enter__(self) -> None:
        if self._held:
            raise trio.BusyResourceError(self._msg)
        self._held = True

    def __exit__(self, *exc: object) -> None:
        self._held = False


def _describe(exc: SSL.Error) -> str:
    """A one-line reason from a pyOpenSSL error, for logs and link status."""
    if isinstance(exc, SSL.SysCallError):
        return "TLS peer closed the connection without close_notify"
    reasons = []
    for entry in exc.args[0] if exc.args and isinstance(exc.args[0], list) else ():
        if isinstance(entry, tuple) and entry:
            reasons.append(str(entry[-1]))
    return "TLS error: " + ("; ".join(reasons) if reasons else str(exc) or type(exc).__name__)


# -- dialing and accepting --


class TlsListener(trio.abc.Listener[TlsStream]):
    """Wraps a transport listener; ``accept`` returns a stream before its handshake."""

    def __init__(self, transport_listener: trio.abc.Listener[Any], context: SSL.Context) -> None:
        self.transport_listener = transport_listener
        self.context = context

    @property
    def port(self) -> int:
        """The TCP port of a socket listener (handy when it was opened on port 0)."""
        sock = getattr(self.transport_listener, "socket", None)
        if sock is None:
            raise AttributeError("this listener has no socket")
        return int(sock.getsockname()[1])

    async def accept(self) -> TlsStream:
        transport = await self.transport_listener.accept()
        return TlsStream.server(transport, self.context)

    async def aclose(self) -> None:
        await self.transport_listener.aclose()


async def handshake(stream: TlsStream, *, timeout: float, peer: str = "the peer") -> None:
    """``stream.do_handshake()`` within ``timeout`` seconds of trio time.

    On any failure the stream is closed forcefully before the error is
    raised, so the caller has nothing to clean up.

    Raises:
      HandshakeTimeout: the handshake did not finish in time.
      trio.BrokenResourceError: it failed; ``__cause__`` is the ``SSL.Error``.
    """
    try:
        with trio.move_on_after(timeout) as scope:
            await stream.do_handshake()
    except BaseException:
        await stream.aclose_forcefully()
        raise
    if scope.cancelled_caught:
        await stream.aclose_forcefully()
        raise HandshakeTimeout(f"TLS handshake with {peer} did not finish within {timeout:g} s")


async def connect(
    host: str,
    port: int,
    context: SSL.Context,
    *,
    server_hostname: str | None = None,
    handshake_timeout: float = 10.0,
    credentials: Credentials | None = None,
) -> TlsStream:
    """Dial ``host:port`` and complete the TLS handshake.

    The timeout covers the TCP connect and the handshake together (in trio
    time, so a MockClock drives it in tests).

    Raises:
      OSError: the TCP connect failed (refused, unreachable).
      HandshakeTimeout: no connection or no finished handshake in time.
      trio.BrokenResourceError: the handshake failed; ``__cause__`` says why.
    """
    where = f"{host}:{port}"
    deadline = trio.current_time() + handshake_timeout
    with trio.move_on_at(deadline) as scope:
        transport = await _open_tcp(host, port)
    if scope.cancelled_caught:
        raise HandshakeTimeout(
            f"TCP connect to {where} did not finish within {handshake_timeout:g} s"
        )
    stream = TlsStream.client(
        transport, context, server_hostname=server_hostname, credentials=credentials
    )
    await handshake(stream, timeout=max(0.0, deadline - trio.current_time()), peer=where)
    return stream


async def _open_tcp(host: str, port: int) -> trio.SocketStream:
    """``trio.open_tcp_stream``, without its machinery for an IP literal.

    Happy eyeballs (a nursery and a task per address) is for names with
    several addresses; an appliance dials one IP, and at thousands of links
    the nursery and task per dial are a visible cost. Errors are the plain
    ``OSError`` of the connect (refused, unreachable).
    """
    try:
        version = ipaddress.ip_address(host).version
    except ValueError:
        return await trio.open_tcp_stream(host, port)
    family = trio.socket.AF_INET6 if version == 6 else trio.socket.AF_INET
    sock = trio.socket.socket(family, trio.socket.SOCK_STREAM)
    try:
        await sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


async def serve(
    handler: Callable[[TlsStream], Awaitable[object]],
    context: SSL.Context,
    listeners: int | Sequence[trio.abc.Listener[Any]] = 0,
    *,
    host: str = "127.0.0.1",
    handshake_timeout: float = 10.0,
    on_handshake_error: Callable[[BaseException], object] | None = None,
    task_status: trio.TaskStatus[list[TlsListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept TLS connections forever; ``handler(stream)`` runs after each handshake.

    ``listeners`` is a TCP port on ``host`` (0 picks one) or transport
    listeners already open. ``task_status.started`` receives the
    :class:`TlsListener` list (``listeners[0].port`` is the port). A handshake
    that fails or times out closes that connection and calls
    ``on_handshake_error(exc)`` (``HandshakeTimeout`` or
    ``trio.BrokenResourceError``); it never stops the server. When the handler
    returns, its stream is closed forcefully (as ``trio.serve_listeners``
    does): a handler that wants a clean close calls ``await stream.aclose()``.
    """
    if isinstance(listeners, int):
        transport_listeners: Sequence[trio.abc.Listener[Any]] = await trio.open_tcp_listeners(
            listeners, host=host
        )
    else:
        transport_listeners = listeners
    tls_listeners = [TlsListener(listener, context) for listener in transport_listeners]

    async def run_one(stream: TlsStream) -> None:
        try:
            await handshake(stream, timeout=handshake_timeout, peer="a client")
        except trio.BrokenResourceError as exc:
            if on_handshake_error is not None:
                on_handshake_error(exc)
            return
        try:
            await handler(stream)
        finally:
            await stream.aclose_forcefully()

    await trio.serve_listeners(run_one, tls_listeners, task_status=task_status)

