"""The CRL fetcher against the real CRL server (and proxy) on 127.0.0.1.

Timeouts: the one test that needs a timeout to elapse uses trio's MockClock and
jumps it by hand once the server has the request (``wait_requests``), so no
real time passes. It does not use ``autojump_clock``: with real sockets the
run loop can look idle while the kernel still holds a reply, and an
autojumping clock would then fire timeouts that never happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import os
import tracemalloc
import zlib

import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.net.crl_fetch import CrlFetcher, FetchRecord, check_crl_url
from mesh.net.crl_server import CrlServer
from mesh.net.http_server import HttpServer, Request, Response
from mesh.net.proxy import ForwardProxy
from mesh.pki.issue import CertificateAuthority
from mesh.validation.revocation import CrlIndex
from mesh.validation.policy import ValidationPolicy
from mesh.validation.verdict import crl_urls, validate_peer

PATH = "/crl/contoso-issuing-ca.crl"
HIDDEN_HOST = "crl.contoso.invalid"  # resolves nowhere: only the proxy can reach it

_PROXY_VARIABLES = [
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
    "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
]


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    """The fetcher honours proxy variables; tests start from none."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class Clock:
    """A settable emulated clock (the fetcher only ever calls it)."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def clock(epoch):
    return Clock(epoch + dt.timedelta(hours=1))


@pytest.fixture
def ca(keys, epoch):
    return CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))


@pytest.fixture
async def server(nursery, ca, epoch):
    server = CrlServer({PATH: der(ca.crl(this_update=epoch))})  # CRL number 1, valid 7 days
    await nursery.start(server.serve)
    return server


@pytest.fixture
async def fetcher(clock):
    async with CrlFetcher(now=clock, timeout=5.0) as fetcher:
        yield fetcher


async def expect(code: FailureCode, coro) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        await coro
    assert info.value.code is code, info.value
    return info.value


# -- fetching and caching --


async def test_fetches_parses_and_caches_until_next_update(server, fetcher, clock, ca, epoch):
    url = server.url(PATH)
    index = await fetcher.get(url)
    assert isinstance(index, CrlIndex)
    assert index.number == 1 and index.signed_by(ca.cert)
    assert await fetcher.get(url) is index
    assert server.requests(PATH) == 1 and fetcher.fetches == 1

    clock.at = index.next_update  # still current at exactly nextUpdate
    assert await fetcher.get(url) is index
    server.publish(PATH, der(ca.crl(this_update=index.next_update)))
    clock.advance(seconds=1)  # past nextUpdate: the next get refetches
    fresh = await fetcher.get(url)
    assert fresh.number == 2
    assert server.requests(PATH) == 2


async def test_pem_bodies_too(server, fetcher, ca, epoch):
    server.publish(PATH, ca.crl(this_update=epoch).public_bytes(serialization.Encoding.PEM))
    assert (await fetcher.get(server.url(PATH))).number == 2  # the fixture's CRL was 1


async def test_single_flight_200_concurrent_gets_one_request(server, fetcher):
    url = server.url(PATH)
    results: list[CrlIndex] = []

    async def ask() -> None:
        results.append(await fetcher.get(url))

    async with trio.open_nursery() as nursery:
        for _ in range(200):
            nursery.start_soon(ask)
    assert len(results) == 200
    assert all(r is results[0] for r in results)
    assert server.requests(PATH) == 1
    assert fetcher.fetches == 1


async def test_single_flight_shares_a_failure(server, fetcher):
    server.set_fault("http-500")
    codes: list[FailureCode] = []

    async def ask() -> None:
        try:
            await fetcher.get(server.url(PATH))
        except ValidationFailed as exc:
            codes.append(exc.code)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(ask)
    assert codes == [FailureCode.CRL_HTTP_ERROR] * 50
    assert server.requests(PATH) == 1


async def test_a_cancelled_fetch_is_taken_over_by_a_waiter(server, fetcher):
    """The first asker gives up mid-fetch; the task waiting on it fetches instead."""
    url = server.url(PATH)
    server.set_fault("slow")
    got: list[CrlIndex] = []

    async def leader(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await fetcher.get(url)

    async def waiter() -> None:
        got.append(await fetcher.get(url))

    async with trio.open_nursery() as nursery:
        scope = await nursery.start(leader)
        await server.wait_requests(1, PATH)  # the leader's request is being held
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        server.set_fault("ok")
        scope.cancel()
    assert len(got) == 1 and got[0].number == 1
    assert server.requests(PATH) == 2


# -- one HTTP exchange per URL across fetchers --
#
# Fetchers of different appliances that ask for the same URL by the same route
# while an exchange is in flight join it; each keeps its own cache, decisions,
# deadline and FetchRecord.


async def ask_into(fetcher: CrlFetcher, url: str, out: dict, name: str) -> None:
    """``fetcher.get(url)`` with its outcome stored under ``name``."""
    try:
        out[name] = await fetcher.get(url)
    except ValidationFailed as exc:
        out[name] = exc


async def step(mock_clock, got: dict, seconds: float) -> set[str]:
    """Let everything runnable run, jump the clock, run again: who has finished."""
    await trio.testing.wait_all_tasks_blocked()
    mock_clock.jump(seconds)
    await trio.testing.wait_all_tasks_blocked()
    return set(got)


async def test_two_fetchers_asking_at_once_make_one_request(server, clock):
    url = server.url(PATH)
    records: dict[str, list[FetchRecord]] = {"a": [], "b": []}
    got: dict = {}
    async with (
        CrlFetcher(now=clock, on_fetch=records["a"].append) as a,
        CrlFetcher(now=clock, on_fetch=records["b"].append) as b,
    ):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask_into, a, url, got, "a")
            nursery.start_soon(ask_into, b, url, got, "b")
        assert server.requests(PATH) == 1
        assert got["a"] is got["b"] and got["a"].number == 1
        assert a.cached(url) is b.cached(url) is got["a"]  # each cached it
        assert a.fetches == b.fetches == 1
        [ra], [rb] = records["a"], records["b"]  # each recorded its own fetch
        for record in (ra, rb):
            assert (record.code, record.status, record.crl_number) == (None, 200, 1)
            assert record.size == ra.size > 0 and not record.kept_cached
        # Only an exchange in flight is shared: asking after it ended asks again.
        a.invalidate(url)
        await a.get(url)
        assert server.requests(PATH) == 2


async def test_a_fetcher_asking_after_the_exchange_ended_makes_its_own(server, clock):
    url = server.url(PATH)
    async with CrlFetcher(now=clock) as a, CrlFetcher(now=clock) as b:
        await a.get(url)
        server.set_fault("down")  # b's own request meets the server as it is now
        await expect(FailureCode.CRL_UNREACHABLE, b.get(url))
    assert server.requests(PATH) == 1


@pytest.mark.parametrize("differs", ["proxy", "timeout", "max_bytes", "trust_env"])
async def test_fetchers_on_different_routes_do_not_share(server, proxy, clock, differs):
    """Held requests show both reached the server: neither joined the other."""
    url = server.url(PATH)
    server.set_fault("slow")
    other = {
        "proxy": {"proxy": proxy.url},
        "timeout": {"timeout": 4.0},
        "max_bytes": {"max_bytes": 10_000},
        "trust_env": {"trust_env": False},
    }[differs]
    async with CrlFetcher(now=clock) as a, CrlFetcher(now=clock, **other) as b:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(a.get, url)
            await server.wait_requests(1, PATH)
            nursery.start_soon(b.get, url)
            await server.wait_requests(2, PATH)
            nursery.cancel_scope.cancel()
    assert proxy.forwarded(url) == (differs == "proxy")


async def test_more_appliances_than_a_connection_pool_holds_all_reach_the_server(server, clock):
    """Appliances' fetchers share one HTTP client per route: it has no connection cap
    (httpx's default of 100 would hold the 101st request back until its deadline)."""
    server.set_fault("slow")
    async with contextlib.AsyncExitStack() as stack:
        fetchers = [
            await stack.enter_async_context(CrlFetcher(now=clock, trust_env=False))
            for _ in range(120)
        ]
        async with trio.open_nursery() as nursery:
            for n, fetcher in enumerate(fetchers):  # distinct URLs: nobody joins anybody
                nursery.start_soon(fetcher.get, server.url(PATH) + f"?appliance={n}")
            with trio.fail_after(4):  # within the fetchers' own 5 s deadline
                await server.wait_requests(120, PATH)
            nursery.cancel_scope.cancel()


async def test_joiners_keep_their_own_deadline_on_a_server_that_never_answers(
    server, clock, mock_clock
):
    url = server.url(PATH)
    server.set_fault("slow")
    got: dict = {}
    async with CrlFetcher(now=clock) as a, CrlFetcher(now=clock) as b:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask_into, a, url, got, "a")
            await server.wait_requests(1, PATH)
            await step(mock_clock, got, 2)
            nursery.start_soon(ask_into, b, url, got, "b")  # joins at +2 s
            assert await step(mock_clock, got, 2.9) == set()  # +4.9 s
            assert await step(mock_clock, got, 0.2) == {"a"}  # +5.1 s: a's own deadline
            assert await step(mock_clock, got, 1.8) == {"a"}  # +6.9 s: b still within its own
            assert await step(mock_clock, got, 0.2) == {"a", "b"}  # +7.1 s
            assert got.keys() == {"a", "b"}
    assert server.requests(PATH) == 1
    for name in ("a", "b"):
        assert got[name].code is FailureCode.CRL_UNREACHABLE
        assert "timed out" in got[name].detail and "5 s" in got[name].detail
    assert got["a"].detail == got["b"].detail


