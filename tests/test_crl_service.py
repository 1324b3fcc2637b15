"""``mesh crl serve --api-port``: CRLs published and faults switched over the control API.

The server runs as its own process (as an operator starts it), on loopback;
requests are real HTTPS with the token from the file its startup line names.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio
from cryptography.hazmat.primitives.serialization import Encoding

from mesh.cli import main
from mesh.pki.issue import CertificateAuthority

PATH = "/crl/issuing.crl"


@pytest.fixture
def ca(keys, epoch):
    return CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))


def _der(crl) -> bytes:
    return crl.public_bytes(Encoding.DER)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    def __init__(self, process: trio.Process, port: int, api: str, token_file: Path) -> None:
        self.process, self.port, self.api, self.token_file = process, port, api, token_file
        self.lines: list[str] = []

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}

    async def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.api, verify=False, timeout=10) as client:
            kwargs.setdefault("headers", self.headers)
            return await client.request(method, path, **kwargs)

    async def fetch(self) -> httpx.Response:
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            return await client.get(f"http://127.0.0.1:{self.port}{PATH}")


def _pki_folder(folder: Path, ca, epoch) -> int:
    """A CRL folder as ``mesh pki init`` lays it out; returns the CRL port its manifest names."""
    port = _free_port()
    (folder / "crl").mkdir()
    (folder / "crl" / "issuing.crl").write_bytes(_der(ca.crl(this_update=epoch)))
    (folder / "pki.json").write_text(json.dumps(
        {"crls": {f"http://127.0.0.1:{port}{PATH}": "crl/issuing.crl"}}))
    return port


async def _serve(folder: Path, port: int, *options: str) -> Served:
    """``mesh crl serve FOLDER --api-port 0 OPTIONS`` as its own process, once its API listens."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", "crl", "serve", str(folder), "--api-port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    buffer = b""
    with trio.fail_after(30):
        while b"control API at" not in buffer:
            chunk = await process.stdout.receive_some(4096)
            assert chunk, (await process.stderr.receive_some(4096)).decode()
            buffer += chunk
    match = re.search(r"control API at (https://\S+)/api/v1/ \(token in (.+)\)", buffer.decode())
    assert match, buffer
    return Served(process, port, match.group(1), Path(match.group(2)))


@pytest.fixture
async def served(tmp_path, ca, epoch, nursery):
    served = await _serve(tmp_path, _pki_folder(tmp_path, ca, epoch))
    yield served
    served.process.terminate()
    await served.process.wait()


async def test_the_token_file_is_private_and_named_by_the_startup_line(served, tmp_path):
    assert served.token_file == tmp_path / "crl-api.token"
    assert stat.S_IMODE(served.token_file.stat().st_mode) == 0o600
    listing = (await served.call("GET", "/api/v1/crls", headers={})).json()
    assert listing["fault"] == "ok"
    assert [d["path"] for d in listing["documents"]] == [PATH]


async def test_publishing_replaces_the_served_crl(served, ca, epoch):
    serial = 4242
    ca.revoke(serial, at=epoch)
    new = _der(ca.crl(this_update=epoch))
    answer = await served.call("POST", "/api/v1/crls",
                               json={"documents": {PATH: base64.b64encode(new).decode()}})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"published": [PATH]}
    assert (await served.fetch()).content == new
    # One file, raw, as curl --data-binary sends it.
    newer = _der(ca.crl(this_update=epoch.replace(hour=10)))
    answer = await served.call("PUT", f"/api/v1/crls{PATH}", content=newer)
    assert answer.status_code == 200 and answer.json() == {"published": [PATH]}
    assert (await served.fetch()).content == newer


