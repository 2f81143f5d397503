"""Agent-side instrumentation: no-ops outside a replay or recording; the outermost wins."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from opswald.engine.current import CURRENT, INSIDE, MISS, current, inside
from opswald.jsonable import LostKeys, lost_keys, to_jsonable
from opswald.returns import Returns

if TYPE_CHECKING:  # the engine is imported only once a run is active
    from opswald.engine.context import Context, Ticket

F = TypeVar("F", bound=Callable[..., Any])

_LLM_FIELDS = ("model", "messages", "tools")


def _bound_arguments(
    sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by name (without `self`/`cls`), in parameter order: the agent's
    own objects, in a fresh dict (`tool_request` or `to_jsonable` takes the copy a step
    records)."""
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:  # a call the function refuses: what it was given, as given
        return {**({"args": list(args)} if args else {}), **kwargs}
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if name in ("self", "cls") and kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        else:
            out[name] = value
    return out


Binder = Callable[[tuple[Any, ...], dict[str, Any], bool], dict[str, Any]]


def _binder(sig: inspect.Signature) -> Binder:
    """`_bound_arguments` for one signature, with a fast path for the common shape (named
    parameters only, no *args/**kwargs): the same result without `Signature.bind`, which
    costs more than the rest of recording a call. `ordered=False` may give the call's own
    keyword dict (in the caller's order): for `Context.answer_exact`, which only compares."""
    params = list(sig.parameters.values())
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if not all(p.kind in plain for p in params):

        def slow(
            args: tuple[Any, ...], kwargs: dict[str, Any], ordered: bool = True
        ) -> dict[str, Any]:
            return _bound_arguments(sig, args, kwargs)

        return slow
    order = [p.name for p in params]
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    known = frozenset(order)
    required = frozenset(p.name for p in params if p.default is inspect.Parameter.empty)
    skipped = frozenset(
        p.name
        for p in params
        if p.name in ("self", "cls") and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    )

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any], ordered: bool = True) -> dict[str, Any]:
        if not ordered and not args and not skipped and required <= kwargs.keys() <= known:
            return kwargs  # a call by keywords: its own fresh dict, compared, never kept
        if len(args) > len(positional):
            return _bound_arguments(sig, args, kwargs)
        given = dict(zip(positional, args, strict=False))
        for key, value in kwargs.items():
            if key in given or key not in known:
                return _bound_arguments(sig, args, kwargs)  # the same TypeError handling
            given[key] = value
        if not required <= given.keys():
            return _bound_arguments(sig, args, kwargs)
        return {n: given[n] for n in order if n in given and n not in skipped}

    return bind


def _with_overrides(
    sig: inspect.Signature,
    ctx: Context,
    api: str | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Any, ...]:
    """(args, kwargs) of a live model call with request-level modifications applied to the
    parameters the function takes (`model=`, `temperature=`, ...)."""
    if not ctx.request_modifications:
        return args, kwargs
    from opswald.engine.context import request_overrides

    overrides = request_overrides(api, ctx.request_modifications)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return args, kwargs
    var_kw = next(
        (p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD),
        None,
    )
    for key, value in overrides.items():
        if key in sig.parameters and sig.parameters[key].kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            bound.arguments[key] = value
        elif var_kw is not None:
            bound.arguments.setdefault(var_kw, {})[key] = value
    return bound.args, bound.kwargs


# Evaluated only when an exception is on its way (an `except` clause's expression): an
# agent that never fails imports neither asyncio nor the engine for them.
def _cancelled() -> type[BaseException]:
    """asyncio's CancelledError: a call cancelled before it finished is recorded as such."""
    import asyncio

    return asyncio.CancelledError


def _served_cancelled() -> type[BaseException]:
    """What replay raises for a call recorded as cancelled (it gets no answer)."""
    from opswald.engine.context import CancelledCall

    return CancelledCall


async def _until_cancelled() -> Any:
    """A served call recorded as cancelled waits, as it did, until it is cancelled."""
    from opswald.engine.context import until_cancelled

    return await until_cancelled()


def _active() -> Context | None:
    """The context this call records into; none inside a call being recorded."""
    if INSIDE.get():
        return None
    ctx = CURRENT.get()
    return ctx if ctx is not None else current()  # current() looks after other threads


# -- tool calls: the one primitive behind @opswald.tool and the framework integrations --

T = TypeVar("T")


