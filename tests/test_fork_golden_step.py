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
    if model == "silent":                                     # a model that never answers
        import time
        time.sleep(60)
    other = "" if model == "m" else f" ({model})"              # another model says so
    return {"content": f"answer[{last['content']}]{other}", "finish_reason": "stop"}


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
    model = modifications.get("model", "m") if version == "own_model" else "m"
    reply = chat(model=model, messages=messages)              # golden step 1
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
    return {"answer": chat(model=model, messages=messages)["content"]}  # golden step 4
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
            "fix: the run never reached the fork's step*",
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


@pytest.mark.parametrize(
    ("modify", "dropped"),
    [([], None), (["--opswald-modify", "model=other-model"], "model was not applied")],
    ids=["plain", "model"],
)
@pytest.mark.parametrize(
    ("version", "where", "line"),
    [
        (
            "diverge",
            "the run went live at its step 2, where it left the golden",
            "*left the golden at step 2, before the fork's step 4: the golden went on with*",
        ),
        ("stop", "the agent ended after the golden's step 1 without making that call", None),
    ],
    ids=["diverge", "stop"],
)
def test_a_fork_without_a_step_modification_that_never_reaches_step_n_fails_saying_so(
    toy: pytest.Pytester,
    modify: list[str],
    dropped: str | None,
    version: str,
    where: str,
    line: str | None,
) -> None:
    """A fork at step 4 with no step modification is "replay to step 4, then live": an
    agent that leaves the golden before it (or stops) never forked there, and the golden
    fails saying so as a fork with a step modification does (a request-level one, never
    applied, is named), with `reached: false`; the fork line says where the run left the
    golden, not that it forked there."""
    path = toy.path / "goldens" / "toy.golden.yaml"
    path.write_text(path.read_text() + "expect:\n  output: ignore\n  tool_calls: {order: subset}\n")
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=4", *modify,
        "--opswald-modify", f"agent_version={version}",
        "--opswald-json", "report.json", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*the fork never reached step 4 of the golden (llm_call m): {where}*",
            "fix: the run never reached the fork's step*",
        ]
    )
    out = result.stdout.str()
    if dropped is None:
        assert "not applied" not in out
    else:
        assert dropped in out
    if line is not None:
        result.stdout.fnmatch_lines([line])
    assert "forked at" not in out
    report = json.loads((toy.path / "report.json").read_text())
    (row,) = report["goldens"]
    assert row["divergence"]["kind"] == "fork_not_reached"
    assert row["divergence"]["step"] == 4
    actual = _load(toy, "actual/toy.actual.yaml")
    assert actual["metadata"]["fork"] == {"step": 4, "reached": False}
    assert "other-model" not in json.dumps(actual["steps"]), "nothing reached step 4"


def test_a_fork_without_a_step_modification_names_the_run_step_that_matched_step_n(
    toy: pytest.Pytester,
) -> None:
    """A plain fork at step 4 whose agent went live on an extra call before its first
    step still reaches golden step 4 (its step 5): `metadata.fork` says so, as it does
    for a fork with a step modification, and so does the fork line."""
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=4",
        "--opswald-modify", "agent_version=early_call", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)  # the extra call breaks the tool-call order
    result.stdout.fnmatch_lines(["*forked at step 4 (step 5 of this run): the golden*"])
    actual = _load(toy, "actual/toy.actual.yaml")
    assert actual["metadata"]["fork"] == {"step": 4, "run_step": 5}


# -- request-level modifications (model, temperature, ...) apply from golden step N on ----


