"""opswald.record(): recording outside pytest, then replaying the result under pytest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import opswald
from conftest import agent_project
from opswald.session import LLMCallStep, ToolCallStep


@opswald.llm
def think(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "content": f"plan for {messages[-1]['content']}",
        "finish_reason": "stop",
        "usage": {"input_tokens": 12, "output_tokens": 4},
        "cost": 0.002,
    }


@opswald.tool
def fetch(key: str) -> dict[str, Any]:
    if key == "missing":
        raise LookupError(key)
    return {"key": key, "value": 42}


def agent(task: str) -> str:
    plan = think(model="m", messages=[{"role": "user", "content": task}])
    value = fetch(task)
    opswald.state(memory={"value": value["value"]})
    return f"{plan['content']} -> {value['value']}"


def test_record_writes_a_golden_that_replays(tmp_path: Path) -> None:
    path = tmp_path / "goldens" / "task.golden.yaml"
    with opswald.record(path, input="sk-ant-" + "s" * 30, agent="tasker", tags=["smoke"]) as rec:
        rec.output = agent("report")
        assert [s.type for s in rec.steps] == ["llm_call", "tool_call", "state"]
    assert rec.path == path and rec.session is not None
    session = opswald.load(path)
    first, second = session.step_list[:2]
    assert isinstance(first, LLMCallStep) and first.cost == 0.002
    assert isinstance(second, ToolCallStep) and second.output == {"key": "report", "value": 42}
    assert session.output == "plan for report -> 42"
    assert session.input == "<redacted:anthropic-key>"
    assert (session.name, session.agent, session.tags) == ("task", "tasker", ["smoke"])
    replay = opswald.Replay(session, adapter=lambda _: agent("report"))
    result = replay.run()
    assert result is not None and result.passed


def chatter(input: dict[str, Any]) -> dict[str, Any]:
    """A conversational agent: asks twice."""
    first = opswald.user_input("You: ")
    plan = think(model="m", messages=[{"role": "user", "content": first}])
    second = opswald.user_input("More? ")
    return {"heard": [first, second], "plan": plan["content"]}


def test_record_answers_user_input_from_the_inputs_user_inputs(tmp_path: Path) -> None:
    """QA (typed #2): `opswald.record(..., input={"user_inputs": [...]})` did not hand the
    scripted answers to `opswald.user_input()`, which raised NoUserInput (written into the
    golden as its error), though a recording under pytest takes them from there."""
    path = tmp_path / "chat.golden.yaml"
    given = {"user_inputs": ["hello", "that is all"]}
    with opswald.record(path, name="chat", input=given) as rec:
        rec.output = chatter(given)
    session = opswald.load(path)
    assert session.error is None
    assert session.output == {"heard": ["hello", "that is all"], "plan": "plan for hello"}
    assert [s.type for s in session.step_list] == ["user_input", "llm_call", "user_input"]
    result = opswald.Replay(path, adapter=chatter).run()
    assert result is not None and result.passed, result and result.verdict.findings


def test_record_keeps_the_error_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "fail.golden.yaml"
    with pytest.raises(LookupError), opswald.record(path, input="missing") as rec:
        rec.output = agent("missing")
    session = opswald.load(path)
    assert session.error is not None and session.error.type == "LookupError"
    with pytest.raises(FileExistsError, match="never overwrites"), opswald.record(path):
        pass


@opswald.llm
def negative(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": "ok", "finish_reason": "stop", "cost": -1}


def test_a_response_cost_below_0_stops_the_recording_and_writes_nothing(tmp_path: Path) -> None:
    """The agent cannot catch it and go on: a golden with that call cut short would pass."""
    path = tmp_path / "neg.golden.yaml"
    caught: list[Exception] = []
    with (
        pytest.raises(ValueError, match=r"negative\(\) returned `cost: -1` in its response"),
        opswald.record(path, input="x"),
    ):
        try:
            negative(model="m", messages=[{"role": "user", "content": "x"}])
        except Exception as exc:
            caught.append(exc)
    assert not caught and not path.exists()


def test_record_in_memory_only() -> None:
    with opswald.record(name="scratch", input="x", store=False) as rec:
        rec.output = agent("x")
    assert rec.path is None and rec.session is not None
    assert rec.session.name == "scratch" and len(rec.session.step_list) == 3
    assert fetch("y") == {"key": "y", "value": 42}, "instrumentation is a no-op again"


def test_record_scrubs_the_names_and_tags_it_is_given(tmp_path: Path) -> None:
    """Every part of the session is scrubbed, not only what the agent did: the name, the
    agent's name and the tags come from the caller (a tag that is a key is left out), in
    the golden written, in the store and in `rec.session`."""
    key, aws = "sk-proj-" + "Q1w2E3r4T5y6" * 3, "AKIA" + "IOSFODNN7EXAMPLR"
    path = tmp_path / "run.golden.yaml"
    with opswald.record(path, name=f"run {key}", agent=aws, tags=["smoke", key]) as rec:
        rec.output = agent("report")
    with opswald.record(name=f"run {key}", agent=aws, store=tmp_path / "store") as stored:
        stored.output = agent("report")
    assert stored.path is not None and "Q1w2E3r4" not in stored.path.name  # the file's name
    for session, file in ((rec.session, path), (stored.session, stored.path)):
        assert session is not None
        assert (session.name, session.agent) == ("run <redacted:openai-key>", "<redacted:aws-key>")
        text = file.read_text(encoding="utf-8")
        assert key not in text and aws not in text
    assert rec.session is not None and rec.session.tags == ["smoke"]
    assert opswald.load(path).tags == ["smoke"]


@opswald.llm
def priced(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A response that reports its usage but no cost, as most providers' do."""
    return {
        "content": "ok",
        "finish_reason": "stop",
        "usage": {"input_tokens": 1000, "output_tokens": 500},
    }


def test_record_prices_calls_as_pytest_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call whose response reports no cost gets one from the shipped price table (as
    recording under pytest does), and from the project's `opswald_prices` file over it."""
    import yaml

    shipped = yaml.safe_load(
        (Path(opswald.__file__).parent / "prices.yaml").read_text(encoding="utf-8")
    )
    mini = shipped["models"]["gpt-4o-mini"]
    monkeypatch.chdir(tmp_path)
    with opswald.record(name="priced", store=False) as rec:
        priced(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert rec.session is not None
    step = rec.session.step_list[0]
    assert isinstance(step, LLMCallStep)
    assert step.cost == pytest.approx((1000 * mini["input"] + 500 * mini["output"]) / 1e6)
    assert step.cost_source == f"price_table:{shipped['as_of']}"

    (tmp_path / "prices.yaml").write_text(
        'as_of: "2030-01-01"\nmodels:\n  gpt-4o-mini: {input: 2.0, output: 4.0}\n'
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nopswald_prices = prices.yaml\n")
    with opswald.record(name="priced", store=False) as rec:
        priced(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert rec.session is not None
    step = rec.session.step_list[0]
    assert isinstance(step, LLMCallStep)
    assert step.cost == pytest.approx((1000 * 2.0 + 500 * 4.0) / 1e6)
    assert step.cost_source == "price_table:2030-01-01"


@opswald.tool
def halves(part: int) -> str:
    """What an SDK hands over when a provider splits an emoji's surrogate pair across two
    JSON escapes (`"\\ud83d"`, `"\\ude00"`), and a half that never got its other half."""
    return ["smile \ud83d", "\ude00 done", "cut \ud83d"][part]


def test_surrogate_halves_give_a_golden_that_loads(tmp_path: Path) -> None:
    """YAML cannot hold a lone surrogate half: written as an escape, no YAML reader takes
    it, and every run after the recording failed to load the golden. Halves side by side
    are kept as their character, a lone half as U+FFFD (an agent that keeps the halves of
    one character in two values replays with U+FFFD in each)."""

    def agent() -> str:
        return halves(0) + halves(1) + " / " + halves(2)

    path = tmp_path / "halves.golden.yaml"
    with opswald.record(path, name="halves") as rec:
        rec.output = agent()
    assert rec.output == "smile \ud83d\ude00 done / cut \ud83d", "the agent saw them as sent"
    session = opswald.load(path)
    assert session.output == "smile \U0001f600 done / cut \ufffd"
    tools = [s for s in session.step_list if isinstance(s, ToolCallStep)]
    assert [t.output for t in tools] == ["smile \ufffd", "\ufffd done", "cut \ufffd"]
    text = path.read_text(encoding="utf-8")
    assert "\\uD83D" not in text and "\\ud83d" not in text, "no half escaped"


def test_a_session_loading_would_refuse_is_not_written(tmp_path: Path) -> None:
    """Nested deeper than a golden may be: a golden asked for by path is refused (nothing
    written), and a trace is kept out of the store with a warning, the run going on."""
    from opswald.files import GoldenWriteRefused

    deep: Any = "leaf"
    for _ in range(70):
        deep = {"child": deep}
    path = tmp_path / "deep.golden.yaml"
    with pytest.raises(GoldenWriteRefused, match="opswald_max_golden_depth"):
        with opswald.record(path, input="x") as rec:
            rec.output = deep
    assert not path.exists()
    store = tmp_path / "traces"
    with pytest.warns(UserWarning, match="the trace was not stored: not written: the session"):
        with opswald.record(name="deep", input="x", store=store) as rec:
            rec.output = deep
    assert rec.path is None and rec.session is not None and rec.session.output == deep
    assert not list(store.glob("*"))


@opswald.tool
def search(filters: dict[Any, Any]) -> dict[str, Any]:
    return {"hits": len(filters)}


class Thing:
    """No data form: written only as its repr, with a memory address."""


@pytest.mark.parametrize(
    ("case", "said"),
    [
        ("arguments", r"the arguments of search have keys .* 1 and '1' in input\.filters"),
        ("output", r"the agent's output has keys .* None and 'null' in output"),
        ("input", r"the input given has keys .* True and 'true' in input\.flags"),
        ("formless", r"the agent's output has no data form: output\.thing is an instance"),
        (
            "formless-input",
            r"the input given has no data form: input\.who is an instance of .*Thing, "
            r"written only as its repr <.*Thing object at 0x",
        ),
    ],
    ids=["arguments", "output", "input", "formless", "formless-input"],
)
def test_a_session_that_would_lose_data_is_not_written(
    tmp_path: Path, case: str, said: str
) -> None:
    """Colliding keys (`1` and `'1'` both written "1") lost a value in silence, and a value
    with no data form was written as its repr, outside pytest as under it they are not:
    the golden asked for is refused, nothing written; a trace is kept out of the store."""
    from opswald.files import GoldenWriteRefused

    given: Any = {"flags": {True: 1, "true": 2}} if case == "input" else {"q": 1}
    if case == "formless-input":
        given = {"who": Thing()}

    def block(rec: Any) -> None:
        if case == "arguments":
            search(filters={1: "a", "1": "b"})
        rec.output = {
            "output": {None: 1, "null": 2},
            "formless": {"thing": Thing()},
        }.get(case, "done")

    path = tmp_path / "goldens" / "lost.golden.yaml"
    with pytest.raises(GoldenWriteRefused, match=f"{path} was not written: {said}"):
        with opswald.record(path, input=given) as rec:
            block(rec)
    assert not path.exists() and not list(path.parent.glob("*"))
    store = tmp_path / "traces"
    with pytest.warns(UserWarning, match=f"the trace was not stored: {said}"):
        with opswald.record(name="lost", input=given, store=store) as rec:
            block(rec)
    assert rec.path is None and rec.session is not None
    assert not list(store.glob("**/*.y*ml"))


def test_dump_refuses_keys_a_golden_writes_alike(tmp_path: Path) -> None:
    """`opswald.dump` of a session built in code wrote `{1: 'a', '1': 'b'}` as `'1': b`."""
    from opswald.files import GoldenWriteRefused

    session = opswald.Session.model_validate(
        {"name": "d", "input": {"a": [{1: "a", "1": "b"}]}, "output": 1}
    )
    path = tmp_path / "d.golden.yaml"
    with pytest.raises(GoldenWriteRefused, match=r"1 and '1' in input\.a\[0\] are both"):
        opswald.dump(session, path)
    assert not path.exists()
    opswald.dump(session.model_copy(update={"input": {"a": [{"1": "b"}]}}), path)
    assert opswald.load(path).input == {"a": [{"1": "b"}]}


def test_dump_names_a_steps_colliding_keys_by_its_step_number(tmp_path: Path) -> None:
    """A tool call's arguments and result built in code with keys written alike: refused
    naming the step as the golden numbers it (`step 2 › input.filters`), as a diff does,
    never the 0-based `steps[0]`; nothing written."""
    from opswald.files import GoldenWriteRefused

    def session(arguments: dict[Any, Any], result: dict[Any, Any]) -> opswald.Session:
        call = {"step": 2, "type": "tool_call", "tool": "search"}
        steps = [{"step": 1, "type": "state"}, {**call, "input": arguments, "output": result}]
        return opswald.Session.model_validate({"name": "d", "steps": steps, "output": 1})

    path = tmp_path / "d.golden.yaml"
    for built, said in [
        (session({"filters": {True: 1, "true": 2}}, {}), r"True and 'true' in step 2 › input\.f"),
        (session({}, {"hits": {None: 1, "null": 2}}), r"None and 'null' in step 2 › output\.hits"),
    ]:
        with pytest.raises(GoldenWriteRefused, match=said):
            opswald.dump(built, path)
        assert not path.exists()


RULES_TEST = """
import opswald


@opswald.tool
def lookup(who):
    return {"customer": "cust_123456", "mail": "ann@example.com"}


def test_record_and_dump():
    with opswald.record("goldens/r.golden.yaml", name="r", input={"who": "cust_654321"}) as rec:
        rec.output = lookup("x")
    session = opswald.Session.model_validate(
        {"name": "d", "input": {"id": "cust_222222", "mail": "bob@example.com"}}
    )
    opswald.dump(session, "goldens/d.golden.yaml")
"""


def test_record_and_dump_in_a_test_hide_what_the_runs_rules_hide(
    pytester: pytest.Pytester,
) -> None:
    """`opswald_redact = pii` and a `pytest_opswald_redact` hook apply to `opswald.record`
    and `opswald.dump` in a test, as to the run's own recordings: they used the default
    rules, and wrote the customer ids and e-mail addresses in clear."""
    pytester.makeconftest(
        "def pytest_opswald_redact(config):\n    return {r'cust_[0-9]{6}': 'customer-id'}\n"
    )
    pytester.makeini("[pytest]\nopswald_redact = pii\n")
    pytester.makepyfile(test_rec=RULES_TEST)
    pytester.runpytest().assert_outcomes(passed=1)
    recorded = (pytester.path / "goldens" / "r.golden.yaml").read_text()
    dumped = (pytester.path / "goldens" / "d.golden.yaml").read_text()
    for text in (recorded, dumped):
        assert "cust_" not in text
        assert "@example.com" not in text
        assert "<redacted:customer-id>" in text
        assert "<redacted:email>" in text


CUSTOMER_RULE = "def pytest_opswald_redact(config):\n    return {r'cust_[0-9]{6}': 'customer-id'}\n"


def sub_folder(pytester: pytest.Pytester, conftest: str, stub: str = "") -> Path:
    """A folder `sub/` with its own conftest.py, and a golden `sub/goldens/s.golden.yaml`
    of `stub` (or a stub named s); returns the golden's path."""
    sub = pytester.mkdir("sub")
    (sub / "conftest.py").write_text(conftest)
    (sub / "goldens").mkdir()
    golden = sub / "goldens" / "s.golden.yaml"
    golden.write_text(stub or "name: s\ninput: {q: 2}\n")
    return golden


@pytest.mark.parametrize("settings_at_startup", [True, False])
def test_a_conftest_loaded_during_collection_adds_its_redaction_rules(
    pytester: pytest.Pytester, settings_at_startup: bool
) -> None:
    """QA: a `pytest_opswald_redact` hook in a conftest below the rootdir, which pytest
    loads as it collects that folder: when the run's settings were built at startup (an
    option or setting of opswald's given), its rules were left out, and the customer ids
    were written in clear."""
    sub = pytester.mkdir("sub")
    (sub / "conftest.py").write_text(CUSTOMER_RULE)
    (sub / "test_rec.py").write_text(RULES_TEST)
    if settings_at_startup:
        pytester.makeini("[pytest]\nopswald_redact = pii\n")
    pytester.runpytest().assert_outcomes(passed=1)
    for name in ("r", "d"):
        text = (pytester.path / "goldens" / f"{name}.golden.yaml").read_text()
        assert "cust_" not in text
        assert "<redacted:customer-id>" in text
        assert ("<redacted:email>" in text) is settings_at_startup  # the pii rules as set


LOOKUP_AGENT = """
import opswald


@opswald.tool
def lookup(order):
    return {"customer": "cust_123456"}


def run(input):
    return {"who": lookup(input["order"])["customer"]}
"""


def test_a_golden_recorded_below_a_conftest_with_redaction_rules_hides_what_they_hide(
    pytester: pytest.Pytester,
) -> None:
    """The goldens folder's own conftest (loaded as pytest collects the folder, after the
    settings were built for `--opswald-goldens`): its rules apply to the goldens recorded
    there, and to their failure messages."""
    folder = agent_project(pytester, LOOKUP_AGENT, a="name: a\ninput: {order: X}\n")
    (folder / "conftest.py").write_text(CUSTOMER_RULE)
    recorded = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    recorded.assert_outcomes(passed=1)
    text = (folder / "a.golden.yaml").read_text()
    assert "cust_" not in text
    assert "<redacted:customer-id>" in text
    # the agent now names a customer of its own, and more: the failure does not show the id
    changed = '"cust_999999", "more": 1}'
    (pytester.path / "agent.py").write_text(
        LOOKUP_AGENT.replace('lookup(input["order"])["customer"]}', changed)
    )
    failed = pytester.runpytest("--opswald-goldens")
    failed.assert_outcomes(failed=1)
    assert "cust_" not in failed.stdout.str()


TICKET_AGENT = """
def run(input):
    return {"answer": "ticket cust_123456"}
"""


def test_a_conftests_redaction_rules_apply_below_it_whatever_the_run_selected(
    pytester: pytest.Pytester,
) -> None:
    """QA (probe23 #1, #2): a conftest below the rootdir added its rules to the whole run
    once pytest had loaded it, after the rootdir's (before them when it loaded first): a
    golden recorded by `pytest sub/` failed under `pytest`, and a golden outside `sub/`
    was redacted by `sub/`'s rules only in runs that collected `sub/`. Its rules now apply
    to its folder and below, before the run's, as pytest calls its hooks."""
    root = agent_project(pytester, TICKET_AGENT, r="name: r\ninput: {q: 1}\n")
    pytester.makeconftest(
        "def pytest_opswald_redact(config):\n    return {r'[0-9]{6}': 'number'}\n"
    )
    sub = pytester.mkdir("sub")
    (sub / "conftest.py").write_text(CUSTOMER_RULE)
    (sub / "goldens").mkdir()
    (sub / "goldens" / "s.golden.yaml").write_text("name: s\ninput: {q: 2}\n")
    record = ("--opswald-goldens", "--opswald-mode=record", "-p", "no:cacheprovider")
    pytester.runpytest(*record, "sub").assert_outcomes(passed=1)  # sub/'s conftest first
    pytester.runpytest(*record, "goldens").assert_outcomes(passed=1)  # sub/ not collected
    assert (
        "answer: ticket <redacted:customer-id>" in (sub / "goldens" / "s.golden.yaml").read_text()
    )
    assert "answer: ticket cust_<redacted:number>" in (root / "r.golden.yaml").read_text()
    for args in ([], ["sub"], ["goldens"], ["goldens/r.golden.yaml::r"], ["-n", "2"]):
        result = pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider", *args)
        assert result.ret == pytest.ExitCode.OK, (args, result.stdout.str())


FAILING_RULE = """
def _rule(text):
    if "bob" in text:
        raise ValueError("no bobs")
    return text


def pytest_opswald_redact(config):
    return [_rule]
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_a_rule_that_fails_on_a_text_hides_it_and_says_so(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    """QA (probe24 #1, #6): a callable rule that raised (or gave no text) for some text
    was an INTERNALERROR where a failure was shown, and under `-n 2` the run exited 0.
    The text it failed on is hidden whole, and the summary names the hook's conftest."""
    agent = 'def run(input):\n    return {"answer": "bob has ticket " + str(input["q"])}\n'
    agent_project(pytester, agent)
    golden = sub_folder(pytester, FAILING_RULE)
    sub = golden.parent.parent
    args = ("--opswald-goldens", "-p", "no:cacheprovider", *workers)
    recorded = pytester.runpytest(*args, "--opswald-mode=record")
    recorded.assert_outcomes(passed=1)
    recorded.stdout.fnmatch_lines(
        [
            f"note: the pytest_opswald_redact hook of {sub / 'conftest.py'}: its rule "
            "<function _rule *> raised ValueError: no bobs for a text; the text was written "
            "and shown as <redacted:rule-failed>*"
        ]
    )
    assert "answer: <redacted:rule-failed>" in golden.read_text()
    assert "bob" not in golden.read_text()
    # a failure whose text the rule fails on: shown hidden, the run fails
    (pytester.path / "agent.py").write_text(agent.replace('"answer"', '"other"'))
    failed = pytester.runpytest(*args)
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.assert_outcomes(failed=1)
    assert "INTERNALERROR" not in failed.stdout.str()
    assert "bob has" not in failed.stdout.str()


def test_a_symlinked_folders_conftest_rules_are_its_own(pytester: pytest.Pytester) -> None:
    """QA (probe24 #2): a folder reached through a symlink lost its conftest's rules under
    `pytest`, and lent them to the whole run under `pytest sub/ goldens/`."""
    root = agent_project(pytester, TICKET_AGENT, r="name: r\ninput: {q: 1}\n")
    real = pytester.path.parent / f"{pytester.path.name}-elsewhere" / "sub"  # outside it
    real.mkdir(parents=True)
    (real / "conftest.py").write_text(CUSTOMER_RULE)
    (real / "goldens").mkdir()
    (pytester.path / "sub").symlink_to(real, target_is_directory=True)
    for args in ([], ["sub", "goldens"]):
        for golden, stub in (
            (real / "goldens" / "s.golden.yaml", "name: s\ninput: {q: 2}\n"),
            (root / "r.golden.yaml", "name: r\ninput: {q: 1}\n"),
        ):
            golden.write_text(stub)
        pytester.runpytest(
            "--opswald-goldens", "--opswald-mode=record", "-p", "no:cacheprovider", *args,
        ).assert_outcomes(passed=2)  # fmt: skip
        assert "<redacted:customer-id>" in (real / "goldens" / "s.golden.yaml").read_text(), args
        assert "cust_123456" in (root / "r.golden.yaml").read_text(), args


def test_a_rootdir_conftest_loaded_during_collection_adds_the_runs_rules(
    pytester: pytest.Pytester,
) -> None:
    """QA (probe24 #3): with `--rootdir=sub` and `sub/` not named, the rootdir's conftest
    loads only as pytest collects `sub/`, after the run's rules were made: they were
    dropped, and its golden written with the id in clear."""
    agent_project(pytester, TICKET_AGENT)
    golden = sub_folder(pytester, CUSTOMER_RULE)
    sub = golden.parent.parent
    for args in ([], ["sub"]):
        golden.write_text("name: s\ninput: {q: 2}\n")
        pytester.runpytest(
            "--opswald-goldens", "--opswald-mode=record", "-p", "no:cacheprovider",
            f"--rootdir={sub}", *args,
        ).assert_outcomes(passed=1)  # fmt: skip
        assert "answer: ticket <redacted:customer-id>" in golden.read_text(), args


def test_a_marker_tests_golden_gets_its_own_folders_rules(pytester: pytest.Pytester) -> None:
    """QA (probe24 #4): a `@pytest.mark.golden` test outside `sub/` replaying and updating
    a golden inside it ignored `sub/`'s rules, and wrote the id in clear into the golden."""
    agent_project(pytester, TICKET_AGENT)
    golden = sub_folder(pytester, CUSTOMER_RULE)
    record = ("--opswald-goldens", "--opswald-mode=record", "-p", "no:cacheprovider", "sub")
    pytester.runpytest(*record).assert_outcomes(passed=1)
    pytester.makepyfile(
        test_marked=(
            "import pytest\n\n\n"
            '@pytest.mark.golden("sub/goldens/s.golden.yaml")\n'
            "def test_s(golden_replay):\n    pass\n"
        )
    )
    pytester.runpytest("-p", "no:cacheprovider", "test_marked.py").assert_outcomes(passed=1)
    (pytester.path / "agent.py").write_text(TICKET_AGENT.replace("123456", "999999 now"))
    updated = pytester.runpytest("-p", "no:cacheprovider", "--opswald-update", "test_marked.py")
    updated.assert_outcomes(passed=1)
    text = golden.read_text()
    assert "cust_" not in text
    assert "answer: ticket <redacted:customer-id> now" in text


def test_a_rule_added_after_recording_says_why_the_diff_reads_the_same(
    pytester: pytest.Pytester,
) -> None:
    """QA (probe24 #5): a golden recorded before a rule hid part of it fails (the actual is
    redacted, the golden holds the text in clear), with a diff whose two sides, redacted
    for the screen, read the same; a note now says why, and an update stores the
    placeholder."""
    folder = agent_project(pytester, TICKET_AGENT, r="name: r\ninput: {q: 1}\n")
    args = ("--opswald-goldens", "-p", "no:cacheprovider")
    pytester.runpytest(*args, "--opswald-mode=record").assert_outcomes(passed=1)
    assert "ticket cust_123456" in (folder / "r.golden.yaml").read_text()
    pytester.makeconftest(CUSTOMER_RULE)
    failed = pytester.runpytest(*args)
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(
        [
            "    - 'ticket <redacted:customer-id>'",
            "    + 'ticket <redacted:customer-id>'",
            "note: the golden holds in clear what a redaction rule now hides (each side above "
            "reads the same once redacted): accept it with --opswald-update, which writes the "
            "placeholder",
        ]
    )
    pytester.runpytest(*args, "--opswald-update").assert_outcomes(passed=1)
    assert "ticket <redacted:customer-id>" in (folder / "r.golden.yaml").read_text()
    pytester.runpytest(*args).assert_outcomes(passed=1)


@pytest.mark.parametrize("below", [False, True])
@pytest.mark.parametrize(
    ("returned", "said"),
    [
        ('{"(": "x"}', "returned the regular expression '(', which does not compile (missing )"),
        ("5", "returned int 5;"),
        ("[lambda text: None]", "returned the rule <function *>, which gave NoneType for a text"),
        ("[lambda text: 1 / 0]", "returned the rule <function *>, which raised ZeroDivisionError"),
        ("1 / 0", "raised ZeroDivisionError: division by zero"),
        ('{r"cust_[0-9]+": 7}', "returned the rule 'cust_[0-9]+': 7;"),
    ],
)
def test_a_redaction_hook_that_returns_no_rules_is_a_usage_error_naming_it(
    pytester: pytest.Pytester, below: bool, returned: str, said: str
) -> None:
    """QA: a bad regex (or anything but rules) from the hook was an INTERNALERROR with
    re's traceback (a conftest below the rootdir: a collection error with it); QA
    (probe23 #4, #5, #6): so was a hook that raised, or a callable rule that raised or gave
    no text (at the first text redacted), and a conftest below the rootdir's error came
    with opswald's and pluggy's frames."""
    folder = pytester.mkdir("sub") if below else pytester.path
    (folder / "conftest.py").write_text(
        f"def pytest_opswald_redact(config):\n    return {returned}\n"
    )
    (folder / "test_a.py").write_text("def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    where = f"the pytest_opswald_redact hook of {folder / 'conftest.py'} {said}"
    where = where.replace("[", "[[]")  # literal brackets for fnmatch
    if below:  # loaded as its folder is collected: the folder's collection error, alone
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(["*ERROR collecting sub*", f"{where}*"])
        assert "plugin.py" not in result.stdout.str()
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {where}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_record_outside_pytest_follows_the_projects_opswald_redact(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nopswald_redact = pii\n")
    script = pytester.makepyfile(
        rec=(
            "import opswald\n\n"
            "@opswald.tool\ndef lookup(who):\n    return {'mail': 'ann@example.com'}\n\n"
            "with opswald.record('goldens/r.golden.yaml', name='r', input={}) as rec:\n"
            "    rec.output = lookup('x')\n"
        )
    )
    assert pytester.run(sys.executable, str(script)).ret == 0
    text = (pytester.path / "goldens" / "r.golden.yaml").read_text()
    assert "ann@example.com" not in text
    assert "<redacted:email>" in text


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_block_writes_nothing(
    tmp_path: Path, interruption: type[BaseException]
) -> None:
    """Ctrl-C or sys.exit() inside the block leaves a partial session: written, it would
    be a golden that passes as complete (one step, no output, no error). Nothing is
    written, to the path or the store, and the interruption goes on."""
    path, store = tmp_path / "cut.golden.yaml", tmp_path / "store"
    with pytest.raises(interruption), opswald.record(path, input="x") as rec:
        think(model="m", messages=[{"role": "user", "content": "x"}])
        raise interruption()
    assert not path.exists() and rec.path is None
    with pytest.raises(RuntimeError, match="ended interrupted"):
        _ = rec.session
    with pytest.raises(interruption), opswald.record(name="cut", store=store) as stored:
        think(model="m", messages=[{"role": "user", "content": "x"}])
        raise interruption()
    assert not store.exists() and stored.path is None
    with opswald.record(path, input="x") as again:  # the path is still free
        again.output = agent("x")
    assert opswald.load(path).output == again.output


def test_a_file_written_while_the_block_ran_is_not_overwritten(tmp_path: Path) -> None:
    """'Never overwrites' holds when the golden is written, not only when the block
    starts: a nested record (or another thread) that wrote the path first keeps its file."""
    path = tmp_path / "same.golden.yaml"
    with pytest.raises(FileExistsError, match="never overwrites"):
        with opswald.record(path, name="outer", input="outer") as outer:
            with opswald.record(path, name="inner", input="inner") as inner:
                inner.output = "inner's"
            outer.output = "outer's"
    assert opswald.load(path).output == "inner's"
    assert inner.path == path and outer.path is None
    assert [p.name for p in tmp_path.iterdir()] == ["same.golden.yaml"]  # no temp file left


def test_the_input_is_the_one_given_when_the_block_starts(tmp_path: Path) -> None:
    """An agent that changes its input in place (appending to a history) records the
    input as it was given, so the golden replays: the replay starts from that input too."""

    def chatty(request: dict[str, Any]) -> str:
        request["history"].append("asked")
        return agent(f"{request['task']} after {len(request['history'])}")

    path = tmp_path / "mutating.golden.yaml"
    request: dict[str, Any] = {"task": "report", "history": []}
    with opswald.record(path, input=request) as rec:
        rec.output = chatty(request)
    assert request["history"] == ["asked"]
    golden = opswald.load(path)
    assert golden.input == {"task": "report", "history": []}
    result = opswald.Replay(golden, adapter=chatty).run()
    assert result is not None and result.passed, result.verdict.findings


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"tags": "refunds"}, TypeError, r"tags= takes a list of tags, not 'refunds'"),
        ({"name": 123}, TypeError, r"name= takes a string, not 123"),
        ({"agent": 5}, TypeError, r"agent= takes a string, not 5"),
        ({"tags": ["ok", 7]}, TypeError, r"tags= takes a list of tags \(strings\), not 7"),
        ({"tags": ["skip"]}, ValueError, r"tags=: tag 'skip' is one of pytest's own markers"),
    ],
)
def test_bad_names_and_tags_are_refused_before_the_block_runs(
    tmp_path: Path, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    ran: list[str] = []
    path = tmp_path / "bad.golden.yaml"
    with pytest.raises(error, match=message), opswald.record(path, **arguments):
        ran.append("block")
    assert ran == [] and not path.exists()


README_TYPED = """
import opswald

def recorded(request: dict[str, str]) -> int:
    with opswald.record("goldens/refund.golden.yaml", input=request) as rec:
        rec.output = "done"
    return len(rec.session.step_list)

def replayed() -> bool:
    replay = opswald.Replay("goldens/refund.golden.yaml", adapter=lambda given: given)
    result = replay.run()
    assert result is not None
    return result.verdict.passed
"""


def test_the_readmes_access_to_the_session_type_checks(tmp_path: Path) -> None:
    """`rec.session.step_list`, as the README writes it, passes `mypy --strict`: the
    session is a `Session` once the block has ended (reading it before raises)."""
    import subprocess

    script = tmp_path / "typed.py"
    script.write_text(README_TYPED)
    src = Path(opswald.__file__).parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "MYPYPATH": str(src)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout
    with opswald.record(store=False) as rec:
        with pytest.raises(RuntimeError, match="the block has not ended"):
            _ = rec.session
    assert rec.session.step_list == []
