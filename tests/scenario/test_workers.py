"""``mesh run --workers N``: the scenario's appliances spread over N shard processes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mesh.cli import main
from mesh.errors import InputError
from mesh.scenario.load import load_scenario
from mesh.scenario.processes import run_in_processes
from mesh.scenario.runner import run_scenario
from mesh.scenario.shards import MAX_SOCKETS, plan_shards, sockets

LIBRARY = Path(__file__).resolve().parents[2] / "scenarios"


def rows(links):
    return [(row.link, row.state, row.code) for row in links]


def _star(sensors):
    names = ["console"] + [f"s{n}" for n in range(sensors)]
    return names, [(f"s{n}", "console") for n in range(sensors)]


def _four_consoles(sensors):
    """Consoles a-d, each with ``sensors`` sensors a0, a1, ... dialing it."""
    names, links = [], []
    for console in "abcd":
        names.append(console)
        for n in range(sensors):
            names.append(f"{console}{n}")
            links.append((f"{console}{n}", console))
    return names, links


def test_listeners_come_first_and_shards_are_even():
    names = ["s1", "s2", "s3", "console", "siem"]
    links = [("s1", "console"), ("s2", "console"), ("s3", "console"), ("console", "siem")]
    assert plan_shards(names, links, 2, where="x") == [["siem", "console", "s1"], ["s2", "s3"]]


def test_one_worker_per_appliance_is_the_processes_case():
    names, links = _star(3)
    assert plan_shards(names, links, 4, where="x") == [["console"], ["s0"], ["s1"], ["s2"]]
    assert plan_shards(names, links, 9, where="x") == [["console"], ["s0"], ["s1"], ["s2"]]


def test_a_link_within_a_shard_costs_two_sockets_and_across_one():
    links = [("a", "b"), ("c", "b")]
    assert sockets(["a", "b"], links) == 3


def test_a_worker_over_the_descriptor_budget_gets_company():
    names, links = _star(10_000)
    shards = plan_shards(names, links, 1, where="x")
    assert len(shards) == 2
    assert max(sockets(shard, links) for shard in shards) <= MAX_SOCKETS


def test_an_appliance_over_the_budget_on_its_own_is_one_line():
    names, links = _star(18_001)
    with pytest.raises(InputError) as caught:
        plan_shards(names, links, 2, where="big.toml")
    assert caught.value.line() == (
        "big.toml: console has 18001 links, more sockets than one worker may hold "
        f"(at most {MAX_SOCKETS} of its 20,000 file descriptors); spread its links over more appliances"
    )


def test_workers_with_processes_is_one_line(capsys):
    path = str(LIBRARY / "showcase.toml")
    assert main(["run", "--workers", "2", "--processes", path]) == 2
    assert capsys.readouterr().err == (
        "mesh: --workers: cannot be combined with --processes; drop one of them "
        "(--processes is one appliance per process)\n"
    )


def test_appliances_the_network_policy_names_get_shards_of_their_own():
    """On hosts a kernel rule is per host: a blocked appliance must not share one."""
    names = ["cm", "a", "b", "c", "d"]
    links = [(n, "cm") for n in names[1:]]
    assert plan_shards(names, links, 1, where="x.toml", alone={"b", "cm"}) == [
        ["cm"], ["b"], ["a", "c", "d"]]
    assert plan_shards(names, links, 3, where="x.toml", alone=set(names)) == [[n] for n in names]


def test_workers_must_be_a_count_or_auto(capsys):
    with pytest.raises(SystemExit) as exiting:
        main(["run", "--workers", "0", str(LIBRARY / "showcase.toml")])
    assert exiting.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "mesh run: error: argument --workers: '0' is not a number of workers; give 1 or more, or auto"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["troubleshoot-revoked", "showcase"])
async def test_two_workers_give_the_same_link_table_as_in_process(name, keys, key_pool):
    scenario = load_scenario(LIBRARY / f"{name}.toml")
    inside = await run_scenario(scenario, keys=keys)
    sink = io.StringIO()
    apart = await run_in_processes(scenario, keys=key_pool.cursor(), sink=sink, workers=2)
    assert apart.mode == "workers"
    started = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert {e["appliance"] for e in started if e["kind"] == "appliance-started"} == {
        a.name for a in scenario.appliances
    }
    assert rows(apart.links) == rows(inside.links)
    assert rows(apart.start_links) == rows(inside.start_links)
    if name != "showcase":
        # The showcase's CRL server goes down: a process restarted for the
        # step has no cached CRL, as under --processes (by design, see
        # mesh.scenario.processes); its final table agrees again.
        assert [rows(s.links) for s in apart.steps] == [rows(s.links) for s in inside.steps]
        assert apart.ok, [v.to_json() for v in apart.failures]


async def test_more_workers_than_make_sense_is_one_line():
    from mesh.scenario.load import loads_scenario
    from mesh.scenario.processes import MAX_NODES

    scenario = loads_scenario(
        f'[[appliance]]\nname = "s{{n}}.test"\nrole = "sensor"\ncount = {MAX_NODES + 1}\n',
        source="fleet.toml",
    )
    with pytest.raises(InputError) as info:
        await run_in_processes(scenario, workers=MAX_NODES + 1)
    assert info.value.line() == (
        f"--workers: {MAX_NODES + 1} shard processes are too many "
        f"(a Python process each; at most {MAX_NODES}); give fewer"
    )


def test_groups_of_linked_appliances_stay_whole_when_each_fits_its_share():
    # Four consoles with their sensors over four workers: no link between workers.
    names, links = _four_consoles(3)
    shards = plan_shards(names, links, 4, where="x")
    assert shards == [[c, f"{c}0", f"{c}1", f"{c}2"] for c in "abcd"]
    assert sum(sockets(shard, links) for shard in shards) == 2 * len(links)


def test_a_fleet_of_four_big_consoles_plans_quickly_and_within_the_budget():
    # 20,000 sensors: the plan that once took minutes (all consoles in the
    # first run of a contiguous cut, then one more worker at a time).
    names, links = _four_consoles(5_000)
    for workers in (1, 2, 4):
        shards = plan_shards(names, links, workers, where="x")
        assert [len(shard) for shard in shards] == [5_001] * 4
        assert [sockets(shard, links) for shard in shards] == [10_000] * 4
