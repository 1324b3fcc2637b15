import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from mesh.errors import Severity
from mesh.pki.faults import RECIPES
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.issue import CertificateAuthority
from mesh.pki.lint import CODES, broken, lint, name_matches


@pytest.fixture(scope="module")
def faulty(key_pool):
    at = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
    return at, Pki.build(
        at=at,
        appliances=[ApplianceRequest(name=f"a-{n}", fault=n) for n in RECIPES],
        keys=key_pool.cursor(),
    )


EXPECTED = {
    "expired": ["expired"],
    "not-yet-valid": ["not-yet-valid"],
    "no-cdp": ["no-cdp"],
    "weak-key": ["weak-key"],
    "sha1": ["weak-signature"],
    "missing-subject-fields": ["no-country", "no-organization", "no-org-unit"],
}


@pytest.mark.parametrize("fault", list(RECIPES))
def test_each_recipe_lints_as_expected(faulty, fault):
    at, pki = faulty
    m = pki.appliances[f"a-{fault}"]
    findings = lint(m.cert, at=at, expected_name=m.common_name)
    assert [f.code for f in findings] == EXPECTED.get(fault, [])
    assert broken(findings) is (fault in EXPECTED)
    for f in findings:
        assert f.severity is CODES[f.code]
        assert f.advice and "\n" not in f.advice
        assert set(f.to_json()) == {"code", "severity", "message", "advice"}


def test_validity_boundaries(faulty):
    at, pki = faulty
    cert = pki.appliances["a-ca-signed"].cert
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    second = dt.timedelta(seconds=1)
    assert [f.code for f in lint(cert, at=start - second)] == ["not-yet-valid"]
    assert lint(cert, at=start) == []
    assert lint(cert, at=end) == []
    assert [f.code for f in lint(cert, at=end + second)] == ["expired"]


def test_name_mismatch_and_wildcards(faulty):
    at, pki = faulty
    cert = pki.appliances["a-ca-signed"].cert
    codes = [f.code for f in lint(cert, at=at, expected_name="console.contoso.test")]
    assert codes == ["name-mismatch"]
    assert name_matches("*.contoso.com", "Sensor.contoso.com")
    assert not name_matches("*.contoso.com", "a.b.contoso.com")
    assert not name_matches("*.contoso.com", "contoso.com")


def test_other_shapes(keys, epoch):
    root = CertificateAuthority.root(
        "Root", not_before=epoch, key=keys(2048), crl_base_url="https://x/crl"
    )
    big = root.issue("big.contoso.test", not_before=epoch, key=keys(4096))
    findings = lint(big.cert, at=epoch)
    assert [(f.code, f.severity) for f in findings] == [
        ("cdp-not-http", Severity.ERROR),
        ("large-key", Severity.NOTE),
    ]
    odd = root.issue(
        "not a domain",
        not_before=epoch,
        key=keys(2048),
        cdp_url=None,
        san=False,
        hash_algorithm=hashes.SHA384(),
    )
    codes = {f.code for f in lint(odd.cert, at=epoch)}
    assert codes == {"signature-algorithm", "no-cdp", "cn-not-domain"}


def test_ec_key_and_only_notes_are_not_broken(keys, epoch):
    root = CertificateAuthority.root("Root", not_before=epoch, key=keys(2048))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "e.test")]))
        .issuer_name(root.cert.subject)
        .public_key(ec_key.public_key())
        .serial_number(1)
        .not_valid_before(epoch)
        .not_valid_after(epoch + dt.timedelta(days=1))
    )
    cert = builder.sign(root.key, hashes.SHA256())
    assert "key-not-rsa" in {f.code for f in lint(cert, at=epoch)}
    assert not broken([f for f in lint(cert, at=epoch) if f.severity is Severity.NOTE])


def test_a_root_is_linted_as_a_ca(faulty):
    """A root names no domain and publishes no CRL of its own issuer: no
    CN-is-domain or CDP demand on it; an intermediate still needs a CDP."""
    at, pki = faulty
    root = lint(pki.root.cert, at=at)
    assert [f.code for f in root] == []
    issuing = lint(pki.issuing.cert, at=at)
    assert "cn-not-domain" not in [f.code for f in issuing]


def test_without_validation_a_missing_cdp_is_not_a_warning(faulty):
    at, pki = faulty
    cert = pki.appliances["a-no-cdp"].cert
    assert "no-cdp" in [f.code for f in lint(cert, at=at)]
    assert [f.code for f in lint(cert, at=at, validation=False)] == []


def test_the_cli_lints_every_certificate_of_a_chain_file(faulty, tmp_path, capsys):
    from mesh.cli import main
    from mesh.pki import files

    at, pki = faulty
    chain = tmp_path / "chain.pem"
    files.save_chain(chain, [pki.appliances["a-ca-signed"].cert, pki.issuing.cert, pki.root.cert])
    assert main(["cert", "lint", str(chain), "--at", at.isoformat(), "--name",
                 "a-ca-signed.contoso.test"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all("meets the certificate requirements" in line for line in out)
    assert out[1].startswith(f"{chain} [2: CN=Contoso Issuing CA")