async def test_a_joiner_whose_deadline_passes_first_times_out_on_its_own(
    server, clock, mock_clock
):
    """Three fetchers on a silent server; the first gives up (cancelled) at +3 s.

    One of the two joiners (which one is trio's choice) makes the request again,
    within what is left of its own deadline; the other joins that and, however
    the two deadlines fall, each fails at its own 5 s.
    """
    url = server.url(PATH)
    server.set_fault("slow")
    got: dict = {}

    async def leader(task_status=trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            await a.get(url)

    async with (
        CrlFetcher(now=clock) as a, CrlFetcher(now=clock) as b, CrlFetcher(now=clock) as c
    ):
        async with trio.open_nursery() as nursery:
            scope = await nursery.start(leader)
            await server.wait_requests(1, PATH)
            await step(mock_clock, got, 1)
            nursery.start_soon(ask_into, b, url, got, "b")  # deadline +6 s
            await step(mock_clock, got, 1)
            nursery.start_soon(ask_into, c, url, got, "c")  # deadline +7 s
            await step(mock_clock, got, 1)
            scope.cancel()
            await server.wait_requests(2, PATH)
            assert await step(mock_clock, got, 2.9) == set()  # +5.9 s
            assert await step(mock_clock, got, 0.2) == {"b"}  # +6.1 s
            assert await step(mock_clock, got, 0.7) == {"b"}  # +6.8 s
            assert await step(mock_clock, got, 0.3) == {"b", "c"}  # +7.1 s
    assert server.requests(PATH) == 2
    assert got["b"].code is got["c"].code is FailureCode.CRL_UNREACHABLE
    assert "timed out" in got["b"].detail and "timed out" in got["c"].detail


async def test_a_joiner_takes_over_when_the_leading_fetch_is_cancelled(server, clock):
    url = server.url(PATH)
    server.set_fault("slow")
    records: list[FetchRecord] = []
    got: dict = {}

    async with CrlFetcher(now=clock) as a, CrlFetcher(now=clock, on_fetch=records.append) as b:

        async def leader(task_status=trio.TASK_STATUS_IGNORED) -> None:
            with trio.CancelScope() as scope:
                task_status.started(scope)
                await a.get(url)

        async with trio.open_nursery() as nursery:
            scope = await nursery.start(leader)
            await server.wait_requests(1, PATH)  # the leader's request is held
            nursery.start_soon(ask_into, b, url, got, "b")
            await trio.testing.wait_all_tasks_blocked()
            assert server.requests(PATH) == 1  # b joined it
            server.set_fault("ok")
            scope.cancel()
    assert got["b"].number == 1  # not the leader's Cancelled: b fetched it itself
    assert server.requests(PATH) == 2
    [record] = records
    assert (record.code, record.status, record.crl_number) == (None, 200, 1)
    assert a.cached(url) is None  # the cancelled fetcher got nothing


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [("http-500", FailureCode.CRL_HTTP_ERROR, 500), ("garbage", FailureCode.CRL_INVALID, 200)],
)
async def test_a_shared_failure_leaves_each_fetcher_its_own_decision(
    server, clock, fault, code, status
):
    """One bad answer for two fetchers: the one holding a good CRL keeps it."""
    url = server.url(PATH)
    records: dict[str, list[FetchRecord]] = {"warm": [], "cold": []}
    got: dict = {}
    async with (
        CrlFetcher(now=clock, on_fetch=records["warm"].append) as warm,
        CrlFetcher(now=clock, on_fetch=records["cold"].append) as cold,
    ):
        good = await warm.get(url)
        server.set_fault(fault)
        warm.invalidate(url)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask_into, warm, url, got, "warm")
            nursery.start_soon(ask_into, cold, url, got, "cold")
        assert server.requests(PATH) == 2  # the warm-up, then one shared exchange
        assert got["warm"] is good and warm.ready(url) is good
        assert got["cold"].code is code and cold.cached(url) is None
        [_, kept], [failed] = records["warm"], records["cold"]
        assert (kept.code, kept.status, kept.kept_cached) == (code, status, True)
        assert (failed.code, failed.status, failed.kept_cached) == (code, status, False)
        assert kept.detail == failed.detail and kept.size == failed.size


