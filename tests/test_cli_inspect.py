"""`opswald show|diff|analyze|upgrade|golden note`: output text (snapshotted), --json and
exit codes, run in-process on the example goldens and on copies of them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.cli import main
from opswald.terminal import clip, display_width, wrapped
from opswald.upgrade import MIGRATIONS

GOLDENS = Path(__file__).parent.parent / "goldens"
REFUND = GOLDENS / "refund.golden.yaml"
DECLINED = GOLDENS / "card_declined.golden.json"


@pytest.fixture(autouse=True)
def _columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_filters_by_type_and_range(capsys: pytest.CaptureFixture[str], snapshot: Any) -> None:
    code, out, _ = run(capsys, "show", str(REFUND), "--type", "tool,state", "--steps", "3-6")
    assert code == 0
    rows = [line.split()[:3] for line in out.splitlines()[2:-2]]
    assert rows == [["4", "tool_call", "issue_refund"], ["6", "state", "memory,"]]
    assert "(2 of 6 steps shown)" in out
    assert rows[0] == ["4", "tool_call", "issue_refund"] and out.splitlines()[2].endswith(
        " 0.006 ms"
    ), "its 0.006 ms do not read as 0.0"
    assert out == snapshot


def test_show_one_step_with_its_state(capsys: pytest.CaptureFixture[str], snapshot: Any) -> None:
    code, out, _ = run(capsys, "show", str(REFUND), "--step", "4")
    assert code == 0
    assert out.startswith("step 4 of 6 · tool_call issue_refund\n")
    assert all(len(line) <= 80 for line in out.splitlines())
    changes = out.split("changes from step 3:\n")[1].splitlines()
    assert changes[0].startswith("  + tool_outputs[1] = ")
    assert "issue_refund" in changes[0]
    assert out == snapshot


def test_show_step_prints_a_large_output_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The step is printed whole; its state does not repeat a large tool output (this
    step's is above, an earlier step's is summarised with where to see it), and the
    changes from the step before name the new output in one line."""
    rows = [{"id": k, "name": f"row {k}"} for k in range(3000)]
    steps = [
        {"step": 1, "type": "tool_call", "tool": "rows", "input": {}, "output": rows},
        {"step": 2, "type": "state", "memory": {"seen": 3000}},
        {"step": 3, "type": "tool_call", "tool": "small", "input": {}, "output": {"a": 1}},
    ]
    path = tmp_path / "big.golden.yaml"
    opswald.dump(
        opswald.Session.model_validate(
            {"name": "big", "input": {}, "steps": steps, "output": len(rows)}
        ),
        path,
    )
    code, out, _ = run(capsys, "show", str(path), "--step", "1")
    assert code == 0
    body, state = out.split("state at step 1:\n")
    assert body.count("name: row ") == 3000 and "row 2999" in body
    assert "row 0" not in state
    assert "    output: '(the output of this step, above: 3,000 items, 97 KB as JSON)'" in state
    code, out, _ = run(capsys, "show", str(path), "--step", "3")
    assert "row 10" not in out
    state = out.split("state at step 3:\n")[1]
    assert (
        "    output: '(3,000 items, 97 KB as JSON; `opswald show --step 1` shows it whole)" in state
    )
    assert "changes from step 2:\n  + tool_outputs[1] = " in out
    assert len(out) < 2000
    code, out, _ = run(capsys, "show", str(path), "--step", "3", "--json")
    assert json.loads(out)["state"]["tool_outputs"][0]["output"] == rows  # machines: whole


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", str(DECLINED), "--json")
    data = json.loads(out)
    assert code == 0 and data["total_steps"] == 2
    assert data["steps"][1]["error"].startswith("PaymentDeclined: ")
    assert data["error"]["type"] == "PaymentDeclined"
    assert set(data["error"]) == {"type", "message", "module"}  # no empty args/attributes
    code, out, _ = run(capsys, "show", str(REFUND), "--step", "2", "--json")
    step = json.loads(out)
    assert step["step"]["tool"] == "lookup_order"
    assert step["state"]["tool_outputs"][0]["output"]["total"] == 120.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--step", "9"], "--step 9: the golden has steps 1..6"),
        (["--type", "llm,robot"], "--type: unknown step type 'robot'; use llm, tool, user, state"),
        (["--steps", "8-2"], "--steps: '8-2' is not a range of steps 1..6"),
        (["--steps", "a-b"], "--steps: 'a-b' is not a range like 5-12"),
    ],
)
def test_show_rejects_bad_input(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "show", str(REFUND), *argv)
    assert (code, out) == (4, "")
    assert err == f"error: {message}\n"


def test_diff_of_two_steps(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "diff", str(REFUND), "--steps", "1", "4")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "state after step 1 → state after step 4 of 6"
    assert lines[1].startswith("+ tool_outputs[0] = ")
    assert "lookup_order" in lines[1]
    code, out, _ = run(capsys, "diff", str(REFUND), "--steps", "1", "4", "--json")
    changes = json.loads(out)["changes"]
    assert len(changes) == len(lines) - 1
    assert all(
        full.startswith(shown.rstrip("…")) for full, shown in zip(changes, lines[1:], strict=True)
    )
    code, _, err = run(capsys, "diff", str(REFUND), "--steps", "1", "40")
    assert code == 4 and "the golden has steps 1..6" in err


