"""A run's children end when the run ends, SIGKILL included (``mesh.parent_watch``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from mesh import parent_watch
from tests.killed_runs import ended, wait_ended

#: A run: starts one child that must not outlive it, prints the child's pid, waits.
_RUN = """
import subprocess, sys, time
from mesh.parent_watch import for_child
env, fds = for_child(dict(__import__("os").environ))
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], env=env, pass_fds=fds)
print(child.pid, flush=True)
time.sleep(600)
"""

#: The child: what the CLI does first, then nothing for ten minutes.
_CHILD = "from mesh.parent_watch import follow_parent; follow_parent(); import time; time.sleep(600)"


def test_a_child_ends_when_its_run_is_killed():
    run = subprocess.Popen([sys.executable, "-c", _RUN, _CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        child = int(run.stdout.readline())
        assert not ended(child)  # alive while the run is
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        assert wait_ended([child])
    finally:
        run.kill()
        if run.stdout is not None:
            run.stdout.close()


def test_without_the_variable_nothing_is_watched(monkeypatch):
    monkeypatch.delenv(parent_watch.ENVIRONMENT, raising=False)
    parent_watch.follow_parent()
    assert "mesh-parent-watch" not in {thread.name for thread in threading.enumerate()}


def test_the_descriptor_is_not_passed_on_to_the_childs_own_children():
    read, write = os.pipe()
    try:
        code = (
            "import os, threading\n"
            "from mesh.parent_watch import ENVIRONMENT, follow_parent\n"
            f"follow_parent()\n"
            f"print(ENVIRONMENT in os.environ, os.get_inheritable({read}),\n"
            "      any(t.name == 'mesh-parent-watch' for t in threading.enumerate()))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, parent_watch.ENVIRONMENT: str(read)}, pass_fds=(read,),
        )
        assert done.stdout.split() == ["False", "False", "True"]
    finally:
        os.close(read)
        os.close(write)
