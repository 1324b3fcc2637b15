"""Consoles during a scenario run: the REST API and web page of the appliances that ask.

A scenario turns them on with ``[scenario] api = true`` (every sensor and
console) or ``api = true`` on one ``[[appliance]]`` (which also turns one off
with ``api = false``); :meth:`Scenario.consoles` says which. Each serves on a
free port of 127.0.0.1 for as long as the run lasts, presenting the
appliance's current certificate, and an ``api-listening`` event records its
URL and its token file in the run's event stream. ``mesh run`` prints both at start.
The token files (one per console, 0600) are in a private temporary folder
(0700) that is removed when the run ends; changes need ``Authorization:
Bearer <token>`` (or the page's sign-in).

With ``mesh run --processes`` each ``mesh node`` serves its own console; the
nodes start once (:mod:`mesh.scenario.live_nodes`), so a console keeps its
URL and token for the whole run.

The certificates are dated on the scenario's emulated clock, which browsers
and curl do not share: ``curl -k`` always works; ``curl --cacert ROOT`` only
when the scenario starts near the wall-clock time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from mesh.consoles import open_console, private_folder

if TYPE_CHECKING:  # the runner imports this module
    from mesh.scenario.runner import RunView, ScenarioRun


__all__ = ["console_lines", "open_scenario_consoles"]


async def open_scenario_consoles(run: ScenarioRun, nursery: trio.Nursery) -> dict[str, str]:
    """Serve the consoles ``run.scenario`` asks for in ``nursery``; name -> URL.

    ``run`` is a started :class:`~mesh.scenario.runner.ScenarioRun` (every
    appliance has started, so each has the certificate its console presents).
    """
    names = run.scenario.consoles()
    if not names:
        return {}
    from mesh.web.mesh_backend import MeshConsole

    urls = {}
    folder = private_folder(nursery)
    for name in names:
        event = await open_console(
            nursery, MeshConsole(run.mesh, name), events=run.events, now=run.clock.now,
            token_file=folder / f"{name}.api-token", where=f"console of {name}",
        )
        urls[name] = event.url
        run.console_tokens[name] = event.token_file
    return urls


def console_lines(run: RunView) -> list[str]:
    """One line per console a run serves: 'console of NAME (ROLE): URL/ (token in FILE)'.

    ``run`` is anything with ``scenario`` and ``consoles`` (name -> URL): the
    in-process :class:`~mesh.scenario.runner.ScenarioRun` or the fleet of
    ``mesh run --processes``.
    """
    return [
        f"console of {name} ({run.scenario.appliance(name).role}): {url}/"
        + (f" (token in {run.console_tokens[name]})" if name in run.console_tokens else "")
        for name, url in run.consoles.items()
    ]
