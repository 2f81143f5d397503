"""Langfuse trace exports -> goldens, one per trace.

Accepted input: a trace with its observations (the public API's trace-with-details shape,
`GET /api/public/traces/{id}`), a list of such traces, a page `{"data": [...]}` of traces
with details, and observations on their own — a page of the observations API (v1 or v2,
`{"data": [...], "meta": ...}`) or a list — grouped by `traceId`. Keys may be camelCase (the
wire form) or snake_case (a Python `model_dump()` without aliases). Input and output given
as JSON text (the v2 observations API returns them so) are parsed.

The walk mirrors what the engine records: a `GENERATION` is one `llm_call` step and a `TOOL`
one `tool_call` step, and observations inside them are not steps of their own. A root
`AGENT` names the session's agent and gives its input and output. `SPAN`, `CHAIN`, `AGENT`
(below the root), `RETRIEVER`, `EVALUATOR`, `GUARDRAIL`, `EVENT`, `EMBEDDING` and unknown
types are not calls: they are counted as skipped, by name, and their children are walked.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from opswald.importers import ImportFormatError, ImportResult
from opswald.importers._messages import (
    as_dict,
    assistant_output,
    count,
    duration_ms,
    error_info,
    is_chat_messages,
    marker_tags,
    number,
    openai_messages,
    other_format,
    parse_json_text,
    parse_time,
    plain,
    provider_api,
    request_params,
    timestamp,
    tool_result,
)
from opswald.importers.otlp import failed_call
from opswald.session import AnyStep, LLMCallStep, LLMInput, LLMOutput, Session, ToolCallStep, Usage

SOURCE = "langfuse"

_STRUCTURE = frozenset(
    {"id", "traceId", "parentObservationId", "type", "isRootObservation", "projectId"}
)
_SESSION_LEVEL = frozenset({"traceName", "tags", "release", "userId", "sessionId"})
_GENERATION_FIELDS = frozenset(
    {
        "name",
        "startTime",
        "endTime",
        "latency",
        "input",
        "output",
        "model",
        "modelParameters",
        "usageDetails",
        "usage",
        "costDetails",
        "totalCost",
        "calculatedTotalCost",
        "level",
        "statusMessage",
        "metadata",
    }
)
_TOOL_FIELDS = frozenset(
    {"name", "startTime", "endTime", "latency", "input", "output", "level", "statusMessage"}
)
_SKIPPED = {
    "createdAt": "Langfuse bookkeeping",
    "updatedAt": "Langfuse bookkeeping",
    "internalModelId": "Langfuse model match",
    "modelId": "Langfuse model match",
    "inputPrice": "Langfuse price table",
    "outputPrice": "Langfuse price table",
    "totalPrice": "Langfuse price table",
    "calculatedInputCost": "said again by costDetails",
    "calculatedOutputCost": "said again by costDetails",
    "inputUsage": "said again by usageDetails",
    "outputUsage": "said again by usageDetails",
    "totalUsage": "said again by usageDetails",
    "unit": "said again by usageDetails",
    "bookmarked": "Langfuse UI state",
    "public": "Langfuse UI state",
}
# What Langfuse's OpenAI integration writes into modelParameters for a parameter the call
# did not set: those values were not sent.
_OPENAI_INTEGRATION_DEFAULTS: dict[str, Any] = {
    "temperature": 1,
    "top_p": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
}
_CALL_TYPES = ("GENERATION", "TOOL")
_CAMEL = re.compile(r"_([a-z])")


@dataclass
class _Obs:
    data: dict[str, Any]
    where: str
    index: int
    children: list[_Obs] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.data.get("type") or "SPAN").upper()

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.type)

    def order(self) -> tuple[float, int]:
        start = parse_time(self.data.get("startTime"))
        return (start.timestamp() if start else math.inf, self.index)


@dataclass
class _TraceDoc:
    trace: dict[str, Any]
    where: str
    observations: list[_Obs] = field(default_factory=list)


def convert(data: Any) -> ImportResult:
    """Convert a Langfuse export (see the module docstring for the accepted shapes)."""
    result = ImportResult()
    for doc in _traces(data, result):
        result.add(_Trace(doc, result).session(), "no GENERATION or TOOL observation")
    return result


# -- reading --------------------------------------------------------------------------------


def _camel(data: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys in the API's camelCase (`parent_observation_id` -> `parentObservationId`)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = _CAMEL.sub(lambda m: m.group(1).upper(), key) if isinstance(key, str) else key
        if name not in out or value is not None:
            out[name] = value
    return out


def _items(data: Any) -> tuple[list[Any], str]:
    if isinstance(data, list):
        return data, ""
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return data["data"], "data"
    if isinstance(data, dict) and ("observations" in data or _is_observation(_camel(data))):
        return [data], "trace" if "observations" in data else "observation"
    if isinstance(data, dict):
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise ImportFormatError(
            f"not a Langfuse export: an object without observations or data (keys: {keys}); "
            'expected a trace with observations, a list of traces, or a page {"data": [...]}'
            + other_format(data, "langfuse")
        )
    raise ImportFormatError(
        f"not a Langfuse export: a JSON {type(data).__name__}; expected a trace object, "
        "a list, or a page {data: [...]}"
    )


def _is_observation(item: dict[str, Any]) -> bool:
    return isinstance(item.get("type"), str) and ("startTime" in item or "traceId" in item)


def _traces(data: Any, result: ImportResult) -> list[_TraceDoc]:
    """Traces in document order, each with its observations; loose ones grouped by trace."""
    items, base = _items(data)
    docs: dict[str, _TraceDoc] = {}
    seen: set[str] = set()
    for i, raw in enumerate(items):
        where = f"{base}[{i}]" if base in ("", "data") else base
        if not isinstance(raw, dict):
            raise ImportFormatError(
                f"{where}: expected a Langfuse trace or observation object, "
                f"not a {type(raw).__name__}"
            )
        item = _camel(raw)
        if "observations" in item:
            _add_trace(item, where, docs, seen, result)
        elif _is_observation(item):
            trace_id = str(item.get("traceId") or "")
            doc = docs.setdefault(trace_id, _TraceDoc(trace={"id": trace_id or None}, where=where))
            _add_observation(doc, item, where, seen, result)
        else:
            raise ImportFormatError(
                f"{where}: neither a Langfuse trace (no observations) nor an observation "
                "(no type and startTime)" + other_format(raw, "langfuse")
            )
    return list(docs.values())


def _add_trace(
    item: dict[str, Any],
    where: str,
    docs: dict[str, _TraceDoc],
    seen: set[str],
    result: ImportResult,
) -> None:
    observations = item.get("observations")
    if not isinstance(observations, list):
        raise ImportFormatError(f"{where}.observations: expected a list")
    if observations and all(isinstance(o, str) for o in observations):
        result.skipped["trace whose observations are only ids (a trace list page)"] += 1
        result.errors.append(  # not imported: no golden, as for a trace without calls
            f"{where}: trace {item.get('id')} lists observation ids only; export it with "
            "GET /api/public/traces/{id} to import its calls"
        )
        return
    key = str(item.get("id") or where)
    doc = docs.get(key)
    if doc is None or doc.trace.keys() <= {"id"}:  # a trace object beats a stand-in
        doc = docs[key] = _TraceDoc(
            trace=item, where=where, observations=doc.observations if doc else []
        )
    for j, obs in enumerate(observations):
        spot = f"{where}.observations[{j}]"
        if not isinstance(obs, dict):
            raise ImportFormatError(
                f"{spot}: expected an observation object, not a {type(obs).__name__}"
            )
        _add_observation(doc, _camel(obs), spot, seen, result)


def _add_observation(
    doc: _TraceDoc, obs: dict[str, Any], where: str, seen: set[str], result: ImportResult
) -> None:
    if not isinstance(obs.get("type"), str):
        raise ImportFormatError(f"{where}: an observation needs a type (GENERATION, SPAN, ...)")
    key = str(obs.get("id") or where)
    if key in seen:
        result.skipped["observation listed twice (same id)"] += 1
        return
    seen.add(key)
    doc.observations.append(_Obs(data=obs, where=where, index=len(doc.observations)))


def _tree(doc: _TraceDoc, result: ImportResult) -> list[_Obs]:
    """Roots in start order, children attached and ordered."""
    by_id = {str(o.data["id"]): o for o in doc.observations if o.data.get("id") is not None}
    roots: list[_Obs] = []
    for obs in doc.observations:
        parent_id = obs.data.get("parentObservationId")
        parent = by_id.get(str(parent_id)) if parent_id is not None else None
        if parent is not None and parent is not obs:
            parent.children.append(obs)
            continue
        if parent_id is not None and not obs.data.get("isRootObservation"):
            result.warnings.append(
                f"{obs.where}: parent observation {parent_id} is not in the export; "
                f"{obs.name!r} is imported as a top-level observation"
            )
        roots.append(obs)
    for obs in doc.observations:
        obs.children.sort(key=_Obs.order)
    roots.sort(key=_Obs.order)
    stack, reached = list(roots), 0
    while stack:
        reached += 1
        stack.extend(stack.pop().children)
    lost = len(doc.observations) - reached
    if lost:
        result.skipped["observation in a parentObservationId cycle (no root)"] += lost
        result.warnings.append(
            f"{doc.where}: {lost} observation(s) form a parentObservationId cycle and were "
            "not imported"
        )
    return roots


# -- one trace ------------------------------------------------------------------------------


class _Trace:
    """Builds the session of one trace."""

    def __init__(self, doc: _TraceDoc, result: ImportResult) -> None:
        self.doc = doc
        self.result = result
        self.steps: list[AnyStep] = []

    def session(self) -> Session:
        roots = _tree(self.doc, self.result)
        root = roots[0] if len(roots) == 1 else None
        agent = root if root is not None and root.type == "AGENT" else None
        for top in roots:
            self._walk(top, is_root=top is agent)
        trace = self.doc.trace
        context = self._context()
        tags, bad = marker_tags(trace.get("tags") or context.get("tags"), self.result.skipped)
        if bad:
            named = f" (trace {trace.get('id')})" if trace.get("id") else ""
            self.result.warnings.append(
                f"{self.doc.where}{named}: tags that cannot be pytest markers were left out: "
                + ", ".join(repr(t) for t in bad)
            )
        if agent is not None:
            self.result.mapped["AGENT root (session agent, input, output)"] += 1
        error = None
        if root is not None and str(root.data.get("level") or "").upper() == "ERROR":
            error = error_info(root.data.get("statusMessage") or "error")
        name = trace.get("name") or context.get("traceName") or (root.name if root else None)
        return Session(
            name=str(name) if name is not None else None,
            tags=tags,
            session_id=str(trace["id"]) if trace.get("id") else None,
            agent=agent.name if agent is not None else None,
            metadata=self._metadata(roots, context),
            input=self._io("input", agent, root),
            steps=self.steps,
            output=self._io("output", agent, root),
            error=error,
        )

    def _context(self) -> dict[str, Any]:
        """Trace fields that observations carry when no trace object was exported."""
        out: dict[str, Any] = {}
        for obs in self.doc.observations:
            for key in _SESSION_LEVEL:
                if obs.data.get(key) is not None and key not in out:
                    out[key] = obs.data[key]
        return out

    def _io(self, which: str, agent: _Obs | None, root: _Obs | None) -> Any:
        """The session's input/output: the root agent's, else the trace's, else the root's."""
        for source in (agent, None, root):
            data = self.doc.trace if source is None else source.data
            value = parse_json_text(data.get(which))
            if value is not None:
                self.result.mapped[f"{'trace' if source is None else source.type}.{which}"] += 1
                return _call_input(value) if which == "input" else value
        return None

    def _metadata(self, roots: list[_Obs], context: dict[str, Any]) -> dict[str, Any]:
        trace = self.doc.trace
        out: dict[str, Any] = {"imported": {"format": SOURCE}}
        if trace.get("id"):
            out["trace_id"] = str(trace["id"])
        start = parse_time(trace.get("timestamp")) or (
            parse_time(roots[0].data.get("startTime")) if roots else None
        )
        if start is not None:
            recorded = start.astimezone(dt.UTC).isoformat(timespec="seconds")
            out["recorded_at"] = recorded.replace("+00:00", "Z")
        took = _trace_duration(trace, roots)
        if took is not None:
            out["duration_ms"] = took
        names = {
            "sessionId": "langfuse_session_id",
            "userId": "user_id",
            "release": "release",
            "version": "version",
            "environment": "environment",
        }
        for key, name in names.items():
            value = trace.get(key, context.get(key))
            if plain(value):
                out[name] = value
                self.result.mapped[f"trace.{key}"] += 1
        if isinstance(trace.get("metadata"), dict) and trace["metadata"]:
            out["langfuse_metadata"] = trace["metadata"]
            self.result.kept["trace.metadata"] += 1
        return out

    def _walk(self, obs: _Obs, *, is_root: bool = False) -> None:
        kind = obs.type
        if kind in _CALL_TYPES:
            step = self._llm_step(obs) if kind == "GENERATION" else self._tool_step(obs)
            self.steps.append(step)
            inner = _descendants(obs)
            if inner:
                self.result.skipped[
                    f"observation inside a {kind} (the outer call is the step)"
                ] += inner
            return
        if not is_root:
            what = {
                "EVENT": "a point in time",
                "EMBEDDING": "no replayable call",
            }.get(kind, "its children are walked")
            self.result.skipped[f"{kind} observation {obs.name!r} (not a call step; {what})"] += 1
        for child in obs.children:
            self._walk(child)

    # -- generations --------------------------------------------------------------------
    def _llm_step(self, obs: _Obs) -> LLMCallStep:
        data = obs.data
        attributes = self._account(obs, _GENERATION_FIELDS)
        metadata = as_dict(data.get("metadata"))
        if metadata:
            attributes["langfuse.metadata"] = metadata
            self.result.kept["metadata"] += 1
        raw = parse_json_text(data.get("input"))
        messages, tools, request = self._request(obs, raw, attributes)
        params = self._params(obs, attributes)
        params.update(request)
        provider, api = provider_api(metadata.get("ls_provider"), messages is not None)
        if provider is not None and api is None:
            self.result.warnings.append(
                f"{obs.where}: generation {obs.name!r} used provider {provider!r}; its "
                "messages are kept in the OpenAI chat shape and the step's api is left empty"
            )
        cost = _cost(data)
        model = data.get("model")
        if model is not None:
            self.result.mapped["model"] += 1
        error = _error(data)
        body = failed_call(provider, error, attributes)  # replayed as that HTTP error
        return LLMCallStep(
            step=len(self.steps) + 1,
            timestamp=timestamp(data.get("startTime")),
            duration_ms=_duration(data),
            error=error,
            raw=body,
            attributes=attributes or None,
            provider=provider,
            api=api,
            model=str(model) if model is not None else None,
            input=LLMInput(messages=messages, tools=tools, params=params or None),
            output=self._output(obs, attributes),
            usage=self._usage(obs),
            cost=cost,
            cost_source=SOURCE if cost is not None else None,
        )

    def _request(
        self, obs: _Obs, raw: Any, attributes: dict[str, Any]
    ) -> tuple[list[Any] | None, list[Any] | None, dict[str, Any]]:
        """(messages, tools, other request fields) from a generation's input."""
        if isinstance(raw, dict) and isinstance(raw.get("messages"), list):
            self.result.mapped["input.messages"] += 1
            request: dict[str, Any] = {}
            tools = raw.get("tools") if isinstance(raw.get("tools"), list) else None
            for key, value in raw.items():
                if key in ("messages", "tools"):
                    continue
                if key in ("functions", "function_call", "tool_choice"):
                    request[key] = value
                    self.result.mapped[f"input.{key}"] += 1
                else:
                    attributes[f"langfuse.input.{key}"] = value
                    self.result.kept[f"input.{key}"] += 1
            if tools is not None:
                self.result.mapped["input.tools"] += 1
            return openai_messages(raw["messages"]), tools, request
        if is_chat_messages(raw):
            self.result.mapped["input (messages)"] += 1
            return openai_messages(raw), None, {}
        if raw is not None:
            attributes["langfuse.input"] = raw
            self.result.kept["input (not chat messages)"] += 1
            self.result.warnings.append(
                f"{obs.where}: generation {obs.name!r} has an input that is not a message "
                "list; it is kept in attributes and the step's messages are left empty"
            )
        return None, None, {}

    def _params(self, obs: _Obs, attributes: dict[str, Any]) -> dict[str, Any]:
        """modelParameters that were sent: numbers read back from text, the Langfuse OpenAI
        integration's stand-ins for unset parameters dropped."""
        raw = parse_json_text(obs.data.get("modelParameters"))
        if not isinstance(raw, dict) or not raw:
            return {}
        self.result.mapped["modelParameters"] += 1
        values = {k: _scalar(v) for k, v in raw.items()}
        filler = set(_OPENAI_INTEGRATION_DEFAULTS) <= values.keys() and bool(
            {"max_tokens", "max_completion_tokens"} & values.keys()
        )
        sent: dict[str, Any] = {}
        dropped: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, float) and math.isinf(value):
                dropped[key] = raw[key]
                self.result.skipped[f"modelParameters.{key} (Infinity: not sent)"] += 1
            elif (
                filler
                and key in _OPENAI_INTEGRATION_DEFAULTS
                and (value == _OPENAI_INTEGRATION_DEFAULTS[key] and not isinstance(value, bool))
            ):
                dropped[key] = raw[key]
                self.result.skipped[
                    f"modelParameters.{key} (the Langfuse OpenAI integration's default)"
                ] += 1
            else:
                sent[key] = value
        if dropped:
            attributes["langfuse.modelParameters"] = raw
        return request_params(sent, self.result.skipped, "modelParameters")

    def _output(self, obs: _Obs, attributes: dict[str, Any]) -> LLMOutput | None:
        raw = parse_json_text(obs.data.get("output"))
        if raw is None:
            return None
        choice = raw[0] if isinstance(raw, list) and raw else raw
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
            choice = {**choice["message"], "finish_reason": choice.get("finish_reason")}
        output = assistant_output(choice)
        if output is None:
            attributes["langfuse.output"] = raw
            self.result.kept["output (not a message)"] += 1
            return None
        self.result.mapped["output"] += 1
        return output

    def _usage(self, obs: _Obs) -> Usage | None:
        details = obs.data.get("usageDetails")
        if isinstance(details, dict) and details:
            usage = _usage_details(details)
            if usage is None:
                return None
            self.result.mapped["usageDetails"] += 1
            if not usage[1]:
                self.result.warnings.append(
                    f"{obs.where}: usageDetails of {obs.name!r} do not add up to their total; "
                    "cached tokens were added to the input tokens (the Langfuse convention)"
                )
            if isinstance(obs.data.get("usage"), dict):
                self.result.skipped["usage (deprecated; said again by usageDetails)"] += 1
            return usage[0]
        legacy = obs.data.get("usage")
        if isinstance(legacy, dict):
            fields = {
                "input_tokens": count(legacy.get("input")),
                "output_tokens": count(legacy.get("output")),
                "total_tokens": count(legacy.get("total")),
            }
            if any(v is not None for v in fields.values()):
                self.result.mapped["usage"] += 1
                return Usage(**fields)
        return None

    # -- tools --------------------------------------------------------------------------
    def _tool_step(self, obs: _Obs) -> ToolCallStep:
        data = obs.data
        attributes = self._account(obs, _TOOL_FIELDS)
        metadata = as_dict(data.get("metadata"))
        call_id = metadata.get("tool_call_id")
        rest = {k: v for k, v in metadata.items() if k != "tool_call_id" and plain(v)}
        if rest:
            attributes["langfuse.metadata"] = rest
            self.result.kept["metadata"] += 1
        raw_input = parse_json_text(data.get("input"))
        tool_input = _call_input(raw_input)
        if isinstance(tool_input, dict) and set(tool_input) == {"args", "kwargs"}:
            self.result.warnings.append(
                f"{obs.where}: tool {obs.name!r} was called with positional arguments whose "
                "names the trace does not record; its input is kept as {args, kwargs}"
            )
        for name in ("input", "output"):
            if data.get(name) is not None:
                self.result.mapped[f"tool.{name}"] += 1
        output = data.get("output")
        return ToolCallStep(
            step=len(self.steps) + 1,
            timestamp=timestamp(data.get("startTime")),
            duration_ms=_duration(data),
            error=_error(data),
            attributes=attributes or None,
            tool=obs.name,
            call_id=str(call_id) if call_id is not None else None,
            input=tool_input,
            output=tool_result(parse_json_text(output)) if output is not None else None,
        )

    # -- shared -------------------------------------------------------------------------
    def _account(self, obs: _Obs, used: frozenset[str]) -> dict[str, Any]:
        """Count an observation's fields; the unknown ones are returned as attributes."""
        attributes: dict[str, Any] = {}
        if obs.data.get("id") is not None:
            attributes["langfuse.observation_id"] = str(obs.data["id"])
        if obs.type == "GENERATION" and obs.data.get("name"):
            attributes["langfuse.name"] = obs.data["name"]
        level = str(obs.data.get("level") or "DEFAULT").upper()
        for key, value in obs.data.items():
            if not plain(value) or key in _STRUCTURE or key in _SESSION_LEVEL:
                continue
            if key in ("startTime", "endTime", "name"):
                self.result.mapped[key] += 1
            elif key in ("level", "statusMessage"):
                if level == "ERROR":
                    self.result.mapped[key] += 1  # the step's error
                elif not (key == "level" and level == "DEFAULT"):
                    attributes[f"langfuse.{key}"] = value
                    self.result.kept[key] += 1
            elif key in used:
                continue
            elif key in _SKIPPED:
                self.result.skipped[f"{key} ({_SKIPPED[key]})"] += 1
            else:
                attributes[f"langfuse.{key}"] = value
                self.result.kept[key] += 1
        return attributes


