"""The client side of a console's credentials: what a driving program sends.

A program that changes appliances through their consoles (a scenario driver,
a fleet inventory) holds one :class:`ConsoleCredential` per console: the
console's bearer token (read from its token file), or an operator client
certificate and key (``mesh pki operator``), which one certificate serves
for every console that names the same ``operator_ca``. :meth:`client` gives
an ``httpx.AsyncClient`` that presents it; :meth:`ssl_context` and
:meth:`headers` are the parts, for any other HTTP client.

The credential's secrets stay out of its repr, and nothing here logs.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx
from attrs import define, field

from mesh.errors import InputError

__all__ = ["ConsoleCredential"]


@define(frozen=True, kw_only=True)
class ConsoleCredential:
    """A bearer token, or an operator certificate and key (files), for a console."""

    token: str | None = field(default=None, repr=False)
    cert_file: Path | None = None
    key_file: Path | None = None

    def __attrs_post_init__(self) -> None:
        has_token = self.token is not None
        has_cert = self.cert_file is not None or self.key_file is not None
        if has_token == has_cert or (has_cert and (self.cert_file is None or self.key_file is None)):
            raise ValueError("a console credential is a token, or a certificate and its key")

    @classmethod
    def from_token_file(cls, path: str | Path) -> ConsoleCredential:
        """The token in a console's token file (what its ``api-listening`` event names)."""
        where = str(path)
        try:
            token = Path(path).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(where, f"cannot be read ({getattr(exc, 'strerror', None) or exc})",
                             "name the token file the console's api-listening event names") from None
        if not token:
            raise InputError(where, "is empty", "name the token file the console wrote")
        return cls(token=token)

    @classmethod
    def operator(cls, cert_file: str | Path, key_file: str | Path) -> ConsoleCredential:
        """An operator certificate and its (unencrypted) key, as ``mesh pki operator`` wrote them."""
        return cls(cert_file=Path(cert_file), key_file=Path(key_file))

    def headers(self) -> dict[str, str]:
        """The headers every request carries: the token's, or none."""
        return {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}

    def ssl_context(self, *, cafile: str | Path | None = None, cadata: str | None = None,
                    verify: bool = True) -> ssl.SSLContext:
        """A client context presenting the operator certificate, if this is one.

        Args:
            cafile, cadata: the roots the console's certificate must chain to
                (the PKI's root; default: the system's).
            verify: False accepts any console certificate (a first start's
                self-signed one): only where nobody else can answer.
        """
        context = ssl.create_default_context(cafile=None if cafile is None else str(cafile),
                                             cadata=cadata)
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file is not None and self.key_file is not None:
            try:
                context.load_cert_chain(str(self.cert_file), str(self.key_file))
            except (OSError, ssl.SSLError) as exc:
                raise InputError(f"{self.cert_file}, {self.key_file}",
                                 f"cannot be used as a client certificate and key ({exc})",
                                 "give the .crt and .key mesh pki operator wrote") from None
        return context

    def client(self, base_url: str, *, cafile: str | Path | None = None,
               cadata: str | None = None, verify: bool = True,
               timeout: float = 10, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` for ``base_url`` (a console's URL) that presents this credential."""
        headers = {**self.headers(), **dict(kwargs.pop("headers", None) or {})}
        return httpx.AsyncClient(
            base_url=base_url, timeout=timeout, headers=headers,
            verify=self.ssl_context(cafile=cafile, cadata=cadata, verify=verify), **kwargs)
