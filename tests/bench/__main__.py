"""`python -m tests.bench [name ...]` (`make bench`): run every tests/bench/bench_*.py (or the named
ones). Each module has `main(argv) -> None` that prints what it measured."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    wanted = [a for a in argv if not a.startswith("-")]
    selected = [n for n in names if not wanted or n in wanted or n.removeprefix("bench_") in wanted]
    if not selected:
        print(f"no benchmark matches {wanted}; have {names}")
        return 2
    for name in selected:
        print(f"== {name}")
        importlib.import_module(f"tests.bench.{name}").main([a for a in argv if a.startswith("-")])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
