"""``mesh run --live``: the live view follows the run and ends with the same result."""

from __future__ import annotations

import io
from pathlib import Path

from mesh.scenario.live import live_table, run_live
from mesh.scenario.load import load_scenario
from mesh.scenario.runner import start_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"


async def test_live_run_returns_the_same_verdicts(keys):
    out = io.StringIO()
    result = await run_live(load_scenario(LIBRARY / "troubleshoot-revoked.toml"), pace=0,
                            file=out, keys=keys)
    assert result.ok
    assert [v.met for v in result.expectations] == [True] * 4


async def test_live_table_shows_emulated_time_step_and_states(keys):
    from rich.console import Console

    scenario = load_scenario(LIBRARY / "troubleshoot-expired.toml")
    async with start_scenario(scenario, keys=keys) as run:
        console = Console(file=io.StringIO(), width=120)
        console.print(live_table(run, "step 1/1: +1h upload"))
        text = console.file.getvalue()
    assert "troubleshoot-expired — 2027-01-15 09:00Z — step 1/1" in text
    assert "sensor-1.contoso.test -> cm.contoso.test" in text and "halted" in text and "expired" in text
