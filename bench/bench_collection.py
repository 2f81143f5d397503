"""Collection: `pytest --opswald-goldens --collect-only` over N goldens of 10 steps, versus
pytest collecting N parametrized trivial tests in one file, and N one-test Python files.

DESIGN §6: collecting 5,000 goldens <= 2x pytest collecting 5,000 parametrized trivial tests
in one file; cost grows linearly (goldens 10k/5k <= 2.2).

A full run of each size replays every golden (an agent package and ini `opswald_adapter`
are added to the goldens project after its collection legs) against the parametrized
tests run. Cold legs run with pytest's cache off (every golden read, parsed and validated); the warm
legs ("goldens warm", "param warm") run the same projects with the cache on, after an
untimed run filled it (opswald's collection index then skips unchanged goldens).

Each leg is its own conftest-free pytest project in a temp dir (a bare `pytest.ini` pins
the rootdir), run as a subprocess (bytecode caching on, as pytest runs by default; the
untimed warm-up writes the caches), `--collect-only -q -p no:cacheprovider`, median of
--reps (default 3) runs, legs interleaved per size. Peak RSS comes from `/usr/bin/time -v`
when present, else from `resource.getrusage(RUSAGE_CHILDREN)` (a high-water mark over all
children so far, so only an upper bound). The goldens are written with `opswald.dump`
(10k dumped once; the 1k/5k projects hard-link the first files of it).

Run: python bench/bench_collection.py [--sizes 1000,5000,10000] [--files-max 5000]
     [--reps 3] [--no-profile] [--no-write] [--clean-venv]

--clean-venv also runs the cold legs (up to 5k) in a new venv holding opswald and its core
dependencies alone (installed from the package index), next to pytest's floor: each golden
file one `pytest.File` node with one trivial item, reading nothing.
Writes bench/RESULTS.md (section "Collection"), bench/profiles/collection.txt (a cProfile
of one goldens collection at 5k) and, when `py-spy` is installed (bench/requirements.txt),
bench/profiles/collection-pyspy.txt (the same collection sampled from outside the process).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import header, machine, profile_report, pytest_env, write_results  # noqa: E402

import opswald  # noqa: E402
from opswald.session import Session  # noqa: E402

SECTION = "Collection"
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
PYTEST_ARGS = ["--collect-only", "-q", "-p", "no:cacheprovider"]
GOLDEN_BYTES = [0]
COLLECTED = re.compile(r"(\d+) tests? collected")


def golden_session(i: int) -> Session:
    """A 10-step golden: 5 model calls alternating with 5 tool calls."""
    steps: list[dict[str, Any]] = []
    for k in range(5):
        steps.append(
            {
                "step": 2 * k + 1,
                "type": "llm_call",
                "provider": "openai",
                "model": "gpt-4o-mini",
                "input": {
                    "messages": [
                        {"role": "system", "content": "You are a helpful agent."},
                        {"role": "user", "content": f"Question {i}: what is the weather?"},
                    ]
                },
                "output": {
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"call_{i}_{k}",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                        }
                    ],
                    "finish_reason": "tool_calls",
                },
                "usage": {"input_tokens": 120 + k, "output_tokens": 18},
            }
        )
        steps.append(
            {
                "step": 2 * k + 2,
                "type": "tool_call",
                "tool": "get_weather",
                "call_id": f"call_{i}_{k}",
                "input": {"city": "Oslo"},
                "output": {"city": "Oslo", "temp_c": 4 + k, "sky": "cloudy"},
            }
        )
    return Session.model_validate(
        {
            "name": f"golden_{i:05d}",
            "agent": "bench.agent:run",
            "input": {"question": f"Question {i}: what is the weather?"},
            "steps": steps,
            "output": {"answer": "4 degrees and cloudy in Oslo"},
        }
    )


def make_projects(root: Path, sizes: list[int], files_max: int) -> dict[tuple[str, int], Path]:
    """One project per (leg, size); returns their paths."""
    projects: dict[tuple[str, int], Path] = {}
    biggest = max(sizes)
    source = root / f"goldens-{biggest}" / "goldens"
    source.mkdir(parents=True)
    json_source = root / f"goldens-json-{biggest}" / "goldens"
    json_source.mkdir(parents=True)
    t0 = time.perf_counter()
    names = []
    for i in range(biggest):
        name = f"g{i:05d}.golden.yaml"
        session = golden_session(i)
        opswald.dump(session, source / name)
        opswald.dump(session, json_source / name.replace(".yaml", ".json"))  # same session
        names.append(name)
    GOLDEN_BYTES[0] = (source / names[0]).stat().st_size
    GOLDEN_BYTES.append((json_source / names[0].replace(".yaml", ".json")).stat().st_size)
    print(
        f"dumped {biggest} goldens in {time.perf_counter() - t0:.1f}s "
        f"({(source / names[0]).stat().st_size} B each)",
        flush=True,
    )
    for n in sizes:
        proj = root / f"goldens-{n}"
        if n != biggest:
            (proj / "goldens").mkdir(parents=True)
            for name in names[:n]:
                os.link(source / name, proj / "goldens" / name)
        (proj / "pytest.ini").write_text("[pytest]\n")
        projects[("goldens", n)] = proj

        proj = root / f"goldens-json-{n}"
        if n != biggest:
            (proj / "goldens").mkdir(parents=True)
            for name in names[:n]:
                json_name = name.replace(".yaml", ".json")
                os.link(json_source / json_name, proj / "goldens" / json_name)
        (proj / "pytest.ini").write_text("[pytest]\n")
        projects[("goldens json", n)] = proj

        # its own copies (not links): touching them leaves the other legs' times alone
        proj = root / f"goldens-touched-{n}"
        (proj / "goldens").mkdir(parents=True)
        for name in names[:n]:
            shutil.copyfile(source / name, proj / "goldens" / name)
        (proj / "pytest.ini").write_text("[pytest]\n")
        projects[("goldens touched", n)] = proj

        # pytest's own cost of one file node and one item per golden, reading nothing: the
        # floor of any plugin that collects each golden file as a test
        proj = root / f"floor-{n}"
        (proj / "goldens").mkdir(parents=True)
        for name in names[:n]:
            os.link(source / name, proj / "goldens" / name)
        (proj / "pytest.ini").write_text("[pytest]\n")
        (proj / "conftest.py").write_text(FLOOR_CONFTEST)
        projects[("floor", n)] = proj

        proj = root / f"param-{n}"
        proj.mkdir()
        (proj / "pytest.ini").write_text("[pytest]\n")
        (proj / "test_param.py").write_text(
            "import pytest\n\n\n"
            f"@pytest.mark.parametrize('i', range({n}))\n"
            "def test_trivial(i):\n    pass\n"
        )
        projects[("param", n)] = proj

        if n <= files_max:
            proj = root / f"files-{n}"
            proj.mkdir()
            (proj / "pytest.ini").write_text("[pytest]\n")
            for i in range(n):
                (proj / f"test_f{i:05d}.py").write_text("def test_trivial():\n    pass\n")
            projects[("files", n)] = proj
    return projects


# the floor leg's plugin: each `*.golden.yaml` one pytest.File node holding one trivial item
FLOOR_CONFTEST = """\
import pytest


