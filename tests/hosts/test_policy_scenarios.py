"""Network policy in hosts runs: the library's network scenarios, and each kind of step
shown to change what happens (:mod:`mesh.scenario.hosts`, :mod:`mesh.hosts.firewall`).

Every run here is real: nodes in namespaces, nftables rules, tc qdiscs. As
root with nft and tc they run (CI does); otherwise they skip, saying why.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from attrs import evolve

from mesh.cli import main
from mesh.hosts import firewall
from mesh.scenario.hosts import run_on_hosts
from mesh.scenario.load import load_scenario, loads_scenario

from tests.hosts.conftest import needs_nft, needs_root, sigkill_once_started

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
PORT_80 = LIBRARY / "port-80-blocked-proxy-saves-the-day.toml"
PARTITION = LIBRARY / "partition-is-not-a-validation-halt.toml"
S1, S2, CM = "sensor-1.contoso.test", "sensor-2.contoso.test", "cm.contoso.test"

TWO = f"""
[scenario]
name = "two"
start = 2027-01-15T09:00:00Z

[[appliance]]
name = "{CM}"
role = "management-console"

[[appliance]]
name = "{S1}"
role = "sensor"
connects_to = ["{CM}"]
"""


def table(links):
    return [(row.link, row.state, row.code, row.reason) for row in links]


def failures(result):
    return [f"expect[{v.index}] {v.subject}: expected {v.expected} {v.when}, got {v.actual}"
            for v in result.failures]


@needs_nft
@pytest.mark.slow
async def test_port_80_blocked_the_proxy_saves_the_day(key_pool):
    result = await run_on_hosts(load_scenario(PORT_80), keys=key_pool.cursor())
    assert result.ok, failures(result)
    assert table(result.links) == [
        (f"{S1} -> {CM}", "up", None, None),
        (f"{S2} -> {CM}", "halted", "crl_unreachable", None),
    ]


@needs_nft
@pytest.mark.slow
async def test_the_firewall_rule_is_what_makes_the_crl_unreachable(key_pool):
    scenario = load_scenario(PORT_80)
    opened = await run_on_hosts(evolve(scenario, blocks=()), keys=key_pool.cursor())
    # The same scenario with the rule removed: the sensor without a proxy validates too.
    assert table(opened.links) == [(f"{S1} -> {CM}", "up", None, None),
                                   (f"{S2} -> {CM}", "up", None, None)]
    assert [v.index for v in opened.failures] == [2]


@needs_nft
@pytest.mark.slow
async def test_a_partition_is_down_for_the_network_and_heals_while_validation_halts_stay(key_pool):
    result = await run_on_hosts(load_scenario(PARTITION), keys=key_pool.cursor())
    assert result.ok, failures(result)
    split, healed = result.steps
    assert table(split.links) == [
        (f"{S1} -> {CM}", "down", None, "network: partitioned"),
        (f"{S2} -> {CM}", "halted", "expired", None),
    ]
    assert split.links[0].to_json()["reason"] == "network: partitioned"
    assert table(healed.links) == [(f"{S1} -> {CM}", "up", None, None),
                                   (f"{S2} -> {CM}", "halted", "expired", None)]
    assert result.to_json()["steps"][0]["links"][0]["reason"] == "network: partitioned"


FLEET = f"""
[scenario]
name = "fleet"
start = 2027-01-15T09:00:00Z

[[appliance]]
name = "{CM}"
role = "management-console"

[[appliance]]
name = "sensor-{{n}}.contoso.test"
role = "sensor"
count = 24
connects_to = ["{CM}"]

[[block]]
from = "sensor-7.contoso.test"
to = "{CM}"

[[step]]
after = "1h"
action = "partition"
between = [["sensor-9.contoso.test"], ["{CM}"]]

[[step]]
after = "1h"
action = "revoke"
target = "{S1}"

[[step]]
after = "1h"
action = "heal"
"""


@needs_nft
@pytest.mark.slow
async def test_with_workers_shards_share_hosts_and_the_policy_still_holds_per_appliance(key_pool):
    """``--hosts --workers 2``: two shard hosts, and a host of its own for each
    appliance a rule names (the console, sensor-7, sensor-9): the rule on
    sensor-7's host cuts it alone, not the sensors beside it."""
    result = await run_on_hosts(loads_scenario(FLEET, source="fleet.toml"), keys=key_pool.cursor(),
                                workers=2)
    cut, revoked, healed = result.steps
    odd = {"sensor-7.contoso.test": ("down", None, "network: blocked"),
           "sensor-9.contoso.test": ("down", None, "network: partitioned")}
    assert {r.dialer: (r.state, r.code, r.reason) for r in cut.links if r.state != "up"} == odd
    assert sum(r.state == "up" for r in cut.links) == 22
    final = {r.dialer: (r.state, r.code, r.reason) for r in healed.links}
    assert {d: v for d, v in final.items() if v != ("up", None, None)} == {
        "sensor-7.contoso.test": ("down", None, "network: blocked"), S1: ("halted", "revoked", None)}
    assert len(final) == 24


