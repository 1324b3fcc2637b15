"""Faults, abuse and bad input: a deployment to break, and ways to watch it hold.

The deployment is the real thing on loopback: a CRL server publishing the
PKI's CRLs over HTTP, appliances in a :class:`~mesh.appliances.Mesh` on real
mutual-TLS ports. The helpers here only observe (link states, task counts,
memory) or prepare bad material (a stale CRL, a CRL signed by another key).
"""

from __future__ import annotations

import datetime as dt
import os
from urllib.parse import urlsplit

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import meshlab
from meshlab import FAST, crl_server  # noqa: F401  (crl_server is a fixture)
from mesh.appliances import EngineSettings, LinkState, Mesh


class Deployment(meshlab.Deployment):
    """The shared deployment, plus ways to break it."""

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
def deployment(crl_server, keys, epoch) -> Deployment:
    return Deployment(crl_server, keys, epoch)
