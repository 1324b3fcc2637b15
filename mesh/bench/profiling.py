"""``--profile DIR``: where a measurement's time goes, by package and by function.

cProfile slows Python code several times more than C code, so the shares it
reports lean toward Python; read them as "where to look", and the harness's
own figures (taken without the profiler) as the truth.
"""

from __future__ import annotations

import cProfile
import pstats
from collections import Counter
from pathlib import Path
from typing import Callable

__all__ = ["profiled", "summarize", "by_package"]


def _bucket(filename: str, function: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/mesh/" in filename:
        return "mesh/" + filename.rsplit("/mesh/", 1)[1]
    if filename == "~" and "poll" in function:
        return "waiting (poll/epoll: I/O, other processes)"
    if filename == "~":
        return "C: " + function.split(" of ")[0].strip("<>")[:60]
    return "stdlib: " + Path(filename).name


def by_package(stats: pstats.Stats, top: int = 15) -> list[tuple[str, float, float]]:
    """(package or mesh module, own seconds, share) — the biggest first."""
    totals: Counter[str] = Counter()
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[_bucket(filename, function)] += row[2]
    whole = sum(totals.values()) or 1.0
    return [(name, secs, secs / whole) for name, secs in totals.most_common(top)]


def profiled(fn: Callable[[], None], path: Path, log: Callable[[str], object]) -> None:
    """Run ``fn`` under cProfile, write ``path`` (pstats), log the top packages and functions."""
    profile = cProfile.Profile()
    try:
        profile.runcall(fn)
    finally:
        path.parent.mkdir(parents=True, exist_ok=True)
        profile.dump_stats(str(path))
        summarize(path, log)


def summarize(path: Path, log: Callable[[str], object]) -> None:
    """Log where a written profile's time went: the top packages and functions."""
    stats = pstats.Stats(str(path))
    log(f"  profile written to {path}; own time by package:")
    for name, secs, share in by_package(stats):
        log(f"    {secs:8.2f} s {share:6.1%}  {name}")
    rows = sorted(
        stats.stats.items(), key=lambda item: item[1][2], reverse=True  # type: ignore[attr-defined]
    )[:10]
    log("  top functions by own time:")
    for (filename, line, function), row in rows:
        log(f"    {row[2]:8.2f} s  {row[1]:>9} calls  {_bucket(filename, function)}:{line} {function}")
