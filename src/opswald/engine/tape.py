"""The replay tape: which recorded step answers a call, and what counts as a divergence."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from opswald.diff import differences, plainly_equal, short_repr
from opswald.engine.normalize import (
    REQUEST_FIELDS,
    RequestRules,
    absent_fields,
    normalize_request,
    request_of,
    without_fields,
    without_unrecorded_carried_params,
)
from opswald.expect.args import args_differences, args_match, labels_only, resolve_args_rule
from opswald.intercept.codecs.openai_responses import as_recorded
from opswald.paths import render
from opswald.redact import placeholders_alike, shapes_in_data_alike
from opswald.session import (
    LANE_GATHERS,
    LANE_PARENTS,
    AnyStep,
    LLMCallStep,
    Session,
    ToolCallsExpect,
    ToolCallStep,
    UserInputStep,
    lane_gathers,
    lane_parents,
)
from opswald.verdict import MISSING, Difference, Finding

FIX = "if the new behaviour is intended, accept it with --opswald-update"


Head = LLMCallStep | UserInputStep


@dataclass(slots=True)
class _Group:
    """A stretch of the golden's calls (`_Tape.calls[start:end]`) that the tape serves in
    any order among themselves, as far as `Tape._available` allows: a turn (a model call
    or a user input, and the tool calls it asked for), a burst of model calls recorded
    back to back and their tool calls, and the turns a concurrency region joins."""

    start: int
    end: int
    heads: list[int] = field(default_factory=list)  # call indices, in recorded order
    tools: list[int] = field(default_factory=list)
    prefix: int = 0  # calls[start:prefix] are all used (tools too, unless order is subset)
    next_head: int = 0  # heads[:next_head] are used
    next_tool: int = 0  # tools[:next_tool] are used
    left: int = 0  # calls not used yet


@dataclass(frozen=True, kw_only=True)
class Match:
    step: AnyStep | None = None
    finding: Finding | None = None


def describe(step: AnyStep) -> str:
    """`tool_call book_flight`, `llm_call gpt-4o`, `user_input`."""
    name = step_name(step)
    return f"{step.type} {name}" if name else step.type


def step_name(step: AnyStep) -> str | None:
    if isinstance(step, ToolCallStep):
        return step.tool
    if isinstance(step, LLMCallStep):
        return step.model
    return None


class Tape:
    """Serves recorded calls: in order, except where the golden shows the order was not
    the agent's to keep (DESIGN §3a: concurrency is normal). Tool calls match anywhere
    within their turn; model calls recorded back to back (a burst) in any order; and the
    calls of a concurrency region, calls that were in flight together in the recording
    (`regions`), in any order among themselves."""

    def __init__(
        self,
        golden: Session,
        *,
        rules: RequestRules,
        tools: ToolCallsExpect,
        observe_tools: bool = True,
    ) -> None:
        self.golden = golden
        self.rules = rules
        self.tool_rules = tools
        # Fields a step leaves out are not compared (DESIGN §3a) in goldens written by
        # hand or imported from traces. A golden recorded by opswald writes every field its
        # requests had, so there an absent `tools` means "no tools", and sending tools now
        # is a change in behaviour.
        self.lenient_absent = not golden.recorded_by_opswald
        self.total = len(golden.step_list)
        self.observe_tools = observe_tools
        self.unseen: frozenset[int] = frozenset()  # model calls made out of sight
        self.used: set[int] = set()
        self.compared: set[int] = set()  # recorded calls a diverging call was shown beside
        self._normalized: dict[int, dict[str, Any]] = {}
        self._requests: dict[int, dict[str, Any]] = {}  # request_of(step), by step number
        # the lane of the flow whose call is being matched, when it has one (the run's:
        # asked for a divergence's hint only)
        self.caller_lane: Callable[[], int | None] = lambda: None
        self._lay_out()

    def _lay_out(self) -> None:
        """The golden's calls the tape serves, in recorded order. The groups that let them
        be served out of order are built when a call first needs them (`_ensure_groups`):
        while the agent makes the recorded calls one after the other, exactly as recorded
        (`cursor`), the tape serves them without (most replays of a sequential agent)."""
        calls: list[AnyStep] = []
        for step in self.golden.step_list:
            if step.step in self.unseen:
                continue
            if isinstance(step, LLMCallStep | UserInputStep) or (
                isinstance(step, ToolCallStep) and self.observe_tools
            ):
                calls.append(step)
        self.calls = calls
        self.index = {c.step: i for i, c in enumerate(calls)}
        self.cursor = 0  # the first call not made yet
        self.grouped = False

    def _ensure_groups(self) -> None:
        """Lay the golden's calls out in groups (`_Group`), served one group after the
        other. A group starts as a turn: a model call or user input and the tool calls
        recorded after it; model calls recorded back to back with no tool call between
        (a burst: gathered model calls) share one. Turns that a concurrency region spans
        are joined into one group. The calls made before (`calls[:cursor]`, in order) are
        then served again, so the groups stand as if they had been there all along."""
        if self.grouped:
            return
        self.grouped = True
        calls = self.calls
        n = len(calls)
        # the turn (burst) of each call, and where it begins
        is_tool = [False] * n
        turn_of = [0] * n
        turn_start: list[int] = []
        turn_heads: list[bool] = []  # whether a turn has a head (the leading one may not)
        heads_left: list[int] = []
        open_burst = False  # the last turn is model calls only, so far
        for i, call in enumerate(calls):
            if isinstance(call, ToolCallStep):
                is_tool[i] = True
                if not turn_start:
                    turn_start.append(i)
                    turn_heads.append(False)
                    heads_left.append(0)
                open_burst = False
            else:
                if not (open_burst and isinstance(call, LLMCallStep)):
                    turn_start.append(i)  # else a burst: one more model call of the turn
                    turn_heads.append(True)
                    heads_left.append(0)
                    open_burst = isinstance(call, LLMCallStep)
                heads_left[-1] += 1
            turn_of[i] = len(turn_start) - 1
        self.is_tool = is_tool
        self.turn_of = turn_of
        self.turn_has_head = turn_heads
        self.turn_head_used = [False] * len(turn_start)
        self.turn_heads_left = heads_left
        metadata = self.golden.metadata
        region_of, region_start = regions(
            calls,
            lane_parents(metadata.get(LANE_PARENTS)),
            lane_gathers(metadata.get(LANE_GATHERS)),
        )
        self.region_of = region_of
        self.region_starts = region_start
        self.region_entered: set[int] = set()
        # the earliest call a call may come before: its turn's first call, or its
        # region's first call when that is earlier (a region begun in the turn before)
        lo = [turn_start[t] for t in turn_of]
        if region_start:
            for i, region in enumerate(region_of):
                if region >= 0 and region_start[region] < lo[i]:
                    lo[i] = region_start[region]
        self.lo = lo
        groups: list[_Group] = []
        group_of: list[int] = []
        turn_start.append(n)
        for t in range(len(turn_start) - 1):
            start, end = turn_start[t], turn_start[t + 1]
            region = region_of[start]
            if groups and region >= 0 and region == region_of[start - 1]:
                group = groups[-1]  # a region spans the two turns: one group
                group.end = end
            else:
                group = _Group(start=start, end=end, prefix=start)
                groups.append(group)
            g = len(groups) - 1
            for i in range(start, end):
                group_of.append(g)
                (group.tools if is_tool[i] else group.heads).append(i)
            group.left += end - start
        self.group_of = group_of
        self.groups = groups
        self.g = 0  # the group being served
        self._settle()
        for i in range(self.cursor):  # made in order, before the groups were needed
            self._serve(i)

    # -- matching -----------------------------------------------------------------------
    def next_call(self, kind: str, request: dict[str, Any], actual_step: int) -> Match:
        """Match an LLM call or a user input: a head of the group being served (the next
        one in order, or one of its burst or region), else the next group's."""
        i = self.cursor
        if kind == "user_input" and i < len(self.calls) and len(self.used) == i:
            head = self.calls[i]  # the calls before it were made, in order
            if isinstance(head, UserInputStep):
                self._serve_next(i)
                return Match(step=head)
        self._ensure_groups()
        group = self._group()
        heads = self._heads(group) if group is not None else []
        if group is not None and not heads:
            pending = self._pending_tools(group)
            if pending and self.tool_rules.order != "subset":  # subset: they may be skipped
                first = pending[0]
                return Match(
                    finding=Finding(
                        kind="mismatch",
                        message=(
                            f"the agent did not call {first.tool} and went on to a {kind} "
                            f"({len(pending)} recorded tool call(s) of this turn unused)"
                        ),
                        step=first.step,
                        step_type="tool_call",
                        name=first.tool,
                        suggestion=f"step {first.step} called {first.tool} with "
                        f"{_short(first.input)} in the golden; check why the agent no longer does",
                    )
                )
            if group.next_head < len(group.heads):  # its model calls that come later
                waiting = next(
                    self.calls[i] for i in group.heads if self.calls[i].step not in self.used
                )
                assert isinstance(waiting, LLMCallStep | UserInputStep)
                heads = [waiting]  # compared in order
            else:  # every call of this group was made (or may be skipped): the next one's
                later = self.g + 1
                group = self.groups[later] if later < len(self.groups) else None
                heads = self._heads(group) if group is not None else []
        if group is None or not heads:
            return Match(finding=self._extra(kind, request, actual_step))
        same = [h for h in heads if h.type == kind]
        if not same:
            head = heads[0]
            return Match(
                finding=Finding(
                    kind="mismatch",
                    message=f"the golden has {describe(head)} here; the agent made a {kind}",
                    step=head.step,
                    step_type=head.type,
                    name=step_name(head),
                    suggestion=f"step {head.step} of the golden is a {head.type}",
                )
            )
        if kind != "llm_call":
            head = same[0]  # user inputs match in order
        else:
            models = [h for h in same if isinstance(h, LLMCallStep)]
            first_diffs = self._request_differences(models[0], request)
            found = models[0] if not first_diffs else None
            for h in models[1:] if found is None else ():
                if not self._request_differences(h, request):
                    found = h  # a call of the same burst or region that started in another order
                    break
            if found is None and self._made_later(request, heads):
                # the golden's own later call, made ahead of calls it has before it (the
                # call after a gather made before the gather's calls): said so, not
                # shown as another request beside one of them
                return Match(finding=self._extra(kind, request, actual_step))
            if found is None:  # compared with the closest call of its burst no other one was
                shown, diffs = self._closest_head(models, first_diffs, request)
                return Match(
                    finding=Finding(
                        kind="mismatch",
                        message="the agent sent another request",
                        step=shown.step,
                        step_type="llm_call",
                        name=shown.model,
                        differences=tuple(diffs),
                        suggestion=_request_hint(diffs, shown.step)
                        + self._lanes_not_made(group, shown),
                    )
                )
            head = found
        self._serve(self.index[head.step])
        return Match(step=head)

    def exact(self, kind: str, request: dict[str, Any]) -> AnyStep | None:
        """The recorded step that answers this call when the call is, field for field, a
        recorded one the tape may serve now (no rule needed to see it); None leaves the
        call to `next_call` or `tool_call`. Goldens hold redacted data, so a request equal
        to one holds no secret."""
        i, calls = self.cursor, self.calls
        if i < len(calls) and len(self.used) == i:
            # the calls before the next recorded one were made, in order (the tape's state is
            # that of a sequential replay): that one answers the call when it is equal to it,
            # as the groups below would find first
            call = calls[i]
            if kind == "tool_call":
                hit = (
                    isinstance(call, ToolCallStep)
                    and call.tool == request["tool"]
                    and plainly_equal(call.input, request["input"])
                )
            elif kind == "llm_call":
                hit = isinstance(call, LLMCallStep) and plainly_equal(request, request_of(call))
            else:
                return None
            if hit:
                self._serve_next(i)
                return call
        self._ensure_groups()
        if self.g >= len(self.groups):
            return None
        group = self.groups[self.g]
        calls, used = self.calls, self.used
        if kind == "tool_call":
            tool, args = request["tool"], request["input"]
            tools, k = group.tools, group.next_tool
            while k < len(tools) and calls[tools[k]].step in used:
                k += 1
            group.next_tool = k
            for i in tools[k:]:
                candidate = calls[i]
                if (
                    getattr(candidate, "tool", None) == tool
                    and candidate.step not in used
                    and plainly_equal(getattr(candidate, "input", None), args)
                    and self._available(i, group)
                ):
                    self._serve(i)
                    return candidate
            return None
        if kind != "llm_call":
            return None
        heads, k = group.heads, group.next_head
        while k < len(heads) and calls[heads[k]].step in used:
            k += 1
        group.next_head = k
        if k == len(heads):
            return None  # a recorded tool call of this group is still to come
        lo, prefix = self.lo, group.prefix
        for i in heads[k:]:
            head = calls[i]
            if head.step in used:
                continue
            if not isinstance(head, LLMCallStep) or (
                lo[i] > prefix and lo[i] > self._prefix(group)
            ):
                return None  # a user input first, or a call that comes later in order
            recorded = self._requests.get(head.step)
            if recorded is None:
                recorded = self._requests[head.step] = request_of(head)
            if plainly_equal(request, recorded):
                self._serve(i)
                return head
        return None

    def tool_call(self, tool: str, args: Any, actual_step: int) -> Match:
        """Match a tool call against the unused tool calls the tape may serve now: those
        of a turn whose model call was made, and those of a region the agent is in."""
        self._ensure_groups()
        group = self._group()
        pending = self._pending_tools(group) if group is not None else []
        for candidate in pending:  # equal arguments match under every rule
            if candidate.tool == tool and plainly_equal(candidate.input, args):
                self._serve(self.index[candidate.step])
                return Match(step=candidate)
        mode, ignore = resolve_args_rule(self.tool_rules, tool)
        for candidate in pending:
            if candidate.tool == tool and args_match(
                candidate.input, args, mode=mode, ignore=ignore
            ):
                self._serve(self.index[candidate.step])
                return Match(step=candidate)
        # shown beside a recorded call of a turn whose model calls were all made, or of
        # the region the agent is in; a tool call of a burst's turn that may come early
        # is served when it matches, and is not yet the call the agent should have made
        pending = [c for c in pending if self._due(self.index[c.step])]
        # compared with the closest recorded call of that name that no other diverging
        # call of this turn was compared with (concurrent calls complete in any order)
        same_name = [c for c in pending if c.tool == tool and c.step not in self.compared]
        same_name = same_name or [c for c in pending if c.tool == tool]
        if same_name:
            found = [
                (
                    args_differences(
                        c.input, args, mode=mode, ignore=ignore, base=("input",), step=c.step
                    ),
                    c,
                )
                for c in same_name
            ]
            diffs, target = _closest(found, args, lambda c: c.input)
            self.compared.add(target.step)
            return Match(
                finding=Finding(
                    kind="mismatch",
                    message=f"called {tool} with other arguments",
                    step=target.step,
                    step_type="tool_call",
                    name=tool,
                    differences=tuple(diffs),
                    suggestion=_args_hint(target, diffs),
                )
            )
        if pending:
            target = pending[0]
            return Match(
                finding=Finding(
                    kind="mismatch",
                    message=f"the golden calls {target.tool} here; the agent called {tool}",
                    step=target.step,
                    step_type="tool_call",
                    name=target.tool,
                    differences=tuple(
                        differences(target.tool, tool, base=("tool",), step=target.step)
                    ),
                    suggestion=f"step {target.step} of the golden called {target.tool} with "
                    f"{_short(target.input)}",
                )
            )
        return Match(finding=self._extra("tool_call", {"tool": tool, "input": args}, actual_step))

    def answers(self, step: AnyStep, tool: str | None, sent: Any) -> bool:
        """Whether a call matches the one recorded `step`, by the comparison replay makes
        there: a tool call (`tool`, arguments `sent`) by name and arguments under
        `expect.tool_calls.args`; a model call (`sent` is its request) on the normalised
        request."""
        if isinstance(step, ToolCallStep):
            if tool != step.tool:
                return False
            if plainly_equal(step.input, sent):
                return True
            mode, ignore = resolve_args_rule(self.tool_rules, tool)
            return args_match(step.input, sent, mode=mode, ignore=ignore)
        if isinstance(step, LLMCallStep):
            return tool is None and not self._request_differences(step, sent)
        return False

    def concurrent_with(
        self, step: int, tool: str | None, sent: Any, *, sibling: bool = False
    ) -> AnyStep | None:
        """After a call of golden step `step`'s concurrency region diverged and the run
        went on live (an update): the unused recorded call of that region that this call
        (a tool call: `tool` and its arguments `sent`; a model call: its request) matches,
        as `answers` compares, first in recorded order; None when the step is no region's
        or no call of it matches. Those are calls of branches in flight with the diverging
        one, which the divergence did not touch (DESIGN §3a: concurrency is normal). With
        `sibling` (the call's thread or task and the diverging one's were started by the
        same flow), also an unused call of the diverging call's group that it matches."""
        self._ensure_groups()
        i = self.index.get(step)
        if i is None:
            return None
        calls, used = self.calls, self.used
        region = self.region_of[i]
        if region >= 0:
            for j in range(self.region_starts[region], len(calls)):
                if self.region_of[j] != region:
                    break  # a region's calls are recorded one after the other
                call = calls[j]
                if call.step not in used and self.answers(call, tool, sent):
                    self._serve(j)
                    return call
        if not sibling:
            return None
        # a call of a sibling of the thread or task that diverged (started by the same
        # flow), of the stretch replay serves in any order with the diverging call: a burst
        # of model calls recorded back to back (a gather run in waves by a semaphore, whose
        # waves did not overlap)
        group = self.groups[self.group_of[i]]
        for j in range(group.start, group.end):
            call = calls[j]
            if call.step not in used and self.answers(call, tool, sent):
                self._serve(j)
                return call
        return None

    def unused(self) -> list[AnyStep]:
        """Recorded calls the agent never made, in golden order."""
        hidden = {"state"} if self.observe_tools else {"state", "tool_call"}
        steps = self.golden.step_list
        unseen = self.unseen
        return [
            s
            for s in steps
            if s.type not in hidden and s.step not in self.used and s.step not in unseen
        ]

    def hide_tools(self, calls: Collection[int] = ()) -> None:
        """Tool calls happen out of sight (an agent in another process): match LLM calls
        only, but for `calls` (step numbers), model calls no HTTP client can make
        (`@opswald.llm` functions of a custom provider); before the first call is matched."""
        self.observe_tools = False
        self.unseen = frozenset(calls)
        self._lay_out()

    # -- helpers ------------------------------------------------------------------------
    def _group(self) -> _Group | None:
        return self.groups[self.g] if self.g < len(self.groups) else None

    def _settle(self) -> None:
        """Move on past the groups whose calls were all made."""
        groups = self.groups
        while self.g < len(groups) and groups[self.g].left == 0:
            self.g += 1

    def _serve_next(self, i: int) -> None:
        """Call `i`, the first not made yet, answers the agent's call."""
        if self.grouped:
            self._serve(i)
        else:
            self.used.add(self.calls[i].step)
            self.cursor = i + 1

    def _serve(self, i: int) -> None:
        """Call `i` answers the agent's call. A head of a later group moves the tape on to
        that group (under `expect.tool_calls.order: subset` the agent may skip the tool
        calls left in this one)."""
        calls, used = self.calls, self.used
        used.add(calls[i].step)
        if i == self.cursor:
            c = i + 1
            while c < len(calls) and calls[c].step in used:
                c += 1
            self.cursor = c
        g = self.group_of[i]
        group = self.groups[g]
        group.left -= 1
        if not self.is_tool[i]:
            turn = self.turn_of[i]
            self.turn_head_used[turn] = True
            self.turn_heads_left[turn] -= 1
        region = self.region_of[i]
        if region >= 0:
            self.region_entered.add(region)
        if g > self.g:
            self.g = g
        if not group.left:
            self._settle()

    def _prefix(self, group: _Group) -> int:
        """Where the group's first call not made yet is: the calls before it were all made
        (tool calls the agent may skip, under `order: subset`, do not hold it)."""
        p, end, calls, used = group.prefix, group.end, self.calls, self.used
        skip = self.tool_rules.order == "subset"
        while p < end and (calls[p].step in used or (skip and self.is_tool[p])):
            p += 1
        group.prefix = p
        return p

    def _available(self, i: int, group: _Group) -> bool:
        """Whether call `i` (of `group`, the one being served, or the next) may be served
        now: every call before its turn (or its region, when that began earlier) was made;
        and a tool call's turn had its model call made, or a call of its region was (a
        model call the golden made after a tool call starts a later turn: an agent that
        skips it is not served that turn's tool calls; DESIGN §3a)."""
        lo = self.lo[i]
        if lo > group.prefix and lo > self._prefix(group):
            return False
        if self.is_tool[i]:
            turn = self.turn_of[i]
            return (
                not self.turn_has_head[turn]
                or self.turn_head_used[turn]
                or self.region_of[i] in self.region_entered
            )
        return True

    def _due(self, i: int) -> bool:
        """Whether the available tool call `i` is one the agent was to make by now."""
        return (
            self.turn_heads_left[self.turn_of[i]] == 0 or self.region_of[i] in self.region_entered
        )

    def _heads(self, group: _Group) -> list[Head]:
        """The group's model calls and user inputs the tape may serve now, in recorded order."""
        heads, calls, used = group.heads, self.calls, self.used
        k = group.next_head
        while k < len(heads) and calls[heads[k]].step in used:
            k += 1
        group.next_head = k
        out: list[Head] = []
        for i in heads[k:]:
            head = calls[i]
            if head.step in used:
                continue
            if not self._available(i, group):
                break  # the calls after it come later too
            assert isinstance(head, LLMCallStep | UserInputStep)
            out.append(head)
        return out

    def _pending_tools(self, group: _Group) -> list[ToolCallStep]:
        """The group's tool calls not made yet that the tape may serve now."""
        tools, calls, used = group.tools, self.calls, self.used
        k = group.next_tool
        while k < len(tools) and calls[tools[k]].step in used:
            k += 1
        group.next_tool = k
        out: list[ToolCallStep] = []
        for i in tools[k:]:
            tool = calls[i]
            if tool.step not in used and self._available(i, group):
                assert isinstance(tool, ToolCallStep)
                out.append(tool)
        return out

    def _closest_head(
        self, models: list[LLMCallStep], diffs: list[Any], request: dict[str, Any]
    ) -> tuple[LLMCallStep, list[Any]]:
        """The recorded call a diverging request is shown beside, of the model calls the
        tape may serve now (`models`; the next in order first): in a concurrency region
        (calls in flight together in the recording), the one of its region with the fewest
        differences (then the most alike), and never one already shown for another
        diverging call (gathered calls that all changed); calls one after the other (a
        chain, or a burst whose calls did not overlap) are compared in order, the next
        with the next."""
        head = models[0]
        region = self.region_of[self.index[head.step]]
        burst = (
            [h for h in models if self.region_of[self.index[h.step]] == region]
            if region >= 0
            else [head]
        )
        if len(burst) == 1:  # one after the other: the first not shown yet, in order
            shown = next((h for h in models if h.step not in self.compared), head)
            self.compared.add(shown.step)
            return shown, diffs if shown is head else self._request_differences(shown, request)
        fresh = [h for h in burst if h.step not in self.compared] or burst
        found = [(diffs if h is head else self._request_differences(h, request), h) for h in fresh]
        best_diffs, best = _closest(found, request, request_of)
        self.compared.add(best.step)
        return best, best_diffs

    def _lanes_not_made(self, group: _Group | None, near: AnyStep | None) -> str:
        """The lanes of the concurrency region of `near` (the golden call a divergence was
        shown at) none of whose calls the agent made, as a hint's last part (a branch it no
        longer runs, or one its starter no longer waits for); else "". Only for a call of a
        flow that made calls before, in a lane not of that region (the starter, after the
        gather), when each of the region's lanes the agent made a call of it made every
        call of: a branch's own first call, changed, stops the agent before branches
        started later make theirs (replay answers at once, so a gather's branches run one
        after the other), and those are not left out."""
        if group is None or near is None or near.step not in self.index:
            return ""
        region = self.region_of[self.index[near.step]]
        if region < 0:
            return ""
        by_lane: dict[int, list[AnyStep]] = {}
        for i in range(group.start, group.end):
            call = self.calls[i]
            if call.lane is not None and self.region_of[i] == region:
                by_lane.setdefault(call.lane, []).append(call)
        used = self.used
        made = [calls for calls in by_lane.values() if any(c.step in used for c in calls)]
        if not made or not all(c.step in used for calls in made for c in calls):
            return ""
        left = [lane for lane, calls in by_lane.items() if not any(c.step in used for c in calls)]
        if not left:
            return ""
        caller = self.caller_lane()
        if caller is None or caller in by_lane:
            return ""

        def steps(lane: int) -> str:
            numbers = [str(c.step) for c in by_lane[lane]]
            return ", ".join(numbers[:5]) + (", …" if len(numbers) > 5 else "")

        listed = "; ".join(f"lane {lane}: steps {steps(lane)}" for lane in left[:3])
        if len(left) > 3:
            listed += f"; {len(left) - 3} more"
        what = "a branch" if len(left) == 1 else "branches"
        return (
            f"; the agent made no call of {what} the golden has in this region ({listed}), "
            f"and calls of the others: {what} it no longer runs, or no longer waits for?"
        )

    def _made_later(self, request: dict[str, Any], heads: Sequence[AnyStep]) -> bool:
        """Whether a model call that matches none of the calls of a concurrency region
        the tape may serve now (`heads`) is, exactly, a later model call of the golden not
        used yet. (Beside a call made one after the other, it is shown as that call's other
        request: the calls after it moved up, or it was left out.)"""
        now = {h.step for h in heads}
        if not any(self.region_of[self.index[step]] >= 0 for step in now):
            return False
        return any(
            isinstance(s, LLMCallStep)
            and s.step not in self.used
            and s.step not in now
            and s.step > min(now, default=0)
            and not self._request_differences(s, request)
            for s in self.calls
        )

    def _extra(self, kind: str, request: dict[str, Any], actual_step: int) -> Finding:
        """A call past what the golden has here. Its `step` is the run's step number (the
        headline says so); the message says which golden step it came after."""
        name = request.get("tool") or request.get("model")
        hidden = {"state"} if self.observe_tools else {"state", "tool_call"}
        left = [
            s
            for s in self.golden.step_list
            if s.type not in hidden and s.step not in self.used and s.step not in self.unseen
        ]
        tool, sent = (
            (request.get("tool"), request.get("input")) if kind == "tool_call" else (None, request)
        )
        later = (
            next((s for s in left if self.answers(s, tool, sent)), None)
            if kind != "user_input"
            else None
        )
        what = "does not have"
        if later is not None:  # made before calls the golden has ahead of it
            what = f"has later, as its step {later.step}"
            suggestion = (
                f"the golden makes this call after its step {left[0].step} "
                f"({describe(left[0])}), which the agent has not made before it; calls made "
                "one after the other match in their recorded order"
            ) + (self._lanes_not_made(self._group(), left[0]) if self.grouped else "")
        elif left:  # the golden goes on, but not with this call here
            where = (
                "this turn of the golden has no tool call left"
                if kind == "tool_call"
                else ("the golden has no such call here")
            )
            suggestion = (
                f"{where}; the golden's next recorded call is its step {left[0].step} "
                f"({describe(left[0])})"
            )
        else:
            suggestion = (
                f"every recorded call was already used (the golden has "
                f"{_plural(self.total, 'step')})"
            )
        return Finding(
            kind="extra_call",
            message=f"the agent made a call the golden {what}{_sent(kind, request)}, "
            f"{self._after()}",
            step=actual_step,
            step_type=kind,
            name=str(name) if name else None,
            suggestion=suggestion,
        )

    def _after(self) -> str:
        """Where in the golden an extra call came: after the last recorded call used."""
        if not self.used:
            return "before the golden's first call"
        last = max(self.used)
        step = self.golden.step_list[last - 1]
        which = f"last step, step {last}" if last == self.total else f"step {last}"
        return f"after the golden's {which} ({describe(step)})"

    def _request_differences(self, head: LLMCallStep, request: dict[str, Any]) -> list[Any]:
        recorded = request_of(head)
        if plainly_equal(request, recorded):  # normalising is deterministic
            return []
        golden = self._normalized.get(head.step)
        if golden is None:
            golden = self._normalized[head.step] = normalize_request(recorded, self.rules)
        absent = absent_fields(recorded) if self.lenient_absent else ()  # not compared
        if self.lenient_absent:  # a recorded golden wrote every carried param sent
            request = without_unrecorded_carried_params(request, recorded)
        request = as_recorded(request, head)  # Responses instructions of an older step
        actual = normalize_request(
            without_fields(request, absent) if absent else request, self.rules
        )
        if plainly_equal(golden, actual) or plainly_equal(
            placeholders_alike(golden), placeholders_alike(actual)
        ):
            return []  # placeholders alike: see `placeholders_alike`
        if plainly_equal(shapes_in_data_alike(golden), shapes_in_data_alike(actual)):
            return []  # a golden written while key shapes were redacted in base64 data
        return [
            _presence(d) for d in differences(golden, actual, step=head.step) if not labels_only(d)
        ]


