"""Encryption of card keys at rest (AES-256-GCM) and their duplicate-detection fingerprints.

Each ciphertext is stored with the id of the key that made it, so keys can rotate: put the new
key first in KAMENG_VAULT_KEYS (it encrypts from then on) and keep the old ones after it (they
still decrypt). The SKU id is the associated data, so a ciphertext copied onto another SKU's
document fails to decrypt instead of being sold there.

Fingerprints are HMAC-SHA256 with a secret, not plain SHA-256: card codes are short and often
guessable (a prefix plus a counter), so a plain hash in a database dump would reveal them by
brute force. The fingerprint key must stay stable across vault-key rotations (duplicates are
found by equal fingerprints), so it is its own setting, or derived from the OLDEST vault key
(the last one listed), which rotation keeps.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class VaultConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Sealed:
    key_id: str
    nonce: bytes
    ciphertext: bytes


class Vault:
    def __init__(self, keys: list[tuple[str, bytes]], fingerprint_key: bytes | None = None) -> None:
        if not keys:
            raise VaultConfigError("no vault key configured")
        self.active_id = keys[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys}
        oldest = keys[-1][1]
        self._fp_key = fingerprint_key or hmac.new(oldest, b"kameng-vault-fingerprint-v1", hashlib.sha256).digest()

    @classmethod
    def from_config(cls, keys_spec: str, fingerprint_key: str | None = None) -> Vault:
        """`keys_spec` is "keyid:base64-32-bytes[,keyid2:...]"."""
        keys: list[tuple[str, bytes]] = []
        for part in filter(None, (p.strip() for p in keys_spec.split(","))):
            key_id, sep, b64 = part.partition(":")
            if not sep or not key_id:
                raise VaultConfigError("each vault key must look like keyid:base64")
            try:
                material = base64.b64decode(b64, validate=True)
            except binascii.Error as exc:
                raise VaultConfigError(f"vault key {key_id!r} is not valid base64") from exc
            if len(material) != 32:
                raise VaultConfigError(f"vault key {key_id!r} must be 32 bytes, not {len(material)}")
            if any(key_id == k for k, _ in keys):
                raise VaultConfigError(f"vault key id {key_id!r} is listed twice")
            keys.append((key_id, material))
        return cls(keys, fingerprint_key.encode() if fingerprint_key else None)

    def seal(self, code: str, sku_id: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[self.active_id].encrypt(nonce, code.encode(), sku_id.encode())
        return Sealed(self.active_id, nonce, ciphertext)

    def open(self, sealed: Sealed, sku_id: str) -> str:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise VaultConfigError(f"vault key {sealed.key_id!r} is not configured (rotated out too early?)")
        return cipher.decrypt(sealed.nonce, sealed.ciphertext, sku_id.encode()).decode()

    def seal_document(self, text: str, context: str = "content") -> dict[str, Any]:
        """`{kid, nonce, ct}` to store in a document (e.g. what staff hand over for a manual
        order); `context` is the associated data, needed again to open it."""
        sealed = self.seal(text, context)
        return {"kid": sealed.key_id, "nonce": sealed.nonce, "ct": sealed.ciphertext}

    def open_document(self, doc: Mapping[str, Any], context: str = "content") -> str:
        return self.open(Sealed(doc["kid"], bytes(doc["nonce"]), bytes(doc["ct"])), context)

    def fingerprint(self, code: str) -> str:
        return hmac.new(self._fp_key, code.encode(), hashlib.sha256).hexdigest()
