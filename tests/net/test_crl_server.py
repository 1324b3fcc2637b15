"""The CRL server over real HTTP on 127.0.0.1: documents, every fault, counting, CLI."""

from __future__ import annotations

import datetime as dt
import json
import random
import select
import socket
import subprocess
import sys

import httpx
import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mesh.cli import main
from mesh.errors import InputError
from mesh.net.crl_commands import load_crl_documents
from mesh.net.crl_server import CrlServer, Fault
from mesh.pki.issue import CertificateAuthority

PATH = "/crl/contoso-issuing-ca.crl"


def der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def ca(keys, epoch):
    return CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))


@pytest.fixture
def crl(ca, epoch):
    return der(ca.crl(this_update=epoch))


@pytest.fixture
async def server(nursery, crl):
    server = CrlServer({PATH: crl})
    await nursery.start(server.serve)
    return server


async def get(url: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        return await client.get(url)


async def test_serves_documents_and_counts(server, crl):
    assert server.port > 0
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    answer = await get(server.url(PATH))
    assert answer.status_code == 200
    assert answer.content == crl
    assert answer.headers["content-type"] == "application/pkix-crl"
    missing = await get(server.url("/crl/nope.crl"))
    assert missing.status_code == 404
    assert server.requests(PATH) == 1
    assert server.requests("/crl/nope.crl") == 1
    assert server.requests() == 2


async def test_publish_replaces_at_runtime(server, ca, epoch):
    newer = der(ca.crl(this_update=epoch + dt.timedelta(hours=1)))
    server.publish(PATH, newer)
    assert (await get(server.url(PATH))).content == newer


async def test_curl_and_openssl_agree_it_is_a_crl(server):
    """The independent oracle: curl fetches it, openssl parses it as a DER CRL."""
    url = server.url(PATH)
    result = await trio.run_process(
        ["sh", "-c", f"curl -sf {url} | openssl crl -inform DER -noout -issuer"],
        capture_stdout=True,
        capture_stderr=True,
    )
    assert b"Contoso Issuing CA" in result.stdout
    server.set_fault("http-404")
    failed = await trio.run_process(["curl", "-sf", url], check=False, capture_stdout=True)
    assert failed.returncode == 22  # curl -f: HTTP error status


async def test_down_refuses_and_up_returns_on_the_same_port(server, crl):
    port = server.port
    server.set_fault(Fault.DOWN)
    assert not server.listening
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)
    server.set_fault(Fault.OK)
    assert server.port == port
    assert (await get(server.url(PATH))).content == crl


async def test_down_drops_open_connections(server):
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await stream.send_all(b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in await stream.receive_some(65536)  # kept alive after the answer
        server.set_fault("down")
        with trio.fail_after(5):
            while await stream.receive_some(65536):
                pass  # closed by the server: EOF


async def test_started_down_knows_its_port(nursery, crl):
    server = CrlServer({PATH: crl})
    server.set_fault("down")
    port = await nursery.start(server.serve)
    assert port and not server.listening
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)
    server.set_fault("ok")
    assert (await get(server.url(PATH))).status_code == 200


async def test_slow_accepts_and_never_answers(server, mock_clock):
    server.set_fault("slow")
    answered = []
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await stream.send_all(b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")

        async def read() -> None:
            answered.append(await stream.receive_some(65536))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await server.wait_requests(1, PATH)
            mock_clock.jump(3600)  # an hour of (mock) waiting
            await trio.testing.wait_all_tasks_blocked()
            assert answered == []
            nursery.cancel_scope.cancel()
    assert server.requests(PATH) == 1


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        ("http-404", 404, "text/plain"),
        ("http-500", 500, "text/plain"),
        ("html", 200, "text/html; charset=utf-8"),
        ("garbage", 200, "application/pkix-crl"),
    ],
)
async def test_http_level_faults(server, crl, fault, status, content_type):
    server.set_fault(fault)
    answer = await get(server.url(PATH))
    assert answer.status_code == status
    assert answer.headers["content-type"] == content_type
    assert answer.content != crl
    if fault == "html":
        assert answer.content.startswith(b"<!DOCTYPE html>")
    server.set_fault("ok")
    assert (await get(server.url(PATH))).content == crl


async def test_garbage_is_random_each_time(server):
    server.set_fault("garbage")
    first, second = await get(server.url(PATH)), await get(server.url(PATH))
    assert len(first.content) == 2048
    assert first.content != second.content


