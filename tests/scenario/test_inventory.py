"""``mesh run --inventory``: a fleet started by hand, driven through its APIs.

The fleet is real: ``mesh node`` processes and ``mesh crl serve --api-port``
on loopback, from a PKI folder ``mesh pki init`` wrote; the driver reaches
them only through the inventory file. The loader's problems are one line.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from mesh.cli import main
from mesh.errors import InputError
from mesh.scenario.inventory import check_inventory, load_inventory
from mesh.scenario.load import load_scenario
from mesh.scenario.runner import run_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
START = "2027-01-15T09:00:00Z"
CM, S1, S2 = "cm.contoso.test", "sensor-1.contoso.test", "sensor-2.contoso.test"


class Process:
    """A process whose stdout lines are read as they come (no polling)."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = trio.Event()

    async def read(self) -> None:
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            self.lines += [line.decode() for line in lines]
            self._changed.set()
            self._changed = trio.Event()

    async def line(self, pattern: str) -> re.Match[str]:
        while True:
            for line in self.lines:
                if found := re.search(pattern, line):
                    return found
            await self._changed.wait()

    async def event(self, kind: str) -> dict:
        found = await self.line(f'"kind": ?"{kind}"')
        return json.loads(found.string)


async def _start(nursery, argv: list[str]) -> Process:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", *argv], stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    started = Process(process)
    nursery.start_soon(started.read)
    return started


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_config(folder: Path, name: str, role: str, peer: str | None = None) -> Path:
    lines = [
        f'start = "{START}"', "backoff_cap = 1",
        f'name = "{name}"', f'role = "{role}"', 'listen = "127.0.0.1:0"', "api_port = 0",
        'trust = ["pki/ca/contoso-root-ca.crt"]',
        f'certificate = "pki/appliances/{name}.crt"', f'key = "pki/appliances/{name}.key"',
        f'chain = "pki/appliances/{name}.pem"',
    ]
    if peer is not None:
        lines += ["[connects_to]", f'"{CM}" = {{ address = "{peer}", role = "management-console" }}']
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
async def test_a_fleet_started_by_hand_gives_the_in_process_link_table(tmp_path, keys, nursery):
    scenario_path = LIBRARY / "troubleshoot-revoked.toml"
    scenario = load_scenario(scenario_path)
    crl_port = _free_port()
    assert main(["pki", "init", str(tmp_path / "pki"), "--intermediate",
                 "-a", f"{CM}:management-console", "-a", f"{S1}:sensor:revoked", "-a", S2,
                 "--crl-base-url", f"http://127.0.0.1:{crl_port}/crl", "--at", START]) == 0
    processes = []
    try:
        with trio.fail_after(60):
            crl = await _start(nursery, ["crl", "serve", str(tmp_path / "pki"), "--api-port", "0",
                                         "--api-token-file", str(tmp_path / "crl.token")])
            processes.append(crl)
            api = await crl.line(r"control API at (https://\S+)/api/v1/")
            cm = await _start(nursery, ["node", "--config",
                                        str(_node_config(tmp_path, CM, "management-console"))])
            processes.append(cm)
            address = (await cm.event("appliance-started"))["address"]
            consoles = {CM: await cm.event("api-listening")}
            for name in (S1, S2):
                node = await _start(nursery, ["node", "--config",
                                              str(_node_config(tmp_path, name, "sensor", address))])
                processes.append(node)
                consoles[name] = await node.event("api-listening")
        nodes = "".join(
            f'\n[[node]]\nname = "{name}"\napi = "{event["url"]}"\n'
            f'token_file = "{Path(event["token_file"]).relative_to(tmp_path)}"\n'
            for name, event in consoles.items())
        inventory = tmp_path / "fleet.toml"
        inventory.write_text(f'pki = "pki"\n\n[crl]\napi = "{api.group(1)}"\n'
                             f'token_file = "crl.token"\n{nodes}')
        report = tmp_path / "report.json"
        code = await trio.to_thread.run_sync(
            main, ["run", "--inventory", str(inventory), str(scenario_path), "--json", str(report)])
    finally:
        for started in processes:
            started.process.terminate()
        for started in processes:
            await started.process.wait()
    assert code == 0, [line for p in processes for line in p.lines][-20:]
    written = json.loads(report.read_text())
    [apart] = written["scenarios"] if "scenarios" in written else [written]
    inside = await run_scenario(scenario, keys=keys)
    table = [(row["from"], row["to"], row["state"], row["code"]) for row in apart["links"]]
    assert table == [(r.dialer, r.listener, r.state, r.code) for r in inside.links]
    start = [(row["from"], row["to"], row["state"], row["code"]) for row in apart["start"]["links"]]
    assert start == [(r.dialer, r.listener, r.state, r.code) for r in inside.start_links]
    # The driver went through the APIs: the upload, the clock and the CRL publication.
    kinds = {json.loads(line)["kind"] for p in processes[1:] for line in p.lines
             if line.startswith("{")}
    assert {"certificate-uploaded", "clock-advanced", "crls-refreshed"} <= kinds


