"""mesh node: config errors are one line; two processes link up, go down, come back."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from mesh.cli import main
from mesh.errors import FailureCode, InputError
from mesh.net.crl_server import CrlServer
from mesh.node import load_config, run_node
from mesh.pki.files import save_certificate, save_chain, save_key
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.issue import Issued

# -- config errors --


def _write(tmp_path, text, name="node.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ('name = "a"\nrole = "sensor"\ncolour = "red"\n', "colour", "is not a node setting"),
        ('name = "a"\nrole = "toaster"\n', "role", "unknown role 'toaster'"),
        ('role = "sensor"\n', "name", "is missing"),
        ('name = "a"\nrole = "sensor"\nlisten = "nowhere"\n', "listen", "is not an address"),
        ('name = "a"\nrole = "sensor"\ncertificate = "a.crt"\n', "key", "is missing"),
        ('name = "a"\nrole = "sensor"\n[connects_to]\nb = "127.0.0.1:0"\n', "connects_to.b", "port 0"),
        ('name = "a"\nrole = "sensor"\nvalidation = "yes"\n', "validation", "true or false"),
        ('name = "a"\nrole = "sensor"\nstart = "soon"\n', "start", "is not an instant"),
        ('name = "a"\nrole = = "sensor"\n', "node.toml", "is not valid TOML"),
        ('name = "a"\nrole = "sensor"\ncrl_cache = "node.toml"\n', "crl_cache", "is not a folder"),
        ('name = "a"\nrole = "sensor"\ncrl_cache = 3\n', "crl_cache", "must be a string"),
        (
            'name = "a"\nrole = "sensor"\n[peers]\nb = "127.0.0.1:1"\n[connects_to]\nc = "127.0.0.1:2"\n',
            "peers",
            "both list peers",
        ),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, text, where, problem):
    path = _write(tmp_path, text)
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mesh: ")
    assert where in err and problem in err
    assert "Traceback" not in err


def test_crl_cache_is_a_folder_beside_the_config(tmp_path):
    config = load_config(_write(tmp_path, 'name = "a"\nrole = "sensor"\ncrl_cache = "crls/a"\n'))
    assert config.spec.crl_cache == tmp_path / "crls" / "a"
    assert load_config(_write(tmp_path, 'name = "a"\nrole = "sensor"\n')).spec.crl_cache is None


def test_missing_files_name_the_file(tmp_path, capsys):
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\ncertificate = "a.crt"\nkey = "a.key"\n')
    assert main(["node", "--config", str(path)]) == 2
    assert "a.crt" in capsys.readouterr().err
    assert main(["node", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


def test_wrong_passphrase_is_one_line(tmp_path, capsys, keys, epoch):
    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="a")], keys=keys)
    material = pki.appliances["a"]
    save_certificate(tmp_path / "a.crt", material.cert)
    save_key(tmp_path / "a.key", material.issued.key, passphrase="Kq7-right")
    path = _write(
        tmp_path,
        'name = "a"\nrole = "sensor"\ncertificate = "a.crt"\nkey = "a.key"\npassphrase = "Zx9-guess"\n',
    )
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "passphrase" in err and "Passphrase does not match to the key" in err
    assert "Kq7-right" not in err and "Zx9-guess" not in err


def test_a_key_that_is_not_the_certificates_is_one_line(tmp_path, capsys, keys, epoch):
    """Before: an ExceptionGroup traceback (KEY_VALUES_MISMATCH) after the node began."""
    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="a"), ApplianceRequest(name="b")],
                    keys=keys)
    save_certificate(tmp_path / "a.crt", pki.appliances["a"].cert)
    save_key(tmp_path / "b.key", pki.appliances["b"].issued.key)
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\ncertificate = "a.crt"\nkey = "b.key"\n')
    assert main(["node", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert err == (
        f"mesh: {path}: key: {tmp_path / 'b.key'} is not the key of the certificate "
        f"{tmp_path / 'a.crt'}; give the certificate's own key\n"
    )
    assert "appliance-started" not in out


def test_full_config_loads(tmp_path, keys, epoch):
    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="a")], keys=keys)
    material = pki.appliances["a"]
    save_certificate(tmp_path / "a.crt", material.cert)
    save_key(tmp_path / "a.key", material.issued.key)
    save_chain(tmp_path / "a.pem", material.chain)
    save_certificate(tmp_path / "root.crt", pki.root.cert)
    path = _write(
        tmp_path,
        """
