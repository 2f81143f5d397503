"""Start-up: what the plugin costs a pytest run that uses nothing of it (a project that only
has pytest-opswald installed: pytest loads it through its entry point in every run).

Workload: a project of 3 files of 20 trivial tests each and one golden, no opswald setting;
`python -m pytest --collect-only -q -p no:cacheprovider` (and with `--opswald-goldens`,
which collects the golden too) with only the plugin loaded
(`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p opswald.plugin`) against the same without it
(`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`), so that the other plugins installed here do not
count; each with bytecode caching on (as pytest runs by default: the warm-up writes the
caches, assertion-rewritten modules included) and off (`PYTHONDONTWRITEBYTECODE=1`, as in
many containers: pytest then rewrites the plugin's modules at every start). One untimed
warm-up per leg, then the legs interleaved, `--reps` (default 21) times; medians. Also the
modules of opswald, and whether pydantic or PyYAML, are loaded by the time tests run.

Run: python bench/bench_startup.py [--reps N] [--no-write]
Writes bench/RESULTS.md (section "Start-up").
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import header, machine, pytest_env, write_results  # noqa: E402

SECTION = "Start-up"
TESTS = "\n".join(f"def test_{i}():\n    assert {i} == {i}\n" for i in range(20))
PROBE = """
import sys


def test_probe():
    ours = sorted(m for m in sys.modules if m.startswith("opswald"))
    heavy = [m for m in ("pydantic", "yaml", "deepdiff") if m in sys.modules]
    print("PROBE", len(ours), ",".join(ours), ",".join(heavy) or "-")
"""


# one golden, collected by the legs that ask for goldens (`--opswald-goldens`)
GOLDEN = """\
name: one
agent: agent:run
input: {order: 7}
steps:
  - step: 1
    type: tool_call
    tool: lookup
    input: {order_id: 7}
    output: {amount: 12.5}
output: {refund: 12.5}
"""


def make_project(root: Path) -> Path:
    project = root / "plain"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    for n in range(3):
        (project / f"test_plain_{n}.py").write_text(TESTS)
    (project / "goldens").mkdir()
    (project / "goldens" / "one.golden.yaml").write_text(GOLDEN)
    return project


def leg_cmd(plugin: bool, goldens: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    if goldens:
        cmd.append("--opswald-goldens")
    return [*cmd, "-p", "opswald.plugin"] if plugin else cmd


def leg_env(pyc: bool) -> dict[str, str]:
    env = pytest_env()
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if not pyc:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def pytest_run(cmd: list[str], project: Path, pyc: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=project, env=leg_env(pyc), capture_output=True, text=True, timeout=120
    )


def run_once(project: Path, plugin: bool, pyc: bool, goldens: bool = False) -> float:
    t0 = time.perf_counter()
    proc = pytest_run(leg_cmd(plugin, goldens), project, pyc)
    took = time.perf_counter() - t0
    expected = "61 tests collected" if goldens else "60 tests collected"
    if proc.returncode != 0 or expected not in proc.stdout:
        raise SystemExit(f"leg failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return took


def probe(root: Path) -> str:
    """What the plugin has loaded when a test of the project runs."""
    project = root / "probe"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_probe.py").write_text(PROBE)
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"]
    proc = pytest_run([*cmd, "-p", "opswald.plugin"], project, True)
    line = next((x for x in proc.stdout.splitlines() if "PROBE " in x), "")
    if not line:
        raise SystemExit(f"probe failed:\n{proc.stdout}\n{proc.stderr}")
    count, names, heavy = line.split("PROBE ", 1)[1].split(" ")
    return (
        f"modules of opswald loaded when a test runs: {count} ({names.replace(',', ', ')}); "
        f"pydantic, PyYAML, deepdiff loaded: {heavy if heavy != '-' else 'none'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.reps <= 200:
        parser.error("need 1 <= --reps <= 200")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_startup.py", *map(shlex.quote, given)])
    legs = {
        "without the plugin, bytecode cache on": (False, True, False),
        "with the plugin, bytecode cache on": (True, True, False),
        "with the plugin, --opswald-goldens, bytecode cache on": (True, True, True),
        "without the plugin, no bytecode cache": (False, False, False),
        "with the plugin, no bytecode cache": (True, False, False),
        "with the plugin, --opswald-goldens, no bytecode cache": (True, False, True),
    }
    samples: dict[str, list[float]] = {name: [] for name in legs}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opswald-startup-") as tmp:
        root = Path(tmp)
        project = make_project(root)
        loaded = probe(root)
        for leg in legs.values():  # warm-up: page cache, bytecode caches
            run_once(project, *leg)
        names = list(legs)
        for rep in range(args.reps):
            for name in names if rep % 2 == 0 else names[::-1]:
                samples[name].append(run_once(project, *legs[name]))
    med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
    rows = [
        "| leg | median ms | best ms | worst ms |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {med[name]:.0f} | {min(v) * 1e3:.0f} | {max(v) * 1e3:.0f} |"
            for name, v in samples.items()
        ),
    ]
    on = med["with the plugin, bytecode cache on"] - med["without the plugin, bytecode cache on"]
    off = med["with the plugin, no bytecode cache"] - med["without the plugin, no bytecode cache"]
    goldens_on = (
        med["with the plugin, --opswald-goldens, bytecode cache on"]
        - med["without the plugin, bytecode cache on"]
    )
    goldens_off = (
        med["with the plugin, --opswald-goldens, no bytecode cache"]
        - med["without the plugin, no bytecode cache"]
    )
    verdict = [
        f"- the plugin installed and unused adds {on:.0f} ms to a pytest start with bytecode "
        f"caching on, {off:.0f} ms without it (medians of {args.reps} interleaved runs).",
        f"- collecting the project's one golden as well (`--opswald-goldens`: the settings, "
        f"the golden's reading, parsing and validation, with pydantic and PyYAML) adds "
        f"{goldens_on:.0f} ms with bytecode caching on, {goldens_off:.0f} ms without it.",
        f"- {loaded}.",
        f"- script runtime {time.perf_counter() - started:.0f}s.",
    ]
    print("\n".join([*rows, "", *verdict]))
    if args.no_write:
        return 0
    m = machine(("pytest-opswald", "pytest", "pluggy"))
    section = [
        *header(SECTION, command, m),
        "Workload: a project of 3 files of 20 trivial tests and one golden, no opswald "
        "setting, collected with `python -m pytest --collect-only -q -p no:cacheprovider`, "
        "and with `--opswald-goldens` added (the golden collected too: 61 tests); "
        "only the plugin loaded (`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 -p opswald.plugin`) against "
        "no plugin at all (`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`), with bytecode caching on (the "
        "warm-up writes the caches) and off (`PYTHONDONTWRITEBYTECODE=1`: pytest rewrites the "
        "plugin's modules at every start). One untimed warm-up per leg, then "
        f"{args.reps} interleaved repetitions; medians. Before the plugin loaded its "
        "settings and engine lazily (commit 0366794, run with this script and "
        "`PYTHONPATH` at that commit's `src`, 2026-11-29): +181 ms with bytecode caching, "
        "+184 ms without, 55 modules of opswald loaded, pydantic and PyYAML with them. "
        "Before collecting goldens left the replay engine to the first golden that runs "
        "(commit e0c29ce, the same way, 11 repetitions): `--opswald-goldens` added 226 ms "
        "with bytecode caching, 227 ms without.",
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
