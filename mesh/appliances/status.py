"""What a person reads about a running mesh: link and appliance status.

These are frozen snapshots, taken from the live link records when asked
(``Mesh.links()``, ``Mesh.status(name)``, :meth:`LinkStatus.of`), so a report
or a test holds a consistent picture while the mesh goes on running.
"""

from __future__ import annotations

import datetime as dt

from attrs import define

from mesh.appliances.claims import Conflict
from mesh.appliances.link_state import Link, LinkState
from mesh.errors import FailureCode

__all__ = ["LinkState", "LinkStatus", "ApplianceStatus"]


@define(frozen=True, kw_only=True)
class LinkStatus:
    """One link as it stands.

    ``code``/``message``/``refused_by``/``subject``/``serial``/``detail`` describe
    the refusal of a halted link (the refusal the operator should read first:
    the listener's when both ends refused). ``refusals`` lists every end that
    refused as ``(appliance, code)``. ``delivered`` counts application
    messages that crossed the link, both directions, over its whole life.
    """

    dialer: str
    listener: str
    state: LinkState
    code: FailureCode | None = None
    message: str | None = None
    refused_by: str | None = None
    delivered: int = 0
    subject: str = ""
    serial: int | None = None
    detail: str = ""
    refusals: tuple[tuple[str, FailureCode], ...] = ()
    unvalidated_by: tuple[str, ...] = ()
    would_fail: tuple[FailureCode, ...] = ()
    #: What an accepting end noted (``no_cdp``: revocation not checked), while up.
    notes: tuple[FailureCode, ...] = ()
    attempts: int = 0
    since: dt.datetime | None = None
    reason: str = ""

    def peer_of(self, name: str) -> str:
        return self.listener if name == self.dialer else self.dialer

    def line(self) -> str:
        text = f"{self.dialer} -> {self.listener}: {self.state.value}"
        if self.state is LinkState.HALTED and self.code is not None:
            text += f" by {self.refused_by} [{self.code.code}] {self.code.message}"
        elif self.state is LinkState.UP_UNVALIDATED and self.would_fail:
            text += " (validation off; would fail: " + ", ".join(c.code for c in self.would_fail) + ")"
        elif self.state is LinkState.DOWN and self.reason:
            text += f" ({self.reason})"
        if self.notes:
            text += " (note: " + ", ".join(c.code for c in self.notes) + ")"
        return text + f", {self.delivered} delivered"

    @classmethod
    def of(cls, link: Link) -> LinkStatus:
        """A snapshot of ``link`` as it stands now."""
        outcome = link.outcome
        primary = outcome.primary if outcome is not None and link.state is LinkState.HALTED else None
        return cls(
            dialer=link.dialer,
            listener=link.listener,
            state=link.state,
            code=primary.code if primary else None,
            message=primary.code.message if primary and primary.code else None,
            refused_by=primary.by if primary else None,
            delivered=link.delivered,
            subject=primary.subject if primary else "",
            serial=primary.serial if primary else None,
            detail=primary.detail if primary else "",
            refusals=tuple(
                (j.by, j.code or FailureCode.VALIDATION_FAILED) for j in outcome.refusals
            )
            if outcome is not None and link.state is LinkState.HALTED
            else (),
            unvalidated_by=link.unvalidated_by if link.state is LinkState.UP_UNVALIDATED else (),
            would_fail=outcome.would_fail
            if outcome is not None and link.state is LinkState.UP_UNVALIDATED
            else (),
            notes=link.notes,
            attempts=link.attempts,
            since=link.since,
            reason=link.reason if link.state is LinkState.DOWN else "",
        )


@define(frozen=True, kw_only=True)
class ApplianceStatus:
    """One appliance: its certificate, switch and links, and its last error."""

    name: str
    role: str
    running: bool
    address: str | None
    validation: bool
    subject: str
    serial: int | None
    self_signed: bool
    links: tuple[LinkStatus, ...]
    errors: tuple[str, ...] = ()
    #: Conflicts between peers (``mesh.appliances.claims``), the latest per kind and peer.
    conflicts: tuple[Conflict, ...] = ()

    def link_to(self, peer: str) -> LinkStatus:
        for link in self.links:
            if link.peer_of(self.name) == peer:
                return link
        raise KeyError(f"{self.name} has no link with {peer}")

    def render(self) -> str:
        head = (
            f"{self.name} ({self.role}) {'running on ' + self.address if self.running and self.address else 'stopped'}; "
            f"validation {'on' if self.validation else 'OFF'}; certificate {self.subject or '-'}"
            + (" (self-signed)" if self.self_signed else "")
        )
        lines = [head] + ["  " + link.line() for link in self.links]
        lines += ["  warning: " + conflict.message for conflict in self.conflicts]
        lines += ["  error: " + error for error in self.errors]
        return "\n".join(lines)