def _write(tmp_path, text: str) -> Path:
    (tmp_path / "pki").mkdir(exist_ok=True)
    (tmp_path / "pki" / "pki.json").write_text("{}")
    (tmp_path / "cm.token").write_text("t0ken\n")
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    return path


GOOD = """pki = "pki"
[crl]
api = "https://127.0.0.1:9443"
token_env = "MESH_TEST_CRL_TOKEN"
[[node]]
name = "cm.contoso.test"
api = "https://127.0.0.1:9444"
token_file = "cm.token"
"""


@pytest.mark.parametrize(("text", "where", "problem"), [
    (GOOD + "colour = 1\n", "node[1]: colour", "is not a [[node]] setting"),
    ('pki = "pki"\nfleet = 1\n', "fleet.toml: fleet", "is not a key of the inventory"),
    ("[crl]\n", "fleet.toml: pki", "is missing"),
    ('pki = "nowhere"\n', "fleet.toml: pki", "has no pki.json"),
    ('pki = "pki"\n[[node]]\nname = "a"\n', "node[1].api", "is missing"),
    ('pki = "pki"\n[[node]]\nname = "a"\napi = "http://127.0.0.1:1"\n', "node[1].api",
     "is not an https://HOST:PORT address"),
    ('pki = "pki"\n[[node]]\nname = "a"\napi = "https://127.0.0.1:1"\n', "node[1]",
     "has no credential"),
    ('pki = "pki"\n[[node]]\nname = "a"\napi = "https://h:1"\ntoken_file = "absent"\n',
     "node[1].token_file", "does not exist"),
    ('pki = "pki"\n[[node]]\nname = "a"\napi = "https://h:1"\ntoken_env = "MESH_TEST_UNSET"\n',
     "node[1].token_env", "$MESH_TEST_UNSET is not set"),
    ('pki = "pki"\n[operator]\ncertificate = "op.crt"\n', "operator.key", "is missing"),
    ('pki = "pki"\n[crl]\napi = "https://h:1"\ntoken_file = "cm.token"\nurl = 1\n', "crl: url",
     "is not a [crl] setting"),
    ('pki = = 1\n', "fleet.toml", "is not valid TOML"),
])
def test_inventory_problems_are_one_line_naming_the_key(tmp_path, monkeypatch, text, where, problem):
    monkeypatch.delenv("MESH_TEST_UNSET", raising=False)
    monkeypatch.setenv("MESH_TEST_CRL_TOKEN", "x")
    with pytest.raises(InputError) as info:
        load_inventory(_write(tmp_path, text))
    line = info.value.line()
    assert "\n" not in line and where in line and problem in line, line


def test_an_inventory_loads_its_tokens_and_never_shows_them(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_TEST_CRL_TOKEN", "crl-secret")
    inventory = load_inventory(_write(tmp_path, GOOD))
    assert inventory.pki == tmp_path / "pki"
    assert inventory.crl.token == "crl-secret" and inventory.crl.url == "https://127.0.0.1:9443"
    assert inventory.nodes["cm.contoso.test"].token == "t0ken"
    assert "t0ken" not in repr(inventory) and "crl-secret" not in repr(inventory)


def test_a_scenario_appliance_missing_from_the_inventory_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_TEST_CRL_TOKEN", "x")
    inventory = load_inventory(_write(tmp_path, GOOD))
    scenario = load_scenario(LIBRARY / "troubleshoot-revoked.toml")
    with pytest.raises(InputError) as info:
        check_inventory(inventory, scenario)
    assert info.value.line() == (
        f"{tmp_path / 'fleet.toml'}: has no [[node]] for 'sensor-1.contoso.test' "
        "(a sensor of scenario 'troubleshoot-revoked'); add [[node]] name = "
        '"sensor-1.contoso.test" with its api and token'
    )


def test_inventory_cannot_be_combined_with_processes(tmp_path, capsys):
    assert main(["run", "--inventory", "fleet.toml", "--processes",
                 str(LIBRARY / "troubleshoot-revoked.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--inventory" in err and "--processes" in err
