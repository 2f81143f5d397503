"""LangSmith run exports -> goldens, one per trace (root run).

Accepted input: a root run with its `child_runs` nested (`Client.read_run(...,
load_child_runs=True)`), a flat list of runs linked by `parent_run_id` / `trace_id` (runs
of several traces may be mixed), a list of nested roots, or a `{"runs": [...]}` page.
Siblings are ordered by `start_time`, then `dotted_order`.

The walk mirrors what the engine records: an `llm` run is one `llm_call` step and a `tool`
run one `tool_call` step, and what happened inside them is not a step of its own (the
outermost instrumentation wins). `chain`, `prompt`, `parser`, `retriever` and other runs are
not calls: they are counted as skipped, by name, and their children are walked. The root
run gives the session its name, input, output, error and tags.
"""

from __future__ import annotations

import datetime as dt
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
    parse_time,
    plain,
    provider_api,
    request_params,
    timestamp,
    tool_result,
    unwrap_single,
)
from opswald.importers.otlp import failed_call
from opswald.intercept.codecs.openai_chat import decode_json, usage_from
from opswald.session import AnyStep, LLMCallStep, LLMInput, LLMOutput, Session, ToolCallStep, Usage

SOURCE = "langsmith"

# Top-level run fields that the mapping reads (kept out of `attributes`).
_STRUCTURE = frozenset(
    {"id", "name", "run_type", "parent_run_id", "trace_id", "dotted_order", "child_runs"}
)
_LLM_FIELDS = frozenset(
    {
        "start_time",
        "end_time",
        "inputs",
        "outputs",
        "error",
        "extra",
        "tags",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_token_details",
        "completion_token_details",
        "prompt_cost",
        "completion_cost",
        "total_cost",
    }
)
_TOOL_FIELDS = frozenset({"start_time", "end_time", "inputs", "outputs", "error", "extra", "tags"})
# Fields dropped, with the reason that goes into `ImportResult.skipped`.
_SKIPPED = {
    "serialized": "constructor arguments of the traced object",
    "events": "lifecycle and streaming events",
    "session_id": "LangSmith project id",
    "session_name": "LangSmith project name",
    "reference_example_id": "LangSmith dataset link",
    "in_dataset": "LangSmith dataset link",
    "feedback_stats": "LangSmith feedback",
    "app_path": "LangSmith UI link",
    "manifest_id": "LangSmith internal id",
    "status": "said again by error",
    "child_run_ids": "structure",
    "parent_run_ids": "structure",
    "attachments": "binary attachments are not imported",
    "dangerously_allow_filesystem": "SDK setting",
    "latency": "said again by start_time/end_time",
}
_EXTRA_SKIPPED = {
    "runtime": "SDK and platform of the tracing process",
    "options": "call options repeated in invocation_params",
    "batch_size": "LangChain batch bookkeeping",
    "color": "console colour",
}
_METADATA_MAPPED = frozenset({"ls_provider", "ls_model_name", "usage_metadata"})
_RESPONSE_DROPPED = frozenset({"token_usage", "finish_reason", "logprobs", "usage"})


@dataclass
class _Node:
    run: dict[str, Any]
    where: str
    key: str
    parent: str | None
    index: int
    children: list[_Node] = field(default_factory=list)

    @property
    def run_type(self) -> str:
        return str(self.run.get("run_type"))

    @property
    def name(self) -> str:
        return str(self.run.get("name") or self.run_type)

    def order(self) -> tuple[float, str, int]:
        start = parse_time(self.run.get("start_time"))
        return (
            start.timestamp() if start else float("inf"),
            str(self.run.get("dotted_order") or ""),
            self.index,
        )


def convert(data: Any) -> ImportResult:
    """Convert a LangSmith run export (see the module docstring for the accepted shapes)."""
    result = ImportResult()
    nodes = _collect(data, result)
    for root in _link(nodes, result):
        result.add(_Trace(root, result).session(), "no run with run_type llm or tool")
    return result


# -- reading and linking --------------------------------------------------------------------


