"""Debian's headless chromium, driven two ways for the console page tests.

* :func:`dump_dom`: ``chromium --headless --dump-dom URL`` for "the page shows X".
* :class:`WebDriver`: chromedriver's W3C WebDriver protocol spoken with httpx,
  for clicking and uploading through the form (no selenium needed: the
  protocol is plain JSON over HTTP).

The browser trusts exactly the console's key (``--ignore-certificate-errors-
spki-list``), so a page that loads was served over TLS with that certificate.
Waiting happens inside the page (an async script that resolves when the text
appears), bounded by WebDriver's script timeout; the tests never sleep.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def need_chromium(driver: bool = False) -> None:
    missing = [p for p in ([CHROMIUM, CHROMEDRIVER] if driver else [CHROMIUM]) if not Path(p).exists()]
    if missing:
        pytest.skip(
            f"Debian's headless browser is not installed ({', '.join(missing)} missing); "
            "install it with: apt-get install -y chromium chromium-driver"
        )


def spki_pin(cert: x509.Certificate) -> str:
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


#: No network at all: every host resolves to nothing, every proxy is a dead port.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
           "--proxy-bypass-list=<-loopback>"]


def chromium_args(profile: Path, cert: x509.Certificate | None, *, offline: bool = False) -> list[str]:
    """The flags of every test browser. ``cert``: the one server key it accepts
    over TLS (None: it opens local files only); ``offline``: no network (:data:`OFFLINE`)."""
    pin = [f"--ignore-certificate-errors-spki-list={spki_pin(cert)}"] if cert is not None else []
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *pin,
        *(OFFLINE if offline else []),
    ]


async def dump_dom(url: str, *, profile: Path, cert: x509.Certificate | None,
                   offline: bool = False) -> str:
    """The page's DOM once its scripts have run (virtual time lets fetches finish)."""
    need_chromium()
    result = await trio.run_process(
        [CHROMIUM, *chromium_args(profile, cert, offline=offline), "--virtual-time-budget=3000",
         "--dump-dom", url],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebDriver:
    """One chromedriver process and one browser session."""

    def __init__(self, client: httpx.AsyncClient, session: str) -> None:
        self._client = client
        self._session = session

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        answer = await self._client.request(
            method, f"/session/{self._session}{path}", json=body if body is not None else None
        )
        value = answer.json().get("value")
        if answer.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {value}")
        return value

    async def get(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def find(self, css: str) -> str:
        found = await self._call("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    async def send_keys(self, css: str, text: str) -> None:
        await self._call("POST", f"/element/{await self.find(css)}/value", {"text": text})

    async def click(self, css: str) -> None:
        await self._call("POST", f"/element/{await self.find(css)}/click", {})

    async def text(self, css: str) -> str:
        return await self._call("GET", f"/element/{await self.find(css)}/text")

    async def attribute(self, css: str, name: str) -> str | None:
        return await self._call("GET", f"/element/{await self.find(css)}/attribute/{name}")

    async def displayed(self, css: str) -> bool:
        """Whether ``css`` is rendered visibly (WebDriver's "is displayed")."""
        return await self._call("GET", f"/element/{await self.find(css)}/displayed")

    async def execute(self, script: str, *args: Any) -> Any:
        """The value ``script`` (a function body) returns in the page."""
        return await self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    async def wait_for_text(self, css: str, text: str) -> str:
        """Resolve once ``css`` exists and its text contains ``text`` (in the page)."""
        script = """
            const [css, text, done] = arguments;
            (function check() {
              const node = document.querySelector(css);
              if (node && node.textContent.includes(text)) done(node.textContent);
              else setTimeout(check, 50);
            })();
        """
        return await self._call("POST", "/execute/async", {"script": script, "args": [css, text]})


async def open_webdriver(nursery: trio.Nursery, *, profile: Path, cert: x509.Certificate | None,
                         offline: bool = False) -> WebDriver:
    """Start chromedriver and a headless session; both end with ``nursery``."""
    need_chromium(driver=True)
    port = _free_port()
    process = await trio.lowlevel.open_process(
        [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    seen = b""
    while b"started successfully" not in seen:
        chunk = await process.stdout.receive_some()
        if not chunk:
            raise AssertionError(f"chromedriver exited: {seen.decode(errors='replace')}")
        seen += chunk
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
    answer = await client.post("/session", json={"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": chromium_args(profile, cert, offline=offline)},
        "timeouts": {"script": 20000, "pageLoad": 20000, "implicit": 5000},
    }}})
    value = answer.json()["value"]
    if answer.status_code != 200:
        raise AssertionError(f"chromedriver could not start chromium: {value}")
    driver = WebDriver(client, value["sessionId"])

    async def close_at_end() -> None:
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(10):
                    await client.delete(f"/session/{value['sessionId']}")
                await client.aclose()
                process.terminate()
                with trio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                shutil.rmtree(profile, ignore_errors=True)

    nursery.start_soon(close_at_end)
    return driver
