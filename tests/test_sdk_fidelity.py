"""What an unchanged agent sees on replay is what it saw live: stream framing the request
asked for, provider ids, usage details, reasoning blocks, failed calls, and a clear word
when replay's offline guard blocks a call opswald does not record. Real openai/anthropic
SDKs against the fake provider on 127.0.0.1, pytest run for real."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import sdk_setup
from fakeprovider import FakeProvider
from opswald import dump, load
from opswald.intercept.codecs import AnthropicMessagesCodec, OpenAIResponsesCodec, sse
from opswald.session import LLMCallStep, Session
from sdk_projects import llm_steps, record, replay, serving

AGENT = '''
"""Agents that use what the provider gave them (MODE picks one)."""
import json
import os

import opswald


@opswald.tool
def get_weather(city):
    return {"city": city, "temp_c": 21}


def chat_text(input):
    """Recorded without streaming; STREAM=1 makes the same call stream (no usage asked)."""
    import openai
    client = _opened(openai.OpenAI(max_retries=0))
    kwargs = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}])
    if not os.environ.get("STREAM"):
        return {"answer": client.chat.completions.create(**kwargs).choices[0].message.content}
    text = ""
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        text += chunk.choices[0].delta.content or ""   # the common loop
    return {"answer": text}


def chat_choices(input):
    """n=2: the text of every choice. STREAM=1 streams the call (texts gathered by choice
    index), STREAM=helper uses the SDK's stream helper."""
    import openai
    client = _opened(openai.OpenAI(max_retries=0))
    kwargs = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}], n=2)
    stream = os.environ.get("STREAM")
    if not stream:
        reply = client.chat.completions.create(**kwargs)
        return {"texts": [c.message.content for c in reply.choices]}
    if stream == "helper":
        with client.chat.completions.stream(**kwargs) as s:
            final = s.get_final_completion()
        return {"texts": [c.message.content for c in final.choices]}
    texts = {}
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    return {"texts": [texts[i] for i in sorted(texts)]}


def chat_logprobs(input):
    """logprobs=True: the tokens and their log probabilities (STREAM as for chat_choices)."""
    import openai
    client = _opened(openai.OpenAI(max_retries=0))
    kwargs = dict(model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}],
                  logprobs=True)
    stream = os.environ.get("STREAM")
    if not stream:
        tokens = client.chat.completions.create(**kwargs).choices[0].logprobs.content
    elif stream == "helper":
        with client.chat.completions.stream(**kwargs) as s:
            tokens = s.get_final_completion().choices[0].logprobs.content
    else:
        tokens = []
        for chunk in client.chat.completions.create(stream=True, **kwargs):
            logprobs = chunk.choices[0].logprobs if chunk.choices else None
            tokens += (logprobs.content or []) if logprobs else []
    return {"tokens": [[t.token, t.logprob] for t in tokens]}


def azure_chat(input):
    """Azure OpenAI: the deployment (DEPLOYMENT) is in the path and selects the model; the
    body's `model` is not read there."""
    import openai
    client = _opened(openai.AzureOpenAI(
        azure_endpoint=os.environ["OPENAI_BASE_URL"].removesuffix("/v1"),
        azure_deployment=os.environ.get("DEPLOYMENT", "gpt4o-mini-prod"),
        api_version="2024-10-21", api_key="azure-key-0000", max_retries=0))
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}])
    return {"answer": reply.choices[0].message.content}


def responses_chain(input):
    """Two streamed turns chained by previous_response_id; the ids are the output."""
    import openai
    client = _opened(openai.OpenAI(max_retries=0))
    previous, ids, texts, reasoning = None, [], [], []
    for question in (input["q"], "and tomorrow?"):
        kwargs = {"previous_response_id": previous} if previous else {}
        if os.environ.get("STREAM") == "1":
            final = None
            for event in client.responses.create(
                model="o4-mini", input=question, stream=True, **kwargs
            ):
                if event.type == "response.completed":
                    final = event.response
        else:
            final = client.responses.create(model="o4-mini", input=question, **kwargs)
        previous = final.id
        ids.append(final.id)
        texts.append(final.output_text)
        reasoning += [i.encrypted_content for i in final.output if i.type == "reasoning"]
    return {"ids": ids, "texts": texts, "reasoning": reasoning}


