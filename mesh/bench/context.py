"""The state one benchmark run shares between its measurements."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Callable, TypeVar, TypeVarTuple

from mesh.bench.bigcrl import CrlCache
from mesh.bench.material import Material
from mesh.bench.procstat import free_port
from mesh.bench.record import Figure, Results
from mesh.pki.issue import KeySource
from mesh.pki.keys import KeyPool

__all__ = ["Bench", "Unavailable", "best_of", "fmt"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Unavailable(Exception):
    """A measurement cannot run here (a module not built yet, a tool missing)."""


class Bench:
    """Run-wide settings, shared certificates, cached large CRLs and the results."""

    def __init__(
        self,
        *,
        quick: bool,
        workdir: Path,
        results: Results,
        log: Callable[[str], object] = print,
        keys: KeySource | None = None,
        profile: Path | None = None,
    ) -> None:
        self.quick = quick
        #: ``--profile DIR``: a measurement whose work runs in a child process
        #: profiles the child there (the harness profiles this process).
        self.profile = profile
        self.workdir = workdir
        self.results = results
        self.log = log
        self._keys = keys if keys is not None else KeyPool().cursor()
        self._material: dict[int, Material] = {}
        #: Where the certificates' CRL Distribution Points point: a port picked
        #: now, on which measurements that fetch run a CrlServer.
        self.crl_port = free_port()
        self._crls: CrlCache | None = None

    @property
    def keys(self) -> KeySource:
        """The run's KeySource: each key made once, unique within a call sequence."""
        return self._keys

    def pick(self, full: T, quick: T) -> T:
        """``full`` in a normal run, ``quick`` under ``--quick``."""
        return quick if self.quick else full

    @property
    def crl_sizes(self) -> tuple[int, ...]:
        return self.pick((1_000, 100_000, 1_000_000), (1_000, 10_000))

    @property
    def big_crl_size(self) -> int:
        return self.crl_sizes[-1]

    def material(self, bits: int = 2048) -> Material:
        if bits not in self._material:
            self._material[bits] = Material.build(
                bits,
                self._keys,
                self.workdir / "pki",
                crl_base_url=f"http://127.0.0.1:{self.crl_port}/crl",
            )
        return self._material[bits]

    @property
    def crls(self) -> CrlCache:
        """Large CRLs of the 2048-bit issuing CA, none listing the bench leaves."""
        if self._crls is None:
            material = self.material(2048)
            self._crls = CrlCache(
                material.issuing,
                self.workdir / "crl",
                this_update=material.at - dt.timedelta(hours=1),
                avoid=material.leaf_serials,
            )
        return self._crls

    def record(self, measurement: str, name: str, value: float, unit: str, note: str = "") -> Figure:
        figure = self.results.add(
            Figure(measurement=measurement, name=name, value=value, unit=unit, note=note)
        )
        self.log(f"  {name}: {fmt(value)} {unit}" + (f"  ({note})" if note else ""))
        return figure


def fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def best_of(repeat: int, fn: Callable[[*Ts], object], *args: *Ts) -> float:
    """The fastest of ``repeat`` timed calls, in seconds (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - started)
    return best
