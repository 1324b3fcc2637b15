"""One appliance of a running :class:`~mesh.appliances.runtime.Mesh`, as its console sees it.

The adapter between the engine and :class:`mesh.web.backend.ConsoleBackend`:
the console reads the appliance's live identity (so an upload made any way,
through the API, a scenario step or ``Mesh.upload``, changes what the next
HTTPS connection is shown), its switch, its links and the mesh's event
stream, and routes uploads and the switch through the mesh so that every
change is recorded as the engine's own events.

The engine is used by duck typing (``mesh.appliance(name)``, ``mesh.status``, ``mesh.names``,
``mesh.upload``, ``mesh.set_validation``, ``mesh.clock``, ``mesh.events``,
``mesh.role_of``): importing this module does not import it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping, Sequence

from cryptography import x509

from mesh.errors import FailureCode, ValidationFailed
from mesh.pki import files
from mesh.pki.issue import Issued

__all__ = ["MeshConsole", "certificates_from_upload"]


def certificates_from_upload(data: bytes, where: str) -> list[x509.Certificate]:
    """The certificates of an uploaded .crt or .pem (PEM or DER), or InputError naming ``where``."""
    return files.certificates_from_bytes(data, where=where)


class MeshConsole:
    """:class:`~mesh.web.backend.ConsoleBackend` for appliance ``name`` of ``mesh``."""

    def __init__(self, mesh: Any, name: str) -> None:
        self._mesh = mesh
        self._name = name
        mesh.appliance(name)  # fail now, with the engine's own error, for an unknown name

    @property
    def _appliance(self) -> Any:
        return self._mesh.appliance(self._name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def role(self) -> str:
        role = self._appliance.role
        return getattr(role, "value", str(role))

    def identity(self) -> Issued:
        identity = self._appliance.identity
        if identity is None:
            raise RuntimeError(
                f"appliance {self._name!r} has no certificate yet; start the console "
                "after the appliance (it makes its self-signed certificate at first start)"
            )
        return identity

    def trust_roots(self) -> Sequence[x509.Certificate]:
        return tuple(self._appliance.spec.trust)

    def now(self) -> dt.datetime:
        return self._mesh.clock.now()

    def validation_enabled(self) -> bool:
        return bool(self._appliance.validation)

    def links(self) -> Sequence[Any]:
        return self._mesh.status(self._name).links

    def roles(self) -> Mapping[str, str]:
        out = {}
        names = self._mesh.names
        for name in names() if callable(names) else names:
            role = self._mesh.role_of(name)
            out[name] = getattr(role, "value", str(role or ""))
        return out

    def events_since(self, index: int) -> Sequence[Any]:
        return self._mesh.events.since(index)

    async def upload(
        self, *, crt: bytes, key: bytes, chain: bytes | None, passphrase: str | None
    ) -> None:
        certs = certificates_from_upload(crt, "crt")
        intermediates = certificates_from_upload(chain, "chain") if chain else []
        # The certificate file may carry its chain after it, as many CAs deliver it.
        intermediates = [c for c in certs[1:] + intermediates if c != certs[0]]
        # The key is opened by the engine (key_pem + passphrase), so a wrong
        # passphrase is refused and logged like any other upload refusal.
        uploaded = Issued(cert=certs[0], key=None, chain=tuple(intermediates))  # type: ignore[arg-type]
        verdict = await self._mesh.upload(self._name, uploaded, passphrase, key_pem=key)
        if not verdict.accepted:
            primary = verdict.primary
            code = primary.code if primary is not None else FailureCode.VALIDATION_FAILED
            raise ValidationFailed(code, primary.detail if primary is not None else "")

    def set_validation(self, enabled: bool) -> None:
        self._mesh.set_validation(self._name, enabled)
