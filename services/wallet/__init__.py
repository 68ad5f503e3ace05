"""The wallet service: balances and points in integer cents, the append-only ledger, top-ups, coupons,
payments and refunds.
"""
