"""The run context: ports through which the agent's calls are recorded and served."""

from __future__ import annotations

import asyncio
import builtins
import json
import math
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal, Protocol

from opswald.diff import plainly_equal, short_repr
from opswald.engine import responses
from opswald.engine.current import LANE, MISS, OutsideFlow, activate, current, lane_owner
from opswald.engine.normalize import RequestRules
from opswald.engine.tape import Match, Tape, describe, start_ms, step_name
from opswald.jsonable import (
    Formless,
    LostKeys,
    formless,
    lost_keys,
    plain_copy,
    to_jsonable,
    type_name,
    unplain,
)
from opswald.redact import DEFAULT_REDACTOR, LEARN_MIN, LearnedSecrets, Redactor, key_label
from opswald.returns import (
    RETURNED,
    UNUSABLE,
    Hidden,
    Returns,
    Retyped,
    hidden_note,
    return_note,
)
from opswald.session import (
    AnyStep,
    ErrorInfo,
    LLMCallStep,
    LLMInput,
    LLMOutput,
    Session,
    StateStep,
    ToolCallsExpect,
    ToolCallStep,
    Usage,
    UserInputStep,
    merged_gathers,
    without_stream_chunks,
)
from opswald.sessiondiff import stop_attributes
from opswald.verdict import MISSING, Finding

Policy = Literal["replay", "live", "update", "fork"]
"""replay: answers from the golden; live: from the real functions; update and fork: replay
until the first divergence (or the fork step), live from there on. A fork is judged on
expectations, an update writes the golden."""

REQUEST_KEYS = ("model", "temperature", "top_p", "max_tokens", "seed")
"""Modification keys the engine applies to outgoing LLM requests."""

# where a run was started, so a hint names the option of that place
Surface = Literal["pytest", "cli", "api"]
ALLOW_SIDE_EFFECTS: dict[str, str] = {
    "pytest": "re-run with --opswald-allow-side-effects",
    "cli": "re-run `opswald replay` with --allow-side-effects",
    "api": "pass allow_side_effects=True to Replay",
}

UPDATE: dict[str, str] = {  # how to update a golden, in the words of each surface
    "pytest": "--opswald-update",
    "cli": "an update (`pytest --opswald-goldens --opswald-update`)",
    "api": "an update (`pytest --opswald-goldens --opswald-update`)",
}

RERECORD: dict[str, str] = {  # how to record a golden again, in the words of each surface
    "pytest": "--opswald-mode=rerecord",
    "cli": "pytest --opswald-goldens --opswald-mode=rerecord",
    "api": "pytest --opswald-goldens --opswald-mode=rerecord",
}


FORK_AT: dict[str, str] = {  # the fork step's option, in the words of each surface
    "pytest": "--opswald-fork-at",
    "cli": "--fork-at",
    "api": "fork_at",
}


UNRECORDED_HINT = (
    "opswald records the model calls of the Chat Completions, Responses and Anthropic "
    "Messages APIs only; make this call inside an @opswald.tool function, whose result is "
    "recorded and replayed with the golden, and record the golden again"
)


def side_effect_hint(surface: Surface, policy: str = "update") -> str:
    """How to let a blocked side-effect tool run, in the words of `surface`. A fork or a
    live run blocks it whatever the golden holds: recording it again would not help; a
    stub (`policy` "stub": run live to be recorded by an update) is recorded with every
    tool by record mode."""
    allow = ALLOW_SIDE_EFFECTS[surface]
    prefix = "" if surface == "pytest" else "pytest "
    if policy == "stub":  # a stub an update records
        return f"{allow} to let it run, or record it with {prefix}--opswald-mode=record"
    if policy in ("fork", "live"):
        return f"{allow} to let it run"
    return f"{allow} to let it run, or record the golden again with {prefix}--opswald-mode=rerecord"


_MODIFIED_STEP_TYPE = {  # each step modification, and the type of step it changes
    "user_input": "user_input",
    "tool_result": "tool_call",
    "response": "llm_call",
    "selected_tool": "llm_call",
    "tool_params": "llm_call",
}
STEP_MODIFICATIONS = tuple(_MODIFIED_STEP_TYPE)


def _a(step_type: str) -> str:
    """A step type with its article: `an llm_call`, `a tool_call`."""
    return f"{'an' if step_type[:1] in 'aeiol' else 'a'} {step_type}"


def changes_one_step(mods: Sequence[str]) -> str:
    """`response changes one step`, `selected_tool, tool_params change one step`."""
    return f"{', '.join(mods)} {'changes' if len(mods) == 1 else 'change'} one step"


def fork_problem(
    golden: Session,
    fork_at: int | None,
    step_mods: Iterable[str],
    request_mods: Iterable[str] = (),
) -> str | None:
    """Why a fork of `golden` at `fork_at` with these step modifications and request-level
    modification keys (`model`, ...) cannot run as asked (so that a modification is never
    dropped in silence), or None."""
    given = set(step_mods)
    mods = [key for key in STEP_MODIFICATIONS if key in given]
    if fork_at is None:
        return f"{changes_one_step(mods)}: give the step to fork at" if mods else None
    if fork_at < 1:
        return "steps are numbered from 1"
    steps = golden.step_list
    at = next((s for s in steps if s.step == fork_at), None)
    if at is None:
        return f"the golden has {len(steps)} step(s): there is no step {fork_at} to fork at"
    for key in mods:
        wanted = _MODIFIED_STEP_TYPE[key]
        if at.type != wanted:
            return (
                f"{key} changes {_a(wanted)} step, and step {fork_at} of the golden is "
                f"{_a(at.type)}"
            )
    requested = [key for key in REQUEST_KEYS if key in set(request_mods)]
    if requested and not any(s.step >= fork_at and s.type == "llm_call" for s in steps):
        # they change model calls: with none from step N on (a fork at a trailing snapshot,
        # or at the last tool call) no request gets them, and the run would pass as a
        # replay, or a fork of a tool call, with them never applied
        calls = [s.step for s in steps if s.type == "llm_call"]
        earlier = (
            f"fork at step {calls[-1]} or before (step {calls[-1]} is its last model call)"
            if calls
            else "the golden has no model call for them to change"
        )
        return (
            f"{', '.join(requested)} {'changes' if len(requested) == 1 else 'change'} the "
            f"model calls from step {fork_at} on, and the golden has no model call from "
            f"its step {fork_at} ({describe(at)}) on: {earlier}"
        )
    return None


_API_PARAMS: dict[str, dict[str, str]] = {
    "openai.chat_completions": {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_tokens",
        "seed": "seed",
    },
    "openai.responses": {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_output_tokens",
    },
    "anthropic.messages": {
        "temperature": "temperature",
        "top_p": "top_p",
        "max_tokens": "max_tokens",
    },
}


def request_overrides(api: str | None, mods: dict[str, Any]) -> dict[str, Any]:
    """Request-level modifications as the API's own top-level body keys (`model` included);
    keys an API does not take are left out (Anthropic has no `seed`)."""
    names = _API_PARAMS.get(api or "", {k: k for k in REQUEST_KEYS if k != "model"})
    out = {names[k]: v for k, v in mods.items() if k in names}
    if "model" in mods:
        out["model"] = mods["model"]
    return out


def apply_request_modifications(request: dict[str, Any], mods: dict[str, Any]) -> dict[str, Any]:
    """A copy of an engine request with the modifications applied."""
    overrides = request_overrides(request.get("api"), mods)
    if not overrides:
        return request
    out = {**request, "input": dict(request.get("input") or {})}
    if "model" in overrides:
        out["model"] = overrides.pop("model")
    if overrides:
        out["input"]["params"] = {**(out["input"].get("params") or {}), **overrides}
    return out


def carries(request: dict[str, Any], key: str, value: Any) -> bool:
    """Whether an engine request already has the request-level modification `key`."""
    overrides = request_overrides(request.get("api"), {key: value})
    params = (request.get("input") or {}).get("params") or {}
    return bool(overrides) and all(
        (request.get("model") if name == "model" else params.get(name)) == wanted
        for name, wanted in overrides.items()
    )


@dataclass(frozen=True, kw_only=True)
class KeysLost:
    """The first dict of a run whose keys a golden writes alike (see `lost_keys`): in the
    agent's output, a state snapshot, a function's result or a tool's arguments (`name`:
    that function or tool)."""

    part: Literal["output", "state", "result", "arguments"]
    name: str | None
    found: LostKeys


@dataclass(frozen=True, kw_only=True)
class StepInfo:
    """A step about to happen (what `before_step` hooks and breakpoints see)."""

    number: int
    type: str
    name: str | None
    request: dict[str, Any]


class StepListener(Protocol):
    """Sees every step of a run; any of the three methods may be missing."""

    def before_step(self, ctx: Context, info: StepInfo) -> None: ...
    def after_step(self, ctx: Context, step: AnyStep) -> None: ...
    def on_error(self, ctx: Context, step: AnyStep, error: ErrorInfo) -> None: ...


class ReplayDivergence(BaseException):
    """Raised into the agent at the first call that matches nothing recorded.

    A BaseException, so an agent's `except Exception` cannot swallow it.
    """

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


