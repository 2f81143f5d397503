"""Helpers for tests of a project whose agent calls the real openai/anthropic SDKs (made by
conftest's `sdk_setup`; MODE picks the agent): the fake provider the SDKs are pointed at,
the record and replay runs (in-process pytest), the agent run without opswald, and source
the agents share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, NamedTuple, TypeVar

import pytest

from fakeprovider import FakeProvider
from opswald import load
from opswald.session import LLMCallStep, Session


@contextmanager
def serving(
    monkeypatch: pytest.MonkeyPatch, mode: str, script: list[dict[str, Any]], **faults: Any
) -> Iterator[FakeProvider]:
    """The agent `mode` picked and both SDKs pointed at a fake provider answering `script`
    (`faults`: its other options); the provider is stopped on leaving."""
    monkeypatch.setenv("MODE", mode)
    with FakeProvider(script=script, **faults) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        yield fp


T = TypeVar("T")


class Served(NamedTuple, Generic[T]):
    """What a run against the fake provider gave: `got` (the golden recorded, or the
    agent's output), the provider (stopped; what it received stays readable) and how its
    streams ended (asked for before it stopped, with `wait_ended`; else empty)."""

    got: T
    provider: FakeProvider
    ends: list[str]


def record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    golden: str,
    mode: str,
    script: list[dict[str, Any]],
    *args: str,
    wait_ended: bool = False,
    **faults: Any,
) -> Served[Session]:
    """Record the project's stub against the fake provider (`args` may ask for more, as
    --opswald-update), check the run passed, then stop it; `got` is the `golden` written."""
    with serving(monkeypatch, mode, script, **faults) as fp:
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record", *args)
        assert result.ret == 0, result.stdout.str()
        ends = fp.wait_ended() if wait_ended else []
    return Served(load(pytester.path / golden), fp, ends)


def live_run(
    agent: str,
    filename: str,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    script: list[dict[str, Any]],
    *,
    wait_ended: bool = False,
) -> Served[Any]:
    """The agent's `run` (from the source `agent`) against the fake provider, without
    opswald; `got` is what it returned."""
    namespace: dict[str, Any] = {}
    exec(compile(agent, filename, "exec"), namespace)
    with serving(monkeypatch, mode, script) as fp:
        output = namespace["run"]({})
        ends = fp.wait_ended() if wait_ended else []
    return Served(output, fp, ends)


def replay(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Replay with the provider gone (its port closed): only the golden can answer."""
    return pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider", *args)


def replay_seen(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, **outcomes: int) -> Any:
    """Replay with the provider gone, check its `outcomes` (as `assert_outcomes` takes them;
    one passed unless told), and return what the agent saw (written where SEEN says)."""
    seen = pytester.path / "seen.json"
    monkeypatch.setenv("SEEN", str(seen))
    replay(pytester).assert_outcomes(**(outcomes or {"passed": 1}))
    return json.loads(seen.read_text())


def llm_steps(session: Session) -> list[LLMCallStep]:
    return [s for s in session.step_list if isinstance(s, LLMCallStep)]


# -- source the agents share (each agent's module imports json, os and opswald first) -----

WRITE_SEEN = '''

def _write_seen(seen):
    """What the agent saw, to the file SEEN names (replay_seen reads it back)."""
    if os.environ.get("SEEN"):
        with open(os.environ["SEEN"], "w") as f:
            json.dump(seen, f)
'''

WEATHER_TOOL = """

@opswald.tool
def get_weather(city):
    return {"city": city, "temp_c": 21}


TOOL = {"name": "get_weather", "description": "weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
"""

# a turn of an agent calling WEATHER_TOOL, in each API's shape
TOOL_TURNS = '''

def _chat_turn(messages, calls):
    """The tool calls (by index: id, name, args) answered; True when there were none."""
    if not calls:
        return True
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function",
         "function": {"name": c["name"], "arguments": c["args"]}} for c in calls.values()]})
    for c in calls.values():
        result = get_weather(**json.loads(c["args"]))
        messages.append({"role": "tool", "tool_call_id": c["id"], "content": json.dumps(result)})
    return False


def _responses_turn(output, items):
    """The output items (as dicts) and their function calls' results added to `items`;
    True when there were no calls."""
    items += output
    calls = [o for o in output if o["type"] == "function_call"]
    for call in calls:
        items.append({"type": "function_call_output", "call_id": call["call_id"],
                      "output": json.dumps(get_weather(**json.loads(call["arguments"])))})
    return not calls


def _anthropic_turn(content, messages):
    """The content blocks (as dicts) and their tool uses' results added to `messages`;
    True when there were no tool uses."""
    messages.append({"role": "assistant", "content": content})
    uses = [b for b in content if b["type"] == "tool_use"]
    if uses:
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": u["id"],
             "content": json.dumps(get_weather(**u["input"]))} for u in uses]})
    return not uses
'''

RUN_BY_MODE = '''

def run(input):
    """The agent MODE names, run to its end (an async one in an event loop of its own)."""
    import asyncio
    agent = globals()[os.environ["MODE"]]
    if asyncio.iscoroutinefunction(agent):
        return asyncio.run(agent(input))
    return agent(input)
'''

# the rest of an agent that calls WEATHER_TOOL, writes what it saw and runs by MODE
TOOL_AGENT = WEATHER_TOOL + TOOL_TURNS + WRITE_SEEN + RUN_BY_MODE
