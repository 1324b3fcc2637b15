"""A scenario's ``[[block]]`` rules as Kubernetes NetworkPolicies.

Theory of operation. A NetworkPolicy can only allow: once a policy selects a
pod, whatever no policy allows is denied. So the fleet gets one default deny
(ingress and egress, every pod of the namespace), one egress allow (every pod
may open connections to the namespace's pods and to the cluster's DNS), and
per listening pod one ingress policy that lists, port by port, the pods that
may connect. A blocked (source, destination, port) is simply absent from
those lists; everything the mesh needs that no block forbids is present.

Granularity. Policies see pods and pod ports, not appliances. A destination
is exact: every appliance of a shard listens on a port of its own in its pod
(:mod:`.kubernetes`), so a block names that appliance's port only. A source
is the whole pod, so the export gives every appliance a block names a shard
of its own (:func:`isolated`): a policy then never blocks a shard mate along
with it, and no blocked link runs inside one process, where no network could
come between its ends.

Who may reach what: the appliances (node pods) reach each other's mesh ports
and the CRL server, unless a block says otherwise; the scenario driver (the
Job) reaches every console API and the CRL server (its CRLs and its control
API) always, as the run's
control plane, which no ``[[block]]`` names ("*" means every scenario host,
not the driver). Nothing else listens. Kubernetes has no "refuse": how a
denied connection fails (dropped, mostly) is the network plugin's choice, so
a block's ``drop = false`` cannot be honoured exactly (documented).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from attrs import define

from mesh.scenario.model import Block

__all__ = ["Endpoint", "Pod", "blocked", "isolated", "network_policies", "DNS_PORT"]

#: Where a pod's names are resolved (the cluster DNS, kube-dns/CoreDNS).
DNS_PORT = 53

#: The label the cluster DNS pods carry (kubeadm, GKE, EKS, AKS: CoreDNS keeps it).
DNS_LABELS = {"k8s-app": "kube-dns"}


@define(frozen=True, kw_only=True)
class Pod:
    """A pod of the fleet as policies see it."""

    key: str
    labels: Mapping[str, str]
    #: "node" (appliances: they dial), "crl" (the CRL server: it only listens) or
    #: "driver" (the scenario driver: it reaches every control port, whatever the blocks).
    kind: str
    #: The scenario hosts it runs (appliance names, or "crl"); () for the driver.
    hosts: tuple[str, ...] = ()


@define(frozen=True, kw_only=True)
class Endpoint:
    """One listening port of a scenario host."""

    host: str
    pod: str
    #: The port the scenario names (a Service port: 8443, 9443, 80).
    port: int
    #: Where it listens in its pod (what a NetworkPolicy names).
    pod_port: int
    #: "mesh" (links), "api" (a console's or the CRL server's control API, for
    #: the driver only) or "crl" (CRL fetches).
    kind: str


def blocked(blocks: Iterable[Block], source: str, destination: str, port: int) -> bool:
    """Does a block forbid ``source`` to reach ``destination:port``?"""
    return any(
        block.source in (source, "*") and block.destination in (destination, "*")
        and (block.port is None or block.port == port)
        for block in blocks
    )


def isolated(blocks: Iterable[Block], appliances: Sequence[str]) -> list[str]:
    """The appliances that need a pod of their own for the blocks to hold (see the module docstring).

    Every appliance a block names; all of them when a block is ``"*" -> "*"``
    (no link may then stay inside a process).
    """
    names = set(appliances)
    out: set[str] = set()
    for block in blocks:
        if block.source == "*" and block.destination == "*":
            return list(appliances)
        out.update(end for end in (block.source, block.destination) if end in names)
    return [name for name in appliances if name in out]


def _allowed(source: Pod, endpoint: Endpoint, blocks: Sequence[Block]) -> bool:
    """``blocks``: those whose source is one of ``source``'s hosts, or "*"."""
    if source.key == endpoint.pod:
        return False  # within a pod: no network between them
    if source.kind == "driver":
        return endpoint.kind in ("api", "crl")
    if source.kind != "node" or endpoint.kind == "api":
        return False
    # blocked() for each host of the pod, with the blocks that can apply to one of them.
    return not any(
        block.destination in (endpoint.host, "*") and block.port in (None, endpoint.port)
        for block in blocks
    )


def _peer(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": dict(labels)}}


def network_policies(
    pods: Sequence[Pod], endpoints: Sequence[Endpoint], blocks: Sequence[Block], *,
    namespace: str, labels: Mapping[str, str], node_labels: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The default deny, the egress allow and one ingress policy per listening pod.

    ``labels``: what every policy is labelled with; ``node_labels``: what
    every node pod carries (one peer stands for all of them when all may connect).
    """
    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": dict(labels)}

    out: list[dict[str, Any]] = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("default-deny"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("allow-egress"),
         "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
             {"to": [{"podSelector": {}}]},
             {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": dict(DNS_LABELS)}}],
              "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]},
         ]}},
    ]
    by_key = {pod.key: pod for pod in pods}
    nodes = {pod.key for pod in pods if pod.kind == "node"}
    listening: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        listening.setdefault(endpoint.pod, []).append(endpoint)
    # The blocks that may apply to each pod's hosts: found once, not per port and host.
    applies = {pod.key: [b for b in blocks if b.source == "*" or b.source in set(pod.hosts)]
               for pod in pods}
    for key, here in listening.items():
        # Ports with the same allowed sources share one rule.
        rules: dict[frozenset[str], list[int]] = {}
        for endpoint in here:
            sources = frozenset(p.key for p in pods if _allowed(p, endpoint, applies[p.key]))
            if sources:
                rules.setdefault(sources, []).append(endpoint.pod_port)
        ingress = []
        for sources, ports in rules.items():
            peers: list[dict[str, Any]] = []
            if nodes - {key} and nodes - {key} <= sources:
                peers.append(_peer(node_labels))
                rest = sources - nodes
            else:
                rest = sources
            peers += [_peer(by_key[k].labels) for k in sorted(rest)]
            ingress.append({"from": peers,
                            "ports": [{"protocol": "TCP", "port": port} for port in sorted(ports)]})
        out.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": meta(f"allow-to-{key}"),
            "spec": {"podSelector": {"matchLabels": dict(by_key[key].labels)},
                     "policyTypes": ["Ingress"], "ingress": ingress},
        })
    return out
