"""Console page for real-name document reviews (实名证件审核): the submissions staff work through
(pending ones oldest first), each with the account, the name and masked ID number it passed the
instant check with, and its three images; approve, or reject with a reason the buyer reads.

Everything goes through identity's staff API (`/api/v1/admin/real-name/reviews`) with the staff
member's token: the list, each decision, and the images, which this page passes through from the
API (the API's staff guard decides who sees them) and never lets a browser or proxy keep."""

from __future__ import annotations

import re

from litestar import Controller, Response, get, post
from litestar.response import Redirect, Template

from services.web import i18n
from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, passed_through_file, text
from services.web.pages.console_common import console, done, page_no
from services.web.visitor import Visitor

REVIEW_STATUSES = ("pending", "approved", "rejected")
SIDES = ("front", "back", "selfie")
PAGE_SIZE = 20
_REVIEW_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What a review id looks like: anything else never reaches the API's path."""

i18n.add(
    {
        "console.nav.real_name": ("实名审核", "Real-name reviews"),
        "console.real_name.name": ("提交姓名", "Submitted name"),
        "console.real_name.id_number": ("身份证号", "ID number"),
        "console.real_name.submitted": ("提交时间", "Submitted"),
        "console.real_name.side.front": ("身份证人像面", "ID card front"),
        "console.real_name.side.back": ("身份证国徽面", "ID card back"),
        "console.real_name.side.selfie": ("手持证件照", "Selfie with the card"),
        "console.real_name.purged": ("证件照片已按保留期删除。", "The images were deleted after the retention period."),
        "console.real_name.approve": ("通过", "Approve"),
        "console.real_name.reject": ("驳回", "Reject"),
        "console.real_name.reason": ("驳回原因（用户可见）", "Reason (the buyer reads it)"),
        "console.real_name.approved": ("已通过，该用户证件已认证。", "Approved; the account's documents are verified."),
        "console.real_name.rejected": ("已驳回，用户可重新提交。", "Rejected; the buyer may submit again."),
        "console.real_name.decided_by": ("审核人", "Decided by"),
        "console.real_name.status.pending": ("待审核", "Pending"),
        "console.real_name.status.approved": ("已通过", "Approved"),
        "console.real_name.status.rejected": ("已驳回", "Rejected"),
    }
)


class ConsoleRealName(Controller):
    path = "/admin/real-name"

    @get("/")
    async def reviews(self, visitor: Visitor, status: str = "pending", page: int = 1) -> Template:
        visitor.staff()
        return await self._page(visitor, status=status, page=page)

    async def _page(
        self,
        visitor: Visitor,
        *,
        status: str = "pending",
        page: int = 1,
        failed: tuple[str, Form] | None = None,
        code: int = 200,
    ) -> Template:
        status = status if status in REVIEW_STATUSES else "pending"
        listed = await visitor.api(
            "GET",
            "admin/real-name/reviews",
            params={"status": status, "page": page_no(page), "page_size": PAGE_SIZE},
        )
        return console(
            visitor,
            "real_name.html",
            "real_name",
            status=code,
            listed=listed,
            state=status,
            statuses=REVIEW_STATUSES,
            sides=SIDES,
            failed=failed,
        )

    @get("/{review_id:str}/images/{side:str}")
    async def image(self, visitor: Visitor, review_id: str, side: str) -> Response[bytes]:
        """One image of a review, from the API as it is: never cached, never sniffed, never run."""
        session = visitor.staff()
        if side not in SIDES or not _REVIEW_ID.fullmatch(review_id):
            raise ApiProblem(404, "not-found", "Not Found", "no such document")
        # Identity documents: never kept by a browser or a proxy.
        return await passed_through_file(
            visitor, session, f"admin/real-name/reviews/{review_id}/{side}", cache_control="no-store"
        )

    @post("/{review_id:str}/approve")
    async def approve(self, visitor: Visitor, review_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"reason": ""})
        return await self._decide(visitor, review_id, "approve", None, form, "console.real_name.approved")

    @post("/{review_id:str}/reject")
    async def reject(self, visitor: Visitor, review_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"reason": text(data, "reason", 500)})
        if not form.values["reason"]:
            form.add("reason", visitor.t("common.required"))
            return await self._page(visitor, failed=(review_id, form), code=form.status)
        return await self._decide(visitor, review_id, "reject", form.values, form, "console.real_name.rejected")

    async def _decide(
        self, visitor: Visitor, review_id: str, action: str, body: dict[str, str] | None, form: Form, word: str
    ) -> Template | Redirect:
        if not _REVIEW_ID.fullmatch(review_id):
            return Redirect("/admin/real-name", status_code=303)
        try:
            await visitor.api("POST", f"admin/real-name/reviews/{review_id}/{action}", json=body)
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            # A 422 on `reason` goes next to the field; a decided review (409) or the staff
            # member's own documents (403) go to the review's banner.
            form.fail(problem)
            return await self._page(visitor, failed=(review_id, form), code=form.status)
        return await done(visitor, "/admin/real-name", visitor.t(word))
