"""Shards for a cluster: the --workers plan, blocked appliances alone, configs within a ConfigMap."""

from __future__ import annotations

import pytest

from mesh.export import fleet
from mesh.export.fleet import API_BASE, NODE_BASE, plan_fleet
from mesh.export.names import service_names
from mesh.scenario.load import load_scenario
from mesh.scenario.shards import plan_shards
from mesh.scenario.world import build_pki

SENSORS = """\
[scenario]
name = "sensors"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"
api = true

[[appliance]]
name = "sensor-{n}.contoso.test"
role = "sensor"
count = 40
api = true
connects_to = ["cm.contoso.test"]
"""


@pytest.fixture
def sensors(tmp_path, keys):
    path = tmp_path / "sensors.toml"
    path.write_text(SENSORS)
    scenario = load_scenario(path)
    services = service_names([a.name for a in scenario.appliances], where="s", reserved={})
    return scenario, build_pki(scenario, crl_base_url="http://crl/crl", keys=keys), services


def test_without_blocks_the_shards_are_mesh_run_workers_shards(sensors):
    scenario, pki, services = sensors
    shards, grown = plan_fleet(scenario, pki, services, workers=3)
    assert grown is None
    assert [list(s.names) for s in shards] == plan_shards(
        [a.name for a in scenario.appliances], scenario.links(), 3, where="s")
    first = shards[0]
    assert first.ports[first.names[0]] == (NODE_BASE, API_BASE)
    assert first.ports[first.names[2]] == (NODE_BASE + 2, API_BASE + 2)
    assert all(f"{n}.api-token" in s.files for s in shards for n in s.names)


def test_a_config_too_big_for_a_configmap_means_more_shards_and_a_line_saying_so(sensors, monkeypatch):
    scenario, pki, services = sensors
    whole = plan_fleet(scenario, pki, services, workers=1)[0][0].config
    monkeypatch.setattr(fleet, "OBJECT_BUDGET", len(whole.encode()) // 3)
    shards, grown = plan_fleet(scenario, pki, services, workers=1)
    assert len(shards) >= 3
    assert all(len(s.config.encode()) <= len(whole.encode()) // 3 for s in shards)
    assert grown == f"{len(shards)} shards, not 1: each shard's node config must fit one ConfigMap"
    assert sorted(n for s in shards for n in s.names) == sorted(a.name for a in scenario.appliances)


def test_one_appliance_too_big_alone_is_one_line(sensors, monkeypatch):
    from mesh.errors import InputError

    scenario, pki, services = sensors
    monkeypatch.setattr(fleet, "OBJECT_BUDGET", 100)
    with pytest.raises(InputError) as caught:
        plan_fleet(scenario, pki, services, workers=1)
    assert "node config is" in caught.value.line() and caught.value.line().endswith("give it fewer peers")


def test_the_same_tokens_go_wherever_they_are_given(sensors):
    scenario, pki, services = sensors
    tokens = {name: f"token-{name}" for name in scenario.consoles()}
    shards, _ = plan_fleet(scenario, pki, services, workers=2, tokens=tokens)
    assert shards[0].files["cm.contoso.test.api-token"] == b"token-cm.contoso.test\n"
