"""A listener's claims: a name held by a live connection is declined; a shared certificate warns."""

from __future__ import annotations

import datetime as dt

import pytest

from mesh.appliances.claims import PeerClaims
from mesh.events import CertificateShared, DuplicatePeer
from mesh.pki.issue import CertificateAuthority

AT = dt.datetime(2027, 1, 15, 9, tzinfo=dt.timezone.utc)


@pytest.fixture
def deployment_certs(keys, epoch):
    """Two sensors' certificates from one CA."""
    ca = CertificateAuthority.root("Claims Root", not_before=epoch, key=keys(2048))
    return tuple(ca.issue(f"sensor-{n}", not_before=epoch, key=keys(2048)).cert for n in (1, 2))


def test_a_held_name_is_declined_and_the_holder_kept(deployment_certs):
    one, _ = deployment_certs
    claims = PeerClaims(appliance="console")
    first, events = claims.claim("sensor-1", address="10.0.0.1:5000", leaf=one, at=AT)
    assert first is not None and events == []
    second, events = claims.claim("sensor-1", address="10.0.0.2:6000", leaf=one, at=AT)
    assert second is None
    assert events == [
        DuplicatePeer(at=AT, appliance="console", peer="sensor-1", live="10.0.0.1:5000", refused="10.0.0.2:6000")
    ]
    [conflict] = claims.conflicts()
    assert (conflict.kind, conflict.peer) == ("duplicate-peer", "sensor-1")
    assert conflict.message.endswith(
        "console: declined sensor-1 from 10.0.0.2:6000: sensor-1 is already connected from 10.0.0.1:5000"
    )
    # Once the holder's connection ends, the name is free again.
    claims.release(first)
    third, events = claims.claim("sensor-1", address="10.0.0.2:6001", leaf=one, at=AT)
    assert third is not None and events == []


def test_one_certificate_under_two_names_warns_without_declining(deployment_certs):
    one, other = deployment_certs
    claims = PeerClaims(appliance="console")
    claims.claim("sensor-1", address="a:1", leaf=one, at=AT)
    twin, events = claims.claim("sensor-2", address="b:2", leaf=one, at=AT)
    assert twin is not None
    [shared] = events
    assert isinstance(shared, CertificateShared)
    assert (shared.peer, shared.other, shared.serial) == ("sensor-2", "sensor-1", one.serial_number)
    own, events = claims.claim("sensor-3", address="c:3", leaf=other, at=AT)
    assert own is not None and events == []
    assert [c.kind for c in claims.conflicts()] == ["certificate-shared"]


def test_a_repeated_conflict_is_kept_once_the_latest_last(deployment_certs):
    one, _ = deployment_certs
    claims = PeerClaims(appliance="console")
    claims.claim("sensor-1", address="a:1", leaf=one, at=AT)
    claims.claim("sensor-2", address="b:1", leaf=None, at=AT)
    claims.claim("sensor-1", address="x:1", leaf=one, at=AT)
    claims.claim("sensor-2", address="y:1", leaf=None, at=AT)
    claims.claim("sensor-1", address="x:2", leaf=one, at=AT + dt.timedelta(minutes=1))
    assert [(c.peer, "x:2" in c.message) for c in claims.conflicts()] == [
        ("sensor-2", False),
        ("sensor-1", True),
    ]
