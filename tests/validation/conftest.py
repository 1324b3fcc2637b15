"""Fixtures for the validation tests (the lab PKI lives in pkilab.py)."""

import pytest

from pkilab import Lab


@pytest.fixture
def lab(keys, epoch) -> Lab:
    return Lab.make(keys, epoch)
