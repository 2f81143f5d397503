"""Helpers shared by bench_engine.py and bench_collection.py: machine facts, RESULTS.md."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def machine(dists: tuple[str, ...]) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "absent"
    return {
        "arch": platform.machine(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def header(title: str, command: str, m: dict[str, str]) -> list[str]:
    from datetime import UTC, datetime

    return [
        f"## {title}",
        "",
        f"Command: `{command}` (from the repository root; `python bench/run_all.py` runs it too)  ",
        f"Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Machine: `uname -m` {m['arch']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}  ",
        f"Packages: {m['versions']}",
        "",
    ]


def write_results(title: str, section: str) -> None:
    """Replace the `## {title}` section of RESULTS.md (or append it); keep the others."""
    path = BENCH / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    lines = text.splitlines(keepends=True)
    head = f"## {title}"
    start = next((i for i, line in enumerate(lines) if line.rstrip() == head), None)
    section = section.rstrip("\n") + "\n"
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        rest = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + rest if rest else "")
    path.write_text(new.rstrip("\n") + "\n")


def strip_paths(report: str) -> str:
    return report.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