class FloorItem(pytest.Item):
    def runtest(self):
        pass


class FloorFile(pytest.File):
    def collect(self):
        yield FloorItem.from_parent(self, name=self.path.name.split(".golden.")[0])


def pytest_collect_file(file_path, parent):
    if file_path.name.endswith(".golden.yaml"):
        return FloorFile.from_parent(parent, path=file_path)
"""

WARM_ARGS = ["--collect-only", "-q"]  # pytest's cache on: the second run is warm
RUN_ARGS = ["-q", "-p", "no:cacheprovider"]  # the full run: every golden replayed
PASSED = re.compile(r"(\d+) passed")

# The agent of the goldens (ini `opswald_adapter = bench.agent:run`): it makes the recorded
# calls, so a full run replays every golden and passes. Its backends never run in replay.
AGENT = """\
import opswald


@opswald.llm(provider="openai")
def chat(*, model, messages):
    raise RuntimeError("replay only: the golden answers")


@opswald.tool
def get_weather(city):
    raise RuntimeError("replay only: the golden answers")


def run(input):
    messages = [
        {"role": "system", "content": "You are a helpful agent."},
        {"role": "user", "content": input["question"]},
    ]
    for _ in range(5):
        chat(model="gpt-4o-mini", messages=messages)
        get_weather(city="Oslo")
    return {"answer": "4 degrees and cloudy in Oslo"}
