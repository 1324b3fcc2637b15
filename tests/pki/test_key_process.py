"""Keys opened in a child process: the same key, the same errors, as in place."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

import pkcs8lab
from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.pki import key_process


async def test_an_encrypted_key_opens_in_a_child(keys):
    key = keys(2048)
    data = pkcs8lab.encrypted_pkcs8(key, "right", 2048)
    opened = await key_process.open_key(data, "right", where="upload.key")
    assert opened.private_numbers() == key.private_numbers()


async def test_a_wrong_passphrase_is_the_same_refusal(keys):
    data = pkcs8lab.encrypted_pkcs8(keys(2048), "right", 2048)
    with pytest.raises(ValidationFailed) as info:
        await key_process.open_key(data, "wrong", where="upload.key")
    assert info.value.code is FailureCode.PASSPHRASE_MISMATCH
    assert info.value.detail == "upload.key: the passphrase does not open the key"


async def test_unusable_input_is_the_same_one_line(keys):
    with pytest.raises(InputError) as info:
        await key_process.open_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                                   None, where="upload.key")
    assert info.value.line() == "upload.key: holds a certificate, not a private key; give the .key file"
    costly = pkcs8lab.pem(pkcs8lab.encrypted(pkcs8lab.pbes2_pbkdf2(10**8, b"s" * 16, b"i" * 16)))
    with pytest.raises(InputError) as info:
        await key_process.open_key(costly, "x", where="upload.key")
    assert info.value.problem.startswith("is encrypted with 100,000,000 PBKDF2 iterations")


async def test_a_plain_small_key_opens_in_place(keys):
    key = keys(2048)
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    assert key_process._cheap(data)
    assert (await key_process.open_key(data, None)).private_numbers() == key.private_numbers()
    assert not key_process._cheap(pkcs8lab.encrypted_pkcs8(key, "right", 2048))
