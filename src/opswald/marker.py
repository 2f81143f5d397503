"""`@pytest.mark.golden(path, modify=..., expect=..., verdict=True)` on an ordinary test."""

from __future__ import annotations

from pathlib import Path

import pytest

from opswald import adapters, files
from opswald.items import GoldenError, Outcome, run_golden


def golden_path(item: pytest.Item, arg: str) -> Path:
    """A marker's path: as given if absolute, else from the rootdir, else from the test file."""
    candidate = Path(arg)
    if candidate.is_absolute():
        return candidate
    for base in (item.config.rootpath, item.path.parent):
        if (base / candidate).exists():
            return base / candidate
    return item.config.rootpath / candidate


def run_marker(item: pytest.Item) -> Outcome:
    """Run the marker's golden once; a usage problem fails the test with its message."""
    __tracebackhide__ = True
    from opswald.plugin import settings_of, suite_normalize_rules

    marker = item.get_closest_marker("golden")
    if marker is None:
        pytest.fail(
            "the golden_replay fixture needs a golden: mark the test with "
            '@pytest.mark.golden("goldens/NAME.golden.yaml")',
            pytrace=False,
        )
    if not marker.args:
        pytest.fail(
            "@pytest.mark.golden needs the golden's path as its first argument", pytrace=False
        )
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
    settings = settings_of(item.config)
    try:
        adapter = adapters.resolve(
            golden.agent,
            hook_result=item.ihook.pytest_opswald_adapter(golden=golden, config=item.config),
            ini_spec=settings.adapter,
            root=settings.adapter_root,
        )
        return run_golden(
            golden=golden,
            path=path,
            settings=settings,
            adapter=adapter,
            expect_override=marker.kwargs.get("expect"),
            modify=marker.kwargs.get("modify"),
            extra_normalize=suite_normalize_rules(item.config),
        )
    except adapters.AdapterNotFound as exc:
        problem = str(exc)
    except GoldenError as exc:
        if exc.outcome is not None and exc.outcome.result is not None:
            return exc.outcome
        problem = exc.text
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
