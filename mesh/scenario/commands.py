"""``mesh check`` and ``mesh run``: scenario files from the command line.

Exit status is the contract CI systems read: 0 when every expectation holds,
1 when one fails, 2 when a scenario cannot be used at all (a bad key, a
missing file). Every problem of a bad file is printed, one line each, and no
scenario runs until every file given is sound.

Output stays bounded whatever the mesh's size: one progress line per step on
stderr (never one per link or per event), then the final table, which folds
healthy links when there are many.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import trio

from mesh.errors import InputError
from mesh.scenario.load import ScenarioInvalid, load_scenario
from mesh.scenario.model import Scenario
from mesh.scenario.report import print_result, summary_line, write_json, write_junit
from mesh.scenario.result import RunResult, StepRecord

if TYPE_CHECKING:  # the runner loads the engine
    from mesh.scenario.runner import RunView

__all__ = ["check_command", "run_command"]


def _print_invalid(error: ScenarioInvalid) -> None:
    for line in error.lines():
        print(f"mesh: {line}", file=sys.stderr)


def _load_all(paths: list[str]) -> list[Scenario] | None:
    scenarios, bad = [], False
    for path in paths:
        try:
            scenarios.append(load_scenario(path))
        except ScenarioInvalid as error:
            _print_invalid(error)
            bad = True
    return None if bad else scenarios


def check_command(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            scenario = load_scenario(path)
        except ScenarioInvalid as error:
            _print_invalid(error)
            status = 2
            continue
        print(
            f"ok: {path}: {scenario.name} — {len(scenario.appliances)} appliances, "
            f"{len(scenario.links())} links, {len(scenario.steps)} steps, "
            f"{len(scenario.expectations)} expectations"
        )
    return status


class _Progress:
    """One line per milestone on stderr: bounded whatever the mesh's size."""

    def __init__(self, label: str, *, quiet: bool) -> None:
        self.label = label
        self.quiet = quiet

    def __call__(self, kind: str, record: StepRecord | None, run: RunView | None) -> None:
        if kind == "started" and run is not None:
            # Where the consoles answer is not progress: printed even when quiet.
            from mesh.scenario.consoles import console_lines

            for line in console_lines(run):
                print(f"{self.label} {line}", file=sys.stderr, flush=True)
        if self.quiet:
            return
        if run is None:
            print(f"{self.label} building the PKI and the CRL server", file=sys.stderr, flush=True)
            return
        rows = run.links()
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.state] = counts.get(row.state, 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no links"
        if kind == "started":
            text = f"started {len(run.scenario.appliances)} appliances: {states}"
        else:
            assert record is not None  # a "step" milestone carries its record
            total = len(run.scenario.steps)
            outcome = "" if record.outcome == "done" else f" -> {record.outcome}"
            if record.code:
                outcome += f" ({record.code})"
            text = f"step {record.index}/{total} {record.step.describe()}{outcome}: {states}"
        print(f"{self.label} {text}", file=sys.stderr, flush=True)


async def _run_all(scenarios: list[Scenario], args: argparse.Namespace) -> list[RunResult]:
    from mesh.eventlog import EventLog
    from mesh.scenario.runner import run_scenario

    results = []
    sink = open(args.events, "w", encoding="utf-8") if args.events else None
    try:
        for n, scenario in enumerate(scenarios, 1):
            label = f"[{scenario.name}]" if len(scenarios) == 1 else f"[{n}/{len(scenarios)} {scenario.name}]"
            progress = _Progress(label, quiet=args.quiet or args.live)
            events = EventLog(sink) if sink else EventLog()
            if args.processes:
                from mesh.scenario.processes import run_in_processes

                result = await run_in_processes(scenario, sink=sink, progress=progress)
            elif args.live:
                from mesh.scenario.live import run_live

                result = await run_live(scenario, events=events, pace=max(args.pace, 0.0))
            else:
                result = await run_scenario(scenario, events=events, progress=progress)
            print_result(result)
            results.append(result)
    finally:
        if sink:
            sink.close()
    return results


def run_command(args: argparse.Namespace) -> int:
    if args.live and args.processes:
        raise InputError("--live", "cannot be combined with --processes",
                         "drop one of them (the live view follows the in-process run)")
    scenarios = _load_all(args.files)
    if scenarios is None:
        return 2
    for path in (args.json, args.junit, args.events):
        if path:
            try:
                open(path, "a", encoding="utf-8").close()
            except OSError as exc:
                raise InputError(path, f"cannot be written ({exc.strerror})", "choose another path") from None
    try:
        results = trio.run(_run_all, scenarios, args)
    except BaseExceptionGroup as group:
        # Trio nurseries wrap what a task raised; an InputError (a port in
        # use, a node that would not start) is still one line for a person.
        wrong, _ = group.split(InputError)
        if wrong is None:
            raise
        found: InputError | ExceptionGroup[InputError] = wrong
        while isinstance(found, ExceptionGroup):
            found = found.exceptions[0]
        raise found from None
    if args.json:
        write_json(results, args.json)
    if args.junit:
        write_junit(results, args.junit)
    if len(results) > 1:
        passed = sum(r.ok for r in results)
        print(f"\n{passed}/{len(results)} scenarios passed")
        for r in results:
            print(f"  {summary_line(r)}")
    return 0 if all(r.ok for r in results) else 1
