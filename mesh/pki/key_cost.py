"""What opening a private key may cost, judged from its DER before any work.

Why: a key file is input from whoever uploads it, and its own bytes say how
much work opening it takes. A PKCS#8 key encrypted with 100,000,000 PBKDF2
iterations made the console spend 16 s on a wrong passphrase; a 65,536-bit
RSA key spent 19 s in OpenSSL's key check. Both happened on the event loop,
and both are now refused in one line before OpenSSL sees the key:

- PBES2 with PBKDF2: at most :data:`MAX_ITERATIONS` iterations;
- PBES2 with scrypt: at most :data:`MAX_SCRYPT_BYTES` of work memory
  (128·N·r·p bytes: N·r sets the memory, p multiplies the time);
- PBES1 and the PKCS#12 PBE schemes: at most :data:`MAX_ITERATIONS`;
- RSA: at most :data:`MAX_RSA_BITS` bits of modulus, read from an
  unencrypted key here, and from an encrypted one once decrypted, before
  the key is checked (see :func:`mesh.pki.files.key_from_bytes`).

The DER reading is the few fields needed, no more: anything it does not
recognise is left to ``cryptography``, which reports it as it always did.
"""

from __future__ import annotations

from mesh.errors import InputError

__all__ = ["MAX_ITERATIONS", "MAX_SCRYPT_BYTES", "MAX_RSA_BITS", "check_key_cost", "check_rsa_bits"]

#: OpenSSL writes 2,048 by default; current advice for PBKDF2-SHA256 is 600,000.
MAX_ITERATIONS = 1_000_000
#: OpenSSL's own default scrypt (N=16384, r=8, p=1) uses 16 MiB.
MAX_SCRYPT_BYTES = 64 * 1024 * 1024
#: OpenSSL refuses public operations on larger RSA moduli as well.
MAX_RSA_BITS = 16384

_EXPORT = "export the key again with openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 100000"

_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_SCRYPT = "1.3.6.1.4.1.11591.4.11"
_RSA = "1.2.840.113549.1.1.1"
#: pbeWith* of PKCS#5 v1.5 (1.2.840.113549.1.5.x) and PKCS#12 (1.2.840.113549.1.12.1.x):
#: parameters SEQUENCE { salt OCTET STRING, iterations INTEGER }.
_PBES1_PREFIXES = ("1.2.840.113549.1.5.", "1.2.840.113549.1.12.1.")


class _Malformed(Exception):
    """Not the structure looked for; the caller lets cryptography judge it."""


def _read(data: bytes, at: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, offset after) of the DER element at ``at``."""
    if at + 2 > len(data):
        raise _Malformed
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or at + count > len(data):
            raise _Malformed
        length = int.from_bytes(data[at:at + count], "big")
        at += count
    if at + length > len(data):
        raise _Malformed
    return tag, data[at:at + length], at + length


def _items(content: bytes) -> list[tuple[int, bytes]]:
    out, at = [], 0
    while at < len(content):
        tag, value, at = _read(content, at)
        out.append((tag, value))
    return out


def _oid(value: bytes) -> str:
    if not value:
        raise _Malformed
    parts = [value[0] // 40, value[0] % 40] if value[0] < 80 else [2, value[0] - 80]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))


def _int(tag: int, value: bytes) -> int:
    if tag != 0x02 or not value:
        raise _Malformed
    return int.from_bytes(value, "big", signed=True)


def _algorithm(tag: int, value: bytes) -> tuple[str, list[tuple[int, bytes]]]:
    """An AlgorithmIdentifier: its OID and its parameters' elements (when a SEQUENCE)."""
    if tag != 0x30:
        raise _Malformed
    items = _items(value)
    if not items or items[0][0] != 0x06:
        raise _Malformed
    params = _items(items[1][1]) if len(items) > 1 and items[1][0] == 0x30 else []
    return _oid(items[0][1]), params


def check_key_cost(der: bytes, where: str) -> None:
    """Refuse ``der`` (a private key) if opening it would cost more than allowed.

    Raises:
        InputError: the KDF or the RSA modulus is over its limit.
    """
    try:
        tag, content, _ = _read(der)
        if tag != 0x30:
            return
        items = _items(content)
        if len(items) == 2 and items[0][0] == 0x30 and items[1][0] == 0x04:
            _check_encryption(*_algorithm(*items[0]), where)
        elif len(items) >= 3 and items[0][0] == 0x02 and items[1][0] == 0x30 and items[2][0] == 0x04:
            # PrivateKeyInfo { version, AlgorithmIdentifier, OCTET STRING { RSAPrivateKey } }
            if _algorithm(*items[1])[0] == _RSA:
                tag, inner, _ = _read(items[2][1])
                _check_rsa_private_key(_items(inner) if tag == 0x30 else [], where)
        elif len(items) >= 2 and items[0][0] == 0x02 and items[1][0] == 0x02:
            _check_rsa_private_key(items, where)  # RSAPrivateKey (PKCS#1)
    except _Malformed:
        return


def _check_encryption(scheme: str, params: list[tuple[int, bytes]], where: str) -> None:
    if scheme == _PBES2:
        if len(params) < 1:
            raise _Malformed
        kdf, kdf_params = _algorithm(*params[0])
        if kdf == _PBKDF2 and len(kdf_params) >= 2:
            _check_iterations(_int(*kdf_params[1]), "PBKDF2 iterations", where)
        elif kdf == _SCRYPT and len(kdf_params) >= 4:
            n, r, p = (_int(*kdf_params[i]) for i in (1, 2, 3))
            need = 128 * n * r * p
            if need > MAX_SCRYPT_BYTES:
                raise InputError(
                    where,
                    f"is encrypted with scrypt using {need // 2**20:,} MiB (N={n}, r={r}, p={p}), "
                    f"more than the {MAX_SCRYPT_BYTES // 2**20:,} MiB a key may take",
                    _EXPORT,
                )
    elif scheme.startswith(_PBES1_PREFIXES) and len(params) >= 2:
        _check_iterations(_int(*params[1]), "iterations", where)


def _check_iterations(count: int, what: str, where: str) -> None:
    if count > MAX_ITERATIONS:
        raise InputError(
            where,
            f"is encrypted with {count:,} {what}, more than the {MAX_ITERATIONS:,} a key may take",
            _EXPORT,
        )


def _check_rsa_private_key(items: list[tuple[int, bytes]], where: str) -> None:
    if len(items) >= 2 and items[1][0] == 0x02:
        check_rsa_bits(_int(*items[1]).bit_length(), where)


def check_rsa_bits(bits: int, where: str) -> None:
    """Refuse an RSA modulus longer than :data:`MAX_RSA_BITS`."""
    if bits > MAX_RSA_BITS:
        raise InputError(
            where,
            f"holds a {bits:,}-bit RSA key, more than the {MAX_RSA_BITS:,} bits a key may have",
            "use an RSA 2048 or 4096 key",
        )
