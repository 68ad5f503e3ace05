"""The wallet's operations, one async function each, by context: `accounts` (open, overview,
ledger, report), `topups`, `payments` (capture, refund), `coupons`. Operations inside a handler's
transaction take `(tx, value, store)`; the others take `WalletDeps` and run their own."""

from services.wallet.usecases.accounts import open_account
from services.wallet.usecases.payments import capture_payment, refund_payment
from services.wallet.usecases.topups import credit_topup, fail_topup

__all__ = ["capture_payment", "credit_topup", "fail_topup", "open_account", "refund_payment"]
