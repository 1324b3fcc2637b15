"""What the engine asks about the other appliances: the Mesh, or a ``mesh node``'s config."""

from __future__ import annotations

from typing import Protocol, Sequence

from mesh.roles import Role

__all__ = ["Directory"]


class Directory(Protocol):
    """Where the engine learns about other appliances (the Mesh, or a node's config)."""

    def address_of(self, name: str) -> tuple[str, int] | None:
        """Where ``name`` listens (None: nowhere known, so its link is down)."""
        ...

    def role_of(self, name: str) -> Role | None:
        """``name``'s role, which decides what is sent on its links (None: unknown)."""
        ...

    def is_local(self, name: str) -> bool:
        """``name`` runs in this process: its end of a link reports for itself."""
        ...

    def expected_dialers(self, listener: str) -> Sequence[str]:
        """Who is configured to dial ``listener`` (one: its host name is required)."""
        ...

    def hostname_of(self, name: str) -> str:
        """The domain name ``name``'s certificate must carry."""
        ...

    def speaks_mesh(self, name: str) -> bool:
        """``name`` exchanges verdicts (False: a third-party TLS server)."""
        ...
