"""A FIFO lock for objects that exist by the thousand: no parking lot until someone waits.

Why not ``trio.Lock``: each one carries a ``ParkingLot`` (and its ordered
dict) from birth, about 650 bytes, and every link holds three (its TLS
stream's send and receive locks, its framed stream's send lock) at each end
for its whole life, almost never contended. This lock makes its parking lot
on the first wait and drops it when the queue empties: measured, ~4 kB less
per link. Semantics are ``trio.Lock``'s (and ``trio.StrictFIFOLock``'s):
FIFO hand-over to the longest waiter, only the holder may release,
``acquire`` is a checkpoint, a cancelled waiter leaves the queue, and (as
trio's own locks) a Ctrl-C never lands half way through a hand-over.
"""

from __future__ import annotations

import trio

__all__ = ["LeanLock"]


class LeanLock:
    """A strict-FIFO ``trio`` lock whose waiting queue exists only while used."""

    __slots__ = ("_owner", "_lot")

    def __init__(self) -> None:
        self._owner: trio.lowlevel.Task | None = None
        self._lot: trio.lowlevel.ParkingLot | None = None

    def locked(self) -> bool:
        return self._owner is not None

    @trio.lowlevel.enable_ki_protection
    def acquire_nowait(self) -> None:
        """Take the lock if it is free and nobody queues for it.

        Raises:
            trio.WouldBlock: it is held (or a waiter is due to get it).
            RuntimeError: the calling task holds it already.
        """
        task = trio.lowlevel.current_task()
        if self._owner is task:
            raise RuntimeError("attempt to re-acquire an already held LeanLock")
        if self._owner is not None or self._lot:
            raise trio.WouldBlock
        self._owner = task

    @trio.lowlevel.enable_ki_protection
    async def acquire(self) -> None:
        """Take the lock, waiting in FIFO order; a checkpoint either way."""
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            self.acquire_nowait()
        except trio.WouldBlock:
            if self._lot is None:
                self._lot = trio.lowlevel.ParkingLot()
            # release() hands the lock over before waking us: nothing to retake.
            await self._lot.park()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()

    @trio.lowlevel.enable_ki_protection
    def release(self) -> None:
        """Hand the lock to the longest waiter, or free it.

        Raises:
            RuntimeError: the calling task does not hold it.
        """
        if self._owner is not trio.lowlevel.current_task():
            raise RuntimeError("can't release a LeanLock you don't own")
        lot = self._lot
        if lot:
            (self._owner,) = lot.unpark()
            if not lot:
                self._lot = None
        else:
            self._owner = None
            self._lot = None

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
