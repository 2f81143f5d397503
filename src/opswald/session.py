"""The golden file schema, version 1 (pydantic lives at the file boundary only)."""

from __future__ import annotations

import builtins
import difflib
import math
import re
from collections.abc import Iterable, Sequence, Set
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from opswald import paths

SCHEMA_VERSION: Literal[1] = 1
SCHEMA_URL = "https://opswald.dev/schema/golden-v1.json"


def newer_schema_message(version: int) -> str:
    """What a golden written by a newer pytest-opswald is told, by every command alike."""
    return (
        f"schema_version {version} is newer than this pytest-opswald reads "
        f"({SCHEMA_VERSION}): upgrade pytest-opswald"
    )


def is_newer_schema(version: Any) -> bool:
    """True for a version number (not a bool) above `SCHEMA_VERSION`."""
    return isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION


FORK_METADATA = "fork"
"""The metadata key of a fork's actual session: `step` (where it went live) and the step
`modifications` applied there."""
LANE_PARENTS = "lane_parents"
"""The metadata key of a session with lanes (`lane` on its steps): for lanes 1, 2, ... in
turn, the lane that started it and waited for it (`[0, 1, 0]`: lane 2 was a task or a
thread's run that lane 1 started and waited for), 0 for none (a branch started beside
others, a thread of a pool). Such a lane's calls came in order with its starter's."""


LANE_GATHERS = "lane_gathers"
"""The metadata key of a session with lanes whose tasks were awaited together: a list of
lists, each the lanes of one `asyncio.gather`, task group or `asyncio.wait` that waited for
more than one task (`[[2, 3, 4, 5, 6]]`). Their calls came in the order the event loop
gave them, even where their runs did not overlap (waves of a gather under a semaphore):
they are one concurrency region. Lanes awaited one at a time are in no list."""


MAX_LANE = 1_000_000
"""The highest lane number a golden may hold (lanes are numbered from 1 in the order their
threads or tasks first made a call; `lane_parents` holds one entry for each)."""


def lane_parents_problem(value: Any) -> str | None:
    """What is wrong with `metadata.lane_parents` as a golden holds it, or None (None
    itself is none)."""
    if value is None:
        return None
    shape = (
        "a list with, for lanes 1, 2, ... in turn, the lane that started it and waited for "
        "it (0 for none)"
    )
    if not isinstance(value, list):
        kind = "a mapping" if isinstance(value, dict) else f"{value!r}"[:40]
        return f"lane_parents must be {shape}, not {kind}"
    if len(value) > MAX_LANE:
        return f"lane_parents has {len(value)} entries: a golden has at most {MAX_LANE} lanes"
    for lane, parent in enumerate(value, start=1):
        if type(parent) is not int or not 0 <= parent <= len(value):
            return (
                f"lane_parents must be {shape}: entry {lane} is {parent!r}, not a lane "
                f"number from 0 to {len(value)}"
            )
        if parent == lane:
            return f"lane_parents: lane {lane} cannot have started itself (entry {lane} is {lane})"
    return None


def lane_parents(value: Any) -> dict[int, int]:
    """`metadata.lane_parents` as {lane: the lane that started it and waited for it};
    empty where it is not a list (written by hand: it only refines which calls may come
    in another order, and what is not a lane number there counts as none)."""
    if not isinstance(value, list):
        return {}
    return {
        lane: parent
        for lane, parent in enumerate(value, start=1)
        if type(parent) is int and parent >= 1 and parent != lane
    }


def lane_gathers_problem(value: Any) -> str | None:
    """What is wrong with `metadata.lane_gathers` as a golden holds it, or None (None
    itself is none)."""
    if value is None:
        return None
    shape = "a list of lists of lane numbers (the lanes of one gather each)"
    if not isinstance(value, list) or not all(isinstance(group, list) for group in value):
        kind = "a mapping" if isinstance(value, dict) else f"{value!r}"[:40]
        return f"lane_gathers must be {shape}, not {kind}"
    if sum(len(group) for group in value) > MAX_LANE:
        return f"lane_gathers names more than {MAX_LANE} lanes: a golden has at most that many"
    for n, group in enumerate(value, start=1):
        for lane in group:
            if type(lane) is not int or not 1 <= lane <= MAX_LANE:
                return (
                    f"lane_gathers must be {shape}: gather {n} holds {lane!r}, not a lane "
                    f"number from 1 to {MAX_LANE}"
                )
    return None