# -- every fetch error code --


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/crl/x.crl", "ldap://ldap.contoso.example/cn=crl", "ftp://x/y.crl",
     "http:///no-host.crl", "not a url"],
)
async def test_non_http_urls_are_refused_without_a_request(fetcher, url):
    failure = await expect(FailureCode.CRL_URL_UNSUPPORTED, fetcher.get(url))
    assert fetcher.fetches == 0
    if url.startswith("https"):
        assert "http:// CRL Distribution Point" in failure.detail


async def test_refused_is_unreachable(server, fetcher):
    server.set_fault("down")
    failure = await expect(FailureCode.CRL_UNREACHABLE, fetcher.get(server.url(PATH)))
    assert "refused" in failure.detail.lower()


async def test_unknown_host_is_unreachable(fetcher):
    await expect(FailureCode.CRL_UNREACHABLE, fetcher.get(f"http://{HIDDEN_HOST}{PATH}"))


async def test_no_answer_is_a_timeout(server, clock, mock_clock):
    server.set_fault("slow")
    fetcher = CrlFetcher(now=clock, timeout=5.0)
    outcome: list[ValidationFailed] = []

    async def ask() -> None:
        try:
            await fetcher.get(server.url(PATH))
        except ValidationFailed as exc:
            outcome.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await server.wait_requests(1, PATH)
        mock_clock.jump(4.9)
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == []  # not yet
        mock_clock.jump(0.2)
    assert [f.code for f in outcome] == [FailureCode.CRL_UNREACHABLE]
    assert "timed out" in outcome[0].detail
    assert "5 s" in outcome[0].detail
    await fetcher.aclose()


