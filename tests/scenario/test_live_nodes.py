"""Nodes started once and driven through their APIs: steps the library does not play.

``stop``/``start`` (``PUT /api/v1/running``), a shard's whole refresh and the
clock, against the in-process run's tables after every step.
"""

from __future__ import annotations

import pytest

from mesh.scenario.fleet import listeners_first, row_of
from mesh.scenario.load import loads_scenario
from mesh.scenario.processes import run_in_processes
from mesh.scenario.runner import run_scenario

STOP_START = """
[scenario]
name = "stop-start"
start = 2027-01-15T09:00:00Z

[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "ha.contoso.test"
role = "ha-console"
connects_to = ["cm.contoso.test"]

[[appliance]]
name = "sensor-{n}.contoso.test"
role = "sensor"
count = 3
connects_to = ["cm.contoso.test"]

[[step]]
action = "stop"
target = "sensor-1.contoso.test"

[[step]]
after = "1h"
action = "stop"
target = "cm.contoso.test"

[[step]]
action = "start"
target = "cm.contoso.test"

[[step]]
after = "400d"
action = "start"
target = "sensor-1.contoso.test"
note = "a year and more later: every certificate has expired"

[[step]]
action = "set-validation"
target = "cm.contoso.test"
enabled = false
"""


def _tables(result):
    return [[(row.link, row.state, row.code) for row in step.links] for step in result.steps]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [None, 2], ids=["processes", "workers-2"])
async def test_stop_start_clock_and_switch_give_the_in_process_tables(keys, key_pool, workers):
    scenario = loads_scenario(STOP_START, source="stop-start.toml")
    inside = await run_scenario(scenario, keys=keys)
    apart = await run_in_processes(scenario, keys=key_pool.cursor(), workers=workers)
    assert [(r.link, r.state, r.code) for r in apart.start_links] == [
        (r.link, r.state, r.code) for r in inside.start_links]
    assert _tables(apart) == _tables(inside)
    # The stops really stopped something, and the jump expired the certificates.
    states = [{state for _, state, _ in table} for table in _tables(inside)]
    assert "down" in states[0] and "halted" in states[3]


def test_listeners_go_in_waves_before_their_dialers():
    links = [("s1", "cm"), ("s2", "cm"), ("cm", "ha"), ("x", "y"), ("y", "x")]
    assert listeners_first(["s1", "s2", "cm", "ha", "x", "y"], links) == [
        ["ha"], ["cm"], ["s1", "s2"], ["x", "y"]]


def test_a_link_document_becomes_the_in_process_row():
    row = row_of({"dialer": "s", "listener": "cm", "state": "up-unvalidated", "code": None,
                  "message": "", "refused_by": None, "unvalidated_by": ["cm"],
                  "would_fail": ["revoked"], "would_fail_messages": ["revoked!"], "notes": []})
    assert (row.state, row.code, row.would_fail) == ("up-unvalidated", "revoked", ("revoked",))
    assert row.message == "validation off on cm; would fail: revoked!"
    halted = row_of({"dialer": "s", "listener": "cm", "state": "halted", "code": "expired",
                     "message": "gone", "refused_by": "cm", "notes": []})
    assert (halted.state, halted.code, halted.refused_by, halted.message) == (
        "halted", "expired", "cm", "gone")
