"""The private folder of a node run (``--processes``, ``--hosts``), and the sweep of dead ones.

Why. Every node run writes its nodes' configs, certificates and private keys
to a temporary folder (``mesh-nodes-*``, 0700, keys 0600) and removes it on
every way out it sees. SIGKILL is the one it cannot see: the folder stays,
keys included, and every killed run added one. So each run holds a lock
(:mod:`mesh.held_lock`) on ``.lock`` inside its folder for its whole life,
and each new run first removes the folders of runs that are gone: the ones
of this user whose lock can be taken. A folder whose lock is held belongs to
a run still going and is left alone; a folder without one (made by an
older mesh) is left alone too: nothing says whether its run is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from mesh.held_lock import try_lock

__all__ = ["PREFIX", "node_folder", "sweep"]

#: What every node run's folder is named with, in the temporary directory.
PREFIX = "mesh-nodes-"

_LOCK = ".lock"


@contextlib.contextmanager
def node_folder() -> Iterator[Path]:
    """A new private folder for one node run, held for the block, removed after it.

    The folders that killed runs left are removed first (:func:`sweep`).
    """
    sweep()
    with tempfile.TemporaryDirectory(prefix=PREFIX) as tmp:
        folder = Path(tmp)
        # Locked under another name, then renamed: a sweep that finds
        # ``.lock`` finds it held (the lock is the file's, not the name's).
        fd = os.open(folder / f"{_LOCK}.new", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try_lock(fd)  # new and ours alone: nobody else can hold it yet
            os.rename(folder / f"{_LOCK}.new", folder / _LOCK)
            yield folder
        finally:
            os.close(fd)


def sweep() -> list[Path]:
    """Remove this user's node-run folders whose run is gone; the folders removed."""
    removed = []
    for folder in sorted(Path(tempfile.gettempdir()).glob(f"{PREFIX}*")):
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to read
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
            fd = os.open(folder / _LOCK, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                if not try_lock(fd):
                    continue  # a run still going
                shutil.rmtree(folder)
                removed.append(folder)
            finally:
                os.close(fd)
    return removed
