"""`make bench` / `python -m tests.bench [name ...]`: run the benchmarks (tests/bench/bench_*.py).

Each benchmark starts its own embedded stack (or uses the servers named by the usual
environment variables), measures, prints its numbers and returns them as a dict. They are not
tests: nothing here passes or fails on a time.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = [m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")]
    wanted = [n for n in names if not argv or any(a in n for a in argv)]
    results = {}
    for name in wanted:
        module = importlib.import_module(f"tests.bench.{name}")
        print(f"== {name}", flush=True)
        results[name] = asyncio.run(module.main()) if asyncio.iscoroutinefunction(module.main) else module.main()
        print(json.dumps(results[name], indent=2, ensure_ascii=False), flush=True)
    out = Path(".kameng/bench-results.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
