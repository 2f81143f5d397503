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
    assert marker is not None
    if not marker.args:
        pytest.fail(
            "@pytest.mark.golden needs the golden's path as its first argument", pytrace=False
        )
    path = golden_path(item, str(marker.args[0]))
    try:
        golden = files.load(path)
    except (files.GoldenLoadError, OSError) as exc:
        pytest.fail(f"@pytest.mark.golden: cannot load {path}: {exc}", pytrace=False)
    settings = settings_of(item.config)
    try:
        adapter = adapters.resolve(
            golden.agent,
            hook_result=item.config.hook.pytest_opswald_adapter(golden=golden, config=item.config),
            ini_spec=settings.adapter,
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
        pytest.fail(str(exc), pytrace=False)
    except GoldenError as exc:
        if exc.outcome is None or exc.outcome.result is None:
            pytest.fail(exc.text, pytrace=False)
        return exc.outcome


def enforce(outcome: Outcome) -> None:
    """Fail the test when the golden's verdict failed."""
    __tracebackhide__ = True
    if outcome.status == "failed":
        pytest.fail(outcome.text, pytrace=False)
