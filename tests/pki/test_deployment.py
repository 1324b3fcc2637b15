import datetime as dt
import json
import stat

import pytest
from cryptography import x509

from mesh.errors import InputError
from mesh.pki import files
from mesh.pki.deployment import ApplianceRequest, Pki
from mesh.pki.manifest import read_manifest


def _number(crl):
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


@pytest.fixture
def pki(keys, epoch):
    return Pki.build(
        at=epoch,
        appliances=[
            ApplianceRequest(name="sensor-1"),
            ApplianceRequest(name="console", role="management-console"),
            ApplianceRequest(name="sensor-2", fault="wrong-passphrase"),
        ],
        crl_base_url="http://127.0.0.1:8080/crl",
        passphrase="s3cret",
        keys=keys,
    )


def test_leaf_names_and_unique_keys(pki):
    m = pki.appliances["sensor-1"]
    assert m.common_name == "sensor-1.contoso.test"
    assert m.role == "sensor" and pki.appliances["console"].role == "management-console"
    numbers = {a.issued.key.private_numbers().p for a in pki.appliances.values()}
    assert len(numbers) == 3
    assert len({a.serial for a in pki.appliances.values()}) == 3


def test_crls_are_stable_until_something_changes(pki, epoch):
    first = pki.crls()
    again = pki.crls()
    url = pki.issuing.crl_url
    assert _number(again[url]) == _number(first[url])
    pki.revoke("sensor-1", at=epoch + dt.timedelta(hours=1))
    after = pki.crls()
    assert _number(after[url]) > _number(first[url])
    assert after[url].get_revoked_certificate_by_serial_number(pki.appliances["sensor-1"].serial)
    assert after[url].is_signature_valid(pki.issuing.key.public_key())
    docs = pki.crl_documents()
    assert set(docs) == {"/crl/contoso-root-ca.crl", "/crl/contoso-issuing-ca.crl"}


def test_reissue_replaces_material(pki):
    old = pki.appliances["sensor-1"]
    new = pki.reissue("sensor-1", "expired")
    assert new.serial != old.serial and pki.appliances["sensor-1"] is new
    assert new.fault == "expired"
    with pytest.raises(InputError):
        pki.reissue("nobody")


def _dns_names(cert):
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize("fault", ["ca-signed", "self-signed", "untrusted", "expired"])
def test_more_dns_names_go_into_the_san_beside_the_common_name_and_survive_a_reissue(
        keys, epoch, fault):
    pki = Pki.build(at=epoch, keys=keys, appliances=[
        ApplianceRequest(name="cm.contoso.test", role="management-console", fault=fault,
                         dns_names=("cm-contoso-test", "cm-contoso-test.mesh.svc")),
        ApplianceRequest(name="sensor-1"),
    ])
    names = ["cm.contoso.test", "cm-contoso-test", "cm-contoso-test.mesh.svc"]
    assert _dns_names(pki.appliances["cm.contoso.test"].cert) == names
    assert _dns_names(pki.reissue("cm.contoso.test", "expired").cert) == names
    assert _dns_names(pki.appliances["sensor-1"].cert) == ["sensor-1.contoso.test"]


def test_write_and_load(pki, tmp_path):
    pki.revoke("console")
    manifest_path = pki.write(tmp_path)
    manifest = read_manifest(tmp_path)
    assert manifest["root"] == "ca/contoso-root-ca.crt"
    assert manifest["intermediates"] == ["ca/contoso-issuing-ca.crt"]
    assert set(manifest["crls"]) == {
        "http://127.0.0.1:8080/crl/contoso-root-ca.crl",
        "http://127.0.0.1:8080/crl/contoso-issuing-ca.crl",
    }
    entry = manifest["appliances"]["sensor-1"]
    assert {k: entry[k] for k in ("role", "fault", "crt", "key", "chain", "encrypted")} == {
        "role": "sensor",
        "fault": "ca-signed",
        "crt": "appliances/sensor-1.crt",
        "key": "appliances/sensor-1.key",
        "chain": "appliances/sensor-1.pem",
        "encrypted": True,
    }
    assert "s3cret" not in manifest_path.read_text()
    for path in [manifest_path, *tmp_path.glob("**/*.key")]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    key = files.load_key(tmp_path / entry["key"], "s3cret")
    assert key.public_key() == pki.appliances["sensor-1"].cert.public_key()

    with pytest.raises(InputError) as info:
        Pki.load(tmp_path)  # the keys are encrypted: the passphrase is needed
    assert "encrypted with the PKI's passphrase" in info.value.line()
    loaded = Pki.load(tmp_path, passphrase="s3cret")
    assert loaded.at == pki.at
    assert loaded.trust_roots() == pki.trust_roots()
    assert loaded.appliances["sensor-2"].passphrase == "s3cret"
    assert loaded.appliances["sensor-2"].key_passphrase != "s3cret"
    url = pki.issuing.crl_url
    before = loaded.crls()[url]
    assert _number(before) == _number(pki.crls()[url])
    assert before.get_revoked_certificate_by_serial_number(pki.appliances["console"].serial)
    loaded.revoke("sensor-1")
    after = loaded.crls()[url]
    assert _number(after) == _number(before) + 1
    assert after.get_revoked_certificate_by_serial_number(pki.appliances["console"].serial)