@pytest.mark.parametrize("fork_at", [2, 4])
def test_a_request_modification_applies_from_the_fork_step_on(
    toy: pytest.Pytester, fork_at: int
) -> None:
    """`--opswald-fork-at=N --opswald-modify model=...`: the calls before golden step N
    are served as recorded (the same steps as the golden, the recorded model); the model
    calls from step N on go to the other model, and the run forks at N, not at its first
    model call."""
    golden = _load(toy, "goldens/toy.golden.yaml")
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", f"--opswald-fork-at={fork_at}",
        "--opswald-modify", "model=other-model", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)  # the other model answered otherwise
    result.stdout.fnmatch_lines([f"*forked at step {fork_at}: the golden went on with*"])
    actual = _load(toy, "actual/toy.actual.yaml")
    assert actual["output"] == {"answer": "answer[{'q': 'hello', 'hits': 5}] (other-model)"}
    calls = [s for s in actual["steps"] if s["type"] != "state"]
    recorded = [s for s in golden["steps"] if s["type"] != "state"]
    before = [s for s in calls if s["step"] < fork_at]
    assert before == [s for s in recorded if s["step"] < fork_at], "served as recorded"
    models = {s["step"]: s["model"] for s in calls if s["type"] == "llm_call"}
    assert models == {1: "m", 4: "other-model"}
    assert actual["metadata"]["fork"] == {"step": fork_at}
    assert actual["metadata"]["modifications"]["model"] == "other-model"


@pytest.mark.parametrize("fork_at", [1, 2, 4])
def test_before_step_hooks_see_the_request_that_goes_out_from_the_fork_step_on(
    toy: pytest.Pytester, fork_at: int
) -> None:
    """A `pytest_opswald_before_step` hook saw the model call at the fork's step, and the
    `@opswald.llm` calls after it, as the agent made them (`model: m`), though each went
    out to the other model: it sees the request as it goes out."""
    toy.makeconftest(
        """
import json
import toyagent

def pytest_opswald_before_step(replay, step):
    if step.type == "llm_call":
        with open("seen.jsonl", "a") as out:
            out.write(json.dumps([step.number, step.name, step.request["model"]]) + "\\n")
"""
    )
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", f"--opswald-fork-at={fork_at}",
        "--opswald-modify", "model=other-model",
    )  # fmt: skip
    result.assert_outcomes(failed=1)  # the other model answered otherwise
    seen = [json.loads(line) for line in (toy.path / "seen.jsonl").read_text().splitlines()]
    first = "m" if fork_at > 1 else "other-model"
    assert seen == [[1, first, first], [4, "other-model", "other-model"]]


SEEN_HOOK = """
import json

import toyagent


def pytest_opswald_before_step(replay, step):
    seen = [step.number, step.type, step.name, step.request.get("model")]
    with open("seen.jsonl", "a") as f:
        f.write(json.dumps(seen) + "\\n")
"""


@pytest.mark.parametrize(
    ("fork_at", "modify", "models"),
    [
        (1, [], {1: "other-model", 4: "other-model"}),
        (4, [], {1: "m", 4: "other-model"}),
        # step 4 answered by the response: nothing is sent, the recorded request stands
        (4, ["response=FORKED"], {1: "m", 4: "m"}),
    ],
)
def test_before_step_sees_the_request_the_fork_sends(
    toy: pytest.Pytester, fork_at: int, modify: list[str], models: dict[int, str]
) -> None:
    """`pytest_opswald_before_step` at the fork's step and after it is given the request
    as it goes out, with the fork's model, as the step records it: at golden step N it was
    given the request as the agent made it, before the model change, a call never made."""
    toy.makepyfile(conftest=SEEN_HOOK)
    extra = [arg for item in modify for arg in ("--opswald-modify", item)]
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", f"--opswald-fork-at={fork_at}",
        "--opswald-modify", "model=other-model", *extra, "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    seen = [json.loads(line) for line in (toy.path / "seen.jsonl").read_text().splitlines()]
    llm = {number: (name, model) for number, kind, name, model in seen if kind == "llm_call"}
    assert llm == {number: (model, model) for number, model in models.items()}
    actual = _load(toy, "actual/toy.actual.yaml")
    recorded = {s["step"]: s["model"] for s in actual["steps"] if s["type"] == "llm_call"}
    assert recorded == models, "the hook saw what the step records"


def test_a_fork_that_hangs_at_its_step_names_the_model_it_asked(toy: pytest.Pytester) -> None:
    """The timeout's message names the call the run hung in as it went out, with the
    fork's model (it named the model the agent asked for, which was never asked)."""
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=4",
        "--opswald-modify", "model=silent", "--opswald-timeout=1",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*did not finish within 1.0 s; it hung at step 4 (llm_call silent)*"]
    )


