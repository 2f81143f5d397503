"""What a failing similarity score, a relative budget below -100% and a failing watched
state path say."""

from __future__ import annotations

import re

import pytest

AGENT = """
import os

import opswald

SENTENCE = "Rome is sunny and warm today, 25 C"


def run(input):
    opswald.state(memory={"extra": os.environ.get("EXTRA", "a")})
    return (SENTENCE * 3)[:-1]   # one character short of the golden's
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("EXTRA", raising=False)
    pytester.makepyfile(hagent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = hagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    return pytester


def test_a_similarity_score_below_its_threshold_never_reads_as_equal_to_it(
    project: pytest.Pytester,
) -> None:
    sentence = "Rome is sunny and warm today, 25 C"
    (project.path / "goldens" / "s.golden.yaml").write_text(
        f"name: s\ninput: {{q: x}}\nsteps: []\noutput: '{sentence * 3}'\n"
        "expect:\n  output: {match: similar, threshold: 0.996}\n"
    )
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    # 0.99507… and 0.996 both round to 1.00
    result.stdout.fnmatch_lines(["*output is not similar enough (match: similar): 0.995 < 0.996"])


def test_a_relative_budget_below_minus_100_percent_is_refused_at_load(
    project: pytest.Pytester,
) -> None:
    (project.path / "goldens" / "b.golden.yaml").write_text(
        'name: b\ninput: {q: x}\nexpect:\n  budgets:\n    cost: "-150%"\n'
    )
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*b.golden.yaml:5*'-150%' would be a limit below 0: a relative budget is -100% at*"]
    )


def test_a_failing_watched_state_path_is_not_hinted_at_the_setting_in_use(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = project.path / "goldens" / "st.golden.yaml"
    golden.write_text(
        "name: st\ninput: {q: x}\nexpect:\n  output: ignore\n  state: [memory.extra]\n"
    )
    project.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("EXTRA", "b")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "state snapshot differs at watched paths" in out
    assert "expect.state: [memory.extra]" not in out, "the setting already in use"
    result.stdout.fnmatch_lines(["*remove them from expect.state (or set expect.state: report)*"])


@pytest.mark.parametrize(
    ("golden", "actual", "normalized_helps"),
    [
        ({"flag": 1}, {"flag": True}, False),  # a number turned bool: no case or space
        ({"n": 0}, {"n": False}, False),
        ({"text": "Hello  World"}, {"text": "hello world"}, True),
    ],
)
def test_the_normalized_hint_is_offered_only_where_that_match_accepts_the_output(
    golden: dict[str, object], actual: dict[str, object], normalized_helps: bool
) -> None:
    from opswald.expect.output import compare_output
    from opswald.session import OutputExpect

    finding = compare_output(golden, actual, OutputExpect())
    assert finding is not None
    assert ("match: normalized" in finding.suggestion) is normalized_helps
    accepted = compare_output(golden, actual, OutputExpect(match="normalized")) is None
    assert accepted is normalized_helps


PHASES_AGENT = """
import os

import opswald


@opswald.tool
def a(x):
    return x


def run(input):
    if not os.environ.get("NEW"):
        opswald.state(variables={"phase": "start"})
    a(x=1)
    opswald.state(variables={"phase": "middle"})
    opswald.state(variables={"phase": "done"})
    return "done"
