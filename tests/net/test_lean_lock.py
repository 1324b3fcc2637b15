"""LeanLock: trio.Lock's rules, with a waiting queue only while someone waits."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.net.lean_lock import LeanLock


async def test_waiters_get_the_lock_in_the_order_they_came() -> None:
    lock = LeanLock()
    order: list[int] = []

    async def take(n: int) -> None:
        async with lock:
            order.append(n)
            await trio.sleep(0)

    await lock.acquire()
    async with trio.open_nursery() as nursery:
        for n in range(5):
            nursery.start_soon(take, n)
            await trio.testing.wait_all_tasks_blocked()
        lock.release()
    assert order == [0, 1, 2, 3, 4]
    assert not lock.locked()
    assert lock._lot is None  # the queue is gone with its last waiter


async def test_a_free_lock_is_taken_at_once_and_a_held_one_would_block() -> None:
    lock = LeanLock()
    lock.acquire_nowait()
    assert lock.locked()
    with pytest.raises(RuntimeError, match="re-acquire"):
        lock.acquire_nowait()

    async def other() -> None:
        with pytest.raises(trio.WouldBlock):
            lock.acquire_nowait()
        with pytest.raises(RuntimeError, match="don't own"):
            lock.release()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
    lock.release()
    assert not lock.locked()


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    lock = LeanLock()
    got: list[str] = []

    async def wait_for(name: str, scope: trio.CancelScope | None = None) -> None:
        with scope or trio.CancelScope():
            async with lock:
                got.append(name)

    await lock.acquire()
    impatient = trio.CancelScope()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_for, "impatient", impatient)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(wait_for, "patient")
        await trio.testing.wait_all_tasks_blocked()
        impatient.cancel()
        await trio.testing.wait_all_tasks_blocked()
        lock.release()
    assert got == ["patient"]
    assert not lock.locked()


async def test_acquire_is_a_checkpoint_even_when_free() -> None:
    lock = LeanLock()
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await lock.acquire()
    assert not lock.locked()
