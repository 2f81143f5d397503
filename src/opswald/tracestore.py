"""The local trace store: sessions recorded outside pytest (`opswald.record(...)` without a
path), listed, pruned, promoted to goldens, and re-run in batches.

A trace is a session file like a golden, named `<UTC time to the µs>-<name>-<id>.trace.yaml` in the
store folder (`.opswald/traces/` under the working directory, or `$OPSWALD_TRACES_DIR`, or
the `store=` argument). The time prefix makes the newest-first order a sort by file name, so
`--limit N` reads only as many files as it lists. The `.trace.yaml` suffix keeps traces out
of golden collection.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opswald.session import Session

DEFAULT_DIR = Path(".opswald") / "traces"
SUFFIX = ".trace.yaml"
ENV = "OPSWALD_TRACES_DIR"
_STAMP = "%Y%m%dT%H%M%S.%fZ"
_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-(.*)-([0-9a-f]{12})\.trace\.yaml$")
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
MIN_PREFIX = 4  # characters of a trace id that find() takes as a prefix
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class TraceError(LookupError):
    """A trace reference that matches no trace, or several."""


def store_dir(store: str | Path | None = None) -> Path:
    """The store folder: `store`, else $OPSWALD_TRACES_DIR, else ./.opswald/traces."""
    if store is not None:
        return Path(store)
    env = os.environ.get(ENV)
    return Path(env) if env else Path.cwd() / DEFAULT_DIR


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("_.")[:60] or "session"


def save(session: Session, store: str | Path | None = None, *, now: datetime | None = None) -> Path:
    """Write `session` into the store (atomically, never over another trace); returns the
    path. The session gets a `session_id` when it has none: the trace's id."""
    from opswald.files import dump

    folder = store_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    trace_id = session.session_id if _is_id(session.session_id) else uuid.uuid4().hex[:12]
    if session.session_id is None:
        session = session.model_copy(update={"session_id": trace_id})
    stamp = (now or datetime.now(UTC)).strftime(_STAMP)
    path = folder / f"{stamp}-{_slug(session.name or 'session')}-{trace_id}{SUFFIX}"
    while path.exists():  # same id and second: a caller reusing a session_id
        trace_id = uuid.uuid4().hex[:12]
        path = folder / f"{stamp}-{_slug(session.name or 'session')}-{trace_id}{SUFFIX}"
    dump(session, path)
    return path


def _is_id(value: str | None) -> bool:
    return value is not None and re.fullmatch(r"[0-9a-f]{12}", value) is not None


@dataclass(frozen=True)
class TraceInfo:
    """One stored trace, as `opswald traces list` shows it."""

    id: str
    path: Path
    name: str
    recorded_at: datetime
    error: str | None
    tags: tuple[str, ...]
    steps: int
    cost: float | None  # with unpriced_calls, the priced part only
    duration_ms: float | None
    unpriced_calls: int = 0  # model calls that answered without a cost

    @classmethod
    def of(cls, path: Path, session: Session) -> TraceInfo:
        from opswald.expect.budgets import figures

        match = _NAME.match(path.name)
        assert match is not None
        stamp, _, trace_id = match.groups()
        fig = figures(session)
        error = session.error
        return cls(
            id=trace_id,
            path=path,
            name=session.name or "",
            recorded_at=datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC),
            error=f"{error.type}: {error.message}" if error is not None else None,
            tags=tuple(session.tags),
            steps=fig.steps,
            cost=fig.cost,
            duration_ms=session.metadata.get("duration_ms"),
            unpriced_calls=fig.unpriced_calls,
        )


def _files(folder: Path) -> list[Path]:
    """Trace files, newest first."""
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if _NAME.match(p.name)), key=lambda p: p.name, reverse=True
    )


def stored(store: str | Path | None = None) -> int:
    """How many traces the store holds (their files are not read)."""
    return len(_files(store_dir(store)))


def _matching(
    store: str | Path | None, error: bool | None, tag: str | None
) -> Iterator[tuple[Path, Session]]:
    from opswald.files import load

    for path in _files(store_dir(store)):
        session = load(path)
        if error is not None and (session.error is not None) != error:
            continue
        if tag is not None and tag not in session.tags:
            continue
        yield path, session


