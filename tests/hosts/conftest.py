"""Hosts tests need root; each one leaves the machine's namespaces and links as it found them."""

from __future__ import annotations

import subprocess

import pytest

from mesh.hosts.firewall import missing_nft
from mesh.hosts.netns import missing_privilege
from mesh.scenario.node_folder import sweep

_WHY = missing_privilege()

#: Tests that make namespaces skip, saying why, without root or ip.
needs_root = pytest.mark.skipif(_WHY is not None, reason=f"mesh run --hosts {_WHY}")

_NO_POLICY = _WHY or missing_nft()

#: Tests that load firewall rules or qdiscs skip, saying why, without root, nft or tc.
needs_nft = pytest.mark.skipif(_NO_POLICY is not None, reason=f"mesh run --hosts {_NO_POLICY}")


def _state() -> tuple[str, str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    # Counters and states move on their own; the names are what a run must not change.
    names = sorted(line.split(":")[1].strip() for line in links.splitlines() if ":" in line)
    return listing, "\n".join(names)


@pytest.fixture(autouse=True)
def leaves_nothing_behind(request):
    """After each hosts test that makes namespaces: ``ip netns list`` and ``ip link`` as before."""
    if _WHY is not None:
        yield
        return
    before = _state()
    yield
    assert _state() == before


def sigkill_once_started(scenario, appliances: int, cwd, while_alive=None) -> None:
    """Run ``mesh run --hosts scenario`` and SIGKILL it once its appliances have started:
    what a killed run leaves is what ``mesh hosts clean`` is for.

    ``while_alive(pid)``: called first with the run stopped (SIGSTOP), alive and
    holding everything it made, as a run that is still going does.
    """
    import signal
    import sys

    run = subprocess.Popen(
        [sys.executable, "-m", "mesh", "run", "--hosts", str(scenario)],
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
    # Its private folder (keys included) stayed; the next node run sweeps it.
    assert sweep(), "the killed run left no node folder to sweep"


def processes_end_in(namespaces, within: float = 30.0) -> bool:
    """Whether every process in ``namespaces`` ended within ``within`` seconds (polled:
    they are another process's children, nothing here can wait for them)."""
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pids = [subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
                for ns in namespaces]
        if not any(pids):
            return True
        time.sleep(0.1)
    return False
