"""The replay tape: which recorded step answers a call, and what counts as a divergence."""

from __future__ import annotations

import json
from collections.abc import Callable
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
    AnyStep,
    LLMCallStep,
    Session,
    ToolCallsExpect,
    ToolCallStep,
    UserInputStep,
)
from opswald.verdict import MISSING, Difference, Finding

FIX = "if the new behaviour is intended, accept it with --opswald-update"


@dataclass
class _Segment:
    """A non-tool call (LLM call or user input) and the tool calls of its turn."""

    head: LLMCallStep | UserInputStep | None
    tools: list[ToolCallStep] = field(default_factory=list)


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
    """Serves recorded calls in order; tool calls match anywhere within their LLM turn."""

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
        metadata = golden.metadata
        self.lenient_absent = "recorded_with" not in metadata or "imported" in metadata
        self.total = len(golden.step_list)
        self.segments: list[_Segment] = [_Segment(head=None)]
        self.observe_tools = observe_tools
        for step in golden.step_list:
            if isinstance(step, ToolCallStep):
                if observe_tools:
                    self.segments[-1].tools.append(step)
            elif isinstance(step, LLMCallStep | UserInputStep):
                self.segments.append(_Segment(head=step))
        self.cursor = 0
        self.used: set[int] = set()
        self.compared: set[int] = set()  # recorded tool calls a diverging call was shown
        self._normalized: dict[int, dict[str, Any]] = {}
        self._requests: dict[int, dict[str, Any]] = {}  # request_of(step), by step number

    # -- matching -----------------------------------------------------------------------
    def next_call(self, kind: str, request: dict[str, Any], actual_step: int) -> Match:
        """Match an LLM call or a user input: the next turn's head, in order."""
        pending = self._pending_tools()
        if pending and self.tool_rules.order != "subset":  # subset: the agent may skip them
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
        if self.cursor + 1 >= len(self.segments):
            return Match(finding=self._extra(kind, request, actual_step))
        head = self.segments[self.cursor + 1].head
        assert head is not None
        if head.type != kind:
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
        if isinstance(head, LLMCallStep):
            diffs = self._request_differences(head, request)
            later = self._concurrent(request) if diffs else None
            if later is not None:  # a call of the same burst that started in another order
                head = self._bring_forward(later)
                diffs = []
            if diffs:  # compared with the closest call of its burst no other one was
                head, diffs = self._closest_head(head, diffs, request)
                return Match(
                    finding=Finding(
                        kind="mismatch",
                        message="the agent sent another request",
                        step=head.step,
                        step_type="llm_call",
                        name=head.model,
                        differences=tuple(diffs),
                        suggestion=_request_hint(diffs, head.step),
                    )
                )
        self.cursor += 1
        self.used.add(head.step)
        return Match(step=head)

    def exact(self, kind: str, request: dict[str, Any]) -> AnyStep | None:
        """The recorded step that answers this call when the call is, field for field, the
        recorded one (no rule needed to see it); None leaves the call to `next_call` or
        `tool_call`. Goldens hold redacted data, so a request equal to one holds no secret."""
        if kind == "tool_call":
            tool, args = request["tool"], request["input"]
            for candidate in self.segments[self.cursor].tools:
                if candidate.tool == tool and plainly_equal(candidate.input, args):
                    if candidate.step in self.used:
                        continue
                    self.used.add(candidate.step)
                    return candidate
            return None
        if kind != "llm_call" or self.cursor + 1 >= len(self.segments):
            return None
        head = self.segments[self.cursor + 1].head
        if not isinstance(head, LLMCallStep):
            return None
        used = self.used
        for tool in self.segments[self.cursor].tools:
            if tool.step not in used:
                return None  # a recorded tool call of this turn is still to come
        recorded = self._requests.get(head.step)
        if recorded is None:
            recorded = self._requests[head.step] = request_of(head)
        if not plainly_equal(request, recorded):
            return None
        self.cursor += 1
        self.used.add(head.step)
        return head

    def tool_call(self, tool: str, args: Any, actual_step: int) -> Match:
        """Match a tool call against the unused tool calls of the current turn."""
        pending = self._pending_tools()
        for candidate in pending:  # equal arguments match under every rule
            if candidate.tool == tool and plainly_equal(candidate.input, args):
                self.used.add(candidate.step)
                return Match(step=candidate)
        mode, ignore = resolve_args_rule(self.tool_rules, tool)
        for candidate in pending:
            if candidate.tool == tool and args_match(
                candidate.input, args, mode=mode, ignore=ignore
            ):
                self.used.add(candidate.step)
                return Match(step=candidate)
        if not pending:
            for candidate in self._ahead():
                if candidate.tool == tool and args_match(
                    candidate.input, args, mode=mode, ignore=ignore
                ):
                    self.used.add(candidate.step)
                    return Match(step=candidate)
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

    def unused(self) -> list[AnyStep]:
        """Recorded calls the agent never made, in golden order."""
        hidden = {"state"} if self.observe_tools else {"state", "tool_call"}
        steps = self.golden.step_list
        return [s for s in steps if s.type not in hidden and s.step not in self.used]

    def hide_tools(self) -> None:
        """Tool calls happen out of sight (an agent in another process): match LLM calls only."""
        self.observe_tools = False
        for segment in self.segments:
            segment.tools.clear()

    # -- helpers ------------------------------------------------------------------------
    def _concurrent(self, request: dict[str, Any]) -> int | None:
        """The segment of a later LLM call that this request is, when the calls between
        were made with no tool call between them (a burst, such as `asyncio.gather` of
        model calls, whose start order is not deterministic); else None."""
        for j in range(self.cursor + 2, len(self.segments)):
            if self.segments[j - 1].tools:
                return None  # a tool call between: the calls after it are a later turn
            head = self.segments[j].head
            if not isinstance(head, LLMCallStep) or head.step in self.used:
                return None
            if not self._request_differences(head, request):
                return j
        return None

    def _ahead(self) -> list[ToolCallStep]:
        """Unused tool calls of later turns that concurrent branches may make early: the
        golden recorded model calls back to back (`asyncio.gather` of branches that each
        ask the model, then call a tool), and in replay each branch's answer comes at once,
        so its tool call comes before the next branch's model call. Only across a burst:
        model calls the golden has back to back, with no tool call recorded between them
        and the current turn's head. A turn whose head came after a recorded tool call is
        a later turn, not a branch of this one (DESIGN §3a: a tool call matches within the
        turn that asked for it), so an agent that skips that model call is not served the
        turn's tool call."""
        ahead: list[ToolCallStep] = []
        if self.segments[self.cursor].tools:
            return ahead  # the next model call came after this turn's tool calls
        for j in range(self.cursor + 1, len(self.segments)):
            segment = self.segments[j]
            if not isinstance(segment.head, LLMCallStep):
                break
            unused = [t for t in segment.tools if t.step not in self.used]
            ahead.extend(unused)
            if segment.tools:
                break  # the turns after it come after these calls
        return ahead

    def _closest_head(
        self, head: LLMCallStep, diffs: list[Any], request: dict[str, Any]
    ) -> tuple[LLMCallStep, list[Any]]:
        """The recorded call of this burst a diverging request is shown beside: the one with
        the fewest differences (then the most alike), and never one already shown for
        another diverging call of the burst (gathered calls that all changed). A burst is
        calls that were in flight together in the recording; calls one after the other
        (a chain of model calls) are compared in order, the next with the next."""
        burst, chain = [head], [head]
        began = epoch_ms(head.timestamp)
        ends = began + (head.duration_ms or 0.0) if began is not None else None
        for j in range(self.cursor + 2, len(self.segments)):
            later = self.segments[j].head
            if self.segments[j - 1].tools or not isinstance(later, LLMCallStep):
                break
            if later.step in self.used:
                continue
            chain.append(later)
            start = epoch_ms(later.timestamp)
            # began before the burst's calls ended (by more than the 1 ms of a timestamp)
            if ends is not None and start is not None and start < ends - 1.0:
                ends = max(ends, start + (later.duration_ms or 0.0))
                burst.append(later)
            else:
                ends = None
        if len(burst) == 1:  # one after the other: the first not shown yet, in order
            shown = next((h for h in chain if h.step not in self.compared), head)
            self.compared.add(shown.step)
            return shown, diffs if shown is head else self._request_differences(shown, request)
        fresh = [h for h in burst if h.step not in self.compared] or burst
        found = [(diffs if h is head else self._request_differences(h, request), h) for h in fresh]
        best_diffs, best = _closest(found, request, request_of)
        self.compared.add(best.step)
        return best, best_diffs

    def _bring_forward(self, j: int) -> LLMCallStep:
        """Serve segment j's call next (returned): the burst's heads rotate, and its tool
        calls stay where the golden has them (after the burst)."""
        burst = self.segments[self.cursor + 1 : j + 1]
        heads = [segment.head for segment in burst]
        for segment, head in zip(burst, [heads[-1], *heads[:-1]], strict=True):
            segment.head = head
        moved = heads[-1]
        assert isinstance(moved, LLMCallStep)
        return moved

    def _pending_tools(self) -> list[ToolCallStep]:
        return [t for t in self.segments[self.cursor].tools if t.step not in self.used]

    def _extra(self, kind: str, request: dict[str, Any], actual_step: int) -> Finding:
        """A call past what the golden has here. Its `step` is the run's step number (the
        headline says so); the message says which golden step it came after."""
        name = request.get("tool") or request.get("model")
        hidden = {"state"} if self.observe_tools else {"state", "tool_call"}
        left = [
            s for s in self.golden.step_list if s.type not in hidden and s.step not in self.used
        ]
        if left:  # the golden goes on, but not with this call here
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
            message=f"the agent made a call the golden does not have{_sent(kind, request)}, "
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
    return (
        f"the request of step {step} changed in {', '.join(fields[:4])}; if the change is "
        "noise (dates, ids), add it to expect.requests.ignore or expect.requests.normalize"
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
