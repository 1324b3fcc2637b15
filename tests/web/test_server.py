"""Serving the console: one connection's failure ends that connection, nothing else.

Real TLS clients on 127.0.0.1 speak to a console started in the test's nursery;
a crash that escaped a connection would end that nursery and fail the test.
"""

from __future__ import annotations

import os
import ssl

import h2.config
import h2.connection
import h2.events
import httpx
import trio

from web.conftest import NAME


def _context(alpn: list[str]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    return context


async def _selected_alpn(console, offer: list[str]) -> str | None:
    stream = await trio.open_ssl_over_tcp_stream(
        console.host, console.port, ssl_context=_context(offer))
    try:
        await stream.do_handshake()
        return stream.selected_alpn_protocol()
    finally:
        await stream.aclose()


async def _h2_post_unread_body(console, body: bytes) -> None:
    """curl --http2 -X POST --data-binary @body $URL/api/v1/status, spoken by hand.

    The route answers 405 before reading the body; the client keeps sending it
    (hypercorn 0.18's h2 then fails with a KeyError). The h2 preface is sent
    whatever ALPN chose, as a client with prior knowledge would.
    """
    stream = await trio.open_ssl_over_tcp_stream(
        console.host, console.port, ssl_context=_context(["h2", "http/1.1"]))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [
        (":method", "POST"), (":path", "/api/v1/status"), (":scheme", "https"),
        (":authority", f"{console.host}:{console.port}"),
        ("content-length", str(len(body))), ("content-type", "application/octet-stream"),
    ])
    sent = 0
    with trio.move_on_after(10):
        try:
            await stream.send_all(conn.data_to_send())
            while True:
                window = min(conn.local_flow_control_window(1), conn.max_outbound_frame_size)
                if sent < len(body) and window > 0:
                    chunk = body[sent:sent + window]
                    sent += len(chunk)
                    conn.send_data(1, chunk, end_stream=sent == len(body))
                    await stream.send_all(conn.data_to_send())
                    continue
                data = await stream.receive_some(65536)
                if not data:
                    break
                try:
                    conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    break
                await stream.send_all(conn.data_to_send())
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await stream.aclose()


async def test_alpn_offers_http11_only(console):
    assert await _selected_alpn(console, ["h2", "http/1.1"]) == "http/1.1"
    assert await _selected_alpn(console, ["h2"]) is None


async def test_an_h2_request_with_an_unread_body_ends_only_its_connection(console):
    body = os.urandom(70 * 1024)
    await _h2_post_unread_body(console, body)
    await _h2_post_unread_body(console, body)
    async with httpx.AsyncClient(base_url=console.url, verify=False, timeout=10) as client:
        answer = await client.get("/api/v1/status")
    assert answer.status_code == 200
    assert answer.json()["appliance"]["name"] == NAME


async def test_plain_http_to_the_https_port_gets_a_400_saying_use_https(console):
    """A person who typed http:// gets told, not a dropped connection."""
    async with await trio.open_tcp_stream(console.host, console.port) as stream:
        await stream.send_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(4096):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert body == (f"this port speaks HTTPS: use https://{console.host}:{console.port}/\n").encode()
    # and HTTPS still answers
    async with httpx.AsyncClient(verify=False) as client:
        assert (await client.get(f"https://{console.host}:{console.port}/api/v1/status")).status_code == 200
