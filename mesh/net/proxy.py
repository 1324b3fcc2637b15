"""A minimal forwarding HTTP proxy, for appliances that reach CRLs only through one.

The source document lets an appliance fetch its CRLs through a proxy. To test
that for real we need a proxy that can reach hosts the fetcher cannot: this one
has its own view of the network (``routes``: ``"crl.contoso.example:80"`` ->
``("127.0.0.1", 8123)``), the way a proxy in a DMZ resolves names the appliance
cannot. No well-kept forwarding proxy runs on trio (mitmproxy and proxy.py
bring their own asyncio servers), so this is the same h11 server as the CRL
server plus an httpx client upstream, about a hundred lines.

Only absolute-form ``GET``/``HEAD`` of ``http://`` URLs is forwarded (that is
all a CRL fetch is); ``CONNECT`` gets 405. An upstream that cannot be reached
is 502, one that does not answer in time 504, as real proxies answer.
"""

from __future__ import annotations

from collections import Counter
from typing import Mapping

import httpx

from mesh.net.http_server import HttpServer, Request, Response

__all__ = ["ForwardProxy"]

# Hop-by-hop headers (RFC 9110 section 7.6.1) are not forwarded.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "content-length"}
)


class ForwardProxy(HttpServer):
    """Forwards absolute-form HTTP requests; ``await nursery.start(proxy.serve)`` -> port."""

    def __init__(
        self,
        *,
        routes: Mapping[str, tuple[str, int]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.routes = {key.lower(): value for key, value in (routes or {}).items()}
        self.timeout = timeout
        self._forwarded: Counter[str] = Counter()

    @property
    def url(self) -> str:
        """The proxy URL to give a fetcher (``proxy=``) or ``HTTP_PROXY``."""
        return self.base_url

    def forwarded(self, url: str | None = None) -> int:
        """Requests forwarded upstream (to ``url``, or all), whatever the upstream said."""
        if url is None:
            return sum(self._forwarded.values())
        return self._forwarded[url]

    async def respond(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return _plain(405, f"{request.method} is not forwarded by this proxy\n")
        try:
            target = httpx.URL(request.target)
        except httpx.InvalidURL:
            target = None
        if target is None or target.scheme != "http" or not target.host:
            return _plain(400, "this proxy forwards absolute http:// URLs only\n")
        port = target.port or 80
        route = self.routes.get(f"{target.host}:{port}".lower())
        upstream = target.copy_with(host=route[0], port=route[1]) if route else target
        headers = [(k, v) for k, v in request.headers if k not in _HOP_BY_HOP]
        headers.append(("host", request.header("host") or target.netloc.decode("ascii")))
        self._forwarded[str(target)] += 1
        try:
            async with httpx.AsyncClient(
                trust_env=False, timeout=self.timeout, follow_redirects=False
            ) as client:
                answer = await client.request(request.method, upstream, headers=headers)
        except httpx.TimeoutException as exc:
            return _plain(504, f"upstream {target} did not answer: {exc}\n")
        except httpx.TransportError as exc:
            return _plain(502, f"upstream {target} unreachable: {exc}\n")
        return Response(
            status=answer.status_code,
            body=answer.content,
            content_type=answer.headers.get("content-type", "application/octet-stream"),
        )


def _plain(status: int, text: str) -> Response:
    return Response(status=status, body=text.encode(), content_type="text/plain; charset=utf-8")
