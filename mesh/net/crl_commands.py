"""``mesh crl serve DIR``: a PKI folder's CRLs over HTTP, for appliances and curl.

The folder's manifest, ``DIR/pki.json``, maps each CRL Distribution Point URL
to a CRL file (``{"crls": {url: relative_path}}``). The server answers each URL's
*path* on one local port: by default the port the URLs name, so the
certificates' CDPs work as issued; ``--port`` overrides it (say, when the URLs
name port 80 and you are not root).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TextIO

import httpx
import trio

from mesh.errors import InputError
from mesh.net.crl_server import CrlServer

__all__ = ["load_crl_documents"]


def load_crl_documents(folder: str | Path) -> tuple[dict[str, bytes], set[int]]:
    """Read ``DIR/pki.json``: ``({url path: CRL bytes}, {ports the URLs name})``.

    Raises:
        InputError: one line naming the file or key and the fix.
    """
    folder = Path(folder)
    manifest_path = folder / "pki.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(manifest_path), "not found", "give a folder made by `mesh pki init`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(manifest_path), f"cannot be read as JSON ({exc})",
                         "regenerate it with `mesh pki init`") from None
    crls = manifest.get("crls") if isinstance(manifest, dict) else None
    if not isinstance(crls, dict):
        raise InputError(f"{manifest_path}: crls", "missing or not an object of {url: file}",
                         "regenerate the folder with `mesh pki init`")
    documents: dict[str, bytes] = {}
    ports: set[int] = set()
    for url, relative in crls.items():
        where = f"{manifest_path}: crls[{url!r}]"
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme != "http" or not parsed.host:
            raise InputError(where, "is not an http:// URL", "CRL locations must be http://HOST[:PORT]/PATH")
        if not isinstance(relative, str):
            raise InputError(where, "is not a file path", "give the CRL file relative to the folder")
        path = parsed.path or "/"
        if path in documents:
            raise InputError(where, f"path {path} is served for another URL too",
                             "give each CRL its own path")
        try:
            documents[path] = (folder / relative).read_bytes()
        except OSError as exc:
            raise InputError(str(folder / relative), f"cannot be read ({exc.strerror or exc})",
                             "rerun `mesh pki init` or fix the path in pki.json") from None
        ports.add(parsed.port or 80)
    if not documents:
        raise InputError(f"{manifest_path}: crls", "names no CRL", "issue certificates with a CRL URL")
    return documents, ports


def _serve(args: argparse.Namespace) -> int:
    documents, ports = load_crl_documents(args.dir)
    port = args.port
    if port is None:
        if len(ports) != 1:
            raise InputError(args.dir, f"the CRL URLs name several ports ({sorted(ports)})",
                             "pass --port N to serve them all on one")
        port = ports.pop()
    if not 0 <= port <= 65535:
        raise InputError("--port", f"{port} is not a port number", "give 0-65535 (0 picks a free one)")
    server = CrlServer(documents, host=args.host, port=port)
    _log_to_stderr()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            print(f"mesh: serving {len(documents)} CRL(s) at {server.base_url} (Ctrl-C stops)",
                  flush=True)
            for path in server.paths:
                print(f"  {server.url(path)}", flush=True)

    try:
        trio.run(run)
    except BaseExceptionGroup as group:
        # Surface what a person caused (port in use, Ctrl-C) the way the CLI
        # renders it, not as an exception group traceback.
        for kind in (KeyboardInterrupt, InputError):
            found = group.subgroup(kind)
            if found is not None:
                raise _first_leaf(found) from None
        raise
    return 0


class _CliHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`_log_to_stderr` adds (added once, however often it is called)."""


def _log_to_stderr() -> None:
    """What the server logs (running out of descriptors, say) as ``mesh: ...`` lines."""
    logger = logging.getLogger("mesh.net")
    if not any(isinstance(h, _CliHandler) for h in logger.handlers):
        handler = _CliHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mesh: %(message)s"))
        logger.addHandler(handler)


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
