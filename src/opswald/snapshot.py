"""A syrupy extension that snapshots sessions as canonical YAML and diffs them step by step.

```python
from opswald.snapshot import SessionSnapshotExtension

def test_transcript(golden_replay, snapshot):
    assert golden_replay.actual == snapshot(extension_class=SessionSnapshotExtension)
```

Each snapshot is one `__snapshots__/<test file>/<test name>.session.yaml` file holding the
session as `files.dumps` writes it, without the fields that change on every run (step
`timestamp` and `duration_ms`, metadata `recorded_at`, `duration_ms`, `recorded_with`).
On a mismatch the diff is in the golden's terms (`step 5 › input.passenger: 'Alice' →
'Bob'`), bounded; text that cannot be read as YAML falls back to syrupy's line diff.
syrupy is imported here only: `import opswald` never needs it.

`snapshot(extension_class=...)` is undone by syrupy before pytest asks for the failure's
explanation, so syrupy would render it with the default extension's line diff; the
`pytest_assertrepr_compare` hook below (load this module as a plugin:
`pytest_plugins = ["opswald.snapshot"]`) renders ours for any `.session.yaml` snapshot.
`snapshot.use_extension(SessionSnapshotExtension)` needs no hook.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.types import PropertyFilter, PropertyMatcher, SerializableData, SerializedData

from opswald import files
from opswald.diff import differences, render_difference
from opswald.jsonable import to_jsonable
from opswald.session import Session
from opswald.verdict import MISSING, Difference

__all__ = [
    "VOLATILE_METADATA_FIELDS",
    "VOLATILE_STEP_FIELDS",
    "SessionSnapshotExtension",
    "pytest_assertrepr_compare",
    "render_session_diff",
    "session_differences",
    "stable_data",
    "stable_session",
]

VOLATILE_STEP_FIELDS: tuple[str, ...] = ("timestamp", "duration_ms")
VOLATILE_METADATA_FIELDS: tuple[str, ...] = ("recorded_at", "duration_ms", "recorded_with")
MAX_DIFFERENCES = 20  # shown in one failure
_COUNTED = 200  # differences counted before "... and N+ more"
LEGEND = "[- snapshot] [+ actual]"
FIX = "fix: if the new behaviour is intended, accept it with --snapshot-update"


# --- stable serialisation ------------------------------------------------------------------


def stable_session(session: Session) -> Session:
    """A copy of `session` without the fields that change on every run."""
    metadata = {k: v for k, v in session.metadata.items() if k not in VOLATILE_METADATA_FIELDS}
    update: dict[str, Any] = {"metadata": metadata}
    if session.steps is not None:
        cleared = dict.fromkeys(VOLATILE_STEP_FIELDS)
        update["steps"] = [step.model_copy(update=cleared) for step in session.steps]
    return session.model_copy(update=update)


def stable_data(data: Any) -> Any:
    """Plain data of a session-like dict (or list of steps) without its volatile fields."""
    plain = to_jsonable(data)
    if isinstance(plain, dict):
        plain = dict(plain)
        if isinstance(plain.get("metadata"), dict):
            plain["metadata"] = _without(plain["metadata"], VOLATILE_METADATA_FIELDS)
        if isinstance(plain.get("steps"), list):
            plain["steps"] = _stable_steps(plain["steps"])
    elif isinstance(plain, list) and _are_steps(plain):
        plain = _stable_steps(plain)
    return plain


def _without(mapping: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


def _stable_steps(steps: list[Any]) -> list[Any]:
    return [_without(s, VOLATILE_STEP_FIELDS) if isinstance(s, dict) else s for s in steps]


def _are_steps(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "type" in i for i in items)


class _Dumper(yaml.SafeDumper):
    """Block style, list items indented under their key, never an anchor."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(c in text for c in "\r\x85\u2028\u2029") else "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump_plain(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1 << 30,
    )
    return text


# --- session-aware diff --------------------------------------------------------------------


