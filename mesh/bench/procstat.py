"""Small process facts from /proc: CPU seconds of another process, listening ports, RSS.

The benchmarks compare mesh against OpenSSL's own tools running as separate
processes; reading their CPU time and readiness from /proc avoids a
dependency and avoids poking the server with a probe connection (which
``s_server`` would count and log as a failed handshake).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["cpu_seconds", "is_listening", "free_port", "rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def is_listening(port: int) -> bool:
    """True once something listens on 127.0.0.1:``port`` (or any address)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[1].endswith(want) and parts[3] == "0A":
                return True
    return False


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of ``pid`` (default: this process)."""
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")
