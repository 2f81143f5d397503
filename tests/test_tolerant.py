"""Tolerant output matching for live runs: similar, embedding, judge (recorded verdicts are
reused), and --opswald-repeat with a minimum pass rate."""

from __future__ import annotations

import pytest

from opswald.expect.tolerant import Tolerance, compare_tolerant, similarity, verdict_key
from opswald.session import OutputExpect

AGENT = """
import itertools
import os

import opswald

ANSWERS = itertools.cycle(os.environ.get("ANSWERS", "The refund of $120 was issued.").split("|"))


@opswald.llm
def chat(*, model, messages):
    return {"content": next(ANSWERS), "finish_reason": "stop"}


def run(input):
    return chat(model="m", messages=[{"role": "user", "content": input}])["content"]
"""

JUDGE = """
import json
import os

CALLS = os.environ["JUDGE_LOG"]


def judge(*, golden, actual, rubric):
    with open(CALLS, "a") as log:
        log.write(json.dumps([golden, actual, rubric]) + "\\n")
    ok = "refund" in actual.lower()
    return {"passed": ok, "score": 1.0 if ok else 0.0,
            "reasoning": "mentions the refund" if ok else "never mentions a refund"}


def embed(texts):
    return [[t.lower().count("refund"), t.lower().count("$"), 1.0] for t in texts]
"""


