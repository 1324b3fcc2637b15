"""Run the measurements, print the table, judge the targets, write the results.

``python -m mesh.bench`` (``make bench``) runs everything in a few minutes on
two cores; ``--quick`` shrinks every size and duration so the smoke test
finishes in seconds (its figures mean nothing); ``--only NAME`` runs one
measurement; ``--profile DIR`` runs each under cProfile and prints where the
time goes. A measurement whose module or tool is missing is reported as
skipped, never as a made-up number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

from mesh.bench.context import Bench, Unavailable, fmt
from mesh.bench.profiling import profiled
from mesh.bench.record import Results, loadavg
from mesh.pki.issue import KeySource
from mesh.bench.targets import judge

__all__ = ["MEASUREMENTS", "main", "run", "render"]

#: name -> module, in the order they run (cheap and independent first).
MEASUREMENTS: dict[str, str] = {
    "crl": "mesh.bench.crl",
    "openssl": "mesh.bench.openssl_pair",
    "stdlib": "mesh.bench.stdlib_tls",
    "handshake": "mesh.bench.handshake",
    "rsa": "mesh.bench.rsa_size",
    "stall": "mesh.bench.stall",
    "engine": "mesh.bench.engine",
    "nodes": "mesh.bench.nodes",
    "scenario": "mesh.bench.scenario_run",
    "workers": "mesh.bench.workers",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mesh.bench",
        description="Measure mesh's handshakes, CRL handling and engine against OpenSSL.",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="tiny sizes and durations, for the smoke test (figures are not meaningful)",
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(MEASUREMENTS), metavar="NAME",
        help=f"run only this measurement (repeatable): {', '.join(MEASUREMENTS)}",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("bench/results.json"),
        help="where to write the JSON results (default: bench/results.json)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR",
        help="run each measurement under cProfile; write DIR/NAME.pstats and print where time "
        "goes (the scenario's second `mesh run` is profiled in its own process too)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None,
        help="keep certificates and CRLs here instead of a temporary directory",
    )
    return parser


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(
    names: Sequence[str],
    *,
    quick: bool,
    workdir: Path,
    log: Callable[[str], object] = _progress,
    profile: Path | None = None,
    keys: KeySource | None = None,
) -> Results:
    """Run the named measurements in order; return what they recorded.

    ``keys`` lets a test session share its pre-made keys with the run.
    """
    results = Results(quick=quick, started=dt.datetime.now(dt.timezone.utc))
    bench = Bench(quick=quick, workdir=workdir, results=results, log=log, keys=keys, profile=profile)
    began = time.perf_counter()
    for name in names:
        log(f"[{name}]")
        started = time.perf_counter()
        try:
            module = importlib.import_module(MEASUREMENTS[name])
            if profile is None:
                module.run(bench)
            else:
                profiled(lambda: module.run(bench), profile / f"{name}.pstats", log)
        except Unavailable as exc:
            results.status[name] = f"skipped: {exc}"
        except Exception as exc:  # a broken measurement must not hide the others
            traceback.print_exc(file=sys.stderr)
            results.status[name] = f"failed: {type(exc).__name__}: {exc}"
        else:
            results.status[name] = "ok"
        log(f"  -> {results.status[name]} ({time.perf_counter() - started:.1f} s)")
    results.seconds = time.perf_counter() - began
    results.load_after = loadavg()
    results.targets = judge(results)
    return results


def render(results: Results) -> str:
    """The table a person reads at the end of a run."""
    lines: list[str] = []
    width = max([len(f.name) for f in results.figures] + [20])
    current = None
    for figure in results.figures:
        if figure.measurement != current:
            current = figure.measurement
            lines.append(f"\n== {current} ({results.status.get(current, '?')})")
        lines.append(f"  {figure.name:<{width}}  {fmt(figure.value):>12} {figure.unit}")
    for name, status in results.status.items():
        if status != "ok" and not any(f.measurement == name for f in results.figures):
            lines.append(f"\n== {name} ({status})")
    lines.append("\n== targets (ratios within this run)")
    twidth = max(len(t.name) for t in results.targets)
    for target in results.targets:
        value = "-" if target.value is None else fmt(target.value)
        lines.append(
            f"  {target.name:<{twidth}}  {value:>10} {target.unit:<7} goal {target.goal:<12} "
            f"{target.verdict}"
        )
    lines.append(
        f"\n{results.seconds:.0f} s in all; load average before {results.load_before}, "
        f"after {results.load_after} (other work on the machine skews rates)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [n for n in MEASUREMENTS if not args.only or n in args.only]
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(f"mesh.bench: --workdir {workdir}: {exc.strerror}; pick a writable directory",
                  file=sys.stderr)
            return 2
        results = run(names, quick=args.quick, workdir=workdir, profile=args.profile)
    print(render(results))
    try:
        results.write(args.out)
    except OSError as exc:
        print(f"mesh.bench: --out {args.out}: {exc.strerror}; pick a writable path", file=sys.stderr)
        return 2
    print(f"results written to {args.out}")
    failed = [n for n, s in results.status.items() if s.startswith("failed")]
    return 1 if failed else 0
