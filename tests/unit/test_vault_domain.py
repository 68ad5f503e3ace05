"""Reading import files and the vault's cryptography (pure)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidTag

from services.fulfilment.crypto import Sealed, Vault, VaultConfigError
from services.fulfilment.domain import UnreadableFile, decode_upload, parse_batch

K1 = "k1:" + base64.b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.b64encode(b"2" * 32).decode()


def test_parse_batch_reports_lines_as_an_editor_numbers_them() -> None:
    text = '\ufeffA1\n\n  A2  \r\nA1\nB,  P\n"C,1",P2\na,b,c\n,p\nx\x07y\n' + "Z" * 11
    batch = parse_batch(text, max_length=10)
    assert [(k.line, k.code) for k in batch.keys] == [(1, "A1"), (3, "A2"), (5, "B,P"), (6, "C,1,P2")]
    assert batch.duplicate_lines == [{"line": 4, "reason": "same key as line 1"}]
    assert [i["line"] for i in batch.invalid] == [7, 8, 9, 10]
    assert "3 fields" in str(batch.invalid[0]["reason"]) and "control" in str(batch.invalid[2]["reason"])


def test_a_header_line_is_skipped_only_first() -> None:
    assert [k.code for k in parse_batch("卡号,密码\nA,B\ncard,password").keys] == ["A,B", "card,password"]
    assert [k.code for k in parse_batch("code\nX").keys] == ["X"]


def test_uploads_in_gb18030_are_read() -> None:
    assert decode_upload("卡密,密码\n".encode("gb18030")) == "卡密,密码\n"
    with pytest.raises(UnreadableFile):
        decode_upload(b"\xff\xff\xff\xff")


def test_seal_and_open_round_trip_with_rotation() -> None:
    old = Vault.from_config(K1)
    sealed = old.seal("CARD-1,PW", "sku-a")
    assert sealed.key_id == "k1" and b"CARD" not in sealed.ciphertext
    rotated = Vault.from_config(f"{K2},{K1}")
    assert rotated.open(sealed, "sku-a") == "CARD-1,PW"
    assert rotated.seal("x", "sku-a").key_id == "k2"
    # Fingerprints survive rotation (keyed by the oldest key), so duplicates are still found.
    assert rotated.fingerprint("CARD-1,PW") == old.fingerprint("CARD-1,PW")
    assert old.fingerprint("CARD-1,PW") != hashlib.sha256(b"CARD-1,PW").hexdigest()
    assert old.seal("same", "s").nonce != old.seal("same", "s").nonce


def test_a_ciphertext_moved_to_another_sku_or_tampered_with_does_not_open() -> None:
    vault = Vault.from_config(K1)
    sealed = vault.seal("CARD", "sku-a")
    with pytest.raises(InvalidTag):
        vault.open(sealed, "sku-b")
    flipped = Sealed(sealed.key_id, sealed.nonce, bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:])
    with pytest.raises(InvalidTag):
        vault.open(flipped, "sku-a")
    with pytest.raises(VaultConfigError):
        Vault.from_config(K2).open(sealed, "sku-a")


@pytest.mark.parametrize(
    "spec", ["", "nokey", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode(), f"{K1},{K1}"]
)
def test_bad_vault_configuration_is_refused(spec: str) -> None:
    with pytest.raises(VaultConfigError):
        Vault.from_config(spec)


def test_sealed_documents_for_other_content() -> None:
    vault = Vault.from_config(K1)
    doc = vault.seal_document("手动发货: 账号 abc 密码 xyz")
    assert set(doc) == {"kid", "nonce", "ct"} and b"abc" not in doc["ct"]
    assert vault.open_document(doc) == "手动发货: 账号 abc 密码 xyz"
    with pytest.raises(InvalidTag):
        vault.open_document(doc, context="another-order")
