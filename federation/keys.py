"""RSA key generation and cached PEM loading.

Every inbound request needs the sender's public key as a key *object*.
Importing a PEM costs about 1.6 ms; a cached object costs about 0.075 ms to
use, so keys are parsed once per distinct PEM text and kept in an LRU cache.
A rotated key has new PEM text, so it simply becomes a new cache entry.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from federation.errors import InvalidKeyError

RSA_KEY_BITS = 2048
_PUBLIC_KEY_CACHE_SIZE = 4096
_PRIVATE_KEY_CACHE_SIZE = 64


def generate_key_pair() -> tuple[str, str]:
    """Return a new RSA-2048 key pair as `(private_pem, public_pem)`.

    PKCS#8 and SubjectPublicKeyInfo are the PEM forms Mastodon and the rest of
    the fediverse publish and accept in `publicKey.publicKeyPem`.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    private_pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return private_pem.decode("ascii"), public_pem.decode("ascii")


@lru_cache(maxsize=_PUBLIC_KEY_CACHE_SIZE)
def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """Parse (once) an RSA public key from SubjectPublicKeyInfo or PKCS#1 PEM.

    Raises `InvalidKeyError` for anything that is not an RSA public key, because
    only RSA is verified here and a remote's odd key must not crash a caller.
    """
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidKeyError(f"unsupported public key type {type(key).__name__}")
    return key


@lru_cache(maxsize=_PRIVATE_KEY_CACHE_SIZE)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Parse (once) an unencrypted RSA private key from PKCS#8 or PKCS#1 PEM."""
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise InvalidKeyError(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidKeyError(f"unsupported private key type {type(key).__name__}")
    return key
