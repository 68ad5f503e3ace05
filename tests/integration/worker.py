"""A child process for crash tests: `python -m tests.integration.worker MODE SUFFIX SERVICE [N]`.

relay-crash  write N things through the outbox, then publish them (a fail point makes the
             process die between publish and mark, like a relay killed at the worst moment)
consume      consume until N deliveries were seen, then print them as JSON and exit 0
"""

from __future__ import annotations

import asyncio
import json
import sys

from shared.messaging.outbox import Tx
from shared.telemetry import setup_logging
from tests.integration.kit import Node, settings_for, thing_event


async def relay_crash(node: Node, count: int) -> None:
    await node.setup()
    await node.broker.connect()

    async def write(tx: Tx) -> None:
        for i in range(count):
            tx.emit(node.model(thing_id=f"thing-{i}", amount=i + 1))

    await node.uow.run(write)
    assert await node.relay._hold_lease()
    await node.relay.drain_once()  # the fail point ends the process inside this call
    print("relay was not stopped by the fail point", flush=True)


async def consume(node: Node, deliveries: int) -> None:
    node.consume()
    await node.start()
    try:
        await node.wait_for(_at_least(node, deliveries), timeout=60)
        await asyncio.sleep(1.0)  # let the consumer commit its offset
        print(json.dumps({"deliveries": dict(node.deliveries)}), flush=True)
    finally:
        await node.close()


def _at_least(node: Node, n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return sum(node.deliveries.values()) >= n

    return check


def main() -> None:
    mode, suffix, service = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    setup_logging(service, "INFO")
    node = Node(settings_for(service, outbox_lease_seconds=1.0), thing_event(suffix))
    asyncio.run(relay_crash(node, count) if mode == "relay-crash" else consume(node, count))


if __name__ == "__main__":
    main()
