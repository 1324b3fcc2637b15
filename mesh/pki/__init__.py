"""Certificate material: CAs, appliance certificates, CRLs, files and lint.

The stable API: :class:`Pki` (a whole deployment, built from
:class:`ApplianceRequest` s, with fault recipes from :data:`RECIPES`), the CA
building blocks of :mod:`mesh.pki.issue`, and :class:`KeyPool`.
"""

from mesh.pki.faults import RECIPES as RECIPES
from mesh.pki.faults import Recipe as Recipe
from mesh.pki.deployment import ApplianceMaterial as ApplianceMaterial
from mesh.pki.deployment import ApplianceRequest as ApplianceRequest
from mesh.pki.deployment import Pki as Pki
from mesh.pki.manifest import read_manifest as read_manifest
from mesh.pki.issue import CertificateAuthority as CertificateAuthority
from mesh.pki.issue import Issued as Issued
from mesh.pki.issue import SubjectFields as SubjectFields
from mesh.pki.issue import new_key as new_key
from mesh.pki.keys import KeyPool as KeyPool

__all__ = [
    "CertificateAuthority",
    "Issued",
    "SubjectFields",
    "new_key",
    "KeyPool",
    "Pki",
    "ApplianceRequest",
    "ApplianceMaterial",
    "RECIPES",
    "Recipe",
    "read_manifest",
]
