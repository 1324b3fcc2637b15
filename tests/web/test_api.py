"""The REST API over real TLS: httpx and curl against a console on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess

import httpx
import pytest
import trio
from cryptography import x509

from mesh.errors import FailureCode
from web.conftest import NAME, key_pem, pem, write_files


def _trusting(root_path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(root_path))


def _client(console, verify) -> httpx.AsyncClient:
    """A script's client: it sends the console's token."""
    return httpx.AsyncClient(base_url=console.url, verify=verify, timeout=10,
                             headers=console.headers)


async def _presented(console) -> x509.Certificate:
    """The certificate a fresh connection to the console is shown."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    stream = await trio.open_ssl_over_tcp_stream(console.host, console.port, ssl_context=context)
    try:
        await stream.do_handshake()
        return x509.load_der_x509_certificate(stream.getpeercert(binary_form=True))
    finally:
        await stream.aclose()


async def _curl(*args: str) -> subprocess.CompletedProcess:
    return await trio.run_process(
        ["curl", "--silent", "--show-error", "--max-time", "10", *args],
        capture_stdout=True, capture_stderr=True, check=False,
    )


async def test_status_of_a_self_signed_appliance(console, appliance, pki):
    async with _client(console, verify=False) as client:
        answer = await client.get("/api/v1/status")
    assert answer.status_code == 200
    doc = answer.json()
    assert doc["appliance"] == {"name": NAME, "role": "sensor"}
    cert = doc["certificate"]
    assert cert["self_signed"] is True
    assert cert["subject"] == pki.self_signed.cert.subject.rfc4514_string()
    assert cert["serial"] == format(pki.self_signed.serial, "X")
    assert doc["validation"] == {
        "enabled": True, "trust": [pki.root.cert.subject.rfc4514_string()]
    }
    assert doc["links"][0]["name"] == f"{NAME} -> console.contoso.test"
    assert doc["links"][0]["state"] == "up"
    assert doc["roles"]["console.contoso.test"] == "management-console"


async def test_a_self_signed_certificate_is_a_warning_until_an_upload(console, appliance, pki):
    async with _client(console, verify=False) as client:
        before = (await client.get("/api/v1/status")).json()
        appliance.current = pki.leaf
        after = (await client.get("/api/v1/status")).json()
    assert before["warnings"] == [{
        "kind": "self-signed-certificate",
        "message": f"The certificate {pki.self_signed.cert.subject.rfc4514_string()} is "
                   "self-signed; upload a CA-signed certificate, key and chain.",
    }]
    assert after["warnings"] == []


async def test_an_unvalidated_link_names_the_messages_it_would_fail_with(console, appliance):
    appliance.link_list[0].state = "up-unvalidated"
    appliance.link_list[0].unvalidated_by = (NAME,)
    appliance.link_list[0].would_fail = (FailureCode.EXPIRED, FailureCode.REVOKED)
    async with _client(console, verify=False) as client:
        link = (await client.get("/api/v1/status")).json()["links"][0]
    assert link["would_fail"] == ["expired", "revoked"]
    assert link["would_fail_messages"] == [FailureCode.EXPIRED.message, FailureCode.REVOKED.message]
    assert link["message"] == f"validation is off at {NAME}; with it on, this would fail: expired, revoked"


async def test_curl_k_against_the_self_signed_console(console):
    result = await _curl("-k", f"{console.url}/api/v1/status")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["certificate"]["self_signed"] is True
    # Without -k curl refuses the self-signed certificate: it really is TLS.
    refused = await _curl(f"{console.url}/api/v1/status")
    assert refused.returncode == 60


