"""Event contracts: the envelope, the topic map, and every event model (importing this package
registers them all, so producers and consumers see the same registry)."""

from shared.contracts import catalog as catalog
from shared.contracts import fulfilment as fulfilment
from shared.contracts import identity as identity
from shared.contracts import order as order
from shared.contracts import platform as platform
from shared.contracts import support as support
from shared.contracts import wallet as wallet
