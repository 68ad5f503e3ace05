"""The assistant's rules, pure (no I/O): text normalisation (full-width, Traditional -> Simplified,
buyers' usual misspellings), segmentation, intent rules, confidence, the guard that an order is the
caller's, and the composition of every answer. Everything here is unit-tested on its own.

Answers are composed from fixed Chinese sentences, the caller's own order projection and passages
of published content: nothing is generated, so nothing can be made up, and the question is never
treated as an instruction (it is only matched against rules and the index).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

import jieba
import msgspec
from opencc import OpenCC

SourceKind = Literal["article", "announcement", "product"]
ActionKind = Literal["view_order", "urge", "open_ticket", "top_up", "real_name"]
Intent = Literal[
    "order_status",
    "urge",
    "refund",
    "invalid_key",
    "top_up",
    "real_name",
    "coupon",
    "account_security",
    "human",
    "greeting",
    "faq",
    "handover",
]

CHINA = timezone(timedelta(hours=8), "CST")
CONFIDENT = 0.6
"""At or above this an answer counts as confident (the evaluation's confident-wrong rate)."""


# -- answers ------------------------------------------------------------------------------


class Source(msgspec.Struct, frozen=True, kw_only=True):
    kind: SourceKind
    id: str
    title: str


class Action(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    kind: ActionKind
    order_id: str | None = None


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    answer: str
    intent: Intent
    confidence: float
    sources: list[Source] = []
    actions: list[Action] = []


# -- text ---------------------------------------------------------------------------------

_T2S = OpenCC("t2s")

# Buyers' usual misspellings and colloquialisms, applied after Traditional -> Simplified (so 到帳
# becomes 到帐 first, then 到账). Longest first, so a longer form wins over its prefix.
_REWRITES: dict[str, str] = {
    "到帐": "到账",
    "帐户": "账户",
    "帐号": "账号",
    "冲值": "充值",
    "充直": "充值",
    "卡蜜": "卡密",
    "卡米": "卡密",
    "卡秘": "卡密",
    "退欵": "退款",
    "付欵": "付款",
    "实明": "实名",
    "认正": "认证",
    "身分证": "身份证",
    "优慧": "优惠",
    "优惠卷": "优惠券",
    "密马": "密码",
    "蜜码": "密码",
    "登陆": "登录",
    "发贷": "发货",
    "验正": "验证",
    "谷哥": "谷歌",
    "二步验证": "二次验证",
    "两步验证": "二次验证",
    "双重验证": "二次验证",
    "双因素": "二次验证",
    "肿么": "怎么",
    "咋办": "怎么办",
    "咋整": "怎么办",
    "咋弄": "怎么弄",
    "咋": "怎么",
    "神马": "什么",
    "啥": "什么",
    "木有": "没有",
    "米有": "没有",
    "莫有": "没有",
    "为毛": "为什么",
    "腫麼": "怎么",
}
_REWRITE_RE = re.compile("|".join(re.escape(k) for k in sorted(_REWRITES, key=len, reverse=True)))


def normalize(text: str) -> str:
    """One form for everything matched: NFKC (full-width letters, digits and punctuation to
    half-width), Traditional to Simplified, lower case, misspellings fixed, spaces collapsed."""
    out = unicodedata.normalize("NFKC", text)
    out = _T2S.convert(out).lower()
    out = _REWRITE_RE.sub(lambda m: _REWRITES[m.group(0)], out)
    return re.sub(r"\s+", " ", out).strip()


def _split(words: str) -> list[str]:
    return words.split()


# Words of the trade the stock dictionary splits badly (没到账 -> 没到 / 账).
_WORDS = _split(
    "卡密 到账 没到账 未到账 催单 售后 实名 实名认证 优惠券 优惠码 折扣码 二次验证 验证器 谷歌验证器 身份验证器 "
    "动态码 手动发货 自动发货 人工发货 直充 话费 余额 充值 退款 订单号 已使用 已被使用 兑换码 激活码 点券 分站 代理 "
    "批量下单 自动充值 提现 积分 卡号 待支付 待使用 登录 忘记密码 找回密码 修改密码 人脸识别 转人工 工单 补发 发货 "
    "会员 月卡 开通 激活 充错 有效期 过期 异地登录 支付宝 微信 银行转账 发票 佣金 加盟"
)

jieba.setLogLevel(logging.WARNING)
_SEG = jieba.Tokenizer()
for _w in _WORDS:
    _SEG.add_word(_w, freq=200_000)

_STOP = frozenset(
    _split(
        "的 了 吗 呢 啊 呀 吧 么 嘛 哦 哈 啦 喔 额 呃 嗯 我 你 您 他 她 它 我们 你们 是 在 有 和 与 及 就 都 "
        "也 还 要 想 请问 请 一下 怎么 怎么样 怎样 如何 什么 为什么 哪个 能 能不能 可以 可不可以 会 "
        "这 那 这个 那个 个 给 把 被 让 下 上 啊啊 一个 现在 已经 刚刚 刚才 时候 多少 谢谢 麻烦 帮 帮我 "
        "我的 你好 您好 在吗 客服 亲 呗 吖 哇 嘿 着 过 得 地 之 其 或 而 但 如果 因为 所以 然后 是不是 是否 "
        "不 没 没有 一直 又 再 才 很 太 好 最 更 里 中 说 看 做 弄 办 当 成为 一般 通常 大概 需要 "
        "怎么办 怎么弄 怎么搞 搞 该 我该 应该 操作 处理 解决 咨询 问 问题 一些"
    )
)
# Symmetric on questions and documents: both sides say one word for one idea.
_CANON: dict[str, str] = {
    # Negation carries no topic: "还没有到账" and "到账时间" are about the same thing.
    "没到账": "到账",
    "没收到": "到账",
    "收到": "到账",
    "未到账": "到账",
    "没到": "到账",
    "不到账": "到账",
    "退钱": "退款",
    "退货": "退款",
    "退回": "退款",
    "退": "退款",
    "2fa": "二次验证",
    "totp": "二次验证",
    "谷歌验证器": "验证器",
    "身份验证器": "验证器",
    "google": "谷歌",
    "激活码": "卡密",
    "兑换码": "卡密",
    "卡号": "卡密",
    "充钱": "充值",
    "加钱": "充值",
    "存钱": "充值",
    "优惠码": "优惠券",
    "折扣码": "优惠券",
    "券": "优惠券",
    "认证": "实名认证",
    "实名": "实名认证",
    "身份证": "实名认证",
    "登入": "登录",
    "快点": "催单",
    "加急": "催单",
    "催": "催单",
    "发": "发货",
    "失效": "无效",
    "不能用": "无效",
    "用不了": "无效",
    "错误": "无效",
    "账户": "账号",
    "帐号": "账号",
    "钱包": "余额",
    "充错": "填错",
    "输错": "填错",
    "打错": "填错",
    "写错": "填错",
    "在哪": "哪里",
    "去哪": "哪里",
    "哪儿": "哪里",
    "哪": "哪里",
    "找": "查看",
    "多久": "时间",
    "多长": "时间",
    "多少天": "时间",
    "改": "修改",
    "多长时间": "时间",
    "多少时间": "时间",
    "几分钟": "时间",
    "时长": "时间",
    "时效": "时间",
}
_TOKEN_RE = re.compile(r"[\w\u4e00-\u9fff]")


def tokens(text: str) -> list[str]:
    """The words of a (normalised) text for the index: jieba's search mode (long words and their
    parts), without stop words or punctuation, each in its one canonical form."""
    out: list[str] = []
    for word in _SEG.lcut_for_search(normalize(text)):
        word = word.strip()
        if not word or word in _STOP or not _TOKEN_RE.search(word) or word.isdigit():
            continue
        out.append(_CANON.get(word, word))
    return out


def warm() -> None:
    """Load the segmentation dictionary now (about a second) rather than on the first question."""
    _SEG.initialize()


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[。！？!?；;])|\n+", text)
    return [p.strip() for p in parts if p and p.strip()]


def passage(body: str, query: Sequence[str], *, limit: int = 240) -> str:
    """The part of a document that answers: a short document whole, else the run of three
    sentences sharing the most words with the question (the earliest on a tie), cut at `limit`."""
    parts = sentences(body)
    if not parts:
        return ""
    start = 0
    if len(body) > limit:
        wanted = set(query)
        scores = [len(wanted & set(tokens(p))) for p in parts]
        start = max(range(len(parts)), key=lambda i: (sum(scores[i : i + 3]), -i))
    out = ""
    for part in parts[start:]:
        if out and len(out) + len(part) > limit:
            break
        out += part if not out or out.endswith(("。", "！", "？", "；")) else "；" + part
    if len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


# -- order references ----------------------------------------------------------------------

_FULL_ID = re.compile(r"(?<![0-9a-z])[0-9a-f]{32}(?![0-9a-z])")
_PART_ID = re.compile(r"(?<![0-9a-z])[0-9a-f]{8,31}(?![0-9a-z])")


def order_refs(text: str) -> tuple[list[str], list[str]]:
    """(whole order ids, id prefixes of 8+ characters) written in a question. A prefix must mix
    letters and digits, so a phone number or an amount is never taken for an order."""
    norm = normalize(text)
    full = _FULL_ID.findall(norm)
    parts = [p for p in _PART_ID.findall(norm) if re.search(r"[a-f]", p) and re.search(r"\d", p)]
    return full, parts


@dataclass(frozen=True)
class OrderView:
    """What the assistant knows of one order (its projection): never card keys, never prices of
    another level, never anyone else's order."""

    order_id: str
    user_id: str
    status: str
    sku_name: str = ""
    quantity: int = 1
    total_cents: int = 0
    delivery_mode: str = "auto"
    created_at: datetime | None = None
    paid_at: datetime | None = None
    delivered_at: datetime | None = None
    expires_at: datetime | None = None
    status_at: datetime | None = None
    urged_at: datetime | None = None
    ticket_open: bool = False
    """An after-sales ticket on it is waiting for staff (support.ticket-opened, not yet resolved)."""


def owned_by(order: OrderView | None, user_id: str | None) -> OrderView | None:
    """The order if it is the caller's, else None: someone else's order is "not found"."""
    if order is None or user_id is None or order.user_id != user_id:
        return None
    return order


OPEN_STATUSES = frozenset({"pending_payment", "paid", "delivering"})


def pick_order(orders: Sequence[OrderView], intent: Intent) -> OrderView | None:
    """Which of the caller's recent orders (newest first) a question without an id means: the
    newest still open one for "where is it" and urges, the newest delivered one for an invalid
    card key or after-sales, else the newest."""
    if not orders:
        return None
    if intent in ("order_status", "urge"):
        return next((o for o in orders if o.status in OPEN_STATUSES), orders[0])
    if intent in ("invalid_key", "refund"):
        return next((o for o in orders if o.status == "delivered"), orders[0])
    return orders[0]


def may_urge(order: OrderView, now: datetime, wait_minutes: float) -> tuple[bool, float]:
    """The order service's urge rule (paid, not delivered, `wait_minutes` after payment or the
    last urge): (allowed now, minutes still to wait)."""
    if order.status not in ("paid", "delivering") or order.paid_at is None:
        return False, 0.0
    since = max(t for t in (order.paid_at, order.urged_at) if t is not None)
    left = wait_minutes - (now - since).total_seconds() / 60
    return left <= 0, max(left, 0.0)


# -- intents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    intent: Intent
    pattern: re.Pattern[str]
    strength: float
    hint: str = ""
    """Words added to the retrieval query, so the intent's own help article comes first."""


def _rule(intent: Intent, pattern: str, strength: float, hint: str = "") -> Rule:
    return Rule(intent, re.compile(pattern), strength, hint)


_KEYWORDS = r"(卡密|激活码|兑换码|卡号|cdk|cdkey)"
_BROKEN = (
    r"(无效|不能用|用不了|错误|不对|失效|已被使用|已使用|被用|被人用|充不进|兑换不了|兑换失败|激活不了|"
    r"激活失败|提示|显示|过期|不正确)"
)
_NOT_ARRIVED = (
    r"(没到账|没收到|还没到|没到|没发货|未到账|不到账|没有到账|没有收到|没有发货|没动静|到哪了|到哪里了|怎么还没|"
    r"什么时候能?到|什么时候能?发|多久到|多久能到|多久发货|订单状态|发货了吗|发货没|到了没|处理中|在处理|卡住|卡在|"
    r"一直显示|一直是|一直在|查一下|查下|查询订单|帮我看看|看一下订单)"
)

# First match in this order wins; a stronger later rule does not override an earlier one.
RULES: tuple[Rule, ...] = (
    _rule("human", r"转人工|人工客服|真人|找人工|要人工|联系客服|客服电话|投诉|人工服务", 0.95),
    _rule("invalid_key", _KEYWORDS + r".{0,8}" + _BROKEN, 0.9, "卡密 无效 售后"),
    _rule("invalid_key", r"(无效|用不了|不能用|已被使用)的?" + _KEYWORDS, 0.9, "卡密 无效 售后"),
    _rule(
        "refund",
        r"退款|退钱|退货|售后|不想要了|能退吗|可以退吗|能不能退|申请退|退回|充错|买错|拍错|填错|输错",
        0.85,
        "退款 售后",
    ),
    _rule(
        "urge",
        r"催单|催一下|催催|催促|加急|快点|快一点|尽快|太慢|好慢|等了好久|等了很久|等半天|能不能快|急用|着急",
        0.85,
        "催单",
    ),
    # A product bought (话费 / 点券 / 会员) that has not arrived is an order, not a balance top-up.
    _rule(
        "order_status",
        r"(话费|流量|点券|点卡|会员|游戏|直充|q币).{0,6}(没到账|没到|不到账|没有到账|没收到|没有收到)",
        0.85,
        "发货 到账 订单",
    ),
    _rule(
        "top_up",
        r"(余额|钱包|账户|账号).{0,6}(充值|充钱|加钱|存钱|没到账|没到|不到账)|充值.{0,6}(余额|钱包|账户)|"
        r"^(怎么|如何)充值|怎么充钱|充值方式|充值渠道|(支付宝|微信|银行转账|银行卡|转账).{0,4}充值|充值.{0,4}(支付宝|微信|银行)|"
        r"往账户|给账户|充值了?.{0,4}(没到账|没到|不到账|没有到账)|余额不足|余额不够",
        0.85,
        "余额 充值",
    ),
    _rule("order_status", _NOT_ARRIVED, 0.85, "发货 到账 订单"),
    _rule("order_status", r"我的订单|订单号|这个订单|那个订单|订单.{0,4}(怎么样|呢|在哪|状态|进度)", 0.75, "订单 发货"),
    _rule("real_name", r"实名|身份证|人脸|认证不|认证失败|认证怎么|怎么认证|要认证", 0.85, "实名认证"),
    _rule("coupon", r"优惠券|优惠码|折扣码|(?<!点)券|满减|红包|抵扣|打折", 0.85, "优惠券"),
    _rule(
        "account_security",
        r"(登录|账号|账户).{0,6}密码|密码.{0,6}(忘|改|修改|重置|找回|错误|不对|登录)|忘.{0,2}密码|改密码|找回密码|重置密码|"
        r"二次验证|验证器|动态码|2fa|totp|登录不了|登不上|登录不上|无法登录|被盗|异地登录|手机.{0,2}丢|换手机",
        0.85,
        "密码 二次验证 登录",
    ),
    _rule("greeting", r"^(你好|您好|在吗|在不在|hi|hello|哈喽|嗨|有人吗)[!?。.~ ,，]*$", 0.9),
)


@dataclass(frozen=True)
class Detected:
    intent: Intent
    strength: float
    hint: str = ""


def detect(text: str) -> Detected | None:
    """The intent a buyer's words say, by the first rule that matches the normalised text."""
    norm = normalize(text)
    for rule in RULES:
        if rule.pattern.search(norm):
            return Detected(rule.intent, rule.strength, rule.hint)
    return None


# -- retrieval confidence -------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    kind: SourceKind
    id: str
    title: str
    body: str
    score: float
    coverage: float
    """Share of the question's information (idf-weighted words) the document contains."""


def retrieval_confidence(hits: Sequence[Hit]) -> float:
    """How sure a help-center answer is: mostly how much of the question the best document
    covers, a little how clearly it beats the runner-up. Unknown words (not in any document)
    count against it, so a question about something the help center does not cover scores low."""
    if not hits or hits[0].score <= 0:
        return 0.0
    top = hits[0]
    margin = 1.0 if len(hits) < 2 or hits[1].score <= 0 else 1 - hits[1].score / top.score
    return round(min(1.0, 0.8 * top.coverage + 0.2 * margin), 3)


def coverage(query: Iterable[str], doc_words: set[str], idf: dict[str, float], unknown_idf: float) -> float:
    weights = {w: idf.get(w, unknown_idf) for w in set(query)}
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(v for w, v in weights.items() if w in doc_words) / total


def idf_of(df: int, n: int) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


# -- composing answers ----------------------------------------------------------------------


def when(at: datetime | None) -> str:
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(CHINA).strftime("%m-%d %H:%M")


def short(order_id: str) -> str:
    return order_id[:8]


def label(order: OrderView) -> str:
    what = f"{order.sku_name} ×{order.quantity}" if order.sku_name else f"×{order.quantity}"
    return f"订单 {short(order.order_id)}（{what}）"


ETA = {
    "auto": "自动发货的商品通常在付款后 1 分钟内发货",
    "direct": "直充商品一般 1–10 分钟到账，高峰期可能稍慢",
    "manual": "人工发货的商品一般 1–5 小时内处理完成",
}


@dataclass
class Reply:
    """An answer being put together."""

    intent: Intent
    confidence: float
    lines: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def act(self, kind: ActionKind, order_id: str | None = None) -> None:
        action = Action(kind=kind, order_id=order_id)
        if action not in self.actions:
            self.actions.append(action)

    def cite(self, hit: Hit) -> None:
        source = Source(kind=hit.kind, id=hit.id, title=hit.title)
        if source not in self.sources:
            self.sources.append(source)

    def done(self) -> Answer:
        return Answer(
            answer="".join(self.lines).strip(),
            intent=self.intent,
            confidence=round(self.confidence, 3),
            sources=self.sources,
            actions=self.actions,
        )


def order_lines(order: OrderView, now: datetime, wait_minutes: float, *, brief: bool = False) -> tuple[str, bool]:
    """What to tell the owner about their order: status, expected time, next step; and whether
    an urge is allowed now. `brief`: the status only (after-sales answers go on with the rules)."""
    head = label(order)
    status = order.status
    if brief and status == "delivered":
        return f"{head}已于 {when(order.delivered_at or order.status_at)} 发货完成。", False
    if status == "pending_payment":
        until = f"请在 {when(order.expires_at)} 前完成支付，" if order.expires_at else "请尽快完成支付，"
        return f"{head}还没有付款。{until}超时未付款的订单会自动关闭。", False
    if status in ("paid", "delivering"):
        waited = ""
        if order.paid_at is not None:
            minutes = max(0, int((now - order.paid_at).total_seconds() // 60))
            waited = f"已付款 {minutes} 分钟，" if minutes else "刚刚付款，"
        eta = ETA.get(order.delivery_mode, ETA["auto"])
        allowed, left = may_urge(order, now, wait_minutes)
        if allowed:
            tail = "已经超过正常发货时间，你可以点「催单」，我们会优先处理。"
        else:
            tail = f"如果约 {math.ceil(left)} 分钟后还没有到账，可以再来催单。" if left else ""
        return f"{head}{waited}正在发货中。{eta}。{tail}", allowed
    if status == "delivered":
        return (
            f"{head}已于 {when(order.delivered_at or order.status_at)} 发货完成。卡密请在订单详情里点「查看卡密」"
            "获取（只显示给你本人）；直充商品请到充值的账号里查看到账。",
            False,
        )
    if status == "cancelled":
        return f"{head}已取消。如果已经扣款，款项会退回到你的账户余额。", False
    if status == "expired":
        return f"{head}因超时未付款已关闭，没有扣款。需要的话可以重新下单。", False
    if status == "refunding":
        return f"{head}正在退款，款项会退回到你的账户余额，通常几分钟内到账。", False
    if status == "refunded":
        return f"{head}已于 {when(order.status_at)} 退款到你的账户余额，可以在余额明细里查看。", False
    return f"{head}当前状态：{status}。", False


FALLBACK: dict[Intent, str] = {
    "top_up": "账户余额可以用支付宝、微信或银行转账充值：在「钱包」里点「充值」，输入金额后按提示付款；"
    "支付宝、微信通常即时到账，银行转账需要客服核对后入账。",
    "real_name": "部分商品需要先完成实名认证：在「我的 → 实名认证」填写姓名和身份证号即可；"
    "信息核对不通过时，也可以上传身份证照片由人工审核。",
    "coupon": "下单时在「优惠券」处填写或选择券码，确认页会显示优惠后的金额；"
    "未付款时券会被占用，订单取消、超时或退款后券会退回。",
    "account_security": "忘记密码可以在登录页点「忘记密码」，用注册的手机号或邮箱收验证码重置；"
    "开启二次验证（验证器动态码）后登录需要输入 6 位动态码，手机丢失请联系客服核实身份后关闭。",
    "invalid_key": "请先核对卡密是否复制完整、是否在有效期内、充值的平台和区服是否正确；"
    "确认仍然无效的，可以对该订单申请售后，附上充值失败的截图，客服核实后补发或退款（一般 24–48 小时）。",
    "refund": "未发货的订单可以取消，款项退回余额；已发货的卡密类商品如有问题，请对该订单申请售后，"
    "客服核实后补发或退款（一般 24–48 小时）。",
    "urge": "付款后超过正常发货时间还没有到账，可以在订单详情里点「催单」，客服会优先处理。",
    "order_status": "自动发货的商品通常付款后 1 分钟内发货，直充 1–10 分钟到账，人工发货 1–5 小时；"
    "可以在「订单中心」查看每个订单的进度。",
}

HANDOVER = "抱歉，这个问题我没有把握回答准确。为了不误导你，建议转人工处理：提交工单后，客服会尽快回复你。"
GREETING = "你好，我是智能客服。可以问我订单到账、催单、退款售后、充值、实名认证、优惠券、卡密、密码等问题。"
SIGN_IN = "登录后我可以帮你查询自己的订单进度。"


def handover(confidence: float, order_id: str | None = None, *, extra: str = "") -> Answer:
    reply = Reply("handover", min(confidence, CONFIDENT - 0.01), [HANDOVER, extra])
    reply.act("open_ticket", order_id)
    return reply.done()


def cite_best(reply: Reply, hits: Sequence[Hit], query: Sequence[str], *, fallback: str | None) -> None:
    """Add the best matching document's passage (and cite it) or the intent's own guidance."""
    if hits and hits[0].coverage >= 0.3:
        top = hits[0]
        text = passage(top.body, query)
        if text:
            where = "帮助中心" if top.kind == "article" else ""
            reply.lines.append(f"{where}《{top.title}》：{text}")
            reply.cite(top)
            return
    if fallback:
        reply.lines.append(fallback)


def compose(
    *,
    detected: Detected | None,
    hits: Sequence[Hit],
    query: Sequence[str],
    signed_in: bool,
    order: OrderView | None,
    order_asked: bool,
    now: datetime,
    wait_minutes: float,
    threshold: float,
) -> Answer:
    """The answer to one question, from the detected intent, the retrieved documents and (signed
    in only) the caller's own order."""
    intent: Intent = detected.intent if detected else ("order_status" if order_asked else "faq")
    strength = detected.strength if detected else (0.8 if order_asked else 0.0)

    if intent == "greeting":
        return Reply("greeting", strength, [GREETING]).done()
    if intent == "human":
        reply = Reply("human", strength, ["好的，这就为你转人工：提交工单后，客服会尽快回复你。"])
        # A ticket is about one order: only the one the buyer named, never a guess.
        reply.act("open_ticket", order.order_id if order and order_asked else None)
        return reply.done()

    if intent == "faq":
        confidence = retrieval_confidence(hits)
        if confidence < threshold:
            return handover(confidence)
        reply = Reply("faq", confidence)
        cite_best(reply, hits, query, fallback=None)
        if not reply.sources:
            return handover(confidence)
        return reply.done()

    reply = Reply(intent, strength)
    order_intents = ("order_status", "urge", "refund", "invalid_key")
    if intent in order_intents:
        if not signed_in:
            if order_asked or intent in ("order_status", "urge"):
                reply.lines.append(SIGN_IN)
            cite_best(reply, hits, query, fallback=FALLBACK[intent])
            if intent in ("refund", "invalid_key"):
                reply.lines.append("登录后可以直接对订单申请售后。")
            return reply.done()
        if order is None:
            if order_asked:
                reply.lines.append("没有在你的账号下找到这个订单，请核对订单号（可以在「订单中心」复制）。")
            else:
                reply.lines.append("你的账号下还没有订单记录。")
            cite_best(reply, hits, query, fallback=FALLBACK[intent])
            reply.confidence = max(reply.confidence, 0.8)
            return reply.done()
        brief = intent in ("refund", "invalid_key")
        text, urge_allowed = order_lines(order, now, wait_minutes, brief=brief)
        reply.act("view_order", order.order_id)
        if intent in ("order_status", "urge"):
            reply.lines.append(text)
            if urge_allowed:
                reply.act("urge", order.order_id)
            elif intent == "urge" and order.status in ("paid", "delivering"):
                reply.lines.append("现在还不能催单，我们会按顺序尽快处理。")
            elif intent == "urge" and order.status == "delivered":
                reply.lines.append("这个订单已经发货，不需要催单了。")
            reply.confidence = max(reply.confidence, 0.9)
            return reply.done()
        # refund / invalid_key: the order's state, the rules, and the ticket for that order
        reply.lines.append(text)
        if order.status in ("refunding", "refunded"):
            reply.confidence = max(reply.confidence, 0.9)
            return reply.done()
        if order.ticket_open:
            reply.lines.append("这个订单已经提交过售后工单，客服正在处理，结果会通知你。")
            reply.confidence = max(reply.confidence, 0.9)
            return reply.done()
        cite_best(reply, hits, query, fallback=FALLBACK[intent])
        if order.status in ("paid", "delivering", "pending_payment") and intent == "refund":
            reply.lines.append("未发货的订单也可以在订单详情里直接取消，款项退回余额。")
        reply.lines.append(f"需要的话可以直接对订单 {short(order.order_id)} 申请售后，客服会核实处理。")
        reply.act("open_ticket", order.order_id)
        return reply.done()

    # help intents: top_up, real_name, coupon, account_security
    cite_best(reply, hits, query, fallback=FALLBACK.get(intent))
    if intent == "top_up":
        reply.act("top_up")
    elif intent == "real_name":
        reply.act("real_name")
    return reply.done()
