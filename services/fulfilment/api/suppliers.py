"""Suppliers' signed callbacks with the outcome of a direct top-up."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post

from services.fulfilment.deps import FulfilmentDeps
from services.fulfilment.usecases import direct


class SupplierCallbackController(Controller):
    path = "/api/v1/suppliers"
    tags = ["suppliers"]

    @post("/{supplier:str}/notify", status_code=200, summary="A supplier's signed top-up result")
    async def notify(self, deps: FulfilmentDeps, request: Request[Any, Any, Any], supplier: str) -> dict[str, str]:
        signature = request.headers.get("x-supplier-signature", "")
        return {"result": await direct.accept_callback(deps, supplier, await request.body(), signature)}
