"""``mesh crl proxy`` (:mod:`mesh.net.crl_commands`): the CRL proxy as a process of its own."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
import trio

from mesh.cli import main
from mesh.net.crl_server import CrlServer


async def test_mesh_crl_proxy_forwards_a_crl_fetch_and_says_when_it_listens(nursery):
    server = CrlServer({"/crl/root.crl": b"not parsed by a proxy"})
    await nursery.start(server.serve)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", "crl", "proxy", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        said = b""
        with trio.fail_after(30):
            while b"\n" not in said:
                said += await process.stdout.receive_some()
        line = said.decode().splitlines()[0]
        assert line.startswith("mesh: proxying at http://127.0.0.1:") and line.endswith("(Ctrl-C stops)")
        proxy = line.split()[3]
        async with httpx.AsyncClient(proxy=proxy, trust_env=False) as client:
            answer = await client.get(server.url("/crl/root.crl"))
        assert (answer.status_code, answer.content) == (200, b"not parsed by a proxy")
    finally:
        process.terminate()
        await process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                await stream.aclose()


@pytest.mark.parametrize(("argv", "line"), [
    (["--port", "70000"], "mesh: --port: 70000 is not a port number; give 0-65535 (0 picks a free one)\n"),
    (["--timeout", "0"], "mesh: --timeout: 0.0 is not a positive number of seconds; give one like 5\n"),
])
def test_a_bad_proxy_option_is_one_line(argv, line, capsys):
    assert main(["crl", "proxy", *argv]) == 2
    assert capsys.readouterr().err == line
