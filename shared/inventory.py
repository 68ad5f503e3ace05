"""Stock in Redis: the shared keyspace and its Lua scripts (the one place they are written).

Two services write it, each its own counter, so each can rebuild its part from its own database:

    inv:{<sku>}:supply      fulfilment: card keys available in the vault (imported - claimed - disabled)
    inv:{<sku>}:held        order: units held by open orders (placed, not yet delivered or released)
    inv:{<sku>}:holds       order: hash order id -> units, the holds themselves
    inv:{<sku>}:op:<op id>  fulfilment: marker that a supply change was applied (idempotency)
    inv:epoch:supply        fulfilment: "every supply counter in this Redis was built from the vault"
    inv:epoch:held          order: "every held counter in this Redis was built from the orders"

One exception to "each its own": when fulfilment takes a delivered order's keys out of supply it
releases that order's hold in the same script (`adjust_supply(hands_over=...)`); the order's
release after delivery is idempotent and finds nothing left.

    sellable = supply - held

A missing counter is never read as zero: after Redis lost its data (restart, failover, eviction)
a zero `held` would sell the units of every open order a second time (issue 12: 66 buyers got
201 for 60 keys). The hold script refuses when either counter of the SKU is missing and says
which; the order service then builds `held` itself (when its epoch marker stands, the SKU is
merely new) or answers 503 until the owner's rebuild has set the epoch marker again. Rebuilds of
a missing counter only create it (NX): two rebuilds racing, or a rebuild racing a live change,
cannot overwrite a counter built from a later truth.

Every key of one SKU carries the same hash tag `{<sku>}`, so each script touches one slot and runs
on Redis Cluster too. Holds have no TTL on purpose: an expiring key could not give its units back
to `held`; the order service releases holds when orders expire, and a rebuild corrects any drift.

Redis is never the truth. It is the fast gate that turns away buyers when nothing is left; the
vault's guarded claim in MongoDB is what makes a card key go to exactly one order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.edge_cache import reading

OP_MARKER_TTL_SECONDS = 7 * 24 * 3600


def _k(sku_id: str, part: str) -> str:
    return f"inv:{{{sku_id}}}:{part}"


# KEYS: supply, marker[, held, holds]. ARGV: delta, marker ttl[, order id]. Returns the new
# supply, or nil if already applied. With an order id, that order's hold is released in the same
# step (its units just left supply: counting them in both would undersell).
_ADJUST_SUPPLY = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return false end
local supply = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[3] and redis.call('EXISTS', KEYS[3]) == 1 then
  local units = redis.call('HGET', KEYS[4], ARGV[3])
  if units then
    redis.call('HDEL', KEYS[4], ARGV[3])
    redis.call('DECRBY', KEYS[3], units)
  end
end
return supply
"""

# KEYS: supply, marker, op markers... ARGV: supply, marker ttl. Creates the counter only if it
# is missing (and only then marks the ops it counts). Returns 1 when set, 0 when it existed.
_SET_SUPPLY_IF_MISSING = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
for i = 2, #KEYS do redis.call('SET', KEYS[i], '1', 'EX', ARGV[2]) end
return 1
"""

# KEYS: supply, held, holds. ARGV: order id, units.
# Returns {1, units} when held (also when this order already held), {0, sellable, held, supply}
# when short, {-1, 0, held} when the supply counter is missing and {-2, 0} when the held counter
# is (rebuild first). The counters a refusal was decided on come back as read (a missing supply
# as nil), so the refusal can name them as its facts (shared.edge_cache).
_HOLD = """
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then return {1, tonumber(existing)} end
local held = redis.call('GET', KEYS[2])
if not held then return {-2, 0} end
local supply = redis.call('GET', KEYS[1])
if not supply then return {-1, 0, held} end
local units = tonumber(ARGV[2])
local sellable = tonumber(supply) - tonumber(held)
if sellable < units then return {0, sellable, held, supply} end
redis.call('HSET', KEYS[3], ARGV[1], units)
redis.call('INCRBY', KEYS[2], units)
return {1, units}
"""

# KEYS: held, holds. ARGV: order id. Returns the units released (0 if there was no hold).
_RELEASE = """
local units = redis.call('HGET', KEYS[2], ARGV[1])
if not units then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('DECRBY', KEYS[1], units)
return tonumber(units)
"""

# KEYS: held, holds. ARGV: order id, units, order id, units, ... Replaces every hold of the SKU.
_SET_HOLDS = """
redis.call('DEL', KEYS[2])
local total = 0
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  total = total + tonumber(ARGV[i + 1])
end
redis.call('SET', KEYS[1], total)
return total
"""

# The same, only when the held counter is missing. Returns the total held, or -1 if it existed.
_SET_HOLDS_IF_MISSING = (
    """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
