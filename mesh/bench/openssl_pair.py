"""The baseline: ``openssl s_server`` and ``openssl s_time -new``, TLS 1.3, mutual.

Same certificates as every other handshake in the run (RSA-2048 from
``mesh.pki.issue``, root + issuing CA). ``s_server -Verify`` demands and
verifies the client's certificate; ``s_time -verify`` verifies the server's.
``s_time`` sends its leaf without the issuing CA, so the server's CA file
holds both CAs.

The rate is connections over the wall time of the ``s_time`` process:
``s_time``'s own "connections/user sec" divides by its user CPU only, and its
"real seconds" are whole seconds. Each new connection is a full handshake
(``-new`` never resumes). The server's output is checked afterwards: a
handshake it refused would otherwise be counted as a connection.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

from mesh.bench.context import Bench, Unavailable
from mesh.bench.material import Material
from mesh.bench.procstat import cpu_seconds, free_port, is_listening
from mesh.bench.targets import Key

__all__ = ["NAME", "run", "measure"]

NAME = "openssl"

_COUNT = re.compile(r"^(\d+) connections in [\d.]+s", re.MULTILINE)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(material: Material, seconds: int, log_path: Path) -> tuple[float, float]:
    """(handshakes per second, CPU seconds per handshake for both processes)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise Unavailable("the openssl CLI is not installed")
    server, client = material.pem("server"), material.pem("client")
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                openssl, "s_server", "-accept", f"127.0.0.1:{port}", "-tls1_3", "-quiet",
                "-cert", str(server.cert), "-key", str(server.key),
                "-cert_chain", str(server.chain), "-CAfile", str(material.trust_pem),
                "-Verify", "2",
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 10
            while not is_listening(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"openssl s_server did not start; see {log_path}")
                time.sleep(0.01)
            server_cpu0 = cpu_seconds(proc.pid)
            children0 = _children_cpu()
            started = time.perf_counter()
            done = subprocess.run(
                [
                    openssl, "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-tls1_3",
                    "-time", str(seconds), "-cert", str(client.cert), "-key", str(client.key),
                    "-CAfile", str(material.root_pem), "-verify", "2",
                ],
                capture_output=True, text=True, check=False,
            )
            wall = time.perf_counter() - started
            client_cpu = _children_cpu() - children0
            server_cpu = cpu_seconds(proc.pid) - server_cpu0
        finally:
            proc.terminate()
            proc.wait()
    match = _COUNT.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"openssl s_time failed: {done.stderr.strip()[-300:]}")
    refused = [
        line for line in log_path.read_text(errors="replace").splitlines()
        if "error" in line.lower()
    ]
    if refused:
        raise RuntimeError(f"openssl s_server refused handshakes: {refused[0]}")
    count = int(match.group(1))
    return count / wall, (client_cpu + server_cpu) / count


def run(bench: Bench) -> None:
    material = bench.material(2048)
    seconds = bench.pick(5, 1)
    rate, cpu = measure(material, seconds, bench.workdir / "s_server.log")
    bench.record(NAME, Key.OPENSSL_RATE[1], rate, "handshakes/s", f"{seconds} s of s_time -new")
    bench.record(NAME, "s_server + s_time CPU per handshake (both ends)", cpu * 1e3, "ms")
