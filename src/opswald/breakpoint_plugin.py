"""--opswald-break: conditional breakpoints checked after every step of a golden's run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opswald.engine.breakpoints import Condition, compile_condition


@dataclass(frozen=True, kw_only=True)
class Breakpoints:
    conditions: tuple[Condition, ...]
    action: str

    @classmethod
    def compile(cls, expressions: list[str], action: str) -> Breakpoints:
        return cls(conditions=tuple(compile_condition(e) for e in expressions), action=action)

    def check(self, listener: Any, ctx: Any, step: Any) -> None:
        """Evaluate every condition after `step`; log, fail or pause on a hit."""
        from opswald.engine.replay import variables_for

        variables = variables_for(ctx, step)
        for condition in self.conditions:
            if not condition.evaluate(variables):
                continue
            expression = condition.expression
            if self.action == "log":
                listener.notes.append(
                    f"{listener.view.nodeid}: breakpoint {expression!r} hit at step {step.step} "
                    f"({step.type})"
                )
            elif self.action == "fail":
                listener.hits.append((step.step, expression))
            else:
                pause(listener.view, step, ctx, expression)


def pause(replay: Any, step: Any, ctx: Any, expression: str) -> None:
    """Drop into pdb (pytest's, so output capture is suspended) with `replay`, `step` and
    `state` in scope."""
    import pytest

    from opswald.engine.state import state_at

    state = state_at(ctx.actual_steps(), step.step)
    pytest.set_trace(
        header=f"opswald: breakpoint {expression!r} hit at step {step.step} ({step.type}); "
        "in scope: replay, step, state. Continue with `c`."
    )
    del replay, state  # in scope for the debugger above
