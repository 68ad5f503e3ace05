"""Real-name document reviews (实名证件审核) in the console, in real Chromium: buyers pass the
instant check and submit their ID card images through the public API; staff find the console
page from its menu, see each submission's account, name, masked ID number and images, reject one
(a missing reason shows next to the field) and approve the other; the buyers' own reviews, read
through the API, say what staff decided. The images are shown to staff only, and the page fits a
phone."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from deploy.platform import Platform
from tests.browser.buyer import open_menu, sign_in
from tests.browser.conftest import PHONE
from tests.browser.kit import AdminApi
from tests.browser.test_console import PNG, Account, context, flash
from tests.e2e.identity_kit import id_number

DOCS = "/api/v1/me/real-name/documents"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour (the browser must decode it, not only identity's magic-byte check)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


BACK = png(86, 54, (40, 90, 200))


@pytest.fixture
def people(platform: Platform, admin: AdminApi) -> Iterator[dict[str, Account]]:
    made = {
        "approved": Account(platform.gateway_url, admin),
        "rejected": Account(platform.gateway_url, admin),
        "staff": Account(platform.gateway_url, admin, ["staff"]),
    }
    yield made
    for account in made.values():
        account.close()


def submitted(buyer: Account, name: str) -> tuple[str, str]:
    """The buyer passes the instant check and uploads the three images: (review id, masked ID)."""
    birth = f"19{random.randint(60, 99)}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
    r = buyer.http.post(
        "/api/v1/me/real-name", json={"name": name, "id_number": id_number(birth)}, headers=buyer.headers
    )
    assert r.status_code == 200, r.text
    masked: str = r.json()["id_number_masked"]
    files = {
        "front": ("front.png", png(86, 54, (200, 60, 40)), "image/png"),
        "back": ("back.png", BACK, "image/png"),
        "selfie": ("selfie.png", PNG, "image/png"),
    }
    r = buyer.http.post(DOCS, files=files, headers=buyer.headers, timeout=60)
    assert r.status_code == 202, r.text
    return r.json()["review_id"], masked


def my_review(buyer: Account) -> dict[str, Any]:
    r = buyer.http.get(DOCS, headers=buyer.headers)
    assert r.status_code == 200, r.text
    latest: dict[str, Any] = r.json()["items"][0]
    return latest


def review_item(page: Page, review_id: str) -> Locator:
    return page.locator(f"li.review[data-review='{review_id}']")


def images_loaded(item: Locator) -> int:
    """How many of the item's images the browser decoded (a broken image has no natural width)."""
    return int(item.locator(".doc-images img").evaluate_all("imgs => imgs.filter(i => i.naturalWidth > 0).length"))


def test_staff_review_real_name_documents_in_the_console(
    chromium: Browser, site: str, people: dict[str, Account]
) -> None:
    to_approve, to_reject, staff = people["approved"], people["rejected"], people["staff"]
    approve_id, approve_masked = submitted(to_approve, "张三丰")
    reject_id, _ = submitted(to_reject, "李四")
    assert my_review(to_approve)["status"] == "pending"

    ctx = context(chromium, site)
    page = ctx.new_page()
    sign_in(page, staff.login)
    page.goto("/admin/")
    open_menu(page)
    page.get_by_role("link", name="实名审核").click()
    expect(page.locator("h1")).to_have_text("实名审核")

    item = review_item(page, approve_id)
    expect(item).to_contain_text(to_approve.user_id)
    expect(item.locator(".review-name")).to_have_text("张三丰")
    expect(item.locator(".review-id-number")).to_have_text(approve_masked)
    assert "*" in approve_masked and len(approve_masked) == 18  # never the full number
    expect(item.locator(".doc-images img")).to_have_count(3)
    expect(item.get_by_role("img", name="手持证件照")).to_be_visible()
    item.locator(".doc-images img").last.scroll_into_view_if_needed()
    page.wait_for_function(
        "id => [...document.querySelectorAll(`li[data-review='${id}'] .doc-images img`)]"
        ".every(i => i.complete && i.naturalWidth > 0)",
        arg=approve_id,
    )
    assert images_loaded(item) == 3
    image = page.request.get(f"/admin/real-name/{approve_id}/images/back")
    assert image.status == 200 and image.body() == BACK
    assert image.headers["cache-control"] == "no-store"

    # Reject without a reason: the error shows next to the field, nothing is decided.
    item = review_item(page, reject_id)
    item.get_by_role("button", name="驳回").click()
    item = review_item(page, reject_id)
    expect(item.locator(".field-error")).to_have_text("必填")
    expect(item.get_by_label("驳回原因（用户可见）")).to_have_attribute("aria-invalid", "true")
    assert my_review(to_reject)["status"] == "pending"
    item.get_by_label("驳回原因（用户可见）").fill("照片模糊，请重新拍摄")
    item.get_by_role("button", name="驳回").click()
    flash(page, "已驳回")
    expect(review_item(page, reject_id)).to_have_count(0)  # no longer pending

    review_item(page, approve_id).get_by_role("button", name="通过").click()
    flash(page, "已通过")
    expect(review_item(page, approve_id)).to_have_count(0)

    # What the buyers read through the API: the decision staff made on the page.
    approved = my_review(to_approve)
    assert approved["review_id"] == approve_id
    assert approved["status"] == "approved" and approved["documents_verified"] is True
    rejected = my_review(to_reject)
    assert rejected["status"] == "rejected" and rejected["reason"] == "照片模糊，请重新拍摄"
    assert rejected["documents_verified"] is False

    # The decided tab shows who decided; a decided review is not offered again.
    page.goto("/admin/real-name?status=approved")
    decided = review_item(page, approve_id)
    expect(decided).to_contain_text(staff.user_id)
    expect(decided.get_by_role("button", name="通过")).to_have_count(0)
    ctx.close()

    # A buyer signed in to the web gets neither the page nor the images.
    buyer_ctx = context(chromium, site)
    buyer_page = buyer_ctx.new_page()
    sign_in(buyer_page, to_reject.login)
    assert buyer_page.request.get("/admin/real-name").status == 403
    assert buyer_page.request.get(f"/admin/real-name/{approve_id}/images/front").status == 403
    buyer_ctx.close()


def test_the_real_name_review_page_fits_a_phone(chromium: Browser, site: str, people: dict[str, Account]) -> None:
    review_id, _ = submitted(people["approved"], "王五")
    ctx = context(chromium, site, PHONE)
    page = ctx.new_page()
    sign_in(page, people["staff"].login)
    response = page.goto("/admin/real-name")
    assert response is not None and response.status == 200
    item = review_item(page, review_id)
    expect(item.locator(".doc-images img")).to_have_count(3)
    item.locator(".doc-images img").last.scroll_into_view_if_needed()
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"/admin/real-name overflows: {widths}"
    box = item.get_by_role("button", name="通过").bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    ctx.close()