def _descendants(obs: _Obs) -> int:
    return sum(1 + _descendants(child) for child in obs.children)


def _call_input(value: Any) -> Any:
    """The arguments a function was called with, from the `@observe` decorator's
    `{"args": [...], "kwargs": {...}}`: the keyword arguments, or the single positional one."""
    if not (isinstance(value, dict) and set(value) == {"args", "kwargs"}):
        return value
    args, kwargs = value["args"], value["kwargs"]
    if isinstance(args, list) and not args and isinstance(kwargs, dict):
        return kwargs
    if isinstance(args, list) and len(args) == 1 and not kwargs:
        return args[0]
    return value


def _scalar(value: Any) -> Any:
    """`"0.7"` -> 0.7, `"true"` -> True, `"Infinity"` -> inf: parameters stored as text."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        if parsed is None or isinstance(parsed, int | float | bool):
            return parsed
    return value


def _duration(data: dict[str, Any]) -> float | None:
    took = duration_ms(data.get("startTime"), data.get("endTime"))
    if took is None:
        seconds = number(data.get("latency"))
        took = round(seconds * 1000, 3) if seconds is not None else None
    return took


def _trace_duration(trace: dict[str, Any], roots: list[_Obs]) -> float | None:
    seconds = number(trace.get("latency"))
    if seconds is not None:
        return round(seconds * 1000, 3)
    starts = [parse_time(o.data.get("startTime")) for o in roots]
    ends = [parse_time(o.data.get("endTime")) for o in roots]
    first = min((s for s in starts if s), default=None)
    last = max((e for e in ends if e), default=None)
    return duration_ms(first, last) if first and last else None


def _error(data: dict[str, Any]) -> Any:
    if str(data.get("level") or "").upper() != "ERROR":
        return None
    return error_info(data.get("statusMessage") or "error")


def _cost(data: dict[str, Any]) -> float | None:
    """costDetails.total, else the cost Langfuse calculated, else the sum of the details."""
    details = as_dict(data.get("costDetails"))
    usage = as_dict(data.get("usage"))
    for value in (
        details.get("total"),
        data.get("calculatedTotalCost"),
        data.get("totalCost"),
        usage.get("totalCost"),
    ):
        found = number(value)
        if found is not None:
            return found
    parts = [number(v) for v in details.values()]
    if parts and all(p is not None for p in parts):
        return sum(p for p in parts if p is not None)
    return None


# -- usage ----------------------------------------------------------------------------------

_INPUT_KEYS = ("input", "prompt_tokens", "input_tokens", "promptTokens")
_OUTPUT_KEYS = ("output", "completion_tokens", "output_tokens", "completionTokens")
_TOTAL_KEYS = ("total", "total_tokens", "totalTokens")
_CACHE_INPUT_KEYS = frozenset(
    {"cache_read_input_tokens", "cache_creation_input_tokens", "cache_write_input_tokens"}
)


def _side(key: str) -> str | None:
    """Which side a usage detail key adds to (`input`/`output`), None when it is not one."""
    if key in _CACHE_INPUT_KEYS:
        return "input"
    for side in ("input", "output"):
        if key.startswith(f"{side}_") and not key.startswith(f"{side}_priority"):
            return side
    return None


def _usage_details(details: dict[str, Any]) -> tuple[Usage, bool] | None:
    """Usage from Langfuse `usageDetails`, and whether the counts agree with their total.

    Langfuse stores token kinds disjointly: `input` excludes cached input
    (`input_cached_tokens`, `cache_read_input_tokens`, ...), `output` excludes reasoning
    (`output_reasoning_tokens`), and `total` is the sum of all. Usage here counts the
    OpenTelemetry way (input includes cached tokens), so the details are added back — unless
    the total shows that they were already included.
    """
    counts = {k: count(v) for k, v in details.items()}
    base_in = next((counts[k] for k in _INPUT_KEYS if counts.get(k) is not None), None)
    base_out = next((counts[k] for k in _OUTPUT_KEYS if counts.get(k) is not None), None)
    total = next((counts[k] for k in _TOTAL_KEYS if counts.get(k) is not None), None)
    extra = {"input": 0, "output": 0}
    for key, value in counts.items():
        side = _side(key)
        if side is not None and value is not None:
            extra[side] += value
    choices = [(True, True), (True, False), (False, True), (False, False)]
    agreed = True
    add_in, add_out = True, True
    if total is not None:
        for a, b in choices:
            if (base_in or 0) + extra["input"] * a + (base_out or 0) + extra["output"] * b == (
                total
            ):
                add_in, add_out = a, b
                break
        else:
            agreed = False
    input_tokens = _plus(base_in, extra["input"] if add_in else 0)
    output_tokens = _plus(base_out, extra["output"] if add_out else 0)
    fields = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total,
        "cache_read_tokens": _detail(counts, "input", ("cached", "cache_read")),
        "cache_creation_tokens": _detail(counts, "input", ("cache_creation", "cache_write")),
        "reasoning_tokens": _detail(counts, "output", ("reasoning",)),
    }
    if all(v is None for v in fields.values()):
        return None
    return Usage(**fields), agreed


def _plus(base: int | None, extra: int) -> int | None:
    if base is None:
        return extra or None
    return base + extra


def _detail(counts: dict[str, int | None], side: str, words: tuple[str, ...]) -> int | None:
    """The first detail count on `side` whose key names one of `words`."""
    for key, value in counts.items():
        if value is not None and _side(key) == side and any(w in key for w in words):
            return value
    return None
