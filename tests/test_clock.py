"""EmulatedClock: scenario time over trio time, jumps wake sleepers."""

from __future__ import annotations

import datetime as dt

import pytest
import trio
import trio.testing

from mesh.clock import EmulatedClock

DAY = dt.timedelta(days=1)


def test_needs_an_aware_start(epoch):
    with pytest.raises(ValueError, match="no timezone"):
        EmulatedClock(epoch.replace(tzinfo=None))


def test_outside_trio_reads_start_plus_jumps(epoch):
    clock = EmulatedClock(epoch)
    assert clock.now() == epoch
    clock.jump(DAY)
    assert clock.now() == epoch + DAY
    assert clock() == epoch + DAY


def test_never_runs_backwards(epoch):
    clock = EmulatedClock(epoch)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.jump(-DAY)


async def test_trio_time_passes(epoch, autojump_clock):
    clock = EmulatedClock(epoch)
    assert clock.now() == epoch
    await trio.sleep(90)
    assert clock.now() == epoch + dt.timedelta(seconds=90)
    clock.jump(DAY)
    assert clock.now() == epoch + DAY + dt.timedelta(seconds=90)


async def test_sleep_uses_trio_time_when_nobody_jumps(epoch, autojump_clock):
    clock = EmulatedClock(epoch)
    assert await clock.sleep(30) is True
    assert clock.now() == epoch + dt.timedelta(seconds=30)


async def test_jump_past_the_deadline_ends_a_sleep_at_once(epoch):
    # Real trio clock: a year-long sleep must end because of the jump alone.
    clock = EmulatedClock(epoch)
    done = trio.Event()
    result = []

    async def sleeper():
        result.append(await clock.sleep(365 * 86400))
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.testing.wait_all_tasks_blocked()
        await clock.advance(dt.timedelta(days=366))
        with trio.fail_after(5):
            await done.wait()
    assert result == [True]


async def test_small_jump_and_kick_wake_a_backoff_early(epoch):
    clock = EmulatedClock(epoch)
    results = []

    async def sleeper():
        results.append(await clock.sleep(3600))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        nursery.start_soon(sleeper)
        await trio.testing.wait_all_tasks_blocked()
        clock.jump(dt.timedelta(seconds=10))
        await trio.testing.wait_all_tasks_blocked()
        assert results == [False, False]
        nursery.start_soon(sleeper)
        await trio.testing.wait_all_tasks_blocked()
        clock.kick()
    assert results == [False, False, False]


async def test_unkickable_sleep_only_rereads_the_time(epoch, autojump_clock):
    clock = EmulatedClock(epoch)
    result = []

    async def sleeper():
        result.append(await clock.sleep(100, kickable=False))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.testing.wait_all_tasks_blocked()
        clock.jump(dt.timedelta(seconds=40))
        await trio.testing.wait_all_tasks_blocked()
        assert result == []
    assert result == [True]
    assert clock.now() == epoch + dt.timedelta(seconds=100)


async def test_sleep_until(epoch, autojump_clock):
    clock = EmulatedClock(epoch)
    target = epoch + dt.timedelta(hours=2)

    async def jumper():
        await trio.sleep(60)
        clock.jump(dt.timedelta(hours=1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(jumper)
        await clock.sleep_until(target)
    assert clock.now() == target


async def test_a_quiet_jump_leaves_sleepers_asleep_until_the_next_kick(epoch):
    # What a scenario step does: jump, act, then kick once everything changed.
    clock = EmulatedClock(epoch)
    result = []

    async def sleeper():
        result.append(await clock.sleep(600))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sleeper)
        await trio.testing.wait_all_tasks_blocked()
        clock.jump(dt.timedelta(hours=1), wake=False)
        await trio.testing.wait_all_tasks_blocked()
        assert result == []
        clock.kick()
        with trio.fail_after(5):
            while not result:
                await trio.sleep(0)
    assert result == [True]
