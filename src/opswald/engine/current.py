"""Which run context is active (kept tiny: instrumented agents import this at start-up)."""

from __future__ import annotations

import contextvars
import sys
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
# The flow of control (`lane_owner`) this task or thread's context was last set by: the
# run's own when it starts, then each task or thread that makes a call (`Context.lane`).
# An asyncio task (and `asyncio.to_thread`, and code run in a copied context) starts with
# its starter's, which tells which lane started it; a new thread with none (not known).
LANE: contextvars.ContextVar[object | None] = contextvars.ContextVar("opswald_lane", default=None)


class OutsideFlow:
    """The flow of the calls that reach opswald from another process (the replay server
    takes each connection on a thread of its own: not the agent's threads or tasks, which
    it cannot see). Its calls are one flow, so they make no lanes, and which of them were
    in flight together is read from their timestamps."""

    __slots__ = ()


def lane_owner() -> object:
    """The flow of control making a call: the asyncio task it runs in, else its thread.
    (A call made through `asyncio.to_thread` is its worker thread's.) An agent that does
    not use asyncio does not have it imported for this."""
    aio = sys.modules.get("asyncio")
    if aio is not None:
        try:
            task = aio.current_task()
        except RuntimeError:  # no event loop running in this thread
            task = None
        if task is not None:
            return task
    return threading.current_thread()


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
        self._lane: contextvars.Token[object | None] | None = None

    def __enter__(self) -> Context:
        self._token = CURRENT.set(self.ctx)
        self._lane = LANE.set(lane_owner())
        with _Fallback.lock:
            _Fallback.active = self.ctx
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None and self._lane is not None
        CURRENT.reset(self._token)
        LANE.reset(self._lane)
        with _Fallback.lock:
            if _Fallback.active is self.ctx:
                _Fallback.active = None
