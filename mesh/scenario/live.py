"""``mesh run --live``: watch the links change state while the timeline plays.

The view is redrawn from the same event stream every report reads: each
event marks the table dirty and a redraw follows (rich's Live limits how
often the terminal is repainted, so a burst of 200 link events is one
frame). Emulated time still jumps; the only real-time pause is ``pace``
between steps, there so a person can see each step's effect (0 disables it).
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING

import trio

from mesh.eventlog import EventLog
from mesh.pki.issue import KeySource
from mesh.scenario.consoles import console_lines
from mesh.scenario.model import Scenario
from mesh.scenario.report import MAX_ROWS
from mesh.scenario.result import LinkRow, RunResult
from mesh.scenario.runner import ScenarioRun, start_scenario

if TYPE_CHECKING:  # rich is imported when a table is drawn
    from rich.table import Table

__all__ = ["run_live", "live_table"]

_STYLE = {"up": "green", "up-unvalidated": "yellow", "halted": "bold red", "down": "magenta"}


def live_table(run: ScenarioRun, caption: str, rows: list[LinkRow] | None = None) -> Table:
    """A rich Table of the links as they stand, with the emulated time and step."""
    from rich.table import Table
    from rich.text import Text

    rows = run.links() if rows is None else rows
    table = Table(
        title=f"{run.scenario.name}{' [validation off]' if run.driver.validation == 'off' else ''} — "
        f"{run.now():%Y-%m-%d %H:%M}Z — {caption}",
        title_justify="left", show_edge=False, pad_edge=False,
    )
    for column in ("link", "state", "code"):
        table.add_column(column, no_wrap=True)
    shown = rows
    if len(rows) > MAX_ROWS:
        shown = [r for r in rows if r.state != "up"][:MAX_ROWS]
    for r in shown:
        style = _STYLE.get(r.state, "dim")
        table.add_row(r.link, Text(r.state, style=style), Text(r.code or "-", style=style))
    hidden = len(rows) - len(shown)
    if hidden:
        table.add_row(Text(f"... and {hidden} more links", style="dim"), "", "")
    return table


async def run_live(
    scenario: Scenario,
    *,
    events: EventLog | None = None,
    pace: float = 0.6,
    file: IO[str] | None = None,
    keys: KeySource | None = None,
    validation: str = "on",
) -> RunResult:
    """Run ``scenario`` while a live table on ``file`` (stdout) follows its links.

    ``validation="off"``: the validation off run (see :func:`~mesh.scenario.runner.start_scenario`).
    """
    from rich.console import Console
    from rich.live import Live

    console = Console(file=file or sys.stdout)
    events = events if events is not None else EventLog()
    caption = "starting"
    async with start_scenario(scenario, events=events, keys=keys, validation=validation) as run:
        for line in console_lines(run):
            console.print(line, highlight=False, soft_wrap=True)
        with Live(live_table(run, "started"), console=console, refresh_per_second=8,
                  transient=True) as live:
            changes = events.subscribe()

            async def follow() -> None:
                async for _ in changes:
                    live.update(live_table(run, caption))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow)
                caption = "started"
                live.update(live_table(run, caption))
                if pace:
                    await trio.sleep(pace)
                for index, step in enumerate(run.scenario.steps, 1):
                    caption = f"step {index}/{len(scenario.steps)}: {step.describe()}"
                    live.update(live_table(run, caption))
                    await run.play(index, step)
                    live.update(live_table(run, caption))
                    if pace:
                        await trio.sleep(pace)
                nursery.cancel_scope.cancel()
            changes.close()
        return run.result(started=scenario.start)
