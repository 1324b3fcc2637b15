"""``mesh export kubernetes``: a scenario's fleet as a kustomization.

Theory of operation. What ``mesh run --workers`` starts on this machine, the
export writes down for a cluster, from the same code (:mod:`.fleet`):

- a Namespace;
- per shard a ConfigMap with its node config, Secrets with the files the
  config names (certificates, keys, chains, console tokens), mounted
  read-only with mode 0400 in one folder beside the config, a headless
  Service and a StatefulSet of one pod that copies that folder into memory,
  private to its user (:mod:`.unpack`), and runs ``mesh node --config`` there;
- per appliance a Service named after it (:mod:`.names`), whose port 8443
  (the mesh) and 9443 (its console) lead to that appliance's ports in its
  shard's pod; every certificate carries the Service name as a DNS SAN
  beside the appliance's domain name, and every node config dials peers by
  Service name;
- the CRL server, ``mesh crl serve`` on a ConfigMap of the CRLs as published
  at the scenario's start, behind the Service ``crl`` on port 80; every CRL
  Distribution Point reads ``http://crl/crl/<ca>.crl``. Its control API
  (publish CRLs, faults) listens on the Service's port 9443, with a token
  from a Secret that its first container copies to a 0600 file
  (:mod:`.unpack`), the token the driver's inventory names;
- the scenario's ``[[block]]`` rules as NetworkPolicies (:mod:`.policies`);
- a Job that unpacks its folder and waits for the fleet to listen
  (:mod:`.unpack`), then runs the scenario driver against it, ``mesh run
  --inventory``, with an inventory built from the Services (the format of
  ``mesh run --inventory``: every console's API and token, the CRL
  server's API and token, the PKI folder revoke and upload steps draw on;
  all of it a gzip'd tar in Secret parts), so it revokes, moves the clock
  (republishing the CRLs) and switches the CRL server's faults as a run in
  one process does;
- a Containerfile that installs mesh from this source tree.

What cannot be a manifest is refused in one line before anything is made
(:func:`check_exportable`): timeline network steps (a NetworkPolicy is
fixed at deploy time, and the driver, ``mesh run --inventory``, has no
network between the appliances to change), the CRL proxy (it runs inside a
runner), and keys that need a passphrase (a node config is a ConfigMap,
which must hold no secret). Every other step is a request the driver sends
to a console or to the CRL server's control API.

Pure apart from the temporary folder the PKI is written through: it returns
the files' text; :mod:`.commands` writes them.
"""

from __future__ import annotations

import io
import json
import secrets
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from attrs import define, evolve, field

from mesh.errors import InputError
from mesh.export import objects
from mesh.export.fleet import CONFIG, Shard, plan_fleet
from mesh.export.names import check_label, namespace_for, service_names
from mesh.export.objects import LABELS, config_map, metadata, projected
from mesh.export.policies import Endpoint, Pod, network_policies
from mesh.export.unpack import PARTS
from mesh.pki.deployment import Pki
from mesh.pki.issue import KeySource
from mesh.scenario.actions import Action
from mesh.scenario.hosts import API_PORT, CRL_PORT, NODE_PORT
from mesh.scenario.model import Scenario
from mesh.scenario.world import build_pki

__all__ = [
    "CRL_SERVICE", "CRL_TOKEN", "DEFAULT_IMAGE", "Export", "KUBERNETES_VERSION", "NETWORK_STEPS",
    "check_exportable", "export_kubernetes",
]

#: The Kubernetes release whose schemas the manifests are checked against.
KUBERNETES_VERSION = "1.33.0"

#: The image every pod runs (the Containerfile's; ``--image`` names another).
DEFAULT_IMAGE = "mesh:0.1.0"

#: The CRL server's Service: every CRL Distribution Point names it.
CRL_SERVICE = "crl"
#: Where ``mesh crl serve`` listens in its pod (the Service maps port 80 to it,
#: so the pod needs no privilege to bind a low port).
CRL_POD_PORT = 8080
#: The CRL server's control API: the port of its pod and of the Service ``crl``
#: (a console's port: unprivileged, so the same in both).
CRL_API_PORT = API_PORT
#: The token file of the CRL server's control API, in its Secret and its pod's work folder.
CRL_TOKEN = "crl-api.token"

