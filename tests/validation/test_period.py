import datetime as dt

import pytest

from mesh.errors import FailureCode
from mesh.validation.period import as_utc, check_periods, period_code

S = dt.timedelta(seconds=1)


@pytest.fixture
def cert(lab):
    return lab.leaf(not_before=lab.epoch, days=365).cert


# RFC 5280 4.1.2.5: notBefore through notAfter, inclusive.
@pytest.mark.parametrize(
    "where, offset, code",
    [
        ("before", -S, FailureCode.NOT_YET_VALID),
        ("before", dt.timedelta(0), None),
        ("before", S, None),
        ("after", -S, None),
        ("after", dt.timedelta(0), None),
        ("after", S, FailureCode.EXPIRED),
        ("after", dt.timedelta(days=400), FailureCode.EXPIRED),
    ],
)
def test_boundaries(cert, where, offset, code):
    edge = cert.not_valid_before_utc if where == "before" else cert.not_valid_after_utc
    assert period_code(cert, edge + offset) is code


def test_naive_time_is_utc(cert):
    naive = cert.not_valid_after_utc.replace(tzinfo=None) + S
    assert period_code(cert, naive) is FailureCode.EXPIRED
    assert as_utc(naive).tzinfo is dt.timezone.utc


def test_other_timezone_is_converted(cert):
    plus_two = dt.timezone(dt.timedelta(hours=2))
    edge = cert.not_valid_after_utc.astimezone(plus_two)
    assert period_code(cert, edge) is None
    assert period_code(cert, edge + S) is FailureCode.EXPIRED


def test_one_finding_per_certificate_with_depth(lab):
    leaf = lab.leaf(not_before=lab.epoch - dt.timedelta(days=500), days=10)
    path = [leaf.cert, lab.inter.cert, lab.root.cert]
    found = check_periods(path, lab.epoch)
    assert [(f.code, f.depth) for f in found] == [(FailureCode.EXPIRED, 0)]
    assert found[0].serial == leaf.serial
    assert "notAfter" in found[0].detail
    # Ten years on, the whole path has expired, leaf first.
    later = check_periods(path, lab.epoch + dt.timedelta(days=3650))
    assert [f.depth for f in later] == [0, 1, 2]