async def test_a_document_that_is_not_a_crl_is_refused_and_nothing_changes(served):
    before = (await served.fetch()).content
    answer = await served.call("POST", "/api/v1/crls",
                               json={"documents": {PATH: base64.b64encode(b"junk").decode()}})
    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_request" and PATH in answer.json()["message"]
    answer = await served.call("PUT", f"/api/v1/crls{PATH}", content=b"junk")
    assert answer.status_code == 400
    assert (await served.fetch()).content == before


async def test_down_refuses_connections_and_up_serves_again(served):
    answer = await served.call("PUT", "/api/v1/fault", json={"fault": "down"})
    assert answer.status_code == 200 and answer.json() == {"fault": "down"}
    with pytest.raises(httpx.ConnectError):
        await served.fetch()
    answer = await served.call("PUT", "/api/v1/fault", json={"fault": "up"})
    assert answer.json() == {"fault": "ok"}
    assert (await served.fetch()).status_code == 200
    answer = await served.call("PUT", "/api/v1/fault", json={"fault": "garbage"})
    assert answer.json() == {"fault": "garbage"}
    assert (await served.fetch()).headers["content-type"] == "application/pkix-crl"
    answer = await served.call("PUT", "/api/v1/fault", json={"fault": "sideways"})
    assert answer.status_code == 400 and "sideways" in answer.json()["message"]


async def test_changes_need_the_token_and_refusals_are_events(served):
    before = (await served.fetch()).content
    answer = await served.call("PUT", "/api/v1/fault", json={"fault": "down"}, headers={})
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    answer = await served.call("PUT", "/api/v1/fault", json={"fault": "down"},
                               headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    answer = await served.call("PUT", f"/api/v1/crls{PATH}", content=b"x",
                               headers={**served.headers, "Origin": "https://evil.example"})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden_origin"
    assert (await served.fetch()).content == before
    served.process.terminate()
    await served.process.wait()
    out = b""
    while chunk := await served.process.stdout.receive_some(65536):
        out += chunk
    denied = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    assert [(e["kind"], e["appliance"], e["reason"]) for e in denied] == [
        ("api-denied", "crl-server", "no-credential"), ("api-denied", "crl-server", "wrong-token")]
    token = served.token_file.read_text().strip()
    assert token not in out.decode()


def test_a_token_file_without_the_api_is_one_line(tmp_path, capsys):
    (tmp_path / "pki.json").write_text(json.dumps({"crls": {"http://127.0.0.1:1/a.crl": "a.crl"}}))
    (tmp_path / "a.crl").write_bytes(b"")
    assert main(["crl", "serve", str(tmp_path), "--api-token-file", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--api-port" in err


async def test_a_provided_private_token_file_is_used_as_it_is(tmp_path, ca, epoch):
    """Whatever deploys the server (a Kubernetes Secret, copied 0600) knows its token beforehand."""
    port = _pki_folder(tmp_path, ca, epoch)
    token_file = tmp_path / "provided.token"
    token = "provided-token-0123456789abcdef"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    served = await _serve(tmp_path, port, "--api-token-file", str(token_file))
    try:
        assert served.token_file == token_file
        assert token_file.read_text() == token + "\n"  # not replaced
        answer = await served.call("PUT", "/api/v1/fault", json={"fault": "down"},
                                   headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json() == {"fault": "down"}
    finally:
        served.process.terminate()
        await served.process.wait()


def test_a_token_file_others_may_read_is_one_line_and_nothing_listens(tmp_path, ca, epoch, capsys):
    port = _pki_folder(tmp_path, ca, epoch)
    token_file = tmp_path / "open.token"
    token_file.write_text("provided-token-0123456789abcdef\n")
    token_file.chmod(0o644)
    assert main(["crl", "serve", str(tmp_path), "--api-port", "0",
                 "--api-token-file", str(token_file)]) == 2
    out, err = capsys.readouterr()
    assert err == (f"mesh: {token_file}: is open to group or others (mode 0644); chmod 600 "
                   f"{token_file} (a Kubernetes Secret: defaultMode 0400)\n")
    assert "serving" not in out
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
