"""The scenario driver's one HTTP client for a fleet of running nodes and its CRL server.

Why one module: every request the driver sends to a node's console
(:mod:`mesh.web.api`) or to ``mesh crl serve``'s control API
(:mod:`mesh.web.crl_api`) goes through :class:`FleetClient`, so the
credential (a bearer token per API, and/or one operator client certificate
for every API, given as ``operator``: its TLS context is
:class:`mesh.console_client.ConsoleCredential`'s) and the TLS trust are
decided in one place.

Each API is an :class:`Api`: its URL, its name for messages and its token.
Tokens are read when the Api is made and never logged or put in a message.
An answer the driver cannot use (the API unreachable, 401/403, an answer of
the wrong shape) is a :class:`FleetError`: one line naming the appliance (or
the CRL server), the request and the fix, which ``mesh run`` prints as any
input error (exit status 2).

Connections are kept open between requests (keep-alive): a step asks every
node once or twice, and a thousand new TLS handshakes per step would be
most of its cost.
"""

from __future__ import annotations

import base64
import datetime as dt
import ssl
from pathlib import Path
from typing import Any, Mapping

import httpx
from attrs import define, field

from mesh.console_client import ConsoleCredential
from mesh.errors import InputError
from mesh.pki.deployment import ApplianceMaterial
from mesh.scenario.backend import UploadVerdict

__all__ = ["Api", "FleetClient", "FleetError", "Operator", "instant", "upload_parts"]


class FleetError(InputError):
    """A node or the CRL server did not answer as the driver needs; one line."""


@define(frozen=True, kw_only=True)
class Api:
    """One API the driver talks to: an appliance's console or the CRL server's."""

    #: The appliance's name, or ``crl-server``: what messages name.
    name: str
    url: str
    token: str | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@define(frozen=True, kw_only=True)
class Operator:
    """An operator's mutual-TLS client credential, presented to every API; ``ca``
    verifies the APIs' certificates (None: trust rests on the credential alone)."""

    certificate: Path | None = None
    key: Path | None = None
    ca: Path | None = None


def instant(value: dt.datetime) -> str:
    """An instant as the APIs write it (UTC, ``Z``)."""
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


#: Real seconds one request may take: a refresh waits for every link of its
#: appliance (the node gives up on its own after REFRESH_TIMEOUT).
REQUEST_TIMEOUT = 120.0

#: Real seconds a refresh with a stall limit may take in all before the
#: driver gives up on the node: 20,000 links re-check in about two minutes
#: on two cores, so only a node that hangs reaches it.
REFRESH_BACKSTOP = 3600.0


