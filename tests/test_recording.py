"""opswald.record(): recording outside pytest, then replaying the result under pytest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import opswald
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


def test_record_keeps_the_error_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "fail.golden.yaml"
    with pytest.raises(LookupError), opswald.record(path, input="missing") as rec:
        rec.output = agent("missing")
    session = opswald.load(path)
    assert session.error is not None and session.error.type == "LookupError"
    with pytest.raises(FileExistsError, match="never overwrites"), opswald.record(path):
        pass


def test_record_in_memory_only() -> None:
    with opswald.record(name="scratch", input="x", store=False) as rec:
        rec.output = agent("x")
    assert rec.path is None and rec.session is not None
    assert rec.session.name == "scratch" and len(rec.session.step_list) == 3
    assert fetch("y") == {"key": "y", "value": 42}, "instrumentation is a no-op again"
