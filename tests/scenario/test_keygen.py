"""Keys for big scenarios, made in worker processes."""

from __future__ import annotations

from collections import Counter

from mesh.scenario.keygen import PARALLEL_FROM, estimate, keys_for, parallel_keys
from mesh.scenario.load import loads_scenario

FLEET = """
[pki]
key_size = 4096
[[appliance]]
name = "cm.test"
role = "management-console"
[[appliance]]
name = "s{n}.test"
role = "sensor"
count = 30
connects_to = ["cm.test"]
[[appliance]]
name = "weak.test"
role = "sensor"
certificate = "weak-key"
[[step]]
action = "upload"
target = "s1.test"
"""


def test_estimate_counts_every_key_the_run_asks_for():
    assert estimate(loads_scenario(FLEET)) == Counter({4096: 32, 2048: 5, 1024: 1})


def test_small_scenarios_do_not_start_a_pool():
    tiny = loads_scenario('[[appliance]]\nname = "a.test"\nrole = "sensor"\n')
    assert sum(estimate(tiny).values()) < PARALLEL_FROM
    assert keys_for(tiny, cache=None) is None


def test_parallel_keys_are_distinct_and_of_the_asked_size():
    take = parallel_keys(Counter({1024: 3}), workers=2)
    keys = [take(1024) for _ in range(4)]  # the fourth is made on demand
    assert [k.key_size for k in keys] == [1024] * 4
    assert len({k.private_numbers().p for k in keys}) == 4
