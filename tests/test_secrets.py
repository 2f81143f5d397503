"""Secrets never reach a golden, a failure message or the terminal; PII only on request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import opswald
from opswald.redact import BASE64_MIN, make_redactor

OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5q" * 2
ANTHROPIC = "sk-ant-api03-" + "Zy8xWv7uTs6rQp5o" * 2
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
BEARER = "Bearer abcdefghijklmnop0123456789"
SECRETS = (OPENAI, ANTHROPIC, AWS, JWT, BEARER.split()[1])

AGENT = f'''
import os

import opswald


class VaultError(Exception):
    pass


@opswald.llm
def chat(*, model, messages):
    # a model that repeats secrets back, in its text and in a tool call's arguments
    call = {{"id": "c1", "name": "vault", "arguments": {{"auth": "{JWT}", "key": "{AWS}"}}}}
    return {{"content": "ok " + messages[-1]["content"][-12:] + " with {AWS}",
            "tool_calls": [call], "finish_reason": "tool_calls"}}


@opswald.tool
def fetch_credentials(service, access_key_id):
    return {{"token": "{BEARER}", "jwt": "{JWT}"}}


@opswald.tool
def vault(name):
    raise VaultError("vault refused key {ANTHROPIC}")


def run(input):
    suffix = os.environ.get("SUFFIX", "")
    chat(model="m", messages=[{{"role": "user", "content": "use key {OPENAI}" + suffix}}])
    creds = fetch_credentials(service="s3", access_key_id="{AWS}")
    opswald.state(memory={{"creds": creds, "owner": "jane.doe@example.com"}})
    try:
        vault("prod")
    except VaultError:
        pass
    return {{"answer": "done with {OPENAI}", "mail": "jane.doe@example.com"}}
'''


@pytest.fixture
def secret_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SUFFIX", raising=False)
    pytester.makepyfile(secretagent=AGENT, conftest="import secretagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = secretagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "s.golden.yaml").write_text(f"name: s\ninput: go {OPENAI}\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    return pytester


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked: {secret[:12]}..."


def test_goldens_hold_no_secrets(secret_project: pytest.Pytester) -> None:
    text = (secret_project.path / "goldens" / "s.golden.yaml").read_text()
    _assert_clean(text)
    for label in ("openai-key", "aws-key", "jwt", "bearer", "anthropic-key"):
        assert f"<redacted:{label}>" in text, label
    assert "jane.doe@example.com" in text, "PII is scrubbed only when asked"
    secret_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_failures_and_updates_hold_no_secrets(
    secret_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUFFIX", f" and {AWS}")
    result = secret_project.runpytest("--opswald-goldens", "-vv")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 1 of" in out
    _assert_clean(out)
    result = secret_project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    _assert_clean(result.stdout.str())
    _assert_clean((secret_project.path / "goldens" / "s.golden.yaml").read_text())


def test_pii_on_request_and_hook_rules(secret_project: pytest.Pytester) -> None:
    secret_project.makeini("[pytest]\nopswald_adapter = secretagent:run\nopswald_redact = pii\n")
    secret_project.makeconftest(
        "import secretagent\n\n"
        "def pytest_opswald_redact(config):\n"
        "    return {r'prod': 'environment'}\n"
    )
    result = secret_project.runpytest("--opswald-goldens", "--opswald-mode=rerecord")
    assert result.ret == 0, result.stdout.str()
    text = (secret_project.path / "goldens" / "s.golden.yaml").read_text()
    assert "jane.doe@example.com" not in text
    assert "<redacted:email>" in text
    assert "name: <redacted:environment>" in text
    _assert_clean(text)


def test_pii_redacts_phone_numbers_but_not_dates() -> None:
    """`opswald_redact = pii` hides phone numbers; the dates agents put in every prompt
    stay (they were read as phone numbers)."""
    redact = make_redactor(pii=True)
    text = (
        "call +1 (555) 123-4567 or 030 1234 5678 before 2024-01-01, "
        "due 2025-06-30 12:30, order 2024-01-01-0042"
    )
    assert redact.text(text) == (
        "call <redacted:phone> or <redacted:phone> before 2024-01-01, "
        "due 2025-06-30 12:30, order <redacted:phone>"
    )


def test_a_runs_redactor_hides_by_the_rules_of_the_one_it_was_made_from() -> None:
    """A run's redactor (`learning`) shares the rule plan of the one it is made from, kept
    per rule set: the PII set's copy hides an email, the default set's copy does not, in
    whichever order they were made."""
    from opswald.redact import LearnedSecrets

    text = f"mail jane.doe@example.com, key {OPENAI}"
    for order in ((True, False), (False, True)):
        for pii in order:
            run = make_redactor(pii=pii).learning(LearnedSecrets())
            hidden = run.text(text)
            assert ("<redacted:email>" in hidden) is pii, hidden
            assert "jane.doe@example.com" in hidden or pii
            assert OPENAI not in hidden and "<redacted:openai-key>" in hidden


def test_redactor_keeps_structure() -> None:
    redact = make_redactor()
    data = {"headers": {"Authorization": BEARER, "x-api-key": "k"}, "list": [OPENAI, 3, None]}
    assert redact(data) == {
        "headers": {"Authorization": "<redacted:header>", "x-api-key": "<redacted:header>"},
        "list": ["<redacted:openai-key>", 3, None],
    }


def test_reports_hold_no_secrets(
    secret_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file a failing run writes (JSON, JUnit, HTML viewer, saved actual sessions,
    pytest's cache) and its terminal output are clean; so is `opswald html` of the saved
    actual session."""
    from opswald.cli import main

    monkeypatch.setenv("SUFFIX", f" and {AWS}")
    result = secret_project.runpytest(
        "--opswald-goldens",
        "-vv",
        "--opswald-json=out/report.json",
        "--junitxml=out/junit.xml",
        "--opswald-html=out/report.html",
        "--opswald-save-actual=out/actual",
    )
    result.assert_outcomes(failed=1)
    _assert_clean(result.stdout.str())
    written = [
        p
        for p in secret_project.path.rglob("*")
        if p.is_file() and p.name != "secretagent.py" and "__pycache__" not in p.parts
    ]
    names = {p.name for p in written}
    assert {"report.json", "junit.xml", "report.html", "s.actual.yaml"} <= names
    for path in written:
        _assert_clean(path.read_text(errors="replace"))
    page = secret_project.path / "out" / "single.html"
    golden = secret_project.path / "goldens" / "s.golden.yaml"
    actual = secret_project.path / "out" / "actual" / "s.actual.yaml"
    assert main(["html", str(golden), "--actual", str(actual), "-o", str(page)]) == 0
    _assert_clean(page.read_text())
    assert "redacted:openai-key" in page.read_text()  # (the page escapes < in its data)


KEY_AGENT = f'''
import os

import opswald

KEY = "{OPENAI}"


@opswald.llm
def chat(*, model, messages):
    call = {{"id": "c1", "name": "lookup", "arguments": {{"items": [{{KEY: 1}}]}}}}
    return {{"content": "ok", "tool_calls": [call], "finish_reason": "tool_calls"}}


@opswald.tool
def lookup(items):
    return {{KEY: "owner of the key", "plain": KEY}}


def run(input):
    question = "hi" + os.environ.get("SUFFIX", "")
    answer = chat(model="m", messages=[{{"role": "user", "content": question}}])
    lookup(**answer["tool_calls"][0]["arguments"])
    opswald.state(memory={{KEY: "cached"}})
    return {{KEY: "answer", "v": KEY}}
'''


def _written(root: Any) -> list[Any]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and p.name != "keyagent.py" and "__pycache__" not in p.parts
    ]