_FIELDS = frozenset(REQUEST_FIELDS)


def _presence(d: Difference) -> Difference:
    """A request field that is None on one side (a step leaves it out) is shown as added
    or removed (`input.params: added`), not as a change from or to None."""
    if d.path not in _FIELDS:
        return d
    if d.golden is None and d.actual is not MISSING:
        return replace(d, golden=MISSING)
    if d.actual is None and d.golden is not MISSING:
        return replace(d, actual=MISSING)
    return d


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _sent(kind: str, request: dict[str, Any]) -> str:
    """What an extra call sent, short: a tool's arguments, a model's last message."""
    if kind == "tool_call":
        return f", with {short_repr(request.get('input'))}"
    messages = (request.get("input") or {}).get("messages")
    if isinstance(messages, list) and messages:
        return f", whose last message is {short_repr(messages[-1])}"
    return ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


S = TypeVar("S")


def _closest(
    found: list[tuple[list[Any], S]], sent: Any, recorded: Callable[[S], Any]
) -> tuple[list[Any], S]:
    """Of the recorded calls a diverging call was compared with, the one it differs from
    least: fewest differences, and between equally many the most alike text (`OSLO` is
    compared with the recorded `Oslo`, not with `Paris`). The texts are compared only on
    such a tie, and in linear time: a call whose arguments hold thousands of values is
    named as quickly as a small one."""
    fewest = min(len(diffs) for diffs, _ in found)
    tied = [pair for pair in found if len(pair[0]) == fewest]
    if len(tied) == 1:
        return tied[0]
    text = _text(sent)
    return max(tied, key=lambda pair: _likeness(_text(recorded(pair[1])), text))