def call_tool(
    name: str,
    arguments: Any,
    run: Callable[[], T],
    *,
    side_effects: bool = False,
    decode: Callable[[Any], Any] | None = None,
) -> T:
    """Run `run()` as the tool call `name(arguments)`: recorded in record mode, served
    from the golden (without calling `run`) in replay. Outside a run, just `run()`.

    `arguments` is what replay matches on, recorded as plain data (dict keys that data
    writes alike fail the recording, as for `@opswald.tool`); `decode` rebuilds the
    tool's return type from recorded data (a `Returns`, which
    `opswald.integrations.return_decoder` makes from a function's return annotation, also
    says what to record for the result).
    """
    ctx = _active()
    if ctx is None:
        return run()
    return _tool_sync(ctx, name, arguments, run, side_effects, decode)


def tool_request(arguments: Any) -> tuple[Any, LostKeys | None]:
    """A tool call's arguments as the step records them (plain data, a deep copy taken at
    call time), and the first dict in them whose keys that data writes alike (`1` and
    `'1'`), keeping one: what replay would match on is not what the agent passed."""
    return to_jsonable(arguments), lost_keys(arguments)


def _request(ctx: Context, name: str, arguments: Any) -> Any:
    """`tool_request` for every tool call of a run (`@opswald.tool`, sync or async, and
    `call_tool`/`acall_tool`, which the integrations use): keys that collide are noted as
    the reason a recording or update does not write the golden."""
    request, lost = tool_request(arguments)
    ctx.keys_lost("arguments", name, lost)
    ctx.formless_arguments_kept(name, arguments)
    return request


def _tool_sync(
    ctx: Context,
    name: str,
    arguments: Any,
    run: Callable[[], T],
    side_effects: bool,
    decode: Callable[[Any], Any] | None,
) -> T:
    request = _request(ctx, name, arguments)
    side_effects = side_effects or name in ctx.side_effect_tools
    ticket = ctx.begin("tool_call", {"tool": name, "input": request}, side_effects=side_effects)
    if ticket.served is not None:
        return ctx.tool_answer(ticket, name, request, decode)  # type: ignore[no-any-return]
    token = inside().set(True)
    try:
        result = run()
    except (Exception, _cancelled()) as exc:
        ctx.tool_step(ticket, name, request, output=None, error=exc)
        raise
    finally:
        inside().reset(token)
    ctx.tool_step(ticket, name, request, output=result, error=None, decode=decode)
    return result


async def acall_tool(
    name: str,
    arguments: Any,
    run: Callable[[], Awaitable[T]],
    *,
    side_effects: bool = False,
    decode: Callable[[Any], Any] | None = None,
) -> T:
    """`call_tool` for coroutines: `run()` returns the awaitable that does the work."""
    ctx = _active()
    if ctx is None:
        return await run()
    return await _tool_async(ctx, name, arguments, run, side_effects, decode)


async def _tool_async(
    ctx: Context,
    name: str,
    arguments: Any,
    run: Callable[[], Awaitable[T]],
    side_effects: bool,
    decode: Callable[[Any], Any] | None,
) -> T:
    request = _request(ctx, name, arguments)
    side_effects = side_effects or name in ctx.side_effect_tools
    ticket = ctx.begin("tool_call", {"tool": name, "input": request}, side_effects=side_effects)
    if ticket.served is not None:
        try:
            return ctx.tool_answer(ticket, name, request, decode)  # type: ignore[no-any-return]
        except _served_cancelled():  # recorded as cancelled: it waits to be cancelled again
            return await _until_cancelled()  # type: ignore[no-any-return]
    token = inside().set(True)
    try:
        result = await run()
    except (Exception, _cancelled()) as exc:  # a cancelled call is a step too
        ctx.tool_step(ticket, name, request, output=None, error=exc)
        raise
    finally:
        inside().reset(token)
    ctx.tool_step(ticket, name, request, output=result, error=None, decode=decode)
    return result


# -- @opswald.tool ----------------------------------------------------------------------


DECLARED_SIDE_EFFECTS: set[str] = set()
"""Names of the tools decorated with `side_effects=True` in this process (a fix line
warns that an update reaching one of them stops there)."""