def lane_gathers(value: Any) -> list[list[int]]:
    """`metadata.lane_gathers` as lists of lanes awaited together; what is not a list of
    lane numbers counts as none (it only widens which calls may come in another order)."""
    if not isinstance(value, list):
        return []
    return [
        [lane for lane in group if type(lane) is int and lane >= 1]
        for group in value
        if isinstance(group, list)
    ]


def merged_gathers(groups: Iterable[Iterable[int]], lanes: Set[int]) -> list[list[int]]:
    """Lists of lanes awaited together, as `metadata.lane_gathers` writes them: lists that
    share a lane made one, of the `lanes` a session's steps have, two or more each."""
    joined: dict[int, int] = {}

    def root(lane: int) -> int:
        while joined.setdefault(lane, lane) != lane:
            joined[lane] = joined[joined[lane]]
            lane = joined[lane]
        return lane

    for group in groups:
        kept = [lane for lane in group if lane in lanes]
        for lane in kept[1:]:
            joined[root(lane)] = root(kept[0])
    by_root: dict[int, list[int]] = {}
    for lane in joined:
        by_root.setdefault(root(lane), []).append(lane)
    return sorted(sorted(group) for group in by_root.values() if len(group) > 1)


def lane_parents_list(parents: dict[int, int], lanes: int) -> list[int]:
    """{lane: parent} as `metadata.lane_parents` writes it, for lanes 1..`lanes`."""
    return [parents.get(lane, 0) for lane in range(1, lanes + 1)]


VARIANT_METADATA = "variant"
"""The metadata key of a session recorded under a variant (`--opswald-variant NAME:...`):
its name, beside the `modifications` it ran with."""
STREAM_CHUNKS = "stream_chunks"
"""The `attributes` key of a streamed `llm_call`: for each streamed text, named by its path
in `raw` (`choices[0].message.content`), the lengths of the pieces it came in (0: an empty
piece), so that replay cuts it the same way; for a Chat Completions stream with `n` > 1,
under `choices`, the order its choices' chunks came in (`"0,1*12"`) when it was not one
choice after the other, and under a choice's `choices[0].message.role`, `with first piece`
when its role came in the chunk of its first piece rather than in one of its own (so too
under a tool call's `choices[0].message.tool_calls[0]` when its head came with the first
piece of its arguments, `with every piece` under its `choices[0].message.tool_calls[0].id`
and `.type` when those came again with every later piece, and `with last piece` under
`choices[0].finish_reason` when the finish reason came in the chunk of the last piece;
`empty` under `choices[0].message.content` when the role chunk said `content: ""` and no
text followed; `usage: with last finish` when the usage came in the chunk of the last
finish rather than in one of its own; `whole in one chunk` under
`choices[0].message.tool_calls` when all its tool calls came whole in one;
`system_fingerprint: absent` when no chunk had that key). Other shapes a stream came in
likewise (the codecs name them): a Responses item's `output[0]: added and done only` and
`output[0].added: whole` / `empty`, `sequence_number: last`; an Anthropic block's
`content[0]: with first piece` / `with input`, `ping: none`.
Delivery, not behaviour: never compared, and ignored when it does not add up to the
text."""

STREAM_ERROR = "stream_error"
"""The `attributes` key of a streamed `llm_call` that broke off with an error event (the
API answered HTTP 200, then reported an overload or a server error inside the stream):
the event's data as it came (JSON as data, else its text). The step's `output` is what
came before it, its `error` a `StreamError`; replay sends what came, then this event."""
STREAM_CUT = "stream_cut"
"""The `attributes` key of a streamed `llm_call` that ended before its last event: `closed
early` (the agent stopped reading and closed the stream, or left it unread when the run
ended) or `connection failed` (the connection broke mid-stream; the step's `error` is the
exception the HTTP library raised, and `transport_error` is set). The step's `output` and
`raw` are what came; its usage and cost are unknown (null). Replay sends what came, its
last content block (choice, output item) left open, then ends the stream — or raises the
recorded error there."""
STREAM_CLOSED_EARLY = "closed early"
STREAM_CONNECTION_FAILED = "connection failed"


