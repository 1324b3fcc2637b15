"""The arguments of ``mesh crl serve``; the command is :mod:`mesh.crl_service`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    crl = subparsers.add_parser("crl", help="serve a PKI folder's CRLs over HTTP")
    crl_sub = crl.add_subparsers(dest="crl_command", metavar="SUBCOMMAND")
    serve = crl_sub.add_parser(
        "serve",
        help="serve the CRLs named in DIR/pki.json until interrupted",
        description="Serve the CRLs named in DIR/pki.json over HTTP until interrupted.",
    )
    serve.add_argument("dir", metavar="DIR", help="a PKI folder made by `mesh pki init`")
    serve.add_argument(
        "--port", type=int, default=None,
        help="port to listen on (default: the port the CRL URLs name)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--api-port", type=int, default=None,
        help="also serve the control API (publish CRLs, faults down/up) over HTTPS on this "
             "port (0 picks a free one); off by default",
    )
    serve.add_argument("--api-host", default=None,
                       help="address of the control API (default: --host)")
    serve.add_argument(
        "--api-token-file", default=None,
        help="the control API's token file: used as it is when it holds a token (0600 or "
             "0400), else a new token is written there, 0600 (default DIR/crl-api.token)",
    )
    serve.add_argument(
        "--operator-ca", default=None, metavar="FILE",
        help="the operator CA (PEM) whose client certificates may change the server through "
             "the control API, besides its token",
    )
    serve.set_defaults(func="mesh.crl_service:serve_command")
    proxy = crl_sub.add_parser(
        "proxy",
        help="run a forwarding HTTP proxy for CRL fetches until interrupted",
        description="Forward absolute-form http:// GET/HEAD requests (CRL fetches) until "
        "interrupted: the proxy an appliance with crl_proxy fetches through when it cannot "
        "reach the CRL server itself.",
    )
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=3128, help="port to listen on (default 3128)")
    proxy.add_argument("--timeout", type=float, default=5.0,
                       help="seconds an upstream answer may take before 504 (default 5)")
    proxy.set_defaults(func="mesh.net.crl_commands:_proxy")
