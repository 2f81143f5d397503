"""SessionSnapshotExtension: syrupy snapshots of sessions with a session-aware diff."""

from __future__ import annotations

import pytest

from conftest import CONFTEST, record
from opswald.session import STREAM_CHUNKS, LLMCallStep, LLMOutput, Session, ToolCallStep
from opswald.sessiondiff import compared_data, session_differences
from opswald.snapshot import SessionSnapshotExtension, render_session_diff
from opswald.verdict import MISSING

TESTS = """
import pytest

from opswald.snapshot import SessionSnapshotExtension


@pytest.mark.golden("goldens/flight.golden.yaml", verdict=False)
def test_transcript(golden_replay, snapshot):
    assert golden_replay.actual == snapshot(extension_class=SessionSnapshotExtension)
"""

# live: the agent runs for real each time, so timestamps and durations really change
LIVE = ("--opswald-mode=live", "--opswald-allow-side-effects")

UNUSED = """
def test_nothing():
    pass
"""


def test_snapshot_lifecycle(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # syrupy reads these to tell an xdist worker; the inner run here is not one
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(var, raising=False)
    record(project)
    project.makeconftest(CONFTEST)
    project.makepyfile(test_transcript=TESTS)
    snap = project.path / "__snapshots__" / "test_transcript" / "test_transcript.session.yaml"

    # --snapshot-update writes one stable, canonical YAML file
    project.runpytest(*LIVE, "--snapshot-update").assert_outcomes(passed=1)
    text = snap.read_text()
    assert "timestamp:" not in text and "recorded_at" not in text
    assert "duration_ms" not in text and "recorded_with" not in text
    assert "passenger: Alice" in text and text.startswith("# yaml-language-server")
    project.runpytest(*LIVE).assert_outcomes(passed=1)

    # the agent changes: the failure shows the diff in the golden's terms
    monkeypatch.setenv("AGENT_VARIANT", "args")
    failed = project.runpytest(*LIVE)
    failed.assert_outcomes(failed=1)
    out = failed.stdout.str()
    assert "step 5 › input.passenger: 'Alice' → 'Bob'" in out, out
    assert "[- snapshot] [+ actual]" in out

    # --snapshot-update accepts the change
    project.runpytest(*LIVE, "--snapshot-update").assert_outcomes(passed=1)
    assert "passenger: Bob" in snap.read_text()
    project.runpytest(*LIVE).assert_outcomes(passed=1)

    # the test goes away: syrupy reports its snapshot as unused, then deletes it
    monkeypatch.delenv("AGENT_VARIANT")
    project.makepyfile(test_transcript=UNUSED)
    unused = project.runpytest(*LIVE)
    assert "1 snapshot unused" in unused.stdout.str(), unused.stdout.str()
    assert unused.ret != 0
    project.runpytest(*LIVE, "--snapshot-update").assert_outcomes(passed=1)
    assert not snap.exists()


def _session(passenger: str, *, timestamp: str = "2024-01-01T00:00:00Z") -> Session:
    step = ToolCallStep(
        step=1,
        tool="book",
        input={"passenger": passenger},
        output={"ok": True},
        timestamp=timestamp,
        duration_ms=1.5,
    )
    return Session(
        name="s",
        input={"q": "hi"},
        steps=[step],
        output={"answer": passenger},
        metadata={"recorded_at": timestamp, "duration_ms": 3.0, "recorded_with": "x", "k": 1},
    )


def test_serialize_drops_volatile_fields() -> None:
    ext = SessionSnapshotExtension()
    a = ext.serialize(_session("Alice"))
    b = ext.serialize(_session("Alice", timestamp="2025-06-01T12:00:00Z"))
    assert a == b
    assert isinstance(a, str) and "timestamp" not in a and "duration_ms" not in a
    assert "k: 1" in a
    plain = ext.serialize(_session("Alice").model_dump(mode="json"))
    assert isinstance(plain, str) and "timestamp" not in plain and "recorded_at" not in plain


def _streamed(lengths: list[int], model: str = "m-1") -> Session:
    pieces = {STREAM_CHUNKS: {"choices[0].message.content": lengths}, "response_model": model}
    step = LLMCallStep(step=1, output=LLMOutput(content="Sunny."), attributes=pieces)
    return Session(name="s", steps=[step], output="Sunny.")


def test_the_pieces_a_stream_came_in_are_not_compared() -> None:
    """How a stream was cut is delivery, not behaviour: a live run cut otherwise is the
    same session (for snapshots, `opswald diff` and the report); other attributes count."""
    ext = SessionSnapshotExtension()
    a, b = ext.serialize(_streamed([2, 4])), ext.serialize(_streamed([1, 1, 4]))
    assert a == b and STREAM_CHUNKS not in str(a) and "response_model: m-1" in str(a)
    same = session_differences(compared_data(_streamed([2, 4])), compared_data(_streamed([6])))
    assert same == []
    other = compared_data(_streamed([2, 4], model="m-2"))
    assert [d.path for d in session_differences(compared_data(_streamed([6])), other)] == [
        ("attributes", "response_model")
    ]


def test_diff_is_session_aware_bounded_and_falls_back() -> None:
    ext = SessionSnapshotExtension()
    old, new = ext.serialize(_session("Alice")), ext.serialize(_session("Bob"))
    lines = list(ext.diff_lines(new, old))
    assert lines[0] == "[- snapshot] [+ actual]"
    assert "step 1 › input.passenger: 'Alice' → 'Bob'" in lines
    assert "output.answer: 'Alice' → 'Bob'" in lines
    assert lines[-1].endswith("--snapshot-update")

    many_old = ext.serialize({"items": list(range(50))})
    many_new = ext.serialize({"items": [-i for i in range(1, 51)]})
    shown = render_session_diff(str(many_old), str(many_new))
    assert shown is not None and "... and 30 more" in shown

    # unreadable YAML and empty snapshots get syrupy's line diff
    assert render_session_diff("a: [", "a: 1\n") is None
    assert render_session_diff("", "a: 1\n") is None
    assert list(ext.diff_lines("a: 1\n", "a: [\n"))


def test_a_step_inserted_is_one_difference_and_moves_no_later_step() -> None:
    """Steps line up as `opswald diff` lines them up: the snapshot's diff says the one step
    the run added, not every later step as changed."""
    from opswald.session import ToolCallStep

    def tools(*names: str) -> Session:
        steps = [
            ToolCallStep(step=i, tool=name, input={"x": 1}, output="ok")
            for i, name in enumerate(names, start=1)
        ]
        return Session(name="s", steps=steps, output="done")

    found = session_differences(
        compared_data(tools("a", "b")), compared_data(tools("a", "audit", "b"))
    )
    assert [(d.step, d.path, d.golden is MISSING) for d in found] == [(2, (), True)]
    assert found[0].actual["tool"] == "audit"
    found = session_differences(compared_data(tools("a", "b", "c")), compared_data(tools("a", "c")))
    assert [(d.step, d.path, d.actual is MISSING) for d in found] == [(2, (), True)]
    assert found[0].golden["tool"] == "b"
    ext = SessionSnapshotExtension()
    lines = list(
        ext.diff_lines(ext.serialize(tools("a", "audit", "b")), ext.serialize(tools("a", "b")))
    )
    assert sum("step" in line for line in lines[1:-1]) == 1, lines
    # named as `opswald diff` and the viewer name it
    assert "step 2 inserted: tool_call audit" in lines, lines
