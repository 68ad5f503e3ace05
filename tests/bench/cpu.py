"""CPU seconds each part of the platform spends during a measured stretch of a benchmark.

On the 2-core machine every part (database, broker, Redis, gateway, services, the load
generator) shares the same two cores, so "which part saturates first" is a question of where
the CPU goes. The meter reads each process's user + system time (psutil) at the start and the
end of the stretch, for the benchmark process and every process it started, named by role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psutil


def role(process: psutil.Process) -> str:
    """The part a process plays, from its command line (`python -m services.order` -> order)."""
    try:
        cmdline = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    if process.pid == psutil.Process().pid:
        return "load generator"
    text = " ".join(cmdline)
    for marker, name in (("secantusd", "mongodb"), ("tansu", "kafka"), ("redis-server", "redis"), ("valkey", "redis")):
        if marker in text:
            return name
    if "-m" in cmdline:
        module = cmdline[cmdline.index("-m") + 1]
        return module.split(".", 1)[-1]
    return cmdline[0].rsplit("/", 1)[-1] if cmdline else "unknown"


def cpu_by_role() -> dict[str, float]:
    """User + system CPU seconds so far per role (processes of one role summed)."""
    me = psutil.Process()
    totals: dict[str, float] = {}
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        name = role(process)
        totals[name] = totals.get(name, 0.0) + times.user + times.system
    return totals


@dataclass
class CpuMeter:
    """`start()`, run the stretch, `stop()`; then `report(per=n)` for CPU seconds per unit."""

    before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    started: float = 0.0
    wall: float = 0.0

    def start(self) -> None:
        self.before = cpu_by_role()
        self.started = time.perf_counter()

    def stop(self) -> None:
        self.wall = time.perf_counter() - self.started
        after = cpu_by_role()
        self.spent = {name: after[name] - self.before.get(name, 0.0) for name in after}

    def report(self, per: int) -> dict[str, object]:
        """CPU milliseconds per unit (e.g. per delivered order) by role, the busiest first, and
        how much of the machine's cores the stretch used in all."""
        total = sum(self.spent.values())
        cores = psutil.cpu_count() or 1
        return {
            "cpu_ms_per_unit": {
                name: round(seconds * 1000 / max(per, 1), 1)
                for name, seconds in sorted(self.spent.items(), key=lambda kv: -kv[1])
                if seconds > 0.005
            },
            "cpu_ms_per_unit_total": round(total * 1000 / max(per, 1), 1),
            "cores_busy": round(total / self.wall, 2) if self.wall else 0.0,
            "cores": cores,
        }
