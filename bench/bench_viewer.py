"""Replay viewer: first render of big pages in headless Chromium, DOM size, file size.

DESIGN §6 / issue 6: a 5,000-step session and a 200-golden report stay usable: a bounded
number of DOM nodes (virtualised lists; the browser tests assert < 1,500 elements), the
first-render time measured in headless Chromium, the file size reported.

Workloads (built in memory with `Session.model_validate`, then `build_data` + `render`):

  steps5000   one golden of 5,000 steps: per 10 steps a user input, 3 model calls (OpenAI
              style request of 3 messages and a tool definition, a tool call in the answer,
              usage, cost, duration, timestamp), 5 tool calls (arguments, a 3-hit result),
              1 state snapshot; a note every 500 steps
  goldens200  200 goldens of 20 steps each; every 4th one failed, with an actual session
              whose step 12 passes another argument (findings from the golden-vs-actual
              diff, as `opswald html --actual-dir` builds them)

Measured, median of --reps page loads (a fresh page each, interleaved): `first render` =
`performance.now()` when the viewer has drawn the index, the timelines, the step list and
the inspector (it sets `window.__opswaldReady`), i.e. navigation start to usable page,
HTML parsing and `JSON.parse` of the data included; DOM elements after load and after use
(End, the step list scrolled to its middle, a type filter, up to 200 steps forward); the
time for one step of keyboard navigation (ArrowRight key events dispatched in the page,
each re-rendering the inspector, the timeline and the list, until the last step); JS heap
after load. Python side: `build_data` and `render` times, the file size (and gzipped, for
CI artifacts).

Browser: Debian's /usr/bin/chromium through the `playwright` package (never `playwright
install`), headless, `--no-sandbox --disable-gpu`, pages opened from `file://`; a request
other than the page itself fails the run.

Run: python bench/bench_viewer.py [--reps 5] [--steps 5000] [--goldens 200] [--no-write]
Writes bench/RESULTS.md (section "Replay viewer").
"""

from __future__ import annotations

import argparse
import gzip
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _common import header, machine, write_results  # noqa: E402

from opswald.report.html import (  # noqa: E402
    ViewEntry,
    build_data,
    findings_from_diff,
    render,
)
from opswald.session import Session  # noqa: E402

SECTION = "Replay viewer"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NODE_BOUND = 1500
VIEWPORT = {"width": 1400, "height": 900}


def llm_step(n: int) -> dict[str, Any]:
    return {
        "step": n,
        "type": "llm_call",
        "provider": "openai",
        "api": "openai.chat",
        "model": "gpt-4o-mini",
        "timestamp": f"2026-03-17T14:{(n // 60) % 60:02d}:{n % 60:02d}.000Z",
        "duration_ms": 300.0 + (n * 37) % 900,
        "input": {
            "messages": [
                {"role": "system", "content": "You are a research agent. Use the tools."},
                {"role": "user", "content": f"Find sources for claim {n}"},
                {"role": "tool", "tool_call_id": f"c{n - 1}", "content": f"3 hits for {n - 1}"},
            ],
            "tools": [{"type": "function", "function": {"name": "search"}}],
            "params": {"temperature": 0},
        },
        "output": {
            "tool_calls": [{"id": f"c{n}", "name": "search", "arguments": {"q": f"claim {n}"}}],
            "finish_reason": "tool_calls",
        },
        "usage": {"input_tokens": 310 + n % 50, "output_tokens": 24},
        "cost": 0.00012,
    }


def tool_step(n: int, query: str) -> dict[str, Any]:
    return {
        "step": n,
        "type": "tool_call",
        "tool": "search",
        "call_id": f"c{n - 1}",
        "input": {"q": query},
        "output": {
            "hits": [{"id": f"doc-{n}-{j}", "title": f"Source {j} on {query}"} for j in range(3)]
        },
        "duration_ms": 15.0 + n % 90,
    }


