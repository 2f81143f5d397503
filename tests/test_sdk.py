"""Real openai/anthropic SDKs, zero agent code change: record against a fake provider on
127.0.0.1, stop it, replay offline."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conftest import sdk_setup
from fakeprovider import FakeProvider
from opswald import dump, files, load
from opswald.session import LLMCallStep, ToolCallStep
from sdk_projects import WEATHER_TOOL

AGENT = '''
"""One agent, many SDK flavours (SDK_MODE); the model is asked, a tool runs, asked again."""
import asyncio
import json
import os

import opswald


def question(input):
    return input["question"] + os.environ.get("PROMPT_SUFFIX", "")


def openai_chat(input, stream=False):
    import openai
    with openai.OpenAI(max_retries=3) as client:
        return _openai_chat(client, input, stream)


def _openai_chat(client, input, stream):
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": question(input)}]
    tools = [{"type": "function", "function": TOOL}]
    for _ in range(4):
        if stream:
            content, calls = "", {}
            for chunk in client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=tools, stream=True,
                stream_options={"include_usage": True}, user="someone", temperature=0,
            ):
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                content += delta.content or ""
                for tc in delta.tool_calls or []:
                    entry = calls.setdefault(tc.index, {"id": tc.id, "name": "", "args": ""})
                    entry["name"] += (tc.function.name or "") if tc.function else ""
                    entry["args"] += (tc.function.arguments or "") if tc.function else ""
            tool_calls = [(c["id"], c["name"], c["args"]) for c in calls.values()]
        else:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=tools, user="someone", temperature=0,
            )
            message = reply.choices[0].message
            content = message.content or ""
            tool_calls = [(t.id, t.function.name, t.function.arguments)
                          for t in message.tool_calls or []]
        if not tool_calls:
            return {"answer": content}
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in tool_calls]})
        for call_id, name, args in tool_calls:
            result = get_weather(**json.loads(args))
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)}
            )
    raise RuntimeError("too many turns")


async def openai_chat_async(input):
    import openai
    async with openai.AsyncOpenAI(max_retries=3) as client:
        return await _openai_chat_async(client, input)


async def _openai_chat_async(client, input):
    messages = [{"role": "user", "content": question(input)}]
    tools = [{"type": "function", "function": TOOL}]
    for _ in range(4):
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                     tools=tools)
        message = reply.choices[0].message
        if not message.tool_calls:
            return {"answer": message.content}
        messages.append(message.model_dump(exclude_none=True))
        for t in message.tool_calls:
            result = get_weather(**json.loads(t.function.arguments))
            messages.append({"role": "tool", "tool_call_id": t.id, "content": json.dumps(result)})
    raise RuntimeError("too many turns")


def openai_responses(input, stream=False):
    import openai
    with openai.OpenAI(max_retries=3) as client:
        return _openai_responses(client, input, stream)


def _openai_responses(client, input, stream):
    items = [{"role": "user", "content": question(input)}]
    tools = [{"type": "function", **TOOL}]
    for _ in range(4):
        if stream:
            response = None
            for event in client.responses.create(model="gpt-4.1-mini", input=items, tools=tools,
                                                 stream=True):
                if event.type == "response.completed":
                    response = event.response
        else:
            response = client.responses.create(model="gpt-4.1-mini", input=items, tools=tools)
        calls = [o for o in response.output if o.type == "function_call"]
        if not calls:
            return {"answer": response.output_text}
        for call in calls:
            items.append({"type": "function_call", "call_id": call.call_id, "name": call.name,
                          "arguments": call.arguments})
            result = get_weather(**json.loads(call.arguments))
            items.append({"type": "function_call_output", "call_id": call.call_id,
                          "output": json.dumps(result)})
    raise RuntimeError("too many turns")


def anthropic_messages(input, stream=False):
    import anthropic
    with anthropic.Anthropic(max_retries=3) as client:
        return _anthropic_messages(client, input, stream)


def _anthropic_messages(client, input, stream):
    messages = [{"role": "user", "content": question(input)}]
    tools = [{"name": TOOL["name"], "description": TOOL["description"],
              "input_schema": TOOL["parameters"]}]
    for _ in range(4):
        kwargs = dict(model="claude-3-5-haiku-latest", max_tokens=256, system="be brief",
                      messages=messages, tools=tools)
        if stream:
            with client.messages.stream(**kwargs) as s:
                reply = s.get_final_message()
        else:
            reply = client.messages.create(**kwargs)
        uses = [b for b in reply.content if b.type == "tool_use"]
        if not uses:
            return {"answer": "".join(b.text for b in reply.content if b.type == "text")}
        messages.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": u.id,
             "content": json.dumps(get_weather(**u.input))} for u in uses]})
    raise RuntimeError("too many turns")


async def anthropic_async(input):
    import anthropic
    async with anthropic.AsyncAnthropic(max_retries=3) as client:
        reply = await client.messages.create(
            model="claude-3-5-haiku-latest", max_tokens=64,
            messages=[{"role": "user", "content": question(input)}])
    return {"answer": reply.content[0].text}


def plain_httpx(input):
    import httpx
    base = os.environ["OPENAI_BASE_URL"]
    model = os.environ.get("MODEL", "gpt-4o-mini")
    with httpx.Client() as client:
        for _ in range(int(os.environ.get("CALLS", "1"))):
            reply = client.post(f"{base}/chat/completions", json={
                "model": model, "messages": [{"role": "user", "content": question(input)}]})
    return {"answer": reply.json()["choices"][0]["message"]["content"]}


MODES = {
    "openai_chat": openai_chat,
    "openai_chat_stream": lambda i: openai_chat(i, stream=True),
    "openai_responses": openai_responses,
    "openai_responses_stream": lambda i: openai_responses(i, stream=True),
    "anthropic": anthropic_messages,
    "anthropic_stream": lambda i: anthropic_messages(i, stream=True),
    "plain_httpx": plain_httpx,
}
ASYNC_MODES = {"openai_chat_async": openai_chat_async, "anthropic_async": anthropic_async}


def run(input):
    mode = os.environ["SDK_MODE"]
    if mode in ASYNC_MODES:
        return asyncio.run(ASYNC_MODES[mode](input))
    return MODES[mode](input)
'''
AGENT += WEATHER_TOOL

SCRIPT = [
    {
        "content": None,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}],
        "usage": {"input_tokens": 50, "output_tokens": 12, "cached_tokens": 10},
    },
    {
        "content": "It is 21°C in Rome.",
        "tool_calls": None,
        "usage": {"input_tokens": 80, "output_tokens": 9},
    },
]

GOLDEN = "goldens/weather.golden.yaml"


@pytest.fixture
def sdk_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.Pytester]:
    stub = "name: weather\ninput:\n  question: Weather in Rome?\n"
    sdk_setup(
        pytester, monkeypatch, module="sdkagent", agent=AGENT, golden=GOLDEN, stub=stub,
        clear=("PROMPT_SUFFIX",),
    )  # fmt: skip
    yield pytester


def _record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    fail_first: list[int] | None = None,
) -> FakeProvider:
    monkeypatch.setenv("SDK_MODE", mode)
    with FakeProvider(script=[dict(s) for s in SCRIPT], fail_first=fail_first or []) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    return fp


SDK_MODES = [
    "openai_chat",
    "openai_chat_stream",
    "openai_chat_async",
    "openai_responses",
    "openai_responses_stream",
    "anthropic",
    "anthropic_stream",
]


@pytest.mark.parametrize("mode", SDK_MODES)
def test_record_then_replay_offline(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    _record(sdk_project, monkeypatch, mode)
    session = load(sdk_project.path / GOLDEN)
    kinds = [s.type for s in session.step_list]
    assert kinds == ["llm_call", "tool_call", "llm_call"], kinds
    first, tool, last = session.step_list
    assert isinstance(first, LLMCallStep) and isinstance(tool, ToolCallStep)
    assert isinstance(last, LLMCallStep)
    assert first.provider == ("anthropic" if mode.startswith("anthropic") else "openai")
    assert first.output is not None and first.output.tool_calls is not None
    assert first.output.tool_calls[0]["name"] == "get_weather"
    assert first.output.tool_calls[0]["arguments"] == {"city": "Rome"}
    assert tool.input == {"city": "Rome"}
    assert last.output is not None and last.output.content == "It is 21°C in Rome."
    assert first.usage is not None and first.usage.input_tokens == 50
    assert first.duration_ms is not None
    assert session.output == {"answer": "It is 21°C in Rome."}
    text = (sdk_project.path / GOLDEN).read_text()
    assert "sk-proj-" not in text and "sk-ant-" not in text

    # the provider is gone: replay is offline and passes
    result = sdk_project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)

    # normalised is the truth: an edited answer is what the SDK gives the agent
    edited = session.model_copy()
    assert last.output is not None
    new_last = last.model_copy(
        update={"output": last.output.model_copy(update={"content": "Edited: sunny."})}
    )
    edited.steps = [first, tool, new_last]
    edited = edited.model_copy(update={"output": {"answer": "Edited: sunny."}})
    edited.model_fields_set.update({"steps", "output"})
    dump(edited, sdk_project.path / GOLDEN)
    sdk_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "mode", ["openai_chat", "openai_chat_stream", "openai_responses", "anthropic_stream"]
)
def test_secrets_in_what_the_model_answers_are_never_written(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A model that repeats a secret, in its text or in a tool call's arguments: the
    golden holds placeholders (output and raw alike, so they still agree), and it replays."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0"
    aws = "AKIA" + "IOSFODNN7EXAMPLQ"
    script = [
        {
            **SCRIPT[0],
            "tool_calls": [{"name": "get_weather", "arguments": {"city": f"Rome {jwt}"}}],
        },
        {**SCRIPT[1], "content": f"It is 21°C in Rome. Your key {aws} leaked."},
    ]
    monkeypatch.setenv("SDK_MODE", mode)
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = sdk_project.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    text = (sdk_project.path / GOLDEN).read_text()
    assert jwt not in text and aws not in text
    first, tool, last = load(sdk_project.path / GOLDEN).step_list
    assert isinstance(first, LLMCallStep) and isinstance(last, LLMCallStep)
    assert first.output is not None and first.output.tool_calls is not None
    assert first.output.tool_calls[0]["arguments"] == {"city": "Rome <redacted:jwt>"}
    assert isinstance(tool, ToolCallStep) and tool.input == {"city": "Rome <redacted:jwt>"}
    assert last.output is not None
    assert last.output.content == "It is 21°C in Rome. Your key <redacted:aws-key> leaked."
    # nor the lengths of the pieces a redacted text was streamed in: they are of the secret
    assert "stream_chunks" not in text
    result = sdk_project.runpytest("--opswald-goldens", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("mode", ["openai_chat", "anthropic_stream"])
def test_a_reply_that_reorders_or_hides_text_is_written_escaped_and_replays(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A model reply holding a RIGHT-TO-LEFT OVERRIDE and a ZERO WIDTH SPACE ("Trojan
    Source"): the golden, and a saved actual session, hold their escapes, so a reviewer's
    diff shows them; the emoji beside them stays as it is, and the golden replays."""
    reply = "Refund of 1\u202e00 EUR\u202c approved 👨‍👩‍👧, order\u200b 7."
    script = [SCRIPT[0], {**SCRIPT[1], "content": reply}]
    monkeypatch.setenv("SDK_MODE", mode)
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        recorded = sdk_project.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert recorded.ret == 0, recorded.stdout.str()
    text = (sdk_project.path / GOLDEN).read_text(encoding="utf-8")
    assert "\u202e" not in text and "\u202c" not in text and "\u200b" not in text
    assert "answer: " + '"Refund of 1\\u202E00 EUR\\u202C approved 👨‍👩‍👧, order\\u200B 7."' in text
    session = load(sdk_project.path / GOLDEN)
    last = session.step_list[-1]
    assert isinstance(last, LLMCallStep) and last.output is not None
    assert last.output.content == reply and session.output == {"answer": reply}

    sdk_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)

    # a failed replay's saved actual session (the prompt now holds an override too)
    monkeypatch.setenv("PROMPT_SUFFIX", " \u202eplease")
    failed = sdk_project.runpytest("--opswald-goldens", "--opswald-save-actual=actual")
    failed.assert_outcomes(failed=1)
    (saved,) = (sdk_project.path / "actual").iterdir()
    actual = saved.read_text(encoding="utf-8")
    assert "Weather in Rome? \\u202Eplease" in actual and "\u202e" not in actual
    data = json.dumps(files.to_data(load(saved)), ensure_ascii=False)
    assert "Weather in Rome? \u202eplease" in data


