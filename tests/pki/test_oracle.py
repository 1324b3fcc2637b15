"""The openssl CLI (Debian's OpenSSL 3.0) as the independent judge of the factory."""

import datetime as dt
import json
import re
import shutil
import subprocess

import pytest

from mesh.cli import main
from mesh.pki import files
from mesh.pki.faults import RECIPES
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.issue import slug

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


def openssl(*args, check=False):
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module", params=["intermediate", "root-only"])
def deployment(request, tmp_path_factory, key_pool):
    folder = tmp_path_factory.mktemp(request.param)
    at = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
    pki = Pki.build(
        at=at,
        intermediate="Contoso Issuing CA" if request.param == "intermediate" else None,
        appliances=[ApplianceRequest(name=n, fault=n) for n in RECIPES],
        crl_base_url="http://127.0.0.1:8080/crl",
        passphrase="pw",
        keys=key_pool.cursor(),
    )
    pki.write(folder)
    return folder, pki, int(at.timestamp())


def _verify(folder, pki, name, attime, *extra):
    m = pki.appliances[name]
    args = [
        "verify",
        "-CAfile",
        folder / "ca/contoso-root-ca.crt",
        "-crl_check_all",
        "-attime",
        attime,
        *extra,
    ]
    if m.chain:
        args += ["-untrusted", folder / f"appliances/{name}.pem"]
    for path in sorted((folder / "crl").glob("*.crl")):
        args += ["-CRLfile", path]
    done = openssl(*args, folder / f"appliances/{name}.crt")
    found = re.search(r"error (\d+) at (\d+) depth", done.stdout + done.stderr)
    if done.returncode == 0:
        assert found is None
        return None
    assert found, done.stdout + done.stderr
    return int(found.group(1))


@pytest.mark.parametrize("name", list(RECIPES))
def test_verify_sees_exactly_what_a_verifier_can(deployment, name):
    folder, pki, attime = deployment
    recipe = RECIPES[name]
    assert _verify(folder, pki, name, attime) == recipe.openssl_error
    strict = _verify(folder, pki, name, attime, "-auth_level", "2")
    assert strict == recipe.openssl_strict_error


def test_keys_pass_rsa_check_and_file_faults_show(deployment):
    folder, pki, _ = deployment
    for name, m in pki.appliances.items():
        key = folder / f"appliances/{name}.key"
        done = openssl("rsa", "-in", key, "-check", "-noout", "-passin", f"pass:{m.key_passphrase}")
        assert "RSA key ok" in done.stdout, (name, done.stderr)
        recorded = openssl("rsa", "-in", key, "-check", "-noout", "-passin", f"pass:{m.passphrase}")
        assert (recorded.returncode == 0) is (name != "wrong-passphrase"), name
        cert_mod = openssl(
            "x509", "-in", folder / f"appliances/{name}.crt", "-noout", "-modulus", check=True
        ).stdout
        key_mod = openssl(
            "rsa",
            "-in",
            key,
            "-noout",
            "-modulus",
            "-passin",
            f"pass:{m.key_passphrase}",
            check=True,
        ).stdout
        assert (cert_mod == key_mod) is (name != "key-mismatch"), name


def test_x509_text_shows_required_fields(deployment):
    folder, pki, _ = deployment
    text = openssl(
        "x509", "-in", folder / "appliances/ca-signed.crt", "-text", "-noout", check=True
    ).stdout
    for needle in (
        "Signature Algorithm: sha256WithRSAEncryption",
        "Public-Key: (2048 bit)",
        "Subject: C = US, O = Contoso Inc., OU = Contoso Labs, CN = ca-signed.contoso.test",
        "X509v3 CRL Distribution Points",
        "URI:http://127.0.0.1:8080/crl/",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "DNS:ca-signed.contoso.test",
    ):
        assert needle in text, needle
    weak = openssl(
        "x509", "-in", folder / "appliances/sha1.crt", "-text", "-noout", check=True
    ).stdout
    assert "Signature Algorithm: sha1WithRSAEncryption" in weak


