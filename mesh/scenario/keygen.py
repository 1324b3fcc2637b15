"""RSA keys for a big scenario, generated on every CPU at once.

Key generation is most of what building a large deployment costs (about
70 ms per RSA-2048 key here, 200 sensors take 15 s), and it holds the GIL, so
threads do not help. For a fleet, the keys the PKI will ask for are made up
front in worker processes and handed out in order; anything beyond the
estimate is generated on demand. Keys travel from the workers as PKCS#8 DER
over the pool's pipes, in memory only: nothing touches the disk.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.pki.faults import recipe
from mesh.pki.issue import KeySource, new_key
from mesh.scenario.model import Scenario

__all__ = ["PARALLEL_FROM", "estimate", "parallel_keys", "keys_for"]

#: Below this many keys a pool's start-up costs more than it saves.
PARALLEL_FROM = 24

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


def _generate(bits: int) -> bytes:
    return new_key(bits).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def parallel_keys(need: Counter[int], *, workers: int | None = None) -> KeySource:
    """A KeySource whose first keys of each size were made in parallel."""
    sizes = [bits for bits, n in sorted(need.items()) for _ in range(n)]
    # "spawn": the caller may have threads (trio's), which fork does not mix with.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count(), mp_context=context) as pool:
        made = list(pool.map(_generate, sizes, chunksize=4))
    ready: dict[int, list[rsa.RSAPrivateKey]] = {}
    for bits, der in zip(sizes, made):
        key = serialization.load_der_private_key(der, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        ready.setdefault(bits, []).append(key)

    def take(bits: int) -> rsa.RSAPrivateKey:
        stock = ready.get(bits)
        return stock.pop() if stock else new_key(bits)

    return take


def keys_for(scenario: Scenario) -> KeySource | None:
    """Parallel keys when the scenario is big enough and there are CPUs to share; else None."""
    need = estimate(scenario)
    if (os.cpu_count() or 1) < 2 or sum(need.values()) < PARALLEL_FROM:
        return None
    return parallel_keys(need)
