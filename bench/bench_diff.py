"""Diff: two 10,000- and 20,000-element tool results (lists of nested dicts) that differ in a
few places, compared with opswald's diff and with plain `deepdiff.DeepDiff`.

DESIGN §6: failure diff of two 10,000-element tool results: linear growth
(20k/10k <= 2.5) and bounded output.

Workload: N records like a search tool returns (id, sku, name, nested price and stock,
a tags list, a flag), and a copy changed in 6 places at fixed fractions of the list (a
nested number, a string, a list element, an added key, a removed key, an int that became
a string). A second case changes every record (a price), to show the output stays bounded
when everything differs. A third case is the first one with the list inside a small
dict, `{"count": N, "rows": [...]}`, as a tool or agent often returns it: it must diff as
fast as the bare list. Legs, both sizes interleaved in every repetition (so a change
of machine load hits both), each warmed up once, wall and CPU time:

  differences  `opswald.diff.differences(golden, actual)` (default limit 200); also
               with the garbage collector off (info)
  render       `render_difference(d)` for each of those differences, joined
  judge path   a golden whose tool step returns the N records and whose output is the same
               list, replayed (`execute`, policy replay, offline guard on) by an agent that
               calls the tool and returns the changed list; `judge` finds the output
               difference; `render_verdict` prints what a failing test shows
  diverging call  a golden whose tool call sent the N records, replayed by an agent that
               sends the changed ones: the replay names the call that diverged and how
               (the tape compares it with the recorded call; `judge`, `render_verdict`)
  deepdiff     `deepdiff.DeepDiff(golden, actual)`, defaults (the reference); its output
               size is `str(...)` and `.pretty()`

Run: python bench/bench_diff.py [--quick] [--reps N] [--no-write]
Writes bench/RESULTS.md (section "Diff") and bench/profiles/diff.txt (a cProfile of the
judge path at the largest size).
"""

from __future__ import annotations

import argparse
import copy
import gc
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import header, machine, profile_report, profiled, write_results  # noqa: E402

import opswald  # noqa: E402
from opswald.diff import differences, render_difference, render_verdict  # noqa: E402
from opswald.engine.run import RunSettings, execute, judge  # noqa: E402
from opswald.session import Session  # noqa: E402

SECTION = "Diff"
SLOW = frozenset({"deepdiff"})  # seconds per call at 20k: fewer samples
SLOW_SAMPLES = 2
WRAPPED = '6 changes, in {"count", "rows"}'
GC_OFF = "differences, gc off (info)"
WAREHOUSES = ("OSL", "CDG", "JFK")


def records(n: int) -> list[dict[str, Any]]:
    """N records of a product search: ~190 B of JSON each, three levels deep."""
    return [
        {
            "id": i,
            "sku": f"SKU-{i:06d}",
            "name": f"Item {i}",
            "price": {"amount": round(1.5 + i % 97 * 0.25, 2), "currency": "EUR"},
            "stock": {"warehouse": WAREHOUSES[i % 3], "count": i % 13},
            "tags": [f"t{i % 7}", "bulk" if i % 5 == 0 else "single"],
            "active": i % 11 != 0,
        }
        for i in range(n)
    ]


