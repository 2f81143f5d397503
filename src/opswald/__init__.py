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
    return sorted({*__all__, "__version__", *(n for n in globals() if n.startswith("__"))})


# where each name loaded at first use lives
_LAZY = {
    **dict.fromkeys(_INSTRUMENT, "opswald.instrument"),
    "adapter": "opswald.adapters",
    "AdapterNotFound": "opswald.adapters",
    "Session": "opswald.session",
    "ReplayResult": "opswald.engine.run",
    "record": "opswald.recording",
    "traces": "opswald.tracestore",
    "GoldenLoadError": "opswald.files",
    "GoldenWriteRefused": "opswald.files",
    "Replay": "opswald.engine.replay",
    "batch_replay": "opswald.engine.replay",
    "BatchResult": "opswald.engine.replay",
    "ReplayDivergence": "opswald.engine.context",
    "ReplayedToolError": "opswald.engine.context",
}


def __getattr__(name: str) -> Any:
    # by the module's name, not `from opswald import instrument`: that takes the package's
    # attribute, which may hold a module dropped from sys.modules since (an in-process
    # pytest run, pytester's, drops the modules first imported inside it), and its
    # decorators would then answer to another run's engine than the plugin's
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'opswald' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
