"""``mesh export kubernetes``'s manifests: the official schemas, then every cross-reference.

No cluster runs here. What can be checked without one is checked on the
real output: every object against the schemas of a pinned Kubernetes release
(kubernetes-validate ships them and works offline; strict: no unknown
field), and every reference between objects (selectors, mounts, ports,
certificates, policies, the inventory) by reading the objects back the way
Kubernetes would. The kustomization and the Containerfile have no schema
here: they get the cross-reference checks only.
"""

from __future__ import annotations

import base64
import json
import socket
import stat
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from cryptography import x509

import mesh
from mesh.export import unpack
from mesh.export.fleet import CONFIG
from mesh.export.kubernetes import CRL_SERVICE, CRL_TOKEN, DEFAULT_IMAGE, KUBERNETES_VERSION
from mesh.export.objects import OBJECT_BUDGET, RUN_AS
from mesh.errors import InputError
from mesh.node_config import load_shard
from mesh.pki.deployment import Pki
from mesh.scenario.hosts import API_PORT, CRL_PORT, NODE_PORT
from mesh.scenario.load import load_scenario


ROOT = Path(mesh.__file__).parent.parent


@pytest.fixture(scope="module")
def documents(exported):
    """{file: [objects]} of every resource file the kustomization lists."""
    resources = yaml.safe_load(exported.files["kustomization.yaml"])["resources"]
    return {name: [d for d in yaml.safe_load_all(exported.files[name]) if d] for name in resources}


@pytest.fixture(scope="module")
def objects(documents):
    return [d for docs in documents.values() for d in docs]


@pytest.fixture(scope="module")
def scenario(fleet_file):
    return load_scenario(fleet_file)


def _named(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _workloads(objects):
    return [o for o in objects if o["kind"] in ("StatefulSet", "Deployment", "Job")]


def _templates(objects):
    return [w["spec"]["template"] for w in _workloads(objects)]


def _selects(selector, labels):
    """A label selector of matchLabels (all the export writes) against ``labels``."""
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _data(obj):
    """A ConfigMap's or Secret's {key: bytes}."""
    if obj["kind"] == "Secret":
        return {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()}
    out = {k: v.encode() for k, v in obj.get("data", {}).items()}
    out.update({k: base64.b64decode(v) for k, v in obj.get("binaryData", {}).items()})
    return out


def _volume_files(volume, objects):
    """{path: bytes}: what a pod sees in ``volume`` (a projected, Secret or ConfigMap volume)."""
    sources = volume["projected"]["sources"] if "projected" in volume else [volume]
    files = {}
    for source in sources:
        kind, ref = next((k, v) for k, v in source.items() if k in ("configMap", "secret"))
        name = ref.get("name") or ref.get("secretName")
        obj = _named(objects, "ConfigMap" if kind == "configMap" else "Secret")[name]
        data = _data(obj)
        items = ref.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            files[item["path"]] = data[item["key"]]
    return files


def _materialize(volume, objects, folder: Path) -> Path:
    """The volume as the pod sees it: with the pod's fsGroup, kubelet makes 0400 files 0440."""
    for path, data in _volume_files(volume, objects).items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o440)
    return folder


def _pod_of(objects, selector):
    matching = [t for t in _templates(objects) if _selects({"matchLabels": selector}, t["metadata"]["labels"])]
    assert len(matching) == 1, selector
    return matching[0]


# -- schemas --


def test_every_object_validates_against_the_pinned_kubernetes_schemas(objects):
    kinds = set()
    for obj in objects:
        assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == "1.33"
        kinds.add(obj["kind"])
    assert kinds == {"Namespace", "ConfigMap", "Secret", "Service", "StatefulSet", "Deployment",
                     "Job", "NetworkPolicy"}


