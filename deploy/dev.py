"""`make dev`: the embedded stack, then every service and the gateway as separate processes with
their output prefixed by name (honcho), until Ctrl-C; then everything is stopped."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from honcho.manager import Manager

from deploy.services import ALL_PROCESSES, DEV_DEFAULTS, assign_ports, command, process_env
from deploy.stack import EmbeddedStack, StackError, port_taken, sigterm_as_interrupt

RUN_DIR = Path(".kameng/dev")


def main() -> int:
    preferred = int(os.environ.get("GATEWAY_PORT", "8000"))
    # Each run starts empty: the embedded broker keeps nothing, so neither may the database
    # (events in flight at the last stop would be gone while their effects remained).
    shutil.rmtree(RUN_DIR / "stack" / "data", ignore_errors=True)
    stack = EmbeddedStack(run_dir=RUN_DIR / "stack")
    with sigterm_as_interrupt():
        try:
            infra = stack.start()
        except StackError as exc:
            print(f"kameng-dev: {exc}", file=sys.stderr)
            return 1
        try:
            base = {**DEV_DEFAULTS, **os.environ, **infra}
            ports = assign_ports(gateway_port=None if port_taken(preferred) else preferred)
            gateway = f"http://127.0.0.1:{ports['gateway']}"
            print("\nKameng is starting on the embedded stack:")
            print("\n".join(stack.describe()))
            print(f"\n  gateway   {gateway}   (API docs {gateway}/schema, readiness {gateway}/health/ready)")
            print(f"  paysim    http://127.0.0.1:{ports['paysim']}   (simulated payment provider: POST a pay_url)")
            print(f"  supplier  http://127.0.0.1:{ports['suppliersim']}   (simulated direct top-up supplier)")
            print(f"  mail      http://127.0.0.1:{ports['mailsink']}/messages   (every email the platform sends)")
            print(f"  admin     {base['KAMENG_ADMIN_EMAIL']} / {base['KAMENG_ADMIN_PASSWORD']}  (dev defaults)")
            print("  Ctrl-C stops everything.\n", flush=True)
            manager = Manager()
            for name in ALL_PROCESSES:
                manager.add_process(name, " ".join(command(name)), env=process_env(name, ports, base))
            manager.loop()
            return manager.returncode or 0
        except KeyboardInterrupt:
            return 0
        finally:
            stack.stop()


if __name__ == "__main__":
    sys.exit(main())