@pytest.mark.parametrize(("fault", "status"), [("http-404", 404), ("http-500", 500)])
async def test_http_status_is_an_http_error(server, fetcher, fault, status):
    server.set_fault(fault)
    failure = await expect(FailureCode.CRL_HTTP_ERROR, fetcher.get(server.url(PATH)))
    assert f"HTTP {status}" in failure.detail


@pytest.mark.parametrize("fault", ["garbage", "html"])
async def test_a_body_that_is_not_a_crl_is_invalid(server, fetcher, fault):
    server.set_fault(fault)
    await expect(FailureCode.CRL_INVALID, fetcher.get(server.url(PATH)))


async def test_a_body_over_the_size_cap_is_invalid(server, clock):
    async with CrlFetcher(now=clock, max_bytes=100) as fetcher:
        failure = await expect(FailureCode.CRL_INVALID, fetcher.get(server.url(PATH)))
    assert "100-byte CRL size cap" in failure.detail


# -- what replaces a cached CRL --


async def test_a_failed_refresh_keeps_the_current_crl(server, fetcher):
    url = server.url(PATH)
    good = await fetcher.get(url)
    for fault in ("garbage", "html", "http-500", "down"):
        server.set_fault(fault)
        fetcher.invalidate(url)
        assert await fetcher.get(url) is good, fault
    # No refresh was asked for since: the good one is served from the cache.
    assert await fetcher.get(url) is good
    assert fetcher.fetches == 5


async def test_invalidate_sees_a_republished_crl(server, fetcher, ca, keys, epoch):
    url = server.url(PATH)
    before = await fetcher.get(url)
    leaf = ca.issue("sensor-7.contoso.example", not_before=epoch, key=keys(2048))
    ca.revoke(leaf.serial, at=epoch)
    server.publish(PATH, der(ca.crl(this_update=epoch + dt.timedelta(minutes=30))))
    assert await fetcher.get(url) is before  # a real appliance waits for nextUpdate
    fetcher.invalidate()
    after = await fetcher.get(url)
    assert after.number == 2 and after.is_revoked(leaf.serial)


async def test_an_older_or_stale_crl_does_not_replace_a_current_one(server, fetcher, ca, epoch):
    url = server.url(PATH)
    current = await fetcher.get(url)
    old_copy = der(ca.crl(this_update=epoch - dt.timedelta(days=30)))  # number 2, long stale
    server.set_documents({PATH: old_copy}, variant="stale")
    server.set_fault("stale")
    fetcher.invalidate(url)
    assert await fetcher.get(url) is current


async def test_a_stale_crl_is_returned_for_the_core_but_not_cached(server, fetcher, clock, ca, epoch):
    stale = der(ca.crl(this_update=epoch - dt.timedelta(days=30)))
    server.set_documents({PATH: stale}, variant="stale")
    server.set_fault("stale")
    index = await fetcher.get(server.url(PATH))
    assert index.is_stale(clock())  # the core reports crl_stale
    await fetcher.get(server.url(PATH))
    assert server.requests(PATH) == 2


