"""Helpers shared by the benchmarks: machine facts, RESULTS.md sections, profiles."""

from __future__ import annotations

import cProfile
import io
import os
import platform
import pstats
import re
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

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
    path.write_text(glance(new.rstrip("\n") + "\n"))


GLANCE = "## Bars at a glance"
BAR_LINE = re.compile(r"^- \*\*(?P<what>.+?)\*\* \((?P<bar>(?:bar|bound)[^)]*)\): (?P<verdict>\w+)")


def glance(text: str) -> str:
    """RESULTS.md with its "Bars at a glance" section rebuilt: one row per bar line
    (`- **figure** (bar ...): holds|MISSED`) of the other sections, with their dates."""
    body = re.sub(rf"^{GLANCE}\n.*?(?=^## )", "", text, flags=re.S | re.M)
    rows: list[str] = []
    section = date = ""
    for line in body.splitlines():
        if line.startswith("## "):
            section, date = line[3:], ""
        elif line.startswith("Date: "):
            date = line[6:].strip()
        elif m := BAR_LINE.match(line):
            verdict = "**missed**" if m["verdict"].lower() == "missed" else m["verdict"]
            rows.append(f"| {section} | {m['what']} | {m['bar']} | {verdict} | {date} |")
    first = body.find("\n## ")
    if not rows or first < 0:
        return body
    table = [
        GLANCE,
        "",
        "Rebuilt whenever a benchmark writes its section, from the bar lines of the sections",
        "below (each says how its figure was measured; a missed bar says why there).",
        "",
        "| benchmark | figure | bar | verdict | measured |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "",
    ]
    return body[: first + 1] + "\n".join(table) + body[first + 1 :]


def strip_paths(report: str) -> str:
    return report.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")


def profile_report(source: Any, what: str, *, top: int = 15, ours: int = 0, own: int = 0) -> str:
    """A cProfile (a `cProfile.Profile` or a saved stats file) as text: the `top` entries by
    cumulative time, then src/opswald's `ours` and the `own` by own time (each when > 0)."""
    parts = [("cumulative", None, top, f"{what}: top {top} by cumulative time")]
    if ours:
        parts.append(("cumulative", r"opswald/", ours, f"src/opswald, top {ours} by cumulative"))
    if own:
        parts.append(("tottime", None, own, f"top {own} by own time"))
    out = []
    for order, where, count, title in parts:
        stream = io.StringIO()
        restrictions = [where, count] if where else [count]
        pstats.Stats(source, stream=stream).sort_stats(order).print_stats(*restrictions)
        out.append(f"== {title} ==\n{strip_paths(stream.getvalue())}")
    return "\n".join(out)


def profiled(run: Callable[[], Any]) -> cProfile.Profile:
    """`run()` once under cProfile."""
    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    return prof


def pytest_env(*drop: str) -> dict[str, str]:
    """The environment of a timed pytest subprocess: ours, with bytecode caching on (as
    pytest runs by default: the untimed warm-up writes the `.pyc` caches, assertion-rewritten
    ones included, so no leg pays for compiling), without `PYTEST_ADDOPTS`, `CI` and `drop`."""
    env = dict(os.environ)
    for name in ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS", "CI", *drop):
        env.pop(name, None)
    return env
