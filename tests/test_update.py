"""--opswald-update and record: what is written, what is kept, what is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import STUB, record, write
from opswald import load
from opswald.session import AnyStep

GOLDEN = "goldens/flight.golden.yaml"


def _step_blocks(text: str) -> list[str]:
    """The text of each `- step: N` item of a canonical golden."""
    body = "\n" + text.split("\nsteps:\n", 1)[1].split("\noutput:", 1)[0]
    blocks = body.split("\n  - step: ")
    return ["  - step: " + b for b in blocks[1:]]


def test_update_keeps_prefix_bytes_and_rewrites_the_rest(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    golden_path = project.path / GOLDEN
    # expect/notes written by hand after recording must survive the update
    text = golden_path.read_text().replace(
        "tags: [critical]\n",
        "notes:\n  - text: booking is the risky step\n    step: 5\ntags: [critical]\n",
        1,
    )
    golden_path.write_text(text)
    before = golden_path.read_bytes()
    other = write(project.path / "goldens" / "other.golden.yaml", before.decode())
    other.write_text(other.read_text().replace("name: book_flight", "name: untouched"))
    other_before = other.read_bytes()

    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "-k", "book_flight", "--opswald-allow-side-effects"
    )
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    after = golden_path.read_bytes()
    assert after != before
    old_blocks, new_blocks = _step_blocks(before.decode()), _step_blocks(after.decode())
    assert old_blocks[:4] == new_blocks[:4], "steps before the divergence must be byte-identical"
    assert "passenger: Bob" in new_blocks[4]
    assert other.read_bytes() == other_before, "deselected goldens are never touched"
    session = load(golden_path)
    assert session.notes[0].text == "booking is the risky step"
    assert session.tags == ["critical"]

    result = project.runpytest("--opswald-goldens", "-k", "book_flight")
    result.assert_outcomes(passed=1, deselected=1)


def test_update_writes_served_results_as_recorded_when_the_agent_changes_them(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay hands the agent copies: an agent that changes a tool's result in place
    changes neither the golden in memory nor what an update writes back."""
    monkeypatch.setenv("AGENT_MUTATES", "1")
    record(project)
    golden_path = project.path / GOLDEN
    recorded = load(golden_path)
    assert recorded.step_list[1].output == {"passenger": "Alice", "seat": "12A"}
    assert recorded.step_list[2].memory == {"seat": "12A!"}

    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    updated = load(golden_path)
    assert updated.step_list[1].output == {"passenger": "Alice", "seat": "12A"}
    assert updated.step_list[2].memory == {"seat": "12A!"}

    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)


def test_update_does_not_run_side_effect_tools(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    log = project.path / "side_effects.log"
    before_log = log.read_text()
    before = (project.path / GOLDEN).read_bytes()
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*step 5*book has side effects and would run live*", "*--opswald-allow-side-effects*"]
    )
    assert log.read_text() == before_log
    assert (project.path / GOLDEN).read_bytes() == before


def test_a_divergence_before_a_side_effect_tool_says_the_update_needs_permission(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prompt of step 4 changed and the golden books at step 5: the fix line says that
    an update reaching `book` stops there without --opswald-allow-side-effects (it does)."""
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "prompt")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    fix = [line for line in result.outlines if "fix: " in line]
    assert fix == [
        "fix: if the new behaviour is intended, accept it with --opswald-update (the golden "
        "then calls book, marked side_effects=True: an update that reaches it stops there "
        "unless given --opswald-allow-side-effects)"
    ]
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*step 5*book has side effects and would run live*"])
    result = project.runpytest("--opswald-goldens", "--opswald-allow-side-effects")
    result.assert_outcomes(failed=1)
    assert "fix: if the new behaviour is intended, accept it with --opswald-update" in (
        result.outlines
    ), "allowed already: nothing to add"
    monkeypatch.setenv("AGENT_VARIANT", "output")  # leaves the golden after step 5
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    assert "side_effects=True" not in result.stdout.str()


def test_no_writes_on_ci_unless_forced(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    stub = (project.path / GOLDEN).read_bytes()
    result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CI environment variable is set*--opswald-force*"])
    assert (project.path / GOLDEN).read_bytes() == stub
    result = project.runpytest("--opswald-goldens", "--opswald-mode=record", "--opswald-force")
    result.assert_outcomes(passed=1)
    assert not load(project.path / GOLDEN).is_stub


def test_on_ci_nothing_runs_live_only_to_be_thrown_away(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA (probe27 #3): on CI without --opswald-force a recording (a stub, rerecord) ran
    the agent live — its model calls, its side-effect tools — and then did not write it.
    Now it is not run, and says so; an update replays as a plain run does (no live calls
    from its divergence on), its fix line saying why nothing is written."""
    record(project)
    log = project.path / "side_effects.log"
    logged = log.read_text()
    golden = (project.path / GOLDEN).read_bytes()
    stub = write(project.path / "goldens" / "stub.golden.yaml", STUB.replace("book_flight", "s"))
    monkeypatch.setenv("CI", "true")
    result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*stub.golden.yaml: not recorded yet (a stub: no steps, no output); it is not "
            "recorded: the CI environment variable is set*--opswald-force (the agent was not "
            "run: a recording runs it live)",
            "*fix: record it locally and commit it, or add --opswald-force*",
        ]
    )
    result = project.runpytest("--opswald-goldens", "--opswald-mode=rerecord")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*flight.golden.yaml: not re-recorded (--opswald-mode=rerecord)*"])
    monkeypatch.setenv("AGENT_VARIANT", "args")  # diverges at step 5, the booking
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects", "-k", "flight"
    )
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        ["*step 5 of 7*", "fix: not written: the CI environment variable is set*"]
    )
    assert log.read_text() == logged, "nothing ran live"
    assert (project.path / GOLDEN).read_bytes() == golden and stub.read_text().startswith("name")
    assert load(stub).is_stub
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects", "-k", "flight",
        "--opswald-force",
    )  # fmt: skip
    result.assert_outcomes(passed=1, deselected=1)
    assert log.read_text() == logged + "AF1 Bob\n", "forced: the update ran the booking live"
    # an update under modifications runs live to write: refused unrun (QA probe28 #3)
    for given in (["--opswald-modify", "model=m2"], ["--opswald-variant", "big:model=m2"]):
        result = project.runpytest("--opswald-goldens", "--opswald-update", "-k", "flight", *given)
        result.assert_outcomes(failed=1, deselected=1)
        result.stdout.fnmatch_lines(
            [
                "*flight.golden.yaml: not updated: the CI environment variable is set*an update "
                "under modifications (model=m2) runs the agent live to write what it gets (the "
                "agent was not run)",
            ]
        )
    assert log.read_text() == logged + "AF1 Bob\n"


