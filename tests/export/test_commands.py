"""``mesh export kubernetes``: the files written, their modes, and what is refused in one line."""

from __future__ import annotations

import base64
import stat
import subprocess
import sys

import pytest
import yaml

from mesh.cli import export as cli_export
from mesh.cli import main
from mesh.export import kubernetes, unpack
from tests.export.conftest import FLEET

SIMPLE = """\
[scenario]
name = "simple"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]
"""


def _scenario(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_parsers_copies_of_the_defaults_are_the_modules():
    assert cli_export.DEFAULT_IMAGE == kubernetes.DEFAULT_IMAGE
    assert cli_export.KUBERNETES_VERSION == kubernetes.KUBERNETES_VERSION


def test_it_writes_the_kustomization_with_private_files_0600(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", "kubernetes", str(_scenario(tmp_path, FLEET)), "--out", str(out),
                 "--workers", "2", "--namespace", "lab"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == (f"mesh: wrote {out}/kustomization.yaml and 12 files: 13 appliances in 6 shards, "
                       "namespace lab")
    assert said[1] == "mesh: 6 shards, not 2: the 4 appliances [[block]] rules name run alone"
    assert said[-1].startswith(f"mesh: deploy: kubectl apply -k {out}")
    listed = yaml.safe_load((out / "kustomization.yaml").read_text())["resources"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*listed, "kustomization.yaml", "Containerfile"])
    for path in out.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        holds_keys = b"kind: Secret" in path.read_bytes()
        assert (mode == 0o600) if holds_keys else not (mode & 0o077 & ~0o044), (path.name, oct(mode))
    assert yaml.safe_load((out / "namespace.yaml").read_text())["metadata"]["name"] == "lab"


def test_a_folder_that_is_not_empty_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.yaml").write_text("x")
    assert main(["export", "kubernetes", str(_scenario(tmp_path, SIMPLE)), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"mesh: {out}: already exists and is not an empty folder; give a new folder to --out "
        "(stale manifests would linger there)\n")


@pytest.mark.parametrize("extra, line", [
    ('[[block]]\nfrom = "sensor-1.contoso.test"\nto = "proxy"\n',
     "s.toml: block[1]: names the proxy, which a Kubernetes fleet does not have; remove it, or play "
     "the scenario with mesh run"),
    ('[pki]\ncrl_proxy_only = true\n',
     "s.toml: crl_proxy: cannot be exported to Kubernetes (the CRL proxy runs inside a runner); "
     "remove it, or play the scenario with mesh run"),
])
def test_what_cannot_be_a_manifest_is_one_line_and_exit_2(tmp_path, capsys, extra, line, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _scenario(tmp_path, SIMPLE + extra)
    assert main(["export", "kubernetes", "s.toml", "--out", "out"]) == 2
    assert capsys.readouterr().err == f"mesh: {line}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("step", [
    'action = "block"\nfrom = "sensor-1.contoso.test"\nto = "crl"',
    'action = "unblock"\nfrom = "sensor-1.contoso.test"\nto = "crl"',
    'action = "partition"\nbetween = [["sensor-1.contoso.test"], ["cm.contoso.test"]]',
    'action = "heal"',
    'action = "loss"\ntarget = "crl"\npercent = 20',
    'action = "bandwidth"\ntarget = "crl"\nrate = "2.5Mbit"',
])
def test_timeline_network_steps_are_refused_in_one_line(tmp_path, capsys, monkeypatch, step):
    monkeypatch.chdir(tmp_path)
    _scenario(tmp_path, SIMPLE + f'[[step]]\nafter = "1h"\n{step}\n')
    assert main(["export", "kubernetes", "s.toml", "--out", "out"]) == 2
    word = step.split('"')[1]
    assert capsys.readouterr().err == (
        f"mesh: s.toml: step[1] {word}: cannot be exported to Kubernetes (NetworkPolicies are "
        "fixed when applied; write it as a [[block]] in force from the start); remove it, "
        "or play the scenario with mesh run\n")
    assert word in kubernetes.NETWORK_STEPS


def test_crl_fault_steps_export_for_the_driver_to_play_through_the_crl_servers_api(tmp_path):
    """crl-down/up/slow/garbage: ``mesh run --inventory`` switches them with ``[crl]``."""
    from mesh.scenario.inventory import check_inventory, load_inventory
    from mesh.scenario.load import load_scenario

    steps = "".join(f'[[step]]\nafter = "1h"\naction = "{word}"\n'
                    for word in ("crl-down", "crl-up", "crl-slow", "crl-garbage", "crl-up"))
    path = _scenario(tmp_path, SIMPLE + steps)
    out = tmp_path / "out"
    assert main(["export", "kubernetes", str(path), "--out", str(out), "--workers", "1"]) == 0
    driver = [d for d in yaml.safe_load_all((out / "driver.yaml").read_text()) if d]
    parts = {k: v for d in driver if d["kind"] == "Secret" for k, v in d["data"].items()}
    source, work = tmp_path / "mounted", tmp_path / "work"
    source.mkdir()
    work.mkdir()
    for key, value in parts.items():
        (source / key).write_bytes(base64.b64decode(value))
    unpack.unpack(source, work)  # what the Job's first container does
    inventory = load_inventory(work / "inventory.toml")
    assert inventory.crl is not None
    check_inventory(inventory, load_scenario(work / "scenario.toml"))
    assert not (set(kubernetes.NETWORK_STEPS) & {"crl-down", "crl-up", "crl-slow", "crl-garbage"})


def test_a_starting_key_with_a_passphrase_is_refused(tmp_path, capsys):
    text = SIMPLE.replace('role = "sensor"', 'role = "sensor"\ncertificate = "wrong-passphrase"')
    assert main(["export", "kubernetes", str(_scenario(tmp_path, text)), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "appliance 'sensor-1.contoso.test': starts with a key that " \
        "needs a passphrase (wrong-passphrase)" in err


def test_an_appliance_name_kubernetes_cannot_take_is_one_line(tmp_path, capsys):
    text = SIMPLE.replace("sensor-1.contoso.test", "1sensor.contoso.test")
    assert main(["export", "kubernetes", str(_scenario(tmp_path, text)), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (
        f"mesh: {tmp_path}/s.toml: appliance '1sensor.contoso.test': its Service name "
        "'1sensor-contoso-test' does not start with a letter; rename the appliance: letters, digits, '-' and '.', starting with a letter, at most 63 "
        "characters once dots become dashes\n")


def test_mesh_export_kubernetes_runs_as_a_command(tmp_path):
    scenario = _scenario(tmp_path, SIMPLE)
    done = subprocess.run([sys.executable, "-m", "mesh", "export", "kubernetes", str(scenario),
                           "--out", str(tmp_path / "out"), "--workers", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "2 appliances in 1 shards, namespace mesh-simple" in done.stdout
    assert (tmp_path / "out" / "mesh-shard-0.yaml").is_file()
