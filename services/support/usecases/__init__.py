"""The support service's operations, one async function each, taking `SupportDeps` (and a `Tx`
when they run inside a caller's transaction): tickets, urges, content, notifications, webhooks,
and what the consumed events change (`orders`)."""
