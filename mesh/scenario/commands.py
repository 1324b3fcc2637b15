"""``mesh check`` and ``mesh run``: scenario files from the command line.

Exit status is the contract CI systems read: 0 when every expectation holds,
1 when one fails, 2 when a scenario cannot be used at all (a bad key, a
missing file). Every problem of a bad file is printed, one line each, and no
scenario runs until every file given is sound.

Output stays bounded whatever the mesh's size: one progress line per step on
stderr (never one per link or per event), then the final table, which folds
healthy links when there are many.

``--html`` writes one page for people (:mod:`mesh.scenario.html_report`); the
runs then keep their first events for its timeline (``EventLog(head=...)``).

``--validation both`` plays each scenario twice, as written and with
validation off (:mod:`mesh.scenario.both`), on whichever backend was asked
for, and prints one table for the pair; its exit status is that of the pair.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import trio

from mesh.errors import InputError
from mesh.scenario.both import BothResult, ScenarioResult
from mesh.scenario.load import ScenarioInvalid, load_scenario
from mesh.scenario.model import Scenario
from mesh.scenario.report import plural, print_result, summary_line, write_json, write_junit
from mesh.scenario.result import RunResult, StepRecord

if TYPE_CHECKING:  # the runner loads the engine
    from mesh.eventlog import EventLog
    from mesh.pki.issue import KeySource
    from mesh.scenario.html_report import Played
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
            f"ok: {path}: {scenario.name} — {plural(len(scenario.appliances), 'appliance')}, "
            f"{plural(len(scenario.links()), 'link')}, {plural(len(scenario.steps), 'step')}, "
            f"{plural(len(scenario.expectations), 'expectation')}"
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


async def _fresh_keys(scenario: Scenario) -> KeySource:
    """``--fresh-keys``: new keys, made in parallel in memory; the key cache untouched."""
    from mesh.pki.keys import fresh_keys
    from mesh.scenario.keygen import keys_for

    made = await trio.to_thread.run_sync(
        lambda: keys_for(scenario, cache=None), abandon_on_cancel=True
    )
    return made or fresh_keys


async def _play(
    scenario: Scenario, args: argparse.Namespace, *, validation: str, label: str,
    sink: TextIO | None, events: EventLog,
) -> RunResult:
    """One run of ``scenario`` ("on": as written, "off": validation off) on the backend asked for."""
    from mesh.scenario.runner import run_scenario

    progress = _Progress(label, quiet=args.quiet or args.live)
    keys = await _fresh_keys(scenario) if args.fresh_keys else None  # None: the cache
    if args.inventory:
        from mesh.scenario.fleet import run_on_inventory
        from mesh.scenario.inventory import load_inventory

        return await run_on_inventory(scenario, load_inventory(args.inventory), progress=progress,
                                      events=events)
    if args.hosts:
        from mesh.scenario.hosts import run_on_hosts

        return await run_on_hosts(scenario, keys=keys, sink=sink, progress=progress,
                                  validation=validation, events=events, workers=args.workers)
    if args.processes or args.workers:
        from mesh.scenario.processes import run_in_processes

        return await run_in_processes(scenario, keys=keys, sink=sink, progress=progress,
                                      validation=validation, events=events,
                                      workers=args.workers)
    if args.live:
        from mesh.scenario.live import run_live

        return await run_live(scenario, events=events, pace=max(args.pace, 0.0), keys=keys,
                              validation=validation)
    return await run_scenario(scenario, keys=keys, events=events, progress=progress,
                              validation=validation)


def _event_log(sink: TextIO | None, args: argparse.Namespace) -> EventLog:
    """A run's events: the sink gets them all; with ``--html`` the log keeps
    the first ones too, for the report's timeline. Under ``--processes``,
    ``--workers`` and ``--hosts`` the nodes' lines go to the sink as they print them, so the log has none."""
    from mesh.eventlog import EventLog

    head = 0
    if args.html:
        from mesh.scenario.html_report import EVENTS_SHOWN

        head = EVENTS_SHOWN
    return EventLog(None if args.processes or args.hosts or args.workers else sink, head=head)




async def _run_all(
    scenarios: list[Scenario], args: argparse.Namespace, results: list[ScenarioResult],
    played: list[Played],
) -> None:
    """Play each scenario; ``results`` gets each finished one (what a Ctrl-C
    keeps), and with ``--html`` ``played`` gets it with its runs' events."""
    sink = open(args.events, "w", encoding="utf-8") if args.events else None
    try:
        for n, scenario in enumerate(scenarios, 1):
            label = scenario.name if len(scenarios) == 1 else f"{n}/{len(scenarios)} {scenario.name}"
            result: ScenarioResult
            logs = []
            if args.validation == "both":
                logs = [_event_log(sink, args), _event_log(sink, args)]
                on = await _play(scenario, args, validation="on", sink=sink, events=logs[0],
                                 label=f"[{label}, validation on]")
                off = await _play(scenario, args, validation="off", sink=sink, events=logs[1],
                                  label=f"[{label}, validation off]")
                result = BothResult(on=on, off=off)
            else:
                tag = ", validation off" if args.validation == "off" else ""
                logs = [_event_log(sink, args)]
                result = await _play(scenario, args, validation=args.validation, sink=sink,
                                     events=logs[0], label=f"[{label}{tag}]")
            print_result(result)
            results.append(result)
            if args.html:
                from mesh.scenario.html_report import Played, Timeline

                played.append(Played(result=result,
                                     timelines=[Timeline.of(log) for log in logs]))
    finally:
        if sink:
            sink.close()