def changed_few(golden: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy changed in 6 places, at fixed fractions of the list."""
    n = len(golden)
    out = copy.deepcopy(golden)
    out[n // 7]["price"]["amount"] += 1
    out[2 * n // 7]["name"] = "Item renamed"
    out[3 * n // 7]["tags"][1] = "clearance"
    out[4 * n // 7]["discontinued"] = True
    del out[5 * n // 7]["active"]
    out[6 * n // 7]["stock"]["count"] = str(out[6 * n // 7]["stock"]["count"])
    return out


def wrapped(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The list inside a small dict, as a tool or an agent often returns it."""
    return {"count": len(rows), "rows": rows}


def changed_all(golden: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy in which every record's price differs."""
    out = copy.deepcopy(golden)
    for row in out:
        row["price"]["amount"] = round(row["price"]["amount"] * 1.1, 2)
    return out


# ----------------------------------------------------------------------------- the legs


@opswald.tool
def search_products(query: str) -> list[dict[str, Any]]:
    """The tool the golden recorded (never runs in replay: its answer is served)."""
    raise AssertionError("a replay serves the recorded result")


def judge_golden(rows: Any) -> Session:
    return Session.model_validate(
        {
            "name": f"search-{len(rows)}",
            "input": {"query": "all products"},
            "steps": [
                {
                    "step": 1,
                    "type": "tool_call",
                    "tool": "search_products",
                    "input": {"query": "all products"},
                    "output": rows,
                }
            ],
            "output": rows,
        }
    )


def judge_agent(changed: Any) -> Callable[[dict[str, Any]], Any]:
    def agent(task: dict[str, Any]) -> Any:
        rows = search_products(query=task["query"])
        assert len(rows) == len(changed)
        return changed

    return agent


@opswald.tool
def save_products(rows: Any) -> int:
    """A tool the records are sent to: the golden recorded it with the original records."""
    raise AssertionError("a diverging call is refused in replay, never run")


def call_golden(rows: Any) -> Session:
    return Session.model_validate(
        {
            "name": f"save-{len(rows)}",
            "input": {},
            "steps": [
                {
                    "step": 1,
                    "type": "tool_call",
                    "tool": "save_products",
                    "input": {"rows": rows},
                    "output": len(rows),
                }
            ],
            "output": len(rows),
        }
    )


def call_agent(changed: Any) -> Callable[[dict[str, Any]], Any]:
    def agent(task: dict[str, Any]) -> Any:
        return save_products(rows=changed)

    return agent


def render(diffs: list[Any]) -> str:
    return "\n".join(line for d in diffs for line in render_difference(d))


def legs_for(golden: Any, actual: Any) -> dict[str, Callable[[], Any]]:
    from deepdiff import DeepDiff  # type: ignore[import-untyped, unused-ignore]

    session = judge_golden(golden)
    agent = judge_agent(actual)
    settings = RunSettings()

    def run_judge() -> str:
        run = execute(session, agent, settings=settings)
        verdict = judge(session, run)
        assert not verdict.passed and run.agent_traceback is None, run.agent_traceback
        return render_verdict(verdict, total_steps=1)

    sent_session = call_golden(golden)
    sender = call_agent(actual)

    def run_call() -> str:
        run = execute(sent_session, sender, settings=settings)
        verdict = judge(sent_session, run)
        assert not verdict.passed and verdict.findings[0].step == 1, verdict.findings
        return render_verdict(verdict, total_steps=1)

    found = differences(golden, actual)

    def without_gc() -> list[Any]:
        gc.disable()
        try:
            return differences(golden, actual)
        finally:
            gc.enable()

    return {
        "differences": lambda: differences(golden, actual),
        GC_OFF: without_gc,
        "render": lambda: render(found),
        "judge path": run_judge,
        "diverging call": run_call,
        "deepdiff": lambda: DeepDiff(golden, actual),
    }


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - t0, time.process_time() - c0


def output_size(name: str, value: Any) -> tuple[int, int]:
    """(lines, bytes) of what a leg shows a user."""
    if name in ("differences", GC_OFF):
        text = render(value)
    elif name == "deepdiff":
        text = value.pretty()
        return len(text.splitlines()), len(str(value).encode())
    else:
        text = value
    return len(text.splitlines()), len(text.encode())


def profile(run: Callable[[], Any], label: str) -> str:
    return profile_report(profiled(run), f"cProfile of the judge path, {label}", top=25, own=15)


# ------------------------------------------------------------------------------ report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k/2k elements, one rep")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    if not 1 <= reps <= 50:
        parser.error("1 <= --reps <= 50")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_diff.py", *map(shlex.quote, given)])
    sizes = (1000, 2000) if args.quick else (10_000, 20_000)
    started = time.perf_counter()

    cases: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
        "6 changes": (lambda rows: rows, changed_few),
        "every record changed": (lambda rows: rows, changed_all),
        WRAPPED: (wrapped, changed_few),
    }
    med: dict[tuple[str, int, str], float] = {}
    cpu: dict[tuple[str, int, str], float] = {}
    best: dict[tuple[str, int, str], float] = {}
    size: dict[tuple[str, int, str], tuple[int, int]] = {}
    found: dict[tuple[str, int], int] = {}
    sample_text: dict[str, str] = {}
    prof_text = ""
    for case, (wrap, change) in cases.items():
        legs: dict[tuple[int, str], Callable[[], Any]] = {}
        for n in sizes:
            golden = records(n)
            for name, run in legs_for(wrap(golden), wrap(change(golden))).items():
                if name != "deepdiff" or case == "6 changes":  # deepdiff lists every change
                    legs[(n, name)] = run
        samples: dict[tuple[int, str], list[tuple[float, float]]] = {key: [] for key in legs}
        for key, run in legs.items():  # warm-up; deepdiff's run counts as a sample
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            value = run()
            if key[1] in SLOW:
                samples[key].append((time.perf_counter() - t0, time.process_time() - c0))
            n, name = key
            if name == "differences":
                found[(case, n)] = len(value)
            size[(case, n, name)] = output_size(name, value)
            if name == "judge path":
                sample_text[case] = value
        order = list(legs)  # both sizes in every repetition, so load changes hit both
        for rep in range(reps):
            for key in order if rep % 2 == 0 else order[::-1]:
                if key[1] not in SLOW or len(samples[key]) < SLOW_SAMPLES:
                    samples[key].append(timed(legs[key]))
        for (n, name), s in samples.items():
            med[(case, n, name)] = statistics.median(w for w, _ in s)
            cpu[(case, n, name)] = statistics.median(c for _, c in s)
            best[(case, n, name)] = min(w for w, _ in s)
        for n in sizes:
            line = ", ".join(
                f"{name} {med[(case, n, name)] * 1e3:.0f} ms" for k, name in legs if k == n
            )
            print(f"{case}, {n}: {line}  [{time.perf_counter() - started:.0f}s]", flush=True)
        if case == "6 changes":
            prof_text = profile(legs[(sizes[-1], "judge path")], f"{sizes[-1]} elements, {case}")

    small, large = sizes
    names = ["differences", GC_OFF, "render", "judge path", "diverging call", "deepdiff"]
    rows = [
        "| case | leg | "
        + " | ".join(f"{n // 1000}k ms" for n in sizes)
        + f" | {large // 1000}k/{small // 1000}k | same, CPU time | "
        + " | ".join(f"{n // 1000}k output lines / bytes" for n in sizes)
        + " |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        for name in names:
            if (case, small, name) not in med:
                continue
            a, b = med[(case, small, name)], med[(case, large, name)]
            ca, cb = cpu[(case, small, name)], cpu[(case, large, name)]
            sizes_text = " | ".join(
                "{} / {}".format(*size[(case, n, name)]) for n in (small, large)
            )
            rows.append(
                f"| {case} | {name} | {a * 1e3:.1f} | {b * 1e3:.1f} | {b / a:.2f} | "
                f"{cb / ca if ca else 0:.2f} | {sizes_text} |"
            )
    verdict: list[str] = []
    for case, label in (("6 changes", "6 changes"), (WRAPPED, "6 changes in a small dict")):
        for name in ("differences", "judge path", "diverging call"):
            key_a, key_b = (case, small, name), (case, large, name)
            r = med[key_b] / med[key_a]
            bare = ""
            if case == WRAPPED:
                vs = cpu[key_b] / cpu[("6 changes", large, name)]
                bare = f"; {vs:.2f}x the bare list's CPU time at {large // 1000}k"
            verdict.append(
                f"- **{name}, {label}: {large // 1000}k/{small // 1000}k = {r:.2f}** (bar ≤ "
                f"2.5): {'holds' if r <= 2.5 else 'MISSED'} (best-of "
                f"{best[key_b] / best[key_a]:.2f}; CPU time {cpu[key_b] / cpu[key_a]:.2f}{bare})."
            )
    for case in cases:
        (_, b_small), (_, b_large) = (size[(case, n, "judge path")] for n in sizes)
        bounded = b_large <= max(b_small * 1.1, b_small + 64)
        verdict.append(
            f"- **output, {case}: {b_small} B at {small // 1000}k, {b_large} B at "
            f"{large // 1000}k** (bar: bounded): {'holds' if bounded else 'MISSED'} "
            f"({found[(case, small)]} / {found[(case, large)]} differences found by "
            "`differences`, limit 200; a failing test shows at most 20 per finding)."
        )
    off = med[("6 changes", large, GC_OFF)] / med[("6 changes", small, GC_OFF)]
    on = med[("6 changes", large, "differences")] / med[("6 changes", small, "differences")]
    verdict.append(
        f"- `differences` with the cyclic garbage collector off: {large // 1000}k/"
        f"{small // 1000}k = {off:.2f} (on: {on:.2f})."
        + (
            " Each call deep-copies both sides first (`to_jsonable`, a JSON round trip); the "
            "collector's passes over those fresh containers are what grows faster than the "
            "data."
            if on - off >= 0.2
            else ""
        )
    )
    dd = med[("6 changes", large, "deepdiff")] / med[("6 changes", small, "deepdiff")]
    ours = med[("6 changes", large, "differences")]
    verdict.append(
        f"- deepdiff (reference) {large // 1000}k/{small // 1000}k = {dd:.2f}; at "
        f"{large // 1000}k opswald's `differences` takes "
        f"{ours / med[('6 changes', large, 'deepdiff')]:.3f}x deepdiff's time."
    )
    verdict.append(f"- script runtime {time.perf_counter() - started:.0f}s.")
    print("\n".join([*rows, "", *verdict]))
    shown = sample_text["6 changes"]
    print("\nwhat a failing test shows (6 changes):\n" + shown)
    if args.no_write:
        return 0
    out = BENCH / "profiles" / "diff.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(prof_text)
    m = machine(("pytest-opswald", "deepdiff", "pydantic", "pydantic-core"))
    section = [
        *header(SECTION, command, m),
        f"Workload: lists of {small} and {large} records as a search tool returns them (id, "
        "sku, name, nested price and stock, a tags list, a flag; ~190 B of JSON each). Case "
        "*6 changes*: a copy changed at fixed fractions of the list (a nested number, a "
        "string, a list element, an added key, a removed key, an int turned string). Case "
        "*every record changed*: each record's price differs. Case *6 changes, in "
        '{"count", "rows"}*: the first case with the list inside a small dict, as a tool or '
        "an agent often returns it (no deepdiff leg). Each leg warmed up once, then "
        f"{reps} repetitions in one process, both sizes and all legs interleaved in each "
        "(order alternated, `gc.collect()` before each; deepdiff, seconds per call, "
        f"{SLOW_SAMPLES} samples counting its first run); medians of wall time, and of this "
        "process's CPU time (`time.process_time`, less sensitive to a busy machine).",
        "",
        "- differences: `opswald.diff.differences(golden, actual)` (default limit 200); "
        "*gc off*: the same call inside `gc.disable()` / `gc.enable()`.",
        "- render: `render_difference` of each of those differences, joined (output size of "
        "both rows = that text).",
        "- judge path: a golden whose `tool_call` step returns the list and whose `output` is "
        "the list, replayed with `execute(golden, agent, settings=RunSettings())` (policy "
        "replay) by an agent that calls the tool and returns the changed list, then "
        "`judge` and `render_verdict` (the text a failing test prints; output size = it).",
        "- diverging call: a golden whose `tool_call` step sent the list as its arguments, "
        "replayed by an agent that sends the changed list: the replay refuses the call and "
        "names how it differs from the recorded one, then `judge` and `render_verdict`.",
        "- deepdiff (reference): `deepdiff.DeepDiff(golden, actual)` with its defaults; output "
        "size = lines of `.pretty()` / bytes of `str()`. Not run on the every-record case.",
        "",
        *rows,
        "",
        *verdict,
        "",
        "What a failing test shows, 6 changes:",
        "",
        "```",
        shown,
        "```",
        "",
        "cProfile of the judge path at the largest size: `bench/profiles/diff.txt`.",
    ]
    write_results(SECTION, "\n".join(section))
    print(f"\nwrote {BENCH / 'RESULTS.md'} and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
