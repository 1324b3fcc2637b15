"""The same handshake in trio over the standard library's ``ssl`` (``trio.SSLStream``).

A second baseline beside the openssl pair: one trio process doing both ends
with the interpreter's own OpenSSL binding, verifying both certificates the
way OpenSSL does (chain to the root, validity, and the client's host name
check), without mesh's extra checks.
"""

from __future__ import annotations

import ssl

import trio

from mesh.bench.context import Bench
from mesh.bench.loop import ACK, Rate, handshake_rate
from mesh.bench.material import SERVER_NAME, Material
from mesh.bench.targets import Key

__all__ = ["NAME", "run", "contexts", "stdlib_rate"]

NAME = "stdlib"


def contexts(material: Material) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: TLS 1.3 only, client certificate required."""
    server_files, client_files = material.pem("server"), material.pem("client")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_3
    server.load_cert_chain(server_files.fullchain, server_files.key)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(material.root_pem)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_3
    client.load_cert_chain(client_files.fullchain, client_files.key)
    client.load_verify_locations(material.root_pem)
    return server, client


async def _rate(material: Material, seconds: float) -> Rate:
    server_ctx, client_ctx = contexts(material)

    async def serve(stream: trio.SocketStream) -> None:
        tls = trio.SSLStream(stream, server_ctx, server_side=True)
        await tls.do_handshake()
        await tls.send_all(ACK)

    async def connect(port: int) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        tls = trio.SSLStream(stream, client_ctx, server_hostname=SERVER_NAME)
        try:
            await tls.do_handshake()
            if await tls.receive_some(1) != ACK:
                raise RuntimeError("server did not acknowledge the handshake")
        finally:
            await trio.aclose_forcefully(tls)

    return await handshake_rate(serve, connect, seconds)


def stdlib_rate(material: Material, seconds: float) -> Rate:
    """Handshakes/s of trio.SSLStream at both ends, in this process."""
    return trio.run(_rate, material, seconds)


def run(bench: Bench) -> None:
    material = bench.material(2048)
    seconds = bench.pick(5.0, 0.3)
    rate = stdlib_rate(material, seconds)
    bench.record(NAME, Key.STDLIB_RATE[1], rate.per_second, "handshakes/s", f"{rate.handshakes} in {rate.seconds:.1f} s")
    bench.record(NAME, "trio SSLStream CPU per handshake (both ends)", rate.cpu_per_handshake * 1e3, "ms")
