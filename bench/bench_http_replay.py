"""HTTP-level replay of real `openai` SDK sessions: opswald vs vcrpy vs a MockTransport floor.

DESIGN §6, first bar: opswald replay <= 0.7x the wall time of pytest-recording/vcrpy
replaying the same interactions, and <= 1.15x a hand-written in-memory
`httpx2.MockTransport` that returns the same bodies.

Workload: SESSIONS sessions x CALLS chat-completion calls with tool calls, made through
the real `openai` SDK (which sends over `httpx2`) by one agent function shared by every
leg. The sessions are recorded ONCE against a fake provider on 127.0.0.1: each session
runs under an opswald live run (the golden) *inside* a vcrpy cassette, so both tools
capture the very same HTTP exchanges. The provider is then stopped, a socket guard that
refuses every connect is installed, and the sessions are replayed in one process, legs
interleaved, each warmed up once:

  floor        `httpx2.MockTransport` handler returning the recorded bodies in order
  opswald      `opswald.engine.run.execute` (policy replay, offline guard on) + `judge`
  vcrpy        one cassette per session, the way pytest-recording builds it
               (`VCR(record_mode="none")`, default `match_on`), cassettes held in memory
  (info) vcrpy+yaml     the same, cassette files parsed per session by pytest-recording's
                        own `CombinedPersister` (what `pytest --record-mode=none` does)
  (info) opswald+load   opswald, golden files parsed per session with `opswald.load`

Then (info) the same sessions replayed by pytest itself, one test or golden per session,
each run a subprocess: a MockTransport floor test, pytest-recording's `@pytest.mark.vcr`
over the recorded cassettes with `--record-mode=none`, and `pytest --opswald-goldens`.

Run: python bench/bench_http_replay.py [--sessions 50] [--calls 10] [--reps 5] [--no-pytest]
Writes bench/RESULTS.md (section "HTTP replay through the openai SDK") and
bench/profiles/http_replay.txt. Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))  # the shared fake provider lives with the tests
sys.path.insert(0, str(BENCH))

import httpx2  # noqa: E402
import openai  # noqa: E402
import vcr  # noqa: E402
from _common import (  # noqa: E402
    header,
    machine,
    profile_report,
    profiled,
    pytest_env,
    write_results,
)
from _http_agent import run_agent  # noqa: E402
from pytest_recording._vcr import CombinedPersister  # noqa: E402
from vcr.record_mode import RecordMode  # noqa: E402

import opswald  # noqa: E402
from fakeprovider import FakeProvider  # noqa: E402
from opswald.engine.run import RunSettings, execute, judge  # noqa: E402
from opswald.session import Session  # noqa: E402

SECTION = "HTTP replay through the openai SDK"
BAR_VS_VCR = 0.7
BAR_VS_FLOOR = 1.15
CITIES = ("Lisbon", "Oslo", "Nairobi", "Lima", "Osaka", "Perth", "Quito", "Tunis", "Hanoi")


def script_for(session: int, calls: int) -> list[dict[str, Any]]:
    """The provider's replies for one session: calls-1 tool turns, then an answer."""
    replies: list[dict[str, Any]] = []
    for turn in range(calls - 1):
        city = CITIES[(session + turn) % len(CITIES)]
        tool_calls = [{"name": "get_weather", "arguments": {"city": city}}]
        if turn % 3 == 0:  # every third turn asks for two tools at once
            tool_calls.append({"name": "get_time", "arguments": {"city": city}})
        usage = {"input_tokens": 120 + 40 * turn, "output_tokens": 18}
        replies.append({"content": None, "tool_calls": tool_calls, "usage": usage})
    answer = f"Session {session}: " + ", ".join(CITIES[(session + t) % 9] for t in range(3))
    replies.append({"content": answer, "usage": {"input_tokens": 500, "output_tokens": 40}})
    return replies


