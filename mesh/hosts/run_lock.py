"""Which ``mesh run --hosts`` runs are alive: a lock each live run holds.

Why. ``mesh hosts clean`` removes what a killed run left, and it finds that
by name (``mesh-<id>-``). A run that is still going has objects named the
same way; removing them ends its nodes under it, so on a machine two people
share, one person's clean would end the other's run. Each run therefore holds
an exclusive lock (:mod:`mesh.held_lock`) on ``/run/mesh/hosts-<id>.lock``
from before it makes its first namespace until it has removed its last: a
lock that can be taken belongs to a run that is gone, and a lock that cannot
be taken to a run that is alive. The file holds the run's PID, for the message only.

Root only (so is ``--hosts``): the folder is 0700 and the files 0600.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from mesh.errors import InputError
from mesh.held_lock import try_lock

__all__ = ["LOCKS", "held", "holder", "stale"]

#: Where the locks live: a tmpfs, emptied at boot like the namespaces.
LOCKS = Path("/run/mesh")


def _path(run_id: str) -> Path:
    return LOCKS / f"hosts-{run_id}.lock"


@contextlib.contextmanager
def held(run_id: str) -> Iterator[None]:
    """Hold run ``run_id``'s lock for the block; the file is removed after it.

    Raises:
        InputError: a live run holds it already (its id was used twice).
    """
    path = _path(run_id)
    try:
        LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise InputError(
            "mesh run --hosts", f"cannot make its lock {path} ({exc.strerror or exc})",
            f"make {LOCKS} writable by root",
        ) from None
    try:
        if not try_lock(fd):
            raise InputError(
                "mesh run --hosts",
                f"run id {run_id} is in use by a run still going (pid {_read_pid(fd) or 'unknown'})",
                "run it again: each run picks a new id",
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        finally:
            # Unlinked while still locked: a clean that opens it now finds
            # no file, and one that opened it before sees the lock held.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        os.close(fd)


def holder(run_id: str) -> int | None:
    """The PID of the live run holding ``run_id``'s lock (0 when it wrote none), else None."""
    try:
        fd = os.open(_path(run_id), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if try_lock(fd):
            return None  # nobody holds it: the run is gone
        return _read_pid(fd)
    finally:
        os.close(fd)  # closing drops a lock taken just now


def stale(run_id: str) -> Path | None:
    """Remove ``run_id``'s lock file when no live run holds it; the path removed, else None."""
    path = _path(run_id)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        if not try_lock(fd):
            return None
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return path
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else 0
