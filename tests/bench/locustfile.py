"""The Locust users of `make load` (tests/bench/load.py starts Locust on this file).

Each user is one signed-in buyer (a funded wallet; tokens minted by load.py) who browses much and
buys little, in the proportions of `load_report.MIX`. Everything the users need (product ids, the
SKU on sale, the buyers' tokens) is in the JSON file named by KAMENG_LOAD_SETUP, written by
load.py after it has seeded the platform; this file imports nothing of Kameng but that mix, so
gevent's monkey-patching touches no platform code.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task

from tests.bench.load_report import MIX

SETUP: dict[str, Any] = json.loads(Path(os.environ["KAMENG_LOAD_SETUP"]).read_text(encoding="utf-8"))
STATUSES: Counter[str] = Counter()
_next_buyer = itertools.count()


@events.test_stop.add_listener
def _write_statuses(**_: Any) -> None:
    # Locust's CSVs count failures but not answers by status; the summary wants both.
    Path(SETUP["statuses_file"]).write_text(json.dumps(dict(STATUSES)), encoding="utf-8")


class Buyer(FastHttpUser):
    wait_time = between(*SETUP["wait"])

    def on_start(self) -> None:
        buyer = SETUP["buyers"][next(_next_buyer) % len(SETUP["buyers"])]
        self.headers = {"Authorization": f"Bearer {buyer['token']}"}
        self.purchases = itertools.count()
        self.user_tag = uuid.uuid4().hex[:12]

    def _call(
        self, method: str, path: str, name: str, ok: tuple[int, ...] = (200,), field: str = "", **kwargs: Any
    ) -> None:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        with self.client.request(method, path, name=name, headers=headers, catch_response=True, **kwargs) as response:
            answer = str(response.status_code)
            if field and response.status_code in ok:
                # A 201 order is `paid` or, when the wallet did not answer within the order
                # service's wait, `pending_payment`: the status code alone hides which.
                answer += f":{(response.json() or {}).get(field)}"
            STATUSES[f"{method} {name} {answer}"] += 1
            if response.status_code in ok:
                response.success()
            else:
                response.failure(f"{response.status_code} {(response.text or '')[:120]}")

    # -- 90 % browsing -------------------------------------------------------------------------

    @task(MIX["tree"])
    def tree(self) -> None:
        self._call("GET", "/api/v1/catalog/tree", "/api/v1/catalog/tree")

    @task(MIX["product"])
    def product(self) -> None:
        product_id = random.choice(SETUP["products"])
        self._call("GET", f"/api/v1/catalog/products/{product_id}", "/api/v1/catalog/products/{id}")

    @task(MIX["search"])
    def search(self) -> None:
        query = random.choice(SETUP["searches"])
        self._call("GET", "/api/v1/catalog/products", "/api/v1/catalog/products?q=", params={"q": query})

    # -- 8 % quotes and orders -----------------------------------------------------------------

    @task(MIX["quote"])
    def quote(self) -> None:
        body = {"sku_id": SETUP["sku_id"], "quantity": 1}
        self._call("POST", "/api/v1/orders/quote", "/api/v1/orders/quote", json=body)

    @task(MIX["order"])
    def order(self) -> None:
        # A fresh Idempotency-Key per purchase, as the storefront sends; 201 is paid (or
        # pending_payment when the wallet is slow to answer), anything else is a failure here:
        # every buyer is funded for far more than a run can spend and the SKU has keys to spare.
        key = f"load-{self.user_tag}-{next(self.purchases)}"
        body = {"sku_id": SETUP["sku_id"], "quantity": 1, "recipient": {}}
        headers = {"Idempotency-Key": key}
        self._call("POST", "/api/v1/orders", "/api/v1/orders", (201,), "status", json=body, headers=headers)

    # -- 2 % order center ----------------------------------------------------------------------

    @task(MIX["order_center"])
    def order_center(self) -> None:
        self._call("GET", "/api/v1/orders", "/api/v1/orders")
