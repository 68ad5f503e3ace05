"""Run the whole platform as separate processes for tests: start, wait until ready, kill, restart.

with EmbeddedStack() as infra:
    platform = Platform(base_env={**os.environ, **infra}, logs_dir=...)
    platform.start()
    httpx.get(platform.gateway_url + "/health/ready")
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.services import ALL_PROCESSES, assign_ports, command, process_env
from deploy.stack import die_with_parent, log_tail


class PlatformError(RuntimeError):
    pass


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, extra_env: Mapping[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command(self.name),
                env={**self.env, **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = False, timeout: float = 15) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@dataclass
class Platform:
    base_env: Mapping[str, str]
    logs_dir: Path
    names: Iterable[str] = ALL_PROCESSES
    ready_timeout: float = 90.0
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        ports = self.ports = assign_ports()
        for name in self.names:
            self.processes[name] = ServiceProcess(
                name=name,
                port=ports[name],
                env=process_env(name, ports, self.base_env),
                log_path=self.logs_dir / f"{name}.log",
            )

    @property
    def gateway_url(self) -> str:
        return self.processes["gateway"].url

    def url(self, name: str) -> str:
        return self.processes[name].url

    def start(self) -> None:
        for p in self.processes.values():
            p.start()
        self.wait_ready(*self.processes)

    def wait_ready(self, *names: str) -> None:
        deadline = time.monotonic() + self.ready_timeout
        pending = set(names)
        last: dict[str, str] = {}
        with httpx.Client(timeout=3.0) as client:
            while pending and time.monotonic() < deadline:
                for name in sorted(pending):
                    p = self.processes[name]
                    if not p.alive():
                        raise PlatformError(
                            f"{name} exited with {p.process.returncode if p.process else '?'}; "
                            f"log: {p.log_path}{log_tail(p.log_path, 30)}"
                        )
                    try:
                        r = client.get(f"{p.url}/health/ready")
                        if r.status_code == 200:
                            pending.discard(name)
                        else:
                            last[name] = r.text
                    except httpx.HTTPError as exc:
                        last[name] = repr(exc)
                if pending:
                    time.sleep(0.25)
        if pending:
            details = "; ".join(f"{n}: {last.get(n, '?')} (log {self.processes[n].log_path})" for n in sorted(pending))
            raise PlatformError(f"not ready after {self.ready_timeout:.0f}s: {details}")

    def kill(self, name: str) -> None:
        """SIGKILL: the process gets no chance to clean up, commit offsets or flush."""
        self.processes[name].stop(kill=True)

    def stop_service(self, name: str) -> None:
        self.processes[name].stop()

    def restart(self, name: str, extra_env: Mapping[str, str] | None = None, *, wait: bool = True) -> None:
        self.processes[name].stop()
        self.processes[name].start(extra_env)
        if wait:
            self.wait_ready(name)

    def stop(self) -> None:
        for p in reversed(list(self.processes.values())):
            p.stop()


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def default_base_env(infra: Mapping[str, str]) -> dict[str, str]:
    from deploy.services import DEV_DEFAULTS

    return {**DEV_DEFAULTS, **os.environ, **infra}
