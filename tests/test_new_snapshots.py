"""A state snapshot the golden does not have: how it is numbered in messages, what the
summary says an update does with it, and where an update puts it in time."""

from __future__ import annotations

import re

import pytest

from opswald.engine.tape import epoch_ms
from opswald.files import load

# a tool loop of three model calls and three tool calls (six steps); with SNAP set, a
# snapshot after each tool call: the run has nine steps, and the new snapshots are the
# run's steps 3, 6 and 8 (the golden's 3 and 6 are calls, and it has no step 8)
AGENT = """
import os

import opswald

SCRIPT = [
    [{"name": "get_alerts", "args": {"city": "rome"}}],
    [{"name": "get_weather", "args": {"city": "rome"}}, {"name": "get_news", "args": {}}],
    [],
]


@opswald.llm
def chat(*, messages):
    turn = sum(1 for m in messages if m["role"] == "assistant")
    return {"tool_calls": SCRIPT[turn], "content": "" if SCRIPT[turn] else "done"}


@opswald.tool
def get_alerts(city):
    return ["none"]


@opswald.tool
def get_weather(city):
    return "sunny"


@opswald.tool
def get_news():
    return "quiet"


TOOLS = {"get_alerts": get_alerts, "get_weather": get_weather, "get_news": get_news}


def run(input):
    messages = [{"role": "user", "content": input["q"]}]
    while True:
        reply = chat(messages=list(messages))
        messages.append({"role": "assistant", "content": reply["content"]})
        if not reply["tool_calls"]:
            return reply["content"]
        for call in reply["tool_calls"]:
            result = TOOLS[call["name"]](**call["args"])
            if os.environ.get("SNAP"):
                opswald.state(
                    memory={"last_tool": call["name"]}, variables={"turns": len(messages)}
                )
            messages.append({"role": "tool", "content": str(result)})
"""


def _recorded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    """A recorded golden of the agent without snapshots, then SNAP set for the runs after."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SNAP", raising=False)
    pytester.makepyfile(sagent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = sagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "s.golden.yaml").write_text(
        f"name: s\ninput: {{q: hi}}\nexpect:\n  state: {state}\n"
    )
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("SNAP", "1")


def test_an_extra_snapshot_is_headed_by_its_step_in_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not `step 6 of 6` (the golden's step 6 is a tool call) nor `step 8 (the golden has 6
    steps)`: the snapshot is the run's, as an extra call's step is."""
    _recorded(pytester, monkeypatch, "exact")
    result = pytester.runpytest("--opswald-goldens", "-v")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    for number, step in ((1, 3), (2, 6), (3, 8)):
        result.stdout.fnmatch_lines(
            [
                f"step {step} of this run · state: extra state snapshot {number}: the golden has "
                "none in its place (state: exact)"
            ]
        )
    assert " of 6 · state" not in out and "(the golden has 6 steps) · state" not in out, out
    # the summary's table: the run's step too
    result.stdout.fnmatch_lines(["*failed (state): step 3 of this run state"])
    # the crash line points at the golden's name, not at its step 3 (a tool call)
    result = pytester.runpytest("--opswald-goldens", "--tb=line")
    result.stdout.fnmatch_lines(["*s.golden.yaml:1: step 3 of this run · state: *"])


def test_an_extra_snapshot_reported_in_a_note_is_headed_by_its_step_in_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _recorded(pytester, monkeypatch, "report")
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "note: s.golden.yaml: step 3 of this run · state: extra state snapshot 1: the "
            "golden has none in its place (state: report): step 3: added *",
            "note: s.golden.yaml: step 6 of this run · state: extra state snapshot 2: *",
            "note: s.golden.yaml: step 8 of this run · state: extra state snapshot 3: *",
        ]
    )
    assert not re.search(r"step \d+ (of 6|\(the golden has)", result.stdout.str())


def test_an_update_that_writes_no_reported_snapshot_says_how_to_write_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The golden passes (its state differences are only reported), so the update leaves
    it as it is, as it does every passing golden; the summary says so and how to write
    them — and that way works."""
    _recorded(pytester, monkeypatch, "report")
    path = pytester.path / "goldens" / "s.golden.yaml"
    before = path.read_text()
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    assert path.read_text() == before
    result.stdout.fnmatch_lines(
        [
            "note: s.golden.yaml: not rewritten: it passed, its 3 state differences only "
            "reported, and --opswald-update rewrites failing goldens only; to write them, set "
            "`state: exact` under its `expect:` for one --opswald-update run, or rerecord it "
            "with --opswald-mode=rerecord",
            "note: s.golden.yaml: step 3 of this run · state: extra state snapshot 1: *",
        ]
    )
    # without --opswald-update there is no update to explain
    plain = pytester.runpytest("--opswald-goldens")
    plain.assert_outcomes(passed=1)
    assert "not rewritten" not in plain.stdout.str()
    # the way the note names writes the snapshots
    path.write_text(before.replace("state: report", "state: exact"))
    pytester.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    written = path.read_text()
    assert written.count("type: state") == 3 and "last_tool: get_news" in written


def test_new_snapshots_an_update_writes_among_kept_calls_keep_the_timeline_in_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calls are kept as recorded, with their recorded times (here: a minute apart,
    years ago); a new snapshot between two of them is timed when the call before it ended,
    not as taken now, which put it after the calls that follow it."""
    _recorded(pytester, monkeypatch, "exact")
    path = pytester.path / "goldens" / "s.golden.yaml"
    minutes = iter(range(10))
    path.write_text(
        re.sub(
            r"timestamp: \S+",
            lambda _: f"timestamp: '2020-01-01T09:0{next(minutes)}:00.000Z'",
            path.read_text(),
        )
    )
    calls = load(path).step_list
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["1 golden updated: review it with git diff"])
    steps = load(path).step_list
    assert [s.type for s in steps].count("state") == 3
    kept = [s for s in steps if s.type != "state"]
    assert [s.model_dump(exclude={"step"}) for s in kept] == [
        s.model_dump(exclude={"step"}) for s in calls
    ], "the calls are written as recorded"
    times = [epoch_ms(s.timestamp) for s in steps]
    assert None not in times
    assert times == sorted(times), [(s.step, s.type, s.timestamp) for s in steps]
    for snapshot in (s for s in steps if s.type == "state"):
        call = steps[snapshot.step - 2]  # the tool call it was taken after
        ended = epoch_ms(call.timestamp)
        assert call.type == "tool_call" and ended is not None
        assert ended <= times[snapshot.step - 1] <= ended + (call.duration_ms or 0) + 1