def responses_reasoning(input):
    """Stateless Responses with reasoning: every output item goes back as input."""
    import openai
    client = _opened(openai.OpenAI(max_retries=0))
    stream = os.environ.get("STREAM") == "1"
    items = [{"role": "user", "content": input["q"]}]
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    for _ in range(3):
        kwargs = dict(model="o4-mini", input=items, tools=tools, store=False,
                      include=["reasoning.encrypted_content"])
        if stream:
            final = None
            for event in client.responses.create(stream=True, **kwargs):
                if event.type == "response.completed":
                    final = event.response
        else:
            final = client.responses.create(**kwargs)
        items += [i.model_dump(exclude_none=True) for i in final.output]
        calls = [i for i in final.output if i.type == "function_call"]
        if not calls:
            return {"answer": final.output_text}
        for call in calls:
            result = get_weather(**json.loads(call.arguments))
            items.append({"type": "function_call_output", "call_id": call.call_id,
                          "output": json.dumps(result)})
    raise RuntimeError("too many turns")


def anthropic_thinking(input):
    """Extended thinking with a tool: the assistant content goes back as it came."""
    import anthropic
    client = _opened(anthropic.Anthropic(max_retries=0))
    messages = [{"role": "user", "content": input["q"]}]
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    ids, usages = [], []
    for _ in range(3):
        kwargs = dict(model="claude-sonnet-4-5", max_tokens=2048, messages=messages,
                      tools=tools, thinking={"type": "enabled", "budget_tokens": 1024})
        if os.environ.get("STREAM") == "1":
            with client.messages.stream(**kwargs) as s:
                reply = s.get_final_message()
        else:
            reply = client.messages.create(**kwargs)
        ids.append(reply.id)
        usages.append(reply.usage.model_dump(exclude_none=True))
        messages.append({"role": "assistant",
                         "content": [b.model_dump(exclude_none=True) for b in reply.content]})
        uses = [b for b in reply.content if b.type == "tool_use"]
        if not uses:
            text = "".join(b.text for b in reply.content if b.type == "text")
            return {"answer": text, "ids": ids, "usage": usages}
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": u.id,
             "content": json.dumps(get_weather(**u.input))} for u in uses]})
    raise RuntimeError("too many turns")


def chat_always_fails(input):
    """Every attempt fails (HTTP 500): the SDK's exception is the agent's."""
    import openai
    client = _opened(openai.OpenAI(max_retries=2))
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}])
    return {"answer": reply.choices[0].message.content}


def chat_timeout_caught(input):
    """Every attempt times out; the agent catches it and answers something else."""
    import openai
    client = _opened(openai.OpenAI(max_retries=1, timeout=0.3))
    try:
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}])
    except openai.APITimeoutError as exc:
        return {"answer": "the model is slow today", "error": type(exc).__name__}
    return {"answer": reply.choices[0].message.content}


_SHARED = []


def shared_async_client(input):
    """One AsyncOpenAI client for every run, each run in its own asyncio.run: the second
    run reuses a pooled connection of the first run's closed loop, and its call fails with
    RuntimeError("Event loop is closed"), which the SDK lets through as it is."""
    import asyncio
    import openai
    if not _SHARED:
        _SHARED.append(openai.AsyncOpenAI(max_retries=2))

    async def ask():
        reply = await _SHARED[0].chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}])
        return reply.choices[0].message.content

    return {"answer": asyncio.run(ask())}


def embeddings_elsewhere(input):
    """A call opswald does not record (embeddings), to a provider that is not loopback."""
    import openai
    client = _opened(openai.OpenAI(base_url="https://api.example.invalid/v1", max_retries=0))
    vector = client.embeddings.create(model="text-embedding-3-small", input=input["q"])
    return {"dims": len(vector.data[0].embedding)}


