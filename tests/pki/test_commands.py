import io
import json
import re
import stat
import subprocess
import sys

from pathlib import Path

import pytest
from cryptography import x509

from mesh.cli import main
from mesh.errors import InputError
from mesh.pki import files
from mesh.pki.commands import parse_appliance, parse_instant
from mesh.pki.deployment import Pki
from mesh.pki.manifest import read_manifest

AT = "2027-01-15T09:00:00Z"


def _crl_number(path):
    crl = files.load_crl(path)
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_parse_appliance():
    r = parse_appliance("s1")
    assert (r.name, r.role, r.fault) == ("s1", "sensor", "ca-signed")
    r = parse_appliance("c:management-console")
    assert (r.role, r.fault) == ("management-console", "ca-signed")
    r = parse_appliance("s2::revoked")
    assert (r.role, r.fault) == ("sensor", "revoked")
    r = parse_appliance("s3:revoked")
    assert (r.role, r.fault) == ("sensor", "revoked")
    for bad, word in [
        ("s:sensor:bogus", "unknown certificate fault"),
        ("s:consol", "unknown role"),
        (":x", "NAME[:ROLE][:FAULT]"),
        ("a:b:c:d", "NAME[:ROLE][:FAULT]"),
    ]:
        with pytest.raises(InputError) as info:
            parse_appliance(bad)
        assert word in info.value.line()


def test_parse_instant():
    assert parse_instant(AT).isoformat() == "2027-01-15T09:00:00+00:00"
    assert parse_instant("2027-01-15").isoformat() == "2027-01-15T00:00:00+00:00"
    with pytest.raises(InputError):
        parse_instant("next tuesday")


