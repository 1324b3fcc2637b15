"""Runtime actions change the outcome at the next attempt: revoke, upload, toggle, time."""

from __future__ import annotations

import datetime as dt

import trio

from cryptography.hazmat.primitives import hashes, serialization

from mesh.appliances import LinkState
from mesh.errors import FailureCode
from mesh.events import (
    CertificateRevoked,
    CertificateUploaded,
    CrlFetched,
    CrlFetchFailed,
    LinkDown,
    LinkHalted,
    LinkRecheck,
    TrustAnchorSet,
    UploadRefused,
)
from mesh.net.proxy import ForwardProxy
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.issue import Issued


def _pair(deployment, **console):
    deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    return deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console", **console),
        ]
    )


def _issued(material) -> Issued:
    return Issued(cert=material.cert, key=material.issued.key, chain=material.chain)


async def test_revocation_published_while_disconnected_halts_the_next_attempt(
    deployment, nursery
):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP

    await mesh.stop("sensor-1")
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.DOWN
    serial = await mesh.revoke("sensor-1")
    assert mesh.events.of(CertificateRevoked, serial=serial)
    delivered = mesh.link("sensor-1", "console").delivered

    await mesh.start("sensor-1")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code, link.refused_by) == (
        LinkState.HALTED,
        FailureCode.REVOKED,
        "console",
    )
    assert link.serial == serial
    assert link.delivered == delivered  # nothing crossed after the halt


async def test_stopping_the_listener_marks_the_link_down_and_starting_restores_it(
    deployment, nursery
):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    port = mesh.appliance("console").port
    await mesh.stop("console")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert link.state is LinkState.DOWN
    assert mesh.events.of(LinkDown, dialer="sensor-1")
    assert not mesh.status("console").running
    await mesh.start("console")
    await mesh.settle()
    assert mesh.appliance("console").port == port
    assert mesh.link("sensor-1", "console").state is LinkState.UP


async def test_first_start_is_self_signed_then_uploads_bring_the_link_up(deployment, nursery):
    pki = deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", identity=None, connects_to=["console"]),
            deployment.spec("console", "management-console", identity=None),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    status = mesh.status("sensor-1")
    assert status.self_signed and status.subject.startswith("CN=sensor-1.contoso.test,")
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, FailureCode.CHAIN_UNTRUSTED)
    assert {name for name, _ in link.refusals} == {"sensor-1", "console"}

    verdict = await mesh.upload("console", _issued(pki.appliances["console"]))
    assert verdict.accepted
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.refused_by) == (LinkState.HALTED, "console")

    verdict = await mesh.upload("sensor-1", _issued(pki.appliances["sensor-1"]))
    assert verdict.accepted
    status = mesh.status("sensor-1")
    assert not status.self_signed
    # The status names the uploaded certificate, not the self-signed one it replaced.
    assert status.subject == pki.appliances["sensor-1"].cert.subject.rfc4514_string()
    assert len(mesh.events.of(CertificateUploaded)) == 2
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP


async def test_without_trust_an_upload_is_judged_against_its_chains_root_and_adopts_it(
    deployment, nursery
):
    """A fresh console with no trust: the .pem holding every CA up to the root
    is what the upload is judged against, and what its peers are judged against after."""
    pki = deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console", identity=None, trust=()),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, FailureCode.CHAIN_UNTRUSTED)
    console = mesh.appliance("console")
    material = pki.appliances["console"]

    # The chain without its root: refused, and the detail says what to do.
    verdict = await mesh.upload("console", _issued(material))
    assert (verdict.primary.code, verdict.primary.detail) == (
        FailureCode.CHAIN_UNTRUSTED,
        "no trust anchor: this appliance has no trust configured and the uploaded chain "
        "holds no self-signed root; include the root CA in the chain (.pem) file or "
        "configure trust",
    )
    assert console.trust == () and not mesh.events.of(TrustAnchorSet)

    with_root = Issued(
        cert=material.cert, key=material.issued.key, chain=(*material.chain, pki.root.cert)
    )
    verdict = await mesh.upload("console", with_root)
    assert verdict.accepted, verdict.failures
    assert console.trust == (pki.root.cert,)
    assert mesh.events.kinds()[-2:] == ["certificate-uploaded", "trust-anchor-set"]
    [adopted] = mesh.events.of(TrustAnchorSet)
    assert (adopted.appliance, adopted.subject, adopted.sha256_fingerprint) == (
        "console",
        pki.root.cert.subject.rfc4514_string(),
        pki.root.cert.fingerprint(hashes.SHA256()).hex(":").upper(),
    )
    # Its peers are now judged against the adopted root.
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP

    # Adopted trust is the appliance's trust now: another root does not replace it.
    other = Pki.build(
        at=deployment.epoch, root="Fabrikam Root CA",
        appliances=[ApplianceRequest(name="console", role="management-console")],
        keys=deployment.keys,
    )
    foreign = other.appliances["console"]
    verdict = await mesh.upload("console", Issued(
        cert=foreign.cert, key=foreign.issued.key, chain=(*foreign.chain, other.root.cert)
    ))
    assert verdict.primary.code is FailureCode.CHAIN_UNTRUSTED
    assert console.trust == (pki.root.cert,) and len(mesh.events.of(TrustAnchorSet)) == 1

    # An appliance with configured trust keeps it: nothing is adopted.
    verdict = await mesh.upload("sensor-1", Issued(
        cert=pki.appliances["sensor-1"].cert, key=pki.appliances["sensor-1"].issued.key,
        chain=(*pki.appliances["sensor-1"].chain, pki.root.cert),
    ))
    assert verdict.accepted and len(mesh.events.of(TrustAnchorSet)) == 1