#: Timeline steps that change the network (``Action.network``): a NetworkPolicy
#: is fixed when it is applied, and the driver (``mesh run --inventory``, a
#: backend without a network of its own) cannot change one. They are the only
#: steps it cannot play: the others are requests to a console or to the CRL
#: server's control API.
NETWORK_STEPS = tuple(str(action) for action in Action if action.network)

#: ``kubectl apply`` (client side) keeps a copy of each object in an annotation
#: of at most 256 KiB; an object bigger than this needs ``--server-side``.
CLIENT_SIDE_APPLY = 200_000

#: Where things are mounted in the pods.
NODE_MOUNT = "/etc/mesh/node"
CRL_MOUNT = "/etc/mesh/crl"
CRL_TOKEN_MOUNT = "/etc/mesh/crl-token"
DRIVER_MOUNT = "/etc/mesh/driver"
#: Every pod's working folder (memory-backed): :mod:`.unpack` fills it.
WORK = "/run/mesh"

_COMPONENT = "app.kubernetes.io/component"
_SHARD = "mesh/shard"
_NODE_LABELS = {**LABELS, _COMPONENT: "node"}
_CRL_LABELS = {**LABELS, _COMPONENT: "crl"}
_DRIVER_LABELS = {**LABELS, _COMPONENT: "driver"}

CONTAINERFILE = """\
# mesh, as every pod of `mesh export kubernetes` runs it. Build it from the
# root of mesh's source tree (the folder with pyproject.toml):
#   podman build -f {out}/Containerfile -t {image} .
FROM docker.io/library/python:3.11-slim
WORKDIR /opt/mesh
COPY pyproject.toml README.md ./
COPY mesh ./mesh
RUN pip install --no-cache-dir . \\
 && groupadd --gid {uid} mesh \\
 && useradd --uid {uid} --gid {uid} --no-create-home --home-dir /tmp mesh
USER {uid}:{uid}
ENV HOME=/tmp PYTHONUNBUFFERED=1
CMD ["mesh", "--help"]
"""


@define(frozen=True, kw_only=True)
class Export:
    """What ``mesh export kubernetes`` writes, and what it decided."""

    namespace: str
    #: {file name in DIR: its text}, kustomization.yaml and Containerfile among them.
    files: dict[str, str] = field(repr=False)
    #: The files that hold keys or tokens (written 0600).
    private: frozenset[str]
    shards: list[Shard] = field(repr=False)
    services: dict[str, str]
    pki: Pki = field(repr=False)
    #: Why there are more shards than asked, or None.
    grown: str | None = None
    #: Bytes of data of the biggest ConfigMap or Secret (as written).
    largest: int = 0

    def apply_command(self, out: str) -> str:
        """How to deploy it: ``kubectl apply -k``, server side once an object is too big
        for the annotation client-side apply keeps (:data:`CLIENT_SIDE_APPLY`)."""
        side = " --server-side" if self.largest > CLIENT_SIDE_APPLY else ""
        return f"kubectl apply{side} -k {out}"


def check_exportable(scenario: Scenario) -> None:
    """One line naming the first thing of ``scenario`` that cannot be a manifest.

    Raises:
        InputError: a timeline network step, the CRL proxy, a block naming the proxy.
    """
    where = scenario.source or scenario.name
    fix = "remove it, or play the scenario with mesh run"
    for index, step in enumerate(scenario.steps, 1):
        word = str(step.action)
        if step.action.network:
            raise InputError(f"{where}: step[{index}] {word}",
                             "cannot be exported to Kubernetes (NetworkPolicies are fixed when "
                             "applied; write it as a [[block]] in force from the start)", fix)
    if scenario.pki.crl_proxy_only or any(a.crl_proxy for a in scenario.appliances):
        raise InputError(f"{where}: crl_proxy", "cannot be exported to Kubernetes "
                         "(the CRL proxy runs inside a runner)", fix)
    for index, block in enumerate(scenario.blocks, 1):
        if "proxy" in (block.source, block.destination):
            raise InputError(f"{where}: {block.origin or f'block[{index}]'}",
                             "names the proxy, which a Kubernetes fleet does not have", fix)


