"""What the scenario driver needs from whatever runs the appliances.

The driver (:mod:`.driver`) plays steps and judges expectations; a backend
runs the appliances: in this process (:class:`~mesh.scenario.runner.MeshBackend`),
as one ``mesh node`` process each (:class:`~mesh.scenario.processes.ProcessesBackend`),
on hosts of their own (:class:`~mesh.scenario.hosts.HostsBackend`, network
namespaces), and as a running fleet reached through its APIs
(:class:`~mesh.scenario.fleet.FleetBackend`: ``--processes`` and ``--workers``
after their start, ``--inventory``). Every backend answers the same calls, so a scenario means the same
thing whichever runs it.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from attrs import define

from mesh.scenario.result import LinkRow

__all__ = ["Backend", "UploadVerdict"]


@define(frozen=True, kw_only=True)
class UploadVerdict:
    """What an upload step found: accepted, or refused with the primary code."""

    accepted: bool
    code: str | None = None
    message: str = ""


class Backend(Protocol):
    """The appliances of one scenario, running somewhere.

    Every action method acts at the current emulated instant; :meth:`settle`
    then makes every link attempt afresh and returns once each has an
    outcome, so :meth:`links` answers what the *next* connection does.
    """

    def now(self) -> dt.datetime:
        """The emulated instant."""
        ...

    async def advance(self, delta: dt.timedelta) -> None:
        """Jump the emulated clock (CAs republish their CRLs for the new instant)."""
        ...

    async def revoke(self, target: str) -> None: ...

    async def upload(self, target: str, certificate: str) -> UploadVerdict:
        """An admin uploads a new certificate of recipe ``certificate`` to ``target``."""
        ...

    async def set_validation(self, target: str, enabled: bool) -> None: ...

    async def crl_fault(self, fault: str) -> None:
        """The CRL server goes ``down``, ``slow``, serves ``garbage``, or is ``ok``."""
        ...

    async def stop(self, target: str) -> None: ...

    async def start(self, target: str) -> None: ...

    async def settle(self, where: str) -> None:
        """Every link attempts afresh; return once each has an outcome.

        Raises:
            ScenarioNotSettled: some link had no outcome in time (``where``
                names the step for the message).
        """
        ...

    def links(self) -> list[LinkRow]:
        """The link table as it stands."""
        ...
