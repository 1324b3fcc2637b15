"""What the scenario driver needs from whatever runs the appliances.

The driver (:mod:`.driver`) plays steps and judges expectations; a backend
runs the appliances: in this process (:class:`~mesh.scenario.runner.MeshBackend`),
as one ``mesh node`` process each (:class:`~mesh.scenario.processes.ProcessesBackend`),
on hosts of their own (:class:`~mesh.scenario.hosts.HostsBackend`, network
namespaces), and, next, as a fleet reached through its control plane. Every backend answers the same calls, so a scenario means the same
thing whichever runs it.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from attrs import define

from mesh.errors import InputError
from mesh.scenario.result import LinkRow

__all__ = ["Backend", "NoNetwork", "UploadVerdict"]


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

    # Network policy (``--hosts`` only; :class:`NoNetwork` for the others).
    # Hosts are appliance names, ``"crl"``, ``"proxy"``, or ``"*"`` in a rule.

    async def block(self, source: str, destination: str, port: int | None, drop: bool) -> None:
        """``source`` can no longer reach ``destination`` (on ``port``; None: any)."""
        ...

    async def unblock(self, source: str, destination: str, port: int | None) -> None:
        """Lift what ``block`` steps put between them (``[[block]]`` tables stay)."""
        ...

    async def partition(self, groups: tuple[tuple[str, ...], ...], drop: bool) -> None:
        """Hosts of different ``groups`` can no longer reach each other."""
        ...

    async def heal(self) -> None:
        """End every partition."""
        ...

    async def loss(self, target: str, percent: int) -> None:
        """``percent`` of the packets on ``target``'s link are lost (0: none)."""
        ...

    async def bandwidth(self, target: str, rate: str) -> None:
        """``target``'s link carries at most ``rate`` ("1mbit") each way ("off": no limit)."""
        ...

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


class NoNetwork:
    """The network steps of a backend with no network between its appliances.

    :meth:`mesh.scenario.model.Scenario.firewall_line` refuses such scenarios
    before anything runs, so these are never reached by a checked scenario;
    if one is, it fails closed, in one line, rather than pass for a network
    that was never there.
    """

    def _no_network(self, action: str) -> InputError:
        return InputError(f"step {action}", "needs hosts of their own, which this run does not give",
                          "run it with --hosts (as root)")

    async def block(self, source: str, destination: str, port: int | None, drop: bool) -> None:
        raise self._no_network("block")

    async def unblock(self, source: str, destination: str, port: int | None) -> None:
        raise self._no_network("unblock")

    async def partition(self, groups: tuple[tuple[str, ...], ...], drop: bool) -> None:
        raise self._no_network("partition")

    async def heal(self) -> None:
        raise self._no_network("heal")

    async def loss(self, target: str, percent: int) -> None:
        raise self._no_network("loss")

    async def bandwidth(self, target: str, rate: str) -> None:
        raise self._no_network("bandwidth")
