"""mesh console: a scenario's appliances with their consoles live, from the command line."""

from __future__ import annotations

import json
import os
import stat
import signal
import socket
import subprocess
import sys

import pytest
import trio

from mesh.cli import main

pytest.importorskip("mesh.appliances.mesh", reason="the engine's Mesh is not in this tree yet")

SCENARIO = """
[scenario]
name = "first-start"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"
certificate = "self-signed"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[step]]
after = "1h"
action = "set-validation"
target = "sensor-1.contoso.test"
enabled = false
"""


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "first-start.toml"
    path.write_text(SCENARIO)
    return path


def test_once_prints_one_line_per_console(scenario, capsys):
    assert main(["console", str(scenario), "--once", "--pace", "0"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["cm.contoso.test", "management-console"], ["sensor-1.contoso.test", "sensor"]]
    assert all(line.split()[2].startswith("https://127.0.0.1:") for line in lines)
    # The token files were private, and are gone with the consoles.
    assert all(line.split()[3].endswith(".api-token") for line in lines)
    assert not any(os.path.exists(line.split()[3]) for line in lines)
    assert "[first-start] started: 1 halted" in err
    assert "[first-start] step 1/1 +1h set-validation sensor-1.contoso.test off: 1 up-unvalidated" in err


def test_a_scenario_that_asks_for_consoles_has_each_served_once(tmp_path, capsys, monkeypatch):
    """`api = true` in the scenario and `mesh console` both serve consoles: the
    command's own are the ones served, not a second set beside them."""
    from mesh.scenario import runner

    path = tmp_path / "api.toml"
    path.write_text(SCENARIO.replace('name = "first-start"\n', 'name = "first-start"\napi = true\n', 1))
    opened = []
    real = runner.open_scenario_consoles

    async def spy(run, nursery):
        urls = await real(run, nursery)
        opened.append(urls)
        return urls

    monkeypatch.setattr(runner, "open_scenario_consoles", spy)
    assert main(["console", str(path), "--once", "--pace", "0"]) == 0
    out, _ = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["cm.contoso.test", "sensor-1.contoso.test"]
    assert opened == []


async def test_consoles_answer_curl_k_until_interrupted(scenario):
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", "console", str(scenario), "--appliance", "cm.contoso.test",
         "--pace", "0", "--wall-clock"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        seen = b""
        with trio.fail_after(60):
            while b"\n" not in seen:
                chunk = await process.stdout.receive_some()
                assert chunk, "mesh console exited before printing its console"
                seen += chunk
        name, role, url, token_file = seen.decode().splitlines()[0].split()
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        assert (name, role) == ("cm.contoso.test", "management-console")
        result = await trio.run_process(
            ["curl", "-k", "--silent", "--show-error", "--max-time", "10", f"{url}api/v1/status"],
            capture_stdout=True, capture_stderr=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["certificate"]["self_signed"] is True
        assert status["links"][0]["dialer"] == "sensor-1.contoso.test"
    finally:
        process.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            await process.wait()
    assert process.returncode == 130


async def test_curl_cacert_root_against_a_ca_signed_console(scenario, tmp_path):
    root = tmp_path / "root.crt"
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", "console", str(scenario), "--appliance",
         "sensor-1.contoso.test", "--pace", "0", "--wall-clock", "--root", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        seen = b""
        with trio.fail_after(60):
            while b"\n" not in seen:
                chunk = await process.stdout.receive_some()
                assert chunk, "mesh console exited before printing its console"
                seen += chunk
        name, _, url, _ = seen.decode().splitlines()[0].split()
        port = url.rstrip("/").rsplit(":", 1)[1]
        result = await trio.run_process(
            ["curl", "--silent", "--show-error", "--max-time", "10", "--cacert", str(root),
             "--resolve", f"{name}:{port}:127.0.0.1", f"https://{name}:{port}/api/v1/status"],
            capture_stdout=True, capture_stderr=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["appliance"]["name"] == "sensor-1.contoso.test"
        assert status["certificate"]["self_signed"] is False
    finally:
        process.send_signal(signal.SIGINT)
        with trio.fail_after(30):
            await process.wait()


def test_unknown_appliance_is_one_line(scenario, capsys):
    assert main(["console", str(scenario), "--appliance", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"mesh: --appliance nope: is not an appliance of {scenario}; "
                   "use one of cm.contoso.test, sensor-1.contoso.test")


def test_port_in_use_is_one_line(scenario, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["console", str(scenario), "--port", str(port), "--once", "--pace", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"mesh: console of cm.contoso.test: port {port} on 127.0.0.1 is already "
                       "in use; choose another port, or 0 to pick a free one")


FORWARDING = SCENARIO.replace(
    '[[step]]',
    '[[appliance]]\nname = "siem.contoso.test"\nrole = "forwarding-target"\n\n'
    '[[appliance]]\nname = "cm2.contoso.test"\nrole = "management-console"\n'
    'forwards_to = ["siem.contoso.test"]\n\n[[step]]',
)


def test_a_forwarding_target_has_no_console(tmp_path, capsys):
    """A forwarding target is a third-party server: `mesh console` serves the
    appliances' consoles only, and says so when asked for a target's."""
    path = tmp_path / "forwarding.toml"
    path.write_text(FORWARDING)
    assert main(["console", str(path), "--once", "--pace", "0"]) == 0
    served = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert served == ["cm.contoso.test", "sensor-1.contoso.test", "cm2.contoso.test"]
    assert main(["console", str(path), "--appliance", "siem.contoso.test"]) == 2
    assert capsys.readouterr().err == (
        "mesh: --appliance siem.contoso.test: is a forwarding-target, a third-party server "
        "with no console; use one of cm.contoso.test, sensor-1.contoso.test, cm2.contoso.test\n"
    )
