"""Which run context is active (kept tiny: instrumented agents import this at start-up)."""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opswald.engine.context import Context


MISS: object = object()  # Context.answer_exact: not the recorded call, nothing was done

# The context of the run in this task or thread, and whether the code running is opswald's
# own call of a recorded function (not the agent's). Public for hot paths that read them
# directly; everything else goes through `current()` and `inside()`.
CURRENT: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "opswald_context", default=None
)
INSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("opswald_inside", default=False)


class _Fallback:
    """The context of the run in progress, for threads the agent starts itself
    (threads do not inherit context variables)."""

    lock = threading.Lock()
    active: Context | None = None


def current() -> Context | None:
    ctx = CURRENT.get()
    if ctx is None and threading.current_thread() is not threading.main_thread():
        ctx = _Fallback.active
    return ctx


def inside() -> contextvars.ContextVar[bool]:
    return INSIDE


class activate:
    """Make `ctx` the current context for the duration of a `with` block."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._token: contextvars.Token[Context | None] | None = None

    def __enter__(self) -> Context:
        self._token = CURRENT.set(self.ctx)
        with _Fallback.lock:
            _Fallback.active = self.ctx
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        CURRENT.reset(self._token)
        with _Fallback.lock:
            if _Fallback.active is self.ctx:
                _Fallback.active = None