def _likeness(a: str, b: str) -> float:
    """How alike two texts are, 0..1: twice their longest common subsequence over their
    lengths (rapidfuzz's bit-parallel Indel similarity; difflib's matcher took seconds on
    texts of some ten thousand characters)."""
    from rapidfuzz.distance import Indel  # only a tie between diverging calls needs it

    return float(Indel.normalized_similarity(a, b))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _args_hint(target: ToolCallStep, diffs: list[Any]) -> str:
    if not diffs:
        return f"step {target.step} recorded {target.tool} with {_short(target.input)}"
    return (
        f"step {target.step} recorded {target.tool} {_recorded_at(target.input, diffs[0])}; "
        "look at what the agent read before calling it"
    )


def _recorded_at(recorded: Any, d: Difference) -> str:
    """What the golden's arguments hold where `d` is, in the arguments' own terms: the
    value there, or, for an element or key the golden has not (inserted, added), the list
    or mapping that lacks it (`with terms = ['x', 'y', 'z']`, `without limit`)."""
    path = d.path[1:] if d.path[:1] == ("input",) else d.path
    if d.golden is not MISSING and path:
        return f"with {render(path)} = {_short(d.golden)}"
    if not path:
        return f"with {_short(recorded)}"
    parent = path[:-1]
    value = recorded
    for part in parent:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return f"with {_short(recorded)}"
    if not parent:
        return f"without {render(path)}" if isinstance(path[-1], str) else f"with {_short(value)}"
    return f"with {render(parent)} = {_short(value)}"