def cut_short(step: Any) -> str | None:
    """How the stream of an `llm_call` step ended before its last event (STREAM_CUT:
    `closed early`, `connection failed`), else None. Its cost is unknown either way, not
    $0: what the provider counts (and bills) of an answer cut short is not known."""
    attributes = getattr(step, "attributes", None) or {}
    how = attributes.get(STREAM_CUT) if getattr(step, "type", None) == "llm_call" else None
    return how if isinstance(how, str) else None


STREAM_USAGE = "stream_usage"
"""The `attributes` key of a streamed Anthropic `llm_call`: the usage object of its
`message_start` and of its `message_delta` event as each came (the step's usage is the
two merged), replayed as they came while they add up to the step's usage."""


HTTP_HEADERS = "http_headers"
"""The `attributes` key of an `llm_call` recorded from an SDK's HTTP answer: the response
headers replay sends again (the request id, `x-should-retry`). Delivery, as STREAM_CHUNKS
is: never compared, and not in syrupy snapshots."""
_DELIVERY = (STREAM_CHUNKS, HTTP_HEADERS)


def without_stream_chunks(attributes: dict[str, Any] | None) -> dict[str, Any] | None:
    """Step attributes without how the answer was delivered (STREAM_CHUNKS, HTTP_HEADERS):
    for an answer that is no longer the one recorded, and where sessions are compared;
    None when nothing else is left."""
    if not attributes or not any(key in attributes for key in _DELIVERY):
        return attributes
    return {k: v for k, v in attributes.items() if k not in _DELIVERY} or None


_BIG = 2**63  # ints beyond this are refused (pydantic's float bounds check would overflow)
NonNegative = (
    Annotated[int, Field(strict=True, ge=0, le=_BIG)] | Annotated[float, Field(strict=True, ge=0)]
)
Positive = (
    Annotated[int, Field(strict=True, gt=0, le=_BIG)]
    | Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
)
Fraction = (
    Annotated[int, Field(strict=True, ge=0, le=1)]
    | Annotated[float, Field(strict=True, ge=0, le=1)]
)
"""Measured or hand-written numbers, kept as written (`timeout: 5` stays 5, not 5.0) so that
loading and saving a golden never churns its text."""

