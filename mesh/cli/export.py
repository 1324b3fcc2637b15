"""The arguments of ``mesh export kubernetes``; the command is :mod:`mesh.export.commands`."""

from __future__ import annotations

import argparse

from mesh.cli.scenario import _workers

__all__ = ["add_parser"]

#: ``mesh.export.kubernetes``'s DEFAULT_IMAGE and KUBERNETES_VERSION, copied here because that
#: module loads the engine; tests/export/test_commands.py keeps the copies equal.
DEFAULT_IMAGE = "mesh:0.1.0"
KUBERNETES_VERSION = "1.33.0"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = subparsers.add_parser(
        "export", help="write a scenario's fleet for a platform to run (kubernetes)",
    )
    platforms = export.add_subparsers(dest="export_command", metavar="PLATFORM")
    kubernetes = platforms.add_parser(
        "kubernetes",
        help="write a kustomization of the scenario's fleet: `kubectl apply -k DIR`",
        description="Write a kustomization (DIR/kustomization.yaml and the files it lists) that "
        "runs the scenario's appliances as `mesh node` shards on Kubernetes: a Namespace; per "
        "shard a ConfigMap (node config), Secrets (keys, certificates, tokens; mode 0400) and a "
        "StatefulSet; a Service per appliance (its name, dots as dashes, is in its certificate); "
        "the CRL server behind the Service `crl` on port 80, its control API on 9443; the "
        "[[block]] rules as NetworkPolicies; a Job running `mesh run --inventory` against the "
        "fleet (revokes, clock moves and CRL faults included); and a Containerfile that "
        "installs mesh from this source tree. Timeline network steps and the CRL proxy are "
        f"refused (exit 2). Checked against Kubernetes {KUBERNETES_VERSION}'s schemas.",
    )
    kubernetes.add_argument("scenario", metavar="SCENARIO", help="scenario .toml file")
    kubernetes.add_argument("--out", required=True, metavar="DIR",
                            help="folder to write (new, or empty)")
    kubernetes.add_argument(
        "--workers", type=_workers, default="auto", metavar="N",
        help="shards to cut the appliances into, as `mesh run --workers` plans them (default "
        "auto: the CPU count); more when a shard's config would not fit one ConfigMap, and "
        "every appliance a [[block]] names gets a shard of its own",
    )
    kubernetes.add_argument("--namespace", metavar="NAME",
                            help="the namespace (default: mesh-<scenario name>)")
    kubernetes.add_argument("--image", default=DEFAULT_IMAGE, metavar="IMAGE",
                            help=f"the image every pod runs (default {DEFAULT_IMAGE}: build it "
                            "from DIR/Containerfile)")
    kubernetes.set_defaults(func="mesh.export.commands:kubernetes_command")
