"""PeerChecker: judged from the CRL cache when it can, fetched when it must."""

from __future__ import annotations


from mesh.appliances.checks import PeerChecker
from mesh.clock import EmulatedClock
from mesh.errors import FailureCode
from mesh.eventlog import EventLog
from mesh.events import CrlFetched
from mesh.validation.policy import ValidationPolicy

POLICY = ValidationPolicy(purpose="client")


def _chain(material):
    return [material.cert, *material.chain]


async def test_a_warm_cache_judges_without_requests_and_a_refresh_sees_a_revocation(deployment):
    pki = deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    trust = tuple(pki.trust_roots())
    events = EventLog()
    checker = PeerChecker("console", clock=EmulatedClock(deployment.epoch), events=events)
    try:
        chain = _chain(pki.appliances["sensor-1"])
        first = await checker.check(chain, trust=trust, policy=POLICY)
        assert first.accepted
        fetched = len(events.of(CrlFetched))
        requests = deployment.crl_server.requests()
        assert fetched == 2  # the issuing CA's CRL and the root's

        again = await checker.check(chain, trust=trust, policy=POLICY)
        assert again.accepted
        assert deployment.crl_server.requests() == requests  # answered from memory
        assert len(events.of(CrlFetched)) == fetched

        pki.revoke("sensor-1", at=deployment.epoch)
        # Published at the instant the clock reads: a CRL whose thisUpdate is
        # still in the future is refused (crl_invalid, RFC 5280 5.1.2.4).
        deployment.crl_server.set_documents(pki.crl_documents(at=deployment.epoch))
        still = await checker.check(chain, trust=trust, policy=POLICY)
        assert still.accepted  # cached until nextUpdate, as a real appliance
        checker.invalidate()
        refused = await checker.check(chain, trust=trust, policy=POLICY)
        assert not refused.accepted and refused.primary.code is FailureCode.REVOKED
        assert deployment.crl_server.requests() > requests
    finally:
        await checker.aclose()


async def test_a_chain_that_does_not_lead_to_trust_fetches_nothing(deployment):
    pki = deployment.build(("sensor-1", "sensor"))
    checker = PeerChecker("console", clock=EmulatedClock(deployment.epoch), events=EventLog())
    try:
        verdict = await checker.check(
            _chain(pki.appliances["sensor-1"]), trust=(), policy=POLICY
        )
        assert not verdict.accepted
        assert verdict.primary.code is FailureCode.CHAIN_UNTRUSTED
        assert deployment.crl_server.requests() == 0
    finally:
        await checker.aclose()


async def test_a_cache_miss_stops_the_judgement_from_memory_at_once(deployment):
    """The first CRL memory cannot answer ends the pass from memory: no finding
    is built for it and no later CRL is asked for; the fetch and the one
    judgement that counts follow."""
    pki = deployment.build(("sensor-1", "sensor"))
    trust = tuple(pki.trust_roots())
    checker = PeerChecker("console", clock=EmulatedClock(deployment.epoch), events=EventLog())
    try:
        chain = _chain(pki.appliances["sensor-1"])
        assert (await checker.check(chain, trust=trust, policy=POLICY)).accepted
        asked: list[str] = []
        ready = checker.fetcher.ready

        def counting(url: str):
            asked.append(url)
            return ready(url)

        checker.fetcher.ready = counting  # type: ignore[method-assign]
        checker.invalidate()  # both CRLs (the issuing CA's and the root's) to refresh
        again = await checker.check(chain, trust=trust, policy=POLICY)
        assert again.accepted
        assert len(asked) == 1
    finally:
        await checker.aclose()
