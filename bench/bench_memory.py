"""Memory: peak RSS of one serial pytest run replaying 1,000 versus 2,000 goldens, next to
plain pytest running 1,000 versus 2,000 parametrized trivial tests.

DESIGN §6 sets no memory bar; issue 9 asks for the growth from 1k to 2k goldens. What is
reported: peak RSS, the 2k/1k ratio, and the KiB each extra golden (or test) adds, with the
goldens' `--collect-only` peak beside it (collect-only holds no golden: the difference is
what a run holds from collection until each golden has run).

Workload: goldens of one agent that makes 5 model calls, each followed by a tool call
whose result is a nested record list (~0.6 KB), so 10 steps and ~8 KB of YAML per golden,
each with its own input. Recorded in this process with `execute(...,
RunSettings(policy="live"))` and written with `opswald.dump` into `goldens/` of a pytest
project whose conftest wires the agent through `pytest_opswald_adapter` (the 1k project
hard-links the first 1,000 files of the 2k one). Reference: a project with one trivial test
parametrized N ways. Every run is a subprocess (`-q -p no:cacheprovider`, serial,
bytecode caching on, the count asserted) started by a fresh Python wrapper that reports
`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` — the peak of that one pytest process.
Only opswald is loaded (`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p opswald.plugin`), not the
other pytest plugins of the environment; `--all-plugins` keeps them.

Run: python bench/bench_memory.py [--quick] [--reps N] [--all-plugins] [--no-write]
Writes bench/RESULTS.md (section "Memory").
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import header, machine, pytest_env, write_results  # noqa: E402

import opswald  # noqa: E402
from opswald.engine.run import RunSettings, execute  # noqa: E402
from opswald.files import load  # noqa: E402
from opswald.session import Session  # noqa: E402

SECTION = "Memory"
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider"]
# Other pytest plugins installed here (langsmith's, hypothesis's, ...) cost ~1.7 s at every
# process start, xdist workers included; by default only these are loaded.
ONLY_PLUGINS = ["-p", "opswald.plugin"]
COUNT = re.compile(r"(\d+) (passed|tests? collected)")
MAXRSS = re.compile(r"^OPSWALD_BENCH_MAXRSS_KB=(\d+)$", re.MULTILINE)
# A fresh process per measurement: its RUSAGE_CHILDREN peak is that of its one child.
WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(f'OPSWALD_BENCH_MAXRSS_KB={peak}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)

AGENT = '''
"""A support agent: five model calls, each followed by a lookup returning records."""
import opswald


@opswald.llm
def chat(*, model, messages):
    n = len(messages)
    return {
        "content": f"checking batch {n // 2}",
        "tool_calls": [
            {
                "id": f"call_{n}",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"page": %d}' % (n // 2)},
            }
        ],
        "finish_reason": "tool_calls",
        "usage": {"input_tokens": 90 * n, "output_tokens": 20},
    }


@opswald.tool
def lookup(customer, page):
    return {
        "customer": customer,
        "page": page,
        "records": [
            {"id": customer * 100 + page * 5 + r, "status": "open", "amount": 10.5 * r,
             "note": f"record {r} of page {page} for customer {customer}"}
            for r in range(5)
        ],
    }


def run(input):
    who = input["customer"]
    messages = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": input["question"]},
    ]
    total = 0.0
    for page in range(5):
        reply = chat(model="bench-model", messages=messages)
        found = lookup(customer=who, page=page)
        total += sum(r["amount"] for r in found["records"])
        messages.append({"role": "assistant", "content": reply["content"]})
        messages.append({"role": "tool", "content": str(len(found["records"]))})
    return {"customer": who, "total": total}
'''

CONFTEST = """
import agent


def pytest_opswald_adapter(golden, config):
    return agent.run
