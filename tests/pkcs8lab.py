"""Encrypted PKCS#8 keys with any KDF cost, built by hand for the key-cost tests.

``cryptography`` writes PKCS#8 with fixed KDF parameters, and the keys these
tests need (100,000,000 PBKDF2 iterations, a 65,536-bit modulus) would take
seconds or hours to make for real. So the DER is assembled here: real
encryption (PBKDF2-HMAC-SHA256 + AES-256-CBC) where a test opens the key, and
a well-formed but arbitrary ciphertext where the key must be refused unopened.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
SCRYPT = "1.3.6.1.4.1.11591.4.11"
HMAC_SHA256 = "1.2.840.113549.2.9"
AES256_CBC = "2.16.840.1.101.3.4.1.42"
PBE_SHA1_3DES = "1.2.840.113549.1.12.1.3"  # PKCS#12 PBE, a PBES1-style scheme
RSA = "1.2.840.113549.1.1.1"


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def integer(n: int) -> bytes:
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def octets(data: bytes) -> bytes:
    return tlv(0x04, data)


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        out += bytes(reversed(chunk))
    return tlv(0x06, bytes(out))


def pem(der: bytes, label: str = "ENCRYPTED PRIVATE KEY") -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([f"-----BEGIN {label}-----".encode(), *lines,
                       f"-----END {label}-----".encode(), b""])


def pbes2_pbkdf2(iterations: int, salt: bytes, iv: bytes) -> bytes:
    kdf = seq(oid(PBKDF2), seq(octets(salt), integer(iterations), seq(oid(HMAC_SHA256), b"\x05\x00")))
    return seq(oid(PBES2), seq(kdf, seq(oid(AES256_CBC), octets(iv))))


def pbes2_scrypt(n: int, r: int, p: int) -> bytes:
    kdf = seq(oid(SCRYPT), seq(octets(b"s" * 16), integer(n), integer(r), integer(p)))
    return seq(oid(PBES2), seq(kdf, seq(oid(AES256_CBC), octets(b"i" * 16))))


def pbes1(iterations: int) -> bytes:
    return seq(oid(PBE_SHA1_3DES), seq(octets(b"s" * 8), integer(iterations)))


def encrypted(algorithm: bytes, ciphertext: bytes = b"\x00" * 1216) -> bytes:
    """EncryptedPrivateKeyInfo DER (arbitrary ciphertext unless given)."""
    return seq(algorithm, octets(ciphertext))


def encrypted_pkcs8(key, passphrase: str, iterations: int) -> bytes:
    """``key`` as a real PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) PEM."""
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, iv = os.urandom(16), os.urandom(16)
    secret = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, iterations, 32)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    body = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    return pem(encrypted(pbes2_pbkdf2(iterations, salt, iv), body))


def huge_rsa_key(bits: int) -> bytes:
    """An unencrypted PKCS#8 RSA key DER with a ``bits``-bit modulus (not a real key)."""
    n = (1 << (bits - 1)) | int.from_bytes(os.urandom(bits // 8), "big") | 1
    half = 1 << (bits // 2 - 1) | 1
    rsa_key = seq(integer(0), integer(n), integer(65537), integer(n - 2), integer(half),
                  integer(half + 2), integer(half), integer(half), integer(half))
    return seq(integer(0), seq(oid(RSA), b"\x05\x00"), octets(rsa_key))