def last_request_messages(calls: int) -> int:
    """system + user, then per tool turn one assistant message and one per tool call."""
    turns = calls - 1
    return 2 + turns + turns + -(-turns // 3)


def task_for(session: int, calls: int) -> dict[str, Any]:
    city = CITIES[session % len(CITIES)]
    return {"question": f"Plan a day in {city} (trip {session}).", "max_calls": calls}


# --------------------------------------------------------------------------- fixtures


@dataclass
class Recorded:
    """Everything the replay legs need, in memory."""

    base_url: str
    tasks: list[dict[str, Any]]
    outputs: list[Any]
    goldens: list[Session]
    golden_paths: list[Path]
    cassette_dir: Path
    cassettes: dict[str, tuple[list[Any], list[Any]]]  # name -> (requests, responses)
    bodies: list[list[tuple[int, list[tuple[str, str]], bytes]]]
    provider_requests: int = 0
    notes: list[str] = field(default_factory=list)


def cassette_name(session: int) -> str:
    return f"session_{session:03d}"


def record(sessions: int, calls: int, workdir: Path) -> Recorded:
    """One pass against the fake provider: opswald live run inside a vcrpy cassette."""
    script = [reply for s in range(sessions) for reply in script_for(s, calls)]
    cassette_dir = workdir / "cassettes"
    golden_dir = workdir / "goldens"
    golden_dir.mkdir(parents=True)
    rec = Recorded("", [], [], [], [], cassette_dir, {}, [])
    recorder = vcr.VCR(cassette_library_dir=str(cassette_dir), record_mode=RecordMode.ONCE)
    live = RunSettings(policy="live", block_side_effects=False)
    with _buffered_provider_writes(), FakeProvider(script=script) as fp:
        rec.base_url = fp.base_url + "/v1"
        client = openai.OpenAI(base_url=rec.base_url, api_key="sk-bench", max_retries=0)
        for s in range(sessions):
            task = task_for(s, calls)
            stub = Session(name=cassette_name(s), input=task)
            with recorder.use_cassette(cassette_name(s) + ".yaml"):
                run = execute(stub, lambda inp: run_agent(client, inp), settings=live)
            assert run.actual.error is None, run.agent_traceback
            assert run.actual.output == {
                "answer": script_for(s, calls)[-1]["content"],
                "calls": calls,
            }, run.actual.output
            path = golden_dir / f"{cassette_name(s)}.golden.yaml"
            opswald.dump(run.actual, path)
            rec.tasks.append(task)
            rec.outputs.append(run.actual.output)
            rec.golden_paths.append(path)
        client.close()
        rec.provider_requests = len(fp.requests)
        port = int(fp.base_url.rsplit(":", 1)[1])
    assert rec.provider_requests == sessions * calls, rec.provider_requests
    _prove_stopped(port)
    rec.notes.append(
        f"fake provider stopped after {rec.provider_requests} requests; "
        f"a connect to 127.0.0.1:{port} is refused"
    )
    rec.goldens = [opswald.load(p) for p in rec.golden_paths]
    for s in range(sessions):
        path = cassette_dir / f"{cassette_name(s)}.yaml"
        requests, responses = CombinedPersister([]).load_cassette(
            str(path), vcr.serializers.yamlserializer
        )
        assert len(requests) == calls, (path, len(requests))
        rec.cassettes[cassette_name(s)] = (requests, responses)
        rec.bodies.append(
            [
                (
                    r["status"]["code"],
                    [(k, v) for k, vs in r["headers"].items() for v in vs],
                    r["body"]["string"],
                )
                for r in responses
            ]
        )
    return rec


@contextmanager
def _buffered_provider_writes() -> Iterator[None]:
    """tests/fakeprovider.py writes status+headers and body in separate unbuffered sends,
    which Nagle + delayed ACK turn into ~45 ms per request; buffer them (this process only)."""
    import fakeprovider

    saved = fakeprovider._Handler.wbufsize
    fakeprovider._Handler.wbufsize = -1  # flushed by handle_one_request after each request
    try:
        yield
    finally:
        fakeprovider._Handler.wbufsize = saved


def _prove_stopped(port: int) -> None:
    with socket.socket() as sock:
        sock.settimeout(1)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return
    raise AssertionError(f"the fake provider still answers on port {port}")


class _NoNetwork:
    """Every socket connect during replay is counted and refused (proof of offline)."""

    def __init__(self) -> None:
        self.attempts: list[Any] = []
        self.saved: dict[str, Any] = {}

    @contextmanager
    def active(self) -> Iterator[None]:
        guard = self

        def refuse(self: socket.socket, address: Any, *args: Any) -> Any:
            guard.attempts.append(address)
            raise ConnectionRefusedError(f"benchmark replay is offline: {address!r}")

        for name in ("connect", "connect_ex"):
            self.saved[name] = socket.socket.__dict__.get(name)
            setattr(socket.socket, name, refuse)
        try:
            yield
        finally:
            for name, original in self.saved.items():
                if original is None:
                    delattr(socket.socket, name)
                else:
                    setattr(socket.socket, name, original)


# --------------------------------------------------------------------------- the legs


class MemoryPersister:
    """vcrpy persister serving already-deserialized cassettes (no YAML parse per test)."""

    def __init__(self, cassettes: dict[str, tuple[list[Any], list[Any]]]) -> None:
        self.cassettes = cassettes

    def load_cassette(self, cassette_path: str, serializer: Any) -> tuple[list[Any], list[Any]]:
        requests, responses = self.cassettes[Path(cassette_path).stem]
        return list(requests), list(responses)

    def save_cassette(self, cassette_path: str, cassette_dict: Any, serializer: Any) -> None:
        raise AssertionError("replay must not write cassettes")


def _sdk_client(base_url: str) -> openai.OpenAI:
    """The SDK's own default httpx2 client (what the agent uses in production)."""
    return openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)


