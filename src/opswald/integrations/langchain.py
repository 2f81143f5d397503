"""LangChain and LangGraph: tool calls become `tool_call` steps, graph state `state` steps.

Seam: `BaseTool.run` and `BaseTool.arun`, the public methods every LangChain tool goes
through whatever built it (`@tool`, `StructuredTool`, a `BaseTool` subclass) and whoever
calls it (`tool.invoke`/`ainvoke`, LangGraph's `ToolNode`, `create_react_agent`,
`langchain.agents.create_agent`). Hooking there rather than each tool's own `_run` leaves
LangChain in charge of argument validation, `handle_tool_error` and the formatting of the
`ToolMessage`, and records exactly what the model is given back.

What a step holds:

- `input`: the arguments the model asked for (the tool call's `args`), without the ones
  LangGraph injects (`InjectedToolCallId`, `InjectedState`, `InjectedStore`,
  `ToolRuntime`): neither the volatile tool-call id nor the graph state is matched.
- `output`: for a call that carries a tool-call id (every `ToolNode` call), the content
  of the `ToolMessage` (a string or content blocks); `{content, artifact, status}` when
  there is an artifact (`response_format="content_and_artifact"`) or the status is
  `error` (a handled `ToolException`). A tool that returns a LangGraph `Command`, its own
  `ToolMessage` or a list of them is recorded tagged (`command`, `tool_message`,
  `outputs`). For a direct `tool.invoke(args)`, the tool's return value (rebuilt as the
  function's pydantic return type, if it has one).

In replay the body does not run: the `ToolMessage` is rebuilt with the id of the call
being answered now, and the tool callbacks (`on_tool_start`, `on_tool_end`,
`on_tool_error`) fire as if it had run, so `astream_events` and tracers see the same
events. A recorded error is raised again: LangChain's `ToolException` and the like as
instances of their class (the message as LangChain formats it), an invalid-arguments
`ValidationError` as the real pydantic error of the tool's schema, so `ToolNode` turns
both into the same error message for the model.

Graph state (opt-in): at the start of every LangGraph node, the state the node reads is
recorded as a `state` step (`memory` = the state, message ids left out because LangGraph
draws them at random; `context` = node name and superstep). It comes from a callback
handler that LangChain adds to every run through its public `register_configure_hook`.
Enabled by the environment variable `OPSWALD_LANGGRAPH_STATE=1`, or by a context whose
`langgraph_state` attribute is true.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opswald.instrument import acall_tool, call_tool
from opswald.integrations import active
from opswald.jsonable import to_jsonable

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import BaseMessage, ToolMessage
    from langchain_core.tools import BaseTool

    from opswald.engine.context import Context

__all__ = ["STATE_ENV", "capture_state", "install"]

NAME = "langchain"
STATE_ENV = "OPSWALD_LANGGRAPH_STATE"
_WRAPPED = "__opswald_langchain__"
_TRUE = ("1", "true", "yes", "on")


def install() -> None:
    """Hook `BaseTool.run`/`arun` and register the graph-state handler (idempotent)."""
    from langchain_core.tools import BaseTool

    if getattr(BaseTool.run, _WRAPPED, False):
        return
    run = _wrap_run(BaseTool.run)
    arun = _wrap_arun(BaseTool.arun)
    BaseTool.run = run  # type: ignore[method-assign]
    BaseTool.arun = arun  # type: ignore[method-assign,assignment]
    _register_state_handler()


def capture_state(ctx: Context) -> bool:
    """Whether LangGraph node states are recorded in this run (opt-in)."""
    if getattr(ctx, "langgraph_state", False):
        return True
    return os.environ.get(STATE_ENV, "").strip().lower() in _TRUE


# -- one tool call ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Call:
    """A `run`/`arun` call: the tool, the arguments the model asked for, the call's id and
    the options LangChain passes on to callbacks."""

    tool: BaseTool
    arguments: Any
    call_id: str | None
    options: Mapping[str, Any]

    @classmethod
    def of(
        cls,
        sig: inspect.Signature,
        tool: BaseTool,
        tool_input: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> _Call:
        options = sig.bind(tool, tool_input, *args, **kwargs).arguments
        return cls(
            tool=tool,
            arguments=_model_arguments(tool, tool_input),
            call_id=options.get("tool_call_id"),
            options=options,
        )

    # recorded data <-> what `run` returns
    def encode(self, value: Any) -> Any:
        return _encode(value, self.call_id, self.tool.name)

    def decode(self, data: Any) -> Any:
        return _decode(self.tool, to_jsonable(data), self.call_id)

    # callbacks for a call answered from the golden
    def _start_args(self) -> tuple[dict[str, Any], str, dict[str, Any]]:
        arguments = self.arguments
        text = arguments if isinstance(arguments, str) else str(arguments)
        extra = dict(self.options.get("kwargs") or {})
        kwargs = {
            "color": self.options.get("start_color", "green"),
            "name": self.options.get("run_name"),
            "run_id": self.options.get("run_id"),
            "inputs": arguments if isinstance(arguments, dict) else None,
            "tool_call_id": self.call_id,
            **extra,
        }
        return {"name": self.tool.name, "description": self.tool.description}, text, kwargs

    def _manager_args(self) -> tuple[Any, ...]:
        """`configure` arguments, in the order `run` passes them."""
        tool, o = self.tool, self.options
        verbose = tool.verbose or bool(o.get("verbose"))
        inheritable = (o.get("callbacks"), tool.callbacks, verbose)
        return (*inheritable, o.get("tags"), tool.tags, o.get("metadata"), tool.metadata)

    def replayed(self, output: Any = None, error: BaseException | None = None) -> None:
        from langchain_core.callbacks import CallbackManager

        serialized, text, kwargs = self._start_args()
        manager = CallbackManager.configure(*self._manager_args())
        run = manager.on_tool_start(serialized, text, **kwargs)
        if error is not None:
            run.on_tool_error(error, tool_call_id=self.call_id)
        else:
            run.on_tool_end(output, color=self.options.get("color", "green"), name=self.tool.name)

    async def areplayed(self, output: Any = None, error: BaseException | None = None) -> None:
        from langchain_core.callbacks import AsyncCallbackManager

        serialized, text, kwargs = self._start_args()
        manager = AsyncCallbackManager.configure(*self._manager_args())
        run = await manager.on_tool_start(serialized, text, **kwargs)
        if error is not None:
            await run.on_tool_error(error, tool_call_id=self.call_id)
        else:
            color = self.options.get("color", "green")
            await run.on_tool_end(output, color=color, name=self.tool.name)


def _wrap_run(original: Callable[..., Any]) -> Callable[..., Any]:
    sig = inspect.signature(original)

    @functools.wraps(original)
    def run(self: BaseTool, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        if active(NAME) is None:
            return original(self, tool_input, *args, **kwargs)
        call = _Call.of(sig, self, tool_input, args, kwargs)
        live: list[Any] = []

        def execute() -> Any:
            live.append(None)
            value = original(self, tool_input, *args, **kwargs)
            live[0] = value
            return call.encode(value)

        try:
            data = call_tool(self.name, call.arguments, execute)
        except Exception as exc:
            if live:  # LangChain ran the tool and reported the error itself
                raise
            error = _faithful(exc, call)
            call.replayed(error=error)
            raise error from None
        if live:
            return live[0]
        value = call.decode(data)
        call.replayed(output=value)
        return value

    setattr(run, _WRAPPED, True)
    return run


def _wrap_arun(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    sig = inspect.signature(original)

    @functools.wraps(original)
    async def arun(self: BaseTool, tool_input: Any, *args: Any, **kwargs: Any) -> Any:
        if active(NAME) is None:
            return await original(self, tool_input, *args, **kwargs)
        call = _Call.of(sig, self, tool_input, args, kwargs)
        live: list[Any] = []

        async def execute() -> Any:
            live.append(None)
            value = await original(self, tool_input, *args, **kwargs)
            live[0] = value
            return call.encode(value)

        try:
            data = await acall_tool(self.name, call.arguments, execute)
        except Exception as exc:
            if live:
                raise
            error = _faithful(exc, call)
            await call.areplayed(error=error)
            raise error from None
        if live:
            return live[0]
        value = call.decode(data)
        await call.areplayed(output=value)
        return value

    setattr(arun, _WRAPPED, True)
    return arun


# -- arguments ----------------------------------------------------------------------------


def _field_names(schema: Any) -> set[str] | None:
    """Field names (and aliases) of a pydantic model class or a JSON schema dict."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        return set(props) if isinstance(props, dict) else None
    fields = getattr(schema, "model_fields", None) or getattr(schema, "__fields__", None)
    if not isinstance(fields, dict):
        return None
    names = set(fields)
    names.update(a for f in fields.values() if isinstance(a := getattr(f, "alias", None), str))
    return names


