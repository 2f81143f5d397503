"""Run every benchmark in bench/ (each `bench_*.py`, in name order), one process each.

    python bench/run_all.py            # all of them, default sizes; updates bench/RESULTS.md
    python bench/run_all.py http       # only those whose file name contains "http"

Each benchmark prints its table and rewrites its own section of bench/RESULTS.md.
Exits non-zero if any benchmark failed to run (a missed bar is reported, not a failure).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(BENCH.glob("bench_*.py"))
    if argv:
        scripts = [s for s in scripts if any(word in s.name for word in argv)]
    if not scripts:
        print("no benchmark matched", file=sys.stderr)
        return 2
    failed: list[str] = []
    for script in scripts:
        print(f"== {script.relative_to(BENCH.parent)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=BENCH.parent, timeout=1800)
        print(
            f"== {script.name}: exit {code} after {time.perf_counter() - started:.0f}s\n",
            flush=True,
        )
        if code:
            failed.append(script.name)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