def _top_runs(data: Any) -> tuple[list[Any], str]:
    if isinstance(data, dict) and "run_type" in data:
        return [data], "run"
    if isinstance(data, dict) and isinstance(data.get("runs"), list):
        return data["runs"], "runs"
    if isinstance(data, list):
        return data, ""
    if isinstance(data, dict):
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise ImportFormatError(
            f"not a LangSmith run export: an object without run_type (keys: {keys}); expected "
            'a run, a list of runs, or {"runs": [...]}' + other_format(data, "langsmith")
        )
    raise ImportFormatError(
        f"not a LangSmith run export: a JSON {type(data).__name__}; expected a run object "
        "or a list of runs"
    )


def _collect(data: Any, result: ImportResult) -> list[_Node]:
    """Every run, nested ones included, in document order."""
    top, base = _top_runs(data)
    nodes: list[_Node] = []
    seen: set[str] = set()
    stack: list[tuple[Any, str, str | None]] = [
        (run, f"{base}[{i}]" if base != "run" else "run", None)
        for i, run in reversed(list(enumerate(top)))
    ]
    while stack:
        run, where, nested_parent = stack.pop()
        _check_run(run, where)
        key = str(run["id"]) if run.get("id") is not None else where
        if key in seen:
            result.skipped["run listed twice (same id)"] += 1
            continue
        seen.add(key)
        parent = run.get("parent_run_id")
        parent_key = str(parent) if parent is not None else nested_parent
        nodes.append(_Node(run=run, where=where, key=key, parent=parent_key, index=len(nodes)))
        children = run.get("child_runs") or []
        stack.extend(
            (child, f"{where}.child_runs[{j}]", key)
            for j, child in reversed(list(enumerate(children)))
        )
    return nodes


def _check_run(run: Any, where: str) -> None:
    if not isinstance(run, dict):
        raise ImportFormatError(
            f"{where}: a LangSmith run must be an object, not a {type(run).__name__}"
        )
    if not isinstance(run.get("run_type"), str):
        raise ImportFormatError(
            f"{where}: not a LangSmith run (no run_type string)" + other_format(run, "langsmith")
        )
    children = run.get("child_runs")
    if children is not None and not isinstance(children, list):
        raise ImportFormatError(f"{where}.child_runs: expected a list of runs")
    for name in ("inputs", "outputs", "extra"):
        value = run.get(name)
        if value is not None and not isinstance(value, dict):
            raise ImportFormatError(
                f"{where}.{name}: expected an object, not a {type(value).__name__}"
            )


def _link(nodes: list[_Node], result: ImportResult) -> list[_Node]:
    """Attach children to parents; the roots, one per trace, in document order.

    Runs whose parent is not in the export are grouped by `trace_id` under a stand-in root
    (the trace's real root is missing: its input and output stay unknown).
    """
    by_key = {node.key: node for node in nodes}
    roots: list[_Node] = []
    orphans: dict[str, _Node] = {}
    for node in nodes:
        parent = by_key.get(node.parent) if node.parent else None
        if parent is not None:
            parent.children.append(node)
        elif node.parent is None:
            roots.append(node)
        else:
            trace = str(node.run.get("trace_id") or node.parent)
            if trace not in orphans:
                rooted = trace in by_key and by_key[trace].parent is None
                result.warnings.append(
                    f"{node.where}: parent run {node.parent} is not in the export; "
                    + (  # the root run is a golden already: these runs make a second one
                        f"its runs in trace {trace} are imported as a golden of their own, "
                        "apart from the root run's"
                        if rooted
                        else f"trace {trace} is imported without its root run"
                    )
                    + " (no session input or output)"
                )
                fake = {"run_type": "chain", "id": trace, "trace_id": trace}
                orphans[trace] = _Node(
                    run=fake, where=node.where, key=trace, parent=None, index=node.index
                )
                roots.append(orphans[trace])
            orphans[trace].children.append(node)
    for node in nodes:
        node.children.sort(key=_Node.order)
    for stand_in in orphans.values():
        stand_in.children.sort(key=_Node.order)
    lost = len(nodes) + len(orphans) - _reachable(roots)
    if lost:
        result.skipped["run in a parent_run_id cycle (no root)"] += lost
        result.errors.append(  # runs lost: as for a trace without calls, no golden is an error
            f"{lost} run(s) form a parent_run_id cycle and were not imported"
        )
    return roots


