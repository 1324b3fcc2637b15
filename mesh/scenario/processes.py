"""``mesh run --processes``: every appliance its own ``mesh node`` OS process.

Theory of operation. The runner keeps what the in-process engine keeps in
memory — each appliance's certificate files, its validation switch, whether a
step stopped it, and the emulated instant — and the CRL server (and proxy) run
here, on real ports. ``mesh node`` has no control channel, so where the
in-process runner has every link redial in place (``Mesh.refresh``), each
step here restarts every node: all nodes stop, the clock moves, the action is applied to the
state (an upload is judged by the same upload check as ``mesh cert check``,
on the files an admin would upload), and every node starts again with the new
state and ``start`` = the emulated instant. Each node keeps one listening
port for the whole run, chosen below the ephemeral port range so that no
other node's outgoing connection can be holding it, and all nodes start at
once (a dialer that is early retries a second later). The link table is read from the events the nodes print
as JSON lines: the dialer's final link event, with ``validation-skipped``
events naming what an unvalidated link would have failed.

One difference is inherent: a node starts with an empty CRL cache, so a CRL
server that is down halts links at once, where a long-running in-process
appliance keeps using its cached CRL until its nextUpdate.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

import trio

from mesh.errors import FailureCode, InputError
from mesh.net.crl_server import CrlServer
from mesh.pki import files
from mesh.pki.folder import ApplianceMaterial, Pki
from mesh.pki.issue import KeySource, slug
from mesh.validation.policy import ValidationPolicy
from mesh.scenario.load import check_scenario
from mesh.scenario.model import Scenario, Step
from mesh.scenario.result import LinkRow, RunResult, StepRecord, judge
from mesh.scenario.runner import (
    Progress,
    ScenarioNotSettled,
    not_settled_in,
    start_world,
)

__all__ = ["run_in_processes", "NODE_TIMEOUT", "MAX_NODES"]

#: Real seconds a node may take to start listening, or a step to settle.
NODE_TIMEOUT = 60.0

#: One Python process per appliance costs tens of megabytes each; past this
#: the in-process run is the tool.
MAX_NODES = 64

_OUTCOMES = ("link-up", "link-up-unvalidated", "link-halted", "link-down")
_STATE = {"link-up": "up", "link-up-unvalidated": "up-unvalidated", "link-halted": "halted",
          "link-down": "down"}


class _Node:
    """One running ``mesh node`` process and the events it printed."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.address: str | None = None
        self.changed = trio.Event()
        self.stderr = b""

    def poke(self) -> None:
        self.changed.set()
        self.changed = trio.Event()


