"""What the engine asks about the other appliances: the Mesh, or a ``mesh node``'s config."""

from __future__ import annotations

from typing import Protocol, Sequence

from mesh.roles import Role

__all__ = ["Directory"]


class Directory(Protocol):
    """Where the engine learns about other appliances (the Mesh, or a node's config)."""

    def address_of(self, name: str) -> tuple[str, int] | None: ...

    def role_of(self, name: str) -> Role | None: ...

    def is_local(self, name: str) -> bool: ...

    def expected_dialers(self, listener: str) -> Sequence[str]: ...

    def hostname_of(self, name: str) -> str: ...

    def speaks_mesh(self, name: str) -> bool: ...