def leg_floor(rec: Recorded) -> Callable[[], None]:
    """Hand-written in-memory MockTransport returning the recorded bodies in order."""
    queue: list[Iterator[tuple[int, list[tuple[str, str]], bytes]]] = [iter(())]

    def handler(request: httpx2.Request) -> httpx2.Response:
        status, headers, body = next(queue[0])
        return httpx2.Response(status, headers=headers, content=body)

    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    client = openai.OpenAI(
        base_url=rec.base_url, api_key="sk-bench", max_retries=0, http_client=http
    )

    def run() -> None:
        for task, expected, bodies in zip(rec.tasks, rec.outputs, rec.bodies, strict=True):
            queue[0] = iter(bodies)
            assert run_agent(client, task) == expected

    return run


@dataclass
class OpswaldTimes:
    judge_s: float = 0.0


def leg_opswald(
    rec: Recorded, times: OpswaldTimes, *, from_disk: bool = False
) -> Callable[[], None]:
    client = _sdk_client(rec.base_url)
    settings = RunSettings()  # policy "replay", offline guard on

    def adapter(task: dict[str, Any]) -> Any:
        return run_agent(client, task)

    def run() -> None:
        spent = 0.0
        for golden, path in zip(rec.goldens, rec.golden_paths, strict=True):
            if from_disk:
                golden = opswald.load(path)
            result = execute(golden, adapter, settings=settings)
            t0 = time.perf_counter()
            verdict = judge(golden, result)
            spent += time.perf_counter() - t0
            assert verdict.passed, verdict
        times.judge_s = spent

    return run


def leg_vcrpy(rec: Recorded, *, from_disk: bool = False) -> Callable[[], None]:
    """What pytest-recording does per test: a fresh VCR, a persister, use_cassette."""
    client = _sdk_client(rec.base_url)
    memory = MemoryPersister(rec.cassettes)

    def run() -> None:
        for s, (task, expected) in enumerate(zip(rec.tasks, rec.outputs, strict=True)):
            v = vcr.VCR(
                path_transformer=vcr.VCR.ensure_suffix(".yaml"),
                cassette_library_dir=str(rec.cassette_dir),
                record_mode="none",
            )
            v.register_persister(CombinedPersister([]) if from_disk else memory)
            with v.use_cassette(cassette_name(s)) as cassette:
                assert run_agent(client, task) == expected
                assert cassette.all_played

    return run


# --------------------------------------------------------------------------- pytest level
# The same sessions replayed by `pytest` itself, one test (or golden) per session, each a
# subprocess: what a user's test run pays, pytest's start-up and per-test work included.

