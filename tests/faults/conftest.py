"""Faults, abuse and bad input: a deployment to break, and ways to watch it hold.

The deployment is the real thing on loopback: a CRL server publishing the
PKI's CRLs over HTTP, appliances in a :class:`~mesh.appliances.Mesh` on real
mutual-TLS ports. The helpers here only observe (link states, task counts,
memory) or prepare bad material (a stale CRL, a CRL signed by another key).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Iterable
from urllib.parse import urlsplit

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from mesh.appliances import ApplianceSpec, EngineSettings, LinkState, Mesh
from mesh.net.crl_server import CrlServer
from mesh.pki.folder import ApplianceRequest, Pki
from mesh.pki.issue import Issued

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

    def pair(
        self, *, fault: str = "ca-signed", settings: EngineSettings = FAST, **spec_changes
    ) -> Mesh:
        """sensor-1 (with ``fault``) dialing console: the smallest mesh with a link."""
        self.build(("sensor-1", "sensor", fault), ("console", "management-console"))
        return self.mesh(
            [
                # The listener first: it listens before the sensor's first dial.
                self.spec("console", "management-console", **spec_changes),
                self.spec("sensor-1", "sensor", connects_to=["console"], **spec_changes),
            ],
            settings=settings,
        )

    # -- bad CRLs, stored as the server's stale / wrong-key variants --

    def store_bad_crl_variants(self) -> None:
        """A stale CRL and a CRL signed by another key, for every CA's URL."""
        assert self.pki is not None
        stale: dict[str, bytes] = {}
        forged: dict[str, bytes] = {}
        for ca in self.pki.authorities.values():
            if not ca.crl_url:
                continue
            path = urlsplit(ca.crl_url).path
            old = self.epoch - dt.timedelta(days=30)
            stale[path] = _crl(ca.cert.subject, ca.key, old, old + dt.timedelta(days=7))
            forged[path] = _crl(
                ca.cert.subject, self.keys(2048), self.epoch, self.epoch + dt.timedelta(days=7)
            )
        self.crl_server.set_documents(stale, variant="stale")
        self.crl_server.set_documents(forged, variant="wrong-key")


def _crl(issuer: x509.Name, key, this_update: dt.datetime, next_update: dt.datetime) -> bytes:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)


# -- watching a running mesh without sleeping --


async def wait_link(mesh: Mesh, dialer: str, listener: str, *states: LinkState):
    """Return the link's status once it is in one of ``states`` (woken by the link book)."""
    while True:
        status = mesh.link(dialer, listener)
        if status.state in states:
            return status
        await mesh.book.wait_changed()


async def wait_delivered(mesh: Mesh, dialer: str, listener: str, beyond: int) -> int:
    """Return once the link has delivered more than ``beyond`` messages.

    Deliveries do not touch the link book; the event stream tells of each one.
    """
    with mesh.events.subscribe() as events:
        while True:
            delivered = mesh.link(dialer, listener).delivered
            if delivered > beyond:
                return delivered
            await events.receive()


def task_count() -> int:
    """Every live task in this trio run (a per-connection leak shows up here)."""
    todo = [trio.lowlevel.current_root_task()]
    count = 0
    while todo:
        task = todo.pop()
        count += 1
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return count


def rss_bytes() -> int:
    """This process's resident set size, from /proc."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture
async def crl_server(nursery):
    server = CrlServer()
    await nursery.start(server.serve)
    return server


@pytest.fixture
def deployment(crl_server, keys, epoch) -> Deployment:
    return Deployment(crl_server, keys, epoch)