def test_a_request_modification_and_a_step_modification_both_apply_at_step_n(
    toy: pytest.Pytester,
) -> None:
    """A model comparison forked at a model step with a `response` there: the fork
    reaches step 4 (it was `fork_not_reached` at any step, the model change having sent
    the run live at its first call), step 4 answers the response, the steps before it are
    the golden's."""
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=4",
        "--opswald-modify", "model=other-model", "--opswald-modify", "response=FORKED",
        "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*forked at step 4: the golden went on with 1 step(s)*"])
    assert "never reached" not in result.stdout.str()
    actual = _load(toy, "actual/toy.actual.yaml")
    assert actual["output"] == {"answer": "FORKED"}
    assert actual["metadata"]["fork"] == {"step": 4, "modifications": {"response": "FORKED"}}
    golden = _load(toy, "goldens/toy.golden.yaml")
    assert actual["steps"][:2] == golden["steps"][:2]


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


def conversation(input: dict[str, Any], modifications: dict[str, Any]) -> dict[str, Any]:
    said = []
    for _ in range(2):
        question = opswald.user_input("ask: ")
        model = modifications.get("agent_model", "m")  # the agent's own choice
        said.append(reply(model=model, messages=[{"role": "user", "content": question}]))
    return {"answers": [r["content"] for r in said]}


def test_a_user_input_fork_after_the_run_went_live_changes_that_user_input() -> None:
    """An agent that now asks another model makes the run go live at its first model call,
    before golden step 3 (the second user input): the second user input the agent asks for
    is still the one the fork changes, not dropped."""
    stub = Session(name="talk", input={"user_inputs": ["first", "second"]})
    golden = execute(stub, conversation, settings=RunSettings(policy="live")).actual
    assert [s.type for s in golden.step_list] == ["user_input", "llm_call"] * 2
    fork = opswald.Replay(golden, adapter=conversation, modifications={"agent_model": "other"})
    result = fork.fork_from(3, {"user_input": "changed"}).run()
    assert result is not None
    assert result.actual.output == {"answers": ["other heard first", "other heard changed"]}
    assert result.fork_step == 2, "the run went live at its first model call"
    assert result.actual.metadata["fork"] == {
        "step": 3,
        "modifications": {"user_input": "changed"},
    }
    assert not [f for f in result.verdict.failures if f.kind == "fork_not_reached"]


def test_replay_fork_from_a_step_with_another_model_keeps_the_calls_before_it() -> None:
    """`Replay(...).fork_from(step=N, modifications={"model": ...})`: the model calls
    before golden step N answer as recorded (the recorded model heard the first
    question); from step N on the other model answers. Without a fork step the run forks
    at the first call the model change touches, as before."""
    stub = Session(name="talk", input={"user_inputs": ["first", "second"]})
    golden = execute(stub, conversation, settings=RunSettings(policy="live")).actual
    replay = opswald.Replay(golden, adapter=conversation)
    for step, answers, fork_step in [
        (4, ["m heard first", "other heard second"], 4),
        (3, ["m heard first", "other heard second"], 3),
        (2, ["other heard first", "other heard second"], 2),
    ]:
        result = replay.fork_from(step=step, modifications={"model": "other"}).run()
        assert result is not None
        assert result.actual.output == {"answers": answers}, step
        assert result.fork_step == fork_step
        assert result.actual.metadata["fork"] == {"step": step}
        assert result.actual.step_list[: fork_step - 1] == [
            s.model_copy(update={"step": s.step}) for s in golden.step_list[: fork_step - 1]
        ]
        (fork,) = [f for f in result.verdict.findings if f.kind == "fork"]
        assert fork.message.startswith(f"forked at step {step}:"), fork.message
        assert result.passed is False  # the other model answered otherwise
        assert {f.kind for f in result.verdict.failures} == {"output"}
    unforked = opswald.Replay(golden, adapter=conversation, modifications={"model": "other"})
    result = unforked.run()
    assert result is not None
    assert result.actual.output == {"answers": ["other heard first", "other heard second"]}
    assert result.fork_step == 2
    assert result.actual.metadata["fork"] == {"step": 2}