def test_diff_of_two_sessions_shows_figures(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    snapshot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    actual = tmp_path / "refund.actual.yaml"
    session = opswald.load(REFUND)
    third = session.step_list[2]
    assert third.type == "llm_call" and third.cost is not None
    third.cost = third.cost * 2
    third.output.content = "Let me refund it."  # type: ignore[union-attr]
    opswald.dump(session, actual)
    shutil.copy(REFUND, tmp_path / "refund.golden.yaml")
    monkeypatch.chdir(tmp_path)  # short paths: the header fits the width on any machine
    code, out, _ = run(capsys, "diff", "refund.golden.yaml", "refund.actual.yaml")
    assert code == 1
    lines = out.splitlines()
    assert lines[1] == "first difference: step 3 of 6 · llm_call sim-small"
    assert lines[-1].startswith("figures: cost $0.00072 → $0.00097 (+")
    assert all(len(line) <= 80 for line in lines)
    assert out == snapshot
    code, out, _ = run(capsys, "diff", str(REFUND), str(actual), "--json")
    data = json.loads(out)
    assert (code, data["equal"], data["first_step"]) == (1, False, 3)
    assert data["deltas"]["cost"]["change"] == pytest.approx(third.cost / 2)
    assert run(capsys, "diff", str(REFUND), str(REFUND))[0] == 0


def test_diff_of_durations_under_a_millisecond(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    actual = tmp_path / "refund.actual.yaml"
    session = opswald.load(REFUND)
    assert session.metadata["duration_ms"] == 0.646
    session.metadata["duration_ms"] = 0.3
    opswald.dump(session, actual)
    code, out, _ = run(capsys, "diff", str(REFUND), str(actual))
    assert code == 0, out
    assert out.splitlines()[-1] == "figures: duration ms 0.6 ms → 0.3 ms (-54%)"


def test_diff_leaves_out_how_a_run_was_made(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A fork's saved actual records where it went live and its modifications: that is
    not a difference in what the agent did."""
    actual = tmp_path / "refund.actual.yaml"
    session = opswald.load(REFUND)
    session.metadata["fork"] = {"step": 2, "modifications": {"tool_result": 1}}
    session.metadata["modifications"] = {"model": "sim-large"}
    opswald.dump(session, actual)
    code, out, _ = run(capsys, "diff", str(REFUND), str(actual))
    assert code == 0, out
    assert "no differences" in out


def _golden(path: Path, tools: list[tuple[str, int]]) -> Path:
    """A golden: a snapshot, the tool calls given (name, x), a snapshot."""
    steps = [{"type": "state", "variables": {"phase": "start"}}]
    steps += [{"type": "tool_call", "tool": t, "input": {"x": x}, "output": x} for t, x in tools]
    steps.append({"type": "state", "variables": {"phase": "done"}})
    numbered = [{"step": i, **step} for i, step in enumerate(steps, start=1)]
    opswald.dump(opswald.Session.model_validate({"name": "one", "steps": numbered}), path)
    return path


def test_diff_lines_up_an_inserted_step(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One step inserted between two is that one difference, numbered in the second file;
    the steps after it are not changed steps."""
    old = _golden(tmp_path / "old.yaml", [("a", 1), ("b", 2)])
    new = _golden(tmp_path / "new.golden.yaml", [("a", 1), ("audit", 1), ("b", 2)])
    monkeypatch.chdir(tmp_path)  # short paths: lines about the steps, not the width
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run(capsys, "diff", old.name, new.name)
    assert code == 1
    assert out.splitlines()[1:-1] == [
        "first difference: step 3 of 5 in new.golden.yaml, inserted · tool_call audit",
        "[- old.yaml] [+ new.golden.yaml]",
        "step 3 inserted: tool_call audit",
        '  + {"tool": "audit", "input": {"x": 1}, "output": 1}',
    ]
    code, out, _ = run(capsys, "diff", new.name, old.name, "--mode", "short")
    assert out.splitlines()[1:-1] == [
        "first difference: step 3 of 5, removed · tool_call audit",
        "[- new.golden.yaml] [+ old.yaml]",
        'step 3 removed: tool_call audit {"tool": "audit", "input": {"x": 1}, "output": 1}',
    ]
    code, out, _ = run(capsys, "diff", old.name, new.name, "--json")
    data = json.loads(out)
    assert (data["first_step"], data["first_step_b"]) == (None, 3)
    assert [
        (d["step"], d["step_b"], d["change"], d["whole_step"]) for d in data["differences"]
    ] == [(None, 3, "inserted", True)]


def test_diff_names_an_element_inserted_in_a_list_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A tool inserted in a request's list is that one difference, not every later tool
    changed; removed, it is named at its index in the first file."""

    def golden(path: Path, tools: list[str]) -> Path:
        step = {
            "step": 1,
            "type": "llm_call",
            "model": "m1",
            "input": {"messages": [], "tools": [{"name": t} for t in tools]},
        }
        opswald.dump(opswald.Session.model_validate({"name": "t", "steps": [step]}), path)
        return path

    old = golden(tmp_path / "old.yaml", ["lookup", "policy", "refund"])
    new = golden(tmp_path / "new.yaml", ["lookup", "fraud", "policy", "refund"])
    code, out, _ = run(capsys, "diff", str(old), str(new), "--mode", "short")
    assert code == 1
    assert out.splitlines()[2:] == [
        "[- old.yaml] [+ new.yaml]",
        'step 1 › input.tools[1]: inserted {"name": "fraud"}',
    ]
    code, out, _ = run(capsys, "diff", str(new), str(old), "--mode", "short")
    assert out.splitlines()[3:] == ['step 1 › input.tools[1]: removed {"name": "fraud"}']
    # --json names the change as the text does, each field difference its own kind
    for a, b, change in ((old, new, "inserted"), (new, old, "removed")):
        code, out, _ = run(capsys, "diff", str(a), str(b), "--json")
        [entry] = json.loads(out)["differences"]
        assert (entry["where"], entry["change"], entry["whole_step"]) == (
            "step 1 › input.tools[1]",
            change,
            False,
        )


def test_diff_names_both_numbers_of_a_changed_step_that_moved(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _golden(tmp_path / "old.yaml", [("a", 1), ("b", 2)])
    new = _golden(tmp_path / "new.yaml", [("a", 1), ("audit", 1), ("b", 3)])
    monkeypatch.chdir(tmp_path)  # short paths: lines about the steps, not the width
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run(capsys, "diff", old.name, new.name, "--mode", "short")
    assert code == 1
    assert out.splitlines()[2:-1] == [
        "[- old.yaml] [+ new.yaml]; step N/M: step N of old.yaml, step M of new.yaml",
        'step 3 inserted: tool_call audit {"tool": "audit", "input": {"x": 1}, "output": 1}',
        "step 3/4 › input.x: 2 → 3",
        "step 3/4 › output: 2 → 3",
    ]
    code, out, _ = run(capsys, "diff", old.name, new.name, "--json")
    changed = json.loads(out)["differences"][1]
    assert changed["where"] == "step 3/4 › input.x"
    assert (changed["step"], changed["step_b"], changed["change"]) == (3, 4, "changed")


def test_diff_of_back_to_back_snapshots_names_the_one_removed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Three snapshots with no call between them, the first gone in the second file: that
    is the one difference; the other two face their equals, not the ones before them."""

    def golden(path: Path, phases: list[str]) -> Path:
        steps: list[dict[str, Any]] = [{"type": "tool_call", "tool": "a", "input": {}}]
        steps += [{"type": "state", "variables": {"phase": p}} for p in phases]
        steps.append({"type": "tool_call", "tool": "b", "input": {}})
        numbered = [{"step": i, **step} for i, step in enumerate(steps, start=1)]
        opswald.dump(opswald.Session.model_validate({"name": "s", "steps": numbered}), path)
        return path

    old = golden(tmp_path / "old.yaml", ["start", "middle", "done"])
    new = golden(tmp_path / "new.yaml", ["middle", "done"])
    code, out, _ = run(capsys, "diff", str(old), str(new), "--mode", "short")
    assert code == 1
    assert out.splitlines()[1:-1] == [
        "first difference: step 2 of 5, removed · state variables",
        "[- old.yaml] [+ new.yaml]",
        'step 2 removed: state variables {"variables": {"phase": "start"}}',
    ]
    code, out, _ = run(capsys, "diff", str(new), str(old), "--json")
    data = json.loads(out)
    assert [(d["step"], d["step_b"], d["change"]) for d in data["differences"]] == [
        (None, 2, "inserted")
    ]


def test_analyze(capsys: pytest.CaptureFixture[str], snapshot: Any) -> None:
    code, out, _ = run(capsys, "analyze", str(REFUND), str(DECLINED), "--slow-ms", "0.4")
    assert code == 0
    assert "card_declined: 2 steps, 302 tokens, $0.00019" in out
    assert "  step 2 of 2 · tool_call charge_card failed: PaymentDeclined: card" in out
    assert "    fix: the session input has `card-4242` and `42.5`." in out
    code, out, _ = run(capsys, "analyze", str(GOLDENS), "--json")
    data = json.loads(out)
    assert {d["name"] for d in data} >= {"refund_flow", "card_declined"}
    refund = next(d for d in data if d["name"] == "refund_flow")
    assert [s["step"] for s in refund["costly_steps"]] == [5, 3, 1]
    assert refund["by_model"]["sim-small"]["calls"] == 3
    assert refund["cost"] == pytest.approx(sum(s["cost"] for s in refund["costly_steps"]))
    declined = next(d for d in data if d["name"] == "card_declined")
    assert [e["step"] for e in declined["error_analysis"]] == [2]
    assert "card-4242" in declined["error_analysis"][0]["fix"]


def test_analyze_text(capsys: pytest.CaptureFixture[str], tmp_path: Path, snapshot: Any) -> None:
    """With recorded durations the analysis is stable: snapshot it."""
    path = tmp_path / "slow.golden.yaml"
    session = opswald.load(REFUND)
    for step, ms in zip(session.step_list, [6200.0, 40.0, 900.0, 12.0, 5400.0, None], strict=True):
        step.duration_ms = ms
    session.metadata["duration_ms"] = 12600.0
    opswald.dump(session, path)
    code, out, _ = run(capsys, "analyze", str(path))
    assert code == 0
    assert "  latency: 2 steps slower than 5,000 ms" in out
    # the time is the three calls' together, not each one's
    assert "    llm_call      3 steps,  12,500 ms in all (100% of step time)" in out.splitlines()
    assert out == snapshot


def test_golden_note(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "refund.golden.yaml"
    shutil.copy(REFUND, path)
    code, out, _ = run(capsys, "golden", "note", str(path), "--step", "4", "refund", "policy v2")
    assert (code, out) == (0, f"noted at step 4 of 6 in {path}\n")
    assert [(n.text, n.step) for n in opswald.load(path).notes] == [("refund policy v2", 4)]
    code, out, _ = run(capsys, "show", str(path), "--steps", "4")
    assert "      note: refund policy v2" in out.splitlines()
    code, _, err = run(capsys, "golden", "note", str(path), "--step", "7", "late")
    assert code == 4 and "--step 7: the golden has steps 1..6" in err


KEY = "sk-proj-" + "AbCdEfGhIjKlMnOpQrStUvWx" * 2  # an OpenAI key's shape


def test_golden_note_replaces_the_secrets_in_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """QA (probe25 #1): a note was written as typed, a key in it in clear in a file meant
    for review and commit; it is written as a recording is, its secrets replaced."""
    path = tmp_path / "refund.golden.yaml"
    shutil.copy(REFUND, path)
    code, out, _ = run(capsys, "golden", "note", str(path), "--step", "4", f"rotated {KEY}")
    assert code == 0
    assert "note: secrets in the note were replaced, as everything opswald writes" in out
    assert KEY not in path.read_text()
    assert [n.text for n in opswald.load(path).notes] == ["rotated <redacted:openai-key>"]


@pytest.mark.parametrize("command", ["show", "show-step", "show-json", "diff", "analyze"])
def test_show_diff_and_analyze_replace_the_secrets_of_a_golden_written_by_hand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """QA (probe25 #2): a golden edited by hand with a key in a model's answer: `show`,
    `diff` and `analyze` printed it, where the viewer replaces it."""
    text = REFUND.read_text()
    golden = tmp_path / "refund.golden.yaml"
    golden.write_text(text.replace("Refunded $120.00", f"Refunded $120.00 (key {KEY})"))
    assert KEY in golden.read_text()
    other = tmp_path / "other.golden.yaml"
    other.write_text(text)
    args = {
        "show": ["show", str(golden)],
        "show-step": ["show", str(golden), "--step", "6"],
        "show-json": ["show", str(golden), "--json"],
        "diff": ["diff", str(other), str(golden)],
        "analyze": ["analyze", str(golden)],
    }[command]
    code, out, err = run(capsys, *args)
    assert code == (1 if command == "diff" else 0)  # diff: the sessions differ
    assert KEY not in out + err
    if command != "analyze":
        assert "<redacted:openai-key>" in out


def test_golden_note_keeps_the_goldens_comments(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Adding a note changes only `notes:`: comments elsewhere stay; one inside the old
    `notes:` block cannot, and the command says so."""
    path = tmp_path / "refund.golden.yaml"
    text = REFUND.read_text().replace("\n  - step: 4\n", "\n  # reviewed\n  - step: 4\n", 1)
    path.write_text(text + "notes:\n  - text: first  # from the review\n")
    code, out, _ = run(capsys, "golden", "note", str(path), "--step", "4", "second")
    assert code == 0
    assert out.splitlines()[1] == (
        f"note: 1 comment line in {path} was dropped (goldens are rewritten in canonical "
        "form: comments stay only on the steps and keys written unchanged); keep review "
        "notes with `opswald golden note`"
    )
    assert "\n  # reviewed\n  - step: 4\n" in path.read_text()
    assert [n.text for n in opswald.load(path).notes] == ["first", "second"]


HAND_EXPECT = """\
# judged as agreed in SUP-42
expect:
  output: {match: exact}  # the whole answer
  requests:
    normalize:
      '\\d{4}-\\d\\d-\\d\\d': <date>
  tool_calls: {ignore_args: [request_id, "*.ts"]}
  budgets:
    cost: 0.05  # dollars
"""


def test_golden_note_keeps_the_top_level_keys_as_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A note changes `notes:` and nothing else: `expect:`, `tags:` and `description:`
    written by hand in another form than the canonical one (flow style, the long form of
    a shorthand, a `normalize:` mapping, comments inside) stay byte for byte."""
    path = tmp_path / "refund.golden.yaml"
    text = REFUND.read_text()
    text = text.replace("tags:\n  - critical\n  - refunds\n", "tags: [critical, refunds]  # ours\n")
    text = text.replace(
        "description: Refunds a delivered order; memory snapshots and a cost budget.\n",
        "description: >-  # folded\n  Refunds a delivered order;\n  memory snapshots.\n",
    )
    head, expect = text.split("\nexpect:\n")
    assert "\n" not in expect.rstrip("\n").replace("\n  ", ""), "expect is the last key"
    path.write_text(head + "\n" + HAND_EXPECT)
    before = path.read_text()
    code, out, _ = run(capsys, "golden", "note", str(path), "--step", "4", "refund policy v2")
    assert (code, out) == (0, f"noted at step 4 of 6 in {path}\n")
    after = path.read_text()
    assert after == before + "notes:\n  - text: refund policy v2\n    step: 4\n"
    assert opswald.load(path).notes[0].text == "refund policy v2"


def test_golden_note_keeps_a_json_goldens_expect_as_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """In a JSON golden, `expect:` keeps the form it was written in (the long form of
    `output`, a `normalize` mapping), not the canonical one."""
    path = tmp_path / "card_declined.golden.json"
    data = json.loads(DECLINED.read_text())
    data["expect"] = {
        "output": {"match": "exact"},
        "requests": {"normalize": {"\\d+": "<n>"}},
        "tool_calls": {"ignore_args": ["request_id"]},
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    code, _, _ = run(capsys, "golden", "note", str(path), "looked at")
    assert code == 0
    written = json.loads(path.read_text())
    assert written["expect"] == data["expect"]
    assert written["notes"] == [{"text": "looked at"}]


def _with_notes(tmp_path: Path) -> Path:
    path = tmp_path / "refund.golden.yaml"
    notes = (
        "notes:\n  - text: on the refund\n    step: 4\n  - text: beyond\n    step: 9\n"
        "  - text: before\n    step: 0\n  - text: whole\n"
    )
    path.write_text(REFUND.read_text() + notes)
    return path


def test_show_lists_a_note_on_a_step_the_golden_does_not_have(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A note on step 9 of 6 (or step 0) was shown nowhere; it is listed with the notes
    on the whole golden, as the viewer lists it, saying the golden has no such step."""
    path = _with_notes(tmp_path)
    code, out, _ = run(capsys, "show", str(path))
    assert code == 0
    lines = out.splitlines()
    assert "note: whole" in lines
    assert "note: step 9 (the golden has steps 1..6): beyond" in lines
    assert "note: step 0 (the golden has steps 1..6): before" in lines
    assert "      note: on the refund" in lines
    code, out, _ = run(capsys, "show", str(path), "--json")
    shown = json.loads(out)
    assert shown["notes"] == [
        "step 9 (the golden has steps 1..6): beyond",
        "step 0 (the golden has steps 1..6): before",
        "whole",
    ]
    assert [s["notes"] for s in shown["steps"]][3] == ["on the refund"]


def test_upgrade(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current = tmp_path / "refund.golden.yaml"
    shutil.copy(REFUND, current)
    before = current.read_bytes()
    code, out, _ = run(capsys, "upgrade", str(tmp_path))
    assert code == 0 and current.read_bytes() == before
    assert out.splitlines() == [f"up to date: {current}", "0 upgraded, 0 failed, 1 up to date"]
    newer = tmp_path / "newer.golden.yaml"
    newer.write_text("schema_version: 7\nname: n\ninput: 1\n")
    code, out, _ = run(capsys, "upgrade", str(newer))
    assert code == 1
    assert "schema_version 7 is newer than this pytest-opswald reads (1)" in out
    # a migration from a (hypothetical) version 0 that called `input` `request`
    monkeypatch.setitem(
        MIGRATIONS,
        0,
        lambda d: {**{k: v for k, v in d.items() if k != "request"}, "input": d.get("request")},
    )
    old = tmp_path / "old.golden.yaml"
    old.write_text("schema_version: 0\nname: old\nrequest: {q: hi}\nsteps: []\noutput: done\n")
    assert run(capsys, "upgrade", "--check", str(old))[0] == 1
    code, out, _ = run(capsys, "upgrade", str(old))
    assert code == 0 and f"upgraded: {old} (schema 0 → 1)" in out
    session = opswald.load(old)
    assert (session.schema_version, session.input, session.output) == (1, {"q": "hi"}, "done")


@pytest.mark.parametrize(
    ("argv", "example"),
    [
        (["show"], "opswald show goldens/refund.golden.yaml --type llm,tool"),
        (["diff"], "--steps 3 5"),
        (["analyze"], "opswald analyze goldens/ --slow-ms 2000"),
        (["upgrade"], "--check in CI"),
        (["golden", "note"], "opswald golden note goldens/refund.golden.yaml --step 4"),
    ],
)
def test_help_has_an_example(
    capsys: pytest.CaptureFixture[str], argv: list[str], example: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    assert example in capsys.readouterr().out


def test_validate_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(REFUND, tmp_path / "refund.golden.yaml")
    (tmp_path / "bad.golden.yaml").write_text("name: x\nsteps: [{step: 1, type: robot}]\n")
    code, out, _ = run(capsys, "validate", str(tmp_path), "--json")
    data = json.loads(out)
    assert (code, data["valid"], data["invalid"]) == (1, 1, 1)
    bad, good = data["goldens"]
    assert bad["ok"] is False and "bad.golden.yaml:2" in bad["error"]
    assert good == {
        "path": str(tmp_path / "refund.golden.yaml"),
        "ok": True,
        "stub": False,
        "steps": 6,
    }


def test_every_command_has_an_example_in_its_help() -> None:
    from opswald.cli import _commands, build_parser

    commands = dict(_commands(build_parser()))
    assert {"show", "diff", "analyze", "upgrade", "golden note", "traces list", "import"} <= set(
        commands
    )
    missing = [name for name, parser in commands.items() if "example" not in parser.format_help()]
    assert missing == []


def test_errors_are_shown_as_python_prints_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A recorded KeyError('Book') reads `KeyError: 'Book'` in show and analyze, as in the
    failure headline and as Python prints it."""
    import traceback

    from opswald.session import ErrorInfo, Session

    printed = traceback.format_exception_only(KeyError("Book"))[-1].strip()
    error = {"type": "KeyError", "message": "Book"}
    session = Session.model_validate(
        {
            "name": "broken",
            "steps": [{"step": 1, "type": "tool_call", "tool": "lookup", "error": error}],
            "output": None,
            "error": error,
        }
    )
    assert ErrorInfo.model_validate(error).text() == printed
    path = tmp_path / "broken.golden.yaml"
    opswald.dump(session, path)
    for command in (["show", str(path)], ["analyze", str(path)]):
        _, out, _ = run(capsys, *command)
        assert printed in out, out
        assert "KeyError: Book" not in out


def test_analyze_upgrade_and_html_without_paths_take_the_ini_folders(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `pytest --opswald-goldens` without paths: testpaths and each folder that
    opswald_goldens names (lines, spaces or glob patterns)."""
    for folder, golden in (("services/a/goldens", REFUND), ("services/b/goldens", DECLINED)):
        (tmp_path / folder).mkdir(parents=True)
        shutil.copy(golden, tmp_path / folder)
    (tmp_path / "tests").mkdir()
    shutil.copy(REFUND, tmp_path / "unlisted.golden.yaml")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\ntestpaths = tests\nopswald_goldens =\n    services/b/goldens\n"
        "    services/[a]/goldens\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "analyze", "--json")
    assert (code, err) == (0, "")
    assert [d["name"] for d in json.loads(out)] == ["card_declined", "refund_flow"]
    code, out, _ = run(capsys, "upgrade", "--check")
    assert code == 0
    assert out.splitlines() == [
        "up to date: services/b/goldens/card_declined.golden.json",
        "up to date: services/a/goldens/refund.golden.yaml",
        "0 to upgrade, 0 failed, 2 up to date",
    ]
    code, out, _ = run(capsys, "html", "-o", "v.html")
    assert code == 0 and out.startswith("wrote v.html: 2 goldens"), out
    page = (tmp_path / "v.html").read_text()
    assert "services/b/goldens, services/a/goldens" in page  # the title names the folders
    assert "unlisted.golden.yaml" not in page


RATIO_AGENT = """
import opswald


@opswald.llm
def chat(*, model, messages):
    return {"content": "divide"}


@opswald.tool
def ratio(a, b):
    return a / b if b else float("inf")


def run(input):
    chat(model="m", messages=[{"role": "user", "content": "1 / 0?"}])
    r = ratio(a=1.0, b=0.0)
    opswald.state(memory={"ratio": r, "mean": float("nan"), "low": float("-inf")})
    return {"ratio": r}
"""


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_are_json_in_goldens_show_and_the_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tool returns infinity: the JSON golden, `show --json` and the JSON report are JSON
    (no `Infinity` or `NaN`), and replay reads the golden back to the same floats."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(ratioagent=RATIO_AGENT, conftest="import ratioagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = ratioagent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "ratio.golden.json"
    golden.write_text('{"name": "ratio", "input": {}}')
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    text = golden.read_text()
    data = _strict_json(text)
    assert data["steps"][1]["output"] == data["output"]["ratio"] == float("inf")
    assert data["steps"][2]["memory"]["mean"] == {"$float": "NaN"}
    # replayed: read back to the same floats (a NaN in the output would not equal itself)
    result = pytester.runpytest("--opswald-goldens")
    assert result.ret == 0, result.stdout.str()
    # a hand-written cost of infinity reaches the report's figures (a cost change of NaN)
    priced = text.replace('"model": "m",', '"model": "m",\n      "cost": 1e999,')
    assert priced != text
    golden.write_text(priced)
    result = pytester.runpytest("--opswald-goldens", "--opswald-json=report.json")
    assert result.ret == 0, result.stdout.str()
    report = (pytester.path / "report.json").read_text()
    _strict_json(report)
    assert '"change": {"$float": "NaN"}' in report
    # merged (shards), read back as written: the same report
    merged = pytester.path / "merged.json"
    capsys.readouterr()
    code, _, _ = run(
        capsys, "report", "merge", str(pytester.path / "report.json"), "-o", str(merged)
    )
    assert code == 0 and merged.read_text() == report

    capsys.readouterr()  # what the pytest runs printed
    code, out, _ = run(capsys, "show", str(golden), "--step", "3", "--json")
    shown = _strict_json(out)
    assert code == 0 and shown["step"]["memory"]["low"] == float("-inf")
    assert shown["state"]["tool_outputs"][0]["output"] == float("inf")
    assert shown["step"]["memory"]["mean"] == {"$float": "NaN"}


def test_analyze_reports_a_malformed_golden_and_analyses_the_rest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(REFUND, tmp_path / "refund.golden.yaml")
    (tmp_path / "a_broken.golden.yaml").write_text("name: x\nsteps: [\n")
    code, out, _ = run(capsys, "analyze", str(tmp_path))
    assert code == 1
    assert out.startswith(f"error: {tmp_path / 'a_broken.golden.yaml'}:"), out
    assert "refund_flow: 6 steps" in out
    code, out, _ = run(capsys, "analyze", str(tmp_path), "--json")
    assert code == 1
    rows = json.loads(out)
    assert sorted(rows[0]) == ["error", "file"]
    assert rows[1]["name"] == "refund_flow"


NEWER = "schema_version 99 is newer than this pytest-opswald reads (1): upgrade pytest-opswald"


@pytest.mark.parametrize("command", ["validate", "show", "analyze", "html"])
def test_a_newer_schema_version_is_said_as_upgrade_says_it(
    command: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    golden = tmp_path / "v99.golden.yaml"
    golden.write_text("name: v99\nschema_version: 99\ninput: {}\nsteps: []\noutput: 1\n")
    code, out, err = run(capsys, command, str(golden), *(["-o", "p.html"] * (command == "html")))
    assert code == 1
    assert f"{golden}:2: {NEWER}" in out + err, out + err


def test_a_newer_schema_version_fails_pytest_collection_as_upgrade_says_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".golden.yaml", v99="name: v99\nschema_version: 99\ninput: {}\n")
    result = pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines([f"*v99.golden.yaml:2: {NEWER}*"])


@pytest.mark.parametrize("text", ["schema_version: yes\n", "schema_version: true\n"])
def test_a_bool_schema_version_is_refused_as_the_string_is(
    text: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    golden = tmp_path / "b.golden.yaml"
    golden.write_text(text + "name: b\ninput: {}\nsteps: []\noutput: 1\n")
    code, out, _ = run(capsys, "validate", str(golden))
    assert code == 1
    assert f"{golden}:1: schema_version: Input should be 1 (got true)" in out, out
    as_json = tmp_path / "b.golden.json"
    as_json.write_text('{"schema_version": true, "name": "b", "input": {}, "output": 1}')
    code, out, _ = run(capsys, "validate", str(as_json))
    assert code == 1 and "schema_version: Input should be 1 (got true)" in out, out


def test_upgrade_names_the_line_of_a_schema_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    golden = tmp_path / "bogus.golden.yaml"
    golden.write_text("name: b\ninput: {}\nsteps:\n  - step: 1\n    type: bogus\noutput: 1\n")
    code, out, _ = run(capsys, "upgrade", "--check", str(golden))
    assert code == 1
    assert out.startswith(f"error: {golden}:5: step 1 › type: unknown step type 'bogus'"), out


def test_diff_lines_fit_the_terminal_width(capsys: pytest.CaptureFixture[str]) -> None:
    """Whole-step lines, the header and the figures line of `opswald diff` (COLUMNS=80)."""
    code, out, _ = run(capsys, "diff", str(REFUND), str(DECLINED))
    assert code == 1
    assert "removed" in out and "figures:" in out
    assert max(display_width(line) for line in out.splitlines()) <= 80, out


def test_diff_wraps_a_changed_value_rather_than_cutting_the_change_away(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A long system prompt changed at its end, at 80 columns (a pipe, a CI log): the
    lines were cut at the width, with the change in the part cut away."""
    said = "You are a travel assistant. Use the tools; never invent bookings."
    longer = said + " Check every booking reference twice before you answer. Be brief."
    golden = tmp_path / "a.golden.yaml"
    golden.write_text(REFUND.read_text().replace(said, longer))
    actual = tmp_path / "b.golden.yaml"
    actual.write_text(REFUND.read_text().replace(said, longer.replace("brief", "kind")))
    code, out, _ = run(capsys, "diff", str(golden), str(actual))
    assert code == 1
    assert max(display_width(line) for line in out.splitlines()) <= 80, out
    joined = " ".join(line.strip() for line in out.splitlines())
    assert "- '" + longer + "'" in joined, out
    assert "+ '" + longer.replace("brief", "kind") + "'" in joined, out


def test_wrapped_lines_keep_every_character() -> None:
    text = "    step 1 › content: '" + "a" * 150 + "' → 'short " + "查" * 50 + "'"
    lines = wrapped(text, 40)
    assert all(display_width(line) <= 40 for line in lines), lines
    assert "".join(lines).replace(" ", "") == text.replace(" ", ""), lines
    assert lines[0].startswith("    step 1")
    assert all(line.startswith("      ") for line in lines[1:])


def test_show_measures_wide_characters_in_columns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A CJK tool name takes two columns a character: clipped by columns, not characters."""
    golden = tmp_path / "wide.golden.yaml"
    golden.write_text(REFUND.read_text().replace("lookup_order", "查询订单" * 12 + "📦" * 5))
    code, out, _ = run(capsys, "show", str(golden))
    assert code == 0 and "查询订单" in out
    assert max(display_width(line) for line in out.splitlines()) <= 80, out


def test_display_width_and_clip() -> None:
    assert display_width("ab查📦") == 6
    assert clip("查询订单", 5) == "查询…"
    assert display_width(clip("查询订单", 6)) <= 6
    assert clip("abc", 3) == "abc"


UNMEASURED = """name: hand
input: hi
steps:
  - step: 1
    type: llm_call
    model: m
    input: {messages: [{role: user, content: hi}]}
    output: {content: ok}
    cost: 0.002
  - step: 2
    type: tool_call
    tool: lookup
    input: {q: hi}
    output: {a: 1}
output: ok
"""


def test_show_and_analyze_say_a_figure_was_not_recorded_not_that_it_was_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A hand-written golden records no usage and no time: its rows say `-`, and so do the
    totals, not `0 tokens` and `0 ms` as if the calls took none."""
    path = tmp_path / "hand.golden.yaml"
    path.write_text(UNMEASURED)
    code, out, _ = run(capsys, "show", str(path))
    assert code == 0
    head = out.splitlines()[0]
    assert "no usage recorded" in head and "no time recorded" in head, head
    assert "0 tokens" not in out and "0 ms" not in out, out
    code, out, _ = run(capsys, "analyze", str(path))
    assert code == 0
    assert "hand: 2 steps, no usage recorded, $0.0020, no time recorded" in out, out
    assert "    m: 1 call, no usage recorded, $0.0020" in out, out
    assert "0 tokens" not in out and "0 ms" not in out, out


def test_analyze_json_rounds_its_sums_and_counts_unpriced_calls_per_type() -> None:
    """Costs summed in floats (0.0045 + 0.00075) are given as the figure they add up to,
    and a type's cost is marked a lower bound where a call of it has none."""
    from opswald.cli_inspect import analyze
    from opswald.session import Session

    session = Session.model_validate(
        {
            "name": "sum",
            "input": {},
            "steps": [
                {
                    "step": 1,
                    "type": "llm_call",
                    "model": "m",
                    "output": {"content": "a"},
                    "cost": 0.0045,
                },
                {
                    "step": 2,
                    "type": "llm_call",
                    "model": "m",
                    "output": {"content": "b"},
                    "cost": 0.00075,
                },
                {"step": 3, "type": "llm_call", "model": "n", "output": {"content": "c"}},
            ],
        }
    )
    data = analyze(session, slow_ms=1000)
    assert data["cost"] == 0.00525
    assert data["by_type"]["llm_call"]["cost"] == 0.00525
    assert data["by_type"]["llm_call"]["unpriced_calls"] == 1
    assert data["by_model"]["m"]["cost"] == 0.00525


# a gather: the task that asked first (lane 1) and its two branches (lanes 2 and 3), whose
# calls interleaved; a snapshot (never made by a call: no lane) after them
FAN_OUT = """name: fan_out
input: {cities: [Rome, Oslo]}
steps:
  - step: 1
    type: llm_call
    lane: 1
    model: m
    input: {messages: [{role: user, content: plan}]}
    output: {content: search both}
    duration_ms: 5.0
  - step: 2
    type: tool_call
    lane: 2
    tool: search
    input: {city: Rome}
    output: [AF1]
  - step: 3
    type: tool_call
    lane: 3
    tool: search
    input: {city: Oslo}
    output: [SK2]
  - step: 4
    type: llm_call
    lane: 3
    model: m
    input: {messages: [{role: user, content: Oslo}]}
    output: {content: SK2}
  - step: 5
    type: llm_call
    lane: 2
    model: m
    input: {messages: [{role: user, content: Rome}]}
    output: {content: AF1}
  - step: 6
    type: state
    memory: {found: 2}
output: AF1, SK2
"""


def test_show_lists_each_steps_lane(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A session whose calls came from more than one thread or task: a `lane` column says
    which made each call, so the calls that ran together can be told apart; a step without
    one (a snapshot) has `-`. --json gives `lane` on the steps that have one."""
    golden = tmp_path / "fan_out.golden.yaml"
    golden.write_text(FAN_OUT)
    code, out, _ = run(capsys, "show", str(golden))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["step", "lane", "type"], out
    rows = [line.split()[:4] for line in lines[2:8]]
    assert rows == [
        ["1", "1", "llm_call", "m"],
        ["2", "2", "tool_call", "search"],
        ["3", "3", "tool_call", "search"],
        ["4", "3", "llm_call", "m"],
        ["5", "2", "llm_call", "m"],
        ["6", "-", "state", "memory"],
    ], out
    assert max(display_width(line) for line in lines) <= 80, out
    # the other columns stay where their headers are
    assert lines[1].index("duration") + len("duration") == len(lines[2])
    code, out, _ = run(capsys, "show", str(golden), "--type", "tool", "--json")
    steps = json.loads(out)["steps"]
    assert [(s["step"], s["lane"]) for s in steps] == [(2, 2), (3, 3)]
    code, out, _ = run(capsys, "show", str(golden), "--type", "state", "--json")
    assert "lane" not in json.loads(out)["steps"][0]
    code, out, _ = run(capsys, "show", str(golden), "--step", "5")
    assert "\n  lane: 2\n" in out, out


def test_show_of_a_session_without_lanes_has_no_lane_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "show", str(REFUND))
    assert code == 0 and "lane" not in out
    assert out.splitlines()[1].split()[:2] == ["step", "type"]
    code, out, _ = run(capsys, "show", str(REFUND), "--json")
    assert all("lane" not in s for s in json.loads(out)["steps"])


def test_a_token_total_some_calls_did_not_report_reads_as_a_part(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """QA (probe30 #7f): a golden whose calls reported usage but one gave the total as a
    plain number, as if it were whole; it reads as a part, as a partly priced cost does."""
    path = tmp_path / "part.golden.yaml"
    path.write_text(
        "name: part\ninput: hi\nsteps:\n"
        "  - step: 1\n    type: llm_call\n    model: m\n"
        "    input: {messages: [{role: user, content: hi}]}\n    output: {content: ok}\n"
        "    usage: {input_tokens: 150, output_tokens: 15}\n"
        "  - step: 2\n    type: llm_call\n    model: m\n"
        "    input: {messages: [{role: user, content: again}]}\n    output: {content: ok}\n"
        "output: ok\n"
    )
    code, out, _ = run(capsys, "show", str(path))
    assert code == 0, out
    headline = " ".join(out.split("\nstep ")[0].split())  # on one or more lines, as fits
    assert "2 steps (2 LLM, 0 tool), ≥ 165 tokens, 1 call without usage" in headline, out