@pytest.mark.parametrize("mode", ["openai_chat", "anthropic"])
def test_changed_prompt_names_the_step_with_a_normalised_diff(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    _record(sdk_project, monkeypatch, mode)
    monkeypatch.setenv("PROMPT_SUFFIX", " Answer in French.")
    result = sdk_project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 1 of 3 · llm_call" in out
    assert (
        "step 1 › input.messages[1].content: 'Weather in Rome?' → "
        "'Weather in Rome? Answer in French.'" in out
    )
    assert "x-stainless" not in out and "authorization" not in out.lower()


@pytest.mark.parametrize(
    ("mode", "variable"), [("openai_chat", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_a_replay_without_an_api_key_says_to_set_one_and_an_update_writes_nothing(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str, variable: str
) -> None:
    """The SDKs refuse to make a request with no key, also in a replay that sends none:
    the fix is the key, not an update (which would write the SDK's error as the golden)."""
    _record(sdk_project, monkeypatch, mode)
    path = sdk_project.path / GOLDEN
    before = path.read_bytes()
    monkeypatch.delenv(variable)
    fix = f"set {variable} to any value ({variable}=unused): the SDK wants a key before it "
    result = sdk_project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the agent raised*", f"fix: {fix}*"])
    update = sdk_project.runpytest("--opswald-goldens", "--opswald-update")
    update.assert_outcomes(failed=1)
    update.stdout.fnmatch_lines(
        [f"fix: not written: an update does not bless a crash the golden did not have; {fix}*"]
    )
    assert path.read_bytes() == before
    monkeypatch.setenv(variable, "unused")
    sdk_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


SEEN_HOOK = """
import json

import sdkagent


def pytest_opswald_before_step(replay, step):
    if step.type == "llm_call":
        params = step.request["input"].get("params") or {}
        seen = [step.number, step.request["model"], params.get("temperature")]
        with open("seen.jsonl", "a") as f:
            f.write(json.dumps(seen) + "\\n")
"""


@pytest.mark.parametrize(("fork_at", "sent"), [(1, 2), (2, 1), (3, 1)])
def test_a_fork_at_a_step_sends_the_other_model_from_that_step_on(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fork_at: int, sent: int
) -> None:
    """`--opswald-fork-at=N --opswald-modify model=... temperature=...` through the real
    openai SDK: the model calls before golden step N are served as recorded (the provider
    never sees them), and every call from step N on reaches it with the other model and
    temperature (the agent sends gpt-4o-mini at temperature 0)."""
    _record(sdk_project, monkeypatch, "openai_chat")
    sdk_project.makepyfile(conftest=SEEN_HOOK)
    script = [dict(s) for s in SCRIPT[-sent:]]
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = sdk_project.runpytest(
            "--opswald-goldens", f"--opswald-fork-at={fork_at}",
            "--opswald-modify", "model=gpt-4o", "--opswald-modify", "temperature=0.5",
        )  # fmt: skip
        result.assert_outcomes(passed=1)
    received = [r.body for r in fp.requests if r.path.endswith("/chat/completions")]
    assert [(b["model"], b["temperature"]) for b in received] == [("gpt-4o", 0.5)] * sent
    last = received[-1]["messages"][-1]
    assert last["role"] == "tool", "the last model call, after the tool's answer"
    # before_step hooks see each model call as it went: the recorded request before step
    # N, the one the provider got from N on (at N too, not the agent's own request)
    seen = (sdk_project.path / "seen.jsonl").read_text().splitlines()
    hooks = {n: (m, t) for n, m, t in map(json.loads, seen)}
    assert hooks == {n: ("gpt-4o", 0.5) if n >= fork_at else ("gpt-4o-mini", 0) for n in (1, 3)}


def test_retries_are_not_steps_and_not_divergences(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp = _record(sdk_project, monkeypatch, "openai_chat", fail_first=[429, 500])
    assert len(fp.requests) == 4, "two failed attempts, then two real calls"
    session = load(sdk_project.path / GOLDEN)
    assert [s.type for s in session.step_list] == ["llm_call", "tool_call", "llm_call"]
    first = session.step_list[0]
    assert isinstance(first, LLMCallStep) and first.input.params is not None
    assert "user" in first.input.params, "recorded as sent; dropped only when matching"
    sdk_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_plain_httpx_client(sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDK_MODE", "plain_httpx")
    with FakeProvider(
        script=[
            {
                "content": "hello from httpx",
                "tool_calls": None,
                "usage": {"input_tokens": 3, "output_tokens": 4},
            }
        ]
    ) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        sdk_project.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(
            passed=1
        )
    session = load(sdk_project.path / GOLDEN)
    assert session.output == {"answer": "hello from httpx"}
    assert [s.type for s in session.step_list] == ["llm_call"]
    sdk_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_replay_under_xdist(sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _record(sdk_project, monkeypatch, "openai_chat")
    text = (sdk_project.path / GOLDEN).read_text()
    (sdk_project.path / "goldens" / "second.golden.yaml").write_text(
        text.replace("name: weather", "name: second")
    )
    sdk_project.runpytest("--opswald-goldens", "-n", "2").assert_outcomes(passed=2)


def test_cost_comes_from_the_price_table(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(sdk_project, monkeypatch, "openai_chat")
    first = load(sdk_project.path / GOLDEN).step_list[0]
    assert isinstance(first, LLMCallStep)
    assert first.cost is not None and first.cost > 0
    assert first.cost_source is not None and first.cost_source.startswith("price_table:")
    assert json.dumps(first.usage.model_dump() if first.usage else {})


def test_a_model_missing_from_the_price_table_costs_null_with_one_warning(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SDK_MODE", "plain_httpx")
    monkeypatch.setenv("MODEL", "in-house-model-7")
    monkeypatch.setenv("CALLS", "2")
    script = [
        {"content": "hi", "tool_calls": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
    ]
    with FakeProvider(script=script * 2) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = sdk_project.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["note: opswald has no price for model 'in-house-model-7'*"])
    assert result.stdout.str().count("no price for model") == 1
    steps = load(sdk_project.path / GOLDEN).step_list
    assert len(steps) == 2
    assert all(isinstance(s, LLMCallStep) and s.cost is None and s.usage for s in steps)


def test_the_price_hook_wins(sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDK_MODE", "plain_httpx")
    monkeypatch.setenv("MODEL", "in-house-model-7")
    sdk_project.makeconftest(
        "import sdkagent\n\n"
        "def pytest_opswald_price(model, usage, config):\n"
        "    return 0.5 if model == 'in-house-model-7' else None\n"
    )
    script = [
        {"content": "hi", "tool_calls": None, "usage": {"input_tokens": 3, "output_tokens": 1}}
    ]
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = sdk_project.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    step = load(sdk_project.path / GOLDEN).step_list[0]
    assert isinstance(step, LLMCallStep)
    assert (step.cost, step.cost_source) == (0.5, "hook")


def test_an_unreachable_provider_leaves_one_failed_step_and_the_error(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SDK_MODE", "openai_chat")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    result = sdk_project.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*recorded a session that ends with APIConnectionError*"])
    session = load(sdk_project.path / GOLDEN)
    [step] = session.step_list  # the SDK's retries of a refused connection are not steps
    assert isinstance(step, LLMCallStep) and step.error is not None
    assert step.error.type == "ConnectError", "the last attempt's error, replayed as such"
    assert session.error is not None and session.error.type == "APIConnectionError"
    sdk_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_an_update_under_another_model_records_no_response_model_of_its_own(
    sdk_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA (probe26 #4): `--opswald-update --opswald-modify model=gpt-4o` wrote
    `attributes.response_model: gpt-4o` on each model step, the provider's model having
    been compared with the agent's own request (gpt-4o-mini), not the one sent."""
    _record(sdk_project, monkeypatch, "openai_chat")
    with FakeProvider(script=[dict(s) for s in SCRIPT]) as fp:  # it answers as the model asked
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = sdk_project.runpytest(
            "--opswald-goldens", "--opswald-update", "--opswald-modify", "model=gpt-4o"
        )
        result.assert_outcomes(passed=1)
    calls = [s for s in load(sdk_project.path / GOLDEN).step_list if isinstance(s, LLMCallStep)]
    assert [s.model for s in calls] == ["gpt-4o", "gpt-4o"]
    assert all("response_model" not in (s.attributes or {}) for s in calls), calls
