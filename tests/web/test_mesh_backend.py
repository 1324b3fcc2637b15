"""A console serving an appliance of a running mesh: the engine's links, uploads and events."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import trio

from mesh.errors import FailureCode
from mesh.pki.issue import CertificateAuthority
from web.browser import dump_dom, open_webdriver
from web.conftest import key_pem, pem, serve, write_files
from web.test_console import sign_in

pytest.importorskip("mesh.appliances.mesh", reason="the engine's Mesh is not in this tree yet")

from mesh.scenario.load import loads_scenario  # noqa: E402
from mesh.scenario.runner import start_scenario  # noqa: E402
from mesh.web.mesh_backend import MeshConsole  # noqa: E402

CM = "cm.contoso.test"
S1 = "sensor-1.contoso.test"
S2 = "sensor-2.contoso.test"


def _scenario(start: dt.datetime):
    # The scenario starts at the wall clock's now so that the console's TLS
    # certificate is valid for the browser, curl and httpx, which judge by it.
    return loads_scenario(f"""
[scenario]
name = "console-demo"
start = {start.strftime("%Y-%m-%dT%H:%M:%SZ")}

[pki]
root = "Contoso Root CA"
intermediate = "Contoso Issuing CA"

[[appliance]]
name = "{CM}"
role = "management-console"

[[appliance]]
name = "{S1}"
role = "sensor"
connects_to = ["{CM}"]