def test_a_secret_used_as_a_mapping_key_is_redacted_everywhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keys are scrubbed like values: in the model's tool-call arguments, a tool's input and
    result, a state snapshot, the output and a stub's input, through record, a failing replay
    with every report, an update, `opswald show`, `opswald html` and `opswald replay`."""
    from opswald.cli import main

    monkeypatch.delenv("SUFFIX", raising=False)
    pytester.makepyfile(keyagent=KEY_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = keyagent:run\n")
    pytester.syspathinsert()
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "k.golden.yaml"
    golden.write_text(f"name: k\ninput:\n  {OPENAI}: 1\n")
    outputs = []
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    outputs.append(result.stdout.str())
    assert "<redacted:openai-key>" in golden.read_text()
    monkeypatch.setenv("SUFFIX", " again")
    result = pytester.runpytest(
        "--opswald-goldens",
        "-vv",
        "--opswald-json=out/report.json",
        "--junitxml=out/junit.xml",
        "--opswald-html=out/report.html",
        "--opswald-save-actual=out/actual",
    )
    result.assert_outcomes(failed=1)
    outputs.append(result.stdout.str())
    assert (pytester.path / "out" / "actual" / "k.actual.yaml").is_file()
    capsys.readouterr()
    assert main(["show", str(golden)]) == 0
    for step in ("2", "3"):
        assert main(["show", str(golden), "--step", step]) == 0
    assert main(["html", str(golden), "-o", str(pytester.path / "out" / "one.html")]) == 0
    main(["replay", str(golden), "--adapter", "keyagent:run"])
    outputs.append(capsys.readouterr().out)
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    outputs.append(result.stdout.str())
    for text in outputs:
        _assert_clean(text)
        assert OPENAI[:20] not in text
    for path in _written(pytester.path):
        text = path.read_text(errors="replace")
        _assert_clean(text)
        assert OPENAI[:20] not in text, path


def test_redacted_keys_stay_distinct() -> None:
    redact = make_redactor()
    other = OPENAI[:-1] + "x"
    data = {OPENAI: 1, "<redacted:openai-key>": 2, other: 3, "plain": {AWS: [{"a": 1}]}}
    assert redact(data) == {
        "<redacted:openai-key>#2": 1,
        "<redacted:openai-key>": 2,
        "<redacted:openai-key>#3": 3,
        "plain": {"<redacted:aws-key>": [{"a": 1}]},
    }
    assert list(redact(data)) == [
        "<redacted:openai-key>#2",
        "<redacted:openai-key>",
        "<redacted:openai-key>#3",
        "plain",
    ]
    assert redact(redact(data)) == redact(data)


def test_modifications_are_redacted_in_saved_actuals(pytester: pytest.Pytester) -> None:
    """`--opswald-modify` and `--opswald-variant` values are part of a saved actual's
    metadata: written with their secrets replaced, as everything else in it."""
    pytester.makepyfile(
        modagent=(
            "import opswald\n\n"
            "@opswald.tool\n"
            "def lookup(q):\n"
            "    return {'r': q}\n\n"
            "def run(input, modifications=None):\n"
            "    lookup(q=input['q'])\n"
            "    return {'answer': 'hello', 'mods': sorted(modifications or {})}\n"
        )
    )
    pytester.makeini("[pytest]\nopswald_adapter = modagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "m.golden.yaml").write_text("name: m\ninput: {q: hi}\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    result = pytester.runpytest(
        "--opswald-goldens",
        f"--opswald-modify=system_prompt=use key {OPENAI}",
        f"--opswald-modify=auth={BEARER}",
        "--opswald-save-actual=out/actual",
        "--opswald-json=out/report.json",
        "--opswald-html=out/report.html",
    )
    result.assert_outcomes(failed=1)
    outputs = [result.stdout.str()]
    result = pytester.runpytest(
        "--opswald-goldens",
        f"--opswald-variant=v1:system_prompt={ANTHROPIC}",
        "--opswald-save-actual=out/variant",
    )
    outputs.append(result.stdout.str())
    saved = sorted((pytester.path / "out").rglob("*.actual.yaml"))
    assert [p.name for p in saved] == ["m.actual.yaml", "m[v1].actual.yaml"]
    assert "modifications:" in saved[0].read_text()
    assert "<redacted:anthropic-key>" in saved[1].read_text()
    for text in outputs:
        _assert_clean(text)
    for path in pytester.path.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            _assert_clean(path.read_text(errors="replace"))


FORK_AGENT = f"""
import opswald

SECRET = "{OPENAI}"


@opswald.llm
def chat(*, model, messages):
    last = messages[-1]
    if last["role"] == "user":
        call = {{"id": "c1", "name": "lookup", "arguments": {{"q": last["content"]}}}}
        return {{"content": None, "tool_calls": [call], "finish_reason": "tool_calls"}}
    return {{"content": "found " + last["content"], "finish_reason": "stop"}}


@opswald.tool
def lookup(q):
    return {{"q": q}}


def run(input):
    question = opswald.user_input("ask: ")                                  # step 1
    messages = [{{"role": "user", "content": question}}]
    reply = chat(model="m", messages=messages)                              # step 2
    params = reply["tool_calls"][0]["arguments"]
    result = lookup(**params)                                               # step 3
    messages.append({{"role": "tool", "content": str(result)}})
    answer = chat(model="m", messages=messages)["content"]                  # step 4
    got = {{"question": question, "params": params, "result": result, "answer": answer}}
    # whether the agent was given the secret itself (not a placeholder) at each step
    return {{"given": {{name: SECRET in str(value) for name, value in got.items()}}}}
"""


@pytest.mark.parametrize(
    ("fork_at", "modify", "given"),
    [
        (1, f"user_input=look up {OPENAI}", "question"),
        (2, f"tool_params={{q: {OPENAI}}}", "params"),
        (3, f"tool_result={{q: {OPENAI}}}", "result"),
        (4, f"response=your key is {OPENAI}", "answer"),
    ],
)
def test_a_forks_step_modification_reaches_the_agent_and_is_written_redacted(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    fork_at: int,
    modify: str,
    given: str,
) -> None:
    """The agent is given the step modification as the user wrote it (their own value);
    the step it answers is kept like a live call's answer, its secrets replaced, in the
    saved actual and the reports."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(forkagent=FORK_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = forkagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "f.golden.yaml").write_text(
        "name: f\ninput: {user_inputs: [hello]}\n"
    )
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    result = pytester.runpytest(
        "--opswald-goldens",
        f"--opswald-fork-at={fork_at}",
        f"--opswald-modify={modify}",
        "--opswald-save-actual=out/actual",
        "--opswald-json=out/report.json",
        "--opswald-html=out/report.html",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)  # the output changed
    _assert_clean(result.stdout.str())
    for path in (pytester.path / "out").rglob("*"):
        if path.is_file():
            _assert_clean(path.read_text(errors="replace"))
    actual = opswald.load(pytester.path / "out" / "actual" / "f.actual.yaml")
    assert actual.output["given"][given] is True, actual.output
    step = actual.step_list[fork_at - 1]
    assert "<redacted:openai-key>" in step.model_dump_json(), step


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_forked_answer_through_the_api_and_an_sdk_reaches_the_agent_and_is_kept_redacted(
    monkeypatch: pytest.MonkeyPatch, sdk: str
) -> None:
    """`fork_from(n, {"response": ...})` through the real SDK: the agent reads the text as
    given; `result.actual` and `replay.steps` hold it redacted."""
    from fakeprovider import FakeProvider
    from opswald.engine.run import RunSettings, execute
    from opswald.files import dumps
    from opswald.session import Session

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    read: list[str] = []

    def agent(input: dict[str, Any]) -> dict[str, Any]:
        if sdk == "openai":
            import openai

            with openai.OpenAI(base_url=f"{base}/v1", api_key="sk-test", max_retries=0) as client:
                reply = client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}]
                )
            text = reply.choices[0].message.content or ""
        else:
            import anthropic

            with anthropic.Anthropic(base_url=base, api_key="sk-test", max_retries=0) as messages:
                message = messages.messages.create(
                    model="claude-3-5-haiku-latest",
                    max_tokens=64,
                    messages=[{"role": "user", "content": input["q"]}],
                )
            text = "".join(b.text for b in message.content if b.type == "text")
        read.append(text)
        return {"answer": text}

    with FakeProvider(script=[{"content": "Sunny."}]) as fp:
        base = fp.base_url
        stub = Session(name="weather", input={"q": "Weather?"})
        golden = execute(stub, agent, settings=RunSettings(policy="live")).actual
    assert read == ["Sunny."]
    said = f"your key is {OPENAI}"
    fork = opswald.Replay(golden, adapter=agent).fork_from(1, {"response": said})
    result = fork.run()  # the provider is gone: step 1 is answered by the modification
    assert result is not None and result.fork_step == 1
    assert read[-1] == said, "the agent reads the modification as given"
    _assert_clean(dumps(result.actual))
    _assert_clean(repr([s.step for s in fork.steps]))
    (step,) = result.actual.step_list
    assert step.model_dump()["output"]["content"] == "your key is <redacted:openai-key>"


