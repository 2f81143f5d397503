"""The hint under a tool call made with other arguments says what the golden recorded, in
the argument's own terms, also where the run inserted or added an element the golden lacks."""

from __future__ import annotations

import pytest

AGENT = """
import json
import os

import opswald


@opswald.tool
def search(query, terms):
    return ["row0"]


def run(input):
    search(query="q", terms=json.loads(os.environ.get("TERMS", '["x", "y", "z"]')))
    return "done"
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERMS", raising=False)
    pytester.makepyfile(targent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = targent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "t.golden.yaml").write_text("name: t\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    return pytester


@pytest.mark.parametrize(
    ("terms", "diff", "hint"),
    [
        (
            '["x", "NEW", "y", "z"]',
            "step 1 › input.terms[1]: inserted",
            "hint: step 1 recorded search with terms = ['x', 'y', 'z']; look at what the "
            "agent read before calling it",
        ),
        (
            '["x", "y", "z", "w"]',
            "step 1 › input.terms[3]: added",
            "hint: step 1 recorded search with terms = ['x', 'y', 'z']; look at",
        ),
        (
            '["x", "q", "z"]',
            "step 1 › input.terms[1]: 'y' → 'q'",
            "hint: step 1 recorded search with terms[1] = 'y'; look at",
        ),
    ],
    ids=["inserted", "added", "changed"],
)
def test_the_arguments_hint_says_what_the_golden_recorded(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, terms: str, diff: str, hint: str
) -> None:
    monkeypatch.setenv("TERMS", terms)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "<missing>" not in out
    assert diff in out
    assert hint in out
