"""``mesh crl serve DIR [--api-port N]``: a PKI folder's CRLs over HTTP, with a control API.

The CRL serving itself is :mod:`mesh.net.crl_commands` (the manifest, the
file watch, SIGHUP); this module adds, when ``--api-port`` is given, the
control API of :mod:`mesh.web.crl_api` on its own HTTPS port: a scenario
driver (``mesh run --inventory``) or a person with curl publishes CRLs and
takes the server down and up there. It lives here, not in :mod:`mesh.net`,
because the network layer does not import the consoles' web stack.

The API presents a self-signed certificate made at start for ``--api-host``
(nothing to configure; clients use ``curl -k`` or trust it on the token). Its
token is the consoles' (:func:`mesh.web.auth.console_token`): a
``--api-token-file`` (default ``DIR/crl-api.token``) that already holds one
is used as it is, so whatever deploys the server (a Kubernetes Secret, for
one) knows the token beforehand; otherwise a new one is written there, 0600.
A file that group or others may read is refused in one line before anything
listens. The startup line names the URL and the file, never the token.
Refused requests are printed as ``api-denied`` JSON lines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import trio

from mesh.errors import InputError
from mesh.events import Event
from mesh.net.crl_commands import _log_to_stderr, _unreadable, crl_files, run_command
from mesh.net.crl_server import CrlServer
from mesh.net.crl_watch import CrlWatch

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["serve_command", "serve_crl_api"]


def _wall_clock() -> dt.datetime:
    # A CRL server has no emulated clock: its certificate and events are dated now.
    return dt.datetime.now(dt.timezone.utc)


async def serve_crl_api(
    server: CrlServer,
    *,
    token_file: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    record: Callable[[Event], object] | None = None,
    operator_cas: tuple[x509.Certificate, ...] = (),
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``server``'s control API over HTTPS until cancelled; started with its URL.

    ``record`` receives the ``api-denied`` events; ``operator_cas``: the CAs whose
    client certificates may change the server, as on a console; ``token_file``:
    the token's file, used as it is when it holds one (see the module docstring).

    Raises:
        InputError: the port is in use, or the token file is open to group or
            others, holds no token, or cannot be read or written.
    """
    from mesh.pki.issue import self_signed_leaf
    from mesh.web.auth import ConsoleAuth, console_token
    from mesh.web.crl_api import build_crl_app
    from mesh.web.server import serve_api

    auth = ConsoleAuth(token=console_token(token_file), token_file=token_file,
                       record=record or (lambda event: None), operator_cas=operator_cas)
    name = host if host not in ("0.0.0.0", "::", "") else "localhost"
    identity = self_signed_leaf(name, not_before=_wall_clock() - dt.timedelta(minutes=5), days=365)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(partial(
            serve_api,
            lambda reads_open: build_crl_app(server, auth=auth, now=_wall_clock,
                                             reads_open=reads_open),
            lambda: identity, lambda: operator_cas, host=host, port=port, where="--api-port"))
        task_status.started(address.url)


def serve_command(args: argparse.Namespace) -> int:
    files, ports = crl_files(args.dir)
    port = args.port
    if port is None:
        if len(ports) != 1:
            raise InputError(args.dir, f"the CRL URLs name several ports ({sorted(ports)})",
                             "pass --port N to serve them all on one")
        port = ports.pop()
    for option, value in (("--port", port), ("--api-port", args.api_port)):
        if value is not None and not 0 <= value <= 65535:
            raise InputError(option, f"{value} is not a port number", "give 0-65535 (0 picks a free one)")
    operator_cas: tuple[x509.Certificate, ...] = ()
    if args.operator_ca is not None:
        if args.api_port is None:
            raise InputError("--operator-ca", "is set but the control API is off",
                             "add --api-port N (0 picks a free one)")
        from mesh.pki.operator import load_operator_cas

        operator_cas = load_operator_cas(Path(args.operator_ca))
    if args.api_token_file is not None and args.api_port is None:
        raise InputError("--api-token-file", "is set but the control API is off",
                         "add --api-port N (0 picks a free one)")
    server = CrlServer(host=args.host, port=port)
    try:
        watch = CrlWatch(server, files)
    except OSError as exc:
        raise _unreadable(Path(exc.filename), exc) from None
    _log_to_stderr()
    token_file = Path(args.api_token_file or Path(args.dir) / "crl-api.token")
    if args.api_port is not None:
        from mesh.web.auth import console_token

        # Settled before anything listens: a refused token file is one line,
        # not a CRL server that starts and then falls over.
        console_token(token_file)

    def record(event: Event) -> None:
        print(json.dumps(event.as_dict()), flush=True)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            # SIGHUP is handled from before the server answers: an early one
            # reloads instead of ending the process.
            await nursery.start(watch.reload_on_sighup)
            await nursery.start(server.serve)
            nursery.start_soon(watch.run)
            print(f"mesh: serving {len(files)} CRL(s) at {server.base_url} (Ctrl-C stops; "
                  "changed files are served anew, SIGHUP re-reads them now)", flush=True)
            for path in server.paths:
                print(f"  {server.url(path)}", flush=True)
            if args.api_port is not None:
                url = await nursery.start(partial(
                    serve_crl_api, server, token_file=token_file, host=args.api_host or args.host,
                    port=args.api_port, record=record, operator_cas=operator_cas))
                print(f"mesh: control API at {url}/api/v1/ (token in {token_file})", flush=True)

    run_command(run)
    sys.stdout.flush()
    return 0
