"""Replayed time under budgets: goldens without recorded time, and runs under a timeout."""

from __future__ import annotations

import pytest


@pytest.fixture
def plain(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(tagent="def run(input):\n    return 'ok'\n")
    pytester.makeini("[pytest]\nopswald_adapter = tagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    return pytester


def test_a_relative_duration_budget_on_a_golden_without_recorded_time_cannot_be_checked(
    plain: pytest.Pytester,
) -> None:
    """A hand-written golden records no time: `+100%` of nothing is no limit, and a run
    is not over it by its first tenth of a millisecond."""
    (plain.path / "goldens" / "d.golden.yaml").write_text(
        "name: d\ninput: {q: x}\nsteps: []\noutput: ok\n"
        'expect:\n  budgets:\n    duration_ms: "+100%"\n'
    )
    result = plain.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "budget duration_ms +100% has no recorded figure to compare with "
            "(the golden records no duration)",
            "*record the golden again so it has a duration_ms, or use an absolute budget",
        ]
    )
    assert "budget exceeded" not in result.stdout.str()