def _check_decorated(fn: Any, decorator: str, keyword: str) -> None:
    """What `@opswald.tool` or `@opswald.llm` is given in place of a function: a value
    meant for one of its keywords (`@opswald.tool("weather")`) is a TypeError that says
    how to give it, not an AttributeError from deep inside."""
    if fn is None or callable(fn):
        return
    if isinstance(fn, str):
        raise TypeError(
            f"@opswald.{decorator}({fn!r}): the decorator takes the function, and its "
            f"settings by keyword: @opswald.{decorator}({keyword}={fn!r})"
        )
    raise TypeError(f"@opswald.{decorator} decorates a function, not {type(fn).__name__} {fn!r}")


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    side_effects: bool = False,
    decode: Callable[[Any], Any] | None = None,
) -> Callable[[F], F]: ...
def tool(
    fn: F | None = None,
    /,
    *,
    name: str | None = None,
    side_effects: bool = False,
    decode: Callable[[Any], Any] | None = None,
) -> F | Callable[[F], F]:
    """Record a tool call, or serve it from the golden during replay (sync and async).

    `side_effects=True` marks a tool that must never run during update, fork or live
    continuation unless `--opswald-allow-side-effects` is given. On replay the result is
    rebuilt into the function's return annotation (`-> Order`, `-> list[Item]`), or by
    `decode`, which turns the recorded data back into what the tool returns.
    """

    _check_decorated(fn, "tool", "name")

    def wrap(func: F) -> F:
        _check_decorated(func, "tool", "name")
        tool_name = name or func.__name__
        if side_effects:
            DECLARED_SIDE_EFFECTS.add(tool_name)
        sig = inspect.signature(func)
        bind = _binder(sig)
        decoder = decode or Returns(func)

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = _active()
                if ctx is None:
                    return await func(*args, **kwargs)
                request = bind(args, kwargs, False)
                try:
                    answer = ctx.answer_exact(
                        "tool_call", {"tool": tool_name, "input": request}, decoder
                    )
                except _served_cancelled():
                    return await _until_cancelled()
                if answer is not MISS:
                    return answer
                run = functools.partial(func, *args, **kwargs)
                return await _tool_async(
                    ctx, tool_name, bind(args, kwargs, True), run, side_effects, decoder
                )

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = _active()
            if ctx is None:
                return func(*args, **kwargs)
            request = bind(args, kwargs, False)
            answer = ctx.answer_exact("tool_call", {"tool": tool_name, "input": request}, decoder)
            if answer is not MISS:
                return answer
            run = functools.partial(func, *args, **kwargs)
            return _tool_sync(ctx, tool_name, bind(args, kwargs, True), run, side_effects, decoder)

        return wrapper  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap


# -- @opswald.llm -----------------------------------------------------------------------


def _llm_request(
    arguments: dict[str, Any], provider: str | None, api: str | None
) -> dict[str, Any]:
    params = {k: v for k, v in arguments.items() if k not in _LLM_FIELDS}
    return {
        "provider": provider,
        "api": api,
        "model": arguments.get("model"),
        "input": {
            "messages": arguments.get("messages"),
            "tools": arguments.get("tools"),
            "params": params or None,
        },
    }


