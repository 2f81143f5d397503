"""A replayed stream comes in the pieces the recorded one came in: an agent that acts on the
chunks themselves (counts them, previews the first ones) sees on replay what it saw live.
Real openai/anthropic SDKs against the fake provider on 127.0.0.1, pytest run for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import opswald
from conftest import sdk_setup
from opswald import dump, load
from opswald.engine.run import RunSettings, execute
from opswald.session import STREAM_CHUNKS, LLMCallStep, Session
from sdk_projects import TOOL_AGENT, llm_steps, record, replay, replay_seen

AGENT = '''
"""Agents that keep every piece a stream sends them (MODE picks one). The output is the
pieces, in order, as [part, text]; with JOINED=1 it is the joined texts instead (tool
arguments parsed). SEEN names a file the pieces are written to either way."""
import json
import os

import opswald


def _done(pieces):
    _write_seen(pieces)
    if os.environ.get("JOINED"):
        texts = {}
        for part, text in pieces:
            texts[part] = texts.get(part, "") + text
        for part in texts:
            if part.startswith(("arguments", "input")):  # data, however it is spaced
                texts[part] = json.loads(texts[part])
        return {"texts": texts}
    return {"pieces": pieces}


# -- OpenAI chat completions: a tool-call turn, then the answer (n=N choices, no tools) --

def _chat_kwargs(messages):
    n = int(os.environ.get("N", "1"))
    kwargs = dict(model="gpt-4o-mini", messages=messages, stream=True,
                  stream_options={"include_usage": True})
    if os.environ.get("NO_USAGE"):  # the usage is not asked for
        del kwargs["stream_options"]
    if n > 1:
        return {**kwargs, "n": n}
    return {**kwargs, "tools": [{"type": "function", "function": TOOL}]}


def _chat_chunk(chunk, pieces, calls):
    for choice in chunk.choices:
        delta = choice.delta
        if delta.content is not None and not delta.role:  # the role chunk's "" is not a piece
            pieces.append([f"content {choice.index}", delta.content])
        if choice.finish_reason and int(os.environ.get("N", "1")) > 1:
            pieces.append([f"finish {choice.index}", choice.finish_reason])
        for tc in delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": tc.id, "name": "", "args": ""})
            entry["name"] += tc.function.name or ""
            entry["args"] += tc.function.arguments or ""
            if tc.function.arguments is not None and tc.id is None:  # not the call's head
                pieces.append([f"arguments {tc.index}", tc.function.arguments])


def chat(input):
    import openai
    messages, pieces = [{"role": "user", "content": input["q"]}], []
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            calls = {}
            for chunk in client.chat.completions.create(**_chat_kwargs(messages)):
                _chat_chunk(chunk, pieces, calls)
            if _chat_turn(messages, calls):
                return _done(pieces)
    raise RuntimeError("too many turns")


async def chat_async(input):
    import openai
    messages, pieces = [{"role": "user", "content": input["q"]}], []
    async with openai.AsyncOpenAI(max_retries=0) as client:
        for _ in range(3):
            calls = {}
            async for chunk in await client.chat.completions.create(**_chat_kwargs(messages)):
                _chat_chunk(chunk, pieces, calls)
            if _chat_turn(messages, calls):
                return _done(pieces)
    raise RuntimeError("too many turns")


def chat_chunks(input):
    """Every chunk the SDK gives, whole, as ["chunk", its fields]."""
    import openai
    messages, pieces = [{"role": "user", "content": input["q"]}], []
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            calls = {}
            for chunk in client.chat.completions.create(**_chat_kwargs(messages)):
                pieces.append(["chunk", chunk.model_dump(mode="json")])
                _chat_chunk(chunk, [], calls)
            if _chat_turn(messages, calls):
                return _done(pieces)
    raise RuntimeError("too many turns")


# -- OpenAI Responses: raw events (sync), the SDK's stream helper (async) ----------------

def _responses_event(event, pieces):
    if event.type == "response.output_text.delta":
        pieces.append([f"text {event.output_index}", event.delta])
    elif event.type == "response.function_call_arguments.delta":
        pieces.append([f"arguments {event.output_index}", event.delta])
    elif event.type == "response.reasoning_summary_text.delta":
        pieces.append([f"summary {event.output_index}", event.delta])


def _output(final):
    return [i.model_dump(exclude_none=True) for i in final.output]


def _responses_kwargs(items):
    return dict(model="gpt-4.1-mini", input=items, tools=[{"type": "function", **TOOL}],
                store=False)


def responses(input):
    import openai
    items, pieces = [{"role": "user", "content": input["q"]}], []
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            final = None
            for event in client.responses.create(stream=True, **_responses_kwargs(items)):
                _responses_event(event, pieces)
                if event.type == "response.completed":
                    final = event.response
            if _responses_turn(_output(final), items):
                return _done(pieces)
    raise RuntimeError("too many turns")


async def responses_async(input):
    import openai
    items, pieces = [{"role": "user", "content": input["q"]}], []
    async with openai.AsyncOpenAI(max_retries=0) as client:
        for _ in range(3):
            async with client.responses.stream(**_responses_kwargs(items)) as stream:
                async for event in stream:
                    _responses_event(event, pieces)
                final = await stream.get_final_response()
            if _responses_turn(_output(final), items):
                return _done(pieces)
    raise RuntimeError("too many turns")


# -- Anthropic messages: the SDK's stream helper (sync), raw events (async) --------------

def _anthropic_event(event, pieces):
    if event.type != "content_block_delta":
        return
    delta = event.delta
    if delta.type == "text_delta":
        pieces.append([f"text {event.index}", delta.text])
    elif delta.type == "input_json_delta":
        pieces.append([f"input {event.index}", delta.partial_json])
    elif delta.type == "thinking_delta":
        pieces.append([f"thinking {event.index}", delta.thinking])


def _anthropic_kwargs(messages):
    tools = [{"name": TOOL["name"], "description": TOOL["description"],
              "input_schema": TOOL["parameters"]}]
    return dict(model="claude-haiku-4-5", max_tokens=2048, messages=messages, tools=tools,
                thinking={"type": "enabled", "budget_tokens": 1024})


def anthropic_messages(input):
    import anthropic
    messages, pieces = [{"role": "user", "content": input["q"]}], []
    with anthropic.Anthropic(max_retries=0) as client:
        for _ in range(3):
            with client.messages.stream(**_anthropic_kwargs(messages)) as stream:
                for event in stream:
                    _anthropic_event(event, pieces)
                final = stream.get_final_message()
            content = [b.model_dump(exclude_none=True) for b in final.content]
            if _anthropic_turn(content, messages):
                return _done(pieces)
    raise RuntimeError("too many turns")


async def anthropic_async(input):
    import anthropic
    messages, pieces = [{"role": "user", "content": input["q"]}], []
    async with anthropic.AsyncAnthropic(max_retries=0) as client:
        for _ in range(3):
            blocks, inputs = {}, {}
            stream = await client.messages.create(stream=True, **_anthropic_kwargs(messages))
            async for event in stream:
                _anthropic_event(event, pieces)
                if event.type == "content_block_start":
                    blocks[event.index] = event.content_block.model_dump(exclude_none=True)
                elif event.type == "content_block_delta":
                    block, delta = blocks[event.index], event.delta
                    if delta.type == "text_delta":
                        block["text"] += delta.text
                    elif delta.type == "thinking_delta":
                        block["thinking"] += delta.thinking
                    elif delta.type == "signature_delta":
                        block["signature"] += delta.signature
                    elif delta.type == "input_json_delta":
                        inputs[event.index] = inputs.get(event.index, "") + delta.partial_json
            for index, text in inputs.items():
                blocks[index]["input"] = json.loads(text)
            if _anthropic_turn([blocks[i] for i in sorted(blocks)], messages):
                return _done(pieces)
    raise RuntimeError("too many turns")



def responses_events(input):
    """Every event the SDK gives, whole, as ["event", its fields]."""
    import openai
    items, pieces = [{"role": "user", "content": input["q"]}], []
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            final = None
            for event in client.responses.create(stream=True, **_responses_kwargs(items)):
                pieces.append(["event", event.model_dump(mode="json")])
                if event.type == "response.completed":
                    final = event.response
            if _responses_turn(_output(final), items):
                return _done(pieces)
    raise RuntimeError("too many turns")


def anthropic_events(input):
    """Every event of the SDK's stream helper, whole, as ["event", its fields]."""
    import anthropic
    messages, pieces = [{"role": "user", "content": input["q"]}], []
    with anthropic.Anthropic(max_retries=0) as client:
        for _ in range(3):
            with client.messages.stream(**_anthropic_kwargs(messages)) as stream:
                for event in stream:
                    pieces.append(["event", event.model_dump(mode="json")])
                final = stream.get_final_message()
            content = [b.model_dump(exclude_none=True) for b in final.content]
            if _anthropic_turn(content, messages):
                return _done(pieces)
    raise RuntimeError("too many turns")