"""
    + _SET_HOLDS
)

EPOCH_SUPPLY = "inv:epoch:supply"
EPOCH_HELD = "inv:epoch:held"


@dataclass(frozen=True)
class Stock:
    supply: int
    held: int

    @property
    def sellable(self) -> int:
        return max(self.supply - self.held, 0)


@dataclass(frozen=True)
class HoldResult:
    ok: bool
    units: int
    """Units held when ok; units still sellable when not."""
    missing: str | None = None
    """"supply" or "held" when that counter is missing: nothing was held, rebuild first."""
    seen: tuple[tuple[str, str | None], ...] = ()
    """When refused: each counter the script decided on, with its value as it read it (None:
    missing). What the refusal stays true for while they read the same."""


class Inventory:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._adjust = redis.register_script(_ADJUST_SUPPLY)
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)
        self._set_holds = redis.register_script(_SET_HOLDS)
        self._set_holds_if_missing = redis.register_script(_SET_HOLDS_IF_MISSING)
        self._set_supply_if_missing = redis.register_script(_SET_SUPPLY_IF_MISSING)

    # -- fulfilment's side -------------------------------------------------------------------

    async def adjust_supply(self, sku_id: str, delta: int, op_id: str, *, hands_over: str | None = None) -> int | None:
        """Add `delta` (may be negative) to the SKU's supply once per `op_id` (an import batch,
        a claim for an order...). Returns the new supply, or None when `op_id` was applied before.

        `hands_over`: the order whose claimed keys these are. Its hold is released in the same
        script, so `sellable` never counts the units twice (out of supply and still held) in the
        time between fulfilment's claim and the order's own release when it hears of the
        delivery (which then finds nothing to release). Without this, buyers arriving in that
        window were turned away while keys were left (an earlier batching attempt sold 48-49 of
        50 keys in tests/e2e/test_replicas.py)."""
        keys = [_k(sku_id, "supply"), _k(sku_id, f"op:{op_id}")]
        args: list[str | int] = [delta, OP_MARKER_TTL_SECONDS]
        if hands_over is not None:
            keys += [_k(sku_id, "held"), _k(sku_id, "holds")]
            args.append(hands_over)
        result = await self._adjust(keys=keys, args=args)
        return None if result is None else int(result)

    async def set_supply(self, sku_id: str, supply: int, applied_ops: Iterable[str] = ()) -> None:
        """Rebuild: the vault's count of available keys is the truth.

        `applied_ops` are the supply changes (import batches, claims, disables) that this count
        already includes; they are marked applied in the same MULTI, so a late `adjust_supply` for
        one of them (a redelivered event, a retried request) cannot count it a second time."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(_k(sku_id, "supply"), supply)
            for op_id in applied_ops:
                pipe.set(_k(sku_id, f"op:{op_id}"), "1", ex=OP_MARKER_TTL_SECONDS)
            await pipe.execute()

    async def set_supply_if_missing(self, sku_id: str, supply: int, applied_ops: Iterable[str] = ()) -> bool:
        """Rebuild a lost counter: as `set_supply`, but only if the counter is missing (False if
        it exists, e.g. another rebuild or a live change created it meanwhile)."""
        keys = [_k(sku_id, "supply"), *(_k(sku_id, f"op:{op_id}") for op_id in applied_ops)]
        return bool(await self._set_supply_if_missing(keys=keys, args=[supply, OP_MARKER_TTL_SECONDS]))

    # -- order's side ------------------------------------------------------------------------

    async def hold(self, sku_id: str, order_id: str, units: int) -> HoldResult:
        """Hold `units` for an order if that many are sellable. Idempotent per order id."""
        supply_key, held_key = _k(sku_id, "supply"), _k(sku_id, "held")
        ok, value, *read = await self._hold(keys=[supply_key, held_key, _k(sku_id, "holds")], args=[order_id, units])
        if ok < 0:
            seen = ((held_key, reading(read[0])), (supply_key, None)) if ok == -1 else ()
            return HoldResult(ok=False, units=0, missing="supply" if ok == -1 else "held", seen=seen)
        if not ok:
            return HoldResult(
                ok=False, units=int(value), seen=((held_key, reading(read[0])), (supply_key, reading(read[1])))
            )
        return HoldResult(ok=True, units=int(value))

    async def release(self, sku_id: str, order_id: str) -> int:
        """Give an order's held units back (cancelled, expired, or delivered: the supply side then
        counts them out). Idempotent: a second release returns 0."""
        return int(await self._release(keys=[_k(sku_id, "held"), _k(sku_id, "holds")], args=[order_id]))

    async def set_holds(self, sku_id: str, holds: Mapping[str, int]) -> int:
        """Rebuild: the open orders in the order service's database are the truth."""
        args: list[str | int] = []
        for order_id, units in holds.items():
            args += [order_id, units]
        return int(await self._set_holds(keys=[_k(sku_id, "held"), _k(sku_id, "holds")], args=args))

    async def set_holds_if_missing(self, sku_id: str, holds: Mapping[str, int]) -> bool:
        """Rebuild a lost counter: as `set_holds`, only if the held counter is missing."""
        args: list[str | int] = []
        for order_id, units in holds.items():
            args += [order_id, units]
        keys = [_k(sku_id, "held"), _k(sku_id, "holds")]
        return int(await self._set_holds_if_missing(keys=keys, args=args)) >= 0

    # -- epochs: whether this Redis's counters were built from the owners' truth --------------

    async def epoch_known(self, marker: str) -> bool:
        return bool(await self.redis.exists(marker))

    async def epoch(self, marker: str) -> str | None:
        """The marker's value (None: not set), for an answer that names it as a fact."""
        return reading(await self.redis.get(marker))

    async def mark_epoch(self, marker: str) -> None:
        await self.redis.set(marker, "1")

    # -- both --------------------------------------------------------------------------------

    async def holds_known(self, sku_id: str) -> bool:
        """False when Redis has no held counter for the SKU: the order service rebuilds it."""
        return bool(await self.redis.exists(_k(sku_id, "held")))

    async def skus_with_holds(self) -> list[str]:
        skus = []
        async for key in self.redis.scan_iter(match="inv:{*}:held", count=1000):
            text = key.decode() if isinstance(key, bytes) else str(key)
            skus.append(text[len("inv:{") : text.index("}")])
        return skus

    async def stock(self, sku_id: str) -> Stock:
        supply, held = await self.redis.mget(_k(sku_id, "supply"), _k(sku_id, "held"))
        return Stock(supply=int(supply or 0), held=int(held or 0))

    async def stocks(
        self, sku_ids: Iterable[str], readings: list[tuple[str, object]] | None = None
    ) -> dict[str, Stock]:
        """`stock` of several SKUs in one round trip (one MGET per SKU, each on its own slot).
        `readings`, when given, receives each counter's key and raw value as read: what an
        answer built from these stocks depends on (shared.edge_cache)."""
        ids = list(dict.fromkeys(sku_ids))
        async with self.redis.pipeline(transaction=False) as pipe:
            for sku_id in ids:
                pipe.mget(_k(sku_id, "supply"), _k(sku_id, "held"))
            found = await pipe.execute()
        if readings is not None:
            for sku_id, (supply, held) in zip(ids, found, strict=True):
                readings += [(_k(sku_id, "supply"), supply), (_k(sku_id, "held"), held)]
        return {
            sku_id: Stock(supply=int(supply or 0), held=int(held or 0))
            for sku_id, (supply, held) in zip(ids, found, strict=True)
        }

    async def known(self, sku_id: str) -> bool:
        """False when Redis has no supply counter for the SKU (e.g. it restarted empty): rebuild."""
        return bool(await self.redis.exists(_k(sku_id, "supply")))