def _reachable(roots: list[_Node]) -> int:
    stack, seen = list(roots), 0
    while stack:
        node = stack.pop()
        seen += 1
        stack.extend(node.children)
    return seen


# -- one trace ------------------------------------------------------------------------------


class _Trace:
    """Builds the session of one root run."""

    def __init__(self, root: _Node, result: ImportResult) -> None:
        self.root = root
        self.result = result
        self.steps: list[AnyStep] = []
        self.warned_providers: set[str] = set()

    def session(self) -> Session:
        self._walk(self.root, is_root=True)
        run = self.root.run
        mapped = self.result.mapped
        for name in ("name", "inputs", "outputs", "error", "tags"):
            if plain(run.get(name)):
                mapped[f"root.{name}"] += 1
        tags, bad = marker_tags(run.get("tags"), self.result.skipped)
        if bad:
            trace = run.get("trace_id") or run.get("id")
            named = f" (trace {trace})" if trace else ""
            self.result.warnings.append(
                f"{self.root.where}{named}: tags that cannot be pytest markers were left out: "
                + ", ".join(repr(t) for t in bad)
            )
        error = run.get("error")
        title = run.get("name")
        return Session(
            name=str(title) if title is not None else None,
            tags=tags,
            session_id=str(run.get("trace_id") or run.get("id") or "") or None,
            metadata=self._metadata(),
            input=unwrap_single(run.get("inputs"), "input") if "inputs" in run else None,
            steps=self.steps,
            output=unwrap_single(run.get("outputs"), "output"),
            error=error_info(error) if error else None,
        )

    def _metadata(self) -> dict[str, Any]:
        run = self.root.run
        out: dict[str, Any] = {"imported": {"format": SOURCE}}
        if run.get("trace_id") or run.get("id"):
            out["trace_id"] = str(run.get("trace_id") or run.get("id"))
        start = parse_time(run.get("start_time"))
        if start is not None:
            recorded = start.astimezone(dt.UTC).isoformat(timespec="seconds")
            out["recorded_at"] = recorded.replace("+00:00", "Z")
        took = duration_ms(run.get("start_time"), run.get("end_time"))
        if took is not None:
            out["duration_ms"] = took
        meta = (run.get("extra") or {}).get("metadata")
        if isinstance(meta, dict) and meta:
            out["langsmith_metadata"] = meta
            self.result.kept["root.extra.metadata"] += 1
        return out

    def _walk(self, node: _Node, *, is_root: bool = False) -> None:
        kind = node.run_type
        if kind in ("llm", "tool"):
            step = self._llm_step(node) if kind == "llm" else self._tool_step(node)
            self.steps.append(step)
            inner = _descendants(node)
            if inner:
                article = "an" if kind == "llm" else "a"
                reason = f"run inside {article} {kind} run (the outer call is the step)"
                self.result.skipped[reason] += inner
            return
        if not is_root:
            what = "no replayable call" if kind == "embedding" else "its children are walked"
            self.result.skipped[f"{kind} run {node.name!r} (not a call step; {what})"] += 1
        for child in node.children:
            self._walk(child)

    # -- llm runs -----------------------------------------------------------------------
    def _llm_step(self, node: _Node) -> LLMCallStep:
        run = node.run
        extra = as_dict(run.get("extra"))
        metadata = as_dict(extra.get("metadata"))
        attributes = self._account(node, _LLM_FIELDS)
        request, messages, chat = self._request(node, extra, metadata, attributes)
        model = request.pop("model", None) or metadata.get("ls_model_name")
        model = model or request.get("model_name")
        tools = request.pop("tools", None)
        if tools is not None and not isinstance(tools, list):
            attributes["langsmith.tools"] = tools
            self.result.kept["tools (not a list)"] += 1
            tools = None
        params = request_params(request, self.result.skipped, "request")
        output, usage, response = _llm_output(run.get("outputs"), self.result)
        if output is None and plain(run.get("outputs")):
            attributes["langsmith.outputs"] = run["outputs"]
            self.result.kept["outputs (not a message)"] += 1
        if response:
            attributes["langsmith.response_metadata"] = response
            self.result.kept["response_metadata"] += 1
        usage = self._usage(run, metadata, usage)
        provider, api = provider_api(metadata.get("ls_provider"), chat)
        self._warn_provider(node, metadata.get("ls_provider"), provider, api)
        for key in ("ls_provider", "ls_model_name"):
            if metadata.get(key) is not None:
                self.result.mapped[f"extra.metadata.{key}"] += 1
        self._keep_metadata(metadata, {**request, **params}, attributes)
        cost = _cost(run)
        error = error_info(run["error"]) if run.get("error") else None
        body = failed_call(provider, error, attributes)  # replayed as that HTTP error
        return LLMCallStep(
            step=len(self.steps) + 1,
            timestamp=timestamp(run.get("start_time")),
            duration_ms=duration_ms(run.get("start_time"), run.get("end_time")),
            error=error,
            raw=body,
            attributes=attributes or None,
            provider=provider,
            api=api,
            model=str(model) if model is not None else None,
            input=LLMInput(messages=messages, tools=tools or None, params=params or None),
            output=output,
            usage=usage,
            cost=cost,
            cost_source=SOURCE if cost is not None else None,
        )

    def _request(
        self,
        node: _Node,
        extra: dict[str, Any],
        metadata: dict[str, Any],
        attributes: dict[str, Any],
    ) -> tuple[dict[str, Any], list[Any] | None, bool]:
        """(request fields other than messages, messages, whether they are chat messages)."""
        inputs = node.run.get("inputs") or {}
        request: dict[str, Any] = {}
        for source, value in (
            ("extra.metadata.ls_invocation_params", metadata.get("ls_invocation_params")),
            ("extra.invocation_params", extra.get("invocation_params")),
        ):
            if isinstance(value, dict) and value:
                request.update(value)
                self.result.mapped[source] += 1
        raw: Any = inputs.get("messages")
        batched = isinstance(raw, list) and bool(raw) and all(isinstance(b, list) for b in raw)
        if batched:  # LangChain chat models: one message list per prompt of the batch
            if len(raw) > 1:
                self.result.warnings.append(
                    f"{node.where}: a batch of {len(raw)} prompts; the first is imported"
                )
            raw = raw[0]
        for key, value in inputs.items():
            if key == "messages":
                continue
            if batched or not isinstance(raw, list):  # not the keyword arguments of a call
                attributes[f"langsmith.inputs.{key}"] = value
                self.result.kept[f"inputs.{key}"] += 1
            else:
                request[key] = value
                self.result.mapped[f"inputs.{key}"] += 1
        messages = openai_messages(raw)
        if messages is not None:
            self.result.mapped["inputs.messages"] += 1
        elif raw is not None:
            attributes["langsmith.inputs.messages"] = raw
            self.result.kept["inputs.messages (not a list)"] += 1
        if messages is None:
            self.result.warnings.append(
                f"{node.where}: llm run {node.name!r} has no input messages; the step's "
                "messages are left empty (not compared)"
            )
        return request, messages, is_chat_messages(raw)

    def _usage(
        self, run: dict[str, Any], metadata: dict[str, Any], found: Usage | None
    ) -> Usage | None:
        outputs = run.get("outputs") or {}
        candidates: list[tuple[str, Any]] = [
            ("outputs.usage_metadata", _usage_metadata(outputs.get("usage_metadata"))),
            ("extra.metadata.usage_metadata", _usage_metadata(metadata.get("usage_metadata"))),
            ("message usage", found),
            ("run token counts", _run_tokens(run)),
        ]
        chosen: Usage | None = None
        for name, usage in candidates:
            if usage is None:
                continue
            if chosen is None:
                chosen = usage
                self.result.mapped[name] += 1
            else:
                self.result.skipped[f"{name} (said again by another usage field)"] += 1
        return chosen

    def _keep_metadata(
        self, metadata: dict[str, Any], request: dict[str, Any], attributes: dict[str, Any]
    ) -> None:
        """Metadata not mapped and not a copy of a request parameter goes to attributes."""
        kept: dict[str, Any] = {}
        for key, value in metadata.items():
            if key in _METADATA_MAPPED or key == "ls_invocation_params":
                continue
            short = key.removeprefix("ls_")
            if key.startswith("ls_") and short in ("temperature", "max_tokens", "stop"):
                self.result.skipped[f"extra.metadata.{key} (said again by the request)"] += 1
            elif (key in request and request[key] == value) or key in ("model", "model_name"):
                self.result.skipped[f"extra.metadata.{key} (said again by the request)"] += 1
            elif plain(value):
                kept[key] = value
                self.result.kept[f"extra.metadata.{key}"] += 1
        if kept:
            attributes["langsmith.metadata"] = kept

    def _warn_provider(
        self, node: _Node, named: Any, provider: str | None, api: str | None
    ) -> None:
        if provider is None or api is not None or provider in self.warned_providers:
            return
        self.warned_providers.add(provider)
        self.result.warnings.append(
            f"{node.where}: llm run {node.name!r} used provider {named!r}; its messages are "
            "imported in the OpenAI chat shape and the step's api is left empty, so a replay "
            f"through the {provider} SDK will report the request as different"
        )

    # -- tool runs ----------------------------------------------------------------------
    def _tool_step(self, node: _Node) -> ToolCallStep:
        run = node.run
        extra = run.get("extra") or {}
        attributes = self._account(node, _TOOL_FIELDS)
        metadata = extra.get("metadata")
        if isinstance(metadata, dict):
            kept = {k: v for k, v in metadata.items() if plain(v)}
            if kept:
                attributes["langsmith.metadata"] = kept
                self.result.kept["extra.metadata"] += 1
        outputs = run.get("outputs")
        for name in ("inputs", "outputs", "error"):
            if run.get(name) is not None:
                self.result.mapped[f"tool.{name}"] += 1
        call_id = extra.get("tool_call_id")
        if call_id is not None:
            self.result.mapped["extra.tool_call_id"] += 1
        return ToolCallStep(
            step=len(self.steps) + 1,
            timestamp=timestamp(run.get("start_time")),
            duration_ms=duration_ms(run.get("start_time"), run.get("end_time")),
            error=error_info(run["error"]) if run.get("error") else None,
            attributes=attributes or None,
            tool=node.name,
            call_id=str(call_id) if call_id is not None else None,
            input=run.get("inputs"),
            output=tool_result(unwrap_single(outputs, "output")) if outputs is not None else None,
        )

    # -- shared -------------------------------------------------------------------------
    def _account(self, node: _Node, used: frozenset[str]) -> dict[str, Any]:
        """Count a step run's fields; the unknown ones are returned as attributes."""
        run = node.run
        attributes: dict[str, Any] = {"langsmith.run_id": node.key}
        if node.run_type == "llm" and run.get("name"):
            attributes["langsmith.run_name"] = run["name"]
        for key, value in run.items():
            if not plain(value) or key in _STRUCTURE:
                continue
            if key == "tags":
                if value != self.root.run.get("tags"):  # the root's tags are the session's
                    attributes["langsmith.tags"] = value
                    self.result.kept["tags"] += 1
            elif key in ("start_time", "end_time"):
                self.result.mapped[key] += 1
            elif key in used:
                continue
            elif key in _SKIPPED:
                self.result.skipped[f"{key} ({_SKIPPED[key]})"] += 1
            else:
                attributes[f"langsmith.{key}"] = value
                self.result.kept[key] += 1
        extra = run.get("extra") or {}
        for key, value in extra.items():
            if key in ("metadata", "invocation_params", "tool_call_id") or not plain(value):
                continue
            if key in _EXTRA_SKIPPED:
                self.result.skipped[f"extra.{key} ({_EXTRA_SKIPPED[key]})"] += 1
            else:
                attributes[f"langsmith.extra.{key}"] = value
                self.result.kept[f"extra.{key}"] += 1
        return attributes


