"""The assistant's use cases with an in-memory fake of its store."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from services.assistant import usecases
from services.assistant.domain import OrderView
from services.assistant.index import KnowledgeIndex
from shared.auth import Caller
from shared.contracts.catalog import SkuChanged
from shared.contracts.order import OrderPlaced, OrderStatusChanged, OrderUrged
from shared.contracts.support import AnnouncementChanged, TicketOpened, TicketResolved
from shared.errors import Problem
from tests.unit.test_assistant_helpcenter import (
    BUYER,
    NOW,
    O_DELIVERED,
    O_OTHER,
    O_PAID,
    FakeStore,
    article_event,
    loaded_deps,
    make_deps,
    product_event,
    publish_fixture,
)

ME = Caller(user_id=BUYER)
TX: Any = None  # the fakes ignore the transaction


def ids(answer: Any) -> set[str | None]:
    return {a.order_id for a in answer.actions}


# -- asking about orders ---------------------------------------------------------------------


async def test_where_is_my_order_answers_with_the_callers_latest_open_order() -> None:
    deps = await loaded_deps()
    answer = await usecases.ask(deps, question="我的订单怎么还没到账", order_id=None, caller=ME, now=NOW)
    assert answer.intent == "order_status" and answer.confidence >= 0.9
    assert O_PAID[:8] in answer.answer and "正在发货" in answer.answer and "直充" in answer.answer
    # paid 40 minutes ago, urge wait 15 minutes: the urge is offered for that very order
    assert [(a.kind, a.order_id) for a in answer.actions] == [("view_order", O_PAID), ("urge", O_PAID)]


async def test_someone_elses_order_is_not_found_by_id_in_the_text_or_the_body() -> None:
    deps = await loaded_deps()
    for question, order_id in ((f"订单 {O_OTHER} 到哪了", None), ("这个订单到哪了", O_OTHER)):
        answer = await usecases.ask(deps, question=question, order_id=order_id, caller=ME, now=NOW)
        assert "没有在你的账号下找到这个订单" in answer.answer
        assert O_OTHER[:8] not in answer.answer and "王者" not in answer.answer
        assert ids(answer) <= {None}
    # and a prefix of it neither (only the caller's orders are searched)
    answer = await usecases.ask(deps, question=f"{O_OTHER[:10]} 发货了吗", order_id=None, caller=ME, now=NOW)
    assert "没有在你的账号下找到" in answer.answer and ids(answer) <= {None}


async def test_own_order_found_by_id_prefix_and_full_width_id() -> None:
    deps = await loaded_deps()
    answer = await usecases.ask(deps, question=f"{O_DELIVERED[:9]} 到了没", order_id=None, caller=ME, now=NOW)
    assert O_DELIVERED in ids(answer) and "发货完成" in answer.answer and "查看卡密" in answer.answer
    wide = O_PAID.upper().translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    answer = await usecases.ask(deps, question=f"訂單{wide}到哪了", order_id=None, caller=ME, now=NOW)
    assert O_PAID in ids(answer)


async def test_anonymous_callers_get_the_help_center_only() -> None:
    deps = await loaded_deps()
    answer = await usecases.ask(deps, question=f"订单 {O_PAID} 到哪了", order_id=None, caller=None, now=NOW)
    assert answer.intent == "order_status" and "登录" in answer.answer
    assert O_PAID[:8] not in answer.answer and ids(answer) <= {None}


async def test_urge_is_offered_only_when_the_order_rule_allows_it() -> None:
    deps = await loaded_deps()
    store: FakeStore = deps.store  # type: ignore[assignment]
    store.orders[O_PAID] = replace(store.orders[O_PAID], paid_at=NOW - timedelta(minutes=5))
    answer = await usecases.ask(deps, question="催一下订单", order_id=None, caller=ME, now=NOW)
    assert answer.intent == "urge" and "urge" not in {a.kind for a in answer.actions}
    assert "约 10 分钟后" in answer.answer and "现在还不能催单" in answer.answer
    answer = await usecases.ask(deps, question="催一下订单", order_id=None, caller=ME, now=NOW + timedelta(minutes=11))
    assert ("urge", O_PAID) in [(a.kind, a.order_id) for a in answer.actions]
    # an urge restarts the wait (order.urged)
    await usecases.order_urged(TX, deps, OrderUrged(order_id=O_PAID, user_id=BUYER, status="paid", urged_at=NOW))
    answer = await usecases.ask(deps, question="催单", order_id=None, caller=ME, now=NOW + timedelta(minutes=11))
    assert "urge" not in {a.kind for a in answer.actions}


async def test_delivered_order_is_not_urged_and_unpaid_order_says_pay() -> None:
    deps = await loaded_deps()
    answer = await usecases.ask(deps, question="催单", order_id=O_DELIVERED, caller=ME, now=NOW)
    assert "不需要催单" in answer.answer and "urge" not in {a.kind for a in answer.actions}
    store: FakeStore = deps.store  # type: ignore[assignment]
    store.orders[O_PAID] = replace(
        store.orders[O_PAID], status="pending_payment", paid_at=None, expires_at=NOW + timedelta(minutes=15)
    )
    answer = await usecases.ask(deps, question="订单还没到账", order_id=None, caller=ME, now=NOW)
    assert "还没有付款" in answer.answer and "20:15" in answer.answer  # 12:15 UTC is 20:15 in China


async def test_refund_and_invalid_key_offer_a_ticket_for_that_order() -> None:
    deps = await loaded_deps()
    answer = await usecases.ask(deps, question="卡密提示已被使用", order_id=None, caller=ME, now=NOW)
    assert answer.intent == "invalid_key"
    assert ("open_ticket", O_DELIVERED) in [(a.kind, a.order_id) for a in answer.actions]
    assert answer.sources[0].id == "a-invalid-key"
    answer = await usecases.ask(deps, question="我要退款", order_id=O_PAID, caller=ME, now=NOW)
    assert answer.intent == "refund" and ("open_ticket", O_PAID) in [(a.kind, a.order_id) for a in answer.actions]
    assert "直接取消" in answer.answer  # not delivered yet


async def test_an_open_ticket_is_mentioned_instead_of_offering_another() -> None:
    deps = await loaded_deps()
    await usecases.ticket_opened(
        TX, deps, TicketOpened(ticket_id="t1", order_id=O_DELIVERED, user_id=BUYER, kind="invalid_key")
    )
    answer = await usecases.ask(deps, question="卡密无效", order_id=None, caller=ME, now=NOW)
    assert "已经提交过售后工单" in answer.answer and "open_ticket" not in {a.kind for a in answer.actions}
    resolved = TicketResolved(ticket_id="t1", order_id=O_DELIVERED, user_id=BUYER, action="reject", resolved_by="s")
    await usecases.ticket_resolved(TX, deps, resolved)
    answer = await usecases.ask(deps, question="卡密无效", order_id=None, caller=ME, now=NOW)
    assert ("open_ticket", O_DELIVERED) in [(a.kind, a.order_id) for a in answer.actions]


async def test_refunded_order_says_so_without_offering_a_ticket() -> None:
    deps = await loaded_deps()
    store: FakeStore = deps.store  # type: ignore[assignment]
    store.orders[O_DELIVERED] = replace(store.orders[O_DELIVERED], status="refunded", status_at=NOW)
    answer = await usecases.ask(deps, question="退款了吗", order_id=O_DELIVERED, caller=ME, now=NOW)
    assert "已于" in answer.answer and "退款到你的账户余额" in answer.answer
    assert "open_ticket" not in {a.kind for a in answer.actions}


async def test_human_hand_over_names_an_order_only_when_the_buyer_did() -> None:
    deps = await loaded_deps()
    answer = await usecases.ask(deps, question="转人工", order_id=None, caller=ME, now=NOW)
    assert answer.intent == "human" and [(a.kind, a.order_id) for a in answer.actions] == [("open_ticket", None)]
    answer = await usecases.ask(deps, question=f"转人工 {O_PAID}", order_id=None, caller=ME, now=NOW)
    assert [(a.kind, a.order_id) for a in answer.actions] == [("open_ticket", O_PAID)]


async def test_unknown_question_hands_over_instead_of_guessing() -> None:
    deps = await loaded_deps()
    answer = await usecases.ask(deps, question="可以开增值税发票吗", order_id=None, caller=ME, now=NOW)
    assert answer.intent == "handover" and answer.confidence < 0.6 and answer.sources == []
    assert [a.kind for a in answer.actions] == ["open_ticket"]


async def test_empty_help_center_still_answers_intents_and_hands_over_the_rest() -> None:
    deps = make_deps()
    await usecases.refresh_index(deps)
    answer = await usecases.ask(deps, question="怎么给账户充值", order_id=None, caller=None, now=NOW)
    assert answer.intent == "top_up" and "支付宝" in answer.answer and answer.sources == []
    answer = await usecases.ask(deps, question="卡密在哪里看", order_id=None, caller=None, now=NOW)
    assert answer.intent == "handover"


async def test_blank_question_is_a_validation_problem() -> None:
    deps = make_deps()
    with pytest.raises(Problem) as err:
        await usecases.ask(deps, question=" \u3000 ", order_id=None, caller=None)
    assert err.value.status_code == 422


# -- content follows support's and catalog's events -----------------------------------------

GEM = "量子宝石怎么兑换"


async def test_published_edited_and_unpublished_articles_reach_the_index() -> None:
    deps = make_deps()
    await publish_fixture(deps)
    await usecases.refresh_index(deps)
    assert (await usecases.ask(deps, question=GEM, order_id=None, caller=None)).intent == "handover"

    published = article_event("a-gem", "量子宝石兑换说明", "量子宝石在兑换中心输入口令领取，口令区分大小写。")
    assert await usecases.article_changed(TX, deps, published)
    assert await usecases.refresh_index(deps) == 1
    answer = await usecases.ask(deps, question=GEM, order_id=None, caller=None)
    assert answer.sources[0].id == "a-gem" and "口令" in answer.answer

    edited = msgspec.structs.replace(
        published, body="量子宝石已下线，不能再兑换。", updated_at=NOW + timedelta(minutes=1)
    )
    assert await usecases.article_changed(TX, deps, edited)
    await usecases.refresh_index(deps)
    answer = await usecases.ask(deps, question=GEM, order_id=None, caller=None)
    assert "已下线" in answer.answer and "口令" not in answer.answer

    unpublished = msgspec.structs.replace(edited, published=False, updated_at=NOW + timedelta(minutes=2))
    assert await usecases.article_changed(TX, deps, unpublished)
    assert await usecases.refresh_index(deps) == 1
    assert (await usecases.ask(deps, question=GEM, order_id=None, caller=None)).intent == "handover"


async def test_content_events_apply_once_and_an_older_change_never_winds_back() -> None:
    deps = make_deps()
    published = article_event("a-gem", "量子宝石兑换说明", "量子宝石在兑换中心输入口令领取。")
    deleted = msgspec.structs.replace(published, published=False, deleted=True, updated_at=NOW + timedelta(seconds=5))
    assert await usecases.article_changed(TX, deps, published)
    assert not await usecases.article_changed(TX, deps, published)  # the same change again: nothing
    assert await usecases.article_changed(TX, deps, deleted)
    assert not await usecases.article_changed(TX, deps, deleted)
    assert not await usecases.article_changed(TX, deps, published)  # replayed later (DLQ): still gone
    await usecases.refresh_index(deps)
    assert len(deps.index) == 0

    # A stamp read back from MongoDB keeps milliseconds: the same change is not "newer".
    precise = article_event("a-x", "标题", "正文内容", at=NOW + timedelta(microseconds=123_456))
    assert await usecases.article_changed(TX, deps, precise)
    store: FakeStore = deps.store  # type: ignore[assignment]
    store.knowledge["article:a-x"]["version"] = NOW + timedelta(microseconds=123_000)
    assert not await usecases.article_changed(TX, deps, precise)

    # A draft never published leaves nothing behind.
    draft = article_event("a-draft", "草稿", "还没写完", published=False)
    assert not await usecases.article_changed(TX, deps, draft) and "article:a-draft" not in store.knowledge


async def test_announcements_follow_their_events() -> None:
    deps = make_deps()
    note = AnnouncementChanged(
        announcement_id="n-gem",
        published=True,
        title="量子宝石活动",
        body="量子宝石兑换活动本周五截止。",
        updated_at=NOW,
    )
    await usecases.announcement_changed(TX, deps, note)
    await usecases.refresh_index(deps)
    answer = await usecases.ask(deps, question="量子宝石兑换活动什么时候截止", order_id=None, caller=None)
    assert answer.sources[0].kind == "announcement" and answer.sources[0].id == "n-gem"
    gone = msgspec.structs.replace(note, published=False, updated_at=NOW + timedelta(minutes=1))
    await usecases.announcement_changed(TX, deps, gone)
    assert await usecases.refresh_index(deps) == 1 and len(deps.index) == 0


async def test_a_new_replica_loads_the_whole_store_and_follows_it() -> None:
    first = make_deps()
    await publish_fixture(first)
    await usecases.refresh_index(first)
    second = replace(first, index=KnowledgeIndex(), cursor=None)  # same store, a fresh process
    assert await usecases.refresh_index(second) == len(first.index) > 0
    assert await usecases.refresh_index(second) == 0  # nothing new: nothing applied twice
    # the other replica consumed an unpublication
    gone = article_event("a-how-to-buy", "x", "y", published=False, at=NOW + timedelta(minutes=1))
    await usecases.article_changed(TX, first, gone)
    assert await usecases.refresh_index(second) == 1 and len(second.index) == len(first.index) - 1


async def test_product_notes_follow_product_events_and_sku_events_carry_no_price() -> None:
    deps = make_deps()
    notes = "兑换方法：打开腾讯视频 App，进入「我的 → 兑换 VIP」，输入卡密即可开通会员。"
    await usecases.product_changed(TX, deps, product_event("p-tencent", "腾讯视频VIP会员月卡", notes, listed=False))
    await usecases.refresh_index(deps)
    assert len(deps.index) == 0  # not listed yet: no SKU on sale

    await usecases.product_changed(TX, deps, product_event("p-tencent", "腾讯视频VIP会员月卡", notes, revision=2))
    await usecases.refresh_index(deps)
    answer = await usecases.ask(deps, question="腾讯视频会员怎么兑换", order_id=None, caller=None)
    assert answer.sources[0].kind == "product" and "兑换 VIP" in answer.answer

    event = SkuChanged(
        sku_id="s1",
        revision=2,
        name="月卡",
        product_id="p-tencent",
        product_name="腾讯视频VIP会员月卡",
        category_id="c1",
        category_name="视频会员",
        scenario_id="sc1",
        face_value_cents=2500,
        prices={"retail": 2000, "agent": 1500},
        delivery_mode="auto",
    )
    await usecases.learn_sku(TX, deps, event)
    store: FakeStore = deps.store  # type: ignore[assignment]
    assert store.skus["s1"]["label"] == "腾讯视频VIP会员月卡 月卡"
    assert "prices" not in store.skus["s1"]  # never a price, so never an agent's cost
    await usecases.learn_sku(TX, deps, msgspec.structs.replace(event, revision=1, name="旧名字"))
    assert store.skus["s1"]["label"] == "腾讯视频VIP会员月卡 月卡"  # an older revision changes nothing
    answer = await usecases.ask(deps, question="腾讯视频会员怎么兑换", order_id=None, caller=None)
    assert "1500" not in answer.answer and "15.00" not in answer.answer

    # an older revision replayed changes nothing; unlisted (last SKU off sale), it is taken down
    old = product_event("p-tencent", "腾讯视频VIP会员月卡", "旧说明", revision=1)
    assert not await usecases.product_changed(TX, deps, old)
    unlisted = product_event("p-tencent", "腾讯视频VIP会员月卡", notes, revision=3, listed=False)
    assert await usecases.product_changed(TX, deps, unlisted)
    assert await usecases.refresh_index(deps) == 1
    answer = await usecases.ask(deps, question="腾讯视频会员怎么兑换", order_id=None, caller=None)
    assert all(s.kind != "product" for s in answer.sources)


# -- the orders projection -------------------------------------------------------------------


async def test_order_events_build_the_projection_once_and_in_order() -> None:
    deps = make_deps()
    placed = OrderPlaced(
        order_id="o1",
        user_id=BUYER,
        sku_id="s1",
        quantity=2,
        unit_price_cents=1000,
        discount_cents=0,
        total_cents=2000,
        delivery_mode="manual",
        category_id="c1",
        expires_at=NOW + timedelta(minutes=15),
    )
    await usecases.order_placed(TX, deps, placed, NOW)

    def changed(status: str, at_minutes: int) -> OrderStatusChanged:
        return OrderStatusChanged(
            order_id="o1",
            user_id=BUYER,
            status=status,
            previous_status=None,
            sku_id="s1",
            quantity=2,
            total_cents=2000,
            at=NOW + timedelta(minutes=at_minutes),
        )

    await usecases.order_status_changed(TX, deps, changed("paid", 1))
    await usecases.order_status_changed(TX, deps, changed("delivering", 2))
    await usecases.order_status_changed(TX, deps, changed("paid", 1))  # a replay: ignored
    store: FakeStore = deps.store  # type: ignore[assignment]
    view: OrderView = store.orders["o1"]
    assert (view.status, view.paid_at, view.delivery_mode) == ("delivering", NOW + timedelta(minutes=1), "manual")
    answer = await usecases.ask(deps, question="订单到哪了", order_id=None, caller=ME, now=NOW + timedelta(minutes=5))
    assert "人工发货" in answer.answer and "o1" in ids(answer)
    stranger = Caller(user_id="someone-else")
    answer = await usecases.ask(deps, question="订单到哪了", order_id="o1", caller=stranger, now=NOW)
    assert "没有在你的账号下找到" in answer.answer and ids(answer) <= {None}
