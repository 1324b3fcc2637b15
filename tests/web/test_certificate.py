"""Certificate summaries and expiry warnings, judged at the emulated instant."""

from __future__ import annotations

import datetime as dt

import pytest

from mesh.pki.issue import CertificateAuthority
from mesh.validation.expiry import days_until_expiry, expiry_warning
from mesh.web.certificate import certificate_summary

SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def leaf(keys, epoch):
    root = CertificateAuthority.root("Root", not_before=epoch, key=keys(2048))
    return root.issue("a.contoso.test", not_before=epoch, days=90, key=keys(2048)).cert


@pytest.mark.parametrize(
    "before_end, days",
    [(10 * DAY + SECOND, 10), (10 * DAY, 10), (10 * DAY - SECOND, 9), (SECOND, 0),
     (dt.timedelta(0), 0), (-SECOND, -1), (-DAY - SECOND, -2)],
)
def test_days_until_expiry_rounds_down(leaf, before_end, days):
    assert days_until_expiry(leaf, at=leaf.not_valid_after_utc - before_end) == days


def test_warning_window_edges(leaf):
    end = leaf.not_valid_after_utc
    assert expiry_warning(leaf, at=end - 30 * DAY - SECOND) is None
    at_edge = expiry_warning(leaf, at=end - 30 * DAY)
    assert at_edge is not None and at_edge.days_until_expiry == 30
    assert at_edge.message == "The certificate CN=a.contoso.test,OU=Contoso Labs,O=Contoso Inc.,C=US expires in 30 days."
    assert expiry_warning(leaf, at=end - 7 * DAY, window=5 * DAY) is None
    assert expiry_warning(leaf, at=end - 1 * DAY).message.endswith("expires in 1 day.")
    assert expiry_warning(leaf, at=end - SECOND).message.endswith("expires within a day.")
    assert expiry_warning(leaf, at=end + SECOND).message.endswith("has expired.")


def test_summary(leaf, epoch):
    summary = certificate_summary(leaf, at=epoch)
    assert summary["serial"] == format(leaf.serial_number, "X")
    assert summary["not_before"] == "2027-01-15T09:00:00Z"
    assert summary["days_until_expiry"] == 90
    assert (summary["expiring"], summary["expired"], summary["not_yet_valid"]) == (False, False, False)
    assert summary["self_signed"] is False
    assert summary["sha256_fingerprint"].count(":") == 31
    early = certificate_summary(leaf, at=epoch - SECOND)
    assert early["not_yet_valid"] is True
    late = certificate_summary(leaf, at=leaf.not_valid_after_utc + SECOND)
    assert late["expired"] is True and late["expiring"] is True


@pytest.mark.oracle
async def test_serial_and_dates_match_openssl(leaf, epoch, tmp_path):
    import trio
    from cryptography.hazmat.primitives import serialization

    path = tmp_path / "a.crt"
    path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    result = await trio.run_process(
        ["openssl", "x509", "-in", str(path), "-noout", "-serial", "-fingerprint", "-sha256"],
        capture_stdout=True,
    )
    lines = dict(line.split("=", 1) for line in result.stdout.decode().splitlines())
    summary = certificate_summary(leaf, at=epoch)
    # openssl pads the hex to whole bytes; the event stream's form has no padding.
    assert int(lines["serial"], 16) == int(summary["serial"], 16)
    assert lines["serial"].lstrip("0") == summary["serial"]
    assert lines["sha256 Fingerprint"] == summary["sha256_fingerprint"]