@pytest.fixture
def tolerant(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("ANSWERS", raising=False)
    monkeypatch.setenv("JUDGE_LOG", str(pytester.path / "judge.log"))
    pytester.makepyfile(tagent=AGENT, judges=JUDGE, conftest="import tagent\n")
    pytester.makeini(
        "[pytest]\nopswald_adapter = tagent:run\nopswald_judge = judges:judge\n"
        "opswald_embedder = judges:embed\n"
    )
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "r.golden.yaml").write_text("name: r\ninput: refund please\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    return pytester


def _expect(pytester: pytest.Pytester, text: str) -> None:
    path = pytester.path / "goldens" / "r.golden.yaml"
    path.write_text(path.read_text().split("expect:")[0] + "expect:\n" + text)


def _live(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, answers: str, *args: str
) -> pytest.RunResult:
    monkeypatch.setenv("ANSWERS", answers)
    return pytester.runpytest("--opswald-goldens", "goldens/", "--opswald-mode=live", *args)


def test_similar(tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _expect(tolerant, "  output: {match: similar, threshold: 0.8}\n")
    _live(tolerant, monkeypatch, "The refund of $120 has been issued.").assert_outcomes(passed=1)
    result = _live(tolerant, monkeypatch, "Sorry, I cannot help with that.")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output is not similar enough (match: similar): 0.* < 0.80*"])


def test_embedding(tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    _expect(tolerant, "  output: {match: embedding, threshold: 0.9}\n")
    _live(tolerant, monkeypatch, "Your refund: $120, done").assert_outcomes(passed=1)
    _live(tolerant, monkeypatch, "No idea.").assert_outcomes(failed=1)


def test_judge_records_its_verdict_and_replay_reuses_it(
    tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _expect(tolerant, "  output: {match: judge, rubric: must confirm the refund}\n")
    log = tolerant.path / "judge.log"
    result = _live(tolerant, monkeypatch, "Nothing to see here.")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the judge rejected the output (match: judge): never mentions a refund*",
            "*rubric: must confirm the refund*",
        ]
    )
    assert len(log.read_text().splitlines()) == 1
    # record: the verdict goes into the golden; replay then reuses it, without the judge
    monkeypatch.setenv("ANSWERS", "The refund of $120 was issued.")
    tolerant.runpytest("--opswald-goldens", "goldens/", "--opswald-mode=rerecord").assert_outcomes(
        passed=1
    )
    text = (tolerant.path / "goldens" / "r.golden.yaml").read_text()
    assert "verdicts:" in text and "mentions the refund" in text
    calls = len(log.read_text().splitlines())
    tolerant.runpytest("--opswald-goldens", "goldens/").assert_outcomes(passed=1)
    assert len(log.read_text().splitlines()) == calls, "the recorded verdict was reused"


def test_judge_without_configuration_says_how(
    tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tolerant.makeini("[pytest]\nopswald_adapter = tagent:run\n")
    _expect(tolerant, "  output: {match: judge, rubric: x}\n")
    result = _live(tolerant, monkeypatch, "anything")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*match: judge needs a judge: the ini option opswald_judge*"])


@pytest.mark.parametrize(
    ("expect", "configure"),
    [
        (
            "{match: embedding, threshold: 0.85}",
            'fix: configure an embedder: opswald_embedder = "my_pkg.ai:embed" in the pytest '
            "config, or the hook pytest_opswald_embed(texts, config) (a missing setting*",
        ),
        (
            "{match: judge, rubric: x}",
            'fix: configure a judge: opswald_judge = "my_pkg.ai:judge" in the pytest config, '
            "or the hook pytest_opswald_compare_output(golden, actual, rubric, config) (a *",
        ),
    ],
)
def test_a_missing_embedder_or_judge_is_not_blessed_by_an_update(
    tolerant: pytest.Pytester, expect: str, configure: str
) -> None:
    """The golden is not what fails: the fix line says what to configure, and an update
    leaves the golden as it is (it would fail the next run the same way)."""
    tolerant.makeini("[pytest]\nopswald_adapter = tagent:run\n")
    _expect(tolerant, f"  output: {expect}\n")
    path = tolerant.path / "goldens" / "r.golden.yaml"
    before = path.read_bytes()
    result = tolerant.runpytest("--opswald-goldens", "goldens/")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([configure])
    assert "accept it with --opswald-update" not in result.stdout.str()
    result = tolerant.runpytest("--opswald-goldens", "goldens/", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["fix: not written: a missing setting is not a change of behaviour; configure *"]
    )
    assert "updated" not in result.stdout.str()
    assert path.read_bytes() == before


def test_a_live_failure_is_not_sent_to_an_update(
    tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live run is judged on expectations against live answers; an update replays the
    golden's recorded answers, so it is not what the fix line offers."""
    output = _live(tolerant, monkeypatch, "Sorry, I cannot help with that.")
    output.assert_outcomes(failed=1)
    output.stdout.fnmatch_lines(
        [
            "output differs*",
            "fix: a live run writes nothing: if this behaviour is right, loosen the golden's "
            "`expect:` (*) or record it again with --opswald-mode=rerecord; else fix the agent",
        ]
    )
    _expect(tolerant, "  budgets: {llm_calls: 0}\n")
    budget = _live(tolerant, monkeypatch, "The refund of $120 was issued.")
    budget.assert_outcomes(failed=1)
    budget.stdout.fnmatch_lines(
        ["budget exceeded: llm_calls 1 > 0", "fix: a live run writes nothing: follow*"]
    )
    for result in (output, budget):
        (fix,) = [line for line in result.outlines if line.startswith("fix:")]
        assert "--opswald-update" not in fix, fix


def test_judge_hook_wins(tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    tolerant.makeconftest(
        "import tagent\n\n"
        "def pytest_opswald_compare_output(golden, actual, rubric, config):\n"
        "    return actual.startswith('OK')\n"
    )
    _expect(tolerant, "  output: {match: judge}\n")
    _live(tolerant, monkeypatch, "OK then").assert_outcomes(passed=1)
    _live(tolerant, monkeypatch, "The refund was issued").assert_outcomes(failed=1)


def test_repeat_with_a_minimum_pass_rate(
    tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _expect(tolerant, "  output: {match: contains, value: refund}\n")
    answers = "refund ok|no luck|refund done|refund again|nope"
    result = _live(
        tolerant, monkeypatch, answers, "--opswald-repeat=5", "--opswald-min-pass-rate=0.6"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*passed 3 of 5 runs (60%; --opswald-min-pass-rate 60%)*"])
    result = _live(
        tolerant, monkeypatch, answers, "--opswald-repeat=5", "--opswald-min-pass-rate=0.8"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*passed 3 of 5 runs (60%; --opswald-min-pass-rate 80%)*"])


def test_unit_similarity_and_keys() -> None:
    assert similarity("abc", "abc") == 1.0
    assert similarity("abc", "xyz") == 0.0
    assert verdict_key("a", "b", "r") == verdict_key("a", "b", "r") != verdict_key("a", "c", "r")
    spec = OutputExpect(match="judge", rubric="r")
    recorded = [{"key": verdict_key("g", "a", "r"), "passed": True}]
    finding, verdict = compare_tolerant("g", "a", spec, Tolerance(), recorded=recorded)
    assert finding is None and verdict == recorded[0], "reused without any judge configured"


def test_ignore_paths_apply_to_tolerant_matchers_too() -> None:
    golden = {"answer": "Refunded $120.00 for order ORD-1001.", "total": 120, "items": [1, 2]}
    actual = {"answer": "Refunded $120.00 for order ORD-1001!", "total": 999999, "items": [9] * 9}
    spec = OutputExpect(match="similar", threshold=0.95)
    finding, _ = compare_tolerant(golden, actual, spec, Tolerance())
    assert finding is not None  # the volatile keys make it dissimilar...
    spec = OutputExpect(match="similar", threshold=0.95, ignore_paths=["total", "items"])
    assert compare_tolerant(golden, actual, spec, Tolerance()) == (None, None)  # ...not now


@pytest.mark.parametrize(
    ("vectors", "problem"),
    [
        ([[1.0, 0.0]], "1 vector(s) for 2 texts"),
        ([[1.0, 0.0], [1.0]], "vectors of lengths 2 and 1"),
        ([["a", "b"], [1.0, 0.0]], "vectors that are not all numbers"),
        (None, "None, not one vector per text"),
    ],
)
def test_a_wrong_embedder_answer_is_one_failure(vectors: object, problem: str) -> None:
    tolerance = Tolerance(embedder=lambda texts: vectors)  # type: ignore[arg-type,return-value]
    finding, verdict = compare_tolerant("a", "b", OutputExpect(match="embedding"), tolerance)
    assert verdict is None and finding is not None
    assert (
        finding.message
        == f"match: embedding could not judge the output: the embedder returned {problem}"
    )


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"passed": True, "score": "high"}, "a score of 'high'"),
        ({"passed": True, "score": 1.7}, "a score of 1.7"),
        (1.7, "a score of 1.7"),
        (None, "None; a judge returns"),
    ],
)
def test_a_wrong_judge_answer_is_one_failure(answer: object, problem: str) -> None:
    tolerance = Tolerance(judge=lambda **_: answer)
    finding, verdict = compare_tolerant("a", "b", OutputExpect(match="judge"), tolerance)
    assert verdict is None and finding is not None
    assert finding.message.startswith("match: judge could not judge the output: the judge ")
    assert problem in finding.message


def test_a_judge_hook_that_does_not_answer_leaves_it_to_the_ini_judge(
    tolerant: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tolerant.makeconftest(
        "import tagent\n\n"
        "def pytest_opswald_compare_output(golden, actual, rubric, config):\n"
        "    return None  # not this hook's kind of output\n"
    )
    _expect(tolerant, "  output: {match: judge, rubric: mentions a refund}\n")
    _live(tolerant, monkeypatch, "The refund was issued").assert_outcomes(passed=1)
    _live(tolerant, monkeypatch, "No idea").assert_outcomes(failed=1)
    assert (tolerant.path / "judge.log").read_text().count("\n") == 2, "the ini judge judged"


ROME_AGENT = """
import json
import os

import opswald


@opswald.tool
def weather(city):
    return "sunny"


def run(input):
    weather(city=os.environ.get("CITY", "Rome"))
    return {"answer": os.environ.get("ANSWER", "Rome is sunny")}


def judge(golden, actual, rubric):  # judges the output alone, whatever the golden holds
    with open(os.environ["JUDGE_LOG"], "a") as log:
        log.write(json.dumps([golden, actual]) + "\\n")
    ok = "Rome" in str(actual)
    return {"passed": ok, "reasoning": f"mentions Rome: {ok}"}
"""


def test_an_update_never_writes_an_output_its_judge_rejects_as_the_golden(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`match: judge` is asked, before a golden is written, about the output it would hold
    as the next replay asks (the output against itself): a rejected one is not written, and
    an accepted verdict is written for the next replay to reuse."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("ANSWER", raising=False)
    log = pytester.path / "judge.log"
    monkeypatch.setenv("JUDGE_LOG", str(log))
    pytester.makepyfile(rome=ROME_AGENT, conftest="import rome\n")
    pytester.makeini("[pytest]\nopswald_adapter = rome:run\nopswald_judge = rome:judge\n")
    golden = pytester.mkdir("goldens") / "j.golden.yaml"
    golden.write_text(
        "name: j\ninput: {q: x}\nexpect:\n  output: {match: judge, rubric: must mention Rome}\n"
    )
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    assert "passed: true" in golden.read_text()
    calls = log.read_text()
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    assert log.read_text() == calls, "the recorded verdict was reused"

    monkeypatch.setenv("ANSWER", "Paris is sunny")
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["fix: *accept it with --opswald-update (written only if the judge also accepts*"]
    )
    before = golden.read_bytes()
    for _ in range(2):  # the same refusal every time: nothing accumulates
        result = pytester.runpytest("--opswald-goldens", "--opswald-update")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["fix: not written: the judge rejects the new output as the golden's own*"]
        )
        assert "updated" not in result.stdout.str()
        assert golden.read_bytes() == before

    # a golden that already holds the rejected output: an update would write it again
    golden.write_text(before.decode().replace("answer: Rome is sunny", "answer: Paris is sunny"))
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    (fix,) = [line for line in result.outlines if line.startswith("fix:")]
    assert fix.startswith("fix: --opswald-update cannot fix this: the judge rejects"), fix

    # an update for another reason that keeps the output keeps its recorded verdict
    golden.write_bytes(before)
    monkeypatch.delenv("ANSWER")
    monkeypatch.setenv("CITY", "Milan")
    calls = log.read_text()
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*1 golden updated*"])
    assert "city: Milan" in golden.read_text() and "passed: true" in golden.read_text()
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    assert log.read_text() == calls, "the judge was not asked again about the same output"