def test_the_schema_check_is_not_a_formality(objects):
    """A typo'd field and a wrong type are refused by the same check."""
    statefulset = next(o for o in objects if o["kind"] == "StatefulSet")
    bad = json.loads(json.dumps(statefulset))
    bad["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)
    bad = json.loads(json.dumps(statefulset))
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "10000"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


# -- the kustomization --


def test_the_kustomization_lists_every_file_and_only_files_that_exist(exported):
    kustomization = yaml.safe_load(exported.files["kustomization.yaml"])
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(
        name for name in exported.files if name.endswith(".yaml") and name != "kustomization.yaml"
    )
    assert set(exported.files) - set(kustomization["resources"]) == {"kustomization.yaml", "Containerfile"}


def test_every_object_lives_in_the_namespace_and_names_are_unique_per_kind(objects, exported):
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [exported.namespace] == ["mesh-kube-fleet"]
    seen = set()
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == exported.namespace
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in seen
        seen.add(key)


# -- selectors --


def test_every_workload_selects_its_own_pod_template(objects):
    for workload in _workloads(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        if workload["kind"] != "Job":  # a Job makes its own selector
            assert _selects(workload["spec"]["selector"], labels)


def test_every_service_selects_exactly_one_pod_template_which_declares_its_target_ports(objects):
    for service in _named(objects, "Service").values():
        template = _pod_of(objects, service["spec"]["selector"])
        declared = {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"].get("ports", []):
            assert port["targetPort"] in declared, (service["metadata"]["name"], port)


def test_every_statefulset_names_a_headless_service_of_its_pod(objects):
    services = _named(objects, "Service")
    for statefulset in _named(objects, "StatefulSet").values():
        governing = services[statefulset["spec"]["serviceName"]]
        assert governing["spec"]["clusterIP"] == "None"
        assert _selects({"matchLabels": governing["spec"]["selector"]},
                        statefulset["spec"]["template"]["metadata"]["labels"])


def test_every_network_policy_selector_matches_a_pod_template(objects):
    labels = [t["metadata"]["labels"] for t in _templates(objects)]
    for policy in _named(objects, "NetworkPolicy").values():
        selector = policy["spec"]["podSelector"]
        assert any(_selects(selector, lab) for lab in labels), policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                assert any(_selects(peer["podSelector"], lab) for lab in labels), peer


# -- mounts --


def test_every_mounted_configmap_and_secret_exists_with_the_keys_it_maps(objects):
    configmaps, secrets = _named(objects, "ConfigMap"), _named(objects, "Secret")
    for template in _templates(objects):
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for mount in container["volumeMounts"]:
                assert mount["name"] in volumes
        for volume in volumes.values():
            sources = volume["projected"]["sources"] if "projected" in volume else [volume]
            for source in sources:
                if "secret" in source:
                    secret = secrets[source["secret"]["name"]]
                    for item in source["secret"].get("items", []):
                        assert item["key"] in secret["data"]
                elif "configMap" in source:
                    configmap = configmaps[source["configMap"]["name"]]
                    for item in source["configMap"].get("items", []):
                        assert item["key"] in configmap["data"]


def test_secrets_are_mounted_read_only_with_mode_0400(objects):
    mounted = 0
    for template in _templates(objects):
        spec = template["spec"]
        mounts = {m["name"]: m for c in [*spec.get("initContainers", []), *spec["containers"]]
                  for m in c["volumeMounts"]}
        for volume in spec["volumes"]:
            if "projected" in volume and any("secret" in s for s in volume["projected"]["sources"]):
                assert volume["projected"]["defaultMode"] == 0o400
                assert mounts[volume["name"]]["readOnly"] is True
                mounted += 1
            assert "secret" not in volume  # every Secret goes through a projected volume
    assert mounted == len(_named(objects, "StatefulSet")) + 2  # every shard, the CRL server, the driver


def test_every_pod_runs_as_the_containerfiles_user_and_the_files_are_its_groups(objects):
    for template in _templates(objects):
        security = template["spec"]["securityContext"]
        assert security["runAsUser"] == security["fsGroup"] == RUN_AS and security["runAsNonRoot"]
        for container in template["spec"]["containers"]:
            assert container["image"] == DEFAULT_IMAGE


def test_no_key_or_token_ever_appears_in_a_configmap(objects, exported):
    tokens = {data for shard in exported.shards for name, data in shard.files.items()
              if name.endswith(".api-token")}
    tokens.add(_data(_named(objects, "Secret")[f"{CRL_SERVICE}-token-0"])[CRL_TOKEN])
    assert len(tokens) == 13
    for configmap in _named(objects, "ConfigMap").values():
        for value in _data(configmap).values():
            assert b"PRIVATE KEY" not in value
            assert b"passphrase" not in value
            assert not any(token.strip() in value for token in tokens)
        assert not any(key.startswith(unpack.PARTS) for key in configmap["data"])  # the PKI's keys
    keys = [k for s in _named(objects, "Secret").values() for k, v in _data(s).items()
            if b"PRIVATE KEY" in v]
    assert len(keys) == 12  # every appliance with a certificate; the driver's are in its archive
    assert "driver" not in _named(objects, "ConfigMap")  # its folder is all in Secrets


def test_no_configmap_or_secret_passes_the_size_budget(objects):
    for obj in objects:
        if obj["kind"] in ("ConfigMap", "Secret"):
            size = sum(len(v) for v in obj.get("data", {}).values())
            size += sum(len(v) for v in obj.get("binaryData", {}).values())
            assert size <= OBJECT_BUDGET


# -- the nodes --


@pytest.fixture(scope="module")
def shard_configs(objects, tmp_path_factory):
    """{StatefulSet name: (its node config read by load_shard, its folder's files)}."""
    out = {}
    for name, statefulset in _named(objects, "StatefulSet").items():
        spec = statefulset["spec"]["template"]["spec"]
        (copy,) = spec["initContainers"]
        (container,) = spec["containers"]
        mount = next(m["mountPath"] for m in copy["volumeMounts"] if m["name"] == "node")
        work = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "work")
        assert copy["command"] == ["python", "-m", "mesh.export.unpack", "node", mount, work]
        assert container["command"] == ["mesh", "node", "--config", f"{work}/{CONFIG}"]
        assert {v["name"]: v for v in spec["volumes"]}["work"]["emptyDir"] == {"medium": "Memory"}
        volume = next(v for v in spec["volumes"] if v["name"] == "node")
        mounted = _materialize(volume, objects, tmp_path_factory.mktemp(name))
        folder = tmp_path_factory.mktemp(f"{name}-work")
        unpack.copy_private(mounted, folder)  # what its first container does
        out[name] = (load_shard(folder / CONFIG), _volume_files(volume, objects), mounted, folder)
    return out


def test_every_console_takes_its_token_from_its_copy_and_refuses_the_mount(shard_configs, exported):
    from mesh.web.auth import console_token

    tokens = {name: data.decode().strip() for shard in exported.shards
              for name, data in shard.files.items() if name.endswith(".api-token")}
    checked = 0
    for shard, _, mounted, folder in shard_configs.values():
        for node in shard.nodes:
            if node.api_token_file is None:
                continue
            assert node.api_token_file.parent == folder
            assert console_token(node.api_token_file) == tokens[node.api_token_file.name]
            with pytest.raises(InputError) as caught:
                console_token(mounted / node.api_token_file.name)
            assert "is open to group or others (mode 0440)" in caught.value.line()
            checked += 1
    assert checked == 12


def test_every_node_config_loads_with_the_projects_own_loader(shard_configs, scenario):
    names = sorted(n.spec.name for shard, *_ in shard_configs.values() for n in shard.nodes)
    assert names == sorted(a.name for a in scenario.appliances)
    for shard, *_ in shard_configs.values():
        assert shard.start == scenario.start
        # Pods run for the whole scenario: CRLs in memory, never beside a read-only ConfigMap.
        assert all(node.spec.crl_cache is None for node in shard.nodes)


def test_every_appliance_has_a_service_whose_name_its_certificate_carries(
        objects, shard_configs, exported):
    services = {s["metadata"]["annotations"]["mesh/appliance"]: s
                for s in _named(objects, "Service").values() if "annotations" in s["metadata"]}
    assert set(services) == {n.spec.name for shard, *_ in shard_configs.values() for n in shard.nodes}
    checked = 0
    for shard, *_ in shard_configs.values():
        for node in shard.nodes:
            service = services[node.spec.name]["metadata"]["name"]
            assert service == node.spec.name.lower().replace(".", "-")
            if node.spec.identity is None:  # self-signed at first start: it makes its own
                assert node.spec.name == "lab-sensor"
                continue
            san = node.spec.identity.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            dns = san.value.get_values_for_type(x509.DNSName)
            assert service in dns and f"{service}.{exported.namespace}.svc" in dns
            assert node.spec.identity.cert.subject.get_attributes_for_oid(
                x509.NameOID.COMMON_NAME)[0].value in dns
            checked += 1
    assert checked == 12


def test_node_configs_listen_where_their_services_lead_and_dial_service_names(objects, shard_configs):
    services = {s["metadata"]["annotations"]["mesh/appliance"]: s
                for s in _named(objects, "Service").values() if "annotations" in s["metadata"]}
    by_name = {s["metadata"]["name"]: s for s in services.values()}
    for shard, *_ in shard_configs.values():
        here = shard.names()
        for node in shard.nodes:
            ports = {p["port"]: p["targetPort"] for p in services[node.spec.name]["spec"]["ports"]}
            assert node.spec.host == "0.0.0.0" and node.spec.port == ports[NODE_PORT]
            assert node.api_port == ports.get(API_PORT)
            for peer in (*node.connects_to, *node.forwards_to):
                if peer.name in here:
                    assert peer.host == ""  # the same process links them
                    continue
                assert by_name[peer.host] is services[peer.name] and peer.port == NODE_PORT


def test_every_certificates_crl_distribution_point_names_the_crl_service(objects, shard_configs):
    crl = _named(objects, "ConfigMap")[CRL_SERVICE]
    served = json.loads(crl["data"]["pki.json"])["crls"]
    for shard, *_ in shard_configs.values():
        for node in shard.nodes:
            if node.spec.identity is None:
                continue
            for cert in (node.spec.identity.cert, *node.spec.identity.chain):
                points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
                (url,) = [n.value for p in points for n in p.full_name]
                assert url.startswith(f"http://{CRL_SERVICE}/crl/") and url in served
    for file in served.values():
        x509.load_der_x509_crl(base64.b64decode(crl["binaryData"][file]))
    (service,) = [s for s in _named(objects, "Service").values() if s["metadata"]["name"] == CRL_SERVICE]
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"http", "api"}
    assert ports["http"]["port"] == CRL_PORT and ports["api"]["port"] == API_PORT
    container = _pod_of(objects, service["spec"]["selector"])["spec"]["containers"][0]
    command = container["command"]
    assert command[:3] == ["mesh", "crl", "serve"]
    assert int(command[command.index("--port") + 1]) == ports["http"]["targetPort"]
    assert int(command[command.index("--api-port") + 1]) == ports["api"]["targetPort"]
    assert command[command.index("--api-host") + 1] == "0.0.0.0"


@pytest.fixture(scope="module")
def crl_pod(objects, tmp_path_factory):
    """The CRL server's pod spec, its token as mounted, and as its first container copies it."""
    spec = _pod_of(objects, _named(objects, "Service")[CRL_SERVICE]["spec"]["selector"])["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounted = _materialize(volumes["token"], objects, tmp_path_factory.mktemp("crl-token"))
    work = tmp_path_factory.mktemp("crl-work")
    (copy,) = spec["initContainers"]
    source = next(m["mountPath"] for m in copy["volumeMounts"] if m["name"] == "token")
    target = next(m["mountPath"] for m in copy["volumeMounts"] if m["name"] == "work")
    assert copy["command"] == ["python", "-m", "mesh.export.unpack", "crl", source, target]
    assert unpack.main(["crl", str(mounted), str(work)]) == 0  # what its first container does
    return spec, mounted, work, target


def test_the_crl_server_takes_its_api_token_from_its_copy_and_refuses_the_mount(crl_pod):
    from mesh.web.auth import console_token

    spec, mounted, work, target = crl_pod
    (container,) = spec["containers"]
    assert {v["name"]: v for v in spec["volumes"]}["work"]["emptyDir"] == {"medium": "Memory"}
    assert next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "work") == target
    command = container["command"]
    token_file = command[command.index("--api-token-file") + 1]
    assert token_file == f"{target}/{CRL_TOKEN}"
    copied = work / CRL_TOKEN
    assert stat.S_IMODE(copied.stat().st_mode) == 0o600
    assert console_token(copied) == (mounted / CRL_TOKEN).read_text().strip()
    with pytest.raises(InputError) as caught:
        console_token(mounted / CRL_TOKEN)
    assert "is open to group or others (mode 0440)" in caught.value.line()


def test_the_commands_the_pods_run_are_commands_mesh_knows(objects):

    from mesh.cli import build_parser

    parser = build_parser()
    commands = [c["command"] for t in _templates(objects) for c in t["spec"]["containers"]]
    assert sorted(c[:2] for c in commands).count(["mesh", "node"]) == len(_named(objects, "StatefulSet"))
    for command in commands:
        if command[:2] != ["mesh", "run"]:
            parser.parse_args(command[1:])
    (run,) = [c for c in commands if c[:2] == ["mesh", "run"]]
    parser.parse_args(run[1:])


# -- network policies --


def _peer_matches(peer, labels):
    if "namespaceSelector" in peer:
        return False  # another namespace (the cluster DNS)
    return _selects(peer["podSelector"], labels)


def _admits(policies, source, destination, port, *, direction):
    """Does any policy of ``direction`` that selects the pod admit this connection?"""
    own, other, key = ((destination, source, "from") if direction == "Ingress"
                       else (source, destination, "to"))
    selecting = [p for p in policies
                 if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], own)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(direction.lower(), []):
            peers_ok = key not in rule or any(_peer_matches(p, other) for p in rule[key])
            ports_ok = "ports" not in rule or any(
                p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in rule["ports"])
            if peers_ok and ports_ok:
                return True
    return False


