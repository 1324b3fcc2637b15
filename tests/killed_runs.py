"""Runs killed with SIGKILL, the one way out a run cannot see, and what they leave.

Shared by the hosts tests (``mesh hosts clean``), the node-run tests (nodes
that end with their run, folders swept) and ``mesh.parent_watch``'s tests.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from mesh.scenario.node_folder import sweep

__all__ = ["TWO_APPLIANCES", "ended", "sigkill_once_started", "wait_ended"]

#: A console and one sensor dialing it, and one step: the smallest node run.
TWO_APPLIANCES = (
    '[[appliance]]\nname = "cm.contoso.test"\nrole = "management-console"\n\n'
    '[[appliance]]\nname = "sensor-1.contoso.test"\nrole = "sensor"\n'
    'connects_to = ["cm.contoso.test"]\n\n[[step]]\nafter = "1d"\naction = "advance"\n'
)


def sigkill_once_started(
    scenario: Path,
    appliances: int,
    cwd: Path,
    *,
    mode: str = "--hosts",
    while_alive: Callable[[int], object] | None = None,
) -> None:
    """Run ``mesh run MODE scenario`` and SIGKILL it once its appliances have started.

    ``while_alive(pid)``: called first with the run stopped (SIGSTOP), alive and
    holding everything it made, as a run that is still going does. Afterwards
    its private folder (keys included) is still there, for the next node run
    to sweep: checked.
    """
    run = subprocess.Popen(
        [sys.executable, "-m", "mesh", "run", mode, str(scenario)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )
    try:
        assert run.stderr is not None
        for line in run.stderr:
            if f"started {appliances} appliances" in line:
                break
        if while_alive is not None:
            run.send_signal(signal.SIGSTOP)
            while_alive(run.pid)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        run.kill()
        if run.stderr is not None:
            run.stderr.close()
    assert sweep(), "the killed run left no node folder to sweep"


def ended(pid: int) -> bool:
    """Whether process ``pid`` has ended (gone, or a zombie its new parent has yet to reap)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def wait_ended(pids: Iterable[int], within: float = 30.0) -> bool:
    """Whether every one of ``pids`` ended within ``within`` seconds. Polled: they are
    not our children (their parent was killed), so nothing here can wait for them."""
    pids = list(pids)
    deadline = time.monotonic() + within
    while not all(ended(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