"""


def add_agent(proj: Path) -> None:
    """The agent package of the goldens (after the collection legs, which stay bare)."""
    (proj / "bench").mkdir(exist_ok=True)
    (proj / "bench" / "__init__.py").write_text("")
    (proj / "bench" / "agent.py").write_text(AGENT)
    (proj / "pytest.ini").write_text("[pytest]\nopswald_adapter = bench.agent:run\n")


def make_clean_venv(root: Path) -> tuple[str, str]:
    """A venv holding this checkout's opswald with its core dependencies alone, as a
    project that installs only it has (no test-suite plugins: hypothesis, anyio, xdist...);
    its python and its `pip list` as one line."""
    venv = root / "clean-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(BENCH.parent)],
        check=True,
        capture_output=True,
    )
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return python, ", ".join(listed)


def leg_args(leg: str) -> list[str]:
    goldens = ["--opswald-goldens"] if leg.startswith("goldens") else []
    if leg.endswith(" run"):
        return goldens + RUN_ARGS
    warm = leg.endswith(("warm", "touched"))
    return goldens + (WARM_ARGS if warm else PYTEST_ARGS)


def touch_goldens(proj: Path) -> None:
    """A fresh checkout's new modification times, the bytes unchanged (not timed)."""
    now = time.time_ns()
    for path in (proj / "goldens").iterdir():
        os.utime(path, ns=(now, now))