"""


def record(folder: Path, n: int) -> int:
    """Record n goldens into `folder`; the size of one file."""
    spec = importlib.util.spec_from_file_location("bench_memory_agent", folder.parent / "agent.py")
    assert spec is not None and spec.loader is not None
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    for i in range(n):
        task = {"question": f"Customer {i} asks about open invoices.", "customer": i}
        run = execute(
            Session(name=f"support_{i:05d}", input=task),
            agent.run,
            settings=RunSettings(policy="live", block_side_effects=False),
        )
        assert run.actual.error is None and len(run.actual.step_list) == 10
        path = folder / f"support_{i:05d}.golden.yaml"
        opswald.dump(run.actual, path)
        if i == 0:
            assert load(path) == run.actual, "the written golden loads back equal"
    return (folder / "support_00000.golden.yaml").stat().st_size


def breakdown(folder: Path, count: int) -> list[str]:
    """Where a golden's memory goes, measured in this process with tracemalloc: KiB per
    golden held by its text, its parsed data, its validated `Session`, and one replay's
    result (actual session + verdict, what a pytest item keeps after its run)."""
    import gc
    import tracemalloc

    from opswald.engine.run import judge
    from opswald.files import load_data

    spec = importlib.util.spec_from_file_location("bench_memory_agent2", folder.parent / "agent.py")
    assert spec is not None and spec.loader is not None
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    paths = sorted(folder.glob("*.golden.yaml"))[:count]
    judge(load(paths[0]), execute(load(paths[0]), agent.run, settings=RunSettings()))  # warm
    held: list[object] = []
    sizes: dict[str, float] = {}
    steps: dict[str, Callable[[Path], object]] = {
        "file text": lambda p: p.read_text(),
        "parsed data (`load_data`)": load_data,
        "validated `Session` (`load`)": load,
    }
    gc.collect()
    tracemalloc.start()
    try:
        for label, make in steps.items():
            before = tracemalloc.get_traced_memory()[0]
            held.append([make(p) for p in paths])
            gc.collect()
            sizes[label] = (tracemalloc.get_traced_memory()[0] - before) / len(paths) / 1024
        sessions = held[-1]
        assert isinstance(sessions, list)
        before = tracemalloc.get_traced_memory()[0]
        results = []
        for golden in sessions:
            run = execute(golden, agent.run, settings=RunSettings())
            results.append((run.actual, judge(golden, run)))
        assert all(verdict.passed for _, verdict in results)
        gc.collect()
        sizes["one replay's actual session + verdict"] = (
            (tracemalloc.get_traced_memory()[0] - before) / len(paths) / 1024
        )
    finally:
        tracemalloc.stop()
    return [f"{label}: {kib:.1f} KiB" for label, kib in sizes.items()]


def make_projects(root: Path, sizes: list[int]) -> tuple[dict[tuple[str, int], Path], int]:
    projects: dict[tuple[str, int], Path] = {}
    biggest = max(sizes)
    names = [f"support_{i:05d}.golden.yaml" for i in range(biggest)]
    source: Path | None = None
    golden_bytes = 0
    for n in sorted(sizes, reverse=True):
        proj = root / f"goldens-{n}"
        (proj / "goldens").mkdir(parents=True)
        (proj / "agent.py").write_text(textwrap.dedent(AGENT))
        (proj / "conftest.py").write_text(CONFTEST)
        (proj / "pytest.ini").write_text("[pytest]\n")
        if source is None:
            golden_bytes = record(proj / "goldens", n)
            source = proj / "goldens"
        else:
            for name in names[:n]:
                os.link(source / name, proj / "goldens" / name)
        projects[("goldens", n)] = projects[("collect", n)] = proj

        proj = root / f"param-{n}"
        proj.mkdir()
        (proj / "pytest.ini").write_text("[pytest]\n")
        (proj / "test_param.py").write_text(
            "import pytest\n\n\n"
            f"@pytest.mark.parametrize('i', range({n}))\n"
            "def test_trivial(i):\n    pass\n"
        )
        projects[("param", n)] = proj
    return projects, golden_bytes


def leg_args(leg: str) -> list[str]:
    extra = {"goldens": ["--opswald-goldens"], "collect": ["--opswald-goldens", "--collect-only"]}
    return [*PYTEST_ARGS, *extra.get(leg, [])]


def run_once(proj: Path, leg: str, expect: int, all_plugins: bool) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one pytest subprocess."""
    cmd = [sys.executable, "-c", WRAPPER, sys.executable, "-m", "pytest", *leg_args(leg)]
    env = pytest_env()
    if not all_plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        cmd[cmd.index("pytest") + 1 : cmd.index("pytest") + 1] = ONLY_PLUGINS
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=proj, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t0
    found = COUNT.search(proc.stdout)
    peak = MAXRSS.search(proc.stderr)
    if proc.returncode != 0 or not found or int(found.group(1)) != expect or not peak:
        raise SystemExit(
            f"{leg} {expect}: exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    return wall, int(peak.group(1)) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 vs 200, one rep")
    parser.add_argument("--reps", type=int, default=None, help="default 2")
    parser.add_argument(
        "--all-plugins", action="store_true", help="load every installed pytest plugin"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 2)
    if not 1 <= reps <= 10:
        parser.error("1 <= --reps <= 10")
    small, large = (100, 200) if args.quick else (1000, 2000)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_memory.py", *map(shlex.quote, given)])
    started = time.perf_counter()

    legs = ["goldens", "collect", "param"]
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="opswald-memory-") as tmp:
        projects, golden_bytes = make_projects(Path(tmp), [small, large])
        print(f"recorded {large} goldens in {time.perf_counter() - started:.1f}s", flush=True)
        where = breakdown(projects[("goldens", small)] / "goldens", min(small, 200))
        print("per golden, in process: " + "; ".join(where), flush=True)
        for rep in range(reps):
            for n in (small, large):
                for leg in legs if rep % 2 == 0 else legs[::-1]:
                    results.setdefault((leg, n), []).append(
                        run_once(projects[(leg, n)], leg, n, args.all_plugins)
                    )
            print(f"rep {rep + 1} done [{time.perf_counter() - started:.0f}s]", flush=True)

    def wall(leg: str, n: int) -> float:
        return statistics.median(w for w, _ in results[(leg, n)])

    def rss(leg: str, n: int) -> float:
        return max(m for _, m in results[(leg, n)])

    labels = {
        "goldens": "goldens, replayed (`--opswald-goldens`)",
        "collect": "goldens, `--collect-only` (info)",
        "param": "parametrized trivial tests (reference)",
    }
    rows = [
        f"| leg | {small} MiB | {large} MiB | {large // small}x / 1x | KiB per extra test | "
        f"{small} s | {large} s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for leg in legs:
        a, b = rss(leg, small), rss(leg, large)
        rows.append(
            f"| {labels[leg]} | {a:.0f} | {b:.0f} | {b / a:.2f} | "
            f"{(b - a) * 1024 / (large - small):.1f} | {wall(leg, small):.2f} | "
            f"{wall(leg, large):.2f} |"
        )
    g_a, g_b = rss("goldens", small), rss("goldens", large)
    c_a, c_b = rss("collect", small), rss("collect", large)
    p_a, p_b = rss("param", small), rss("param", large)
    per_golden = (g_b - g_a) * 1024 / (large - small)
    per_param = (p_b - p_a) * 1024 / (large - small)
    verdict = [
        f"- **goldens replayed: {large} / {small} = {g_b / g_a:.2f}** peak RSS "
        f"({g_a:.0f} → {g_b:.0f} MiB); parametrized tests {p_b / p_a:.2f} "
        f"({p_a:.0f} → {p_b:.0f} MiB). DESIGN §6 sets no memory bar: informational.",
        f"- each extra golden adds {per_golden:.1f} KiB of peak RSS "
        f"({per_golden * 1024 / golden_bytes:.1f}x its {golden_bytes / 1024:.1f} KiB file), "
        f"each extra parametrized test {per_param:.1f} KiB.",
        f"- `--collect-only` holds no golden (it parses and validates each, then keeps its "
        f"item only): {(c_b - c_a) * 1024 / (large - small):.1f} KiB per golden. A cold run "
        "(pytest's cache off, as here) keeps each golden's parsed data, packed in one bytes "
        "object (`files.load_compact`), from collection until its item runs and builds the "
        f"session from it: {per_golden:.1f} KiB per golden at the peak.",
        f"- at {large}: running the goldens peaks {g_b - c_b:.0f} MiB above collecting them "
        "with `--collect-only`.",
        "- per golden, measured in process with `tracemalloc` (not RSS) over "
        f"{min(small, 200)} of them: " + "; ".join(where) + ".",
        f"- script runtime {time.perf_counter() - started:.0f}s.",
    ]
    print("\n".join([*rows, "", *verdict]))
    if args.no_write:
        return 0
    m = machine(("pytest-opswald", "pytest", "pydantic", "pydantic-core", "PyYAML"))
    section = [
        *header(SECTION, command, m),
        f"Workload: {small} and {large} goldens of one agent making 5 model calls, each "
        f"followed by a tool call returning a nested record list (10 steps, "
        f"{golden_bytes / 1024:.1f} KiB of YAML per golden, each its own input), recorded in "
        "process (`execute(..., RunSettings(policy='live'))`), written with `opswald.dump` "
        "(the first asserted to load back equal) into `goldens/` of a project whose "
        "conftest wires the agent with `pytest_opswald_adapter`, replayed serially with "
        "`pytest --opswald-goldens`; the "
        f"same projects with `--collect-only`; reference: one trivial test parametrized {small} "
        f"and {large} ways. Each run a subprocess (`python -m pytest {' '.join(PYTEST_ARGS)}`, "
        "bytecode caching on as pytest runs by default, count asserted) started by a fresh "
        "Python wrapper that prints "
        "`resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` (the peak of that one pytest "
        f"process). {reps} runs per leg and size, interleaved; max RSS, median wall time. "
        + (
            "Every installed pytest plugin autoloaded (`--all-plugins`)."
            if args.all_plugins
            else "Only opswald loaded (`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`, "
            f"`{' '.join(ONLY_PLUGINS)}`), not the other pytest plugins installed here."
        ),
        "",
        *rows,
        "",
        *verdict,
    ]
    write_results(SECTION, "\n".join(section))
    print(f"\nwrote {BENCH / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