def test_init_revoke(tmp_path, capsys):
    folder = tmp_path / "pki"
    rc = main(
        [
            "pki",
            "init",
            str(folder),
            "--intermediate",
            "-a",
            "sensor-1",
            "-a",
            "mc:management-console",
            "-a",
            "s2::wrong-passphrase",
            "--passphrase",
            "pw",
            "--at",
            AT,
            "--crl-base-url",
            "http://127.0.0.1:8080/crl",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "sensor-1" in out and "wrong-passphrase" in out and "pw" not in out
    manifest = read_manifest(folder)
    assert manifest["appliances"]["mc"]["role"] == "management-console"
    assert manifest["appliances"]["s2"]["encrypted"] is True
    assert "pw" not in (folder / "pki.json").read_text()  # the passphrase is never written
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.glob("**/*.key"))
    for ca_key in folder.glob("ca/*.key"):  # the CA keys are encrypted with it too
        assert b"ENCRYPTED" in ca_key.read_bytes()
    crl_path = folder / manifest["crls"]["http://127.0.0.1:8080/crl/contoso-issuing-ca.crl"]
    before = _crl_number(crl_path)

    assert main(["pki", "init", str(folder)]) == 2
    assert "already holds a PKI" in capsys.readouterr().err

    assert main(["pki", "revoke", str(folder), "sensor-1"]) == 2  # the CA key needs it
    assert "encrypted with the PKI's passphrase" in capsys.readouterr().err
    assert main(["pki", "revoke", str(folder), "sensor-1", "--passphrase", "pw"]) == 0
    assert _crl_number(crl_path) == before + 1
    serial = files.load_certificate(folder / "appliances/sensor-1.crt").serial_number
    assert files.load_crl(crl_path).get_revoked_certificate_by_serial_number(serial)
    assert main(["pki", "revoke", str(folder), "mc", "--passphrase", "pw"]) == 0
    assert _crl_number(crl_path) == before + 2
    crl = files.load_crl(crl_path)
    assert crl.get_revoked_certificate_by_serial_number(serial)
    assert Pki.load(folder, passphrase="pw").appliances["mc"].role == "management-console"

    assert main(["pki", "revoke", str(folder), "nobody", "--passphrase", "pw"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nobody" in err


def test_init_table_stays_aligned_with_a_long_name(tmp_path, capsys):
    long = "sensor-in-the-far-north-building-7.contoso.test"  # 47 characters
    assert main(["pki", "init", str(tmp_path / "pki"), "-a", long, "-a", "s1::revoked",
                 "-a", "cm:management-console", "--at", AT]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert rows == [
        f"  {long}  sensor              ca-signed  CN={long}",
        "  s1                                               sensor              revoked    CN=s1.contoso.test",
        "  cm                                               management-console  ca-signed  CN=cm.contoso.test",
    ]
    starts = {tuple(m.start() for m in re.finditer(r"\S+", row)) for row in rows}
    assert starts == {(2, 51, 71, 82)}  # every column starts at one offset in every row


def test_init_bad_input_is_one_line(tmp_path, capsys):
    for argv in (
        ["pki", "init", str(tmp_path / "a"), "-a", "s:sensor:bogus"],
        ["pki", "init", str(tmp_path / "b"), "--at", "soon"],
        ["pki", "init", str(tmp_path / "c"), "--crl-base-url", "ftp://x"],
        ["pki", "revoke", str(tmp_path / "none"), "x"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("mesh: ") and err.count("\n") == 1, err


def test_an_https_crl_base_url_is_refused_as_the_document_says(tmp_path, capsys):
    """The source document: "The URL should be defined as http:// rather than
    https://". A PKI whose CDPs name https:// would be refused by mesh's own
    checks (crl_url_unsupported), so it is not made."""
    folder = tmp_path / "pki"
    assert main(["pki", "init", str(folder), "--crl-base-url", "https://crl.contoso.test/crl"]) == 2
    assert capsys.readouterr().err == (
        "mesh: CRL base URL: 'https://crl.contoso.test/crl' is not an http:// URL "
        "(a CRL Distribution Point is fetched over plain HTTP, not https://); "
        "give one like http://127.0.0.1:8080/crl\n"
    )
    assert not folder.exists()


def test_revoking_under_a_ca_without_a_crl_url_is_one_line_and_changes_nothing(tmp_path, capsys):
    folder = tmp_path / "pki"
    assert main(["pki", "init", str(folder), "-a", "s1", "--at", AT]) == 0
    manifest_path = folder / "pki.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["cas"].values():
        entry["crl_url"] = None  # pki.json may name no CRL address; the loader accepts it
    manifest_path.write_text(json.dumps(manifest))
    capsys.readouterr()

    assert main(["pki", "revoke", str(folder), "s1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mesh: ") and err.count("\n") == 1, err
    assert "CRL" in err
    assert json.loads(manifest_path.read_text()) == manifest


@pytest.fixture(scope="module")
def written(tmp_path_factory, key_pool):
    from mesh.pki.deployment import ApplianceRequest
    from mesh.pki.faults import RECIPES

    folder = tmp_path_factory.mktemp("pki")
    pki = Pki.build(
        at=parse_instant(AT),
        appliances=[ApplianceRequest(name=n, fault=n) for n in RECIPES],
        passphrase="pw",
        keys=key_pool.cursor(),
    )
    pki.write(folder)
    return folder, pki


def test_lint_command(written, capsys):
    folder, _ = written
    assert main(["cert", "lint", str(folder / "appliances/ca-signed.crt"), "--at", AT]) == 0
    assert "meets the certificate requirements" in capsys.readouterr().out
    assert (
        main(["cert", "lint", str(folder / "appliances/weak-key.crt"), "--at", AT, "--json"]) == 1
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and [f["code"] for f in doc["findings"]] == ["weak-key"]
    assert (
        main(
            [
                "cert",
                "lint",
                str(folder / "appliances/ca-signed.crt"),
                "--at",
                AT,
                "--name",
                "other.contoso.test",
            ]
        )
        == 1
    )
    assert "name-mismatch" in capsys.readouterr().out
    for bad in ("appliances/ca-signed.key", "crl", "missing.crt"):
        assert main(["cert", "lint", str(folder / bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mesh: ") and err.count("\n") == 1


def test_lint_over_a_folder_flags_a_copied_certificate_and_a_reused_key(tmp_path, key_pool, capsys):
    pki = Pki.build(
        at=parse_instant(AT),
        appliances=[parse_appliance(a) for a in ("sensor-1:sensor", "sensor-2:sensor", "cm:management-console")],
        keys=key_pool.cursor(),
    )
    pki.write(tmp_path / "dep")
    folder = tmp_path / "dep" / "appliances"
    assert main(["cert", "lint", str(folder), "--at", AT, "--json"]) == 0
    assert {r["ok"] for r in json.loads(capsys.readouterr().out)} == {True}

    # sensor-3 is a copy of sensor-1; sensor-4 a new certificate on sensor-2's key.
    (folder / "sensor-3.crt").write_bytes((folder / "sensor-1.crt").read_bytes())
    again = pki.issuing.issue(
        "sensor-4.contoso.test", not_before=parse_instant(AT), key=pki.appliances["sensor-2"].issued.key
    )
    files.save_certificate(folder / "sensor-4.crt", again.cert)
    assert main(["cert", "lint", str(folder), "--at", AT, "--json"]) == 1
    codes = {
        Path(r["file"]).name: [f["code"] for f in r["findings"]]
        for r in json.loads(capsys.readouterr().out)
    }
    assert codes == {
        "cm.crt": [],
        "sensor-1.crt": ["reused-certificate"],
        "sensor-2.crt": ["reused-key"],
        "sensor-3.crt": ["reused-certificate"],
        "sensor-4.crt": ["reused-key"],
    }
    main(["cert", "lint", str(folder), "--at", AT])
    out = capsys.readouterr().out
    assert f"{folder / 'sensor-1.crt'}: warning reused-certificate" in " ".join(out.split())
    assert f"the same certificate is in {folder / 'sensor-3.crt'}" in out


def test_convert_table(written, tmp_path, capsys):
    folder, pki = written
    cert = pki.appliances["ca-signed"].cert
    key = pki.appliances["ca-signed"].issued.key
    crt = str(folder / "appliances/ca-signed.crt")
    k = str(folder / "appliances/ca-signed.key")
    chain = str(folder / "appliances/ca-signed.pem")
    t = tmp_path

    # PEM -> DER -> PEM
    assert main(["cert", "convert", crt, str(t / "a.der")]) == 0
    assert (t / "a.der").read_bytes()[:1] == b"\x30"
    assert main(["cert", "convert", str(t / "a.der"), str(t / "a.pem")]) == 0
    assert (t / "a.pem").read_bytes() == (folder / "appliances/ca-signed.crt").read_bytes()
    # .pem -> .crt
    assert main(["cert", "convert", str(t / "a.pem"), str(t / "b.crt")]) == 0
    assert files.load_certificate(t / "b.crt") == cert

    # .crt + .key (+ chain) -> .pfx, with and without a passphrase
    for out_pw in ("export", None):
        pfx = t / f"a-{out_pw}.pfx"
        argv = [
            "cert",
            "convert",
            crt,
            str(pfx),
            "--key",
            k,
            "--chain",
            chain,
            "--passphrase",
            "pw",
        ]
        if out_pw:
            argv += ["--out-passphrase", out_pw]
        assert main(argv) == 0
        assert stat.S_IMODE(pfx.stat().st_mode) == 0o600
        bundle = files.load_pkcs12(pfx, out_pw)
        assert bundle.cert == cert and bundle.chain == (*pki.appliances["ca-signed"].chain, pki.root.cert)
        # .pfx -> .key -> same key; .pfx -> .pem like `openssl pkcs12 -nodes`
        pw_args = ["--passphrase", out_pw] if out_pw else []
        assert main(["cert", "convert", str(pfx), str(t / "b.key"), *pw_args]) == 0
        assert files.load_key(t / "b.key").private_numbers() == key.private_numbers()
        assert stat.S_IMODE((t / "b.key").stat().st_mode) == 0o600
        assert main(["cert", "convert", str(pfx), str(t / "all.pem"), *pw_args]) == 0
        assert files.load_certificates(t / "all.pem")[0] == cert
        assert files.load_key(t / "all.pem").private_numbers() == key.private_numbers()
        assert main(["cert", "convert", str(pfx), str(t / "certs.pem"), "--nokeys", *pw_args]) == 0
        assert b"PRIVATE KEY" not in (t / "certs.pem").read_bytes()
        assert main(["cert", "convert", str(pfx), str(t / "only.pem"), "--nocerts", *pw_args]) == 0
        assert b"CERTIFICATE" not in (t / "only.pem").read_bytes()
        assert main(["cert", "convert", str(pfx), str(t / "c.crt"), *pw_args]) == 0
        assert files.load_certificates(t / "c.crt") == [cert]
    capsys.readouterr()

    # errors: wrong passphrase, mismatched key, unknown extension
    assert (
        main(["cert", "convert", str(t / "a-export.pfx"), str(t / "x.key"), "--passphrase", "nope"])
        == 2
    )
    assert "Passphrase does not match to the key" in capsys.readouterr().err
    mismatch_key = str(folder / "appliances/key-mismatch.key")
    mismatch_crt = str(folder / "appliances/key-mismatch.crt")
    assert (
        main(
            [
                "cert",
                "convert",
                mismatch_crt,
                str(t / "m.pfx"),
                "--key",
                mismatch_key,
                "--passphrase",
                "pw",
            ]
        )
        == 2
    )
    assert "does not belong" in capsys.readouterr().err
    assert main(["cert", "convert", crt, str(t / "a.txt")]) == 2
    assert "--to" in capsys.readouterr().err


def test_mesh_runs_as_a_process(tmp_path):
    folder = tmp_path / "pki"
    done = subprocess.run(
        [sys.executable, "-m", "mesh", "pki", "init", str(folder), "-a", "s1", "--at", AT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "mesh", "cert", "lint", str(folder / "nope.crt")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("mesh: ")


# -- passphrases from a file, the environment or a prompt, not only the command line --


def _init_with(tmp_path, *extra: str) -> dict:
    folder = tmp_path / "pki"
    assert main(["pki", "init", str(folder), "--appliance", "s1:sensor", *extra]) == 0
    return json.loads((folder / "pki.json").read_text())


def test_init_reads_the_passphrase_from_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MESH_PASSPHRASE", raising=False)
    secret = tmp_path / "secret.txt"
    secret.write_text("Kq7 from a file\n")
    manifest = _init_with(tmp_path, "--passphrase-file", str(secret))
    assert manifest["appliances"]["s1"]["encrypted"] is True
    key = files.load_key(tmp_path / "pki" / manifest["appliances"]["s1"]["key"], "Kq7 from a file")
    assert key.key_size == 2048


def test_init_reads_the_passphrase_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MESH_PASSPHRASE", "Kq7 from the environment")
    manifest = _init_with(tmp_path)
    key = files.load_key(tmp_path / "pki" / manifest["appliances"]["s1"]["key"],
                         "Kq7 from the environment")
    assert key.key_size == 2048


def test_a_prompt_without_a_terminal_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["pki", "init", str(tmp_path / "pki"), "--appliance", "s1:sensor",
                 "--passphrase-prompt"]) == 2
    assert capsys.readouterr().err == (
        "mesh: --passphrase-prompt: needs a terminal to ask on; "
        "use --passphrase-file FILE or the MESH_PASSPHRASE variable\n")


def test_convert_reads_both_passphrases_from_files_or_the_environment(
        written, tmp_path, capsys, monkeypatch):
    folder, pki = written
    entry = json.loads((folder / "pki.json").read_text())["appliances"]["ca-signed"]
    secret = tmp_path / "in.txt"
    secret.write_text(pki.appliances["ca-signed"].passphrase + "\n")
    monkeypatch.setenv("MESH_OUT_PASSPHRASE", "Zx9 out")
    out = tmp_path / "re.key"
    assert main(["cert", "convert", str(folder / entry["key"]), str(out),
                 "--passphrase-file", str(secret)]) == 0
    assert files.load_key(out, "Zx9 out").key_size == 2048


def _init_pki(folder, at="2027-01-15T09:00:00Z"):
    assert main(["pki", "init", str(folder), "--intermediate", "-a", "sensor-1",
                 "--at", at, "--crl-base-url", "http://127.0.0.1:8080/crl"]) == 0


def _issuing_crl(folder):
    manifest = read_manifest(folder)
    return files.load_crl(folder / manifest["crls"]["http://127.0.0.1:8080/crl/contoso-issuing-ca.crl"])


def test_revoke_dates_the_revocation_now_unless_told(tmp_path, capsys):
    """A PKI made a month ago: the new CRL is dated now, so it is current for
    its whole validity instead of already stale (``--at`` chooses)."""
    import datetime as dt

    folder = tmp_path / "pki"
    made = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    _init_pki(folder, made.isoformat())
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    assert main(["pki", "revoke", str(folder), "sensor-1"]) == 0
    crl = _issuing_crl(folder)
    assert crl.last_update_utc >= before
    serial = files.load_certificate(folder / "appliances/sensor-1.crt").serial_number
    assert f"serial {serial:X}" in capsys.readouterr().out  # openssl x509 -serial's format
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None and entry.revocation_date_utc >= before


def test_issue_writes_a_replacement_certificate(tmp_path, capsys):
    folder = tmp_path / "pki"
    _init_pki(folder)
    old = files.load_certificate(folder / "appliances/sensor-1.crt")
    assert main(["pki", "issue", str(folder), "sensor-1", "--at", "2027-02-01T00:00:00Z"]) == 0
    new = files.load_certificate(folder / "appliances/sensor-1.crt")
    assert new.serial_number != old.serial_number
    assert new.public_key() != old.public_key()
    assert str(new.not_valid_before_utc.date()) == "2027-02-01"
    assert f"serial {new.serial_number:X}" in capsys.readouterr().out
    assert main(["pki", "issue", str(folder), "sensor-1", "--fault", "expired"]) == 0
    expired = files.load_certificate(folder / "appliances/sensor-1.crt")
    assert expired.not_valid_after_utc < expired.not_valid_before_utc.replace(year=2100)
    assert read_manifest(folder)["appliances"]["sensor-1"]["fault"] == "expired"


def test_crl_renew_dates_every_crl_now(tmp_path, capsys):
    import datetime as dt

    folder = tmp_path / "pki"
    _init_pki(folder, "2027-01-15T09:00:00Z")
    number = _issuing_crl(folder).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert main(["pki", "crl", str(folder), "--renew", "--at", "2027-03-01T00:00:00Z"]) == 0
    crl = _issuing_crl(folder)
    assert crl.last_update_utc == dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
    assert "renewed 2 CRLs" in capsys.readouterr().out
    assert main(["pki", "crl", str(folder)]) == 2  # nothing asked


def test_a_certificate_file_never_receives_key_material(written, tmp_path):
    """``mesh cert convert keyStore.pem out.crt``: a keystore (key + certificate)
    into a .crt writes the certificate only; the key goes out only to a .key,
    a .pem or a .pfx, where it is asked for."""
    folder, pki = written
    keystore = tmp_path / "keyStore.pem"
    keystore.write_bytes(
        (folder / "appliances/ca-signed.key").read_bytes()
        + (folder / "appliances/ca-signed.crt").read_bytes()
    )
    for name in ("out.crt", "out.cer"):
        assert main(["cert", "convert", str(keystore), str(tmp_path / name), "--passphrase", "pw"]) == 0
        written_bytes = (tmp_path / name).read_bytes()
        assert b"PRIVATE KEY" not in written_bytes
        assert files.load_certificate(tmp_path / name) == pki.appliances["ca-signed"].cert
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
