"""Cyclic garbage collector settings while a mesh runs.

Why: a mesh of thousands of appliances keeps hundreds of thousands of
long-lived objects (certificates, contexts, tasks, link records) while every
connection start allocates many short-lived ones. With CPython's default
thresholds (700, 10, 10) the collector runs a young collection every 700
allocations and keeps re-scanning the growing old generation: measured at
1,000 sensors (``python -m mesh.bench --only engine``), about half of the
bring-up time was spent in the collector (14.7 s with the defaults, 7.4 s
with the thresholds below).

Reference counting still frees almost everything at once; only garbage in
reference cycles (exception tracebacks, mostly) waits longer for a
collection. The previous thresholds come back when the mesh stops.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator

__all__ = ["MESH_THRESHOLDS", "collector_tuned"]

#: Young collections every 10,000 allocations; a full one after 20 x 100 of them.
MESH_THRESHOLDS = (10_000, 20, 100)


@contextlib.contextmanager
def collector_tuned() -> Iterator[None]:
    """Raise the collector's thresholds (never lower them) for the ``with`` block."""
    before = gc.get_threshold()
    gc.set_threshold(*(max(old, new) for old, new in zip(before, MESH_THRESHOLDS)))
    try:
        yield
    finally:
        gc.set_threshold(*before)