def _request_hint(diffs: list[Any], step: int) -> str:
    fields = sorted({d.where.split(" › ", 1)[-1].split("[", 1)[0] for d in diffs})
    said = f"the request of step {step} changed in {', '.join(fields[:4])}"
    if not any(field.startswith("input.messages") for field in fields):
        # the model, the provider, the tools offered, a parameter: a choice, never noise
        return said
    return (
        f"{said}; if the change is noise (dates, ids), add it to expect.requests.ignore or "
        "expect.requests.normalize"
    )


def epoch_ms(stamp: str | None) -> float | None:
    """A step's recorded start in ms, or None when it has no readable timestamp."""
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() * 1000


def regions(
    calls: list[AnyStep],
    parents: Mapping[int, int] | None = None,
    gathers: Sequence[Sequence[int]] = (),
) -> tuple[list[int], list[int]]:
    """The concurrency regions of a golden's calls (in recorded order): the runs of calls
    that were in flight together, or made by threads or tasks running at the same time, so
    that the order they came in was not the agent's. Each call's region (-1: none, a call
    made on its own), and where each region begins: the runs `_lane_regions` finds (with
    `parents`, the session's `lane_parents`, and `gathers`, its `lane_gathers`) in a session
    with lanes, else the runs `_timed_regions` finds."""
    if not any(call.lane is not None for call in calls):
        return _timed_regions(calls)
    # with lanes, calls of one lane were made one after the other, and calls of lanes that
    # ran together are found without timestamps (which chain a gather's region on through
    # the quick calls after it)
    spans = _lane_regions(calls, parents or {}, gathers)
    region_of = [-1] * len(calls)
    starts: list[int] = []
    end = -1
    for first, last in spans:
        if starts and first <= end:  # overlaps the region before: one region
            end = max(end, last)
        else:
            starts.append(first)
            end = last
        for i in range(first, last + 1):
            region_of[i] = len(starts) - 1
    return region_of, starts


