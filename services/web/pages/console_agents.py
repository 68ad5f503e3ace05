"""Console pages for agents (代理): applications to approve or reject, and withdrawals (提现) to
pay or reject. Each action is one call of the public admin API with the staff member's token;
paying twice pays once (the wallet answers the paid withdrawal again)."""

from __future__ import annotations

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


class ConsoleAgents(Controller):
    path = "/admin/agents"

    @get("/")
    async def applications(self, visitor: Visitor, status: str = "pending", page: int = 1) -> Template:
        visitor.staff()
        status = status if status in APPLICATION_STATUSES else "pending"
        listed = await visitor.api(
            "GET", "admin/agent-applications", params={"status": status, "page": page_no(page), "page_size": 50}
        )
        return console(
            visitor, "agents.html", "agents", listed=listed, state=status, statuses=APPLICATION_STATUSES, problem=None
        )

    @post("/{application_id:str}/{action:str}")
    async def decide(self, visitor: Visitor, application_id: str, action: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        if action not in ("approve", "reject"):
            return Redirect("/admin/agents", status_code=303)
        body = {"reason": text(data, "reason", 500)} if action == "reject" else None
        try:
            await visitor.api("POST", f"admin/agent-applications/{application_id}/{action}", json=body)
        except ApiProblem as problem:
            listed = await visitor.api("GET", "admin/agent-applications", params={"status": "pending"})
            return console(
                visitor,
                "agents.html",
                "agents",
                status=problem.status if problem.status < 500 else 502,
                listed=listed,
                state="pending",
                statuses=APPLICATION_STATUSES,
                problem=problem,
            )
        word = "console.agents.approved" if action == "approve" else "console.agents.rejected"
        return await done(visitor, "/admin/agents", visitor.t(word))


class ConsoleWithdrawals(Controller):
    path = "/admin/withdrawals"

    @get("/")
    async def withdrawals(self, visitor: Visitor, status: str = "pending", page: int = 1) -> Template:
        visitor.staff()
        status = status if status in WITHDRAWAL_STATUSES else "pending"
        listed = await visitor.api(
            "GET", "admin/withdrawals", params={"status": status, "page": page_no(page), "page_size": 50}
        )
        return console(
            visitor,
            "withdrawals.html",
            "withdrawals",
            listed=listed,
            state=status,
            statuses=WITHDRAWAL_STATUSES,
            problem=None,
        )

    @post("/{withdrawal_id:str}/{action:str}")
    async def decide(self, visitor: Visitor, withdrawal_id: str, action: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        if action not in ("approve", "reject"):
            return Redirect("/admin/withdrawals", status_code=303)
        body = {"reason": text(data, "reason", 500)} if action == "reject" else None
        try:
            await visitor.api("POST", f"admin/withdrawals/{withdrawal_id}/{action}", json=body)
        except ApiProblem as problem:
            listed = await visitor.api("GET", "admin/withdrawals", params={"status": "pending"})
            return console(
                visitor,
                "withdrawals.html",
                "withdrawals",
                status=problem.status if problem.status < 500 else 502,
                listed=listed,
                state="pending",
                statuses=WITHDRAWAL_STATUSES,
                problem=problem,
            )
        word = "console.withdrawals.paid" if action == "approve" else "console.withdrawals.rejected"
        return await done(visitor, "/admin/withdrawals", visitor.t(word))