def _injected(tool: BaseTool) -> set[str]:
    """Arguments the tool takes that the model does not see (LangGraph fills them in)."""
    try:
        full = _field_names(tool.get_input_schema())
        seen = _field_names(tool.tool_call_schema)
    except Exception:
        return set()
    if full is None or seen is None:
        return set()
    return full - seen


def _model_arguments(tool: BaseTool, tool_input: Any) -> Any:
    """The arguments as the model asked for them: injected ones left out."""
    if not isinstance(tool_input, dict):
        return tool_input
    injected = _injected(tool)
    return {k: v for k, v in tool_input.items() if k not in injected}


# -- results ------------------------------------------------------------------------------


def _is_command(value: Any) -> bool:
    return type(value).__name__ == "Command" and type(value).__module__.startswith("langgraph")


def _is_send(value: Any) -> bool:
    return type(value).__name__ == "Send" and type(value).__module__.startswith("langgraph")


_STATE_FIELDS = ("name", "tool_calls", "tool_call_id", "status", "artifact")


def _message_parts(
    message: BaseMessage, call_id: str | None, *, compact: bool = False
) -> dict[str, Any]:
    """A message as plain data without its random id, and without the tool-call id when
    it is the id of the call being recorded (that one is put back on replay). `compact`
    keeps what a reader of graph state needs (no provider metadata)."""
    from langchain_core.messages import message_to_dict

    data = message_to_dict(message)["data"]
    parts: dict[str, Any] = {"type": data.get("type", message.type), "content": data["content"]}
    for key, value in data.items():
        if key in ("id", "type", "content") or value in (None, {}, []):
            continue
        if compact and key not in _STATE_FIELDS:
            continue
        if key == "status" and value == "success":
            continue
        if key == "tool_call_id" and value == call_id:
            continue
        parts[key] = value
    return to_jsonable(parts)  # type: ignore[no-any-return]


