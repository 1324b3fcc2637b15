"""A lock a live process holds on a file: free again the moment the process ends.

Why ``flock``: the kernel drops it when the last descriptor of the open file
closes, and a process that ends (SIGKILL included) closes all of its own. So
"the lock can be taken" means "whoever made this is gone", which is what a
sweep of leftovers needs to know without guessing from PIDs or ages. Two
opens of the same file conflict even inside one process.
"""

from __future__ import annotations

import errno
import fcntl

__all__ = ["try_lock"]


def try_lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False if another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True
