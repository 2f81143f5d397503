"""A fork at step N forks at the golden's step N: the call that matches it gets the step
modifications, whatever the run's own number for it (other snapshots before it, the calls
of a burst starting in another order), and a fork that never reaches it fails."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

import opswald
from opswald.engine.run import RunSettings, execute
from opswald.session import LLMCallStep, Session, ToolCallStep

AGENT = """
import opswald


@opswald.llm
def chat(*, model, messages):
    last = messages[-1]
    if last["role"] == "user":
        return {"content": None, "finish_reason": "tool_calls",
                "tool_calls": [{"id": "c1", "name": "lookup",
                                "arguments": {"q": last["content"]}}]}
    return {"content": f"answer[{last['content']}]", "finish_reason": "stop"}


@opswald.tool
def lookup(q):
    return {"q": q, "hits": len(q)}


@opswald.tool(side_effects=True)
def issue_refund(q):
    return {"refunded": q}


def run(input, modifications):
    version = modifications.get("agent_version")
    messages = [{"role": "user", "content": input["q"]}]
    if version == "early_call":
        lookup(q="warm-up")                                   # a call the golden lacks
    reply = chat(model="m", messages=messages)                # golden step 1
    if version == "extra":
        opswald.state(memory={"early": True})                 # one snapshot more
    if version == "stop":
        return {"answer": "stopped early"}
    for call in reply["tool_calls"]:
        q = call["arguments"]["q"]
        found = lookup(q="other " + q if version == "diverge" else q)   # golden step 2
        messages.append({"role": "tool", "content": str(found)})
    if version != "fewer":
        opswald.state(memory={"n": len(messages)})            # golden step 3
    if version == "refund":
        issue_refund(q=input["q"])                            # a call the golden lacks
    return {"answer": chat(model="m", messages=messages)["content"]}  # golden step 4
