"""CRL files an appliance is given out of band, read from disk.

Many appliances (and Envoy) are handed CRL files instead of fetching the
CRL Distribution Point; ``mesh node`` (``crl_files``), scenarios and ``mesh
cert check --crl`` take them. A file holds one DER CRL or one or more PEM
CRLs. Anything else is one line naming the file.
"""

from __future__ import annotations

import os
import re
from typing import Iterable

from mesh.errors import InputError, ValidationFailed
from mesh.pki.files import read_input
from mesh.validation.revocation import CrlIndex

__all__ = ["load_crl_files"]

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def load_crl_files(paths: Iterable[str | os.PathLike[str]]) -> tuple[CrlIndex, ...]:
    """Every CRL in ``paths``, indexed; a file that holds none is an InputError."""
    found: list[CrlIndex] = []
    for path in paths:
        data = read_input(path, "CRL file")
        blocks = _PEM_CRL.findall(data) or [data]
        for block in blocks:
            try:
                found.append(CrlIndex.from_bytes(block, source=str(path)))
            except ValidationFailed as exc:
                raise InputError(
                    str(path), f"is not a CRL ({exc.detail})", "give a DER or PEM X.509 CRL"
                ) from None
    return tuple(found)
