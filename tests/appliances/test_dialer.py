"""The dialer: its loop per link, capped backoff, and the gate that cuts it short."""

from __future__ import annotations

import itertools
import socket

import attrs
import trio
import trio.testing

from meshlab import FAST, Deployment

from mesh.appliances import LinkState
from mesh.appliances.dialer import Backoff, DialSlot, RetryGate
from mesh.clock import EmulatedClock
from mesh.events import ConnectionDropped, LinkDown

AB = ("a", "b")  # a link, (dialer, listener)


def test_backoff_is_capped_exponential():
    backoff = Backoff(initial=1, cap=10)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 1


async def test_a_request_ends_a_pause_begun_before_it_and_skips_one_begun_after(
    epoch, autojump_clock
):
    gate = RetryGate(EmulatedClock(epoch))
    since = gate.generation
    ended = []

    async def pause() -> None:
        await gate.pause(3600, since)
        ended.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(pause)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        assert gate.request() == since + 1
    assert ended == [start]  # woken at once, not after the hour
    await gate.pause(3600, since)  # a request came since: no wait at all
    assert trio.current_time() == start


async def test_a_recheck_calls_each_watcher_of_an_older_attempt_once(epoch):
    gate = RetryGate(EmulatedClock(epoch))
    called: list[str] = []
    old = gate.watch_recheck(gate.generation, AB, lambda why: called.append("old"))
    gone = gate.watch_recheck(gate.generation, AB, lambda why: called.append("gone"))
    gate.unwatch(gone)
    generation = gate.recheck()
    assert (called, gate.recheck_generation) == (["old"], generation)
    # An attempt older than the recheck is told at once; a newer one waits for the next.
    gate.watch_recheck(generation - 1, AB, lambda why: called.append("late"))
    gate.watch_recheck(generation, AB, lambda why: called.append("new"))
    assert called == ["old", "late"]
    gate.recheck()
    assert called == ["old", "late", "new"]
    gate.unwatch(old)  # already called: nothing to undo


async def test_a_recheck_of_some_links_calls_only_theirs_with_the_reason(epoch):
    gate = RetryGate(EmulatedClock(epoch))
    called: list[tuple[str, str]] = []
    gate.watch_recheck(gate.generation, AB, lambda why: called.append(("a->b", why)))
    gate.watch_recheck(gate.generation, ("c", "b"), lambda why: called.append(("c->b", why)))
    generation = gate.generation
    gate.recheck_links({AB}, "to present b's new certificate")
    assert called == [("a->b", "to present b's new certificate")]
    assert gate.generation == generation  # no other backoff is cut short
    gate.recheck_links({AB}, "again")  # told once
    gate.recheck()
    assert called[1:] == [("c->b", "to validate afresh")]


async def test_a_listener_nobody_knows_is_down_and_said_so_once(deployment, nursery):
    deployment.build(("sensor-1", "sensor"))
    mesh = deployment.mesh([deployment.spec("sensor-1", "sensor", connects_to=["console"])])
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.settle()  # more attempts, the same outcome: not news
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.reason) == (LinkState.DOWN, "console has no known address")
    [down] = mesh.events.of(LinkDown)
    assert down.reason == "console has no known address"
    assert mesh.events.kinds().count("link-connecting") == 1


async def test_a_listener_that_does_not_listen_is_not_reachable(deployment, nursery):
    deployment.build(("sensor-1", "sensor"))
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mesh = deployment.mesh([deployment.spec("sensor-1", "sensor", connects_to=["console"])])
    mesh.add_external("console", "127.0.0.1", port)
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.reason) == (
        LinkState.DOWN, f"console at 127.0.0.1:{port} is not reachable (Connection refused)"
    )


async def test_a_dial_slot_is_given_back_once():
    limiter = trio.CapacityLimiter(1)
    async with DialSlot(limiter) as slot:
        assert limiter.borrowed_tokens == 1
        slot.release()  # the attempt has its outcome: the slot is free at once
        assert limiter.borrowed_tokens == 0
        async with DialSlot(limiter):
            assert limiter.borrowed_tokens == 1
    assert limiter.borrowed_tokens == 0


async def test_a_recheck_of_a_big_mesh_does_not_time_its_handshakes_out(
    crl_server, key_pool, epoch, nursery
):
    """Every dialer redials at once; with a few slots each handshake has the CPU
    in turn, so none of them runs past a timeout that one alone meets easily.

    Without slots, 200 handshakes sharing one core all finished late together
    (a 1,000-sensor shard: half its links reported down after a re-check).
    """
    cursor = key_pool.cursor()
    few = [cursor(2048) for _ in range(4)]  # keys shared: certificates stay unique
    cycle = itertools.cycle(few)
    deployment = Deployment(crl_server, lambda bits: next(cycle), epoch)
    names = [f"sensor-{i}" for i in range(200)]
    deployment.build(("console", "management-console"), *((n, "sensor") for n in names))
    specs = [deployment.spec("console", "management-console")]
    specs += [deployment.spec(n, "sensor", connects_to=["console"]) for n in names]
    settings = attrs.evolve(FAST, handshake_timeout=0.3, dial_slots=4)
    mesh = deployment.mesh(specs, settings=settings)
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.refresh()
    assert {link.state for link in mesh.links()} == {LinkState.UP}
    assert mesh.events.of(LinkDown) == [] and mesh.events.of(ConnectionDropped) == []
    assert mesh.events.kinds().count("link-recheck") == 200
