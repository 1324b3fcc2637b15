"""``mesh graph``: a scenario file drawn, coloured by a run's JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from mesh.cli import main
from mesh.errors import FailureCode

SCENARIO = """
[scenario]
name = "graph-demo"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "sensor-2.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]
"""

REPORT = {
    "scenario": "graph-demo",
    "ok": True,
    "links": [
        {"from": "sensor-1.contoso.test", "to": "cm.contoso.test", "state": "halted",
         "code": "revoked", "message": FailureCode.REVOKED.message},
        {"from": "sensor-2.contoso.test", "to": "cm.contoso.test", "state": "up", "code": None,
         "message": ""},
    ],
}


@pytest.mark.parametrize("fmt, marker", [("dot", "digraph"), ("mermaid", "flowchart LR"),
                                         ("svg", "<svg ")])
def test_cli(tmp_path, capsys, fmt, marker):
    scenario = tmp_path / "demo.toml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "run.json"
    report.write_text(json.dumps(REPORT))
    assert main(["graph", str(scenario), "--from-run", str(report), "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.startswith(marker)
    assert "halted" in out


def test_cli_writes_a_file(tmp_path):
    scenario = tmp_path / "demo.toml"
    scenario.write_text(SCENARIO)
    target = tmp_path / "demo.svg"
    assert main(["graph", str(scenario), "--format", "svg", "-o", str(target)]) == 0
    ET.fromstring(target.read_text())


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    scenario = tmp_path / "demo.toml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "run.json"
    report.write_text("{not json")
    assert main(["graph", str(scenario), "--from-run", str(report)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"mesh: {report}: is not a JSON report")
    assert main(["graph", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_python_m_mesh_graph(tmp_path):
    scenario = tmp_path / "demo.toml"
    scenario.write_text(SCENARIO)
    result = subprocess.run([sys.executable, "-m", "mesh", "graph", str(scenario), "--format", "dot"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert '"sensor-2.contoso.test" -> "cm.contoso.test"' in result.stdout


def test_graph_of_a_real_run(tmp_path, capsys):
    pytest.importorskip("mesh.appliances.mesh", reason="the engine's Mesh is not in this tree yet")
    scenario = tmp_path / "revoked.toml"
    scenario.write_text("""
[scenario]
name = "revoked"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
certificate = "revoked"
connects_to = ["cm.contoso.test"]
""")
    report = tmp_path / "run.json"
    assert main(["run", "--quiet", str(scenario), "--json", str(report)]) == 0
    capsys.readouterr()
    assert main(["graph", str(scenario), "--from-run", str(report), "--format", "svg"]) == 0
    root = ET.fromstring(capsys.readouterr().out)
    ns = {"s": "http://www.w3.org/2000/svg"}
    halted = [g for g in root.iterfind("s:g", ns) if g.get("class") == "link link-halted"]
    assert [g.get("data-link") for g in halted] == ["sensor-1.contoso.test -> cm.contoso.test"]
    assert FailureCode.REVOKED.message in halted[0].find("s:title", ns).text
