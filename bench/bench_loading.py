"""Loading: golden files read with `opswald.files.load` (YAML and JSON), versus the floor of
parsing the same files with `yaml.load(..., Loader=yaml.CSafeLoader)` / `json.loads`.

DESIGN §6 sets no bar for loading (issue 9 asks for MB/s against the floor). The safe
loading bar of §6 (aliases, tags, duplicate keys and deep nesting refused, size and depth
capped) is why opswald's YAML path walks the parser's event stream itself instead of
calling `yaml.load`; YAML laid out as opswald writes it is read by a line reader in front
of that (`opswald.fastyaml`), which leaves everything else to the safe parser.

Workload: realistic goldens built with `opswald.session.Session` and written with
`opswald.files.dump`: a user_input step, then turns of an `llm_call` (the whole message
history resent, two tool schemas, params, a reply with a tool call, usage, cost, timing)
and a `tool_call` (arguments, a nested result of records with text, ~1 KB), a state
snapshot every 5 turns, a final answer. Sizes: a corpus of many small files, then single
files of ~100 KB, ~1 MB and ~4 MB, each in YAML and in JSON (the same sessions).

Legs, per file set and format (each file read from disk every time, page cache warm):
  floor      read + decode + `yaml.load(text, Loader=yaml.CSafeLoader)` / `json.loads(text)`
  load_data  `opswald.files.load_data(path)`: opswald's parse (YAML: the line reader for
             these files), no validation
  safe       (info, YAML) read + decode + the safe parser alone (what reads any YAML the
             line reader leaves to it)
  load       `opswald.files.load(path)`: parse + pydantic validation into a `Session`
  validate   (info) `Session.model_validate(data)` alone, on data parsed beforehand
  yaml_rs    (info, YAML, when the `yaml-rs` package is installed: bench/requirements.txt)
             read + decode + `yaml_rs.loads`, a Rust YAML 1.2 parser: what cold collection
             would pay with it, and the checks below of why it cannot simply replace PyYAML

Run: python bench/bench_loading.py [--quick] [--reps N] [--no-write]
Writes bench/RESULTS.md (section "Loading") and bench/profiles/loading.txt (a cProfile of
`opswald.files.load` on the largest YAML file).
"""

from __future__ import annotations

import argparse
import gc
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

try:  # info only: not a dependency of the package
    import yaml_rs
except ImportError:
    yaml_rs = None

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import header, machine, profile_report, profiled, write_results  # noqa: E402

from opswald import fastyaml, files  # noqa: E402
from opswald.session import Session  # noqa: E402

SECTION = "Loading"
SYSTEM = (
    "You are a support agent for an airline. Use the tools to look up bookings and "
    "flights, never guess a fare, and answer in at most three sentences."
)
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name.replace('_', ' ').capitalize()} by its identifier.",
            "parameters": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["id"],
            },
        },
    }
    for name in ("lookup_booking", "search_flights")
]


# ------------------------------------------------------------------------ the goldens


def tool_result(i: int, turn: int) -> dict[str, Any]:
    """A nested tool result of ~1 KB: a few records with text, numbers and a sub-list."""
    return {
        "query": {"id": f"BK-{i:05d}-{turn}", "limit": 4},
        "total": 4,
        "records": [
            {
                "flight": f"AF{100 + (i + turn + r) % 900}",
                "from": "CDG",
                "to": ["OSL", "JFK", "NRT", "GRU"][r],
                "departs": f"2026-03-{1 + (turn + r) % 28:02d}T{8 + r}:15:00Z",
                "fare": {"amount": 120.5 + 13 * r + turn, "currency": "EUR", "class": "Y"},
                "seats": [f"{row}{seat}" for row in (12, 14) for seat in "AC"],
                "note": f"Record {r} of turn {turn}: refundable until 24 hours before departure.",
            }
            for r in range(4)
        ],
    }


