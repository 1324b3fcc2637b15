"""Every pod's first container: its mounted files made its own, in memory.

Run in a pod as ``python -m mesh.export.unpack node|crl|driver SOURCE WORK``.
Why it exists:

- **Mounted Secrets are not private to the pod's user.** Kubernetes mounts
  a Secret's files owned by root; with the pod's ``fsGroup`` they become
  mode 0440 of that group, and a console (or the CRL server's control API)
  refuses a token file that its group may read
  (``mesh.web.auth.console_token``), as it should. So each pod's files are
  copied into WORK, a memory-backed emptyDir, owned by the pod's user with
  mode 0600, and the node (``node``) or the CRL server (``crl``: its API
  token) runs from there.

- **The driver's folder does not fit a Secret** (``driver``). ``mesh run
  --inventory`` needs the inventory (a table per console: 2.8 MB at 15,000)
  and the whole PKI folder (``pki.json`` names every appliance), and no
  ConfigMap or Secret may hold 1 MiB. The export sends the folder as a
  gzip'd tar cut into parts (``driver.tar.gz.000``, ...) spread over Secrets;
  this joins and unpacks them into WORK, a memory-backed emptyDir, keys and
  tokens 0600 and owned by the pod's user, writable as a PKI folder may need.
- **The fleet starts in any order.** The driver's run begins only once every
  console and the CRL server accept connections (``fleet.txt``: one
  ``host port`` a line), within :data:`DEADLINE` seconds, else one line and
  exit 1, so the Job fails visibly instead of playing a timeline against
  half a fleet.

Standard library only: it runs before anything else in the pod.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import tarfile
import time
from pathlib import Path
from typing import Sequence

__all__ = ["DEADLINE", "PARTS", "copy_private", "main", "unpack", "wait_for"]

#: Real seconds the fleet may take to listen.
DEADLINE = 900.0

#: The parts of the driver folder's archive: ``driver.tar.gz.000``, ``driver.tar.gz.001``, ...
PARTS = "driver.tar.gz."

#: The pods whose mounted folder is copied, and whose files they are.
_COPIES = {"node": "node's", "crl": "CRL server's"}

def copy_private(source: Path, work: Path) -> None:
    """Every file of the mounted folder ``source`` into ``work``, mode 0600.

    Skips the volume's own ``..data`` bookkeeping; follows its symlinks.
    """
    for entry in sorted(source.iterdir()):
        if entry.name.startswith(".."):
            continue
        target = work / entry.name
        if entry.is_dir():
            target.mkdir(mode=0o700, exist_ok=True)
            copy_private(entry, target)
        else:
            target.touch(mode=0o600)
            target.chmod(0o600)
            target.write_bytes(entry.read_bytes())


def unpack(source: Path, work: Path) -> None:
    """The driver's archive in ``source`` (inventory, scenario, fleet, tokens 0600, PKI
    folder), joined and unpacked into ``work``, writable and owned by this user."""
    parts = sorted(p for p in os.listdir(source) if p.startswith(PARTS))
    archive = b"".join((source / part).read_bytes() for part in parts)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(work, filter="data")


def wait_for(targets: Sequence[tuple[str, int]], *, deadline: float = DEADLINE) -> str | None:
    """None once every target accepts a connection; else the first that did not, in time."""
    give_up = time.monotonic() + deadline
    for host, port in targets:
        while True:
            try:
                socket.create_connection((host, port), timeout=5).close()
                break
            except OSError:
                if time.monotonic() > give_up:
                    return f"{host}:{port} did not answer within {deadline:g} s"
                time.sleep(2)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``node|crl SOURCE WORK``: copy; ``driver SOURCE WORK``: unpack, then wait for the fleet."""
    kind, *folders = argv if argv is not None else sys.argv[1:]
    source, work = (Path(f) for f in folders)
    if kind in _COPIES:
        copy_private(source, work)
        print(f"mesh: {work} holds the {_COPIES[kind]} files, 0600", file=sys.stderr)
        return 0
    unpack(source, work)
    lines = (work / "fleet.txt").read_text(encoding="utf-8").split("\n")
    targets = [(host, int(port)) for host, port in (line.split() for line in lines if line.strip())]
    late = wait_for(targets)
    if late is not None:
        print(f"mesh: the fleet: {late}; see kubectl get pods", file=sys.stderr)
        return 1
    print(f"mesh: {work} unpacked; {len(targets)} services answer", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
