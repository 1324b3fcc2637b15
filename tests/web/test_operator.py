"""Operator client certificates: mutual TLS to a console, judged by the appliance's clock."""

from __future__ import annotations

import datetime as dt
import ssl

import httpx
import pytest

from mesh.console_client import ConsoleCredential
from mesh.pki.issue import Issued
from mesh.pki.operator import OperatorCa, OperatorCredential
from mesh.web.auth import ConsoleAuth, Denial, judge_operator_certificate
from web.conftest import key_pem, pem, serve

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def operator_ca(pki) -> OperatorCa:
    return OperatorCa.create(not_before=pki.now - dt.timedelta(days=1))


def _files(tmp_path, name: str, cert_pem: bytes, key: bytes) -> ConsoleCredential:
    crt, k = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    crt.write_bytes(cert_pem)
    k.write_bytes(key)
    k.chmod(0o600)
    return ConsoleCredential.operator(crt, k)


def _operator_files(tmp_path, name: str, issued: OperatorCredential) -> ConsoleCredential:
    from cryptography.hazmat.primitives import serialization

    key = issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return _files(tmp_path, name, pem(issued.cert), key)


def _appliance_files(tmp_path, name: str, issued: Issued) -> ConsoleCredential:
    return _files(tmp_path, name, pem(issued.cert) + b"".join(pem(c) for c in issued.chain),
                  key_pem(issued))


def _unchanged(appliance) -> bool:
    return appliance.validation is True and "crls-refreshed" not in [e.kind for e in appliance.log]


@pytest.fixture
async def guarded(nursery, appliance, operator_ca, tmp_path):
    """The appliance's console, trusting ``operator_ca`` for operators."""
    return await serve(nursery, appliance, tmp_path / "console.api-token",
                       operator_cas=(operator_ca.cert,))


async def _switch_off(console, credential: ConsoleCredential) -> httpx.Response:
    async with credential.client(console.url, verify=False) as client:
        return await client.put("/api/v1/validation", json={"enabled": False})


async def test_a_good_operator_certificate_changes_the_appliance(guarded, appliance, pki,
                                                                 operator_ca, tmp_path):
    alice = _operator_files(tmp_path, "alice", operator_ca.issue("alice", not_before=pki.now - SECOND))
    answer = await _switch_off(guarded, alice)
    assert answer.status_code == 200 and answer.json() == {"enabled": False}
    assert appliance.validation is False and guarded.recorded == []


@pytest.mark.parametrize(("not_before", "not_after", "denial"), [
    (-dt.timedelta(days=30), -SECOND, Denial.CERT_EXPIRED),
    (SECOND, None, Denial.CERT_NOT_YET_VALID),
], ids=["expired", "not-yet-valid"])
async def test_an_expired_or_early_operator_certificate_is_403_and_changes_nothing(
    guarded, appliance, pki, operator_ca, tmp_path, not_before, not_after, denial
):
    cert = operator_ca.issue("bob", not_before=pki.now + not_before,
                             not_after=None if not_after is None else pki.now + not_after)
    answer = await _switch_off(guarded, _operator_files(tmp_path, "bob", cert))
    assert answer.status_code == 403
    assert answer.json() == {"code": denial.code, "message": denial.message}
    assert _unchanged(appliance)
    [event] = guarded.recorded
    assert (event.kind, event.method, event.path, event.reason, event.source) == (
        "api-denied", "PUT", "/api/v1/validation", denial.reason, "127.0.0.1")


async def test_a_certificate_from_an_unknown_ca_fails_the_handshake(guarded, appliance, pki,
                                                                      tmp_path):
    """A CA the console does not know at all fails the handshake (see mesh.web.tls):
    not even a read gets through; under TLS 1.3 the client learns it at its first read."""
    other = OperatorCa.create(not_before=pki.now - dt.timedelta(days=1))
    mallory = _operator_files(tmp_path, "mallory", other.issue("mallory", not_before=pki.now))
    async with mallory.client(guarded.url, verify=False) as client:
        with pytest.raises(httpx.TransportError):
            await client.get("/api/v1/status")
    assert _unchanged(appliance) and guarded.recorded == []


async def test_an_appliance_certificate_is_no_operator_certificate(guarded, appliance, pki, tmp_path):
    """The appliances' own CA is trusted for the handshake, never for operators."""
    answer = await _switch_off(guarded, _appliance_files(tmp_path, "sensor", pki.leaf))
    assert answer.status_code == 403
    assert answer.json()["code"] == "operator_cert_untrusted"
    assert _unchanged(appliance)
    assert [e.reason for e in guarded.recorded] == ["operator-cert-wrong-ca"]


async def test_without_operator_ca_a_client_certificate_is_no_credential(
    console, appliance, pki, operator_ca, tmp_path
):
    answer = await _switch_off(console, _appliance_files(tmp_path, "sensor", pki.leaf))
    assert answer.status_code == 403
    assert answer.json() == {"code": "operator_cert_untrusted",
                             "message": Denial.NO_OPERATOR_CA.message}
    assert _unchanged(appliance)


async def test_an_expired_operator_certificate_is_refused_by_the_emulated_clock(
    guarded, appliance, pki, operator_ca, tmp_path
):
    """Valid on the wall clock, expired on the appliance's: the appliance's clock decides."""
    alice = _operator_files(tmp_path, "alice", operator_ca.issue(
        "alice", not_before=pki.now - SECOND, not_after=pki.now + dt.timedelta(days=1)))
    assert (await _switch_off(guarded, alice)).status_code == 200
    appliance.validation = True
    appliance.instant = pki.now + dt.timedelta(days=2)
    answer = await _switch_off(guarded, alice)
    assert answer.status_code == 403 and answer.json()["code"] == "operator_cert_expired"
    assert appliance.validation is True