def session(i: int, turns: int) -> Session:
    """A golden of `turns` model/tool turns whose model requests resend the whole history."""
    question = f"Customer {i} asks: can I move booking BK-{i:05d} to an earlier flight?"
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
    ]
    steps: list[dict[str, Any]] = [{"step": 1, "type": "user_input", "content": question}]

    def llm_step(reply: dict[str, Any], finish: str) -> dict[str, Any]:
        n = len(steps) + 1
        return {
            "step": n,
            "type": "llm_call",
            "timestamp": f"2026-03-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "duration_ms": 812.5 + n,
            "provider": "openai",
            "api": "openai.chat",
            "model": "gpt-4o-mini",
            "input": {
                "messages": [dict(m) for m in messages],
                "tools": TOOLS,
                "params": {"temperature": 0.2, "max_tokens": 512},
            },
            "output": {**reply, "finish_reason": finish},
            "usage": {"input_tokens": 300 + 180 * n, "output_tokens": 42, "total_tokens": 0},
            "cost": round(0.00015 * (300 + 180 * n) / 1000, 8),
            "cost_source": "prices.yaml",
        }

    for turn in range(turns):
        call_id = f"call_{i}_{turn}"
        name = TOOLS[turn % 2]["function"]["name"]
        args = {"id": f"BK-{i:05d}-{turn}", "limit": 4}
        reply = {
            "content": f"Let me check ({turn}).",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
            ],
        }
        steps.append(llm_step(reply, "tool_calls"))
        result = tool_result(i, turn)
        steps.append(
            {
                "step": len(steps) + 1,
                "type": "tool_call",
                "duration_ms": 35.0 + turn,
                "tool": name,
                "call_id": call_id,
                "input": args,
                "output": result,
            }
        )
        messages.append({"role": "assistant", **reply})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)})
        if turn % 5 == 4:
            steps.append(
                {
                    "step": len(steps) + 1,
                    "type": "state",
                    "memory": {"booking": f"BK-{i:05d}", "turn": turn, "seen": turn + 1},
                    "variables": {"fare_cap": 400, "currency": "EUR"},
                }
            )
    answer = f"Booking BK-{i:05d} can move to AF{100 + i % 900} tomorrow at 08:15 for 120.50 EUR."
    steps.append(llm_step({"content": answer}, "stop"))
    for step in steps:
        if step["type"] == "llm_call":
            usage = step["usage"]
            usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return Session.model_validate(
        {
            "name": f"rebook_{i:05d}",
            "description": "Customer moves a booking to an earlier flight.",
            "tags": ["bench", "support"],
            "agent": "support",
            "metadata": {"recorded_with": "pytest-opswald 0.1.0", "duration_ms": 1234.5},
            "input": {"question": question, "customer": i},
            "steps": steps,
            "output": {"answer": answer},
        }
    )


# file sets: (label, number of files, turns per golden)
FULL_SETS = [("corpus", 500, 1), ("~100 KB", 1, 9), ("~1 MB", 1, 34), ("~4 MB", 1, 72)]
QUICK_SETS = [("corpus", 40, 1), ("~100 KB", 1, 9)]


def write_sets(root: Path, sets: list[tuple[str, int, int]]) -> dict[tuple[str, str], list[Path]]:
    """Dump every set in both formats; (label, fmt) -> the file paths."""
    out: dict[tuple[str, str], list[Path]] = {}
    for label, count, turns in sets:
        folders = {}
        for fmt in ("yaml", "json"):
            folders[fmt] = root / f"{label.strip('~ ').replace(' ', '')}-{fmt}"
            folders[fmt].mkdir()
            out[(label, fmt)] = []
        for i in range(count):
            s = session(i, turns)
            for fmt, folder in folders.items():
                path = folder / f"g{i:05d}.golden.{fmt}"
                files.dump(s, path)
                out[(label, fmt)].append(path)
    return out


# ----------------------------------------------------------------------------- the legs


def floor_yaml(path: Path) -> Any:
    return yaml.load(path.read_bytes().decode("utf-8"), Loader=yaml.CSafeLoader)


def floor_json(path: Path) -> Any:
    return json.loads(path.read_bytes().decode("utf-8"))


def rust_yaml(path: Path) -> Any:
    return rust_yaml_text(path.read_bytes().decode("utf-8"))


