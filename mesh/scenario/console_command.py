"""``mesh console SCENARIO.toml``: a scenario's mesh with every appliance's console live.

For demos and for poking at the REST API by hand: the scenario's PKI, CRL
server and appliances start as ``mesh run`` starts them, each appliance (or
those named with ``--appliance``) serves its REST API and web page over HTTPS,
one line per console is printed (``NAME ROLE URL TOKEN_FILE``), the timeline plays at a
pace a person can follow, and the consoles stay up until Ctrl-C (or, with
``--once``, until the timeline ends).

Certificates are dated on the scenario's clock, and browsers and curl judge
them by the wall clock: ``--wall-clock`` starts the scenario now so that a
browser sees valid dates, and ``--root FILE`` writes the scenario's root CA
for ``curl --cacert FILE`` (the certificates name the appliance's domain name,
so point that name at 127.0.0.1 with ``curl --resolve NAME:PORT:127.0.0.1``).

Each console's token (what a change needs: ``curl -H "Authorization: Bearer
$(cat TOKEN_FILE)"``, or the page's sign-in) is in a file of a private
temporary folder (0700, the files 0600) removed when the command ends.

It belongs to the scenario layer, not to :mod:`mesh.web`: it runs a scenario,
and the consoles never import the scenario layer (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from functools import partial
from typing import TYPE_CHECKING

import attrs
import trio

from mesh.errors import InputError

if TYPE_CHECKING:  # loaded when the command runs
    from mesh.scenario.model import Scenario
    from mesh.scenario.runner import RunView

__all__ = ["console_command"]


def _input_error(group: BaseExceptionGroup) -> InputError | None:
    for error in group.exceptions:
        if isinstance(error, InputError):
            return error
        if isinstance(error, BaseExceptionGroup):
            found = _input_error(error)
            if found is not None:
                return found
    return None


def console_command(args: argparse.Namespace) -> int:
    from mesh.consoles import has_console
    from mesh.scenario.load import load_scenario

    scenario = load_scenario(args.scenario)
    # Forwarding targets are third-party servers: they have no console.
    names = [a.name for a in scenario.appliances if has_console(a.role)]
    for name in args.appliance or ():
        if name in names:
            continue
        if name in (a.name for a in scenario.appliances):
            raise InputError(f"--appliance {name}",
                             f"is a {scenario.appliance(name).role}, a third-party server with no console",
                             f"use one of {', '.join(names)}")
        raise InputError(f"--appliance {name}", f"is not an appliance of {args.scenario}",
                         f"use one of {', '.join(names)}")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}", "is not a port number", "use 1-65535, or 0 for free ports")
    if args.pace < 0:
        raise InputError(f"--pace {args.pace}", "cannot be negative", "use 0 or more seconds")
    if args.expiry_window < 0:
        raise InputError(f"--expiry-window {args.expiry_window}", "cannot be negative", "use 0 or more days")
    if args.wall_clock:
        scenario = attrs.evolve(scenario, start=dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    try:
        trio.run(partial(_serve, scenario, args, args.appliance or names))
    except BaseExceptionGroup as group:
        error = _input_error(group)
        if error is not None:
            raise error from None
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        raise
    return 0


def _counts(run: RunView) -> str:
    counts = Counter(row.state for row in run.links())
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no links"


async def _serve(scenario: Scenario, args: argparse.Namespace, names: list[str]) -> None:
    from mesh.consoles import private_folder
    from mesh.scenario.runner import start_scenario
    from mesh.web.auth import ConsoleAuth, new_token_file
    from mesh.web.mesh_backend import MeshConsole
    from mesh.web.server import serve_console

    window = dt.timedelta(days=args.expiry_window)
    # This command serves the consoles itself (its own host, ports and
    # window), so the scenario's own `api` consoles are not opened as well.
    async with start_scenario(scenario, consoles=False) as run:
        if args.root:
            from mesh.pki.files import save_certificate

            try:
                save_certificate(args.root, run.pki.root.cert)
            except OSError as exc:
                raise InputError(f"--root {args.root}", f"cannot be written ({exc.strerror})",
                                 "name a file in a folder you can write to") from None
            print(f"[{scenario.name}] root CA certificate written to {args.root}",
                  file=sys.stderr, flush=True)
        async with trio.open_nursery() as nursery:
            folder = private_folder(nursery)
            for index, name in enumerate(names):
                backend = MeshConsole(run.mesh, name)
                token_file = folder / f"{name}.api-token"
                auth = ConsoleAuth(token=new_token_file(token_file), token_file=token_file,
                                   record=run.events.append)
                address = await nursery.start(partial(
                    serve_console, backend, auth=auth, host=args.host,
                    port=args.port + index if args.port else 0,
                    expiry_window=window, where=f"console of {name}",
                ))
                print(f"{name}  {backend.role}  {address.url}/  {token_file}", flush=True)
            print(f"[{scenario.name}] started: {_counts(run)}", file=sys.stderr, flush=True)
            total = len(scenario.steps)
            for index, step in enumerate(scenario.steps, 1):
                await trio.sleep(args.pace)
                record = await run.play(index, step)
                outcome = f" -> {record.outcome}" if record.outcome != "done" else ""
                print(f"[{scenario.name}] step {index}/{total} {step.describe()}{outcome}: "
                      f"{_counts(run)}", file=sys.stderr, flush=True)
            if args.once:
                nursery.cancel_scope.cancel()
            else:
                print(f"[{scenario.name}] timeline done; consoles stay up until Ctrl-C",
                      file=sys.stderr, flush=True)
