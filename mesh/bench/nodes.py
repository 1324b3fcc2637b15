"""Two ``mesh node`` processes against one: does a second process add a second core?

A trio process runs on one core, so a host scales by running more of them.
Each node here is a management console (``mesh node --config``) accepting
mutual-TLS connections; ``openssl s_time -new`` plays the sensors, one
client per node, each making back-to-back full handshakes that the node
validates (chain, dates, CRL fetched once from a real ``CrlServer`` and then
cached, key strength, purpose). The figure is the total handshake rate of two
nodes, each with its own client, over the rate of one node with one client,
in interleaved rounds of the same run (the median of the per-round ratios).

The clients share the machine's cores with the nodes, so they are made as
cheap as ``s_time`` allows, without making the node's work any lighter:

- each presents an **ECDSA P-256** certificate issued by the same RSA-2048
  root as the node's own (RSA-2048) certificate; the node validates it in
  full, like any sensor's. Signing with P-256 costs the client ~15 µs
  against ~0.2 ms for RSA-2048. (``s_time`` sends no chain, so this
  deployment's appliance certificates are issued by the root directly.)
- each offers a **P-256 key share**, the one group a mesh node accepts (and
  the one mesh's own dialers offer): ``s_time``'s default X25519 share
  would cost every handshake a HelloRetryRequest round trip, on both sides.
  ``s_time`` has no option for it, so an ``OPENSSL_CONF`` file given to the
  clients alone sets ``Groups = P-256``.

The CPU each side used per handshake and each node's share of a core are
reported beside the rates. With one client, a node waits while its client
works (each handshake is a ping-pong), so a third side in every round gives
one node two clients: its rate is what one node can do here, and two nodes
against it is the stricter ratio (reported, not the target's figure).

In TLS 1.3 the client finishes its handshake before the server has judged
the client's certificate, so ``s_time`` would count refused connections too:
a node reporting any refusal fails the measurement instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import AsyncIterator

import trio
from attrs import define
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mesh.bench.context import Bench, Unavailable
from mesh.bench.material import CLIENT_NAME, Material
from mesh.bench.procstat import cpu_seconds
from mesh.bench.targets import Key

__all__ = ["NAME", "run"]

NAME = "nodes"

_COUNT = re.compile(r"^(\d+) connections in [\d.]+s", re.MULTILINE)

#: Node events that mean a client was not let in: the count would be a lie.
_REFUSALS = frozenset(
    {"link-halted", "connection-dropped", "link-up-unvalidated", "validation-skipped"}
)

#: Read by the ``s_time`` clients only (never by the nodes).
_CLIENT_OPENSSL_CONF = """\
openssl_conf = openssl_init

[openssl_init]
ssl_conf = ssl_sect

[ssl_sect]
system_default = system_default_sect

[system_default_sect]
CipherString = DEFAULT@SECLEVEL=2
Groups = P-256
"""


@define(frozen=True, kw_only=True)
class _Client:
    """What every ``s_time`` client presents: an ECDSA leaf, its key, the trust root."""

    cert: Path
    key: Path
    root: Path
    openssl_conf: Path


@define(frozen=True, kw_only=True)
class _Trial:
    """One timed burst: ``count`` nodes, each with its client, all at once."""

    count: int
    #: completed handshakes per node, as its s_time client counted them
    handshakes: tuple[int, ...]
    wall: float
    node_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return sum(self.handshakes) / self.wall


def _ecdsa_client(material: Material, directory: Path) -> _Client:
    """A sensor certificate with a P-256 key, issued by the deployment's root."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    issued = material.root.certify(CLIENT_NAME, key, not_before=material.at - dt.timedelta(days=1))
    cert = directory / "client-p256.crt"
    cert.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "client-p256.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    conf = directory / "s_time-openssl.cnf"
    conf.write_text(_CLIENT_OPENSSL_CONF)
    return _Client(cert=cert, key=key_path, root=material.root_pem, openssl_conf=conf)


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
        #: the first event line of each refusal kind seen
        self.refusals: dict[str, str] = {}
        #: set at the first refusal
        self.refused = trio.Event()
        self._buffer = b""

    async def _lines(self) -> AsyncIterator[bytes]:
        assert self.process.stdout is not None
        while True:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                return
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in lines:
                yield line

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async for line in self._lines():
            self.events += 1
            if not line.strip():
                continue
            event = json.loads(line)
            kind = event.get("kind")
            if self.address is None and kind == "appliance-started":
                self.address = event["address"]
                task_status.started(self.address)
            elif kind in _REFUSALS:
                self.refusals.setdefault(kind, line.decode(errors="replace"))
                self.refused.set()


def _check_admitted(nodes: list[_Node]) -> None:
    """Raise if any node refused a client: its handshakes were counted all the same."""
    for i, node in enumerate(nodes):
        if node.refusals:
            kind, line = next(iter(node.refusals.items()))
            raise RuntimeError(f"mesh node {i} refused the s_time client ({kind}): {line[:300]}")


async def _start_node(nursery: trio.Nursery, workdir: Path, material: Material, i: int) -> _Node:
    config = _config(workdir / f"node-{i}.toml", f"console-{i}", material)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", "node", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    node = _Node(process)
    with trio.fail_after(30):
        await nursery.start(node.run)
    return node