def _with_consoles(scenario: Scenario) -> Scenario:
    """Every sensor and console serves its API: the driver plays the timeline through them."""
    return evolve(scenario, api=True, appliances=[
        evolve(a, api=None) if a.role != "forwarding-target" else a for a in scenario.appliances
    ])


def export_kubernetes(
    scenario: Scenario, *, scenario_text: str, keys: KeySource, workers: int,
    namespace: str | None = None, image: str = DEFAULT_IMAGE, out: str = "DIR",
) -> Export:
    """The kustomization of ``scenario``'s fleet (see the module docstring).

    ``scenario_text``: the scenario file, for the driver; ``workers``: how
    many shards to cut the appliances into (more when the plan needs it);
    ``out``: the folder name the Containerfile's comment shows.

    Raises:
        InputError: something cannot be exported (one line: what and why).
    """
    where = scenario.source or scenario.name
    check_exportable(scenario)
    namespace = check_label(namespace or namespace_for(scenario.name), "--namespace",
                            "give --namespace a DNS label: lowercase letters, digits, '-'",
                            first_letter=False)
    scenario = _with_consoles(scenario)
    names = [a.name for a in scenario.appliances]
    services = service_names(names, where=where, reserved={CRL_SERVICE: "the CRL server"})
    # The shards' headless Services are mesh-shard-N: no appliance may take one.
    for appliance, service in services.items():
        if service.startswith("mesh-shard-"):
            raise InputError(f"{where}: appliance {appliance!r}",
                             f"its Service name {service!r} is kept for the shards' own",
                             "rename the appliance")
    pki = build_pki(scenario, crl_base_url=f"http://{CRL_SERVICE}/crl", keys=keys, dns_names={
        name: (service, f"{service}.{namespace}.svc") for name, service in services.items()
    })
    for a in scenario.appliances:
        if a.certificate != "self-signed" and pki.appliances[a.name].passphrase:
            raise InputError(f"{where}: appliance {a.name!r}",
                             f"starts with a key that needs a passphrase ({a.certificate}), which "
                             "its node config would name, and node configs are ConfigMaps",
                             "start it with another certificate")
    shards, grown = plan_fleet(scenario, pki, services, workers=workers)
    files: dict[str, str] = {}
    private: set[str] = set()
    made: list[dict[str, Any]] = []

    def render(documents: list[dict[str, Any]]) -> str:
        made.extend(documents)
        return objects.render(documents)

    files["namespace.yaml"] = render([{
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": dict(LABELS)},
    }])
    crl_token = secrets.token_urlsafe(32)
    files["crl-server.yaml"] = render(_crl_server(pki, scenario, namespace, image, crl_token))
    private.add("crl-server.yaml")
    for shard in shards:
        name = f"{shard.key}.yaml"
        files[name] = render(_shard(shard, namespace, image, where))
        private.add(name)
    files["services.yaml"] = render(_services(shards, services, namespace))
    files["network-policies.yaml"] = render(_policies(scenario, shards, namespace))
    files["driver.yaml"] = render(_driver(scenario, scenario_text, pki, shards, services,
                                          namespace, image, where, crl_token))
    private.add("driver.yaml")
    files["kustomization.yaml"] = render([{
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": list(files),
    }])
    files["Containerfile"] = CONTAINERFILE.format(out=out, image=image, uid=objects.RUN_AS)
    largest = max(sum(len(v) for part in ("data", "binaryData") for v in o.get(part, {}).values())
                  for o in made if o["kind"] in ("ConfigMap", "Secret"))
    return Export(namespace=namespace, files=files, private=frozenset(private), shards=shards,
                  services=services, pki=pki, grown=grown, largest=largest)