StepType = Literal["user_input", "llm_call", "tool_call", "state"]
CALL_TYPES: frozenset[str] = frozenset({"user_input", "llm_call", "tool_call"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ErrorInfo(_Model):
    """An exception as recorded: its type name and message, the module of a type that is
    not builtin, and what else it carried that JSON holds, so that replay raises it again
    with them: its `args` when they are not just the message (`OSError(2, 'No such file or
    directory')`, `KeyError(42)`), and its public `attributes` (the instance's own
    `__dict__`: `code: 402`). Both are left out when there is nothing to keep."""

    type: str
    message: str = ""
    module: str | None = None
    args: list[Any] | None = None
    attributes: dict[str, Any] | None = None

    def text(self) -> str:
        """`KeyError: 'Book'`: the error as Python prints it (`Type: str(exc)`). The message
        is recorded as the exception's argument (or its `args` are), so that it can be raised
        again; a builtin type is rebuilt from it to print it as Python does."""
        message = self.message
        builtin = getattr(builtins, self.type, None)
        if self.module is None and isinstance(builtin, type) and issubclass(builtin, Exception):
            args = self.args if self.args is not None else [self.message]
            try:
                message = str(builtin(*args))
            except Exception:  # a type whose constructor wants other arguments
                pass
        return f"{self.type}: {message}" if message else self.type


class Usage(_Model):
    """Token usage, normalised the OpenTelemetry way (input includes cached tokens)."""

    input_tokens: int | None = Field(
        default=None, validation_alias=AliasChoices("input_tokens", "prompt_tokens")
    )
    output_tokens: int | None = Field(
        default=None, validation_alias=AliasChoices("output_tokens", "completion_tokens")
    )
    total_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    # of cache_creation_tokens, those written to the cache for an hour (Anthropic's
    # `ttl: 1h`, billed at their own rate); absent when none were, or not known
    cache_creation_1h_tokens: int | None = None
    reasoning_tokens: int | None = None

    def total(self) -> int:
        if self.total_tokens is not None:
            return self.total_tokens
        return (self.input_tokens or 0) + (self.output_tokens or 0)


class LLMInput(_Model):
    messages: list[Any] | None = None
    tools: list[Any] | None = None
    params: dict[str, Any] | None = None


class LLMOutput(_Model):
    content: Any = None
    tool_calls: list[Any] | None = None
    finish_reason: str | None = None


def _check_paths(values: Sequence[str]) -> list[str]:
    """Paths and globs must parse (`input.messages[*].content`)."""
    for value in values:
        paths.parse(value)
    return list(values)


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return pattern


class _Step(_Model):
    step: int = Field(ge=1, strict=True)

    @property
    def number(self) -> int:
        """The step's number, as step hooks and `Replay.steps` call it (`step.number`)."""
        return self.step

    description: str | None = None
    timestamp: str | None = None
    duration_ms: NonNegative | None = None
    # which thread or asyncio task made the call, numbered in the order they first made
    # one; written only when a session's calls came from more than one (concurrency)
    lane: int | None = Field(default=None, ge=1, le=MAX_LANE, strict=True)
    error: ErrorInfo | None = None
    attributes: dict[str, Any] | None = None


# the fields every step has (a snapshot's other named parts are what it holds)
STEP_FIELDS: frozenset[str] = frozenset({"type", *_Step.model_fields})


class UserInputStep(_Step):
    type: Literal["user_input"] = "user_input"
    content: Any = None


class LLMCallStep(_Step):
    type: Literal["llm_call"] = "llm_call"
    provider: str | None = None
    api: str | None = None
    model: str | None = None
    input: LLMInput = Field(default_factory=LLMInput)
    output: LLMOutput | None = None
    usage: Usage | None = None
    cost: NonNegative | None = None
    cost_source: str | None = None
    raw: Any = None


class ToolCallStep(_Step):
    type: Literal["tool_call"] = "tool_call"
    tool: str
    call_id: str | None = None
    input: Any = None
    output: Any = None


class StateStep(_Step):
    """A snapshot; named parts beyond memory/variables/context are kept as extras."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    type: Literal["state"] = "state"
    memory: Any = None
    variables: Any = None
    context: Any = None


Step = Annotated[
    UserInputStep | LLMCallStep | ToolCallStep | StateStep, Field(discriminator="type")
]


class OutputExpect(_Model):
    match: Literal[
        "exact",
        "normalized",
        "contains",
        "regex",
        "json_subset",
        "ignore",
        "similar",
        "embedding",
        "judge",
    ] = "exact"
    value: Any = None
    ignore_paths: list[str] = Field(default_factory=list)
    threshold: Fraction | None = None
    rubric: str | None = None

    _paths = field_validator("ignore_paths")(_check_paths)

    @field_validator("value")
    @classmethod
    def _regex_compiles(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("match") == "regex":
            if not isinstance(value, str):
                raise ValueError("match: regex needs the pattern, a string, as its value")
            _check_regex(value)
        return value

    @model_validator(mode="after")
    def _regex_has_a_pattern(self) -> OutputExpect:
        if self.match == "regex" and "value" not in self.model_fields_set:
            raise ValueError("match: regex needs `value:`, the pattern the output must match")
        return self


class ToolOverride(_Model):
    args: Literal["exact", "subset", "ignore"] | None = None
    ignore_args: list[str] = Field(default_factory=list)

    _paths = field_validator("ignore_args")(_check_paths)


class ToolCallsExpect(_Model):
    order: Literal["exact", "in_order", "any_order", "subset", "superset"] = "exact"
    args: Literal["exact", "subset", "ignore"] = "exact"
    ignore_args: list[str] = Field(default_factory=list)
    tools: dict[str, ToolOverride] = Field(default_factory=dict)

    _paths = field_validator("ignore_args")(_check_paths)


class NormalizeRule(_Model):
    pattern: str
    replace: str = "<normalized>"

    _regex = field_validator("pattern")(_check_regex)


class RequestsExpect(_Model):
    ignore: list[str] = Field(default_factory=list)
    normalize: list[NormalizeRule] = Field(default_factory=list)

    _paths = field_validator("ignore")(_check_paths)

    @model_validator(mode="before")
    @classmethod
    def _normalize_shorthand(cls, data: Any) -> Any:
        # `normalize: {"\\d{4}-\\d\\d-\\d\\d": "<date>"}` is accepted as a shorthand.
        if isinstance(data, dict) and isinstance(data.get("normalize"), dict):
            data = {
                **data,
                "normalize": [{"pattern": k, "replace": v} for k, v in data["normalize"].items()],
            }
        return data


class StateExpect(_Model):
    mode: Literal["report", "exact", "paths"] = "report"
    paths: list[str] = Field(default_factory=list)

    _paths = field_validator("paths")(_check_paths)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            # as written: report, exact or a list of paths (`paths` alone is no setting)
            if data not in ("report", "exact"):
                close = difflib.get_close_matches(data, ["report", "exact"], n=1)
                mean = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"{STATE_FORMS}, not {data!r}{mean}")
            return {"mode": data}
        if isinstance(data, list):
            return {"mode": "paths", "paths": data}
        return data

    @model_validator(mode="after")
    def _paths_given(self) -> StateExpect:
        if self.mode == "paths" and not self.paths:
            raise ValueError(f"{STATE_FORMS}: no paths are listed")
        return self


STATE_FORMS = "expect.state is report, exact or a list of paths"


# ASCII digits only: `\d` (and float()) also read ١٢ and other scripts' digits
BUDGET_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"  # 0.05, .5, 1e-6
BUDGET_ABSOLUTE = re.compile(rf"^(?:<=)?\s*\$?\s*({BUDGET_NUMBER})$")
BUDGET_RELATIVE = re.compile(rf"^([+-])\s*({BUDGET_NUMBER})\s*%$")
BUDGET_FORMS = (
    'a number (0.05, "<=0.05", "$0.05") or a change relative to the golden ("+20%", "-10%")'
)


def _check_budget(value: Any) -> Any:
    """A budget as written: a number of 0 or more, or a text the budget check can read;
    anything else is an error at load, with its line, not a failure at run time."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"a budget is {BUDGET_FORMS}")
    if isinstance(value, str):
        text = value.strip()
        relative = BUDGET_RELATIVE.match(text)
        number = relative or BUDGET_ABSOLUTE.match(text)
        if number is None:
            raise ValueError(f"cannot read {value!r} as a budget: write {BUDGET_FORMS}")
        if not _finite(number.group(number.lastindex or 0)):
            raise ValueError(f"{value!r} is {_TOO_BIG}")
        if relative and relative.group(1) == "-" and float(relative.group(2)) > 100:
            raise ValueError(
                f"{value!r} would be a limit below 0: a relative budget is -100% at the least"
            )
        return value
    if value != value or value < 0:  # NaN is no number of 0 or more either
        raise ValueError("a budget is a number of 0 or more")
    if not _finite(value):
        raise ValueError(f"a number {_TOO_BIG}")
    return value


# 1e400 reads as an infinite limit, and +1e999% of a recorded 0 as NaN: no one means them
_TOO_BIG = "too big for a budget: a limit is a finite number"


def _finite(number: float | int | str) -> bool:
    """Whether a budget's number reads as a finite float (an int of 400 digits does not)."""
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


# What editors check a budget against: the forms `_check_budget` reads (it also refuses a
# relative budget below -100%, which a pattern does not say).
BUDGET_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {
            "type": "string",
            "pattern": (rf"^\s*(?:(?:<=)?\s*\$?\s*{BUDGET_NUMBER}|[+-]\s*{BUDGET_NUMBER}\s*%)\s*$"),
        },
    ],
    "description": BUDGET_FORMS,
}