def _descendants(node: _Node) -> int:
    return sum(1 + _descendants(child) for child in node.children)


# -- llm outputs, usage, cost ---------------------------------------------------------------


def _llm_output(
    outputs: Any, result: ImportResult
) -> tuple[LLMOutput | None, Usage | None, dict[str, Any]]:
    """(output, usage found beside it, response metadata worth keeping)."""
    if not isinstance(outputs, dict) or not outputs:
        return None, None, {}
    if isinstance(outputs.get("generations"), list):
        result.mapped["outputs.generations"] += 1
        return _from_generations(outputs, result)
    if isinstance(outputs.get("choices"), list):  # a ChatCompletion, e.g. from wrap_openai
        result.mapped["outputs.choices"] += 1
        decoded = decode_json(outputs)
        response = {
            k: outputs[k]
            for k in ("id", "model", "system_fingerprint", "service_tier")
            if outputs.get(k) is not None
        }
        return decoded.output, decoded.usage, response
    messages = outputs.get("messages")
    candidates = [
        ("outputs.message", outputs.get("message")),
        ("outputs.output", outputs.get("output")),
        ("outputs.messages", messages[-1] if isinstance(messages, list) and messages else None),
        ("outputs", outputs),
    ]
    for name, value in candidates:
        output = assistant_output(value) if isinstance(value, dict | str) else None
        if output is not None:
            result.mapped[name] += 1
            return output, None, {}
    return None, None, {}


