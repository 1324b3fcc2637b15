"""The cache rules on their own: no HTTP, CRLs signed here, the emulated clock set by hand.

(The same rules over real HTTP are in ``test_crl_fetch.py``.)
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization

from mesh.net.crl_cache import CrlCache
from mesh.pki.issue import CertificateAuthority
from mesh.validation.revocation import CrlIndex

URL = "http://crl.contoso.example/crl/issuing.crl"


@pytest.fixture
def ca(keys, epoch):
    return CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))


@pytest.fixture
def now(epoch):
    return {"at": epoch + dt.timedelta(hours=1)}


@pytest.fixture
def cache(now):
    return CrlCache(lambda: now["at"])


def crl(ca: CertificateAuthority, this_update: dt.datetime) -> CrlIndex:
    """The CA's next CRL (numbers count up from 1), valid for 7 days."""
    der = ca.crl(this_update=this_update).public_bytes(serialization.Encoding.DER)
    return CrlIndex.from_bytes(der, source=URL)


def test_ready_until_next_update_and_not_while_marked_for_refresh(cache, ca, epoch, now):
    assert cache.ready(URL) is None and cache.cached(URL) is None
    index = crl(ca, epoch)
    cache.take(URL, index, issuer=None)
    assert cache.ready(URL) is index
    cache.invalidate()
    assert cache.ready(URL) is None and cache.cached(URL) is index
    assert cache.keep(URL) is index  # a refresh was answered by it
    assert cache.ready(URL) is index
    now["at"] = index.next_update  # still current at exactly nextUpdate
    assert cache.ready(URL) is index
    now["at"] += dt.timedelta(seconds=1)
    assert cache.ready(URL) is None and cache.cached(URL) is index


def test_a_current_crl_stands_against_a_failed_refresh(cache, ca, epoch, now):
    assert cache.standing(URL) is None  # nothing cached: the failure is the answer
    index = crl(ca, epoch)
    cache.take(URL, index, issuer=None)
    assert cache.standing(URL) is index
    now["at"] = index.next_update + dt.timedelta(seconds=1)
    assert cache.standing(URL) is None  # stale: it stands for nothing


def test_what_a_refreshed_crl_replaces(cache, ca, keys, epoch):
    older = crl(ca, epoch - dt.timedelta(hours=2))  # number 1
    current = crl(ca, epoch)  # number 2
    newer = crl(ca, epoch + dt.timedelta(minutes=30))  # number 3
    long_stale = crl(ca, epoch - dt.timedelta(days=30))  # number 4, but stale
    cache.take(URL, current, issuer=None)
    assert cache.standing(URL, older) is current  # a lower CRL number
    assert cache.standing(URL, long_stale) is current
    assert cache.standing(URL, newer, signed=False) is current  # not the named issuer's
    assert cache.standing(URL, newer) is None
    assert cache.standing(URL, newer, signed=True) is None
    impostor = CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))
    impostor.crl_number = 41
    assert cache.standing(URL, crl(impostor, epoch)) is None  # unknown issuer: the core judges


def test_a_crl_stale_on_arrival_is_not_cached(cache, ca, epoch):
    cache.take(URL, crl(ca, epoch), issuer=None)
    cache.take(URL, crl(ca, epoch - dt.timedelta(days=30)), issuer=None)
    assert cache.cached(URL) is None


async def test_ready_all_answers_from_memory_only_what_was_signature_checked(cache, ca, epoch):
    other = "http://crl.contoso.example/crl/root.crl"
    first, second = crl(ca, epoch), crl(ca, epoch)
    cache.take(URL, first, issuer=ca.cert)  # fetched with its issuer: checked
    cache.take(other, second, issuer=None)
    assert cache.ready_all([URL, other], {}) == {URL: first, other: second}
    assert cache.ready_all([URL, other], {URL: ca.cert, other: ca.cert}) is None
    await cache.check_signature(other, second, ca.cert)
    assert cache.ready_all([URL, other], {URL: ca.cert, other: ca.cert}) == {
        URL: first, other: second}
    cache.invalidate(other)
    assert cache.ready_all([URL, other], {}) is None
    cache.clear(URL)
    assert cache.cached(URL) is None and cache.cached(other) is second
