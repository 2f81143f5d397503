"""`@pytest.mark.golden(path, modify=..., expect=..., verdict=True)` on an ordinary test."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from opswald import adapters, files
from opswald.goldenrun import Outcome, run_golden
from opswald.items import GoldenError
from opswald.plugin import UNRUN_KEY


def golden_path(item: pytest.Item, arg: str) -> Path:
    """A marker's path: as given if absolute, else from the rootdir, else from the test file."""
    candidate = Path(arg)
    if candidate.is_absolute():
        return candidate
    for base in (item.config.rootpath, item.path.parent):
        if (base / candidate).exists():
            return base / candidate
    return item.config.rootpath / candidate


KEYWORDS = ("modify", "expect", "verdict")


def marker_problem(marker: pytest.Mark) -> str | None:
    """What is wrong with how a `@pytest.mark.golden` is written (pytest passes any
    arguments through: a misspelt keyword would be ignored), or None."""
    if not marker.args:
        return (
            "@pytest.mark.golden needs the golden's path as its first argument\n"
            'fix: @pytest.mark.golden("goldens/NAME.golden.yaml")'
        )
    if len(marker.args) > 1:
        return (
            f"@pytest.mark.golden takes one positional argument, the golden's path; got "
            f"{len(marker.args)}: {', '.join(_shown(arg) for arg in marker.args)}\n"
            "fix: give one golden per test (modify=, expect= and verdict= by keyword)"
        )
    path = marker.args[0]
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        got = "an empty string" if path == "" else f"{type(path).__name__} {_shown(path)}"
        return f"@pytest.mark.golden: the golden's path must be a string or a path, got {got}"
    for name in marker.kwargs:
        if name not in KEYWORDS:
            close = difflib.get_close_matches(name, KEYWORDS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "it takes modify=, expect=, verdict="
            return f"@pytest.mark.golden: unknown keyword {name!r}; {hint}"
    for name, what in (("modify", "modifications"), ("expect", "golden's `expect:` keys")):
        value = marker.kwargs.get(name)
        if value is not None and not isinstance(value, Mapping):
            return (
                f"@pytest.mark.golden: {name}= must be a dict of the {what}, got "
                f"{type(value).__name__} {_shown(value)}"
            )
    from opswald.session import modification_problem

    for key, value in (marker.kwargs.get("modify") or {}).items():
        problem = modification_problem(str(key), value)
        if problem is not None:
            return f"@pytest.mark.golden: modify= {problem}"
    verdict = marker.kwargs.get("verdict", True)
    if not isinstance(verdict, bool):
        return (
            f"@pytest.mark.golden: verdict= must be True or False, got "
            f"{type(verdict).__name__} {_shown(verdict)}"
        )
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_marker(item: pytest.Item) -> None:
    """Fail the test, before it runs, when its `@pytest.mark.golden` is misused."""
    __tracebackhide__ = True
    marker = item.get_closest_marker("golden")
    problem = marker_problem(marker) if marker is not None else None
    if problem:
        pytest.fail(problem, pytrace=False)


def run_marker(item: pytest.Item) -> Outcome:
    """Run the marker's golden once; a usage problem fails the test with its message."""
    __tracebackhide__ = True
    from opswald.plugin import settings_for, settings_of, suite_normalize_rules, variant_of

    marker = item.get_closest_marker("golden")
    if marker is None:
        pytest.fail(
            "the golden_replay fixture needs a golden: mark the test with "
            '@pytest.mark.golden("goldens/NAME.golden.yaml")',
            pytrace=False,
        )
    check_marker(item)
    path = golden_path(item, str(marker.args[0]))
    caps = settings_of(item.config).limits
    try:
        golden = files.load(path, max_bytes=caps.max_bytes, max_depth=caps.max_depth)
    except files.GoldenLoadError as exc:
        problem = str(exc)
    except OSError as exc:
        problem = f"{exc.strerror or exc}"
    else:
        problem = ""
    if problem:  # failed outside the except: one message, no chained tracebacks
        where = "" if str(path) in problem else f"{path}: "
        pytest.fail(f"@pytest.mark.golden: cannot load {where}{problem}", pytrace=False)
    # the golden's folder's redaction rules (its conftests'), wherever the test is: the
    # golden holds the same placeholders whichever test or run replays or updates it
    settings = settings_for(item, Path(path))
    variant = variant_of(item)
    own = marker.kwargs.get("modify") or {}
    if variant is not None:  # the marker's value wins over the variant's: said, once
        over = [k for k in variant[1] if k in own and own[k] != variant[1][k]]
        if over:
            from opswald.plugin import run_note

            given = ", ".join(f"{k}={own[k]}" for k in over)
            its = ", ".join(f"{k}={variant[1][k]}" for k in over)
            run_note(
                item.config,
                f"{item.nodeid.split('[')[0]}: the marker's modify= {given} overrides the "
                f"variant {variant[0]}'s {its}: the variant runs with the marker's value",
            )
    try:
        adapter = adapters.resolve(
            golden.agent,
            hook_result=item.ihook.pytest_opswald_adapter(golden=golden, config=item.config),
            ini_spec=settings.adapter,
            root=settings.adapter_root,
            golden_path=path,
        )
        return run_golden(
            golden=golden,
            path=path,
            settings=settings,
            adapter=adapter,
            expect_override=dict(marker.kwargs.get("expect") or {}),
            # the variant's modifications under the marker's own (the stronger source)
            modify={**(variant[1] if variant else {}), **own},
            variant=variant[0] if variant else None,
            extra_normalize=suite_normalize_rules(item.config),
        )
    except adapters.AdapterNotFound as exc:
        problem = str(exc)
    except GoldenError as exc:
        if exc.outcome is not None and exc.outcome.result is not None:
            return exc.outcome
        problem = exc.text
    item.stash[UNRUN_KEY] = True
    pytest.fail(problem, pytrace=False)


def explain_body_failure(outcome: Outcome | None, error: BaseException) -> None:
    """The test body failed after its golden diverged: say so under the body's own error,
    since the divergence (an answer the agent never got) is often why the body failed."""
    if outcome is not None and outcome.status == "failed" and isinstance(error, Exception):
        error.add_note(f"\nthe golden's verdict failed too (it may explain this):\n{outcome.text}")


def enforce(outcome: Outcome) -> None:
    """Fail the test when the golden's verdict failed."""
    __tracebackhide__ = True
    if outcome.status == "failed":
        pytest.fail(outcome.text, pytrace=False)
