"""A realistic help center for the assistant's unit tests and evaluation, delivered as support's
and catalog's content events, and an in-memory fake of its store (the methods of `AssistantStore`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.assistant.deps import AssistantDeps
from services.assistant.domain import OrderView
from services.assistant.index import KnowledgeIndex
from services.assistant.settings import AssistantSettings
from shared.contracts.catalog import ProductChanged
from shared.contracts.support import AnnouncementChanged, ArticleChanged

ARTICLES: dict[str, tuple[str, str]] = {
    "a-how-to-buy": (
        "新手下单流程：怎么购买商品",
        "第一步，在首页或分类里找到要买的商品（例如话费充值、游戏点卡、视频会员），点进商品详情页选择面值。\n"
        "第二步，填写充值账号等收货信息（手机号、游戏ID、QQ号），提交前请在信息预览里再核对一遍。\n"
        "第三步，选择用账户余额支付，或者用支付宝、微信直接付款。\n"
        "第四步，付款成功后到「订单中心」查看进度：自动发货的卡密会直接显示在订单详情里。新手首次购买建议先买小面额试一试。",
    ),
    "a-delivery-time": (
        "发货时间与到账说明",
        "自动发货的商品（卡密类）付款后系统立即发货，通常 1 分钟内就能在订单详情看到卡密。\n"
        "直充商品（话费、游戏点券直充）一般 1–10 分钟到账，晚上和月初高峰期可能延迟到 30 分钟。\n"
        "人工发货的商品由客服处理，一般 1–5 小时内完成，节假日顺延。\n"
        "超过以上时间还没有到账，可以在订单详情里点「催单」，或者联系客服并提供订单号。",
    ),
    "a-where-keys": (
        "卡密在哪里查看、怎么使用",
        "购买成功后，进入「订单中心」，在「待使用」或「已完成」里打开订单详情，点「查看卡密」即可显示卡号和密码，"
        "卡密只显示给下单的本人。\n复制卡密后，到对应平台的兑换或充值页面粘贴使用。"
        "卡密有有效期，请在有效期内使用，过期作废。商品不会自动发到手机短信，需要自己到订单里查看。",
    ),
    "a-invalid-key": (
        "卡密无效、提示已被使用怎么办",
        "先检查：卡密是否完整复制（不要多复制空格）、是否在有效期内、兑换的平台和区服是否和商品说明一致。\n"
        "如果确认卡密无效或提示已被使用，请在订单详情里申请售后，上传兑换失败的截图作为凭证。"
        "客服核实后会为你补发新卡密或退款，处理时效一般 24–48 小时。",
    ),
    "a-after-sales": (
        "售后申请说明（补发与退款）",
        "以下情况可以申请售后：商品没有按约定交付（充值失败、一直未到账）、与描述不符（面值不对、会员天数不足）、"
        "卡密或激活码无法使用。\n申请方法：在订单详情点「申请售后」，选择问题类型，简要说明并上传截图等凭证，"
        "提交后会生成工单。客服会在 24–48 小时内处理，结果是补发、退款或说明原因。已经使用过的虚拟商品无法售后。",
    ),
    "a-refund": (
        "退款规则",
        "还没有发货的订单可以直接取消，付款金额原路退回到账户余额。\n"
        "直充失败的订单系统会自动退款到余额。已经发货的卡密类商品，卡密一经查看不支持无理由退款，"
        "如卡密有问题请申请售后。\n退款统一退回到账户余额，通常几分钟内到账，余额可以继续购买。",
    ),
    "a-urge": (
        "催单说明",
        "付款后超过正常发货时间还没到账的订单可以催单：在订单详情里点「催单」，客服会优先处理。"
        "付款后 15 分钟内不能催单，每次催单之间也需要间隔 15 分钟。已经发货或已退款的订单不需要催单。",
    ),
    "a-topup": (
        "账户充值方式",
        "账户余额可以通过支付宝、微信支付或银行转账充值：进入「钱包」点「充值」，输入金额并选择支付方式。\n"
        "支付宝和微信支付即时到账，不收手续费；银行转账需要客服核对到账，一般 1–2 小时入账。"
        "单笔最低充值 10 元。充值活动期间充值可额外获得积分。",
    ),
    "a-topup-missing": (
        "充值未到账怎么办",
        "用支付宝或微信充值后余额没有增加：请先确认支付是否成功（查看支付宝或微信的账单），然后刷新钱包页面，"
        "一般几秒到几分钟内到账。\n超过 30 分钟仍未到账，请提交工单并附上支付凭证截图，客服核实后手动补单。"
        "银行转账需要人工核对，到账较慢属于正常情况。",
    ),
    "a-real-name": (
        "实名认证说明",
        "根据国家网络实名制要求，部分商品（如话费大额充值、试用商品）需要先完成实名认证。\n"
        "认证方法：在「我的 → 实名认证」填写真实姓名和身份证号，系统即时校验；校验不通过时可以上传身份证正反面"
        "和手持照片转人工审核，审核一般在 1 个工作日内完成。每个身份证只能认证一个账号，试用商品每人限一次。",
    ),
    "a-coupon": (
        "优惠券使用规则",
        "优惠券在「钱包 → 优惠券」里查看，下单时在确认页选择或输入券码，满足使用门槛（如满 50 减 5）才能使用。\n"
        "每个订单只能用一张券，不能叠加。订单未付款时券会被占用；订单取消、超时关闭或退款后券会退回。"
        "过期的券无法使用。新用户注册后会发放新人券。",
    ),
    "a-points": (
        "积分规则",
        "每消费 1 元获得 1 积分，退款的订单会扣回对应积分。积分可以在活动页面兑换优惠券，积分长期有效。",
    ),
    "a-password": (
        "忘记密码、修改密码",
        "忘记登录密码：在登录页点「忘记密码」，输入注册的手机号或邮箱，收到验证码后设置新密码。\n"
        "修改密码：登录后进入「账号安全」修改。为了安全，重置密码后其他设备上的登录会失效。",
    ),
    "a-2fa": (
        "二次验证（谷歌验证器）设置与丢失",
        "在「账号安全」开启二次验证：用谷歌验证器等身份验证器 App 扫描二维码，输入 6 位动态码确认即可开启。"
        "开启后每次登录都需要输入动态码。\n手机丢失或验证器被删除：请联系客服，核实身份后为你关闭二次验证。",
    ),
    "a-security": (
        "账号被盗、异地登录怎么办",
        "发现账号异常登录或被盗：请立即修改密码并开启二次验证，然后联系客服冻结账号，核对最近的订单和余额变动。"
        "平台客服不会向你索要密码和验证码。",
    ),
    "a-batch": (
        "批量下单（Excel 导入）",
        "需要一次给很多号码充值时可以批量下单：下载模板，在 Excel 或 CSV 表格里每行填写商品 SKU、数量和充值号码，"
        "上传后系统逐行校验，有问题的行会提示原因，其余行一次性提交，用余额统一支付。",
    ),
    "a-subscription": (
        "自动充值（定时下单）",
        "每月或每周固定充值（比如每个月给家人充话费）可以设置自动充值：选择商品、充值号码，设定每月几号或每周几、"
        "几点执行。到时间系统自动用余额下单；余额不足或缺货时这一期不会下单，并会通知你。可随时取消自动充值。",
    ),
    "a-agent": (
        "成为代理、开通分站",
        "想做代理：在「代理中心」提交申请，审核通过后获得代理等级和拿货价格。\n"
        "代理可以开通自己的分站，设置分站名称和加价比例，通过分站注册的用户在分站下单，每笔成交后代理获得佣金。"
        "佣金满足条件后可以申请提现，客服审核后打款。",
    ),
    "a-api": (
        "API 对接说明",
        "企业和代理可以通过 API 对接下单：在「账号安全」创建 API Key，请求用密钥做 HMAC-SHA256 签名。"
        "订单状态变化可以通过 Webhook 回调或订阅事件获取，详见开发者文档。",
    ),
    "a-cancel": (
        "取消订单",
        "付款后还没有发货的订单，可以在下单后 10 分钟内在订单详情点「取消订单」，款项退回余额。"
        "已经发货的订单不能取消，有问题请申请售后。未付款的订单超时会自动关闭。",
    ),
    "a-wrong-number": (
        "充值号码或账号填错了怎么办",
        "下单前请务必核对手机号、游戏 ID 和区服。订单还没有处理时可以立即取消重拍；"
        "直充已经充到填错的号码上的，无法撤回，平台也无法追回，请谅解。",
    ),
}

ANNOUNCEMENTS: dict[str, tuple[str, str]] = {
    "n-spring": (
        "春节期间发货安排",
        "春节假期（2 月 9 日至 2 月 17 日）期间，人工发货的商品暂停处理，节后按顺序发货；"
        "自动发货和直充商品正常24小时发货。",
    ),
    "n-maintenance": (
        "系统维护公告",
        "为提升服务质量，平台将于 12 月 3 日凌晨 2:00–4:00 进行系统维护，维护期间暂停下单和充值，已付款订单不受影响。",
    ),
    "n-mobile-sale": (
        "中国移动话费 95 折活动",
        "本周中国移动话费直充享 95 折，每个号码每天限购 3 次，活动商品不与优惠券同时使用。",
    ),
}

PRODUCTS: dict[str, tuple[str, str]] = {
    "p-tencent": (
        "腾讯视频VIP会员月卡",
        "兑换方法：打开腾讯视频 App，进入「我的 → 兑换 VIP」，输入卡密即可开通会员；网页端在会员中心兑换。"
        "支持 QQ 和微信登录的账号，不支持电视端（云视听极光）。一张卡只能兑换一次。",
    ),
    "p-wzry": (
        "王者荣耀点券直充",
        "下单需填写 QQ 号或微信号，并选择正确区服（安卓QQ区、安卓微信区、苹果QQ区、苹果微信区）。"
        "点券直充一般 1–10 分钟到账，区服填错充错无法退回。",
    ),
    "p-mobile": (
        "中国移动话费直充",
        "支持全国中国移动手机号，携号转网的号码不支持充值。充值一般 10 分钟内到账，高峰期最长 24 小时；"
        "充值失败会自动退款到余额。空号、停机号码请勿充值。",
    ),
}

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BUYER = "u-buyer-0001"
OTHER = "u-other-0002"
O_PAID = "3fa8c2d1e4b5a69788990aabbccddeef"
O_DELIVERED = "7b1e9c0d2f3a4b5c6d7e8f9012345678"
O_PENDING = "c0ffee00112233445566778899aabbcc"
O_OTHER = "deadbeef00112233445566778899aabb"


def orders() -> list[OrderView]:
    return [
        OrderView(
            order_id=O_PENDING,
            user_id=BUYER,
            status="expired",
            sku_name="腾讯视频VIP会员月卡 月卡",
            created_at=NOW - timedelta(days=3),
            status_at=NOW - timedelta(days=3),
        ),
        OrderView(
            order_id=O_DELIVERED,
            user_id=BUYER,
            status="delivered",
            sku_name="腾讯视频VIP会员月卡 月卡",
            created_at=NOW - timedelta(days=1),
            paid_at=NOW - timedelta(days=1),
            delivered_at=NOW - timedelta(days=1),
            status_at=NOW - timedelta(days=1),
        ),
        OrderView(
            order_id=O_PAID,
            user_id=BUYER,
            status="paid",
            sku_name="中国移动话费直充 100元",
            delivery_mode="direct",
            created_at=NOW - timedelta(minutes=40),
            paid_at=NOW - timedelta(minutes=40),
            status_at=NOW - timedelta(minutes=40),
        ),
        OrderView(
            order_id=O_OTHER,
            user_id=OTHER,
            status="paid",
            sku_name="王者荣耀点券直充 60点券",
            created_at=NOW - timedelta(minutes=5),
            paid_at=NOW - timedelta(minutes=50),
            status_at=NOW - timedelta(minutes=50),
        ),
    ]


class FakeStore:
    """In memory, the same methods as AssistantStore (the `tx` arguments are ignored)."""

    def __init__(self, order_views: list[OrderView] | None = None) -> None:
        self.knowledge: dict[str, dict[str, Any]] = {}
        self.skus: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, OrderView] = {o.order_id: o for o in order_views or []}
        self.tickets: dict[str, str] = {}

    async def put_content(
        self,
        tx: Any,
        kind: str,
        source_id: str,
        *,
        version: Any,
        published: bool,
        title: str,
        body: str,
        fingerprint: str,
        now: datetime,
    ) -> bool:
        key = f"{kind}:{source_id}"
        fingerprint = fingerprint if published else ""
        current = self.knowledge.get(key)
        if current is None and not published:
            return False
        if current is not None:
            if current["version"] > version:
                return False
            if current["published"] == published and current["fingerprint"] == fingerprint:
                return False
        doc = dict(current or {}, kind=kind, source_id=source_id, version=version, published=published)
        doc.update(
            changed_at=now, fingerprint=fingerprint, **({"title": title, "body": body} if published else {"body": ""})
        )
        self.knowledge[key] = doc
        return True

    async def changed_since(self, since: datetime | None) -> list[dict[str, Any]]:
        docs = [d for d in self.knowledge.values() if since is None or d["changed_at"] >= since]
        return sorted(docs, key=lambda d: d["changed_at"])

    async def put_sku(self, tx: Any, sku: dict[str, Any]) -> bool:
        current = self.skus.get(sku["_id"])
        if current is not None and current["revision"] >= sku["revision"]:
            return False
        self.skus[sku["_id"]] = dict(sku)
        return True

    async def order_placed(self, tx: Any, order: dict[str, Any]) -> None:
        current = self.orders.get(order["_id"])
        fields = {k: v for k, v in order.items() if k not in ("_id", "sku_id", "total_cents")}
        if current is None:
            self.orders[order["_id"]] = OrderView(
                order_id=order["_id"], status="pending_payment", status_at=order["created_at"], **fields
            )
        else:
            self.orders[order["_id"]] = replace(current, **fields)

    async def order_status(self, tx: Any, order_id: str, fields: dict[str, Any], at: datetime) -> bool:
        current = self.orders.get(order_id)
        if current is not None and current.status_at is not None and current.status_at > at:
            return False
        values = {k: v for k, v in fields.items() if k in ("user_id", "status", "quantity")}
        view = current or OrderView(
            order_id=order_id, user_id=fields["user_id"], status=fields["status"], created_at=at
        )
        view = replace(view, **values, status_at=at)
        if fields["status"] == "paid" and view.paid_at is None:
            view = replace(view, paid_at=at)
        if fields["status"] == "delivered" and view.delivered_at is None:
            view = replace(view, delivered_at=at)
        self.orders[order_id] = view
        return True

    async def order_urged(self, tx: Any, order_id: str, user_id: str, urged_at: datetime) -> None:
        current = self.orders.get(order_id)
        if current is not None and current.user_id == user_id:
            self.orders[order_id] = replace(current, urged_at=max(urged_at, current.urged_at or urged_at))

    async def ticket_opened(self, tx: Any, order_id: str, user_id: str, ticket_id: str) -> None:
        current = self.orders.get(order_id)
        if current is not None and current.user_id == user_id:
            self.orders[order_id] = replace(current, ticket_open=True)
        self.tickets[order_id] = ticket_id

    async def ticket_resolved(self, tx: Any, order_id: str, ticket_id: str) -> None:
        if self.tickets.get(order_id) == ticket_id:
            del self.tickets[order_id]
            self.orders[order_id] = replace(self.orders[order_id], ticket_open=False)

    async def own_order(self, user_id: str, order_id: str) -> OrderView | None:
        order = self.orders.get(order_id)
        return order if order is not None and order.user_id == user_id else None

    async def own_orders_starting(self, user_id: str, prefix: str, limit: int = 2) -> list[OrderView]:
        return [o for o in self.orders.values() if o.user_id == user_id and o.order_id.startswith(prefix)][:limit]

    async def recent_orders(self, user_id: str, limit: int = 5) -> list[OrderView]:
        mine = [o for o in self.orders.values() if o.user_id == user_id]
        return sorted(mine, key=lambda o: o.created_at or NOW, reverse=True)[:limit]


def make_deps(order_views: list[OrderView] | None = None, **settings: Any) -> AssistantDeps:
    return AssistantDeps(
        settings=AssistantSettings(**settings),
        store=FakeStore(order_views),  # type: ignore[arg-type]
        index=KnowledgeIndex(),
    )


def article_event(
    article_id: str, title: str, body: str, *, published: bool = True, at: datetime = NOW
) -> ArticleChanged:
    return ArticleChanged(
        article_id=article_id, published=published, title=title, body=body, category="help", updated_at=at
    )


def product_event(product_id: str, name: str, notes: str, *, revision: int = 1, listed: bool = True) -> ProductChanged:
    return ProductChanged(
        product_id=product_id, revision=revision, category_id="c1", name=name, service_notes=notes, listed=listed
    )


async def publish_fixture(deps: AssistantDeps) -> None:
    """The fixture help center as support's and catalog's events deliver it."""
    from services.assistant import usecases

    for article_id, (title, body) in ARTICLES.items():
        await usecases.article_changed(None, deps, article_event(article_id, title, body))  # type: ignore[arg-type]
    for announcement_id, (title, body) in ANNOUNCEMENTS.items():
        event = AnnouncementChanged(
            announcement_id=announcement_id, published=True, title=title, body=body, updated_at=NOW
        )
        await usecases.announcement_changed(None, deps, event)  # type: ignore[arg-type]
    for product_id, (name, notes) in PRODUCTS.items():
        await usecases.product_changed(None, deps, product_event(product_id, name, notes))  # type: ignore[arg-type]


async def loaded_deps(**settings: Any) -> AssistantDeps:
    """Deps whose index holds the whole fixture help center, as after start-up."""
    from services.assistant import usecases

    deps = make_deps(orders(), **settings)
    await publish_fixture(deps)
    await usecases.refresh_index(deps)
    return deps


def test_fixture_help_center_is_complete() -> None:
    assert len(ARTICLES) >= 20 and len(ANNOUNCEMENTS) >= 3 and len(PRODUCTS) >= 3
    assert all(title and len(body) > 40 for title, body in [*ARTICLES.values(), *ANNOUNCEMENTS.values()])
