"""Private keys in etcd are sealed with the fleet key: AES-256-GCM, a random 96-bit nonce per seal, and the
etcd key they are stored under as associated data (a sealed key copied to another lineage does not open)."""
from __future__ import annotations

import base64
import os

from lehttpd.errors import StorageError

KEY_CHECK = b"lehttpd fleet key check"


def new_fleet_key() -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # lazy: a renew run with nothing due opens no key

    return AESGCM.generate_key(bit_length=256)


def seal(fleet_key: bytes, plaintext: bytes, where: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(fleet_key).encrypt(nonce, plaintext, where.encode())).decode()


def unseal(fleet_key: bytes, sealed: str, where: str) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.b64decode(sealed)
    try:
        return AESGCM(fleet_key).decrypt(raw[:12], raw[12:], where.encode())
    except (InvalidTag, ValueError):
        raise StorageError(f"etcd {where}: cannot be opened with this node's fleet key (another fleet's key, "
                           "or the value was changed)") from None
