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
from opswald.diff import render_difference
from opswald.hidden import HiddenEscapingDumper, has_hidden
from opswald.session import Session, without_stream_chunks
from opswald.sessiondiff import (
    _COUNTED,
    VOLATILE_METADATA_FIELDS,
    VOLATILE_STEP_FIELDS,
    session_differences,
    stable_data,
)

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

MAX_DIFFERENCES = 20  # shown in one failure
LEGEND = "[- snapshot] [+ actual]"
FIX = "fix: if the new behaviour is intended, accept it with --snapshot-update"


# --- stable serialisation ------------------------------------------------------------------


def stable_session(session: Session) -> Session:
    """A copy of `session` without the fields that change on every run (nor the pieces a
    stream came in)."""
    metadata = {k: v for k, v in session.metadata.items() if k not in VOLATILE_METADATA_FIELDS}
    update: dict[str, Any] = {"metadata": metadata}
    if session.steps is not None:
        cleared = dict.fromkeys(VOLATILE_STEP_FIELDS)
        update["steps"] = [
            step.model_copy(
                update={**cleared, "attributes": without_stream_chunks(step.attributes)}
            )
            for step in session.steps
        ]
    return session.model_copy(update=update)


class _Dumper(HiddenEscapingDumper):
    """Block style, list items indented under their key, never an anchor, the characters
    that hide or reorder text escaped."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    odd = any(c in text for c in "\r\x85\u2028\u2029") or has_hidden(text)
    style = '"' if odd else "|" if "\n" in text else None
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