def _lane_regions(
    calls: list[AnyStep], parents: Mapping[int, int], gathers: Sequence[Sequence[int]] = ()
) -> list[tuple[int, int]]:
    """The runs of calls (first and last index) made by threads or tasks that were making
    calls at the same time (`lane`, recorded for sessions with more than one). Such calls
    need not overlap in time: a quick model answer followed by a branch's own work leaves
    gaps that a replay, answering at once, fills in another order.

    A lane runs from its first call to its last, and on over the runs of the lanes it
    started and waited for (`parents`: a task is not done while it waits for the tasks
    it gathered: two groups that each ask a question, then gather branches of their own,
    ran together, whenever their own calls came). Two lanes ran together when their runs
    overlap, unless one started the other and waited for it, directly or through the
    lanes between them (a sub-agent run as a task and awaited, `asyncio.wait_for` around
    a call, `asyncio.to_thread`), and made no call during its run, so that its calls came
    in order with the other's. Lanes that ran together, directly or through others, make
    one run from the first call of them to the last, within which any order goes (user
    inputs still answered in order). So do the lanes of one gather (`gathers`), whose
    order was the event loop's even where their runs did not overlap (waves under a
    semaphore)."""
    made: dict[int, list[int]] = {}
    for i, call in enumerate(calls):
        if call.lane is not None:
            made.setdefault(call.lane, []).append(i)
    if len(made) < 2:
        return []
    parent = {k: p for k, p in parents.items() if k in made and p in made and p != k}

    def ancestors(lane: int) -> Iterator[int]:
        seen = {lane}
        while (lane := parent.get(lane, 0)) and lane not in seen:  # a hand-made loop ends
            seen.add(lane)
            yield lane

    first = {k: calls_of[0] for k, calls_of in made.items()}
    last = {k: calls_of[-1] for k, calls_of in made.items()}
    depth = {k: sum(1 for _ in ancestors(k)) for k in made}
    for lane in sorted(made, key=depth.__getitem__, reverse=True):  # the deepest first
        up = parent.get(lane)
        if up is not None and depth[up] < depth[lane]:
            first[up], last[up] = min(first[up], first[lane]), max(last[up], last[lane])

    def in_order(lane: int, other: int) -> bool:
        """Whether `other` started `lane` and waited for it (or for the lane that did), and
        made no call during its run."""
        if other not in ancestors(lane):
            return False
        calls_of = made[other]
        after = bisect_right(calls_of, first[lane])  # `other`'s first call after it began
        return after == len(calls_of) or calls_of[after] > last[lane]

    lanes = sorted(made, key=lambda k: (first[k], made[k][0]))
    joined = {k: k for k in lanes}  # union-find over lanes that ran together

    def root(k: int) -> int:
        while joined[k] != k:
            joined[k] = joined[joined[k]]
            k = joined[k]
        return k

    running: list[int] = []  # lanes begun whose run goes on after the current one begins
    for lane in lanes:
        running = [k for k in running if last[k] > first[lane]]
        for other in running:
            if not in_order(lane, other) and not in_order(other, lane):
                joined[root(lane)] = root(other)
        running.append(lane)
    for lane, other in _in_flight_together(calls):
        joined[root(lane)] = root(other)
    for group in gathers:
        together = [lane for lane in group if lane in joined]
        for lane in together[1:]:
            joined[root(lane)] = root(together[0])
    # by group: first call, last, lanes; over the runs of the lanes each waited for (a
    # group's branches ran within it, beside the other groups)
    spans: dict[int, tuple[int, int, int]] = {}
    for lane in lanes:
        top = root(lane)
        begun, ended, count = spans.get(top, (first[lane], last[lane], 0))
        spans[top] = (min(begun, first[lane]), max(ended, last[lane]), count + 1)
    return sorted((begun, ended) for begun, ended, count in spans.values() if count > 1)


