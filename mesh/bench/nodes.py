"""Two ``mesh node`` processes against one: does a second process add a second core?

A trio process runs on one core, so a host scales by running more of them.
Each node here is a management console (``mesh node --config``) accepting
mutual-TLS connections; ``openssl s_time -new`` plays the sensors, one
client per node, each making back-to-back full handshakes that the node
validates (chain, dates, CRL fetched once from a real ``CrlServer`` and then
cached). The figure is the total handshake rate of two nodes, each with its
own client, over the rate of one node with one client, in the same run.

The clients need CPU too: on a two-core machine the two ``s_time`` processes
share the cores with the two nodes, so the CPU each side used is reported
beside the rate. ``s_time`` sends no chain, so this deployment's appliance
certificates are issued by the root directly.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import trio

from mesh.bench.context import Bench, Unavailable
from mesh.bench.material import Material
from mesh.bench.procstat import cpu_seconds
from mesh.bench.targets import Key

__all__ = ["NAME", "run"]

NAME = "nodes"

_COUNT = re.compile(r"^(\d+) connections in [\d.]+s", re.MULTILINE)


def _config(path: Path, name: str, material: Material) -> Path:
    server = material.pem("server")
    start = material.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(
        "\n".join(
            [
                f'name = "{name}"',
                'role = "management-console"',
                'listen = "127.0.0.1:0"',
                f'certificate = "{server.cert}"',
                f'key = "{server.key}"',
                f'trust = ["{material.root_pem}"]',
                f'start = "{start}"',
                # Measure the TLS listener alone, not the REST API's start-up too.
                "api = false",
                "",
            ]
        )
    )
    return path


class _Node:
    """One ``mesh node`` process: its address, and a task draining its event lines."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.address: str | None = None
        self.events = 0
        self._buffer = b""

    async def _lines(self):
        assert self.process.stdout is not None
        while True:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                return
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                yield line

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async for line in self._lines():
            self.events += 1
            if self.address is None and b'"appliance-started"' in line:
                self.address = json.loads(line)["address"]
                task_status.started(self.address)


async def _measure(bench: Bench, material: Material, count: int, seconds: int, openssl: str):
    """(handshakes/s over all nodes, node CPU s, client CPU s, per-node counts)."""
    client = material.pem("client")
    async with trio.open_nursery() as nursery:
        nodes: list[_Node] = []
        for i in range(count):
            config = _config(bench.workdir / f"node-{count}-{i}.toml", f"console-{i}", material)
            process = await trio.lowlevel.open_process(
                [sys.executable, "-m", "mesh", "node", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            node = _Node(process)
            with trio.fail_after(30):
                await nursery.start(node.run)
            nodes.append(node)
        cpu0 = [cpu_seconds(n.process.pid) for n in nodes]
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        results: list[bytes] = []

        async def one_client(address: str) -> None:
            done = await trio.run_process(
                [
                    openssl, "s_time", "-connect", address, "-new", "-tls1_3",
                    "-time", str(seconds), "-cert", str(client.cert), "-key", str(client.key),
                    "-CAfile", str(material.root_pem), "-verify", "2",
                ],
                capture_stdout=True, capture_stderr=True, check=False,
            )
            results.append(done.stdout)

        started = time.perf_counter()
        async with trio.open_nursery() as clients:
            for node in nodes:
                assert node.address is not None
                clients.start_soon(one_client, node.address)
        wall = time.perf_counter() - started
        usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        node_cpu = sum(cpu_seconds(n.process.pid) - c for n, c in zip(nodes, cpu0))
        client_cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
        for node in nodes:
            node.process.terminate()
        for node in nodes:
            await node.process.wait()
        nursery.cancel_scope.cancel()
    counts = []
    for out in results:
        match = _COUNT.search(out.decode(errors="replace"))
        if match is None:
            raise RuntimeError(f"openssl s_time against a mesh node failed: {out[-300:]!r}")
        counts.append(int(match.group(1)))
    return sum(counts) / wall, node_cpu, client_cpu, counts


async def _both(bench: Bench, seconds: int, openssl: str, rounds: int):
    """``rounds`` x (one node, then two nodes); the trials of each, and the CRL requests."""
    from mesh.net.crl_server import CrlServer

    server = CrlServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        material = Material.build(
            2048, bench.keys, bench.workdir / "nodes-pki",
            crl_base_url=f"{server.base_url}/crl", intermediate=False,
        )
        server.set_documents(material.crl_documents())
        ones, twos = [], []
        for _ in range(rounds):
            ones.append(await _measure(bench, material, 1, seconds, openssl))
            twos.append(await _measure(bench, material, 2, seconds, openssl))
        requests = sum(server.requests(p) for p in server.paths)
        nursery.cancel_scope.cancel()
    return ones, twos, requests


def run(bench: Bench) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise Unavailable("the openssl CLI is not installed")
    try:
        import mesh.node  # noqa: F401
    except ImportError as exc:  # pragma: no cover - while modules land
        raise Unavailable(f"needs {exc.name}") from None
    seconds = bench.pick(4, 1)
    rounds = bench.pick(2, 1)
    ones, twos, requests = trio.run(_both, bench, seconds, openssl, rounds)
    for label, trials in (("one node", ones), ("two nodes", twos)):
        rate, node_cpu, client_cpu, counts = max(trials, key=lambda t: t[0])
        handshakes = max(1, sum(counts))
        bench.record(
            NAME, f"{label}: handshakes/s, all nodes", rate, "handshakes/s",
            f"best of {rounds}; per node {counts}",
        )
        bench.record(NAME, f"{label}: node CPU per handshake", node_cpu / handshakes * 1e3, "ms")
        bench.record(NAME, f"{label}: s_time client CPU per handshake", client_cpu / handshakes * 1e3, "ms")
    per_round = [two[0] / one[0] for one, two in zip(ones, twos)]
    bench.record(
        NAME, Key.NODES_SCALE[1], statistics.median(per_round), "x",
        "median of rounds [" + ", ".join(f"{x:.2f}" for x in per_round) + "]",
    )
    bench.record(NAME, "CRL requests at the server, all nodes", requests, "requests", "each node fetches once")
