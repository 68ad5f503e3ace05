"""The `make dev` runner restarts a process that exits and leaves the others running."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

from deploy.runner import Runner, exit_reason

CRASH_ONCE = """
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
if not marker.exists():
    marker.write_text("crashed")
    print("first life: crashing", flush=True)
    sys.exit(3)
print("second life: up", flush=True)
time.sleep(60)
"""


def wait_for(check: object, runner: Runner, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runner.tick()
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_a_crashed_process_is_restarted_and_says_so_while_the_others_keep_running(tmp_path: Path) -> None:
    out = io.StringIO()
    runner = Runner(out=out, backoff_first=0.05)
    runner.add("flaky", [sys.executable, "-c", CRASH_ONCE, str(tmp_path / "marker")], {}, tmp_path / "flaky.log")
    runner.add("steady", [sys.executable, "-c", "import time; print('steady up', flush=True); time.sleep(60)"], {})
    runner.start()
    try:
        steady_pid = runner.processes["steady"].process.pid  # type: ignore[union-attr]
        wait_for(lambda: "second life: up" in out.getvalue(), runner)
        text = out.getvalue()
        assert "flaky" in text and "kameng-dev: flaky exited (exit code 3); restart 1 in 0 s" in text
        assert "kameng-dev: flaky restarted (pid" in text
        assert runner.processes["flaky"].restarts == 1
        steady = runner.processes["steady"]
        assert steady.process is not None and steady.process.pid == steady_pid and steady.process.poll() is None
        assert steady.restarts == 0
        assert "kameng-dev: flaky restarted" in (tmp_path / "flaky.log").read_text()
    finally:
        runner.stop()
    assert all(p.process is not None and p.process.poll() is not None for p in runner.processes.values())


def test_exit_reasons_name_the_signal() -> None:
    assert exit_reason(-9) == "killed by SIGKILL"
    assert exit_reason(2) == "exit code 2"
