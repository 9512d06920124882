"""Key generation and the parsed-key cache."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding

from federation.errors import InvalidKeyError
from federation.keys import generate_key_pair, load_private_key, load_public_key


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return generate_key_pair()


def test_generated_pair_is_rsa_2048_in_the_pem_forms_the_fediverse_uses(
    key_pair: tuple[str, str],
) -> None:
    private_pem, public_pem = key_pair
    assert private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert load_private_key(private_pem).key_size == 2048
    assert load_public_key(public_pem).key_size == 2048


def test_generated_halves_belong_together(key_pair: tuple[str, str]) -> None:
    other_public = generate_key_pair()[1]
    signature = load_private_key(key_pair[0]).sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    load_public_key(key_pair[1]).verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        load_public_key(other_public).verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_keys_are_parsed_once_per_pem_text(key_pair: tuple[str, str]) -> None:
    same_text = "".join(list(key_pair[1]))  # equal but a distinct str object
    assert load_public_key(key_pair[1]) is load_public_key(same_text)
    assert load_private_key(key_pair[0]) is load_private_key(key_pair[0])


def test_pkcs1_public_keys_are_accepted(key_pair: tuple[str, str]) -> None:
    pkcs1 = (
        load_public_key(key_pair[1])
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    assert load_public_key(pkcs1).public_numbers() == load_public_key(key_pair[1]).public_numbers()


def _ed25519_public_pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    "pem",
    ["", "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "ключ"],
)
def test_garbage_public_key_raises_invalid_key(pem: str) -> None:
    with pytest.raises(InvalidKeyError):
        load_public_key(pem)


def test_non_rsa_public_key_raises_invalid_key() -> None:
    with pytest.raises(InvalidKeyError, match="Ed25519PublicKey"):
        load_public_key(_ed25519_public_pem())


def test_public_key_is_not_accepted_as_private(key_pair: tuple[str, str]) -> None:
    with pytest.raises(InvalidKeyError):
        load_private_key(key_pair[1])