class SideEffectBlocked(BaseException):
    """A tool marked `side_effects=True` would have run live without permission."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


class HookFailed(BaseException):
    """A hook raised (a step hook, the price hook), or handed opswald what it cannot
    record (a cost that is no number of dollars). Not the agent's error, so not one the
    agent may catch (hence a BaseException) nor one the run records as the agent's: the
    exception (`__cause__`) is raised to whoever ran the replay, and nothing is written."""


class ReplayedToolError(Exception):
    """A recorded error of a non-builtin exception type, raised again during replay.

    When the original class is loaded in this process, the error raised is also an
    instance of it, so the agent's `except OriginalError:` still catches it.
    """

    _recorded: ErrorInfo | None = None  # the error as the golden has it, when raised from one

    def __init__(self, type_name: str, message: str) -> None:
        Exception.__init__(self, f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


def _replayed_class(error: ErrorInfo) -> type[ReplayedToolError]:
    """ReplayedToolError, mixed with the recorded class when its module is already loaded
    (a golden never makes us import anything)."""
    module = sys.modules.get(error.module or "")
    original = module
    for part in error.type.split("."):
        original = getattr(original, part, None)
    if not (isinstance(original, type) and issubclass(original, Exception)):
        return ReplayedToolError
    try:
        # an instance of the original class reads like one: str() is the recorded message
        # and args are its recorded args (the message alone by default); `message` is ours
        # even where the original class has a read-only property
        namespace = {
            "__init__": _mixed_init,
            "__str__": _mixed_str,
            "__module__": original.__module__,
            "message": "",
        }
        return type(error.type.rsplit(".", 1)[-1], (ReplayedToolError, original), namespace)
    except TypeError:  # incompatible layouts (some C exception types)
        return ReplayedToolError


CANCELLED = "CancelledError"
"""The error type of a call that was cancelled, or had not finished when the run ended."""


class CancelledCall(asyncio.CancelledError):
    """Replay matched a call recorded as cancelled: it gets no answer. An async call waits
    until it is cancelled, as it was when recorded (`until_cancelled`); a sync call gets
    this error (a thread cannot be cancelled)."""


def was_cancelled(step: AnyStep) -> bool:
    """Whether a recorded call was cancelled (or never finished) rather than answered."""
    error = step.error
    return error is not None and error.type == CANCELLED


async def until_cancelled() -> Any:
    """Wait until the task is cancelled (a recorded cancelled call, served)."""
    await asyncio.get_running_loop().create_future()


class NoUserInput(Exception):
    """A live run asked for user input that no script provides."""


@dataclass(slots=True)
class Ticket:
    """One call in flight: its actual step number and, when served, the recorded step."""

    number: int
    served: AnyStep | None
    started: float
    request: dict[str, Any] = field(default_factory=dict)  # as sent, modifications applied
    # the request-level modifications apply to this call (what goes out carries them)
    modified: bool = False
    lane: int | None = None  # the thread or task that made it (`Context.lane`)


@dataclass
class Clock:
    """Replay time: the recorded time of served calls + measured agent time. Served calls
    that ran at the same time in the recording (concurrent tools, gathered model calls)
    count once: the union of their recorded intervals, not the sum of their durations.
    `served_wall_ms` is the wall time that is not the agent's: serving calls, and
    opswald's listeners (hooks, breakpoints, progress reports)."""

    start: float = field(default_factory=lambda: time.perf_counter())
    served: list[AnyStep] = field(default_factory=list)
    served_wall_ms: float = 0.0

    def restart(self) -> None:
        """Start the agent's time now (on the clock `duration_ms` reads)."""
        self.start = time.perf_counter()

    def duration_ms(self) -> float:
        wall = (time.perf_counter() - self.start) * 1000
        return max(0.0, wall - self.served_wall_ms) + self.served_recorded_ms()

    def served_recorded_ms(self) -> float:
        total = 0.0
        spans: list[tuple[float, float]] = []
        append = spans.append
        seconds: dict[str, float] = {}  # each second of the recording parsed once
        for step in self.served:
            stamp, duration = step.timestamp, step.duration_ms or 0.0
            began = start_ms(stamp, seconds) if stamp else None
            if began is None:  # no readable timestamp: its whole duration counts
                total += duration
                continue
            append((began, began + duration))
        spans.sort()
        end = -math.inf
        for began, ended in spans:
            if ended > end:
                total += ended - (began if began > end else end)
                end = ended
        return total


ERROR_DATA_LIMIT = 10_000
"""The most characters of JSON that an error's `args` and `attributes` take in a golden,
together: args that do not fit are not kept, nor is any attribute beyond what is left."""

_NOT_JSON: Any = object()


def error_info(exc: BaseException) -> ErrorInfo:
    """An exception as a golden records it: type, message, module, and its `args` (when not
    just the message) and public attributes that JSON holds, so that replay can raise it
    again with them. Not redacted: `Context.error_of` is."""
    if isinstance(exc, ReplayedToolError):
        if exc._recorded is not None:  # raised from a golden: as the golden has it
            return exc._recorded
        return ErrorInfo(type=exc.type_name, message=exc.message)
    if isinstance(exc, asyncio.CancelledError):
        cancelled = tuple(getattr(exc, "args", ()))
        return ErrorInfo(type=CANCELLED, message=_message_of(exc, cancelled) or _CANCELLED_MESSAGE)
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    message = _message_of(exc, args)
    builtin = type(exc).__module__ == "builtins"
    kept_args = _kept_args(exc, args, message, builtin)
    room = ERROR_DATA_LIMIT - (_json_size(kept_args) if kept_args is not None else 0)
    return ErrorInfo(
        type=type(exc).__qualname__,
        message=message,
        module=None if builtin else type(exc).__module__,
        args=kept_args,
        attributes=_kept_attributes(exc, message, room, builtin),
    )


def _message_of(exc: BaseException, args: tuple[Any, ...]) -> str:
    """The recorded message: the only argument when it is a text, else `str(exc)`."""
    return args[0] if len(args) == 1 and isinstance(args[0], str) else str(exc)


def _kept_args(
    exc: BaseException, args: tuple[Any, ...], message: str, builtin: bool
) -> list[Any] | None:
    """The arguments to rebuild the exception from when they are not just its message:
    its `args`, or for a builtin `OSError` with a file name the constructor's own (the
    name is not in `args`). None when JSON cannot hold them or they are too long."""
    if builtin and isinstance(exc, OSError) and len(args) == 2 and exc.filename is not None:
        more = (exc.filename,) if exc.filename2 is None else (exc.filename, None, exc.filename2)
        args = (*args, *more)
    if args == (message,) or (not args and not message):
        return None
    data = _json_data(args)
    if data is _NOT_JSON or _json_size(data) > ERROR_DATA_LIMIT:
        return None
    kept: list[Any] = data
    return kept


def _kept_attributes(
    exc: BaseException, message: str, room: int, builtin: bool
) -> dict[str, Any] | None:
    """The exception's public attributes (its instance `__dict__`) that JSON holds, in
    order while they fit in `room` characters. A `message` equal to the recorded message
    is left out: every error replay raises for a class that is not builtin has it."""
    try:
        own = list(vars(exc).items())
    except TypeError:  # no __dict__
        return None
    kept: dict[str, Any] = {}
    for name, value in own:
        if not isinstance(name, str) or name.startswith("_"):
            continue
        if name == "message" and not builtin and value == message:
            continue
        data = _json_data(value)
        if data is _NOT_JSON:
            continue
        size = _json_size({name: data})
        if size <= room:
            kept[name] = data
            room -= size
    return kept or None


def _json_data(value: Any, depth: int = 0) -> Any:
    """`value` as JSON data (tuples as lists), or _NOT_JSON when JSON cannot hold it as it
    is (an object, a set, bytes, a non-finite float, a key that is not a text)."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else _NOT_JSON
    if depth >= 32 or (kind in (list, tuple, dict) and len(value) > ERROR_DATA_LIMIT):
        return _NOT_JSON
    if kind is list or kind is tuple:
        items = [_json_data(item, depth + 1) for item in value]
        return _NOT_JSON if any(item is _NOT_JSON for item in items) else items
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in value.items():
            data = _json_data(item, depth + 1) if type(key) is str else _NOT_JSON
            if data is _NOT_JSON:
                return _NOT_JSON
            out[key] = data
        return out
    return _NOT_JSON


def _json_size(data: Any) -> int:
    return len(json.dumps(data, ensure_ascii=False))


_CANCELLED_MESSAGE = "cancelled before it finished"


def raise_recorded(error: ErrorInfo) -> None:
    """Raise a recorded error again: builtin types as themselves, others as ReplayedToolError
    (also an instance of the recorded class when it is loaded), with the recorded args and
    attributes; the class's own `__init__` never runs."""
    raise _replayed_error(error)


def _replayed_error(error: ErrorInfo) -> Exception:
    builtin = getattr(builtins, error.type, None)
    if error.module is None and isinstance(builtin, type) and issubclass(builtin, Exception):
        return _builtin_error(builtin, error)
    try:
        exc = _replayed_class(error)(error.type, error.message)
    except TypeError:  # a class whose constructor wants other arguments (pydantic's)
        exc = ReplayedToolError(error.type, error.message)
    exc._recorded = error
    if type(exc) is not ReplayedToolError:  # an instance of the recorded class too
        if error.args is not None:
            exc.args = tuple(plain_copy(error.args))
        vars(exc).update(plain_copy(error.attributes or {}))
    return exc


def _builtin_error(cls: type[Exception], error: ErrorInfo) -> Exception:
    """A builtin exception rebuilt from its recorded args, when they give back the recorded
    message; else from the message, as before args were recorded."""
    exc = _from_args(cls, error)
    if exc is None:
        exc = cls(error.message)
    if error.attributes:
        vars(exc).update(plain_copy(error.attributes))
    return exc


def _from_args(cls: type[Exception], error: ErrorInfo) -> Exception | None:
    if error.args is None:
        return None
    try:
        exc = cls(*error.args)
    except Exception:  # args a hand edit made wrong for the constructor
        return None
    same = type(exc) is cls and _message_of(exc, exc.args) == error.message
    return exc if same else None


def _mixed_init(self: ReplayedToolError, type_name: str, message: str) -> None:
    ReplayedToolError.__init__(self, type_name, message)
    self.args = (message,)


def _mixed_str(self: ReplayedToolError) -> str:
    """The recorded message, even where a recorded attribute named `message` replaced ours."""
    return self._recorded.message if self._recorded is not None else self.message


