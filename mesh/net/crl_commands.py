"""The PKI folder side of ``mesh crl serve DIR`` (the command is :mod:`mesh.crl_service`);
``mesh crl proxy``: the forwarding proxy appliances may fetch them through.

The folder's manifest, ``DIR/pki.json``, maps each CRL Distribution Point URL
to a CRL file (``{"crls": {url: relative_path}}``). The server answers each URL's
*path* on one local port: by default the port the URLs name, so the
certificates' CDPs work as issued; ``--port`` overrides it (say, when the URLs
name port 80 and you are not root).

The files are watched (:mod:`mesh.net.crl_watch`): a CRL rewritten by ``mesh
pki revoke`` is served from the next poll on, or at once on SIGHUP, without
a restart; a file that is not a CRL is never swapped in.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Awaitable, Callable, TextIO

import httpx
import trio

from mesh.errors import InputError
from mesh.net.proxy import ForwardProxy

__all__ = ["crl_files", "load_crl_documents"]

# ``mesh crl serve`` itself (with its optional control API) is mesh.crl_service.


def load_crl_documents(folder: str | Path) -> tuple[dict[str, bytes], set[int]]:
    """Read ``DIR/pki.json``: ``({url path: CRL bytes}, {ports the URLs name})``.

    Raises:
        InputError: one line naming the file or key and the fix.
    """
    files, ports = crl_files(folder)
    documents: dict[str, bytes] = {}
    for path, file in files.items():
        try:
            documents[path] = file.read_bytes()
        except OSError as exc:
            raise _unreadable(file, exc) from None
    return documents, ports


def crl_files(folder: str | Path) -> tuple[dict[str, Path], set[int]]:
    """Read ``DIR/pki.json``: ``({url path: CRL file}, {ports the URLs name})``.

    Each file is checked to be readable now.

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
    files: dict[str, Path] = {}
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
        if path in files:
            raise InputError(where, f"path {path} is served for another URL too",
                             "give each CRL its own path")
        file = folder / relative
        try:
            with open(file, "rb"):
                pass
        except OSError as exc:
            raise _unreadable(file, exc) from None
        files[path] = file
        ports.add(parsed.port or 80)
    if not files:
        raise InputError(f"{manifest_path}: crls", "names no CRL", "issue certificates with a CRL URL")
    return files, ports


def _unreadable(file: Path, exc: OSError) -> InputError:
    return InputError(str(file), f"cannot be read ({exc.strerror or exc})",
                      "rerun `mesh pki init` or fix the path in pki.json")


def _proxy(args: argparse.Namespace) -> int:
    """``mesh crl proxy``: :class:`~mesh.net.proxy.ForwardProxy` until interrupted.

    It resolves names as its host does (on a hosts run, the run's hosts
    file), so it reaches ``crl.<domain>`` where a firewall keeps the
    appliances from it. It says ``mesh: proxying at URL`` once it listens.
    """
    if not 0 <= args.port <= 65535:
        raise InputError("--port", f"{args.port} is not a port number", "give 0-65535 (0 picks a free one)")
    if not args.timeout > 0:
        raise InputError("--timeout", f"{args.timeout} is not a positive number of seconds",
                         "give one like 5")
    proxy = ForwardProxy(host=args.host, port=args.port, timeout=args.timeout)
    _log_to_stderr()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(proxy.serve)
            print(f"mesh: proxying at {proxy.url} (Ctrl-C stops)", flush=True)

    run_command(run)
    return 0


class _CliHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`_log_to_stderr` adds (added once, however often it is called)."""


def _log_to_stderr() -> None:
    """What the server logs (running out of descriptors, a reload) as ``mesh: ...`` lines."""
    logger = logging.getLogger("mesh.net")
    logger.setLevel(logging.INFO)  # the reload lines are news, not warnings
    if not any(isinstance(h, _CliHandler) for h in logger.handlers):
        handler = _CliHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("mesh: %(message)s"))
        logger.addHandler(handler)


def run_command(run: Callable[[], Awaitable[None]]) -> None:
    """``trio.run(run)`` for a command: what a person caused (a port in use,
    Ctrl-C) surfaces as the CLI renders it, not as an exception group traceback."""
    try:
        trio.run(run)
    except BaseExceptionGroup as group:
        for kind in (KeyboardInterrupt, InputError):
            found = group.subgroup(kind)
            if found is not None:
                raise _first_leaf(found) from None
        raise


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