def _encode(value: Any, call_id: str | None, tool_name: str) -> Any:
    """What `run` returned, as the plain data a golden stores.

    The common case stays plain: a `ToolMessage` with nothing but content is recorded as
    its content. Messages and Commands a tool returns itself are tagged (`tool_message`,
    `command`, a list of them `outputs`), so replay rebuilds the same kind of object.
    """
    if isinstance(value, list) and value and all(_is_output(v) for v in value):
        return {"outputs": [_encode_output(v, call_id, tool_name) for v in value]}
    if not _is_output(value):
        return to_jsonable(value)
    out = _encode_output(value, call_id, tool_name)
    parts = out.get("tool_message")
    if call_id is None or parts is None:
        return out
    return parts["content"] if set(parts) == {"content"} else parts


def _is_output(value: Any) -> bool:
    from langchain_core.messages import ToolMessage

    return isinstance(value, ToolMessage) or _is_command(value)


def _encode_output(value: Any, call_id: str | None, tool_name: str) -> dict[str, Any]:
    if _is_command(value):
        return {"command": _encode_command(value, call_id)}
    parts = _message_parts(value, call_id)
    parts.pop("type", None)
    if value.name is None:
        parts["name"] = None  # rebuilt messages are named after the tool otherwise
    elif parts.get("name") == tool_name:
        del parts["name"]
    return {"tool_message": parts}


