"""The arguments of ``mesh console``; the command is :mod:`mesh.scenario.console_command`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "console",
        help="run a scenario with each appliance's REST API and web console on HTTPS",
        description="Start a scenario's mesh, serve the REST API and web console of each "
        "appliance over HTTPS (one line per console: name, role, URL, token file), play "
        "the timeline at a pace a person can follow, and keep serving until Ctrl-C. "
        "Changes need the console's token: curl -H \"Authorization: Bearer $(cat FILE)\", "
        "or the page's sign-in.",
    )
    parser.add_argument("scenario", metavar="FILE.toml", help="scenario file")
    parser.add_argument(
        "--appliance", action="append", metavar="NAME",
        help="serve only this appliance's console (repeatable; default: all)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, metavar="PORT",
        help="port of the first console, the next ones follow (default 0: free ports)",
    )
    parser.add_argument(
        "--pace", type=float, default=5.0, metavar="SECONDS",
        help="real seconds before each timeline step (default 5)",
    )
    parser.add_argument(
        "--wall-clock", action="store_true",
        help="start the scenario at the current time, so browsers accept the certificate dates",
    )
    parser.add_argument(
        "--expiry-window", type=int, default=30, metavar="DAYS",
        help="flag certificates this many days before their end (default 30)",
    )
    parser.add_argument(
        "--root", metavar="FILE",
        help="write the scenario's root CA certificate here (for curl --cacert FILE)",
    )
    parser.add_argument("--once", action="store_true", help="stop when the timeline ends")
    parser.set_defaults(func="mesh.scenario.console_command:console_command")
