"""State at a step (DESIGN §3a): the last snapshot at or before step k, plus every tool
output and the last LLM output up to k. `get_state`, `show --step`, the viewer and
`memory.changed` all use this one definition."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opswald.session import STEP_FIELDS, AnyStep, LLMCallStep, StateStep, ToolCallStep


@dataclass(frozen=True, kw_only=True)
class State:
    step: int
    memory: Any = None
    variables: Any = None
    context: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    tool_outputs: tuple[dict[str, Any], ...] = ()
    last_output: Any = None
    tools: tuple[str, ...] = ()

    def flat(self) -> dict[str, Any]:
        """Plain data, for diffs between two steps."""
        return {
            "memory": self.memory,
            "variables": self.variables,
            "context": self.context,
            **self.extras,
            "tool_outputs": list(self.tool_outputs),
            "last_output": self.last_output,
        }


def state_at(steps: Sequence[AnyStep], k: int) -> State:
    """The state after step `k` (1-based; 0 is the state before the first step)."""
    snapshot: StateStep | None = None
    outputs: list[dict[str, Any]] = []
    last: Any = None
    tools: tuple[str, ...] = ()
    for step in steps:
        if step.step > k:
            break
        if isinstance(step, StateStep):
            snapshot = step
        elif isinstance(step, ToolCallStep):
            outputs.append(
                {
                    "step": step.step,
                    "tool": step.tool,
                    "output": step.output if step.error is None else None,
                    **({"error": step.error.model_dump(exclude_none=True)} if step.error else {}),
                }
            )
        elif isinstance(step, LLMCallStep):
            if step.output is not None:
                last = step.output.model_dump(exclude_none=True)
            tools = tuple(_tool_names(step.input.tools))
    extras = dict(snapshot.model_extra or {}) if snapshot is not None else {}
    return State(
        step=k,
        memory=snapshot.memory if snapshot else None,
        variables=snapshot.variables if snapshot else None,
        context=snapshot.context if snapshot else None,
        extras={k2: v for k2, v in extras.items() if k2 not in STEP_FIELDS},
        tool_outputs=tuple(outputs),
        last_output=last,
        tools=tools,
    )


def _tool_names(tools: Any) -> list[str]:
    names: list[str] = []
    for tool in tools or []:
        if isinstance(tool, dict):
            name = tool.get("name") or (tool.get("function") or {}).get("name")
            if isinstance(name, str):
                names.append(name)
    return names


def state_changes(steps: Sequence[AnyStep], k: int, *, full: bool = False) -> list[str]:
    """`+ memory.x = 1` / `- memory.y` lines: what changed from step k-1 to step k."""
    return state_diff(steps, k - 1, k, full=full)


def state_diff(steps: Sequence[AnyStep], a: int, b: int, *, full: bool = False) -> list[str]:
    """`+`/`-`/`~` lines: how the state after step `b` differs from the state after `a`.
    Values are cut to a short view for reading, or whole with `full` (for machines)."""
    from opswald.diff import differences, short_repr

    def view(value: Any) -> str:
        return short_repr(value, width=sys.maxsize) if full else short_repr(value)

    before, after = _present(state_at(steps, a).flat()), _present(state_at(steps, b).flat())
    _drop_shared(before, after)
    lines = []
    for d in differences(before, after):
        where = d.where
        if d.actual is not _missing() and d.golden is _missing():
            lines.append(f"+ {where} = {view(d.actual)}")
        elif d.actual is _missing():
            lines.append(f"- {where}")
        else:
            lines.append(f"~ {where}: {view(d.golden)} → {view(d.actual)}")
    return lines


SNAPSHOT_PARTS = ("memory", "variables", "context")
_SAME = "(the same)"


def _drop_shared(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Stand-ins for what the two states take from the same steps (a tool output both
    have, a snapshot both are after): equal on both sides, so not compared value by
    value — a 50,000-row tool output, in every state after its step, is not walked again
    to find it unchanged."""
    for key, value in before.items():
        if key != "tool_outputs" and key in after and after[key] is value and value is not None:
            before[key] = after[key] = _SAME
    old, new = before.get("tool_outputs"), after.get("tool_outputs")
    if not isinstance(old, list) or not isinstance(new, list):
        return
    for index, (first, second) in enumerate(zip(old, new, strict=False)):
        if first["output"] is second["output"] and _rest(first) == _rest(second):
            old[index] = new[index] = {**first, "output": _SAME}


def _rest(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in entry.items() if key != "output"}


def _present(flat: dict[str, Any]) -> dict[str, Any]:
    """A flat state without the snapshot parts no snapshot has given yet, so that the
    first snapshot of `memory` reads as an addition (`+ memory = ...`), not a change from
    None."""
    return {k: v for k, v in flat.items() if v is not None or k not in SNAPSHOT_PARTS}


def _missing() -> Any:
    from opswald.verdict import MISSING

    return MISSING