def lookup_elsewhere(input):
    """A client of the agent's own (not an LLM SDK) that wraps the connection error."""
    import httpx
    try:
        httpx.get("https://api.example.invalid/v1/data", timeout=5)
    except httpx.HTTPError as exc:
        raise RuntimeError("the lookup service is down") from exc
    return {"dims": 3}


def with_extras(input):
    """Calls beside the model call: OpenAI embeddings and Anthropic count_tokens through the
    SDKs (as a local gateway serves them), and a plain httpx call to a local service."""
    import anthropic
    import httpx
    import openai
    base = os.environ["OPENAI_BASE_URL"]
    health = httpx.get(base.removesuffix("/v1") + "/health").text
    client = _opened(openai.OpenAI(max_retries=0))
    vector = client.embeddings.create(model="text-embedding-3-small", input=input["q"])
    count = _opened(anthropic.Anthropic(max_retries=0)).messages.count_tokens(
        model="claude-haiku-4-5", messages=[{"role": "user", "content": input["q"]}])
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}])
    return {"health": health, "dims": len(vector.data[0].embedding),
            "count": count.input_tokens, "answer": reply.choices[0].message.content}


@opswald.tool
def embed(text):
    import openai
    with openai.OpenAI(max_retries=0) as client:
        vector = client.embeddings.create(model="text-embedding-3-small", input=text)
    return vector.data[0].embedding


def embeddings_in_a_tool(input):
    """The embeddings call made inside a tool: the tool's result is recorded."""
    import openai
    dims = len(embed(input["q"]))
    reply = _opened(openai.OpenAI(max_retries=0)).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}])
    return {"dims": dims, "answer": reply.choices[0].message.content}


_CLIENTS = []


def _opened(client):
    _CLIENTS.append(client)
    return client


def run(input):
    try:
        return globals()[os.environ["MODE"]](input)
    finally:
        while _CLIENTS:
            _CLIENTS.pop().close()