def rust_yaml_text(text: str) -> Any:
    assert yaml_rs is not None
    return yaml_rs.loads(text, parse_datetime=False, duplicate_key_policy="error")


# Plain scalars whose meaning may differ between YAML 1.1 (PyYAML, so opswald: goldens
# written by PyYAML quote only what 1.1 would misread) and 1.2 (yaml-rs). Checked here.
SCALARS = (
    "true False null ~ 17 -3 1.5 0x1F .inf 1.0e+5 2026-11-27 "
    "yes no On OFF 017 0o17 0X1F 1:20 12:30 1:20.5 -.5 1e5 1E5 1.0e5 1e+5 _1"
).split()
# Inputs opswald refuses at load (aliases; control characters), and one it must survive.
REFUSED = {"an alias": "a: &x [1]\nb: *x\n", "a control character": 'a: "\x01"\n'}
DEEP_DASHES = 30_000  # `- - - … 1`: nesting 30,000 deep in 60 KB, far under the size cap


def rust_yaml_checks() -> list[str]:
    """What a switch to yaml-rs would change, measured on this machine."""
    assert yaml_rs is not None
    differ = []
    for form in SCALARS:
        text = f"k: {form}\n"
        ours, theirs = files._parse(text, "yaml", 100)["k"], rust_yaml_text(text)["k"]
        if ours != theirs or type(ours) is not type(theirs):
            differ.append(f"`{form}` ({ours!r} vs {theirs!r})")
    accepted = []
    for what, text in REFUSED.items():
        try:
            files._parse(text, "yaml", 100)
        except files.GoldenLoadError:
            try:
                rust_yaml_text(text)
                accepted.append(what)
            except ValueError:
                pass
    probe = (
        "import yaml_rs\n"
        "try:\n"
        f"    yaml_rs.loads('- ' * {DEEP_DASHES} + '1')\n"
        "except ValueError:\n"
        "    pass\n"
    )
    rc = subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode
    crash = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
    try:
        files._parse("- " * DEEP_DASHES + "1", "yaml", files.DEFAULT_MAX_DEPTH)
        ours = "opswald's own parse reads it"
    except files.GoldenLoadError as exc:
        ours = f"opswald's own parse refuses it: {exc}"
    return [
        f"  - of {len(SCALARS)} plain scalars checked, it reads {len(differ)} otherwise than "
        "PyYAML's YAML 1.1 rules, which goldens written by opswald (and by hand) follow: "
        + ", ".join(differ)
        + ";",
        "  - it accepts what opswald refuses at load: " + (", ".join(accepted) or "nothing") + ";",
        f"  - a `- - - … 1` line nested {DEEP_DASHES:,} deep ({2 * DEEP_DASHES // 1000} KB, "
        f"far under opswald's size cap) ends the process that parses it: {crash} ({ours}).",
    ]


def legs_for(paths: list[Path], fmt: str) -> dict[str, Callable[[], None]]:
    floor = floor_yaml if fmt == "yaml" else floor_json
    parsed = [files.load_data(p) for p in paths]

    def run_floor() -> None:
        for p in paths:
            floor(p)

    def run_load_data() -> None:
        for p in paths:
            files.load_data(p)

    def run_load() -> None:
        for p in paths:
            files.load(p)

    def run_validate() -> None:
        for data in parsed:
            Session.model_validate(data)

    def run_safe() -> None:
        for p in paths:
            files._parsed_yaml_data(p.read_bytes().decode("utf-8"), files.DEFAULT_MAX_DEPTH)

    def run_rust_yaml() -> None:
        for p in paths:
            rust_yaml(p)

    legs = {
        "floor": run_floor,
        "load_data": run_load_data,
        "load": run_load,
        "validate": run_validate,
    }
    if fmt == "yaml":
        legs["safe"] = run_safe
    if fmt == "yaml" and yaml_rs is not None:
        legs["yaml_rs"] = run_rust_yaml
    return legs


