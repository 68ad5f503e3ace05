"""Reading import files and the vault's cryptography (pure)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidTag

from services.fulfilment.crypto import Sealed, Vault, VaultConfigError
from services.fulfilment.domain import (
    CARD_KEY,
    IMPORT_JOB,
    UNSETTLED_JOBS,
    ImportStatus,
    KeyStatus,
    LineJudge,
    UnreadableFile,
    decode_upload,
    detect_encoding,
    parse_batch,
    stream_lines,
)

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


# -- import jobs: the file read as a stream ---------------------------------------------------------

STREAMED = "卡号,密码\r\nA1,P1\r\n\r\nA2 , P2\nA1,P1\na,b,c\n" + "x" * 300 + "\nlast"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 4096])
def test_a_streamed_file_is_judged_line_by_line_exactly_as_a_whole_one(encoding: str, size: int) -> None:
    data = STREAMED.encode(encoding)
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    found = detect_encoding(chunks)
    judge = LineJudge()
    verdicts = [v for n, line in stream_lines(chunks, found) if (v := judge.judge(n, line)) is not None]
    whole = parse_batch(decode_upload(data))
    assert [(v.line, v.code) for v in verdicts if v.code] == [(k.line, k.code) for k in whole.keys]
    assert [v.line for v in verdicts if v.reason] == [i["line"] for i in whole.invalid]
    assert [(v.line, v.duplicate_of) for v in verdicts if v.duplicate_of] == [(5, 2)]
    assert [d["line"] for d in whole.duplicate_lines] == [5]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    assert list(stream_lines([b"A\r", b"\nB\r", b"\r\nC"], "utf-8")) == [(1, "A"), (2, "B"), (3, ""), (4, "C")]


def test_an_unreadable_stream_is_refused() -> None:
    with pytest.raises(UnreadableFile):
        detect_encoding([b"\xff\xff", b"\xff\xff"])


def test_the_import_job_lifecycle() -> None:
    assert IMPORT_JOB.sources(ImportStatus.RUNNING) == ["queued", "running"]  # a dead worker's job is taken over
    assert IMPORT_JOB.final() == {ImportStatus.SUCCEEDED, ImportStatus.FAILED}
    assert not IMPORT_JOB.can_move(ImportStatus.FAILED, ImportStatus.RUNNING)
    assert not IMPORT_JOB.can_move(ImportStatus.QUEUED, ImportStatus.SUCCEEDED)
    # A job's keys are held back exactly while the job can still change: its success (or failure)
    # is the one switch; nothing moves a key back to available but a claim's own undo.
    assert IMPORT_JOB.sources(ImportStatus.RUNNING) == UNSETTLED_JOBS
    assert CARD_KEY.sources(KeyStatus.AVAILABLE) == ["sold"]
