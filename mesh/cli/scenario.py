"""The arguments of ``mesh check`` and ``mesh run``; the commands are :mod:`mesh.scenario.commands`."""

from __future__ import annotations

import argparse
import os

__all__ = ["add_parser"]


def _workers(text: str) -> int:
    """``--workers``'s value: a positive count, or ``auto`` for the CPU count."""
    if text == "auto":
        return os.cpu_count() or 1
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of workers; give 1 or more, or auto")
    return count


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check",
        help="validate scenario files without running them",
        description="Validate scenario files: every problem, one line each, exit 2 if any.",
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="scenario .toml files")
    check.set_defaults(func="mesh.scenario.commands:check_command")

    run = subparsers.add_parser(
        "run",
        help="run scenario files and check their expectations",
        description="Build each scenario's PKI and CRL server, start its appliances, play "
        "its timeline on the emulated clock and check its expectations. Exit 0 when "
        "every expectation holds, 1 when one fails, 2 when a scenario is unusable.",
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="scenario .toml files")
    run.add_argument("--json", metavar="FILE", help="write the JSON report here")
    run.add_argument("--junit", metavar="FILE", help="write JUnit XML here (one test case per expectation)")
    run.add_argument(
        "--html", metavar="FILE",
        help="write a self-contained HTML report here: the mesh drawn after every step, "
        "expectations, events and certificates",
    )
    run.add_argument("--events", metavar="FILE", help="write every event here as JSON lines")
    run.add_argument("--live", action="store_true", help="show the links changing state as it runs")
    run.add_argument(
        "--pace", type=float, default=0.6, metavar="SECONDS",
        help="with --live: real seconds to pause after each step so it can be seen (default 0.6)",
    )
    run.add_argument("--quiet", "-q", action="store_true", help="no progress lines, only the final table")
    run.add_argument(
        "--fresh-keys", action="store_true",
        help="generate new RSA keys for this run instead of reusing the key cache "
        "(~/.cache/mesh/keys, MESH_KEY_CACHE; test keys for emulated appliances only)",
    )
    run.add_argument(
        "--processes", action="store_true",
        help="run every appliance as its own `mesh node` process on real ports",
    )
    run.add_argument(
        "--workers", type=_workers, metavar="N",
        help="spread the appliances over N `mesh node` shard processes on real ports, "
        "each running many appliances (auto: the CPU count)",
    )
    run.add_argument(
        "--validation", choices=("on", "off", "both"), default="on",
        help="on: the scenario as written (default); off: validation off on every appliance "
        "from the start, set-validation steps skipped; both: play it both ways and print "
        "one table side by side. [[expect]] mode = \"on\" | \"off\" names the run "
        "an expectation is judged in; the other run does not judge it",
    )
    run.add_argument(
        "--hosts", action="store_true",
        help="run every appliance as a `mesh node` on a host of its own: a Linux network "
        "namespace on a private switch (10.213.0.0/16), the CRL server on crl.<domain>:80; "
        "with --workers N, a host per shard; needs root and ip",
    )
    run.add_argument(
        "--inventory", metavar="FLEET.toml",
        help="drive appliances already running anywhere, through their REST APIs and the "
        "CRL server's control API, as FLEET.toml lists them (see the README); nothing is "
        "started",
    )
    run.set_defaults(func="mesh.scenario.commands:run_command")
