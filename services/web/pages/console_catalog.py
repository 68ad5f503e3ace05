"""Console catalog: scenarios, categories, products and SKUs (create, edit, take off sale).

Everything goes through `/api/v1/admin/...` of the catalog (admin role in the API; a staff
member without it sees the API's refusal as a banner). Prices are typed in yuan and sent as
cents; the API's problem+json `errors` land next to the field they name."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from services.web.client import ApiProblem
from services.web.forms import Form
from services.web.pages.common import FormData, text
from services.web.pages.console_common import checked, console, done, idempotency, int_field, page_no, yuan_field
from services.web.visitor import Visitor
from shared.money import MoneyError, format_yuan, parse_yuan

LEVELS = ("retail", "vip", "agent", "wholesale")
MODES = ("auto", "direct", "manual")

# API field -> form field of the SKU form.
SKU_RENAME = {
    "face_value_cents": "face_value",
    "prices": "price_retail",
    **{f"prices.{level}": f"price_{level}" for level in LEVELS},
    "wholesale": "wholesale",
    "recipient_fields": "recipient_fields",
}
SKU_FIELDS = {
    "name",
    "face_value",
    *(f"price_{level}" for level in LEVELS),
    "wholesale",
    "delivery_mode",
    "recipient_fields",
    "validity_days",
    "max_per_order",
    "max_per_user",
}


async def _tree(visitor: Visitor) -> dict[str, Any]:
    tree: dict[str, Any] = await visitor.api("GET", "catalog/tree")
    return tree


def _yuan(cents: Any) -> str:
    return "" if cents is None else format_yuan(int(cents))


def sku_values(sku: dict[str, Any]) -> dict[str, Any]:
    """A stored SKU as the form's text fields."""
    prices = sku.get("prices", {})
    return {
        "name": sku.get("name", ""),
        "face_value": _yuan(sku.get("face_value_cents")),
        **{f"price_{level}": _yuan(prices.get(level)) for level in LEVELS},
        "wholesale": "\n".join(f"{t['min_quantity']}={_yuan(t['price_cents'])}" for t in sku.get("wholesale", [])),
        "delivery_mode": sku.get("delivery_mode", "auto"),
        "recipient_fields": "\n".join(
            "|".join(
                [
                    f["name"],
                    f.get("label", ""),
                    "required" if f.get("required", True) else "optional",
                    f.get("pattern") or "",
                ]
            ).rstrip("|")
            for f in sku.get("recipient_fields", [])
        ),
        "validity_days": sku.get("validity_days") or "",
        "max_per_order": sku.get("max_per_order") or "",
        "max_per_user": sku.get("max_per_user") or "",
        "requires_real_name": bool(sku.get("requires_real_name")),
        "on_sale": bool(sku.get("on_sale", True)),
    }


def sku_form(visitor: Visitor, data: dict[str, Any]) -> tuple[Form, dict[str, Any]]:
    """The posted SKU form and the API body it makes (checked for what the API cannot say
    itself: numbers typed as text)."""
    values: dict[str, Any] = {name: text(data, name, 5000) for name in SKU_FIELDS}
    values["requires_real_name"] = checked(data, "requires_real_name")
    values["on_sale"] = checked(data, "on_sale")
    form = Form(values=values)
    t = visitor.t
    body: dict[str, Any] = {
        "name": values["name"],
        "delivery_mode": values["delivery_mode"],
        "requires_real_name": values["requires_real_name"],
        "on_sale": values["on_sale"],
    }
    if values["delivery_mode"] not in MODES:
        form.add("delivery_mode", t("console.sku.mode_invalid"))
    face = yuan_field(form, "face_value", t("console.money_invalid"))
    if face is not None:
        body["face_value_cents"] = face
    prices = {}
    for level in LEVELS:
        cents = yuan_field(form, f"price_{level}", t("console.money_invalid"), required=level == "retail")
        if cents is not None:
            prices[level] = cents
    body["prices"] = prices
    tiers = []
    for number, line in enumerate(values["wholesale"].splitlines(), 1):
        if not line.strip():
            continue
        quantity, _, price = line.partition("=")
        try:
            tiers.append({"min_quantity": int(quantity.strip()), "price_cents": _cents(price)})
        except ValueError:
            form.add("wholesale", t("console.sku.tier_invalid", line=number))
    body["wholesale"] = tiers
    fields = []
    for line in values["recipient_fields"].splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        field: dict[str, Any] = {"name": parts[0], "label": parts[1] if len(parts) > 1 and parts[1] else parts[0]}
        field["required"] = not (len(parts) > 2 and parts[2].lower() in ("optional", "no", "0", "false", "选填"))
        if len(parts) > 3 and parts[3]:
            field["pattern"] = "|".join(parts[3:])
        fields.append(field)
    body["recipient_fields"] = fields
    for name in ("validity_days", "max_per_order", "max_per_user"):
        body[name] = int_field(form, name, t("console.number_invalid"), low=1)
    return form, body