def test_a_paused_fork_shows_its_hooks_the_request_that_goes_out() -> None:
    """`Replay.fork_from(step=N, modifications={"model": ...})`, paused before step N: the
    `before_step` hook of step N (and of the model call after it) is given the request
    with the other model, as its step records it, not the agent's request."""
    stub = Session(name="talk", input={"user_inputs": ["first", "second"]})
    golden = execute(stub, conversation, settings=RunSettings(policy="live")).actual
    seen: list[tuple[int, str, str | None]] = []

    class Hooks:
        def before_step(self, step: Any) -> None:
            if step.type == "llm_call":
                seen.append((step.number, step.name, step.request["model"]))

    replay = opswald.Replay(golden, adapter=conversation, hooks=Hooks())
    fork = replay.fork_from(step=2, modifications={"model": "other"}).pause_at(2)
    assert fork.run() is None and fork.paused_at == 2
    assert [s.type for s in fork.steps] == ["user_input"], "step 2 has not run"
    result = fork.resume()  # the hook runs after the pause
    assert result is not None
    assert seen == [(2, "other", "other"), (4, "other", "other")]
    models = [s.model for s in result.actual.step_list if isinstance(s, LLMCallStep)]
    assert models == ["other", "other"]


# -- a fork at a trailing snapshot: no call after it takes a request-level modification ---

TRAILING_AGENT = """
import opswald


@opswald.llm
def chat(*, model, messages, temperature=None):
    if messages[-1]["role"] == "user":
        return {"content": None, "finish_reason": "tool_calls",
                "tool_calls": [{"id": "c1", "name": "lookup", "arguments": {"q": "x"}}]}
    return {"content": f"done at {temperature}", "finish_reason": "stop"}


@opswald.tool
def lookup(q):
    return {"q": q}


def run(input, modifications):
    opswald.state(memory={"start": True})                             # step 1
    messages = [{"role": "user", "content": input["q"] + modifications.get("suffix", "")}]
    chat(model="m", messages=messages, temperature=0.1)               # step 2
    lookup(q="x")                                                     # step 3
    opswald.state(memory={"mid": True})                               # step 4
    messages.append({"role": "tool", "content": "x"})
    out = chat(model="m", messages=messages, temperature=0.1)         # step 5
    opswald.state(memory={"done": True})                              # step 6
    return {"answer": out["content"]}
"""


@pytest.fixture
def trailing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(trailagent=TRAILING_AGENT, conftest="import trailagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = trailagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "t.golden.yaml").write_text("name: t\ninput: {q: hello}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    types = [s["type"] for s in _load(pytester, "goldens/t.golden.yaml")["steps"]]
    assert types == ["state", "llm_call", "tool_call", "state", "llm_call", "state"]
    return pytester


REFUSED_TRAILING = (
    "temperature changes the model calls from step 6 on, and the golden has no model call "
    "from its step 6 (state) on: fork at step 5 or before (step 5 is its last model call)"
)


def test_a_request_modification_at_a_trailing_snapshot_is_refused(
    trailing: pytest.Pytester,
) -> None:
    """A fork at the golden's last step, a snapshot with no call after it: nothing runs
    live there, so `temperature` would reach no request and the run would pass as a plain
    replay with the modification dropped. It fails before the agent starts, saying why;
    from the golden's own `modifications:` too. At step 5 the modification applies."""
    result = trailing.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=6",
        "--opswald-modify", "temperature=0.5",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*--opswald-fork-at=6: {REFUSED_TRAILING}*"])
    path = trailing.path / "goldens" / "t.golden.yaml"
    path.write_text(path.read_text() + "modifications: {temperature: 0.5}\n")
    result = trailing.runpytest("--opswald-goldens", "goldens/", "--opswald-fork-at=6")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*--opswald-fork-at=6: {REFUSED_TRAILING}*"])
    result = trailing.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=5", "--opswald-save-actual", "a"
    )
    result.assert_outcomes(failed=1)  # the toy model says its temperature
    actual = _load(trailing, "a/t.actual.yaml")
    temperatures = [s["input"]["params"] for s in actual["steps"] if s["type"] == "llm_call"]
    assert temperatures == [{"temperature": 0.1}, {"temperature": 0.5}]


