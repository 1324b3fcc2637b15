"""What a person reads about a running mesh: appliance status (and link states).

These are frozen snapshots, taken from the live link records when asked
(``Mesh.links()``, ``Mesh.status(name)``), so a report or a test holds a
consistent picture while the mesh goes on running.
"""

from __future__ import annotations

from attrs import define

from mesh.appliances.link_state import LinkState, LinkStatus

__all__ = ["LinkState", "LinkStatus", "ApplianceStatus"]


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
        lines += ["  error: " + error for error in self.errors]
        return "\n".join(lines)
