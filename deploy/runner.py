"""The process runner of `make dev`: starts the platform's processes with their output prefixed by
name (and kept in a log file each), and restarts one that exits, as Kubernetes would, while the
others keep running. Ctrl-C (or SIGTERM) stops them all.

A restart waits 1 s, doubling with each crash in a row up to 30 s; a process that ran for a minute
counts as healthy again. Each restart is announced in the process's own output, e.g.

    12:00:01 order       | kameng-dev: order exited (killed by SIGKILL); restart 1 in 1 s
    12:00:02 order       | kameng-dev: order restarted (pid 4242, restart 1)
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from deploy.stack import die_with_parent

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
HEALTHY_AFTER = 60.0
STOP_TIMEOUT = 10.0


def exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Supervised:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    crashes_in_a_row: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    pump: threading.Thread | None = None


@dataclass
class Runner:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    backoff_first: float = BACKOFF_FIRST
    backoff_max: float = BACKOFF_MAX
    healthy_after: float = HEALTHY_AFTER
    clock: Callable[[], float] = time.monotonic
    processes: dict[str, Supervised] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path | None = None) -> None:
        self.processes[name] = Supervised(name=name, argv=list(argv), env=dict(env), log_path=log_path)

    @property
    def width(self) -> int:
        return max((len(n) for n in self.processes), default=8)

    def say(self, name: str, line: str) -> None:
        """One line of `name`'s output, prefixed, to the terminal and its log file."""
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            self.out.write(f"{stamp} {name:<{self.width}} | {line}\n")
            self.out.flush()
            p = self.processes.get(name)
            if p is not None and p.log_path is not None:
                with p.log_path.open("a", encoding="utf-8", errors="replace") as log:
                    log.write(f"{stamp} {line}\n")

    def _start(self, p: Supervised) -> None:
        p.process = subprocess.Popen(
            list(p.argv),
            env={**p.env, "KAMENG_RESTARTS": str(p.restarts)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own session: Ctrl-C reaches the runner only, which then stops everything in order.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        p.started_at = self.clock()
        p.restart_at = None
        p.pump = threading.Thread(target=self._pump, args=(p, p.process), name=f"pump-{p.name}", daemon=True)
        p.pump.start()

    def _pump(self, p: Supervised, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            self.say(p.name, raw.decode(errors="replace").rstrip("\n"))

    def start(self) -> None:
        for p in self.processes.values():
            self._start(p)

    def tick(self) -> None:
        """Notice exits and restart what is due; called a few times a second."""
        now = self.clock()
        for p in self.processes.values():
            if self._stopping.is_set():
                return
            if p.process is not None and p.restart_at is None and (code := p.process.poll()) is not None:
                if p.pump is not None:
                    p.pump.join(timeout=2)  # its last words before ours
                ran = now - p.started_at
                p.crashes_in_a_row = 1 if ran >= self.healthy_after else p.crashes_in_a_row + 1
                delay = min(self.backoff_first * 2 ** (p.crashes_in_a_row - 1), self.backoff_max)
                p.restart_at = now + delay
                self.say(
                    p.name,
                    f"kameng-dev: {p.name} exited ({exit_reason(code)}); restart {p.restarts + 1} in {delay:.0f} s",
                )
            elif p.restart_at is not None and now >= p.restart_at:
                p.restarts += 1
                self._start(p)
                pid = p.process.pid if p.process else "?"
                self.say(p.name, f"kameng-dev: {p.name} restarted (pid {pid}, restart {p.restarts})")

    def loop(self, interval: float = 0.2) -> None:
        while not self._stopping.is_set():
            self.tick()
            self._stopping.wait(interval)

    def stop(self) -> None:
        """SIGTERM every process (last started first), then SIGKILL what is left after a while."""
        self._stopping.set()
        running = [p for p in reversed(list(self.processes.values())) if p.process and p.process.poll() is None]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                p.process.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_TIMEOUT
        for p in running:
            assert p.process is not None
            try:
                p.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.process.kill()
                p.process.wait(timeout=5)
        for p in self.processes.values():
            if p.pump is not None:
                p.pump.join(timeout=2)
