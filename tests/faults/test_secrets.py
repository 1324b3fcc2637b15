"""Secrets: keys on disk are 0600, no key or passphrase in any output, no TLS below 1.2.

The output search knows exactly which keys a run used: the scenario runner's
key source is wrapped to record every key it hands out, and the PKI's default
passphrase is set to a value that cannot occur by accident. It then looks for
those keys in every form they could leak in (PEM armour, the PKCS#8 and
traditional DER as base64 and hex, the private exponent and primes in decimal
and hex) and for the passphrases, in the events file, the JSON and JUnit
reports, the terminal output and the answers of an appliance's REST API.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import stat
from pathlib import Path

import httpx
import pytest
import trio
from cryptography.hazmat.primitives import serialization

import mesh.pki.deployment
import mesh.scenario.runner
import mesh.scenario.world
import mesh.web.tls
from mesh.appliances import LinkState
from mesh.cli import main
from mesh.events import ConnectionDropped
from mesh.pki.faults import wrong_passphrase_for
from mesh.pki.files import save_certificate, save_chain, save_key
from mesh.scenario.load import load_scenario
from mesh.scenario.runner import start_scenario
from mesh.consoles import open_console
from mesh.web import MeshConsole

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
PASSPHRASE_SCENARIO = SCENARIOS / "troubleshoot-passphrase-mismatch.toml"
#: The PKI's passphrase for these runs: a string no output can contain by chance.
SECRET = "Vq3-kestrel-Passphrase-91"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- keys on disk --


def test_pki_init_writes_keys_and_manifest_0600_whatever_the_umask(tmp_path, capsys):
    folder = tmp_path / "pki"
    old = os.umask(0)  # modes must be set at creation, not inherited
    try:
        rc = main(
            ["pki", "init", str(folder), "--intermediate", "--passphrase", SECRET,
             "-a", "sensor-1", "-a", "cm:management-console", "-a", "s2:sensor:wrong-passphrase",
             "--at", "2027-01-15T09:00:00Z"]
        )
    finally:
        os.umask(old)
    assert rc == 0
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    keys = sorted(folder.rglob("*.key"))
    assert len(keys) >= 5  # three appliances, root and issuing CA
    for key in keys:
        assert _mode(key) == 0o600, key
    assert _mode(folder / "pki.json") == 0o600  # it records passphrases
    for public in [*folder.rglob("*.crt"), *folder.rglob("*.crl")]:
        assert _mode(public) & 0o077 in (0o044, 0o000), public  # readable certificates are fine


@pytest.mark.parametrize(
    "target, extra",
    [
        ("out.key", []),
        ("out-traditional.key", ["--traditional"]),
        ("out.p12", ["--key", "KEY", "--out-passphrase", SECRET]),
        ("out.pem", ["--passphrase", SECRET]),
    ],
)
def test_cert_convert_writes_key_outputs_0600(tmp_path, capsys, keys, epoch, target, extra):
    pki = mesh.pki.deployment.Pki.build(
        at=epoch, appliances=[mesh.pki.deployment.ApplianceRequest(name="a")], keys=keys
    )
    material = pki.appliances["a"]
    crt = save_certificate(tmp_path / "a.crt", material.cert)
    key = save_key(tmp_path / "a.key", material.issued.key, passphrase=SECRET)
    save_chain(tmp_path / "a.pem", material.chain)
    source = crt if target.endswith(".p12") else key
    argv = ["cert", "convert", str(source), str(tmp_path / target)]
    argv += [str(key) if a == "KEY" else a for a in extra]
    if target.endswith(".key"):
        argv += ["--passphrase", SECRET]
    if target.endswith(".p12"):
        argv += ["--passphrase", SECRET]
    old = os.umask(0)
    try:
        assert main(argv) == 0, capsys.readouterr().err
    finally:
        os.umask(old)
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    assert _mode(tmp_path / target) == 0o600


async def test_web_console_key_files_are_private_and_gone(keys, monkeypatch, tmp_path):
    """The HTTPS console hands its key to OpenSSL through a 0700 folder of 0600 files."""
    seen: list[tuple[int, dict[str, int]]] = []
    real_rmtree = shutil.rmtree

    def recording_rmtree(path, *args, **kwargs):
        if Path(path).name.startswith("mesh-console-"):
            seen.append((_mode(Path(path)), {p.name: _mode(p) for p in Path(path).iterdir()}))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(mesh.web.tls.shutil, "rmtree", recording_rmtree)
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    scenario = load_scenario(PASSPHRASE_SCENARIO)
    scenario = _starting_at(scenario, start)
    async with start_scenario(scenario, keys=keys) as run:
        async with trio.open_nursery() as nursery:
            console = await open_console(
                nursery, MeshConsole(run.mesh, "cm.contoso.test"), events=run.events,
                now=run.clock.now, token_file=tmp_path / "cm.api-token")
            async with httpx.AsyncClient(base_url=console.url, verify=False, timeout=20) as client:
                assert (await client.get("/api/v1/status")).status_code == 200
            nursery.cancel_scope.cancel()
    assert seen, "the console built no TLS context"
    for folder_mode, modes in seen:
        assert folder_mode == 0o700
        assert modes and all(mode == 0o600 for mode in modes.values()), modes
        assert not any(Path("/tmp").glob("mesh-console-*/console.key"))


def _starting_at(scenario, start: dt.datetime):
    import attrs

    return attrs.evolve(scenario, start=start)


# -- no key material or passphrase in any output --


class RecordingKeys:
    """A key source that remembers every key it hands out (the run's secrets)."""

    def __init__(self, source) -> None:
        self.source = source
        self.handed: list = []

    def __call__(self, bits: int):
        key = self.source(bits)
        self.handed.append(key)
        return key


def needles(keys, passphrases) -> set[str]:
    """Every text form in which these keys or passphrases could leak."""
    found = {p for p in passphrases if p}
    for key in keys:
        numbers = key.private_numbers()
        for n in (numbers.d, numbers.p, numbers.q):
            found |= {str(n)[:40], format(n, "x")[:40], format(n, "X")[:40]}
        for form in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
            der = key.private_bytes(serialization.Encoding.DER, form, serialization.NoEncryption())
            found.add(base64.b64encode(der).decode()[64:128])  # a PEM body line
            found.add(der.hex()[64:128])
    return found


def assert_no_secrets(texts: dict[str, str], keys, passphrases) -> None:
    assert keys, "no keys were recorded; the search would prove nothing"
    search = needles(keys, passphrases)
    for where, text in texts.items():
        assert "PRIVATE KEY-----" not in text, where  # PEM armour (naming it in prose is fine)
        leaked = [n for n in search if n in text]
        assert not leaked, f"{where} contains secret material"


@pytest.fixture
def recorded(monkeypatch, key_pool) -> RecordingKeys:
    recorder = RecordingKeys(key_pool.cursor())
    monkeypatch.setattr(mesh.scenario.world, "keys_for", lambda scenario, cache: recorder)
    monkeypatch.setattr(mesh.pki.deployment, "DEFAULT_PASSPHRASE", SECRET)
    return recorder


def test_a_full_run_writes_no_secrets(tmp_path, capsys, recorded):
    outputs = {
        "events": tmp_path / "events.jsonl",
        "json": tmp_path / "report.json",
        "junit": tmp_path / "report.xml",
    }
    rc = main(
        ["run", str(PASSPHRASE_SCENARIO), *(a for k, p in outputs.items() for a in (f"--{k}", str(p)))]
    )
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    texts = {name: path.read_text(errors="replace") for name, path in outputs.items()}
    texts |= {"stdout": out, "stderr": err}
    assert "passphrase_mismatch" in texts["events"]  # the refused upload is in there
    assert_no_secrets(texts, recorded.handed, [SECRET, wrong_passphrase_for(SECRET)])


async def test_the_api_answers_no_secrets(recorded, monkeypatch, tmp_path):
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    scenario = _starting_at(load_scenario(PASSPHRASE_SCENARIO), start)
    answers: dict[str, str] = {}
    token_file = tmp_path / "cm.api-token"
    async with start_scenario(scenario) as run:
        async with trio.open_nursery() as nursery:
            console = await open_console(
                nursery, MeshConsole(run.mesh, "cm.contoso.test"), events=run.events,
                now=run.clock.now, token_file=token_file)
            token = token_file.read_text().strip()
            pki = run.pki
            fresh = pki.issuing.issue(
                "cm.contoso.test", not_before=start - dt.timedelta(minutes=1), key=recorded(2048)
            )
            pem = fresh.cert.public_bytes(serialization.Encoding.PEM)
            chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in fresh.chain)
            key_pem = fresh.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(SECRET.encode()),
            )
            async with httpx.AsyncClient(
                base_url=console.url, verify=False, timeout=20,
                headers={"Authorization": f"Bearer {token}"},
            ) as client:
                answers["status"] = (await client.get("/api/v1/status")).text
                for guess in ("wrong-" + SECRET, SECRET):
                    response = await client.post(
                        "/api/v1/certificate",
                        data={"passphrase": guess},
                        files={"crt": ("cm.crt", pem), "key": ("cm.key", key_pem),
                               "chain": ("chain.pem", chain)},
                    )
                    answers[f"upload {guess[:6]}"] = response.text
                bad_key = await client.post(
                    "/api/v1/certificate",
                    files={"crt": ("cm.crt", pem), "key": ("cm.key", b"-----BEGIN PRIVATE KEY-----\nxx")},
                )
                answers["bad key"] = bad_key.text
                answers["status after"] = (await client.get("/api/v1/status")).text
                answers["events"] = (await client.get("/api/v1/events")).text
                answers["page"] = (await client.get("/")).text
                # A wrong token and a signed-in page are refused or answered without it.
                answers["wrong token"] = (await client.post(
                    "/api/v1/crls/refresh", headers={"Authorization": "Bearer x" + token})).text
                answers["sign in"] = (await client.post("/api/v1/session", json={"token": token})).text
                answers["session cookie"] = "; ".join(client.cookies.values())
            answers["event log"] = "\n".join(e.to_json() + e.log_line() for e in run.events.events)
            nursery.cancel_scope.cancel()
    assert '"accepted":true' in answers[f"upload {SECRET[:6]}"].replace(" ", "")
    assert '"api-denied"' in answers["event log"]
    assert answers["session cookie"]
    assert_no_secrets(
        answers, recorded.handed,
        [SECRET, "wrong-" + SECRET, wrong_passphrase_for(SECRET), token, "x" + token],
    )


