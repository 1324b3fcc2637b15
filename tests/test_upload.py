"""The upload-time check on real files, with CRLs served over real HTTP.

Each PKI factory recipe is written to disk by ``mesh.pki.deployment``, its CRLs
are served by the real CRL server on 127.0.0.1, and ``mesh cert check`` (the
CLI, in-process, in a worker thread because it runs its own trio loop for the
fetch) must print the recipe's code.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
from pathlib import Path

import pytest
import trio
from attrs import define
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mesh import cli
from mesh.errors import FailureCode, InputError
from mesh.net.crl_fetch import CrlFetcher
from mesh.net.crl_server import CrlServer
from mesh.pki import files
from mesh.pki.faults import RECIPES
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.upload import APPLIANCE_TRUST, UploadAnchors, UploadMaterial, check_upload, upload_anchors

F = FailureCode
HOUR = dt.timedelta(hours=1)

#: What the upload check says for each recipe (None: the upload is accepted).
#: Lint-only faults pass; no-cdp passes with a note.
EXPECTED = {
    name: (None if r.expected is F.NO_CDP else r.expected) for name, r in RECIPES.items()
}


@define
class Deployment:
    pki: Pki
    folder: Path
    server: CrlServer
    manifest: dict

    @property
    def at(self) -> dt.datetime:
        return self.pki.at + HOUR

    def argv(self, name: str, *extra: str, trust: bool = True, passphrase: bool = True) -> list[str]:
        entry = self.manifest["appliances"][name]
        argv = ["cert", "check", "--crt", str(self.folder / entry["crt"]),
                "--key", str(self.folder / entry["key"]), "--at", self.at.isoformat(), "--json"]
        if entry["chain"]:
            argv += ["--chain", str(self.folder / entry["chain"])]
        if trust:
            argv += ["--trust", str(self.folder / self.manifest["root"])]
        if passphrase and entry["encrypted"]:
            argv += ["--passphrase", self.pki.appliances[name].passphrase]
        return argv + list(extra)


@pytest.fixture
async def deployment(nursery, key_pool, epoch, tmp_path) -> Deployment:
    server = CrlServer()
    await nursery.start(server.serve)
    pki = Pki.build(
        at=epoch,
        crl_base_url=f"{server.base_url}/crl",
        appliances=[ApplianceRequest(name=name, fault=name) for name in RECIPES],
        keys=key_pool.cursor(),
        passphrase="correct horse",
    )
    server.set_documents(pki.crl_documents())
    manifest_path = pki.write(tmp_path / "pki")
    manifest = json.loads(manifest_path.read_text())
    return Deployment(pki=pki, folder=manifest_path.parent, server=server, manifest=manifest)


async def run_cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    status = await trio.to_thread.run_sync(functools.partial(cli.main, argv))
    out, err = capsys.readouterr()
    return status, out, err


_PROXY_VARIABLES = (
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
    "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy",
)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    """The CRL fetch honours proxy variables; these tests start from none."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", sorted(RECIPES))
async def test_every_recipe_over_http(deployment, capsys, name):
    status, out, err = await run_cli(deployment.argv(name), capsys)
    report = json.loads(out)
    expected = EXPECTED[name]
    if expected is None:
        assert (status, report["valid"], report["failures"]) == (0, True, []), out
    else:
        assert status == 1, out
        assert report["valid"] is False
        first = report["failures"][0]
        assert first["code"] == expected.code, out
        assert first["message"] == expected.message
        assert set(first) == {"code", "message", "subject", "detail"}
    if name == "no-cdp":
        assert [w["code"] for w in report["warnings"]] == ["no_cdp"]


async def test_plain_output_is_the_exact_message(deployment, capsys):
    argv = [a for a in deployment.argv("revoked") if a != "--json"]
    status, out, _ = await run_cli(argv, capsys)
    assert status == 1
    assert out.splitlines()[0] == F.REVOKED.message
    status, out, _ = await run_cli([a for a in deployment.argv("ca-signed") if a != "--json"], capsys)
    assert (status, out.splitlines()[0]) == (0, "The certificate is valid.")