[[appliance]]
name = "{S2}"
role = "sensor"
connects_to = ["{CM}"]
""", source="console-demo.toml")


@pytest.fixture
async def running(keys):
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    async with start_scenario(_scenario(start), keys=keys) as run:
        yield run


@pytest.fixture
async def cm_console(nursery, running, tmp_path):
    return await serve(nursery, MeshConsole(running.mesh, CM), tmp_path / "cm.api-token")


def _client(console) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=console.url, verify=False, timeout=20,
                             headers=console.headers)


def _link(doc, dialer):
    return next(link for link in doc["links"] if link["dialer"] == dialer)


async def test_status_follows_a_revocation(running, cm_console):
    async with _client(cm_console) as client:
        doc = (await client.get("/api/v1/status")).json()
        assert doc["appliance"] == {"name": CM, "role": "management-console"}
        assert doc["certificate"]["serial"] == format(running.pki.material(CM).serial, "X")
        assert {_link(doc, S1)["state"], _link(doc, S2)["state"]} == {"up"}
        assert doc["roles"] == {CM: "management-console", S1: "sensor", S2: "sensor"}
        before = (await client.get("/api/v1/events")).json()["next"]

        await running.mesh.revoke(S1)
        await running.settle()

        doc = (await client.get("/api/v1/status")).json()
        halted = _link(doc, S1)
        assert (halted["state"], halted["code"], halted["message"]) == (
            "halted", "revoked", FailureCode.REVOKED.message)
        assert halted["refused_by"] == CM
        assert _link(doc, S2)["state"] == "up"
        kinds = [e["kind"] for e in (await client.get(
            "/api/v1/events", params={"since": before})).json()["events"]]
        # The halted link names the console; the revocation is the sensor's own event.
        assert "link-halted" in kinds and "certificate-revoked" not in kinds


async def test_each_console_lists_the_events_that_concern_its_appliance(nursery, running, tmp_path):
    s1 = await serve(nursery, MeshConsole(running.mesh, S1), tmp_path / "s1.api-token")
    s2 = await serve(nursery, MeshConsole(running.mesh, S2), tmp_path / "s2.api-token")
    before = len(running.mesh.events)
    await running.mesh.revoke(S1)
    await running.settle()
    await running.mesh.crl_fault("ok")  # the CRL server's event: the whole mesh's
    async with _client(s1) as one, _client(s2) as two:
        seen_by_s1 = (await one.get("/api/v1/events", params={"since": before})).json()
        seen_by_s2 = (await two.get("/api/v1/events", params={"since": before})).json()
    assert seen_by_s1["dropped"] == seen_by_s2["dropped"] == 0
    kinds_s1 = [e["kind"] for e in seen_by_s1["events"]]
    assert {"certificate-revoked", "link-halted", "crl-server-changed"} <= set(kinds_s1)
    named = {"appliance", "dialer", "listener", "refused_by", "sender", "receiver"}
    for event in seen_by_s2["events"]:
        names = {event[k] for k in named if k in event}
        assert not names or S2 in names, event
    assert "crl-server-changed" in [e["kind"] for e in seen_by_s2["events"]]
    assert "certificate-revoked" not in [e["kind"] for e in seen_by_s2["events"]]


async def test_crl_refresh_shows_a_revocation_published_behind_the_mesh(running, cm_console):
    """The CA revokes and republishes without telling the mesh (no Mesh.revoke):
    the console keeps its cached CRL, until asked to refresh it."""
    mesh = running.mesh
    mesh.pki.revoke(S1, at=mesh.clock.now())
    mesh.republish()
    await running.settle()
    assert str(mesh.link(S1, CM).state) == "up"  # cached until its nextUpdate
    async with _client(cm_console) as client:
        answer = await client.post("/api/v1/crls/refresh")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["refreshed"] is True and body["pending"] == []
    halted = _link(body, S1)
    assert (halted["state"], halted["code"], halted["refused_by"]) == ("halted", "revoked", CM)
    assert _link(body, S2)["state"] == "up"
    kinds = [e.kind for e in mesh.events]
    assert kinds.index("crls-refreshed") < kinds.index("link-halted")


async def test_uploads_go_through_the_engine(running, cm_console, keys):
    pki = running.pki
    fresh = pki.issuing.issue(CM, not_before=running.now() - dt.timedelta(minutes=1), key=keys(2048))
    async with _client(cm_console) as client:
        garbage = await client.post("/api/v1/certificate", files={
            "crt": ("cm.crt", b"not a certificate"), "key": ("cm.key", key_pem(fresh))})
        assert garbage.status_code == 400
        assert garbage.json()["message"].startswith("crt: is not a certificate")
        refused = await client.post("/api/v1/certificate", data={"passphrase": "nope"}, files={
            "crt": ("cm.crt", pem(fresh.cert)),
            "key": ("cm.key", key_pem(fresh, "right")),
            "chain": ("chain.pem", b"".join(pem(c) for c in fresh.chain)),
        })
        assert refused.status_code == 422
        assert refused.json()["code"] == "passphrase_mismatch"
        assert refused.json()["message"] == FailureCode.PASSPHRASE_MISMATCH.message

        accepted = await client.post("/api/v1/certificate", data={"passphrase": "right"}, files={
            "crt": ("cm.crt", pem(fresh.cert)),
            "key": ("cm.key", key_pem(fresh, "right")),
            "chain": ("chain.pem", b"".join(pem(c) for c in fresh.chain)),
        })
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["certificate"]["serial"] == format(fresh.serial, "X")
        events = (await client.get("/api/v1/events")).json()["events"]
        kinds = [e["kind"] for e in events]
        assert kinds.index("upload-refused") < kinds.index("certificate-uploaded")
        assert "right" not in str(events) and "nope" not in str(events)

    # The API itself now presents the new certificate.
    stream = await trio.open_ssl_over_tcp_stream(
        cm_console.host, cm_console.port, ssl_context=_no_verify())
    await stream.do_handshake()
    from cryptography import x509

    assert x509.load_der_x509_certificate(stream.getpeercert(binary_form=True)).serial_number == fresh.serial
    await stream.aclose()


def _no_verify():
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def test_page_shows_the_halted_link_after_a_revocation(running, cm_console, tmp_path):
    await running.mesh.revoke(S1)
    await running.settle()
    cert = running.mesh.appliance(CM).identity.cert
    dom = await dump_dom(f"{cm_console.url}/", profile=tmp_path / "profile", cert=cert)
    assert f'data-link="{S1} -&gt; {CM}" data-state="halted"' in dom
    assert FailureCode.REVOKED.message in dom
    assert f'data-link="{S2} -&gt; {CM}" data-state="up"' in dom


async def test_form_upload_refused_by_the_engine(nursery, running, cm_console, keys, tmp_path):
    start = running.now() - dt.timedelta(minutes=1)
    stranger = CertificateAuthority.root("Unknown Root CA", not_before=start, key=keys(2048)).issue(
        CM, not_before=start, key=keys(2048))
    files = write_files(tmp_path / "upload", stranger)
    cert = running.mesh.appliance(CM).identity.cert
    driver = await open_webdriver(nursery, profile=tmp_path / "profile", cert=cert)
    await driver.get(f"{cm_console.url}/")
    await driver.wait_for_text("#appliance-name", CM)
    await sign_in(driver, cm_console.auth.token)
    await driver.send_keys("#upload-crt", str(files["crt"]))
    await driver.send_keys("#upload-key", str(files["key"]))
    await driver.click("#upload-submit")
    verdict = await driver.wait_for_text("#upload-verdict", FailureCode.CHAIN_UNTRUSTED.message)
    assert verdict == FailureCode.CHAIN_UNTRUSTED.message
    await driver.wait_for_text("#events", "upload-refused")
    assert running.mesh.appliance(CM).identity.cert == cert


async def test_appliance_console_serves_one_appliance(nursery, running, tmp_path):
    from mesh.web import ApplianceConsole

    backend = ApplianceConsole(running.mesh.appliance(S1))
    assert backend.roles() == {S1: "sensor", CM: "management-console"}
    console = await serve(nursery, backend, tmp_path / "console.api-token")
    async with _client(console) as client:
        doc = (await client.get("/api/v1/status")).json()
    assert doc["appliance"] == {"name": S1, "role": "sensor"}
    assert [link["name"] for link in doc["links"]] == [f"{S1} -> {CM}"]
    assert doc["certificate"]["serial"] == format(running.pki.material(S1).serial, "X")


async def test_validation_switch_through_the_api(running, cm_console):
    async with _client(cm_console) as client:
        answer = await client.put("/api/v1/validation", json={"enabled": False})
        assert answer.json() == {"enabled": False}
        await running.settle()
        doc = (await client.get("/api/v1/status")).json()
    assert running.mesh.appliance(CM).validation is False
    assert doc["validation"] == {
        "enabled": False, "trust": [running.pki.root.cert.subject.rfc4514_string()]
    }
    link = _link(doc, S1)
    assert (link["state"], link["unvalidated"], link["unvalidated_by"]) == ("up-unvalidated", True, [CM])
    assert link["message"].startswith(f"validation is off at {CM}")


# -- an upload's key is opened off the event loop, within limits --

import time  # noqa: E402

import pkcs8lab  # noqa: E402


def _upload_files(issued, key: bytes) -> dict:
    return {"crt": ("cm.crt", pem(issued.cert)), "key": ("cm.key", key),
            "chain": ("chain.pem", b"".join(pem(c) for c in issued.chain))}


async def test_a_key_that_costs_too_much_is_refused_at_once(running, cm_console, keys):
    fresh = running.pki.issuing.issue(CM, not_before=running.now(), key=keys(2048))
    costly = pkcs8lab.pem(pkcs8lab.encrypted(pkcs8lab.pbes2_pbkdf2(100_000_000, b"s" * 16, b"i" * 16)))
    async with _client(cm_console) as client:
        with trio.fail_after(5):  # opening it would take about 16 s
            answer = await client.post("/api/v1/certificate", data={"passphrase": "wrong"},
                                       files=_upload_files(fresh, costly))
    assert answer.status_code == 400
    assert answer.json() == {"code": "bad_request", "message": (
        "uploaded key: is encrypted with 100,000,000 PBKDF2 iterations, more than the "
        "1,000,000 a key may take; export the key again with "
        "openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 100000")}


async def test_status_is_answered_while_an_upload_is_judged(running, cm_console, keys):
    """The costliest key within limits, with a wrong passphrase: status keeps answering.

    While the upload is outstanding a poller asks for the status again and
    again. Were the key opened on the event loop, the poll in flight would
    wait out the whole opening (most of the upload's time).
    """
    fresh = running.pki.issuing.issue(CM, not_before=running.now(), key=keys(2048))
    costly = pkcs8lab.encrypted_pkcs8(fresh.key, "right", 1_000_000)
    latencies: list[float] = []
    verdict: dict = {}
    async with _client(cm_console) as uploader, _client(cm_console) as poller:
        async def upload() -> None:
            started = time.monotonic()
            answer = await uploader.post("/api/v1/certificate", data={"passphrase": "wrong"},
                                         files=_upload_files(fresh, costly))
            verdict.update(answer.json(), took=time.monotonic() - started)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(upload)
            while not verdict:  # every poll sent before the verdict counts
                started = time.monotonic()
                assert (await poller.get("/api/v1/status")).status_code == 200
                latencies.append(time.monotonic() - started)
    assert verdict["code"] == "passphrase_mismatch"
    assert len(latencies) >= 3
    assert max(latencies) < verdict["took"] / 2, (max(latencies), verdict["took"])