def _connects(policies, source, destination, port):
    return (_admits(policies, source, destination, port, direction="Egress")
            and _admits(policies, source, destination, port, direction="Ingress"))


@pytest.fixture(scope="module")
def network(objects, scenario):
    """(policies, {host: pod labels}, {(host, service port): pod port}, driver labels)."""
    services = [s for s in _named(objects, "Service").values() if s["spec"].get("ports")]
    pods, ports = {}, {}
    for service in services:
        host = service["metadata"].get("annotations", {}).get("mesh/appliance", service["metadata"]["name"])
        pods[host] = _pod_of(objects, service["spec"]["selector"])["metadata"]["labels"]
        for port in service["spec"]["ports"]:
            ports[(host, port["port"])] = port["targetPort"]
    driver = _named(objects, "Job")["driver"]["spec"]["template"]["metadata"]["labels"]
    return list(_named(objects, "NetworkPolicy").values()), pods, ports, driver


def _matches(end, host):
    return end in (host, "*")


def test_every_blocked_port_is_absent_from_the_allows(network, scenario):
    policies, pods, ports, _ = network
    hosts = [a.name for a in scenario.appliances]
    denied = 0
    for block in scenario.blocks:
        for source in (h for h in hosts if _matches(block.source, h)):
            for (destination, port), pod_port in ports.items():
                if not _matches(block.destination, destination) or destination == source:
                    continue
                if block.port is not None and block.port != port:
                    continue
                assert pods[source] != pods[destination], "a blocked link inside one pod"
                assert not _connects(policies, pods[source], pods[destination], pod_port), \
                    (block.describe(), destination, port)
                denied += 1
    assert denied >= 3