async def test_stale_and_wrong_key_serve_the_owners_variants(server, ca, keys, epoch, crl):
    stale = der(ca.crl(this_update=epoch - dt.timedelta(days=30)))
    impostor = CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))
    wrong = der(impostor.crl(this_update=epoch))
    with pytest.raises(ValueError, match="set_documents"):
        server.set_fault("stale")
    server.set_documents({PATH: stale}, variant="stale")
    server.set_documents({PATH: wrong}, variant=Fault.WRONG_KEY)
    server.set_fault("stale")
    assert (await get(server.url(PATH))).content == stale
    server.set_fault("wrong-key")
    assert (await get(server.url(PATH))).content == wrong
    server.set_fault("ok")
    assert (await get(server.url(PATH))).content == crl


async def test_fault_for_one_path(server, crl):
    other = "/crl/contoso-root-ca.crl"
    server.publish(other, crl)
    server.set_fault("http-500", path=other)
    assert (await get(server.url(other))).status_code == 500
    assert (await get(server.url(PATH))).status_code == 200
    assert server.fault(other) is Fault.HTTP_500
    assert server.fault(PATH) is Fault.OK
    with pytest.raises(ValueError, match="whole server"):
        server.set_fault("down", path=other)
    server.set_fault("down")
    server.set_fault("ok", path=other)  # a path's fault does not bring the server up
    assert not server.listening
    assert server.fault(other) is Fault.OK and server.fault(PATH) is Fault.DOWN
    server.set_fault("ok")
    assert server.listening and server.fault(other) is Fault.OK


def test_unknown_fault_names_the_known_ones():
    with pytest.raises(ValueError, match="known faults: ok, down, slow"):
        Fault.parse("sluggish")


async def test_head_and_other_methods(server, crl):
    async with httpx.AsyncClient(trust_env=False) as client:
        head = await client.head(server.url(PATH))
        post = await client.post(server.url(PATH), content=b"x")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(crl))
    assert post.status_code == 405


async def test_port_in_use_is_one_clear_line(server, crl):
    with pytest.raises(InputError, match="cannot listen") as info:
        await CrlServer({PATH: crl}, port=server.port).serve()
    assert info.value.where == f"127.0.0.1:{server.port}"


async def read_all(stream: trio.abc.Stream) -> bytes:
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


@pytest.mark.parametrize("garbage", [b"NOT HTTP AT ALL\r\n\r\n", random.Random(3).randbytes(512) + b"\r\n\r\n"])
async def test_bad_request_bytes_get_400_and_do_not_hurt_the_server(server, crl, garbage):
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await stream.send_all(garbage)
        received = await read_all(stream)
    assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert (await get(server.url(PATH))).content == crl


# -- mesh crl serve --


def write_pki(folder, crl: bytes, url: str) -> None:
    (folder / "crl").mkdir()
    (folder / "crl" / "issuing.crl").write_bytes(crl)
    (folder / "pki.json").write_text(json.dumps({"crls": {url: "crl/issuing.crl"}}))