def _pod_template(labels: Mapping[str, str], containers: list[dict[str, Any]],
                  volumes: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": objects.pod_security(),
            **spec,
            "containers": containers,
            "volumes": [*volumes, {"name": "tmp", "emptyDir": {}}],
        },
    }


def _container(name: str, image: str, command: list[str], mounts: list[dict[str, Any]],
               ports: Sequence[int] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name, "image": image, "imagePullPolicy": "IfNotPresent", "command": command,
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "securityContext": objects.container_security(),
        "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"}],
    }
    if ports:
        out["ports"] = [{"containerPort": port, "protocol": "TCP"} for port in ports]
    return out


def _shard(shard: Shard, namespace: str, image: str, where: str) -> list[dict[str, Any]]:
    """A shard's ConfigMap, Secrets, headless Service and StatefulSet."""
    labels = {**_NODE_LABELS, _SHARD: shard.key}
    config = config_map(f"{shard.key}-config", namespace, {CONFIG: shard.config}, labels=labels,
                        where=f"{where}: {shard.key}'s node config")
    secrets, sources = objects.secrets(f"{shard.key}-files", namespace, shard.files,
                                       labels=labels, where=f"{where}: {shard.key}")
    ports = sorted(p for pair in shard.ports.values() for p in pair if p is not None)
    work = {"name": "work", "mountPath": WORK}
    copy = _container("files", image, ["python", "-m", "mesh.export.unpack", "node", NODE_MOUNT, WORK],
                      [{"name": "node", "mountPath": NODE_MOUNT, "readOnly": True}, work])
    container = _container("node", image, ["mesh", "node", "--config", f"{WORK}/{CONFIG}"], [work], ports)
    volumes = [projected("node", [{"configMap": {"name": config["metadata"]["name"]}}, *sources]),
               {"name": "work", "emptyDir": {"medium": "Memory"}}]
    return [config, *secrets, {
        "apiVersion": "v1", "kind": "Service", "metadata": metadata(shard.key, namespace, labels),
        "spec": {"clusterIP": "None", "selector": {_SHARD: shard.key, **LABELS}},
    }, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata(shard.key, namespace, labels),
        "spec": {
            "serviceName": shard.key, "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": _pod_template(labels, [container], volumes, initContainers=[copy]),
        },
    }]


def _services(shards: list[Shard], services: Mapping[str, str], namespace: str) -> list[dict[str, Any]]:
    """One Service per appliance: 8443 to its mesh port, 9443 to its console."""
    out: list[dict[str, Any]] = []
    for shard in shards:
        for name in shard.names:
            mesh_port, api_port = shard.ports[name]
            ports: list[dict[str, Any]] = [{"name": "mesh", "protocol": "TCP", "port": NODE_PORT, "targetPort": mesh_port}]
            if api_port is not None:
                ports.append({"name": "api", "protocol": "TCP", "port": API_PORT, "targetPort": api_port})
            out.append({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {**metadata(services[name], namespace, {_COMPONENT: "node"}),
                             "annotations": {"mesh/appliance": name}},
                "spec": {"selector": {_SHARD: shard.key, **LABELS}, "ports": ports},
            })
    return out


