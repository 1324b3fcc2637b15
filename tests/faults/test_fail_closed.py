"""Fail closed, as properties over the whole fault-recipe corpus.

With validation on, no application message ever reaches or leaves a peer
whose certificate fails a check:

* at the link level: a three-appliance mesh (sensor -> console <-> HA
  console), each appliance with a recipe drawn from ``mesh.pki.faults.RECIPES``;
  every link with a failing end is halted, by the end that judged the bad
  certificate, with the recipe's code, and its delivered counter (both
  directions) stays 0, with no ``message-delivered`` event for it. Validation
  may be switched off at one appliance: an end with it off accepts (the link
  is ``up-unvalidated``) unless the other end, with it on, refuses;
* at the byte level: a rogue peer holding a failing certificate sends its
  ACCEPT and application frames right after the handshake, without waiting
  for a verdict. The appliance must deliver none of them and must send the
  rogue nothing but its REFUSE frame.

Each example runs in its own ``trio.run`` with its own CRL server; keys come
from the session's pool, so an example costs milliseconds of signing.
"""

from __future__ import annotations

import datetime as dt
import os

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from OpenSSL import SSL

from mesh.appliances import EngineSettings, LinkState, Mesh
from mesh.errors import FailureCode
from mesh.events import MessageDelivered
from mesh.net import tls
from mesh.net.crl_server import CrlServer
from mesh.net.framing import Frame, FramedStream, FrameError, FrameType, encode
from mesh.pki.faults import RECIPES, Recipe
from mesh.validation.policy import ValidationPolicy

from .conftest import Deployment

EPOCH = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
SETTINGS = EngineSettings(handshake_timeout=5.0, verdict_timeout=5.0, crl_timeout=2.0)
EXAMPLES = settings(
    max_examples=int(os.environ.get("MESH_FAULT_EXAMPLES", "25")), deadline=None
)

#: Checks a validating appliance runs at connection start (lint and the
#: upload-only checks on key files are not among them).
_CONNECTION_CHECKS = {"verifier", "revocation", "strength"}


def fails_at_connection(recipe: Recipe, revocation: str) -> FailureCode | None:
    """The code a validating peer refuses this certificate with, or None."""
    if recipe.expected is None or recipe.seen_by not in _CONNECTION_CHECKS:
        return None
    if revocation == "soft" and recipe.expected.is_crl_retrieval:
        return None
    return recipe.expected


recipes = st.sampled_from(sorted(RECIPES))
failing = st.sampled_from(sorted(n for n in RECIPES if fails_at_connection(RECIPES[n], "hard")))


async def _deployment(nursery: trio.Nursery, keys) -> Deployment:
    server = CrlServer()
    await nursery.start(server.serve)
    return Deployment(server, keys, EPOCH)


# -- the link level --


@EXAMPLES
@given(
    sensor=recipes,
    console=recipes,
    ha=recipes,
    revocation=st.sampled_from(["hard", "soft"]),
    switched_off=st.sets(st.sampled_from(["sensor-1", "console", "ha"]), max_size=1),
)
def test_no_message_crosses_a_link_with_a_failing_end(
    key_pool, sensor, console, ha, revocation, switched_off
):
    """Validation may be off at one appliance: only ends with it on are bound to refuse."""
    faults = {"sensor-1": sensor, "console": console, "ha": ha}
    policy = ValidationPolicy(revocation=revocation)
    on = {name: name not in switched_off for name in faults}

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            deployment = await _deployment(nursery, key_pool.cursor())
            deployment.build(
                ("console", "management-console", console),
                ("ha", "ha-console", ha),
                ("sensor-1", "sensor", sensor),
            )
            mesh = deployment.mesh(
                [
                    deployment.spec("ha", "ha-console", policy=policy, validation=on["ha"]),
                    deployment.spec(
                        "console", "management-console", connects_to=["ha"], policy=policy,
                        validation=on["console"],
                    ),
                    deployment.spec(
                        "sensor-1", "sensor", connects_to=["console"], policy=policy,
                        validation=on["sensor-1"],
                    ),
                ],
                settings=SETTINGS,
            )
            await nursery.start(mesh.run)
            await mesh.settle()
            _check_links(mesh, faults, revocation, on)
            nursery.cancel_scope.cancel()

    trio.run(main)


def presentable(mesh: Mesh, name: str) -> bool:
    """Can this appliance present its certificate over TLS at all?

    Asked of the appliance's own context builder (what its connections use):
    an engine that cannot load a certificate (say OpenSSL refuses an RSA-1024
    key) holds no TLS connection, so its links stay down and no verdict is
    ever reached. That is closed too.
    """
    try:
        mesh.appliance(name)._tls(server=False)
    except SSL.Error:
        return False
    return True


