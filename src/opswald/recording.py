"""`opswald.record(...)`: record a session outside pytest (a script, a notebook, a server)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from opswald.session import Session


@dataclass
class Recording:
    """Handed out by `opswald.record`; set `output` before the block ends."""

    output: Any = None
    path: Path | None = None
    _ctx: Any = field(default=None, repr=False)
    _session: Session | None = field(default=None, repr=False)

    @property
    def session(self) -> Session:
        """The session recorded, once the block has ended (a `Session`, never None, so
        `rec.session.step_list` type-checks)."""
        if self._session is None:
            raise RuntimeError(
                "rec.session: the block has not ended, or ended interrupted "
                "(KeyboardInterrupt, SystemExit), which records nothing"
            )
        return self._session

    @session.setter
    def session(self, value: Session) -> None:
        self._session = value

    @property
    def steps(self) -> list[Any]:
        """The steps recorded so far."""
        return self._ctx.actual_steps() if self._ctx is not None else []


@contextmanager
def record(
    path: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    input: Any = None,
    agent: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    integrations: Sequence[str] = (),
    side_effect_tools: Sequence[str] = (),
    langgraph_state: bool = False,
    store: str | os.PathLike[str] | Literal[False] | None = None,
) -> Iterator[Recording]:
    """Record every instrumented call and intercepted SDK request made inside the block.

    >>> with opswald.record("goldens/refund.golden.yaml", name="refund", input=request) as rec:
    ...     rec.output = run_agent(request)

    The session (redacted, canonical) is written to `path` when given — atomically, and
    never over an existing file — and otherwise into the local trace store
    (`.opswald/traces/`, `$OPSWALD_TRACES_DIR` or `store=`; `store=False` keeps it in memory
    only). It is available as `rec.session`, its file as `rec.path`. An exception leaving
    the block is recorded as the session's `error` and raised again; a KeyboardInterrupt or
    SystemExit leaving it writes and stores nothing (the session stopped part way, and
    would pass as complete). A session whose file
    loading would refuse (over `opswald_max_golden_bytes` or `opswald_max_golden_depth`)
    raises `GoldenWriteRefused` when `path` is given (a warning instead when an exception of
    the agent is leaving the block: that one is raised), and is kept out of the trace store
    with a warning otherwise.
    """
    from opswald.engine.context import Context, HookFailed, activate
    from opswald.files import GoldenWriteRefused, dump
    from opswald.intercept.transport import intercepting
    from opswald.jsonable import formless, lost_keys, to_jsonable
    from opswald.redact import redact_data

    _check_labels(name=name, agent=agent, tags=tags)  # before the agent runs, not after
    # the input as given: an agent may change it in place (append to a history), and its
    # golden must start from what the agent was handed, as its replay will
    given = to_jsonable(input)
    collided = lost_keys(input)
    shapeless = formless(input)
    target = Path(path) if path is not None else None
    if target is not None and target.exists():
        raise FileExistsError(f"{target} exists; opswald.record never overwrites a golden")
    if integrations:
        from opswald.integrations import install

        install(integrations)
    from opswald.projectconfig import project_pricer, project_redactor

    # the user's answers scripted in the input, as a recording under pytest takes them
    scripted = given.get("user_inputs") if isinstance(given, dict) else None
    ctx = Context(
        golden=None,
        policy="live",
        user_inputs=scripted if isinstance(scripted, list) else None,
        block_side_effects=False,
        redactor=project_redactor([target] if target is not None else []),
        integrations=tuple(integrations),
        side_effect_tools=frozenset(side_effect_tools),
        langgraph_state=langgraph_state,
    )
    # as under pytest: the shipped price table, the project's opswald_prices over it
    ctx.prices = project_pricer(
        [target] if target is not None else [], who="opswald.record", stacklevel=4
    )
    rec = Recording(_ctx=ctx)
    started = time.perf_counter()
    error: Any = None
    interrupted = False
    try:
        with activate(ctx), intercepting():
            yield rec
    except Exception as exc:
        error = ctx.error_of(exc)
        raise
    except HookFailed as failed:
        # what opswald could not record (a response's cost that is none): not the agent's
        # error, and the session stopped at it; nothing is written, the reason is raised
        interrupted = True
        raise (failed.__cause__ or failed) from None
    except BaseException:
        # Ctrl-C, sys.exit(): the session stops part way, and written it would be a golden
        # that passes as complete (no error, no output): nothing is written or stored
        interrupted = True
        raise
    finally:
        if not interrupted:
            metadata = {
                "recorded_at": datetime.now(UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z"),
                "recorded_with": "opswald.record",
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            if integrations:
                metadata["integrations"] = list(integrations)
            data: dict[str, Any] = {
                "name": name or (target.name.split(".golden.")[0] if target else "session"),
                "metadata": metadata,
                "input": given,
                "steps": [],
                "output": to_jsonable(rec.output),
                "error": error,
            }
            if agent:
                data["agent"] = agent
            if tags:
                data["tags"] = list(tags)
            # the steps are redacted as they are recorded; the rest here, names and tags too
            session = Session.model_validate(redact_data(data, ctx.redactor))
            ctx.close_open()  # calls the block ended before they finished: cancelled steps
            session.steps = ctx.actual_steps()
            rec.session = session
            unwritable = _unwritable(
                ctx, collided, shapeless, rec.output, errored=error is not None
            )
            if unwritable is not None and target is not None:
                unwritable = f"{target} was not written: {unwritable}"
            if target is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    if unwritable is not None:
                        raise GoldenWriteRefused(unwritable)
                    try:
                        dump(session, target, exclusive=True)
                    except FileExistsError:
                        # written while the block ran (a nested record, another thread)
                        raise FileExistsError(
                            f"{target} exists: it was written while the block ran, and "
                            "opswald.record never overwrites a golden"
                        ) from None
                except (GoldenWriteRefused, FileExistsError) as exc:
                    if error is None:
                        raise
                    # the agent's own exception is leaving the block: it goes on, said beside
                    import warnings

                    warnings.warn(f"opswald.record: {target} was not written: {exc}", stacklevel=3)
                else:
                    rec.path = target
            elif store is not False:
                import uuid

                from opswald.tracestore import save

                session.session_id = uuid.uuid4().hex[:12]
                try:
                    if unwritable is not None:
                        raise GoldenWriteRefused(unwritable)
                    rec.path = save(session, None if store is None else Path(os.fspath(store)))
                except GoldenWriteRefused as exc:  # the run itself went well: say so, go on
                    import warnings

                    warnings.warn(f"opswald.record: the trace was not stored: {exc}", stacklevel=3)


def _check_labels(*, name: object, agent: object, tags: object) -> None:
    """TypeError or ValueError saying which of `name=`, `agent=`, `tags=` the session
    could not hold: found when the block ends, the refusal would replace the agent's own
    exception (or what it did would be lost)."""
    from opswald.session import _check_tag

    for label, value in (("name", name), ("agent", agent)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"opswald.record: {label}= takes a string, not {value!r}")
    if tags is None:
        return
    if not isinstance(tags, list | tuple):
        raise TypeError(f"opswald.record: tags= takes a list of tags, not {tags!r}")
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"opswald.record: tags= takes a list of tags (strings), not {tag!r}")
        try:
            _check_tag(tag)
        except ValueError as exc:
            raise ValueError(f"opswald.record: tags=: {exc}") from None


def _unwritable(
    ctx: Any, collided: Any, shapeless_input: Any, output: Any, *, errored: bool
) -> str | None:
    """Why the session is not written, as under pytest: a dict whose keys a golden writes
    alike (`1` and `'1'`: one would be lost), or a value with no data form (its repr, which
    changes every run), in the arguments or results of the calls, a snapshot, or the
    output (not looked at when the block raised: the session has no output then); and
    colliding keys or a value with no data form in the `input` given (`collided`,
    `shapeless_input`: `lost_keys` and `formless` of it, taken when the block started)."""
    from opswald.engine.context import KeysLost
    from opswald.engine.run import data_form_finding, lost_keys_finding
    from opswald.jsonable import formless, lost_keys
    from opswald.paths import render

    if collided is not None:
        first, second = collided.keys
        return (
            f"the input given has keys that a golden writes alike: {first} and {second} in "
            f"{render(('input', *collided.path))} are both written {collided.written!r}, so "
            "the golden would keep only one; use keys of one type in that dict (strings, "
            "say), so that none is lost"
        )
    if shapeless_input is not None:
        where = render(("input", *shapeless_input.path))
        return (
            f"the input given has no data form: {where} is an instance of "
            f"{shapeless_input.kind}, written only as its repr "
            f"{ctx.redactor(shapeless_input.text)}, which changes every run, so the golden "
            "would not replay; pass plain data (dicts, lists, strings, numbers), a "
            "dataclass or a pydantic model as input"
        )
    shapeless = None if errored else formless(output)
    if shapeless is not None:
        shapeless = shapeless._replace(text=ctx.redactor(shapeless.text))
    lost = ctx.lost_keys
    if lost is None and not errored:
        found = lost_keys(output)
        lost = KeysLost(part="output", name=None, found=found) if found is not None else None
    finding = data_form_finding(shapeless, ctx.formless_result, ctx.formless_arguments)
    finding = finding or lost_keys_finding(lost)
    if finding is None:
        return None
    return f"{finding.message}; {finding.suggestion}"