Budget = Annotated[float | int | str, BeforeValidator(_check_budget), WithJsonSchema(BUDGET_SCHEMA)]


class BudgetsExpect(_Model):
    cost: Budget | None = None
    input_tokens: Budget | None = None
    output_tokens: Budget | None = None
    total_tokens: Budget | None = None
    duration_ms: Budget | None = None
    llm_calls: Budget | None = None
    tool_calls: Budget | None = None
    steps: Budget | None = None


class ErrorExpect(_Model):
    """How a golden recorded with an error is judged: `same` (type and message), `type`,
    `any` (any error), or `fixed` (the run must now succeed)."""

    match: Literal["same", "type", "any", "fixed"] = "same"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"match": data} if isinstance(data, str) else data


class Expect(_Model):
    output: OutputExpect = Field(default_factory=OutputExpect)
    tool_calls: ToolCallsExpect = Field(default_factory=ToolCallsExpect)
    requests: RequestsExpect = Field(default_factory=RequestsExpect)
    state: StateExpect = Field(default_factory=StateExpect)
    budgets: BudgetsExpect = Field(default_factory=BudgetsExpect)
    error: ErrorExpect = Field(default_factory=ErrorExpect)

    @model_validator(mode="before")
    @classmethod
    def _output_shorthand(cls, data: Any) -> Any:
        # `output: contains` is short for `output: {match: contains}`.
        if isinstance(data, dict) and isinstance(data.get("output"), str):
            data = {**data, "output": {"match": data["output"]}}
        return data


