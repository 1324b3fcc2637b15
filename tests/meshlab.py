"""A deployment to run appliances in: a real CRL server, a PKI pointing at it.

Shared by the engine's tests and the fault tests (imported as ``meshlab``;
``tests/`` is on the path because its root conftest is not in a package).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import pytest

from mesh.appliances import ApplianceSpec, EngineSettings, Mesh
from mesh.net.crl_server import CrlServer
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.issue import Issued

__all__ = ["FAST", "Deployment", "crl_server"]

#: Short I/O timeouts: every peer is in this process, on loopback.
FAST = EngineSettings(handshake_timeout=5.0, verdict_timeout=5.0, crl_timeout=2.0)


class Deployment:
    """A PKI whose CRLs a running CRL server publishes, and meshes built on it."""

    def __init__(self, crl_server: CrlServer, keys, epoch: dt.datetime) -> None:
        self.crl_server = crl_server
        self.keys = keys
        self.epoch = epoch
        self.pki: Pki | None = None

    def build(self, *appliances: tuple[str, str] | tuple[str, str, str]) -> Pki:
        """(name, role[, fault]) per appliance."""
        requests = [
            ApplianceRequest(name=a[0], role=a[1], fault=a[2] if len(a) > 2 else "ca-signed")
            for a in appliances
        ]
        self.pki = Pki.build(
            at=self.epoch,
            appliances=requests,
            crl_base_url=f"{self.crl_server.base_url}/crl",
            keys=self.keys,
        )
        self.crl_server.set_documents(self.pki.crl_documents(at=self.epoch))
        return self.pki

    def identity(self, name: str) -> Issued:
        """What the appliance presents: its certificate, its own key and the .pem chain."""
        assert self.pki is not None
        material = self.pki.appliances[name]
        return Issued(cert=material.cert, key=material.issued.key, chain=material.chain)

    def spec(self, name: str, role: str, **changes) -> ApplianceSpec:
        assert self.pki is not None
        if name in self.pki.appliances and "identity" not in changes:
            changes["identity"] = self.identity(name)
        changes.setdefault("trust", tuple(self.pki.trust_roots()))
        return ApplianceSpec(name=name, role=role, **changes)

    def mesh(self, specs: Iterable[ApplianceSpec], **kwargs) -> Mesh:
        kwargs.setdefault("settings", FAST)
        mesh = Mesh(
            start=self.epoch, pki=self.pki, crl_server=self.crl_server, keys=self.keys, **kwargs
        )
        for spec in specs:
            mesh.add(spec)
        return mesh


@pytest.fixture
async def crl_server(nursery):
    server = CrlServer()
    await nursery.start(server.serve)
    return server