def run_once(
    proj: Path, leg: str, expect: int, python: str | None = None
) -> tuple[float, float | None]:
    """(wall seconds, peak RSS MiB) of one `pytest --collect-only` subprocess; `python`:
    another interpreter (a venv with opswald installed), running this checkout's code."""
    if leg == "goldens touched":
        touch_goldens(proj)
    cmd = [python or sys.executable, "-m", "pytest", *leg_args(leg)]
    env = pytest_env()
    if python:
        env["PYTHONPATH"] = str(BENCH.parent / "src")
    if TIME:
        cmd = [TIME, "-v", *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=proj, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    found = (PASSED if leg.endswith(" run") else COLLECTED).search(proc.stdout)
    if proc.returncode != 0 or not found or int(found.group(1)) != expect:
        raise SystemExit(
            f"{leg} {expect}: exit {proc.returncode}, counted "
            f"{found.group(1) if found else '?'}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    rss = None
    if TIME:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        rss = int(m.group(1)) / 1024 if m else None
    else:
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, rss


def parse_costs(path: Path, number: int = 200, repeat: int = 7) -> dict[str, float]:
    """Best-of µs, in this process, for the parts of a cold collection that a warm one
    skips: the read, the parse (`files.load_data`, read included: the line reader for
    goldens opswald wrote), and schema validation; for comparison, the safe parser alone
    on the same text (what reads any other golden) and libyaml's event stream alone as
    PyYAML hands it to Python (the floor of any parse built on PyYAML)."""
    import timeit
    from collections import deque

    import yaml

    from opswald import fastyaml, files

    text = path.read_text(encoding="utf-8")
    data = files.load_data(path)
    if fastyaml.read(text, files.DEFAULT_MAX_DEPTH, files._plain_value, files._RESOLVED_FIRST) != (
        files._parsed_yaml_data(text, files.DEFAULT_MAX_DEPTH)
    ):
        raise SystemExit(f"the line reader does not read {path} as the safe parser does")

    def events() -> None:
        deque(yaml.parse(text, Loader=yaml.CSafeLoader), maxlen=0)

    parts = {
        "read": lambda: path.read_bytes().decode("utf-8"),
        "parse": lambda: files.load_data(path),
        "safe": lambda: files._parsed_yaml_data(text, files.DEFAULT_MAX_DEPTH),
        "events": events,
        "validate": lambda: Session.model_validate(data),
    }
    try:  # info only (bench/requirements.txt): a Rust YAML 1.2 parser, see Loading
        import yaml_rs
    except ImportError:
        pass
    else:
        parts["yaml_rs"] = lambda: yaml_rs.loads(
            path.read_bytes().decode("utf-8"), parse_datetime=False, duplicate_key_policy="error"
        )
    return {
        name: min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6
        for name, fn in parts.items()
    }


SPY_BUCKETS = [
    "opswald: parse YAML (the line reader; the safe parser for other text)",
    "opswald: validate (pydantic)",
    "opswald: read the file",
    "opswald: the rest of collecting goldens (hooks, nodes)",
    "pytest: collection (directories, nodes, hooks)",
    "pytest: garbage collection passes at exit (`gc_collect_harder`)",
    "start-up and the rest: imports, plugins, configuration, summary",
]


def spy_bucket(stack: str) -> str:
    """Which of `SPY_BUCKETS` a sampled stack (outermost frame first) belongs to."""
    if "pytest_collection (" in stack:
        for i, frame in enumerate(("_yaml_data (", "_validate (", "_read_text (")):
            if frame + "opswald/files.py" in stack:
                return SPY_BUCKETS[i]
        return SPY_BUCKETS[3] if "(opswald/" in stack else SPY_BUCKETS[4]
    return SPY_BUCKETS[5] if "gc_collect_harder (" in stack else SPY_BUCKETS[6]


def spy_goldens(proj: Path, out_dir: Path) -> str | None:
    """py-spy (a sampling profiler, outside the process) of one cold goldens collection:
    shares of the samples by bucket, and the busiest frames. None without py-spy."""
    exe = shutil.which("py-spy")
    if exe is None:
        return None
    raw = out_dir / "spy.txt"
    cmd = [exe, "record", "-r", "500", "-f", "raw", "-o", str(raw), "--"]
    cmd += [sys.executable, "-m", "pytest", *leg_args("goldens")]
    proc = subprocess.run(cmd, cwd=proj, env=pytest_env(), capture_output=True, text=True)
    if proc.returncode != 0 or not raw.exists():
        return f"py-spy did not run (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    buckets: dict[str, int] = dict.fromkeys(SPY_BUCKETS, 0)
    leaves: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        buckets[spy_bucket(stack)] += n
        leaf = re.sub(r":\d+\)$", ")", stack.rsplit(";", 1)[-1]) or "(no Python frame)"
        leaves[leaf] = leaves.get(leaf, 0) + n
    if not total:
        return None
    width = max(len(name) for name in buckets)
    lines = [
        f"py-spy record -r 500 of `pytest {' '.join(leg_args('goldens'))}` over {proj.name} "
        f"(cold, {total} samples)",
        "",
        *(f"{name:<{width}}  {n / total:6.1%}" for name, n in buckets.items()),
        "",
        "busiest frames (own time, C code included in the Python frame that called it):",
        *(
            f"{n / total:6.1%}  {leaf}"
            for leaf, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:15]
        ),
    ]
    return "\n".join(lines) + "\n"


def profile_goldens(proj: Path, out_dir: Path) -> str:
    """cProfile one goldens collection: top 15 cumulative, src/opswald top 30."""
    prof = out_dir / "collect.prof"
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "pytest", *leg_args("goldens")],
        cwd=proj,
        env=pytest_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    what = f"cProfile of `pytest {' '.join(leg_args('goldens'))}` over {proj.name}"
    return profile_report(str(prof), what, ours=30, own=20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    parser.add_argument(
        "--files-max", type=int, default=5000, help="largest size for the one-test-files leg"
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--clean-venv",
        action="store_true",
        help="also run the cold legs up to 5k in a new venv holding opswald and its core "
        "dependencies alone (pip install from the package index: no other pytest plugin)",
    )
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if not sizes or min(sizes) < 1 or max(sizes) > 20000 or not 1 <= args.reps <= 10:
        parser.error("sizes must be 1..20000, reps 1..10")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_collection.py", *map(shlex.quote, given)])
    started = time.perf_counter()

    results: dict[tuple[str, int], list[tuple[float, float | None]]] = {}
    prof_text = spy_text = None
    costs: dict[str, float] = {}
    clean_packages = ""
    with tempfile.TemporaryDirectory(prefix="opswald-collect-") as tmp:
        projects = make_projects(Path(tmp), sizes, args.files_max)
        for n in sizes:  # the warm legs run in the same projects, with pytest's cache on
            projects[("goldens warm", n)] = projects[("goldens", n)]
            projects[("param warm", n)] = projects[("param", n)]
        legs = ["goldens", "goldens json", "goldens warm", "goldens touched", "param"]
        legs += ["param warm", "files", "floor"]
        for n in sizes:
            here = [leg for leg in legs if (leg, n) in projects]
            for leg in here:  # warm the page cache, not timed
                run_once(projects[(leg, n)], leg, n)
            for rep in range(args.reps):
                order = here if rep % 2 == 0 else here[::-1]
                for leg in order:
                    results.setdefault((leg, n), []).append(run_once(projects[(leg, n)], leg, n))
            # the full runs: every golden replayed, against the parametrized tests run
            add_agent(projects[("goldens", n)])
            projects[("goldens run", n)] = projects[("goldens", n)]
            projects[("param run", n)] = projects[("param", n)]
            runs = ["goldens run", "param run"]
            for leg in runs:  # not timed
                run_once(projects[(leg, n)], leg, n)
            for rep in range(args.reps):
                for leg in runs if rep % 2 == 0 else runs[::-1]:
                    results.setdefault((leg, n), []).append(run_once(projects[(leg, n)], leg, n))
            line = ", ".join(
                f"{leg} {statistics.median(w for w, _ in results[(leg, n)]):.2f}s"
                for leg in [*here, *runs]
            )
            print(f"{n}: {line}  [{time.perf_counter() - started:.0f}s so far]", flush=True)
        if args.clean_venv:
            clean_python, clean_packages = make_clean_venv(Path(tmp))
            clean = [(leg, n) for n in sizes if n <= 5000 for leg in ("goldens", "param", "floor")]
            for leg, n in clean:  # not timed
                run_once(projects[(leg, n)], leg, n, clean_python)
            for rep in range(args.reps):
                for leg, n in clean if rep % 2 == 0 else clean[::-1]:
                    got = run_once(projects[(leg, n)], leg, n, clean_python)
                    results.setdefault((f"clean {leg}", n), []).append(got)
        if ("goldens", 5000) in projects:
            costs = parse_costs(next((projects[("goldens", 5000)] / "goldens").iterdir()))
        if not args.no_profile and ("goldens", 5000) in projects:
            prof_text = profile_goldens(projects[("goldens", 5000)], Path(tmp))
            spy_text = spy_goldens(projects[("goldens", 5000)], Path(tmp))

    def med(leg: str, n: int) -> float | None:
        r = results.get((leg, n))
        return statistics.median(w for w, _ in r) if r else None

    def rss(leg: str, n: int) -> float | None:
        r = results.get((leg, n))
        vals = [m for _, m in r if m is not None] if r else []
        return max(vals) if vals else None

    rows = [
        "| tests | goldens s | parametrized s | one-test files s | pytest floor s | "
        "goldens / param | files / param | floor / param | JSON goldens s | JSON / param | "
        "goldens MiB | param MiB | files MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    warm_rows = [
        "| tests | goldens warm s | parametrized warm s | goldens warm / param warm | "
        "goldens touched s | touched / param warm | goldens warm MiB | param warm MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def f(v: float | None, fmt: str = "{:.2f}") -> str:
        return "—" if v is None else fmt.format(v)

    def ratio_of(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    for n in sizes:
        g, p, fi = med("goldens", n), med("param", n), med("files", n)
        js, fl = med("goldens json", n), med("floor", n)
        rows.append(
            f"| {n} | {f(g)} | {f(p)} | {f(fi)} | {f(fl)} | {f(g / p if g and p else None)} | "
            f"{f(fi / p if fi and p else None)} | {f(fl / p if fl and p else None)} | "
            f"{f(js)} | {f(js / p if js and p else None)} | "
            f"{f(rss('goldens', n), '{:.0f}')} | "
            f"{f(rss('param', n), '{:.0f}')} | {f(rss('files', n), '{:.0f}')} |"
        )
    for n in sizes:
        g, p, t = med("goldens warm", n), med("param warm", n), med("goldens touched", n)
        warm_rows.append(
            f"| {n} | {f(g)} | {f(p)} | {f(g / p if g and p else None)} | {f(t)} | "
            f"{f(t / p if t and p else None)} | "
            f"{f(rss('goldens warm', n), '{:.0f}')} | {f(rss('param warm', n), '{:.0f}')} |"
        )
    run_rows = [
        "| goldens | full run s | parametrized tests run s | goldens / param | "
        "ms per golden over param | goldens MiB | param MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        g, p = med("goldens run", n), med("param run", n)
        run_rows.append(
            f"| {n} | {f(g)} | {f(p)} | {f(g / p if g and p else None)} | "
            f"{f((g - p) / n * 1e3 if g and p else None)} | "
            f"{f(rss('goldens run', n), '{:.0f}')} | {f(rss('param run', n), '{:.0f}')} |"
        )
    clean_lines: list[str] = []
    clean_sizes = [n for n in sizes if med("clean goldens", n)]
    if clean_sizes:
        clean_lines = [
            "The same cold legs in a new venv holding opswald and its core dependencies alone "
            "(`--clean-venv`: `pip install .` into it; this checkout's code on `PYTHONPATH`), "
            "as a project that installs only opswald runs them — the figures above are of "
            "this repository's test environment, whose other pytest plugins (hypothesis, "
            "anyio, pytest-xdist, pytest-rerunfailures, langsmith's and others) add their "
            "start-up and per-test work to every leg. Installed: "
            f"{clean_packages}.",
            "",
            "| tests | goldens s | parametrized s | pytest floor s | goldens / param | "
            "floor / param | goldens / floor | goldens µs over floor, per golden |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n in clean_sizes:
            g, p, fl = med("clean goldens", n), med("clean param", n), med("clean floor", n)
            clean_lines.append(
                f"| {n} | {f(g)} | {f(p)} | {f(fl)} | {f(ratio_of(g, p))} | "
                f"{f(ratio_of(fl, p))} | {f(ratio_of(g, fl))} | "
                f"{f((g - fl) / n * 1e6 if g and fl else None, '{:.0f}')} |"
            )
        clean_lines.append("")
    verdict: list[str] = []

    def bar(label: str, value: float | None, limit: float) -> None:
        if value is not None:
            held = "holds" if value <= limit else "MISSED"
            verdict.append(f"- **{label} = {value:.2f}** (bar ≤ {limit:g}): {held}.")

    g5, p5 = med("goldens", 5000), med("param", 5000)
    gw5, gw10 = med("goldens warm", 5000), med("goldens warm", 10000)
    bar("cold: goldens 5k / parametrized 5k", ratio_of(g5, p5), 2)
    bar("cold, JSON goldens: 5k / parametrized 5k", ratio_of(med("goldens json", 5000), p5), 2)
    bar("warm: goldens 5k / parametrized 5k", ratio_of(gw5, med("param warm", 5000)), 2)
    if gw10 and gw5:
        verdict.append(f"- warm goldens growth 10k / 5k = {gw10 / gw5:.2f}.")
    t5, pw5 = med("goldens touched", 5000), med("param warm", 5000)
    if t5 and pw5:
        extra = (t5 - gw5) / 5000 * 1e6 if gw5 else 0.0
        cost = f"{extra:.0f} µs per golden" if extra > 0 else "nothing measurable"
        verdict.append(
            f"- touched (fresh checkout, cache restored): goldens 5k / parametrized warm 5k = "
            f"{t5 / pw5:.2f}; reading and hashing each golden adds {cost} over a warm run."
        )
    if costs and g5 and p5 and gw5:
        # a warm run does all a cold one does but read, parse and validate each golden
        left = (2 * p5 - gw5) / 5000 * 1e6
        spent = costs["parse"] + costs["validate"]
        read, parse = costs["read"], costs["parse"] - costs["read"]
        verdict.append(
            f"- where cold time goes (YAML goldens): the bar gives 5k goldens 2 x {p5:.2f} s; "
            f"a warm run of them (all but reading, parsing and validating each golden) takes "
            f"{gw5:.2f} s, which leaves about {left:.0f} µs per golden for those. They cost "
            f"{spent:.0f} µs per golden here: read {read:.0f}, parse {parse:.0f} (the line "
            f"reader, which reads goldens laid out as opswald writes them; the safe parser "
            f"takes {costs['safe']:.0f} on the same text, and libyaml's events alone as "
            f"PyYAML hands them to Python, the floor of any PyYAML-based parse, "
            f"{costs['events']:.0f}), validation {costs['validate']:.0f} (one golden, in "
            "process, best of 7)."
            + (
                f" A Rust YAML 1.2 parser (yaml-rs, info) reads the same file in "
                f"{costs['yaml_rs']:.0f} µs, but it reads YAML 1.1 scalars otherwise, accepts "
                "aliases and crashes on deep nesting (figures under Loading)."
                if "yaml_rs" in costs
                else ""
            )
        )
    fl5 = med("floor", 5000)
    if fl5 and g5 and p5:
        over = (g5 - fl5) / 5000 * 1e6
        room = (2 * p5 - fl5) / 5000 * 1e6
        spent = f"{costs['parse'] + costs['validate']:.0f}" if costs else "?"
        verdict.append(
            f"- pytest's floor (each golden file one `pytest.File` node holding one trivial "
            f"item, nothing read) 5k = {fl5 / p5:.2f}x parametrized 5k: the bar leaves "
            f"{room:.0f} µs per golden over it for reading, parsing and validating the "
            f"golden and making its item; goldens cost {over:.0f} µs per golden over it "
            f"(read, parse and validate alone {spent})."
        )
    bar("goldens growth 10k / 5k", ratio_of(med("goldens", 10000), g5), 2.2)
    f5 = med("files", 5000)
    if f5 and g5 and p5:
        verdict.append(
            f"- one-test files 5k = {f5 / p5:.2f}x parametrized 5k "
            f"(DESIGN expects ~4x); goldens 5k = {g5 / f5:.2f}x one-test files 5k."
        )
    for n in sizes:
        fi, p = med("files", n), med("param", n)
        if fi and p:
            verdict.append(
                f"- one-test files {n}: {(fi - p) / n * 1e6:.0f} µs per file over "
                "the parametrized leg (pytest's own per-file cost)."
            )
    p10 = med("param", 10000)
    if p10 and p5:
        verdict.append(f"- parametrized growth 10k / 5k = {p10 / p5:.2f}.")
    for n in sizes:
        g, p = med("goldens", n), med("param", n)
        if g and p:
            verdict.append(
                f"- goldens {n}: {(g - p) / n * 1e6:.0f} µs per golden over the parametrized leg."
            )
    r5, r10, r1 = med("goldens run", 5000), med("goldens run", 10000), med("goldens run", 1000)
    if r5 and r1:
        verdict.append(f"- full run growth 5k / 1k = {r5 / r1:.2f} (5x the goldens).")
    if r10 and r5:
        verdict.append(f"- full run growth 10k / 5k = {r10 / r5:.2f} (2x the goldens).")
    total = time.perf_counter() - started
    verdict.append(
        f"- script runtime {total:.0f}s (including writing the goldens and the profile run)."
    )
    print("\n".join([*rows, "", *clean_lines, *warm_rows, "", *run_rows, "", *verdict]))
    if args.no_write:
        return 0
    out = BENCH / "profiles" / "collection.txt"
    if prof_text:
        out.parent.mkdir(exist_ok=True)
        out.write_text(prof_text)
    spy_lines: list[str] = []
    spy_written: list[Path] = []
    if spy_text and spy_text.startswith("py-spy record"):
        spy_out = BENCH / "profiles" / "collection-pyspy.txt"
        spy_out.write_text(spy_text)
        spy_written.append(spy_out)
        table = spy_text.split("\n\nbusiest")[0]
        spy_lines = [
            "",
            "Where a cold collection of 5k goldens spends its time, sampled from outside the "
            f"process by py-spy (busiest frames: `bench/profiles/{spy_out.name}`):",
            "",
            "```",
            *table.split("\n")[2:],
            "```",
        ]
    elif spy_text:
        print(spy_text, file=sys.stderr)
    m = machine(("pytest-opswald", "pytest", "pydantic", "pydantic-core", "PyYAML"))
    section = [
        *header(SECTION, command, m),
        "Workload: N goldens of 10 steps each (5 `llm_call` alternating with 5 `tool_call`, "
        f"~{GOLDEN_BYTES[0] / 1024:.1f} KB of YAML each), written with `opswald.dump` into "
        "`goldens/` of a conftest-free pytest project (a bare `pytest.ini` pins the rootdir) "
        "— and the same sessions as `*.golden.json` "
        f"(~{GOLDEN_BYTES[-1] / 1024:.1f} KB each) in a project of their own, cold only — "
        "and collected with "
        f"`pytest --opswald-goldens {' '.join(PYTEST_ARGS)}`; versus the same pytest command "
        "(without `--opswald-goldens`, plugin still loaded) over one file holding one test "
        "parametrized N ways, and (up to "
        f"{args.files_max}) over N one-test Python files. Each run is a subprocess "
        f"(`{sys.executable.split('/')[-1]} -m pytest`, bytecode caching on as pytest runs "
        "by default, so the warm-up writes the `.pyc` caches: with it off, every pytest "
        "start compiles its assertion-rewritten modules again, a fixed cost in every leg that "
        "makes the ratios look smaller than they are); one untimed "
        f"warm-up per leg and size, then the median of {args.reps} runs, legs interleaved; "
        "the collected count is asserted. Peak RSS: "
        + (
            "`/usr/bin/time -v` (max over the runs)."
            if TIME
            else "`getrusage(RUSAGE_CHILDREN)` (a running high-water mark: upper bound)."
        ),
        "",
        "Cold (pytest's cache off, `-p no:cacheprovider`: every golden is read, parsed and "
        'validated at collection). "pytest floor": the goldens collected by a conftest that '
        "makes each golden file one `pytest.File` node holding one trivial item, reading "
        "nothing — pytest's own cost of a file per test, which any plugin collecting a "
        "golden per file pays:",
        "",
        *rows,
        "",
        *clean_lines,
        "Warm (pytest's cache on, `--collect-only -q`, the untimed warm-up run having filled "
        "it: opswald's collection index says which goldens are unchanged since they were "
        "collected valid, and those are not read; the parametrized leg with the cache on "
        'too). "Goldens touched": the same, after every golden got a new modification time '
        "with the same bytes (a fresh checkout with `.pytest_cache` restored; not timed): each "
        "golden is read and its content digest compared, none parsed:",
        "",
        *warm_rows,
        "",
        "Full run (`pytest --opswald-goldens -q -p no:cacheprovider`: every golden collected "
        "cold and replayed through an agent that makes the recorded calls, wired with ini "
        "`opswald_adapter`; all N asserted passed), against the parametrized tests run the "
        "same way:",
        "",
        *run_rows,
        "",
        *verdict,
        *spy_lines,
        "",
        "cProfile of one goldens collection at 5k: `bench/profiles/collection.txt`.",
    ]
    write_results(SECTION, "\n".join(section))
    written = [BENCH / "RESULTS.md", *([out] if prof_text else []), *spy_written]
    print("\nwrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