async def test_a_newer_crl_of_another_key_is_left_to_the_core(server, fetcher, ca, keys, epoch):
    """The fetcher knows no issuer; the core rejects it as crl_signature_invalid."""
    url = server.url(PATH)
    await fetcher.get(url)
    impostor = CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))
    impostor.crl_number = 41
    server.set_documents({PATH: der(impostor.crl(this_update=epoch))}, variant="wrong-key")
    server.set_fault("wrong-key")
    fetcher.invalidate(url)
    forged = await fetcher.get(url)
    assert forged.number == 42
    assert not forged.signed_by(ca.cert)


async def test_past_next_update_a_failure_is_raised(server, fetcher, clock):
    url = server.url(PATH)
    index = await fetcher.get(url)
    server.set_fault("down")
    clock.at = index.next_update + dt.timedelta(seconds=1)
    await expect(FailureCode.CRL_UNREACHABLE, fetcher.get(url))
    assert fetcher.cached(url) is index  # still known, no longer usable


async def test_clear_forgets(server, fetcher):
    url = server.url(PATH)
    await fetcher.get(url)
    fetcher.clear(url)
    assert fetcher.cached(url) is None
    await fetcher.get(url)
    assert server.requests(PATH) == 2


async def test_every_fetch_is_recorded(server, clock):
    records: list[FetchRecord] = []
    async with CrlFetcher(now=clock, on_fetch=records.append) as fetcher:
        await fetcher.get(server.url(PATH))
        server.set_fault("http-404")
        fetcher.invalidate()
        await fetcher.get(server.url(PATH))
    ok, failed = records
    assert (ok.code, ok.status, ok.kept_cached, ok.crl_number) == (None, 200, False, 1)
    assert ok.size > 0 and ok.at == clock()
    assert (failed.code, failed.status, failed.kept_cached) == (FailureCode.CRL_HTTP_ERROR, 404, True)


# -- the core's lookup --


async def test_prefetch_gives_the_core_a_lookup(server, fetcher):
    good, missing = server.url(PATH), server.url("/crl/missing.crl")
    lookup = await fetcher.prefetch([good, missing, good])
    assert isinstance(lookup(good), CrlIndex)
    assert lookup(missing).code is FailureCode.CRL_HTTP_ERROR
    assert lookup("http://elsewhere/x.crl").code is FailureCode.CRL_UNREACHABLE
    assert server.requests() == 2


async def test_ready_answers_only_what_get_would_answer_without_fetching(server, fetcher, clock):
    url = server.url(PATH)
    assert fetcher.ready(url) is None  # nothing cached
    index = await fetcher.get(url)
    assert fetcher.ready(url) is index
    fetcher.invalidate(url)
    assert fetcher.ready(url) is None  # marked for refresh
    index = await fetcher.get(url)
    assert fetcher.ready(url) is index
    clock.at = index.next_update + dt.timedelta(seconds=1)
    assert fetcher.ready(url) is None  # stale by the emulated clock
    assert server.requests(PATH) == 2


async def test_prefetch_of_cached_urls_makes_no_request(server, fetcher):
    url = server.url(PATH)
    first = (await fetcher.prefetch([url]))(url)
    again = (await fetcher.prefetch([url, url]))(url)
    assert again is first and server.requests(PATH) == 1


async def test_fetchers_in_one_process_share_one_parse_of_the_same_crl(server, clock):
    url = server.url(PATH)
    async with CrlFetcher(now=clock) as one, CrlFetcher(now=clock) as two:
        a, b = await one.get(url), await two.get(url)
        assert a is b  # one parsed copy for both
        assert one.fetches == two.fetches == 1 and server.requests(PATH) == 2


# -- large CRLs --


async def test_a_large_crl_is_parsed_off_the_loop(nursery, key_pool, clock, epoch):
    ca = CertificateAuthority.root("Big CA", not_before=epoch, key=key_pool.cursor()(2048))
    for n in range(12_000):
        ca.revoke(10**12 + n, at=epoch)
    data = der(ca.crl(this_update=epoch))
    assert len(data) > 256 * 1024  # above the in-line parse threshold
    server = CrlServer({PATH: data})
    await nursery.start(server.serve)
    async with CrlFetcher(now=clock) as fetcher:
        index = await fetcher.get(server.url(PATH))
    assert len(index) == 12_000 and index.is_revoked(10**12 + 11_999)


# -- proxies --


