"""Engine overhead: a 1,000-step `@opswald.llm`/`@opswald.tool` session replayed by the
engine, versus the same agent code fed by a hand-written dict stub.

DESIGN §6: engine overhead <= 1.5x the dict stub; report µs per step too.

Workload: one plain-Python agent (no SDK, no HTTP) makes STEPS/2 model calls alternating
with STEPS/2 tool calls. Per step it does a fixed, small amount of work: builds a message
list of fixed length (system, task, last reply, last tool result) and dumps a ~1 KB JSON
document (which becomes the next tool message's content). The session is recorded once
with `execute(Session(name=..., input=...), agent, RunSettings(policy="live",
block_side_effects=False))`; `run.actual` is the golden. Then, interleaved, each leg
warmed up once:

  stub     the same agent code with the decorated functions swapped for plain functions
           that return the recorded answers, in order, from a list
  opswald  `execute(golden, agent, settings=RunSettings())` (policy replay, offline on)

Run: python bench/bench_engine.py [--steps 1000] [--reps 5] [--no-write]
Writes bench/RESULTS.md (section "Engine overhead") and bench/profiles/engine.txt.
"""

from __future__ import annotations

import argparse
import gc
import json
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
import opswald.engine.context as context_module  # noqa: E402
from opswald.engine.run import RunSettings, execute, judge  # noqa: E402
from opswald.jsonable import plain_copy  # noqa: E402
from opswald.session import Session  # noqa: E402

SECTION = "Engine overhead"
MODEL = "bench-model-1"
SYSTEM = "You are a benchmark agent. Answer with one tool call per turn."


# ------------------------------------------------------------------ the "real" backends


