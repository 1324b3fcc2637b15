"""The appliance roles of the source document, in one place.

A module of its own, importing nothing of the engine, so light commands
(``mesh pki``, ``mesh check``) can name the roles without loading the
engine. The order is the dialing rank (see ``mesh.appliances.spec``).
"""

from __future__ import annotations

import enum

__all__ = ["Role", "ROLES"]


class Role(enum.Enum):
    SENSOR = "sensor"
    MANAGEMENT_CONSOLE = "management-console"
    HA_CONSOLE = "ha-console"
    FORWARDING_TARGET = "forwarding-target"

    @classmethod
    def parse(cls, value: Role | str) -> Role:
        if isinstance(value, Role):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            known = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role {value!r}; known roles: {known}") from None

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    @property
    def validates_clients(self) -> bool:
        """Forwarding targets are third-party servers: server-auth only."""
        return self is not Role.FORWARDING_TARGET


#: The role names, in rank order: what configuration files spell.
ROLES: tuple[str, ...] = tuple(role.value for role in Role)
