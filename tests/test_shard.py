"""``mesh node`` with a shard config: several appliances in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from mesh.cli import main
from mesh.node_config import load_shard

SHARD = """\
start = "2027-01-15T09:00:00Z"
backoff_cap = 2

[[appliance]]
name = "console"
role = "management-console"
api = false
accept_from = ["sensor-9"]

[[appliance]]
name = "sensor-1"
role = "sensor"
[appliance.connects_to]
console = "local"
siem = { address = "127.0.0.1:6514", role = "forwarding-target" }
"""


def _write(tmp_path, text, name="shard.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_shard_config_lists_its_appliances_and_the_peers_elsewhere(tmp_path):
    shard = load_shard(_write(tmp_path, SHARD))
    assert [n.spec.name for n in shard.nodes] == ["console", "sensor-1"]
    assert shard.start.isoformat() == "2027-01-15T09:00:00+00:00"
    assert all(n.settings.backoff_cap == 2.0 for n in shard.nodes)
    assert shard.nodes[0].accept_from == ("sensor-9",)
    sensor = shard.nodes[1]
    assert sensor.spec.connects_to == ("console", "siem")
    assert [(p.name, p.host, p.port) for p in shard.external()] == [("siem", "127.0.0.1", 6514)]


def test_a_single_appliance_config_is_a_shard_of_one(tmp_path):
    shard = load_shard(_write(tmp_path, 'name = "a"\nrole = "sensor"\n'))
    assert [n.spec.name for n in shard.nodes] == ["a"]


def test_every_shard_config_problem_is_listed_at_once(tmp_path, capsys):
    path = _write(tmp_path, """\
start = "soon"
colour = "red"

[[appliance]]
role = "sensor"

[[appliance]]
name = "b"
role = "toaster"
backoff_cap = 3
[appliance.connects_to]
c = "local"

[[appliance]]
name = "b"
role = "sensor"
""")
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"mesh: {path}: colour: is not a shard setting; known: appliance, backoff_cap, start",
        f"mesh: {path}: start: 'soon' is not an instant; write \"2027-01-15T09:00:00Z\"",
        f"mesh: {path}: appliance[1]: name: is missing; add name = \"sensor-1\"",
        f"mesh: {path}: appliance[2]: backoff_cap: is a shard setting; set it once, before the first [[appliance]]",
        f"mesh: {path}: appliance[2]: role: unknown role 'toaster'; known roles: sensor, management-console, ha-console, forwarding-target",
        f"mesh: {path}: appliance[2]: connects_to.c: 'local' names no appliance of this shard; give its address, \"host:port\"",
        f"mesh: {path}: appliance[3]: name: 'b' is already appliance[2]; give each appliance its own name",
    ]


def test_local_is_only_for_shards(tmp_path, capsys):
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\n[connects_to]\nb = "local"\n')
    assert main(["node", "--config", str(path)]) == 2
    assert "connects_to.b: 'local' names no appliance of this shard" in capsys.readouterr().err


def test_the_readme_shard_config_loads(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### Several appliances in one process", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    example = example.replace('"127.0.0.1:8443"', '"127.0.0.1:0"')
    shard = load_shard(_write(tmp_path, example))
    assert [n.spec.name for n in shard.nodes] == ["console", "sensor-1"]


def test_a_shard_process_runs_its_appliances_and_links_them_in_process(tmp_path):
    path = _write(tmp_path, """\
start = "2027-01-15T09:00:00Z"
backoff_cap = 1

[[appliance]]
name = "console"
role = "management-console"
api = false

[[appliance]]
name = "sensor-1"
role = "sensor"
api = false
[appliance.connects_to]
console = "local"
""")
    with subprocess.Popen(
        [sys.executable, "-m", "mesh", "node", "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as process:
        started, outcome = set(), None
        try:
            assert process.stdout is not None
            for line in process.stdout:
                event = json.loads(line)
                if event["kind"] == "appliance-started":
                    started.add(event["appliance"])
                if event["kind"] in ("link-up", "link-halted") and event["dialer"] == "sensor-1":
                    outcome = event
                    break
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
    assert started == {"console", "sensor-1"}
    # Both self-signed, trusting nothing: the link has an outcome all the same.
    assert outcome is not None and outcome["listener"] == "console"
    assert process.returncode == 0


def test_appliances_trusting_the_same_file_hold_the_same_anchor_objects(tmp_path, keys, epoch):
    """So they share one verifier and its memos: each with its own parsed
    anchors, every sensor of a shard searched the console's chain itself."""
    from mesh.pki import files
    from mesh.pki.issue import CertificateAuthority

    root = CertificateAuthority.root("Shard Root CA", not_before=epoch, key=keys(2048))
    (tmp_path / "root.crt").write_bytes(files.certificate_bytes(root.cert))
    text = SHARD.replace('role = "management-console"', 'role = "management-console"\ntrust = "root.crt"')
    text = text.replace('role = "sensor"', 'role = "sensor"\ntrust = ["root.crt"]')
    shard = load_shard(_write(tmp_path, text))
    console, sensor = (node.spec.trust for node in shard.nodes)
    assert len(console) == 1 and console[0] is sensor[0]
