"""When do a tool call's arguments match the recorded ones (`expect.tool_calls.args`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from opswald.diff import differences, json_equal
from opswald.expect.subset import is_subset, subset_differences
from opswald.jsonable import to_jsonable
from opswald.paths import Path, as_written, drop
from opswald.redact import placeholders_alike
from opswald.session import ToolCallsExpect
from opswald.verdict import DIFFERENCE_LIMIT, Difference

__all__ = ["ArgsMode", "args_differences", "args_match", "resolve_args_rule"]

ArgsMode = Literal["exact", "subset", "ignore"]


def resolve_args_rule(spec: ToolCallsExpect, tool: str) -> tuple[ArgsMode, list[Path]]:
    """The rule for `tool`: its override's `args` wins; ignore_args lists are combined.

    Raises ValueError naming the pattern when an ignore_args entry is not a valid path.
    """
    override = spec.tools.get(tool)
    mode: ArgsMode = spec.args
    patterns = list(spec.ignore_args)
    if override is not None:
        mode = override.args or mode
        patterns += override.ignore_args
    parsed: list[Path] = []
    for pattern in patterns:
        try:
            parsed.extend(as_written(pattern, "input"))
        except ValueError as exc:
            raise ValueError(f"expect.tool_calls ignore_args for {tool}: {exc}") from None
    return mode, parsed


def _prepared(recorded: Any, actual: Any, ignore: Sequence[Path]) -> tuple[Any, Any]:
    return drop(to_jsonable(recorded), ignore), drop(to_jsonable(actual), ignore)


def labels_only(d: Difference) -> bool:
    """Whether the two sides differ only in their redaction placeholders' labels, which
    replay compares alike (one secret gets its name's label or its shape's, depending on
    where it stands; a golden recorded before may hold the other)."""
    return (
        isinstance(d.golden, str)
        and isinstance(d.actual, str)
        and placeholders_alike(d.golden) == placeholders_alike(d.actual)
    )


def args_match(recorded: Any, actual: Any, *, mode: ArgsMode, ignore: Sequence[Path]) -> bool:
    """`exact`: equal; `subset`: every recorded argument present and equal; `ignore`: True.

    Paths matching an `ignore` glob (relative to the arguments) are left out first.
    """
    if mode == "ignore":
        return True
    recorded, actual = _prepared(recorded, actual, ignore)
    if mode == "subset":
        return is_subset(recorded, actual) or is_subset(
            placeholders_alike(recorded), placeholders_alike(actual)
        )
    return json_equal(recorded, actual) or json_equal(
        placeholders_alike(recorded), placeholders_alike(actual)
    )


def args_differences(
    recorded: Any,
    actual: Any,
    *,
    mode: ArgsMode,
    ignore: Sequence[Path],
    base: Path = (),
    step: int | None = None,
    limit: int = DIFFERENCE_LIMIT,
) -> list[Difference]:
    """Why `args_match` is False: the differing arguments, paths prefixed with `base`."""
    if mode == "ignore":
        return []
    if mode == "subset":
        recorded, actual = _prepared(recorded, actual, ignore)
        found = subset_differences(recorded, actual, base=base, step=step, limit=limit)
    else:
        found = differences(recorded, actual, base=base, step=step, ignore=ignore, limit=limit)
    return [d for d in found if not labels_only(d)]