@needs_nft
@pytest.mark.slow
async def test_total_loss_on_the_crl_host_times_the_fetch_out_and_ending_it_brings_the_link_back(
        key_pool):
    scenario = loads_scenario(TWO + """
[[step]]
after = "1h"
action = "loss"
target = "crl"
percent = 100

[[step]]
after = "8d"
action = "advance"

[[step]]
action = "loss"
target = "crl"
percent = 0
""", source="loss.toml")
    result = await run_on_hosts(scenario, keys=key_pool.cursor())
    cached, lost, back = result.steps
    # The refetch times out, and the nodes' cached CRLs are current: they stand in.
    assert table(cached.links) == [(f"{S1} -> {CM}", "up", None, None)]
    # Past the cached CRLs' next update: the nodes reach each other, neither
    # reaches the CRL host, and that is a validation halt.
    assert table(lost.links) == [(f"{S1} -> {CM}", "halted", "crl_unreachable", None)]
    assert table(back.links) == [(f"{S1} -> {CM}", "up", None, None)]


@needs_nft
@pytest.mark.slow
async def test_a_dropping_block_costs_a_timeout_and_still_ends_in_the_same_halt(key_pool):
    scenario = loads_scenario(TWO + f"""
[[step]]
after = "8d"
action = "block"
from = "{S1}"
to = "crl"
port = 80
drop = true

[[step]]
action = "unblock"
from = "{S1}"
to = "crl"
port = 80

[[step]]
action = "block"
from = "{S1}"
to = "{CM}"
""", source="drop.toml")
    result = await run_on_hosts(scenario, keys=key_pool.cursor())
    dropped, lifted, blocked = result.steps
    assert table(dropped.links) == [(f"{S1} -> {CM}", "halted", "crl_unreachable", None)]
    assert table(lifted.links) == [(f"{S1} -> {CM}", "up", None, None)]
    assert table(blocked.links) == [(f"{S1} -> {CM}", "down", None, "network: blocked")]


@needs_nft
@pytest.mark.slow
async def test_a_bandwidth_step_puts_a_token_bucket_on_the_hosts_link_and_off_lifts_it(key_pool):
    scenario = loads_scenario(TWO + """
[[step]]
action = "bandwidth"
target = "crl"
rate = "1mbit"

[[step]]
action = "bandwidth"
target = "crl"
rate = "off"
""", source="bandwidth.toml")
    seen = []

    def progress(kind, record, backend):
        if kind == "step":
            crl = backend.plan.crl
            shown = subprocess.run(["tc", "-n", crl.namespace, "qdisc", "show", "dev", "eth0"],
                                   capture_output=True, text=True, check=True).stdout
            seen.append("tbf" in shown and "rate 1Mbit" in shown)

    result = await run_on_hosts(scenario, keys=key_pool.cursor(), progress=progress)
    assert seen == [True, False]
    # A CRL of a few hundred bytes fits any bucket: the links stay up.
    assert [row.state for step in result.steps for row in step.links] == ["up", "up"]


def test_without_nft_mesh_run_hosts_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("mesh.hosts.netns.missing_privilege", lambda: None)
    monkeypatch.setattr(firewall, "missing_nft",
                        lambda: "needs the nft command (Debian's nftables package; "
                                "`make test` installs it as root)")
    assert main(["run", "--hosts", str(PORT_80)]) == 2
    assert capsys.readouterr().err == (
        "mesh: mesh run --hosts: needs the nft command (Debian's nftables package; "
        "`make test` installs it as root); run it as root, or without --hosts\n"
    )


def _in_namespace(namespace: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                          text=True).stdout


@needs_root
@needs_nft
@pytest.mark.slow
def test_a_sigkilled_runs_rules_live_in_its_namespaces_and_clean_takes_them(tmp_path, capsys):
    root_rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    sigkill_once_started(PORT_80, 3, tmp_path)
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    sensors = [ns for ns in left if ns.startswith("mesh-") and ns.endswith(("-2", "-3"))]
    assert len(sensors) == 2, left
    for namespace in sensors:
        assert "tcp dport 80" in _in_namespace(namespace, "nft", "list", "table", "inet", "mesh")
    # The machine's own ruleset never had them.
    assert subprocess.run(["nft", "list", "ruleset"], capture_output=True,
                          text=True).stdout == root_rules
    prefix = sensors[0].rsplit("-", 1)[0] + "-"
    # Only this run's: other runs on the machine are left alone.
    assert main(["hosts", "clean", "--run", prefix.split("-")[1]]) == 0
    out = capsys.readouterr().out.splitlines()
    # switch, CRL, proxy and three appliances
    assert sum(line.startswith(f"removed network namespace {prefix}") for line in out) == 6, out
    assert prefix not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout
