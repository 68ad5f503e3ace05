"""Event contracts: the envelope, the topic map, and every event model (importing this package
registers them all, so producers and consumers see the same registry)."""

from shared.contracts import platform as platform
