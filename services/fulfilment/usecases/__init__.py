"""The fulfilment service's operations, one async function each, taking `FulfilmentDeps` (and the
`Tx` when they run inside a caller's transaction):

    delivery  start one delivery per paid order (auto / direct / manual), close it, stop it on cancel
    direct    direct top-ups: send to the supplier, poll, apply results, retry (background dispatcher)
    manual    the staff queue of manual deliveries
    reissue   replacement keys after a ticket
    reveal    showing a buyer what was delivered
    vault     the SKU projection, key imports, disables, the key list
    stock     the Redis supply counters kept from the vault (and their periodic rebuild)
"""
