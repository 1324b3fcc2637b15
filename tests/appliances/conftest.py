"""A deployment to run appliances in: a real CRL server, a PKI pointing at it."""

from __future__ import annotations

import pytest

from meshlab import FAST, Deployment, crl_server  # noqa: F401  (crl_server is a fixture)


@pytest.fixture
def deployment(crl_server, keys, epoch) -> Deployment:
    return Deployment(crl_server, keys, epoch)
