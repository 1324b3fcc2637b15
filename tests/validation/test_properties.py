"""Property tests: whatever bytes arrive, the core answers with our own errors.

Random bytes and mangled DER/PEM as a CRL must be ``ValidationFailed
(crl_invalid)`` or a usable CrlIndex; a mangled certificate that still parses
must give a verdict (findings), never an exception from a library.
"""

from __future__ import annotations

import datetime as dt
import functools
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.errors import FailureCode, ValidationFailed
from mesh.pki.keys import KeyPool
from mesh.validation import CrlIndex, ValidationPolicy, crl_lookup, crl_urls, validate_peer
from pkilab import Lab

EPOCH = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
#: cryptography warns (rather than fails) on some non-conformant fields, e.g.
#: a country name of the wrong length or a non-positive serial. Such a
#: certificate is still judged, as OpenSSL would; the warnings are not ours.
TOLERATED = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
]
pytestmark = TOLERATED

SETTINGS = settings(
    max_examples=int(os.environ.get("MESH_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@functools.lru_cache(maxsize=1)
def sample():
    lab = Lab.make(KeyPool().cursor(), EPOCH)
    leaf = lab.leaf()
    lab.inter.revoke(leaf.serial, at=EPOCH)
    crl = lab.inter.crl(this_update=EPOCH)
    return lab, leaf, crl


def mangled(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` truncated, bit-flipped, spliced with noise, or PEM-body damaged."""
    n = len(data)
    index = st.integers(0, n - 1)
    return st.one_of(
        index.map(lambda i: data[:i]),
        st.tuples(index, st.integers(0, 7)).map(
            lambda t: data[: t[0]] + bytes([data[t[0]] ^ (1 << t[1])]) + data[t[0] + 1 :]
        ),
        st.tuples(index, st.binary(min_size=1, max_size=64)).map(
            lambda t: data[: t[0]] + t[1] + data[t[0] :]
        ),
        st.tuples(index, st.integers(1, 64)).map(lambda t: data[: t[0]] + data[t[0] + t[1] :]),
    )


def crl_inputs() -> st.SearchStrategy[bytes]:
    _, _, crl = sample()
    der = crl.public_bytes(serialization.Encoding.DER)
    pem = crl.public_bytes(serialization.Encoding.PEM)
    return st.one_of(st.binary(max_size=2048), mangled(der), mangled(pem))


@SETTINGS
@given(data=st.deferred(crl_inputs))
def test_crl_bytes_are_a_crl_or_crl_invalid(data):
    lab, leaf, _ = sample()
    try:
        index = CrlIndex.from_bytes(data, source="http://x/crl")
    except ValidationFailed as exc:
        assert exc.code is FailureCode.CRL_INVALID
        assert "http://x/crl" in exc.detail
        return
    # It parsed: using it in a check must still give a verdict, not an exception.
    good = lab.crls()
    lookup = lambda url: index if url == lab.inter.crl_url else good(url)  # noqa: E731
    verdict = validate_peer(lab.chain(leaf), trust=lab.trust, at=EPOCH, crls=lookup)
    assert verdict.findings is not None
    assert index.signed_by(lab.inter.cert) in (True, False)


def cert_inputs() -> st.SearchStrategy[bytes]:
    _, leaf, _ = sample()
    return mangled(leaf.cert.public_bytes(serialization.Encoding.DER))


@SETTINGS
@given(der=st.deferred(cert_inputs), where=st.sampled_from(["leaf", "intermediate", "anchor"]))
def test_a_mangled_certificate_that_parses_gets_a_verdict(der, where):
    lab, leaf, _ = sample()
    try:
        cert = x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        return  # not a certificate: the file layer's InputError, tested in test_upload
    chain, trust = lab.chain(leaf), lab.trust
    if where == "leaf":
        chain = [cert, *chain[1:]]
    elif where == "intermediate":
        chain = [chain[0], cert]
    else:
        trust = [cert]
    policy = ValidationPolicy(purpose="client", expected_name="sensor-1.contoso.com")
    urls = crl_urls(chain, trust)
    verdict = validate_peer(chain, trust=trust, at=EPOCH, crls=lab.crls(), policy=policy)
    assert isinstance(urls, list)
    if not verdict.accepted:
        assert verdict.primary is not None and verdict.primary.message


@SETTINGS
@given(urls=st.lists(st.text(max_size=40), max_size=3))
def test_lookup_of_unknown_urls_fails_closed(urls):
    lookup = crl_lookup({})
    for url in urls:
        got = lookup(url)
        assert isinstance(got, ValidationFailed) and got.code is FailureCode.CRL_UNREACHABLE
