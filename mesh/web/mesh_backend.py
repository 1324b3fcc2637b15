"""An engine appliance as its console sees it: the adapters to :class:`ConsoleBackend`.

:class:`ApplianceConsole` serves one ``mesh.appliances.Appliance`` (what
``mesh node`` runs alone); :class:`MeshConsole` serves appliance ``name`` of a
running ``Mesh`` and draws every appliance of the mesh in its graph.

The console reads the appliance's live identity (so an upload made any way,
through the API, a scenario step or ``Mesh.upload``, changes what the next
HTTPS connection is shown), its switch, its links and the event stream, and
routes uploads and the switch through the appliance so that every change is
recorded as the engine's own events. In a mesh the event stream is the whole
mesh's; the console picks out what concerns its appliance (:mod:`mesh.web.feed`).

The engine's types are named for the type checker only (``appliance.identity``,
``.trust``, ``.clock``, ``.events``, ``.validation``, ``.status()``,
``.upload()``, ``.set_validation()``, ``.refresh_crls()``,
``.directory.role_of()``; ``mesh.appliance(name)``, ``mesh.names``,
``mesh.role_of``, ``mesh.refresh_crls``): importing this module does not
import the engine.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping, Sequence

from cryptography import x509

from mesh.errors import FailureCode, ValidationFailed
from mesh.pki import files
from mesh.pki.issue import Issued

if TYPE_CHECKING:
    from mesh.appliances.appliance import Appliance
    from mesh.appliances.claims import Conflict
    from mesh.appliances.mesh import Mesh
    from mesh.appliances.status import LinkStatus
    from mesh.events import Event
    from mesh.roles import Role

__all__ = ["ApplianceConsole", "MeshConsole", "certificates_from_upload"]


def certificates_from_upload(data: bytes, where: str) -> list[x509.Certificate]:
    """The certificates of an uploaded .crt or .pem (PEM or DER), or InputError naming ``where``."""
    return files.certificates_from_bytes(data, where=where)


def _role_name(role: Role | None) -> str:
    return role.value if role is not None else ""


class ApplianceConsole:
    """:class:`~mesh.web.backend.ConsoleBackend` for one engine ``Appliance``."""

    def __init__(self, appliance: Appliance, *,
                 refresh: Callable[[float | None], Awaitable[Sequence[str]]] | None = None,
                 process_links: Callable[[], Sequence[LinkStatus]] | None = None) -> None:
        self._appliance = appliance
        self._process_links = process_links
        #: How ``refresh_crls`` is done when not by the appliance alone (a
        #: shard refreshes all its appliances together: ``mesh.node_control``).
        self._refresh = refresh

    @property
    def name(self) -> str:
        return self._appliance.name

    @property
    def role(self) -> str:
        return _role_name(self._appliance.role)

    def identity(self) -> Issued:
        identity = self._appliance.identity
        if identity is None:
            raise RuntimeError(
                f"appliance {self.name!r} has no certificate yet; start the console "
                "after the appliance (it makes its self-signed certificate at first start)"
            )
        return identity

    def trust_roots(self) -> Sequence[x509.Certificate]:
        return tuple(self._appliance.trust)

    def now(self) -> dt.datetime:
        return self._appliance.clock.now()

    def validation_enabled(self) -> bool:
        return bool(self._appliance.validation)

    def links(self) -> Sequence[LinkStatus]:
        return self._appliance.status().links

    def roles(self) -> Mapping[str, str]:
        out = {self.name: self.role}
        directory = self._appliance.directory
        for link in self.links():
            for end in (link.dialer, link.listener):
                if end not in out:
                    out[end] = _role_name(directory.role_of(end))
        return out

    def events_since(self, index: int) -> Sequence[Event]:
        return self._appliance.events.since(index)

    def events_first(self) -> int:
        return self._appliance.events.first

    def conflicts(self) -> Sequence[Conflict]:
        return self._appliance.conversation.claims.conflicts()

    async def upload(
        self, *, crt: bytes, key: bytes, chain: bytes | None, passphrase: str | None
    ) -> None:
        certs = certificates_from_upload(crt, "crt")
        intermediates = certificates_from_upload(chain, "chain") if chain else []
        # The certificate file may carry its chain after it, as many CAs deliver it.
        intermediates = [c for c in certs[1:] + intermediates if c != certs[0]]
        # The key is opened by the appliance (key_pem + passphrase), so a wrong
        # passphrase is refused and logged like any other upload refusal.
        uploaded = Issued(cert=certs[0], key=None, chain=tuple(intermediates))  # type: ignore[arg-type]
        verdict = await self._appliance.upload(uploaded, passphrase=passphrase, key_pem=key)
        if not verdict.accepted:
            primary = verdict.primary
            code = primary.code if primary is not None else FailureCode.VALIDATION_FAILED
            raise ValidationFailed(code, primary.detail if primary is not None else "")

    def set_validation(self, enabled: bool) -> None:
        self._appliance.set_validation(enabled)

    def process_links(self) -> Sequence[LinkStatus]:
        return self._process_links() if self._process_links is not None else self.links()

    async def refresh_crls(self, timeout: float | None = None) -> Sequence[str]:
        if self._refresh is not None:
            return await self._refresh(timeout)
        if timeout is None:
            return await self._appliance.refresh_crls()
        return await self._appliance.refresh_crls(timeout=timeout)


class MeshConsole(ApplianceConsole):
    """Appliance ``name`` of a running ``Mesh``; its graph shows the whole mesh."""

    def __init__(self, mesh: Mesh, name: str) -> None:
        super().__init__(mesh.appliance(name))  # the engine's own error for an unknown name
        self._mesh = mesh

    def process_links(self) -> Sequence[LinkStatus]:
        return self._mesh.links()

    async def refresh_crls(self, timeout: float | None = None) -> Sequence[str]:
        # Every link of the mesh judged afresh (Mesh.refresh), not only this
        # appliance's dials: its inbound links are dialed by its neighbours here.
        if timeout is None:
            return await self._mesh.refresh_crls(self.name)
        return await self._mesh.refresh_crls(self.name, timeout=timeout)

    def roles(self) -> Mapping[str, str]:
        out = {n: _role_name(self._mesh.role_of(n)) for n in self._mesh.names}
        out.update({k: v for k, v in super().roles().items() if k not in out})
        return out
