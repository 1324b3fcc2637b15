"""Certificate material: CAs, appliance certificates, CRLs, files and lint."""

from mesh.pki.issue import CertificateAuthority, Issued, SubjectFields, new_key

__all__ = ["CertificateAuthority", "Issued", "SubjectFields", "new_key"]