name = "a"
hostname = "a.contoso.test"
role = "management-console"
listen = "127.0.0.1:0"
certificate = "a.crt"
key = "a.key"
chain = "a.pem"
trust = "root.crt"
validation = false
revocation = "soft"
start = "2027-01-15T09:00:00Z"
accept_from = ["s"]
[connects_to]
ha = { address = "127.0.0.1:9000", role = "ha-console", hostname = "ha.contoso.test" }
[forwards_to]
siem = "127.0.0.1:9001"
""",
    )
    config = load_config(path)
    assert config.spec.identity.cert == material.cert
    assert config.spec.trust == (pki.root.cert,)
    assert config.spec.validation is False and config.spec.policy.revocation == "soft"
    assert config.start == epoch
    assert [(p.name, p.port, p.role.value) for p in config.connects_to] == [
        ("ha", 9000, "ha-console")
    ]
    assert config.forwards_to[0].hostname == "siem"


# -- two processes --


class Node:
    """A ``mesh node`` process whose stdout we read as events."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""
        self.events: list[dict] = []

    async def next_event(self) -> dict:
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise AssertionError(f"node exited; events so far: {self.events}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        event = json.loads(line)
        self.events.append(event)
        return event

    async def wait_for(self, kind: str, **fields) -> dict:
        while True:
            event = await self.next_event()
            if event["kind"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


async def _node(config_path) -> Node:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "mesh", "node", "--config", str(config_path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Node(process)


@attrs.define(frozen=True)
class Written:
    """A sensor-1 and console deployment written to a folder, its CRLs served."""

    pki: Pki
    crl_server: CrlServer


@pytest.fixture
async def written(tmp_path, keys, epoch, nursery) -> Written:
    crl_server = CrlServer()
    await nursery.start(crl_server.serve)
    pki = Pki.build(
        at=epoch,
        appliances=[
            ApplianceRequest(name="sensor-1", role="sensor"),
            ApplianceRequest(name="console", role="management-console"),
        ],
        crl_base_url=f"{crl_server.base_url}/crl",
        keys=keys,
    )
    crl_server.set_documents(pki.crl_documents(at=epoch))
    save_certificate(tmp_path / "root.crt", pki.root.cert)
    for name, material in pki.appliances.items():
        save_certificate(tmp_path / f"{name}.crt", material.cert)
        save_key(tmp_path / f"{name}.key", material.issued.key)
        save_chain(tmp_path / f"{name}.pem", material.chain)
    return Written(pki=pki, crl_server=crl_server)


@pytest.fixture
async def files(written, tmp_path):
    return tmp_path


def _config(folder, name, role, listen, extra=""):
    return _write(
        folder,
        f"""
name = "{name}"
hostname = "{name}.contoso.test"
role = "{role}"
listen = "{listen}"
certificate = "{name}.crt"
key = "{name}.key"
chain = "{name}.pem"
trust = ["root.crt"]
start = "2027-01-15T09:00:00Z"
backoff_cap = 0.5
{extra}
""",
        name=f"{name}.toml",
    )


@pytest.mark.slow
async def test_two_node_processes_link_up_go_down_and_come_back(files):
    console_config = _config(files, "console", "management-console", "127.0.0.1:0")
    with trio.fail_after(60):
        console = await _node(console_config)
        try:
            started = await console.wait_for("appliance-started")
            address = started["address"]
            sensor = await _node(
                _config(
                    files, "sensor-1", "sensor", "127.0.0.1:0",
                    "[peers]\n"
                    f'console = {{ address = "{address}", hostname = "console.contoso.test" }}\n',
                )
            )
            try:
                up = await sensor.wait_for("link-up")
                assert (up["dialer"], up["listener"]) == ("sensor-1", "console")
                await console.wait_for("link-up", dialer="sensor-1")
                await console.wait_for("message-delivered", sender="sensor-1")

                await console.kill()
                down = await sensor.wait_for("link-down")
                assert down["listener"] == "console"

                port = address.rpartition(":")[2]
                console = await _node(
                    _config(files, "console", "management-console", f"127.0.0.1:{port}")
                )
                await console.wait_for("appliance-started", address=address)
                await sensor.wait_for("link-up")

                sensor.process.send_signal(signal.SIGTERM)  # a clean stop
                await sensor.wait_for("appliance-stopped")
                assert await sensor.process.wait() == 0
            finally:
                await sensor.kill()
        finally:
            await console.kill()


def test_a_port_in_use_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = _write(tmp_path, f'name = "a"\nrole = "sensor"\nlisten = "127.0.0.1:{port}"\n')
        assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot listen" in err and str(port) in err


class Capture(io.StringIO):
    """A text sink that wakes waiters on every line (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = trio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        self._changed.set()
        self._changed = trio.Event()
        return written

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.getvalue().splitlines()]

    async def changed(self) -> None:
        await self._changed.wait()

    async def wait_for(self, kind: str) -> list[dict]:
        while not any(e["kind"] == kind for e in self.events()):
            await self._changed.wait()
        return [e for e in self.events() if e["kind"] == kind]


async def test_in_process_nodes_report_a_remote_refusal(tmp_path, keys, epoch, nursery):
    """Each node reports what it saw: the dialer logs the console's refusal too."""
    pki = Pki.build(
        at=epoch,
        appliances=[
            ApplianceRequest(name="sensor-1", role="sensor", fault="expired"),
            ApplianceRequest(name="console", role="management-console"),
        ],
        keys=keys,
    )
    save_certificate(tmp_path / "root.crt", pki.root.cert)
    for name, material in pki.appliances.items():
        save_certificate(tmp_path / f"{name}.crt", material.cert)
        save_key(tmp_path / f"{name}.key", material.issued.key)
        save_chain(tmp_path / f"{name}.pem", material.chain)
    # Nobody serves these CRLs: soft-fail revocation, so the dates decide.
    soft = 'revocation = "soft"\n'
    console_out, sensor_out = Capture(), Capture()
    console = await nursery.start(
        lambda task_status: run_node(
            load_config(_config(tmp_path, "console", "management-console", "127.0.0.1:0", soft)),
            out=console_out,
            task_status=task_status,
        )
    )
    peer = f'console = {{ address = "{console.address}", hostname = "console.contoso.test" }}\n'
    await nursery.start(
        lambda task_status: run_node(
            load_config(
                _config(
                    tmp_path, "sensor-1", "sensor", "127.0.0.1:0", soft + "[connects_to]\n" + peer
                )
            ),
            out=sensor_out,
            task_status=task_status,
        )
    )
    with trio.fail_after(20):
        halted = await sensor_out.wait_for("link-halted")
        on_console = await console_out.wait_for("link-halted")
    assert {(e["refused_by"], e["code"]) for e in halted} == {("console", "expired")}
    assert {(e["dialer"], e["refused_by"], e["code"]) for e in on_console} == {
        ("sensor-1", "console", "expired")
    }


# -- the REST API and web console --


async def _curl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return await trio.run_process(
        ["curl", "--silent", "--show-error", "--max-time", "10", *args],
        capture_stdout=True, capture_stderr=True, check=False, cwd=cwd,
    )


@pytest.mark.slow
async def test_node_process_serves_its_api_to_curl_with_the_root(tmp_path, keys):
    """A node prints api-listening with its URL; curl --cacert ROOT trusts what it serves."""
    import datetime as dt

    # curl judges dates by the wall clock: a PKI (and an emulated start) near now.
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    pki = Pki.build(
        at=now - dt.timedelta(hours=1),
        appliances=[ApplianceRequest(name="sensor-1", role="sensor")],
        keys=keys,
    )
    material = pki.appliances["sensor-1"]
    save_certificate(tmp_path / "root.crt", pki.root.cert)
    save_certificate(tmp_path / "sensor-1.crt", material.cert)
    save_key(tmp_path / "sensor-1.key", material.issued.key)
    save_chain(tmp_path / "sensor-1.pem", material.chain)
    path = _write(
        tmp_path,
        'name = "sensor-1"\nrole = "sensor"\ncertificate = "sensor-1.crt"\nkey = "sensor-1.key"\n'
        'chain = "sensor-1.pem"\ntrust = "root.crt"\nrevocation = "soft"\n',
    )
    with trio.fail_after(60):
        node = await _node(path)
        try:
            started = await node.next_event()
            assert started["kind"] == "appliance-started"
            listening = await node.next_event()
            assert listening["kind"] == "api-listening"
            assert listening["appliance"] == "sensor-1" and listening["role"] == "sensor"
            url = listening["url"]
            assert url.startswith("https://127.0.0.1:")
            assert url.rpartition(":")[2] != started["address"].rpartition(":")[2]

            answer = await _curl("--cacert", str(tmp_path / "root.crt"), f"{url}/api/v1/status")
            assert answer.returncode == 0, answer.stderr
            status = json.loads(answer.stdout)
            assert status["appliance"] == {"name": "sensor-1", "role": "sensor"}
            assert status["certificate"]["serial"] == format(material.cert.serial_number, "X")

            node.process.send_signal(signal.SIGTERM)
            await node.wait_for("appliance-stopped")
            assert await node.process.wait() == 0
        finally:
            await node.kill()


async def _started_node(nursery, path, out):
    return await nursery.start(
        lambda task_status: run_node(load_config(path), out=out, task_status=task_status)
    )


async def test_a_self_signed_node_serves_its_api_by_default(tmp_path, nursery):
    out = Capture()
    await _started_node(nursery, _write(tmp_path, 'name = "a"\nrole = "management-console"\n'), out)
    (listening,) = [e for e in out.events() if e["kind"] == "api-listening"]
    assert listening["role"] == "management-console"
    answer = await _curl("-k", f"{listening['url']}/api/v1/status")
    assert answer.returncode == 0, answer.stderr
    status = json.loads(answer.stdout)
    assert status["appliance"]["name"] == "a"
    assert status["certificate"]["self_signed"] is True
    # Without -k curl refuses the self-signed certificate: it is the appliance's TLS.
    assert (await _curl(f"{listening['url']}/api/v1/status")).returncode != 0


@pytest.mark.parametrize(
    "text",
    [
        'name = "a"\nrole = "sensor"\napi = false\n',
        'name = "siem"\nrole = "forwarding-target"\n',
    ],
    ids=["api-off", "forwarding-target"],
)
async def test_no_api_when_off_or_for_a_forwarding_target(tmp_path, nursery, text):
    out = Capture()
    path = _write(tmp_path, text)
    assert load_config(path).api_port is None
    await _started_node(nursery, path, out)
    assert [e["kind"] for e in out.events()] == ["appliance-started"]


def test_api_settings_load(tmp_path):
    assert load_config(_write(tmp_path, 'name = "a"\nrole = "sensor"\n')).api_port == 0
    path = _write(tmp_path, 'name = "a"\nrole = "ha-console"\napi_port = 9443\n')
    assert load_config(path).api_port == 9443
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\napi = true\napi_port = 0\n')
    assert load_config(path).api_port == 0


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ('api = "yes"\n', "api", "true or false"),
        ("api_port = -1\n", "api_port", "is not a port number"),
        ("api_port = 70000\n", "api_port", "is not a port number"),
        ('api_port = "9443"\n', "api_port", "is not a port number"),
        ("api = false\napi_port = 9443\n", "api_port", "api = false"),
    ],
)
def test_bad_api_settings_are_one_line(tmp_path, capsys, text, where, problem):
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\n' + text)
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {where}" in err and problem in err


@pytest.mark.parametrize(
    "text, where", [("api = true\n", "api"), ("api_port = 9443\n", "api_port")]
)
def test_a_forwarding_target_has_no_api(tmp_path, capsys, text, where):
    path = _write(tmp_path, 'name = "siem"\nrole = "forwarding-target"\n' + text)
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: {where}" in err and "has no REST API" in err


def test_an_api_port_in_use_is_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = _write(tmp_path, f'name = "a"\nrole = "sensor"\napi_port = {port}\n')
        assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: api_port" in err and "already in use" in err


def test_a_file_name_with_a_line_break_is_one_line(tmp_path, capsys):
    """``trust = "\\n"`` made a two-line error (found by the node-config fuzz test)."""
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\ntrust = "\\n"\n')
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: trust" in err and "is not a file name" in err


@pytest.mark.parametrize("value", ["987654321", "[\"Kq7\", \"right\"]", "{ secret = \"Kq7\" }"])
def test_a_passphrase_of_the_wrong_type_is_never_echoed(tmp_path, capsys, keys, epoch, value):
    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="a")], keys=keys)
    material = pki.appliances["a"]
    save_certificate(tmp_path / "a.crt", material.cert)
    save_key(tmp_path / "a.key", material.issued.key, passphrase="Kq7-right")
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\ncertificate = "a.crt"\nkey = "a.key"\n'
                            f"passphrase = {value}\n")
    assert main(["node", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    kind = {"9": "a number", "[": "a list", "{": "a table"}[value[0]]
    assert err == f"mesh: {path}: passphrase: must be a string, not {kind}; quote it\n"


def test_every_config_problem_is_listed_at_once(tmp_path, capsys):
    path = _write(tmp_path, 'name = "a"\nvalidation = "yes"\nbackoff_cap = -1\nbogus = 1\n')
    assert main(["node", "--config", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"mesh: {path}: bogus: is not a node setting; known: " + ", ".join(sorted(_node_keys())),
        f'mesh: {path}: role: is missing; add role = "sensor" (or management-console, '
        "ha-console, forwarding-target)",
        f"mesh: {path}: validation: must be true or false, not 'yes'",
        f"mesh: {path}: backoff_cap: must be a positive number of seconds, not -1",
    ]


def _node_keys():
    from mesh.node_config import _KEYS

    return _KEYS


# -- two appliances with one name, one certificate on two appliances --


async def _in_process_node(nursery, path, out):
    return await nursery.start(
        lambda task_status: run_node(load_config(path), out=out, task_status=task_status)
    )


async def test_a_second_peer_with_a_connected_name_is_declined(files, nursery):
    """The console keeps the first sensor-1's link; the copy is told why and backs off."""
    console_out, first_out, copy_out = Capture(), Capture(), Capture()
    console = await _in_process_node(
        nursery, _config(files, "console", "management-console", "127.0.0.1:0"), console_out
    )
    peers = (
        "[connects_to]\n"
        f'console = {{ address = "{console.address}", hostname = "console.contoso.test" }}\n'
    )
    await _in_process_node(nursery, _config(files, "sensor-1", "sensor", "127.0.0.1:0", peers), first_out)
    with trio.fail_after(20):
        await console_out.wait_for("link-up")
        copy_config = _config(files, "sensor-1", "sensor", "127.0.0.1:0", peers)
        copy_config = copy_config.rename(files / "sensor-1-copy.toml")
        async with trio.open_nursery() as copies:
            await _in_process_node(copies, copy_config, copy_out)
            [duplicate, *_] = await console_out.wait_for("duplicate-peer")
            [down, *_] = await copy_out.wait_for("link-down")
            copies.cancel_scope.cancel()

    assert (duplicate["appliance"], duplicate["peer"]) == ("console", "sensor-1")
    assert duplicate["live"].startswith("127.0.0.1:") and duplicate["refused"].startswith("127.0.0.1:")
    assert duplicate["live"] != duplicate["refused"]
    assert down["reason"] == "console declined the connection: sensor-1 is already connected to console"
    # The first link was never touched: one link-up, no link-down, still delivering.
    assert [e["kind"] for e in console_out.events() if e["kind"].startswith("link-")] == ["link-up"]
    status = console.status()
    assert str(status.link_to("sensor-1").state) == "up"
    [conflict] = status.conflicts
    assert conflict.kind == "duplicate-peer" and "already connected" in conflict.message
    assert "warning: " in status.render()
    assert not [e for e in first_out.events() if e["kind"] == "link-down"]


async def test_one_certificate_on_two_appliances_is_a_warning(files, nursery):
    console_out = Capture()
    console = await _in_process_node(
        nursery, _config(files, "console", "management-console", "127.0.0.1:0"), console_out
    )
    peers = (
        "[connects_to]\n"
        f'console = {{ address = "{console.address}", hostname = "console.contoso.test" }}\n'
    )
    await _in_process_node(nursery, _config(files, "sensor-1", "sensor", "127.0.0.1:0", peers), Capture())
    with trio.fail_after(20):
        await console_out.wait_for("link-up")
        # sensor-2 is configured with sensor-1's certificate and key.
        twin = _config(files, "sensor-1", "sensor", "127.0.0.1:0", peers)
        twin.write_text(twin.read_text().replace('name = "sensor-1"', 'name = "sensor-2"'))
        await _in_process_node(nursery, twin.rename(files / "sensor-2.toml"), Capture())
        [shared] = await console_out.wait_for("certificate-shared")
        while len(await console_out.wait_for("link-up")) < 2:
            await console_out.changed()
    assert (shared["peer"], shared["other"], shared["severity"]) == ("sensor-2", "sensor-1", "warning")
    assert shared["subject"].startswith("CN=sensor-1")
    # A warning, not a refusal: both links are up.
    assert {str(link.state) for link in console.status().links} == {"up"}
    assert [c.kind for c in console.status().conflicts] == ["certificate-shared"]


# -- refetching CRLs on request --


def _token(listening: dict[str, Any]) -> dict[str, str]:
    """The header a script sends: the token from the file api-listening names."""
    return {"Authorization": f"Bearer {Path(listening['token_file']).read_text().strip()}"}


async def _refresh(listening: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    import httpx

    async with httpx.AsyncClient(base_url=listening["url"], verify=False, timeout=30) as client:
        return await client.post("/api/v1/crls/refresh",
                                 headers=_token(listening) if headers is None else headers)


async def test_a_node_refetches_its_crls_and_rechecks_its_links_on_request(
    written, tmp_path, keys, epoch, nursery
):
    """A revocation published while nodes run: each keeps its cached CRL until
    asked; ``POST /api/v1/crls/refresh`` makes it refetch and judge its live
    links afresh, the links it dials (closed and redialed) and those it
    accepts from other processes (judged in place)."""
    pki, crl_server = written.pki, written.crl_server
    console_out, sensor_out = Capture(), Capture()
    console = await _started_node(
        nursery, _config(tmp_path, "console", "management-console", "127.0.0.1:0"), console_out)
    peer = f'console = {{ address = "{console.address}", hostname = "console.contoso.test" }}\n'
    await _started_node(
        nursery,
        _config(tmp_path, "sensor-1", "sensor", "127.0.0.1:0", "[connects_to]\n" + peer),
        sensor_out,
    )
    (console_api,) = [e for e in console_out.events() if e["kind"] == "api-listening"]
    (sensor_api,) = [e for e in sensor_out.events() if e["kind"] == "api-listening"]
    with trio.fail_after(30):
        await console_out.wait_for("link-up")
        await sensor_out.wait_for("link-up")

    # The CA revokes the sensor and republishes; nobody refetches on their own.
    pki.revoke("sensor-1", at=epoch)
    crl_server.set_documents(pki.crl_documents(at=epoch))
    crl_server.reset_counts()

    # The sensor refetches (its console's certificate is fine) and redials;
    # the console still judges with the CRL it cached, so the link comes back up.
    with trio.fail_after(30):
        answer = await _refresh(sensor_api)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["refreshed"] is True and body["pending"] == []
    assert [(link["name"], link["state"]) for link in body["links"]] == [
        ("sensor-1 -> console", "up")]
    assert crl_server.requests() >= 1
    kinds = [e["kind"] for e in sensor_out.events()]
    assert kinds.index("crls-refreshed") < kinds.index("link-recheck")

    # The console refetches and judges the live link it accepted: halted, revoked.
    crl_server.reset_counts()
    with trio.fail_after(30):
        answer = await _refresh(console_api)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["pending"] == []
    ((link,),) = [[link for link in body["links"] if link["dialer"] == "sensor-1"]]
    assert (link["state"], link["code"], link["refused_by"]) == ("halted", "revoked", "console")
    assert link["message"] == FailureCode.REVOKED.message
    assert crl_server.requests() >= 1
    halted = [e for e in console_out.events() if e["kind"] == "link-halted"]
    assert [(e["dialer"], e["refused_by"], e["code"]) for e in halted] == [
        ("sensor-1", "console", "revoked")]


async def test_crl_refresh_from_another_origin_is_refused(tmp_path, nursery):
    out = Capture()
    await _started_node(nursery, _write(tmp_path, 'name = "a"\nrole = "sensor"\n'), out)
    (listening,) = [e for e in out.events() if e["kind"] == "api-listening"]
    answer = await _refresh(listening, headers={"Origin": "https://evil.example", **_token(listening)})
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden_origin"
    assert "crls-refreshed" not in [e["kind"] for e in out.events()]


async def test_a_node_writes_its_token_beside_its_config_and_refuses_changes_without_it(
    tmp_path, nursery
):
    import stat

    out = Capture()
    await _started_node(nursery, _write(tmp_path, 'name = "a"\nrole = "sensor"\n'), out)
    (listening,) = [e for e in out.events() if e["kind"] == "api-listening"]
    token_file = Path(listening["token_file"])
    assert token_file == (tmp_path / "a.api-token").absolute()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()

    refused = await _refresh(listening, headers={})
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    wrong = await _refresh(listening, headers={"Authorization": "Bearer " + token[::-1]})
    assert wrong.status_code == 403 and wrong.json()["code"] == "forbidden"
    assert "crls-refreshed" not in [e["kind"] for e in out.events()]
    assert [(e["kind"], e["method"], e["path"], e["reason"]) for e in out.events()
            if e["kind"] == "api-denied"] == [
        ("api-denied", "POST", "/api/v1/crls/refresh", "no-credential"),
        ("api-denied", "POST", "/api/v1/crls/refresh", "wrong-token")]
    assert (await _refresh(listening)).status_code == 200
    # Not in any event line the node printed, nor in its status.
    assert token not in out.getvalue()
    status = await _curl("-k", f"{listening['url']}/api/v1/status")
    assert token not in status.stdout.decode()


async def test_api_token_file_puts_the_token_where_the_config_says(tmp_path, nursery):
    out = Capture()
    (tmp_path / "run").mkdir()
    await _started_node(nursery, _write(
        tmp_path, 'name = "a"\nrole = "sensor"\napi_token_file = "run/console.token"\n'), out)
    (listening,) = [e for e in out.events() if e["kind"] == "api-listening"]
    assert listening["token_file"] == str((tmp_path / "run" / "console.token").absolute())
    assert (await _refresh(listening)).status_code == 200


def test_api_token_file_without_an_api_is_one_line(tmp_path):
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\napi = false\napi_token_file = "t"\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.line() == (f"{path}: api_token_file: is set but api = false; "
                                 "remove api_token_file, or set api = true")


# -- the README's upload example, on a fresh PKI --


def _readme_commands() -> tuple[list[str], str, list[str]]:
    """As the README writes them: the `mesh pki init` of its Certificates section, and
    the node config and the upload of its Consoles section."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()

    def commands(block: str) -> list[list[str]]:
        lines = block.replace("\\\n", " ").splitlines()
        argvs = [shlex.split(line.removeprefix("$ "), comments=True)
                 for line in lines if not line.startswith("{")]  # {...}: output, not a command
        return [argv for argv in argvs if argv]

    certificates = readme.split("## Certificates", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    [init] = [argv for argv in commands(certificates) if argv[1:3] == ["pki", "init"]]
    consoles = readme.split("## Consoles", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    config = consoles.split("$ cat sensor-1.toml\n", 1)[1].split("$ ", 1)[0]
    [upload] = [argv for argv in commands(consoles) if argv[-1].endswith("/api/v1/certificate")]
    return init, config, upload


async def test_the_readme_upload_example_is_accepted_and_its_root_trusted(
    tmp_path, nursery, capsys, keys
):
    """`mesh pki init`, a node configured as the README shows (no trust), the README's
    curl upload: accepted, the chain file's root becomes the node's trust anchor, and
    the node judges its peers against it."""
    from cryptography.hazmat.primitives import hashes

    from mesh.net.crl_commands import load_crl_documents
    from mesh.pki.files import load_certificate

    init, config, upload = _readme_commands()
    assert tomllib.loads(config) == {"name": "sensor-1", "role": "sensor"}  # no trust
    crl_server = CrlServer()  # `mesh crl serve pki`, on a free port rather than the README's
    await nursery.start(crl_server.serve)
    pki = tmp_path / "pki"
    argv = init[1:]
    assert argv[:3] == ["pki", "init", "pki"]
    argv[2] = str(pki)
    argv[argv.index("--crl-base-url") + 1] = f"{crl_server.base_url}/crl"
    assert main(argv) == 0
    crl_server.set_documents(load_crl_documents(pki)[0])
    capsys.readouterr()

    sensor_out = Capture()
    await _started_node(nursery, _write(tmp_path, config, "sensor-1.toml"), sensor_out)
    [started] = [e for e in sensor_out.events() if e["kind"] == "appliance-started"]
    [listening] = [e for e in sensor_out.events() if e["kind"] == "api-listening"]
    assert started["self_signed"] is True
    url = listening["url"]
    # The README's header reads the token file named beside the config; the
    # command runs where the upload's files are, so the file is named in full here.
    header = "Authorization: Bearer $(cat sensor-1.api-token)"
    assert upload[upload.index("-H") + 1] == header
    assert listening["token_file"] == str((tmp_path / "sensor-1.api-token").absolute())
    token = Path(listening["token_file"]).read_text().strip()
    upload = [arg.replace("$(cat sensor-1.api-token)", token) for arg in upload]

    # Without the header the same upload is refused and nothing changes.
    no_token = [a for a in upload[1:-1] if a != "-H" and not a.startswith("Authorization:")]
    unauthorized = await _curl(*no_token, f"{url}/api/v1/certificate", cwd=pki / "appliances")
    assert json.loads(unauthorized.stdout)["code"] == "unauthorized"
    status = json.loads((await _curl("-k", f"{url}/api/v1/status")).stdout)
    assert status["validation"] == {"enabled": True, "trust": []}

    # Without the root in the chain there is nothing to judge it against: refused,
    # and the detail says what to do.
    from mesh.pki.files import load_certificates

    chain = load_certificates(pki / "appliances" / "sensor-1.pem")
    save_chain(pki / "appliances" / "issuing-only.pem", [c for c in chain if c.issuer != c.subject])
    no_root = [arg.replace("=@sensor-1.pem", "=@issuing-only.pem") for arg in upload[1:-1]]
    assert no_root != upload[1:-1]
    refused = await _curl(*no_root, f"{url}/api/v1/certificate", cwd=pki / "appliances")
    assert json.loads(refused.stdout) == {
        "code": "chain_untrusted",
        "message": "Cannot validate chain of trust. The provided Certificate and Root CA do not match.",
        "detail": "no trust anchor: this appliance has no trust configured and the uploaded "
                  "chain holds no self-signed root; include the root CA in the chain (.pem) "
                  "file or configure trust",
    }

    with trio.fail_after(30):
        answer = await trio.run_process(
            [upload[0], "--silent", "--show-error", "--max-time", "10", *upload[1:-1],
             f"{url}/api/v1/certificate"],
            cwd=pki / "appliances", capture_stdout=True, capture_stderr=True, check=False,
        )
    assert answer.returncode == 0, answer.stderr
    body = json.loads(answer.stdout)
    uploaded = load_certificate(pki / "appliances" / "sensor-1.crt")
    assert body.get("accepted") is True, body
    assert body["certificate"]["serial"] == format(uploaded.serial_number, "X")
    root = load_certificate(pki / "ca" / "contoso-root-ca.crt")
    [anchor] = [e for e in sensor_out.events() if e["kind"] == "trust-anchor-set"]
    assert anchor == {
        "kind": "trust-anchor-set",
        "severity": "note",
        "at": anchor["at"],
        "appliance": "sensor-1",
        "subject": root.subject.rfc4514_string(),
        "sha256_fingerprint": root.fingerprint(hashes.SHA256()).hex(":").upper(),
    }
    status = json.loads((await _curl("-k", f"{url}/api/v1/status")).stdout)
    assert status["validation"] == {"enabled": True, "trust": [root.subject.rfc4514_string()]}

    # Peers are judged against the adopted root: the deployment's console is
    # accepted, a console of another PKI is not (both dial the sensor, each
    # trusting the Contoso root, so the refusal is the sensor's).
    other = Pki.build(
        at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1), root="Fabrikam Root CA",
        appliances=[ApplianceRequest(name="cm-fabrikam", role="management-console")], keys=keys,
    )
    save_certificate(tmp_path / "cm-fabrikam.crt", other.appliances["cm-fabrikam"].cert)
    save_key(tmp_path / "cm-fabrikam.key", other.appliances["cm-fabrikam"].issued.key)
    save_chain(tmp_path / "cm-fabrikam.pem", other.appliances["cm-fabrikam"].chain)
    sensor = (
        f'"sensor-1" = {{ address = "{started["address"]}", '
        'hostname = "sensor-1.contoso.test", role = "sensor" }\n'
    )
    consoles = {
        "cm.contoso.test": ("pki/appliances/cm.contoso.test", Capture()),
        "cm-fabrikam": ("cm-fabrikam", Capture()),
    }
    for name, (files, out) in consoles.items():
        path = _write(tmp_path, (
            f'name = "{name}"\nrole = "management-console"\napi = false\n'
            f'certificate = "{files}.crt"\nkey = "{files}.key"\nchain = "{files}.pem"\n'
            'trust = ["pki/ca/contoso-root-ca.crt"]\nbackoff_cap = 0.5\n'
            "[connects_to]\n" + sensor
        ), f"{name}.toml")
        await _started_node(nursery, path, out)
    with trio.fail_after(30):
        await sensor_out.wait_for("link-up")
        halted = (await sensor_out.wait_for("link-halted"))[0]
    assert [(e["dialer"], e["listener"]) for e in sensor_out.events() if e["kind"] == "link-up"] == [
        ("cm.contoso.test", "sensor-1")
    ]
    assert (halted["dialer"], halted["refused_by"], halted["code"]) == (
        "cm-fabrikam", "sensor-1", "chain_untrusted"
    )


async def test_an_upload_makes_links_dialed_from_other_nodes_again(
    written, tmp_path, keys, epoch, nursery
):
    """The console closes its live links cleanly; the sensor redials and meets the new certificate."""
    pki = written.pki
    console_out, sensor_out = Capture(), Capture()
    console = await _in_process_node(
        nursery, _config(tmp_path, "console", "management-console", "127.0.0.1:0"), console_out
    )
    peers = (
        "[connects_to]\n"
        f'console = {{ address = "{console.address}", hostname = "console.contoso.test" }}\n'
    )
    await _in_process_node(
        nursery, _config(tmp_path, "sensor-1", "sensor", "127.0.0.1:0", peers), sensor_out
    )
    with trio.fail_after(20):
        await sensor_out.wait_for("link-up")
        # A certificate for another host name: the upload does not judge names, the sensor does.
        other = pki.issuing.issue("elsewhere.contoso.test", not_before=epoch, key=keys(2048))
        verdict = await console.upload(
            Issued(cert=other.cert, key=other.key, chain=pki.appliances["console"].chain)
        )
        assert verdict.accepted
        [recheck] = await console_out.wait_for("link-recheck")
        [halted] = await sensor_out.wait_for("link-halted")
    assert (recheck["dialer"], recheck["reason"]) == ("sensor-1", "to present console's new certificate")
    assert (halted["refused_by"], halted["code"]) == ("sensor-1", "name_mismatch")


async def test_a_peer_that_stops_cleanly_is_a_normal_close(files, nursery):
    console_out = Capture()
    console = await _in_process_node(
        nursery, _config(files, "console", "management-console", "127.0.0.1:0"), console_out
    )
    peers = (
        "[connects_to]\n"
        f'console = {{ address = "{console.address}", hostname = "console.contoso.test" }}\n'
    )
    with trio.fail_after(20):
        async with trio.open_nursery() as sensor:
            await _in_process_node(
                sensor, _config(files, "sensor-1", "sensor", "127.0.0.1:0", peers), Capture()
            )
            await console_out.wait_for("link-up")
            sensor.cancel_scope.cancel()  # what SIGTERM or Ctrl-C does to a node
        [down] = await console_out.wait_for("link-down")
    assert down["reason"] == "sensor-1 closed the link"


# -- operator certificates, the admin password and a provided token file --


async def test_a_node_takes_operator_certificates_a_password_and_a_provided_token(tmp_path, nursery):
    from mesh.password_hash import hash_password
    from mesh.pki.operator import issue_operator

    now = dt.datetime.now(dt.timezone.utc)
    ca, cert, key = issue_operator(tmp_path, "alice", at=now - dt.timedelta(days=1))
    _, old_cert, old_key = issue_operator(tmp_path, "old", at=now - dt.timedelta(days=9), days=2)
    provided = tmp_path / "secret-token"
    provided.write_text("a-token-somebody-else-chose\n")
    provided.chmod(0o400)
    config = _write(tmp_path, (
        'name = "a"\nrole = "sensor"\napi_token_file = "secret-token"\n'
        'operator_ca = "operator-ca.crt"\n'
        f'admin_password_hash = "{hash_password("pw-of-the-admin", n=2**10).text()}"\n'))
    out = Capture()
    await _started_node(nursery, config, out)
    (listening,) = [e for e in out.events() if e["kind"] == "api-listening"]
    assert listening["token_file"] == str(provided.absolute())
    url = listening["url"]

    # The README's curl lines: the operator certificate, then the token.
    good = await _curl("-k", "--cert", str(cert), "--key", str(key), "-X", "POST",
                       f"{url}/api/v1/crls/refresh")
    assert good.returncode == 0 and json.loads(good.stdout)["refreshed"] is True
    expired = await _curl("-k", "--cert", str(old_cert), "--key", str(old_key), "-X", "POST",
                          f"{url}/api/v1/crls/refresh")
    assert json.loads(expired.stdout)["code"] == "operator_cert_expired"
    token = await _curl("-k", "-H", "Authorization: Bearer a-token-somebody-else-chose",
                        "-X", "POST", f"{url}/api/v1/crls/refresh")
    assert json.loads(token.stdout)["refreshed"] is True
    assert provided.read_text() == "a-token-somebody-else-chose\n"  # used, not replaced
    signed_in = await _curl("-k", "-H", "Content-Type: application/json", "-d",
                            '{"user": "admin", "password": "pw-of-the-admin"}',
                            f"{url}/api/v1/session")
    assert json.loads(signed_in.stdout)["signed_in"] is True
    denied = [e for e in out.events() if e["kind"] == "api-denied"]
    assert [(e["reason"], e["source"]) for e in denied] == [("operator-cert-expired", "127.0.0.1")]
    assert [e["kind"] for e in out.events()].count("crls-refreshed") == 2
    assert "a-token-somebody-else-chose" not in out.getvalue()
    assert "pw-of-the-admin" not in out.getvalue()


def test_a_token_file_open_to_others_stops_the_node_with_one_line(tmp_path):
    provided = tmp_path / "secret-token"
    provided.write_text("a-token-somebody-else-chose\n")
    provided.chmod(0o644)
    config = _write(tmp_path, 'name = "a"\nrole = "sensor"\napi_token_file = "secret-token"\n')
    done = subprocess.run([sys.executable, "-m", "mesh", "node", "--config", str(config)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"mesh: {provided.absolute()}: is open to group or others (mode 0644); "
        f"chmod 600 {provided.absolute()} (a Kubernetes Secret: defaultMode 0400)")
    assert "a-token-somebody-else-chose" not in done.stderr + done.stdout


@pytest.mark.parametrize(("line", "problem"), [
    ('admin_password_hash = "hunter2"', "is not a scrypt$N$r$p$salt$hash password hash"),
    ('admin_password_hash = "scrypt$3$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"',
     "asks for scrypt parameters out of bounds (N=3, r=8, p=1)"),
    ('operator_ca = "missing.crt"', "no such operator CA file"),
])
def test_bad_operator_settings_are_one_line(tmp_path, line, problem):
    path = _write(tmp_path, f'name = "a"\nrole = "sensor"\n{line}\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    assert problem in info.value.line()
    assert "hunter2" not in info.value.line()


def test_operator_ca_must_be_a_ca(tmp_path):
    from mesh.pki.operator import issue_operator

    issue_operator(tmp_path, "alice", at=dt.datetime(2027, 1, 15, tzinfo=dt.timezone.utc))
    path = _write(tmp_path, 'name = "a"\nrole = "sensor"\noperator_ca = "alice.crt"\n')
    with pytest.raises(InputError) as info:
        load_config(path)
    assert info.value.line().endswith(
        "not a CA certificate; name the operator CA's certificate (operator-ca.crt), not an operator's")
    ok = _write(tmp_path, 'name = "a"\nrole = "sensor"\noperator_ca = "operator-ca.crt"\n', "ok.toml")
    assert len(load_config(ok).operator_cas) == 1
