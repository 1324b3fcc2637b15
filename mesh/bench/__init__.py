"""``python -m mesh.bench``: how fast mesh is, measured against OpenSSL in one run.

Each measurement is a module with a ``NAME`` and a ``run(bench)`` function;
:mod:`mesh.bench.harness` runs them in order, prints a table, judges the
targets (ratios within the run) and writes ``bench/results.json``.
"""

from mesh.bench.harness import MEASUREMENTS, main
from mesh.bench.record import Figure, Results, Target

__all__ = ["MEASUREMENTS", "main", "Figure", "Results", "Target"]
