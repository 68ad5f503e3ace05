"""The assistant's pure rules: normalisation, segmentation, order references, the ownership
guard, the urge rule, intent priorities, passages and the answer index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.assistant import domain
from services.assistant.domain import OrderView
from services.assistant.index import KnowledgeIndex

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_normalize_full_width_traditional_and_misspellings() -> None:
    assert domain.normalize("ＡＢＣ１２３，訂單沒到帳！") == "abc123,订单没到账!"
    assert domain.normalize("卡蜜無效  咋办") == "卡密无效 怎么办"
    assert domain.normalize("怎么冲值") == "怎么充值"
    assert domain.normalize("登陆不上") == "登录不上"


def test_tokens_keep_trade_words_drop_stop_words_and_share_one_form() -> None:
    words = domain.tokens("我的订单怎么还没到账啊")
    assert "订单" in words and "到账" in words
    assert not {"我的", "怎么", "啊", "还"} & set(words)
    assert {"卡密", "无效"} <= set(domain.tokens("激活码无效"))
    assert domain.tokens("兩步驗證") == domain.tokens("二次验证")


def test_order_refs_find_ids_and_prefixes_but_not_phone_numbers() -> None:
    full = "3fa8c2d1e4b5a69788990aabbccddeef"
    assert domain.order_refs(f"订单{full}没到") == ([full], [])
    assert domain.order_refs("订单 3fa8c2d1e4 状态") == ([], ["3fa8c2d1e4"])
    assert domain.order_refs("给13800138000充了100元") == ([], [])
    assert domain.order_refs("abcdefabcdef") == ([], [])  # letters only: a word, not an id


def test_owned_by_is_the_guard_that_an_order_is_the_callers() -> None:
    order = OrderView(order_id="o1", user_id="u1", status="paid")
    assert domain.owned_by(order, "u1") is order
    assert domain.owned_by(order, "u2") is None
    assert domain.owned_by(order, None) is None
    assert domain.owned_by(None, "u1") is None


def test_may_urge_follows_the_order_services_rule() -> None:
    paid = OrderView(order_id="o", user_id="u", status="paid", paid_at=NOW - timedelta(minutes=20))
    assert domain.may_urge(paid, NOW, 15) == (True, 0.0)
    allowed, left = domain.may_urge(paid, NOW - timedelta(minutes=10), 15)
    assert not allowed and left == pytest.approx(5)
    urged = OrderView(order_id="o", user_id="u", status="delivering", paid_at=NOW - timedelta(hours=1), urged_at=NOW)
    assert domain.may_urge(urged, NOW + timedelta(minutes=1), 15)[0] is False
    delivered = OrderView(order_id="o", user_id="u", status="delivered", paid_at=NOW - timedelta(hours=1))
    assert domain.may_urge(delivered, NOW, 15) == (False, 0.0)


def test_pick_order_prefers_open_orders_for_where_is_it_and_delivered_for_after_sales() -> None:
    newest_delivered = OrderView(order_id="d", user_id="u", status="delivered")
    older_open = OrderView(order_id="p", user_id="u", status="paid")
    orders = [newest_delivered, older_open]
    assert domain.pick_order(orders, "order_status") is older_open
    assert domain.pick_order(orders, "invalid_key") is newest_delivered
    assert domain.pick_order([], "order_status") is None


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("卡密无效我要退款", "invalid_key"),  # the card key problem first: it carries the ticket
        ("退款多久到账", "refund"),
        ("催单 还没到账", "urge"),
        ("余额充值没到账", "top_up"),
        ("话费充值没到账", "order_status"),
        ("王者点券怎么买", None),  # 点券 is a product, not a coupon
        ("卡密的密码在哪看", None),  # a card key's password is not the account password
        ("转人工 卡密无效", "human"),
    ],
)
def test_intent_priorities(question: str, intent: str | None) -> None:
    detected = domain.detect(question)
    assert (detected.intent if detected else None) == intent


def test_passage_picks_the_matching_sentences_of_a_long_document() -> None:
    body = "。".join(f"第{i}条无关的说明文字用来凑长度" for i in range(20)) + "。退款会退回到账户余额，几分钟到账。"
    text = domain.passage(body, domain.tokens("退款多久到账"))
    assert text.startswith("退款会退回到账户余额") or "退款会退回到账户余额" in text
    assert len(text) <= 240
    assert domain.passage("短文。", ["x"]) == "短文。"


def test_index_ranks_updates_and_removes_documents() -> None:
    index = KnowledgeIndex()
    assert index.search(domain.tokens("实名认证")) == []
    assert index.put("article", "a1", "实名认证说明", "填写姓名和身份证号完成实名认证。", "v1")
    assert not index.put("article", "a1", "实名认证说明", "填写姓名和身份证号完成实名认证。", "v1")  # same version
    index.put("article", "a2", "优惠券使用规则", "下单时选择优惠券。", "v1")
    hits = index.search(domain.tokens("實名認證怎麼弄"))
    assert hits[0].id == "a1" and hits[0].coverage == pytest.approx(1.0)
    assert domain.retrieval_confidence(hits) >= 0.8
    assert index.remove("article:a1") and not index.remove("article:a1")
    assert all(h.id != "a1" for h in index.search(domain.tokens("实名认证")))


def test_confidence_is_low_when_the_question_has_words_no_document_has() -> None:
    index = KnowledgeIndex()
    index.put("article", "a1", "实名认证说明", "填写姓名和身份证号完成实名认证。", "v1")
    index.put("article", "a2", "优惠券使用规则", "下单时选择优惠券。", "v1")
    hits = index.search(domain.tokens("实名认证的时候天气预报火箭发射"))
    assert domain.retrieval_confidence(hits) < 0.45
