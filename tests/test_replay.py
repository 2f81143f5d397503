"""The core loop, run as users run it: record a stub, replay it, change the agent."""

from __future__ import annotations

import traceback

import pytest

from conftest import record
from opswald import load

GOLDEN = "goldens/flight.golden.yaml"


def test_stub_replay_fails_with_the_fix(project: pytest.Pytester) -> None:
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not recorded yet*", "*--opswald-mode=record*"])


def test_record_then_replay_passes(project: pytest.Pytester) -> None:
    result = record(project)
    result.stdout.fnmatch_lines(["*1 golden recorded*"])
    session = load(project.path / GOLDEN)
    assert [s.type for s in session.step_list] == [
        "llm_call",
        "tool_call",
        "state",
        "llm_call",
        "tool_call",
        "llm_call",
        "state",
    ]
    first = session.step_list[0]
    assert first.usage is not None and first.usage.input_tokens == 40
    assert first.cost == pytest.approx(0.0004)
    assert first.duration_ms is not None and first.timestamp is not None
    assert session.output == {"answer": "answer after 2 messages", "who": "Alice"}
    assert session.metadata["duration_ms"] >= 0
    text = (project.path / GOLDEN).read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    assert "\ntags: [critical]\n" in text  # the stub's own form of a key it keeps

    side_effects = project.path / "side_effects.log"
    booked_once = side_effects.read_text()
    result = project.runpytest("--opswald-goldens", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*goldens/flight.golden.yaml::book_flight PASSED*"])
    assert side_effects.read_text() == booked_once, "replay must not run the tool body"


def test_changed_tool_arguments_name_the_step(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 5 of 7 · tool_call book: called book with other arguments*",
            "*step 5 › input.passenger: 'Alice' → 'Bob'*",
            "*accept it with --opswald-update*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("variant", "lines"),
    [
        (
            "prompt",
            [
                "*step 4 of 7 · llm_call m1: the agent sent another request*",
                "*step 4 › input.messages[[]1].content: 'book it' → 'book it now please'*",
            ],
        ),
        ("drop", ["*step 5 of 7 · tool_call book: the agent did not call book*"]),
        (
            "extra",
            [
                "step 6 of this run · tool_call lookup: the agent made a call the golden "
                "does not have, with *, after the golden's step 5 (tool_call book)"
            ],
        ),
        (
            "early",
            [
                "*step 6 of 7 · llm_call m1: the agent ended with 1 recorded call(s) "
                "unused: step 6 llm_call m1*"
            ],
        ),
        ("output", ["*output differs*", "*output.answer*"]),
        ("raise", ["*the agent raised RuntimeError: agent broke*"]),
    ],
)
def test_each_kind_of_divergence_names_its_step(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variant: str, lines: list[str]
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", variant)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(lines)


def test_an_agent_error_is_headed_as_python_prints_it(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`{}["Book"]` raises KeyError('Book'), which Python prints `KeyError: 'Book'`."""
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "keyerror")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    printed = traceback.format_exception_only(KeyError("Book"))[-1].strip()
    assert printed != "KeyError: Book"
    result.stdout.fnmatch_lines([f"the agent raised {printed}", f"  error: null → {printed!r}"])


def test_a_request_field_the_golden_leaves_out_is_shown_as_added(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 4 was recorded without params; sending temperature now adds the field."""
    record(project)
    step4 = load(project.path / GOLDEN).step_list[3]
    assert step4.type == "llm_call" and step4.input.params is None
    monkeypatch.setenv("AGENT_VARIANT", "temperature")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*step 4 › input.params: added", '*+ {"temperature": 0.5}', "*hint:*input.params*"]
    )
    result.stdout.no_fnmatch_line("*None*")


@pytest.mark.parametrize(
    ("variant", "follow", "not_suggested"),
    [
        ("case", "normalized", ["similar"]),  # whitespace and case only
        ("reworded", "similar", ["normalized"]),  # other words: normalized cannot help
        ("extra_key", "json_subset", ["normalized", "similar"]),  # a key added
    ],
)
def test_an_output_hint_suggests_what_accepts_the_change(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    variant: str,
    follow: str,
    not_suggested: list[str],
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", variant)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    (hint,) = [line for line in result.stdout.lines if "hint:" in line]
    assert f"`match: {follow}`" in hint, hint
    for other in not_suggested:
        assert other not in hint, hint
    path = project.path / GOLDEN
    path.write_text(
        path.read_text().replace(
            "tags: [critical]\n", f"expect:\n  output: {{match: {follow}}}\ntags: [critical]\n", 1
        )
    )
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_short_and_disabled_diff_modes(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    short = project.runpytest("--opswald-goldens", "--opswald-diff-mode=short").stdout.str()
    assert "step 5 › input.passenger: 'Alice' → 'Bob'" in short
    assert "- 'Alice'" not in short
    disabled = project.runpytest("--opswald-goldens", "--opswald-diff-mode=disabled").stdout.str()
    assert "step 5 of 7" in disabled
    assert "'Alice' → 'Bob'" not in disabled
    assert "- 'Alice'" not in disabled


def test_xdist_gives_the_same_results(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    goldens = project.path / "goldens"
    for name in ("a", "b", "c"):
        text = (goldens / "flight.golden.yaml").read_text().replace("book_flight", f"book_{name}")
        (goldens / f"{name}.golden.yaml").write_text(text)
    record(project, "-n", "2")
    serial = project.runpytest("--opswald-goldens")
    serial.assert_outcomes(passed=4)
    parallel = project.runpytest("--opswald-goldens", "-n", "2")
    parallel.assert_outcomes(passed=4)
    parallel.stdout.fnmatch_lines(["*goldens: 4 passed, 0 failed*"])
    monkeypatch.setenv("AGENT_VARIANT", "args")
    failing = project.runpytest("--opswald-goldens", "-n", "2")
    failing.assert_outcomes(failed=4)
    failing.stdout.fnmatch_lines(
        ["*step 5 › input.passenger: 'Alice' → 'Bob'*", "*goldens: 0 passed, 4 failed*"]
    )


REFUND_AGENT = """
import os

import opswald

TOOLS = [
    {"name": "lookup_order", "description": "Look an order up."},
    {"name": "check_policy", "description": "Check the refund policy."},
    {"name": "issue_refund", "description": "Refund an order."},
]
FRAUD = {"name": "fraud_check", "description": "Check for fraud."}


@opswald.llm
def chat(*, model, messages, tools):
    return {"content": "refunded", "tool_calls": None, "finish_reason": "stop"}


def run(input):
    change = os.environ.get("AGENT_CHANGE", "")
    tools = list(TOOLS)
    messages = [{"role": "system", "content": "You refund orders."}]
    if change == "tool":
        tools.insert(1, FRAUD)
    if change == "no_policy":
        del tools[1]
    if change == "system":
        messages.append({"role": "system", "content": "Be brief."})
    messages.append({"role": "user", "content": input["q"]})
    return {"answer": chat(model="m1", messages=messages, tools=tools)["content"]}
"""


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            "tool",
            'step 1 › input.tools[1]: inserted {"name": "fraud_check", '
            '"description": "Check for fraud."}',
        ),
        (
            "no_policy",
            'step 1 › input.tools[1]: removed {"name": "check_policy", '
            '"description": "Check the refund policy."}',
        ),
        (
            "system",
            'step 1 › input.messages[1]: inserted {"role": "system", "content": "Be brief."}',
        ),
    ],
)
def test_an_element_inserted_or_removed_in_a_request_list_is_one_difference(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, change: str, line: str
) -> None:
    """Not every later element changed and one added at the end."""
    monkeypatch.delenv("AGENT_CHANGE", raising=False)
    pytester.makepyfile(refunds=REFUND_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = refunds:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "refund.golden.yaml").write_text(
        "name: refund\ninput: {q: Refund ORD-1}\n"
    )
    record(pytester)
    monkeypatch.setenv("AGENT_CHANGE", change)
    result = pytester.runpytest("--opswald-goldens", "--opswald-diff-mode=short")
    result.assert_outcomes(failed=1)
    shown = [text.strip() for text in result.stdout.lines if " › " in text]
    assert shown == [line], result.stdout.str()
