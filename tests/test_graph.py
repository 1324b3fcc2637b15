"""mesh.graph: DOT, Mermaid and SVG of a scenario, coloured by a run's report."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from attrs import evolve

from mesh.errors import FailureCode, InputError
from mesh.graph import (
    GROUP_ABOVE,
    NAMED_AT_MOST,
    Edge,
    Graph,
    Node,
    grouped,
    render_dot,
    render_mermaid,
    render_svg,
    states_from_report,
)
from mesh.scenario.load import loads_scenario

SCENARIO = """
[scenario]
name = "graph-demo"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"
connects_to = ["ha.contoso.test"]
forwards_to = ["siem.contoso.test"]

[[appliance]]
name = "ha.contoso.test"
role = "ha-console"
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "sensor-2.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "siem.contoso.test"
role = "forwarding-target"
"""

REPORT = {
    "scenario": "graph-demo",
    "ok": True,
    "links": [
        {"from": "cm.contoso.test", "to": "ha.contoso.test", "state": "up", "code": None, "message": ""},
        {"from": "sensor-1.contoso.test", "to": "cm.contoso.test", "state": "halted",
         "code": "revoked", "message": FailureCode.REVOKED.message},
        {"from": "sensor-2.contoso.test", "to": "cm.contoso.test", "state": "up-unvalidated",
         "code": None, "message": "validation off at cm.contoso.test"},
        {"from": "cm.contoso.test", "to": "siem.contoso.test", "state": "down", "code": None,
         "message": "connection refused"},
    ],
    "expectations": [{"link": "x -> y", "expected": "up", "actual": "up", "met": True}],
}


@pytest.fixture
def graph() -> Graph:
    return Graph.from_scenario(loads_scenario(SCENARIO, source="demo.toml"))


@pytest.fixture
def coloured(graph: Graph) -> Graph:
    return graph.with_states(states_from_report(REPORT))


def test_graph_of_a_scenario_has_one_edge_per_pair(graph):
    assert [n.name for n in graph.nodes][:2] == ["cm.contoso.test", "ha.contoso.test"]
    pairs = {(e.dialer, e.listener): e.forward for e in graph.edges}
    assert pairs == {
        ("cm.contoso.test", "ha.contoso.test"): False,
        ("cm.contoso.test", "siem.contoso.test"): True,
        ("sensor-1.contoso.test", "cm.contoso.test"): False,
        ("sensor-2.contoso.test", "cm.contoso.test"): False,
    }


def test_states_from_a_run_report(coloured):
    halted = next(e for e in coloured.edges if e.state == "halted")
    assert (halted.dialer, halted.code, halted.message) == (
        "sensor-1.contoso.test", "revoked", FailureCode.REVOKED.message)
    assert halted.label == "halted: revoked"
    assert next(e for e in coloured.edges if e.dialer == "sensor-2.contoso.test").label == "unvalidated"


def test_a_code_without_message_gets_the_operator_message(graph):
    states = {("sensor-1.contoso.test", "cm.contoso.test"): {"state": "halted", "code": "expired"}}
    edge = next(e for e in graph.with_states(states).edges if e.state)
    assert edge.message == FailureCode.EXPIRED.message


def test_dot(coloured):
    text = render_dot(coloured)
    assert text.startswith('digraph "graph-demo" {')
    assert (
        '"sensor-1.contoso.test" -> "cm.contoso.test" [color="#c62828", fontcolor="#c62828", '
        'style=solid, label="halted: revoked", '
        f'tooltip="{FailureCode.REVOKED.message}", penwidth=2];'
    ) in text
    assert 'label="unvalidated"' in text and "style=dashed" in text
    assert text.rstrip().endswith("}")


def test_mermaid(coloured):
    lines = render_mermaid(coloured).splitlines()
    assert lines[0] == "flowchart LR"
    assert '  n0["cm.contoso.test<br/><small>management-console</small>"]' in lines
    assert '  n2 -->|"halted: revoked"| n0' in lines
    assert '  n3 -.->|"unvalidated"| n0' in lines
    halted_index = [e.state for e in coloured.edges].index("halted")
    assert f"  linkStyle {halted_index} stroke:#c62828,stroke-width:3px" in lines


def test_svg_is_well_formed_and_shows_halted_links(coloured):
    svg = render_svg(coloured, highlight="cm.contoso.test")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    halted = [g for g in root.iterfind("s:g", ns) if g.get("class") == "link link-halted"]
    assert len(halted) == 1
    assert halted[0].find("s:line", ns).get("stroke") == "#c62828"
    assert FailureCode.REVOKED.message in halted[0].find("s:title", ns).text
    notes = [t.text for t in root.iterfind("s:text", ns) if t.get("class") == "note"]
    assert (f"sensor-1.contoso.test -> cm.contoso.test: halted (revoked): "
            f"{FailureCode.REVOKED.message}") in notes
    unvalidated = next(g for g in root.iterfind("s:g", ns) if g.get("class") == "link link-up-unvalidated")
    assert unvalidated.find("s:line", ns).get("stroke-dasharray") == "8 4"
    nodes = {g.get("data-node") for g in root.iterfind("s:g", ns) if g.get("class") == "node"}
    assert nodes == {n.name for n in coloured.nodes}


def test_svg_escapes_what_it_draws():
    graph = Graph.from_status({
        "appliance": {"name": "a<b>"},
        "roles": {"a<b>": "sensor", 'c"&d': ""},
        "links": [{"dialer": "a<b>", "listener": 'c"&d', "state": "halted", "code": "x",
                   "message": "<script>alert(1)</script>"}],
    })
    svg = render_svg(graph)
    ET.fromstring(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_svg_layout_rows_targets_consoles_sensors(coloured):
    root = ET.fromstring(render_svg(coloured))
    ns = {"s": "http://www.w3.org/2000/svg"}
    y = {g.get("data-node"): float(g.find("s:rect", ns).get("y"))
         for g in root.iterfind("s:g", ns) if g.get("class") == "node"}
    assert y["siem.contoso.test"] < y["cm.contoso.test"] == y["ha.contoso.test"]
    assert y["ha.contoso.test"] < y["sensor-1.contoso.test"] == y["sensor-2.contoso.test"]


def test_report_of_several_runs_picks_the_scenario(graph):
    other = {"scenario": "other", "links": [
        {"from": "sensor-1.contoso.test", "to": "cm.contoso.test", "state": "up"}]}
    states = states_from_report([other, REPORT], scenario="graph-demo")
    assert states[("sensor-1.contoso.test", "cm.contoso.test")]["state"] == "halted"
    with pytest.raises(InputError) as info:
        states_from_report([other], where="runs.json", scenario="graph-demo")
    assert info.value.line() == (
        "runs.json: has no run of scenario 'graph-demo' (it has: other); "
        "pass the report of a run of this scenario")


def test_report_without_links_is_an_input_error():
    with pytest.raises(InputError) as info:
        states_from_report({"scenario": "x"}, where="run.json")
    assert info.value.line().startswith("run.json: has no link states")


def _fleet(sensors: int, *, halted: tuple[int, ...] = ()) -> Graph:
    nodes = [Node(name="cm", role="management-console")]
    nodes += [Node(name=f"sensor-{i}", role="sensor") for i in range(sensors)]
    edges = [
        Edge(dialer=f"sensor-{i}", listener="cm", state="halted" if i in halted else "up",
             code="revoked" if i in halted else None)
        for i in range(sensors)
    ]
    return Graph(nodes=nodes, edges=edges)


def test_a_small_mesh_is_drawn_whole():
    graph = _fleet(GROUP_ABOVE)
    assert grouped(graph) is graph


def test_a_big_mesh_folds_its_healthy_links_and_names_the_others():
    graph = grouped(_fleet(1000, halted=(3, 700)))
    assert [n.name for n in graph.nodes] == ["cm", "sensor-3", "sensor-700", "998 sensors up"]
    assert [(e.name, e.state, e.label) for e in graph.edges] == [
        ("sensor-3 -> cm", "halted", "halted: revoked"),
        ("sensor-700 -> cm", "halted", "halted: revoked"),
        ("998 sensors up -> cm", "up", "up"),
    ]
    svg = render_svg(graph)
    assert 'data-node="998 sensors up"' in svg and svg.count('class="node"') == 4


def test_folds_per_listener_are_named_for_it():
    edges = [Edge(dialer=f"s{i}", listener=f"cm{i % 2}", state="up") for i in range(70)]
    nodes = [Node(name=f"s{i}", role="sensor") for i in range(70)]
    graph = grouped(Graph(nodes=nodes, edges=edges))
    assert sorted(n.name for n in graph.nodes) == ["35 sensors up to cm0", "35 sensors up to cm1"]
    assert sorted(e.listener for e in graph.edges) == ["cm0", "cm1"]


def test_a_dialer_with_any_link_not_up_keeps_all_its_links():
    graph = _fleet(80)
    extra = Edge(dialer="sensor-1", listener="siem", state="halted", code="expired")
    result = grouped(evolve(graph, edges=[*graph.edges, extra]))
    assert {e.name for e in result.edges} == {
        "sensor-1 -> cm", "sensor-1 -> siem", "79 sensors up -> cm"}


def test_many_links_halted_alike_are_folded_too_with_their_code_and_message():
    halted = tuple(range(1, 101))
    graph = _fleet(101, halted=halted)
    graph = evolve(graph, edges=[evolve(e, message=FailureCode.REVOKED.message) if e.code else e
                                 for e in graph.edges])
    result = grouped(graph)
    assert [n.name for n in result.nodes] == ["cm", "sensor-0", "100 sensors halted"]
    edge = next(e for e in result.edges if e.dialer == "100 sensors halted")
    assert (edge.state, edge.code, edge.message) == ("halted", "revoked", FailureCode.REVOKED.message)
    assert "100 sensors halted -&gt; cm: halted (revoked): " in render_svg(result)


def test_up_to_twelve_alike_stay_named():
    result = grouped(_fleet(100, halted=tuple(range(NAMED_AT_MOST))))
    assert sum(e.state == "halted" for e in result.edges) == NAMED_AT_MOST
    assert "88 sensors up" in {n.name for n in result.nodes}


def test_the_same_state_with_two_codes_gets_two_named_folds():
    graph = _fleet(100, halted=tuple(range(40)))
    edges = [evolve(e, code="expired") if e.code and int(e.dialer.split("-")[1]) < 20 else e
             for e in graph.edges]
    names = {n.name for n in grouped(evolve(graph, edges=edges)).nodes}
    assert {"20 sensors halted (expired)", "20 sensors halted (revoked)", "60 sensors up"} <= names
