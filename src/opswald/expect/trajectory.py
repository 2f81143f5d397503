"""Judge the whole trajectory of tool calls (`expect.tool_calls.order`), for live and fork runs."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opswald.expect.args import args_differences, args_match, resolve_args_rule
from opswald.paths import render
from opswald.session import ToolCallsExpect
from opswald.verdict import Difference, Finding

__all__ = ["ToolCallRef", "judge_order", "max_matching"]


@dataclass(frozen=True, kw_only=True)
class ToolCallRef:
    """One tool call of a session: its 1-based step number, tool name and arguments."""

    step: int
    tool: str
    input: Any


Matcher = Callable[[ToolCallRef, ToolCallRef], bool]


def judge_order(
    golden: Sequence[ToolCallRef], actual: Sequence[ToolCallRef], spec: ToolCallsExpect
) -> Finding | None:
    """A failing `tool_order` finding, or None when the calls fit `spec.order`.

    Two calls match when their tool names are equal and their arguments match under the
    tool's rule (`resolve_args_rule`). `any_order`, `subset` and `superset` use a maximum
    bipartite matching, so the verdict never depends on which candidate was tried first.
    """
    try:
        rules = {c.tool: resolve_args_rule(spec, c.tool) for c in [*golden, *actual]}
    except ValueError as exc:
        return Finding(
            kind="tool_order",
            message=str(exc),
            suggestion="write ignore_args paths like `request_id` or `filters[*].ts`",
        )

    def matches(g: ToolCallRef, a: ToolCallRef) -> bool:
        if g.tool != a.tool:
            return False
        mode, ignore = rules[g.tool]
        return args_match(g.input, a.input, mode=mode, ignore=ignore)

    judge = _JUDGES[spec.order]
    return judge(list(golden), list(actual), matches, spec, rules)


Rules = dict[str, Any]


def _exact(
    golden: list[ToolCallRef],
    actual: list[ToolCallRef],
    ok: Matcher,
    spec: ToolCallsExpect,
    rules: Rules,
) -> Finding | None:
    for index in range(max(len(golden), len(actual))):
        if index >= len(actual):
            g = golden[index]
            made = f"only {_plural(len(actual))}" if actual else "no tool calls"
            return _missing(g, spec, f"the agent made {made}")
        if index >= len(golden):
            return _extra(actual[index], spec, "after the last recorded call")
        g, a = golden[index], actual[index]
        if ok(g, a):
            continue
        if g.tool == a.tool:
            return _other_args(g, a, spec, rules)
        return _finding(
            spec,
            f"step {g.step} expected {g.tool}, the agent called {a.tool}",
            g,
            [Difference(path=("tool",), golden=g.tool, actual=a.tool, step=g.step)],
            "if the order may vary, set expect.tool_calls.order: any_order "
            "(or in_order / superset when extra calls are fine)",
        )
    return None


def _in_order(
    golden: list[ToolCallRef],
    actual: list[ToolCallRef],
    ok: Matcher,
    spec: ToolCallsExpect,
    rules: Rules,
) -> Finding | None:
    # Earliest-possible embedding is optimal for a subsequence test with any match relation.
    start = 0
    for index, g in enumerate(golden):
        pos = start
        while pos < len(actual) and not ok(g, actual[pos]):
            pos += 1
        if pos == len(actual):
            after = f" after step {golden[index - 1].step}'s call" if index else ""
            return _unmatched(g, actual, actual[start:], ok, spec, rules, after)
        start = pos + 1
    return None


def _matched(
    golden: list[ToolCallRef],
    actual: list[ToolCallRef],
    ok: Matcher,
    spec: ToolCallsExpect,
    rules: Rules,
) -> Finding | None:
    golden_to_actual = max_matching(golden, actual, ok)
    used = {a for a in golden_to_actual if a is not None}
    if spec.order in ("any_order", "superset"):
        for g, a in zip(golden, golden_to_actual, strict=True):
            if a is None:
                free = [c for i, c in enumerate(actual) if i not in used]
                return _unmatched(g, actual, free, ok, spec, rules, "")
    if spec.order in ("any_order", "subset"):
        for index, a_call in enumerate(actual):
            if index not in used:
                return _extra(a_call, spec, "which matches no recorded call")
    return None


def max_matching(
    left: Sequence[ToolCallRef], right: Sequence[ToolCallRef], ok: Matcher
) -> list[int | None]:
    """A maximum bipartite matching (augmenting paths): for each left item, its right index."""
    adjacency = [[j for j, r in enumerate(right) if ok(item, r)] for item in left]
    left_of: dict[int, int] = {}
    right_of: list[int | None] = [None] * len(left)
    for start in range(len(left)):
        end = _augmenting_path(start, adjacency, left_of)
        if end is None:
            continue
        path_end, parent = end
        node = path_end
        while True:  # flip the path: every right node on it takes its new partner
            owner = parent[node]
            previous = right_of[owner]
            right_of[owner] = node
            left_of[node] = owner
            if owner == start:
                break
            assert previous is not None
            node = previous
    return right_of


def _augmenting_path(
    start: int, adjacency: list[list[int]], left_of: dict[int, int]
) -> tuple[int, dict[int, int]] | None:
    """Depth-first search (iterative) for a free right node reachable from `start`."""
    parent: dict[int, int] = {}  # right node -> the left node that reached it
    stack = [(start, iter(adjacency[start]))]
    while stack:
        node, edges = stack[-1]
        for right in edges:
            if right in parent:
                continue
            parent[right] = node
            owner = left_of.get(right)
            if owner is None:
                return right, parent
            stack.append((owner, iter(adjacency[owner])))
            break
        else:
            stack.pop()
    return None


_JUDGES: dict[
    str,
    Callable[
        [list[ToolCallRef], list[ToolCallRef], Matcher, ToolCallsExpect, Rules], Finding | None
    ],
] = {
    "exact": _exact,
    "in_order": _in_order,
    "any_order": _matched,
    "subset": _matched,
    "superset": _matched,
}


# --- findings ----------------------------------------------------------------------------


def unknown_tool_rules(
    golden: Sequence[ToolCallRef], actual: Sequence[ToolCallRef], spec: ToolCallsExpect
) -> list[Finding]:
    """Notes (not failures) for per-tool rules (`expect.tool_calls.tools`) naming a tool
    that no call of the golden or the run has: such a rule can never apply (a typo?). Not a
    load error: a golden may keep the rule of a tool an update took out of it."""
    called = sorted({ref.tool for ref in (*golden, *actual)})
    notes = []
    for tool in spec.tools:
        if tool in called:
            continue
        close = difflib.get_close_matches(tool, called, n=1)
        notes.append(
            Finding(
                kind="tool_order",
                message=f"expect.tool_calls.tools has a rule for {tool}, which no tool call "
                "of the golden or the run has: it never applies"
                + (f" (did you mean {close[0]}?)" if close else ""),
                name=tool,
                suggestion="check the tool's name; the tools called are "
                + (", ".join(called) if called else "none"),
                failing=False,
            )
        )
    return notes


def _headline(spec: ToolCallsExpect) -> str:
    if spec.order in ("exact", "in_order"):
        return f"tool calls out of order (order: {spec.order})"
    return f"tool calls differ (order: {spec.order})"


def _finding(
    spec: ToolCallsExpect,
    detail: str,
    g: ToolCallRef | None,
    diffs: list[Difference],
    hint: str,
    name: str | None = None,
    headline: str | None = None,
) -> Finding:
    return Finding(
        kind="tool_order",
        message=f"{headline or _headline(spec)}: {detail}",
        step=g.step if g else None,
        step_type="tool_call" if g else None,
        name=g.tool if g else name,
        differences=tuple(diffs),
        suggestion=hint,
    )


def _missing(g: ToolCallRef, spec: ToolCallsExpect, why: str) -> Finding:
    return _finding(
        spec,
        f"step {g.step} expected {g.tool}, {why}",
        g,
        [],
        "if the agent may now stop earlier, set expect.tool_calls.order: subset",
    )


def _extra(a: ToolCallRef, spec: ToolCallsExpect, why: str) -> Finding:
    return _finding(
        spec,
        f"the agent called {a.tool} (its step {a.step}) {why}",
        None,
        [],
        "if extra calls are fine, set expect.tool_calls.order: in_order or superset",
        name=a.tool,
    )


def _other_args(g: ToolCallRef, a: ToolCallRef, spec: ToolCallsExpect, rules: Rules) -> Finding:
    mode, ignore = rules[g.tool]
    diffs = args_differences(
        g.input, a.input, mode=mode, ignore=ignore, base=("input",), step=g.step
    )
    hint = "if these arguments may vary, add them to expect.tool_calls.ignore_args"
    inner = [d.path[1:] for d in diffs if len(d.path) > 1]
    if inner:
        hint = (
            f"if {render(inner[0])} may vary, add it to expect.tool_calls.ignore_args "
            f"(or tools: {{{g.tool}: {{ignore_args: [...]}}}}); or set args: subset"
        )
    return _finding(
        spec,
        f"step {g.step} expected {g.tool} with the recorded arguments, "
        f"the agent called it (its step {a.step}) with other arguments",
        g,
        diffs,
        hint,
        # the call came where it was expected: its arguments differ, not the order
        headline=f"called {g.tool} with other arguments (order: {spec.order})",
    )


def _plural(n: int) -> str:
    return "1 tool call" if n == 1 else f"{n} tool calls"


def _unmatched(
    g: ToolCallRef,
    actual: Sequence[ToolCallRef],
    free: Sequence[ToolCallRef],
    ok: Matcher,
    spec: ToolCallsExpect,
    rules: Rules,
    after: str,
) -> Finding:
    """Why golden call `g` has no partner among the `free` actual calls."""
    same = [c for c in actual if c.tool == g.tool]
    if not same:
        return _missing(g, spec, f"the agent never called it{after}")
    other = next((c for c in free if c.tool == g.tool), None)
    if other is None and any(ok(g, c) for c in same):
        if after:
            return _missing(g, spec, f"the agent called it only earlier, not{after}")
        return _missing(
            g, spec, f"the agent called it fewer times ({len(same)}) than the golden records"
        )
    other = other or same[0]
    finding = _other_args(g, other, spec, rules)
    return Finding(
        kind=finding.kind,
        message=f"{_headline(spec)}: step {g.step} expected {g.tool}, the agent called it"
        f"{after} only with other arguments (e.g. its step {other.step})",
        step=finding.step,
        step_type=finding.step_type,
        name=finding.name,
        differences=finding.differences,
        suggestion=finding.suggestion,
    )