def test_everything_the_mesh_needs_that_no_block_forbids_is_allowed(network, scenario):
    policies, pods, ports, driver = network
    blocked = lambda s, d, p: any(  # noqa: E731
        _matches(b.source, s) and _matches(b.destination, d) and b.port in (None, p)
        for b in scenario.blocks)
    crossing = 0
    for dialer, listener in scenario.links():
        if pods[dialer] == pods[listener]:
            continue  # one process: no network between them
        crossing += 1
        verdict = _connects(policies, pods[dialer], pods[listener], ports[(listener, NODE_PORT)])
        assert verdict is not blocked(dialer, listener, NODE_PORT), (dialer, listener)
    assert crossing >= 8
    # The CRL server's control API: the driver's, and nobody else's.
    assert _connects(policies, driver, pods[CRL_SERVICE], ports[(CRL_SERVICE, API_PORT)])
    for appliance in scenario.appliances:
        verdict = _connects(policies, pods[appliance.name], pods[CRL_SERVICE], ports[(CRL_SERVICE, CRL_PORT)])
        assert verdict is not blocked(appliance.name, CRL_SERVICE, CRL_PORT), appliance.name
        assert not _connects(policies, pods[appliance.name], pods[CRL_SERVICE],
                             ports[(CRL_SERVICE, API_PORT)]), appliance.name
        if (appliance.name, API_PORT) in ports:
            # The driver reaches every console; no appliance does.
            assert _connects(policies, driver, pods[appliance.name], ports[(appliance.name, API_PORT)])
            others = [n for n in pods if n not in (appliance.name, CRL_SERVICE) and pods[n] != pods[appliance.name]]
            assert not _connects(policies, pods[others[0]], pods[appliance.name],
                                 ports[(appliance.name, API_PORT)])