class _Fleet:
    """The scenario's state between node generations, and the running nodes."""

    def __init__(self, scenario: Scenario, pki: Pki, folder: Path, *, proxy_url: str | None,
                 sink: TextIO | None, nursery: trio.Nursery) -> None:
        self.scenario = scenario
        self.pki = pki
        self.folder = folder
        self.proxy_url = proxy_url
        self.sink = sink
        self.nursery = nursery
        self.now = scenario.start
        self.validation = {a.name: a.validation for a in scenario.appliances}
        self.running = {a.name: True for a in scenario.appliances}
        self.identity: dict[str, ApplianceMaterial | None] = {
            a.name: (None if a.certificate == "self-signed" else pki.appliances[a.name])
            for a in scenario.appliances
        }
        self.nodes: dict[str, _Node] = {}
        self.generation = 0
        consoles = scenario.consoles()
        self.ports = _listen_ports(len(scenario.appliances) + len(consoles))
        self.port_of = {a.name: port for a, port in zip(scenario.appliances, self.ports)}
        # A console keeps its port across node generations, as the listener does.
        self.api_port_of = dict(zip(consoles, self.ports[len(scenario.appliances):]))
        self.consoles = {n: f"https://127.0.0.1:{p}" for n, p in self.api_port_of.items()}
        files.save_certificate(folder / "root.crt", pki.root.cert)
        for ca in pki.authorities.values():
            if ca.parent is None:
                files.save_certificate(folder / f"trust-{slug(ca.name)}.crt", ca.cert)
        # CRL files handed out of band: the CRLs as published at the start.
        self.crl_files = []
        if any(a.crl_files for a in scenario.appliances):
            for number, crl in enumerate(pki.crls(at=scenario.start).values()):
                path = folder / f"start-{number}.crl"
                files.save_crl(path, crl)
                self.crl_files.append(str(path))

    # -- files --

    def _write_identity(self, name: str, material: ApplianceMaterial, tag: str) -> dict[str, str]:
        base = self.folder / f"{name}.{tag}"
        files.save_certificate(f"{base}.crt", material.cert)
        files.save_key(f"{base}.key", material.key_file_key, passphrase=material.key_passphrase)
        out = {"certificate": f"{base}.crt", "key": f"{base}.key"}
        if material.chain:
            files.save_chain(f"{base}.pem", material.chain)
            out["chain"] = f"{base}.pem"
        return out

    def _config(self, name: str) -> Path:
        a = self.scenario.appliance(name)
        lines = [
            f"name = {json.dumps(name)}",
            f"role = {json.dumps(a.role)}",
            f'listen = "127.0.0.1:{self.port_of[name]}"',
            f"trust = {json.dumps([str(p) for p in self._trust_files(name)])}",
            f"validation = {'true' if self.validation[name] else 'false'}",
            f"revocation = {json.dumps(a.revocation)}",
            f"validator = {json.dumps(a.validator)}",
            f"start = {json.dumps(self.now.isoformat())}",
            "backoff_cap = 1",
            f"api_port = {self.api_port_of[name]}" if name in self.api_port_of else "api = false",
        ]
        material = self.identity[name]
        if material is not None:
            for key, path in self._write_identity(name, material, "current").items():
                lines.append(f"{key} = {json.dumps(path)}")
            if material.passphrase:
                lines.append(f"passphrase = {json.dumps(material.passphrase)}")
        if a.crl_proxy and self.proxy_url:
            lines.append(f"crl_proxy = {json.dumps(self.proxy_url)}")
        if a.crl_files:
            lines.append(f"crl_files = {json.dumps(self.crl_files)}")
        for table, peers in (("connects_to", a.connects_to), ("forwards_to", a.forwards_to)):
            dialed = [p for p in peers if (name, p) in self._links]
            if not dialed:
                continue
            lines.append(f"\n[{table}]")
            for peer in dialed:
                address = f"127.0.0.1:{self.port_of[peer]}"
                role = self.scenario.appliance(peer).role
                lines.append(f"{json.dumps(peer)} = {{ address = {json.dumps(address)}, "
                             f"role = {json.dumps(role)} }}")
        path = self.folder / f"{name}.toml"
        # It may name the key's passphrase: as private as the key itself.
        files.write_file(path, ("\n".join(lines) + "\n").encode(), mode=files.KEY_MODE)
        return path

    @property
    def _links(self) -> set[tuple[str, str]]:
        return set(self.scenario.links())

    # -- processes --

    async def _spawn(self, name: str) -> None:
        config = self._config(name)
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "mesh", "node", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        node = _Node(name, process)
        self.nodes[name] = node
        self.nursery.start_soon(self._read, node)
        self.nursery.start_soon(self._read_stderr, node)
        with trio.fail_after(NODE_TIMEOUT):
            while node.address is None:
                if process.returncode is not None:
                    await trio.sleep(0)
                    detail = node.stderr.decode(errors="replace").strip().splitlines()
                    raise InputError(f"mesh node {name}", "exited before listening",
                                     detail[-1] if detail else f"exit status {process.returncode}")
                with trio.move_on_after(0.5):
                    await node.changed.wait()

    async def _read(self, node: _Node) -> None:
        buffer = b""
        assert node.process.stdout is not None
        async for chunk in node.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                event["generation"] = self.generation
                node.events.append(event)
                if event.get("kind") == "appliance-started":
                    node.address = event.get("address")
                if self.sink is not None:
                    self.sink.write(line.decode("utf-8", errors="replace") + "\n")
            node.poke()
        node.poke()

    async def _read_stderr(self, node: _Node) -> None:
        assert node.process.stderr is not None
        async for chunk in node.process.stderr:
            node.stderr += chunk
        node.poke()

    async def start_all(self) -> None:
        """Start every appliance the scenario has not stopped, listeners first."""
        self.generation += 1
        self.nodes = {}
        names = [a.name for a in self.scenario.appliances if self.running[a.name]]
        limiter = trio.CapacityLimiter(2 * (os.cpu_count() or 1))

        async def spawn(name: str) -> None:
            async with limiter:
                await self._spawn(name)

        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(spawn, name)

    async def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.process.returncode is None:
                node.process.terminate()
        for node in self.nodes.values():
            await node.process.wait()

    # -- reading the link table --

    def _final(self, name: str, link: tuple[str, str]) -> dict[str, Any] | None:
        node = self.nodes.get(name)
        if node is None:
            return None
        found = None
        for event in node.events:
            if event.get("kind") in _OUTCOMES and (event.get("dialer"), event.get("listener")) == link:
                found = event
        return found

    def _settled(self) -> bool:
        return not self._unsettled()

    def _unsettled(self) -> list[tuple[str, str]]:
        """The links of running dialers that have no final outcome yet."""
        waiting = []
        for dialer, listener in self.scenario.links():
            if dialer not in self.nodes:
                continue
            link = (dialer, listener)
            mine = self._final(dialer, link)
            if mine is None:
                waiting.append(link)
            elif listener not in self.nodes:
                continue
            elif mine.get("kind") == "link-down":
                # Nodes start together, so a first attempt may find the
                # listener not yet listening; it is down for real only when
                # the retry (a second later) fails too.
                if self._downs(dialer, link) < 2:
                    waiting.append(link)
            elif self._final(listener, link) is None:
                waiting.append(link)
        return waiting

    def _downs(self, name: str, link: tuple[str, str]) -> int:
        node = self.nodes[name]
        return sum(1 for e in node.events
                   if e.get("kind") == "link-down" and (e.get("dialer"), e.get("listener")) == link)

    async def settle(self, where: str, *, timeout: float | None = None) -> None:
        """Wait until every running dialer's link has an outcome.

        Raises:
            ScenarioNotSettled: not within ``timeout`` (default NODE_TIMEOUT) seconds.
        """
        limit = NODE_TIMEOUT if timeout is None else timeout
        with trio.move_on_after(limit) as waiting:
            while not self._settled():
                waiters = list(self.nodes.values())
                with trio.move_on_after(0.2):
                    async with trio.open_nursery() as nursery:
                        for node in waiters:
                            nursery.start_soon(_wait_and_cancel, node, nursery.cancel_scope)
        if waiting.cancelled_caught:
            pending = [f"{d} -> {l}" for d, l in self._unsettled()]
            problem = f"the mesh nodes did not settle within {limit:g} s"
            if pending:
                problem += ": no outcome yet for " + ", ".join(pending[:5])
                problem += f" and {len(pending) - 5} more" if len(pending) > 5 else ""
            raise ScenarioNotSettled(self.scenario.name, where, problem)

    def links(self) -> list[LinkRow]:
        """The link table (what progress lines count)."""
        return self.rows()

    def rows(self) -> list[LinkRow]:
        out = []
        for dialer, listener in self.scenario.links():
            key = (dialer, listener)
            event = self._final(dialer, key) or self._final(listener, key)
            if event is None:
                state = "down" if dialer not in self.nodes else "connecting"
                out.append(LinkRow(dialer=dialer, listener=listener, state=state,
                                   message=f"{dialer} is stopped" if dialer not in self.nodes else ""))
                continue
            state = _STATE[event["kind"]]
            code = event.get("code") if state == "halted" else None
            message = event.get("message") or "" if state == "halted" else ""
            if state == "up-unvalidated":
                skipped = [e for name in key for e in (self.nodes[name].events if name in self.nodes else [])
                           if e.get("kind") == "validation-skipped"
                           and (e.get("dialer"), e.get("listener")) == key]
                off = ", ".join(event.get("unvalidated_by") or ())
                would = [c for e in skipped for c in e.get("would_fail") or ()]
                if would:
                    code = would[0]
                    message = (f"validation off on {off}; would fail: "
                               f"{FailureCode.from_code(code).message}")
                else:
                    message = f"validation off on {off}"
            elif state == "down":
                message = event.get("reason", "")
            out.append(LinkRow(dialer=dialer, listener=listener, state=state, code=code,
                               message=message, refused_by=event.get("refused_by")))
        return out

    # -- steps --

    def publish(self, crl_server: CrlServer) -> None:
        crl_server.set_documents(self.pki.crl_documents(at=self.now))

    async def act(self, index: int, step: Step, crl_server: CrlServer) -> StepRecord:
        done = StepRecord(index=index, step=step, at=self.now)
        target = step.target
        if step.action == "revoke":
            assert target is not None
            self.pki.revoke(target, at=self.now)
            self.publish(crl_server)
        elif step.action == "upload":
            assert target is not None
            return await self._upload(index, step, target)
        elif step.action == "set-validation":
            assert target is not None
            self.validation[target] = bool(step.enabled)
        elif step.action.startswith("crl-"):
            crl_server.set_fault({"crl-down": "down", "crl-up": "ok", "crl-slow": "slow",
                                  "crl-garbage": "garbage"}[step.action])
        elif step.action == "stop":
            assert target is not None
            self.running[target] = False
        elif step.action == "start":
            assert target is not None
            self.running[target] = True
        return done

    def _trust_files(self, name: str) -> list[Path]:
        """The files of the roots ``name`` trusts (default: the scenario's root)."""
        roots = self.scenario.appliance(name).trust
        if not roots:
            return [self.folder / "root.crt"]
        return [self.folder / f"trust-{slug(root)}.crt" for root in roots]

    async def _upload(self, index: int, step: Step, target: str) -> StepRecord:
        from mesh.upload import check_upload

        material = self.pki.reissue(target, step.certificate, at=self.now)
        paths = self._write_identity(target, material, f"upload{index}")
        appliance = self.scenario.appliance(target)
        proxy = self.proxy_url if appliance.crl_proxy else None
        verdict = await trio.to_thread.run_sync(
            lambda: check_upload(
                Path(paths["certificate"]), Path(paths["key"]),
                Path(paths["chain"]) if "chain" in paths else None,
                self._trust_files(target), material.passphrase,
                at=self.now, validation=self.validation[target], proxy=proxy,
                policy=ValidationPolicy(
                    revocation=appliance.revocation,  # type: ignore[arg-type]
                    validator=appliance.validator,  # type: ignore[arg-type]
                ),
            )
        )
        if verdict.accepted:
            self.identity[target] = material
            return StepRecord(index=index, step=step, at=self.now, outcome="accepted")
        code = verdict.primary.code if verdict.primary is not None else None
        return StepRecord(index=index, step=step, at=self.now, outcome="refused",
                          code=code.code if code else None, message=code.message if code else "")