@pytest.fixture
async def proxy(nursery, server):
    proxy = ForwardProxy(routes={f"{HIDDEN_HOST}:80": ("127.0.0.1", server.port)})
    await nursery.start(proxy.serve)
    return proxy


async def test_a_proxy_reaches_what_the_fetcher_cannot(server, proxy, clock):
    url = f"http://{HIDDEN_HOST}{PATH}"
    async with CrlFetcher(now=clock) as direct:
        await expect(FailureCode.CRL_UNREACHABLE, direct.get(url))
    async with CrlFetcher(now=clock, proxy=proxy.url) as via_proxy:
        index = await via_proxy.get(url)
    assert index.number == 1
    assert proxy.forwarded(url) == 1
    assert server.requests(PATH) == 1


async def test_proxy_from_the_environment(server, proxy, clock, monkeypatch):
    url = f"http://{HIDDEN_HOST}{PATH}"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with CrlFetcher(now=clock) as fetcher:
        assert (await fetcher.get(url)).number == 1
    async with CrlFetcher(now=clock, trust_env=False) as fetcher:
        await expect(FailureCode.CRL_UNREACHABLE, fetcher.get(url))
    monkeypatch.setenv("NO_PROXY", HIDDEN_HOST)
    async with CrlFetcher(now=clock) as fetcher:
        await expect(FailureCode.CRL_UNREACHABLE, fetcher.get(url))
    assert proxy.forwarded() == 1


async def test_a_proxy_that_is_down_is_unreachable(server, proxy, clock):
    proxy.unbind()
    async with CrlFetcher(now=clock, proxy=proxy.url) as fetcher:
        failure = await expect(FailureCode.CRL_UNREACHABLE, fetcher.get(server.url(PATH)))
    assert f"via proxy {proxy.url}" in failure.detail


async def test_a_proxy_that_cannot_reach_the_server_is_an_http_error(server, proxy, clock):
    server.set_fault("down")
    async with CrlFetcher(now=clock, proxy=proxy.url) as fetcher:
        failure = await expect(FailureCode.CRL_HTTP_ERROR, fetcher.get(server.url(PATH)))
    assert "HTTP 502" in failure.detail


@pytest.mark.parametrize("bad", ["socks5://127.0.0.1:1080", "proxy.contoso.example:3128", "http://"])
def test_a_bad_proxy_url_is_one_clear_line(clock, bad):
    with pytest.raises(InputError, match="is not an http:// proxy URL; give it as http://HOST:PORT"):
        CrlFetcher(now=clock, proxy=bad)


def test_check_crl_url_accepts_any_host_and_port():
    assert check_crl_url("http://crl.contoso.example:8080/crl/a.crl").port == 8080


# -- with the core: chains, issuers, validate_peer --


@pytest.fixture
async def hierarchy(nursery, keys, epoch):
    """Root -> issuing CA -> leaves, the CRLs served by a real CRL server."""
    server = CrlServer()
    await nursery.start(server.serve)
    base = f"{server.base_url}/crl"
    root = CertificateAuthority.root(
        "Contoso Root CA", not_before=epoch, key=keys(2048), crl_base_url=base
    )
    issuing = root.intermediate(
        "Contoso Issuing CA", not_before=epoch, key=keys(2048), crl_base_url=base
    )
    return server, root, issuing


def publish_crls(server, epoch, *cas):
    for ca in cas:
        server.publish(url_path(ca.crl_url), der(ca.crl(this_update=epoch)))


def url_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


async def test_200_concurrent_checks_with_one_cdp_make_one_request(hierarchy, keys, clock, epoch):
    """The issue's single-flight test: 200 handshakes' worth of checks, one fetch per URL."""
    server, root, issuing = hierarchy
    key = keys(2048)  # one key for all leaves keeps the test fast; serials differ
    leaves = [
        issuing.issue(f"sensor-{n}.contoso.example", not_before=epoch, key=key)
        for n in range(200)
    ]
    issuing.revoke(leaves[7].serial, at=epoch)
    publish_crls(server, epoch, root, issuing)
    verdicts = {}

    async with CrlFetcher(now=clock) as fetcher:

        async def check(n: int) -> None:
            chain = [leaves[n].cert, *leaves[n].chain]
            crls = await fetcher.prefetch(crl_urls(chain, [root.cert], at=clock()))
            verdicts[n] = validate_peer(chain, trust=[root.cert], at=clock(), crls=crls)

        async with trio.open_nursery() as nursery:
            for n in range(200):
                nursery.start_soon(check, n)

    assert server.requests(url_path(issuing.crl_url)) == 1
    assert server.requests(url_path(root.crl_url)) == 1
    assert fetcher.fetches == 2
    assert verdicts[7].primary.code is FailureCode.REVOKED
    assert all(v.accepted for n, v in verdicts.items() if n != 7)


