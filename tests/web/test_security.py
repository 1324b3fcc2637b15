"""Every refusal the control plane promises, at once: exact status and code, nothing
changed, and no credential in any log line, event or answer.

One console with every credential configured (its token, an operator CA, an
admin password); each way in that must fail is tried against it, then
everything it said (answers, ``api-denied`` events as the JSON lines a node
prints, every log record of every logger) is searched for every secret used:
tokens, the password, session ids, CSRF tokens and the operator keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging

import httpx
from cryptography.hazmat.primitives import serialization

from mesh.console_client import ConsoleCredential
from mesh.password_hash import hash_password
from mesh.pki.operator import OperatorCa
from web.conftest import pem, serve

PASSWORD = "Zx9-operator-Password-44"
SECOND = dt.timedelta(seconds=1)


def _key_forms(key) -> list[str]:
    """A private key as it could leak: PEM armour's body, DER as base64 and hex, the scalar."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    b64 = base64.b64encode(der).decode()
    return [b64[i:i + 40] for i in range(0, len(b64) - 40, 40)] + [
        der.hex()[64:128], str(key.private_numbers().private_value)]


def _credential(tmp_path, name, issued) -> ConsoleCredential:
    key = issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    (tmp_path / f"{name}.crt").write_bytes(pem(issued.cert))
    (tmp_path / f"{name}.key").write_bytes(key)
    (tmp_path / f"{name}.key").chmod(0o600)
    return ConsoleCredential.operator(tmp_path / f"{name}.crt", tmp_path / f"{name}.key")


async def test_every_refusal_changes_nothing_and_no_credential_leaks(
    nursery, appliance, pki, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    ca = OperatorCa.create(not_before=pki.now - dt.timedelta(days=30))
    console = await serve(nursery, appliance, tmp_path / "node.api-token", operator_cas=(ca.cert,),
                          admin_password=hash_password(PASSWORD, n=2**10))
    other = await serve(nursery, appliance, tmp_path / "other.api-token")
    good = ca.issue("alice", not_before=pki.now - SECOND)
    expired = ca.issue("old", not_before=pki.now - dt.timedelta(days=9), not_after=pki.now - SECOND)
    alice, old = _credential(tmp_path, "alice", good), _credential(tmp_path, "old", expired)
    appliance_cert = ConsoleCredential.operator(*_appliance_files(tmp_path, pki))
    secrets = [console.auth.token, other.auth.token, PASSWORD,
               *_key_forms(good.key), *_key_forms(expired.key), *_key_forms(ca.key)]
    answers: list[httpx.Response] = []

    async def attempt(credential=None, **kwargs) -> httpx.Response:
        client = (credential.client(console.url, verify=False) if credential is not None
                  else httpx.AsyncClient(base_url=console.url, verify=False, timeout=10))
        async with client:
            answer = await client.put("/api/v1/validation", json={"enabled": False}, **kwargs)
        answers.append(answer)
        return answer

    # A signed-in browser session, for the cookie cases.
    async with httpx.AsyncClient(base_url=console.url, verify=False, timeout=10) as browser:
        signed = await browser.post("/api/v1/session", json={"user": "admin", "password": PASSWORD})
        assert signed.status_code == 200
        session = browser.cookies[f"mesh-session-{console.port}"]
        csrf = signed.json()["csrf_token"]
        secrets += [session, csrf]
        cookie = {"Cookie": f"mesh-session-{console.port}={session}"}
        cases = {
            "no credential": (await attempt(), 401, "unauthorized"),
            "another node's token": (await attempt(ConsoleCredential(token=other.auth.token)),
                                     403, "forbidden"),
            "expired operator certificate": (await attempt(old), 403, "operator_cert_expired"),
            "an appliance's certificate": (await attempt(appliance_cert), 403,
                                           "operator_cert_untrusted"),
            "a forged cookie": (await attempt(headers={
                "Cookie": f"mesh-session-{console.port}=forged-session-id"}), 401, "unauthorized"),
            "a cookie without its CSRF token": (await attempt(headers=cookie), 403, "forbidden_csrf"),
            "a cross-site form post": (await attempt(headers={
                **cookie, "X-CSRF-Token": csrf, "Origin": f"https://127.0.0.1:{other.port}"}),
                403, "forbidden_origin"),
            "a same-site fetch": (await attempt(headers={
                **cookie, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-site"}),
                403, "forbidden_cross_site"),
            "a wrong password": (await browser.post("/api/v1/session", json={
                "user": "admin", "password": PASSWORD[::-1]}), 403, "forbidden"),
        }
    for name, (answer, status, code) in cases.items():
        assert (answer.status_code, answer.json()["code"]) == (status, code), name
    assert appliance.validation is True and appliance.log == []

    # The credentials that are good do work (so the refusals above were theirs).
    assert (await attempt(alice)).status_code == 200
    appliance.validation = True
    assert (await attempt(headers={**cookie, "X-CSRF-Token": csrf})).status_code == 200

    said = "\n".join([
        *(a.text + str(a.headers) for a in answers),
        *(answer.text + str(answer.headers) for answer, _, _ in cases.values()),
        *(e.to_json() + e.log_line() for e in console.recorded + other.recorded),
        # Every logger but the test's own HTTP client's (which is handed the cookie).
        *(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))),
    ])
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # DEBUG was on
    assert [e.reason for e in console.recorded] == [
        "no-credential", "wrong-token", "operator-cert-expired", "operator-cert-wrong-ca",
        "unknown-session", "no-csrf-token", "cross-site", "wrong-password"]
    leaked = [secrets.index(s) for s in secrets if s in said]
    assert leaked == []
    assert "PRIVATE KEY" not in said


def _appliance_files(tmp_path, pki):
    from web.conftest import key_pem

    crt, key = tmp_path / "sensor.crt", tmp_path / "sensor.key"
    crt.write_bytes(pem(pki.leaf.cert) + b"".join(pem(c) for c in pki.leaf.chain))
    key.write_bytes(key_pem(pki.leaf))
    key.chmod(0o600)
    return crt, key


def test_the_search_would_find_a_leak(tmp_path):
    """The key forms searched are what a leak would contain."""
    ca = OperatorCa.create(not_before=dt.datetime(2027, 1, 15, tzinfo=dt.timezone.utc))
    leaked = ca.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode().replace("\n", "")
    assert any(form in leaked for form in _key_forms(ca.key))