FLOOR_TEST = """\
import json
from pathlib import Path

import httpx2
import openai
import pytest

from _http_agent import run_agent

DATA = json.loads(Path(__file__).with_name("sessions.json").read_text())
BODIES = [
    [(status, [tuple(h) for h in headers], body.encode("latin-1"))
     for status, headers, body in session["bodies"]]
    for session in DATA["sessions"]
]
QUEUE = [iter(())]


def handler(request):
    status, headers, body = next(QUEUE[0])
    return httpx2.Response(status, headers=headers, content=body)


CLIENT = openai.OpenAI(
    base_url=DATA["base_url"], api_key="sk-bench", max_retries=0,
    http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
)


@pytest.mark.parametrize("s", range(len(DATA["sessions"])))
def test_session(s):
    QUEUE[0] = iter(BODIES[s])
    session = DATA["sessions"][s]
    assert run_agent(CLIENT, session["task"]) == session["expected"]
"""

VCR_TEST = """\
import json
from pathlib import Path

import openai
import pytest

from _http_agent import run_agent

DATA = json.loads(Path(__file__).with_name("sessions.json").read_text())
CLIENT = openai.OpenAI(base_url=DATA["base_url"], api_key="sk-bench", max_retries=0)


@pytest.mark.vcr
@pytest.mark.parametrize("s", range(len(DATA["sessions"])))
def test_session(s, vcr):
    session = DATA["sessions"][s]
    assert run_agent(CLIENT, session["task"]) == session["expected"]
    assert vcr.all_played
"""

OPSWALD_AGENT = """\
import json
from pathlib import Path

import openai

from _http_agent import run_agent

BASE_URL = json.loads(Path(__file__).with_name("sessions.json").read_text())["base_url"]
CLIENT = openai.OpenAI(base_url=BASE_URL, api_key="sk-bench", max_retries=0)


def run(task):
    return run_agent(CLIENT, task)
"""

PYTEST_LEGS: dict[str, list[str]] = {  # leg -> pytest arguments
    "pytest floor: MockTransport per test": [],
    "pytest-recording: @pytest.mark.vcr, --record-mode=none": ["--record-mode=none"],
    "opswald: pytest --opswald-goldens": ["--opswald-goldens"],
}
PASSED = re.compile(r"(\d+) passed")


def pytest_projects(rec: Recorded, root: Path) -> dict[str, Path]:
    """One pytest project per leg, holding what that tool replays from (not timed)."""
    floor, vcr_leg, ops = PYTEST_LEGS
    sessions = [
        {
            "task": task,
            "expected": expected,
            "bodies": [[st, hs, body.decode("latin-1")] for st, hs, body in bodies],
        }
        for task, expected, bodies in zip(rec.tasks, rec.outputs, rec.bodies, strict=True)
    ]
    ini = f"[pytest]\npythonpath = {BENCH} .\n"
    projects = {leg: root / f"pytest-{i}" for i, leg in enumerate(PYTEST_LEGS)}
    for proj in projects.values():
        proj.mkdir()
    (projects[floor] / "pytest.ini").write_text(ini)
    (projects[floor] / "test_floor.py").write_text(FLOOR_TEST)
    (projects[floor] / "sessions.json").write_text(
        json.dumps({"base_url": rec.base_url, "sessions": sessions})
    )
    for_vcr = [{k: v for k, v in s.items() if k != "bodies"} for s in sessions]
    (projects[vcr_leg] / "pytest.ini").write_text(ini)
    (projects[vcr_leg] / "test_vcr.py").write_text(VCR_TEST)
    (projects[vcr_leg] / "sessions.json").write_text(
        json.dumps({"base_url": rec.base_url, "sessions": for_vcr})
    )
    cassettes = projects[vcr_leg] / "cassettes" / "test_vcr"  # pytest-recording's default
    cassettes.mkdir(parents=True)
    for s in range(len(rec.tasks)):
        shutil.copyfile(
            rec.cassette_dir / f"{cassette_name(s)}.yaml", cassettes / f"test_session[{s}].yaml"
        )
    (projects[ops] / "pytest.ini").write_text(ini + "opswald_adapter = agent:run\n")
    (projects[ops] / "agent.py").write_text(OPSWALD_AGENT)
    (projects[ops] / "sessions.json").write_text(json.dumps({"base_url": rec.base_url}))
    (projects[ops] / "goldens").mkdir()
    for path in rec.golden_paths:
        shutil.copyfile(path, projects[ops] / "goldens" / path.name)
    return projects