def _check_links(
    mesh: Mesh, faults: dict[str, str], revocation: str, on: dict[str, bool]
) -> None:
    delivered_on = {(e.dialer, e.listener) for e in mesh.events.of(MessageDelivered)}
    for link in mesh.links():
        bad = {
            judge: code
            for judge, judged in ((link.dialer, link.listener), (link.listener, link.dialer))
            if on[judge]
            and (code := fails_at_connection(RECIPES[faults[judged]], revocation)) is not None
        }
        where = f"{link.dialer} -> {link.listener} with {faults}"
        mute = not (presentable(mesh, link.dialer) and presentable(mesh, link.listener))
        if bad or mute:
            assert link.delivered == 0, where
            assert (link.dialer, link.listener) not in delivered_on, where
            if mute:
                assert link.state in (LinkState.DOWN, LinkState.HALTED), where
            else:
                assert link.state is LinkState.HALTED, where
                assert dict(link.refusals) == bad, where
        else:
            unvalidated = not (on[link.dialer] and on[link.listener])
            state = LinkState.UP_UNVALIDATED if unvalidated else LinkState.UP
            assert link.state is state, f"{where}: {link.line()}"
            assert link.delivered >= 1, where


# -- the byte level --


def _rogue_frames(name: str) -> bytes:
    """What a rogue that does not wait for verdicts sends right after its handshake."""

    frames = [
        Frame(type=FrameType.ACCEPT, body={"appliance": name, "enforced": True}),
        Frame(type=FrameType.HEARTBEAT, body={"from": name, "seq": 1}),
        Frame(type=FrameType.ALERT, body={"origin": name, "text": "rogue alert"}),
        Frame(type=FrameType.REPLICATE, body={"snapshot": True, "alerts": 0}),
    ]
    return b"".join(encode(f) for f in frames)


def _rogue_context(identity, *, server: bool) -> SSL.Context:
    """A peer that plays by no rules: presents any certificate (RSA-1024 too), trusts anyone."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD if server else SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(tls.TLS1_2)
    ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    ctx.use_certificate(identity.cert)
    ctx.use_privatekey(identity.key)
    for extra in identity.chain:
        ctx.add_extra_chain_cert(extra)
    ctx.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    return ctx


async def _frames_until_closed(stream: tls.TlsStream) -> list[Frame]:
    framed = FramedStream(stream)
    frames: list[Frame] = []
    with trio.fail_after(10):
        while True:
            try:
                frame = await framed.receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError, FrameError):
                return frames
            if frame is None:
                return frames
            frames.append(frame)


@EXAMPLES
@given(fault=failing)
def test_a_rogue_client_gets_nothing_in_and_nothing_out(key_pool, fault):
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            deployment = await _deployment(nursery, key_pool.cursor())
            deployment.build(("console", "management-console"), ("sensor-1", "sensor", fault))
            mesh = deployment.mesh(
                [deployment.spec("console", "management-console")], settings=SETTINGS
            )
            await nursery.start(mesh.run)
            context = _rogue_context(deployment.identity("sensor-1"), server=False)
            stream = await tls.connect("127.0.0.1", mesh.appliance("console").port, context)
            await stream.send_all(_rogue_frames("sensor-1"))
            frames = await _frames_until_closed(stream)
            await stream.aclose_forcefully()
            await trio.testing.wait_all_tasks_blocked()

            assert [f.type for f in frames] == [FrameType.REFUSE], frames
            assert frames[0].body["code"] == RECIPES[fault].expected.code
            assert not mesh.events.of(MessageDelivered)
            console = mesh.appliance("console")
            assert console.inbox.received == 0 and console.alerts.alerts == []
            assert all(link.delivered == 0 for link in mesh.links())
            nursery.cancel_scope.cancel()

    trio.run(main)


@EXAMPLES
@given(fault=failing)
def test_a_rogue_server_gets_nothing_in_and_nothing_out(key_pool, fault):
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            deployment = await _deployment(nursery, key_pool.cursor())
            deployment.build(("console", "management-console", fault), ("sensor-1", "sensor"))
            heard: list[list[Frame]] = []
            done = trio.Event()

            async def rogue(stream: tls.TlsStream) -> None:
                await stream.send_all(_rogue_frames("console"))
                heard.append(await _frames_until_closed(stream))
                done.set()

            context = _rogue_context(deployment.identity("console"), server=True)
            [listener] = await nursery.start(tls.serve, rogue, context)
            mesh = deployment.mesh(
                [deployment.spec("sensor-1", "sensor", connects_to=["console"])],
                settings=SETTINGS,
            )
            mesh.add_external(
                "console", "127.0.0.1", listener.port,
                hostname=deployment.pki.appliances["console"].common_name,
            )
            await nursery.start(mesh.run)
            with trio.fail_after(10):
                await done.wait()
            await trio.testing.wait_all_tasks_blocked()

            assert [f.type for f in heard[0]] == [FrameType.REFUSE], heard
            link = mesh.link("sensor-1", "console")
            assert (link.state, link.code) == (LinkState.HALTED, RECIPES[fault].expected)
            assert link.delivered == 0
            assert not mesh.events.of(MessageDelivered)
            assert mesh.appliance("sensor-1").inbox.received == 0
            nursery.cancel_scope.cancel()

    trio.run(main)