@opswald.llm
def trail_chat(
    *, model: str, messages: list[dict[str, Any]], temperature: float | None = None
) -> dict[str, Any]:
    if messages[-1]["role"] == "user":
        call = {"id": "c1", "name": "trail_lookup", "arguments": {"q": "x"}}
        return {"content": None, "finish_reason": "tool_calls", "tool_calls": [call]}
    return {"content": f"done at {temperature}", "finish_reason": "stop"}


@opswald.tool
def trail_lookup(q: str) -> dict[str, Any]:
    return {"q": q}


def trailing_agent(input: dict[str, Any]) -> dict[str, Any]:
    """The agent of TRAILING_AGENT, in this process."""
    opswald.state(memory={"start": True})
    messages = [{"role": "user", "content": input["q"]}]
    trail_chat(model="m", messages=messages, temperature=0.1)
    trail_lookup(q="x")
    opswald.state(memory={"mid": True})
    messages.append({"role": "tool", "content": "x"})
    out = trail_chat(model="m", messages=messages, temperature=0.1)
    opswald.state(memory={"done": True})
    return {"answer": out["content"]}


def test_replay_refuses_a_request_modification_at_a_trailing_snapshot() -> None:
    """`Replay(..., fork_at=6, modifications={"temperature": 0.5})` and `fork_from(6, ...)`
    raise instead of returning a passed replay in which no request had the temperature;
    a fork there without a request-level modification is a replay, and passes."""
    stub = Session(name="trailing", input={"q": "hello"})
    golden = execute(stub, trailing_agent, settings=RunSettings(policy="live")).actual
    types = [s.type for s in golden.step_list]
    assert types == ["state", "llm_call", "tool_call", "state", "llm_call", "state"]
    refused = REFUSED_TRAILING.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises(ValueError, match=f"fork_at=6: {refused}"):
        opswald.Replay(
            golden, adapter=trailing_agent, fork_at=6, modifications={"temperature": 0.5}
        )
    with pytest.raises(ValueError, match="the golden has no model call from its step 6"):
        opswald.Replay(golden, adapter=trailing_agent).fork_from(6, {"model": "other"})
    result = opswald.Replay(golden, adapter=trailing_agent, fork_at=6).run()
    assert result is not None and result.passed
    assert result.actual.metadata["fork"] == {"step": 6}
    forked = opswald.Replay(golden, adapter=trailing_agent).fork_from(5, {"temperature": 0.5})
    result = forked.run()
    assert result is not None
    params = [s.input.params for s in result.actual.step_list if isinstance(s, LLMCallStep)]
    assert params == [{"temperature": 0.1}, {"temperature": 0.5}]
    assert result.actual.output == {"answer": "done at 0.5"}


def test_a_fork_at_a_trailing_snapshot_left_before_it_names_no_call_after_it(
    trailing: pytest.Pytester,
) -> None:
    """A fork at the golden's last step, a snapshot no call follows, of an agent that
    leaves the golden at its first model call: the finding says the run left the golden
    before step 6, and that no call of the golden comes after it (it named step 2 "the
    golden's first call after step 6"); nothing was dropped (the suffix is the adapter's)."""
    result = trailing.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=6",
        "--opswald-modify", "suffix=-again",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the fork never reached step 6 of the golden (state): the run went live at its "
            "step 2, where it left the golden (the agent sent another request), before the "
            "golden's step 6, and no call of the golden comes after step 6"
        ]
    )
    out = result.stdout.str()
    assert "first call after" not in out
    assert "not applied" not in out