def test_an_update_records_a_stub_without_its_side_effect_tools_unless_allowed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA (probe27 #4): `--opswald-update` recorded a stub with its side-effect tools run
    live, where an update runs none unless --opswald-allow-side-effects (DESIGN §3a);
    `--opswald-mode=record` is the run that records with every tool."""
    log = project.path / "side_effects.log"
    logged = log.read_text() if log.exists() else ""
    stub = (project.path / GOLDEN).read_bytes()
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*book has side effects and would run live*",
            "*hint: re-run with --opswald-allow-side-effects to let it run, or record it "
            "with --opswald-mode=record",
        ]
    )
    assert (log.read_text() if log.exists() else "") == logged
    assert (project.path / GOLDEN).read_bytes() == stub
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden recorded*"])
    assert log.read_text() == logged + "AF1 Alice\n"


@pytest.mark.parametrize("value", ["false", "0", "No", " off ", ""])
def test_ci_set_to_a_false_value_is_not_ci(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """`CI=false` (or 0, no, off, empty) is how a shell says the run is not on CI:
    goldens are written as on a developer's machine."""
    monkeypatch.setenv("CI", value)
    result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(passed=1)
    assert "CI environment variable" not in result.stdout.str()
    assert not load(project.path / GOLDEN).is_stub


@pytest.mark.parametrize("value", ["1", "TRUE", "woodpecker"])
def test_ci_set_to_anything_else_blocks_writes(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    stub = (project.path / GOLDEN).read_bytes()
    result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CI environment variable is set*--opswald-force*"])
    assert (project.path / GOLDEN).read_bytes() == stub


def test_a_golden_whose_file_name_is_near_the_limit_is_recorded_and_updated(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 242-character file name: the golden's temp file beside it must still fit."""
    goldens = project.path / "goldens"
    path = goldens / ("f" * 230 + ".golden.yaml")
    (goldens / "flight.golden.yaml").rename(path)
    record(project)
    assert not load(path).is_stub
    monkeypatch.setenv("AGENT_VARIANT", "output")
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    assert "(v2)" in path.read_text()
    assert [p.name for p in goldens.iterdir()] == [path.name], "no temp files left behind"


def test_passing_goldens_are_not_rewritten(project: pytest.Pytester) -> None:
    record(project)
    before = (project.path / GOLDEN).read_bytes()
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    assert "updated" not in result.stdout.str().split("goldens:")[-1]
    assert (project.path / GOLDEN).read_bytes() == before


def test_rerecord_rewrites_complete_goldens(project: pytest.Pytester) -> None:
    record(project)
    path = project.path / GOLDEN
    path.write_text(path.read_text().replace("answer after 2 messages", "hand edited"))
    result = project.runpytest("--opswald-goldens", "--opswald-mode=rerecord")
    result.assert_outcomes(passed=1)
    assert "hand edited" not in path.read_text()


def test_budgets_fail_and_are_never_blessed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    path = project.path / GOLDEN
    recorded = load(path)
    total_cost = sum(s.cost or 0 for s in recorded.step_list if s.type == "llm_call")
    text = path.read_text().replace(
        "tags: [critical]\n",
        f"expect:\n  budgets:\n    cost: {total_cost / 2}\ntags: [critical]\n",
        1,
    )
    path.write_text(text)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*budget exceeded: cost*"])

    # relative budget: the prompt grows at step 4, so do tokens; update refuses to bless it
    path.write_text(text.replace(f"cost: {total_cost / 2}", 'total_tokens: "+5%"'))
    before = path.read_bytes()
    monkeypatch.setenv("AGENT_VARIANT", "prompt")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*budget exceeded: total_tokens*", "*never blessed*"])
    assert path.read_bytes() == before


def test_expected_error_golden(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_VARIANT", "raise")
    recorded = record(project)
    recorded.stdout.fnmatch_lines(
        ["*note: flight.golden.yaml: recorded a session that ends with RuntimeError: agent broke"]
    )
    session = load(project.path / GOLDEN)
    assert session.error is not None and session.error.type == "RuntimeError"
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    monkeypatch.setenv("AGENT_VARIANT", "raise2")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the agent failed with another RuntimeError message*",
            "*- 'RuntimeError: agent broke'*",
            "*+ 'RuntimeError: agent broke badly'*",
        ]
    )
    path = project.path / GOLDEN
    path.write_text(
        path.read_text().replace(
            "tags: [critical]\n", "expect:\n  error: type\ntags: [critical]\n", 1
        )
    )
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    monkeypatch.setenv("AGENT_VARIANT", "")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*step 6*the agent made a call the golden does not have*"])


@pytest.mark.parametrize("variant", ["raise", "keyerror"])
def test_an_update_does_not_bless_a_crash_the_golden_did_not_have(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    """A bug in the agent (or a missing key) written as what it should do would pass from
    then on: the update leaves the golden failing and unwritten; a recording writes it."""
    record(project)
    path = project.path / GOLDEN
    before = path.read_bytes()
    monkeypatch.setenv("AGENT_VARIANT", variant)
    replay = project.runpytest("--opswald-goldens")
    replay.assert_outcomes(failed=1)
    replay.stdout.fnmatch_lines(
        [
            "*the agent raised*",
            "*fix: fix the agent (an update does not bless a crash the golden did not have);"
            " if failing is now what the agent should do, record the golden again with"
            " --opswald-mode=rerecord",
        ]
    )
    assert "accept it with --opswald-update" not in replay.stdout.str()
    update = project.runpytest("--opswald-goldens", "--opswald-update")
    update.assert_outcomes(failed=1)
    update.stdout.fnmatch_lines(
        [
            "*the agent raised*",
            "*fix: not written: an update does not bless a crash the golden did not have;"
            " fix the agent; if failing*--opswald-mode=rerecord",
        ]
    )
    assert path.read_bytes() == before
    again = project.runpytest(
        "--opswald-goldens", "--opswald-mode=rerecord", "--opswald-allow-side-effects"
    )
    assert again.ret == 0, again.stdout.str()
    error = load(path).error
    raised = "RuntimeError" if variant == "raise" else "KeyError"
    assert error is not None and error.type == raised


@pytest.mark.parametrize(
    ("setting", "variant", "accepting"),
    [
        ("same", "early", ["fixed"]),  # the agent no longer fails
        ("any", "early", ["fixed"]),
        ("type", "early", ["fixed"]),
        ("same", "raise_other", ["any"]),  # another error type
        ("type", "raise_other", ["any"]),
        ("same", "raise2", ["type", "any"]),  # the same type, another message
        ("fixed", "raise", ["same", "type", "any"]),  # still fails as recorded
        ("fixed", "raise2", ["type", "any"]),
    ],
)
def test_the_error_hint_names_only_the_settings_that_accept_the_run(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    variant: str,
    accepting: list[str],
) -> None:
    """The golden ends with RuntimeError('agent broke'); the hint suggests the values of
    expect.error under which this run passes, never the one already set."""
    monkeypatch.setenv("AGENT_VARIANT", "raise")
    record(project)
    path = project.path / GOLDEN
    text = path.read_text().replace(
        "tags: [critical]\n", f"expect:\n  error: {setting}\ntags: [critical]\n", 1
    )
    path.write_text(text)
    monkeypatch.setenv("AGENT_VARIANT", variant)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    (hint,) = [line for line in result.stdout.lines if "hint:" in line]
    named = re.findall(r"`(\w+)`", hint)
    assert named == accepting, hint
    (fix,) = [line for line in result.stdout.lines if line.startswith("fix:")]
    if setting == "fixed":  # an update never changes expect: it cannot bless this run
        assert "cannot fix this" in fix and "accept it" not in fix, fix
    else:
        assert "accept it with --opswald-update" in fix, fix
    for value in accepting:  # following the hint makes the run pass
        path.write_text(text.replace(f"error: {setting}", f"error: {value}"))
        project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_update_under_xdist_writes_each_failing_golden_once(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    goldens = project.path / "goldens"
    for name in ("a", "b", "c"):
        text = (goldens / "flight.golden.yaml").read_text().replace("book_flight", f"book_{name}")
        (goldens / f"{name}.golden.yaml").write_text(text)
    record(project, "-n", "2")
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects", "-n", "2"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*goldens: 0 passed, 0 failed, 4 updated*"])
    assert not list(goldens.glob(".*opswald-tmp")), "no temp files may be left behind"
    project.runpytest("--opswald-goldens", "-n", "2").assert_outcomes(passed=4)
    for path in goldens.iterdir():
        assert "passenger: Bob" in path.read_text()


def test_an_update_keeps_notes_on_their_steps_line_endings_and_written_expectations(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping step 5 renumbers what follows: notes follow their steps, a note on the
    dropped step stays on the session saying where it was; a CRLF golden stays CRLF, with
    its prefix byte-identical; expectations written with their default values stay."""
    record(project)
    golden_path = project.path / GOLDEN
    notes = "".join(
        f"  - text: {text}\n    step: {n}\n"
        for n, text in ((2, "seat lookup"), (5, "booking moves money"), (6, "last answer"))
    )
    text = golden_path.read_text().replace(
        "tags: [critical]\n",
        "expect:\n  output: exact\n  error: same\n  state: report\nnotes:\n"
        + notes
        + "tags: [critical]\n",
        1,
    )
    golden_path.write_bytes(text.replace("\n", "\r\n").encode())
    before = golden_path.read_bytes()

    monkeypatch.setenv("AGENT_VARIANT", "drop")
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    after = golden_path.read_bytes()
    assert after.count(b"\r\n") == after.count(b"\n"), "every line still ends in CRLF"
    old, new = before.decode().replace("\r\n", "\n"), after.decode().replace("\r\n", "\n")
    assert _step_blocks(old)[:4] == _step_blocks(new)[:4]
    # written as it was written (not reordered), since the update leaves it as it was
    assert "expect:\n  output: exact\n  error: same\n  state: report\n" in new
    session = load(golden_path)
    assert [s.type for s in session.step_list][4:] == ["llm_call", "state"]
    assert [(n.step, n.text) for n in session.notes] == [
        (2, "seat lookup"),
        (None, "(on step 5, tool_call book, before an update replaced it) booking moves money"),
        (5, "last answer"),
    ]
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)


def test_a_step_past_the_goldens_last_is_not_called_step_n_of_fewer(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_VARIANT", "early")
    record(project)
    monkeypatch.delenv("AGENT_VARIANT")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "step 6 of this run · llm_call m1: *after the golden's last step, step 5 (tool_call "
            "book)",
            "*hint: every recorded call was already used (the golden has 5 steps)",
        ]
    )
    result.stdout.no_fnmatch_line("*step 6 of 5*")


def test_a_replaced_step_pairs_with_the_new_call_of_the_same_arguments() -> None:
    """The agent now looks one more thing up first: the notes on lookup(a) and lookup(b)
    follow those calls, not the first and second lookups."""
    from opswald.session import ToolCallStep
    from opswald.writeback import _paired

    def calls(*keys: str) -> list[ToolCallStep]:
        return [
            ToolCallStep(step=n, tool="lookup", input={"key": k}) for n, k in enumerate(keys, 1)
        ]

    assert _paired(calls("a", "b"), calls("extra", "a", "b"), {}) == {1: 2, 2: 3}
    assert _paired(calls("a", "b"), calls("x", "y"), {}) == {1: 1, 2: 2}  # else in order


STUB_AGENT = """
import os

import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    usage = {"input_tokens": 1000, "output_tokens": 100}
    cost = {} if os.environ.get("NO_COST") else {"cost": 0.02}
    return {"content": "ok", "finish_reason": "stop", "usage": usage, **cost}


def run(input):
    chat(model="acme-unpriced", messages=[{"role": "user", "content": "a"}])
    chat(model="acme-unpriced", messages=[{"role": "user", "content": "b"}])
    return {"answer": "ok"}
"""


@pytest.mark.parametrize(
    ("expect", "no_cost", "shown", "fix"),
    [
        (
            "budgets: {cost: 0.01, llm_calls: 1}",
            False,
            "budget exceeded: cost $0.0400 > $0.0100",
            "not written: a budget violation, a blocked side effect or a failing breakpoint "
            "is never blessed",
        ),
        (
            "output: {match: contains, value: nothere}",
            False,
            "output differs (match: contains): the output does not contain 'nothere'",
            "not written: the golden's own `expect:` fails this run whatever the golden holds*",
        ),
        (
            "budgets: {cost: 0.01}",
            True,
            "budget cost cannot be checked: no step of the run reports a cost (steps 1 and 2: "
            "no price for model 'acme-unpriced')",
            "not written: a cost budget that cannot be checked is never blessed; configure a "
            "price for the model (or have the agent report cost), then run this command again",
        ),
    ],
)
@pytest.mark.parametrize("mode", ["record", "rerecord"])
def test_a_stub_is_not_recorded_when_its_own_expect_fails_the_recording(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    expect: str,
    no_cost: bool,
    shown: str,
    fix: str,
    mode: str,
) -> None:
    """Recording a stub honours its `expect:` as its next replay would: a recording that
    breaks a budget, misses an output value or has no cost to check fails, unwritten."""
    monkeypatch.delenv("CI", raising=False)
    if no_cost:
        monkeypatch.setenv("NO_COST", "1")
    pytester.makepyfile(sagent=STUB_AGENT, conftest="import sagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = sagent:run\n")
    stub = pytester.mkdir("goldens") / "stub.golden.yaml"
    stub.write_text(f"name: stub\ninput: {{q: x}}\nexpect:\n  {expect}\n")
    before = stub.read_bytes()
    result = pytester.runpytest("--opswald-goldens", f"--opswald-mode={mode}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([shown, f"fix: {fix}", "goldens: 0 passed, 1 failed"])
    assert "golden recorded" not in result.stdout.str()
    assert stub.read_bytes() == before


@pytest.mark.parametrize(
    ("output", "helps"),
    [
        ("{match: contains}", True),  # the golden's own output is the value
        ("{match: json_subset}", True),
        ("{match: contains, value: Rome is sunny}", False),
        ("{match: json_subset, value: {answer: Rome is sunny}}", False),
        ("{match: similar, threshold: 0.99, value: {answer: Rome is sunny, n: 5}}", False),
    ],
)
def test_the_fix_line_offers_an_update_exactly_where_it_helps(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, output: str, helps: bool
) -> None:
    """`contains` and `json_subset` with no `value:` compare with the golden's output, which
    an update rewrites; with a `value:` (any matcher) an update cannot help."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("ANSWER", raising=False)
    pytester.makepyfile(
        vagent="import os\n\n\ndef run(input):\n"
        '    return {"answer": os.environ.get("ANSWER", "Rome is sunny"), "n": 5}\n',
        conftest="import vagent\n",
    )
    pytester.makeini("[pytest]\nopswald_adapter = vagent:run\n")
    golden = pytester.mkdir("goldens") / "v.golden.yaml"
    golden.write_text(f"name: v\ninput: {{q: x}}\nexpect:\n  output: {output}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("ANSWER", "Paris is cloudy")
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    (fix,) = [line for line in result.outlines if line.startswith("fix:")]
    update = pytester.runpytest("--opswald-goldens", "--opswald-update")
    if helps:
        assert fix == "fix: if the new behaviour is intended, accept it with --opswald-update"
        update.assert_outcomes(passed=1)
        pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    else:
        assert fix.startswith("fix: --opswald-update cannot fix this"), fix
        update.assert_outcomes(failed=1)


NOTED_AGENT = """
import os

import opswald


@opswald.llm(provider="openai", api="openai.chat")
def chat(*, model, messages):
    return {"content": "hi", "finish_reason": "stop"}


@opswald.tool
def lookup(q: str) -> str:
    return q.upper()


def run(input):
    if os.environ.get("PLANNER"):
        chat(model="gpt-4o", messages=[{"role": "user", "content": "plan"}])
    model = os.environ.get("MODEL", "gpt-4o-mini")
    a = chat(model=model, messages=[{"role": "user", "content": input["q"]}])
    return {"answer": a["content"], "tool": lookup(q=input["q"])}
"""


def _noted_project(pytester: pytest.Pytester, notes: dict[int, str]) -> Path:
    pytester.makepyfile(agent=NOTED_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    path = write(pytester.mkdir("goldens") / "one.golden.yaml", "name: one\ninput:\n  q: hello\n")
    record(pytester)
    text = (
        path.read_text()
        + "notes:\n"
        + "".join(f"  - text: {text}\n    step: {n}\n" for n, text in notes.items())
    )
    if notes:
        path.write_text(text)
    return path


def test_a_note_on_a_model_call_stays_on_it_when_only_the_model_changes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model upgrade: step 1 is still the same model call at the same place, its note
    stays there; the tool call keeps its note too."""
    monkeypatch.delenv("PLANNER", raising=False)
    path = _noted_project(pytester, {1: "planner call", 2: "CRM lookup"})
    monkeypatch.setenv("MODEL", "gpt-4o")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    session = load(path)
    assert session.step_list[0].model == "gpt-4o"  # type: ignore[union-attr]
    assert [(n.step, n.text) for n in session.notes] == [(1, "planner call"), (2, "CRM lookup")]


def test_a_note_on_a_model_call_the_update_removed_becomes_a_session_note(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner call (another model) is gone: its note is not moved onto the call of
    another model that took its place in the order; that call keeps its own note."""
    monkeypatch.setenv("PLANNER", "1")
    path = _noted_project(pytester, {1: "planner", 2: "answer", 3: "CRM lookup"})
    monkeypatch.delenv("PLANNER")
    monkeypatch.setenv("MODEL", "gpt-4o-mini")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    assert [(n.step, n.text) for n in load(path).notes] == [
        (None, "(on step 1, llm_call gpt-4o, before an update replaced it) planner"),
        (1, "answer"),
        (2, "CRM lookup"),
    ]


def test_model_calls_pair_by_their_place_when_no_call_of_their_model_is_left() -> None:
    """Same call, else the same model at the same place, else the same model in order,
    else the model call at the same place among the model calls of its turn."""
    from opswald.session import LLMCallStep, UserInputStep
    from opswald.writeback import _paired

    def calls(*models: str) -> list[AnyStep]:
        steps: list[AnyStep] = []
        for n, model in enumerate(models, 1):
            if model == "user":
                steps.append(UserInputStep(step=n, content="next"))
            else:
                steps.append(LLMCallStep(step=n, model=model, input={"messages": [{"n": n}]}))
        return steps

    assert _paired(calls("mini", "mini"), calls("4o", "4o", "4o"), {}) == {1: 1, 2: 2}
    # the router moves to 4o: the answer (4o) stays the second call, not the first 4o
    assert _paired(calls("mini", "4o"), calls("4o", "4o"), {}) == {1: 1, 2: 2}
    # the 4o planner is gone: the mini call keeps its pairing, the planner has none
    assert _paired(calls("4o", "mini"), calls("mini"), {}) == {2: 1}
    # places count within a turn: a turn with one more call does not shift the next turn
    old = calls("mini", "user", "mini")
    new = calls("4o", "4o", "user", "4o")
    assert _paired(old, new, {}) == {1: 1, 2: 3, 3: 4}


def test_an_update_writes_a_golden_whose_agent_no_longer_makes_a_call(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call the agent made was served and the output is the same, but a recorded
    call went unused: the replay fails on it, so the update writes the session without it
    (it "passed" unwritten, and the replay went on failing)."""
    monkeypatch.setenv("PLANNER", "1")
    path = _noted_project(pytester, {})
    monkeypatch.delenv("PLANNER")
    pytester.runpytest("--opswald-goldens").assert_outcomes(failed=1)
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    assert [s.type for s in load(path).step_list] == ["llm_call", "tool_call"]
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


SNAPSHOT_AGENT = """
import os

import opswald


@opswald.tool
def a(x: int) -> int:
    return x


def run(input):
    opswald.state(variables={"phase": "start"})
    a(x=int(os.environ.get("X", "1")))
    opswald.state(variables={"phase": "done"})
    return "done"
"""


def _snapshot_golden(pytester: pytest.Pytester) -> Path:
    """A recorded golden whose timestamps all lie in 2020 (recorded long ago)."""
    pytester.makepyfile(agent=SNAPSHOT_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    path = write(pytester.mkdir("goldens") / "one.golden.yaml", "name: one\ninput: {q: hi}\n")
    record(pytester)
    text = re.sub(r"'\d{4}-\d\d-\d\dT", "'2020-01-01T", path.read_text())
    path.write_text(text)
    return path


def _stamps(path: Path) -> list[str]:
    return [s.timestamp or "" for s in load(path).step_list]


def test_a_rerecord_writes_an_unchanged_snapshot_as_taken_now(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("X", raising=False)
    path = _snapshot_golden(pytester)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=rerecord")
    result.assert_outcomes(passed=1)
    stamps = _stamps(path)
    assert not any(s.startswith("2020-") for s in stamps), stamps
    assert not load(path).metadata["recorded_at"].startswith("2020-")


def test_an_update_keeps_a_snapshots_time_only_where_the_timeline_stays_in_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 2 diverges and is recorded now: the unchanged snapshot before it keeps its
    recorded time (a small diff), the unchanged one after it is written as taken now."""
    monkeypatch.delenv("X", raising=False)
    path = _snapshot_golden(pytester)
    old = _stamps(path)
    monkeypatch.setenv("X", "2")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    stamps = _stamps(path)
    assert stamps[0] == old[0]
    assert not stamps[1].startswith("2020-") and not stamps[2].startswith("2020-")
    assert stamps == sorted(stamps)


COMMENTED_AGENT = """
import os

import opswald


@opswald.tool
def a(x: int) -> str:
    return "line # 1\\n# heading, not a comment\\n"


@opswald.tool
def b(x: int) -> int:
    return x


def run(input):
    a(x=1)
    b(x=int(os.environ.get("X", "2")))
    return "done # final"
"""


def _commented_golden(pytester: pytest.Pytester) -> Path:
    return _recorded_one(pytester, COMMENTED_AGENT, expect="  budgets:\n    steps: 5\n")


def test_an_update_keeps_the_comments_of_the_parts_it_writes_unchanged(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Comments on step 1 (before the divergence), above it and in `expect:` stay where
    they were; the one on step 2, which the update re-recorded, cannot: the summary says
    so, and how to keep such a remark. The `#` in the recorded strings (quoted, and in a
    literal block) is text, not counted."""
    monkeypatch.delenv("X", raising=False)
    path = _commented_golden(pytester)
    text = path.read_text()
    for line, comment in (
        ("    tool: a\n", "    tool: a  # reviewed: the CRM call\n"),
        ("  - step: 1\n", "  # the lookup\n  - step: 1\n"),
        ("    tool: b\n", "    tool: b  # will change\n"),
        ("    steps: 5\n", "    steps: 5  # agreed in SUP-42\n"),
    ):
        assert text.count(line) == 1
        text = text.replace(line, comment)
    assert "# heading, not a comment" in text
    path.write_text(text)
    old_step_1 = _step_blocks(text)[0]
    monkeypatch.setenv("X", "3")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*1 golden updated*",
            "note: 1 comment line in one.golden.yaml was dropped (goldens are rewritten in "
            "canonical form*); keep review notes with `opswald golden note`",
        ]
    )
    after = path.read_text()
    assert _step_blocks(after)[0] == old_step_1
    assert "  # the lookup\n  - step: 1\n" in after
    assert "    steps: 5  # agreed in SUP-42\n" in after
    assert "# will change" not in after
    assert load(path).step_list[1].input == {"x": 3}  # type: ignore[union-attr]
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


HAND_HEADER = """\
name: one
description: >
  Looks the order up,
  then books it.
tags: [critical, billing]  # a flow list
timeout: 30  # generous: the CRM is slow
"""

HAND_EXPECT = """\
# how this golden is judged: agreed in SUP-42
expect:
  output: {match: exact}  # the whole answer
  requests:
    normalize:
      '\\d{4}-\\d\\d-\\d\\d': <date>   # dates in prompts
  # no more than this
  budgets: {steps: 5}
"""


@pytest.mark.parametrize("note", ["", "notes:\n  - text: reviewed  # by Ann\n    step: 1\n"])
def test_an_update_writes_the_top_level_keys_it_keeps_as_they_were_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, note: str
) -> None:
    """`expect:` (and `description:`, `tags:`, `timeout:`, `notes:`) written by hand in
    another form than the canonical one — flow style, a shorthand's long form, a
    `normalize:` mapping, a folded string, comments inside — are written back byte for
    byte by an update that does not change them: nothing of them is rewritten or
    dropped. Only the step the update re-recorded is written anew."""
    monkeypatch.delenv("X", raising=False)
    path = _commented_golden(pytester)
    recorded = path.read_text()
    body = recorded[recorded.index("metadata:\n") : recorded.index("expect:\n")]
    first = recorded.split("\n", 1)[0] + "\n"
    path.write_text(first + "schema_version: 1\n" + HAND_HEADER + body + HAND_EXPECT + note)
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    monkeypatch.setenv("X", "3")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    assert "dropped" not in result.stdout.str()
    after = path.read_text()
    for part in (
        "name: one\ndescription: >\n  Looks the order up,\n  then books it.\n",
        "tags: [critical, billing]  # a flow list\n",
        "timeout: 30  # generous: the CRM is slow\n",
        HAND_EXPECT,
        note,
    ):
        assert part in after, after
    assert load(path).step_list[1].input == {"x": 3}  # type: ignore[union-attr]
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


RENUMBERED_AGENT = """
import os

import opswald


@opswald.tool
def a(x: int) -> int:
    return x


@opswald.tool
def charge(x: int) -> int:
    return x


def run(input):
    a(x=1)
    a(x=2)
    if os.environ.get("AUDIT"):
        opswald.state(variables={"audit": True})
    charge(x=3)
    return "done"
"""


def _recorded_one(pytester: pytest.Pytester, agent: str, expect: str = "  state: exact\n") -> Path:
    """A project with `agent` and one golden (with `expect:` as given), recorded."""
    pytester.makepyfile(agent=agent)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    stub = "name: one\ninput: {q: hi}\nexpect:\n" + expect
    path = write(pytester.mkdir("goldens") / "one.golden.yaml", stub)
    record(pytester)
    return path


def test_a_comment_follows_its_unchanged_step_to_the_number_an_update_gives_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent now takes a snapshot before step 3 (snapshots are not matched: every
    call is still served): step 3 is written as recorded as step 4, and the comments on
    it and above it go with it; none is dropped."""
    monkeypatch.delenv("AUDIT", raising=False)
    path = _recorded_one(pytester, RENUMBERED_AGENT)
    text = path.read_text()
    for line, comment in (
        ("  - step: 3\n", "  # the charge, reviewed\n  - step: 3\n"),
        ("    tool: charge\n", "    tool: charge  # SUP-42\n"),
    ):
        assert text.count(line) == 1
        text = text.replace(line, comment)
    path.write_text(text)
    old_step_3 = _step_blocks(text)[2]
    monkeypatch.setenv("AUDIT", "1")
    pytester.runpytest("--opswald-goldens").assert_outcomes(failed=1)
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    assert "dropped" not in result.stdout.str()
    after = path.read_text()
    types = [s.type for s in load(path).step_list]
    assert types == ["tool_call", "tool_call", "state", "tool_call"]
    assert _step_blocks(after)[3] == old_step_3.replace("  - step: 3\n", "  - step: 4\n")
    assert "  # the charge, reviewed\n  - step: 4\n" in after
    assert "    tool: charge  # SUP-42\n" in after
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_an_update_keeps_a_note_on_a_step_the_golden_does_not_have(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A note on step 9 of a 3-step golden was written back as a note on the session
    saying an update had replaced its step ("(on step 9, a step, before an update
    replaced it)"): no step was replaced. It is kept as written while the session has no
    such step; one on step 4, which the update now writes, does not silently land on
    that new step: it goes on the session, saying the golden had no step 4."""
    monkeypatch.delenv("AUDIT", raising=False)
    path = _recorded_one(pytester, RENUMBERED_AGENT)
    notes = (
        "notes:\n  - text: beyond\n    step: 9\n  - text: before\n    step: 0\n"
        "  - text: next\n    step: 4\n"
    )
    path.write_text(path.read_text() + notes)
    assert len(load(path).step_list) == 3
    monkeypatch.setenv("AUDIT", "1")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    updated = load(path)
    assert len(updated.step_list) == 4
    assert [(n.text, n.step) for n in updated.notes] == [
        ("beyond", 9),
        ("before", 0),
        ("(on step 4, a step the golden did not have) next", None),
    ]
    assert "replaced" not in path.read_text()


SKIPPED_SNAPSHOT_AGENT = """
import os

import opswald


@opswald.tool
def a(x: int) -> int:
    return x


def run(input):
    a(x=1)
    if not os.environ.get("SKIP"):
        opswald.state(variables={"phase": "start"})
    opswald.state(variables={"phase": "done"})
    a(x=2)
    return "done"
"""


def test_an_unchanged_snapshot_an_update_renumbers_is_kept_with_its_comment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run no longer takes the snapshot at step 2: the one at step 3 faces its own
    recorded one (not step 2's), so it is written as recorded, as step 2, with its
    comment."""
    monkeypatch.delenv("SKIP", raising=False)
    path = _recorded_one(pytester, SKIPPED_SNAPSHOT_AGENT)
    text = path.read_text()
    assert text.count("      phase: done\n") == 1
    path.write_text(text.replace("      phase: done\n", "      phase: done  # the end state\n"))
    recorded = load(path).step_list[2]
    monkeypatch.setenv("SKIP", "1")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    assert "dropped" not in result.stdout.str()
    written = load(path).step_list[1]
    assert written.model_dump(exclude={"step"}) == recorded.model_dump(exclude={"step"})
    assert "  - step: 2\n    type: state\n" in path.read_text()
    assert "      phase: done  # the end state\n" in path.read_text()
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("how", "said"),
    [
        (["--opswald-mode=live"], "--opswald-mode=live"),
        (["--opswald-mode=rerecord"], "--opswald-mode=rerecord"),
        (["-o", "opswald_mode=live"], "opswald_mode = live"),
        (["-o", "opswald_mode=rerecord"], "opswald_mode = rerecord"),
    ],
)
def test_an_update_with_a_mode_it_would_override_is_a_usage_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: list[str], said: str
) -> None:
    """A live run with --opswald-update ran as an update (a replay of the recorded calls),
    so a live regression passed, and a rerecord with it rewrote every golden, passing ones
    too, from scratch: one of the two settings was dropped without a word. Both are usage
    errors naming the setting and what each does; nothing is written."""
    record(project)
    before = (project.path / GOLDEN).read_bytes()
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects", *how
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    err = result.stderr.str()
    assert f"--opswald-update with {said}" in err, err
    assert "replays the recorded calls up to the first divergence" in err, err
    assert "--opswald-mode=rerecord" in err, err
    assert (project.path / GOLDEN).read_bytes() == before


def test_an_update_with_record_mode_records_stubs_and_updates_failing_goldens(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """record and update agree (both record a stub; the update rewrites failing complete
    goldens, which record replays), so the two together are no usage error."""
    record(project)
    write(project.path / "goldens" / "stub.golden.yaml", STUB.replace("book_flight", "new"))
    before = (project.path / GOLDEN).read_bytes()
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-mode=record",
        "--opswald-allow-side-effects",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    assert (project.path / GOLDEN).read_bytes() != before
    assert not load(project.path / "goldens" / "stub.golden.yaml").is_stub


def test_an_update_of_a_hand_written_golden_keeps_it_lenient_where_it_keeps_its_steps() -> None:
    """A golden written by hand leaves fields out of its steps (messages, provider), which
    replay does not compare; an update that keeps those steps as written must leave a
    golden that still replays, not one that now compares what its steps never held."""
    import opswald
    from opswald.engine.run import RunSettings, execute, judge
    from opswald.session import Session
    from opswald.writeback import blessed

    @opswald.llm
    def ask(*, model: str, messages: list[dict[str, str]]) -> dict[str, str]:
        raise AssertionError("replay answers it")

    @opswald.tool
    def lookup(order_id: str) -> dict[str, float]:
        raise AssertionError("replay answers it")

    def agent(task: dict[str, str]) -> dict[str, float]:
        ask(model="m1", messages=[{"role": "user", "content": task["q"]}])
        return {"total": lookup(order_id="ORD-1")["total"] + 1}

    golden = Session.model_validate(
        {
            "name": "hand",
            "input": {"q": "refund ORD-1"},
            "steps": [
                {"step": 1, "type": "llm_call", "model": "m1", "output": {"content": "look"}},
                {
                    "step": 2,
                    "type": "tool_call",
                    "tool": "lookup",
                    "input": {"order_id": "ORD-1"},
                    "output": {"total": 50.0},
                },
            ],
            "output": {"total": 52.0},  # the agent now answers 51.0: the output alone
        }
    )
    assert not judge(golden, execute(golden, agent, settings=RunSettings())).passed
    run = execute(golden, agent, settings=RunSettings(policy="update"))
    written = blessed(golden, run).session
    assert written.output == {"total": 51.0}
    assert [s.model_dump() for s in written.step_list] == [s.model_dump() for s in golden.step_list]
    verdict = judge(written, execute(written, agent, settings=RunSettings()))
    assert verdict.passed, verdict.findings
    assert "recorded_with" not in written.metadata


@pytest.mark.parametrize(
    ("variant", "changed", "noise"),
    [("prompt", "input.messages", True), ("temperature", "input.params", False)],
)
def test_the_hint_of_a_changed_request_offers_ignoring_noise_only_for_messages(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    variant: str,
    changed: str,
    noise: bool,
) -> None:
    """A date or an id in a message may be noise to ignore; another model, parameter or
    set of tools is the agent's choice, never noise (the hint offered to ignore it)."""
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", variant)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*hint: the request of step 4 changed in {changed}*"])
    assert ("if the change is noise" in result.stdout.str()) is noise
