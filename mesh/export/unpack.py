"""The driver pod's first container: its folder unpacked, then the fleet waited for.

Run in the pod as ``python -m mesh.export.unpack SOURCE WORK``. Why it exists:

- **The PKI folder does not fit a Secret.** ``mesh run --inventory`` needs
  the whole PKI folder (``pki.json`` names every appliance: 7 MB at 20,000),
  and no ConfigMap or Secret may hold 1 MiB. The export sends it as a gzip'd
  tar cut into parts (``pki.tar.gz.000``, ...) spread over Secrets; this
  joins and unpacks them into WORK, a memory-backed emptyDir, with keys 0600
  and owned by the pod's user, writable as a PKI folder may need to be.
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
import shutil
import socket
import sys
import tarfile
import time
from pathlib import Path
from typing import Sequence

__all__ = ["DEADLINE", "PARTS", "main", "unpack", "wait_for"]

#: Real seconds the fleet may take to listen.
DEADLINE = 900.0

#: The parts of the PKI folder's archive: ``pki.tar.gz.000``, ``pki.tar.gz.001``, ...
PARTS = "pki.tar.gz."

#: Files copied as they are (relative to SOURCE).
COPIED = ("inventory.toml", "scenario.toml")


def unpack(source: Path, work: Path) -> None:
    """The inventory, scenario, tokens and PKI folder of ``source``, writable, in ``work``."""
    for name in COPIED:
        shutil.copyfile(source / name, work / name)
    tokens = work / "tokens"
    tokens.mkdir(mode=0o700, exist_ok=True)
    for token in sorted((source / "tokens").iterdir()):
        target = tokens / token.name
        target.write_bytes(token.read_bytes())
        target.chmod(0o600)
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
    source, work = (Path(a) for a in (argv if argv is not None else sys.argv[1:]))
    unpack(source, work)
    lines = (source / "fleet.txt").read_text(encoding="utf-8").split("\n")
    targets = [(host, int(port)) for host, port in (line.split() for line in lines if line.strip())]
    late = wait_for(targets)
    if late is not None:
        print(f"mesh: the fleet: {late}; see kubectl get pods", file=sys.stderr)
        return 1
    print(f"mesh: {work} unpacked; {len(targets)} services answer", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