def _in_flight_together(calls: list[AnyStep]) -> Iterator[tuple[int, int]]:
    """Pairs of lanes of which a call of one began while a call of the other was still in
    flight, by more than the millisecond timestamps are written to (so surely): branches
    that make one call each (a gather of questions) have runs that overlap in no call,
    but ran together. Calls of one lane may overlap (a stream read on while it made
    another call): that makes no pair. Calls without a readable timestamp, and user
    inputs, are left out."""
    seconds: dict[str, float] = {}
    spans: list[tuple[float, float, int]] = []
    for call in calls:
        if call.lane is None or isinstance(call, UserInputStep) or not call.timestamp:
            continue
        began = start_ms(call.timestamp, seconds)
        if began is not None:
            spans.append((began, began + (call.duration_ms or 0.0), call.lane))
    spans.sort()
    flying: list[tuple[float, int]] = []  # (end, lane) of the calls begun so far
    for began, ended, lane in spans:
        flying = [(end, other) for end, other in flying if began < end - 1.0]
        for _, other in flying:
            if other != lane:
                yield lane, other
        flying.append((ended, lane))


def _timed_regions(calls: list[AnyStep]) -> tuple[list[int], list[int]]:
    """The runs of calls whose recorded spans (`timestamp`, its start, for `duration_ms`)
    chain by overlap, so they were in flight together and the order they started in was
    not the agent's. Each call's region (-1: none, a call made on its own), and where each
    region begins.

    Timestamps are to the millisecond: a call joins the calls before it when it began
    before they all ended by more than that millisecond (it surely overlapped them); a
    region of calls in flight together also takes in a call that may have (it began within
    a millisecond of their end), so that no overlap a timestamp rounds away splits it.
    Calls made one after the other, however quick, never make a region of their own (one
    begun within that millisecond of a region's end may join it). A call with no readable
    timestamp (goldens written by hand, some imports) and a user input stand on their
    own."""
    region_of = [-1] * len(calls)
    starts: list[int] = []
    seconds: dict[str, float] = {}
    first, ends = 0, None  # the run so far: where it began, when its calls ended
    for i, call in enumerate(calls):
        stamp = call.timestamp
        began = None if isinstance(call, UserInputStep) or not stamp else start_ms(stamp, seconds)
        if began is None:
            first, ends = i + 1, None
            continue
        ended = began + (call.duration_ms or 0.0)
        joins = ends is not None and (began < ends - 1.0 or (i - first > 1 and began < ends + 1.0))
        if not joins:
            first, ends = i, ended
            continue
        assert ends is not None
        ends = max(ends, ended)
        if i - first == 1:  # the run's second call: a region
            starts.append(first)
            region_of[first] = len(starts) - 1
        region_of[i] = len(starts) - 1
    return region_of, starts


def start_ms(stamp: str, seconds: dict[str, float]) -> float | None:
    """`epoch_ms`, quicker for the form opswald writes (`2026-01-05T09:30:12.345Z`): each
    second parsed once (`seconds`, kept by the caller), the milliseconds read off. A
    golden's thousand steps are read when its replay starts, and when it ends."""
    if len(stamp) == 24 and stamp[23] == "Z" and stamp[19] == "." and stamp[20:23].isdigit():
        key = stamp[:19]
        second = seconds.get(key)
        if second is None:
            second = epoch_ms(key + "+00:00")
            if second is None:
                return None
            seconds[key] = second
        return second + int(stamp[20:23])
    return epoch_ms(stamp)
