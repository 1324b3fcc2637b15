"""The arguments of ``mesh node``; the command is in :mod:`mesh.node`."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "CONFIG"]

#: The config file, as ``mesh node --help`` shows it.
CONFIG = """\
name = "sensor-1"                      # how events call it
hostname = "sensor-1.contoso.test"     # its domain name (default: name)
role = "sensor"                        # sensor, management-console, ha-console,
                                       # forwarding-target
listen = "127.0.0.1:0"                 # host:port, 0 picks a port
certificate = "sensor-1.crt"           # omit certificate and key: self-signed
key = "sensor-1.key"                   #   at first start, like a fresh appliance
chain = "sensor-1.pem"                 # optional intermediates
passphrase = "..."                     # optional, for an encrypted key
trust = ["root.crt"]                   # the roots it trusts; without it, the
                                       #   root of the first accepted upload's
                                       #   chain (a trust-anchor-set event)
validation = true
revocation = "hard"                    # or "soft"
validator = "strict"                   # or "openssl": what a stock
                                       #   OpenSSL-based appliance accepts
crl_files = ["issuing.crl"]            # optional: CRLs given out of band,
                                       #   used instead of fetching the CDP
                                       #   for their issuers' certificates
crl_proxy = "http://127.0.0.1:3128"    # optional
start = "2027-01-15T09:00:00Z"         # emulated start (default: now)
accept_from = ["console"]              # optional: the one dialer whose name
                                       #   a listener requires
backoff_cap = 60                       # seconds between redials, at most
api = true                             # REST API and web console over HTTPS
                                       #   (default: on for sensors and consoles,
                                       #   forwarding targets have none)
api_port = 0                           # its port on the listen host; 0 picks one
api_token_file = "sensor-1.api-token"  # where the console writes its token
                                       #   (0600; default: NAME.api-token beside
                                       #   this file); changes through the API
                                       #   need it. A file that already holds a
                                       #   token (0600 or 0400: a mounted
                                       #   secret) is used as it is; delete it
                                       #   for a new token at the next start
operator_ca = "operator-ca.crt"        # optional: client certificates from this
                                       #   CA (mesh pki operator) may change the
                                       #   node too (mutual TLS)
admin_password_hash = "scrypt$..."     # optional: the web page's admin user
                                       #   signs in with this password (the
                                       #   hash: mesh hash-password prints it)

[connects_to]                          # peers this node dials ([peers] works too)
console = "127.0.0.1:8443"             # name = "host:port", or a table:
# console = { address = "127.0.0.1:8443", hostname = "console.contoso.test",
#             role = "management-console" }

[forwards_to]                          # forwarding targets (server-auth)
siem = "127.0.0.1:6514"
# syslog = { address = "10.0.0.9:6514", raw = true }   # a third-party server:
#   no verdict exchange, alerts as JSON lines

A shard config runs several appliances in this one process: start and
backoff_cap at the top, then one [[appliance]] table each with the keys above
(its peers in [appliance.connects_to]; name = "local" for an appliance of the
same shard; accept_from for its dialers in other shards).

Which end dials is the config's choice: list each link in one config only.
Relative paths are relative to the config file. Every problem in the config
is one line naming the file and key, all of them at once, exit status 2.
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run one appliance (or a shard of them) as its own process, on real ports",
        description="Run one appliance as its own OS process; events go to stdout as JSON\n"
        "lines. SIGTERM or SIGINT stops it cleanly (appliance-stopped, exit 0).",
        epilog="A config file:\n\n" + CONFIG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, metavar="FILE.toml", help="the node's config file")
    parser.set_defaults(func="mesh.node:_command")
