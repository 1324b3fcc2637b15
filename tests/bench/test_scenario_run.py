"""The scenario measurement: a user's ``mesh run -q``, cold and warm key cache, against its floor.

Real child processes (``python -m mesh run``, the engine's floor in a
spawned worker); ``--quick`` runs the packaged scenario with 20 sensors.
Nothing here asserts on timing.
"""

from __future__ import annotations

import pstats

import pytest

from mesh.bench.harness import run
from mesh.bench.scenario_run import play, scenario_file
from mesh.roles import Role
from mesh.scenario.load import load_scenario

COLD = "20 sensors: first run (empty key cache)"
WARM = "20 sensors: second run (warm key cache)"


def test_the_packaged_scenario_is_the_shape_users_run(tmp_path):
    full = load_scenario(scenario_file(tmp_path / "full"))
    sensors = [a for a in full.appliances if a.role == Role.SENSOR.value]
    assert len(sensors) == 1_000
    assert len(full.links()) == 1_001  # every sensor, and the HA console, to the console
    assert ("ha.contoso.test", "cm.contoso.test") in full.links()
    assert [s.action for s in full.steps] == ["revoke", "crl-down", "advance", "crl-up"]
    assert len(full.expectations) == 1

    quick = load_scenario(scenario_file(tmp_path / "quick", 20))
    assert len(quick.links()) == 21
    assert quick.steps == full.steps and quick.expectations == full.expectations


def test_quick_run_records_both_runs_and_the_warm_one_generates_no_key(tmp_path, keys):
    results = run(["scenario"], quick=True, workdir=tmp_path, log=lambda line: None, keys=keys)
    assert results.status == {"scenario": "ok"}
    figures = {f.name: f for f in results.figures if f.measurement == "scenario"}
    for name in (COLD, WARM, f"{COLD}, child CPU", f"{WARM}, child CPU", "20 sensors: floor",
                 f"{COLD} / floor", f"{WARM} / floor"):
        assert figures[name].value > 0, name
    # One key per appliance at least, all stored by the cold run; the warm
    # run found them there and left the cache file as it was.
    assert figures[f"{COLD}, keys generated"].value >= 22
    assert figures[f"{WARM}, keys generated"].value == 0
    assert figures[f"{WARM}, keys generated"].note == "cache file unchanged"
    floor = figures["20 sensors: floor"].value
    handshake = figures["CPU per mutual-TLS handshake, both ends here"].value / 1000
    assert floor == pytest.approx(21 * 5 * handshake)
    # The target is the 1,000-sensor scenario's: a quick run does not judge it.
    target = next(t for t in results.targets if "1,000-sensor scenario" in t.name)
    assert target.value is None and target.verdict == "not measured"


def test_a_run_that_does_not_exit_0_fails_with_the_end_of_its_output(tmp_path):
    scenario = tmp_path / "wrong.toml"
    scenario.write_text(
        '[[appliance]]\nname = "cm.test"\nrole = "management-console"\n\n'
        '[[appliance]]\nname = "s.test"\nrole = "sensor"\nconnects_to = ["cm.test"]\n\n'
        '[[expect]]\nlink = "s.test -> cm.test"\nstate = "halted"\ncode = "revoked"\n'
    )
    with pytest.raises(RuntimeError, match=r"mesh run -q wrong.toml exited 1:\n(.|\n)*FAIL"):
        play(scenario, tmp_path / "keys")



def test_profile_profiles_the_second_run_in_its_own_process(tmp_path, keys):
    lines: list[str] = []
    results = run(["scenario"], quick=True, workdir=tmp_path / "w", log=lines.append, keys=keys,
                  profile=tmp_path / "prof")
    assert results.status == {"scenario": "ok"}
    stats = tmp_path / "prof" / "scenario-second-run.pstats"
    assert f"profile written to {stats}" in "\n".join(lines)
    profiled = pstats.Stats(str(stats)).stats  # type: ignore[attr-defined]
    assert any(filename.endswith("mesh/scenario/runner.py") for filename, _, _ in profiled)
