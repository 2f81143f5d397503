"""Turn traces from other tools into goldens.

Each format has a module with one function, `convert(data) -> ImportResult`, taking the
already-parsed JSON document. `import_file` reads a file and dispatches on the format.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opswald.session import Session

FORMATS = ("otel", "openinference", "langsmith", "langfuse")


class ImportFormatError(ValueError):
    """The input is not a document of the expected format (names the file and where)."""


@dataclass
class ImportResult:
    """What an importer produced, and an account of what it did with its input.

    `mapped` counts attribute/field names turned into session fields, `kept` those copied
    verbatim into a step's `attributes`, `skipped` those dropped (with the reason as part of
    the key, e.g. ``"span without gen_ai.operation.name"``). `errors` names the traces that
    gave no golden (no model or tool call in them: nothing a replay could check).
    """

    sessions: list[Session] = field(default_factory=list)
    mapped: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, session: Session, missing: str) -> None:
        """Keep `session` as a golden, or, when it has no model or tool call, record an error
        instead; `missing` says what the importer looked for (and, when the trace looks like
        another format, which)."""
        if any(step.type in ("llm_call", "tool_call") for step in session.step_list):
            self.sessions.append(session)
            return
        trace = session.session_id or "without an id"
        name = f" ({session.name})" if session.name and session.name != session.session_id else ""
        self.errors.append(
            f"trace {trace}{name}: no model or tool calls ({missing}); no golden written"
        )

    def merge(self, other: ImportResult) -> None:
        self.sessions.extend(other.sessions)
        self.errors.extend(other.errors)
        self.mapped.update(other.mapped)
        self.kept.update(other.kept)
        self.skipped.update(other.skipped)
        self.warnings.extend(other.warnings)


def convert(fmt: str, data: Any) -> ImportResult:
    """Convert one parsed document of format `fmt` (one of `FORMATS`). Secrets in it are
    replaced (`opswald.redact`), in the sessions and in the account alike: what a trace
    carried reaches neither a golden nor a screen."""
    if fmt == "otel":
        from opswald.importers.otel import convert as run
    elif fmt == "openinference":
        from opswald.importers.openinference import convert as run
    elif fmt == "langsmith":
        from opswald.importers.langsmith import convert as run
    elif fmt == "langfuse":
        from opswald.importers.langfuse import convert as run
    else:
        raise ValueError(f"unknown import format {fmt!r}; expected one of {', '.join(FORMATS)}")
    result = run(data)
    if not result.sessions and not result.errors:  # `[]`, `{"runs": []}`, `{"data": []}`, ...
        raise ImportFormatError("no traces in it")
    return _redacted(result)


def _redacted(result: ImportResult) -> ImportResult:
    from opswald.redact import DEFAULT_REDACTOR, redact_session

    text = DEFAULT_REDACTOR.text

    def counts(counter: Counter[str]) -> Counter[str]:
        out: Counter[str] = Counter()
        for key, n in counter.items():  # attribute names come from the trace
            out[text(key)] += n
        return out

    sessions = []
    warnings = [text(warning) for warning in result.warnings]
    errors = [text(error) for error in result.errors]
    for session in result.sessions:
        clean = redact_session(session)
        dropped = len(session.tags) - len(clean.tags)
        if dropped > 0:  # a placeholder is no marker name: the tag is left out, not hidden
            were = "tags held a secret and were" if dropped != 1 else "tag held a secret and was"
            warnings.append(f"{clean.name}: {dropped} {were} left out")
        sessions.append(clean)
    return ImportResult(
        sessions=sessions,
        mapped=counts(result.mapped),
        kept=counts(result.kept),
        skipped=counts(result.skipped),
        warnings=warnings,
        errors=errors,
    )


def read_json(path: Path) -> Any:
    """A JSON document, or several one after another (JSON Lines, or indented objects as
    ConsoleSpanExporter prints them), returned as a list."""
    data = path.read_bytes()
    try:  # utf-8-sig: a UTF-8 byte order mark (Windows tools write one) is not part of the JSON
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        hint = " (it starts with a UTF-16 byte order mark)" if utf16 else ""
        raise ImportFormatError(
            f"{path}: not UTF-8 text{hint}: byte 0x{data[exc.start]:02x} at offset {exc.start}; "
            "save the export as UTF-8 (e.g. iconv -t UTF-8) and import it again"
        ) from None
    if not text.strip():  # an export that came out empty (a failed download, a filter)
        raise ImportFormatError(f"{path}: empty: no trace export in it")
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        if first.msg != "Extra data":
            raise ImportFormatError(
                f"{path}:{first.lineno}:{first.colno}: not JSON: {first.msg}"
            ) from None
    # Documents one after another: JSON Lines, or the indented objects ConsoleSpanExporter
    # prints (one span's to_json() after another).
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    at = 0
    while True:
        at = _skip_space(text, at)
        if at == len(text):
            return documents
        try:
            document, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}"
            ) from None
        documents.append(document)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def import_file(fmt: str, path: str | Path) -> ImportResult:
    """Read `path` (JSON or JSON Lines) and convert it. The result's `errors` name the file."""
    p = Path(path)
    try:
        result = convert(fmt, read_json(p))
        result.errors = [f"{p}: {error}" for error in result.errors]
        return result
    except ImportFormatError as exc:
        if str(p) in str(exc):
            raise
        raise ImportFormatError(f"{p}: {exc}") from None