class Context:
    """Everything one run of the agent writes to and reads from."""

    def __init__(
        self,
        *,
        golden: Session | None,
        policy: Policy,
        rules: RequestRules | None = None,
        tool_rules: ToolCallsExpect | None = None,
        allow_side_effects: bool = False,
        block_side_effects: bool = True,
        modifications: dict[str, Any] | None = None,
        user_inputs: list[Any] | None = None,
        redactor: Redactor = DEFAULT_REDACTOR,
        fork_at: int | None = None,
        step_modifications: dict[str, Any] | None = None,
        listeners: list[Any] | None = None,
        integrations: tuple[str, ...] = (),
        side_effect_tools: frozenset[str] = frozenset(),
        langgraph_state: bool = False,
        surface: Surface = "pytest",
    ) -> None:
        self.golden = golden
        self.surface: Surface = surface  # whose options hints name
        self.integrations = integrations  # framework integrations in force (ini)
        self.side_effect_tools = side_effect_tools  # tool names with side_effects=True
        self.langgraph_state = langgraph_state  # LangGraph node states as state steps
        self.policy: Policy = policy
        self.live = policy == "live"
        # one memory of the secrets hidden by name, for everything this run redacts: what
        # it writes, and the requests it matches
        learned = LearnedSecrets()
        rules = rules or RequestRules()
        rules = replace(rules, redactor=rules.redactor.learning(learned))
        self.tape = (
            Tape(golden, rules=rules, tools=tool_rules or ToolCallsExpect())
            if golden is not None and policy != "live"
            else None
        )
        if self.tape is not None:  # which lane the call being matched comes from
            self.tape.caller_lane = lambda: self._lanes.get(self._flow()[0])
        self.allow_side_effects = allow_side_effects
        self.block_side_effects = block_side_effects
        self.modifications = dict(modifications or {})
        self.request_modifications = {
            k: v for k, v in self.modifications.items() if k in REQUEST_KEYS
        }
        self.fork_at = fork_at  # a fork at a step: the golden's step N, in its numbering
        self.step_modifications = dict(step_modifications or {})
        # golden step N: the call that matches it is where the fork starts, and gets the
        # step modifications, whichever step of the run it is (a run may record other
        # snapshots before it; the calls of a burst start in any order). A snapshot is
        # never matched: a fork at one starts at the golden's first call after it
        self.fork_golden: AnyStep | None = None  # golden step N itself
        self.fork_target: AnyStep | None = None  # the call the fork starts at
        if golden is not None and fork_at is not None:
            steps = golden.step_list
            self.fork_golden = next((s for s in steps if s.step == fork_at), None)
            self.fork_target = next(
                (s for s in steps if s.step >= fork_at and s.type != "state"), None
            )
        self.fork_pending = fork_at is not None  # golden step N not reached yet
        # request-level modifications (`model`, ...) are in force: from the first call
        # without a fork step; from golden step N on with one (the calls before it are
        # matched, and served, as the golden recorded them)
        self.requests_modified = fork_at is None and bool(self.request_modifications)
        self.fork_applied: int | None = None  # the run's step that answered as golden step N
        # the golden step where a fork at a step left the golden (N, or the later step, or
        # the step a diverging call was compared with, that made the run go live first)
        self.fork_golden_step: int | None = None
        self._fork_left: Match | None = None  # the match that made a fork at a step go live
        self._user_input_calls = 0  # user inputs asked so far (they match in order)
        # request-level modification keys the agent's own requests already carried before
        # opswald applied them (an adapter that reads `modifications["model"]` itself): the
        # run's first step with each
        self.agent_applied: dict[str, int] = {}
        self.listeners: list[Any] = list(listeners or [])
        self._user_inputs: Iterator[Any] | None = iter(user_inputs) if user_inputs else None
        self.redactor = redactor.learning(learned)
        self.steps: list[AnyStep | None] = []
        self._withdrawn: set[int] = set()  # slots of calls that will be retried
        # calls begun and not finished yet: their kind and request, by step number
        self._open: dict[int, tuple[str, dict[str, Any]]] = {}
        # the lane of each flow (an asyncio task, a thread, a thread's run in a copied
        # context: `_flow`) that made a call (`lane`), and the highest lane number given
        self._lanes: dict[object, int] = {}
        # new lanes are numbered past the golden's: a thread whose first call runs live
        # never takes a number that another one takes from a served call later
        self._lane_top = 0
        # the golden's lanes no thread or task of this run has taken yet (read from the
        # golden when a lane is first asked for: a replay served as recorded never asks)
        self._lanes_free: set[int] | None = None
        # an update of a golden without lanes gives its served calls the lanes of the
        # flows that made them too: a live call written among calls that were in flight
        # together when recorded has a time of its own, which their timestamps' region
        # would not hold, so the golden it writes has lanes (`writeback`)
        self._lanes_anew = (
            policy == "update"
            and golden is not None
            and all(s.lane is None for s in golden.step_list)
        )
        self._open_lanes: dict[int, int] = {}  # the lane of each call in `_open`
        # what started each flow, and how long it ran, for `waited_parents`
        self._flow_threads: dict[object, threading.Thread] = {}  # a thread's flows
        self._flow_starter: dict[object, object | None] = {}  # the flow that started each
        self._lane_starter: dict[int, object] = {}  # the flow each new lane started with
        self._task_lanes: set[int] = set()  # the lanes of tasks
        self._lane_ended: dict[int, float] = {}  # when a task's lane ended (perf_counter)
        self._lane_awaited: set[int] = set()  # tasks whose starter waited for them (`_watch`)
        # what a task's starter waited on (`_waits_for`), as an `id`: tasks of one gather or
        # task group share one, a task awaited alone has its own; the objects are kept for
        # the run, so that no id is taken again by another
        self.waited_on: dict[int, int] = {}
        self._waited_on_kept: list[object] = []
        # the tasks each wait seen took together, by the wait (`_waited_with`): the objects
        # are kept, so that no id is taken again by another
        self._waits: dict[int, tuple[object, set[object]]] = {}
        self._waiters: list[object] = []  # the tasks `_waited_by_any` found waiting
        # tasks awaited one at a time that ran together (`_beside`): (the starter, a task,
        # the other tasks alive beside it); and the tasks looked at
        self._alive_beside: list[tuple[object, object, list[object]]] = []
        self._beside_seen: set[int] = set()
        self._crowded: list[object] = []  # loops seen with more than `_BESIDE_MAX` tasks
        self._lane_begun: dict[int, list[float]] = {}  # when each lane's live calls began
        # a flow whose first call ran live and took the golden's one lane left (`lane`),
        # and its calls' step numbers: another flow whose served call has that lane was
        # the branch recorded in it, and the guess moves to a new lane (`_relaned`)
        self._guessed: dict[object, int] = {}
        self._guessed_calls: dict[object, list[int]] = {}
        self._relaned: dict[int, int] = {}  # step number → the lane it moved to
        # streamed answers passed on to the agent and not ended yet (intercept/tee.py), by
        # step number: each records its step when it ends, or when the run ends first
        self.unended: dict[int, Callable[[], None]] = {}
        self.findings: list[Finding] = []
        # SDK requests to endpoints opswald does not record that went out live (record-time
        # note); in replay the first one stops the run
        self.unrecorded: list[str] = []
        # results that replay gives back as another type than the function returned (the
        # data form of an object): a note for each function, shown once it is recorded
        self.return_notes: dict[str, str] = {}
        # the first result whose dict keys the golden would write alike, losing all but one
        self.lost_keys: KeysLost | None = None
        # the first function result with no data form (its name, the part): never written
        self.formless_result: tuple[str, Formless] | None = None
        self.formless_arguments: tuple[str, Formless] | None = None
        # served answers the agent got as another type than its function returned when
        # recorded (or that do not validate as its annotation), in the order served
        self.retyped: list[Retyped] = []
        self.fork_step: int | None = None  # actual step where the run went live
        # an update that went live at a call of a concurrency region: that call's golden
        # step (the calls of the other branches in flight with it are still served)
        self.diverged_in: int | None = None
        # the requests of calls made at the same time that diverged at the divergence's
        # step too (`_add_divergence`), and that finding's own hint
        self._folded: list[str] = []
        self._folded_hint = ""
        self._divergence_flow: object | None = None  # the flow whose call diverged first
        self.diverged_flow: object | None = None  # the thread or task whose call it was
        self.served: dict[int, AnyStep] = {}  # actual step number -> recorded step
        self._modified: AnyStep | None = None  # the step a step modification answers
        self.prices: Any = None  # a pricing.PriceTable for responses that carry no cost
        self.clock = Clock()
        self._lock = threading.RLock()

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def divergence(self) -> Finding | None:
        return next((f for f in self.findings if f.kind in ("mismatch", "extra_call")), None)

    def actual_steps(self) -> list[AnyStep]:
        """The steps in order, numbered 1..n (withdrawn attempts leave no gap)."""
        return self.numbered()[0]

    def numbered(self) -> tuple[list[AnyStep], dict[int, AnyStep]]:
        """The steps renumbered 1..n, and the served map keyed by the new numbers."""
        with self._lock:
            steps: list[AnyStep] = []
            served: dict[int, AnyStep] = {}
            for slot in self.steps:
                if slot is None:
                    continue
                number = len(steps) + 1
                if self._relaned and slot.step in self._relaned:
                    slot = slot.model_copy(update={"lane": self._relaned[slot.step]})
                if slot.step != number:
                    if slot.step in self.served:
                        served[number] = self.served[slot.step]
                    slot = slot.model_copy(update={"step": number})
                elif slot.step in self.served:
                    served[number] = self.served[slot.step]
                steps.append(slot)
            if self._lanes and len({s.lane for s in steps if s.lane is not None}) == 1:
                # one thread or task made every call: a sequential session, no lanes
                steps = [s.model_copy(update={"lane": None}) for s in steps]
            return steps, served

    def steps_so_far(self) -> list[AnyStep]:
        """The finished steps of a run still under way (a paused replay), numbered as they
        will be when it ends: a call not finished yet (the one a pause holds, another
        thread's) keeps its reserved number, so a later call never shows in its place; the
        slots of withdrawn calls (retried) are closed up, as `numbered` closes them at the end."""
        with self._lock:
            steps: list[AnyStep] = []
            number = 0
            for index, slot in enumerate(self.steps, start=1):
                if slot is None and index in self._withdrawn:
                    continue
                number += 1
                if slot is not None:
                    steps.append(
                        slot if slot.step == number else slot.model_copy(update={"step": number})
                    )
            return steps

    def withdraw(self, ticket: Ticket) -> None:
        """Forget a call that will be retried (the slot stays empty and is skipped)."""
        with self._lock:
            self.steps[ticket.number - 1] = None
            self._withdrawn.add(ticket.number)
            self._open.pop(ticket.number, None)
            self._open_lanes.pop(ticket.number, None)

    def close_open(self) -> None:
        """The run ended: a call begun and not finished (cancelled, or still running in
        another thread) becomes a step with a CancelledError and no answer, in the place
        where it began; replay gives such a call no answer either. A stream the agent
        left unread is recorded first, as far as it came (closed early)."""
        for end in list(self.unended.values()):
            end()
        with self._lock:
            for number, (kind, request) in sorted(self._open.items()):
                if self.steps[number - 1] is None and number not in self._withdrawn:
                    self.steps[number - 1] = self._refused_step(
                        kind,
                        request,
                        number,
                        _CANCELLED_MESSAGE,
                        reason=CANCELLED,
                        lane=self._open_lanes.get(number),
                    )
            self._open.clear()
            self._open_lanes.clear()

    def learn_credentials(self, headers: Any) -> None:
        """The credentials a request sends in its headers (`Authorization: Bearer ...`,
        `x-api-key`, `api-key`) that no rule hides by their shape (a gateway's token, an
        Azure key), hidden wherever the run writes them later: a gateway's error body
        that names the key it refused. A key the rules know keeps their placeholder
        (`<redacted:openai-key>`), as goldens recorded before have it."""
        learned = self.redactor.learned
        if learned is None:
            return
        for name, value in headers.items():
            label = key_label(name)
            if label is None or not isinstance(value, str):
                continue
            secret = value.split()[-1] if value.strip() else ""  # after a scheme (Bearer)
            if len(secret) < LEARN_MIN or secret in learned.values:
                continue
            if not self.redactor.hides(secret):
                learned.learn(secret, f"<redacted:{label}>")

    # -- the ports ----------------------------------------------------------------------
    def begin(
        self,
        kind: str,
        request: dict[str, Any],
        *,
        side_effects: bool = False,
        as_sent: bool = False,
        as_modified: Callable[[], dict[str, Any]] | None = None,
    ) -> Ticket:
        """Reserve a step number and decide: served from the tape, or live.

        An LLM request gets the request-level modifications applied where they are in
        force, unless `as_sent` says it already is the request as it goes out (an
        `@opswald.llm` function gets only those it has a parameter for, and its step
        records just those). In a fork at a step the request is matched as the agent made
        it, and they apply from the call that matches golden step N (or a later one) on:
        the ticket says so (`modified`), and carries the request as it goes out.
        `before_step` listeners see the request as it goes out: with the modifications
        where they apply (`as_modified` makes it for a request `as_sent`), also at the
        call that matches golden step N, where the fork starts."""
        called = time.perf_counter()  # before matching (a divergence's diff takes a while)
        modifies = kind == "llm_call" and bool(self.request_modifications)
        modified = modifies and self.requests_modified
        sent = request
        if modified and not as_sent:
            sent = apply_request_modifications(request, self.request_modifications)
        if self.fork_at is None:  # matched as it goes out: the fork is where they change it
            request = sent
        reserved: int | None = None
        if self.listeners:  # the step's number is reserved first: calls from threads that
            with self._lock:  # begin at once each see their own
                reserved = len(self.steps) + 1
                self.steps.append(None)
            shown = sent
            starts = modifies and not modified and self.fork_pending
            # (a step modification that answers the call sends nothing: the request stands)
            answered = any(_MODIFIED_STEP_TYPE.get(key) == kind for key in self.step_modifications)
            if starts and not answered and self._is_fork_target(kind, request):
                shown = (
                    as_modified()
                    if as_modified is not None
                    else apply_request_modifications(request, self.request_modifications)
                )
            elif modified and as_sent and as_modified is not None:
                shown = as_modified()
            name = shown.get("tool") or shown.get("model")
            info = StepInfo(number=reserved, type=kind, name=name, request=shown)
            self.emit("before_step", info)
        with self._lock:
            if reserved is None:
                number = len(self.steps) + 1
                self.steps.append(None)
            else:
                number = reserved
            served: AnyStep | None = None
            if kind == "user_input":
                self._user_input_calls += 1
            if modifies and not modified and self.fork_at is not None:
                self._note_agent_applied(request, number)
            if not self.live and self.tape is not None:
                matching = time.perf_counter()
                match = (
                    self.tape.tool_call(request["tool"], self.redactor(request["input"]), number)
                    if kind == "tool_call"
                    else self.tape.next_call(kind, request, number)
                )
                # matching (and diffing a divergence) is our time, not the agent's
                self.clock.served_wall_ms += (time.perf_counter() - matching) * 1000
                if match.finding is not None:
                    if match.finding not in self.findings:  # concurrent calls, one reason
                        self._add_divergence(match.finding)
                    if self.policy not in ("update", "fork"):
                        # the call the agent made stays in the actual session, unanswered,
                        # so a saved actual and the viewer show what was sent instead
                        self.steps[number - 1] = self._refused_step(
                            kind,
                            request,
                            number,
                            match.finding.message,
                            attributes=stop_attributes(match.finding),
                            lane=self.lane(),
                        )
                        raise ReplayDivergence(match.finding)
                    self._go_live(number, match)
                elif (
                    self.fork_at is not None
                    and match.step is not None
                    and match.step.step >= self.fork_at
                ):  # golden step N, or a later one that started first: the fork starts here
                    self._go_live(number, match)
                    self.requests_modified = bool(self.request_modifications)
                    if match.step is self.fork_target:
                        served = self._fork_here(match.step, number)
                else:
                    served = match.step
            elif self.diverged_in is not None and self.tape is not None and kind != "user_input":
                # an update went live at a call of a concurrency region: a call of another
                # branch in flight with it that is unchanged is served as recorded, so the
                # update writes it as it was (the divergence did not touch that branch)
                served = self.tape.concurrent_with(
                    self.diverged_in,
                    request.get("tool") if kind == "tool_call" else None,
                    self.redactor(request["input"]) if kind == "tool_call" else request,
                    sibling=self._sibling_of_diverged(),
                )
            elif self.fork_pending and self.live and self._is_fork_target(kind, request):
                # the run went live before golden step N (a later call of its burst started
                # first, or an earlier call diverged): the call that matches step N still
                # gets the step modifications, and the request-level ones from here on
                assert self.fork_target is not None
                served = self._fork_here(self.fork_target, number)
            if modifies and not modified and self.requests_modified and served is None:
                modified = True  # in force from this call on (a served one went nowhere)
                if not as_sent:
                    sent = apply_request_modifications(request, self.request_modifications)
            if served is None and side_effects and self._blocks_side_effects():
                finding = Finding(
                    kind="side_effect",
                    message=f"{request.get('tool')} has side effects and would run live",
                    step=number,
                    step_type="tool_call",
                    name=request.get("tool"),
                    suggestion=side_effect_hint(
                        self.surface, "stub" if self.golden is None else self.policy
                    ),
                )
                self.findings.append(finding)
                # the call stays in the actual session, unanswered, so a saved actual and
                # the viewer show the arguments it would have run with
                self.steps[number - 1] = self._refused_step(
                    kind,
                    request,
                    number,
                    finding.message,
                    reason="SideEffectBlocked",
                    lane=self.lane(),
                )
                raise SideEffectBlocked(finding)
            self._open[number] = (kind, request)
            lane = self._open_lanes[number] = (
                self.lane(served)
                if served is not None
                else self.lane(self._replaced_here(number), replaced=True)
            )
            if self._guessed:
                flow = self._current_flow()
                if flow in self._guessed:
                    self._guessed_calls.setdefault(flow, []).append(number)
            if number == self.fork_step and self.diverged_in is not None:
                self.diverged_flow = self._current_flow()  # set for it by `lane` now
            if served is None or self._lanes_anew:
                self._lane_begun.setdefault(lane, []).append(called)
            return Ticket(
                number=number,
                served=served,
                started=time.perf_counter(),
                request=sent,
                modified=modified,
                lane=lane,
            )

    def _replaced_here(self, number: int) -> AnyStep | None:
        """The golden step that the call of the run's step `number`, which went live at a
        changed request or other arguments, was compared with (its lane is the call's)."""
        finding = self.divergence
        if (
            self.fork_step != number
            or finding is None
            or finding.kind != "mismatch"
            or self.golden is None
            or finding.step is None
            or not 0 < finding.step <= len(self.golden.step_list)
        ):
            return None
        return self.golden.step_list[finding.step - 1]

    def lane(self, served: AnyStep | None = None, *, replaced: bool = False) -> int:
        """The lane of the flow making a call (`_flow`): a number for each, given in the
        order they first make one (a step's `lane`). A call answered from the golden
        (`served`; or the golden call that a changed call replaces) is in its recorded
        lane, and its flow goes on in that lane: so an update writes the calls it makes
        live after a divergence in the lanes the recorded ones have, also when a pool's
        thread runs another branch than when recorded. A flow whose first call runs live
        takes the golden's one lane that no other has taken, when one alone is left (a
        second changed branch), else a new number. A changed call (`replaced`) does not
        take the lane of the golden call it replaces while another flow of the run is in
        that lane (a branch an update adds, compared with the call its starter makes after
        the gather, is not its starter), nor when its flow has a lane already, but for a
        pool's thread (the starter's call after a gather that lost a branch, compared with
        that branch's call). Called under the lock."""
        flow, starter = self._flow()
        free = self._lanes_free
        if free is None:
            free = self._lanes_free = set()
            if self.golden is not None and self.tape is not None:
                free.update(s.lane for s in self.golden.step_list if s.lane is not None)
                self._lane_top = max(free, default=0)
        recorded = served.lane if served is not None else None
        if recorded is not None and replaced:
            held = self._lanes.get(flow)
            if (
                held is not None and held != recorded and not _pooled(flow, self._flow_starter)
            ) or any(lane == recorded and other is not flow for other, lane in self._lanes.items()):
                recorded = None  # its own lane, or a new one
        if recorded is not None:
            if self._guessed:
                self._unguess(recorded, flow)
            if flow not in self._lanes:
                if replaced and not _pooled(flow, self._flow_starter):
                    self._guessed[flow] = recorded  # a changed branch, or one the golden lacks
                if self.policy == "update" and isinstance(flow, asyncio.Task):
                    # what its starter waits on as it ends: an update writes a branch it
                    # adds into the region of the tasks of the same gather only
                    self._watch(recorded, flow, starter)
            self._lanes[flow] = recorded
            free.discard(recorded)
            if recorded > self._lane_top:
                self._lane_top = recorded
            return recorded
        lane = self._lanes.get(flow)
        if lane is None:
            if len(free) == 1:  # the one branch of the golden not seen yet
                lane = free.pop()
                if not _pooled(flow, self._flow_starter):
                    self._guessed[flow] = lane
            else:
                lane = self._lane_top = self._lane_top + 1
                self._started_by(lane, flow, starter)
            self._lanes[flow] = lane
        return lane

    def _unguess(self, lane: int, flow: object) -> None:
        """A served call of `flow` has `lane`, which another flow took as the golden's one
        lane left when its first call ran live: that flow was a branch the golden does not
        have (an update that added one), and goes on in a new lane, its calls so far too.
        Called under the lock."""
        for other, guessed in list(self._guessed.items()):
            if guessed != lane or other is flow or self._lanes.get(other) != lane:
                continue
            del self._guessed[other]
            moved = self._lane_top = self._lane_top + 1
            self._lanes[other] = moved
            for number in self._guessed_calls.pop(other, ()):
                self._relaned[number] = moved
                if number in self._open_lanes:
                    self._open_lanes[number] = moved
            if lane in self._lane_begun:  # the live calls of the lane so far were its
                self._lane_begun[moved] = self._lane_begun.pop(lane)
            self._started_by(moved, other, self._flow_starter.get(other))

    def _flow(self) -> tuple[object, object | None]:
        """The flow of control making a call, and the flow whose context it started
        with (None: not known). An asyncio task is a flow (it starts with its starter's
        context). In a thread: the run's own thread is one; code a thread runs in a context
        copied from another flow (`asyncio.to_thread`, an executor that copies contexts)
        is a flow of its own for that run, started by that flow; a thread that started
        with no context of the run's (a pool's) is one flow for all it runs. `LANE` holds
        the flow a context was last set for, which the flows it starts inherit."""
        owner = lane_owner()
        held = LANE.get()
        if held is owner or isinstance(held, OutsideFlow):
            return held, None
        if not isinstance(owner, threading.Thread):  # a task: set for those it starts
            LANE.set(owner)
            self._flow_starter[owner] = held
            return owner, held
        if held is not None and self._flow_threads.get(held) is owner:
            return held, None  # set for this run of this thread before
        flow = _Flow()
        self._flow_threads[flow] = owner
        self._flow_starter[flow] = held
        LANE.set(flow)
        return flow, held

    def _sibling_of_diverged(self) -> bool:
        """Whether the flow making a call now is another than the one whose call an update
        diverged at, started by the same flow as it (two tasks of a gather, two runs sent
        to threads by one flow): not one that came after it in the agent's order."""
        flow, held = self._current_flow(), LANE.get()
        diverged = self.diverged_flow
        if flow is not None and flow is diverged:
            return False
        if flow is None or (held is not flow and flow not in self._flow_starter):
            starter = held  # its first call: the flow its context was last set for started it
        else:
            starter = self._flow_starter.get(flow)  # None: the run's own (no starter)
        if starter is None or starter is not self._flow_starter.get(diverged):
            return False
        # tasks of one event loop (each `asyncio.run` of a sync agent starts a loop and a
        # task of its own, one after the other)
        loop_of = getattr(flow, "get_loop", None)
        other_loop = getattr(diverged, "get_loop", None)
        return loop_of is None or other_loop is None or loop_of() is other_loop()

    def _current_flow(self) -> object | None:
        """The flow `_flow` names for a call made now, without setting anything: None for
        a thread's run that has made no call yet (a flow of its own)."""
        owner = lane_owner()
        held = LANE.get()
        if held is owner or isinstance(held, OutsideFlow):
            return held
        if not isinstance(owner, threading.Thread):
            return owner
        if held is not None and self._flow_threads.get(held) is owner:
            return held
        return None

    def _started_by(self, lane: int, flow: object, starter: object | None) -> None:
        """Note what started a new lane's flow, for `waited_parents`: a task's end is
        timed (it is waited for when its starter's next call comes as it ends)."""
        if starter is not None:
            self._lane_starter[lane] = starter
        if isinstance(flow, asyncio.Task):
            self._task_lanes.add(lane)
            self._watch(lane, flow, starter)

    def _watch(self, lane: int, task: asyncio.Task[Any], starter: object | None) -> None:
        """Whether a task's starter waits for it (`_waits_for`), seen at its first call
        (a starter awaiting it, or a gather of it, is suspended there until it ends: a
        starter awaiting the task itself may have moved on by the time its end is seen)
        and at its end (a task group's starter reaches its end later), and when it
        ended."""
        self._waited(lane, task, starter)
        task.add_done_callback(partial(self._task_ended, lane, starter=starter))

    def _task_ended(self, lane: int, task: asyncio.Task[Any], *, starter: object | None) -> None:
        """A task's end (a done callback: a starter waiting for it through a gather or a
        task group has not moved on yet, as the callbacks that wake it run after this
        one)."""
        self._lane_ended[lane] = time.perf_counter()
        self._waited(lane, task, starter)

    def _waited(self, lane: int, task: asyncio.Task[Any], starter: object | None) -> None:
        """Whether `task`'s starter waits for it (`waited_on`, `waited_parents`), and with
        which other tasks a wait of the loop takes it (`waited_together`): its starter's
        wait, else that of the task of the loop that waits for it (a task that made no
        call of its own has no flow: the tasks it gathers have its starter's)."""
        on = _waits_for(starter, task) if isinstance(starter, asyncio.Task) else None
        waiter: object | None = starter if on is not None else None
        if starter is not None:
            self._beside(task, starter, on)
        if on is None:
            waiter, on = _waited_by_any(task, self._waiters)
            if waiter is not None and waiter not in self._waiters:
                self._waiters.append(waiter)  # asked first next time (a gather's others)
        if on is None:
            return
        kept = self._waits.get(id(on))
        if kept is None:  # a gather's children once, not once for each of them
            kept = self._waits[id(on)] = (on, set(_waited_with(on)))
        kept[1].add(task)
        if waiter is starter and lane not in self._lane_awaited:
            self._lane_awaited.add(lane)
            self.waited_on[lane] = id(on)
            self._waited_on_kept.append(on)  # alive for the run: its id names it alone

    def _beside(self, task: asyncio.Task[Any], starter: object, on: object) -> None:
        """The tasks that ran together with `task`, though awaited one at a time (`[await
        t for t in tasks]`, `asyncio.as_completed`): those of its loop alive at its first
        call, and at its end while its starter still waits for it alone (suspended there,
        the starter started them before it waited: so a task that ended before the others
        began is taken too). The starter is a task, or the flow of the run's thread for
        tasks started by a task that makes no call of its own (which has their starter's
        flow, so a task that waits for them is not one of them). Kept as (starter, task, the
        others alive), for `waited_together` to join those its starter started. At its end
        a starter that no longer waits for it may have started the next one: not looked at
        then. Tasks started one after the other, each awaited before the next starts, are
        never alive together. A loop seen with more than `_BESIDE_MAX` tasks is not looked
        at again in the run: each look is one pass over every task the loop has not freed,
        ended ones too (the run keeps those that made calls), so once the loop had many,
        every look would cost as much (a gather of thousands costs one pass, not one per
        task)."""
        loop = task.get_loop()
        if loop in self._crowded or (id(task) in self._beside_seen and on is not task):
            return
        self._beside_seen.add(id(task))
        try:
            alive = asyncio.all_tasks(loop)
        except RuntimeError:  # the loop is gone
            return
        if len(alive) > _BESIDE_MAX:
            self._crowded.append(loop)
            return
        others: list[object] = [
            t for t in alive if t is not task and t is not starter and not _waiting_for(t, task)
        ]
        if others:
            self._alive_beside.append((starter, task, others))

    def waited_parents(self) -> dict[int, int]:
        """{lane: the lane whose flow started it and waited for it}, of the lanes this run
        made. A thread's run in a context copied from its starter (`asyncio.to_thread`, an
        executor that copies contexts, as LangChain's tools run) is waited for: its end is
        not seen, and a framework's own work after its last call takes longer than a
        window would allow. A task is when its starter's next call after its end came as
        soon as the last of the tasks it started that had ended by then did (it awaited
        them: a task awaited, a gather, `asyncio.wait_for`), not later (it worked on while
        they ran in the background); the first call of a thread's run it started next
        counts as its next call (a gather, then `asyncio.to_thread`). `tape._lane_regions`
        keeps such a lane's calls in order with its starter's when its starter made no call
        while it ran."""
        children: dict[int, list[int]] = {}
        end_of: dict[int, float] = {}
        ended_by: dict[int, list[float]] = {}  # by starter: when its tasks ended
        out: dict[int, int] = {}
        handed: dict[int, list[float]] = {}  # by starter: when its threads' runs began
        for lane, starter in self._lane_starter.items():
            parent = self._lanes.get(starter)
            if parent is None or parent == lane:
                continue
            if lane not in self._task_lanes:  # a thread's run, awaited
                out[lane] = parent
                if self._lane_begun.get(lane):
                    handed.setdefault(parent, []).append(min(self._lane_begun[lane]))
                continue
            ended = self._lane_ended.get(lane)
            if ended is None:
                continue  # a task still running at the end was not waited for
            ended_by.setdefault(parent, []).append(ended)
            if lane in self._lane_awaited:  # its starter was waiting for it as it ended
                out[lane] = parent
                continue
            end_of[lane] = ended
            children.setdefault(parent, []).append(lane)
        for parent, lanes in children.items():
            begun = sorted([*self._lane_begun.get(parent, ()), *handed.get(parent, ())])
            ends = sorted(ended_by[parent])  # of all its tasks (one awaited last, too)
            for lane in lanes:
                ended = end_of[lane]
                k = bisect_left(begun, ended - _WAITED_S)
                if k == len(begun):
                    continue  # the starter made no call after it
                nxt = begun[k]  # the starter's next call: did it come as one of them ended?
                last = ends[bisect_right(ends, nxt + _WAITED_S) - 1]
                if last >= ended - _WAITED_S and abs(nxt - last) <= _WAITED_S:
                    out[lane] = parent
        return out

    def waited_together(self) -> list[list[int]]:
        """The lanes of tasks a wait took together (one gather, task group or
        `asyncio.wait` of more than one, however many times it was entered: a loop of
        `asyncio.wait(..., return_when=FIRST_COMPLETED)` waits for fewer each time), each
        list in lane order: `metadata.lane_gathers`; and tasks awaited one at a time that
        ran together (`_beside`). A task awaited alone (`await task`, `asyncio.wait_for`)
        after the one before ended is in none."""
        waits = [[id(task) for task in tasks] for _, tasks in self._waits.values()]
        for starter, task, alive in self._alive_beside:
            # of the tasks alive beside it, those its starter started (not another flow's)
            kept = [t for t in (task, *alive) if self._flow_starter.get(t) is starter]
            waits.append([id(t) for t in kept])
        seen = {k for ids in waits for k in ids}
        lane_of = {id(flow): lane for flow, lane in self._lanes.items() if id(flow) in seen}
        groups = ([lane_of[k] for k in ids if k in lane_of] for ids in merged_gathers(waits, seen))
        return merged_gathers(groups, set(lane_of.values()))

    def answer_exact(
        self, kind: str, request: dict[str, Any], decode: Callable[[Any], Any] | None
    ) -> Any:
        """The fast path of replay, in one call: when the call is the next recorded one,
        field for field, finish its step and return (a copy of) the recorded answer;
        otherwise MISS, and nothing happened.

        `request` may still hold the agent's own objects: it is only compared, never kept
        (on MISS the caller copies it and goes through `begin`). Goldens hold redacted
        data, so a request equal to a recorded one holds no secret.
        """
        if (
            self.live
            or self.tape is None
            or self.fork_at is not None
            or (kind == "llm_call" and self.request_modifications)
        ):
            return MISS
        with self._lock:
            # asked again under the lock: a concurrent call may have gone live (diverged)
            # since, and a call that starts after the divergence runs live
            if self.live:
                return MISS
            matching = time.perf_counter()
            served = self.tape.exact(kind, request)
            self.clock.served_wall_ms += (time.perf_counter() - matching) * 1000
            if served is None:  # matching is our time, not the agent's
                return MISS
            number = len(self.steps) + 1
            step = served if served.step == number else served.model_copy(update={"step": number})
            if served.lane is not None:  # a golden with lanes (concurrency)
                self.lane(served)
            elif self._lanes_anew:
                lane = self.lane()
                self._lane_begun.setdefault(lane, []).append(matching)
                step = step.model_copy(update={"lane": lane})
            if not self.listeners:  # what `finish` does, without taking the lock again
                self.steps.append(step)
                self.served[number] = served
                self.clock.served.append(served)
                return self._answer(served, decode)
            self.steps.append(None)
        name = request.get("tool") or request.get("model")
        info = StepInfo(number=number, type=kind, name=name, request=plain_copy(request))
        self.emit("before_step", info)
        self.finish(Ticket(number=number, served=served, started=time.perf_counter()), step)
        return self._answer(served, decode)

    def _refused_step(
        self,
        kind: str,
        request: dict[str, Any],
        number: int,
        message: str,
        reason: str = "ReplayDivergence",
        attributes: dict[str, Any] | None = None,
        lane: int | None = None,
    ) -> AnyStep | None:
        """The refused call as a step of the actual session: what the agent sent, no
        answer, and why it was refused (a divergence, a blocked side effect, a call the run
        ended before it finished) as its error; a divergence's error keeps the golden step
        it stopped at (`attributes`: `sessiondiff.stop_attributes`)."""
        error = ErrorInfo(
            type=reason,
            message=self.redactor(message),
            attributes=self.redactor(attributes) if attributes else None,
        )
        stamp = _now()
        if kind == "llm_call":
            return LLMCallStep(
                step=number,
                timestamp=stamp,
                lane=lane,
                provider=request.get("provider"),
                api=request.get("api"),
                model=request.get("model"),
                input=LLMInput.model_validate(self.redactor(request.get("input") or {})),
                error=error,
            )
        if kind == "tool_call":
            return ToolCallStep(
                step=number,
                timestamp=stamp,
                lane=lane,
                tool=str(request.get("tool")),
                input=self.redactor(request.get("input")),
                error=error,
            )
        return None

    def _note_agent_applied(self, request: dict[str, Any], number: int) -> None:
        """Note the request-level modifications that the request of the run's step `number`,
        made before opswald applies them, already carries: the agent applied them."""
        for key, value in self.request_modifications.items():
            if key not in self.agent_applied and carries(request, key, value):
                self.agent_applied[key] = number

    def _add_divergence(self, finding: Finding) -> None:
        """A call's divergence, as a finding; one compared with the same golden step as a
        divergence found before it (calls made at the same time, such as the branches of a
        gather that came where the golden has a call made before them) is said in that
        one's hint rather than as a finding of its own, which would tell the same story
        once per branch. Called under the lock."""
        first = self.divergence
        flow = self._current_flow()
        if first is None:
            self._divergence_flow = flow
        if (
            first is None
            or flow is None
            or flow is self._divergence_flow  # made after it, by the same thread or task
            or first.kind != "mismatch"
            or finding.kind != "mismatch"
            or (first.step, first.step_type, first.message)
            != (finding.step, finding.step_type, finding.message)
        ):
            self.findings.append(finding)
            return
        sent = next((d.actual for d in finding.differences), MISSING)
        if not self._folded:
            self._folded_hint = first.suggestion
        self._folded.append(short_repr(sent) if sent is not MISSING else "")
        shown = ", ".join(value for value in self._folded if value)
        count = len(self._folded)
        more = (
            f"{'another call' if count == 1 else f'{count} other calls'} made at the same "
            f"time {'differs' if count == 1 else 'differ'} from step {first.step} too"
            + (f" ({shown})" if shown else "")
        )
        hint = f"{self._folded_hint}; {more}" if self._folded_hint else more
        self.findings[self.findings.index(first)] = replace(first, suggestion=hint)

    def _go_live(self, number: int, match: Match) -> None:
        """The run goes live at its step `number`, where `match` was made."""
        self.live = True
        self.fork_step = number
        if self.fork_at is None:
            finding = match.finding
            if self.policy == "update" and finding is not None and finding.kind == "mismatch":
                self.diverged_in = finding.step
            return
        self._fork_left = match
        if match.step is not None:
            self.fork_golden_step = match.step.step
        elif match.finding is not None and match.finding.kind == "mismatch":
            self.fork_golden_step = match.finding.step

    def _fork_here(self, step: AnyStep, number: int) -> AnyStep | None:
        """The call of the run's step `number` is golden step N (`step`): the fork's
        point. What answers it: the recorded step modified, or None (it runs live)."""
        self.fork_applied = number
        self.fork_pending = False
        self.requests_modified = bool(self.request_modifications)
        if self.fork_golden_step is None or step.step < self.fork_golden_step:
            self.fork_golden_step = step.step
        if not self.step_modifications:
            return None
        return self._modified_step(step, number)

    def fork_point(self) -> tuple[int | None, int | None, int | None]:
        """Where a fork is told to have left the golden: the golden step, the run's step
        that is it, and the run's step the new path is compared from. The golden's call
        the fork starts at (step N; a fork at a snapshot, the first call after it) and the
        call that matched it, when the run reached it (even after going live on an earlier
        call); else where the run went live."""
        target = self.fork_target
        if self.fork_applied is None or self.fork_at is None or target is None:
            return self.fork_golden_step, self.fork_step, self.fork_step
        start = self.fork_applied
        left = self._fork_left
        if (
            self.fork_step is not None
            and self.fork_step < start
            and left is not None
            and left.step is not None
            and left.step.step > target.step
        ):  # a later call of a burst started first: the path is compared from it
            start = self.fork_step
        return target.step, self.fork_applied, start

    def _is_fork_target(self, kind: str, request: dict[str, Any]) -> bool:
        """Whether a live call matches golden step N, as replay would match it there:
        a model call on its normalised request, a tool call on its name and arguments
        (under `expect.tool_calls.args`), a user input by its place among them."""
        target = self.fork_target
        if target is None or target.type != kind or self.tape is None:
            return False
        if isinstance(target, UserInputStep):
            steps = self.tape.golden.step_list
            place = sum(1 for s in steps if s.type == "user_input" and s.step <= target.step)
            return self._user_input_calls == place
        if kind == "tool_call":
            return self.tape.answers(target, request["tool"], self.redactor(request["input"]))
        return self.tape.answers(target, None, request)

    def unreached_fork(self) -> Finding | None:
        """A failing finding when a fork at step N ended without reaching golden step N:
        no call of the run matched it, so the run is no fork at that step, and what the
        fork was to change from there (its step and request-level modifications) was never
        applied (never in silence)."""
        if not self.fork_pending or self.fork_at is None:
            return None
        target, tape = self.fork_target, self.tape
        unused = tape.unused() if tape is not None else []
        if target is None and tape is not None and not unused:
            return None  # a fork at the golden's last snapshot: every call was served
        n = self.fork_at
        at = self.fork_golden
        what = describe(at) if at is not None else "a step"
        call = target if target is not None else (unused[0] if unused else None)
        if call is None or call is at:
            that, matched = "that call", f"and no call after it matched step {n}"
        elif target is not None:  # a fork at a snapshot starts at the golden's first call after it
            that = f"its step {call.step} ({describe(call)})"
            matched = (
                f"and no call after it matched step {call.step}, the golden's first call "
                f"after step {n}"
            )
        else:  # a snapshot no call follows: the run had to make every call before it
            that = f"its step {call.step} ({describe(call)}), a call before step {n}"
            matched = (
                f"before the golden's step {n}, and no call of the golden comes after step {n}"
            )
        left = self._fork_left
        if tape is None:
            where = "the run was live from its start, so no call of it was matched with it"
        elif self.fork_step is None:
            used = tape.used
            after = f" after the golden's step {max(used)}" if used else ""
            where = f"the agent ended{after} without making {that}"
        elif left is not None and left.step is not None:
            where = (
                f"the run went live at its step {self.fork_step}, at the call that matches "
                f"the golden's step {left.step.step} ({describe(left.step)}), {matched}"
            )
        else:
            why = left.finding.message if left is not None and left.finding else ""
            where = (
                f"the run went live at its step {self.fork_step}, where it left the golden"
                + (f" ({why})" if why else "")
                + f", {matched}"
            )
        # what the fork was to change from step N on, and never did; a request-level key
        # the agent's own requests carried was applied, by the agent, from the wrong step
        mods = [*self.step_modifications]
        own: list[str] = []
        if not self.requests_modified:
            for key in REQUEST_KEYS:
                if key in self.agent_applied:
                    own.append(key)
                elif key in self.request_modifications:
                    mods.append(key)
        told = []
        if mods:
            told.append(f"{', '.join(mods)} {'was' if len(mods) == 1 else 'were'} not applied")
        if own:
            first = min(self.agent_applied[key] for key in own)
            told.append(
                f"the agent applied {', '.join(own)} itself, from its step {first} (before "
                f"the fork's step {n}, where opswald applies {'it' if len(own) == 1 else 'them'})"
            )
        with_mods = ", with its modifications," if mods or own else ""
        suggestion = (
            f"a fork at step {n} replays the calls before the golden's step {n} as recorded "
            f"and runs live{with_mods} from there; fork at a step this run reaches, or record "
            "the golden again with this agent"
        )
        if own:
            suggestion = (
                f"opswald applies {', '.join(own)} to the model calls from the fork's step on; "
                f"an agent that applies {'it' if len(own) == 1 else 'them'} from its first call "
                f"(from its `modifications`) changes the calls before step {n} too: leave "
                f"{', '.join(own)} to opswald, or run without {FORK_AT[self.surface]} to change "
                "every call"
            )
        return Finding(
            kind="fork_not_reached",
            message=f"the fork never reached step {n} of the golden ({what}): {where}"
            + "".join(f"; {part}" for part in told),
            step=n,
            step_type=at.type if at is not None else None,
            name=step_name(at) if at is not None else None,
            suggestion=suggestion,
        )

    def _modified_step(self, step: AnyStep, number: int) -> AnyStep | None:
        """The recorded step at the fork point, answering what the modifications say."""
        mods = self.step_modifications
        if isinstance(step, UserInputStep) and "user_input" in mods:
            return self._fork_answer(step.model_copy(update={"content": mods["user_input"]}))
        if isinstance(step, ToolCallStep) and "tool_result" in mods:
            answer = step.model_copy(update={"output": mods["tool_result"], "error": None})
            return self._fork_answer(answer)
        if isinstance(step, LLMCallStep):
            output = step.output or LLMOutput()
            if "selected_tool" in mods or "tool_params" in mods:
                old = (output.tool_calls or [{}])[0]
                call = _forked_call(old, number, mods)
                output = LLMOutput(content=None, tool_calls=[call], finish_reason="tool_calls")
            elif "response" in mods:
                output = LLMOutput(content=mods["response"], finish_reason="stop")
            else:
                return None
            # the stored response stays in its shape, with the new answer written into it
            # (what the agent gets, and what a saved actual shows); an SDK's wire body is
            # rebuilt by its codec instead
            raw = step.raw
            if step.api is None and isinstance(raw, dict):
                raw = responses.patched(raw, output)
            # the recorded stream's pieces were of the recorded answer, not this one
            attributes = without_stream_chunks(step.attributes)
            return self._fork_answer(
                step.model_copy(update={"output": output, "raw": raw, "attributes": attributes})
            )
        return None

    def _fork_answer(self, step: AnyStep) -> AnyStep:
        """The modified step: the agent gets it as given (the user's own value); `finish`
        keeps it redacted, as it keeps what a live call answered."""
        self._modified = step
        return step

    def _redacted_answer(self, step: AnyStep) -> AnyStep:
        """A served step whose answer came from a step modification, with its secrets
        replaced: what the run's steps, a saved actual and the hooks see."""
        if isinstance(step, UserInputStep):
            return step.model_copy(update={"content": self.redactor(to_jsonable(step.content))})
        if isinstance(step, ToolCallStep):
            return step.model_copy(update={"output": self.redactor(to_jsonable(step.output))})
        if isinstance(step, LLMCallStep):
            output = self._redacted_output(step.output)
            return step.model_copy(update={"output": output, "raw": self.redactor(step.raw)})
        return step

    def _blocks_side_effects(self) -> bool:
        """Whether a side-effect tool's live call is refused: in a run that is not a
        recording (those pass `block_side_effects=False`) — an update, a fork, a live
        run, an update recording a stub — unless allowed."""
        continuing = self.policy in ("update", "fork", "live")
        return self.block_side_effects and continuing and not self.allow_side_effects

    def emit(self, event: str, *args: Any) -> None:
        """Call `event` on every listener that has it. Their time is not the agent's: hooks,
        breakpoints (a pause), the progress a run under --opswald-timeout reports to its
        parent process are left out of the session's duration."""
        began = time.perf_counter()
        try:
            for listener in self.listeners:
                method = getattr(listener, event, None)
                if method is not None:
                    method(self, *args)
        finally:
            spent = (time.perf_counter() - began) * 1000
            with self._lock:
                self.clock.served_wall_ms += spent

    def finish(self, ticket: Ticket, step: AnyStep) -> None:
        served = ticket.served
        if served is not None and served is self._modified:
            step, served = self._redacted_answer(step), self._redacted_answer(served)
        if served is not None and self._lanes_anew and step.lane is None and ticket.lane:
            step = step.model_copy(update={"lane": ticket.lane})
        with self._lock:
            self._open.pop(ticket.number, None)
            self._open_lanes.pop(ticket.number, None)
            first = self.steps[ticket.number - 1] is None
            self.steps[ticket.number - 1] = step
            if served is not None and first:
                self.served[ticket.number] = served
                self.clock.served.append(served)
                self.clock.served_wall_ms += (time.perf_counter() - ticket.started) * 1000
        if self.listeners:
            self.emit("after_step", step)
            if step.error is not None:
                self.emit("on_error", step, step.error)

    def elapsed_ms(self, ticket: Ticket) -> float:
        return round((time.perf_counter() - ticket.started) * 1000, 3)

    # -- step builders --------------------------------------------------------------------
    def llm_step(
        self,
        ticket: Ticket,
        request: dict[str, Any],
        *,
        output: LLMOutput | None,
        usage: Usage | None,
        cost: float | None,
        cost_source: str | None,
        raw: Any,
        error: BaseException | None,
        error_info: ErrorInfo | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> LLMCallStep:
        """Finish an LLM call: the served step with the actual request, or a new step."""
        served = ticket.served
        request = ticket.request or request
        actual_input = _reused_input(served, request["input"]) or LLMInput(
            **self.redactor(request["input"])
        )
        if isinstance(served, LLMCallStep):
            step = served.model_copy(update={"step": ticket.number, "input": actual_input})
        else:
            step = LLMCallStep(
                step=ticket.number,
                timestamp=_began(ticket),
                duration_ms=self.elapsed_ms(ticket),
                lane=ticket.lane,
                provider=request.get("provider"),
                api=request.get("api"),
                model=request.get("model"),
                input=actual_input,
                output=self._redacted_output(output),
                usage=usage,
                cost=cost,
                cost_source=cost_source,
                raw=self.redactor(raw),
                error=error_info or self.error_of(error),
                attributes=self.redactor(attributes) if attributes is not None else None,
            )
        self.finish(ticket, step)
        return step

    def _redacted_output(self, output: LLMOutput | None) -> LLMOutput | None:
        """What the model answered, with secrets in its text or tool-call arguments
        replaced, as everything else written is (the same rules as `raw`, so the two
        still agree and replay serves the stored wire body)."""
        if output is None:
            return None
        data = output.model_dump(exclude_unset=True)
        clean = self.redactor(data)
        return output if clean == data else LLMOutput.model_validate(clean)

    def llm_answer(
        self, ticket: Ticket, request: dict[str, Any], decode: Callable[[Any], Any] | None
    ) -> Any:
        """Finish a served `@opswald.llm` call and give the agent its answer: a copy of the
        recorded response (the agent may change what it is given; the golden stays)."""
        assert isinstance(ticket.served, LLMCallStep)
        self.llm_served(ticket, request)
        return self._answer(ticket.served, decode)

    def tool_answer(
        self, ticket: Ticket, tool: str, args: Any, decode: Callable[[Any], Any] | None
    ) -> Any:
        """Finish a served tool call and give the agent a copy of the recorded result."""
        assert isinstance(ticket.served, ToolCallStep)
        self.tool_step(ticket, tool, args, output=None, error=None)
        return self._answer(ticket.served, decode)

    def _answer(self, step: AnyStep, decode: Callable[[Any], Any] | None) -> Any:
        """What a served call gives the agent: the recorded error raised again, or a copy of
        the recorded result (the agent may change what it is given; the golden stays),
        rebuilt by `decode`. A call recorded as cancelled gets no answer: CancelledCall.
        An answer that is not what the function returned when recorded is noted."""
        if step.error is not None:
            if step.error.type == CANCELLED:
                raise CancelledCall()
            raise_recorded(step.error)
        if isinstance(step, ToolCallStep):
            data = plain_copy(step.output)
            if data is None:
                return data
        else:
            assert isinstance(step, LLMCallStep)
            data = plain_copy(responses.serve(step))
            if not isinstance(data, dict):
                return data
        if decode is None or (isinstance(decode, Returns) and decode.adapter() is None):
            answer, rebuilt = data, False  # no annotation to rebuild into: the data
        elif isinstance(decode, Returns):
            back = decode.rebuild(data)
            answer, rebuilt = back.value, back.rebuilt
            if not rebuilt and decode.adapter() is not None:  # it does not validate
                self._retyped(step, answer, f"-> {decode.declared}", back.hidden)
                return answer
            if back.hidden:  # rebuilt with the placeholders recording put in its values
                self._retyped(step, answer, f"-> {decode.declared}", back.hidden, kept=True)
                return answer
        else:
            answer, rebuilt = decode(data), True
        attributes = step.attributes or {}
        returned = attributes.get(RETURNED)
        if returned is not None and not rebuilt:
            # why the annotation is not used: as this run finds it; else as recorded (a
            # decoder replay is not given when there is no annotation it can use)
            said = attributes.get(UNUSABLE)
            unusable = decode.unusable if isinstance(decode, Returns) else said
            self._retyped(step, answer, returned, unusable=str(unusable or ""))
        return answer

    def _retyped(
        self,
        step: AnyStep,
        answer: Any,
        returned: str,
        hidden: tuple[Hidden, ...] = (),
        *,
        kept: bool = False,
        unusable: str = "",
    ) -> None:
        name = step.tool if isinstance(step, ToolCallStep) else step_name(step)
        with self._lock:
            self.retyped.append(
                Retyped(
                    step=step.step,
                    step_type=step.type,
                    name=name or "",
                    returned=returned,
                    given=type_name(answer),
                    hidden=hidden,
                    kept=kept,
                    unusable=unusable,
                )
            )

    def returned(
        self, function: str, value: Any, decode: Callable[[Any], Any] | None
    ) -> tuple[Any, dict[str, Any] | None]:
        """What to record for `value`, the result of `function`, and the step attributes
        that say it is not what replay gives back (None when replay gives it back as it
        was: plain data, or rebuilt by the function's annotation or `decode=`). A result
        replay does not give back is noted once per function; one whose dict keys the
        golden would write alike, or with no data form, is kept as the reason not to write
        it."""
        declared = unusable = ""
        if isinstance(decode, Returns):
            data, rebuilt = decode.encode(value)
            declared, unusable = decode.declared, decode.unusable
            if rebuilt and decode.adapter() is not None:
                self._hidden(function, value, data, decode)
        else:
            data = to_jsonable(value)
            rebuilt = decode is not None or unplain(value) is None  # decode=: theirs to rebuild
        if not (rebuilt and isinstance(decode, Returns)):  # else the annotation's own form
            # `decode=` rebuilds from the data written: a key lost there is lost to it too
            self._formless_kept(function, value)
            self.keys_kept("result", function, value)
        if rebuilt:
            return data, None
        kind = type_name(value)
        if function not in self.return_notes:
            note = return_note(function, value, data, declared, unusable)
            with self._lock:
                self.return_notes.setdefault(function, note)
        return data, {RETURNED: kind, **({UNUSABLE: unusable} if unusable else {})}

    def _hidden(self, function: str, value: Any, data: Any, decode: Returns) -> None:
        """Note once per function where the golden will hold a placeholder in place of a
        value its annotation expects another type for (`api_key: int`, hidden by its
        name): what the first replay hands the agent there."""
        if function in self.return_notes:
            return
        clean = self.redactor(data)
        if clean == data:
            return
        back = decode.rebuild(clean)
        if back.hidden:
            note = hidden_note(function, value, back, decode.declared)
            with self._lock:
                self.return_notes.setdefault(function, note)

    def llm_served(self, ticket: Ticket, request: dict[str, Any]) -> LLMCallStep:
        """Finish a call answered from the golden."""
        return self.llm_step(
            ticket,
            request,
            output=None,
            usage=None,
            cost=None,
            cost_source=None,
            raw=None,
            error=None,
        )

    def llm_failed(
        self,
        ticket: Ticket,
        request: dict[str, Any],
        error: BaseException | None,
        *,
        error_info: ErrorInfo | None = None,
        raw: Any = None,
        attributes: dict[str, Any] | None = None,
    ) -> LLMCallStep:
        """Finish a live call that failed: it raised `error`, or (an HTTP error answer)
        `error_info` with the answer's body as `raw`. No output, usage or cost."""
        return self.llm_step(
            ticket,
            request,
            output=None,
            usage=None,
            cost=None,
            cost_source=None,
            raw=raw,
            error=error,
            error_info=error_info,
            attributes=attributes,
        )

    def tool_step(
        self,
        ticket: Ticket,
        tool: str,
        args: Any,
        *,
        output: Any,
        error: BaseException | None,
        decode: Callable[[Any], Any] | None = None,
    ) -> ToolCallStep:
        """Finish a tool call: served, or run (its result recorded in the form `decode`,
        the function's return type, gives back)."""
        served = ticket.served
        if isinstance(served, ToolCallStep):
            sent = served.input if plainly_equal(args, served.input) else self.redactor(args)
            step = served.model_copy(update={"step": ticket.number, "input": sent})
        else:
            data, attributes = (
                self.returned(tool, output, decode) if error is None else (None, None)
            )
            step = ToolCallStep(
                step=ticket.number,
                timestamp=_began(ticket),
                duration_ms=self.elapsed_ms(ticket),
                lane=ticket.lane,
                tool=tool,
                input=self.redactor(args),
                output=self.redactor(data),
                error=self.error_of(error),
                attributes=attributes,
            )
        self.finish(ticket, step)
        return step

    def error_of(self, error: BaseException | None) -> ErrorInfo | None:
        if error is None:
            return None
        info = error_info(error)
        update: dict[str, Any] = {"message": self.redactor(info.message)}
        if info.args is not None:
            update["args"] = self.redactor(info.args)
        if info.attributes is not None:
            update["attributes"] = self.redactor(info.attributes)
        return info.model_copy(update=update)

    # -- user input and state -----------------------------------------------------------
    def user_input(self, prompt: str | None) -> Any:
        ticket = self.begin("user_input", {"prompt": prompt})
        served = ticket.served
        if isinstance(served, UserInputStep):
            # the recording used one scripted answer per question: so does this run, so
            # that a question asked live after a divergence gets the next one, not the first
            if self._user_inputs is not None:
                next(self._user_inputs, None)
            step = served.model_copy(update={"step": ticket.number})
            self.finish(ticket, step)
            return plain_copy(served.content)  # the agent may change what it is given
        content = self._next_scripted_input(prompt)
        self.finish(
            ticket,
            UserInputStep(
                step=ticket.number,
                timestamp=_began(ticket),
                duration_ms=self.elapsed_ms(ticket),
                lane=ticket.lane,
                description=prompt,
                content=self.redactor(to_jsonable(content)),
            ),
        )
        return content

    def _next_scripted_input(self, prompt: str | None) -> Any:
        if self._user_inputs is not None:
            try:
                return next(self._user_inputs)
            except StopIteration:
                pass
        raise NoUserInput(
            f"the agent asked for user input ({prompt or 'no prompt'}) and none is scripted: "
            "give the golden's input a `user_inputs` list with one answer per question"
        )

    def unrecorded_call(self, method: str, path: str, host: str) -> None:
        """An SDK request to an endpoint opswald does not record (embeddings, files,
        `count_tokens`, ...): in replay nothing can answer it, whatever the host, so the run
        stops there as at a divergence; otherwise it goes out as it is and is noted."""
        what = f"{method.upper()} {path}"
        if self.policy != "replay":
            with self._lock:
                if what not in self.unrecorded:
                    self.unrecorded.append(what)
            return
        with self._lock:
            done = sum(1 for step in self.steps if step is not None)
        when = f"after step {done} of the run" if done else "before any step of the run"
        finding = Finding(
            kind="unrecorded_endpoint",
            message=f"the agent called {what} on {host} ({when}), an endpoint opswald does "
            "not record: replay has no answer for it",
            suggestion=UNRECORDED_HINT,
        )
        with self._lock:
            self.findings.append(finding)
        raise ReplayDivergence(finding)

    def read_past_cut(self, ticket: Ticket) -> None:
        """A served stream that was recorded closed early was asked for more than came:
        the agent may now read it to its end (and got the answer cut short), or only read
        ahead in a task of its own, as it did when recording, before it stopped (the
        OpenAI Agents SDK's cancel, PydanticAI's debounced text). Replay cannot tell the
        two apart, so this is a note, never a failure of its own: a run that changed
        because of it fails on what changed, and then the note says why, and an update
        leaves the golden unwritten (it cannot make up the rest of the answer)."""
        number = ticket.served.step if ticket.served is not None else ticket.number
        finding = Finding(
            kind="read_past_cut",
            step=number,
            message="the agent asked for more of a stream that was recorded closed early "
            "(when recording, the agent stopped reading it): the golden has that answer only "
            "as far as it came; if the agent now reads it to its end, it got it cut short",
            suggestion=f"record the golden again with {RERECORD[self.surface]} for the whole "
            "answer, if the agent now reads that stream to its end (an update cannot make up "
            "the rest of it)",
            failing=False,
        )
        with self._lock:
            if finding not in self.findings:
                self.findings.append(finding)

    def _formless_kept(self, function: str, value: Any) -> None:
        """Remember the first result with no data form (see `formless`): a golden holding
        its repr, which changes every run, would not replay, so it is not written."""
        if self.formless_result is None:
            found = formless(value)
            if found is not None:
                found = found._replace(text=self.redactor(found.text))
                with self._lock:
                    self.formless_result = self.formless_result or (function, found)

    def formless_arguments_kept(self, tool: str, arguments: Any) -> None:
        """Remember the first tool call whose arguments have no data form: the step would
        hold their repr, which changes every run, and never match again."""
        if self.formless_arguments is None:
            found = formless(arguments)
            if found is not None:
                found = found._replace(text=self.redactor(found.text))
                with self._lock:
                    self.formless_arguments = self.formless_arguments or (tool, found)

    def keys_kept(
        self, part: Literal["state", "result", "arguments"], name: str | None, value: Any
    ) -> None:
        """Remember the first value whose dict keys a golden writes alike (see `lost_keys`)
        among what the run records (a snapshot, `name`'s result or arguments): the reason
        a recording or update does not write the golden."""
        if self.lost_keys is None:
            self.keys_lost(part, name, lost_keys(value))

    def keys_lost(
        self,
        part: Literal["state", "result", "arguments"],
        name: str | None,
        found: LostKeys | None,
    ) -> None:
        """`keys_kept` for a `LostKeys` (or None) already found."""
        if found is not None:
            with self._lock:
                self.lost_keys = self.lost_keys or KeysLost(part=part, name=name, found=found)

    def state(self, snapshot: dict[str, Any]) -> None:
        """Record a snapshot (never matched; compared after the run)."""
        self.keys_kept("state", None, snapshot)
        data = self.redactor(to_jsonable(snapshot))
        if self.listeners:
            info = StepInfo(number=len(self.steps) + 1, type="state", name=None, request=data)
            self.emit("before_step", info)
        with self._lock:
            number = len(self.steps) + 1
            step = StateStep(step=number, timestamp=_now(), **data)
            self.steps.append(step)
        if self.listeners:
            self.emit("after_step", step)


def _forked_call(old: dict[str, Any], number: int, mods: dict[str, Any]) -> dict[str, Any]:
    """The tool call a fork's `selected_tool`/`tool_params` make, in the recorded call's
    own shape: `{id, name, arguments}`, or OpenAI's `{id, type, function: {name,
    arguments}}` with arguments as a JSON string when they were one."""
    function = old.get("function")
    if isinstance(function, dict):
        arguments = mods.get("tool_params", function.get("arguments", {}))
        if isinstance(function.get("arguments"), str) and not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        return {
            "id": old.get("id") or f"call_fork_{number}",
            "type": old.get("type", "function"),
            "function": {"name": mods.get("selected_tool", function.get("name")),
                         "arguments": arguments},
        }  # fmt: skip
    return {
        "id": old.get("id") or f"call_fork_{number}",
        "name": mods.get("selected_tool", old.get("name")),
        "arguments": mods.get("tool_params", old.get("arguments", {})),
    }


def _reused_input(served: AnyStep | None, sent: dict[str, Any]) -> LLMInput | None:
    """The recorded input, when the request sent is exactly it (goldens are redacted)."""
    if not isinstance(served, LLMCallStep):
        return None
    recorded = served.input
    same = (
        plainly_equal(sent.get("messages"), recorded.messages)
        and plainly_equal(sent.get("tools"), recorded.tools)
        and plainly_equal(sent.get("params"), recorded.params)
    )
    return recorded if same else None


class _Flow:
    """A flow of control a thread runs in a context copied from another (`Context._flow`)."""

    __slots__ = ()


# a task's starter waited for it when its next call came within this of the task's end
_WAITED_S = 0.001


_BESIDE_MAX = 256
"""The most tasks a loop may have for `Context._beside` to look at them."""


def _waiting_codes() -> tuple[Any, Any]:
    """The code of the coroutines that wait for a task group's tasks to end, and of
    those that wait for tasks they are given (`asyncio.wait`, `asyncio.wait_for`)."""
    group = getattr(getattr(asyncio, "TaskGroup", None), "__aexit__", None)
    given = (getattr(asyncio.tasks, "_wait", None), getattr(asyncio.tasks, "wait_for", None))
    return (
        getattr(group, "__code__", None),
        frozenset(f.__code__ for f in given if f is not None),
    )


_GROUP_EXIT, _WAITS_GIVEN = _waiting_codes()


def _waits_for(starter: object, task: asyncio.Task[Any]) -> object | None:
    """What `starter`, suspended as `task` ends, waits on when it is waiting for it: the
    task itself (awaited), a gather of it, the coroutine of `asyncio.wait` or
    `asyncio.wait_for` of it, or the end of the task group it runs in (the group's
    `__aexit__`); else None. (A starter waiting for something else, a sleep or its own
    I/O, worked on while the task ran in the background; one that waits through other
    code is left to the timing `Context.waited_parents` reads.)"""
    waiter = getattr(starter, "_fut_waiter", None)  # the future a suspended task waits on
    if waiter is None:
        return None
    if waiter is task or task in getattr(waiter, "_children", ()):  # asyncio.gather's
        awaited: object = waiter
        return awaited
    get_coro = getattr(starter, "get_coro", None)
    coro = get_coro() if get_coro is not None else None
    for _ in range(64):  # down the chain of coroutines it awaits
        code = getattr(coro, "cr_code", None)
        if code is None:
            return None
        if code is _GROUP_EXIT or code in _WAITS_GIVEN:
            found = getattr(coro, "cr_frame", None)
            names = found.f_locals if found is not None else {}
            if code is _GROUP_EXIT:
                group: object = names.get("self", coro)  # the task group
                return group
            given: object = names.get("fs")  # `asyncio.wait`'s tasks, a set
            alone: object = names.get("fut")  # `asyncio.wait_for`'s task
            if alone is task:
                return alone
            if task in (names.get("fs") or ()):
                return given
            return None
        coro = getattr(coro, "cr_await", None)
    return None


def _waiting_for(other: asyncio.Task[Any], task: asyncio.Task[Any]) -> bool:
    """Whether `other` waits for `task`, or for another task (one of them, ended or not):
    the task that started them (one that made no call of its own yet has their
    starter's flow), not one that ran beside them."""
    waiting = getattr(other, "_fut_waiter", None)
    return isinstance(waiting, asyncio.Task) or _waits_for(other, task) is not None


def _waited_by_any(
    task: asyncio.Task[Any], first: Sequence[object] = ()
) -> tuple[object | None, object | None]:
    """The task of `task`'s loop that is waiting for `task`, and what it waits on
    (`_waits_for`); else (None, None). The tasks `first` are asked first (those found
    before: one waits for all of a gather's tasks)."""
    for other in first:
        on = _waits_for(other, task) if other is not task else None
        if on is not None:
            return other, on
    try:
        tasks = asyncio.all_tasks(task.get_loop())
    except RuntimeError:  # the loop is gone
        return None, None
    for other in tasks:
        if other is not task:
            on = _waits_for(other, task)
            if on is not None:
                return other, on
    return None, None


def _waited_with(on: object) -> Iterable[object]:
    """The tasks a wait (`_waits_for`'s) takes together: a gather's children, a task
    group's tasks still running, `asyncio.wait`'s set; none for a task awaited itself."""
    children = getattr(on, "_children", None)  # asyncio.gather's
    if children is None:
        children = getattr(on, "_tasks", None)  # a TaskGroup's (those not done yet)
    if children is None and isinstance(on, set | frozenset):  # asyncio.wait's
        children = on
    return list(children) if children is not None else ()


def _pooled(flow: object, starters: Mapping[object, object | None]) -> bool:
    """Whether `flow` is a pool's thread (no context of the run's), which runs one
    branch after another in one lane: the lane is not a branch's."""
    return isinstance(flow, _Flow) and starters.get(flow) is None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _began(ticket: Ticket) -> str:
    """When a call began, as a step's `timestamp` (a span's start, as imported goldens
    have it; its end is `timestamp + duration_ms`)."""
    began = datetime.now(UTC) - timedelta(seconds=time.perf_counter() - ticket.started)
    stamp = began.isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


__all__ = [
    "CancelledCall",
    "Context",
    "HookFailed",
    "NoUserInput",
    "ReplayDivergence",
    "ReplayedToolError",
    "SideEffectBlocked",
    "activate",
    "current",
    "describe",
    "fork_problem",
    "raise_recorded",
]