def session_differences(golden: Any, actual: Any, *, limit: int = _COUNTED) -> list[Difference]:
    """Differences between two sessions' plain data, steps compared position by position.

    Paths are in the golden's terms: `step 5 › input.passenger`, `output.answer`. Values
    that are not sessions (nor lists of steps) are compared as they are.
    """
    if isinstance(golden, list) and isinstance(actual, list):
        if _are_steps(golden) or _are_steps(actual):
            return _step_differences(golden, actual, limit)
    if not (isinstance(golden, dict) and isinstance(actual, dict)):
        return differences(golden, actual, limit=limit)
    out: list[Difference] = []
    for key in [*golden, *(k for k in actual if k not in golden)]:
        room = limit - len(out)
        if room <= 0:
            break
        g, a = golden.get(key, MISSING), actual.get(key, MISSING)
        if key == "steps" and isinstance(g, list) and isinstance(a, list):
            out.extend(_step_differences(g, a, room))
        else:
            out.extend(differences(g, a, base=(key,), limit=room))
    return out[:limit]


def _step_differences(golden: list[Any], actual: list[Any], limit: int) -> list[Difference]:
    out: list[Difference] = []
    for index in range(max(len(golden), len(actual))):
        room = limit - len(out)
        if room <= 0:
            break
        g = _step_body(golden[index]) if index < len(golden) else MISSING
        a = _step_body(actual[index]) if index < len(actual) else MISSING
        out.extend(differences(g, a, step=index + 1, limit=room))
    return out


def _step_body(step: Any) -> Any:
    """A step without its number: the position already says it."""
    return {k: v for k, v in step.items() if k != "step"} if isinstance(step, dict) else step


def _read(text: str) -> Any:
    """Plain data of a snapshot's text; raises when it is no YAML."""
    try:
        return files.to_data(files.loads(text, source="<snapshot>"))
    except files.GoldenLoadError:
        return yaml.load(text, Loader=yaml.SafeLoader)


def render_session_diff(snapshot_text: str, actual_text: str) -> list[str] | None:
    """Our diff of two snapshot texts, or None when a line diff would say more."""
    if not snapshot_text.strip() or not actual_text.strip():
        return None
    try:
        found = session_differences(_read(snapshot_text), _read(actual_text), limit=_COUNTED + 1)
    except Exception:  # unreadable YAML, or data deepdiff cannot walk: line diff instead
        return None
    if not found:  # same data, other text (comments, layout): only a line diff shows it
        return None
    lines = [LEGEND]
    for d in found[:MAX_DIFFERENCES]:
        lines.extend(render_difference(d, "detailed"))
    if len(found) > MAX_DIFFERENCES:
        more = len(found) - MAX_DIFFERENCES
        lines.append(f"... and {f'{more - 1}+' if len(found) > _COUNTED else more} more")
    lines.append(FIX)
    return lines


# --- the extension -------------------------------------------------------------------------


class SessionSnapshotExtension(SingleFileSnapshotExtension):
    """One `.session.yaml` file per snapshot: canonical, stable YAML with a session-aware diff.

    A `Session` is written as `files.dumps` writes a golden; a plain dict or list as the
    same style of YAML. Volatile fields are left out (see `stable_session`). syrupy's
    `exclude`, `include` and `matcher` options are not applied.
    """

    file_extension = "session.yaml"
    _write_mode = WriteMode.TEXT

    def serialize(
        self,
        data: SerializableData,
        *,
        exclude: PropertyFilter | None = None,
        include: PropertyFilter | None = None,
        matcher: PropertyMatcher | None = None,
    ) -> SerializedData:
        if isinstance(data, Session):
            return files.dumps(stable_session(data))
        return _dump_plain(stable_data(data))

    def diff_lines(
        self, serialized_data: SerializedData, snapshot_data: SerializedData
    ) -> Iterator[str]:
        ours = render_session_diff(str(snapshot_data), str(serialized_data))
        if ours is None:
            yield from super().diff_lines(serialized_data, snapshot_data)
        else:
            yield from ours


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(
    config: pytest.Config, op: str, left: Any, right: Any
) -> list[str] | None:
    """Our diff for a failed `== snapshot` whose snapshot is a `.session.yaml` file."""
    if isinstance(right, SnapshotAssertion):
        assertion, head = right, f"[+ received] {op} [- {right.name}]"
    elif isinstance(left, SnapshotAssertion):
        assertion, head = left, f"[- {left.name}] {op} [+ received]"
    else:
        return None
    result = assertion.executions.get(assertion.num_executions - 1)
    if (
        result is None
        or result.success
        or result.exception is not None
        or not str(result.snapshot_location).endswith(f".{SessionSnapshotExtension.file_extension}")
    ):
        return None
    ours = render_session_diff(str(result.recalled_data or ""), str(result.asserted_data or ""))
    return None if ours is None else [head, *ours]