async def test_curl_cacert_root_after_a_ca_signed_certificate(console, appliance, pki, tmp_path):
    appliance.current = pki.leaf
    files = write_files(tmp_path, pki.leaf, root=pki.root.cert)
    result = await _curl(
        "--cacert", str(files["root"]),
        "--resolve", f"{NAME}:{console.port}:127.0.0.1",
        f"https://{NAME}:{console.port}/api/v1/status",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["certificate"]["serial"] == format(pki.leaf.serial, "X")
    assert doc["certificate"]["chain"] == [pki.issuing.cert.subject.rfc4514_string()]


async def test_httpx_verifies_against_the_root(console, appliance, pki, tmp_path):
    appliance.current = pki.leaf
    files = write_files(tmp_path, pki.leaf, root=pki.root.cert)
    async with _client(console, verify=_trusting(files["root"])) as client:
        answer = await client.get("/api/v1/status", extensions={"sni_hostname": NAME})
        assert answer.status_code == 200
        assert answer.json()["certificate"]["self_signed"] is False
    # A client certificate is accepted but not required.
    bundle = tmp_path / "client.pem"
    bundle.write_bytes(files["crt"].read_bytes() + files["chain"].read_bytes())
    with_cert = _trusting(files["root"])
    with_cert.load_cert_chain(bundle, files["key"])
    async with _client(console, verify=with_cert) as client:
        answer = await client.get("/api/v1/status", extensions={"sni_hostname": NAME})
        assert answer.status_code == 200


async def test_upload_switches_the_certificate_for_new_connections(console, appliance, pki):
    assert (await _presented(console)).serial_number == pki.self_signed.serial
    async with _client(console, verify=False) as client:
        answer = await client.post("/api/v1/certificate", files={
            "crt": ("appliance.crt", pem(pki.leaf.cert)),
            "key": ("appliance.key", key_pem(pki.leaf, "s3cret")),
            "chain": ("chain.pem", pem(pki.issuing.cert)),
        }, data={"passphrase": "s3cret"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] is True
    assert body["certificate"]["serial"] == format(pki.leaf.serial, "X")
    assert (await _presented(console)).serial_number == pki.leaf.serial
    assert [e.kind for e in appliance.log] == ["certificate-uploaded"]


@pytest.mark.parametrize(
    "case, code",
    [
        ("untrusted", FailureCode.CHAIN_UNTRUSTED),
        ("wrong-passphrase", FailureCode.PASSPHRASE_MISMATCH),
        ("key-mismatch", FailureCode.KEY_MISMATCH),
    ],
)
async def test_refused_upload_is_422_with_the_exact_message(console, appliance, pki, case, code):
    issued, key, passphrase = pki.leaf, key_pem(pki.leaf), None
    if case == "untrusted":
        issued, key = pki.stranger, key_pem(pki.stranger)
    elif case == "wrong-passphrase":
        key, passphrase = key_pem(pki.leaf, "right"), "wrong"
    elif case == "key-mismatch":
        key = key_pem(pki.stranger)
    form = {"passphrase": passphrase} if passphrase else {}
    async with _client(console, verify=False) as client:
        answer = await client.post("/api/v1/certificate", data=form, files={
            "crt": ("a.crt", pem(issued.cert)), "key": ("a.key", key),
            "chain": ("chain.pem", b"".join(pem(c) for c in issued.chain)),
        })
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == code.code
    assert body["message"] == code.message
    assert "right" not in answer.text and "PRIVATE KEY" not in answer.text
    assert appliance.current is pki.self_signed
    assert (await _presented(console)).serial_number == pki.self_signed.serial


async def test_malformed_uploads_are_400(console, pki):
    async with _client(console, verify=False) as client:
        missing_key = await client.post(
            "/api/v1/certificate", files={"crt": ("a.crt", pem(pki.leaf.cert))})
        not_a_form = await client.post("/api/v1/certificate", json={"crt": "x"})
        not_a_cert = await client.post("/api/v1/certificate", files={
            "crt": ("a.crt", b"hello"), "key": ("a.key", key_pem(pki.leaf))})
        broken = await client.post(
            "/api/v1/certificate",
            content=b"--xyz\r\nContent-Disposition: form-data; name=\"crt\"\r\n\r\nabc",
            headers={"content-type": "multipart/form-data; boundary=xyz"},
        )
        too_big = await client.post("/api/v1/certificate", files={
            "crt": ("a.crt", b"A" * (300 * 1024)), "key": ("a.key", key_pem(pki.leaf))})
    assert missing_key.status_code == 400
    assert missing_key.json() == {
        "code": "bad_request",
        "message": "form field 'key': is missing; attach the .key file as 'key'",
    }
    assert not_a_form.status_code == 400
    assert broken.status_code == 400
    assert not_a_cert.status_code == 400
    assert not_a_cert.json()["message"] == "crt: is not a PEM certificate; upload the .crt file"
    assert too_big.status_code == 400
    assert "larger than 256 KiB" in too_big.json()["message"]


async def test_validation_switch(console, appliance):
    async with _client(console, verify=False) as client:
        off = await client.put("/api/v1/validation", json={"enabled": False})
        assert off.status_code == 200 and off.json() == {"enabled": False}
        assert appliance.validation is False
        status = (await client.get("/api/v1/status")).json()
        assert status["validation"]["enabled"] is False
        for bad in ({"enabled": "no"}, {}, [True]):
            assert (await client.put("/api/v1/validation", json=bad)).status_code == 400
        garbage = await client.put("/api/v1/validation", content=b"{not json",
                                   headers={"content-type": "application/json"})
        assert garbage.status_code == 400
        on = await client.put("/api/v1/validation", json={"enabled": True})
        assert on.json() == {"enabled": True}
        # Only PUT changes it.
        assert (await client.post("/api/v1/validation", json={"enabled": False})).status_code == 405


async def test_crl_refresh(console, appliance):
    async with _client(console, verify=False) as client:
        answer = await client.post("/api/v1/crls/refresh")
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        link = {
            "name": f"{NAME} -> console.contoso.test", "dialer": NAME,
            "listener": "console.contoso.test", "state": "up", "code": None,
            "message": None, "refused_by": None, "unvalidated": False,
            "unvalidated_by": [], "would_fail": [], "would_fail_messages": [], "notes": [],
        }
        # A lone appliance's process links are its own.
        assert answer.json() == {"refreshed": True, "pending": [], "links": [link],
                                 "process_links": [link]}
        assert [e.kind for e in appliance.log] == ["crls-refreshed"]
        appliance.still_pending = (f"{NAME} -> console.contoso.test",)
        answer = await client.post("/api/v1/crls/refresh")
        assert answer.json()["pending"] == [f"{NAME} -> console.contoso.test"]
        # Only POST refreshes: a GET (a link, a prefetch) changes nothing.
        assert (await client.get("/api/v1/crls/refresh")).status_code == 405
    assert len(appliance.log) == 2


async def test_a_crl_refresh_takes_its_stall_timeout_from_the_request(console, appliance):
    async with _client(console, verify=False) as client:
        assert (await client.post("/api/v1/crls/refresh?timeout=2.5")).status_code == 200
        for bad in ("0", "-1", "nan", "inf", "3601", "soon"):
            answer = await client.post(f"/api/v1/crls/refresh?timeout={bad}")
            assert answer.status_code == 400
            assert answer.json() == {
                "code": "bad_request",
                "message": f"timeout='{bad}' is not a number of seconds above 0 and up to 3600",
            }
    assert appliance.refresh_timeouts == [2.5]
    assert [e.kind for e in appliance.log] == ["crls-refreshed"]


async def test_events_since(console, appliance):
    async with _client(console, verify=False) as client:
        first = (await client.get("/api/v1/events", params={"since": 0})).json()
        assert first == {"since": 0, "next": 0, "dropped": 0, "events": []}
        appliance.set_validation(False)
        appliance.halt("console.contoso.test", FailureCode.REVOKED)
        second = (await client.get("/api/v1/events", params={"since": 0})).json()
        assert second["next"] == 2
        assert [e["kind"] for e in second["events"]] == ["validation-switched", "link-halted"]
        halted = second["events"][1]
        assert halted["code"] == "revoked" and halted["message"] == FailureCode.REVOKED.message
        assert halted["text"].endswith(FailureCode.REVOKED.message)
        third = (await client.get("/api/v1/events", params={"since": 2})).json()
        assert third == {"since": 2, "next": 2, "dropped": 0, "events": []}
        paged = (await client.get("/api/v1/events", params={"since": 0, "limit": 1})).json()
        assert paged["next"] == 1 and [e["kind"] for e in paged["events"]] == ["validation-switched"]
        for bad in ({"since": "-1"}, {"since": "x"}, {"limit": "0"}, {"limit": "100000"}):
            answer = await client.get("/api/v1/events", params=bad)
            assert answer.status_code == 400


async def test_events_list_only_what_concerns_this_appliance(console, appliance):
    """Another appliance's events are left out; positions still count every event."""
    from mesh.events import ValidationSwitched

    appliance.log.append(ValidationSwitched(at=appliance.instant, appliance="sensor-2", enabled=False))
    appliance.set_validation(False)
    appliance.log.append(ValidationSwitched(at=appliance.instant, appliance="sensor-2", enabled=True))
    async with _client(console, verify=False) as client:
        answer = (await client.get("/api/v1/events", params={"since": 0})).json()
        first = (await client.get("/api/v1/events", params={"since": 0, "limit": 1})).json()
        rest = (await client.get("/api/v1/events", params={"since": first["next"]})).json()
    assert (answer["next"], answer["dropped"]) == (3, 0)
    assert [(e["appliance"], e["enabled"]) for e in answer["events"]] == [(NAME, False)]
    assert (first["next"], len(first["events"])) == (3, 1)
    assert rest == {"since": 3, "next": 3, "dropped": 0, "events": []}


async def test_events_older_than_the_window_are_counted_as_dropped(console, appliance):
    """Positions count in the whole stream; what the appliance no longer keeps
    is reported, never silently skipped."""
    for enabled in (False, True, False):
        appliance.set_validation(enabled)
    appliance.forget(2)  # the appliance keeps only its most recent event
    async with _client(console, verify=False) as client:
        answer = (await client.get("/api/v1/events", params={"since": 0})).json()
        later = (await client.get("/api/v1/events", params={"since": 3})).json()
    assert (answer["since"], answer["dropped"], answer["next"]) == (0, 2, 3)
    assert [e["enabled"] for e in answer["events"]] == [False]
    assert later == {"since": 3, "next": 3, "dropped": 0, "events": []}


async def test_halted_link_in_status(console, appliance):
    appliance.halt("console.contoso.test", FailureCode.REVOKED)
    async with _client(console, verify=False) as client:
        link = (await client.get("/api/v1/status")).json()["links"][0]
    assert link["state"] == "halted"
    assert link["code"] == "revoked"
    assert link["message"] == FailureCode.REVOKED.message
    assert link["refused_by"] == NAME


async def test_expiring_certificate_is_flagged(console, appliance, pki):
    appliance.current = pki.leaf
    appliance.instant = pki.leaf.cert.not_valid_after_utc - dt.timedelta(days=10, hours=1)
    async with _client(console, verify=False) as client:
        doc = (await client.get("/api/v1/status")).json()
    assert doc["certificate"]["days_until_expiry"] == 10
    assert doc["certificate"]["expiring"] is True
    assert doc["warnings"] == [{
        "kind": "certificate-expiring",
        "subject": pki.leaf.cert.subject.rfc4514_string(),
        "serial": format(pki.leaf.serial, "X"),
        "not_after": pki.leaf.cert.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "days_until_expiry": 10,
        "window_days": 30,
        "message": f"The certificate {pki.leaf.cert.subject.rfc4514_string()} expires in 10 days.",
    }]


async def test_page_and_assets_are_served(console):
    async with _client(console, verify=False) as client:
        page = await client.get("/")
        script = await client.get("/console.js")
        style = await client.get("/console.css")
        graph = await client.get("/graph.svg")
    assert page.status_code == 200 and 'id="upload-form"' in page.text
    assert "http" not in page.text.replace('http-equiv', '')  # no CDN
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200
    assert graph.headers["content-type"] == "image/svg+xml"
    assert NAME in graph.text


async def test_changes_from_another_origin_are_refused(console, appliance, pki):
    async with _client(console, verify=False) as client:
        upload = await client.post("/api/v1/certificate", headers={"origin": "https://evil.example"},
                                   files={"crt": ("a.crt", pem(pki.leaf.cert)),
                                          "key": ("a.key", key_pem(pki.leaf))})
        switch = await client.put("/api/v1/validation", json={"enabled": False},
                                  headers={"origin": "https://evil.example"})
        same = await client.put("/api/v1/validation", json={"enabled": False},
                                headers={"origin": console.url})
        refresh = await client.post("/api/v1/crls/refresh",
                                    headers={"origin": "https://evil.example"})
    assert (upload.status_code, upload.json()["code"]) == (403, "forbidden_origin")
    assert switch.status_code == 403
    assert (refresh.status_code, refresh.json()["code"]) == (403, "forbidden_origin")
    assert same.status_code == 200
    assert appliance.current is pki.self_signed and appliance.validation is False
    assert "crls-refreshed" not in [e.kind for e in appliance.log]


def test_link_document_explains_unvalidated_and_down_links():
    from attrs import define

    from mesh.web.status import link_document

    @define
    class Seen:
        dialer: str
        listener: str
        state: str
        code: object = None
        message: str | None = None
        refused_by: str | None = None
        unvalidated_by: tuple = ()
        would_fail: tuple = ()
        notes: tuple = ()
        reason: str = ""

    unvalidated = link_document(Seen("s", "cm", "up-unvalidated", unvalidated_by=("s",),
                                     would_fail=(FailureCode.CHAIN_UNTRUSTED,)))
    assert unvalidated["message"] == "validation is off at s; with it on, this would fail: chain_untrusted"
    assert (unvalidated["unvalidated"], unvalidated["would_fail"]) == (True, ["chain_untrusted"])
    assert unvalidated["would_fail_messages"] == [FailureCode.CHAIN_UNTRUSTED.message]
    # A code this version does not know (another node's, newer) stands for itself.
    newer = link_document(Seen("s", "cm", "up-unvalidated", would_fail=("quantum_unsafe",)))
    assert (newer["would_fail"], newer["would_fail_messages"]) == (
        ["quantum_unsafe"], ["quantum_unsafe"])
    assert link_document(Seen("s", "cm", "down", reason="connection refused"))["message"] == (
        "connection refused")
    halted = link_document(Seen("s", "cm", "halted", code="expired"))
    assert halted["message"] == FailureCode.EXPIRED.message
    noted = link_document(Seen("s", "cm", "up", notes=(FailureCode.NO_CDP,)))
    assert (noted["notes"], noted["code"]) == (["no_cdp"], None)
    assert noted["message"] == f"note: no_cdp: {FailureCode.NO_CDP.message}"


# -- smaller holes: each request judged on what this console is, bounded --


async def test_deeply_nested_json_is_refused_not_a_500(console, appliance):
    async with _client(console, verify=False) as client:
        deep = await client.put("/api/v1/validation", content=b"[" * 100_000 + b"]" * 100_000,
                                headers={"content-type": "application/json"})
        within = await client.put("/api/v1/validation", content=b"[" * 500 + b"]" * 500,
                                  headers={"content-type": "application/json"})
    assert deep.status_code == 413
    assert deep.json() == {"code": "too_large", "message":
                           'the body is larger than 1 KiB; send {"enabled": true} or {"enabled": false}'}
    assert within.status_code == 400
    assert within.json() == {"code": "bad_request", "message": 'send {"enabled": true} or {"enabled": false}'}
    assert appliance.validation is True


async def test_the_origin_is_judged_against_this_console_not_the_host_header(console, appliance):
    evil = f"evil.example:{console.port}"
    async with _client(console, verify=False) as client:
        rebound = await client.put("/api/v1/validation", json={"enabled": False},
                                   headers={"host": evil, "origin": f"https://{evil}"})
        doubled = await client.put("/api/v1/validation", json={"enabled": False},
                                   headers=[("origin", console.url), ("origin", "https://evil.example")])
        assert appliance.validation is True
        local = await client.put("/api/v1/validation", json={"enabled": False},
                                 headers={"origin": f"https://localhost:{console.port}"})
    assert (rebound.status_code, rebound.json()["code"]) == (403, "forbidden_origin")
    assert (doubled.status_code, doubled.json()["code"]) == (403, "forbidden_origin")
    assert local.status_code == 200 and appliance.validation is False


async def test_a_trailing_slash_is_not_redirected_to_the_host_header(console):
    async with _client(console, verify=False) as client:
        answer = await client.get("/api/v1/status/", headers={"host": "evil.example"})
    assert answer.status_code == 404
    assert "location" not in answer.headers


async def test_every_answer_forbids_framing_and_sniffing(console):
    async with _client(console, verify=False) as client:
        for path in ("/", "/api/v1/status", "/graph.svg", "/nowhere"):
            answer = await client.get(path)
            assert answer.headers["x-frame-options"] == "DENY", path
            assert answer.headers["x-content-type-options"] == "nosniff", path
            assert answer.headers["content-security-policy"] == (
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                "base-uri 'none'; form-action 'self'"), path


@pytest.mark.parametrize("since", [" 1", "1 ", "+1", "1_0", "\u0661", "0x1", "-0"])
async def test_since_and_limit_are_plain_ascii_digits(console, since):
    async with _client(console, verify=False) as client:
        by_since = await client.get("/api/v1/events", params={"since": since})
        by_limit = await client.get("/api/v1/events", params={"limit": since})
    assert by_since.status_code == 400, since
    assert by_limit.status_code == 400, since


@pytest.mark.parametrize("signed", [True, False], ids=["with-token", "without"])
async def test_an_oversized_upload_is_refused_before_its_body_is_read(console, signed):
    """50 MB announced, 64 KiB sent: the answer comes without waiting for the rest,
    413 with the token, 401 without it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    stream = await trio.open_ssl_over_tcp_stream(console.host, console.port, ssl_context=context)
    token = f"Authorization: Bearer {console.auth.token}\r\n" if signed else ""
    head = (f"POST /api/v1/certificate HTTP/1.1\r\nHost: {console.host}:{console.port}\r\n"
            f"{token}Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {50 * 1024 * 1024}\r\n\r\n").encode()
    await stream.send_all(head + b"--b\r\nContent-Disposition: form-data; name=\"crt\"; "
                          b"filename=\"a.crt\"\r\n\r\n" + b"a" * 65536)
    received = b""
    with trio.fail_after(5):
        while b"\r\n\r\n" not in received or not received.endswith(b"}"):
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            received += chunk
    await stream.aclose()
    if not signed:
        assert received.startswith(b"HTTP/1.1 401 ")
        assert json.loads(received.split(b"\r\n\r\n", 1)[1])["code"] == "unauthorized"
        return
    assert received.startswith(b"HTTP/1.1 413 ")
    assert json.loads(received.split(b"\r\n\r\n", 1)[1]) == {
        "code": "too_large",
        "message": "the body is larger than 1024 KiB; upload a single certificate, key and chain"}


async def test_a_console_without_node_control_says_so_and_changes_nothing(console, appliance):
    """Consoles served inside a scenario run have no clock or stop control of their own."""
    before = appliance.now()
    async with _client(console, False) as client:
        for method, path, body in (("POST", "/api/v1/clock", {"advance_seconds": 60}),
                                   ("PUT", "/api/v1/running", {"running": False})):
            answer = await client.request(method, path, json=body)
            assert answer.status_code == 404, answer.text
            assert answer.json()["code"] == "no_control"
    assert appliance.now() == before
