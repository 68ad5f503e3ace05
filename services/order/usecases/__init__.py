"""The order service's operations, one async function per operation, taking `OrderDeps` (and a
`Tx` when they run inside the caller's transaction): `placing` (quote and place), `orders` (the
buyer's order center: list, show, cancel, urge), `batches` (batch orders and templates), `saga`
(what the other services' events do to orders), `upkeep` (expiry, Redis holds, projections)."""