class FleetClient:
    """``async with FleetClient(...) as client``: requests to the fleet's APIs."""

    def __init__(self, *, operator: Operator | None = None, timeout: float = REQUEST_TIMEOUT) -> None:
        operator = operator or Operator()
        verify: ssl.SSLContext | bool = False
        if operator.certificate is not None and operator.key is not None:
            # The consoles' own client-side credential code (mesh.console_client).
            verify = ConsoleCredential.operator(operator.certificate, operator.key).ssl_context(
                cafile=operator.ca, verify=operator.ca is not None)
        elif operator.ca is not None:
            verify = ssl.create_default_context(cafile=str(operator.ca))
        if isinstance(verify, ssl.SSLContext) and operator.ca is not None:
            # The consoles present the appliance's certificate, named for the
            # appliance, not for the address the inventory dials.
            verify.check_hostname = False
        # Idle connections are dropped well before the consoles drop them (120 s):
        # reusing one the server is closing fails the request.
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            verify=verify, timeout=timeout, trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None,
                                keepalive_expiry=60.0),
        )

    async def __aenter__(self) -> FleetClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._client.__aexit__(*exc_info)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _request(self, api: Api, method: str, path: str, *, ok: tuple[int, ...] = (200,),
                       **kwargs: Any) -> httpx.Response:
        where = f"{api.name}: {method} {api.url}{path}"
        try:
            answer = await self._client.request(method, api.url + path, headers=api.headers(),
                                                **kwargs)
        except httpx.TimeoutException:
            raise FleetError(where, "did not answer in time",
                             "check that the node runs and is not overloaded") from None
        except httpx.HTTPError as exc:
            raise FleetError(where, f"cannot be reached ({type(exc).__name__}: {exc})",
                             "check the address in the inventory and that the process runs") from None
        if answer.status_code not in ok:
            raise FleetError(where, f"answered {answer.status_code} {_code(answer)}",
                             _fix(answer.status_code))
        return answer

    async def _json(self, api: Api, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = await self._request(api, method, path, **kwargs)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise FleetError(f"{api.name}: {method} {api.url}{path}", "answered something not JSON",
                             "is this a mesh API? check the URL in the inventory")
        return body

    # -- appliance consoles --

    async def status(self, api: Api) -> dict[str, Any]:
        return await self._json(api, "GET", "/api/v1/status")

    async def refresh(self, api: Api, stall: float | None = None) -> dict[str, Any]:
        """``POST /api/v1/crls/refresh``: ``{"pending": [...], "links": [...]}`` once settled.

        ``stall``: the node answers (with what is still pending) once no link
        has had a new outcome for this many seconds. The answer itself may
        then take up to :data:`REFRESH_BACKSTOP`: a shard of thousands of
        links re-checks for minutes, and it is the node that knows whether
        it still progresses.
        """
        if stall is None:
            return await self._json(api, "POST", "/api/v1/crls/refresh")
        return await self._json(api, "POST", "/api/v1/crls/refresh", params={"timeout": f"{stall:g}"},
                                timeout=httpx.Timeout(self._timeout, read=REFRESH_BACKSTOP))

    async def move_clock(self, api: Api, to: dt.datetime) -> dt.datetime:
        body = await self._json(api, "POST", "/api/v1/clock", json={"now": instant(to)})
        return dt.datetime.fromisoformat(str(body.get("now")))

    async def set_validation(self, api: Api, enabled: bool) -> None:
        await self._json(api, "PUT", "/api/v1/validation", json={"enabled": enabled})

    async def set_running(self, api: Api, running: bool) -> None:
        await self._json(api, "PUT", "/api/v1/running", json={"running": running})

    async def upload(self, api: Api, *, crt: bytes, key: bytes, chain: bytes | None,
                     passphrase: str | None) -> UploadVerdict:
        """``POST /api/v1/certificate``; the node's own verdict (422: refused, with its code)."""
        files = {"crt": ("upload.crt", crt), "key": ("upload.key", key)}
        if chain:
            files["chain"] = ("upload.pem", chain)
        data = {"passphrase": passphrase} if passphrase else {}
        answer = await self._request(api, "POST", "/api/v1/certificate", ok=(200, 422),
                                     files=files, data=data)
        if answer.status_code == 200:
            return UploadVerdict(accepted=True)
        body = answer.json()
        return UploadVerdict(accepted=False, code=body.get("code"), message=body.get("message", ""))

    # -- the CRL server --

    async def publish(self, api: Api, documents: Mapping[str, bytes]) -> None:
        """``POST /api/v1/crls``: serve these CRLs (path -> DER) from now on."""
        await self._json(api, "POST", "/api/v1/crls", json={
            "documents": {path: base64.b64encode(data).decode() for path, data in documents.items()}})

    async def fault(self, api: Api, fault: str) -> None:
        await self._json(api, "PUT", "/api/v1/fault", json={"fault": fault})


def upload_parts(material: ApplianceMaterial) -> tuple[bytes, bytes, bytes | None, str | None]:
    """The files an admin uploads for ``material``: .crt, .key (as the PKI wrote it), chain, passphrase."""
    from cryptography.hazmat.primitives import serialization

    from mesh.scenario.world import upload_files

    issued, key_pem, passphrase = upload_files(material)
    crt = issued.cert.public_bytes(serialization.Encoding.PEM)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.chain) or None
    return crt, key_pem, chain, passphrase


def _code(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("code"), str):
        message = body.get("message")
        return f"{body['code']}" + (f": {message}" if isinstance(message, str) else "")
    return answer.reason_phrase


def _fix(status: int) -> str:
    if status == 401:
        return "give the API's token (token_file or token_env in the inventory)"
    if status == 403:
        return "the token is not this API's; each node writes a new one at every start"
    if status == 404:
        return "is this a mesh node's console (or the CRL server's control API)? check the URL"
    return "see the message; the fleet was left as it was after the previous step"
