"""``mesh run --hosts`` (:mod:`mesh.scenario.hosts`): same link table as in process, nothing left.

Each node is a Python process on a host of its own, so the slow tests are
few: four small library scenarios (a halt and an upload, an expiry, the CRL
server down and back, the CRL proxy on a host of its own) and one run stopped by Ctrl-C. Without root they skip,
saying why; the refusals need no root.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from mesh.cli import main
from mesh.errors import InputError
from mesh.hosts import netns
from mesh.scenario.hosts import check_hosts_scenario, run_on_hosts
from mesh.scenario.load import load_scenario, loads_scenario
from mesh.scenario.runner import run_scenario

from tests.hosts.conftest import needs_root

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"

#: The default suite compares four small scenarios; MESH_HOSTS_ALL=1 every
#: library scenario --hosts plays (those it refuses are left out, and the
#: network ones, which have no in-process run: tests/hosts/test_policy_scenarios.py).
QUICK = ["troubleshoot-revoked", "troubleshoot-expired", "crl-server-down", "crl-through-proxy"]


def _playable(path: Path) -> bool:
    """--hosts plays it, and in process too (the network scenarios: test_policy_scenarios)."""
    scenario = load_scenario(path)
    try:
        check_hosts_scenario(scenario)
    except InputError:
        return False
    return not scenario.needs_hosts


PLAYABLE = sorted(p.stem for p in LIBRARY.glob("*.toml") if _playable(p))
NAMES = PLAYABLE if os.environ.get("MESH_HOSTS_ALL") == "1" else QUICK

TWO = """
[scenario]
name = "two"
start = 2027-01-15T09:00:00Z

[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]
"""


def table(result):
    return [(row.link, row.state, row.code) for row in result.links]


def table_of(step):
    return [(row.link, row.state, row.code) for row in step.links]


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ('\n[[step]]\naction = "crl-up"\n\n[[step]]\naction = "crl-slow"\n',
         "two.toml: step[2] crl-slow: is not supported by --hosts yet "
         "(mesh crl serve has no slow fault); run it without --hosts"),
        ('\n[[step]]\naction = "crl-garbage"\n',
         "two.toml: step[1] crl-garbage: is not supported by --hosts yet "
         "(mesh crl serve has no garbage fault); run it without --hosts"),
    ],
)
def test_what_hosts_cannot_play_yet_is_one_line(extra, line):
    scenario = loads_scenario(TWO + extra, source="two.toml")
    with pytest.raises(InputError) as info:
        check_hosts_scenario(scenario)
    assert info.value.line() == line


def test_without_root_mesh_run_hosts_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(netns, "missing_privilege",
                        lambda: "needs root (CAP_NET_ADMIN) to make network namespaces")
    path = tmp_path / "two.toml"
    path.write_text(TWO)
    assert main(["run", "--hosts", str(path)]) == 2
    assert capsys.readouterr().err == (
        "mesh: mesh run --hosts: needs root (CAP_NET_ADMIN) to make network namespaces; "
        "run it as root, or without --hosts\n"
    )


def test_hosts_and_processes_do_not_mix(tmp_path, capsys):
    path = tmp_path / "two.toml"
    path.write_text(TWO)
    assert main(["run", "--hosts", "--processes", str(path)]) == 2
    assert capsys.readouterr().err.startswith("mesh: --hosts: cannot be combined with --processes")


@needs_root
@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
async def test_hosts_give_the_same_link_table_as_in_process(name, keys, key_pool):
    scenario = load_scenario(LIBRARY / f"{name}.toml")
    inside = await run_scenario(scenario, keys=keys)
    calls = []
    apart = await run_on_hosts(scenario, keys=key_pool.cursor(),
                               progress=lambda kind, record, run: calls.append(kind))
    assert apart.mode == "hosts"
    assert calls == ["building", "started"] + ["step"] * len(scenario.steps)
    assert table(apart) == table(inside)
    # crl-server-down too: a node restarted for a step keeps its CRLs (crl_cache).
    assert apart.ok, [v.to_json() for v in apart.failures]
    assert [table_of(s) for s in apart.steps] == [table_of(s) for s in inside.steps]


@needs_root
@pytest.mark.slow
async def test_the_nodes_dial_dns_names_and_fetch_crls_from_the_crl_host(key_pool):
    import io
    import json

    scenario = loads_scenario(TWO + '\n[[step]]\naction = "revoke"\ntarget = "sensor-1.contoso.test"\n',
                              source="two.toml")
    sink = io.StringIO()
    result = await run_on_hosts(scenario, keys=key_pool.cursor(), sink=sink, run_id="00c0de")
    events = [json.loads(line) for line in sink.getvalue().splitlines()]
    started = {e["appliance"]: e["address"] for e in events if e["kind"] == "appliance-started"}
    assert started == {"cm.contoso.test": "10.213.222.2:8443",
                       "sensor-1.contoso.test": "10.213.222.3:8443"}
    urls = {e["url"] for e in events if e["kind"] == "crl-fetched"}
    assert urls == {"http://crl.contoso.test/crl/mesh-root-ca.crl"}
    # the revocation reached the CRL host before the nodes restarted
    assert table(result) == [("sensor-1.contoso.test -> cm.contoso.test", "halted", "revoked")]


@needs_root
@pytest.mark.slow
async def test_a_run_that_fails_removes_its_namespaces_too(key_pool):
    """An exception in the runner (here: nodes that cannot settle in 10 ms) cleans up alike."""
    from mesh.scenario.runner import ScenarioNotSettled

    scenario = loads_scenario(TWO, source="two.toml")
    with pytest.raises(ScenarioNotSettled) as info:
        await run_on_hosts(scenario, keys=key_pool.cursor(), settle_timeout=0.01)
    assert "did not settle within 0.01 s" in info.value.line()


@needs_root
@pytest.mark.slow
async def test_a_run_cancelled_midway_stops_its_processes_and_removes_its_namespaces(key_pool):
    """What Ctrl-C does to a run: the cleanup is shielded (the fixture checks nothing is left)."""
    scenario = loads_scenario(TWO + '\n[[step]]\nafter = "1d"\naction = "advance"\n',
                              source="two.toml")
    seen = []
    with trio.CancelScope() as scope:

        def progress(kind, record, run):
            seen.append(kind)
            if kind == "started":
                scope.cancel()

        await run_on_hosts(scenario, keys=key_pool.cursor(), progress=progress)
    assert scope.cancelled_caught and seen == ["building", "started"]


@needs_root
@pytest.mark.slow
def test_ctrl_c_on_mesh_run_hosts_exits_130_and_leaves_nothing(tmp_path):
    path = tmp_path / "two.toml"
    path.write_text(TWO + '\n[[step]]\nafter = "1d"\naction = "advance"\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "mesh", "run", "--hosts", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        for line in process.stderr:
            if "started 2 appliances" in line:
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err.endswith("mesh: interrupted\n")


@needs_root
@pytest.mark.slow
def test_hosts_html_report_has_the_nodes_events_and_the_certificates_at_start(tmp_path, capsys):
    import re

    page = tmp_path / "report.html"
    assert main(["run", "-q", "--hosts", str(LIBRARY / "troubleshoot-revoked.toml"),
                 "--html", str(page)]) == 0
    text = page.read_text()
    assert 'data-kind="link-halted"' in text and 'data-kind="appliance-started"' in text
    assert re.findall(r'<td class="recipe">([\w-]+)', text) == ["ca-signed", "revoked", "ca-signed"]
    assert text.count('data-testid="moment"') == 2