async def test_crls_are_fetched_over_http(deployment, capsys):
    deployment.server.reset_counts()
    status, _, _ = await run_cli(deployment.argv("ca-signed"), capsys)
    assert status == 0
    # The issuing CA's CRL (for the leaf) and the root's (for the intermediate).
    assert deployment.server.requests("/crl/contoso-issuing-ca.crl") == 1
    assert deployment.server.requests("/crl/contoso-root-ca.crl") == 1


@pytest.mark.parametrize(
    "fault, code",
    [
        ("down", F.CRL_UNREACHABLE),
        ("http-404", F.CRL_HTTP_ERROR),
        ("http-500", F.CRL_HTTP_ERROR),
        ("garbage", F.CRL_INVALID),
        ("html", F.CRL_INVALID),
        ("stale", F.CRL_STALE),
    ],
)
async def test_crl_server_faults(deployment, capsys, fault, code):
    if fault == "stale":
        old = deployment.pki.crl_documents(at=deployment.pki.at - dt.timedelta(days=30))
        deployment.server.set_documents(old, variant="stale")
    deployment.server.set_fault(fault)
    status, out, _ = await run_cli(deployment.argv("ca-signed"), capsys)
    report = json.loads(out)
    assert status == 1
    assert report["failures"][0]["code"] == code.code, out


async def test_root_from_the_chain_file(deployment, capsys, tmp_path):
    entry = deployment.manifest["appliances"]["ca-signed"]
    chain = files.load_certificates(deployment.folder / entry["chain"])
    with_root = tmp_path / "with-root.pem"
    with_root.write_bytes(files.chain_bytes([*chain, deployment.pki.root.cert]))
    argv = deployment.argv("ca-signed", trust=False)
    argv[argv.index("--chain") + 1] = str(with_root)
    status, out, _ = await run_cli(argv, capsys)
    assert status == 0, out
    # Without a root anywhere: chain_untrusted, and the detail says what to do.
    no_root = tmp_path / "no-root.pem"
    no_root.write_bytes(files.chain_bytes([c for c in chain if c != deployment.pki.root.cert]))
    argv = deployment.argv("ca-signed", trust=False)
    argv[argv.index("--chain") + 1] = str(no_root)
    status, out, _ = await run_cli(argv, capsys)
    failure = json.loads(out)["failures"][0]
    assert (status, failure["code"]) == (1, "chain_untrusted")
    assert failure["detail"] == (
        f"no trust anchor: no --trust was given and the chain file {no_root} holds no "
        "self-signed root; include the root CA in the chain (.pem) file or pass it with "
        "--trust ROOT.crt"
    )


async def test_no_validation_runs_only_the_key_checks(deployment, capsys):
    status, out, _ = await run_cli(deployment.argv("expired", "--no-validation"), capsys)
    report = json.loads(out)
    assert (status, report["valid"], report["skipped"], report["failures"]) == (0, True, True, [])
    status, out, _ = await run_cli(deployment.argv("key-mismatch", "--no-validation"), capsys)
    assert (status, json.loads(out)["failures"][0]["code"]) == (1, "key_mismatch")
    deployment.server.reset_counts()
    await run_cli(deployment.argv("ca-signed", "--no-validation"), capsys)
    assert deployment.server.requests() == 0