def pytest_run(proj: Path, args: list[str], expect: int) -> float:
    """Wall seconds of one `pytest -q -p no:cacheprovider` subprocess; all tests passed."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=proj, env=pytest_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    found = PASSED.search(proc.stdout)
    if proc.returncode != 0 or not found or int(found.group(1)) != expect:
        raise SystemExit(f"{proj.name} {args}: exit {proc.returncode}\n{proc.stdout[-3000:]}")
    return wall


def pytest_legs(rec: Recorded, root: Path, reps: int) -> list[Leg]:
    """The pytest-level legs, each warmed up once, then `reps` runs interleaved (rotated)."""
    projects = pytest_projects(rec, root)
    legs = [Leg(name, lambda: None, True) for name in PYTEST_LEGS]  # run as subprocesses
    n = len(rec.tasks)
    for leg in legs:  # writes the .pyc caches; not timed
        pytest_run(projects[leg.name], PYTEST_LEGS[leg.name], n)
    for rep in range(reps):
        shift = rep % len(legs)
        for leg in legs[shift:] + legs[:shift]:
            leg.samples.append(pytest_run(projects[leg.name], PYTEST_LEGS[leg.name], n))
    return legs


# --------------------------------------------------------------------------- measuring


@dataclass
class Leg:
    name: str
    run: Callable[[], None]
    primary: bool
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


# (module, owner attribute or "", function, what it does). Looked up at run time, so a
# renamed internal is skipped, not fatal. Only the outermost call of each is timed.
STAGES = (
    (
        "httpx2",
        "Client",
        "_send_single_request",
        "floor only: httpx2 send through MockTransport (opswald replaces this call)",
    ),
    ("opswald.intercept.transport", "", "_prepare", "read + json.loads body, codec.request"),
    (
        "opswald.intercept.codecs.openai_chat",
        "OpenAIChatCodec",
        "request",
        "  codec.request: deepcopy messages, parse tool args",
    ),
    ("opswald.engine.context", "Context", "begin", "match the call against the tape"),
    ("opswald.engine.tape", "", "normalize_request", "  normalize_request (golden and actual)"),
    ("opswald.intercept.transport", "", "_served", "build the served httpx2.Response"),
    ("opswald.intercept.exchange", "", "serve", "  exchange.serve"),
    ("opswald.engine.context", "Context", "llm_step", "    Context.llm_step: the actual step"),
    (
        "opswald.intercept.codecs.openai_chat",
        "OpenAIChatCodec",
        "encode",
        "    codec.encode: response bytes from the step",
    ),
    ("opswald.redact", "Redactor", "__call__", "Redactor.__call__ (all callers above)"),
)


def breakdown(legs: dict[str, Callable[[], None]], calls_total: int, reps: int = 3) -> str:
    """Wall-clock µs per call spent in each stage (cProfile inflates small recursive calls)."""
    import importlib

    spent: dict[str, float] = {}
    depth: dict[str, int] = {}
    restore: list[tuple[Any, str, Any]] = []

    def timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def wrapper(*a: Any, **k: Any) -> Any:
            d = depth.get(label, 0)
            depth[label] = d + 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[label] = d
                if d == 0:
                    spent[label] = spent.get(label, 0.0) + time.perf_counter() - t0

        return wrapper

    for module_name, owner_name, attr, label in STAGES:
        owner: Any = importlib.import_module(module_name)
        owner = getattr(owner, owner_name, None) if owner_name else owner
        original = getattr(owner, attr, None) if owner is not None else None
        if original is None:
            continue
        restore.append((owner, attr, original))
        setattr(owner, attr, timed(original, label))
    lines = [f"{'stage':<82} " + " ".join(f"{name:>10}" for name in legs)]
    results: dict[str, dict[str, float]] = {}
    try:
        for name, run in legs.items():
            spent.clear()
            for _ in range(reps):
                run()
            results[name] = dict(spent)
    finally:
        for owner, attr, original in reversed(restore):
            setattr(owner, attr, original)
    for _module, _owner, _attr, label in STAGES:
        cells = [results[n].get(label) for n in legs]
        if all(c is None for c in cells):
            continue
        shown = [f"{c / (reps * calls_total) * 1e6:10.1f}" if c else f"{'-':>10}" for c in cells]
        lines.append(f"{label:<82} " + " ".join(shown))
    return "\n".join(lines)


# --------------------------------------------------------------------------- reporting


DISTS = (
    "pytest-opswald",
    "openai",
    "httpx2",
    "httpx",
    "vcrpy",
    "pytest-recording",
    "pydantic",
    "PyYAML",
)


def table(legs: list[Leg], calls_total: int, floor: Leg) -> list[str]:
    rows = [
        "| leg | median s | best s | worst s | µs/call | µs/call over floor | x floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for leg in legs:
        over = (leg.median - floor.median) / calls_total * 1e6
        rows.append(
            f"| {leg.name}{'' if leg.primary else ' (info)'} | {leg.median:.3f} | "
            f"{leg.best:.3f} | {max(leg.samples):.3f} | {leg.median / calls_total * 1e6:.0f} | "
            f"{'—' if leg is floor else f'{over:+.0f}'} | {leg.median / floor.median:.2f} |"
        )
    return rows


def pytest_table(legs: list[Leg], calls_total: int, floor: Leg) -> list[str]:
    """The pytest-level rows: whole runs (pytest's start-up included), and what each leg
    adds over the floor's run, per call."""
    rows = [
        "| pytest run | median s | best s | worst s | s over floor | µs/call over floor | "
        "x floor |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for leg in legs:
        over = leg.median - floor.median
        rows.append(
            f"| {leg.name} | {leg.median:.3f} | {leg.best:.3f} | {max(leg.samples):.3f} | "
            f"{'—' if leg is floor else f'{over:+.3f}'} | "
            f"{'—' if leg is floor else f'{over / calls_total * 1e6:+.0f}'} | "
            f"{leg.median / floor.median:.2f} |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; write no files")
    parser.add_argument(
        "--no-pytest", action="store_true", help="skip the pytest-level legs (subprocesses)"
    )
    args = parser.parse_args(argv)
    if args.calls < 2 or args.sessions < 1 or not 1 <= args.reps <= 50:
        parser.error("need --calls >= 2, --sessions >= 1, 1 <= --reps <= 50")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_http_replay.py", *map(shlex.quote, given)])
    calls_total = args.sessions * args.calls

    with tempfile.TemporaryDirectory(prefix="opswald-bench-") as tmp:
        t0 = time.perf_counter()
        rec = record(args.sessions, args.calls, Path(tmp))
        print(
            f"recorded {args.sessions} sessions x {args.calls} calls in "
            f"{time.perf_counter() - t0:.1f}s; {rec.notes[0]}",
            flush=True,
        )
        times = OpswaldTimes()
        floor = Leg("floor: httpx2.MockTransport", leg_floor(rec), True)
        ops = Leg("opswald replay (execute + judge)", leg_opswald(rec, times), True)
        vcr_mem = Leg("vcrpy, cassettes in memory", leg_vcrpy(rec), True)
        vcr_disk = Leg(
            "vcrpy + pytest-recording persister, YAML parsed per session",
            leg_vcrpy(rec, from_disk=True),
            False,
        )
        ops_disk = Leg(
            "opswald, golden YAML loaded per session",
            leg_opswald(rec, OpswaldTimes(), from_disk=True),
            False,
        )
        legs = [floor, ops, vcr_mem, vcr_disk, ops_disk]
        guard = _NoNetwork()
        judge_samples: list[float] = []
        with guard.active():
            for leg in legs:  # warm-up: imports, caches, first-call costs
                leg.run()
            for rep in range(args.reps):
                shift = rep % len(legs)  # rotate the order so no leg always runs first
                for leg in legs[shift:] + legs[:shift]:
                    gc.collect()
                    t = time.perf_counter()
                    leg.run()
                    leg.samples.append(time.perf_counter() - t)
                    if leg is ops:
                        judge_samples.append(times.judge_s)
            prof = profile_report(
                profiled(leg_opswald(rec, OpswaldTimes())), "cProfile of the opswald leg", ours=30
            )
            stages = breakdown({"floor": floor.run, "opswald": ops.run}, calls_total)
        assert not guard.attempts, f"replay tried to connect: {guard.attempts[:3]}"
        plegs = [] if args.no_pytest else pytest_legs(rec, Path(tmp), args.reps)

    judge_med = statistics.median(judge_samples)
    vs_vcr = ops.median / vcr_mem.median
    vs_floor = ops.median / floor.median
    floor_vs_vcr = floor.median / vcr_mem.median
    overhead_vs_vcr = (ops.median - floor.median) / (vcr_mem.median - floor.median)
    ops_added = (ops.median - floor.median) / calls_total * 1e6
    vcr_added = (vcr_mem.median - floor.median) / calls_total * 1e6
    rows = table(legs, calls_total, floor)
    verdict = [
        f"- **opswald / vcrpy = {vs_vcr:.2f}** (bar ≤ {BAR_VS_VCR}): "
        f"{'holds' if vs_vcr <= BAR_VS_VCR else 'MISSED'} (best-of {ops.best / vcr_mem.best:.2f};"
        f" against vcrpy parsing YAML per session {ops.median / vcr_disk.median:.2f}).",
        f"- **opswald / floor = {vs_floor:.2f}** (bar ≤ {BAR_VS_FLOOR}): "
        f"{'holds' if vs_floor <= BAR_VS_FLOOR else 'MISSED'} "
        f"(best-of {ops.best / floor.best:.2f}).",
        f"- floor / vcrpy = {floor_vs_vcr:.2f}: the SDK's own work dominates every leg, so the "
        f"0.7x vcrpy bar asks opswald for ≤ {BAR_VS_VCR / floor_vs_vcr:.2f}x the floor"
        + (
            " — below the floor, so no HTTP-level replay can meet it on this workload."
            if floor_vs_vcr > BAR_VS_VCR
            else "."
        ),
        f"- added cost over the floor: opswald {ops_added:.0f} µs/call, "
        f"vcrpy {vcr_added:.0f} µs/call; "
        f"ratio {overhead_vs_vcr:.2f} (would hold a 0.7 bar stated on added cost: "
        f"{'yes' if overhead_vs_vcr <= BAR_VS_VCR else 'no'}).",
        f"- `judge` is {judge_med / calls_total * 1e6:.0f} µs/call of the opswald leg; "
        f"execute alone = {(ops.median - judge_med) / floor.median:.2f}x floor.",
    ]
    prows: list[str] = []
    if plegs:
        pfloor, pvcr, pops = plegs
        prows = pytest_table(plegs, calls_total, pfloor)
        p_ops = (pops.median - pfloor.median) / calls_total * 1e6
        p_vcr = (pvcr.median - pfloor.median) / calls_total * 1e6
        verdict += [
            f"- pytest level (info, the pytest-run table): opswald / pytest-recording = "
            f"{pops.median / pvcr.median:.2f} (best-of {pops.best / pvcr.best:.2f}), "
            f"opswald / pytest floor = {pops.median / pfloor.median:.2f}; added over the "
            f"pytest floor: opswald {p_ops:.0f} µs/call, pytest-recording {p_vcr:.0f} µs/call"
            + (f" (ratio {p_ops / p_vcr:.2f})." if p_vcr > 0 else "."),
        ]
    print("\n".join(["", *rows, "", *prows, "", *verdict, "", "µs/call by stage:", stages]))
    m = machine(DISTS)
    if args.no_write:
        return 0
    out = BENCH / "profiles" / "http_replay.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"Opswald leg of `{command}` ({args.sessions} sessions x {args.calls} calls), "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, Python {m['python']}\n\n"
        f"== wall clock: µs per call spent in each stage (outermost calls, 3 runs) ==\n"
        f"{stages}\n\n{prof}"
    )
    section = results_section(args, command, calls_total, m, rows, verdict, stages, prows)
    write_results(SECTION, section)
    print(f"\nwrote {BENCH / 'RESULTS.md'} and {out}")
    return 0


def results_section(
    args: argparse.Namespace,
    command: str,
    calls_total: int,
    m: dict[str, str],
    rows: list[str],
    verdict: list[str],
    stages: str,
    prows: list[str],
) -> str:
    pytest_part = [
        "The same sessions replayed by `pytest` itself (`python -m pytest -q -p "
        "no:cacheprovider`, one subprocess per run, bytecode caching on; one untimed run per "
        f"leg, then {args.reps} runs interleaved, order rotated; every test asserted passed): "
        f"{args.sessions} tests of one session each, what a user's run pays, pytest's start-up "
        "and per-test work included. Floor: a module-level SDK client on a `MockTransport` "
        "whose handler serves the session's recorded bodies. pytest-recording: "
        "`@pytest.mark.vcr` with its default cassette layout (`cassettes/test_vcr/"
        "test_session[N].yaml`, the files vcrpy recorded) and `--record-mode=none`; "
        "`vcr.all_played` asserted. Opswald: the goldens in `goldens/`, ini "
        "`opswald_adapter`, `pytest --opswald-goldens` (each golden parsed at collection, as "
        "with pytest's cache off). All three import the agent from `bench/_http_agent.py`.",
        "",
        *prows,
        "",
    ]
    return "\n".join(
        [
            *header(SECTION, command, m),
            f"Workload: {args.sessions} sessions x {args.calls} `chat.completions.create` calls "
            f"= {calls_total} calls through the real `openai` SDK on its default `httpx2` "
            f"client; {args.calls - 1} of {args.calls} replies ask for one or two tools, so "
            f"the last request carries {last_request_messages(args.calls)} messages. One agent "
            "function serves every leg; its tools are plain functions (HTTP-level replay only). "
            "Recorded once against `tests/fakeprovider.py` on 127.0.0.1, each session as an "
            "opswald live run inside a vcrpy cassette, so both hold the same exchanges; the "
            "provider is then stopped (a connect to its port is refused) and a socket guard "
            "refused — and counted zero — connects during every replay leg. Each leg warmed up "
            f"once, then {args.reps} repetitions interleaved in one process (order rotated); "
            "ratios use medians.",
            "",
            "- floor: `openai.OpenAI(http_client=httpx2.Client(transport=httpx2.MockTransport("
            "handler)))`; the handler returns the recorded status, headers and bodies in order.",
            "- opswald: `execute(golden, agent, settings=RunSettings())` (policy replay, offline "
            "guard on), then `judge(golden, run).passed` asserted — both timed. Goldens written "
            "with `opswald.dump` and read with `opswald.load` before timing.",
            "- vcrpy: vcrpy 9 patches `httpx2` itself (`httpx2.HTTPTransport.handle_request` "
            "and friends), so the SDK's default httpx2 client runs unchanged — no legacy `httpx` "
            "client needed. Per session, as pytest-recording builds it per test: "
            '`VCR(record_mode="none")` with the default `match_on` (method, scheme, host, port,'
            " path, query), a registered persister, `use_cassette`; `cassette.all_played` "
            "asserted. The primary row's persister hands over already-deserialized cassettes "
            "(same footing as in-memory goldens); the info row parses each YAML cassette with "
            "pytest-recording's `CombinedPersister`, as `pytest --record-mode=none` does.",
            "",
            *rows,
            "",
            *(pytest_part if prows else []),
            *verdict,
            "",
            "Where opswald's time goes, wall clock, µs per call (outermost calls; the floor's "
            "httpx2 send is what opswald's hook replaces):",
            "",
            "```",
            stages,
            "```",
            "",
            "cProfile of the opswald leg: `bench/profiles/http_replay.txt`.",
            "",
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