# -- no TLS below 1.2 --


@pytest.mark.oracle
@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
async def test_openssl_below_tls_1_2_is_refused(deployment, nursery, tmp_path, version):
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    mesh = deployment.pair()
    await nursery.start(mesh.run)
    await mesh.settle()
    material = deployment.pki.appliances["sensor-1"]
    crt = save_certificate(tmp_path / "s.crt", material.cert)
    key = save_key(tmp_path / "s.key", material.issued.key)

    async def s_client(*options: str) -> trio.CompletedProcess:
        return await trio.run_process(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{mesh.appliance('console').port}",
             "-cert", str(crt), "-key", str(key), *options],
            stdin=b"", capture_stdout=True, capture_stderr=True, check=False,
        )

    with trio.fail_after(20):
        # The client is allowed to offer old versions (security level 0), so a
        # failure can only be the appliance refusing them.
        old = await s_client(version, "-cipher", "DEFAULT:@SECLEVEL=0")
        modern = await s_client("-tls1_2")
    said = (old.stdout + old.stderr).decode(errors="replace")
    assert old.returncode != 0, said
    assert "protocol version" in said or "unsupported protocol" in said, said
    assert "Protocol  : TLSv1.2" in modern.stdout.decode(errors="replace")
    dropped = mesh.events.of(ConnectionDropped, appliance="console")
    assert dropped and "unsupported protocol" in dropped[0].reason
    assert mesh.link("sensor-1", "console").state is LinkState.UP


