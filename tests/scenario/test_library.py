"""The scenario library in ``scenarios/``: every file is sound."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.scenario.load import load_scenario, loads_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"
FILES = sorted(LIBRARY.glob("*.toml"))


def test_the_library_is_there():
    names = {p.stem for p in FILES}
    assert "showcase" in names
    rows = ["passphrase-mismatch", "chain-untrusted", "expired", "not-yet-valid", "revoked",
            "crl-unreachable", "validation-failed"]
    for row in rows:
        assert f"troubleshoot-{row}" in names
        assert f"troubleshoot-{row}-validation-off" in names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_every_library_scenario_loads(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert scenario.expectations, "a library scenario states what it expects"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_every_library_scenario_passes(path, keys):
    from mesh.scenario.runner import run_scenario

    result = await run_scenario(load_scenario(path), keys=keys)
    failures = [
        f"expect[{v.index}] {v.subject}: expected {v.expected} {v.when}, got {v.actual}"
        for v in result.failures
    ]
    assert result.ok, failures


async def test_the_readme_scenario_example_holds(keys):
    from mesh.scenario.runner import run_scenario

    readme = (LIBRARY.parent / "README.md").read_text()
    example = readme.split("## Scenarios", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = loads_scenario(example, source="README.md")
    assert scenario.name == "revoked-sensor"
    result = await run_scenario(scenario, keys=keys)
    assert result.ok and result.expectations[0].expected == "halted/revoked"