def timed(run: Callable[[], None]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0


def check_same(paths: list[Path], fmt: str) -> None:
    """opswald's parse gives the floor's data, and `load` round-trips to the same text."""
    floor = floor_yaml if fmt == "yaml" else floor_json
    for p in paths[:3]:
        assert files.load_data(p) == floor(p), p
        if fmt == "yaml":  # the line reader takes them, and reads what the safe parser reads
            text = p.read_text(encoding="utf-8")
            fast = fastyaml.read(
                text, files.DEFAULT_MAX_DEPTH, files._plain_value, files._RESOLVED_FIRST
            )
            assert fast is not None, p
            assert fast == files._parsed_yaml_data(text, files.DEFAULT_MAX_DEPTH), p
        if fmt == "yaml" and yaml_rs is not None:
            assert rust_yaml(p) == floor(p), p
        assert files.dumps(files.load(p), fmt) == p.read_text(), p  # type: ignore[arg-type]


def profile(path: Path) -> str:
    what = f"cProfile of opswald.files.load on one {path.stat().st_size / 1e6:.1f} MB YAML golden"
    return profile_report(profiled(lambda: files.load(path)), what, top=20, own=15)


# ------------------------------------------------------------------------------ report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sets, one rep: smoke run")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    if not 1 <= reps <= 50:
        parser.error("1 <= --reps <= 50")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_loading.py", *map(shlex.quote, given)])
    sets = QUICK_SETS if args.quick else FULL_SETS
    started = time.perf_counter()

    rows = [
        "| files | format | MB | floor MB/s | load_data MB/s | load MB/s | validate MB/s (info) "
        "| load_data / floor | load / floor | safe parser MB/s (info) | yaml-rs MB/s (info) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    summary: list[str] = []
    prof_text = ""
    with tempfile.TemporaryDirectory(prefix="opswald-loading-") as tmp:
        file_sets = write_sets(Path(tmp), sets)
        print(f"wrote the goldens in {time.perf_counter() - started:.1f}s", flush=True)
        totals: dict[str, dict[str, float]] = {"yaml": {}, "json": {}}
        corpus: tuple[int, float, float] | None = None
        for label, count, _ in sets:
            for fmt in ("yaml", "json"):
                paths = file_sets[(label, fmt)]
                check_same(paths, fmt)
                size = sum(p.stat().st_size for p in paths)
                legs = legs_for(paths, fmt)
                for run in legs.values():  # warm-up
                    run()
                samples: dict[str, list[float]] = {name: [] for name in legs}
                names = list(legs)
                for rep in range(reps):
                    for name in names if rep % 2 == 0 else names[::-1]:
                        samples[name].append(timed(legs[name]))
                med = {n: statistics.median(s) for n, s in samples.items()}
                mbs = {n: size / 1e6 / med[n] for n in legs}
                for n in legs:
                    totals[fmt][n] = totals[fmt].get(n, 0.0) + med[n]
                totals[fmt]["bytes"] = totals[fmt].get("bytes", 0.0) + size
                what = f"{count} x {size / count / 1024:.1f} KB" if count > 1 else label
                rows.append(
                    f"| {what} | {fmt.upper()} | {size / 1e6:.2f} | {mbs['floor']:.1f} | "
                    f"{mbs['load_data']:.1f} | {mbs['load']:.1f} | {mbs['validate']:.1f} | "
                    f"{med['load_data'] / med['floor']:.2f} | {med['load'] / med['floor']:.2f} | "
                    + (f"{mbs['safe']:.1f} | " if "safe" in mbs else "— | ")
                    + (f"{mbs['yaml_rs']:.1f} |" if "yaml_rs" in mbs else "— |")
                )
                if count > 1 and "yaml_rs" in med:
                    corpus = (count, med["load_data"], med["yaml_rs"])
                print(rows[-1], flush=True)
        for fmt in ("yaml", "json"):
            t = totals[fmt]
            share = (t["load"] - t["load_data"]) / t["load"]
            summary.append(
                f"- {fmt.upper()}, all sets: `load` {t['bytes'] / 1e6 / t['load']:.1f} MB/s = "
                f"{t['load'] / t['floor']:.2f}x the floor's time "
                f"(`load_data` {t['load_data'] / t['floor']:.2f}x); validation is "
                f"{share:.0%} of `load`."
            )
        ty, tj = totals["yaml"], totals["json"]
        summary.append(
            f"- YAML vs JSON, same sessions: `load` of YAML takes {ty['load'] / tj['load']:.1f}x "
            f"the time of JSON (files {ty['bytes'] / tj['bytes']:.2f}x the bytes); floor "
            f"{ty['floor'] / tj['floor']:.1f}x."
        )
        if corpus is not None:
            n, ours, rust = corpus
            summary.append(
                f"- yaml-rs (info; a Rust YAML 1.2 parser, not a dependency): the corpus's "
                f"YAML files parse in {rust / n * 1e6:.0f} µs each instead of `load_data`'s "
                f"{ours / n * 1e6:.0f} ({ours / rust:.1f}x faster; cold collection parses one "
                "golden per test, see Collection). It does not replace opswald's parse:"
            )
            summary.extend(rust_yaml_checks())
        elif yaml_rs is None:
            summary.append(
                "- yaml-rs (info) not installed: `pip install -r bench/requirements.txt`."
            )
        biggest = file_sets[(sets[-1][0], "yaml")][0]
        prof_text = profile(biggest)
    summary.append(
        "- DESIGN §6 sets no bar for loading: informational. (The safe-loading bar — aliases, "
        "tags, duplicate keys, depth and size refused — is why the safe parser reads events; "
        "the line reader leaves every such text to it.)"
    )
    summary.append(f"- script runtime {time.perf_counter() - started:.0f}s.")
    print("\n".join([*rows, "", *summary]))
    if args.no_write:
        return 0
    out = BENCH / "profiles" / "loading.txt"
    out.parent.mkdir(exist_ok=True)
    out.write_text(prof_text)
    m = machine(("pytest-opswald", "PyYAML", "pydantic", "pydantic-core"))
    libyaml = "with libyaml" if getattr(yaml, "__with_libyaml__", False) else "WITHOUT libyaml"
    section = [
        *header(SECTION, command, m),
        "Workload: goldens built with `opswald.session.Session` and written with "
        "`opswald.files.dump`, the same sessions in YAML and JSON: a `user_input` step, then "
        "turns of an `llm_call` (whole message history resent, two tool schemas, params, a "
        "reply with a tool call, usage, cost, timing) and a `tool_call` (a nested ~1 KB "
        "result of records), a `state` snapshot every 5 turns, a final answer. Sets: "
        + ", ".join(
            f"{label} ({count} file{'s' if count > 1 else ''} of {turns} "
            f"turn{'s' if turns > 1 else ''})"
            for label, count, turns in sets
        )
        + f". Each file read from disk on every load (page cache warm). PyYAML {libyaml}. "
        f"Each leg warmed up once, then {reps} repetitions interleaved (order alternated, "
        "`gc.collect()` before each); medians. MB = 10^6 bytes of file.",
        "",
        "- floor: read + decode + `yaml.load(text, Loader=yaml.CSafeLoader)` / `json.loads(text)`"
        " (parse only; PyYAML's default resolvers, no checks).",
        "- load_data: `opswald.files.load_data(path)` — opswald's parse, no validation: YAML "
        "laid out as opswald writes it by the line reader (`opswald.fastyaml`, asserted to "
        "take these files and to give the safe parser's data), JSON with a duplicate-key hook "
        "and a depth walk. Its data is asserted equal to the floor's.",
        "- safe parser (info, YAML): read + decode + the safe parser alone (from the event "
        "stream with alias/tag/duplicate/depth checks), which reads any YAML the line reader "
        "leaves to it.",
        "- load: `opswald.files.load(path)` — parse + `Session.model_validate`. `dumps` of the "
        "result is asserted to give back the file's text.",
        "- validate (info): `Session.model_validate(data)` alone, on data parsed beforehand.",
        "",
        *rows,
        "",
        *summary,
        "",
        "cProfile of `opswald.files.load` on the largest YAML file: `bench/profiles/loading.txt`.",
    ]
    write_results(SECTION, "\n".join(section))
    print(f"\nwrote {BENCH / 'RESULTS.md'} and {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
