"""Waiting without sleeping: when a link counts as settled, and what not settling says."""

from __future__ import annotations

import pytest
import trio

from mesh.appliances.book import LinkBook
from mesh.appliances.dialer import RetryGate
from mesh.appliances.link_state import Attempted, Judged, LinkEnd, Lost, decide
from mesh.appliances.settle import MeshNotSettled, Settler
from mesh.appliances.spec import LinkPair
from mesh.clock import EmulatedClock
from mesh.net.links import Judgement

PAIR = LinkPair(dialer="sensor-1", listener="console")


def _settler(epoch, *, running=True):
    book, gate = LinkBook(), RetryGate(EmulatedClock(epoch))
    settler = Settler(book=book, gate=gate, pairs=lambda: [PAIR], running=lambda name: running)
    return settler, book, gate


def _up(book, epoch, *, attempt):
    link = book.get(PAIR.dialer, PAIR.listener)
    dialer, listener = Judgement(by="sensor-1", accepted=True), Judgement(by="console", accepted=True)
    end = LinkEnd(me="sensor-1", link=link)
    end.handle(Attempted(), owner=True, at=epoch)
    end.handle(
        Judged(outcome=decide(dialer, listener), mine=dialer, theirs=listener, attempt=attempt),
        owner=True,
        at=epoch,
    )
    return end


async def _come_up(book, gate, epoch, pairs, every: float) -> None:
    """Each of ``pairs`` up in turn, ``every`` trio seconds apart, each a change of the book."""
    accepted = Judgement(by="x", accepted=True)
    for pair in pairs:
        await trio.sleep(every)
        end = LinkEnd(me=pair.dialer, link=book.get(pair.dialer, pair.listener))
        end.handle(Attempted(), owner=True, at=epoch)
        end.handle(Judged(outcome=decide(accepted, accepted), mine=accepted, theirs=accepted,
                          attempt=gate.generation), owner=True, at=epoch)
        book.touch()


def test_a_link_settles_with_an_outcome_from_an_attempt_after_the_request(epoch):
    settler, book, gate = _settler(epoch)
    generation = gate.request()
    assert not settler.settled(PAIR, generation)  # no record yet
    end = _up(book, epoch, attempt=generation - 1)
    assert settler.settled(PAIR, generation)  # up, and no re-check asked for: it stays up
    end.handle(Lost(reason="console closed the link", attempt=generation - 1), owner=True, at=epoch)
    assert not settler.settled(PAIR, generation)  # down since: an outcome from before
    end.handle(Lost(reason="console closed the link", attempt=generation), owner=True, at=epoch)
    assert settler.settled(PAIR, generation)


def test_a_link_whose_dialer_does_not_run_has_nothing_to_wait_for(epoch):
    settler, _book, gate = _settler(epoch, running=False)
    assert settler.settled(PAIR, gate.request())


async def test_after_a_recheck_a_live_link_must_be_judged_afresh(epoch):
    settler, book, gate = _settler(epoch)
    _up(book, epoch, attempt=0)
    with pytest.raises(MeshNotSettled) as info:
        await settler.settle(timeout=0, quiet=0, fresh=True)
    assert info.value.pending == ("sensor-1 -> console",)
    _up(book, epoch, attempt=gate.generation)
    await settler.settle(timeout=5, quiet=0, fresh=False)


def test_an_up_link_awaiting_its_first_frame_has_not_settled(epoch):
    settler, book, gate = _settler(epoch)
    generation = gate.request()
    _up(book, epoch, attempt=generation)
    link = book.find(PAIR.dialer, PAIR.listener)
    link.greeting = True  # the sensor's first heartbeat is on its way
    assert not settler.settled(PAIR, generation)
    link.greeting = False
    assert settler.settled(PAIR, generation)


async def test_a_settle_without_idle_returns_while_other_work_goes_on(epoch):
    """A step needs outcomes, not a quiet process: a busy task does not hold it up."""
    settler, book, gate = _settler(epoch)
    async with trio.open_nursery() as nursery:

        async def busy() -> None:  # a halted dialer retrying, say
            while True:
                await trio.sleep(0)

        nursery.start_soon(busy)
        _up(book, epoch, attempt=gate.generation + 1)
        with trio.fail_after(5):
            await settler.settle(timeout=5, quiet=0.002, fresh=False, idle=False)
        nursery.cancel_scope.cancel()


def test_not_settling_names_the_first_five_links_still_waiting():
    error = MeshNotSettled(0.5, tuple(f"s{n} -> c" for n in range(7)))
    assert isinstance(error, trio.TooSlowError)
    assert str(error) == (
        "the mesh did not settle within 0.5 s: no outcome yet for "
        "s0 -> c, s1 -> c, s2 -> c, s3 -> c, s4 -> c and 2 more"
    )
    assert str(MeshNotSettled(2, ())) == "the mesh did not settle within 2 s: it never went idle"


async def test_waiting_for_many_links_looks_at_each_a_bounded_number_of_times(epoch):
    # Links come up one per scheduling round, each a change of the book. A pass
    # over every pending link per change was quadratic: at 400 links, ~40,000
    # looks; batched, a few per link.
    pairs = [LinkPair(dialer=f"sensor-{n}", listener="console") for n in range(400)]
    book, gate = LinkBook(), RetryGate(EmulatedClock(epoch))
    looked = [0]

    class Counting(Settler):
        def settled(self, pair, generation):
            looked[0] += 1
            return super().settled(pair, generation)

    settler = Counting(book=book, gate=gate, pairs=lambda: pairs, running=lambda name: True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_come_up, book, gate, epoch, pairs, 0)
        with trio.fail_after(10):
            await settler.settle(timeout=10, quiet=0, fresh=False, idle=False)
    assert looked[0] < 20 * len(pairs)


async def test_the_timeout_bounds_a_stall_not_a_wait_that_makes_progress(epoch, autojump_clock):
    """A re-check of a big shard takes minutes; each link settling starts the timeout again."""
    pairs = [LinkPair(dialer=f"sensor-{n}", listener="console") for n in range(40)]
    book, gate = LinkBook(), RetryGate(EmulatedClock(epoch))
    settler = Settler(book=book, gate=gate, pairs=lambda: pairs, running=lambda name: True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_come_up, book, gate, epoch, pairs, 1)  # one a second: 40 s in all
        started = trio.current_time()
        await settler.settle(timeout=5, quiet=0, fresh=False, idle=False)
        assert trio.current_time() - started == pytest.approx(40)
    # The last link never comes: 5 s after the one before it, that is a failure.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_come_up, book, gate, epoch, pairs[:-1], 1)
        started = trio.current_time()
        with pytest.raises(MeshNotSettled) as info:
            await settler.settle(timeout=5, quiet=0, fresh=True, idle=False)
        assert info.value.pending == ("sensor-39 -> console",)
        assert trio.current_time() - started == pytest.approx(39 + 5)