def real_chat(model: str, messages: list[dict[str, Any]], temperature: float = 0.0) -> dict:
    """A deterministic stand-in for a model client: a chat-style response dict."""
    turn = len(messages[-1]["content"]) % 97 + sum(len(m["content"]) for m in messages) % 13
    return {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": f"turn {turn}: looking it up",
                    "tool_calls": [
                        {
                            "id": f"call_{turn}",
                            "type": "function",
                            "function": {"name": "lookup", "arguments": '{"key": "k"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 350, "completion_tokens": 20, "total_tokens": 370},
    }


def real_lookup(key: str, index: int) -> dict[str, Any]:
    """A deterministic tool: a small record."""
    return {"key": key, "index": index, "rows": [{"id": index * 10 + i, "v": i} for i in range(5)]}


def document(i: int, kind: str, payload: Any, reply: Any) -> dict[str, Any]:
    """The ~1 KB document the agent dumps each step."""
    return {
        "step": i,
        "kind": kind,
        "payload": payload,
        "reply": reply,
        "notes": [f"note {i}-{j}: some filler text for the payload" for j in range(16)],
    }


def make_agent(chat: Callable[..., Any], lookup: Callable[..., Any], steps: int) -> Callable:
    """One agent code for every leg; only the two backends differ."""

    def agent(task: dict[str, Any]) -> dict[str, Any]:
        last_reply = {"role": "assistant", "content": ""}
        last_tool = {"role": "tool", "content": "{}"}
        checksum = 0
        for i in range(steps // 2):
            # model step: a message list of fixed length, ~1 KB of JSON (the tool message)
            messages = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": task["question"]},
                last_reply,
                last_tool,
            ]
            response = chat(model=MODEL, messages=messages, temperature=0.0)
            message = response["choices"][0]["message"]
            last_reply = {"role": "assistant", "content": message["content"]}
            trace = json.dumps(document(i, "llm", messages[-1]["content"][:40], message))
            # tool step: the same fixed work around the tool call
            result = lookup(key=f"item-{i % 50}", index=i)
            last_tool = {"role": "tool", "content": json.dumps(document(i, "tool", result, None))}
            checksum += len(trace) + len(last_tool["content"])
        return {"steps": steps, "checksum": checksum}

    return agent


# instrumented backends (module level, as users write them)
chat_op = opswald.llm(real_chat)
lookup_op = opswald.tool(name="lookup")(real_lookup)


def record(steps: int) -> tuple[Session, list[Any], list[Any], Any]:
    """The golden (a live run), plus the answers the stub serves (same values, in order)."""
    chats: list[Any] = []
    lookups: list[Any] = []

    def rec_chat(**kw: Any) -> Any:
        chats.append(real_chat(**kw))
        return chats[-1]

    def rec_lookup(**kw: Any) -> Any:
        lookups.append(real_lookup(**kw))
        return lookups[-1]

    task = {"question": "Summarise the items, one lookup per turn."}
    plain_output = make_agent(rec_chat, rec_lookup, steps)(task)
    run = execute(
        Session(name="engine-bench", input=task),
        make_agent(chat_op, lookup_op, steps),
        settings=RunSettings(policy="live", block_side_effects=False),
    )
    golden = run.actual
    assert golden.error is None, golden.error
    assert len(golden.step_list) == steps, len(golden.step_list)
    assert golden.output == plain_output, (golden.output, plain_output)
    return golden, chats, lookups, plain_output


def leg_stub(steps: int, chats: list[Any], lookups: list[Any], want: Any) -> Callable[[], None]:
    task = {"question": "Summarise the items, one lookup per turn."}

    def run() -> None:
        chat_answers = iter(chats)
        lookup_answers = iter(lookups)

        def chat(model: str, messages: list[dict[str, Any]], temperature: float = 0.0) -> Any:
            return next(chat_answers)

        def lookup(key: str, index: int) -> Any:
            return next(lookup_answers)

        out = make_agent(chat, lookup, steps)(task)
        assert out == want

    return run


def request_key(model: str, messages: list[dict[str, Any]], temperature: float) -> str:
    """How a hand-written dict stub finds its answer: by the request sent."""
    return json.dumps([model, messages, temperature])


def leg_stub_keyed(
    steps: int, chats: list[Any], lookups: list[Any], want: Any
) -> Callable[[], None]:
    """Info: a dict stub keyed by the request, so it answers only the requests it was
    written for, as replay does (a list stub answers anything in order)."""
    task = {"question": "Summarise the items, one lookup per turn."}
    by_request: dict[str, Any] = {}
    by_args: dict[tuple[str, int], Any] = {}
    answers = iter(chats)
    tool_answers = iter(lookups)

    def keep_chat(model: str, messages: list[dict[str, Any]], temperature: float = 0.0) -> Any:
        by_request[request_key(model, messages, temperature)] = answer = next(answers)
        return answer

    def keep_lookup(key: str, index: int) -> Any:
        by_args[(key, index)] = answer = next(tool_answers)
        return answer

    make_agent(keep_chat, keep_lookup, steps)(task)  # the stub's dicts, written once
    assert len(by_request) == len(chats) and len(by_args) == len(lookups)

    def run() -> None:
        def chat(model: str, messages: list[dict[str, Any]], temperature: float = 0.0) -> Any:
            return by_request[request_key(model, messages, temperature)]

        def lookup(key: str, index: int) -> Any:
            return by_args[(key, index)]

        out = make_agent(chat, lookup, steps)(task)
        assert out == want

    return run


def leg_stub_copying(
    steps: int, chats: list[Any], lookups: list[Any], want: Any
) -> Callable[[], None]:
    """Info: the stub handing out copies of its answers, as replay must (an agent may
    change what it is given; the golden must not change with it)."""
    task = {"question": "Summarise the items, one lookup per turn."}

    def run() -> None:
        chat_answers = iter(chats)
        lookup_answers = iter(lookups)

        def chat(model: str, messages: list[dict[str, Any]], temperature: float = 0.0) -> Any:
            return plain_copy(next(chat_answers))

        def lookup(key: str, index: int) -> Any:
            return plain_copy(next(lookup_answers))

        out = make_agent(chat, lookup, steps)(task)
        assert out == want

    return run


def leg_opswald_uncopied(golden: Session, steps: int, want: Any) -> Callable[[], None]:
    """Info: replay with the copy of each served answer switched off (unsafe: shows what
    the copy costs)."""
    inner = leg_opswald(golden, steps, want)

    def run() -> None:
        saved = context_module.plain_copy
        context_module.plain_copy = lambda value: value
        try:
            inner()
        finally:
            context_module.plain_copy = saved

    return run


def leg_opswald(golden: Session, steps: int, want: Any) -> Callable[[], None]:
    agent = make_agent(chat_op, lookup_op, steps)
    settings = RunSettings()

    def run() -> None:
        result = execute(golden, agent, settings=settings)
        assert result.actual.output == want and result.agent_traceback is None

    return run


def timed(run: Callable[[], None]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def profile(run: Callable[[], None]) -> str:
    return profile_report(profiled(run), "cProfile of the opswald leg", ours=30, own=20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 2 or args.steps % 2 or not 1 <= args.reps <= 50:
        parser.error("need an even --steps >= 2 and 1 <= --reps <= 50")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_engine.py", *map(shlex.quote, given)])

    t0 = time.perf_counter()
    golden, chats, lookups, want = record(args.steps)
    record_s = time.perf_counter() - t0
    # judge once: the replay really reproduces the golden
    verdict = judge(
        golden, execute(golden, make_agent(chat_op, lookup_op, args.steps), settings=RunSettings())
    )
    assert verdict.passed, verdict.differences
    doc_bytes = (
        len(json.dumps(document(0, "tool", real_lookup("item-0", 0), None)))
        + len(json.dumps(document(0, "llm", "x" * 40, chats[0]["choices"][0]["message"])))
    ) // 2
    legs = {
        "stub": leg_stub(args.steps, chats, lookups, want),
        "opswald": leg_opswald(golden, args.steps, want),
        "stub, answers copied (info)": leg_stub_copying(args.steps, chats, lookups, want),
        "opswald, answers not copied (info, unsafe)": leg_opswald_uncopied(
            golden, args.steps, want
        ),
        "dict stub keyed by the request (info)": leg_stub_keyed(args.steps, chats, lookups, want),
    }
    for run in legs.values():  # warm-up
        run()
    samples: dict[str, list[float]] = {name: [] for name in legs}
    names = list(legs)
    for rep in range(args.reps):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            samples[name].append(timed(legs[name]))
    med = {n: statistics.median(s) for n, s in samples.items()}
    ratio = med["opswald"] / med["stub"]
    copying, uncopied, keyed = names[2], names[3], names[4]
    per_step = {n: med[n] / args.steps * 1e6 for n in legs}
    over = per_step["opswald"] - per_step["stub"]
    rows = [
        "| leg | median ms | best ms | worst ms | µs/step | x stub |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        s = samples[n]
        rows.append(
            f"| {n} | {med[n] * 1e3:.1f} | {min(s) * 1e3:.1f} | {max(s) * 1e3:.1f} | "
            f"{per_step[n]:.1f} | {med[n] / med['stub']:.2f} |"
        )
    held = ratio <= 1.5
    verdict_lines = [
        f"- **opswald / stub = {ratio:.2f}** (bar ≤ 1.5): {'holds' if held else 'MISSED'} "
        f"(best-of {min(samples['opswald']) / min(samples['stub']):.2f}).",
        f"- opswald replay costs {per_step['opswald']:.1f} µs per step, "
        f"{over:.1f} µs/step over the stub's {per_step['stub']:.1f} µs/step.",
        f"- replay hands the agent a copy of each recorded answer (`plain_copy`, marshal): "
        f"{per_step['opswald'] - per_step[uncopied]:.1f} µs/step of opswald's time; "
        f"against a stub that copies its answers too, opswald is "
        f"{med['opswald'] / med[copying]:.2f}x.",
        f"- against a dict stub that finds each answer by the request sent (so, like replay, "
        f"it answers only the calls it was written for; key: `json.dumps` of model, messages "
        f"and temperature, or the tool's arguments), opswald is "
        f"{med['opswald'] / med[keyed]:.2f}x.",
        f"- recording the golden (live run, {args.steps} steps): {record_s * 1e3:.0f} ms "
        f"(includes the plain run that captures the stub's answers).",
    ]
    print("\n".join([*rows, "", *verdict_lines]))

    prof_text = profile(legs["opswald"])
    if args.no_write:
        print(prof_text[:4000])
        return 0
    out = BENCH / "profiles" / "engine.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(prof_text)
    m = machine(("pytest-opswald", "pydantic", "pydantic-core", "PyYAML", "pytest"))
    section = [
        *header(SECTION, command, m),
        f"Workload: one plain-Python agent, {args.steps} steps = {args.steps // 2} "
        f"`@opswald.llm` calls alternating with {args.steps // 2} `@opswald.tool` calls. Per "
        f"step (model or tool) the agent builds dicts of a fixed size and dumps a ~{doc_bytes} B "
        "JSON document; model steps send a message list of fixed length (system, task, last "
        "reply, last tool message = the tool step's document), so every model request "
        "carries ~1.2 KB. The golden is recorded once with "
        '`execute(Session(name=..., input=...), agent, settings=RunSettings(policy="live", '
        "block_side_effects=False))` and `run.actual` kept in memory (a `judge` of one replay "
        f"against it passes). Each leg warmed up once, then {args.reps} repetitions "
        "interleaved in one process (order alternated, `gc.collect()` before each); ratios "
        "use medians.",
        "",
        "- stub: the same agent code with the decorated functions swapped for plain functions "
        "returning the recorded answers, in order, from lists.",
        "- opswald: `execute(golden, agent, settings=RunSettings())` — policy replay, offline "
        "guard on; the agent's output asserted equal to the stub's. `judge` not timed.",
        "- info rows: the stub handing out `plain_copy` copies of its answers (what replay "
        "must do: an agent may change what it is given, and the golden must not change with "
        "it); replay with that copy switched off (unsafe; shows the copy's cost); and a dict "
        "stub that looks each answer up by the request sent (`json.dumps([model, messages, "
        "temperature])`, or the tool's arguments), so that, like replay and unlike the list "
        "stub, it answers only the calls it was written for.",
        "",
        *rows,
        "",
        *verdict_lines,
        "",
        "cProfile of the opswald leg (top 15 cumulative, then src/opswald's top 30): "
        "`bench/profiles/engine.txt`.",
    ]
    write_results(SECTION, "\n".join(section))
    print(f"\nwrote {BENCH / 'RESULTS.md'} and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