def list_traces(
    store: str | Path | None = None,
    *,
    error: bool | None = None,
    tag: str | None = None,
    limit: int | None = None,
) -> list[TraceInfo]:
    """Stored traces, newest first; `error=True` only those that ended in an error."""
    out: list[TraceInfo] = []
    for path, session in _matching(store, error, tag):
        if limit is not None and len(out) >= limit:
            break
        out.append(TraceInfo.of(path, session))
    return out


def traces(
    *,
    error: bool | None = None,
    tag: str | None = None,
    limit: int | None = None,
    store: str | Path | None = None,
) -> list[Session]:
    """The sessions of stored traces, newest first — e.g. for `opswald.batch_replay`."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a whole number from 0, not {limit!r}")
    out: list[Session] = []
    for _, session in _matching(store, error, tag):
        if limit is not None and len(out) >= limit:
            break
        out.append(session)
    return out


def find(ref: str, store: str | Path | None = None) -> Path:
    """A trace by id (or unique id prefix of 4+ characters), file name, or path. A shorter
    reference that is neither says that a prefix takes 4 characters."""
    path = Path(ref)
    if path.is_file():
        return path
    candidates = _files(store_dir(store))
    exact = [p for p in candidates if p.name == ref]
    if exact:
        return exact[0]
    hits = [p for p in candidates if _NAME.match(p.name).group(3).startswith(ref)]  # type: ignore[union-attr]
    if len(ref) < MIN_PREFIX:
        n = len(hits)
        some = f"; {n} trace id{'s start' if n != 1 else ' starts'} with it" if ref and n else ""
        raise TraceError(
            f"no trace {ref!r} in {store_dir(store)}: a trace id prefix takes "
            f"{MIN_PREFIX} or more characters{some} (see: opswald traces list)"
        )
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        names = ", ".join(p.name for p in hits[:5])
        raise TraceError(f"trace {ref!r} is ambiguous: {names}")
    raise TraceError(f"no trace {ref!r} in {store_dir(store)} (see: opswald traces list)")


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` as a timedelta."""
    match = _AGE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an age like 30d, 12h, 90m, 45s or 2w")
    try:  # an age reaching back before the year 1 cannot be subtracted from now
        age = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        datetime.now(UTC) - age
    except OverflowError:
        raise ValueError(
            f"{text!r} reaches back before the year 1; use an age like 30d, 12h or 2w"
        ) from None
    return age


def prune(
    older_than: timedelta, store: str | Path | None = None, *, now: datetime | None = None
) -> list[Path]:
    """Delete traces recorded more than `older_than` ago; returns the deleted paths."""
    cutoff = (now or datetime.now(UTC)) - older_than
    gone = []
    for path in _files(store_dir(store)):
        match = _NAME.match(path.name)
        assert match is not None
        if datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC) < cutoff:
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone


def promote(
    ref: str,
    *,
    name: str,
    description: str | None = None,
    tags: list[str] | None = None,
    goldens: str | Path = "goldens",
    store: str | Path | None = None,
) -> Path:
    """Turn a stored trace into `goldens/<name>.golden.yaml` (never over an existing file).

    The golden keeps the trace's steps, input, output and error (a trace that ended in an
    error becomes an expected-failure golden) and its id in `metadata.trace`.
    """
    from pydantic import ValidationError

    from opswald.files import dump, load, schema_problem
    from opswald.redact import redact_session

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"golden name {name!r}: use letters, digits and _ (a test id)")
    source = find(ref, store)
    trace = load(source)
    target = Path(goldens) / f"{name}.golden.yaml"
    if target.exists():
        raise FileExistsError(f"{target} exists; choose another --name")
    update: dict[str, Any] = {
        "name": name,
        "metadata": {**trace.metadata, "trace": trace.session_id or source.name},
    }
    if description is not None:
        update["description"] = description
    if tags is not None:
        from opswald.redact import DEFAULT_REDACTOR

        for tag in tags:  # a tag is a pytest marker, in every run's output: never a secret
            if DEFAULT_REDACTOR.text(tag) != tag:
                raise ValueError(
                    f"--tags: {DEFAULT_REDACTOR.text(tag)!r} is a secret; a tag is a pytest "
                    "marker, printed in every run's output: give another"
                )
        update["tags"] = list(dict.fromkeys(tags))  # `a,a` is one tag
    try:
        golden = redact_session(
            Session.model_validate({**trace.model_dump(exclude_unset=True), **update})
        )
    except ValidationError as exc:
        raise ValueError(str(schema_problem(exc))) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    dump(golden, target)
    return target