'''
AGENT += TOOL_AGENT

GOLDEN = "goldens/chunks.golden.yaml"
SIZES = [1, 4, 2, 7, 3]  # the fake provider cuts every streamed text so, repeated
ANSWER = "It is 21°C and sunny in Rome."
THINKING = "The user wants Rome's weather."
ARGUMENTS = '{"city":"Rome"}'  # as the fake provider sends tool arguments


def _cut(text: str, sizes: list[int]) -> list[str]:
    """`text` as the fake provider streams it with `chunks: sizes`."""
    out: list[str] = []
    at, turn = 0, 0
    while at < len(text):
        size = sizes[turn % len(sizes)]
        out.append(text[at : at + size])
        at, turn = at + size, turn + 1
    return out


def _even(text: str) -> list[str]:
    """`text` in three even pieces, as replay cuts a text recorded without its pieces."""
    size = -(-len(text) // 3)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _script(sizes: list[int], *, thinking: bool = False) -> list[dict[str, Any]]:
    extra = {"thinking": THINKING} if thinking else {}
    call = {"name": "get_weather", "arguments": {"city": "Rome"}}
    return [
        {"content": None, "tool_calls": [call], "chunks": sizes, **extra},
        {"content": ANSWER, "chunks": sizes, **extra},
    ]


def _expected(
    mode: str,
    cut: Any,
    *,
    answer: Any = None,
    thinking: Any = None,
    text: str = ANSWER,
    arguments: str = ARGUMENTS,
) -> list[list[str]]:
    """What each agent keeps of the two turns, as [part, text]: the tool call's texts
    (its `arguments`) cut by `cut`, then the answer `text` cut by `answer` (after its
    thinking, cut by `thinking`; both default to `cut`)."""
    answer, thinking = answer or cut, thinking or cut
    if mode.startswith("chat"):
        return [
            *[["arguments 0", p] for p in cut(arguments)],
            *[["content 0", p] for p in answer(text)],
        ]
    if mode.startswith("responses"):
        return [
            *[["arguments 0", p] for p in cut(arguments)],
            *[["text 0", p] for p in answer(text)],
        ]
    # anthropic: thinking (block 0), a redacted_thinking block (1), then the tool use or text
    return [
        *[["thinking 0", p] for p in cut(THINKING)],
        *[["input 2", p] for p in cut(arguments)],
        *[["thinking 0", p] for p in thinking(THINKING)],
        *[["text 2", p] for p in answer(text)],
    ]


def _recorded(text: str) -> list[str]:
    return _cut(text, SIZES)


MODES = ["chat", "chat_async", "responses", "responses_async", "anthropic_messages"]
MODES += ["anthropic_async"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: chunks\ninput:\n  q: Weather in Rome?\n"
    sdk_setup(
        pytester, monkeypatch, module="chunkagent", agent=AGENT, golden=GOLDEN, stub=stub,
        clear=("JOINED", "SEEN", "N", "NO_USAGE"),
    )  # fmt: skip
    yield pytester


def _record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    script: list[dict[str, Any]],
    *args: str,
) -> Session:
    """Run against the fake provider (stubs record; `args` may ask for more), then stop it."""
    return record(pytester, monkeypatch, GOLDEN, mode, script, *args).got


@pytest.mark.parametrize("mode", MODES)
def test_a_replayed_stream_comes_in_the_recorded_pieces(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    thinking = mode.startswith("anthropic")
    session = _record(project, monkeypatch, mode, _script(SIZES, thinking=thinking))
    recorded = _expected(mode, _recorded)
    assert session.output == {"pieces": recorded}, "the agent kept what the provider sent"
    first, last = llm_steps(session)
    assert first.attributes is not None and STREAM_CHUNKS in first.attributes
    assert last.attributes is not None
    assert list(last.attributes[STREAM_CHUNKS].values())[-1] == [
        len(p) for p in _cut(ANSWER, SIZES)
    ]
    text = (project.path / GOLDEN).read_text()
    one_line = ", ".join(str(len(p)) for p in _cut(ANSWER, SIZES))
    assert f": [{one_line}]\n" in text, "each text's lengths on one line"

    assert replay_seen(project, monkeypatch) == recorded


@pytest.mark.parametrize("mode", MODES)
def test_the_empty_pieces_a_provider_sent_are_recorded_and_replayed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A provider may stream a delta with an empty text (an Anthropic tool input often
    starts with `partial_json: ""`): each is a 0 among the recorded lengths, and replay
    sends it again, so an agent counting every delta sees as many as it saw live."""
    sizes = [0, 3, 1, 0, 5]
    thinking = mode.startswith("anthropic")
    session = _record(project, monkeypatch, mode, _script(sizes, thinking=thinking))
    recorded = _expected(mode, lambda text: _cut(text, sizes))
    assert session.output == {"pieces": recorded}, "the agent kept what the provider sent"
    _, last = llm_steps(session)
    assert last.attributes is not None
    assert list(last.attributes[STREAM_CHUNKS].values())[-1] == [
        len(p) for p in _cut(ANSWER, sizes)
    ]
    assert list(last.attributes[STREAM_CHUNKS].values())[-1][:4] == [0, 3, 1, 0]

    assert replay_seen(project, monkeypatch) == recorded


@pytest.mark.parametrize("mode", MODES)
def test_tool_arguments_streamed_with_unicode_escapes_come_in_their_recorded_pieces(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A provider may escape non-ASCII characters in the arguments it streams
    (`"Z\\u00fcrich"`, as the fake provider does). Anthropic's tool input is kept as
    data, not the text it came in: replay renders it escaped again when that is the
    recorded length, so its pieces are the recorded ones (they were cut evenly)."""
    thinking = mode.startswith("anthropic")
    script = _script(SIZES, thinking=thinking)
    script[0]["tool_calls"][0]["arguments"] = {"city": "Zürich"}
    session = _record(project, monkeypatch, mode, script)
    escaped = '{"city":"Z\\u00fcrich"}'
    recorded = _expected(mode, _recorded, arguments=escaped)
    assert session.output == {"pieces": recorded}, "the agent kept what the provider sent"
    assert "Zürich" in (project.path / GOLDEN).read_text()

    assert replay_seen(project, monkeypatch) == recorded


@pytest.mark.parametrize("mode", ["chat", "chat_async"])
def test_every_choice_of_an_n_stream_comes_in_its_recorded_pieces(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("N", "2")
    other = "Warm and bright in Rome today."
    script = [{"content": ANSWER, "alternatives": [other], "chunks": [3, 1, 5]}]
    session = _record(project, monkeypatch, mode, script)
    pieces = session.output["pieces"]
    assert [t for p, t in pieces if p == "content 0"] == _cut(ANSWER, [3, 1, 5])
    assert [t for p, t in pieces if p == "content 1"] == _cut(other, [3, 1, 5])
    [step] = llm_steps(session)
    assert step.attributes is not None
    assert step.attributes[STREAM_CHUNKS]["choices[1].message.content"] == [3, 1, 5] * 3 + [3]
    # the fake provider sends the role chunks, then a piece of each choice in turn, then
    # the finish chunks: twelve rounds of a chunk of choice 0, then one of choice 1
    assert step.attributes[STREAM_CHUNKS]["choices"] == "0,1*12"
    assert [p for p, _ in pieces[:4]] == ["content 0", "content 1", "content 0", "content 1"]

    assert replay_seen(project, monkeypatch) == pieces, (
        "the choices' pieces interleaved as they came"
    )


@pytest.mark.parametrize("joined", [True, False], ids=["role-joined", "role-alone"])
@pytest.mark.parametrize("n", [1, 2])
def test_a_replayed_chat_stream_sends_the_chunks_the_agent_got(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, joined: bool, n: int
) -> None:
    """The API sends a choice's role in a chunk of its own, then the pieces; some providers
    and proxies send the role in the chunk of the first piece (text, or a tool call's
    head). Replay sends the chunks the agent iterated live, whole, either way."""
    monkeypatch.setenv("N", str(n))
    if n == 1:
        script = _script(SIZES)
    else:
        script = [{"content": ANSWER, "alternatives": ["Warm in Rome."], "chunks": [3, 1, 5]}]
    script = [{**item, "role_joined": joined} for item in script]
    session = _record(project, monkeypatch, "chat_chunks", script)
    pieces = session.output["pieces"]
    firsts = [c["choices"][0]["delta"] for _, c in pieces if c["choices"]][:n]
    assert [d["role"] for d in firsts] == ["assistant"] * n
    came_with_role = [bool(d["content"] or d["tool_calls"]) for d in firsts]
    assert came_with_role == [joined] * n, "the provider sent the role as scripted"

    assert replay_seen(project, monkeypatch) == pieces


@pytest.mark.parametrize(
    "joins",
    [
        ("finish_joined",),
        ("head_joined",),
        ("role_joined", "finish_joined", "head_joined"),
        ("finish_empty",),
        ("usage_joined",),
        ("finish_joined", "usage_joined"),
        ("id_repeated",),
        ("head_joined", "id_repeated"),
    ],
    ids=["finish", "head", "all", "finish-empty", "usage", "finish-usage", "id", "head-id"],
)
@pytest.mark.parametrize("n", [1, 2])
def test_a_replayed_chat_stream_joins_what_the_provider_joined(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, joins: tuple[str, ...], n: int
) -> None:
    """Some providers send a choice's finish reason in the chunk of its last piece, and a
    tool call's first piece of arguments in the chunk of its head (the API sends each in
    a chunk of its own), or the call's id and type again with every piece of its
    arguments. Replay sends the chunks the agent iterated live, whole."""
    monkeypatch.setenv("N", str(n))
    script = _script(SIZES)
    if n == 2:
        script[1] = {**script[1], "alternatives": ["Warm in Rome."]}
    script = [{**item, **dict.fromkeys(joins, True)} for item in script]
    session = _record(project, monkeypatch, "chat_chunks", script)
    pieces = session.output["pieces"]
    deltas = [c["choices"][0] for _, c in pieces if c["choices"]]
    if "finish_joined" in joins:
        # a choice with no piece (choice 1 of the tool call's turn) sends its finish alone
        joined = [d for d in deltas if d["finish_reason"] and d["index"] == 0]
        assert len(joined) == 2 and all(
            d["delta"]["content"] or d["delta"]["tool_calls"] for d in joined
        ), "the provider joined them as scripted"
    if "head_joined" in joins:
        heads = [
            d["delta"]["tool_calls"][0]
            for d in deltas
            if d["delta"]["tool_calls"] and d["delta"]["tool_calls"][0]["id"]
        ]
        assert heads and all(h["function"]["arguments"] for h in heads)
    if "id_repeated" in joins:
        fragments = [f for d in deltas for f in d["delta"]["tool_calls"] or []]
        assert len(fragments) > 2 and all(f["id"] and f["type"] for f in fragments)
    if "usage_joined" in joins:
        with_usage = [c for _, c in pieces if c.get("usage")]
        assert len(with_usage) == 2 and all(c["choices"] for c in with_usage)
    if "finish_empty" in joins:
        finishing = [d["delta"]["content"] for d in deltas if d["finish_reason"]]
        assert finishing == [""] * len(finishing) and len(finishing) == 2 * n
    attributes = [s.attributes or {} for s in llm_steps(session)]
    assert all(STREAM_CHUNKS in a for a in attributes)

    assert replay_seen(project, monkeypatch) == pieces


def test_a_chat_choice_that_came_in_one_chunk_replays_in_one_chunk(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some providers send a whole tool call (head, all its arguments and the finish) or a
    whole answer (role, text and finish) in a single chunk; replay sends that one chunk."""
    script = [
        {**item, "chunks": [100], "role_joined": True, "finish_joined": True, "head_joined": True}
        for item in _script(SIZES)
    ]
    session = _record(project, monkeypatch, "chat_chunks", script)
    pieces = session.output["pieces"]
    deltas = [c["choices"][0] for _, c in pieces if c["choices"]]
    assert len(deltas) == 2, "a chunk a turn, as scripted"
    call, answer = deltas
    assert call["finish_reason"] == "tool_calls" and call["delta"]["role"] == "assistant"
    assert call["delta"]["tool_calls"][0]["function"]["arguments"] == ARGUMENTS
    assert answer["finish_reason"] == "stop" and answer["delta"]["content"] == ANSWER

    assert replay_seen(project, monkeypatch) == pieces


def test_a_chat_stream_with_the_usage_in_its_finish_unasked_replays_it_there(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that sends the usage in the finish chunk whether the request asked for it
    or not: replay sends it there too (it sent none, the request not asking for it)."""
    monkeypatch.setenv("NO_USAGE", "1")
    script = [{**item, "usage_joined": True} for item in _script(SIZES)]
    session = _record(project, monkeypatch, "chat_chunks", script)
    pieces = session.output["pieces"]
    with_usage = [c for _, c in pieces if c.get("usage")]
    assert len(with_usage) == 2 and all(c["choices"][0]["finish_reason"] for c in with_usage)
    assert all(s.usage is not None for s in llm_steps(session))
    assert replay_seen(project, monkeypatch) == pieces


@pytest.mark.parametrize("role_joined", [False, True])
def test_parallel_tool_calls_sent_whole_in_one_chunk_replay_in_one_chunk(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, role_joined: bool
) -> None:
    """Some providers send all the tool calls of an answer whole (each head with all its
    arguments) in one chunk; replay sent each call in a chunk of its own."""
    script = _script(SIZES)
    other = {"name": "get_weather", "arguments": {"city": "Oslo"}}
    script[0] = {
        **script[0],
        "tool_calls": [*script[0]["tool_calls"], other],
        "calls_together": True,
        "role_joined": role_joined,
    }
    session = _record(project, monkeypatch, "chat_chunks", script)
    pieces = session.output["pieces"]
    together = [c for _, c in pieces if c["choices"] and c["choices"][0]["delta"]["tool_calls"]]
    assert len(together) == 1 and len(together[0]["choices"][0]["delta"]["tool_calls"]) == 2
    assert replay_seen(project, monkeypatch) == pieces


def test_a_chat_stream_recorded_before_joins_were_kept_replays_them_apart(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A golden written without the join marks (as before they were kept) replays each
    finish and each call's head in a chunk of its own, as it did."""
    script = [{**item, "finish_joined": True, "head_joined": True} for item in _script(SIZES)]
    session = _record(project, monkeypatch, "chat_chunks", script)
    for step in llm_steps(session):
        chunks = (step.attributes or {})[STREAM_CHUNKS]
        kept = {k: v for k, v in chunks.items() if not isinstance(v, str)}
        assert len(kept) < len(chunks), "a join mark was kept"
        _rewrite_step(
            project,
            step.step,
            lambda s, kept=kept: s.model_copy(
                update={"attributes": {**(s.attributes or {}), STREAM_CHUNKS: kept}}
            ),
        )
    # the agent's output lists the chunks it got: more of them now, so it differs
    seen = replay_seen(project, monkeypatch, failed=1)
    replayed = [c["choices"][0] for _, c in seen if c["choices"]]
    assert len(replayed) == len([c for _, c in session.output["pieces"] if c["choices"]]) + 3
    finishing = [d for d in replayed if d["finish_reason"]]
    assert len(finishing) == 2 and all(
        d["delta"] == {} or not any(d["delta"].values()) for d in finishing
    )
    heads = [
        d["delta"]["tool_calls"][0]
        for d in replayed
        if d["delta"]["tool_calls"] and d["delta"]["tool_calls"][0]["id"]
    ]
    assert len(heads) == 1 and heads[0]["function"]["arguments"] == ""


def _rewrite_step(project: pytest.Pytester, number: int, edit: Any) -> None:
    """The golden with `edit` applied to its step `number`."""
    session = load(project.path / GOLDEN)
    steps = [edit(s) if s.step == number else s for s in session.step_list]
    session = session.model_copy()
    session.steps = steps
    session.model_fields_set.update({"steps", "output"})
    dump(session, project.path / GOLDEN)


def _rewrite_answer(project: pytest.Pytester, edit: Any) -> None:
    """The golden with `edit` applied to its last step (the answer)."""
    *_, last = load(project.path / GOLDEN).step_list
    assert isinstance(last, LLMCallStep)
    _rewrite_step(project, last.step, edit)


def _without_pieces(step: LLMCallStep) -> LLMCallStep:
    attributes = {k: v for k, v in (step.attributes or {}).items() if k != STREAM_CHUNKS}
    return step.model_copy(update={"attributes": attributes or None})


@pytest.mark.parametrize("mode", ["chat", "responses", "anthropic_messages"])
def test_a_step_recorded_without_the_pieces_still_replays_cut_as_before(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The answer's step as a golden written before the pieces were kept has it: its
    texts come in three even pieces, as replay cut every text before; the tool call's
    step keeps its recorded pieces."""
    monkeypatch.setenv("JOINED", "1")
    _record(project, monkeypatch, mode, _script(SIZES, thinking=mode.startswith("anthropic")))
    _rewrite_answer(project, _without_pieces)
    before = (project.path / GOLDEN).read_text()
    assert before.count(STREAM_CHUNKS) == 1

    assert replay_seen(project, monkeypatch) == _expected(
        mode, _recorded, answer=_even, thinking=_even
    )
    assert (project.path / GOLDEN).read_text() == before, "a passing golden is not rewritten"


@pytest.mark.parametrize("mode", ["chat", "responses", "anthropic_messages"])
def test_an_edited_answer_whose_pieces_no_longer_add_up_is_cut_evenly(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("JOINED", "1")
    _record(project, monkeypatch, mode, _script(SIZES, thinking=mode.startswith("anthropic")))
    edited = "Edited: it rains in Rome."

    def edit(step: LLMCallStep) -> LLMCallStep:
        assert step.output is not None
        return step.model_copy(
            update={"output": step.output.model_copy(update={"content": edited})}
        )

    _rewrite_answer(project, edit)
    session = load(project.path / GOLDEN)
    part = {"chat": "content 0", "responses": "text 0"}.get(mode, "text 2")
    assert isinstance(session.output, dict)
    session.output["texts"][part] = edited
    session.model_fields_set.add("output")
    dump(session, project.path / GOLDEN)

    assert replay_seen(project, monkeypatch) == _expected(
        mode, _recorded, answer=_even, text=edited
    ), "the edited text in even pieces; the rest as recorded"


def test_an_update_records_the_pieces_of_the_new_answer(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing golden updated against the provider keeps the pieces the new answer came
    in, not the old ones, and replays in them."""
    golden = _record(project, monkeypatch, "chat", _script(SIZES))
    golden = golden.model_copy(update={"input": {"q": "Weather in Rome, please?"}})
    dump(golden, project.path / GOLDEN)
    assert replay(project).ret != 0, "the changed question diverges"
    session = _record(project, monkeypatch, "chat", _script([2, 5]), "--opswald-update")
    assert session.output == {"pieces": _expected("chat", lambda text: _cut(text, [2, 5]))}
    _, last = llm_steps(session)
    assert last.attributes is not None
    assert last.attributes[STREAM_CHUNKS] == {
        "choices[0].message.content": [len(p) for p in _cut(ANSWER, [2, 5])]
    }
    replay(project).assert_outcomes(passed=1)


# -- a fork's new answer is not the recorded one: it drops the recorded pieces -------------


@opswald.llm
def _ask(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": "recorded", "finish_reason": "stop"}


def _asking_agent(question: str) -> dict[str, Any]:
    return {"answer": _ask(model="m", messages=[{"role": "user", "content": question}])["content"]}


def test_a_forked_answer_does_not_keep_the_recorded_pieces() -> None:
    stub = Session(name="s", input="hi")
    live = RunSettings(policy="live", block_side_effects=False)
    golden = execute(stub, _asking_agent, settings=live).actual
    [step] = llm_steps(golden)
    pieces = {STREAM_CHUNKS: {"choices[0].message.content": [3, 5]}, "response_model": "m-1"}
    golden.steps = [step.model_copy(update={"attributes": pieces})]
    forked = opswald.Replay(golden, adapter=_asking_agent).fork_from(1, {"response": "NEW"})
    result = forked.run()
    assert result is not None and result.actual.output == {"answer": "NEW"}
    [new] = llm_steps(result.actual)
    assert new.attributes == {"response_model": "m-1"}, "the rest of the attributes stay"


@pytest.mark.parametrize("mode", ["chat", "anthropic_messages"])
def test_an_emoji_split_across_two_pieces_gives_a_golden_that_loads_and_replays(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A provider that cuts an emoji's surrogate pair into two streamed pieces (`"\\ud83d"`,
    then `"\\ude00"`) hands the agent two lone halves. YAML cannot hold a lone half: the
    golden keeps the emoji whole (the joined answer is the same), and it loads and replays
    (it used to be written with escapes no YAML reader takes)."""
    monkeypatch.setenv("JOINED", "1")
    call = {"name": "get_weather", "arguments": {"city": "Rome"}}
    script = [
        {"content": None, "tool_calls": [call], "chunks": [1]},
        {"content": "x\ud83d\ude00y", "chunks": [1]},
    ]
    session = _record(project, monkeypatch, mode, script)
    assert "x\U0001f600y" in json.dumps(session.output, ensure_ascii=False)
    replay(project).assert_outcomes(passed=1)


@pytest.mark.parametrize("n", [1, 2])
def test_a_replayed_empty_chat_answer_says_content_as_it_came(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """An answer with no text at all (filtered, or cut off at once) streams a role chunk
    that says `content: ""` and then its finish; replay said `content: null` there (as
    before tool calls), so an agent's `text += delta.content` failed on replay only."""
    monkeypatch.setenv("N", str(n))
    script = _script(SIZES)
    script[1] = {**script[1], "content": ""}
    session = _record(project, monkeypatch, "chat_chunks", script)
    pieces = session.output["pieces"]
    roles = [c["choices"][0]["delta"] for _, c in pieces if c["choices"]]
    roles = [d["content"] for d in roles if d["role"]]
    assert roles[-n:] == [""] * n and roles[0] is None, "tool calls: null; no text: empty"
    assert replay_seen(project, monkeypatch) == pieces


@pytest.mark.parametrize("answer", ["Warm in Rome.", ""], ids=["text", "empty"])
@pytest.mark.parametrize("mode", ["responses_events", "anthropic_events"])
def test_a_replayed_stream_sends_the_events_the_agent_got(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str, answer: str
) -> None:
    """Every event of a Responses or Anthropic stream, whole, as the SDK gives it, is on
    replay what it was live: `response.function_call_arguments.done` names the function,
    as the API's does (replay left its `name` out), also for an answer with no text."""
    script = _script(SIZES, thinking=mode.startswith("anthropic"))
    script[1] = {**script[1], "content": answer}
    session = _record(project, monkeypatch, mode, script)
    events = session.output["pieces"]
    assert len(events) > 10
    assert replay_seen(project, monkeypatch) == events