def test_a_malformed_goldens_error_quotes_no_secret(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key pasted into the wrong field: the load error names the field and line, with the
    value quoted redacted, in the terminal, every report and `opswald validate`."""
    from opswald.cli import main

    pytester.makepyfile(plainagent="def run(input):\n    return {}\n")
    pytester.makeini("[pytest]\nopswald_adapter = plainagent:run\n")
    goldens = pytester.mkdir("goldens")
    (goldens / "cost.golden.yaml").write_text(
        f'name: cost\ninput: {{q: x}}\nexpect:\n  budgets:\n    cost: "{OPENAI}"\n'
    )
    (goldens / "took.golden.yaml").write_text(
        "name: took\ninput: {q: x}\nsteps:\n  - step: 1\n    type: tool_call\n"
        "    tool: lookup\n    input: {q: x}\n    output: {r: 1}\n"
        f'    duration_ms: "{BEARER}"\noutput: {{}}\n'
    )
    result = pytester.runpytest(
        "--opswald-goldens",
        "--opswald-json=out/report.json",
        "--junitxml=out/junit.xml",
        "--opswald-html=out/report.html",
    )
    assert result.ret != 0
    out = result.stdout.str()
    assert "expect.budgets.cost" in out and "duration_ms" in out
    assert "<redacted:openai-key>" in out
    capsys.readouterr()
    assert main(["validate", str(goldens)]) != 0
    validated = capsys.readouterr()
    assert "cost.golden.yaml:5" in validated.out + validated.err
    for text in (out, validated.out, validated.err):
        _assert_clean(text)
    for path in (pytester.path / "out").iterdir():
        _assert_clean(path.read_text(errors="replace"))


def test_report_errors_and_a_raising_judge_hold_no_secrets(pytester: pytest.Pytester) -> None:
    """The JSON report's `error` and `suggestion` (failed_tests and goldens rows) are the
    failure's text, scrubbed as the terminal's is; a judge that raises (its provider
    refused the key it was given) fails the golden with its traceback scrubbed too."""
    pytester.makepyfile(
        judgeagent=(
            "import opswald\n\n"
            "@opswald.tool\n"
            "def lookup(q):\n"
            "    return {'r': q}\n\n"
            "def run(input):\n"
            "    lookup(q=input['q'])\n"
            "    return {'answer': 'hello'}\n"
        ),
        judges=(
            "def judge(golden, actual, rubric):\n"
            f"    raise RuntimeError('Error code: 401 - Incorrect API key provided: {OPENAI}')\n"
        ),
        conftest=(
            "def pytest_opswald_compare_output(golden, actual, rubric):\n"
            "    if rubric == 'hook':\n"
            f"        return {{'passed': False, 'reasoning': 'used {BEARER} wrongly'}}\n"
        ),
    )
    pytester.makeini("[pytest]\nopswald_adapter = judgeagent:run\nopswald_judge = judges:judge\n")
    goldens = pytester.mkdir("goldens")
    expects = {
        "rx": f'    match: regex\n    value: "{AWS}|hi"\n',
        "jd": "    match: judge\n    rubric: greet\n",
        "hk": "    match: judge\n    rubric: hook\n",
    }
    for name in expects:
        (goldens / f"{name}.golden.yaml").write_text(f"name: {name}\ninput: {{q: {name}}}\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    for name, expect in expects.items():  # each fails its own expect: (never recorded so)
        path = goldens / f"{name}.golden.yaml"
        path.write_text(path.read_text() + f"expect:\n  output:\n{expect}")
    result = pytester.runpytest(
        "--opswald-goldens",
        "--opswald-mode=live",
        "-rA",
        "--opswald-json=out/report.json",
        "--junitxml=out/junit.xml",
    )
    result.assert_outcomes(failed=3)
    out = result.stdout.str()
    assert "RuntimeError" in out and "<redacted:openai-key>" in out
    assert "no match for '<redacted:aws-key>|hi'" in out
    _assert_clean(out)
    for path in (pytester.path / "out").iterdir():
        _assert_clean(path.read_text())
    import json

    report = json.loads((pytester.path / "out" / "report.json").read_text())
    errors = [t["error"] for t in report["failed_tests"]]
    assert any("<redacted:aws-key>" in (e or "") for e in errors), errors
    assert any("<redacted:bearer>" in (e or "") for e in errors), errors


TOKENS = {n: f"tok{n}Zk3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0Ac" for n in range(1, 10)}
BASIC = "dXNlcjpzM2NyM3QtcGFzc3dvcmQtdmFsdWU="  # user:s3cr3t-password-value


@opswald.tool
def http_log(url: str) -> dict[str, Any]:
    t = TOKENS
    return {
        "single_space": f"Authorization: Bearer {t[1]}",
        "two_spaces": f"Authorization: Bearer  {t[2]}",
        "tab": f"Authorization: Bearer\t{t[3]}",
        "curl_line_continuation": f"-H 'Authorization: Bearer \\\n{t[4]}'",
        "oauth_token_response": {
            "token_type": "Bearer",
            "access_token": t[5],
            "refresh_token": t[7],
            "id_token": t[8],
            "expires_in": 3600,
            "scope": "read",
        },
        "header_text_token_scheme": f"Authorization: Token {t[6]}",
        "header_text_basic": f"Authorization: Basic {BASIC}",
        "as_json_text": f'{{"access_token": "{t[9]}", "token_type": "Bearer", "expires_in": 3600}}',
        "form": {"grant_type": "password", "password": "hunter2", "client_secret": "cs-9f8e7d6c5b"},
        "usage": {"max_tokens": 512, "input_tokens": 10, "output_tokens": 5, "tokens": 15},
    }


def test_bearer_tokens_in_any_spacing_and_oauth_tokens_are_redacted(tmp_path: Any) -> None:
    """`Bearer` then any whitespace (spaces, a tab, a shell line continuation), `Token` and
    `Basic` credentials after an authorization header name, and an OAuth token response's
    tokens and secrets, as a mapping or as JSON text; what describes them stays."""
    path = tmp_path / "bearer.golden.yaml"
    with opswald.record(path, name="bearer", input={}) as rec:
        http_log(url="https://idp.example/token")
        rec.output = {}
    text = path.read_text()
    for n, token in TOKENS.items():
        assert token not in text, f"token {n} leaked"
    assert BASIC not in text and "hunter2" not in text and "cs-9f8e7d6c5b" not in text
    result = opswald.load(path).step_list[0].output
    assert result["oauth_token_response"] == {
        "token_type": "Bearer",
        "access_token": "<redacted:credential>",
        "refresh_token": "<redacted:credential>",
        "id_token": "<redacted:credential>",
        "expires_in": 3600,
        "scope": "read",
    }
    assert result["form"]["grant_type"] == "password"
    assert result["usage"] == {
        "max_tokens": 512,
        "input_tokens": 10,
        "output_tokens": 5,
        "tokens": 15,
    }
    assert result["two_spaces"] == "Authorization: Bearer  <redacted:bearer>"
    assert result["header_text_basic"] == "Authorization: Basic <redacted:authorization>"
    assert result["as_json_text"] == (
        '{"access_token": "<redacted:credential>", "token_type": "Bearer", "expires_in": 3600}'
    )


GOOGLE = "AIza" + "SyDxK3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0Ac"
GITHUB = "ghp_" + "Zk3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0AcQw9E"
GITHUB_PAT = "github_pat_" + "11ABCDEFG0Zk3Lq9Wm2Xp7_Rt5Yv8Bn4Hj6Gd1Fs0Ac"
SLACK = "xoxb-" + "123456789012-1234567890123-Zk3Lq9Wm2Xp7Rt5Yv8Bn4Hj6"
URL_PASSWORD = "S3cr3tPassw0rdValue"
OTHER = (GOOGLE, GITHUB, GITHUB_PAT, SLACK, URL_PASSWORD)


@opswald.llm(provider="google", api="gemini.generate")
def gemini(
    *,
    model: str,
    messages: list[dict[str, Any]],
    api_key: str | None = None,
    base_url: str | None = None,
    extra_headers: dict[str, str] | None = None,
    extra_query: dict[str, str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    return {
        "content": "ok",
        "finish_reason": "stop",
        "usage": {"input_tokens": 3, "output_tokens": 1},
        "logprobs": [{"token": "ok", "logprob": -0.1}],
    }


@opswald.tool
def shell(command: str) -> dict[str, Any]:
    return {
        "stdout": (
            f"remote: https://deploy:{URL_PASSWORD}@git.example/repo.git\n"
            f"GET /v1/models?key={GOOGLE[:12]}xyz&page=2 200\n"
            f"GET /me?access_token=ya29.a0AfH6SMBx&fields=id 200\n"
            f"POST /chat?api_key=plainsecretvalue1 200\n"
            f"export GH={GITHUB} SLACK={SLACK} PAT={GITHUB_PAT}\n"
            f"AWS_KEY_{AWS} and KEY{AWS}\n"
        ),
        "env": {"GITHUB_TOKEN": "gh-plain-token-value", "HOME": "/home/me", "SORT": "asc"},
        "page_token": "next-page-2",
        "links": "see https://example.com:8080/docs?page=2&sort=asc and key=value pairs",
    }


def test_other_credential_shapes_and_credential_named_parameters_are_redacted(
    tmp_path: Any,
) -> None:
    """Google, GitHub and Slack tokens, AWS keys glued to a name, a URL's password and
    credentials in its query, and the keyword arguments or headers of an `@opswald.llm`
    function named like credentials; usage figures, logprobs' tokens and ordinary text
    stay as they are."""
    path = tmp_path / "shapes.golden.yaml"
    with opswald.record(path, name="shapes", input={}) as rec:
        gemini(
            model="gemini",
            messages=[{"role": "user", "content": "hi"}],
            api_key=OPENAI,
            base_url=f"https://admin:{URL_PASSWORD}@gateway.example/v1?key={GOOGLE}",
            extra_headers={
                "x-goog-api-key": "plain-goog-value-1",
                "Authorization": BEARER,
                "X-Custom-Token": "plain-custom-value-2",
                "X-Request-Id": "req-1",
            },
            extra_query={"key": GOOGLE, "access_token": "plain-access-value-3", "alt": "json"},
            google_api_key="plain-google-value-4",
            password="plain-password-value-5",
            client_secret="plain-client-value-6",
            max_tokens=512,
            temperature=0.5,
        )
        shell(command="deploy")
        rec.output = {}
    text = path.read_text()
    _assert_clean(text)
    for secret in (*OTHER, "plain"):
        assert secret not in text, f"a secret leaked: {secret[:12]}..."
    llm, tool = opswald.load(path).step_list
    params = llm.input.params
    assert params["base_url"] == (
        "https://admin:<redacted:password>@gateway.example/v1?key=<redacted:google-key>"
    )
    assert params["extra_headers"]["X-Request-Id"] == "req-1"
    assert params["extra_query"]["alt"] == "json"
    assert (params["max_tokens"], params["temperature"]) == (512, 0.5)
    assert llm.raw["logprobs"] == [{"token": "ok", "logprob": -0.1}]
    assert llm.usage.input_tokens == 3
    result = tool.output
    assert result["env"] == {
        "GITHUB_TOKEN": "<redacted:credential>",
        "HOME": "/home/me",
        "SORT": "asc",
    }
    assert result["page_token"] == "next-page-2"
    assert (
        result["links"] == "see https://example.com:8080/docs?page=2&sort=asc and key=value pairs"
    )
    assert "AWS_KEY_<redacted:aws-key> and KEY<redacted:aws-key>" in result["stdout"]
    assert "&page=2 200" in result["stdout"] and "&fields=id 200" in result["stdout"]


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: 512, input_tokens: 10, output_tokens: 5, total_tokens: 15",
        "Count the tokens; keep the keys; a secret garden; pass the password test.",
        "sorted(items, key=lambda x: x[1]) and dict(key=1)",
        "https://example.com:8080/a/b?page=2&sort=asc#top",
        '{"token": "Hello", "logprob": -0.1, "top_logprobs": []}',
        "xoxo-lovelovelovelove and ghp_short and AIza short",
        "mailto:someone@example.com and user@host",
        "ASIA and AKIA are prefixes; AKIA-IOSFODNN7EXAMPLE is not a key",
        "plan the task-management-system-design and the desk-ant-colony-simulation",
        "Bearer authentication is the default; use bearer token-based-authentication",
    ],
)
def test_ordinary_content_is_not_redacted(text: str) -> None:
    assert make_redactor()(text) == text
    assert make_redactor()({"a": text, "max_tokens": 1, "token": text}) == {
        "a": text,
        "max_tokens": 1,
        "token": text,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"OPENAI_API_KEY={OPENAI}", "OPENAI_API_KEY=<redacted:openai-key>"),
        (
            f"KEY_{OPENAI} and -{ANTHROPIC}",
            "KEY_<redacted:openai-key> and -<redacted:anthropic-key>",
        ),
        (f"({OPENAI})", "(<redacted:openai-key>)"),
        # glued to a letter or digit: JSON text inside a string, percent- and QP-encoding
        (f"DEBUG=1\\n{OPENAI}\\n", "DEBUG=1\\n<redacted:openai-key>\\n"),
        (f"key%3D{OPENAI}&x=1", "key%3D<redacted:openai-key>&x=1"),
        (f"key=3D{ANTHROPIC}", "key=3D<redacted:anthropic-key>"),
        (f"\\u0022{ANTHROPIC}\\u0022", "\\u0022<redacted:anthropic-key>\\u0022"),
        ("Bearer ABCDEFGHIJKLMNOPQR", "Bearer <redacted:bearer>"),
        ("bearer abcdefghijklmnop0123", "bearer <redacted:bearer>"),
        ("Bearer abc.defghijklmnop", "Bearer <redacted:bearer>"),
        (
            "Authorization: Bearer abcdefghijklmnopqrst",
            "Authorization: Bearer <redacted:authorization>",
        ),
    ],
)
def test_keys_after_a_separator_and_tokens_that_are_no_word_are_redacted(
    text: str, expected: str
) -> None:
    """The prose rules (lowercase words joined by hyphens after `sk-` are no key, a bearer
    credential that is a word of prose is none) keep what looks like a credential redacted,
    also glued to a letter or digit."""
    assert make_redactor()(text) == expected


def test_base64_data_is_not_searched_for_key_shapes() -> None:
    """Key shapes turn up by chance in base64 data (`AIza` and 35 more characters in ~4%
    of 1 MB images): a `data:` URL's payload, whatever its length, and a run of
    BASE64_MIN base64 characters or more are data, not searched by the key-shape rules.
    Keys glued to a name or to a short run, and credentials after their context (a
    bearer token, a URL's `?key=`), are still redacted."""
    import json

    redact = make_redactor()
    keys = f"{GOOGLE}+{AWS}/{OPENAI}{GITHUB}{SLACK}"
    long_run = ("Qk3x/9j+" * BASE64_MIN)[:BASE64_MIN] + keys
    kept = [
        f"data:image/png;base64,iVBOR{AWS}{GOOGLE}Zm9v",
        f"![chart](data:application/pdf;name=a.pdf;BASE64,{GOOGLE}==) and text",
        long_run,
        f"{keys}{long_run}==",
        json.dumps({"source": {"type": "base64", "data": long_run}}),
        json.dumps(["\n" + long_run, "é" + long_run, f"data:audio/wav;base64,{AWS}"]),
        repr({"data": "\x07" + long_run}),
    ]
    for text in kept:
        assert redact(text) == text, text[:60]
        assert redact({"k": text, text: 1}) == {"k": text, text: 1}
    redacted = [
        (f"data:image/png;base64,iVBOR {AWS}", "data:image/png;base64,iVBOR <redacted:aws-key>"),
        (f"data:text/plain,{AWS}", "data:text/plain,<redacted:aws-key>"),
        (f"AWS_KEY_{AWS}", "AWS_KEY_<redacted:aws-key>"),
        (BLOB, BLOB[: -len(AWS)] + "<redacted:aws-key>"),
        # an escape's letters are not base64 of the string: one short still, as `BLOB`
        (json.dumps("\n" + BLOB), json.dumps("\n" + BLOB[: -len(AWS)] + "<redacted:aws-key>")),
        (json.dumps("é" + BLOB), json.dumps("é" + BLOB[: -len(AWS)] + "<redacted:aws-key>")),
        (f"Authorization: Bearer {long_run}", "Authorization: Bearer <redacted:bearer>"),
        (f"https://x.example/v1?key={long_run}", "https://x.example/v1?key=<redacted:credential>"),
    ]
    for text, expected in redacted:
        assert redact(text) == expected, text[:60]


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _attachment() -> bytes:
    """Bytes whose base64 holds an AWS key's and a Google key's shapes by chance, each
    inside one line whether wrapped at 76 (MIME) or 64 (PEM): any base64 text whose
    length is a multiple of 4 is what its bytes encode to, so the text is chosen and
    decoded. One byte more makes the last line end in `==`."""
    import base64
    import random

    rng = random.Random(11)
    text = "".join(rng.choice(B64_ALPHABET) for _ in range(2400))
    # lines [380, 456) of 76 and [384, 448) of 64 hold the first; [1216, 1280) the second
    text = text[:388] + AWS + text[408:1220] + GOOGLE + text[1259:]
    return base64.b64decode(text) + b"!"


ATTACHMENT = _attachment()


def _pem(data: bytes) -> str:
    import base64

    text = base64.b64encode(data).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _wrapped_texts() -> dict[str, str]:
    """The attachment as MIME, e-mail and PEM text hold it."""
    import base64

    mime = base64.encodebytes(ATTACHMENT).decode()
    email = (
        "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + mime.replace("\n", "\r\n")
        + "\r\n--b1--\r\n"
    )
    return {"mime": mime, "unended": mime.rstrip("\n"), "email": email, "pem": _pem(ATTACHMENT)}


def test_line_wrapped_base64_is_data_in_text_and_in_json_text() -> None:
    """Base64 wrapped in lines of 76 (MIME: e-mail attachments, `base64.encodebytes`) or
    64 (PEM) characters, `\\n` or `\\r\\n` between them, is data as one long run is: the
    key shapes it holds by chance are kept, also in JSON text (the line breaks written
    `\\n`, a `/` written `\\/`), in JSON text held in JSON text and in a repr."""
    import base64
    import json

    redact = make_redactor()
    texts = _wrapped_texts()
    for name, text in texts.items():
        assert AWS in text and GOOGLE in text, name
        assert max(map(len, text.splitlines())) == (64 if name == "pem" else 76), name
        escaped = json.dumps({"attachment": text}).replace("/", "\\/")
        assert "\\/" in escaped and json.loads(escaped) == {"attachment": text}
        twice = json.dumps(json.dumps({"attachment": text}))  # JSON text in JSON text
        assert "\\\\n" in twice
        for form in (text, json.dumps({"attachment": text}), escaped, repr([text]), twice):
            assert redact(form) == form, (name, form[:60])
            assert redact({"k": form}) == {"k": form}
    # a short last line ends the data at the quote that closes the string, escaped once or
    # twice (JSON text in JSON text)
    for cut in range(1, 4):
        mime = base64.encodebytes(ATTACHMENT[:-cut]).decode().rstrip("\n")
        assert AWS in mime and len(mime.splitlines()[-1]) < 76
        for form in (json.dumps({"a": mime}), json.dumps(json.dumps({"a": mime}))):
            assert redact(form) == form, (cut, form[-80:])
    # one long run with its slashes written `\/` (JSON text of PHP's json_encode and others)
    long_run = ("Qk3x/9j+" * BASE64_MIN)[:BASE64_MIN] + AWS
    escaped = json.dumps({"data": long_run}).replace("/", "\\/")
    assert redact(escaped) == escaped
    # the text around the data is searched as ever
    mail = f"Subject: the key is {OPENAI}\r\n" + texts["email"]
    assert redact(mail) == "Subject: the key is <redacted:openai-key>\r\n" + texts["email"]
    assert redact(json.dumps(mail)) == json.dumps(redact(mail))


def test_keys_one_per_line_are_no_wrapped_base64() -> None:
    """A list of keys, one a line, is a long run of base64 characters split by line breaks
    too: only lines that have the shape encoders write are data (every line but the last
    64 or 76 characters of the standard alphabet, the last no longer, the whole a multiple
    of 4), so the keys in such a list are still hidden — Slack user tokens of exactly 76
    characters and `sk-` keys of exactly 64 among them — and so is a key on the line after
    data."""
    import base64
    import json
    import random

    redact = make_redactor()
    rng = random.Random(5)

    def rand(n: int, chars: str = B64_ALPHABET[:62]) -> str:
        return "".join(rng.choices(chars, k=n))

    def slack_user_token() -> str:
        # xoxp-<team id>-<user id>-<token id>-<32 hex>: 76 characters with a 10-digit team id
        digits = "0123456789"
        return f"xoxp-{rand(10, digits)}-{rand(13, digits)}-{rand(13, digits)}-" + rand(
            32, "0123456789abcdef"
        )

    makers: dict[str, Callable[[], str]] = {
        "aws": lambda: "AKIA" + rand(16, B64_ALPHABET[:26] + B64_ALPHABET[52:62]),
        "google": lambda: "AIza" + rand(35),
        "openai": lambda: "sk-proj-" + rand(156),
        "openai-64": lambda: "sk-proj-" + rand(56),
        "anthropic": lambda: "sk-ant-api03-" + rand(93) + "AA",
        "github": lambda: "ghp_" + rand(36),
        "slack-user-76": slack_user_token,
    }
    for name, make in makers.items():
        keys = [make() for _ in range(60)]
        if name.endswith(("-64", "-76")):
            assert {len(key) for key in keys} == {int(name[-2:])}, name
        for sep in ("\n", "\r\n"):
            listing = sep.join(keys) + sep
            assert len(listing) > BASE64_MIN
            for form in (listing, json.dumps({"keys": listing})):
                clean = redact(form)
                assert not any(key in clean for key in keys), (name, sep, form[:60])
    # data (its last line full), then a key on the next line and more text: the key is
    # no line of the data
    data = base64.encodebytes(ATTACHMENT[: 57 * 30]).decode()
    assert AWS in data and len(data) == 77 * 30
    other = "AKIA" + "Z7Q4W2E9R1T5Y3U8"
    for after in (f"{other} is the key\n", f"{other}\nmore text\n"):
        assert redact(data + after) == data + after.replace(other, "<redacted:aws-key>")
    # ... or alone at the end, when its length is no multiple of 4 (as base64's always is)
    google = "AIza" + "Zk3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0AcQw9E1"[:35]
    assert redact(data + google + "\n") == data + "<redacted:google-key>\n"
    # ... or an AWS key id alone at the end, 20 characters as a last line could be: a
    # last line is no such id but once in about 10^11
    for end in ("", "\n", "\r\n"):
        assert redact(data + other + end) == data + "<redacted:aws-key>" + end
        assert redact(json.dumps(data + other + end)) == json.dumps(
            data + "<redacted:aws-key>" + end
        )
    # lines of another width are not taken for data
    text = base64.b64encode(ATTACHMENT).decode()
    wrapped = "\n".join(text[i : i + 72] for i in range(0, len(text), 72))
    assert "<redacted:aws-key>" in redact(wrapped)


MAIL_AGENT = """
import json

import opswald

TEXTS = {texts!r}


@opswald.tool
def read_mail(folder):
    return {{"raw": TEXTS["email"], "json": json.dumps({{"att": TEXTS["mime"]}}),
            "escaped": json.dumps({{"pem": TEXTS["pem"]}}).replace("/", "\\\\/")}}


@opswald.llm
def chat(*, model, messages):
    return {{"content": "seen", "tool_calls": [], "finish_reason": "stop"}}


def run(input):
    mail = read_mail("inbox")
    chat(model="m", messages=[{{"role": "user", "content": mail["json"] + " key {key}"}},
                              {{"role": "user", "content": TEXTS["pem"]}}])
    return {{"answer": "ok", "mime": TEXTS["mime"], "escaped": mail["escaped"]}}
"""


def test_a_golden_holds_wrapped_base64_whole(pytester: pytest.Pytester) -> None:
    """A tool's e-mail with its MIME attachment, a prompt holding it as JSON text, a PEM
    certificate, JSON text with `\\/`: recorded as they were, the key shapes in the data
    kept, the key beside it redacted; the golden replays."""
    import json

    import yaml

    texts = _wrapped_texts()
    agent = MAIL_AGENT.format(texts=texts, key=OPENAI)
    pytester.makepyfile(mailagent=agent, conftest="import mailagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = mailagent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "mail.golden.yaml"
    golden.write_text("name: mail\ninput: {}\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    text = golden.read_text()
    assert OPENAI not in text and "<redacted:openai-key>" in text
    assert "<redacted:aws-key>" not in text and "<redacted:google-key>" not in text
    data = yaml.safe_load(text)
    tool, llm = data["steps"][0], data["steps"][1]
    escaped = json.dumps({"pem": texts["pem"]}).replace("/", "\\/")
    assert tool["output"] == {
        "raw": texts["email"],
        "json": json.dumps({"att": texts["mime"]}),
        "escaped": escaped,
    }
    first, second = (m["content"] for m in llm["input"]["messages"])
    assert first == json.dumps({"att": texts["mime"]}) + " key <redacted:openai-key>"
    assert second == texts["pem"]
    assert data["output"] == {"answer": "ok", "mime": texts["mime"], "escaped": escaped}
    result = pytester.runpytest("--opswald-goldens", "-vv")
    assert result.ret == 0, result.stdout.str()


def test_quoted_credential_keys_are_gated() -> None:
    """The text rule for values under credential names only searches strings holding one
    of its gates: every name it covers must hold one."""
    from opswald.redact import CREDENTIAL_KEYS, SECRET_KEYS, SECRET_RULES, KeyedValueRule

    quoted = next(r for r in SECRET_RULES if isinstance(r, KeyedValueRule))
    named = ("google_api_key", "clientSecret", "X-Auth-Token", "GITHUB_TOKEN", "A-Key")
    for key in (*SECRET_KEYS, *CREDENTIAL_KEYS, *named):
        assert any(gate in key.lower() for gate in quoted.gates), key
        label = "header" if key in SECRET_KEYS else "credential"
        name = key.upper() if key in SECRET_KEYS | CREDENTIAL_KEYS else key
        text = f'{{"{name}": "value-1"}}'
        assert make_redactor().text(text) == f'{{"{name}": "<redacted:{label}>"}}'


def test_a_credential_named_value_in_text_is_hidden_as_in_a_mapping() -> None:
    """A tool's result sent on in a prompt (as JSON text, as a dict in an f-string) or a
    model's tool-call arguments (JSON text) get what the mapping gets: the name's
    placeholder, whatever the value holds, so the agent given the redacted result in
    replay sends the request the golden holds."""
    import json

    redact = make_redactor()
    data = {
        "api_key": OPENAI,
        "Authorization": BEARER,
        "password": "hunter2-xyz",
        "db_password": "",
        "pin_password": -918273,
        "client_secret": ["cs-one", {"x": "cs-two"}],
        "X-Auth-Token": {"value": "tok-1", "ttl": 3600},
        "refresh_token": None,
        "authorization": None,
        "note": f"the key is {ANTHROPIC}",
        "max_tokens": 512,
    }
    clean = redact(data)
    assert clean["api_key"] == clean["Authorization"] == "<redacted:header>"
    assert clean["password"] == clean["pin_password"] == clean["X-Auth-Token"]
    assert clean["refresh_token"] is None and clean["max_tokens"] == 512
    for dumps in (json.dumps, repr, lambda d: json.dumps(d, separators=(",", ":"))):
        text = redact.text(dumps(data))
        assert text == dumps(clean)
        for secret in (OPENAI, "hunter2", "918273", "cs-one", "cs-two", "tok-1", ANTHROPIC):
            assert secret not in text
        # redacted again (the golden is, before it is matched): nothing changes
        assert redact.text(text) == text
    # a golden written while a pattern's label won in text is redacted as a request is now
    old = '{"api_key": "<redacted:openai-key>", "password": "<redacted:aws-key>"}'
    assert redact.text(old) == json.dumps(
        {"api_key": clean["api_key"], "password": clean["password"]}
    )
    # what is not a value under such a name stays: prose, other names, broken text
    for kept in (
        '{"cache_key": "abc", "token": "Hello", "page_token": 2}',
        "'password': and the rest",
        '{"password": "unterminated',
        '{"api_key": [1, 2}',
    ):
        assert redact.text(kept) == kept


_NAMES = st.sampled_from(
    [
        "api_key",
        "Authorization",
        "password",
        "db_password",
        "GITHUB_TOKEN",
        "clientSecret",
        "X-Auth-Token",
        "refresh_token",
        "user",
        "content",
        "max_tokens",
        "token",
        "cache_key",
    ]
)
# base64 one character short of what is taken for data: a key in it is searched for,
# and redacted, unless one more character (an escape's letter is none) joins it
BLOB = ("Qk3x/9j+" * BASE64_MIN)[: BASE64_MIN - 1 - len(AWS)] + AWS
# wrapped base64 holding key shapes (MIME, its last line short; PEM, with its header)
WRAPPED = (_wrapped_texts()["mime"], _wrapped_texts()["pem"])
_VALUE_PIECES = st.sampled_from(
    [
        *(OPENAI, AWS, JWT, "Bearer ", "abcdefghijklmnop0123", " ", "x", "é", ":", "{", "]"),
        *(BLOB, "\n", "\x07", "\\", "\u202e", "data:image/png;base64,", *WRAPPED),
    ]
)
_JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.lists(_VALUE_PIECES, max_size=5).map("".join),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(_NAMES, _JSONABLE, max_size=5))
def test_redacted_text_of_a_mapping_is_the_text_of_the_redacted_mapping(
    data: dict[str, Any],
) -> None:
    """`json.dumps` and `repr` of a mapping, redacted, are the `json.dumps` and `repr` of
    the redacted mapping: an agent that sends on what it was given sends what was recorded."""
    import json

    redact = make_redactor()
    clean = redact(data)
    assert redact.text(json.dumps(data)) == json.dumps(clean)
    assert redact.text(repr(data)) == repr(clean)


_PIECES = [
    OPENAI,
    ANTHROPIC,
    AWS,
    JWT,
    GOOGLE,
    GITHUB,
    SLACK,
    "Bearer ",
    "Authorization: ",
    "Token ",
    "Basic ",
    "abcdefghijklmnop0123",
    "https://",
    "u:p@h",
    "?key=",
    "&access_token=",
    "password",
    "access_token",
    "X-Custom-Token",
    "<redacted:openai-key>",
    '"',
    "'",
    ": ",
    " ",
    "\n",
    "\\",
    "=",
    "@",
    "x",
    BLOB,
    *WRAPPED,
    "data:image/png;base64,",
]
_TEXTS = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)
_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXTS, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(data=_DATA)
def test_redaction_is_idempotent(data: Any) -> None:
    """Goldens hold redacted data, and a request is redacted before it is matched with the
    golden's (itself redacted again): redacting twice must change nothing more."""
    redact = make_redactor()
    once = redact(data)
    assert redact(once) == once


def test_opswald_dump_writes_no_secret_and_redacted_goldens_unchanged(tmp_path: Any) -> None:
    """`opswald.dump` is a public write path: what it writes is scrubbed by the default
    rules (a tag that is a key is left out: a placeholder is no marker name), while a
    session with nothing to scrub — every golden here — is written byte for byte as
    before."""
    from pathlib import Path

    from opswald.files import dumps, load
    from opswald.session import Session

    session = Session.model_validate(
        {
            "name": f"run {AWS}",
            "tags": ["smoke", OPENAI],
            "metadata": {"headers": {"Authorization": BEARER}, "note": ANTHROPIC},
            "input": {"password": "hunter2", "q": f"use {OPENAI}"},
            "steps": [
                {
                    "step": 1,
                    "type": "llm_call",
                    "model": "m",
                    "input": {"messages": [{"role": "user", "content": JWT}]},
                    "output": {"content": AWS},
                },
                {"step": 2, "type": "tool_call", "tool": "t", "input": {"k": AWS}, "output": JWT},
                {"step": 3, "type": "state", "memory": {"k": OPENAI}, "extra_part": ANTHROPIC},
            ],
            "output": OPENAI,
            "error": {"type": "RuntimeError", "message": f"failed with {ANTHROPIC}"},
        }
    )
    target = tmp_path / "s.golden.yaml"
    opswald.dump(session, target)
    text = target.read_text(encoding="utf-8")
    _assert_clean(text)
    assert "hunter2" not in text
    written = opswald.load(target)
    assert written.name == "run <redacted:aws-key>" and written.tags == ["smoke"]
    assert written.step_list[2].model_extra == {"extra_part": "<redacted:anthropic-key>"}
    assert written.error is not None and written.error.message.endswith("<redacted:anthropic-key>")
    opswald.dump(written, tmp_path / "again.golden.yaml")
    assert (tmp_path / "again.golden.yaml").read_text(encoding="utf-8") == text
    root = Path(__file__).parent.parent
    goldens = sorted((root / "goldens").glob("*.golden.*"))
    assert len(goldens) >= 5
    for path in goldens:
        golden = load(path)
        out = tmp_path / path.name
        opswald.dump(golden, out)
        expected = dumps(golden, "json" if path.suffix == ".json" else "yaml")
        assert out.read_text(encoding="utf-8") == expected, path.name


def test_the_readme_import_example_writes_what_opswald_import_writes(tmp_path: Any) -> None:
    """The README's Python import (`import_file`, then `opswald.dump`) scrubs as the
    command does: the same golden, no secret in it."""
    import json

    from opswald.cli import main
    from opswald.importers import import_file

    span = {
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": "00f067aa0ba902b7",
        "name": "execute_tool lookup",
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [
            {"key": k, "value": {"stringValue": v}}
            for k, v in {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup",
                "gen_ai.tool.call.arguments": json.dumps({"token": OPENAI, "q": AWS}),
            }.items()
        ],
    }
    source = tmp_path / "trace.json"
    source.write_text(json.dumps([span]), encoding="utf-8")
    result = import_file("otel", source)
    for session in result.sessions:
        opswald.dump(session, tmp_path / "api" / f"{session.name}.golden.yaml")
    print(result.mapped, result.kept, result.skipped, result.warnings)
    assert main(["import", "otel", str(source), "-o", str(tmp_path / "cli")]) == 0
    (api,) = (tmp_path / "api").iterdir()
    (cli,) = (tmp_path / "cli").iterdir()
    assert api.name == cli.name
    text = api.read_text(encoding="utf-8")
    _assert_clean(text)
    assert "<redacted:aws-key>" in text
    assert text == cli.read_text(encoding="utf-8")


def test_a_value_hidden_by_name_is_hidden_where_it_appears_alone_later_in_the_run() -> None:
    from opswald.redact import LearnedSecrets, placeholders_alike

    plain = make_redactor()
    run = plain.learning(LearnedSecrets())
    # before the run has seen it under a name, a value of no known shape stays
    assert run("pw hunter2-xyz") == "pw hunter2-xyz"
    assert run({"db_password": "hunter2-xyz", "pin_password": "1234567", "x": 1}) == {
        "db_password": "<redacted:credential>",
        "pin_password": "<redacted:credential>",
        "x": 1,
    }
    assert run("pw hunter2-xyz, again hunter2-xyz") == (
        "pw <redacted:credential>, again <redacted:credential>"
    )
    # shorter than 8 characters: not learned (it would hide ordinary words)
    assert run("pin 1234567") == "pin 1234567"
    # learned from JSON text too, with the label the name gives there
    assert run('{"api_key": "k-plain-but-secret"}') == '{"api_key": "<redacted:header>"}'
    assert run("use k-plain-but-secret now") == "use <redacted:header> now"
    # a value holding a shorter learned one is replaced whole
    assert run({"password": "hunter2-xyz-longer"}) == {"password": "<redacted:credential>"}
    assert run("hunter2-xyz-longer") == "<redacted:credential>"
    # the shared redactor learns nothing; another run starts with nothing learned
    assert plain("pw hunter2-xyz") == "pw hunter2-xyz"
    assert plain.learning(LearnedSecrets())("pw hunter2-xyz") == "pw hunter2-xyz"
    # placeholders are compared alike, whatever their label
    assert placeholders_alike({"a": ["x <redacted:openai-key> <redacted:header>"], "b": 2}) == {
        "a": ["x <redacted> <redacted>"],
        "b": 2,
    }


ENV_AGENT = """
import os

import opswald


@opswald.tool
def login(user, password):
    return {"ok": True}


@opswald.llm
def chat(*, model, messages):
    return {"content": "fine"}


def run(input):
    pw = os.environ["SERVICE_PW"]
    login(user="ada", password=pw)
    note = os.environ.get("NOTE", "")
    chat(model="m", messages=[{"role": "user", "content": f"logged in with {pw}{note}"}])
    return {"done": True}
"""


def test_an_agents_own_secret_sent_alone_after_a_named_use_never_leaks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's own credential (from its environment, of no shape a rule knows): passed
    to a tool by name, then put in a prompt alone. Hidden in the golden; replay (which
    redacts the actual request the same way) matches; a failure does not print it."""
    secret = "plain-Service-pw-42"
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NOTE", raising=False)
    monkeypatch.setenv("SERVICE_PW", secret)
    pytester.makepyfile(envagent=ENV_AGENT, conftest="import envagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = envagent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "e.golden.yaml"
    golden.write_text("name: e\ninput: go\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    text = golden.read_text()
    assert secret not in text
    assert "logged in with <redacted:credential>" in text
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    monkeypatch.setenv("NOTE", " today")
    result = pytester.runpytest("--opswald-goldens", "-vv")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 2" in out and "today" in out
    assert secret not in out


def test_tool_arguments_match_with_placeholders_alike_and_show_real_changes_only() -> None:
    from opswald.expect.args import args_differences, args_match

    golden = {"q": "key <redacted:openai-key>", "n": 1}
    same = {"q": "key <redacted:header>", "n": 1}
    for mode in ("exact", "subset"):
        assert args_match(golden, same, mode=mode, ignore=[])
        assert not args_match(golden, {**same, "n": 2}, mode=mode, ignore=[])
        found = args_differences(golden, {**same, "n": 2}, mode=mode, ignore=[])
        assert [(d.path, d.golden, d.actual) for d in found] == [(("n",), 1, 2)]
    assert not args_match(golden, {"q": "key plain", "n": 1}, mode="exact", ignore=[])


def test_a_jwt_after_an_escaped_newline_in_json_text_is_redacted() -> None:
    """`"\\neyJ…"` in JSON text (`\\x07eyJ…` in a repr) is a character and then the token."""
    import json

    redact = make_redactor()
    data = {"user": "\n" + JWT, "tab": "\t" + JWT, "bell": "\x07" + JWT, "e": "\xe9" + JWT}
    assert redact.text(json.dumps(data)) == json.dumps(redact(data))
    assert JWT not in redact.text(json.dumps(data))
    assert redact.text(repr(data)) == repr(redact(data))
    assert redact.text("token" + JWT) == "token" + JWT, "glued to a word: no token of its own"


def test_numbers_lists_and_mappings_hidden_by_name_are_hidden_when_sent_on() -> None:
    """The name hides whatever the value holds; what it held is hidden later in the run
    too: a number as the text it prints as, the strings and numbers of a list or mapping."""
    from opswald.redact import LearnedSecrets

    run = make_redactor().learning(LearnedSecrets())
    hidden = run(
        {
            "password": 12345678,
            "secret": ["listedsecret99"],
            "client_secret": {"v": "nestedsecret1", "n": 98765432.5},
        }
    )
    assert hidden == {
        "password": "<redacted:credential>",
        "secret": "<redacted:credential>",
        "client_secret": "<redacted:credential>",
    }
    text = run("pin 12345678 / listedsecret99 / nestedsecret1 / 98765432.5")
    assert text == ("pin <redacted:credential> / <redacted:credential> / "
                    "<redacted:credential> / <redacted:credential>")  # fmt: skip
    assert run("port 8080, id 1234567") == "port 8080, id 1234567", "short values stay"


HAND_WRITTEN = f"""\
name: clear
input: go
steps:
  - step: 1
    type: tool_call
    tool: lookup
    input:
      url: https://api.example.invalid/v1/search?q=x&api_key=qz8Hs7Dk2LmN4pR6tV9w
    output:
      auth: '{BEARER}'
      keys: ['{AWS}']
  - step: 2
    type: tool_call
    tool: fails
    input: {{x: 1}}
    output: null
    error: {{type: ValueError, message: 'bad key {OPENAI} for 1'}}
  - step: 3
    type: tool_call
    tool: lookup
    input: {{url: last}}
    output: {{}}
output: done
"""


def test_a_saved_actual_hides_the_secrets_a_golden_holds_in_clear(
    pytester: pytest.Pytester,
) -> None:
    """A golden written by hand (or recorded before a redaction rule covered its secrets)
    holds them in clear; the steps replay serves from it are copied into the actual, and
    the saved actual is written redacted like every file the run writes."""
    pytester.makepyfile(
        clearagent=(
            "import opswald\n\n"
            "class Refused(Exception):\n"
            "    pass\n\n"
            "@opswald.tool\n"
            "def lookup(url):\n"
            "    return {}\n\n"
            "@opswald.tool\n"
            "def fails(x):\n"
            "    raise Refused('no')\n\n"
            "def run(input):\n"
            "    lookup(url='https://api.example.invalid/v1/search?q=x&api_key=qz8Hs7Dk2LmN4pR6tV9w')\n"
            "    try:\n"
            "        fails(x=1)\n"
            "    except Exception:\n"
            "        pass\n"
            "    lookup(url='another')\n"
            "    return 'done'\n"
        )
    )
    pytester.makeini("[pytest]\nopswald_adapter = clearagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "clear.golden.yaml").write_text(HAND_WRITTEN)
    result = pytester.runpytest("--opswald-goldens", "--opswald-save-actual=act")
    result.assert_outcomes(failed=1)
    assert "step 3" in result.stdout.str()
    saved = (pytester.path / "act" / "clear.actual.yaml").read_text()
    assert "<redacted:aws-key>" in saved and "<redacted:openai-key>" in saved
    for secret in (*SECRETS, "qz8Hs7Dk2LmN4pR6tV9w"):
        assert secret not in saved, f"a secret leaked: {secret[:12]}..."
    # an update writes the golden anew: redacted too, and it replays
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    written = (pytester.path / "goldens" / "clear.golden.yaml").read_text()
    for secret in (*SECRETS, "qz8Hs7Dk2LmN4pR6tV9w"):
        assert secret not in written, f"a secret leaked: {secret[:12]}..."
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


CLEAR_LLM_GOLDEN = f"""\
name: page
input: go
steps:
  - step: 1
    type: llm_call
    provider: acme
    api: acme.chat
    model: m1
    input:
      messages: [{{role: user, content: hello}}]
      params: {{api_key: hunter2-Corr3ctHorse!}}
    output: {{content: fine, finish_reason: stop}}
  - step: 2
    type: state
    memory: {{k: '{AWS}'}}
output: done
"""


def test_the_viewer_compares_a_golden_in_clear_as_the_terminal_does(
    pytester: pytest.Pytester,
) -> None:
    """A golden holding a credential in clear, the agent sending the same one with another
    message: the terminal shows the message difference only (both sides redacted before
    comparing), and so does the page, with no secret on it."""
    pytester.makepyfile(
        pageagent=(
            "import opswald\n\n"
            "@opswald.llm(provider='acme', api='acme.chat')\n"
            "def chat(*, model, messages, api_key=''):\n"
            "    return {'content': 'fine', 'finish_reason': 'stop'}\n\n"
            "def run(input):\n"
            "    chat(model='m1', messages=[{'role': 'user', 'content': 'bye'}],\n"
            "         api_key='hunter2-Corr3ctHorse!')\n"
            f"    opswald.state(memory={{'k': '{AWS}'}})\n"
            "    return 'done'\n"
        )
    )
    pytester.makeini("[pytest]\nopswald_adapter = pageagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "page.golden.yaml").write_text(CLEAR_LLM_GOLDEN)
    result = pytester.runpytest(
        "--opswald-goldens", "--opswald-html=v.html", "--opswald-save-actual=act"
    )
    result.assert_outcomes(failed=1)
    assert "api_key" not in result.stdout.str()
    pages = [(pytester.path / "v.html").read_text()]
    done = pytester.run("opswald", "html", "goldens", "--actual-dir", "act", "-o", "v2.html")
    assert done.ret == 0, done.stdout.str() + done.stderr.str()
    pages.append((pytester.path / "v2.html").read_text())
    for page in pages:
        assert "input.messages[0].content" in page
        assert "api_key" not in page.split("input.messages[0].content")[1]
        assert "hunter2" not in page and AWS not in page
