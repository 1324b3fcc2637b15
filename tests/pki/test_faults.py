
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mesh.errors import FailureCode, InputError
from mesh.pki.faults import RECIPES, recipe, resign_sha1, unreachable_url, wrong_passphrase_for
from mesh.pki.deployment import ApplianceRequest, Pki


def test_every_issue_fault_has_a_recipe():
    names = {
        "ca-signed",
        "expired",
        "not-yet-valid",
        "revoked",
        "untrusted",
        "self-signed",
        "missing-intermediate",
        "no-cdp",
        "crl-unreachable",
        "weak-key",
        "sha1",
        "missing-subject-fields",
        "key-mismatch",
        "wrong-passphrase",
        "expired-intermediate",
        "revoked-intermediate",
    }
    assert set(RECIPES) == names


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(InputError) as info:
        recipe("expird", where="--appliance s1")
    assert "expird" in info.value.line()
    assert "not-yet-valid" in info.value.fix
    assert info.value.where == "--appliance s1"


def test_recipe_codes():
    assert recipe("ca-signed").healthy and recipe("ca-signed").expected is None
    assert recipe("revoked-intermediate").expected is FailureCode.REVOKED
    assert recipe("wrong-passphrase").expected is FailureCode.PASSPHRASE_MISMATCH
    assert recipe("untrusted").expected is FailureCode.CHAIN_UNTRUSTED


def test_unreachable_url_keeps_the_path():
    assert unreachable_url("http://10.0.0.1:8080/crl/x.crl") == "http://127.0.0.1:1/crl/x.crl"
    assert wrong_passphrase_for("p") != "p"


@pytest.fixture
def pki(keys, epoch):
    return Pki.build(
        at=epoch,
        appliances=[ApplianceRequest(name=f"a-{n}", fault=n) for n in RECIPES],
        crl_base_url="http://127.0.0.1:8080/crl",
        keys=keys,
    )


def _m(pki, fault):
    return pki.appliances[f"a-{fault}"]


def test_dates(pki, epoch):
    ok = _m(pki, "ca-signed").cert
    assert ok.not_valid_before_utc <= epoch < ok.not_valid_after_utc
    assert _m(pki, "expired").cert.not_valid_after_utc < epoch
    assert _m(pki, "not-yet-valid").cert.not_valid_before_utc > epoch
    expired_ca = pki.authorities["expired-intermediate"].cert
    assert expired_ca.not_valid_after_utc < epoch
    assert _m(pki, "expired-intermediate").issued.chain == (expired_ca,)
    for ca in pki.authorities.values():
        if ca is not pki.authorities["expired-intermediate"]:
            assert ca.cert.not_valid_before_utc <= _m(pki, "expired").cert.not_valid_before_utc


def test_crypto_faults(pki):
    assert _m(pki, "weak-key").cert.public_key().key_size == 1024
    sha1 = _m(pki, "sha1").cert
    assert isinstance(sha1.signature_hash_algorithm, hashes.SHA1)
    _verify_sha1(sha1, pki.issuing.cert)
    assert _m(pki, "ca-signed").cert.public_key().key_size == 2048


def test_cdp_faults(pki):
    def cdp(fault):
        try:
            ext = _m(pki, fault).cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        except x509.ExtensionNotFound:
            return None
        return ext.value[0].full_name[0].value

    assert cdp("ca-signed") == "http://127.0.0.1:8080/crl/contoso-issuing-ca.crl"
    assert cdp("no-cdp") is None
    assert cdp("crl-unreachable") == "http://127.0.0.1:1/crl/contoso-issuing-ca.crl"


def test_trust_and_chain_faults(pki):
    assert pki.trust_roots() == [pki.root.cert]
    untrusted = _m(pki, "untrusted")
    assert untrusted.cert.issuer == pki.unrelated_root.cert.subject
    assert pki.unrelated_root.cert not in pki.trust_roots()
    self_signed = _m(pki, "self-signed")
    assert self_signed.cert.issuer == self_signed.cert.subject and self_signed.issuer is None
    assert _m(pki, "missing-intermediate").chain == ()
    assert _m(pki, "missing-intermediate").issued.chain == (pki.intermediate.cert,)
    assert _m(pki, "ca-signed").chain == (pki.intermediate.cert,)


def test_file_faults(pki):
    mismatch = _m(pki, "key-mismatch")
    assert mismatch.key_file_key.public_key() != mismatch.cert.public_key()
    wrong = _m(pki, "wrong-passphrase")
    assert wrong.passphrase and wrong.key_passphrase and wrong.passphrase != wrong.key_passphrase
    fields = _m(pki, "missing-subject-fields").cert.subject
    assert len(fields) == 1 and fields.get_attributes_for_oid(x509.NameOID.COMMON_NAME)


def test_revocation_faults(pki):
    crls = pki.crls()
    issuing = crls[pki.issuing.crl_url]
    assert issuing.get_revoked_certificate_by_serial_number(_m(pki, "revoked").serial)
    assert not issuing.get_revoked_certificate_by_serial_number(_m(pki, "ca-signed").serial)
    revoked_ca = pki.authorities["revoked-intermediate"]
    root_crl = crls[pki.root.crl_url]
    assert root_crl.get_revoked_certificate_by_serial_number(revoked_ca.cert.serial_number)
    assert not root_crl.get_revoked_certificate_by_serial_number(
        pki.intermediate.cert.serial_number
    )


def test_resign_sha1_keeps_everything_else(keys, epoch):
    pki = Pki.build(at=epoch, intermediate=None, appliances=[ApplianceRequest(name="s")], keys=keys)
    cert = pki.appliances["s"].cert
    weak = resign_sha1(cert, pki.root.key)
    assert weak.subject == cert.subject and weak.serial_number == cert.serial_number
    assert list(weak.extensions) == list(cert.extensions)
    _verify_sha1(weak, pki.root.cert)


def _verify_sha1(cert, issuer):
    # cryptography will not verify SHA-1 certificate signatures; check the raw one.
    issuer.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1()
    )