def test_a_fork_never_reached_says_the_agent_applied_a_model_change_itself(
    toy: pytest.Pytester,
) -> None:
    """An adapter that asks for `modifications["model"]` from its first call leaves the
    golden at step 1, before the fork's step 4, and never reaches it: the finding says the
    agent sent the model itself from its step 1 (it said "model was not applied", though
    every call went to the other model), and what to do."""
    path = toy.path / "goldens" / "toy.golden.yaml"
    path.write_text(path.read_text() + "expect:\n  output: ignore\n")
    result = toy.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=4",
        "--opswald-modify", "model=other-model", "--opswald-modify", "agent_version=own_model",
        "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the fork never reached step 4 of the golden (llm_call m): the run went live at "
            "its step 1, where it left the golden (the agent sent another request), and no "
            "call after it matched step 4; the agent applied model itself, from its step 1 "
            "(before the fork's step 4, where opswald applies it)",
            "  hint: *leave model to opswald*",
        ]
    )
    assert "not applied" not in result.stdout.str()
    actual = _load(toy, "actual/toy.actual.yaml")
    models = [s["model"] for s in actual["steps"] if s["type"] == "llm_call"]
    assert models == ["other-model", "other-model"]
    assert actual["metadata"]["fork"] == {"step": 4, "reached": False}


def test_the_fork_path_numbers_an_inserted_step_in_the_run_and_shows_it_whole() -> None:
    """A step only the run's new path has is named as `opswald diff` names it, under the
    run's number (here one snapshot more before the fork point moves every run step by
    one), with its data."""
    from opswald.diff import render_difference
    from opswald.engine.run import _fork_path
    from opswald.session import Session

    def tool(n: int, name: str) -> dict[str, object]:
        return {"step": n, "type": "tool_call", "tool": name, "input": {"n": n}, "output": "ok"}

    def llm(n: int) -> dict[str, object]:
        return {"step": n, "type": "llm_call", "model": "m", "input": {}, "output": {}}

    golden = Session.model_validate(
        {"name": "g", "input": {}, "steps": [tool(1, "a"), llm(2), tool(3, "c")]}
    )
    actual = Session.model_validate(
        {
            "name": "g",
            "input": {},
            "steps": [
                {"step": 1, "type": "state", "state": {}},
                tool(2, "a"),
                llm(3),
                tool(4, "b"),
                tool(5, "c"),
            ],
        }
    )
    finding = _fork_path(golden, actual, fork_step=3, golden_step=2)
    lines = [line for d in finding.differences for line in render_difference(d)]
    assert lines[0] == "step 4 inserted: tool_call b", lines
    assert lines[1].startswith('  + {"tool": "b", "input": {"n": 4}'), lines
    assert len(finding.differences) == 1, lines  # step c is the golden's step 3: unchanged


def tool_last_agent(input: dict[str, Any]) -> dict[str, Any]:
    """A model call, then a tool call that ends the run."""
    out = trail_chat(model="m", messages=[{"role": "user", "content": input["q"]}])
    return {"answer": out["content"], "found": trail_lookup(q="x")}


def test_replay_refuses_a_request_modification_at_a_tool_call_after_the_last_model_call() -> None:
    """A fork at the golden's last step, a tool call after its last model call: the model
    it asks for would reach no request, and the fork passed with it dropped."""
    stub = Session(name="tool-last", input={"q": "hello"})
    golden = execute(stub, tool_last_agent, settings=RunSettings(policy="live")).actual
    assert [s.type for s in golden.step_list] == ["llm_call", "tool_call"]
    said = (
        r"model changes the model calls from step 2 on, and the golden has no model call from "
        r"its step 2 \(tool_call trail_lookup\) on: fork at step 1 or before"
    )
    with pytest.raises(ValueError, match=said):
        opswald.Replay(golden, adapter=tool_last_agent).fork_from(2, {"model": "other"})
    with pytest.raises(ValueError, match=said):
        opswald.Replay(golden, adapter=tool_last_agent, fork_at=2, modifications={"model": "other"})
    # at step 1 the modification reaches the model call: a fork that runs
    result = opswald.Replay(golden, adapter=tool_last_agent).fork_from(1, {"model": "other"}).run()
    assert result is not None and result.actual.step_list[0].model == "other"
