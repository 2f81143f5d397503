"""Framework integrations: the tool calls a framework makes become `tool_call` steps.

Each integration is a module here with an `install()` function that hooks the
framework's public tool-invocation seam once per process. The hook does nothing unless a
replay or recording is active *and* that integration is enabled for it (ini
`opswald_integrations`, or `opswald.record(integrations=...)`), so installing is safe and
an integration that is not listed never changes what a framework does.

Inside a hook, `active(name)` gives the running context, and `opswald.call_tool` /
`opswald.acall_tool` record the call or serve it from the golden without running the body.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from opswald.engine.current import current, inside

if TYPE_CHECKING:
    from opswald.engine.context import Context

KNOWN = ("langchain", "openai_agents", "pydantic_ai", "mcp")

_installed: set[str] = set()
_lock = threading.Lock()


class IntegrationUnavailable(ImportError):
    """The framework of an enabled integration is not installed."""


def install(names: Iterable[str]) -> None:
    """Hook the named frameworks (idempotent; each framework is imported lazily)."""
    for name in names:
        if name in _installed:
            continue
        if name not in KNOWN:
            raise ValueError(f"unknown integration {name!r}; known: {', '.join(KNOWN)}")
        with _lock:
            if name in _installed:
                continue
            module = importlib.import_module(f"opswald.integrations.{name}")
            try:
                module.install()
            except ImportError as exc:
                raise IntegrationUnavailable(
                    f"opswald integration {name!r} needs its framework: "
                    f"pip install 'pytest-opswald[{name}]' ({exc})"
                ) from exc
            _installed.add(name)


def active(name: str) -> Context | None:
    """The running context when integration `name` is enabled for it and the call is not
    nested inside an instrumented call (the outermost wins); else None."""
    if inside().get():
        return None
    ctx = current()
    if ctx is None or name not in ctx.integrations:
        return None
    return ctx


def return_decoder(function: Any) -> Callable[[Any], Any] | None:
    """Rebuild `function`'s annotated return type from recorded data (None: keep the data).

    A served value that does not validate is handed over as recorded. Given to
    `call_tool(decode=)`, it also records the result in the form the annotation rebuilds.
    """
    if not callable(function):
        return None
    from opswald.returns import Returns

    returns = Returns(function)
    return returns if returns.adapter() is not None else None
