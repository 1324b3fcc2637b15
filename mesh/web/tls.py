"""The console's TLS: the appliance's current certificate, swapped without a restart.

Theory of operation: hypercorn builds one ``ssl.SSLContext`` when it starts
listening and never asks again. An upload must change the certificate that
*new* connections see, so the listening context carries an ``sni_callback``:
OpenSSL calls it on every ClientHello (with ``server_name`` None when the
client sends no SNI, as curl does for an IP address), it reads the backend's
current identity and, when that changed, points the connection at a freshly
built context for it (``SSLObject.context = ...``, OpenSSL's
``SSL_set_SSL_CTX``). Connections already open keep the certificate they
negotiated. Contexts are built only when the certificate changes.

The stdlib loads keys only from files: each key is written to a new private
directory (0700) as a 0600 file, loaded and deleted at once; it never stays
on disk and never goes anywhere else.

Client certificates are optional (``CERT_OPTIONAL``): a browser or curl
without one is served; one that sends a certificate must chain to the
appliance's trusted roots or to its operator CA (``operator_ca``), else the
handshake fails (as Apache's ``SSLVerifyClient optional`` does: the stdlib
has no verify callback to let an unknown issuer through to a 403).

OpenSSL's check of the client certificate's dates is off
(``X509_V_FLAG_NO_CHECK_TIME``): the appliance lives on an emulated clock,
and :func:`mesh.web.auth.judge_operator_certificate` judges the dates by it,
so an expired operator certificate is a 403 with its own code rather than a
handshake failure by the wall clock.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from typing import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mesh.pki.issue import Issued

__all__ = ["IdentityContexts", "build_context"]

#: What the console speaks: HTTP/1.1 only. hypercorn 0.18's HTTP/2 code fails
#: on ordinary client behaviour (a body sent after an early answer), so it is
#: never offered (and never switched to: see :mod:`mesh.web.connection`).
ALPN = ("http/1.1",)

#: OpenSSL's ``X509_V_FLAG_NO_CHECK_TIME`` (x509_vfy.h), which ``ssl.VerifyFlags`` does not name.
_NO_CHECK_TIME = 0x200000


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def build_context(
    identity: Issued,
    *,
    trust: Sequence[x509.Certificate] = (),
    sni_callback: Callable[[ssl.SSLObject, str | None, ssl.SSLContext], None] | None = None,
) -> ssl.SSLContext:
    """A server context presenting ``identity`` (certificate, then its chain)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.set_alpn_protocols(list(ALPN))
    pem = identity.cert.public_bytes(serialization.Encoding.PEM) + b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in identity.chain
    )
    key = identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    folder = tempfile.mkdtemp(prefix="mesh-console-")  # 0700
    try:
        cert_path = os.path.join(folder, "console.crt")
        key_path = os.path.join(folder, "console.key")
        _write_private(cert_path, pem)
        _write_private(key_path, key)
        context.load_cert_chain(cert_path, key_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if trust:
        context.load_verify_locations(
            cadata="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in trust)
        )
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= _NO_CHECK_TIME
    if sni_callback is not None:
        context.sni_callback = sni_callback
    return context


class IdentityContexts:
    """Hands out the listening context and keeps it on the current identity.

    Args:
        identity: called at every handshake; returns what to present now.
        trust: called when a context is built; roots for client certificates.
    """

    def __init__(
        self,
        identity: Callable[[], Issued],
        trust: Callable[[], Sequence[x509.Certificate]] = lambda: (),
    ) -> None:
        self._identity = identity
        self._trust = trust
        self._fingerprint: bytes | None = None
        self._current: ssl.SSLContext | None = None
        self.builds = 0

    def context(self) -> ssl.SSLContext:
        """The context for the identity in force now (built if it changed)."""
        issued = self._identity()
        fingerprint = issued.cert.fingerprint(hashes.SHA256())
        if self._current is None or fingerprint != self._fingerprint:
            self._current = build_context(
                issued, trust=tuple(self._trust()), sni_callback=self._on_hello
            )
            self._fingerprint = fingerprint
            self.builds += 1
        return self._current

    def _on_hello(
        self, ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        try:
            current = self.context()
        except (ValueError, OSError, RuntimeError, ssl.SSLError):
            # No identity to read, or one OpenSSL cannot load (the upload check
            # should have refused it): keep presenting the last good one.
            return
        if ssl_object.context is not current:
            ssl_object.context = current