class Note(_Model):
    text: str
    step: int | None = None


_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


# pytest's own markers change how a test runs (a golden tagged `xfail` would pass failing)
RESERVED_TAGS = frozenset(
    {"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "golden"}
    | {"tryfirst", "trylast"}
)


_RESERVED_HOW = {
    "skip": "skip the golden",
    "skipif": "skip the golden",
    "xfail": "expect the golden to fail",
}


def _check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise ValueError(
            f"tag {tag!r} cannot be a pytest marker: use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit"
        )
    if tag == "golden":
        raise ValueError(
            "tag 'golden' is opswald's own marker (`@pytest.mark.golden(path)` replays a "
            "golden in a test); choose another name"
        )
    if tag in RESERVED_TAGS:
        how = _RESERVED_HOW.get(tag, "change how the golden is collected or run")
        instead = (
            "list the fixtures the golden uses under fixtures:"
            if tag == "usefixtures"
            else "choose another name"
        )
        raise ValueError(f"tag {tag!r} is one of pytest's own markers and would {how}; {instead}")
    return tag


Tag = Annotated[
    str, AfterValidator(_check_tag), WithJsonSchema({"type": "string", "pattern": _TAG.pattern})
]
"""A tag is also a pytest marker: letters, digits, `_`, `-`, `.`; not starting with `_`."""


def modification_problem(key: str, value: Any) -> str | None:
    """What is wrong with a modification's value, in words (`model must be text, a model
    name; got int 42`), or None. Only the keys whose type opswald relies on are checked;
    other keys are the adapter's to read. Checked for every source: the golden's
    `modifications:`, a variant, the marker, --opswald-modify, the Python API."""
    kind = type(value).__name__
    if key in ("model", "selected_tool") and not (isinstance(value, str) and value.strip()):
        what = "a model name" if key == "model" else "a tool name"
        if isinstance(value, str):
            return f"{key} must be {what}; got an empty text"
        # a number read from YAML (model=42) was meant as text; a mapping or null was not
        number = isinstance(value, int | float) and not isinstance(value, bool)
        quote = f" (quote it: {key}='{value}')" if number else ""
        return f"{key} must be text, {what}; got {kind} {value!r}{quote}"
    if key in ("temperature", "top_p") and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return f"{key} must be a number; got {kind} {value!r}"
    if key in ("max_tokens", "seed") and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{key} must be a whole number; got {kind} {value!r}"
    if key == "tool_params" and not isinstance(value, dict):
        return f"tool_params must be a mapping of the tool's arguments; got {kind} {value!r}"
    return None


MODIFICATION = "modification"
"""The validation error type of a golden's modification of the wrong kind (`model: 42`)."""


def _check_fixture(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(
            f"fixture name {name!r} is not a name a pytest fixture can have: use letters, "
            "digits and '_', not starting with a digit"
        )
    return name


FixtureName = Annotated[
    str,
    AfterValidator(_check_fixture),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}),
]
"""A pytest fixture the golden uses, as `@pytest.mark.usefixtures` names it."""


STEP_NUMBERING = "step_numbering"
"""The validation error type of a step whose `step:` is not its position."""


