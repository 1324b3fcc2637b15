"""The least a link costs: what every mesh link does on the wire, and nothing else of mesh.

Why it is measured: the speed targets set a big run against the handshake
floor (``engine.tls_pair_floor``: two ``TlsStream`` ends over a socket pair,
handshaken, nothing else). Every mesh link does more than that on the wire
whatever mesh does besides: its dialer connects to a listening port and the
listener accepts, each end sends one record and reads the other's (the
verdicts), and the dialer closes with close_notify. Here those steps run with
mesh's own parts (``tls.connect``, ``accepting.serve_listener``, shared
contexts with credentials per connection, as many dialing at once as the engine's
``EngineSettings.dial_slots``) and
none of the rest: no validation, CRLs, events, link records or frames. The
figure tells how much of a link's cost is its transport, so what is left of
twice the floor for mesh's own work is a figure of the run, not a guess.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time

import trio

from mesh.appliances.settings import EngineSettings
from mesh.net import tls
from mesh.net.accepting import serve_listener
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.issue import KeySource

__all__ = ["bare_links"]

#: Distinct sensor identities the dials cycle through (each its own
#: certificate, keys from a pool, as the engine's bring-up takes them).
_IDENTITIES = 100
_KEY_POOL = 16

#: Seconds one round may take (1,000 links take about 3).
_ROUND_LIMIT = 60.0


async def bare_links(
    keys: KeySource, links: int, *, at_once: int = EngineSettings().dial_slots
) -> float:
    """CPU seconds per link for ``links`` bare links, ``at_once`` dialing at a time.

    Both ends run in this process, as in the floor. A warm-up of ``at_once``
    links first, so a key's first use (OpenSSL's per-key precomputation) is
    not counted: the floor's keys are warm too.

    Raises:
        trio.TooSlowError: a round did not complete within a minute (a link
            that fails raises its own error: either way, no figure).
    """
    pool = [keys(2048) for _ in range(_KEY_POOL)]
    cycle = itertools.cycle(pool)
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    sensors = [f"sensor-{i}.bare.test" for i in range(_IDENTITIES)]
    pki = Pki.build(
        at=at,
        appliances=[ApplianceRequest(name="console.bare.test", role="management-console")]
        + [ApplianceRequest(name=name) for name in sensors],
        keys=lambda bits: next(cycle),
    )
    trust = pki.trust_roots()
    console = pki.appliances["console.bare.test"]
    server_credentials = tls.Credentials(console.cert, console.issued.key)
    server_context = tls.shared_context(
        server_credentials, server=True, chain=console.chain, trust=trust
    )
    clients = [
        tls.Credentials(pki.appliances[name].cert, pki.appliances[name].issued.key)
        for name in sensors
    ]
    client_context = tls.shared_context(
        clients[0], server=False, chain=pki.appliances[sensors[0]].chain, trust=trust
    )
    served = 0
    wanted = at_once
    all_served = trio.Event()

    async def serve_one(transport: trio.SocketStream) -> None:
        nonlocal served
        stream = tls.TlsStream.server(transport, server_context, credentials=server_credentials)
        await tls.handshake(stream, timeout=30.0, peer="a sensor")
        await stream.receive_some()  # the dialer's verdict
        await stream.send_all(b"accepted")
        if await stream.receive_some() == b"":  # its close_notify
            served += 1
            if served == wanted:
                all_served.set()

    async def dial(port: int, numbers: itertools.count[int]) -> None:
        for number in numbers:
            if number >= wanted:
                return
            stream = await tls.connect(
                "127.0.0.1", port, client_context, server_hostname="console.bare.test",
                handshake_timeout=30.0, credentials=clients[number % len(clients)],
            )
            await stream.send_all(b"accepted")
            await stream.receive_some()
            await stream.aclose()

    async def one_round(port: int) -> None:
        """``wanted`` links, until the listener has read the last close_notify."""
        numbers = itertools.count()
        with trio.fail_after(_ROUND_LIMIT):
            async with trio.open_nursery() as dialers:
                for _ in range(at_once):
                    dialers.start_soon(dial, port, numbers)
            await all_served.wait()

    async with trio.open_nursery() as nursery:
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=4096))[0]
        nursery.start_soon(serve_listener, listener, serve_one, nursery)
        port = listener.socket.getsockname()[1]
        await one_round(port)
        served, wanted, all_served = 0, links, trio.Event()
        started = time.process_time()
        await one_round(port)
        cpu = time.process_time() - started
        nursery.cancel_scope.cancel()
    return cpu / links
