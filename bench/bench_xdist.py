"""xdist: a CPU-bound replay suite, `pytest --opswald-goldens` serially versus `-n 2`, next to
the same CPU work as plain parametrized pytest tests (serial versus `-n 2`).

DESIGN §6: `-n 2` speeds a CPU-bound replay suite up >= 1.6x.

Workload: N goldens (default 200) of one agent that makes TURNS model calls, each followed
by a fixed amount of pure-Python CPU work (an integer hash loop of WORK iterations) and a
tool call carrying the result; so every golden costs the same CPU. The goldens are
recorded in this process with `execute(..., RunSettings(policy="live"))` and written with
`opswald.dump` into `goldens/` of a pytest project whose conftest wires the agent through
`pytest_opswald_adapter`. The reference project holds one test parametrized N ways that
does the same hash loops (no opswald). Every run is a subprocess, `-q -p no:cacheprovider`,
bytecode caching on, the pass count asserted; after one untimed `--collect-only` run of
each project (page cache, imports) the four legs run interleaved, `--reps` (default 2)
times each; medians of wall time, and the CPU time (user + sys) of all processes. Only
xdist and opswald are loaded (`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p xdist.plugin -p
opswald.plugin`): other pytest plugins installed in a development environment (here
langsmith's and hypothesis's) cost ~1.7 s at every process start, xdist workers included,
which would measure them rather than opswald; `--all-plugins` keeps them.

Run: python bench/bench_xdist.py [--quick] [--goldens N] [--reps N] [--all-plugins] [--no-write]
Writes bench/RESULTS.md (section "xdist").
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import header, machine, pytest_env, write_results  # noqa: E402

import opswald  # noqa: E402
from opswald.engine.run import RunSettings, execute  # noqa: E402
from opswald.session import Session  # noqa: E402

SECTION = "xdist"
PASSED = re.compile(r"(\d+) passed")
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider"]
# Other pytest plugins installed here (langsmith's, hypothesis's, ...) cost ~1.7 s at every
# process start, xdist workers included; by default only these are loaded.
ONLY_PLUGINS = ["-p", "xdist.plugin", "-p", "opswald.plugin"]

AGENT = '''
"""A CPU-bound agent: every turn asks the model, crunches numbers, reports to a tool."""
import json

import opswald

TURNS = {turns}
WORK = {work}


def crunch(seed):
    """Fixed CPU work: WORK rounds of an integer hash, no allocation."""
    h = seed
    for k in range(WORK):
        h = (h * 1103515245 + 12345 + k) & 0x7FFFFFFF
    return h


@opswald.llm
def chat(*, model, messages):
    n = len(messages)
    return {{
        "content": f"turn after {{n}} messages: crunch the next batch",
        "tool_calls": None,
        "finish_reason": "stop",
        "usage": {{"input_tokens": 40 * n, "output_tokens": 12}},
    }}


@opswald.tool
def report(batch, digest):
    return {{"batch": batch, "digest": digest, "stored": True}}


def run(input):
    messages = [{{"role": "user", "content": input["question"]}}]
    digest = input["seed"]
    for turn in range(TURNS):
        reply = chat(model="bench-model", messages=messages[-5:])
        digest = crunch(digest + turn)
        result = report(batch=turn, digest=digest)
        messages.append({{"role": "assistant", "content": reply["content"]}})
        messages.append({{"role": "tool", "content": json.dumps(result)}})
    return {{"digest": digest, "turns": TURNS}}
'''

CONFTEST = """
import agent


def pytest_opswald_adapter(golden, config):
    return agent.run
"""

PLAIN_TEST = """
import pytest

from agent import TURNS, crunch


@pytest.mark.parametrize("i", range({n}))
def test_cpu(i):
    digest = 7
    for turn in range(TURNS):
        digest = crunch(digest + turn)
    assert digest >= 0