#: Nodes listen on fixed ports below the usual ephemeral ranges (Linux
#: 32768-60999, BSD/macOS 49152-65535), so no outgoing connection of another
#: node can hold a node's port when it restarts.
_PORTS = range(20000, 32000)


def _listen_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free on 127.0.0.1 right now."""
    chosen: list[int] = []
    candidates = list(_PORTS)
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise InputError("127.0.0.1", f"has no {count} free ports in {_PORTS.start}-{_PORTS.stop - 1}",
                     "stop what holds them, or run fewer appliances")


async def _wait_and_cancel(node: _Node, scope: trio.CancelScope) -> None:
    await node.changed.wait()
    scope.cancel()


async def run_in_processes(
    scenario: Scenario,
    *,
    keys: KeySource | None = None,
    sink: TextIO | None = None,
    progress: Progress | None = None,
    settle_timeout: float | None = None,
) -> RunResult:
    """Play ``scenario`` with every appliance as a ``mesh node`` process.

    ``sink`` receives every node's events, as the JSON lines the nodes print.

    Raises:
        ScenarioNotSettled: the nodes did not settle (``settle_timeout``
            seconds, default NODE_TIMEOUT) at start or after a step.
    """
    check_scenario(scenario)
    if len(scenario.appliances) > MAX_NODES:
        raise InputError(
            scenario.source or scenario.name,
            f"has {len(scenario.appliances)} appliances, too many for --processes "
            f"(one Python process each; at most {MAX_NODES})",
            "run it without --processes",
        )
    wall = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="mesh-nodes-") as tmp:
            folder = Path(tmp)
            async with trio.open_nursery() as nursery:
                crl_server, proxy, pki, keys = await start_world(
                    scenario, nursery, keys=keys, progress=progress
                )
                fleet = _Fleet(scenario, pki, folder, proxy_url=proxy.url if proxy else None,
                               sink=sink, nursery=nursery)
                fleet.publish(crl_server)
                verdicts: dict[int, Any] = {}
                uploads: dict[int, StepRecord] = {}
                records: list[StepRecord] = []
                last = len(scenario.steps)

                def check(after: int, rows: list[LinkRow]) -> None:
                    for i, expectation in enumerate(scenario.expectations, 1):
                        due = expectation.due if expectation.due is not None else last
                        if due == after and i not in verdicts:
                            verdicts[i] = judge(i, expectation, links=rows, uploads=uploads,
                                                checked_after=after, at=fleet.now)

                try:
                    await fleet.start_all()
                    await fleet.settle("at start", timeout=settle_timeout)
                    rows = fleet.rows()
                    check(0, rows)
                    if progress:
                        progress("started", None, fleet)  # type: ignore[arg-type]
                    for index, step in enumerate(scenario.steps, 1):
                        await fleet.stop_all()
                        fleet.now = fleet.now + step.after
                        if step.after:
                            fleet.publish(crl_server)
                        record = await fleet.act(index, step, crl_server)
                        records.append(record)
                        if step.action == "upload":
                            uploads[index] = record
                        await fleet.start_all()
                        await fleet.settle(f"step {index} ({step.describe()})", timeout=settle_timeout)
                        rows = fleet.rows()
                        check(index, rows)
                        if progress:
                            progress("step", record, fleet)  # type: ignore[arg-type]
                finally:
                    with trio.CancelScope(shield=True):
                        await fleet.stop_all()
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery wraps what the run raised; stuck nodes are one line.
        stuck = not_settled_in(group)
        if stuck is None:
            raise
        raise stuck from None
    return RunResult(
        scenario=scenario,
        links=rows,
        expectations=[verdicts[i] for i in sorted(verdicts)],
        steps=records,
        started=scenario.start,
        ended=fleet.now,
        seconds=time.monotonic() - wall,
        mode="processes",
    )
