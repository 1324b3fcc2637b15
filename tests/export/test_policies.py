"""Blocks as allow lists: who needs a pod of its own, and what a rule lets through."""

from __future__ import annotations

from mesh.export.policies import Endpoint, Pod, blocked, isolated, network_policies
from mesh.scenario.model import Block

NAMES = ["cm", "s1", "s2", "s3"]


def test_every_appliance_a_block_names_runs_alone_and_star_to_star_isolates_all():
    assert isolated([Block(source="s2", destination="crl", port=80)], NAMES) == ["s2"]
    assert isolated([Block(source="*", destination="cm")], NAMES) == ["cm"]
    assert isolated([Block(source="s3", destination="*")], NAMES) == ["s3"]
    assert isolated([Block(source="*", destination="*", port=8443)], NAMES) == NAMES
    assert isolated([], NAMES) == []


def test_a_block_matches_its_ends_and_its_port_only():
    rules = [Block(source="s1", destination="cm", port=8443), Block(source="*", destination="crl")]
    assert blocked(rules, "s1", "cm", 8443)
    assert not blocked(rules, "s1", "cm", 9443)
    assert not blocked(rules, "s2", "cm", 8443)
    assert blocked(rules, "s2", "crl", 80) and blocked(rules, "cm", "crl", 1)


def _policies(blocks):
    pods = [Pod(key="a", kind="node", labels={"pod": "a", "node": "y"}, hosts=("cm", "s1")),
            Pod(key="b", kind="node", labels={"pod": "b", "node": "y"}, hosts=("s2",)),
            Pod(key="crl", kind="crl", labels={"pod": "crl"}, hosts=("crl",)),
            Pod(key="driver", kind="driver", labels={"pod": "driver"})]
    endpoints = [Endpoint(host="cm", pod="a", port=8443, pod_port=10000, kind="mesh"),
                 Endpoint(host="cm", pod="a", port=9443, pod_port=21000, kind="api"),
                 Endpoint(host="crl", pod="crl", port=80, pod_port=8080, kind="crl")]
    return network_policies(pods, endpoints, blocks, namespace="ns", labels={"app": "mesh"},
                            node_labels={"node": "y"})


def test_the_rules_list_allowed_pods_per_port_and_leave_blocked_ones_out():
    deny, egress, *ingress = _policies([])
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert egress["spec"]["egress"][0] == {"to": [{"podSelector": {}}]}
    to_a = next(p for p in ingress if p["metadata"]["name"] == "allow-to-a")
    assert to_a["spec"]["ingress"] == [
        # every other node pod stands as one selector
        {"from": [{"podSelector": {"matchLabels": {"node": "y"}}}],
         "ports": [{"protocol": "TCP", "port": 10000}]},
        {"from": [{"podSelector": {"matchLabels": {"pod": "driver"}}}],
         "ports": [{"protocol": "TCP", "port": 21000}]},
    ]
    to_crl = next(p for p in ingress if p["metadata"]["name"] == "allow-to-crl")
    assert to_crl["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"node": "y"}}},
                  {"podSelector": {"matchLabels": {"pod": "driver"}}}],
         "ports": [{"protocol": "TCP", "port": 8080}]},
    ]


def test_a_blocked_source_is_absent_and_a_fully_blocked_port_has_no_rule():
    *_, to_a, to_crl = _policies([Block(source="s2", destination="crl", port=80),
                                  Block(source="*", destination="cm", port=8443)])
    assert to_crl["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"pod": "a", "node": "y"}}},
                  {"podSelector": {"matchLabels": {"pod": "driver"}}}],
         "ports": [{"protocol": "TCP", "port": 8080}]},
    ]
    # Nobody reaches cm's mesh port; the driver still reaches its console.
    assert [rule["ports"] for rule in to_a["spec"]["ingress"]] == [[{"protocol": "TCP", "port": 21000}]]


def test_the_crl_servers_control_api_admits_the_driver_only():
    pods = [Pod(key="a", kind="node", labels={"pod": "a", "node": "y"}, hosts=("cm",)),
            Pod(key="crl", kind="crl", labels={"pod": "crl"}, hosts=("crl",)),
            Pod(key="driver", kind="driver", labels={"pod": "driver"})]
    endpoints = [Endpoint(host="crl", pod="crl", port=80, pod_port=8080, kind="crl"),
                 Endpoint(host="crl", pod="crl", port=9443, pod_port=9443, kind="api")]
    # A block of everything to the CRL server closes its CRLs, not the driver's API.
    *_, to_crl = network_policies(pods, endpoints, [Block(source="*", destination="crl")],
                                  namespace="ns", labels={"app": "mesh"}, node_labels={"node": "y"})
    assert to_crl["spec"]["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"pod": "driver"}}}],
         "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 9443}]},
    ]