def test_the_search_would_find_a_leak(key_pool):
    """The search above proves something only if it catches each form of a leak."""
    key = key_pool.cursor()(2048)
    forms = {
        "pkcs8 pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "bare base64": "".join(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ).decode().splitlines()[1:-1]
        ),
        "der hex": key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).hex(),
        "exponent": f'{{"d": {key.private_numbers().d}}}',
        "passphrase": f"upload with passphrase {SECRET} refused",
    }
    for where, text in forms.items():
        with pytest.raises(AssertionError):
            assert_no_secrets({where: text}, [key], [SECRET])


async def test_node_files_of_a_process_run_are_private(tmp_path, keys, nursery):
    """``mesh run --processes`` hands each ``mesh node`` its key and config (which may
    name the key's passphrase) in files only the user can read.

    Drives the backend's file writer directly (``ProcessesBackend._config``, what runs
    before each node is spawned), so no process needs to start.
    """
    from mesh.scenario.processes import ProcessesBackend
    from mesh.scenario.world import build_pki

    scenario = load_scenario(PASSPHRASE_SCENARIO)
    scenario = attrs_evolve_appliance(scenario, "sensor-1.contoso.test", certificate="wrong-passphrase")
    pki = build_pki(scenario, crl_base_url="http://127.0.0.1:1/crl", keys=keys)
    fleet = ProcessesBackend(scenario, pki, tmp_path, proxy_url=None, sink=None, nursery=nursery,
                             workers=len(scenario.appliances) - 1)
    old = os.umask(0)
    try:
        configs = [fleet._config(shard) for shard in fleet.shards]
    finally:
        os.umask(old)
    assert any("passphrase" in c.read_text() for c in configs)
    for config in configs:
        assert _mode(config) == 0o600, config
    keys_written = sorted(tmp_path.glob("*.key"))
    assert len(keys_written) == 2
    for key in keys_written:
        assert _mode(key) == 0o600, key


def attrs_evolve_appliance(scenario, name: str, **changes):
    import attrs

    appliances = tuple(
        attrs.evolve(a, **changes) if a.name == name else a for a in scenario.appliances
    )
    return attrs.evolve(scenario, appliances=appliances)
