"""The pytest plugin, exercised the way a team's own suite would use it (pytester)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"

SUITE = f'''
import pytest
from mesh.pytest_plugin import (
    ApplianceDef, Expectation, Scenario, Step, assert_expectations_hold, assert_link,
)

CM, S1 = "cm.contoso.test", "sensor-1.contoso.test"


async def test_a_library_file(mesh_run):
    result = await mesh_run({str(LIBRARY / "troubleshoot-revoked.toml")!r})
    assert_expectations_hold(result)
    assert_link(result, f"{{S1}} -> {{CM}}", state="up")


@pytest.mark.parametrize("validation, state", [(True, "halted"), (False, "up-unvalidated")])
async def test_a_topology_built_in_python(mesh_run, validation, state):
    scenario = Scenario(
        name="pinned",
        appliances=[
            ApplianceDef(name=CM, role="management-console", validation=validation),
            ApplianceDef(name=S1, role="sensor", connects_to=[CM], certificate="expired"),
        ],
    )
    result = await mesh_run(scenario)
    assert_link(result, f"{{S1}} -> {{CM}}", state=state, code="expired")


async def test_toml_text_and_acting_between_steps(mesh_start):
    text = """
    [[appliance]]
    name = "cm.contoso.test"
    role = "management-console"
    [[appliance]]
    name = "sensor-1.contoso.test"
    role = "sensor"
    connects_to = ["cm.contoso.test"]
    """
    async with mesh_start(text) as run:
        assert_link(run, f"{{S1}} -> {{CM}}", state="up")
        await run.step(Step(action="revoke", target=S1))
        assert_link(run, f"{{S1}} -> {{CM}}", state="halted", code="revoked")


async def test_a_wrong_expectation_fails_with_the_actual_state(mesh_run):
    scenario = Scenario(
        name="wrong",
        appliances=[
            ApplianceDef(name=CM, role="management-console"),
            ApplianceDef(name=S1, role="sensor", connects_to=[CM], certificate="revoked"),
        ],
    )
    result = await mesh_run(scenario)
    assert_link(result, f"{{S1}} -> {{CM}}", state="up")
'''


def test_the_plugin_fixtures_and_helpers(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_team_suite=SUITE)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([
        "*AssertionError: link sensor-1.contoso.test -> cm.contoso.test: "
        "state 'halted', expected 'up' (This certificate has been revoked by the CRL*",
    ])


def test_the_readme_example_passes(pytester: pytest.Pytester):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Regression suites with the pytest plugin", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    pytester.makepyfile(test_readme=example)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
