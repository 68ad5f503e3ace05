"""Console pages for agents (代理): applications to approve or reject, and withdrawals (提现) to
pay or reject. Each action is one call of the public admin API with the staff member's token;
paying twice pays once (the wallet answers the paid withdrawal again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from services.web import i18n
from services.web.client import ApiProblem
from services.web.pages.common import FormData, text
from services.web.pages.console_common import console, done, page_no
from services.web.visitor import Visitor

APPLICATION_STATUSES = ("pending", "approved", "rejected")
WITHDRAWAL_STATUSES = ("pending", "paid", "rejected")

i18n.add(
    {
        "console.agents.note": ("说明", "Note"),
        "console.agents.approve": ("通过（授予代理）", "Approve (make agent)"),
        "console.agents.reject": ("驳回", "Reject"),
        "console.agents.reason": ("驳回原因", "Reason"),
        "console.agents.approved": ("已通过，代理身份即刻生效。", "Approved; the agent role holds at once."),
        "console.agents.rejected": ("已驳回。", "Rejected."),
        "console.withdrawals.pay": ("确认打款", "Mark paid"),
        "console.withdrawals.paid": ("已打款。", "Paid."),
        "console.withdrawals.rejected": ("已驳回，金额退回可提现。", "Rejected; the money is available again."),
    }
)


@dataclass(frozen=True)
class DecisionQueue:
    """A console list of requests that staff approve or reject (with a reason): agent applications
    and withdrawals have the same page and the same decision, against different admin API paths."""

    page_path: str
    api_path: str
    template: str
    section: str
    statuses: tuple[str, ...]
    approved: str
    rejected: str

    def _page(self, visitor: Visitor, listed: Any, state: str, problem: ApiProblem | None = None) -> Template:
        status = 200 if problem is None else (problem.status if problem.status < 500 else 502)
        return console(
            visitor,
            self.template,
            self.section,
            status=status,
            listed=listed,
            state=state,
            statuses=self.statuses,
            problem=problem,
        )

    async def listing(self, visitor: Visitor, status: str, page: int) -> Template:
        visitor.staff()
        status = status if status in self.statuses else "pending"
        params = {"status": status, "page": page_no(page), "page_size": 50}
        listed = await visitor.api("GET", self.api_path, params=params)
        return self._page(visitor, listed, status)

    async def decide(self, visitor: Visitor, item_id: str, action: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        if action not in ("approve", "reject"):
            return Redirect(self.page_path, status_code=303)
        body = {"reason": text(data, "reason", 500)} if action == "reject" else None
        try:
            await visitor.api("POST", f"{self.api_path}/{item_id}/{action}", json=body)
        except ApiProblem as problem:
            listed = await visitor.api("GET", self.api_path, params={"status": "pending"})
            return self._page(visitor, listed, "pending", problem)
        return await done(visitor, self.page_path, visitor.t(self.approved if action == "approve" else self.rejected))


APPLICATIONS = DecisionQueue(
    "/admin/agents",
    "admin/agent-applications",
    "agents.html",
    "agents",
    APPLICATION_STATUSES,
    "console.agents.approved",
    "console.agents.rejected",
)
WITHDRAWALS = DecisionQueue(
    "/admin/withdrawals",
    "admin/withdrawals",
    "withdrawals.html",
    "withdrawals",
    WITHDRAWAL_STATUSES,
    "console.withdrawals.paid",
    "console.withdrawals.rejected",
)


class ConsoleAgents(Controller):
    path = "/admin/agents"

    @get("/")
    async def applications(self, visitor: Visitor, status: str = "pending", page: int = 1) -> Template:
        return await APPLICATIONS.listing(visitor, status, page)

    @post("/{application_id:str}/{action:str}")
    async def decide(self, visitor: Visitor, application_id: str, action: str, data: FormData) -> Template | Redirect:
        return await APPLICATIONS.decide(visitor, application_id, action, data)


class ConsoleWithdrawals(Controller):
    path = "/admin/withdrawals"

    @get("/")
    async def withdrawals(self, visitor: Visitor, status: str = "pending", page: int = 1) -> Template:
        return await WITHDRAWALS.listing(visitor, status, page)

    @post("/{withdrawal_id:str}/{action:str}")
    async def decide(self, visitor: Visitor, withdrawal_id: str, action: str, data: FormData) -> Template | Redirect:
        return await WITHDRAWALS.decide(visitor, withdrawal_id, action, data)
