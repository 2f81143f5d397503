"""pytest-opswald: golden-session regression testing of AI agents."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opswald.adapters import AdapterNotFound, adapter
    from opswald.engine.context import ReplayDivergence, ReplayedToolError
    from opswald.engine.replay import BatchResult, Replay, batch_replay
    from opswald.engine.run import ReplayResult
    from opswald.files import GoldenLoadError, GoldenWriteRefused
    from opswald.instrument import acall_tool, call_tool, llm, state, tool, user_input
    from opswald.recording import record
    from opswald.session import Session
    from opswald.tracestore import traces

__version__ = "0.1.0"

__all__ = [
    "AdapterNotFound",
    "BatchResult",
    "GoldenLoadError",
    "GoldenWriteRefused",
    "Replay",
    "ReplayDivergence",
    "ReplayResult",
    "ReplayedToolError",
    "Session",
    "acall_tool",
    "adapter",
    "batch_replay",
    "call_tool",
    "dump",
    "llm",
    "load",
    "record",
    "state",
    "tool",
    "traces",
    "user_input",
]


def load(path: str | os.PathLike[str]) -> Session:
    """Load and validate a golden file (`path`: a str or a path-like)."""

    from opswald.files import is_golden_text
    from opswald.files import load as _load

    text = is_golden_text(path)
    if text or not isinstance(path, str | os.PathLike):
        what = (
            "a golden's text"
            if text
            else f"{type(path).__name__}"
            if isinstance(path, bytes | bytearray)
            else repr(path)
        )
        raise TypeError(
            f"opswald.load takes a path, not {what}: for a golden's text, "
            "opswald.Session.model_validate(yaml.safe_load(text)) validates it"
        )

    return _load(path)


def dump(session: Session, path: str | os.PathLike[str]) -> None:
    """Write a session canonically and atomically, with its secrets replaced (in a pytest
    run by the run's rules, `opswald_redact` and the `pytest_opswald_redact` hooks; else
    by the `opswald_redact` of the project's pytest config; a session that holds none is
    written as it is)."""
    from opswald.files import dump as _dump
    from opswald.projectconfig import project_redactor
    from opswald.session import Session

    if not isinstance(session, Session):
        hint = (
            ", not a dict: Session.model_validate(data) makes one"
            if isinstance(session, dict)
            else f", not {session!r}"
        )
        raise TypeError(f"opswald.dump takes a Session first{hint}; then the path")
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"opswald.dump writes to a path, not {path!r}")

    _dump(session, path, redactor=project_redactor([path]))


# names loaded at their first use: pytest imports this package for its plugin
# (`opswald.plugin`) in every run, also in projects that only have it installed
_INSTRUMENT = ("acall_tool", "call_tool", "llm", "state", "tool", "user_input")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    if name in _INSTRUMENT:
        from opswald import instrument

        return getattr(instrument, name)
    if name == "adapter":
        from opswald.adapters import adapter

        return adapter
    if name == "Session":
        from opswald.session import Session

        return Session
    if name == "ReplayResult":
        from opswald.engine.run import ReplayResult

        return ReplayResult
    if name == "record":
        from opswald.recording import record

        return record
    if name == "traces":
        from opswald.tracestore import traces

        return traces
    if name == "AdapterNotFound":
        from opswald.adapters import AdapterNotFound

        return AdapterNotFound
    if name in ("GoldenLoadError", "GoldenWriteRefused"):
        from opswald import files

        return getattr(files, name)
    if name in ("Replay", "batch_replay", "BatchResult"):
        from opswald.engine import replay

        return getattr(replay, name)
    if name in ("ReplayDivergence", "ReplayedToolError"):
        from opswald.engine import context

        return getattr(context, name)
    raise AttributeError(f"module 'opswald' has no attribute {name!r}")
