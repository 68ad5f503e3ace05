"""The embedded stack launcher and service readiness when a dependency is missing."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from deploy import stack as stack_module
from deploy.platform import ServiceProcess
from deploy.services import process_env
from deploy.stack import EmbeddedStack, StackError, free_port


def test_a_port_already_in_use_is_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hold a port, and make the launcher pick it first: the server cannot bind, so it must
    # notice and start again on another port.
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    taken = held.getsockname()[1]
    picks = iter([taken])
    monkeypatch.setattr(stack_module, "free_port", lambda: next(picks, None) or free_port())
    s = EmbeddedStack(run_dir=tmp_path, use_environment=False, ready_timeout=15)
    try:
        component = s.start_component("redis")
        assert component.port != taken
        stack_module.check_redis(component.url)
    finally:
        s.stop()
        held.close()


def test_a_component_that_cannot_start_is_named_with_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        stack_module.COMMANDS,
        "mongodb",
        lambda port, data: ["python3", "-c", "import sys; print('no disk here'); sys.exit(3)"],
    )
    s = EmbeddedStack(run_dir=tmp_path, use_environment=False, ready_timeout=10)
    with pytest.raises(StackError) as err:
        s.start()
    message = str(err.value)
    assert "mongodb exited with code 3" in message
    assert str(tmp_path / "logs" / "mongodb.log") in message and "no disk here" in message
    # Whatever had started before the failure was stopped again.
    assert all(c.process is None or c.process.poll() is not None for c in s.components.values())


def test_given_infrastructure_is_used_instead_of_starting_one(
    infra: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key, value in infra.items():
        monkeypatch.setenv(key, value)
    s = EmbeddedStack(run_dir=tmp_path)
    assert s.start() == infra
    assert all(c.external and c.process is None for c in s.components.values())
    s.stop()


def test_unreachable_given_infrastructure_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("MONGODB_URL", raising=False)
    s = EmbeddedStack(run_dir=tmp_path, ready_timeout=2)
    with pytest.raises(StackError, match=r"redis at redis://127\.0\.0\.1:\d+/0 did not answer .* given by REDIS_URL"):
        s.start()


def test_service_is_not_ready_while_a_dependency_is_down(base_env: dict[str, str], tmp_path: Path) -> None:
    dead_mongo = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true&serverSelectionTimeoutMS=500"
    ports = {"catalog": free_port()}
    env = process_env("catalog", ports, {**base_env, "MONGODB_URL": dead_mongo, "MONGODB_TIMEOUT_MS": "500"})
    proc = ServiceProcess(name="catalog", port=ports["catalog"], env=env, log_path=tmp_path / "catalog.log")
    proc.start()
    try:
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{proc.url}/health/ready", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert response is not None and response.status_code == 503
        checks = response.json()["checks"]
        assert checks["mongodb"].startswith("unreachable") and checks["redis"] == "ok"
        assert checks["kafka"] != "ok"  # consumers wait for the database before they start
        assert httpx.get(f"{proc.url}/health/live").status_code == 200  # alive, just not ready
        assert "waiting for infrastructure" in (tmp_path / "catalog.log").read_text()
    finally:
        proc.stop()
