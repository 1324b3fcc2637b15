"""CRL server faults, end to end through real links.

A sensor dials a management console over mutual TLS; both fetch the CRLs the
other's chain names from a real HTTP CRL server that misbehaves on cue. Each
fault must end the check with its own code (hard-fail: the link halts before
any message; soft-fail: retrieval failures become warnings and the link comes
up), within the configured timeout, and leave no connection behind.

Timeouts run on trio's MockClock (rate 0, jumped by hand once the server has
every request), so "the server never answers" costs no real time. Not the
autojump clock: with real sockets it can fire timeouts early.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.appliances import EngineSettings, LinkState
from mesh.errors import FailureCode, Severity
from mesh.events import CrlFetched, CrlFetchFailed, LinkHalted, LinkUp
from mesh.validation.policy import ValidationPolicy

from .conftest import task_count, wait_delivered, wait_link

#: The configured CRL timeout these tests hold the engine to.
CRL_TIMEOUT = 3.0
SETTINGS = EngineSettings(handshake_timeout=5.0, verdict_timeout=5.0, crl_timeout=CRL_TIMEOUT)

#: Both ends fetch both CRLs of the other's chain (issuing CA's and root's)...
FETCHES_PER_ATTEMPT = 4
#: ...and the end that asks second joins the exchange in flight for each URL.
REQUESTS_PER_ATTEMPT = 2

SOFT = ValidationPolicy(revocation="soft")


async def _start_slow(deployment, nursery, mock_clock, **spec_changes):
    """A pair whose CRL server never answers; returns (mesh, trio time of the first request).

    Returns once both ends are waiting on every fetch (the clock has not moved,
    so every deadline runs from the returned time).
    """
    mesh = deployment.pair(settings=SETTINGS, **spec_changes)
    deployment.crl_server.set_fault("slow")
    await nursery.start(mesh.run)
    await deployment.crl_server.wait_requests(REQUESTS_PER_ATTEMPT)
    fetchers = [mesh.appliance(name).checker.fetcher for name in ("sensor-1", "console")]
    while sum(fetcher.fetches for fetcher in fetchers) < FETCHES_PER_ATTEMPT:
        await trio.testing.wait_all_tasks_blocked()  # the other end's handshake, on loopback
    assert deployment.crl_server.requests() == REQUESTS_PER_ATTEMPT  # one per URL
    return mesh, trio.current_time()


async def test_never_answering_server_halts_within_the_timeout_hard_fail(
    deployment, nursery, mock_clock
):
    mesh, started = await _start_slow(deployment, nursery, mock_clock)
    baseline = task_count()

    mock_clock.jump(CRL_TIMEOUT - 0.05)
    await trio.testing.wait_all_tasks_blocked()
    assert mesh.link("sensor-1", "console").state is LinkState.CONNECTING  # still waiting

    mock_clock.jump(0.1)
    link = await wait_link(mesh, "sensor-1", "console", LinkState.HALTED)
    assert trio.current_time() - started <= CRL_TIMEOUT + 0.1
    assert link.code is FailureCode.CRL_UNREACHABLE
    assert link.refused_by == "console"
    assert {by for by, _ in link.refusals} == {"sensor-1", "console"}
    assert link.delivered == 0
    failed = mesh.events.of(CrlFetchFailed)
    assert failed and {e.code for e in failed} == {FailureCode.CRL_UNREACHABLE}
    assert f"{CRL_TIMEOUT:g} s" in failed[0].detail

    # No connection hangs: both ends closed it, the tasks that served it are gone.
    # (The dialer halts the shared link record as soon as it holds both
    # verdicts; the listener logs its own refusal when its task gets there.)
    await trio.testing.wait_all_tasks_blocked()
    assert trio.current_time() - started <= CRL_TIMEOUT + 0.1
    assert {e.refused_by for e in mesh.events.of(LinkHalted)} == {"sensor-1", "console"}
    assert task_count() < baseline
    assert not mesh.events.of(LinkUp)


async def test_never_answering_server_soft_fail_is_up_with_a_warning(
    deployment, nursery, mock_clock
):
    mesh, started = await _start_slow(deployment, nursery, mock_clock, policy=SOFT)
    mock_clock.jump(CRL_TIMEOUT + 0.05)
    link = await wait_link(mesh, "sensor-1", "console", LinkState.UP, LinkState.HALTED)
    assert link.state is LinkState.UP, link
    assert trio.current_time() - started <= CRL_TIMEOUT + 0.1
    warnings = mesh.events.of(CrlFetchFailed)
    assert warnings and all(e.severity is Severity.WARNING for e in warnings)
    assert {e.code for e in warnings} == {FailureCode.CRL_UNREACHABLE}
    assert await wait_delivered(mesh, "sensor-1", "console", 0) >= 1
    assert not mesh.events.of(LinkHalted)


@pytest.mark.parametrize(
    ("policy", "state"), [(ValidationPolicy(), LinkState.HALTED), (SOFT, LinkState.UP)]
)
async def test_server_down_is_unreachable(deployment, nursery, policy, state):
    mesh = deployment.pair(policy=policy)
    deployment.crl_server.set_fault("down")
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is state
    failed = mesh.events.of(CrlFetchFailed)
    assert failed and {e.code for e in failed} == {FailureCode.CRL_UNREACHABLE}
    if state is LinkState.HALTED:
        assert link.code is FailureCode.CRL_UNREACHABLE
        assert link.message == FailureCode.CRL_UNREACHABLE.message
        assert link.delivered == 0
    else:
        assert link.delivered >= 1
        assert not mesh.events.of(LinkHalted)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("garbage", FailureCode.CRL_INVALID),
        ("html", FailureCode.CRL_INVALID),
        ("http-404", FailureCode.CRL_HTTP_ERROR),
        ("http-500", FailureCode.CRL_HTTP_ERROR),
        ("stale", FailureCode.CRL_STALE),
        ("wrong-key", FailureCode.CRL_SIGNATURE_INVALID),
    ],
)
async def test_each_bad_answer_halts_with_its_own_code(deployment, nursery, fault, code):
    mesh = deployment.pair()
    deployment.store_bad_crl_variants()
    deployment.crl_server.set_fault(fault)
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.HALTED
    assert link.code is code, link
    assert dict(link.refusals) == {"sensor-1": code, "console": code}
    assert link.delivered == 0
    assert code.message in mesh.status("console").errors[-1]


@pytest.mark.parametrize(
    ("fault", "code"),
    [("stale", FailureCode.CRL_STALE), ("wrong-key", FailureCode.CRL_SIGNATURE_INVALID)],
)
async def test_a_fetched_but_unusable_crl_fails_even_soft(deployment, nursery, fault, code):
    """Soft-fail forgives a CRL we could not get, never one we got and cannot trust."""
    mesh = deployment.pair(policy=SOFT)
    deployment.store_bad_crl_variants()
    deployment.crl_server.set_fault(fault)
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, code)


@pytest.mark.parametrize("fault", ["garbage", "html", "http-500", "down", "stale", "wrong-key"])
async def test_cached_good_crl_is_not_replaced_by_a_bad_answer(deployment, nursery, fault):
    mesh = deployment.pair()
    deployment.store_bad_crl_variants()
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP
    fetcher = mesh.appliance("console").checker.fetcher
    urls = [u for u in deployment.pki.crls() if fetcher.cached(u) is not None]
    assert urls
    cached = {url: fetcher.cached(url) for url in urls}

    # The sensor reconnects while the server misbehaves; both ends were asked
    # to refresh (crl_fault invalidates every cache), so both really fetch.
    await mesh.stop("sensor-1")
    requests = deployment.crl_server.requests()
    await mesh.crl_fault(fault)
    await mesh.start("sensor-1")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.UP, link
    assert link.code is None
    if fault != "down":
        assert deployment.crl_server.requests() > requests
    assert {url: fetcher.cached(url) for url in urls} == cached
    fetched = mesh.events.of(CrlFetched) + mesh.events.of(CrlFetchFailed)
    assert len(fetched) > len(urls) * 2
