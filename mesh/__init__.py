"""mesh: a mutual-TLS component mesh emulator.

Emulated appliances open TLS channels to each other, validate each peer's
certificate at connect time (chain of trust, validity period, CRL fetched over
HTTP) and halt the link with a logged validation error when a check fails,
unless validation has been switched off.
"""

from mesh.errors import FailureCode, InputError, MeshError, Severity, ValidationFailed

__all__ = [
    "FailureCode",
    "InputError",
    "MeshError",
    "Severity",
    "ValidationFailed",
]