async def test_a_token_decides_before_a_certificate(guarded, appliance, pki, operator_ca, tmp_path):
    old = _operator_files(tmp_path, "old", operator_ca.issue(
        "old", not_before=pki.now - dt.timedelta(days=9), not_after=pki.now - SECOND))
    async with old.client(guarded.url, verify=False, headers=guarded.headers) as client:
        answer = await client.put("/api/v1/validation", json={"enabled": False})
    assert answer.status_code == 200 and appliance.validation is False


async def test_the_console_certificate_is_checked_by_the_client(guarded, pki, operator_ca, tmp_path):
    """verify=True (the default) checks the console against the roots given."""
    alice = _operator_files(tmp_path, "alice", operator_ca.issue("alice", not_before=pki.now - SECOND))
    root = tmp_path / "root.crt"
    root.write_bytes(pem(pki.root.cert))
    async with alice.client(guarded.url, cafile=root) as client:
        with pytest.raises(httpx.ConnectError):  # still self-signed: not from the root
            await client.get("/api/v1/status")


# -- the judgement, without a server: ±1 s around each boundary --


@pytest.mark.parametrize(("offset", "expected"), [
    (-SECOND, Denial.CERT_NOT_YET_VALID),
    (dt.timedelta(0), None),
    (dt.timedelta(days=10), None),
    (dt.timedelta(days=10) + SECOND, Denial.CERT_EXPIRED),
])
def test_validity_window(epoch, offset, expected):
    ca = OperatorCa.create(not_before=epoch - dt.timedelta(days=1))
    cert = ca.issue("a", not_before=epoch, days=10).cert
    assert judge_operator_certificate(cert, cas=(ca.cert,), at=epoch + offset) is expected


def test_an_expired_operator_ca_expires_its_certificates(epoch):
    ca = OperatorCa.create(not_before=epoch - dt.timedelta(days=10), days=5)
    cert = ca.issue("a", not_before=epoch - dt.timedelta(days=9), days=30).cert
    assert judge_operator_certificate(cert, cas=(ca.cert,), at=epoch) is Denial.CERT_EXPIRED


def test_a_certificate_without_client_auth_is_unfit(epoch, keys):
    from mesh.pki.issue import CertificateAuthority

    root = CertificateAuthority.root("Operators", not_before=epoch, key=keys(2048))
    server_only = root.issue("a", not_before=epoch, key=keys(2048), client_auth=False)
    assert judge_operator_certificate(server_only.cert, cas=(root.cert,),
                                      at=epoch + SECOND) is Denial.CERT_UNFIT
    both = root.issue("b", not_before=epoch, key=keys(2048))
    assert judge_operator_certificate(both.cert, cas=(root.cert,), at=epoch + SECOND) is None


def test_the_same_name_from_another_key_is_the_wrong_ca(epoch):
    ca = OperatorCa.create(not_before=epoch)
    impostor = OperatorCa.create(not_before=epoch)  # same subject, another key
    cert = impostor.issue("a", not_before=epoch).cert
    assert judge_operator_certificate(cert, cas=(ca.cert,), at=epoch + SECOND) is Denial.CERT_WRONG_CA
    assert judge_operator_certificate(cert, cas=(), at=epoch) is Denial.NO_OPERATOR_CA


def test_the_judge_takes_the_certificate_after_the_token_and_the_session(epoch, tmp_path):
    ca = OperatorCa.create(not_before=epoch)
    cert = ca.issue("a", not_before=epoch).cert
    auth = ConsoleAuth(token="right-token-right", token_file=tmp_path / "t", operator_cas=(ca.cert,))
    at = epoch + SECOND
    assert auth.judge(None, None, client_cert=cert, at=at, changes=True) is None
    assert auth.judge("Bearer wrong", None, client_cert=cert, at=at) is Denial.WRONG_TOKEN
    assert auth.judge(None, "forged", client_cert=cert, at=at) is Denial.UNKNOWN_SESSION
    with pytest.raises(ValueError):
        auth.judge(None, None, client_cert=cert)  # a certificate needs the appliance's instant


def test_the_client_needs_one_credential(tmp_path):
    with pytest.raises(ValueError):
        ConsoleCredential()
    with pytest.raises(ValueError):
        ConsoleCredential(token="t", cert_file=tmp_path / "a.crt", key_file=tmp_path / "a.key")
    with pytest.raises(ValueError):
        ConsoleCredential(cert_file=tmp_path / "a.crt")
    credential = ConsoleCredential(token="s3cret-token-value")
    assert "s3cret" not in repr(credential)
    assert credential.headers() == {"Authorization": "Bearer s3cret-token-value"}
    assert ConsoleCredential.operator("a.crt", "a.key").headers() == {}
    context = credential.ssl_context(verify=False)
    assert context.verify_mode is ssl.CERT_NONE


def test_the_client_reads_a_token_file(tmp_path):
    from mesh.errors import InputError

    path = tmp_path / "node.api-token"
    path.write_text("abcdefghijklmnopqrstuvwxyz\n")
    assert ConsoleCredential.from_token_file(path).token == "abcdefghijklmnopqrstuvwxyz"
    with pytest.raises(InputError) as info:
        ConsoleCredential.from_token_file(tmp_path / "missing")
    assert info.value.where == str(tmp_path / "missing")