def test_pods_may_resolve_names_through_the_cluster_dns(network):
    policies, pods, _, driver = network
    dns = {"k8s-app": "kube-dns"}
    egress = next(p for p in policies if p["metadata"]["name"] == "allow-egress")
    rule = egress["spec"]["egress"][1]
    assert _selects(rule["to"][0]["podSelector"], dns) and {"protocol": "UDP", "port": 53} in rule["ports"]


# -- the driver --


@pytest.fixture(scope="module")
def driver_folder(objects, tmp_path_factory):
    """The Job's pod spec, its mounted folder as the pod sees it, and that folder unpacked."""
    spec = _named(objects, "Job")["driver"]["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "driver")
    source = _materialize(volume, objects, tmp_path_factory.mktemp("driver"))
    work = tmp_path_factory.mktemp("work")
    unpack.unpack(source, work)
    return spec, source, work


def test_the_job_unpacks_its_folder_into_memory_then_runs_the_driver_there(driver_folder):
    spec, _, _ = driver_folder
    (init,) = spec["initContainers"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["work"]["emptyDir"] == {"medium": "Memory"}
    work = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "work")
    source = next(m["mountPath"] for m in init["volumeMounts"] if m["name"] == "driver")
    assert init["command"] == ["python", "-m", "mesh.export.unpack", "driver", source, work]
    assert container["command"] == ["mesh", "run", "--inventory", f"{work}/inventory.toml",
                                    f"{work}/scenario.toml"]
    assert spec["restartPolicy"] == "Never"


def test_the_inventory_names_every_console_by_service_with_its_token_and_the_pki(
        driver_folder, objects, exported, scenario):
    _, _, folder = driver_folder
    assert load_scenario(folder / "scenario.toml").appliances == scenario.appliances
    inventory = tomllib.loads((folder / "inventory.toml").read_text())
    assert set(inventory) == {"pki", "crl", "node"}
    pki = Pki.load(folder / inventory["pki"])
    assert set(pki.appliances) == {a.name for a in scenario.appliances}
    for key in (folder / inventory["pki"]).rglob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    nodes = {n["name"]: n for n in inventory["node"]}
    consoles = {a.name for a in scenario.appliances if a.role != "forwarding-target"}
    assert set(nodes) == consoles  # every sensor and console serves its API in the export
    tokens = {name: data for shard in exported.shards for name, data in shard.files.items()}
    services = _named(objects, "Service")
    for name, node in nodes.items():
        assert set(node) == {"name", "api", "token_file"}
        host, port = node["api"].removeprefix("https://").split(":")
        assert services[host]["metadata"]["annotations"]["mesh/appliance"] == name
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"] if p["name"] == "api"}
        token = folder / node["token_file"]
        assert token.read_bytes() == tokens[f"{name}.api-token"]
        assert stat.S_IMODE(token.stat().st_mode) == 0o600


def test_the_inventory_names_the_crl_servers_api_with_the_token_its_pod_uses(
        driver_folder, crl_pod, objects):
    from mesh.web.auth import console_token

    _, _, folder = driver_folder
    _, _, work, _ = crl_pod
    crl = tomllib.loads((folder / "inventory.toml").read_text())["crl"]
    assert set(crl) == {"api", "token_file"}
    host, port = crl["api"].removeprefix("https://").split(":")
    service = _named(objects, "Service")[host]
    assert host == CRL_SERVICE
    assert int(port) == API_PORT == next(p["port"] for p in service["spec"]["ports"] if p["name"] == "api")
    token = folder / crl["token_file"]
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert token.read_text().strip() == console_token(work / CRL_TOKEN)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_the_driver_switches_and_republishes_the_crl_server_started_as_its_pod_starts_it(
        crl_pod, driver_folder, objects, scenario, tmp_path):
    """The pod's own command (its folders and addresses made local), driven with the inventory."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    import httpx
    import trio
    from attrs import evolve

    from mesh.scenario.fleet import RemoteCrl
    from mesh.scenario.fleet_client import FleetClient
    from mesh.scenario.inventory import load_inventory

    spec, _, work, target = crl_pod
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "crl")
    served = _materialize(volumes["crl"], objects, tmp_path / "crl")
    port = _free_port()
    command = list(container["command"])
    assert command[3] == mount
    command[3] = str(served)
    local = {"--host": "127.0.0.1", "--port": str(port), "--api-port": "0", "--api-host": "127.0.0.1",
             "--api-token-file": str(work / CRL_TOKEN)}
    assert command[command.index("--api-token-file") + 1] == f"{target}/{CRL_TOKEN}"
    for option, value in local.items():
        command[command.index(option) + 1] = value
    command = [sys.executable, "-m", *command]
    process = await trio.lowlevel.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        buffer = b""
        with trio.fail_after(30):
            while b"control API at" not in buffer:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, (await process.stderr.receive_some(4096)).decode()
                buffer += chunk
        api_url = re.search(rb"control API at (https://\S+)/api/v1/", buffer).group(1).decode()
        _, _, folder = driver_folder
        inventory = load_inventory(folder / "inventory.toml")
        assert inventory.crl is not None
        crl = RemoteCrl(FleetClient(operator=inventory.operator), evolve(inventory.crl, url=api_url))
        # A revoke, as the driver makes it (on a copy: the folder is the module's).
        shutil.copytree(folder / "pki", tmp_path / "pki")
        pki = Pki.load(tmp_path / "pki")
        pki.revoke("sensor-1.contoso.test", at=scenario.start)
        documents = pki.crl_documents(at=scenario.start)
        start = {f"/crl/{name}": data for name, data in _volume_files(volumes["crl"], objects).items()
                 if name.endswith(".crl")}
        (path,) = [p for p, data in documents.items() if data != start[p]]  # the issuer's CRL
        async with crl.client, httpx.AsyncClient(trust_env=False, timeout=5) as fetch:
            assert (await fetch.get(f"http://127.0.0.1:{port}{path}")).content == start[path]
            await crl.fault("down")
            with pytest.raises(httpx.ConnectError):
                await fetch.get(f"http://127.0.0.1:{port}{path}")
            await crl.fault("ok")
            await crl.publish(documents)
            answer = await fetch.get(f"http://127.0.0.1:{port}{path}")
            assert answer.status_code == 200 and answer.content == documents[path]
    finally:
        process.terminate()
        await process.wait()


def test_the_inventory_loads_and_fits_the_scenario_with_the_drivers_own_checks(driver_folder, scenario):
    """What ``mesh run --inventory`` checks first: without [crl], the revoke step is refused."""
    from mesh.scenario.inventory import check_inventory, load_inventory

    _, _, folder = driver_folder
    inventory = load_inventory(folder / "inventory.toml")
    assert inventory.crl is not None and inventory.crl.url == f"https://{CRL_SERVICE}:{API_PORT}"
    assert inventory.crl.token == (folder / "tokens" / "crl.token").read_text().strip()
    assert "revoke" in [str(step.action) for step in scenario.steps]
    check_inventory(inventory, scenario)


def test_the_driver_publishes_where_the_crl_server_serves(driver_folder, objects, scenario):
    """The paths a revoke publishes (the inventory's PKI) are the paths the server serves."""
    _, _, folder = driver_folder
    served = json.loads(_named(objects, "ConfigMap")[CRL_SERVICE]["data"]["pki.json"])["crls"]
    published = Pki.load(folder / "pki").crl_documents(at=scenario.start)
    assert {f"http://{CRL_SERVICE}{path}" for path in published} == set(served)


def test_the_fleet_it_waits_for_is_every_console_and_the_crl_server(driver_folder, objects):
    _, _, work = driver_folder
    targets = [line.split() for line in (work / "fleet.txt").read_text().splitlines()]
    services = _named(objects, "Service")
    assert len(targets) == 2 + 12  # the CRL server (CRLs and API) and every sensor and console
    assert [CRL_SERVICE, str(API_PORT)] in targets
    for host, port in targets:
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}


def test_unpack_unpacks_then_waits_for_the_fleet(driver_folder, tmp_path, capsys, monkeypatch):
    _, source, _ = driver_folder
    waited = []
    monkeypatch.setattr(unpack, "wait_for", lambda targets: waited.append(targets))
    assert unpack.main(["driver", str(source), str(tmp_path)]) == 0
    assert capsys.readouterr().err == f"mesh: {tmp_path} unpacked; 14 services answer\n"
    assert waited[0][:2] == [(CRL_SERVICE, CRL_PORT), (CRL_SERVICE, API_PORT)] and len(waited[0]) == 14
    assert (tmp_path / "pki" / "pki.json").is_file()


def test_waiting_ends_once_a_service_answers():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert unpack.wait_for([("127.0.0.1", listener.getsockname()[1])]) is None


def test_a_fleet_that_does_not_answer_in_time_is_one_line():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    # Nothing listens there now: refused at once, and a deadline already past.
    assert unpack.wait_for([("127.0.0.1", port)], deadline=-1) == \
        f"127.0.0.1:{port} did not answer within -1 s"


# -- the Containerfile --


def test_the_containerfile_copies_what_exists_and_runs_as_the_pods_user(exported):
    lines = exported.files["Containerfile"].splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies and all((ROOT / source).exists() for sources in copies for source in sources)
    assert (ROOT / "pyproject.toml").read_text().count('name = "mesh"') == 1
    assert f"USER {RUN_AS}:{RUN_AS}" in lines
    assert any(line.startswith("RUN pip install") and line.split()[-2] == "." for line in lines)


def test_objects_too_big_for_client_side_apply_are_deployed_server_side(objects, exported):
    from attrs import evolve

    from mesh.export.kubernetes import CLIENT_SIDE_APPLY

    sizes = [sum(len(v) for part in ("data", "binaryData") for v in o.get(part, {}).values())
             for o in objects if o["kind"] in ("ConfigMap", "Secret")]
    assert exported.largest == max(sizes) < CLIENT_SIDE_APPLY
    assert exported.apply_command("fleet") == "kubectl apply -k fleet"
    big = evolve(exported, largest=CLIENT_SIDE_APPLY + 1)
    assert big.apply_command("fleet") == "kubectl apply --server-side -k fleet"


LIBRARY = sorted((ROOT / "scenarios").glob("*.toml"))


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.stem)
def test_every_library_scenario_exports_schema_valid_or_is_refused_in_one_line(path, key_pool):
    from mesh.export.kubernetes import export_kubernetes

    scenario = load_scenario(path)
    try:
        export = export_kubernetes(scenario, scenario_text=path.read_text(), keys=key_pool.cursor(),
                                   workers=2)
    except InputError as refused:
        assert "\n" not in refused.line() and "cannot be exported to Kubernetes" in refused.line()
        return
    for name in yaml.safe_load(export.files["kustomization.yaml"])["resources"]:
        for obj in yaml.safe_load_all(export.files[name]):
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
