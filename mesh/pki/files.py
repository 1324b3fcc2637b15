"""Certificate files as the source document names them, read and written.

- ``.crt``: one certificate, PEM or DER (sniffed, whatever the extension).
- ``.key``: an RSA private key, PEM, PKCS#8 or traditional ("BEGIN RSA
  PRIVATE KEY"), optionally encrypted with a passphrase. DER is accepted too.
- ``.pem`` chain: the issuing CAs' certificates, one PEM block each. The
  text ``openssl pkcs12 -nodes`` puts around blocks ("Bag Attributes",
  ``subject=``/``issuer=`` lines) is ignored, as the source document allows.
- ``.pfx``/``.p12``: PKCS#12, a key with its certificate and chain.

Why one place for all of it: everything that reaches mesh from a
person's disk passes through here, so every way a file can be wrong ends here
too, as one :class:`~mesh.errors.InputError` naming the file, the problem and
the fix (the CLI prints it as one line, exit 2). The one exception is a
passphrase that does not open a key: that is the source document's own upload
error, so it is a ``ValidationFailed(FailureCode.PASSPHRASE_MISMATCH)``.

Anything holding a private key (``.key``, PKCS#12) is written with mode 0600
from its creation (never chmod-ed down after the bytes are on disk), through a
temporary file in the same folder and an atomic rename.

This module is the one name the rest of mesh imports; the work is done in:

- :mod:`mesh.pki.file_input`: reading a named file, PEM blocks, telling what a
  file holds;
- :mod:`mesh.pki.cert_input`: certificates, chains and CRLs;
- :mod:`mesh.pki.key_input`: RSA private keys and their passphrases;
- :mod:`mesh.pki.pkcs12_files`: PKCS#12 bundles, both ways;
- :mod:`mesh.pki.file_output`: encoding, and writing atomically with the right mode.
"""

from __future__ import annotations

from mesh.pki.cert_input import certificates_from_bytes as certificates_from_bytes
from mesh.pki.cert_input import load_certificate as load_certificate
from mesh.pki.cert_input import load_certificates as load_certificates
from mesh.pki.cert_input import load_crl as load_crl
from mesh.pki.file_input import Passphrase as Passphrase
from mesh.pki.file_input import read_input as read_input
from mesh.pki.file_output import KEY_MODE as KEY_MODE
from mesh.pki.file_output import certificate_bytes as certificate_bytes
from mesh.pki.file_output import chain_bytes as chain_bytes
from mesh.pki.file_output import key_bytes as key_bytes
from mesh.pki.file_output import save_certificate as save_certificate
from mesh.pki.file_output import save_chain as save_chain
from mesh.pki.file_output import save_crl as save_crl
from mesh.pki.file_output import save_key as save_key
from mesh.pki.file_output import write_file as write_file
from mesh.pki.key_input import key_from_bytes as key_from_bytes
from mesh.pki.key_input import load_key as load_key
from mesh.pki.pkcs12_files import Pkcs12Contents as Pkcs12Contents
from mesh.pki.pkcs12_files import load_pkcs12 as load_pkcs12
from mesh.pki.pkcs12_files import pkcs12_from_bytes as pkcs12_from_bytes
from mesh.pki.pkcs12_files import save_pkcs12 as save_pkcs12

__all__ = [
    "Pkcs12Contents",
    "read_input",
    "load_certificate",
    "load_certificates",
    "load_key",
    "load_pkcs12",
    "load_crl",
    "key_from_bytes",
    "certificates_from_bytes",
    "pkcs12_from_bytes",
    "certificate_bytes",
    "key_bytes",
    "chain_bytes",
    "save_certificate",
    "save_chain",
    "save_key",
    "save_pkcs12",
    "save_crl",
    "write_file",
    "KEY_MODE",
]