def test_the_chain_file_holds_every_ca_up_to_the_root(keys, epoch, tmp_path):
    """The source document's .pem: "the certificates of all the certificate
    authorities in the chain of trust", the root included."""
    from mesh.pki import files

    pki = Pki.build(at=epoch, intermediate=None, appliances=[ApplianceRequest(name="s")], keys=keys)
    pki.write(tmp_path)
    entry = read_manifest(tmp_path)["appliances"]["s"]
    assert files.load_certificates(tmp_path / entry["chain"]) == [pki.root.cert]
    assert pki.appliances["s"].issuer == "Contoso Root CA"
    deep = Pki.build(at=epoch, appliances=[ApplianceRequest(name="t")], keys=keys)
    deep.write(tmp_path / "deep")
    entry = read_manifest(tmp_path / "deep")["appliances"]["t"]
    assert files.load_certificates(tmp_path / "deep" / entry["chain"]) == [
        deep.issuing.cert, deep.root.cert]


def test_a_cross_signed_root_travels_in_chains_and_in_the_folder(keys, epoch, tmp_path):
    pki = Pki.build(
        at=epoch,
        root="Contoso Root CA G2",
        cross_signed_by="Contoso Root CA",
        appliances=[ApplianceRequest(name="s"), ApplianceRequest(name="u", fault="untrusted")],
        keys=keys,
    )
    chain = pki.appliances["s"].chain
    assert chain[-2:] == (pki.root.cert, pki.cross)
    assert pki.cross.subject == pki.root.cert.subject
    assert pki.cross.issuer == pki.authority("Contoso Root CA").cert.subject
    assert pki.cross.public_key() == pki.root.cert.public_key()
    assert pki.appliances["u"].chain[-2:] != (pki.root.cert, pki.cross)  # another root's chain
    assert [c.subject for c in pki.trust_for(["Contoso Root CA"])] == [pki.cross.issuer]
    pki.write(tmp_path)
    again = Pki.load(tmp_path, keys=keys)
    assert again.cross == pki.cross
    assert again.appliances["s"].chain == chain
    with pytest.raises(InputError) as info:
        pki.trust_for(["Nobody"])
    assert info.value.where == "trust 'Nobody'"


def test_missing_intermediate_without_intermediate_gets_one(keys, epoch):
    pki = Pki.build(
        at=epoch,
        intermediate=None,
        appliances=[ApplianceRequest(name="s", fault="missing-intermediate")],
        keys=keys,
    )
    m = pki.appliances["s"]
    assert m.chain == () and len(m.issued.chain) == 1
    assert m.cert.issuer != pki.root.cert.subject


@pytest.mark.parametrize(
    "request_, word",
    [
        (ApplianceRequest(name="../etc"), "not a usable appliance name"),
        (ApplianceRequest(name="s", fault="bogus"), "unknown certificate fault"),
    ],
)
def test_bad_requests(keys, epoch, request_, word):
    with pytest.raises(InputError) as info:
        Pki.build(at=epoch, appliances=[request_], keys=keys)
    assert word in info.value.problem


def test_duplicate_names_and_bad_url(keys, epoch):
    with pytest.raises(InputError) as info:
        Pki.build(
            at=epoch, appliances=[ApplianceRequest(name="s"), ApplianceRequest(name="s")], keys=keys
        )
    assert "twice" in info.value.problem
    with pytest.raises(InputError) as info:
        Pki.build(at=epoch, crl_base_url="ftp://x/crl", keys=keys)
    assert info.value.where == "CRL base URL"


def test_read_manifest_errors(tmp_path):
    with pytest.raises(InputError) as info:
        read_manifest(tmp_path)
    assert "no such" in info.value.problem
    (tmp_path / "pki.json").write_text("{not json")
    with pytest.raises(InputError) as info:
        read_manifest(tmp_path)
    assert "not valid JSON" in info.value.problem
    (tmp_path / "pki.json").write_text(json.dumps({"root": "x"}))
    with pytest.raises(InputError) as info:
        read_manifest(tmp_path)
    assert "intermediates" in info.value.problem


def test_write_keeps_the_last_crl_and_never_backdates_a_revocation(pki, epoch, tmp_path):
    later = epoch + dt.timedelta(days=3)
    url = pki.issuing.crl_url
    served = pki.crls(at=later)[url]
    assert pki.published_crls()[url] is served
    pki.revoke("sensor-1", at=later + dt.timedelta(hours=1))
    pki.write(tmp_path)
    written = files.load_crl(tmp_path / "crl/contoso-issuing-ca.crl")
    assert written.last_update_utc == later + dt.timedelta(hours=1)
    assert _number(written) == _number(served) + 1
    assert written.get_revoked_certificate_by_serial_number(pki.appliances["sensor-1"].serial)