'''

GOLDEN = "goldens/agent.golden.yaml"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: agent\ninput:\n  q: Weather in Rome?\n"
    sdk_setup(
        pytester, monkeypatch, module="fidelityagent", agent=AGENT, golden=GOLDEN, stub=stub,
        clear=("STREAM",),
    )  # fmt: skip
    yield pytester


def _record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    script: list[dict[str, Any]],
    **faults: Any,
) -> tuple[Session, FakeProvider]:
    session, fp, _ = record(pytester, monkeypatch, GOLDEN, mode, script, **faults)
    return session, fp


# -- 1. a stream carries the usage chunk only when the request asked for it -------------


def test_json_recording_replayed_as_a_stream_sends_no_unasked_usage_chunk(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, _ = _record(project, monkeypatch, "chat_text", [{"content": "Sunny, 21°C."}])
    [step] = llm_steps(session)
    assert step.usage is not None, "the recording has usage: a stream could carry it"
    monkeypatch.setenv("STREAM", "1")
    result = replay(project)
    assert "IndexError" not in result.stdout.str()
    result.assert_outcomes(passed=1)


# -- 1b. every choice of an `n` > 1 call is recorded and replayed -----------------------

STREAM_PAIRS = [("1", "1"), ("1", ""), ("", "1"), ("1", "helper")]
STREAM_IDS = ["stream", "stream-as-json", "json-as-stream", "stream-as-helper"]


@pytest.mark.parametrize(("recorded", "replayed"), STREAM_PAIRS, ids=STREAM_IDS)
def test_every_choice_of_an_n_call_is_recorded_and_replayed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, recorded: str, replayed: str
) -> None:
    monkeypatch.setenv("STREAM", recorded)
    script = [{"content": "Sunny in Rome.", "alternatives": ["Warm in Rome."]}]
    session, _ = _record(project, monkeypatch, "chat_choices", script)
    assert session.output == {"texts": ["Sunny in Rome.", "Warm in Rome."]}
    [step] = llm_steps(session)
    assert step.output is not None and step.output.content == "Sunny in Rome."
    assert isinstance(step.raw, dict)
    assert [c["message"]["content"] for c in step.raw["choices"]] == [
        "Sunny in Rome.",
        "Warm in Rome.",
    ]
    monkeypatch.setenv("STREAM", replayed)
    replay(project).assert_outcomes(passed=1)


@pytest.mark.parametrize(("recorded", "replayed"), STREAM_PAIRS, ids=STREAM_IDS)
def test_logprobs_are_recorded_and_replayed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, recorded: str, replayed: str
) -> None:
    monkeypatch.setenv("STREAM", recorded)
    session, _ = _record(project, monkeypatch, "chat_logprobs", [{"content": "Sunny in Rome."}])
    assert session.output == {"tokens": [["Sunny", -0.25], [" in R", -0.5], ["ome.", -0.75]]}, (
        "one token per piece the fake provider streams"
    )
    [step] = llm_steps(session)
    assert isinstance(step.raw, dict)
    assert [t["token"] for t in step.raw["choices"][0]["logprobs"]["content"]] == [
        "Sunny",
        " in R",
        "ome.",
    ]
    monkeypatch.setenv("STREAM", replayed)
    replay(project).assert_outcomes(passed=1)


# -- 1c. the Azure deployment, which selects the model, is part of the request --------


def test_an_azure_deployment_is_recorded_and_a_changed_one_diverges(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fp = _record(project, monkeypatch, "azure_chat", [{"content": "Sunny."}])
    assert fp.requests[0].path.startswith("/openai/deployments/gpt4o-mini-prod/chat/completions")
    [step] = llm_steps(session)
    assert step.input.params == {"azure_deployment": "gpt4o-mini-prod"}
    replay(project).assert_outcomes(passed=1)

    monkeypatch.setenv("DEPLOYMENT", "gpt4o-prod")  # another deployment: another model
    result = replay(project)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 1 of 1 · llm_call gpt-4o-mini: the agent sent another request" in out
    assert "step 1 › input.params.azure_deployment: 'gpt4o-mini-prod' → 'gpt4o-prod'" in out


@pytest.mark.parametrize("by_hand", [True, False], ids=["hand-written", "recorded"])
def test_a_golden_without_the_azure_deployment(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, by_hand: bool
) -> None:
    """A hand-written golden that leaves the deployment out is not compared on it; a
    recorded one had none sent (a plain OpenAI endpoint then), so a deployment now is a
    change."""
    session, _ = _record(project, monkeypatch, "azure_chat", [{"content": "Sunny."}])
    [step] = llm_steps(session)
    older = step.model_copy(update={"input": step.input.model_copy(update={"params": None})})
    session.steps = [older]
    if by_hand:
        session.metadata = {k: v for k, v in session.metadata.items() if k != "recorded_with"}
    dump(session, project.path / GOLDEN)
    assert "azure_deployment" not in (project.path / GOLDEN).read_text()
    result = replay(project)
    if by_hand:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["  step 1 › input.params: added"])


# -- 2. provider ids and usage details survive a streamed recording ---------------------


@pytest.mark.parametrize("stream", ["1", ""], ids=["stream", "json"])
def test_chained_responses_keep_their_ids(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stream: str
) -> None:
    monkeypatch.setenv("STREAM", stream)
    script = [{"content": "Sunny."}, {"content": "Rain tomorrow."}]
    session, fp = _record(project, monkeypatch, "responses_chain", script)
    assert session.output is not None and session.output["ids"] == ["resp_1", "resp_2"]
    sent = [r.body.get("previous_response_id") for r in fp.requests if r.method == "POST"]
    assert sent == [None, "resp_1"]
    second = llm_steps(session)[1]
    assert second.input.params is not None
    assert second.input.params["previous_response_id"] == "resp_1"
    replay(project).assert_outcomes(passed=1)

    # normalised is the truth: an edited answer is served, still under the recorded id
    edited = _edit_last_answer(session, "Snow tomorrow.")
    output = {**session.output, "texts": ["Sunny.", "Snow tomorrow."]}
    _write(project, edited, output)
    replay(project).assert_outcomes(passed=1)


def test_streamed_anthropic_keeps_message_ids_and_usage_details(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAM", "1")
    extra = {"service_tier": "standard", "cache_creation": {"ephemeral_5m_input_tokens": 0}}
    script = [{"content": "Sunny in Rome.", "usage_extra": extra}]
    session, _ = _record(project, monkeypatch, "anthropic_thinking", script)
    assert session.output is not None
    assert session.output["ids"] == ["msg_1"]
    assert session.output["usage"][0]["service_tier"] == "standard"
    replay(project).assert_outcomes(passed=1)
    monkeypatch.setenv("STREAM", "")  # the streamed recording answers a JSON call alike
    replay(project).assert_outcomes(passed=1)


# -- 3. reasoning the provider signed goes back to it unchanged ------------------------


THINKING_SCRIPT = [
    {
        "content": "Let me check.",
        "thinking": "The user wants weather; call the tool.",
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}],
    },
    {"content": "It is 21°C in Rome."},
]


@pytest.mark.parametrize(
    ("recorded", "replayed"),
    [("1", "1"), ("", "1"), ("1", "")],
    ids=["stream", "json-as-stream", "stream-as-json"],
)
def test_anthropic_thinking_blocks_are_replayed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, recorded: str, replayed: str
) -> None:
    monkeypatch.setenv("STREAM", recorded)
    session, fp = _record(project, monkeypatch, "anthropic_thinking", THINKING_SCRIPT)
    sent_back = fp.requests[-1].body["messages"][1]["content"]
    assert [b["type"] for b in sent_back] == ["thinking", "redacted_thinking", "text", "tool_use"]
    first = llm_steps(session)[0]
    assert isinstance(first.raw, dict) and first.raw["content"][0]["signature"].startswith("sig-")
    monkeypatch.setenv("STREAM", replayed)
    replay(project).assert_outcomes(passed=1)


def test_anthropic_thinking_survives_a_hand_edited_answer(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normalised is the truth for the text; the signed thinking has no normalised form
    and is served as recorded (JSON and SSE)."""
    monkeypatch.setenv("STREAM", "1")
    session, _ = _record(project, monkeypatch, "anthropic_thinking", THINKING_SCRIPT)
    first = llm_steps(session)[0]
    assert first.output is not None
    edited = first.model_copy(
        update={"output": first.output.model_copy(update={"content": "Checking."})}
    )
    codec = AnthropicMessagesCodec()
    for stream in (False, True):
        wire = codec.encode(edited, stream=stream)
        decoded = codec.decode(wire.body, stream=stream)
        message = decoded.raw if not stream else decoded.assembled
        kinds = [b["type"] for b in message["content"]]
        assert kinds == ["thinking", "redacted_thinking", "text", "tool_use"]
        assert message["content"][0]["signature"].startswith("sig-")
        assert decoded.output.content == "Checking."
        assert message["id"] == "msg_1"


@pytest.mark.parametrize(
    ("recorded", "replayed"), [("1", "1"), ("", "1")], ids=["stream", "json-as-stream"]
)
def test_responses_reasoning_items_are_replayed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, recorded: str, replayed: str
) -> None:
    monkeypatch.setenv("STREAM", recorded)
    session, fp = _record(project, monkeypatch, "responses_reasoning", THINKING_SCRIPT)
    sent_back = [i.get("type") for i in fp.requests[-1].body["input"][1:]]
    assert sent_back[:3] == ["reasoning", "message", "function_call"]
    monkeypatch.setenv("STREAM", replayed)
    replay(project).assert_outcomes(passed=1)

    first = llm_steps(session)[0]
    assert first.output is not None
    edited = first.model_copy(
        update={"output": first.output.model_copy(update={"content": "Checking."})}
    )
    frames = OpenAIResponsesCodec().encode(edited, stream=True).body
    done = [e for _, e in sse.json_events(frames) if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["type"] == "reasoning"
    assert done[0]["item"]["encrypted_content"] == "enc:resp_1:opaque"


# -- 4. a call whose every attempt fails is one step, and replays as that failure -------


def test_a_call_that_always_fails_is_one_step_and_replays_the_same_exception(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fp = _record(
        project, monkeypatch, "chat_always_fails", [{"content": "never"}], fail_first=[500] * 3
    )
    assert len(fp.requests) == 3, "max_retries=2: three attempts"
    [step] = session.step_list
    assert isinstance(step, LLMCallStep) and step.error is not None
    assert step.attributes == {"http_status": 500}
    assert session.error is not None and session.error.type == "InternalServerError"
    result = replay(project)
    result.assert_outcomes(passed=1)
    assert "does not have" not in result.stdout.str()


def test_a_timeout_the_agent_catches_is_recorded_and_replayed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fp = _record(
        project,
        monkeypatch,
        "chat_timeout_caught",
        [{"content": "late"}] * 2,
        delay_first=[1.0, 1.0],
    )
    assert len(fp.requests) == 2, "max_retries=1: two attempts, both too slow"
    assert session.output == {"answer": "the model is slow today", "error": "APITimeoutError"}
    [step] = session.step_list
    assert isinstance(step, LLMCallStep) and step.error is not None
    assert step.error.type == "ReadTimeout"
    replay(project).assert_outcomes(passed=1)


def test_a_retry_that_succeeds_still_leaves_one_step(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fp = _record(
        project, monkeypatch, "chat_always_fails", [{"content": "at last"}], fail_first=[503, 500]
    )
    assert len(fp.requests) == 3
    [step] = session.step_list
    assert isinstance(step, LLMCallStep) and step.error is None and step.attributes is None
    assert session.output == {"answer": "at last"} and session.error is None
    replay(project).assert_outcomes(passed=1)


def test_a_transport_error_outside_the_http_library_replays_as_its_own_class(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A builtin exception the call died with (not an httpx error) is raised again as
    itself, so the SDK lets it through as it did live, without retrying it."""
    later = project.path / "goldens" / "later.golden.yaml"
    later.write_text("name: later\ninput:\n  q: And tomorrow?\n")
    monkeypatch.setenv("MODE", "shared_async_client")
    with FakeProvider(script=[{"content": "Sunny."}] * 2) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        # the stale connection of the first loop cannot be closed (that is the agent's bug)
        args = ("--opswald-goldens", "--opswald-mode=record", "-W", "ignore::ResourceWarning")
        result = project.runpytest(*args)
        assert result.ret == 0, result.stdout.str()
    with warnings.catch_warnings():  # collected now, where its warning is expected
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    session = load(later)
    [step] = session.step_list
    assert isinstance(step, LLMCallStep) and step.error is not None
    assert (step.error.type, step.error.message, step.error.module) == (
        "RuntimeError",
        "Event loop is closed",
        None,
    )
    assert step.attributes == {"transport_error": True}
    assert session.error is not None and session.error.type == "RuntimeError"
    result = replay(project)
    result.assert_outcomes(passed=2)


def test_a_recorded_error_class_is_never_imported_to_replay_it(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transport error whose module is not loaded is raised as the HTTP library's
    TransportError (the SDK's APIConnectionError): the golden names a module, replay does
    not import it."""
    project.makepyfile(
        stranger="from pathlib import Path\n"
        "Path(__file__).with_name('imported.flag').write_text('yes')\n"
        "class Boom(Exception):\n    pass\n"
    )
    (project.path / GOLDEN).write_text(
        "name: agent\ninput:\n  q: Weather in Rome?\nsteps:\n"
        "  - step: 1\n    type: llm_call\n    provider: openai\n"
        "    api: openai.chat_completions\n    model: gpt-4o-mini\n"
        "    input:\n      messages:\n        - {role: user, content: Weather in Rome?}\n"
        "    error: {type: Boom, message: it broke, module: stranger}\n"
        "    attributes: {transport_error: true}\n"
        "output: null\nerror: {type: APIConnectionError, message: Connection error.}\n"
    )
    monkeypatch.setenv("MODE", "chat_text")  # max_retries=0
    replay(project).assert_outcomes(passed=1)
    assert not (project.path / "imported.flag").exists()


# -- 5. replay names what its offline guard blocked, and what opswald does not record ---


def test_a_call_replay_blocks_is_named_in_the_failure(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.path / GOLDEN).write_text(
        "name: agent\ninput:\n  q: Weather in Rome?\nsteps: []\noutput:\n  dims: 3\n"
    )
    monkeypatch.setenv("MODE", "lookup_elsewhere")
    result = replay(project)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "RuntimeError: the lookup service is down" in out
    assert "opswald replay is offline: blocked connection to api.example.invalid:443" in out
    # the call is the agent's own: a tool would record its answer; an update cannot
    assert "inside an @opswald.tool function" in out and "--opswald-mode=rerecord" in out
    assert "fix: --opswald-update cannot fix this" in out


def test_an_sdk_call_opswald_does_not_record_stops_replay_whatever_the_host(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.path / GOLDEN).write_text(
        "name: agent\ninput:\n  q: Weather in Rome?\nsteps: []\noutput:\n  dims: 3\n"
    )
    monkeypatch.setenv("MODE", "embeddings_elsewhere")
    result = replay(project)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert (
        "the agent called POST /v1/embeddings on api.example.invalid (before any step of the "
        "run), an endpoint opswald does not record: replay has no answer for it"
    ) in out
    assert "blocked connection" not in out, "stopped before any connection was tried"


def test_sdk_calls_opswald_does_not_record_are_noted_and_stop_replay_on_loopback(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local gateway on 127.0.0.1 is allowed by the offline guard; the SDK's calls to
    endpoints opswald does not record still get no live answer in replay. A tool's own
    HTTP call to a local service goes through as before."""
    with serving(monkeypatch, "with_extras", [{"content": "Sunny."}]):
        result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    out = " ".join(result.stdout.str().split())
    assert (
        "note: agent.golden.yaml: recorded without 2 requests to endpoints opswald does not "
        "record (POST /v1/embeddings, POST /v1/messages/count_tokens), which went to the "
        "provider live; its replay stops at the first of them."
    ) in out
    session = load(project.path / GOLDEN)
    assert [s.type for s in session.step_list] == ["llm_call"]
    assert session.output is not None and session.output["dims"] == 3

    with FakeProvider() as live:  # the gateway still runs during replay
        monkeypatch.setenv("OPENAI_BASE_URL", live.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", live.base_url)
        result = replay(project)
    result.assert_outcomes(failed=1)
    assert [(r.method, r.path) for r in live.requests] == [("GET", "/health")]
    out = " ".join(result.stdout.str().split())
    port = live.base_url.rsplit(":", 1)[1]
    assert (
        f"the agent called POST /v1/embeddings on 127.0.0.1:{port} (before any step of the "
        "run), an endpoint opswald does not record: replay has no answer for it"
    ) in out
    assert "make this call inside an @opswald.tool function" in out
    assert "--opswald-update cannot fix this" in out


def test_a_call_opswald_does_not_record_made_inside_a_tool_is_the_tool_step(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fp = _record(project, monkeypatch, "embeddings_in_a_tool", [{"content": "Sunny."}])
    assert [r.path for r in fp.requests] == ["/v1/embeddings", "/v1/chat/completions"]
    assert [s.type for s in session.step_list] == ["tool_call", "llm_call"]
    assert session.output == {"dims": 3, "answer": "Sunny."}
    replay(project).assert_outcomes(passed=1)


# -- helpers -----------------------------------------------------------------------------


def _edit_last_answer(session: Session, text: str) -> Session:
    steps = list(session.step_list)
    last = steps[-1]
    assert isinstance(last, LLMCallStep) and last.output is not None
    steps[-1] = last.model_copy(update={"output": last.output.model_copy(update={"content": text})})
    edited = session.model_copy()
    edited.steps = steps
    return edited


def _write(project: pytest.Pytester, session: Session, output: Any) -> None:
    session = session.model_copy(update={"output": output})
    session.model_fields_set.update({"steps", "output"})
    dump(session, project.path / GOLDEN)
