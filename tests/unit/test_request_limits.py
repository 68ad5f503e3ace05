"""Request bodies refuse what MongoDB cannot store (shared/limits.py): found by fuzzing as 500s."""

from __future__ import annotations

import msgspec
import pytest

from services.order.schemas import OrderRequest, TemplateIn


@pytest.mark.parametrize("key", ["\u0000", "a\u0000b", "$where", "a.b", ""])
def test_a_recipient_key_mongodb_cannot_store_is_refused(key: str) -> None:
    """POST /orders/templates stored the rows as sent: {"\\u0000": ...} was a 500 from BSON."""
    row = {"sku_id": "s1", "recipient": {key: "x"}}
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"name": "t", "rows": [row]}, type=TemplateIn, strict=True)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"sku_id": "s1", "recipient": {key: "x"}}, type=OrderRequest, strict=True)


def test_recipient_field_names_in_any_script_pass() -> None:
    body = {"sku_id": "s1", "recipient": {"phone": "13800138000", "游戏账号": "abc_123", "qq-id": "1"}}
    assert msgspec.convert(body, type=OrderRequest, strict=True).recipient["游戏账号"] == "abc_123"