def session(name: str, n: int, *, changed_at: int | None = None) -> Session:
    steps: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        r = i % 10
        if r == 1:
            steps.append({"step": i, "type": "user_input", "content": f"next question {i}"})
        elif r in (2, 5, 8):
            steps.append(llm_step(i))
        elif r == 0:
            steps.append({"step": i, "type": "state", "memory": {"turn": i // 10, "open": r}})
        else:
            query = f"claim {i - 1}" + (" (changed)" if i == changed_at else "")
            steps.append(tool_step(i, query))
    notes = [{"step": i, "text": f"checkpoint {i}"} for i in range(500, n + 1, 500)]
    return Session.model_validate(
        {"name": name, "input": {"task": name}, "steps": steps, "output": "done", "notes": notes}
    )


def workloads(steps: int, goldens: int) -> dict[str, list[ViewEntry]]:
    many = []
    for i in range(goldens):
        golden = session(f"golden_{i:03d}", 20)
        if i % 4:
            many.append(ViewEntry(golden=golden, status="passed"))
            continue
        actual = session(f"golden_{i:03d}", 20, changed_at=13)
        many.append(
            ViewEntry(
                golden=golden,
                actual=actual,
                status="failed",
                findings=findings_from_diff(golden, actual),
            )
        )
    return {
        f"steps{steps}": [ViewEntry(golden=session("long_loop", steps))],
        f"goldens{goldens}": many,
    }


def build(entries: list[ViewEntry], folder: Path, name: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = build_data(entries)
    t1 = time.perf_counter()
    page = render(data)
    t2 = time.perf_counter()
    path = folder / f"{name}.html"
    raw = page.encode("utf-8")
    path.write_bytes(raw)
    return {
        "path": path,
        "build_s": t1 - t0,
        "render_s": t2 - t1,
        "bytes": len(raw),
        "gzip": len(gzip.compress(raw, 6)),
    }


LOAD_FACTS = """() => ({
  ready: window.__opswaldReady,
  nodes: document.getElementsByTagName('*').length,
  heap: performance.memory ? performance.memory.usedJSHeapSize : null,
})"""

USE = """() => {
  const key = (k) => document.dispatchEvent(new KeyboardEvent('keydown', {key: k, bubbles: true}));
  key('End');
  const list = document.getElementById('steps');
  list.scrollTop = list.scrollHeight / 2;
  list.dispatchEvent(new Event('scroll'));
  const box = document.querySelector("#type-filter input[data-cat='state']");
  box.click();
  key('Home');
  const where = () => document.getElementById('position').textContent;
  let moves = 0;
  const t0 = performance.now();
  for (let i = 0; i < 200; i++) {
    const before = where();
    key('ArrowRight');
    if (where() === before) break;
    moves++;
  }
  const per = (performance.now() - t0) / Math.max(moves, 1);
  box.click();
  return {per_step_ms: per, nodes: document.getElementsByTagName('*').length,
          position: document.getElementById('position').textContent};
}"""


def measure(browser: Any, path: Path) -> dict[str, Any]:
    page = browser.new_page(viewport=VIEWPORT)
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("html[data-ready='1']", timeout=120_000)
        facts = page.evaluate(LOAD_FACTS)
        used = page.evaluate(USE)
    finally:
        page.close()
    if requests != [path.as_uri()] or errors:
        raise SystemExit(f"{path.name}: requests {requests}, errors {errors}")
    return {**facts, **{f"use_{k}": v for k, v in used.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--goldens", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.reps <= 20 or not 10 <= args.steps <= 50_000 or not 1 <= args.goldens <= 2000:
        parser.error("reps 1..20, steps 10..50000, goldens 1..2000")
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(["python bench/bench_viewer.py", *map(shlex.quote, given)])
    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opswald-viewer-") as tmp:
        folder = Path(tmp)
        pages = {
            name: build(entries, folder, name)
            for name, entries in workloads(args.steps, args.goldens).items()
        }
        for name, info in pages.items():
            print(
                f"{name}: build_data {info['build_s']:.2f}s, render {info['render_s']:.3f}s, "
                f"{info['bytes'] / 1024:,.0f} KiB ({info['gzip'] / 1024:,.0f} KiB gzipped)",
                flush=True,
            )
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in pages}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            version = browser.version
            try:
                for info in pages.values():  # warm-up: disk cache, compiled code
                    measure(browser, info["path"])
                for rep in range(args.reps):
                    order = list(pages) if rep % 2 == 0 else list(pages)[::-1]
                    for name in order:
                        samples[name].append(measure(browser, pages[name]["path"]))
            finally:
                browser.close()

    def med(name: str, key: str) -> float | None:
        values = [s[key] for s in samples[name] if s[key] is not None]
        return float(statistics.median(values)) if values else None

    rows = [
        "| page | steps shown | file KiB | gzip KiB | build_data s | render s | first render ms "
        "(median / best / worst) | DOM elements at load / after use | ms per step (→) | "
        "JS heap MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    verdict: list[str] = []
    for name, info in pages.items():
        ready = [s["ready"] for s in samples[name]]
        nodes = max(s["nodes"] for s in samples[name])
        used = max(s["use_nodes"] for s in samples[name])
        heap = med(name, "heap")
        total = args.steps if name.startswith("steps") else 20 * args.goldens
        rows.append(
            f"| {name} | {total:,} | {info['bytes'] / 1024:,.0f} | {info['gzip'] / 1024:,.0f} | "
            f"{info['build_s']:.2f} | {info['render_s']:.3f} | {statistics.median(ready):.0f} / "
            f"{min(ready):.0f} / {max(ready):.0f} | {nodes} / {used} | "
            f"{med(name, 'use_per_step_ms') or 0:.2f} | "
            f"{'—' if heap is None else f'{heap / 1024 / 1024:.0f}'} |"
        )
        bound = "holds" if max(nodes, used) < NODE_BOUND else "MISSED"
        verdict.append(
            f"- **{name}: at most {max(nodes, used)} DOM elements** (bound < {NODE_BOUND}, "
            f"the browser tests' assertion): {bound}."
        )
    verdict.append(
        f"- Chromium {version}, headless; script runtime {time.perf_counter() - started:.0f}s."
    )
    print("\n".join([*rows, "", *verdict]))
    if args.no_write:
        return 0
    m = machine(("pytest-opswald", "playwright", "pydantic", "deepdiff"))
    section = [
        *header(SECTION, command, m),
        "Workload: `steps5000` is one golden of "
        f"{args.steps:,} steps (per 10 steps: a user input, 3 OpenAI-style model calls with "
        "a tool call, usage, cost, duration and timestamp, 5 tool calls with a 3-hit result, "
        "a state snapshot; a note every 500 steps); `goldens200` is "
        f"{args.goldens} goldens of 20 steps, every 4th failed with an actual session that "
        "diverges at step 13 (findings from the golden-vs-actual diff, as `opswald html "
        "--actual-dir` builds them). Each page is built with `build_data` + `render`, "
        "written to a temp folder and opened from `file://` in headless Chromium "
        f"(`{CHROMIUM}` through playwright, `--no-sandbox --disable-gpu`), viewport "
        f"{VIEWPORT['width']}x{VIEWPORT['height']}; one warm-up load per page, then "
        f"{args.reps} loads each, interleaved, a fresh page per load. First render = "
        "`performance.now()` when the viewer has drawn everything (navigation start to "
        "usable page: HTML parse, `JSON.parse` of the embedded data, index, timelines, "
        "virtualised step list, inspector). After use = End, the step list scrolled to its "
        "middle, a type filter, then ArrowRight key events dispatched in the page until 200 "
        "steps or the last step (the mean time per step is the ms-per-step column). "
        "Requests other than the page itself: none (checked).",
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