async def test_without_trust_and_with_validation_off_nothing_is_adopted(deployment, nursery):
    """With validation off the chain is not judged, so its root is not taken on trust."""
    pki = deployment.build(("console", "management-console"))
    mesh = deployment.mesh(
        [deployment.spec("console", "management-console", identity=None, trust=(),
                         validation=False)]
    )
    await nursery.start(mesh.run)
    material = pki.appliances["console"]
    verdict = await mesh.upload("console", Issued(
        cert=material.cert, key=material.issued.key, chain=(*material.chain, pki.root.cert)
    ))
    assert verdict.accepted and verdict.skipped
    assert mesh.appliance("console").trust == () and not mesh.events.of(TrustAnchorSet)


async def test_a_refused_upload_changes_nothing(deployment, nursery):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    before = mesh.status("sensor-1").serial
    pki = deployment.pki
    expired = pki.reissue("sensor-1", "expired", at=deployment.epoch)
    verdict = await mesh.upload("sensor-1", _issued(expired))
    assert not verdict.accepted
    assert verdict.primary.code is FailureCode.EXPIRED
    [refused] = mesh.events.of(UploadRefused)
    assert refused.code is FailureCode.EXPIRED
    assert mesh.status("sensor-1").serial == before
    assert FailureCode.EXPIRED.message in mesh.status("sensor-1").errors[-1]

    # A fresh connection still presents the old certificate.
    await mesh.stop("console")
    await mesh.start("console")
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP


async def test_wrong_passphrase_and_key_mismatch_refuse_the_upload(deployment, nursery):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    material = deployment.pki.reissue("sensor-1", at=deployment.epoch)
    key_pem = material.issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"the-real-one"),
    )
    verdict = await mesh.upload("sensor-1", _issued(material), "not-it", key_pem=key_pem)
    assert verdict.primary.code is FailureCode.PASSPHRASE_MISMATCH
    verdict = await mesh.upload("sensor-1", _issued(material), "the-real-one", key_pem=key_pem)
    assert verdict.accepted

    other = deployment.pki.appliances["console"].issued.key
    mismatched = Issued(cert=material.cert, key=other, chain=material.chain)
    mesh.set_validation("sensor-1", False)
    verdict = await mesh.upload("sensor-1", mismatched)
    assert verdict.primary.code is FailureCode.KEY_MISMATCH
    assert [e.code for e in mesh.events.of(UploadRefused)] == [
        FailureCode.PASSPHRASE_MISMATCH,
        FailureCode.KEY_MISMATCH,
    ]
    # Nothing a person could steal ever reaches the event stream or the status.
    await mesh.settle()
    everything = mesh.events.to_jsonl() + "".join(
        mesh.status(name).render() for name in mesh.names
    )
    for secret in ("PRIVATE KEY", "the-real-one", "not-it", key_pem.decode().splitlines()[1]):
        assert secret not in everything


async def test_upload_with_validation_off_is_used_at_the_next_connection(deployment, nursery):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    mesh.set_validation("sensor-1", False)
    expired = deployment.pki.reissue("sensor-1", "expired", at=deployment.epoch)
    verdict = await mesh.upload("sensor-1", _issued(expired))
    assert verdict.accepted and verdict.skipped
    assert mesh.link("sensor-1", "console").state is LinkState.UP  # live link unchanged
    await mesh.stop("console")
    await mesh.start("console")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code, link.refused_by) == (
        LinkState.HALTED,
        FailureCode.EXPIRED,
        "console",
    )


async def test_a_year_later_certificates_have_expired_at_the_next_connection(
    deployment, nursery
):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.advance(dt.timedelta(days=400))
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP  # validated at start only
    await mesh.stop("sensor-1")
    await mesh.start("sensor-1")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, FailureCode.EXPIRED)
    assert {name for name, _ in link.refusals} == {"sensor-1", "console"}