def _check_writable(path: str) -> None:
    """One line now, before anything runs, if a report file cannot be written;
    nothing is created (a run that never finishes leaves no empty report)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise InputError(path, "is a folder", "name a file")
    if not folder.is_dir() or not os.access(folder, os.W_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise InputError(path, "cannot be written", "choose another path")


def _write_html(played: list[Played], args: argparse.Namespace, *,
                interrupted: str | None = None) -> None:
    from mesh.scenario.html_report import write_html

    write_html(played, args.html, interrupted=interrupted)


def _interrupted(
    scenarios: list[Scenario], results: list[ScenarioResult], args: argparse.Namespace,
    played: list[Played],
) -> int:
    """Ctrl-C: the child processes were stopped on the way out (the runners'
    cleanup is shielded); the reports say how far the run got; exit 130."""
    stopped = scenarios[len(results)].name if len(results) < len(scenarios) else None
    if results:  # absent when nothing finished; otherwise complete, marked interrupted
        if args.json:
            write_json(results, args.json, interrupted=stopped, validation=args.validation)
        if args.junit:
            write_junit(results, args.junit, interrupted=stopped)
        if args.html:
            _write_html(played, args, interrupted=stopped)
    print("mesh: interrupted", file=sys.stderr, flush=True)
    return 130


def _without_network(scenarios: list[Scenario]) -> list[Scenario]:
    """Of several scenarios run without ``--hosts``, those it can play; one line per other.

    A scenario with network policy cannot hold without hosts (one file alone is
    refused, exit 2); among several (``mesh run scenarios/*.toml``) it is left
    out, saying so, so the rest of a library still plays.
    """
    kept = []
    for scenario in scenarios:
        if scenario.needs_hosts:
            print(f"mesh: skipped {scenario.source or scenario.name}: it has network policy, "
                  "which only --hosts enforces; run it with --hosts (as root)", file=sys.stderr)
        else:
            kept.append(scenario)
    return kept


def run_command(args: argparse.Namespace) -> int:
    for option in ("processes", "hosts"):
        if args.live and getattr(args, option):
            raise InputError("--live", f"cannot be combined with --{option}",
                             "drop one of them (the live view follows the in-process run)")
    if args.workers and args.processes:
        raise InputError("--workers", "cannot be combined with --processes",
                         "drop one of them (--processes is one appliance per process)")
    if args.live and args.workers:
        raise InputError("--live", "cannot be combined with --workers",
                         "drop one of them (the live view follows the in-process run)")
    if args.inventory:
        for option in ("processes", "hosts", "workers", "live", "fresh_keys"):
            if getattr(args, option):
                raise InputError("--inventory", f"cannot be combined with --{option.replace('_', '-')}",
                                 "drop one of them (--inventory drives a fleet that already runs)")
        if args.validation != "on":
            raise InputError("--inventory", f"cannot be combined with --validation {args.validation}",
                             "the fleet runs with the switches it was started with; "
                             "use set-validation steps")
        from mesh.scenario.inventory import load_inventory

        load_inventory(args.inventory)  # one line now, before any scenario runs
    if args.processes and args.hosts:
        raise InputError("--hosts", "cannot be combined with --processes",
                         "drop one of them (--hosts runs processes too, each on a host of its own)")
    if args.hosts:
        from mesh.hosts.netns import missing_privilege

        missing = missing_privilege()
        if missing is not None:
            raise InputError("mesh run --hosts", missing, "run it as root, or without --hosts")
    scenarios = _load_all(args.files)
    if scenarios is None:
        return 2
    if args.hosts:  # every refusal before the first scenario runs
        from mesh.scenario.hosts import check_hosts_scenario

        for scenario in scenarios:
            check_hosts_scenario(scenario)
    elif len(scenarios) > 1:
        scenarios = _without_network(scenarios)
        if not scenarios:
            return 2
    for path in (args.json, args.junit, args.html, args.events):
        if path:
            _check_writable(path)
    results: list[ScenarioResult] = []
    played: list[Played] = []
    try:
        trio.run(_run_all, scenarios, args, results, played)
    except KeyboardInterrupt:
        return _interrupted(scenarios, results, args, played)
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            return _interrupted(scenarios, results, args, played)
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
    if args.html:
        _write_html(played, args)
    if len(results) > 1:
        passed = sum(r.ok for r in results)
        print(f"\n{passed}/{len(results)} scenarios passed")
        for r in results:
            print(f"  {summary_line(r)}")
    return 0 if all(r.ok for r in results) else 1