def _cents(raw: str) -> int:
    try:
        return parse_yuan(raw.strip())
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc


class ConsoleCatalog(Controller):
    path = "/admin"

    # -- the tree: scenarios, categories, products ----------------------------------------------

    @get("/catalog")
    async def catalog(self, visitor: Visitor, q: str = "", page: int = 1) -> Template:
        visitor.staff()
        return await self._catalog(visitor, q=q[:100], page=page_no(page))

    async def _catalog(
        self, visitor: Visitor, *, q: str = "", page: int = 1, forms: dict[str, Form] | None = None, status: int = 200
    ) -> Template:
        tree = await _tree(visitor)
        found = None
        if q.strip():
            found = await visitor.api("GET", "catalog/products", params={"q": q, "page": page, "page_size": 20})
        forms = {
            "scenario": Form(),
            "category": Form(),
            "product": Form(),
            **(forms or {}),
        }
        return console(visitor, "catalog.html", "catalog", status=status, tree=tree, q=q, found=found, forms=forms)

    async def _save(self, visitor: Visitor, slot: str, form: Form, method: str, path: str) -> Template | Redirect:
        """Send a scenario/category form to the API: a new one with an Idempotency-Key (a double
        click creates one), an edit as a PATCH whose errors show as the form's banner."""
        creating = method == "POST"
        try:
            await visitor.api(method, path, json=form.values, headers=idempotency() if creating else None)
        except ApiProblem as problem:
            if creating:
                form.fail(problem)
            else:
                form.fail(problem, known=set())
            return await self._catalog(visitor, forms={slot: form}, status=form.status)
        return await done(visitor, "/admin/catalog", visitor.t("console.saved"))

    @post("/scenarios")
    async def create_scenario(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"name": text(data, "name", 100)})
        return await self._save(visitor, "scenario", form, "POST", "admin/scenarios")

    @post("/scenarios/{scenario_id:str}")
    async def rename_scenario(self, visitor: Visitor, scenario_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"name": text(data, "name", 100)})
        return await self._save(visitor, "scenario", form, "PATCH", f"admin/scenarios/{scenario_id}")

    @post("/categories")
    async def create_category(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={"scenario_id": text(data, "scenario_id", 64), "name": text(data, "name", 100)})
        return await self._save(visitor, "category", form, "POST", "admin/categories")

    @post("/categories/{category_id:str}")
    async def edit_category(self, visitor: Visitor, category_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values={k: v for k in ("name", "scenario_id") if (v := text(data, k, 100))})
        return await self._save(visitor, "category", form, "PATCH", f"admin/categories/{category_id}")

    @post("/products")
    async def create_product(self, visitor: Visitor, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values=_product_values(data))
        try:
            created = await visitor.api("POST", "admin/products", json=form.values, headers=idempotency())
        except ApiProblem as problem:
            form.fail(problem)
            return await self._catalog(visitor, forms={"product": form}, status=form.status)
        return await done(visitor, f"/admin/products/{created['product_id']}", visitor.t("console.product_created"))

    @get("/products/find")
    async def find_product(self, visitor: Visitor, product_id: str = "") -> Redirect:
        visitor.staff()
        wanted = "".join(c for c in product_id.strip() if c.isalnum() or c in "-_")[:64]
        return Redirect(f"/admin/products/{wanted}" if wanted else "/admin/catalog", status_code=303)

    # -- one product with every SKU, on sale or not --------------------------------------------

    @get("/products/{product_id:str}")
    async def product(self, visitor: Visitor, product_id: str) -> Template:
        visitor.staff()
        return await self._product(visitor, product_id)

    async def _product(
        self,
        visitor: Visitor,
        product_id: str,
        *,
        edit: Form | None = None,
        new_sku: Form | None = None,
        status: int = 200,
    ) -> Template:
        product = await visitor.api("GET", f"admin/products/{product_id}")
        tree = await _tree(visitor)
        edit = edit or Form(
            values={k: product.get(k, "") for k in ("category_id", "name", "description", "service_notes")}
        )
        new_sku = new_sku or Form(
            values={"delivery_mode": "auto", "on_sale": True, "validity_days": "365", "requires_real_name": False}
        )
        return console(
            visitor,
            "product.html",
            "catalog",
            status=status,
            product=product,
            tree=tree,
            edit=edit,
            new_sku=new_sku,
            levels=LEVELS,
            modes=MODES,
        )

    @post("/products/{product_id:str}")
    async def edit_product(self, visitor: Visitor, product_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form = Form(values=_product_values(data))
        try:
            await visitor.api("PATCH", f"admin/products/{product_id}", json=form.values)
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            form.fail(problem)
            return await self._product(visitor, product_id, edit=form, status=form.status)
        return await done(visitor, f"/admin/products/{product_id}", visitor.t("console.saved"))

    @post("/products/{product_id:str}/skus")
    async def create_sku(self, visitor: Visitor, product_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form, body = sku_form(visitor, data)
        if form.ok:
            try:
                await visitor.api("POST", f"admin/products/{product_id}/skus", json=body, headers=idempotency())
            except ApiProblem as problem:
                if problem.status == 404:
                    raise
                form.fail(problem, rename=SKU_RENAME, known=SKU_FIELDS)
            else:
                return await done(visitor, f"/admin/products/{product_id}", visitor.t("console.sku_created"))
        return await self._product(visitor, product_id, new_sku=form, status=form.status)

    # -- one SKU -------------------------------------------------------------------------------

    @get("/skus/{sku_id:str}")
    async def sku(self, visitor: Visitor, sku_id: str) -> Template:
        visitor.staff()
        sku = await visitor.api("GET", f"admin/skus/{sku_id}")
        return console(
            visitor, "sku.html", "catalog", sku=sku, form=Form(values=sku_values(sku)), levels=LEVELS, modes=MODES
        )

    @post("/skus/{sku_id:str}")
    async def edit_sku(self, visitor: Visitor, sku_id: str, data: FormData) -> Template | Redirect:
        visitor.staff()
        form, body = sku_form(visitor, data)
        if form.ok:
            try:
                await visitor.api("PATCH", f"admin/skus/{sku_id}", json=body)
            except ApiProblem as problem:
                if problem.status == 404:
                    raise
                form.fail(problem, rename=SKU_RENAME, known=SKU_FIELDS)
            else:
                return await done(visitor, f"/admin/skus/{sku_id}", visitor.t("console.saved"))
        sku = await visitor.api("GET", f"admin/skus/{sku_id}")
        return console(
            visitor, "sku.html", "catalog", status=form.status, sku=sku, form=form, levels=LEVELS, modes=MODES
        )

    @post("/skus/{sku_id:str}/sale")
    async def sale(self, visitor: Visitor, sku_id: str, data: FormData) -> Template | Redirect:
        """Take off sale (or put back): the one-field PATCH the API documents."""
        visitor.staff()
        on_sale = checked(data, "on_sale")
        back = text(data, "back", 200)
        target = back if back.startswith("/admin/") and not back.startswith("//") else f"/admin/skus/{sku_id}"
        try:
            await visitor.api("PATCH", f"admin/skus/{sku_id}", json={"on_sale": on_sale})
        except ApiProblem as problem:
            if problem.status == 404:
                raise
            sku = await visitor.api("GET", f"admin/skus/{sku_id}")
            form = Form(values=sku_values(sku))
            form.fail(problem, known=set())
            return console(
                visitor, "sku.html", "catalog", status=form.status, sku=sku, form=form, levels=LEVELS, modes=MODES
            )
        return await done(visitor, target, visitor.t("console.on_sale" if on_sale else "console.off_sale"))


def _product_values(data: dict[str, Any]) -> dict[str, Any]:
    """A product as the create and the edit form post it."""
    return {
        "category_id": text(data, "category_id", 64),
        "name": text(data, "name", 100),
        "description": text(data, "description", 5000),
        "service_notes": text(data, "service_notes", 5000),
    }