async def test_crl_server_down_then_back(deployment, nursery):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.stop("sensor-1")
    await mesh.crl_fault("down")
    # The cached CRLs last until their nextUpdate (7 days); past it, nothing to check with.
    await mesh.advance(dt.timedelta(days=8))
    await mesh.start("sensor-1")
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, FailureCode.CRL_UNREACHABLE)
    halted = mesh.events.of(LinkHalted, code=FailureCode.CRL_UNREACHABLE)
    assert halted and halted[-1].message == FailureCode.CRL_UNREACHABLE.message
    assert mesh.events.of(CrlFetchFailed, appliance="console", code=FailureCode.CRL_UNREACHABLE)

    await mesh.crl_fault("ok")
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP


async def test_soft_fail_revocation_comes_up_when_the_crl_is_unreachable(deployment, nursery):
    from mesh.validation.policy import ValidationPolicy

    deployment.build(("sensor-1", "sensor", "crl-unreachable"), ("console", "management-console"))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec(
                "console", "management-console", policy=ValidationPolicy(revocation="soft")
            ),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP


async def test_crls_through_each_appliances_own_proxy(deployment, keys, epoch, nursery):
    """CDPs name a host only the proxy can reach: only the proxied appliance gets CRLs."""
    crl_server = deployment.crl_server
    hidden = f"127.0.0.2:{crl_server.port}"
    proxy = ForwardProxy(routes={hidden: ("127.0.0.1", crl_server.port)})
    await nursery.start(proxy.serve)
    deployment.pki = Pki.build(
        at=epoch,
        appliances=[
            ApplianceRequest(name="sensor-1", role="sensor"),
            ApplianceRequest(name="console", role="management-console"),
        ],
        crl_base_url=f"http://{hidden}/crl",
        keys=keys,
    )
    crl_server.set_documents(deployment.pki.crl_documents(at=epoch))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console", crl_proxy=proxy.url),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    link = mesh.link("sensor-1", "console")
    # The console validated the sensor through its proxy; the sensor, without one,
    # cannot reach the console's CRLs.
    assert (link.state, link.code, link.refused_by) == (
        LinkState.HALTED,
        FailureCode.CRL_UNREACHABLE,
        "sensor-1",
    )
    assert link.refusals == (("sensor-1", FailureCode.CRL_UNREACHABLE),)
    # One request through the proxy per CRL of the sensor's path, each fetched once.
    fetched = [e.url for e in mesh.events.of(CrlFetched)]
    assert sorted(fetched) == sorted(deployment.pki.crls())
    assert mesh.events.of(CrlFetched, appliance="console") == mesh.events.of(CrlFetched)
    assert proxy.forwarded() == 2


async def test_a_repeated_refusal_is_reported_once_per_episode(deployment, nursery):
    deployment.build(("sensor-1", "sensor", "expired"), ("console", "management-console"))
    mesh = deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console"),
        ]
    )
    await nursery.start(mesh.run)
    await mesh.settle()
    await mesh.settle()  # a retry with the same outcome: no new event
    assert len(mesh.events.of(LinkHalted, refused_by="console")) == 1
    await mesh.stop("sensor-1")
    await mesh.start("sensor-1")
    await mesh.settle()  # down in between: the refusal is news again
    assert len(mesh.events.of(LinkHalted, refused_by="console")) == 2
    assert mesh.link("sensor-1", "console").attempts >= 3


async def test_an_accepted_upload_makes_the_live_links_again_with_the_new_certificate(
    deployment, nursery, keys
):
    """No settle: the upload itself closes the live link cleanly and it is dialed again at once.

    The new certificate names another host, which the upload does not judge
    and the sensor does: only a link made again presents it, and halts.
    """
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    assert mesh.link("sensor-1", "console").state is LinkState.UP
    issuing = deployment.pki.issuing
    other = issuing.issue("elsewhere.contoso.test", not_before=deployment.epoch, key=keys(2048))
    with mesh.events.subscribe() as events:
        verdict = await mesh.upload(
            "console", Issued(cert=other.cert, key=other.key, chain=deployment.pki.appliances["console"].chain)
        )
        assert verdict.accepted
        with trio.fail_after(10):
            while not mesh.events.of(LinkHalted, refused_by="sensor-1"):
                await events.receive()
    [recheck] = mesh.events.of(LinkRecheck)
    assert (recheck.dialer, recheck.listener, recheck.state) == ("sensor-1", "console", "up")
    assert recheck.reason == "to present console's new certificate"
    assert recheck.describe() == (
        "sensor-1 -> console: up link closed to present console's new certificate"
    )
    link = mesh.link("sensor-1", "console")
    assert (link.state, link.code) == (LinkState.HALTED, FailureCode.NAME_MISMATCH)
    assert not mesh.events.of(LinkDown)  # closed on purpose, not lost
