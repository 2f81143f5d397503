"""An update that diverges at one of a turn's concurrent tool calls: the calls that start
after the divergence run live, whatever the timing."""

from __future__ import annotations

import pytest

AGENT = """
import os
import time
from concurrent.futures import ThreadPoolExecutor

import opswald


@opswald.tool
def lookup(q):
    return {"q": q, "phase": os.environ.get("PHASE", "old")}


def run(input):
    first = "changed" if os.environ.get("PHASE") == "new" else "one"

    def second():
        time.sleep(0.05)  # starts while the first call's divergence is being matched
        return lookup(q="two")

    with ThreadPoolExecutor(2) as pool:
        one, two = pool.submit(lookup, q=first), pool.submit(second)
        return [one.result(), two.result()]
"""

# a redaction rule of the user's, applied to each request before matching: a slow one
# holds the first call in matching (as a large argument's diff would) while the second
# call starts
CONFTEST = """
import time


def _slow(text):
    if text == "changed":
        time.sleep(0.5)
    return text


def pytest_opswald_redact(config):
    return [_slow]
"""


def test_a_call_started_after_the_divergence_runs_live(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PHASE", raising=False)
    pytester.makepyfile(cagent=AGENT, conftest=CONFTEST)
    pytester.makeini("[pytest]\nopswald_adapter = cagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    path = pytester.path / "goldens" / "c.golden.yaml"
    path.write_text("name: c\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    assert path.read_text().count("phase: old") == 4  # two steps, the output
    monkeypatch.setenv("PHASE", "new")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["1 golden updated: review it with git diff"])
    written = path.read_text()
    # the changed call (step 1) ran live, and so did the one numbered after it
    assert written.count("phase: new") == 4, written  # two steps' outputs, the output twice
    assert "phase: old" not in written, written