def test_openssl_reads_every_crl(deployment):
    folder, pki, _ = deployment
    crls = json.loads((folder / "pki.json").read_text())["crls"]
    assert set(crls) == {ca.crl_url for ca in pki.authorities.values()}
    for ca in pki.authorities.values():
        path = folder / crls[ca.crl_url]
        text = openssl("crl", "-inform", "DER", "-in", path, "-text", "-noout", check=True).stdout
        assert "X509v3 CRL Number" in text and "Next Update" in text
        issuer = folder / f"ca/{slug(ca.name)}.crt"
        check = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", issuer, "-noout")
        assert "verify OK" in check.stdout + check.stderr, ca.name


def test_revoke_command_is_seen_by_openssl(tmp_path, capsys):
    folder = tmp_path / "pki"
    assert (
        main(
            [
                "pki",
                "init",
                str(folder),
                "--intermediate",
                "-a",
                "s1",
                "-a",
                "s2",
                "--at",
                "2027-01-15T09:00:00Z",
            ]
        )
        == 0
    )
    pki = Pki.load(folder)
    attime = int(pki.at.timestamp())
    assert _verify(folder, pki, "s1", attime) is None
    assert main(["pki", "revoke", str(folder), "s1", "--at", "2027-01-15T09:00:00Z"]) == 0
    assert _verify(folder, pki, "s1", attime) == 23
    assert _verify(folder, pki, "s2", attime) is None


def test_pkcs12_both_ways(deployment, tmp_path):
    folder, pki, _ = deployment
    m = pki.appliances["ca-signed"]
    ours = files.save_pkcs12(
        tmp_path / "ours.pfx", key=m.issued.key, cert=m.cert, chain=m.chain, passphrase="x"
    )
    out = openssl("pkcs12", "-in", ours, "-nodes", "-passin", "pass:x", check=True).stdout
    (tmp_path / "openssl.pem").write_text(out)
    assert "Bag Attributes" in out
    # What `openssl pkcs12 -nodes` writes reads back: certificates (bag attributes and all) and the key.
    assert files.load_certificates(tmp_path / "openssl.pem")[0] == m.cert
    assert (
        files.load_key(tmp_path / "openssl.pem").private_numbers() == m.issued.key.private_numbers()
    )
    # And a PKCS#12 openssl made reads here.
    key = folder / "appliances/ca-signed.key"
    theirs = tmp_path / "theirs.pfx"
    openssl(
        "pkcs12",
        "-export",
        "-in",
        folder / "appliances/ca-signed.crt",
        "-inkey",
        key,
        "-passin",
        "pass:pw",
        "-out",
        theirs,
        "-passout",
        "pass:y",
        check=True,
    )
    bundle = files.load_pkcs12(theirs, "y")
    assert bundle.cert == m.cert
    assert bundle.key.private_numbers() == m.issued.key.private_numbers()
    der = tmp_path / "a.der"
    openssl(
        "x509",
        "-in",
        folder / "appliances/ca-signed.crt",
        "-outform",
        "DER",
        "-out",
        der,
        check=True,
    )
    assert files.load_certificate(der) == m.cert
    rsa_pem = tmp_path / "trad.key"
    openssl("rsa", "-in", key, "-passin", "pass:pw", "-traditional", "-out", rsa_pem, check=True)
    assert files.load_key(rsa_pem).private_numbers() == m.issued.key.private_numbers()


def test_trusted_certificate_form_reads(deployment, tmp_path):
    folder, pki, _ = deployment
    out = tmp_path / "trusted.pem"
    openssl(
        "x509",
        "-in",
        folder / "appliances/ca-signed.crt",
        "-trustout",
        "-addtrust",
        "serverAuth",
        "-out",
        out,
        check=True,
    )
    assert b"BEGIN TRUSTED CERTIFICATE" in out.read_bytes()
    assert files.load_certificate(out) == pki.appliances["ca-signed"].cert


def test_rsa_4096_on_request(tmp_path, key_pool, epoch):
    pki = Pki.build(
        at=epoch, appliances=[ApplianceRequest(name="big")], key_size=4096, keys=key_pool.cursor()
    )
    pki.write(tmp_path)
    text = openssl("x509", "-in", tmp_path / "appliances/big.crt", "-text", "-noout", check=True)
    assert "Public-Key: (4096 bit)" in text.stdout
    done = openssl("rsa", "-in", tmp_path / "appliances/big.key", "-check", "-noout", check=True)
    assert "RSA key ok" in done.stdout
    assert _verify(tmp_path, pki, "big", int(epoch.timestamp())) is None
