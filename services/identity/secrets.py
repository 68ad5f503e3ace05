"""Encryption at rest for identity's secrets (partner API key secrets, TOTP seeds, ID numbers and
real names) and a keyed hash for looking an ID number up without storing it in the clear.

One master key (`IDENTITY_SECRETS_KEY`, `keyid:base64(32 bytes)`) is stretched with HKDF into an
AES-256-GCM key and a separate HMAC key, so the lookup hash cannot be used to decrypt anything.
Each ciphertext is bound to its record and purpose (GCM associated data): a value copied into
another user's record does not decrypt there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from bson import Binary
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DEV_SECRETS_KEY = "dev1:ZGV2LW9ubHktaWRlbnRpdHkta2V5LTMyLWJ5dGVzISE="


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"kameng-identity", info=purpose).derive(master)


def parse_key(spec: str) -> tuple[str, bytes]:
    key_id, sep, encoded = spec.partition(":")
    if not sep or not key_id:
        raise ValueError("IDENTITY_SECRETS_KEY must look like keyid:base64(32 bytes)")
    master = base64.b64decode(encoded, validate=True)
    if len(master) != 32:
        raise ValueError("IDENTITY_SECRETS_KEY must hold exactly 32 bytes")
    return key_id, master


class SecretBox:
    def __init__(self, spec: str) -> None:
        self.key_id, master = parse_key(spec)
        self._aead = AESGCM(_derive(master, b"aes-256-gcm"))
        self._hash_key = _derive(master, b"lookup-hmac")

    def seal(self, plaintext: str, *, context: str) -> dict[str, object]:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return {"kid": self.key_id, "ct": Binary(nonce + sealed)}

    def open(self, sealed: dict[str, object], *, context: str) -> str:
        if sealed.get("kid") != self.key_id:
            raise ValueError(f"sealed with unknown key {sealed.get('kid')!r}")
        blob = bytes(sealed["ct"])  # type: ignore[call-overload]
        return self._aead.decrypt(blob[:12], blob[12:], context.encode()).decode()

    def seal_bytes(self, plaintext: bytes, *, context: str) -> dict[str, object]:
        """`seal` for binary values (real-name document images), bound to `context` the same way."""
        nonce = os.urandom(12)
        return {"kid": self.key_id, "ct": Binary(nonce + self._aead.encrypt(nonce, plaintext, context.encode()))}

    def open_bytes(self, sealed: dict[str, object], *, context: str) -> bytes:
        if sealed.get("kid") != self.key_id:
            raise ValueError(f"sealed with unknown key {sealed.get('kid')!r}")
        blob = bytes(sealed["ct"])  # type: ignore[call-overload]
        return self._aead.decrypt(blob[:12], blob[12:], context.encode())

    def lookup_hash(self, value: str, *, purpose: str) -> str:
        return hmac.new(self._hash_key, f"{purpose}\n{value}".encode(), hashlib.sha256).hexdigest()
