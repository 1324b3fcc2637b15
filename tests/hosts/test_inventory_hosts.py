"""``mesh run --inventory`` against a fleet on hosts of its own, started by hand.

Every appliance is a ``mesh node`` in a network namespace, the CRL server
``mesh crl serve --api-port`` on ``crl.contoso.test`` port 80, and the
driver runs in a namespace of its own on the same switch: it reaches the
fleet only by the names and credentials of the inventory, across the run's
network, as a driver would reach a fleet some other tool deployed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from mesh.cli import main
from mesh.hosts import netns
from mesh.scenario.load import load_scenario
from mesh.scenario.runner import run_scenario

from tests.scenario.test_inventory import CM, LIBRARY, S1, S2, START, Process
from tests.hosts.conftest import needs_root

DRIVER = "driver.contoso.test"


async def _in(nursery, namespace: str, argv: list[str]) -> Process:
    process = await trio.lowlevel.open_process(
        ["ip", "netns", "exec", namespace, sys.executable, "-m", "mesh", *argv],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    started = Process(process)
    nursery.start_soon(started.read)
    return started


def _node_config(folder: Path, host: netns.Host, role: str, dials: str | None = None) -> Path:
    lines = [
        f'start = "{START}"', "backoff_cap = 1",
        f'name = "{host.name}"', f'role = "{role}"', f'listen = "{host.address}:8443"',
        "api_port = 9443", 'trust = ["pki/ca/contoso-root-ca.crt"]',
        f'certificate = "pki/appliances/{host.name}.crt"',
        f'key = "pki/appliances/{host.name}.key"', f'chain = "pki/appliances/{host.name}.pem"',
    ]
    if dials is not None:
        lines += ["[connects_to]", f'"{dials}" = {{ address = "{dials}:8443", role = "management-console" }}']
    path = folder / f"{host.name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@needs_root
@pytest.mark.slow
async def test_the_driver_plays_a_scenario_on_a_fleet_of_hosts_through_its_inventory(
        tmp_path, keys, nursery):
    scenario_path = LIBRARY / "troubleshoot-revoked.toml"
    plan = netns.plan_hosts([CM, S1, S2, DRIVER], run_id=netns.new_run_id())
    assert main(["pki", "init", str(tmp_path / "pki"), "--intermediate",
                 "-a", f"{CM}:management-console", "-a", f"{S1}:sensor:revoked", "-a", S2,
                 "--crl-base-url", f"http://{plan.crl.name}/crl", "--at", START]) == 0
    processes: list[Process] = []
    try:
        await netns.create(plan)
        with trio.fail_after(60):
            crl = await _in(nursery, plan.crl.namespace, [
                "crl", "serve", str(tmp_path / "pki"), "--host", str(plan.crl.address), "--port", "80",
                "--api-port", "9443", "--api-token-file", str(tmp_path / "crl.token")])
            processes.append(crl)
            await crl.line(r"control API at https://\S+/api/v1/")
            consoles = {}
            for name, role, dials in ((CM, "management-console", None), (S1, "sensor", CM),
                                      (S2, "sensor", CM)):
                host = plan.host(name)
                node = await _in(nursery, host.namespace,
                                 ["node", "--config", str(_node_config(tmp_path, host, role, dials))])
                processes.append(node)
                consoles[name] = await node.event("api-listening")
        nodes = "".join(
            f'\n[[node]]\nname = "{name}"\napi = "https://{name}:9443"\n'
            f'token_file = "{Path(event["token_file"]).relative_to(tmp_path)}"\n'
            for name, event in consoles.items())
        inventory = tmp_path / "fleet.toml"
        inventory.write_text(f'pki = "pki"\n\n[crl]\napi = "https://{plan.crl.name}:9443"\n'
                             f'token_file = "crl.token"\n{nodes}')
        report = tmp_path / "report.json"
        driver = await trio.run_process(
            ["ip", "netns", "exec", plan.host(DRIVER).namespace, sys.executable, "-m", "mesh", "run",
             "--inventory", str(inventory), str(scenario_path), "--json", str(report)],
            capture_stdout=True, capture_stderr=True, check=False)
    finally:
        for started in processes:
            started.process.terminate()
        with trio.CancelScope(shield=True):
            for started in processes:
                await started.process.wait()
            await netns.destroy(plan)
    assert driver.returncode == 0, (driver.stdout + driver.stderr).decode()[-3000:]
    written = json.loads(report.read_text())
    [apart] = written["scenarios"] if "scenarios" in written else [written]
    inside = await run_scenario(load_scenario(scenario_path), keys=keys)
    table = [(row["from"], row["to"], row["state"], row["code"]) for row in apart["links"]]
    assert table == [(r.dialer, r.listener, r.state, r.code) for r in inside.links]
    kinds = {json.loads(line)["kind"] for p in processes[1:] for line in p.lines
             if line.startswith("{")}
    assert {"certificate-uploaded", "clock-advanced", "crls-refreshed"} <= kinds