def test_load_documents_from_a_pki_folder(tmp_path, crl):
    write_pki(tmp_path, crl, "http://crl.contoso.example:8080/crl/issuing.crl")
    documents, ports = load_crl_documents(tmp_path)
    assert documents == {"/crl/issuing.crl": crl}
    assert ports == {8080}


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        (None, "pki.json: not found"),
        ("{", "cannot be read as JSON"),
        ('{"crls": []}', "crls: missing or not an object"),
        ('{"crls": {"https://x/crl.crl": "a"}}', "is not an http:// URL"),
        ('{"crls": {"http://x/crl.crl": "missing.crl"}}', "missing.crl: cannot be read"),
        ('{"crls": {}}', "names no CRL"),
    ],
)
def test_bad_pki_folder_is_one_line_exit_2(tmp_path, capsys, manifest, problem):
    if manifest is not None:
        (tmp_path / "pki.json").write_text(manifest)
    assert main(["crl", "serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert problem in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_serves_a_pki_folder(tmp_path, crl):
    """End to end: `mesh crl serve` as its own process, fetched by curl."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_pki(tmp_path, crl, f"http://127.0.0.1:{port}/crl/issuing.crl")
    process = subprocess.Popen(
        [sys.executable, "-m", "mesh", "crl", "serve", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = process.stdout.readline()  # printed once listening
        assert f"at http://127.0.0.1:{port}" in ready, process.stderr.read()
        fetched = subprocess.run(
            ["curl", "-sf", f"http://127.0.0.1:{port}/crl/issuing.crl"],
            capture_output=True, check=True, timeout=10,
        )
        assert fetched.stdout == crl
    finally:
        process.terminate()
        process.communicate(timeout=10)


def _limit_descriptors() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def _line_within(stream, seconds: float) -> bytes:
    """The next line of a child's pipe, or b"" if none comes within ``seconds``."""
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else b""


def test_cli_keeps_accepting_after_running_out_of_file_descriptors(tmp_path, crl):
    """`mesh crl serve` under a 64-descriptor limit: 100 idle clients, then released.

    The server says once that it ran out (the signal that it has). The last
    client then sends a request the server cannot accept yet; once the others
    have gone, the server accepts again and answers it, and a fresh client.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_pki(tmp_path, crl, f"http://127.0.0.1:{port}/crl/issuing.crl")
    process = subprocess.Popen(
        [sys.executable, "-m", "mesh", "crl", "serve", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limit_descriptors,
    )
    idle: list[socket.socket] = []
    try:
        assert f"at http://127.0.0.1:{port}".encode() in process.stdout.readline()
        for _ in range(100):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        assert _line_within(process.stderr, 10).decode() == (
            f"mesh: CRL server on 127.0.0.1:{port}: out of file descriptors "
            "(Too many open files); waiting for connections to close\n")
        waiting = idle.pop()
        waiting.settimeout(10)
        waiting.sendall(b"GET /crl/issuing.crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        for sock in idle:
            sock.close()
        idle.clear()
        answer = b""
        while chunk := waiting.recv(65536):
            answer += chunk
        waiting.close()
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(crl)
        fetched = subprocess.run(
            ["curl", "-sf", "--max-time", "10", f"http://127.0.0.1:{port}/crl/issuing.crl"],
            capture_output=True, check=True, timeout=20,
        )
        assert fetched.stdout == crl
    finally:
        for sock in idle:
            sock.close()
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert b"out of file descriptors" not in err  # said once, above


# -- bounded requests: a timeout for each, and answers instead of resets --

from mesh.net.http_server import REQUEST_TIMEOUT  # noqa: E402


async def read_after_jump(stream: trio.abc.Stream, mock_clock) -> bytes:
    """:func:`read_all` once the clock was jumped: from here mock time also runs
    at the wall clock's pace, so a server that fails to answer fails the test
    within 5 s instead of hanging it."""
    mock_clock.rate = 1
    return await read_all(stream)


async def test_an_unfinished_head_gets_408_at_the_request_timeout(server, crl, mock_clock):
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await stream.send_all(b"GET /crl HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 60_000)
        await server.wait_connections(1)
        mock_clock.jump(REQUEST_TIMEOUT - 0.5)
        await trio.testing.wait_all_tasks_blocked()
        assert server.open_connections == 1
        mock_clock.jump(1)
        received = await read_after_jump(stream, mock_clock)
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert received.endswith(b"\r\n\r\nrequest timeout\n")
    assert (await get(server.url(PATH))).content == crl


async def test_a_silent_connection_is_closed_at_the_request_timeout(server, mock_clock):
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await server.wait_connections(1)
        mock_clock.jump(REQUEST_TIMEOUT)
        assert await read_after_jump(stream, mock_clock) == b""
    await server.wait_connections(0, at_most=True)


async def test_a_kept_alive_connection_is_closed_when_idle(server, crl, mock_clock):
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await stream.send_all(b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while not received.endswith(crl):
            received += await stream.receive_some(65536)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(REQUEST_TIMEOUT)
        assert await read_after_jump(stream, mock_clock) == b""


async def test_a_head_over_64_kib_gets_431_not_a_reset(server, crl):
    head = b"GET /crl HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 130_000 + b"\r\n\r\n"
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await stream.send_all(head)
        received = await read_all(stream)
    assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert (await get(server.url(PATH))).content == crl


async def test_a_body_over_64_kib_gets_413_not_a_reset(server, crl):
    body = b"b" * 200_000
    head = f"POST /crl HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
        await stream.send_all(head + body)
        received = await read_all(stream)
    assert received.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert received.endswith(b"\r\n\r\nrequest body too large\n")
    assert (await get(server.url(PATH))).content == crl
