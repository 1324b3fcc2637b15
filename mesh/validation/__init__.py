"""The sans-IO validation core: chain, dates, strength, identity, revocation.

Pure functions over certificate objects, CRLs and an instant. This package
never imports trio (``tests/validation/test_purity.py`` enforces it): the I/O
ring fetches CRLs and calls :func:`validate_peer` with what it got.
"""

from mesh.validation.finding import Finding
from mesh.validation.policy import DEFAULT_POLICY, ValidationPolicy
from mesh.validation.revocation import CrlIndex, CrlLookup, crl_lookup
from mesh.validation.verdict import PRIMARY_ORDER, Verdict, crl_urls, validate_peer

__all__ = [
    "CrlIndex",
    "CrlLookup",
    "DEFAULT_POLICY",
    "Finding",
    "PRIMARY_ORDER",
    "ValidationPolicy",
    "Verdict",
    "crl_lookup",
    "crl_urls",
    "validate_peer",
]