async def test_passphrase_file_and_missing_passphrase(deployment, capsys, tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text("correct horse\n")
    argv = deployment.argv("ca-signed", "--passphrase-file", str(secret), passphrase=False)
    status, out, _ = await run_cli(argv, capsys)
    assert status == 0, out
    status, out, _ = await run_cli(deployment.argv("ca-signed", passphrase=False), capsys)
    assert (status, json.loads(out)["failures"][0]["code"]) == (1, "passphrase_mismatch")


async def test_all_failures_with_json(deployment, capsys):
    # A wrong passphrase on an expired, revoked certificate: every failure listed,
    # the passphrase first (the source document's order).
    pki = deployment.pki
    material = pki.reissue("expired", "expired")
    pki.revoke("expired")
    deployment.server.set_documents(pki.crl_documents(at=pki.at + dt.timedelta(minutes=1)))
    pki.write(deployment.folder)
    argv = deployment.argv("expired", passphrase=False)
    status, out, _ = await run_cli(argv, capsys)
    codes = [f["code"] for f in json.loads(out)["failures"]]
    assert status == 1
    assert codes == ["passphrase_mismatch", "expired", "revoked"], out
    assert material.serial == files.load_certificate(
        deployment.folder / deployment.manifest["appliances"]["expired"]["crt"]
    ).serial_number


@pytest.mark.parametrize(
    "change",
    ["missing crt", "key as crt", "garbage key", "bad --at", "missing trust"],
)
async def test_unusable_input_is_exit_2(deployment, capsys, tmp_path, change):
    argv = [a for a in deployment.argv("ca-signed")]
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00\x01 not a file anyone should upload")
    if change == "missing crt":
        argv[argv.index("--crt") + 1] = str(tmp_path / "nope.crt")
    elif change == "key as crt":
        argv[argv.index("--crt") + 1] = argv[argv.index("--key") + 1]
    elif change == "garbage key":
        argv[argv.index("--key") + 1] = str(garbage)
    elif change == "bad --at":
        argv[argv.index("--at") + 1] = "next tuesday"
    elif change == "missing trust":
        argv[argv.index("--trust") + 1] = str(tmp_path / "root.crt")
    status, out, err = await run_cli(argv, capsys)
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mesh: "), err
    assert "Traceback" not in err


async def test_material_judged_with_a_fetcher_in_this_loop(deployment):
    """The split API: load, fetch on the caller's event loop, judge (pure)."""
    entry = deployment.manifest["appliances"]["revoked"]
    material = UploadMaterial.load(
        deployment.folder / entry["crt"],
        deployment.folder / entry["key"],
        deployment.folder / entry["chain"],
        [deployment.folder / deployment.manifest["root"]],
        "correct horse",
    )
    async with CrlFetcher(now=lambda: deployment.at) as fetcher:
        lookup = await fetcher.prefetch(material.crl_urls())
    verdict = material.judge(at=deployment.at, crls=lookup)
    assert verdict.primary.code is F.REVOKED
    assert verdict.primary.serial == deployment.pki.appliances["revoked"].serial


def _load(deployment: Deployment, name: str) -> UploadMaterial:
    entry = deployment.manifest["appliances"][name]
    return UploadMaterial.load(
        deployment.folder / entry["crt"],
        deployment.folder / entry["key"],
        deployment.folder / entry["chain"] if entry["chain"] else None,
        [deployment.folder / deployment.manifest["root"]],
        deployment.pki.appliances[name].passphrase if entry["encrypted"] else None,
    )


async def test_crl_that_never_comes_is_a_timeout(deployment, mock_clock):
    """The server accepts and never answers; the fetch's deadline is jumped to."""
    deployment.server.set_fault("slow")
    material = _load(deployment, "ca-signed")
    async with CrlFetcher(now=lambda: deployment.at, timeout=5.0) as fetcher:
        async with trio.open_nursery() as nursery:
            got = []

            async def fetch() -> None:
                got.append(await fetcher.prefetch(material.crl_urls()))

            nursery.start_soon(fetch)
            await deployment.server.wait_requests(2)
            mock_clock.jump(5.1)
    verdict = material.judge(at=deployment.at, crls=got[0])
    assert [f.code for f in verdict.failures] == [F.CRL_UNREACHABLE, F.CRL_UNREACHABLE]


async def test_crl_signed_by_another_key(deployment, key_pool, capsys):
    from cryptography.hazmat.primitives import serialization

    from mesh.pki.issue import CertificateAuthority

    pki = deployment.pki
    forged = {}
    for url, crl in pki.crls().items():
        forger = CertificateAuthority.root("forger", not_before=pki.at, key=key_pool.cursor()(2048))
        builder = x509.CertificateRevocationListBuilder().issuer_name(crl.issuer)
        builder = builder.last_update(crl.last_update_utc).next_update(crl.next_update_utc)
        der = builder.sign(forger.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        forged["/" + url.split("/", 3)[3]] = der
    deployment.server.set_documents(forged, variant="wrong-key")
    deployment.server.set_fault("wrong-key")
    status, out, _ = await run_cli(deployment.argv("ca-signed"), capsys)
    assert status == 1
    assert json.loads(out)["failures"][0]["code"] == "crl_signature_invalid", out


async def test_crls_through_a_proxy(nursery, key_pool, epoch, tmp_path, capsys):
    """CDPs name a host only the proxy can reach, as the source document allows."""
    from mesh.net.proxy import ForwardProxy

    server = CrlServer()
    await nursery.start(server.serve)
    hidden = "crl.contoso.invalid"
    proxy = ForwardProxy(routes={f"{hidden}:80": ("127.0.0.1", server.port)})
    await nursery.start(proxy.serve)
    pki = Pki.build(
        at=epoch,
        crl_base_url=f"http://{hidden}/crl",
        appliances=[ApplianceRequest(name="s1")],
        keys=key_pool.cursor(),
    )
    server.set_documents(pki.crl_documents())
    manifest_path = pki.write(tmp_path / "pki")
    deployment = Deployment(
        pki=pki, folder=manifest_path.parent, server=server,
        manifest=json.loads(manifest_path.read_text()),
    )
    status, out, _ = await run_cli(deployment.argv("s1"), capsys)
    assert (status, json.loads(out)["failures"][0]["code"]) == (1, "crl_unreachable")
    # soft-fail revocation, as an appliance configured so judges it: a warning
    status, out, _ = await run_cli(deployment.argv("s1", "--revocation", "soft"), capsys)
    assert (status, {w["code"] for w in json.loads(out)["warnings"]}) == (0, {"crl_unreachable"})
    status, out, _ = await run_cli(deployment.argv("s1", "--proxy", proxy.url), capsys)
    assert status == 0, out
    assert proxy.forwarded() == 2
    status, _, err = await run_cli(deployment.argv("s1", "--proxy", "not a proxy"), capsys)
    assert status == 2 and err.startswith("mesh: ")


def test_check_upload_with_a_given_lookup(tmp_path, key_pool, epoch):
    """check_upload on files without any network: the CRLs are handed in."""
    from mesh.validation import CrlIndex, crl_lookup

    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="s1")], keys=key_pool.cursor())
    manifest_path = pki.write(tmp_path / "pki")
    folder = manifest_path.parent
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["appliances"]["s1"]
    lookup = crl_lookup({url: CrlIndex.from_crl(crl) for url, crl in pki.crls().items()})
    args = (folder / entry["crt"], folder / entry["key"], folder / entry["chain"], [folder / manifest["root"]])
    verdict = check_upload(*args, at=epoch + HOUR, crls=lookup)
    assert verdict.accepted and verdict.failures == ()
    later = check_upload(*args, at=epoch + dt.timedelta(days=400), crls=lookup)
    assert later.primary.code is F.EXPIRED
    with pytest.raises(InputError):
        check_upload(folder / "nope.crt", folder / entry["key"], at=epoch, crls=lookup)