def _encode_command(command: Any, call_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if command.graph is not None:
        out["graph"] = command.graph
    if command.update is not None:
        out["update"] = _encode_tree(command.update, call_id)
    if command.resume is not None:
        out["resume"] = to_jsonable(command.resume)
    if command.goto:
        goto = command.goto
        many = isinstance(goto, list | tuple)
        items = [_encode_tree(g, call_id) for g in (goto if many else [goto])]
        out["goto"] = items if many else items[0]
    return out


def _encode_tree(value: Any, call_id: str | None) -> Any:
    from langchain_core.messages import BaseMessage

    if isinstance(value, BaseMessage):
        return {"message": _message_parts(value, call_id)}
    if _is_send(value):
        return {"send": {"node": value.node, "arg": _encode_tree(value.arg, call_id)}}
    if isinstance(value, Mapping):
        return {str(k): _encode_tree(v, call_id) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_tree(v, call_id) for v in value]
    return to_jsonable(value)


def _decode(tool: BaseTool, data: Any, call_id: str | None) -> Any:
    """What `run` returns for recorded data: a ToolMessage answering this call, a Command,
    or the plain value."""
    if isinstance(data, dict) and len(data) == 1:
        key, inner = next(iter(data.items()))
        if key == "outputs" and isinstance(inner, list):
            return [_decode_output(tool, item, call_id) for item in inner]
        if key in ("command", "tool_message") and isinstance(inner, dict):
            return _decode_output(tool, data, call_id)
    if call_id is None:
        return _typed_return(tool, data)
    if isinstance(data, str | list):
        return _tool_message(tool, {"content": data}, call_id)
    if isinstance(data, dict) and "content" in data:
        return _tool_message(tool, data, call_id)
    # hand-edited or fork-modified results: stringified the way LangChain does it
    return _tool_message(tool, {"content": _stringify(data)}, call_id)


def _decode_output(tool: BaseTool, data: Any, call_id: str | None) -> Any:
    if isinstance(data, dict) and isinstance(data.get("command"), dict):
        return _decode_command(data["command"], call_id)
    if isinstance(data, dict) and isinstance(data.get("tool_message"), dict):
        return _tool_message(tool, data["tool_message"], call_id)
    return data


def _tool_message(tool: BaseTool, parts: Mapping[str, Any], call_id: str | None) -> ToolMessage:
    """A ToolMessage from recorded parts; it answers the current call unless it recorded
    another call's id."""
    from langchain_core.messages import ToolMessage

    fields = {k: v for k, v in parts.items() if k != "type"}
    fields.setdefault("name", tool.name)
    fields.setdefault("tool_call_id", call_id or "")
    return ToolMessage(**fields)


def _stringify(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def _typed_return(tool: BaseTool, data: Any) -> Any:
    """A direct call's result: rebuilt as the function's pydantic return type if it has one."""
    func = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
    if func is None or not isinstance(data, dict):
        return data
    try:
        hint = inspect.signature(func, eval_str=True).return_annotation
    except Exception:
        return data
    validate = getattr(hint, "model_validate", None)
    return validate(data) if isinstance(hint, type) and callable(validate) else data


def _decode_command(data: Mapping[str, Any], call_id: str | None) -> Any:
    from langgraph.types import Command

    kwargs: dict[str, Any] = {}
    if "graph" in data:
        kwargs["graph"] = data["graph"]
    if "update" in data:
        kwargs["update"] = _decode_tree(data["update"], call_id)
    if "resume" in data:
        kwargs["resume"] = data["resume"]
    if "goto" in data:
        goto = data["goto"]
        kwargs["goto"] = (
            [_decode_tree(g, call_id) for g in goto]
            if isinstance(goto, list)
            else _decode_tree(goto, call_id)
        )
    return Command(**kwargs)


def _decode_tree(value: Any, call_id: str | None) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "message" and isinstance(inner, dict) and "type" in inner:
            return _message(inner, call_id)
        if key == "send" and isinstance(inner, dict) and "node" in inner:
            from langgraph.types import Send

            return Send(inner["node"], _decode_tree(inner.get("arg"), call_id))
    if isinstance(value, dict):
        return {k: _decode_tree(v, call_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_tree(v, call_id) for v in value]
    return value


def _message(parts: Mapping[str, Any], call_id: str | None) -> BaseMessage:
    from langchain_core.messages import messages_from_dict

    data = dict(parts)
    if data["type"] == "tool":
        data.setdefault("tool_call_id", call_id or "")
    return messages_from_dict([{"type": data["type"], "data": data}])[0]


# -- errors -------------------------------------------------------------------------------


def _faithful(exc: Exception, call: _Call) -> Exception:
    """The recorded error as LangChain's own code would have seen it live.

    Arguments the tool's schema rejects never reach the tool: the error is the real
    pydantic `ValidationError` of validating them again (a pure check, the tool does not
    run), so `ToolNode` words it the same. Another error comes back with the arguments it
    was raised with (replay restores them; its message alone when they were just that), so
    `repr()` (which `ToolNode` puts in the message) reads as live.
    """
    rejected = _validation_error(call)
    if rejected is not None:
        return rejected
    return exc


def _validation_error(call: _Call) -> Exception | None:
    from pydantic import BaseModel, ValidationError

    if not isinstance(call.arguments, dict):
        return None
    try:
        schema = call.tool.tool_call_schema
    except Exception:
        return None
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return None
    try:
        schema.model_validate(call.arguments)
    except ValidationError as exc:
        return exc
    return None


# -- graph state --------------------------------------------------------------------------


def _register_state_handler() -> None:
    from langchain_core.tracers.context import register_configure_hook

    handler = _state_handler()
    var: ContextVar[BaseCallbackHandler | None] = ContextVar(
        "opswald_langgraph_state", default=handler
    )
    register_configure_hook(var, True)


def _state_handler() -> BaseCallbackHandler:
    from langchain_core.callbacks import BaseCallbackHandler

    class GraphState(BaseCallbackHandler):
        """Records the state each LangGraph node starts from (when capture is on)."""

        run_inline = True

        @property
        def ignore_llm(self) -> bool:
            return True

        @property
        def ignore_chat_model(self) -> bool:
            return True

        @property
        def ignore_retriever(self) -> bool:
            return True

        @property
        def ignore_agent(self) -> bool:
            return True

        @property
        def ignore_retry(self) -> bool:
            return True

        @property
        def ignore_custom_event(self) -> bool:
            return True

        def on_chain_start(
            self,
            serialized: dict[str, Any] | None,
            inputs: dict[str, Any] | Any,
            *,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            node = (metadata or {}).get("langgraph_node")
            if node is None or kwargs.get("name") != node:
                return  # not a node: the graph itself, or a runnable inside a node
            ctx = active(NAME)
            if ctx is None or not capture_state(ctx):
                return
            assert metadata is not None
            ctx.state(
                {
                    "memory": _graph_state(inputs),
                    "context": {
                        "langgraph_node": node,
                        "langgraph_step": metadata.get("langgraph_step"),
                    },
                }
            )

    return GraphState()


def _graph_state(inputs: Any) -> Any:
    """A node's input as plain data; a `ToolNode` task sent one tool call gets its state."""
    if isinstance(inputs, Mapping) and inputs.get("__type") == "tool_call_with_context":
        inputs = inputs.get("state")
    return _plain(inputs)


def _plain(value: Any, depth: int = 0) -> Any:
    """Plain data of graph state: messages compact and without their random ids."""
    from langchain_core.messages import BaseMessage
    from pydantic import BaseModel

    if depth > 50:
        return repr(value)
    if isinstance(value, BaseMessage):
        return _message_parts(value, None, compact=True)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, BaseModel):
        return {k: _plain(getattr(value, k), depth + 1) for k in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    return to_jsonable(value)