def _crl_server(pki: Pki, scenario: Scenario, namespace: str, image: str,
                token: str) -> list[dict[str, Any]]:
    """``mesh crl serve`` on the CRLs as published at the start, with its control API
    (``token``), behind the Service ``crl``.

    The token's Secret is mounted 0400 (0440 with the pod's ``fsGroup``),
    which ``mesh crl serve`` refuses as a console does: the first container
    copies it to a 0600 file in memory (:mod:`.unpack`), as on a node.
    """
    where = scenario.source or scenario.name
    crls: dict[str, bytes] = {}
    manifest: dict[str, str] = {}
    for url, document in sorted(pki.crl_documents(at=scenario.start).items()):
        file = url.rsplit("/", 1)[-1]
        if not file or file in crls:
            file = f"{len(crls)}.crl"
        crls[file] = document
        manifest[f"http://{CRL_SERVICE}{url}"] = file
    config = config_map(CRL_SERVICE, namespace, {"pki.json": json.dumps({"crls": manifest}, indent=2)},
                        binary=crls, labels=_CRL_LABELS, where=f"{where}: CRLs")
    token_secrets, sources = objects.secrets(f"{CRL_SERVICE}-token", namespace,
                                             {CRL_TOKEN: (token + "\n").encode()},
                                             labels=_CRL_LABELS, where=f"{where}: the CRL server")
    work = {"name": "work", "mountPath": WORK}
    copy = _container("files", image, ["python", "-m", "mesh.export.unpack", "crl", CRL_TOKEN_MOUNT, WORK],
                      [{"name": "token", "mountPath": CRL_TOKEN_MOUNT, "readOnly": True}, work])
    container = _container(
        "crl", image,
        ["mesh", "crl", "serve", CRL_MOUNT, "--host", "0.0.0.0", "--port", str(CRL_POD_PORT),
         "--api-port", str(CRL_API_PORT), "--api-host", "0.0.0.0",
         "--api-token-file", f"{WORK}/{CRL_TOKEN}"],
        [{"name": "crl", "mountPath": CRL_MOUNT, "readOnly": True}, work], [CRL_POD_PORT, CRL_API_PORT],
    )
    volumes = [{"name": "crl", "configMap": {"name": CRL_SERVICE, "defaultMode": 0o444}},
               projected("token", sources),
               {"name": "work", "emptyDir": {"medium": "Memory"}}]
    return [config, *token_secrets, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": metadata(CRL_SERVICE, namespace, _CRL_LABELS),
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(_CRL_LABELS)},
                 "template": _pod_template(_CRL_LABELS, [container], volumes,
                                           initContainers=[copy])},
    }, {
        "apiVersion": "v1", "kind": "Service", "metadata": metadata(CRL_SERVICE, namespace, _CRL_LABELS),
        "spec": {"selector": dict(_CRL_LABELS),
                 "ports": [{"name": "http", "protocol": "TCP", "port": CRL_PORT,
                            "targetPort": CRL_POD_PORT},
                           {"name": "api", "protocol": "TCP", "port": CRL_API_PORT,
                            "targetPort": CRL_API_PORT}]},
    }]


def _endpoints(shards: list[Shard]) -> list[Endpoint]:
    out = [Endpoint(host=CRL_SERVICE, pod=CRL_SERVICE, port=CRL_PORT, pod_port=CRL_POD_PORT, kind="crl"),
           # Its control API: the driver's only, like a console's.
           Endpoint(host=CRL_SERVICE, pod=CRL_SERVICE, port=CRL_API_PORT, pod_port=CRL_API_PORT,
                    kind="api")]
    for shard in shards:
        for name in shard.names:
            mesh_port, api_port = shard.ports[name]
            out.append(Endpoint(host=name, pod=shard.key, port=NODE_PORT, pod_port=mesh_port, kind="mesh"))
            if api_port is not None:
                out.append(Endpoint(host=name, pod=shard.key, port=API_PORT, pod_port=api_port, kind="api"))
    return out


def _pods(shards: list[Shard]) -> list[Pod]:
    return [
        *(Pod(key=s.key, kind="node", labels={**_NODE_LABELS, _SHARD: s.key}, hosts=s.names)
          for s in shards),
        Pod(key=CRL_SERVICE, kind="crl", labels=_CRL_LABELS, hosts=(CRL_SERVICE,)),
        Pod(key="driver", kind="driver", labels=_DRIVER_LABELS),
    ]


def _policies(scenario: Scenario, shards: list[Shard], namespace: str) -> list[dict[str, Any]]:
    return network_policies(_pods(shards), _endpoints(shards), scenario.blocks,
                            namespace=namespace, labels=LABELS, node_labels=_NODE_LABELS)


#: Where the driver's folder holds the CRL server's token.
_CRL_TOKEN_FILE = "tokens/crl.token"