async def test_cli_as_a_subprocess(deployment):
    argv = [a for a in deployment.argv("expired") if a != "--json"]
    done = await trio.run_process(
        [sys.executable, "-m", "mesh", *argv], capture_stdout=True, capture_stderr=True, check=False
    )
    assert done.returncode == 1
    assert done.stdout.decode().splitlines()[0] == F.EXPIRED.message


# -- property tests: whatever the files hold, only our own errors -------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@functools.lru_cache(maxsize=1)
def _sample_files() -> dict[str, bytes]:
    from cryptography.hazmat.primitives import serialization

    from mesh.pki.keys import KeyPool

    pki = Pki.build(
        at=dt.datetime(2027, 1, 15, 9, tzinfo=dt.timezone.utc),
        appliances=[ApplianceRequest(name="s1")],
        keys=KeyPool().cursor(),
    )
    material = pki.appliances["s1"]
    pem = serialization.Encoding.PEM
    return {
        "crt": material.cert.public_bytes(pem),
        "crt-der": material.cert.public_bytes(serialization.Encoding.DER),
        "key": files.key_bytes(material.issued.key),
        "key-encrypted": files.key_bytes(material.issued.key, passphrase="pw"),
        "chain": files.chain_bytes([*material.chain, pki.root.cert]),
    }


