"""`make dev`: the embedded stack, then every simulator, service and the gateway as separate
processes under the runner (deploy/runner.py: output prefixed by name, a process that exits is
restarted while the rest keep running), until Ctrl-C; then everything is stopped.

The database keeps its data in `.kameng/dev/stack/data` between runs (catalog, keys, accounts,
orders). The broker keeps nothing, so each start is a new broker: every service's relay then
publishes again what its outbox sent within the retention window, and the consumers' inboxes
skip what was applied before (shared/messaging/recovery.py). A saga in flight at Ctrl-C finishes
after the next `make dev`. `make dev-reset` (`python -m deploy.dev --reset`) starts clean.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from deploy.runner import Runner
from deploy.services import ALL_PROCESSES, DEV_DEFAULTS, DEV_TOOLS, assign_ports, command, process_env
from deploy.stack import EmbeddedStack, StackError, free_port, port_taken, sigterm_as_interrupt

RUN_DIR = Path(".kameng/dev")
DATA_DIR = RUN_DIR / "stack" / "data"
# Where the database wrote before its path was made absolute (issue 12); removed by a reset.
OLD_NESTED_DATA = RUN_DIR / "stack" / ".kameng"


def reset() -> None:
    for folder in (DATA_DIR, OLD_NESTED_DATA):
        shutil.rmtree(folder, ignore_errors=True)
    print(f"kameng-dev: removed the dev data ({DATA_DIR}); starting clean", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kameng-dev", description="Run the whole platform locally")
    parser.add_argument("--reset", action="store_true", help="delete the dev database first (make dev-reset)")
    args = parser.parse_args(argv)
    if args.reset:
        reset()
    preferred = int(os.environ.get("GATEWAY_PORT", "8000"))
    kept = (DATA_DIR / "mongodb").exists()
    stack = EmbeddedStack(run_dir=RUN_DIR / "stack")
    with sigterm_as_interrupt():
        try:
            infra = stack.start()
        except StackError as exc:
            print(f"kameng-dev: {exc}", file=sys.stderr)
            return 1
        runner = Runner()
        try:
            ports = assign_ports(gateway_port=None if port_taken(preferred) else preferred)
            ports["traceview"] = 16686 if not port_taken(16686) else free_port()
            traces = f"http://127.0.0.1:{ports['traceview']}"
            # Every span goes to the local trace viewer unless an OTLP endpoint is set already; the
            # console links an order to its trace there (deploy/traceview.py).
            dev_tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": traces, "TRACE_VIEWER_URL": traces + "/traces/{trace_id}"}
            base = {**DEV_DEFAULTS, **dev_tracing, **os.environ, **infra}
            gateway = f"http://127.0.0.1:{ports['gateway']}"
            logs = RUN_DIR / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            print("\nKameng is starting on the embedded stack:")
            print("\n".join(stack.describe()))
            print(f"\n  storefront {gateway}/   (the shop; sign up there or sign in as the admin below)")
            print(f"  console    {gateway}/admin/   (staff and admin)")
            print(f"  gateway   {gateway}   (API docs {gateway}/schema, readiness {gateway}/health/ready)")
            print(f"  paysim    http://127.0.0.1:{ports['paysim']}   (simulated payment provider: POST a pay_url)")
            print(f"  supplier  http://127.0.0.1:{ports['suppliersim']}   (simulated direct top-up supplier)")
            print(f"  mail      http://127.0.0.1:{ports['mailsink']}/messages   (every email the platform sends)")
            print(f"  sms       http://127.0.0.1:{ports['smssim']}/messages   (every text message the platform sends)")
            print(f"  traces    {traces}/   (every service's spans; an order's trace from the console)")
            print(f"  admin     {base['KAMENG_ADMIN_EMAIL']} / {base['KAMENG_ADMIN_PASSWORD']}  (dev defaults)")
            print(
                f"  data      {DATA_DIR.resolve()}  ("
                + ("kept from the last run" if kept else "new")
                + "; `make dev-reset` starts clean)"
            )
            print(f"  logs      {logs.resolve()}/<process>.log")
            print("  A process that exits is restarted; Ctrl-C stops everything.\n", flush=True)
            for name in (*DEV_TOOLS, *ALL_PROCESSES):
                runner.add(name, command(name), process_env(name, ports, base), logs / f"{name}.log")
            runner.start()
            runner.loop()
            return 0
        except KeyboardInterrupt:
            return 0
        finally:
            runner.stop()
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