async def test_an_untrusted_chain_fetches_nothing(hierarchy, keys, clock, epoch):
    server, root, issuing = hierarchy
    leaf = issuing.issue("stranger.example", not_before=epoch, key=keys(2048))
    other_root = CertificateAuthority.root("Other Root", not_before=epoch, key=keys(2048))
    chain = [leaf.cert, *leaf.chain]
    async with CrlFetcher(now=clock) as fetcher:
        crls = await fetcher.prefetch(crl_urls(chain, [other_root.cert], at=clock()))
    assert server.requests() == 0
    assert crls(issuing.crl_url).code is FailureCode.CRL_UNREACHABLE


async def test_with_the_issuer_known_a_forged_crl_does_not_replace_a_good_one(
    hierarchy, keys, clock, epoch
):
    server, root, issuing = hierarchy
    publish_crls(server, epoch, root, issuing)
    url, path = issuing.crl_url, url_path(issuing.crl_url)
    async with CrlFetcher(now=clock) as fetcher:
        good = await fetcher.get(url, issuer=issuing.cert)
        impostor = CertificateAuthority.root(
            "Contoso Issuing CA", not_before=epoch, key=keys(2048)
        )
        impostor.crl_number = 41
        server.publish(path, der(impostor.crl(this_update=epoch)))
        fetcher.invalidate(url)
        assert await fetcher.get(url, issuer=issuing.cert) is good
        assert server.requests(path) == 2
        # Without anything cached, the forged CRL goes to the core, which refuses it.
        fetcher.clear()
        forged = await fetcher.get(url, issuer=issuing.cert)
    assert forged.number == 42 and not forged.signed_by(issuing.cert)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("down", FailureCode.CRL_UNREACHABLE),
        ("http-404", FailureCode.CRL_HTTP_ERROR),
        ("http-500", FailureCode.CRL_HTTP_ERROR),
        ("garbage", FailureCode.CRL_INVALID),
        ("html", FailureCode.CRL_INVALID),
        ("stale", FailureCode.CRL_STALE),
        ("wrong-key", FailureCode.CRL_SIGNATURE_INVALID),
    ],
)
@pytest.mark.parametrize("revocation", ["hard", "soft"])
async def test_each_server_fault_is_its_own_code_at_validation(
    hierarchy, keys, clock, epoch, fault, code, revocation
):
    """Fetched over real HTTP and judged by the core, hard- and soft-fail."""
    server, root, issuing = hierarchy
    leaf = issuing.issue("sensor-1.contoso.example", not_before=epoch, key=keys(2048))
    publish_crls(server, epoch, root, issuing)
    path = url_path(issuing.crl_url)
    stale = der(issuing.crl(this_update=epoch - dt.timedelta(days=30)))
    impostor = CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))
    server.set_documents({path: stale}, variant="stale")
    server.set_documents({path: der(impostor.crl(this_update=epoch))}, variant="wrong-key")
    if fault == "down":
        server.set_fault("down")
    else:
        server.set_fault(fault, path=path)  # the root's CRL stays good
    chain, trust = [leaf.cert, *leaf.chain], [root.cert]
    policy = ValidationPolicy(revocation=revocation)
    async with CrlFetcher(now=clock) as fetcher:
        crls = await fetcher.prefetch(crl_urls(chain, trust, at=clock(), policy=policy))
    verdict = validate_peer(chain, trust=trust, at=clock(), crls=crls, policy=policy)
    if revocation == "soft" and code.is_crl_retrieval:
        assert verdict.accepted
        assert code in {w.code for w in verdict.warnings}
    else:
        assert not verdict.accepted
        assert verdict.primary.code is code, verdict.primary


# -- encoded bodies: the size cap bounds what is decoded, as it is decoded --

_CAP = 1024 * 1024  # the fetcher's cap in these tests

#: Stopping mid-body leaves httpx's and httpcore's inner async generators to
#: trio's finalizer, which warns (httpx closes the connection but not them).
_ABANDONED_BODY = pytest.mark.filterwarnings(
    "ignore:Async generator 'http(x|core)\\.:ResourceWarning")
_BOMB = 64 * 1024 * 1024  # what each bomb decodes to


