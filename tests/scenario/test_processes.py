"""``--processes``: every appliance a ``mesh node`` process; same link table as in-process."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from mesh.scenario.load import load_scenario
from mesh.scenario.processes import run_in_processes
from mesh.scenario.runner import run_scenario

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"

#: A node costs a Python start-up, so the default suite compares a
#: few scenarios that cover a halt, an upload, validation off, a forwarding
#: link, the CRL proxy, per-appliance trust and validator profiles, and CRL
#: files;
#: MESH_PROCESSES_ALL=1 compares the whole library, the table after every step.
QUICK = [
    "troubleshoot-revoked",
    "forwarding-bad-certificate-validation-off",
    "crl-through-proxy",
    "cross-signed-root-migration",
    "crl-files-out-of-band",
]
ALL = sorted(p.stem for p in LIBRARY.glob("*.toml") if not load_scenario(p).needs_hosts)
NAMES = ALL if os.environ.get("MESH_PROCESSES_ALL") == "1" else QUICK


def rows(links):
    return [(row.link, row.state, row.code) for row in links]


def table(result):
    return rows(result.links)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
async def test_processes_give_the_same_link_table_as_in_process(name, keys, key_pool):
    scenario = load_scenario(LIBRARY / f"{name}.toml")
    inside = await run_scenario(scenario, keys=keys)
    sink = io.StringIO()
    calls = []
    apart = await run_in_processes(scenario, keys=key_pool.cursor(), sink=sink,
                                   progress=lambda kind, record, run: calls.append(kind))
    assert apart.mode == "processes"
    assert calls == ["building", "started"] + ["step"] * len(scenario.steps)
    kinds = {json.loads(line)["kind"] for line in sink.getvalue().splitlines()}
    assert {"appliance-started", "link-connecting"} <= kinds
    assert table(apart) == table(inside)
    # The same driver keeps the table after start and after every step for both.
    assert rows(apart.start_links) == rows(inside.start_links) != []
    # Nodes keep their CRL caches across steps, as in one process: every step's table agrees.
    assert [rows(s.links) for s in apart.steps] == [rows(s.links) for s in inside.steps]
    assert apart.ok, [v.to_json() for v in apart.failures]
    # Both keep the certificates they started with (the HTML report's table).
    started = [(c.appliance, c.recipe, c.subject, c.issuer, c.not_after) for c in apart.certificates]
    assert started == [(c.appliance, c.recipe, c.subject, c.issuer, c.not_after)
                       for c in inside.certificates] != []


async def test_a_fleet_too_big_for_processes_is_one_clear_line():
    from mesh.errors import InputError
    from mesh.scenario.load import loads_scenario
    from mesh.scenario.processes import MAX_NODES

    scenario = loads_scenario(
        f'[[appliance]]\nname = "s{{n}}.test"\nrole = "sensor"\ncount = {MAX_NODES + 1}\n',
        source="fleet.toml",
    )
    with pytest.raises(InputError) as info:
        await run_in_processes(scenario)
    assert info.value.line() == (
        f"fleet.toml: has {MAX_NODES + 1} appliances, too many for --processes "
        f"(one Python process each; at most {MAX_NODES}); run it without --processes"
    )


@pytest.mark.slow
async def test_nodes_that_do_not_settle_are_one_line_naming_the_step(key_pool):
    from mesh.scenario.model import ApplianceDef, Scenario, Step
    from mesh.scenario.runner import ScenarioNotSettled

    # Every node is asked to refetch its CRLs from a CRL server that never
    # answers: each check waits the node's CRL timeout (5 s), longer than 3 s.
    cm, s1 = "cm.contoso.test", "sensor-1.contoso.test"
    scenario = Scenario(
        name="stuck",
        appliances=[ApplianceDef(name=cm, role="management-console"),
                    ApplianceDef(name=s1, role="sensor", connects_to=[cm])],
        steps=[Step(action="crl-slow")],
    )
    with pytest.raises(ScenarioNotSettled) as info:
        await run_in_processes(scenario, keys=key_pool.cursor(), settle_timeout=3.0)
    assert info.value.line() == (
        "scenario 'stuck' step 1 (+0s crl-slow): the mesh nodes did not settle within 3 s: "
        f"no outcome yet for {s1} -> {cm}; a peer or CRL server that never answers keeps "
        "a link waiting; check what that step changed"
    )


SOFT_FAIL_UPLOAD = """
[scenario]
name = "soft-fail-upload"
start = 2027-01-15T09:00:00Z

[pki]
crl_validity = "7d"

[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
revocation = "soft"
connects_to = ["cm.contoso.test"]

[[step]]
action = "crl-down"

[[step]]
after = "8d"
action = "upload"
target = "sensor-1.contoso.test"
note = "past the cached CRL's nextUpdate, with the CRL server still down"

[[expect]]
upload_step = 2
verdict = "accepted"
"""


@pytest.mark.slow
async def test_a_soft_fail_upload_is_judged_alike_in_process_and_in_processes(keys, key_pool):
    """The upload check takes the appliance's own policy in both runners: a
    sensor with soft revocation accepts an upload whose CRL is unreachable
    (mesh node processes once judged it with the default, hard-fail policy)."""
    from mesh.scenario.load import loads_scenario

    scenario = loads_scenario(SOFT_FAIL_UPLOAD, source="soft.toml")
    inside = await run_scenario(scenario, keys=keys)
    apart = await run_in_processes(scenario, keys=key_pool.cursor())
    uploads = [(r.outcome, r.code) for r in inside.steps]
    assert uploads == [("done", None), ("accepted", None)]
    assert [(r.outcome, r.code) for r in apart.steps] == uploads
    assert table(apart) == table(inside)
    assert inside.ok and apart.ok



def _children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listing:
            found += [int(child) for child in listing.read().split()]
    return found


@pytest.mark.slow
def test_a_sigkilled_runs_nodes_end_with_it_and_its_folder_is_swept(tmp_path):
    """SIGKILL is the one way out a run cannot see: its nodes must not run on, and
    its private folder (keys included) goes at the next node run."""
    from mesh.scenario.node_folder import sweep
    from tests.killed_runs import TWO_APPLIANCES, sigkill_once_started, wait_ended

    path = tmp_path / "two.toml"
    path.write_text(TWO_APPLIANCES)
    nodes: list[int] = []
    folders: list[Path] = []

    def while_alive(pid: int) -> None:
        nodes.extend(_children(pid))
        assert len(nodes) == 2, nodes
        with open(f"/proc/{nodes[0]}/cmdline") as cmdline:
            config = Path(cmdline.read().split("\0")[-2])  # ... --config FOLDER/NAME.toml
        assert config.parent not in sweep()  # held by its run: left alone
        assert config.exists()
        folders.append(config.parent)

    sigkill_once_started(path, 2, tmp_path, mode="--processes", while_alive=while_alive)
    # The helper's own sweep took the folder; the nodes ended with their run.
    assert folders and not folders[0].exists()
    assert wait_ended(nodes)
