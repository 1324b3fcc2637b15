"""``mesh.net.crl_store``: CRLs kept on disk, so a restarted node starts with what it had."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode, ValidationFailed
from mesh.net.crl_fetch import CrlFetcher, FetchRecord
from mesh.net.crl_server import CrlServer
from mesh.net.crl_store import CrlStore
from mesh.pki.issue import CertificateAuthority
from mesh.validation.revocation import CrlIndex

PATH = "/crl/issuing.crl"


@pytest.fixture
def ca(keys, epoch):
    return CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))


def _der(ca, at) -> bytes:
    return ca.crl(this_update=at).public_bytes(serialization.Encoding.DER)


def test_a_saved_crl_loads_back_by_its_url_and_junk_is_left_out(tmp_path, ca, epoch):
    store = CrlStore(tmp_path / "cache")
    assert store.load() == {}  # nothing there yet: no error
    index = CrlIndex.from_bytes(_der(ca, epoch))
    store.save("http://crl.test/a.crl", index)
    store.save("http://crl.test/b.crl", index)
    (tmp_path / "cache" / next(p.name for p in (tmp_path / "cache").glob("*.crl"))).write_bytes(b"junk")
    loaded = store.load()
    assert len(loaded) == 1 and next(iter(loaded.values())).der == index.der
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "cache").iterdir()} == {0o600}
    (tmp_path / "cache" / "index.json").write_text("{not json")
    assert store.load() == {}


async def test_a_new_fetcher_on_the_store_keeps_the_crl_while_the_server_is_down(
    nursery, tmp_path, ca, epoch
):
    """What a node restarted for a step does: its CRL server is down, its stored
    CRL is current, so it keeps judging by it (and says it kept it)."""
    server = CrlServer({PATH: _der(ca, epoch)})
    await nursery.start(server.serve)
    url = server.url(PATH)
    at = epoch + dt.timedelta(hours=1)
    store = CrlStore(tmp_path / "cache")
    async with CrlFetcher(now=lambda: at, store=store) as first:
        fetched = await first.get(url, issuer=ca.cert)
    server.set_fault("down")
    records: list[FetchRecord] = []
    async with CrlFetcher(now=lambda: at, store=store, on_fetch=records.append) as restarted:
        kept = await restarted.get(url, issuer=ca.cert)  # refetched first: marked for refresh
        assert kept.der == fetched.der and kept.signed_by(ca.cert)
        assert [(r.code, r.kept_cached) for r in records] == [(FailureCode.CRL_UNREACHABLE, True)]
    # Past its nextUpdate the stored CRL stands in for nothing.
    later = fetched.next_update + dt.timedelta(seconds=1)
    async with CrlFetcher(now=lambda: later, store=store) as much_later:
        with pytest.raises(ValidationFailed) as info:
            await much_later.get(url)
        assert info.value.code is FailureCode.CRL_UNREACHABLE


def test_a_folder_that_cannot_be_written_keeps_nothing_and_raises_nothing(tmp_path, ca, epoch):
    (tmp_path / "file").write_text("not a folder")
    store = CrlStore(tmp_path / "file" / "cache")
    store.save("http://crl.test/a.crl", CrlIndex.from_bytes(_der(ca, epoch)))
    assert store.load() == {}