def _compressed(data_size: int, wbits: int) -> bytes:
    """``data_size`` zero bytes, compressed without ever holding them whole."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(1024 * 1024)
    out = [packer.compress(block) for _ in range(data_size // len(block))]
    return b"".join(out) + packer.flush()


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


class _Encoded(HttpServer):
    """Answers every GET with one fixed body and Content-Encoding."""

    def __init__(self, body: bytes, encoding: str) -> None:
        super().__init__()
        self.body, self.encoding = body, encoding

    async def respond(self, request: Request) -> Response:
        return Response(status=200, body=self.body, content_type="application/pkix-crl",
                        headers=(("Content-Encoding", self.encoding),))


async def _fetch_traced(nursery, clock, body: bytes, encoding: str, max_bytes: int = _CAP):
    """Fetch ``body`` served with ``encoding``; (failure, peak and kept traced bytes).

    "kept" is what is still allocated after the fetch while the failure is
    held, as a node holds the last error it logged.
    """
    server = _Encoded(body, encoding)
    await nursery.start(server.serve)
    url = f"{server.base_url}{PATH}"
    async with CrlFetcher(now=clock, max_bytes=max_bytes) as fetcher:
        with pytest.raises(ValidationFailed):  # once untraced: imports, caches, TLS context
            await fetcher.get(url)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        async with CrlFetcher(now=clock, max_bytes=max_bytes) as fetcher:
            with pytest.raises(ValidationFailed) as info:
                await fetcher.get(url)
        failure = info.value
        del info
        gc.collect()
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    server.unbind()
    return failure, peak - base, kept - base


@_ABANDONED_BODY
@pytest.mark.parametrize(("encoding", "make"), [
    ("gzip", lambda: _compressed(_BOMB, 16 + zlib.MAX_WBITS)),
    ("gzip, gzip", lambda: _gzip(_compressed(_BOMB, 16 + zlib.MAX_WBITS))),
    ("deflate", lambda: _compressed(_BOMB, zlib.MAX_WBITS)),
    ("identity, deflate", lambda: _compressed(_BOMB, -zlib.MAX_WBITS)),  # raw deflate too
])
async def test_a_compression_bomb_stops_at_the_cap_as_it_is_decoded(
    nursery, clock, encoding, make
):
    failure, peak, kept = await _fetch_traced(nursery, clock, make(), encoding)
    assert failure.code is FailureCode.CRL_INVALID
    assert failure.detail.endswith(f"exceeds the {_CAP}-byte CRL size cap")
    assert peak < 2 * _CAP, f"peak {peak} bytes"
    assert kept < _CAP // 4, f"kept {kept} bytes"


async def test_a_body_that_is_not_a_crl_is_not_kept_by_its_failure(nursery, clock):
    failure, peak, kept = await _fetch_traced(
        nursery, clock, _gzip(os.urandom(_CAP - 4096)), "gzip", max_bytes=_CAP)
    assert failure.code is FailureCode.CRL_INVALID
    assert kept < _CAP // 4, f"kept {kept} bytes"


@_ABANDONED_BODY
@pytest.mark.parametrize(("encoding", "detail"), [
    ("br", "Content-Encoding 'br' is not supported (only gzip, deflate and identity)"),
    ("gzip, compress", "Content-Encoding 'compress' is not supported (only gzip, deflate and identity)"),
])
async def test_an_unknown_encoding_is_refused_with_its_name(nursery, clock, encoding, detail):
    server = _Encoded(b"\x00" * 100, encoding)
    await nursery.start(server.serve)
    async with CrlFetcher(now=clock) as fetcher:
        failure = await expect(FailureCode.CRL_INVALID, fetcher.get(f"{server.base_url}{PATH}"))
    assert failure.detail == f"{server.base_url}{PATH}: {detail}"


@_ABANDONED_BODY
async def test_a_broken_encoding_is_invalid(nursery, clock):
    server = _Encoded(b"not gzip at all", "gzip")
    await nursery.start(server.serve)
    async with CrlFetcher(now=clock) as fetcher:
        failure = await expect(FailureCode.CRL_INVALID, fetcher.get(f"{server.base_url}{PATH}"))
    assert failure.detail.startswith(f"{server.base_url}{PATH}: the body is not valid gzip")


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "deflate", "identity"])
async def test_an_encoded_crl_is_decoded(nursery, clock, ca, epoch, encoding):
    body = der(ca.crl(this_update=epoch))
    for layer in (e.strip() for e in encoding.split(",")):
        if layer == "gzip":
            body = _gzip(body)
        elif layer == "deflate":
            body = zlib.compress(body)
    server = _Encoded(body, encoding)
    await nursery.start(server.serve)
    async with CrlFetcher(now=clock) as fetcher:
        index = await fetcher.get(f"{server.base_url}{PATH}")
    assert index.number == 1
