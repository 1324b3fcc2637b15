"""Child processes that end when the run that started them ends, however it ends.

Why. ``mesh run --processes``, ``--workers`` and ``--hosts`` start ``mesh
node`` processes (and, on hosts, ``mesh crl serve`` and ``mesh crl proxy``)
and stop them on every way out the run sees: a result, an error, Ctrl-C.
SIGKILL is the one it cannot see, and its children then ran on, holding their
ports and their folder, until someone found them.

How. The run hands each such child the read end of a pipe whose write end
only the run holds (:func:`for_child`). When the run ends, the kernel closes
that write end; the child's watcher (:func:`follow_parent`, started by the
CLI before any command) reads end-of-file and sends its own process SIGTERM,
which the child handles as any SIGTERM (``mesh node``: a clean stop, its last
line ``appliance-stopped``). Linux's ``PR_SET_PDEATHSIG`` would not do: it
fires when the *thread* that started the child ends, and trio starts
processes from worker threads that come and go.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["ENVIRONMENT", "for_child", "follow_parent"]

#: Names the inherited descriptor in a child's environment.
ENVIRONMENT = "MESH_PARENT_FD"

#: This process's pipe (read end, write end), made at the first child. Both
#: ends are non-inheritable: only ``pass_fds`` hands the read end on, so no
#: other child keeps the write end open.
_pipe: tuple[int, int] | None = None


def for_child(env: dict[str, str]) -> tuple[dict[str, str], tuple[int, ...]]:
    """``env`` for a child that must not outlive this process, and the fds to pass it."""
    global _pipe
    if _pipe is None:
        _pipe = os.pipe()
    read = _pipe[0]
    return {**env, ENVIRONMENT: str(read)}, (read,)


def follow_parent() -> None:
    """In a child started with :func:`for_child`: SIGTERM ourselves once the parent is gone."""
    value = os.environ.pop(ENVIRONMENT, None)
    if value is None or not value.isdigit():
        return
    fd = int(value)
    try:
        os.set_inheritable(fd, False)  # ours alone, not our own children's
    except OSError:
        return  # not open here: nothing to watch
    threading.Thread(target=_watch, args=(fd,), name="mesh-parent-watch", daemon=True).start()


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 64):
            pass  # the parent never writes; end-of-file means it is gone
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