@overload
def llm(fn: F, /) -> F: ...
@overload
def llm(
    *,
    provider: str | None = None,
    api: str | None = None,
    decode: Callable[[Any], Any] | None = None,
) -> Callable[[F], F]: ...
def llm(
    fn: F | None = None,
    /,
    *,
    provider: str | None = None,
    api: str | None = None,
    decode: Callable[[Any], Any] | None = None,
) -> F | Callable[[F], F]:
    """Record a call to any model client, or serve it from the golden during replay.

    The wrapped function's arguments are the request (`model`, `messages`, `tools`, the
    rest are params); its return value is the response. Usage and cost are read from the
    response when present. On replay the response is rebuilt into the function's return
    annotation (`-> Reply`), or by a `decode` callable, from the recorded data.
    """

    _check_decorated(fn, "llm", "provider")

    def wrap(func: F) -> F:
        _check_decorated(func, "llm", "provider")
        sig = inspect.signature(func)
        bind = _binder(sig)
        decoder = decode or Returns(func)

        def begin(
            ctx: Context, args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[Ticket | None, Any, tuple[Any, ...], dict[str, Any]]:
            """(None, the answer, ...) when replay serves the call as recorded, else the
            ticket and the request (a copy, taken at call time); then the arguments to
            call the function with. They carry the request-level modifications the
            function takes where those apply (every call; in a fork at a step, the calls
            from golden step N on, which the call is matched as made to find): the
            request is what the function is called with, no more."""
            early = ctx.fork_at is None and bool(ctx.request_modifications)
            if early:
                args, kwargs = _with_overrides(sig, ctx, api, args, kwargs)
            sent = _llm_request(bind(args, kwargs, False), provider, api)  # only compared
            answer = ctx.answer_exact("llm_call", sent, decoder)
            if answer is not MISS:
                return None, answer, args, kwargs
            request = _llm_request(to_jsonable(bind(args, kwargs, True)), provider, api)

            def as_modified() -> dict[str, Any]:
                """The request as the function is called with the modifications it takes."""
                changed_args, changed_kwargs = _with_overrides(sig, ctx, api, args, kwargs)
                changed = to_jsonable(bind(changed_args, changed_kwargs, True))
                return _llm_request(changed, provider, api)

            ticket = ctx.begin(
                "llm_call", request, as_sent=True, as_modified=None if early else as_modified
            )
            if ticket.modified and not early:  # the fork's point, or a call after it
                args, kwargs = _with_overrides(sig, ctx, api, args, kwargs)
                request = _llm_request(to_jsonable(bind(args, kwargs, True)), provider, api)
                ticket.request = request
            return ticket, request, args, kwargs

        def record(
            ctx: Context,
            ticket: Ticket,
            request: dict[str, Any],
            result: Any,
            error: BaseException | None,
        ) -> None:
            if error is not None:
                ctx.llm_failed(ticket, request, error)
                return
            data, returned = ctx.returned(func.__name__, result, decoder)
            from opswald.engine import responses
            from opswald.engine.context import HookFailed
            from opswald.pricing import COST_SOURCE_PROVIDER, CostError

            try:
                output, usage, reported = responses.extract(data)
            except CostError as exc:  # the run fails, as a price hook's would: see HookFailed
                problem = CostError(
                    f"{func.__name__}() {exc}; return None, or leave `cost` out, when it "
                    "is not known"
                )
                raise HookFailed(func.__name__) from problem
            cost, source = reported, COST_SOURCE_PROVIDER if reported is not None else None
            if cost is None and ctx.prices is not None:  # the price table, or the hook
                cost, source = ctx.prices.price(request.get("model"), usage)
            ctx.llm_step(
                ticket,
                request,
                output=output,
                usage=usage,
                cost=cost,
                cost_source=source,
                raw=responses.raw_for(data, output, usage, reported),
                error=None,
                attributes=({"opswald.response": "text"} if isinstance(result, str) else returned),
            )

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = _active()
                if ctx is None:
                    return await func(*args, **kwargs)
                try:  # a call recorded as cancelled waits until it is cancelled again
                    ticket, request, args, kwargs = begin(ctx, args, kwargs)
                    if ticket is None:
                        return request  # the recorded answer
                    if ticket.served is not None:
                        return ctx.llm_answer(ticket, request, decoder)
                except _served_cancelled():
                    return await _until_cancelled()
                token = inside().set(True)
                try:
                    result = await func(*args, **kwargs)
                except (Exception, _cancelled()) as exc:
                    record(ctx, ticket, request, None, exc)
                    raise
                finally:
                    inside().reset(token)
                record(ctx, ticket, request, result, None)
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = _active()
            if ctx is None:
                return func(*args, **kwargs)
            ticket, request, args, kwargs = begin(ctx, args, kwargs)
            if ticket is None:
                return request  # the recorded answer
            if ticket.served is not None:
                return ctx.llm_answer(ticket, request, decoder)
            token = inside().set(True)
            try:
                result = func(*args, **kwargs)
            except (Exception, _cancelled()) as exc:
                record(ctx, ticket, request, None, exc)
                raise
            finally:
                inside().reset(token)
            record(ctx, ticket, request, result, None)
            return result

        return wrapper  # type: ignore[return-value]

    return wrap(fn) if fn is not None else wrap


# -- user input and state ---------------------------------------------------------------


def user_input(prompt: str | None = None) -> Any:
    """The next user message of a conversational agent (`input()` outside a run)."""
    ctx = _active()
    if ctx is None:
        return input(prompt or "")
    return ctx.user_input(prompt)


def state(**snapshot: Any) -> None:
    """Record a state snapshot (memory=, variables=, context=, and any other named parts)."""
    ctx = _active()
    if ctx is not None:
        ctx.state(snapshot)