class Session(_Model):
    """One recorded agent session: a golden file, or the actual session of a run."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str | None = None
    description: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    session_id: str | None = None
    agent: str | None = None
    fixtures: list[FixtureName] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    input: Any = None
    steps: list[Step] | None = None
    output: Any = None
    error: ErrorInfo | None = None
    expect: Expect | None = None
    modifications: dict[str, Any] = Field(default_factory=dict)
    timeout: Positive | None = None
    notes: list[Note] = Field(default_factory=list)
    verdicts: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_number(cls, version: Any) -> Any:
        # a Literal takes True (and 1.0) as 1: `true`/`yes` is no more a version than "1"
        if isinstance(version, bool | float):
            raise PydanticCustomError("literal_error", "Input should be 1")
        return version

    @field_validator("modifications")
    @classmethod
    def _modifications_checked(cls, modifications: dict[str, Any]) -> dict[str, Any]:
        # the engine relies on these keys' types (a model name, a number): a wrong one is
        # an error here, at its line, not a failure of every replay at its first call
        for key, value in modifications.items():
            problem = modification_problem(key, value)
            if problem is not None:
                raise PydanticCustomError(MODIFICATION, "{problem}", {"problem": problem})
        return modifications

    @field_validator("metadata")
    @classmethod
    def _lane_parents_checked(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        problem = lane_parents_problem(metadata.get(LANE_PARENTS))
        if problem is not None:
            raise PydanticCustomError(LANE_PARENTS, "{problem}", {"problem": problem})
        problem = lane_gathers_problem(metadata.get(LANE_GATHERS))
        if problem is not None:
            raise PydanticCustomError(LANE_GATHERS, "{problem}", {"problem": problem})
        return metadata

    @field_validator("steps")
    @classmethod
    def _steps_numbered(cls, steps: list[Any] | None) -> list[Any] | None:
        for index, step in enumerate(steps or [], start=1):
            if step.step != index:  # the loader points at the step (its ctx: position)
                raise PydanticCustomError(
                    STEP_NUMBERING,
                    "steps must be numbered 1, 2, 3, ... in order; step at position "
                    "{position} says step: {says}",
                    {"position": index, "says": step.step},
                )
        return steps

    @property
    def is_stub(self) -> bool:
        """No `steps` key and no `output` key: not recorded yet."""
        return "steps" not in self.model_fields_set and "output" not in self.model_fields_set

    @property
    def recorded_by_opswald(self) -> bool:
        """Recorded (or updated) by opswald, not written by hand or imported from a trace:
        it writes every field it saw (an absent one means "none"), and prices the usage it
        records where it can."""
        return "recorded_with" in self.metadata and "imported" not in self.metadata

    @property
    def expectations(self) -> Expect:
        return self.expect or Expect()

    @property
    def step_list(self) -> list[UserInputStep | LLMCallStep | ToolCallStep | StateStep]:
        return list(self.steps or [])


AnyStep = UserInputStep | LLMCallStep | ToolCallStep | StateStep


def placed_notes(session: Session) -> tuple[dict[int, list[str]], list[str]]:
    """The session's notes on each of its steps, and its notes on the whole session: those
    without a step, and those on a step it does not have (step 9 of 7, step 0: `validate`
    takes them), which say so — `step 9 (the golden has steps 1..7): ...` — since `show`
    and the viewer have no step to show them at."""
    total = len(session.step_list)
    have = f"the golden has steps 1..{total}" if total else "the golden has no steps"
    on_steps: dict[int, list[str]] = {}
    loose: list[str] = []
    for note in session.notes:
        if note.step is None:
            loose.append(note.text)
        elif 1 <= note.step <= total:
            on_steps.setdefault(note.step, []).append(note.text)
        else:
            loose.append(f"step {note.step} ({have}): {note.text}")
    return on_steps, loose


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a golden file (printed by `opswald schema`)."""
    schema = Session.model_json_schema(by_alias=False)
    _allow_shorthands(schema["$defs"])
    schema["$id"] = SCHEMA_URL
    schema["title"] = "opswald golden session (schema v1)"
    return schema


def _allow_shorthands(defs: dict[str, Any]) -> None:
    """The schema also admits what `load` accepts beyond the long forms."""

    def either(name: str, *alternatives: dict[str, Any]) -> None:
        long_form = defs[name]
        defs[name] = {"anyOf": [long_form, *alternatives], "title": long_form.get("title", name)}

    modes = {"type": "string"}
    either(
        "StateExpect",
        {"type": "string", "enum": ["report", "exact"]},
        {"type": "array", "items": {"type": "string"}},
    )
    either("ErrorExpect", {"type": "string", "enum": ["same", "type", "any", "fixed"]})
    either(
        "OutputExpect",
        {**modes, "enum": list(get_args(OutputExpect.model_fields["match"].annotation))},
    )
    normalize = defs["RequestsExpect"]["properties"]["normalize"]
    defs["RequestsExpect"]["properties"]["normalize"] = {
        "anyOf": [normalize, {"type": "object", "additionalProperties": {"type": "string"}}]
    }
    usage = defs["Usage"]["properties"]
    for alias, field in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
        usage[alias] = {**usage[field], "description": f"accepted for {field}"}
