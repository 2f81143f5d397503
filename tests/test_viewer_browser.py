"""The replay viewer in a real browser: headless Chromium (Debian's) through playwright.

One browser for the module, one page per test, pages opened from `file://`. Every page load
records console errors, page errors, CSP violations and requests; `page_of` fails the test
on any of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, Page, sync_playwright

import opswald
from opswald.engine.run import RunSettings, execute, judge
from opswald.engine.state import state_changes
from opswald.hidden import hidden_positions
from opswald.report.html import ViewEntry, finding_data, write_report
from opswald.session import ErrorInfo, Session
from test_viewer_data import FAN_OUT  # a gather in three lanes

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MAX_NODES = 1500  # DOM elements the page may hold, whatever the session size
XSS = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
CLOSE = "</script><script>window.__pwned=1</script>"
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


# --- sessions ----------------------------------------------------------------------------


def llm(n: int, content: Any, output: dict[str, Any], ms: float = 900.0) -> dict[str, Any]:
    return {
        "step": n,
        "type": "llm_call",
        "provider": "openai",
        "api": "openai.chat",
        "model": "gpt-4o-mini",
        "timestamp": f"2026-03-17T14:15:{n:02d}.000Z",
        "duration_ms": ms,
        "input": {
            "messages": [
                {"role": "system", "content": "You are a travel agent."},
                {"role": "user", "content": content},
            ],
            "tools": [{"type": "function", "function": {"name": "get_profile"}}],
        },
        "output": output,
        "usage": {"input_tokens": 120 + n, "output_tokens": 30},
        "cost": 0.0012,
    }


def travel(name: str = "travel") -> Session:
    """Ten steps of every type; step 8 is a snapshot that changes memory."""
    calls = [{"id": "c1", "name": "get_profile", "arguments": {"name": "Alice"}}]
    return Session.model_validate(
        {
            "name": name,
            "input": {"request": "Book AF1 for Alice"},
            "steps": [
                {"step": 1, "type": "user_input", "content": "Book AF1 for Alice"},
                llm(2, "Book AF1 for Alice", {"tool_calls": calls, "finish_reason": "tool_calls"}),
                {
                    "step": 3,
                    "type": "tool_call",
                    "tool": "get_profile",
                    "call_id": "c1",
                    "input": {"name": "Alice"},
                    "output": {"name": "Alice", "tier": "gold"},
                    "duration_ms": 20.0,
                },
                {"step": 4, "type": "state", "memory": {"traveller": "Alice"}},
                llm(5, "search", {"content": "searching", "finish_reason": "stop"}),
                {
                    "step": 6,
                    "type": "tool_call",
                    "tool": "search_flights",
                    "input": {"to": "Rome"},
                    "output": [{"id": "AF1", "price": 149}],
                    "duration_ms": 7000.0,
                },
                {
                    "step": 7,
                    "type": "tool_call",
                    "tool": "book",
                    "input": {"flight": "AF1"},
                    "output": {"booking": "BK-1"},
                    "duration_ms": 50.0,
                },
                {
                    "step": 8,
                    "type": "state",
                    "memory": {"traveller": "Alice", "user_preference": "quarterly reports"},
                    "context": {"report_type": "sales"},
                },
                llm(9, "done?", {"content": "Booked.", "finish_reason": "stop"}),
                {"step": 10, "type": "user_input", "content": "thanks"},
            ],
            "output": {"answer": "Booked."},
            "notes": [{"step": 6, "text": "the flight search is slow on purpose"}],
        }
    )


def failed_entry() -> ViewEntry:
    """A golden recorded from a real agent, replayed after the agent changed an argument."""
    who = ["Alice"]

    @opswald.llm
    def chat(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"content": "ok", "finish_reason": "stop", "cost": 0.001}

    @opswald.tool
    def lookup(passenger: str) -> dict[str, Any]:
        return {"passenger": passenger, "seat": "12A"}

    def agent(input: Any) -> Any:
        chat(model="sim", messages=[{"role": "user", "content": input["q"]}])
        opswald.state(memory={"asked": input["q"]})
        chat(model="sim", messages=[{"role": "user", "content": "seat?"}])
        return lookup(passenger=who[0])

    stub = Session.model_validate({"name": "seat_lookup", "input": {"q": "which seat?"}})
    golden = execute(stub, agent, settings=RunSettings(policy="live")).actual
    who[0] = "Bob"
    run = execute(golden, agent, settings=RunSettings())
    verdict = judge(golden, run)
    findings = [finding_data(f, total_steps=len(golden.step_list)) for f in verdict.findings]
    return ViewEntry(golden=golden, actual=run.actual, status="failed", findings=findings)


def snapshot_entries() -> list[ViewEntry]:
    """A golden recorded from a real agent with a snapshot at step 2, and two runs that
    differ from it by one snapshot and book another passenger: a replay that no longer
    records the snapshot (its pairing from the engine), and a saved actual that records
    one more (no pairing known: paired in order)."""
    who, snapshots = ["Alice"], [1]

    @opswald.llm
    def chat(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"content": "ok", "finish_reason": "stop", "cost": 0.001}

    @opswald.tool
    def lookup(passenger: str) -> dict[str, Any]:
        return {"passenger": passenger, "seat": "12A"}

    def agent(input: Any) -> Any:
        chat(model="sim", messages=[{"role": "user", "content": input["q"]}])
        for i in range(snapshots[0]):
            opswald.state(memory={"asked": input["q"], "snapshot": i})
        chat(model="sim", messages=[{"role": "user", "content": "seat?"}])
        return lookup(passenger=who[0])

    stub = Session.model_validate({"name": "snapshots", "input": {"q": "which seat?"}})
    golden = execute(stub, agent, settings=RunSettings(policy="live")).actual
    who[0], snapshots[0] = "Bob", 0
    run = execute(golden, agent, settings=RunSettings())
    findings = [finding_data(f, total_steps=4) for f in judge(golden, run).findings]
    replayed = ViewEntry(
        golden=golden,
        actual=run.actual,
        status="failed",
        findings=findings,
        matched=run.matched,
    )
    snapshots[0] = 2
    saved = execute(golden.model_copy(update={"name": "saved"}), agent, settings=RunSettings())
    golden_saved = golden.model_copy(update={"name": "saved"})
    return [replayed, ViewEntry(golden=golden_saved, actual=saved.actual, status="failed")]


# what the page must show escaped, and what it must leave as it is (opswald.hidden)
HIDDEN = [
    "abc\u202edef",  # RIGHT-TO-LEFT OVERRIDE: "abcfed" on screen, raw
    "pay\u200bpal",  # zero-width space
    "ad\u200dmin",  # a joiner next to ASCII
    "\u200d",
    " \u200d\U0001f4bb",
    "soft\xadhyphen",
    "\ufeffBOM",
    "\u2066isolated\u2069",
    "hi\U000e0041\U000e0042",  # tag characters: text no one sees
    "a\ufe0f",  # a selector after a Latin letter
    "\u2764\ufe0f\ufe0f",  # a run of selectors
    "a\U000e0100",
]
KEPT = [
    "\U0001f469\u200d\U0001f4bb",  # emoji ZWJ sequence
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, ZWNJ
    "\u2764\ufe0f",
    "1\ufe0f\u20e3",  # keycap
    "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",  # flag
    "\u2764\ufe0f\u200d\U0001f525",  # a joiner after a kept selector
    "\u6f22\U000e0100",  # an ideographic variation selector
    "\u1820\u180b",  # a Mongolian free variation selector
    "plain text",
]


def shown(text: str) -> str:
    """`text` as goldens and the terminal write it: the hidden characters as escapes."""
    chars = list(text)
    for i in hidden_positions(text):
        code = ord(chars[i])
        chars[i] = f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return "".join(chars)


def hidden_session() -> Session:
    return Session.model_validate(
        {
            "name": "rlo\u202eevil",
            "input": {"q": "pay\u200bpal"},
            "steps": [
                {"step": 1, "type": "user_input", "content": "abc\u202edef"},
                {
                    "step": 2,
                    "type": "tool_call",
                    "tool": "lookup",
                    "input": {"name": "pay\u200bpal"},
                    "output": {"emoji": KEPT[0], "plain": "plain text"},
                },
                {"step": 3, "type": "user_input", "content": "plain text"},
            ],
            "output": None,
            "notes": [{"text": text} for text in [*HIDDEN, *KEPT]],
        }
    )


def hostile() -> Session:
    """Script and markup in every place session content reaches the page."""
    return Session.model_validate(
        {
            "name": IMG,
            "description": CLOSE,
            "input": {"q": XSS},
            "steps": [
                {"step": 1, "type": "user_input", "content": CLOSE},
                {
                    "step": 2,
                    "type": "llm_call",
                    "model": IMG,
                    "input": {
                        "messages": [
                            {"role": XSS, "content": XSS},
                            {"role": "user", "content": [{"type": "text", "text": CLOSE}]},
                        ],
                        "tools": [{"name": IMG}],
                    },
                    "output": {
                        "content": IMG,
                        "tool_calls": [{"id": XSS, "name": CLOSE, "arguments": {"x": IMG}}],
                    },
                },
                {
                    "step": 3,
                    "type": "tool_call",
                    "tool": CLOSE,
                    "input": {IMG: XSS},
                    "output": {"html": IMG, "script": CLOSE},
                    "description": XSS,
                },
                {
                    "step": 4,
                    "type": "tool_call",
                    "tool": XSS,
                    "input": {"file": "<b>bold</b>.pdf"},
                    "error": {"type": "ValueError", "message": CLOSE + " <b>bold</b>.pdf"},
                },
                {"step": 5, "type": "state", "memory": {IMG: CLOSE}, "context": XSS},
            ],
            "output": CLOSE,
            "error": {"type": "RuntimeError", "message": IMG},
            "notes": [{"step": 3, "text": XSS}, {"text": CLOSE}],
        }
    )


def big(n: int) -> Session:
    """A long agent loop: user turns, model calls asking for tools, tool results, state."""
    steps: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        r = i % 10
        if r == 1:
            steps.append({"step": i, "type": "user_input", "content": f"question {i}"})
        elif r in (2, 5, 8):
            steps.append(
                llm(
                    i % 60,
                    f"question {i}",
                    {
                        "tool_calls": [{"id": f"c{i}", "name": "search", "arguments": {"q": i}}],
                        "finish_reason": "tool_calls",
                    },
                    ms=300.0 + (i * 37) % 900,
                )
                | {"step": i}
            )
        elif r == 0:
            steps.append({"step": i, "type": "state", "memory": {"turn": i // 10}})
        else:
            steps.append(
                {
                    "step": i,
                    "type": "tool_call",
                    "tool": "search",
                    "input": {"q": i},
                    "output": {"hits": [f"doc-{i}-{j}" for j in range(3)]},
                    "duration_ms": 10.0 + i % 90,
                }
            )
    return Session.model_validate({"name": "long_loop", "input": None, "steps": steps})


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class Opened:
    page: Page
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def check(self) -> None:
        """No console error, page error, CSP violation or request beyond the file itself."""
        csp = self.page.evaluate("window.__csp")
        assert csp == [], csp
        assert self.errors == []
        assert self.requests == [self.url.split("#")[0]]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("viewer")
    report = folder / "report.html"
    write_report(
        report,
        [
            ViewEntry(golden=travel(), status="passed", file="goldens/travel.golden.yaml"),
            failed_entry(),
            ViewEntry(golden=hostile(), status="passed", name=IMG, file=f"goldens/{XSS}.yaml"),
        ],
        title=CLOSE,
    )
    skipped = folder / "skipped.html"
    write_report(
        skipped,
        [
            ViewEntry(
                golden=travel("slow_one"),
                status="skipped",
                file="goldens/slow_one.golden.yaml",
                record={"status": "skipped", "reason": "needs the nightly stage", "steps": 0},
            )
        ],
    )
    long = folder / "long.html"
    write_report(long, [ViewEntry(golden=big(5000))])
    many = folder / "many.html"
    write_report(
        many,
        [
            ViewEntry(golden=travel(f"golden_{i:03d}"), status="failed" if i % 7 else "passed")
            for i in range(200)
        ],
    )
    hidden = folder / "hidden.html"
    write_report(hidden, [ViewEntry(golden=hidden_session())], title="title\u202eeliT")
    aligned = folder / "aligned.html"
    write_report(aligned, snapshot_entries())
    # a run that recorded one snapshot more at its start: every later step numbered apart
    shifted = folder / "shifted.html"
    golden = big(1300)
    extra = [{"step": 1, "type": "state", "memory": {"warm": True}}]
    moved = [s.model_dump(exclude_unset=True) | {"step": s.step + 1} for s in golden.step_list]
    actual = golden.model_copy(update={"steps": Session.model_validate(
        {"name": "long_loop", "steps": extra + moved}).steps})  # fmt: skip
    write_report(shifted, [ViewEntry(golden=golden, actual=actual, status="failed")])
    return {
        "report": report,
        "shifted": shifted,
        "long": long,
        "many": many,
        "skipped": skipped,
        "hidden": hidden,
        "aligned": aligned,
    }


def page_of(browser: Browser, path: Path, hash: str = "") -> Opened:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    url = path.as_uri() + hash
    opened = Opened(page=page, url=url)
    page.add_init_script(WATCH)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on("request", lambda r: opened.requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("html[data-ready='1']")
    return opened


@pytest.fixture
def opener(browser: Browser) -> Iterator[Any]:
    opened: list[Opened] = []

    def open_page(path: Path, hash: str = "") -> Opened:
        o = page_of(browser, path, hash)
        opened.append(o)
        return o

    yield open_page
    for o in opened:
        o.page.close()


def position(page: Page) -> str:
    return page.inner_text("#position")


def hash_of(page: Page) -> str:
    return str(page.evaluate("location.hash"))


def wait_hash(page: Page, expected: str) -> None:
    """The page writes the hash at most every 120 ms (browsers throttle history updates)."""
    page.wait_for_function("h => location.hash === h", arg=expected, timeout=5000)
    assert hash_of(page) == expected


def node_count(page: Page) -> int:
    return int(page.evaluate("document.getElementsByTagName('*').length"))


def current_row(page: Page) -> str | None:
    return page.get_attribute(".step-row[aria-current='true']", "data-n")


# --- tests -----------------------------------------------------------------------------------


def test_failed_golden_opens_on_its_divergence(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["report"])
    page = o.page
    assert position(page) == "step 4 of 4"
    wait_hash(page, "#golden=seat_lookup&step=4")
    assert current_row(page) == "4"
    assert page.text_content("#head h2") == "failedseat_lookup"  # the badge, then the name
    finding = page.locator("#inspector .finding").first
    assert "step 4 of 4 · tool_call lookup: called lookup with other arguments" in (
        finding.inner_text()
    )
    diff = finding.locator(".lines div").all_inner_texts()
    assert diff == ["step 4 › input.passenger: 'Alice' → 'Bob'", "  - 'Alice'", "  + 'Bob'"]
    assert "hint:" in finding.inner_text()
    assert page.locator("canvas[data-side='actual']").count() == 1  # two aligned timelines
    analysis = page.locator("#inspector .analysis").first.inner_text()
    assert "first divergence" in analysis and "suggested fix:" in analysis
    o.check()


def test_a_skipped_golden_shows_pytests_reason_and_no_run(
    opener: Any, pages: dict[str, Path]
) -> None:
    o = opener(pages["skipped"])
    page = o.page
    assert page.text_content("#head h2") == "skippedslow_one"
    assert page.locator("#head .finding").all_inner_texts() == ["skipped: needs the nightly stage"]
    assert page.locator("canvas[data-side='actual']").count() == 0, "it did not run"
    o.check()


def test_keyboard_moves_the_step_and_the_hash(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["report"], "#golden=travel&step=5")
    page = o.page
    assert position(page) == "step 5 of 10"
    page.keyboard.press("ArrowRight")
    assert position(page) == "step 6 of 10"
    wait_hash(page, "#golden=travel&step=6")
    assert current_row(page) == "6"
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_hash(page, "#golden=travel&step=4")
    page.keyboard.press("End")
    assert position(page) == "step 10 of 10"
    wait_hash(page, "#golden=travel&step=10")
    page.keyboard.press("Home")
    assert position(page) == "step 1 of 10"
    wait_hash(page, "#golden=travel&step=1")
    page.select_option("#speed", "fast")
    page.locator(".step-row[data-n='1']").click()  # focus on a button: Space still plays
    page.keyboard.press("Space")
    page.wait_for_function(
        "() => parseInt(document.getElementById('position').textContent.slice(5), 10) >= 3"
    )
    page.keyboard.press("Space")
    stopped = position(page)
    page.wait_for_timeout(400)
    assert position(page) == stopped  # paused
    wait_hash(page, f"#golden=travel&step={stopped.split()[1]}")
    page.evaluate("location.hash = '#golden=travel&step=7'")
    page.wait_for_function(
        "() => document.getElementById('position').textContent === 'step 7 of 10'"
    )
    # a hash set from outside while a throttled write of the page's own is pending wins
    page.evaluate(
        """() => {
            for (const key of ['ArrowRight', 'ArrowRight', 'ArrowRight']) {
                document.dispatchEvent(new KeyboardEvent('keydown', {key, bubbles: true}));
            }
            const due = performance.now() + 200;
            while (performance.now() < due) {}  // the page's throttled write is now due
            location.hash = '#golden=travel&step=2';
        }"""
    )
    page.wait_for_timeout(400)  # past the page's pending write
    assert position(page) == "step 2 of 10"
    assert page.evaluate("location.hash") == "#golden=travel&step=2"
    o.check()


def test_clicking_the_timeline_selects_the_step(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["report"], "#golden=travel&step=1")
    page = o.page
    canvas = page.locator("canvas[data-side='golden']")
    box = canvas.bounding_box()
    assert box is not None
    for step in (7, 2, 10):
        canvas.click(position={"x": (step - 0.5) / 10 * box["width"], "y": box["height"] / 2})
        assert position(page) == f"step {step} of 10"
        wait_hash(page, f"#golden=travel&step={step}")
        assert current_row(page) == str(step)
    page.mouse.move(box["x"] + 0.05 * box["width"], box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.55 * box["width"], box["y"] + 10, steps=5)
    page.mouse.up()
    assert position(page) == "step 6 of 10"  # dragged
    page.locator(".step-row[data-n='3']").click()
    assert position(page) == "step 3 of 10"
    o.check()


def test_type_filter(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["report"], "#golden=travel&step=1")
    page = o.page
    page.locator("#type-filter input[data-cat='tool']").uncheck()
    page.locator("#type-filter input[data-cat='state']").uncheck()
    rows = page.locator(".step-row").evaluate_all("rows => rows.map(r => r.dataset.n)")
    assert rows == ["1", "2", "5", "9", "10"]
    page.locator("#inspector").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert position(page) == "step 5 of 10"  # tools at 3 and the snapshot at 4 skipped
    page.keyboard.press("End")
    assert position(page) == "step 10 of 10"
    page.fill("#range-from", "2")
    page.fill("#range-to", "6")
    rows = page.locator(".step-row").evaluate_all("rows => rows.map(r => r.dataset.n)")
    assert rows == ["2", "5"]
    page.locator("#type-filter input[data-cat='tool']").check()
    rows = page.locator(".step-row").evaluate_all("rows => rows.map(r => r.dataset.n)")
    assert rows == ["2", "3", "5", "6"]
    o.check()


def test_compare_steps_shows_the_state_changes(opener: Any, pages: dict[str, Path]) -> None:
    session = travel()
    expected = state_changes(session.step_list, 8)
    assert expected == [
        "+ memory.user_preference = 'quarterly reports'",
        '+ context = {"report_type": "sales"}',  # the first snapshot with a context
    ]
    o = opener(pages["report"], "#golden=travel&step=8")
    page = o.page
    compare = page.locator("#inspector .side[data-side='golden'] .compare")
    assert compare.locator("h4").inner_text().lower() == "compare steps · step 7 → step 8"
    assert compare.locator(".lines div").all_inner_texts() == expected
    assert compare.locator(".lines div.add").count() == 2
    state = page.locator("#inspector .side[data-side='golden'] details.state pre").inner_text()
    shown = json.loads(state)
    assert shown["memory"]["user_preference"] == "quarterly reports"
    assert [t["tool"] for t in shown["tool_outputs"]] == ["get_profile", "search_flights", "book"]
    assert shown["last_output"] == {"content": "searching", "finish_reason": "stop"}
    page.keyboard.press("ArrowLeft")
    lines = page.locator("#inspector .side[data-side='golden'] .compare .lines div")
    assert lines.all_inner_texts() == state_changes(session.step_list, 7)
    o.check()


def test_session_content_is_text_and_runs_nothing(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["report"])
    page = o.page
    page.locator(".index-row").nth(2).click()
    assert page.inner_text("#head h2").endswith(IMG)
    assert page.inner_text("#title") == CLOSE
    assert page.title() == CLOSE
    for step in range(1, 6):
        page.evaluate(f"location.hash = '#golden=img-src-x-onerror-window.__pwned-1&step={step}'")
        page.wait_for_function(f"() => location.hash.endsWith('step={step}')")
        page.wait_for_function(
            f"() => document.getElementById('position').textContent === 'step {step} of 5'"
        )
        text = page.inner_text("#inspector")
        if step == 2:
            assert XSS in text and CLOSE in text and IMG in text
        if step == 3:
            assert CLOSE in text and f'"html": {json.dumps(IMG)}' in text
    for summary in page.locator("details > summary").all():
        summary.click()
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.querySelectorAll('img, b, iframe, object').length") == 0
    assert page.evaluate("document.scripts.length") == 2
    o.check()
    # control: markup that did reach the DOM would still run nothing, and be reported
    page.evaluate("html => document.body.insertAdjacentHTML('beforeend', html)", IMG + XSS)
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("window.__pwned") is None
    assert any(v.startswith(("img-src", "script-src")) for v in page.evaluate("window.__csp"))


def test_dom_stays_bounded_on_5000_steps(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["long"])
    page = o.page
    assert position(page) == "step 1 of 5000"
    first = node_count(page)
    assert first < MAX_NODES
    page.keyboard.press("End")
    assert position(page) == "step 5000 of 5000" and current_row(page) == "5000"
    page.locator("#steps").evaluate("el => { el.scrollTop = el.scrollHeight / 2; }")
    page.wait_for_function("() => document.querySelector('.step-row[data-n=\"2500\"]') !== null")
    assert node_count(page) < MAX_NODES
    page.locator("#type-filter input[data-cat='tool']").uncheck()
    assert node_count(page) < MAX_NODES
    print(f"\nDOM elements on the 5,000-step page: {first} at load, {node_count(page)} after use")
    o.check()


def test_dom_stays_bounded_on_200_goldens(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["many"])
    page = o.page
    assert page.inner_text("#index-count") == "200 of 200 goldens"
    assert page.locator(".index-row").count() < 60
    assert node_count(page) < MAX_NODES
    page.locator("#index-list").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = page.locator(".index-row[data-id='golden_199']")
    last.click()
    wait_hash(page, "#golden=golden_199&step=1")
    page.fill("#index-filter", "golden_07")
    assert page.inner_text("#index-count") == "10 of 200 goldens"
    page.select_option("#index-status", "passed")
    assert page.locator(".index-row").evaluate_all("r => r.map(x => x.dataset.id)") == [
        "golden_070",
        "golden_077",
    ]
    assert node_count(page) < MAX_NODES
    o.check()


def test_screenshot_artifact(opener: Any, pages: dict[str, Path], tmp_path: Path) -> None:
    o = opener(pages["report"], "#golden=travel&step=6")
    page = o.page
    artifacts = tmp_path / "test-artifacts"
    artifacts.mkdir()
    assert "slow" in (page.text_content(".step-row[data-n='6']") or "")
    assert "the flight search is slow on purpose" in page.inner_text("#inspector")
    page.screenshot(path=str(artifacts / "viewer-step.png"))
    slowest = page.locator(".top-steps").first
    assert slowest.inner_text().startswith("slowest steps: step 6 tool_call search_flights 7.0 s")
    page.keyboard.press("Home")
    slowest.locator("button").first.click()
    assert position(page) == "step 6 of 10"
    page.evaluate("location.hash = '#golden=seat_lookup&step=4'")
    page.wait_for_function(
        "() => document.getElementById('position').textContent === 'step 4 of 4'"
    )
    page.screenshot(path=str(artifacts / "viewer-divergence.png"), full_page=True)
    for shot in sorted(artifacts.iterdir()):
        print(f"\nviewer screenshot: {shot}")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    o.check()


def test_hidden_characters_show_as_escapes(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["hidden"], "#golden=rlo-evil&step=1")
    page = o.page
    content = page.locator("#inspector .side[data-side='golden'] .msg .content")
    assert content.text_content() == "abc\\u202edef"
    assert content.locator("span.hidden-char").all_text_contents() == ["\\u202e"]
    # laid out left to right as it is held: no override reorders what follows it
    order = content.evaluate(
        """node => {
            const x = (ch) => {
                const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);
                for (let t = walker.nextNode(); t; t = walker.nextNode()) {
                    const i = t.data.indexOf(ch);
                    if (i < 0) continue;
                    const range = document.createRange();
                    range.setStart(t, i);
                    range.setEnd(t, i + 1);
                    return range.getBoundingClientRect().left;
                }
                return null;
            };
            return ["a", "c", "d", "f"].map(x);
        }"""
    )
    assert None not in order and order == sorted(order), order
    assert page.inner_text("#head h2").endswith("rlo\\u202eevil")
    assert page.title() == "title\\u202eeliT"
    assert page.inner_text("#title") == "title\\u202eeliT"
    # every place: the note text and its escapes, exactly as opswald.hidden decides
    notes = page.locator("#head .note").all_text_contents()
    assert notes == [f"note: {shown(text)}" for text in [*HIDDEN, *KEPT]]
    kept = notes[len(HIDDEN) :]
    assert kept == [f"note: {text}" for text in KEPT], "emoji, Persian and flags stay as they are"
    assert page.locator("#head .note .hidden-char").count() == sum(
        len(hidden_positions(t)) for t in HIDDEN
    )
    page.keyboard.press("ArrowRight")
    tool = page.locator("#inspector .side[data-side='golden']").inner_text()
    assert '"name": "pay\\u200bpal"' in tool  # in JSON, the escape JSON has for it
    assert f'"emoji": "{KEPT[0]}"' in tool and '"plain": "plain text"' in tool
    page.keyboard.press("ArrowRight")
    plain = page.locator("#inspector .side[data-side='golden'] .msg .content")
    assert plain.text_content() == "plain text"
    assert plain.evaluate("n => n.childNodes.length") == 1  # one text node, no span
    o.check()


def test_steps_pair_by_match_not_by_position(opener: Any, pages: dict[str, Path]) -> None:
    o = opener(pages["aligned"], "#golden=snapshots")
    page = o.page
    # golden: chat, snapshot, chat, lookup; the replay: chat, chat, lookup (no snapshot)
    assert position(page) == "step 4 of 4"  # the divergence, on its row
    assert current_row(page) == "4"
    golden = page.locator("#inspector .side[data-side='golden'] .side-title").inner_text()
    actual = page.locator("#inspector .side[data-side='actual'] .side-title").inner_text()
    assert golden == "golden: step 4 of 4 · tool_call lookup"
    assert actual == "actual: step 3 of 3 · tool_call lookup"
    assert "'Alice' → 'Bob'" in page.inner_text("#inspector .finding")
    rows = page.locator(".step-row")
    assert rows.evaluate_all("rows => rows.map(r => r.querySelector('.n').textContent)") == [
        "#1",
        "#2",
        "#3/2",
        "#4/3",
    ]
    labels = rows.evaluate_all("rows => rows.map(r => r.querySelector('.label').textContent)")
    assert labels[1] == "(golden only) state"
    assert labels[2] == "llm_call sim"  # chat 2 beside chat 2: the same, no ≠
    differing = "rows => rows.filter(r => r.querySelector('.flag.div, .flag.diff')).length"
    assert rows.evaluate_all(differing) == 2  # the snapshot and the booking
    page.keyboard.press("ArrowLeft")
    assert page.locator("#inspector .side[data-side='actual'] .side-title").inner_text() == (
        "actual: step 2 of 3 · llm_call sim"
    )
    page.keyboard.press("ArrowLeft")
    assert page.locator("#inspector .side[data-side='actual'] .side-title").inner_text() == (
        "actual: no step here (3 steps)"
    )
    # the saved actual records one snapshot more: no pairing from a run, paired in order
    page.locator(".index-row[data-id='saved']").click()
    assert position(page) == "step 5 of 5"
    golden = page.locator("#inspector .side[data-side='golden'] .side-title").inner_text()
    actual = page.locator("#inspector .side[data-side='actual'] .side-title").inner_text()
    assert golden == "golden: step 4 of 4 · tool_call lookup"
    assert actual == "actual: step 5 of 5 · tool_call lookup"
    assert page.locator(".step-row[data-n='3'] .label").inner_text() == "(actual only) state"
    o.check()


def test_a_duration_under_a_hundredth_of_a_millisecond_does_not_read_as_zero(
    opener: Any, tmp_path: Path
) -> None:
    """The page formats durations as the terminal does: two significant digits under a
    tenth of a millisecond, never `0 ms` for a run that took time."""
    tool = {
        "step": 1,
        "type": "tool_call",
        "tool": "lookup",
        "timestamp": "2026-03-17T14:15:01.000Z",
        "input": {"key": "k"},
        "output": {"v": 1},
        "duration_ms": 0.004,
    }
    golden = Session.model_validate({"name": "quick", "steps": [tool], "output": "ok"})
    path = tmp_path / "quick.html"
    write_report(path, [ViewEntry(golden=golden, status="passed", file="goldens/quick.yaml")])
    o = opener(path)
    spans = o.page.locator("#summary span").all_text_contents()
    assert "0.004 ms" in spans, spans
    assert "0 ms" not in spans, spans
    o.check()


def test_step_numbers_of_both_sides_fit_their_column(opener: Any, pages: dict[str, Path]) -> None:
    """`#1299/1300` (golden step, actual step) is read whole, not clipped by the column."""
    o = opener(pages["shifted"], "#golden=long_loop&step=1300")
    page = o.page
    row = page.locator(".step-row[data-n='1300'] .n")
    assert row.inner_text() == "#1299/1300"
    clipped = "e => e.scrollWidth > e.clientWidth || e.getBoundingClientRect().right > "
    clipped += "e.nextElementSibling.getBoundingClientRect().left"
    assert row.evaluate(clipped) is False
    # the column is as wide as the session needs, no wider: the 5,000-step golden alone
    o2 = opener(pages["long"], "#golden=long_loop&step=4999")
    cell = o2.page.locator(".step-row[data-n='4999'] .n")
    assert cell.inner_text() == "#4999"
    assert cell.evaluate(clipped) is False
    assert cell.evaluate("e => e.clientWidth") < row.evaluate("e => e.clientWidth")
    o.check()
    o2.check()


def test_a_model_call_without_a_price_is_marked_unknown_not_free(
    opener: Any, tmp_path: Path
) -> None:
    """Per step, as in the totals: a call that answered without a cost shows a hatched
    cost mark and says its cost is unknown; a priced call and a failed call do not."""

    def call(n: int, model: str, **extra: Any) -> dict[str, Any]:
        return {
            "step": n,
            "type": "llm_call",
            "provider": "openai",
            "model": model,
            "input": {"messages": [{"role": "user", "content": f"q{n}"}]},
            "output": {"content": "a"},
            "usage": {"input_tokens": 10, "output_tokens": 2},
            "duration_ms": 5.0,
            **extra,
        }

    failed = call(3, "m-local", error={"type": "RateLimitError", "message": "slow down"})
    failed.pop("output")
    no_usage = call(4, "gpt-4o-mini", usage=None)  # a priced model: nothing to price
    cut = call(5, "gpt-4o-mini", usage=None, attributes={"stream_cut": "closed early"})
    golden = Session.model_validate(
        {
            "name": "mixed",
            "metadata": {"recorded_with": "pytest-opswald 0.1.0"},  # opswald priced it
            "steps": [
                *(call(1, "gpt-4o-mini", cost=0.00003), call(2, "m-local"), failed),
                *(no_usage, cut),
            ],
            "output": "ok",
        }
    )
    path = tmp_path / "mixed.html"
    write_report(path, [ViewEntry(golden=golden, status="passed", file="goldens/mixed.yaml")])
    o = opener(path, "#golden=mixed&step=2")
    page = o.page
    marks = page.locator(".step-row .cbar").evaluate_all(
        "bars => bars.map(b => b.classList.contains('unpriced'))"
    )
    assert marks == [False, True, False, True, True]
    titles = page.locator(".step-row .bar-wrap").evaluate_all("ws => ws.map(w => w.title)")
    assert "cost unknown" in titles[1] and "cost unknown" not in titles[0] + titles[2]
    assert "$0.000030" in titles[0], "a cost under a tenth of a cent never reads as $0.0000"
    assert "cost unknown (no price for its model)" in page.inner_text("#inspector .meta-line")
    # each says why it has no cost: not every missing cost is an unpriced model
    assert "cost unknown (no usage reported)" in titles[3]
    assert "cost unknown (stream cut short)" in titles[4]
    o.check()


def test_a_golden_that_records_no_time_says_so_not_zero(opener: Any, tmp_path: Path) -> None:
    """QA (probe25 #4): a hand-written golden (no step records a time) read `0 ms` in the
    figures table; `show` and `analyze` say `no time recorded`."""
    golden = Session.model_validate(
        {
            "name": "by_hand",
            "input": "hi",
            "steps": [
                {"step": 1, "type": "tool_call", "tool": "t", "input": {}, "output": 1},
                {"step": 2, "type": "tool_call", "tool": "t", "input": {}, "output": 2},
            ],
            "output": "ok",
        }
    )
    timed = golden.model_copy(update={"name": "timed"}, deep=True)
    timed.step_list[0].duration_ms = 12.0
    path = tmp_path / "by_hand.html"
    entries = [
        ViewEntry(golden=g, status="passed", file=f"goldens/{g.name}.yaml") for g in (golden, timed)
    ]
    write_report(path, entries)
    for name, duration in (("by_hand", "no time recorded"), ("timed", "12 ms")):
        o = opener(path, f"#golden={name}")
        rows = o.page.locator("table.figures tr").all_inner_texts()
        assert any(r.split("\t")[:2] == ["duration", duration] for r in rows), rows
        o.check()


def test_responses_instructions_read_as_such(opener: Any, tmp_path: Path) -> None:
    """A Responses call's `instructions` (a system message marked `type: instructions`) are
    labelled so, apart from a system message the agent sent in `input`."""
    sent = [
        {"role": "system", "content": "Answer in French.", "type": "instructions"},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    step = {
        "step": 1,
        "type": "llm_call",
        "provider": "openai",
        "api": "openai.responses",
        "model": "gpt-4o-mini",
        "input": {"messages": sent},
        "output": {"content": "Bonjour."},
    }
    golden = Session.model_validate({"name": "fr", "steps": [step], "output": "Bonjour."})
    path = tmp_path / "fr.html"
    write_report(path, [ViewEntry(golden=golden, status="passed", file="goldens/fr.yaml")])
    o = opener(path, "#golden=fr&step=1")
    blocks = o.page.locator("#inspector .conversation .msg")
    assert blocks.locator(".role").all_inner_texts()[:3] == [
        "SYSTEM · INSTRUCTIONS",
        "SYSTEM",
        "USER",
    ]
    # the label says it; no `{"type": "instructions"}` left beside the text
    assert blocks.nth(0).inner_text() == "SYSTEM · INSTRUCTIONS\nAnswer in French."
    o.check()


def test_infinity_and_nan_show_as_such(opener: Any, tmp_path: Path) -> None:
    """Non-finite floats reach the page (as goldens write them: 1e999, {"$float": "NaN"})
    and read Infinity, -Infinity and NaN, not null; a mapping shaped like the encoding
    stays a mapping, the string "NaN" a string."""
    inf, nan = float("inf"), float("nan")
    golden = Session.model_validate(
        {
            "name": "ratio",
            "steps": [
                {
                    "step": 1,
                    "type": "tool_call",
                    "tool": "ratio",
                    "input": {"a": 1.0, "b": 0.0, "limit": -inf},
                    "output": inf,
                },
                {
                    "step": 2,
                    "type": "tool_call",
                    "tool": "stats",
                    "input": {},
                    "output": {"mean": nan, "tagged": {"$float": "NaN"}, "word": "NaN"},
                },
                {"step": 3, "type": "state", "memory": {"mean": nan}},
            ],
            "output": {"ratio": inf},
        }
    )
    path = tmp_path / "ratio.html"
    write_report(path, [ViewEntry(golden=golden, status="passed", file="goldens/ratio.json")])
    o = opener(path, "#golden=ratio&step=1")
    page = o.page
    side = "#inspector .side[data-side='golden'] "

    def shown(title: str) -> str:
        return page.locator(f"{side}.section:has(h4:text-is('{title}')) pre").inner_text()

    assert json.loads(shown("arguments")) == {"a": 1.0, "b": 0.0, "limit": -inf}
    assert "-Infinity" in shown("arguments") and shown("result") == "Infinity"
    page.keyboard.press("ArrowRight")
    result = shown("result")
    assert '"mean": NaN' in result, result
    assert '"tagged": {\n    "$float": "NaN"\n  }' in result and '"word": "NaN"' in result
    page.keyboard.press("ArrowRight")
    assert '"mean": NaN' in shown("snapshot")
    assert page.locator(f"{side}.compare .lines").inner_text() == '+ memory = {"mean": NaN}'
    o.check()


def test_the_slowest_steps_of_a_run_are_its_own_numbered_as_the_golden(
    opener: Any, pages: dict[str, Path]
) -> None:
    """With a run beside the golden, the slowest and most expensive steps are the run's
    (what it spent), each numbered as the golden step it faces: the run numbers every step
    one more (a snapshot more at its start), the list says the golden's number."""
    o = opener(pages["shifted"])
    page = o.page
    data = json.loads(page.text_content("#opswald-data") or "{}")
    top = data["goldens"][0]["top_steps"]
    assert top["side"] == "actual"
    first = top["slowest"][0]
    assert (first["n"], first["run_step"]) == (first["step"] + 1, False)
    button = page.locator(".top-steps").first.locator("button").first
    assert button.inner_text() == f"step {first['step']}"
    o.check()


def test_golden_steps_a_stopped_run_never_reached_read_not_reached(
    opener: Any, tmp_path: Path
) -> None:
    """A run stopped at a call the golden does not have: the golden's later steps are
    labelled `(not reached)` in the step list, not `(golden only)` as a removed step is."""

    @opswald.llm
    def ask(model: str, messages: list[Any]) -> dict[str, Any]:
        return {"content": "ok", "finish_reason": "stop"}

    @opswald.tool
    def fetch(key: str) -> str:
        return key.upper()

    def agent(extra: bool) -> Any:
        ask(model="m", messages=[{"role": "user", "content": "one"}])
        if extra:
            fetch(key="extra")
        ask(model="m", messages=[{"role": "user", "content": "two"}])
        return fetch(key="end")

    recorded = execute(
        Session(name="stop", input={}),
        lambda _: agent(False),
        settings=RunSettings(policy="live", block_side_effects=False),
    )
    golden = recorded.actual
    run = execute(golden, lambda _: agent(True), settings=RunSettings())
    assert not judge(golden, run).passed
    path = tmp_path / "stop.html"
    entry = ViewEntry(golden=golden, actual=run.actual, status="failed", file="goldens/s.yaml")
    write_report(path, [entry])
    o = opener(path, "#golden=stop")
    labels = o.page.locator(".step-row .label").all_inner_texts()
    assert labels[-2:] == ["(not reached) llm_call m", "(not reached) tool_call fetch"], labels
    o.check()


def test_each_step_shows_its_lane(opener: Any, tmp_path: Path) -> None:
    """A session whose calls came from more than one thread or task: each step in the list
    shows its lane (a snapshot, made by no call, none), with a tooltip saying what a lane
    is; the inspector says the step's lane; the header how many lanes there are."""
    golden = tmp_path / "fan_out.golden.yaml"
    golden.write_text(FAN_OUT)
    path = tmp_path / "lanes.html"
    write_report(path, [ViewEntry(golden=opswald.load(golden), status="passed")])
    o = opener(path, "#golden=fan_out&step=5")
    page = o.page
    lanes = page.locator(".step-row").evaluate_all(
        "rows => rows.map(r => { const l = r.querySelector('.lane');"
        " return l && l.checkVisibility() ? l.innerText : null; })"
    )
    assert lanes == ["lane 1", "lane 2", "lane 3", "lane 3", "lane 2", None]
    assert "thread or asyncio task" in (page.get_attribute(".step-row .lane", "title") or "")
    # each lane its own colour, the same on every step of that lane
    colour = page.locator(".step-row .lane").evaluate_all(
        "ls => ls.map(l => getComputedStyle(l).borderLeftColor)"
    )
    assert colour[1] == colour[4] and colour[2] == colour[3] and len(set(colour)) == 3
    meta = page.locator("#inspector .side[data-side='golden'] .meta-line")
    assert "lane 2" in meta.inner_text()
    assert "3 lanes" in page.inner_text("#head")
    page.keyboard.press("ArrowRight")  # the snapshot: no lane
    assert "lane" not in meta.inner_text()
    o.check()


def test_a_snapshot_written_with_a_lane_holds_no_lane(opener: Any, tmp_path: Path) -> None:
    """A lane is a step's field, not part of the state: a snapshot written by hand with one
    shows it as its lane, not among what the snapshot holds."""
    golden = Session.model_validate(
        {
            "name": "snap",
            "steps": [
                {"step": 1, "type": "tool_call", "lane": 1, "tool": "t", "input": {}},
                {"step": 2, "type": "state", "lane": 2, "memory": {"seen": 1}},
            ],
            "output": None,
        }
    )
    path = tmp_path / "snap.html"
    write_report(path, [ViewEntry(golden=golden, status="passed")])
    o = opener(path, "#golden=snap&step=2")
    page = o.page
    side = "#inspector .side[data-side='golden'] "
    assert "lane 2" in page.inner_text(side + ".meta-line")
    held = page.inner_text(side + ".section:has(h4:text-is('snapshot')) pre")
    assert json.loads(held) == {"memory": {"seen": 1}}
    o.check()


def test_golden_and_actual_lanes_show_side_by_side(opener: Any, tmp_path: Path) -> None:
    """A run that numbered its lanes otherwise (the Oslo branch made its first call first):
    a row whose sides have different lanes shows both, as its step numbers do."""
    golden = Session.model_validate(yaml.safe_load(FAN_OUT))
    run = yaml.safe_load(FAN_OUT)
    swapped = {1: 1, 2: 3, 3: 2}
    for step in run["steps"]:
        if "lane" in step:
            step["lane"] = swapped[step["lane"]]
    actual = Session.model_validate(run)
    path = tmp_path / "both.html"
    write_report(path, [ViewEntry(golden=golden, actual=actual, status="passed")])
    o = opener(path, "#golden=fan_out&step=2")
    page = o.page
    lanes = page.locator(".step-row .lane").all_inner_texts()
    assert lanes == ["lane 1", "lane 2/3", "lane 3/2", "lane 3/2", "lane 2/3"]
    sides = page.locator("#inspector .meta-line").all_inner_texts()
    assert "lane 2" in sides[0] and "lane 3" in sides[1], sides
    o.check()


def test_a_session_without_lanes_shows_none(opener: Any, pages: dict[str, Path]) -> None:
    """Steps of a sequential session (no lanes) look as they always did: no lane anywhere."""
    o = opener(pages["report"], "#golden=travel&step=2")
    page = o.page
    assert page.locator(".lane").count() == 0
    assert "lane" not in page.inner_text("#steps").lower()
    assert "lane" not in page.inner_text("#head").lower()
    assert "lane" not in page.inner_text("#inspector .meta-line").lower()
    o.check()


def test_a_run_stopped_by_its_timeout_reads_stopped_not_diverged(
    opener: Any, tmp_path: Path
) -> None:
    """QA (probe28 #2): the index row of a saved run its timeout stopped said "diverges at
    step 3", where step 3 is where the agent was when it was stopped."""
    golden = Session.model_validate(
        {
            "name": "hang",
            "input": "hi",
            "steps": [
                {"step": n, "type": "tool_call", "tool": "t", "input": {"n": n}, "output": n}
                for n in (1, 2, 3)
            ],
            "output": "ok",
        }
    )
    stopped = golden.model_copy(
        update={
            "steps": golden.step_list[:2],
            "output": None,
            "error": ErrorInfo(type="Timeout", message="hang.golden.yaml: did not finish"),
            "metadata": {"stopped": {"kind": "timeout", "step": 3}},
        }
    )
    diverged = golden.model_copy(update={"name": "other"}, deep=True)
    moved = diverged.model_copy(
        update={
            "steps": [
                *diverged.step_list[:2],
                diverged.step_list[2].model_copy(update={"input": {"n": 9}}),
            ]
        }
    )
    path = tmp_path / "stopped.html"
    write_report(
        path,
        [
            ViewEntry(golden=golden, actual=stopped, file="g/hang.yaml"),
            ViewEntry(golden=diverged, actual=moved, file="g/other.yaml"),
        ],
    )
    o = opener(path)
    rows = o.page.locator(".index-row").all_inner_texts()
    hang = next(r for r in rows if "hang" in r)
    other = next(r for r in rows if "other" in r)
    assert "stopped at step 3" in hang and "diverges" not in hang, hang
    assert "diverges at step 3" in other, other
    o.check()