def _inventory(shards: list[Shard], services: Mapping[str, str]) -> str:
    """The driver's inventory (the format ``mesh run --inventory`` reads)."""
    lines = [
        "# The fleet `mesh export kubernetes` deployed: the CRL server's control API and",
        "# every console, by their Service names.",
        "# Paths are relative to this file's folder (the driver's mounted folder).",
        'pki = "pki"',
        "",
        "[crl]",
        f"api = {json.dumps(f'https://{CRL_SERVICE}:{CRL_API_PORT}')}",
        f"token_file = {json.dumps(_CRL_TOKEN_FILE)}",
    ]
    for shard in shards:
        for name in shard.names:
            if shard.ports[name][1] is None:
                continue  # a forwarding target has no API to drive
            lines += ["", "[[node]]", f"name = {json.dumps(name)}",
                      f"api = {json.dumps(f'https://{services[name]}:{API_PORT}')}",
                      f"token_file = {json.dumps(f'tokens/{name}.token')}"]
    return "\n".join(lines) + "\n"


def _driver_parts(pki: Pki, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The driver's folder (``files`` and the PKI folder under ``pki/``) as a gzip'd tar
    cut into Secret-sized parts.

    Why an archive: in a big fleet the inventory (a table per console) and
    the PKI's ``pki.json`` (every appliance) are each far past what one
    ConfigMap or Secret may hold; :mod:`.unpack` joins the parts in the pod.
    """
    buffer = io.BytesIO()

    def add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            add(tar, name, data, 0o600 if name.startswith("tokens/") else 0o644)
        with tempfile.TemporaryDirectory(prefix="mesh-export-") as tmp:
            pki.write(tmp)
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    add(tar, f"pki/{path.relative_to(tmp).as_posix()}", path.read_bytes(),
                        path.stat().st_mode & 0o777)
    archive = buffer.getvalue()
    size = objects.OBJECT_BUDGET // 4 * 3  # its base64 fits the budget
    return {f"{PARTS}{n:03d}": archive[at:at + size]
            for n, at in enumerate(range(0, len(archive), size))}


def _driver(scenario: Scenario, scenario_text: str, pki: Pki, shards: list[Shard],
            services: Mapping[str, str], namespace: str, image: str,
            where: str, crl_token: str) -> list[dict[str, Any]]:
    """The driver's Secrets (its folder: inventory, scenario, fleet, tokens, PKI) and Job."""
    fleet = [f"{CRL_SERVICE} {CRL_PORT}", f"{CRL_SERVICE} {CRL_API_PORT}"] + [
        f"{services[name]} {API_PORT}" for shard in shards for name in shard.names
        if shard.ports[name][1] is not None
    ]
    tokens = {f"tokens/{name}.token": shard.files[f"{name}.api-token"]
              for shard in shards for name in shard.names if shard.ports[name][1] is not None}
    tokens[_CRL_TOKEN_FILE] = (crl_token + "\n").encode()
    parts = _driver_parts(pki, {
        "inventory.toml": _inventory(shards, services).encode(),
        "scenario.toml": scenario_text.encode(),
        "fleet.txt": ("\n".join(fleet) + "\n").encode(),
        **tokens,
    })
    secrets, sources = objects.secrets("driver-files", namespace, parts, labels=_DRIVER_LABELS,
                                       where=f"{where}: the driver's folder")
    work = {"name": "work", "mountPath": WORK}
    unpack = _container("unpack", image, ["python", "-m", "mesh.export.unpack", "driver", DRIVER_MOUNT, WORK],
                        [{"name": "driver", "mountPath": DRIVER_MOUNT, "readOnly": True}, work])
    run = _container("driver", image, ["mesh", "run", "--inventory", f"{WORK}/inventory.toml",
                                       f"{WORK}/scenario.toml"], [work])
    volumes = [projected("driver", sources),
               {"name": "work", "emptyDir": {"medium": "Memory"}}]
    return [*secrets, {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata("driver", namespace, _DRIVER_LABELS),
        "spec": {
            # A failed run is not replayed: its steps changed the fleet.
            "backoffLimit": 0,
            "template": _pod_template(_DRIVER_LABELS, [run], volumes, restartPolicy="Never",
                                      initContainers=[unpack]),
        },
    }]
