"""Fixtures shared by the file tests: a three-level hierarchy to write and read back."""

from __future__ import annotations

import pytest

from mesh.pki.issue import CertificateAuthority


@pytest.fixture
def material(keys, epoch):
    root = CertificateAuthority.root("Root CA", not_before=epoch, key=keys(2048))
    issuing = root.intermediate("Issuing CA", not_before=epoch, key=keys(2048))
    leaf = issuing.issue("sensor.contoso.test", not_before=epoch, key=keys(2048))
    return root, issuing, leaf

