"""Appliance specs and the one-dialer-per-pair rule."""

from __future__ import annotations

import pytest

from mesh.appliances import ApplianceSpec, LinkPair, Role, link_pairs
from mesh.appliances.traffic import Plan, plan_for


def spec(name, role, **kw):
    return ApplianceSpec(name=name, role=role, **kw)


def test_role_parse():
    assert Role.parse("HA-Console") is Role.HA_CONSOLE
    with pytest.raises(ValueError, match="known roles: sensor, management-console"):
        Role.parse("toaster")


def test_sensors_dial_their_console_and_consoles_forward():
    pairs = link_pairs(
        [
            spec("s1", "sensor", connects_to="console"),
            spec("console", "management-console", forwards_to=["siem"]),
            spec("siem", "forwarding-target"),
        ]
    )
    assert pairs == [
        LinkPair(dialer="s1", listener="console", mutual=True),
        LinkPair(dialer="console", listener="siem", mutual=False),
    ]


@pytest.mark.parametrize("order", [0, 1])
def test_console_and_ha_naming_each_other_make_one_link_dialed_by_the_console(order):
    specs = [
        spec("ha", "ha-console", connects_to=["console"]),
        spec("console", "management-console", connects_to=["ha"]),
    ]
    if order:
        specs.reverse()
    assert link_pairs(specs) == [LinkPair(dialer="console", listener="ha")]


def test_equal_roles_go_by_name_and_self_links_are_refused():
    assert link_pairs(
        [spec("b", "sensor", connects_to=["a"]), spec("a", "sensor", connects_to=["b"])]
    ) == [LinkPair(dialer="a", listener="b")]
    with pytest.raises(ValueError, match="cannot connect to itself"):
        link_pairs([spec("a", "sensor", connects_to=["a"])])


def test_plans_by_role():
    console, ha, sensor = Role.MANAGEMENT_CONSOLE, Role.HA_CONSOLE, Role.SENSOR
    assert plan_for(sensor, console, as_dialer=True, mutual=True) is Plan.HEARTBEATS_AND_ALERTS
    assert plan_for(console, ha, as_dialer=True, mutual=True) is Plan.REPLICATE
    assert plan_for(console, ha, as_dialer=False, mutual=True) is Plan.REPLICATE
    assert plan_for(console, sensor, as_dialer=False, mutual=True) is Plan.NOTHING
    assert plan_for(console, None, as_dialer=True, mutual=False) is Plan.FORWARD
    assert plan_for(Role.FORWARDING_TARGET, None, as_dialer=False, mutual=False) is Plan.NOTHING


def test_names_outside_the_mesh():
    pairs = link_pairs([spec("s1", "sensor", connects_to=["far"], forwards_to=["syslog"])])
    assert pairs == [
        LinkPair(dialer="s1", listener="far", mutual=True),
        LinkPair(dialer="s1", listener="syslog", mutual=False),
    ]