def _from_generations(
    outputs: dict[str, Any], result: ImportResult
) -> tuple[LLMOutput | None, Usage | None, dict[str, Any]]:
    generations = outputs["generations"]
    first: Any = generations[0] if generations else None
    if isinstance(first, list):
        first = first[0] if first else None
    if not isinstance(first, dict):
        return None, None, {}
    info = as_dict(first.get("generation_info"))
    finish = info.get("finish_reason")
    message = first.get("message")
    if message is None:
        text = first.get("text")
        return LLMOutput(content=text or None, finish_reason=finish), None, {}
    output = assistant_output(message, finish)
    fields = as_dict(message)
    fields = as_dict(fields.get("kwargs") or fields.get("data")) or fields
    usage = _usage_metadata(fields.get("usage_metadata"))
    meta = as_dict(fields.get("response_metadata"))
    response = {k: v for k, v in meta.items() if k not in _RESPONSE_DROPPED and v is not None}
    llm_output = outputs.get("llm_output")
    if isinstance(llm_output, dict):
        if usage is None:
            usage = usage_from(llm_output.get("token_usage"))
        result.skipped["outputs.llm_output (said again by the message)"] += 1
    return output, usage, response


def _usage_metadata(data: Any) -> Usage | None:
    """LangChain/LangSmith `usage_metadata` (input_tokens already includes cached ones)."""
    if not isinstance(data, dict):
        return None
    inputs = data.get("input_token_details") or {}
    outputs = data.get("output_token_details") or {}
    fields = {
        "input_tokens": count(data.get("input_tokens")),
        "output_tokens": count(data.get("output_tokens")),
        "total_tokens": count(data.get("total_tokens")),
        "cache_read_tokens": count(inputs.get("cache_read")) if isinstance(inputs, dict) else None,
        "cache_creation_tokens": (
            count(inputs.get("cache_creation")) if isinstance(inputs, dict) else None
        ),
        "reasoning_tokens": count(outputs.get("reasoning")) if isinstance(outputs, dict) else None,
    }
    return Usage(**fields) if any(v is not None for v in fields.values()) else None


def _run_tokens(run: dict[str, Any]) -> Usage | None:
    """The token counts LangSmith stores on the run itself."""
    return _usage_metadata(
        {
            "input_tokens": run.get("prompt_tokens"),
            "output_tokens": run.get("completion_tokens"),
            "total_tokens": run.get("total_tokens"),
            "input_token_details": run.get("prompt_token_details"),
            "output_token_details": run.get("completion_token_details"),
        }
    )


def _cost(run: dict[str, Any]) -> float | None:
    """`total_cost`, else `prompt_cost + completion_cost` when both are known."""
    total = number(run.get("total_cost"))
    if total is not None:
        return total
    prompt, completion = number(run.get("prompt_cost")), number(run.get("completion_cost"))
    if prompt is not None and completion is not None:
        return prompt + completion
    return None
