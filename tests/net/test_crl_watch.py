"""``mesh crl serve`` keeps up with its files: a rewritten CRL is served without a restart.

Real files rewritten the way ``mesh pki revoke`` writes them (temp file and
rename), a real CRL server over HTTP, and the poll driven by trio's mock
clock or a real SIGHUP, never by a sleep.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import trio
import trio.testing
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mesh.net.crl_server import CrlServer
from mesh.net.crl_watch import POLL_INTERVAL, CrlWatch
from mesh.pki.files import write_file
from mesh.pki.issue import CertificateAuthority

PATH = "/crl/issuing.crl"


def der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def ca(keys, epoch):
    return CertificateAuthority.root("Contoso Issuing CA", not_before=epoch, key=keys(2048))


@pytest.fixture
def first(ca, epoch) -> bytes:
    """The CRL as published at the start (CRL number 1)."""
    return der(ca.crl(this_update=epoch))


@pytest.fixture
def second(ca, epoch, first) -> bytes:
    """The next CRL, as ``mesh pki revoke`` republishes it (CRL number 2)."""
    ca.revoke(0x1234, at=epoch + dt.timedelta(hours=1))
    return der(ca.crl(this_update=epoch + dt.timedelta(hours=1)))


@pytest.fixture
def crl_file(tmp_path, first):
    (tmp_path / "crl").mkdir()
    path = tmp_path / "crl" / "issuing.crl"
    write_file(path, first)
    return path


@pytest.fixture
async def server(nursery):
    server = CrlServer()
    await nursery.start(server.serve)
    return server


@pytest.fixture
def watch(server, crl_file):
    return CrlWatch(server, {PATH: crl_file})


async def served(server: CrlServer) -> bytes:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        answer = await client.get(server.url(PATH))
    assert answer.status_code == 200
    return answer.content


def crl_number(data: bytes) -> int:
    crl = x509.load_der_x509_crl(data)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("mesh.net")]


async def test_serves_the_files_as_they_are_at_the_start(server, watch, first):
    assert await served(server) == first


async def test_a_rewritten_file_is_served_after_the_next_poll(
    server, watch, crl_file, first, second, nursery, mock_clock, caplog
):
    caplog.set_level(logging.INFO, logger="mesh.net")
    nursery.start_soon(watch.run)
    await trio.testing.wait_all_tasks_blocked()
    write_file(crl_file, second)  # temp file and rename, as mesh pki revoke writes it
    assert await served(server) == first  # not before the poll
    mock_clock.jump(POLL_INTERVAL)
    await watch.wait_checks(1)
    assert await served(server) == second
    assert crl_number(second) == 2
    assert lines(caplog) == [f"reloaded {crl_file} (CRL number 2) at {PATH}"]


async def test_a_file_rewritten_with_the_same_bytes_is_no_news(watch, crl_file, first, caplog):
    """``mesh pki revoke`` rewrites every CRL file; only the changed ones are named."""
    caplog.set_level(logging.INFO, logger="mesh.net")
    write_file(crl_file, first)
    assert await watch.check() == []
    assert lines(caplog) == []


async def test_sighup_reloads_at_once(server, watch, crl_file, second, nursery, caplog):
    caplog.set_level(logging.INFO, logger="mesh.net")
    await nursery.start(watch.reload_on_sighup)
    write_file(crl_file, second)
    os.kill(os.getpid(), signal.SIGHUP)
    with trio.fail_after(5):
        await watch.wait_checks(1)
    assert await served(server) == second
    assert lines(caplog) == [f"SIGHUP: reloaded {crl_file} (CRL number 2) at {PATH}"]


async def test_sighup_with_nothing_changed_says_so(watch, nursery, caplog):
    caplog.set_level(logging.INFO, logger="mesh.net")
    await nursery.start(watch.reload_on_sighup)
    os.kill(os.getpid(), signal.SIGHUP)
    with trio.fail_after(5):
        await watch.wait_checks(1)
    assert lines(caplog) == ["SIGHUP: no CRL file changed"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is not a DER or PEM CRL"),
        (b"<html>Sign in</html>", "is not a DER or PEM CRL"),
        (None, "is not a DER or PEM CRL"),  # a CRL cut short: half written
    ],
    ids=["empty", "html", "truncated"],
)
async def test_a_file_that_is_not_a_crl_is_not_swapped_in(
    server, watch, crl_file, first, second, caplog, content, problem
):
    caplog.set_level(logging.INFO, logger="mesh.net")
    write_file(crl_file, second[: len(second) // 2] if content is None else content)
    assert await watch.check() == []
    assert await served(server) == first
    (line,) = lines(caplog)
    assert line.startswith(f"{crl_file}: not reloaded: {crl_file} {problem} (")
    assert line.endswith("); still serving the previous CRL")
    assert "\n" not in line
    # Said once, not at every poll; a good file later is taken.
    assert await watch.check() == []
    assert len(lines(caplog)) == 1
    write_file(crl_file, second)
    assert await watch.check() == [PATH]
    assert await served(server) == second


async def test_a_missing_file_keeps_the_previous_crl(server, watch, crl_file, first, second, caplog):
    caplog.set_level(logging.INFO, logger="mesh.net")
    crl_file.unlink()
    assert await watch.check() == []
    assert await served(server) == first
    assert lines(caplog) == [
        f"{crl_file}: not reloaded: cannot be read (No such file or directory); "
        "still serving the previous CRL"
    ]
    write_file(crl_file, second)
    assert await watch.check() == [PATH]
    assert await served(server) == second


async def test_several_changed_files_are_one_line(tmp_path, server, ca, keys, epoch, first, second,
                                                  caplog):
    caplog.set_level(logging.INFO, logger="mesh.net")
    root = CertificateAuthority.root("Contoso Root CA", not_before=epoch, key=keys(2048))
    a, b = tmp_path / "a.crl", tmp_path / "b.crl"
    write_file(a, first)
    write_file(b, der(root.crl(this_update=epoch)))
    watch = CrlWatch(server, {"/a.crl": a, "/b.crl": b})
    write_file(a, second)
    root.revoke(7, at=epoch)
    write_file(b, der(root.crl(this_update=epoch + dt.timedelta(hours=1))))
    assert await watch.check() == ["/a.crl", "/b.crl"]
    assert lines(caplog) == [
        f"reloaded 2 CRL files: {a} (CRL number 2) at /a.crl, {b} (CRL number 2) at /b.crl"
    ]


# -- mesh crl serve, as its own process --


def _line_within(stream, seconds: float) -> bytes:
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else b""


def test_cli_reloads_on_sighup_and_serves_the_new_crl(tmp_path, crl_file, second):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{PATH}"
    (tmp_path / "pki.json").write_text(json.dumps({"crls": {url: "crl/issuing.crl"}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "mesh", "crl", "serve", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert f"at http://127.0.0.1:{port}".encode() in process.stdout.readline()
        write_file(crl_file, second)
        process.send_signal(signal.SIGHUP)
        assert _line_within(process.stderr, 10).decode() == (
            f"mesh: SIGHUP: reloaded {crl_file} (CRL number 2) at {PATH}\n")
        fetched = subprocess.run(["curl", "-sf", "--max-time", "10", url],
                                 capture_output=True, check=True, timeout=20)
        assert fetched.stdout == second
    finally:
        process.terminate()
        process.communicate(timeout=10)
