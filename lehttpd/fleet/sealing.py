"""Private keys in etcd are sealed with the fleet key: AES-256-GCM, a random 96-bit nonce per seal, and as
associated data the etcd key they are stored under (a sealed key copied to another lineage does not open) and a
digest of the rest of their version record (certificate, chain, renewal file, serial, node, time): whoever can
write to etcd but lacks the fleet key can neither read a key nor change what a node will serve with it."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
        key = where.split("\n", 1)[0]  # a version record's binding adds a digest line: one line for the error
        raise StorageError(f"etcd {key}: cannot be opened with this node's fleet key (another fleet's key, "
                           "or the value was changed)") from None


RECORD_FIELDS = ("cert", "chain", "fullchain", "conf", "serial", "node", "at")


def record_binding(where: str, record: dict) -> str:
    """The associated data a version record's key is sealed with: its etcd key and a digest of its other fields."""
    fields = json.dumps([record.get(name) for name in RECORD_FIELDS], separators=(",", ":"))
    return f"{where}\n{hashlib.sha256(fields.encode()).hexdigest()}"


def token_tag(fleet_key: bytes, token: str, validation: str) -> str:
    """What proves an http-01 token in etcd was published by a node of the fleet: every node serves it, so a
    token planted by someone who can write to etcd but lacks the fleet key would get them a certificate for the
    fleet's names from any CA."""
    message = b"lehttpd http-01 token\0" + token.encode() + b"\0" + validation.encode()
    return hmac.new(fleet_key, message, hashlib.sha256).hexdigest()


def token_is_genuine(fleet_key: bytes, token: str, published: dict) -> bool:
    validation, tag = published.get("validation"), published.get("tag")
    if not isinstance(validation, str) or not isinstance(tag, str) or not validation.startswith(token + "."):
        return False
    return hmac.compare_digest(token_tag(fleet_key, token, validation), tag)