async def _trial(
    nodes: list[_Node], client: _Client, seconds: int, openssl: str, *, per_node: int = 1
) -> _Trial:
    """Every node in ``nodes`` gets ``per_node`` ``s_time`` clients of its own for ``seconds``."""
    env = dict(os.environ, OPENSSL_CONF=str(client.openssl_conf))
    outputs: dict[int, list[bytes]] = {i: [] for i in range(len(nodes))}

    async def one_client(i: int, address: str) -> None:
        done = await trio.run_process(
            [
                openssl, "s_time", "-connect", address, "-new", "-tls1_3",
                "-time", str(seconds), "-cert", str(client.cert), "-key", str(client.key),
                "-CAfile", str(client.root), "-verify", "2",
            ],
            capture_stdout=True, capture_stderr=True, check=False, env=env,
        )
        outputs[i].append(done.stdout)

    cpu0 = [cpu_seconds(n.process.pid) for n in nodes]
    # The nodes are not reaped until the end, so RUSAGE_CHILDREN grows by
    # the s_time clients alone.
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    async with trio.open_nursery() as clients:
        for i, node in enumerate(nodes):
            assert node.address is not None
            for _ in range(per_node):
                clients.start_soon(one_client, i, node.address)
    wall = time.perf_counter() - started
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    counts = [0] * len(nodes)
    for i, outs in outputs.items():
        for out in outs:
            match = _COUNT.search(out.decode(errors="replace"))
            if match is None:
                raise RuntimeError(f"openssl s_time against a mesh node failed: {out[-300:]!r}")
            counts[i] += int(match.group(1))
    return _Trial(
        count=len(nodes),
        handshakes=tuple(counts),
        wall=wall,
        node_cpu=sum(cpu_seconds(n.process.pid) - c for n, c in zip(nodes, cpu0)),
        client_cpu=(usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime),
    )


_BUSY = "one node, two clients"
#: The trials of a round: (label, nodes, s_time clients per node).
_SIDES = (("one node", 1, 1), ("two nodes", 2, 1), (_BUSY, 1, 2))


async def _both(
    bench: Bench, seconds: int, openssl: str, rounds: int
) -> tuple[dict[str, list[_Trial]], int]:
    """``rounds`` x (one node, two nodes, one node with two clients), the order rotating.

    Both nodes start once and serve every round (the second idles while one
    node is measured), so a round costs no process start-up. The third side
    keeps one node busy while one of its clients works, so its rate is what
    one node can do on this machine, not what one node and one client can.
    Returns {label: trials} and the CRL requests the server saw.
    """
    from mesh.net.crl_server import CrlServer

    server = CrlServer()
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        material = Material.build(
            2048, bench.keys, bench.workdir / "nodes-pki",
            crl_base_url=f"{server.base_url}/crl", intermediate=False,
        )
        server.set_documents(material.crl_documents())
        client = _ecdsa_client(material, bench.workdir / "nodes-pki" / "clients")
        nodes = [await _start_node(nursery, bench.workdir, material, i) for i in range(2)]
        trials: dict[str, list[_Trial]] = {label: [] for label, _, _ in _SIDES}
        try:
            for r in range(rounds):
                for label, count, per_node in _SIDES[r % 3:] + _SIDES[: r % 3]:
                    trial = await _trial(nodes[:count], client, seconds, openssl, per_node=per_node)
                    trials[label].append(trial)
        finally:
            for node in nodes:
                node.process.terminate()
            for node in nodes:
                await node.process.wait()
        requests = sum(server.requests(p) for p in server.paths)
        nursery.cancel_scope.cancel()
    _check_admitted(nodes)
    return trials, requests


def run(bench: Bench) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise Unavailable("the openssl CLI is not installed")
    try:
        import mesh.node  # noqa: F401
    except ImportError as exc:  # pragma: no cover - while modules land
        raise Unavailable(f"needs {exc.name}") from None
    seconds = bench.pick(3, 1)  # s_time counts whole seconds
    rounds = bench.pick(5, 1)
    sides, requests = trio.run(_both, bench, seconds, openssl, rounds)
    clients = "s_time clients: ECDSA P-256 leaf, P-256 key share"
    node_cpu_per: dict[str, float] = {}
    for label, trials in sides.items():
        best = max(trials, key=lambda t: t.rate)
        bench.record(
            NAME, f"{label}: handshakes/s, all nodes", best.rate, "handshakes/s",
            f"best of {rounds} x {seconds} s, interleaved; per node {list(best.handshakes)}; {clients}",
        )
        # Over all rounds: steadier than one round's.
        handshakes = max(1, sum(sum(t.handshakes) for t in trials))
        node_cpu = sum(t.node_cpu for t in trials)
        wall = sum(t.wall for t in trials)
        node_cpu_per[label] = node_cpu / handshakes
        bench.record(NAME, f"{label}: node CPU per handshake", node_cpu / handshakes * 1e3, "ms")
        bench.record(
            NAME, f"{label}: s_time client CPU per handshake",
            sum(t.client_cpu for t in trials) / handshakes * 1e3, "ms",
        )
        bench.record(
            NAME, f"{label}: share of a core each node used", node_cpu / wall / trials[0].count,
            "cores", "1 = the node never waited for its client",
        )
    for name, base in ((Key.NODES_SCALE[1], "one node"), (f"two nodes vs {_BUSY}", _BUSY)):
        per_round = [two.rate / one.rate for one, two in zip(sides[base], sides["two nodes"])]
        bench.record(
            NAME, name, statistics.median(per_round), "x",
            "median of rounds [" + ", ".join(f"{x:.2f}" for x in per_round) + "]",
        )
    # What the cores allow aside: a second node makes the first no dearer
    # per handshake when this is 1, and two nodes with cores of their own
    # (clients elsewhere) would then reach twice this.
    bench.record(
        NAME, "node CPU per handshake, one node / two nodes",
        node_cpu_per["one node"] / node_cpu_per["two nodes"], "x",
        "1 = a second node costs the first nothing; not the target's figure",
    )
    bench.record(NAME, "CRL requests at the server, all nodes", requests, "requests", "each node fetches once")