"""


@pytest.fixture
def toy(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(toyagent=AGENT, conftest="import toyagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = toyagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "toy.golden.yaml").write_text("name: toy\ninput: {q: hello}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    types = [s["type"] for s in _load(pytester, "goldens/toy.golden.yaml")["steps"]]
    assert types == ["llm_call", "tool_call", "state", "llm_call"]
    return pytester


def _load(pytester: pytest.Pytester, path: str) -> dict[str, Any]:
    data = yaml.safe_load((pytester.path / path).read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("version", "fork_at", "modify", "answer", "run_step"),
    [
        # one snapshot fewer: golden step 4 is the run's step 3
        ("fewer", 4, "response=FORKED", "FORKED", 3),
        # one snapshot more: golden step 2 (the tool) is the run's step 3
        ("extra", 2, "tool_result={q: MOD, hits: 999}", "answer[{'q': 'MOD', 'hits': 999}]", 3),
    ],
)
def test_the_fork_modifies_the_goldens_step_n_whatever_the_snapshots_before_it(
    toy: pytest.Pytester, version: str, fork_at: int, modify: str, answer: str, run_step: int
) -> None:
    """State steps are snapshots, never matched: an agent that records one more or one
    fewer before step N still has golden step N's call forked, never another call, and the
    modification is never dropped (the run failed on the changed output, not passed)."""
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", f"--opswald-fork-at={fork_at}",
        "--opswald-modify", modify, "--opswald-modify", f"agent_version={version}",
        "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*forked at step {fork_at} (step {run_step} of this run)*"])
    actual = _load(toy, "actual/toy.actual.yaml")
    assert actual["output"] == {"answer": answer}
    fork = actual["metadata"]["fork"]
    assert fork["step"] == fork_at, "metadata.fork names the golden's step asked for"
    assert fork["run_step"] == run_step
    key = modify.split("=", 1)[0]
    assert set(fork["modifications"]) == {key}
    # the agent the golden was recorded with: the run numbers the step as the golden does
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", f"--opswald-fork-at={fork_at}",
        "--opswald-modify", modify, "--opswald-save-actual", "same",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*forked at step {fork_at}: the golden went on with*"])
    same = _load(toy, "same/toy.actual.yaml")
    assert same["output"] == {"answer": answer}
    assert same["metadata"]["fork"] == {"step": fork_at, "modifications": fork["modifications"]}


def test_the_fork_line_names_the_run_step_that_matched_step_n_after_going_live_earlier(
    toy: pytest.Pytester,
) -> None:
    """An agent that makes a call the golden lacks before its first step goes live there
    (its step 1), and its step 5 is golden step 4: the fork line names step 5, as
    `metadata.fork.run_step` does, and the new path is compared from it (no steps the
    golden never had are listed as added after the fork point)."""
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=4",
        "--opswald-modify", "response=FORKED", "--opswald-modify", "agent_version=early_call",
        "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*forked at step 4 (step 5 of this run): the golden went on with 1 step(s), "
         "this run with 1"]
    )  # fmt: skip
    assert ": added" not in result.stdout.str()
    actual = _load(toy, "actual/toy.actual.yaml")
    assert actual["output"] == {"answer": "FORKED"}
    assert actual["metadata"]["fork"]["run_step"] == 5


@pytest.mark.parametrize(
    ("version", "where"),
    [
        ("diverge", "the run went live at its step 2, where it left the golden"),
        ("stop", "the agent ended after the golden's step 1 without making that call"),
    ],
)
def test_a_fork_that_never_reaches_golden_step_n_fails_saying_so(
    toy: pytest.Pytester, version: str, where: str
) -> None:
    """The agent changed its tool arguments (the later model request differs from golden
    step 4's), or stopped early: no call matches step 4, so `response` is never applied,
    and the golden fails with that, not with some other step modified, nor passes."""
    path = toy.path / "goldens" / "toy.golden.yaml"
    text = path.read_text()
    path.write_text(text + "expect:\n  output: ignore\n  tool_calls: {order: subset}\n")
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=4",
        "--opswald-modify", "response=FORKED", "--opswald-modify", f"agent_version={version}",
        "--opswald-json", "report.json", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*the fork never reached step 4 of the golden (llm_call m): {where}*",
            "fix: the fork's step modification was never applied*",
        ]
    )
    assert "response was not applied" in result.stdout.str()
    report = json.loads((toy.path / "report.json").read_text())
    (row,) = report["goldens"]
    assert row["divergence"]["kind"] == "fork_not_reached"
    assert row["divergence"]["step"] == 4
    actual = _load(toy, "actual/toy.actual.yaml")
    assert actual["metadata"]["fork"] == {"step": 4, "reached": False}
    assert "FORKED" not in json.dumps(actual["steps"])


def test_a_blocked_side_effect_is_labelled_with_the_runs_step(toy: pytest.Pytester) -> None:
    """A side-effect tool the golden does not have, blocked in a fork: its step is the
    run's (4), which in the golden is a model call, so it is labelled as the run's step,
    never as `step 4 of 4` (the headline, the summary and the crash line)."""
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=2",
        "--opswald-modify", "tool_result={q: MOD, hits: 1}",
        "--opswald-modify", "agent_version=refund", "-rf",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "step 4 of this run · tool_call issue_refund: issue_refund has side effects and "
            "would run live",
            "*failed (side_effect): step 4 of this run tool_call issue_refund",
            "FAILED goldens/toy.golden.yaml::toy - step 4 of this run · tool_call*",
        ]
    )
    assert "step 4 of 4 · tool_call issue_refund" not in result.stdout.str()


# -- bursts: the calls of a thread pool start in any order --------------------------------


@opswald.llm
def echo(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    time.sleep(0.002)
    return {"content": "echo:" + messages[-1]["content"], "finish_reason": "stop"}


@opswald.tool
def work(i: int) -> dict[str, Any]:
    return {"i": i}


def _ask(topic: str) -> str:
    time.sleep(random.random() * 0.005)  # the threads start in any order
    content = echo(model="m", messages=[{"role": "user", "content": topic}])["content"]
    assert isinstance(content, str)
    return content


def _work(i: int) -> dict[str, Any]:
    time.sleep(random.random() * 0.005)
    found: dict[str, Any] = work(i=i)
    return found


def model_burst(input: dict[str, Any]) -> dict[str, Any]:
    with ThreadPoolExecutor(3) as pool:
        return {"out": list(pool.map(_ask, ["alpha", "beta", "gamma"]))}


def tool_burst(input: dict[str, Any]) -> dict[str, Any]:
    with ThreadPoolExecutor(3) as pool:
        return {"out": list(pool.map(_work, range(3)))}


def _recorded(agent: Any) -> Session:
    stub = Session(name="burst", input={})
    return execute(stub, agent, settings=RunSettings(policy="live")).actual


@pytest.mark.parametrize(
    ("agent", "modifications", "changed"),
    [
        (model_burst, {"response": "MODIFIED"}, "MODIFIED"),
        (tool_burst, {"tool_result": {"i": "MOD"}}, {"i": "MOD"}),
    ],
    ids=["response", "tool_result"],
)
def test_a_fork_in_a_burst_modifies_golden_step_n_whichever_call_starts_first(
    agent: Any, modifications: dict[str, Any], changed: Any
) -> None:
    """Forked at the middle call of a 3-call thread-pool burst, many times: golden step 2's
    call gets the modification every time, and no other call does."""
    golden = _recorded(agent)
    second = golden.step_list[1]  # the call that started second in the recording
    if isinstance(second, LLMCallStep):
        messages = second.input.messages or []
        expected = ["alpha", "beta", "gamma"].index(messages[-1]["content"])
    else:
        assert isinstance(second, ToolCallStep)
        expected = second.input["i"]
    seen = []
    for _ in range(12):
        fork = opswald.Replay(golden, adapter=agent).fork_from(2, dict(modifications))
        result = fork.run()
        assert result is not None
        out = result.actual.output["out"]
        seen.append([i for i, value in enumerate(out) if value == changed])
        assert result.actual.metadata["fork"]["step"] == 2
        assert result.actual.metadata["fork"]["modifications"] == modifications
    assert seen == [[expected]] * 12, seen


# -- user inputs match by their place among the user inputs -------------------------------


@opswald.llm
def reply(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": f"{model} heard {messages[-1]['content']}", "finish_reason": "stop"}


def conversation(input: dict[str, Any]) -> dict[str, Any]:
    said = []
    for _ in range(2):
        question = opswald.user_input("ask: ")
        said.append(reply(model="m", messages=[{"role": "user", "content": question}]))
    return {"answers": [r["content"] for r in said]}


def test_a_user_input_fork_after_the_run_went_live_changes_that_user_input() -> None:
    """A request-level change (`model`) makes the run go live at its first model call,
    before golden step 3 (the second user input): the second user input the agent asks for
    is still the one the fork changes, not dropped."""
    stub = Session(name="talk", input={"user_inputs": ["first", "second"]})
    golden = execute(stub, conversation, settings=RunSettings(policy="live")).actual
    assert [s.type for s in golden.step_list] == ["user_input", "llm_call"] * 2
    fork = opswald.Replay(golden, adapter=conversation, modifications={"model": "other"})
    result = fork.fork_from(3, {"user_input": "changed"}).run()
    assert result is not None
    assert result.actual.output == {"answers": ["other heard first", "other heard changed"]}
    assert result.fork_step == 2, "the run went live at its first model call"
    assert result.actual.metadata["fork"] == {
        "step": 3,
        "modifications": {"user_input": "changed"},
    }
    assert not [f for f in result.verdict.failures if f.kind == "fork_not_reached"]
