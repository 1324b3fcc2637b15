"""Hosts tests need root; each one leaves the machine's namespaces and links as it found them."""

from __future__ import annotations

import subprocess

import pytest

from mesh.hosts.firewall import missing_nft
from mesh.hosts.netns import missing_privilege
from tests.killed_runs import sigkill_once_started  # noqa: F401 (the hosts tests' import)

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