"""


def load_agent(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("bench_xdist_agent", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_projects(root: Path, n: int, turns: int, work: int) -> tuple[Path, Path, float]:
    """The goldens project and the plain one; also ms of one crunch here."""
    agent_text = textwrap.dedent(AGENT.format(turns=turns, work=work))
    goldens = root / "goldens-project"
    (goldens / "goldens").mkdir(parents=True)
    (goldens / "agent.py").write_text(agent_text)
    (goldens / "conftest.py").write_text(CONFTEST)
    (goldens / "pytest.ini").write_text("[pytest]\n")
    plain = root / "plain-project"
    plain.mkdir()
    (plain / "agent.py").write_text(agent_text)
    (plain / "test_cpu.py").write_text(PLAIN_TEST.format(n=n))
    (plain / "pytest.ini").write_text("[pytest]\n")

    agent = load_agent(goldens / "agent.py")
    t0 = time.perf_counter()
    agent.crunch(7)
    crunch_ms = (time.perf_counter() - t0) * 1e3
    # Every golden starts from seed 7, so the hash chain is the same: compute it once
    # while recording (the replays in pytest do the full work every time).
    real = agent.crunch
    agent.crunch = functools.cache(real)
    try:
        for i in range(n):
            task = {"question": f"Batch job {i}: crunch and report.", "seed": 7}
            run = execute(
                Session(name=f"cpu_{i:04d}", input=task),
                agent.run,
                settings=RunSettings(policy="live", block_side_effects=False),
            )
            assert run.actual.error is None, run.actual.error
            assert len(run.actual.step_list) == 2 * turns
            opswald.dump(run.actual, goldens / "goldens" / f"cpu_{i:04d}.golden.yaml")
    finally:
        agent.crunch = real
    return goldens, plain, crunch_ms


def run_once(
    proj: Path, goldens: bool, workers: int, expect: int | None, all_plugins: bool
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one pytest subprocess; its pass count is checked.

    CPU = user + sys of the children this process reaped meanwhile (pytest, and the xdist
    workers pytest reaped). `expect=None` runs `--collect-only` (the warm-up).
    """
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS]
    if goldens:
        cmd.append("--opswald-goldens")
    if workers:
        cmd += ["-n", str(workers)]
    if expect is None:
        cmd.append("--collect-only")
    env = pytest_env("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if not all_plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        cmd[cmd.index("pytest") + 1 : cmd.index("pytest") + 1] = ONLY_PLUGINS
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=proj, capture_output=True, text=True, env=env, timeout=900)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    found = PASSED.search(proc.stdout)
    if proc.returncode != 0 or (
        expect is not None and (not found or int(found.group(1)) != expect)
    ):
        raise SystemExit(
            f"{' '.join(cmd[2:])} in {proj.name}: exit {proc.returncode}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 light goldens, one rep")
    parser.add_argument("--goldens", type=int, default=None, help="default 200")
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--work", type=int, default=None, help="hash rounds per turn")
    parser.add_argument("--reps", type=int, default=None, help="default 2")
    parser.add_argument(
        "--all-plugins", action="store_true", help="load every installed pytest plugin"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    n = args.goldens or (20 if args.quick else 200)
    work = args.work or (20_000 if args.quick else 150_000)
    reps = args.reps or (1 if args.quick else 2)
    if not (1 <= n <= 5000 and 1 <= args.turns <= 100 and 1 <= reps <= 10 and work >= 1):
        parser.error("goldens 1..5000, turns 1..100, reps 1..10")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_xdist.py", *map(shlex.quote, given)])
    started = time.perf_counter()

    legs = {
        "goldens, serial": (True, 0),
        "goldens, -n 2": (True, 2),
        "plain, serial": (False, 0),
        "plain, -n 2": (False, 2),
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in legs}
    with tempfile.TemporaryDirectory(prefix="opswald-xdist-") as tmp:
        goldens, plain, crunch_ms = make_projects(Path(tmp), n, args.turns, work)
        projects = {True: goldens, False: plain}
        print(f"recorded {n} goldens in {time.perf_counter() - started:.1f}s", flush=True)
        for is_goldens, proj in projects.items():  # warm-up (page cache, imports)
            run_once(proj, is_goldens, 0, None, args.all_plugins)
        names = list(legs)
        for rep in range(reps):
            for name in names if rep % 2 == 0 else names[::-1]:
                is_goldens, workers = legs[name]
                samples[name].append(
                    run_once(projects[is_goldens], is_goldens, workers, n, args.all_plugins)
                )
            line = ", ".join(f"{k} {samples[k][-1][0]:.2f}s" for k in names)
            print(f"rep {rep + 1}: {line}  [{time.perf_counter() - started:.0f}s]", flush=True)

    med = {k: statistics.median(w for w, _ in v) for k, v in samples.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in samples.items()}
    speed_goldens = med["goldens, serial"] / med["goldens, -n 2"]
    speed_plain = med["plain, serial"] / med["plain, -n 2"]
    rows = [
        "| leg | median s | best s | worst s | speed-up | CPU s (all processes) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        walls = [w for w, _ in samples[name]]
        base = med[name.split(",")[0] + ", serial"]
        rows.append(
            f"| {name} | {med[name]:.2f} | {min(walls):.2f} | {max(walls):.2f} | "
            f"{base / med[name]:.2f} | {cpu[name]:.2f} |"
        )
    cpu_s = n * args.turns * crunch_ms / 1e3
    verdict = [
        f"- **goldens: serial / -n 2 = {speed_goldens:.2f}** (bar ≥ 1.6): "
        f"{'holds' if speed_goldens >= 1.6 else 'MISSED'}.",
        f"- plain pytest, same CPU work: serial / -n 2 = {speed_plain:.2f} (what xdist gives "
        "this workload on this machine without opswald).",
        f"- opswald's part: goldens serial - plain serial = "
        f"{med['goldens, serial'] - med['plain, serial']:.2f}s "
        f"({(med['goldens, serial'] - med['plain, serial']) / n * 1e3:.1f} ms per golden: "
        "loading, replay, judging, reporting); under -n 2 "
        f"{med['goldens, -n 2'] - med['plain, -n 2']:.2f}s.",
        f"- CPU cost of -n 2 over serial: goldens "
        f"{cpu['goldens, -n 2'] / cpu['goldens, serial']:.2f}x, plain "
        f"{cpu['plain, -n 2'] / cpu['plain, serial']:.2f}x (each worker starts Python and "
        "pytest and collects the whole suite); with two idle cores the speed-up is at most "
        f"{2 * cpu['goldens, serial'] / cpu['goldens, -n 2']:.2f} (goldens) and "
        f"{2 * cpu['plain, serial'] / cpu['plain, -n 2']:.2f} (plain).",
        f"- the hash loops alone: {cpu_s:.1f}s of CPU ({crunch_ms:.1f} ms per turn measured "
        "once in this process).",
        f"- script runtime {time.perf_counter() - started:.0f}s.",
    ]
    print("\n".join([*rows, "", *verdict]))
    if args.no_write:
        return 0
    m = machine(("pytest-opswald", "pytest", "pytest-xdist", "pydantic", "PyYAML"))
    section = [
        *header(SECTION, command, m),
        f"Workload: {n} goldens of one agent making {args.turns} model calls, each followed "
        f"by a pure-Python integer hash loop of {work:,} rounds and a tool call carrying the "
        f"result ({2 * args.turns} steps per golden, the same CPU in every golden). Recorded in "
        'process (`execute(..., RunSettings(policy="live"))`), written with `opswald.dump` '
        "into `goldens/` of a project whose conftest wires the agent with "
        "`pytest_opswald_adapter`; run with `pytest --opswald-goldens` serially and with "
        f"`-n 2`. Reference: a project with one test parametrized {n} ways doing the same hash "
        "loops (no opswald), serially and with `-n 2`. Each run a subprocess "
        f"(`python -m pytest {' '.join(PYTEST_ARGS)}`, bytecode caching on as pytest runs by "
        "default, pass count "
        f"asserted); one untimed `--collect-only` run per project, then {reps} interleaved "
        "repetitions; medians. "
        + (
            "Every installed pytest plugin autoloaded (`--all-plugins`). "
            if args.all_plugins
            else "Only xdist and opswald loaded (`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`, "
            f"`{' '.join(ONLY_PLUGINS)}`): the other pytest plugins installed here "
            "(langsmith's, hypothesis's) cost ~1.7 s at every process start, xdist workers "
            "included. "
        )
        + "CPU s: user + sys of pytest and the xdist workers it reaped "
        "(`getrusage(RUSAGE_CHILDREN)` around each run).",
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