def _mangle(data: bytes) -> st.SearchStrategy[bytes]:
    index = st.integers(0, len(data) - 1)
    return st.one_of(
        index.map(lambda i: data[:i]),
        st.tuples(index, st.integers(0, 7)).map(
            lambda t: data[: t[0]] + bytes([data[t[0]] ^ (1 << t[1])]) + data[t[0] + 1 :]
        ),
        st.tuples(index, st.binary(min_size=1, max_size=32)).map(
            lambda t: data[: t[0]] + t[1] + data[t[0] :]
        ),
    )


@st.composite
def _upload_files(draw) -> dict[str, bytes]:
    good = _sample_files()
    out = {"crt": good["crt"], "key": good["key"], "chain": good["chain"]}
    target = draw(st.sampled_from(["crt", "crt-der", "key", "key-encrypted", "chain"]))
    source = good[target]
    bad = draw(st.one_of(st.binary(max_size=1024), _mangle(source)))
    out[target.split("-")[0]] = bad
    return out


# cryptography warns (rather than fails) on some non-conformant fields; such a
# file is still judged, as OpenSSL would. The warnings are not ours.
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
@settings(max_examples=int(os.environ.get("MESH_HYPOTHESIS_EXAMPLES", "120")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contents=_upload_files(), passphrase=st.sampled_from([None, "pw", "wrong"]))
def test_mangled_files_give_only_our_errors(contents, passphrase):
    import tempfile

    from mesh.validation import crl_lookup

    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for name, data in contents.items():
            paths[name] = Path(folder) / name
            paths[name].write_bytes(data)
        try:
            material = UploadMaterial.load(
                paths["crt"], paths["key"], paths["chain"], (), passphrase
            )
        except InputError as exc:
            line = exc.line()
            assert line and "\n" not in line
            assert str(folder) in line or "key" in line or "certificate" in line
            return
    verdict = material.judge(at=dt.datetime(2027, 2, 1, tzinfo=dt.timezone.utc), crls=crl_lookup({}))
    for finding in verdict.failures:
        assert finding.code in FailureCode
        assert finding.message


async def test_a_hostile_reason_phrase_reaches_the_terminal_escaped(nursery, deployment, capsys):
    """A CRL server's reason phrase with a terminal escape (it sets the window
    title) is shown escaped and cut short, never sent to the terminal raw."""
    port = deployment.server.port
    deployment.server.set_fault("down")
    hostile = b"Not Found \x1b]0;pwned\x07 \x9b2J" + b"x" * 5000

    async def answer(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 404 " + hostile + b"\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, answer, listeners)
    argv = [a for a in deployment.argv("ca-signed") if a != "--json"]
    status, out, _ = await run_cli(argv, capsys)
    assert status == 1
    assert out.splitlines()[0] == F.CRL_HTTP_ERROR.message
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    # (httpx drops the reason's non-ASCII bytes, \x9b among them)
    assert "HTTP 404 Not Found \\x1b]0;pwned\\x07 2Jxxx" in out
    assert len(out.splitlines()[1]) < 400


# -- which anchors an upload is judged against --


def _self_issued_not_self_signed(root: x509.Certificate, keys) -> x509.Certificate:
    """The root's name as subject and issuer, but signed by a key that is not its own."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(root.subject)
        .issuer_name(root.subject)
        .public_key(keys(2048).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(root.not_valid_before_utc)
        .not_valid_after(root.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    return builder.sign(keys(2048), hashes.SHA256())


def test_configured_trust_is_what_an_upload_is_judged_against(key_pool, epoch):
    keys = key_pool.cursor()
    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="s1")], keys=keys)
    other = Pki.build(at=epoch, root="Fabrikam Root CA", keys=keys)
    chain = (*pki.appliances["s1"].chain, pki.root.cert)
    assert upload_anchors([other.root.cert], chain) == UploadAnchors(
        roots=(other.root.cert,), from_chain=False
    )


def test_without_trust_the_chains_self_signed_root_is_the_anchor(key_pool, epoch):
    keys = key_pool.cursor()
    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="s1")], keys=keys)
    issuing = pki.appliances["s1"].chain
    assert upload_anchors((), (*issuing, pki.root.cert)) == UploadAnchors(
        roots=(pki.root.cert,), from_chain=True
    )
    # The issuing CA is not a root; a certificate that only names itself as
    # its issuer, without its own signature, is not one either.
    assert upload_anchors((), issuing) == UploadAnchors(roots=(), from_chain=True)
    forged = _self_issued_not_self_signed(pki.root.cert, keys)
    assert upload_anchors((), (*issuing, forged)) == UploadAnchors(roots=(), from_chain=True)


def test_an_accepted_upload_without_trust_adopts_the_root_it_was_judged_against(key_pool, epoch):
    from mesh.validation import CrlIndex, crl_lookup

    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="s1")], keys=key_pool.cursor())
    issued = pki.appliances["s1"].issued
    lookup = crl_lookup({url: CrlIndex.from_crl(crl) for url, crl in pki.crls().items()})
    with_root = UploadMaterial.of(issued.cert, issued.key, chain=(*issued.chain, pki.root.cert))
    verdict = with_root.judge(at=epoch + HOUR, crls=lookup)
    assert verdict.accepted
    assert with_root.adopted_root(verdict) == pki.root.cert
    # Configured trust is kept, never replaced by an upload.
    configured = UploadMaterial.of(
        issued.cert, issued.key, chain=(*issued.chain, pki.root.cert), trust=[pki.root.cert]
    )
    verdict = configured.judge(at=epoch + HOUR, crls=lookup)
    assert verdict.accepted and configured.adopted_root(verdict) is None
    # Nothing is adopted from a refused upload, or one whose chain was not judged.
    later = with_root.judge(at=epoch + dt.timedelta(days=400), crls=lookup)
    assert later.primary.code is F.EXPIRED and with_root.adopted_root(later) is None
    skipped = with_root.judge(at=epoch + HOUR, crls=lookup, validation=False)
    assert skipped.accepted and skipped.skipped and with_root.adopted_root(skipped) is None


def test_without_trust_or_root_the_detail_says_what_to_do(key_pool, epoch):
    from mesh.validation import crl_lookup

    pki = Pki.build(at=epoch, appliances=[ApplianceRequest(name="s1")], keys=key_pool.cursor())
    issued = pki.appliances["s1"].issued
    no_root = UploadMaterial.of(
        issued.cert, issued.key, chain=issued.chain, anchor_source="the uploaded chain",
        trust_setting=APPLIANCE_TRUST,
    )
    assert no_root.judge(at=epoch + HOUR, crls=crl_lookup({})).primary.detail == (
        "no trust anchor: this appliance has no trust configured and the uploaded chain "
        "holds no self-signed root; include the root CA in the chain (.pem) file or "
        "configure trust"
    )
    no_chain = UploadMaterial.of(issued.cert, issued.key, trust_setting=APPLIANCE_TRUST)
    assert no_chain.judge(at=epoch + HOUR, crls=crl_lookup({})).primary.detail == (
        "no trust anchor: this appliance has no trust configured and no chain was given; "
        "give a chain (.pem) file holding every CA up to the root, or configure trust"
    )