"""


@pytest.mark.parametrize("mode", ["exact", "report"])
def test_a_snapshot_the_run_no_longer_takes_is_reported_alone(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The golden's first snapshot is gone: that is the one state finding, and the two
    after the tool call still face their own (not 'start' → 'middle', 'middle' → 'done'
    and a third snapshot missing)."""
    monkeypatch.delenv("NEW", raising=False)
    project.makepyfile(pagent=PHASES_AGENT)
    project.makeini("[pytest]\nopswald_adapter = pagent:run\npythonpath = .\n")
    (project.path / "goldens" / "p.golden.yaml").write_text(
        f"name: p\ninput: {{q: hi}}\nexpect:\n  state: {mode}\n"
    )
    project.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("NEW", "1")
    result = project.runpytest("--opswald-goldens")
    out = result.stdout.str()
    headline = "step 1 of 4 · state: state snapshot 1 missing: the run recorded none in its place"
    if mode == "exact":
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"{headline} (state: exact)", "  step 1: removed"])
        assert "expect.state: [variables]" in out
    else:
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [f"note: p.golden.yaml: {headline} (state: report): step 1: removed *"]
        )
    assert len(re.findall(r"· state: state snapshot .*\(state: ", out)) == 1, out
    assert "'middle'" not in out and "'done'" not in out


def test_a_cut_list_of_differences_says_at_least_how_many_more(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(
        bump="import os\n\n\ndef run(input):\n"
        "    bump = int(os.environ.get('BUMP', '0'))\n"
        "    return {'values': [i + bump for i in range(input['n'])]}\n"
    )
    project.makeini("[pytest]\nopswald_adapter = bump:run\npythonpath = .\n")
    for n in (1000, 30):
        (project.path / "goldens" / f"n{n}.golden.yaml").write_text(
            f"name: n{n}\ninput: {{n: {n}}}\n"
        )
    project.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=2)
    monkeypatch.setenv("BUMP", "1")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    # 1000 values differ; the comparison stops counting at 200: no exact number is claimed
    assert "  ... and at least 180 more differences" in text
    assert "  ... and 180 more differences" not in text
    assert "  ... and 10 more differences" in text  # 30 differ: counted, 20 shown


BACK_TO_BACK_AGENT = """
import os

import opswald


@opswald.tool
def a(x):
    return x


def run(input):
    a(x=1)
    phases = ("start", "middle", "done")
    if os.environ.get("SWAP"):
        phases = ("middle", "start", "done")
    for phase in phases:
        if phase != os.environ.get("SKIP"):
            opswald.state(variables={"phase": phase})
    a(x=2)
    return "done"
"""


@pytest.mark.parametrize(("skip", "number", "step"), [("start", 1, 2), ("middle", 2, 3)])
def test_one_of_back_to_back_snapshots_gone_is_the_one_difference(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, skip: str, number: int, step: int
) -> None:
    """Three snapshots with no call between them and one gone: the others face their own
    (not 'start' → 'middle', 'middle' → 'done' and the last one missing)."""
    monkeypatch.delenv("SKIP", raising=False)
    project.makepyfile(bagent=BACK_TO_BACK_AGENT)
    project.makeini("[pytest]\nopswald_adapter = bagent:run\npythonpath = .\n")
    (project.path / "goldens" / "b.golden.yaml").write_text(
        "name: b\ninput: {q: hi}\nexpect:\n  state: exact\n"
    )
    project.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("SKIP", skip)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"step {step} of 5 · state: state snapshot {number} missing: the run recorded "
            "none in its place (state: exact)",
            f"  step {step}: removed",
        ]
    )
    assert len(re.findall(r"· state: state snapshot .*\(state: ", out)) == 1, out
    assert "state snapshot differs" not in out and " → " not in out, out


def test_back_to_back_snapshots_taken_in_another_order_fail_state_exact(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two snapshots swapped: the state at each place differs, and `state: exact` fails
    (pairing them by content alone had each face its equal, and the run passed)."""
    monkeypatch.delenv("SKIP", raising=False)
    monkeypatch.delenv("SWAP", raising=False)
    project.makepyfile(bagent=BACK_TO_BACK_AGENT)
    project.makeini("[pytest]\nopswald_adapter = bagent:run\npythonpath = .\n")
    (project.path / "goldens" / "b.golden.yaml").write_text(
        "name: b\ninput: {q: hi}\nexpect:\n  state: exact\n"
    )
    project.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("SWAP", "1")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "step 2 of 5 · state: state snapshot differs (state: exact)",
            "*variables.phase: 'start' → 'middle'",
        ]
    )
