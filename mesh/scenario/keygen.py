"""The RSA keys a scenario will ask for, made before its PKI is built.

Key generation is most of what building a large deployment costs (about
70 ms per RSA-2048 key here) and it holds the GIL, so threads do not help.
The keys the PKI will ask for are estimated up front and taken from the
persistent key cache (``mesh.pki.key_cache``), which generates what it lacks
on every CPU at once and keeps it for the next run: the second run of a big
scenario generates nothing. This deliberately gives up an older promise of
this module, that keys never touch the disk: the cache holds unencrypted
test keys for emulated appliances (0600, in a 0700 folder). ``mesh run
--fresh-keys`` (``cache=None`` here) keeps to the old way: new keys, made in
worker processes and handed over in memory only.
"""

from __future__ import annotations

from collections import Counter

from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.pki.faults import recipe
from mesh.pki.issue import KeySource, new_key
from mesh.pki.key_cache import PARALLEL_FROM, KeyCache, generate_keys, load_trusted_key
from mesh.scenario.model import Scenario

__all__ = ["PARALLEL_FROM", "estimate", "parallel_keys", "keys_for"]

#: CA keys a PKI may ask for: root, issuing, unrelated root, and the
#: dedicated intermediates of the CA faults.
_CA_KEYS = 5


def estimate(scenario: Scenario) -> Counter[int]:
    """How many keys of each size building and playing ``scenario`` will take."""
    need: Counter[int] = Counter({2048: _CA_KEYS})
    size = scenario.pki.key_size
    for appliance in scenario.appliances:
        need[recipe(appliance.certificate).key_bits or size] += 1
        if appliance.valid_for is not None:
            need[size] += 1
    for step in scenario.steps:
        if step.action == "upload":
            need[recipe(step.certificate).key_bits or size] += 1
    return need


def parallel_keys(need: Counter[int], *, workers: int | None = None) -> KeySource:
    """A KeySource whose first keys of each size were made in parallel, in memory only."""
    sizes = [bits for bits, n in sorted(need.items()) for _ in range(n)]
    ready: dict[int, list[rsa.RSAPrivateKey]] = {}
    for bits, der in zip(sizes, generate_keys(sizes, workers=workers)):
        ready.setdefault(bits, []).append(load_trusted_key(der))

    def take(bits: int) -> rsa.RSAPrivateKey:
        stock = ready.get(bits)
        return stock.pop() if stock else new_key(bits)

    return take


def keys_for(scenario: Scenario, *, cache: KeyCache | None) -> KeySource | None:
    """The keys of ``scenario``: from ``cache``; without one, made in parallel when
    the scenario is big enough (None: let the PKI make each on demand)."""
    need = estimate(scenario)
    if cache is not None:
        return cache.source(need)
    if sum(need.values()) < PARALLEL_FROM:
        return None
    return parallel_keys(need)
