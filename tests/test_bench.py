"""Smoke test of ``python -m mesh.bench``: it runs, and its results have the promised shape.

Figures from ``--quick`` are not meaningful and nothing here asserts on timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

from cryptography.hazmat.primitives import serialization

from mesh.bench import MEASUREMENTS, main
from mesh.bench.harness import render, run
from mesh.bench.bigcrl import CrlCache
from mesh.bench.material import Material
from mesh.validation.revocation import CrlIndex


def _shape(data: dict) -> None:
    assert set(data) >= {"started", "quick", "seconds", "machine", "status", "figures", "targets"}
    assert data["machine"]["nproc"] >= 1
    assert "OpenSSL" in data["machine"]["openssl_stdlib_ssl"]
    for figure in data["figures"]:
        assert set(figure) >= {"measurement", "name", "value", "unit"}
        assert isinstance(figure["value"], (int, float))
        assert figure["measurement"] in MEASUREMENTS
    for target in data["targets"]:
        assert set(target) >= {"name", "goal", "value", "met", "basis"}
        assert target["met"] in (True, False, None)
        if target["value"] is None:
            assert target["met"] is None


def test_quick_crl_run_writes_results(tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["--quick", "--only", "crl", "--out", str(out), "--workdir", str(tmp_path / "w")]) == 0
    data = json.loads(out.read_text())
    _shape(data)
    assert data["quick"] is True
    assert data["status"] == {"crl": "ok"}
    names = {f["name"] for f in data["figures"]}
    assert "1,000: lookup miss (CrlIndex.is_revoked)" in names
    assert "targets" in capsys.readouterr().out


def test_profile_writes_stats(tmp_path, capsys):
    out = tmp_path / "results.json"
    args = ["--quick", "--only", "crl", "--out", str(out), "--profile", str(tmp_path / "prof")]
    assert main(args) == 0
    assert (tmp_path / "prof" / "crl.pstats").stat().st_size > 0
    assert "own time by package" in capsys.readouterr().err


def test_quick_run_of_every_measurement(tmp_path, keys):
    """Every measurement runs end to end in --quick mode and reports, none fails."""
    results = run(list(MEASUREMENTS), quick=True, workdir=tmp_path, log=lambda line: None, keys=keys)
    out = tmp_path / "results.json"
    results.write(out)
    data = json.loads(out.read_text())
    _shape(data)
    assert set(MEASUREMENTS) <= set(data["status"])
    failed = {k: v for k, v in data["status"].items() if v.startswith("failed")}
    assert not failed
    measured = {f["measurement"] for f in data["figures"]}
    assert {"crl", "openssl", "stdlib", "handshake", "rsa", "stall", "engine", "nodes", "scenario",
            "workers"} <= measured
    by_name = {t["name"]: t for t in data["targets"]}
    # Ratios within the run exist even in quick mode; their verdicts are not asserted.
    assert by_name["validated handshakes vs openssl s_server/s_time pair"]["value"] is not None
    assert "two mesh node processes vs one" not in by_name  # replaced by the workers figure
    # The engine's targets are ratios to the floor measured in the same run.
    engine = {f["name"]: f["value"] for f in data["figures"] if f["measurement"] == "engine"}
    assert engine["20 sensors: bring-up / floor"] > 0
    assert "20 sensors: RSS per link beyond the TLS floor" in engine
    assert engine["bare link / floor"] > 0  # how much of the 2x a link's transport takes
    assert engine["bare link: CPU per link, both ends here"] > 0
    assert {"5,000 sensors up in one process vs the handshake floor",
            "memory per link beyond the TLS floor at 5,000 sensors"} <= set(by_name)
    assert not {"5,000 sensors up in one process", "memory per link at 5,000 sensors"} & set(by_name)
    figures = {f["name"]: f["value"] for f in data["figures"] if f["measurement"] == "workers"}
    assert figures["20 sensors over 4 workers: links"] == 21
    assert figures["20 sensors over 4 workers: bring-up rate / two cores' floor"] > 0
    table = render(results)
    assert "== targets" in table
    assert "goal >= 0.9 x" in table


def test_big_crl_is_a_signed_crl_openssl_accepts(tmp_path, keys):
    material = Material.build(2048, keys, tmp_path / "pki")
    cache = CrlCache(material.issuing, tmp_path / "crl", this_update=material.at, avoid=material.leaf_serials)
    data = cache.der(500)
    assert cache.der(500) == data  # read back, not rebuilt
    index = CrlIndex.from_bytes(data)
    assert len(index) == 500
    assert index.signed_by(material.issuing.cert)
    assert not any(index.is_revoked(s) for s in material.leaf_serials)
    issuing_pem = tmp_path / "issuing.crt"
    issuing_pem.write_bytes(material.issuing.cert.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(cache.path(500)), "-noout",
         "-CAfile", str(issuing_pem)],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "verify OK" in done.stderr + done.stdout


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "mesh.bench", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "--quick" in done.stdout and "--only" in done.stdout


def test_unwritable_paths_are_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["--quick", "--only", "crl", "--workdir", str(blocker / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mesh.bench: --workdir ") and "Traceback" not in "".join(err)
    out = blocker / "results.json"
    assert main(["--quick", "--only", "crl", "--out", str(out), "--workdir", str(tmp_path / "w")]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("mesh.bench: --out ")
