"""Finding and calling the user's agent (DESIGN §2 "Adapter")."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, overload

ENTRY_POINT_GROUP = "opswald.adapters"


class Adapter(Protocol):
    """Runs the agent on a golden's input and returns the session's output."""

    def __call__(self, input: Any, /) -> Any: ...


class AdapterNotFound(Exception):
    """No adapter could be resolved; the message lists what was tried."""


@dataclass
class _Registry:
    adapters: dict[str, Callable[..., Any]] = field(default_factory=dict)


_REGISTRY = _Registry()  # filled by @opswald.adapter at import time of the user's modules

F = TypeVar("F", bound=Callable[..., Any])


@overload
def adapter(fn: F, /) -> F: ...
@overload
def adapter(name: str, /) -> Callable[[F], F]: ...
def adapter(fn_or_name: F | str, /) -> F | Callable[[F], F]:
    """Register an adapter under a name (a golden's `agent:` picks it)."""
    if isinstance(fn_or_name, str):
        name = fn_or_name

        def register(fn: F) -> F:
            _REGISTRY.adapters[name] = fn
            return fn

        return register
    _REGISTRY.adapters[fn_or_name.__name__] = fn_or_name
    return fn_or_name


def registered() -> dict[str, Callable[..., Any]]:
    return dict(_REGISTRY.adapters)


def import_string(spec: str) -> Callable[..., Any]:
    """`package.module:callable` (or `package.module.callable`) -> the callable."""
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise AdapterNotFound(f"{spec!r} is not of the form 'package.module:callable'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterNotFound(f"cannot import {module_name!r} for adapter {spec!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise AdapterNotFound(f"{module_name!r} has no attribute {attr!r}") from exc
    if not callable(obj):
        raise AdapterNotFound(f"{spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


def from_entry_points(name: str) -> Callable[..., Any] | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            loaded = ep.load()
            return loaded if callable(loaded) else None
    return None


def resolve(
    agent: str | None,
    *,
    hook_result: Callable[..., Any] | None,
    ini_spec: str | None,
) -> Callable[..., Any]:
    """Hook result, then the golden's `agent:` name, then the ini option."""
    tried = ["- the conftest hook pytest_opswald_adapter(golden, config): returned None"]
    if hook_result is not None:
        return hook_result
    if agent:
        fn = _REGISTRY.adapters.get(agent)
        if fn is not None:
            return fn
        fn = from_entry_points(agent)
        if fn is not None:
            return fn
        known = ", ".join(sorted(_REGISTRY.adapters)) or "none"
        tried.append(
            f"- the golden's agent {agent!r}: not registered with @opswald.adapter "
            f"(registered: {known}) nor in the entry-point group {ENTRY_POINT_GROUP!r}"
        )
    else:
        tried.append("- the golden's `agent:` name: the golden has none")
    if ini_spec:
        return import_string(ini_spec)
    tried.append("- the ini option opswald_adapter: not set")
    raise AdapterNotFound(
        "no adapter to run this golden's agent; tried:\n"
        + "\n".join(tried)
        + '\nfix: set `opswald_adapter = "package.module:callable"` in your pytest config, '
        'or register one with @opswald.adapter("name") and set `agent: name` in the golden'
    )


def call(fn: Callable[..., Any], input: Any, modifications: dict[str, Any]) -> Any:
    """Call an adapter (sync or async), passing modifications if it declares them."""
    kwargs: dict[str, Any] = {}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    if "modifications" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    ):
        kwargs["modifications"] = dict(modifications)
    result = fn(input, **kwargs)
    if inspect.isawaitable(result):
        import asyncio

        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable
