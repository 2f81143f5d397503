"""Modifications, model comparison, live runs, forks with step modifications, variants."""

from __future__ import annotations

import pytest

AGENT = """
import opswald

PRICE = {"small": 0.001, "big": 0.01}


@opswald.llm
def chat(*, model, messages, temperature=0):
    last = messages[-1]
    usage = {"input_tokens": 10 * len(messages), "output_tokens": 5}
    if last["role"] == "user" and "weather" in last["content"]:
        city = last["content"].split()[-1]
        return {"content": None, "finish_reason": "tool_calls", "usage": usage,
                "cost": PRICE[model],
                "tool_calls": [{"id": "c1", "name": "weather", "arguments": {"city": city}}]}
    said = last["content"]
    text = f"{model}: it is {said}" if last["role"] == "tool" else f"{model}: you said {said}"
    return {"content": text, "tool_calls": None, "finish_reason": "stop", "usage": usage,
            "cost": PRICE[model]}


@opswald.tool
def weather(city):
    return f"sunny in {city}"


@opswald.tool
def news(topic="all"):
    return f"no news on {topic}"


TOOLS = {"weather": weather, "news": news}


def run(input):                      # no `modifications` parameter, model hard-coded
    question = opswald.user_input("ask: ")
    messages = [{"role": "user", "content": question}]
    reply = chat(model="small", messages=messages)
    while reply["tool_calls"]:
        for call in reply["tool_calls"]:
            messages.append({"role": "tool", "content": TOOLS[call["name"]](**call["arguments"])})
        reply = chat(model="small", messages=messages)
    return {"answer": reply["content"]}


def run_with_modifications(input, modifications):
    return {"answer": run(input)["answer"], "seen": modifications}
"""

INSPECT = """
import json
import pytest


@pytest.mark.golden("goldens/w.golden.yaml", verdict=False)
def test_inspect(golden_replay):
    r = golden_replay
    print("RESULT=" + json.dumps({
        "output": r.actual.output,
        "models": [s.model for s in r.actual.step_list if s.type == "llm_call"],
        "types": [s.type for s in r.actual.step_list],
        "metadata": r.actual.metadata.get("modifications"),
        "policy": r.policy,
        "fork_step": r.fork_step,
        "passed": r.passed,
        "served": [s.model_dump(exclude={"timestamp", "duration_ms"})
                   for s in r.actual.step_list[:1]],
        "golden_first": [s.model_dump(exclude={"timestamp", "duration_ms"})
                         for s in r.golden.step_list[:1]],
    }))
"""


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(wagent=AGENT, conftest="import wagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = wagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "w.golden.yaml").write_text(
        "name: weather\ninput:\n  user_inputs: [weather in Rome]\n"
    )
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    return pytester


def inspect(pytester: pytest.Pytester, *args: str) -> dict[str, object]:
    import json

    pytester.makepyfile(test_inspect=INSPECT)
    result = pytester.runpytest("test_inspect.py", "-s", *args)
    line = next(li for li in result.outlines if "RESULT=" in li)
    return dict(json.loads(line.split("RESULT=", 1)[1]))


def test_recorded_session_shape(bench: pytest.Pytester) -> None:
    r = inspect(bench)
    assert r["types"] == ["user_input", "llm_call", "tool_call", "llm_call"]
    assert r["output"] == {"answer": "small: it is sunny in Rome"}
    assert r["passed"] is True and r["policy"] == "replay"


def test_model_comparison_needs_no_agent_change(bench: pytest.Pytester) -> None:
    r = inspect(bench, "--opswald-modify", "model=big")
    assert r["models"] == ["big", "big"], "the engine rewrote the hard-coded model"
    assert r["output"] == {"answer": "big: it is sunny in Rome"}
    assert r["metadata"] == {"model": "big"}
    assert r["policy"] == "fork" and r["fork_step"] == 2, "forks at the first call it changes"
    assert r["passed"] is False, "judged on expectations: the exact output differs"
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", "model=big")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*output differs*", "*the run left the golden here*", "*forked at step 2*"]
    )


def test_modification_values_are_yaml_and_reach_the_adapter(bench: pytest.Pytester) -> None:
    bench.makeini("[pytest]\nopswald_adapter = wagent:run_with_modifications\n")
    r = inspect(bench, "--opswald-modify", "timeout=30", "--opswald-modify", "agent_version=v2.1")
    assert r["output"]["seen"] == {"timeout": 30, "agent_version": "v2.1"}  # type: ignore[index]
    assert r["metadata"] == {"timeout": 30, "agent_version": "v2.1"}


PARAMS_AGENT = """
import opswald


def _answer(received):
    return {"content": repr(sorted(received.items())), "usage": {"input_tokens": 1,
            "output_tokens": 1}, "cost": 0.001}


@opswald.llm
def with_temperature(*, model, messages, temperature=0.0):
    return _answer({"temperature": temperature})


@opswald.llm
def with_options(*, model, messages, **options):
    return _answer(options)


@opswald.llm
def bare(*, model, messages):
    return _answer({})


def run(input):
    messages = [{"role": "user", "content": input["q"]}]
    return [f(model="m", messages=messages)["content"]
            for f in (with_temperature, with_options, bare)]
"""


def test_request_modifications_are_recorded_only_as_the_function_received_them(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`temperature` and `seed` reach an `@opswald.llm` function only through a parameter
    of that name or `**kwargs`; the step's `input.params` is what the function got."""
    import ast

    import yaml

    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(pagent=PARAMS_AGENT, conftest="import pagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = pagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "p.golden.yaml").write_text("name: p\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    pytester.runpytest(
        "--opswald-goldens", "--opswald-save-actual", "actual",
        "--opswald-modify", "temperature=0.7", "--opswald-modify", "seed=5",
    )  # fmt: skip
    actual = yaml.safe_load((pytester.path / "actual" / "p.actual.yaml").read_text())
    received = [dict(ast.literal_eval(text)) for text in actual["output"]]
    assert received == [{"temperature": 0.7}, {"temperature": 0.7, "seed": 5}, {}]
    params = [s["input"].get("params") or {} for s in actual["steps"]]
    assert params == received


def test_expectations_judge_a_fork(bench: pytest.Pytester) -> None:
    path = bench.path / "goldens" / "w.golden.yaml"
    path.write_text(path.read_text() + "expect:\n  output: {match: contains, value: sunny}\n")
    bench.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-modify", "model=big"
    ).assert_outcomes(passed=1)


def test_live_mode_budgets_on_measured_cost(bench: pytest.Pytester) -> None:
    path = bench.path / "goldens" / "w.golden.yaml"
    text = path.read_text()
    path.write_text(text + "expect:\n  output: ignore\n  budgets:\n    cost: 0.005\n")
    bench.runpytest("--opswald-goldens", "goldens/", "--opswald-mode=live").assert_outcomes(
        passed=1
    )
    result = bench.runpytest(
        "--opswald-goldens", "--opswald-mode=live", "--opswald-modify", "model=big"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*budget exceeded: cost $0.0200 > $0.0050*"])
    path.write_text(text + "expect:\n  output: ignore\n  budgets:\n    cost: '+20%'\n")
    result = bench.runpytest(
        "--opswald-goldens", "--opswald-mode=live", "--opswald-modify", "model=big"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*budget exceeded: cost*+20%*"])


def test_fork_keeps_the_calls_before_n(bench: pytest.Pytester) -> None:
    r = inspect(bench, "--opswald-fork-at=3", "--opswald-modify", "tool_result=rainy")
    assert r["served"] == r["golden_first"]
    assert r["output"] == {"answer": "small: it is rainy"}
    assert r["fork_step"] == 3


@pytest.mark.parametrize(
    ("args", "answer"),
    [
        (
            ["--opswald-fork-at=1", "--opswald-modify", "user_input=weather in Oslo"],
            "small: it is sunny in Oslo",
        ),
        (["--opswald-fork-at=3", "--opswald-modify", "tool_result=foggy"], "small: it is foggy"),
        (
            ["--opswald-fork-at=4", "--opswald-modify", "response=Take an umbrella."],
            "Take an umbrella.",
        ),
        (
            [
                "--opswald-fork-at=2",
                "--opswald-modify",
                "selected_tool=news",
                "--opswald-modify",
                "tool_params={topic: sport}",
            ],
            "small: it is no news on sport",
        ),
    ],
)
def test_each_step_modification(bench: pytest.Pytester, args: list[str], answer: str) -> None:
    r = inspect(bench, *args)
    assert r["output"] == {"answer": answer}


def test_step_modifications_need_a_fork_step(bench: pytest.Pytester) -> None:
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", "response=x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*response changes one step: give the step with --opswald-fork-at*"]
    )
    result = bench.runpytest(
        "--opswald-goldens", "goldens/",
        "--opswald-modify", "selected_tool=news", "--opswald-modify", "tool_params={topic: x}",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*selected_tool, tool_params change one step: give the step with --opswald-fork-at*"]
    )


OWN_STEP_MODIFICATION = """
import pytest
import opswald
import wagent


@pytest.mark.golden("goldens/w.golden.yaml", modify={"response": "FROM-MARKER"}, verdict=False)
def test_marker(golden_replay):
    print("MARKER=" + golden_replay.actual.output["answer"])


def test_api():
    fork = opswald.Replay("goldens/w.golden.yaml", adapter=wagent.run, fork_at=4)
    fork.run()
    print("API=" + fork.final_output["answer"])
    with pytest.raises(ValueError, match="response changes one step: give the step"):
        opswald.Replay("goldens/w.golden.yaml", adapter=wagent.run)
"""


def test_a_step_modification_in_the_golden_applies_at_the_fork_step(
    bench: pytest.Pytester,
) -> None:
    """The golden's own `modifications:` is the weakest source of step modifications too:
    applied at the fork step (a variant, the marker and the command line override it), and
    without a fork step the golden fails, as with --opswald-modify, while the others run."""
    path = bench.path / "goldens" / "w.golden.yaml"
    text = path.read_text()
    (bench.path / "goldens" / "plain.golden.yaml").write_text(
        text.replace("name: weather", "name: plain", 1)
    )
    path.write_text(text + "modifications:\n  response: FROM-GOLDEN\n")
    r = inspect(bench, "--opswald-fork-at=4")
    assert r["output"] == {"answer": "FROM-GOLDEN"}
    assert r["fork_step"] == 4
    assert r["metadata"] is None, "a step modification is the fork's, not the adapter's"

    result = bench.runpytest("--opswald-goldens", "goldens/", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*response changes one step: give the step with --opswald-fork-at=N"
            " (response from the golden's own modifications:)"
        ]
    )
    # an update is written, never forked (--opswald-fork-at is refused with it): the
    # advice is to remove the key from the golden, not to give a fork step
    result = bench.runpytest(
        "goldens/w.golden.yaml", "--opswald-goldens", "--opswald-update", "-p", "no:randomly"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*response changes one step (response from the golden's own modifications:), and"
            " an update cannot fork: remove response from the golden's `modifications:` (or"
            " run the fork with --opswald-fork-at=N, without --opswald-update)"
        ]
    )
    assert "give the step with --opswald-fork-at" not in result.stdout.str()

    def answer(*args: str) -> str:
        result = bench.runpytest("goldens/w.golden.yaml", "--opswald-goldens", "-v", *args)
        result.assert_outcomes(failed=1)
        (line,) = [li for li in result.outlines if "output.answer:" in li]
        return line.rsplit("→", 1)[1].strip()

    assert answer("--opswald-fork-at=4") == "'FROM-GOLDEN'"
    assert answer("--opswald-fork-at=4", "--opswald-variant", "v:response=FROM-VARIANT") == (
        "'FROM-VARIANT'"
    )
    cli = ("--opswald-modify", "response=FROM-CLI")
    assert answer("--opswald-fork-at=4", "--opswald-variant", "v:response=X", *cli) == (
        "'FROM-CLI'"
    )
    bench.makepyfile(test_own=OWN_STEP_MODIFICATION)
    result = bench.runpytest("test_own.py", "-s", "--opswald-fork-at=4")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*MARKER=FROM-MARKER*"])
    result.stdout.fnmatch_lines(["*API=FROM-GOLDEN*"])


def test_a_step_modification_that_cannot_apply_fails_the_golden(bench: pytest.Pytester) -> None:
    """Never dropped in silence: step 3 is a tool_call, and there is no step 9."""
    golden = bench.path / "goldens" / "w.golden.yaml"
    before = golden.read_bytes()
    for args, message in [
        (["--opswald-fork-at=3", "--opswald-modify", "response=x"], "*step 3 of the golden is a*"),
        (["--opswald-fork-at=9", "--opswald-modify", "response=x"], "*there is no step 9*"),
    ]:
        result = bench.runpytest("--opswald-goldens", "goldens/", *args)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"*--opswald-fork-at=*{message}"])
    assert golden.read_bytes() == before


def test_a_user_input_fork_diverges_at_its_step_on_the_run_page_and_the_saved_actual_page(
    bench: pytest.Pytester,
) -> None:
    """The run's viewer and `opswald html` of the saved actual agree on where the fork left
    the golden, and the analysis of that step names the fork's modification instead of
    tracing the new text through the steps before it."""
    import json
    import re

    from opswald.report import html_cli

    fork_at, said = 1, "weather in Oslo"
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", f"--opswald-fork-at={fork_at}",
        "--opswald-modify", f"user_input={said}",
        "--opswald-html", "run.html", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    (saved,) = (bench.path / "actual").glob("*.actual.yaml")
    args = ["html", "goldens/w.golden.yaml", "--actual", str(saved), "-o", "cli.html"]
    assert html_cli.main(args) == 0
    block = re.compile(r'id="opswald-data">(.*?)</script>', re.S)
    for page in ("run.html", "cli.html"):
        match = block.search((bench.path / page).read_text())
        assert match is not None
        (golden,) = json.loads(match.group(1))["goldens"]
        assert golden["divergence"] == fork_at, page
        (analysis,) = [a for a in golden["analyses"] if a["kind"] == "divergence"]
        assert analysis["step"] == fork_at, page
        assert "user_input" in analysis["fix"] and said in analysis["fix"], analysis["fix"]
        assert "No earlier step produced" not in analysis["fix"], analysis["fix"]


@pytest.mark.parametrize(
    "other", [["--opswald-update"], ["--opswald-mode=live"], ["--opswald-mode=rerecord"]]
)
def test_fork_at_with_a_mode_that_would_drop_it_is_a_usage_error(
    bench: pytest.Pytester, other: list[str]
) -> None:
    golden = bench.path / "goldens" / "w.golden.yaml"
    before = golden.read_bytes()
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=3", "--opswald-modify",
        "tool_result=rainy", *other,
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--opswald-fork-at*"])
    assert golden.read_bytes() == before
    # so a failing fork's fix line does not send the user there
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=3", "--opswald-modify",
        "tool_result=rainy",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["fix: a fork is judged, never written*"])
    assert "accept it with --opswald-update" not in result.stdout.str()


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_variants_run_each_golden_once_per_variant(
    bench: pytest.Pytester, xdist: list[str]
) -> None:
    path = bench.path / "goldens" / "w.golden.yaml"
    path.write_text(path.read_text() + "expect:\n  output: {match: contains, value: Rome}\n")
    result = bench.runpytest(
        "--opswald-goldens",
        "-v",
        "--opswald-variant",
        "A:model=small",
        "--opswald-variant",
        "B:model=big,temperature=0.5",
        *xdist,
    )
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    for variant in ("A", "B"):
        assert any(
            f"w.golden.yaml::weather[{variant}]" in line and "PASSED" in line
            for line in out.splitlines()
        ), out
    result.stdout.fnmatch_lines(
        [
            "variants:",
            "*A * 1/1 *$    0.0020 *",
            "*B * 1/1 *$    0.0200 *",
            "*weather: passed A, B; cheapest A; fastest *",
        ]
    )


def test_the_variant_comparison_ranks_only_the_variants_that_passed(
    bench: pytest.Pytester,
) -> None:
    """`small` is ten times cheaper than `big` but fails the golden's output expectation:
    it is not the cheapest or the fastest way to pass it. When none passed, none is ranked."""
    path = bench.path / "goldens" / "w.golden.yaml"
    text = path.read_text()
    path.write_text(text + "expect:\n  output: {match: contains, value: 'big:'}\n")
    variants = ("--opswald-variant", "S:model=small", "--opswald-variant", "B:model=big")
    result = bench.runpytest("--opswald-goldens", *variants)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*S * 0/1 *$    0.0020 *", "*B * 1/1 *$    0.0200 *"])
    result.stdout.fnmatch_lines(["*weather: passed B; cheapest B; fastest B"])
    path.write_text(text + "expect:\n  output: {match: contains, value: 'neither'}\n")
    result = bench.runpytest("--opswald-goldens", *variants)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*weather: passed none; cheapest -; fastest -"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_the_variant_comparison_keeps_apart_two_goldens_that_share_a_name(
    bench: pytest.Pytester, xdist: list[str]
) -> None:
    """Two golden files named alike are two goldens: each gets its own row, labelled with its
    test id, and neither's runs are ranked against the other's."""
    import json

    path = bench.path / "goldens" / "w.golden.yaml"
    text = path.read_text()
    path.write_text(text + "expect:\n  output: {match: contains, value: 'small:'}\n")
    (bench.path / "goldens" / "x.golden.yaml").write_text(
        text + "expect:\n  output: {match: contains, value: 'big:'}\n"
    )
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-variant", "S:model=small",
        "--opswald-variant", "B:model=big", "--opswald-json", "r.json", *xdist,
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "  per golden:",
            "    goldens/w.golden.yaml::weather: passed S; cheapest S; fastest S",
            "    goldens/x.golden.yaml::weather: passed B; cheapest B; fastest B",
        ]
    )
    # the cost analysis keeps each golden's run apart too (the failed runs are listed)
    analysis = result.stdout.str().split("cost analysis (most expensive steps):")[-1]
    for run in ("goldens/w.golden.yaml::weather[B]", "goldens/x.golden.yaml::weather[S]"):
        assert f"\n  {run}: step " in analysis, analysis
    assert "totals: goldens/w.golden.yaml::weather[B] $0.0200, goldens/x." in analysis
    rows = json.loads((bench.path / "r.json").read_text())["variants"]["goldens"]
    assert [(g["golden"], g["file"], g["test"], g["passed"], g["cheapest"]) for g in rows] == [
        ("weather", "goldens/w.golden.yaml", "goldens/w.golden.yaml::weather", ["S"], "S"),
        ("weather", "goldens/x.golden.yaml", "goldens/x.golden.yaml::weather", ["B"], "B"),
    ]


def test_bad_modify_and_variant_options_are_usage_errors(bench: pytest.Pytester) -> None:
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", "novalue")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--opswald-modify: 'novalue' is not KEY=VALUE*"])
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-variant", "bad name:x=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_variant_name_given_twice_is_a_usage_error(bench: pytest.Pytester) -> None:
    """Neither run is dropped in silence: the error names the duplicate and both items."""
    first, second = "a:model=small", "a:model=big"
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-variant", first, "--opswald-variant", second
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--opswald-variant*'a'*twice*{first}*{second}*"])
    assert "weather[a]" not in result.stdout.str()


@pytest.mark.parametrize("writes", [["--opswald-update"], ["--opswald-mode=rerecord"]])
def test_several_variants_that_would_write_one_golden_are_a_usage_error(
    bench: pytest.Pytester, writes: list[str]
) -> None:
    """An update (or a recording) run once per variant wrote each golden once per variant,
    the last variant's run winning (and under -n 2 racing): one golden holds one session,
    so several variants with a run that writes is refused, and nothing is written."""
    before = {p: p.read_text() for p in (bench.path / "goldens").iterdir()}
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", *writes,
        "--opswald-variant", "big:model=sim-large", "--opswald-variant", "small:model=sim-small",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*with 2 variants would write each golden once per variant*"])
    assert {p: p.read_text() for p in (bench.path / "goldens").iterdir()} == before
    # one variant writes the golden once, with its modifications
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", *writes, "--opswald-variant", "big:model=sim-large"
    )
    assert result.ret != pytest.ExitCode.USAGE_ERROR, result.stderr.str()


@pytest.mark.parametrize(
    ("given", "fix"),
    [
        (["--opswald-modify", "model=big"], "--opswald-update and the same --opswald-modify"),
        (
            ["--opswald-variant", "big:model=big"],
            "--opswald-update and this --opswald-variant alone",
        ),
    ],
)
def test_the_fix_line_of_a_modified_run_names_an_update_that_writes_it(
    bench: pytest.Pytester, given: list[str], fix: str
) -> None:
    """`--opswald-modify model=...` fails on the other model's answer: its `fix:` line said
    `--opswald-update`, which without the modification replays, passes and writes nothing.
    It names the update with the same modification, which writes the new behaviour."""
    path = bench.path / "goldens" / "w.golden.yaml"
    before = path.read_text()
    result = bench.runpytest("--opswald-goldens", "goldens/", *given)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"fix: if the new behaviour is intended, accept it with {fix}"])
    bench.runpytest("--opswald-goldens", "goldens/", "--opswald-update").assert_outcomes(passed=1)
    assert path.read_text() == before, "a plain update writes nothing"
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-update", *given)
    assert path.read_text() != before and "model: big" in path.read_text()
    bench.runpytest("--opswald-goldens", "goldens/", *given).assert_outcomes(passed=1)


def test_fork_and_modifications_under_xdist(bench: pytest.Pytester) -> None:
    path = bench.path / "goldens" / "w.golden.yaml"
    text = path.read_text()
    (bench.path / "goldens" / "x.golden.yaml").write_text(
        text.replace("name: weather", "name: x", 1)
    )
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", "-n", "2", "--opswald-modify", "model=big"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*big: it is sunny in Rome*"])
    result = bench.runpytest(
        "--opswald-goldens",
        "goldens/",
        "-n",
        "2",
        "--opswald-fork-at=4",
        "--opswald-modify",
        "response=small: it is sunny in Rome",
    )
    result.assert_outcomes(passed=2)


def test_the_analysis_of_a_blocked_side_effect_names_the_block_not_the_tool(
    project: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fork with another model reaches `book` (side_effects=True), which is not run: the
    error analysis says why, and how to allow it, instead of blaming `book`."""
    import json

    from conftest import record
    from opswald.cli import main

    record(project)
    project.runpytest(
        "--opswald-goldens", "--opswald-modify", "model=m2", "--opswald-save-actual", "actual"
    ).assert_outcomes(failed=1)
    (saved,) = (project.path / "actual").glob("*.actual.yaml")
    capsys.readouterr()
    main(["analyze", str(saved), "--json"])
    (report,) = json.loads(capsys.readouterr().out)
    blocked = [e for e in report["errors"] if e["name"] == "book"]
    assert len(blocked) == 1, report["errors"]
    (analysis,) = [a for a in report["error_analysis"] if a["step"] == blocked[0]["step"]]
    assert "side_effects=True" in analysis["fix"], analysis["fix"]
    assert "--opswald-allow-side-effects" in analysis["fix"], analysis["fix"]
    assert "look at book itself" not in analysis["fix"], analysis["fix"]


def test_the_fork_path_names_golden_steps_by_their_numbers(bench: pytest.Pytester) -> None:
    """Answering step 2 with text ends the run there: the golden's later steps are listed
    as removed under their own step numbers, as every other message counts steps, each
    named and shown whole (`step 3 removed: tool_call weather`)."""
    import yaml

    fork_at = 2
    golden = yaml.safe_load((bench.path / "goldens" / "w.golden.yaml").read_text())
    later = [s["step"] for s in golden["steps"] if s["step"] > fork_at]
    assert later, "the golden goes on after the fork step"
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", f"--opswald-fork-at={fork_at}",
        "--opswald-modify", "response=Take an umbrella.",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*forked at step {fork_at}*"])
    names = {s["step"]: f"{s['type']} {s.get('tool') or s.get('model')}" for s in golden["steps"]}
    result.stdout.fnmatch_lines([f"    step {n} removed: {names[n]}" for n in later])
    # the step is shown whole under its head, as opswald diff shows a step only one side has
    weather = next(s for s in golden["steps"] if s.get("tool") == "weather")
    result.stdout.fnmatch_lines(['*- {"tool": "weather", "input": {"city": "Rome"}*'])
    assert weather["step"] in later
    assert "fork[" not in result.stdout.str()


@pytest.mark.parametrize(
    ("options", "fork_step", "recorded"),
    [
        (["--opswald-fork-at=4", "--opswald-modify", "response=small: rain in Rome"], 4, "fork"),
        (["--opswald-modify", "model=big"], 2, "modifications"),
    ],
    ids=["step-modification", "request-modification"],
)
def test_opswald_html_of_a_forks_saved_actual_shows_no_metadata_difference(
    bench: pytest.Pytester, options: list[str], fork_step: int, recorded: str
) -> None:
    """A fork's actual records `metadata.fork` (and `metadata.modifications` for a request
    modification): they say how the run was made, not what the agent did, so the page of
    `opswald html` lists no "metadata differs"."""
    import json
    import re
    import subprocess
    import sys

    from opswald import load

    result = bench.runpytest("--opswald-goldens", "goldens/", *options, "--opswald-save-actual=a")
    result.assert_outcomes(failed=1)  # the answer changed, so the output differs
    actual = bench.path / "a" / "weather.actual.yaml"
    metadata = load(actual).metadata
    assert metadata["fork"]["step"] == fork_step and recorded in metadata
    command = ["html", "goldens/w.golden.yaml", "--actual", str(actual), "-o", "page.html"]
    html = subprocess.run(
        [sys.executable, "-m", "opswald.cli", *command],
        cwd=bench.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert html.returncode == 0, html.stderr
    page = (bench.path / "page.html").read_text()
    match = re.search(r'id="opswald-data">(.*?)</script>', page, re.S)
    assert match is not None
    (entry,) = json.loads(match.group(1))["goldens"]
    headlines = [f["headline"] for f in entry["findings"]]
    assert not [h for h in headlines if "metadata" in h], headlines
    assert any("output differs" in h for h in headlines), headlines
    assert entry["divergence"] == fork_step, "the fork's own step still differs"


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_a_marker_test_runs_once_per_variant_under_its_own_modify(
    bench: pytest.Pytester, xdist: list[str]
) -> None:
    """A `@pytest.mark.golden` test is run once per variant, as a golden is
    (`test_weather[S]`), with the variant's modifications under the marker's modify= (the
    stronger source); where a marker test in a variants run crashed the summary and its run
    made a bogus variant `-` in the JSON report, each run is its variant's row. A test of its
    own parametrization keeps its ids, the variant's last."""
    import json

    bench.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.golden("goldens/w.golden.yaml")
        def test_weather(golden_replay):
            models = [s.model for s in golden_replay.actual.step_list if s.type == "llm_call"]
            meta = golden_replay.actual.metadata
            print("RUN", meta.get("variant"), meta.get("modifications"), models)

        @pytest.mark.golden("goldens/w.golden.yaml", modify={"model": "small"})
        def test_pinned(golden_replay):
            models = [s.model for s in golden_replay.actual.step_list if s.type == "llm_call"]
            print("PINNED", golden_replay.actual.metadata.get("variant"), models)

        @pytest.mark.parametrize("n", [1, 2])
        @pytest.mark.golden("goldens/w.golden.yaml")
        def test_numbered(n):
            pass
        """
    )
    result = bench.runpytest(
        "test_marked.py", "goldens/w.golden.yaml", "--opswald-goldens", "-v", "-s",
        "--opswald-variant", "S:model=small", "--opswald-variant", "B:model=big",
        "--opswald-json", "r.json", *xdist,
    )  # fmt: skip
    out = result.stdout.str()
    assert "Traceback" not in out + result.stderr.str()
    # the big variant changes the output the golden recorded: its runs fail
    result.assert_outcomes(passed=6, failed=4)
    for test, outcome in (
        ("test_weather[S]", "PASSED"), ("test_weather[B]", "FAILED"),
        ("test_pinned[S]", "PASSED"), ("test_pinned[B]", "PASSED"),
        ("test_numbered[1-S]", "PASSED"), ("test_numbered[2-B]", "FAILED"),
    ):  # fmt: skip
        assert any(f"test_marked.py::{test}" in li and outcome in li for li in out.splitlines())
    if not xdist:  # -s shows the body's prints in the run's own output
        assert "RUN S {'model': 'small'} ['small', 'small']" in out
        assert "RUN B {'model': 'big'} ['big', 'big']" in out
        assert "PINNED B ['small', 'small']" in out, "the marker's modify= beats the variant"
    result.stdout.fnmatch_lines(
        [
            "variants:",
            "*S * 5/5 *",
            "*B * 1/5 *",
            "  per golden:",
            "    goldens/w.golden.yaml::weather: passed S; cheapest S; fastest S",
            "    test_marked.py::test_weather: passed S; cheapest S; fastest S",
        ]
    )
    result.stdout.fnmatch_lines(["    test_marked.py::test_numbered[[]2[]]: passed S; *"])
    result.stdout.fnmatch_lines(["  test_marked.py::test_numbered[[]1-B[]]: step 2 *"])
    variants = json.loads((bench.path / "r.json").read_text())["variants"]
    assert [v["variant"] for v in variants["variants"]] == ["S", "B"]
    assert len(variants["goldens"]) == 5
    assert all(g["passed"] and None not in g["passed"] for g in variants["goldens"])


def test_modification_values_of_the_wrong_kind_are_refused_before_any_run(
    bench: pytest.Pytester,
) -> None:
    """`model=42` parses as YAML to a number: it reached the engine and failed there with
    pydantic's traceback (blamed on the agent in a fork); it is a usage error now, naming
    the key and how to pass it as text. The marker's modify= and the Python API alike."""
    for option, said in (
        ("model=42", "model must be text, a model name; got int 42 (quote it: model='42')"),
        ("temperature=warm", "temperature must be a number; got str 'warm'"),
        ("tool_params=[1, 2]", "tool_params must be a mapping of the tool's arguments*"),
    ):
        result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", option)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, option
        result.stderr.fnmatch_lines([f"*--opswald-modify: {said}"])
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-variant", "n:model=7")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*model must be text, a model name; got int 7*"])
    bench.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.golden("goldens/w.golden.yaml", modify={"model": 3})
        def test_weather(golden_replay):
            pass
        """
    )
    result = bench.runpytest("test_marked.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.golden: modify= model must be text*got int 3*"])
    assert "Traceback" not in result.stdout.str()


def test_the_python_api_refuses_modifications_of_the_wrong_kind(bench: pytest.Pytester) -> None:
    import opswald

    golden = bench.path / "goldens" / "w.golden.yaml"
    with pytest.raises(ValueError, match=r"^modifications: model must be text.*got float 4.0"):
        opswald.Replay(golden, adapter=lambda _: None, modifications={"model": 4.0})
    with pytest.raises(TypeError, match="modifications must be a mapping of names to values"):
        opswald.Replay(golden, adapter=lambda _: None, modifications=["a"])  # type: ignore[arg-type]
    replay = opswald.Replay(golden, adapter=lambda _: None)
    with pytest.raises(ValueError, match="tool_params must be a mapping"):
        replay.fork_from(step=2, modifications={"tool_params": [1, 2]})


def test_a_fork_does_not_combine_with_a_recording(bench: pytest.Pytester) -> None:
    (bench.path / "goldens" / "s.golden.yaml").write_text("name: s\ninput: {user_inputs: [hi]}\n")
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-fork-at=2", "--opswald-modify",
        "model=big", "--opswald-mode=record",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--opswald-fork-at*does not combine with --opswald-mode=record*"])
    assert (bench.path / "goldens" / "s.golden.yaml").read_text().count("\n") == 2


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_modification_that_changes_nothing_is_named_once(
    bench: pytest.Pytester, workers: list[str]
) -> None:
    """`--opswald-modify modle=big` (a typo) on an adapter without `modifications`: the
    goldens replay as without it, and the summary says once, whichever golden or worker
    found it, that the key changed nothing and which key is meant."""
    golden = bench.path / "goldens" / "w.golden.yaml"
    (bench.path / "goldens" / "w2.golden.yaml").write_text(golden.read_text())
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", *workers, "--opswald-modify", "modle=big",
        "--opswald-json=r.json",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    text = " ".join(result.stdout.str().split())
    said = (
        "modification 'modle' (did you mean 'model'?) changed nothing in the goldens of "
        "wagent:run: the adapter takes no `modifications` parameter"
    )
    assert text.count(said) == 1, result.stdout.str()
    # the JSON report has the summary's notes too (QA probe26 #7), once each
    import json

    import jsonschema

    from opswald.report.json_report import REPORT_SCHEMA

    report = json.loads((bench.path / "r.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert [n for n in report["notes"] if n.startswith(said)] == [
        n for n in report["notes"] if "modle" in n
    ]
    assert len([n for n in report["notes"] if "modle" in n]) == 1, report["notes"]


def test_a_modification_named_like_opswalds_own_is_noted_for_an_adapter_that_takes_them(
    bench: pytest.Pytester,
) -> None:
    """The adapter takes `modifications`: its own keys are its business (no note), but a
    key named like one opswald applies gets one, hedged: the adapter may read it."""
    bench.makeini("[pytest]\nopswald_adapter = wagent:run_with_modifications\n")
    result = bench.runpytest(
        "--opswald-goldens", "goldens/", "--opswald-modify", "prompt_style=terse",
        "--opswald-modify", "temprature=0.5",
    )  # fmt: skip
    text = " ".join(result.stdout.str().split())
    assert (
        "modification 'temprature' (did you mean 'temperature'?) is not one opswald applies "
        "itself" in text
    ), result.stdout.str()
    assert "unless the adapter wagent:run_with_modifications reads it, it changes nothing" in text
    assert "'prompt_style'" not in text
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", "model=big")
    assert "changes nothing" not in result.stdout.str()
    assert "changed nothing" not in result.stdout.str()


def test_the_note_names_the_adapter_whose_goldens_a_key_changed_nothing_in(
    bench: pytest.Pytester,
) -> None:
    """QA (probe26 #1): one run, two adapters — one reads `style`, one takes no
    modifications: the note said `style` "changed nothing" for the whole run, where it
    changed the first adapter's goldens. It names the adapter whose goldens it is about."""
    golden = bench.path / "goldens" / "w.golden.yaml"
    (bench.path / "goldens" / "m.golden.yaml").write_text(
        golden.read_text().replace("name: weather", "name: moded", 1)
    )
    bench.makeconftest(
        "import wagent\n\n"
        "def pytest_opswald_adapter(golden, config):\n"
        "    return wagent.run_with_modifications if golden.name == 'moded' else wagent.run\n"
    )
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", "style=loud")
    text = " ".join(result.stdout.str().split())
    assert (
        "note: modification 'style' changed nothing in the goldens of wagent:run: the adapter "
        "takes no `modifications` parameter" in text
    ), result.stdout.str()
    assert "wagent:run_with_modifications" not in text


def test_a_request_key_no_model_call_went_out_with_is_named(bench: pytest.Pytester) -> None:
    """QA (probe26 #6): `--opswald-modify top_p=0.5` on an agent whose `@opswald.llm`
    function takes no `top_p` compared a run with itself, silently; the summary names the
    key. A key the function takes (`temperature`) gets no note."""
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", "top_p=0.5")
    text = " ".join(result.stdout.str().split())
    assert (
        "note: modification 'top_p' reached none of the model calls in the goldens of "
        "wagent:run: an @opswald.llm function is given a request key only through a parameter "
        "of that name" in text
    ), result.stdout.str()
    result = bench.runpytest("--opswald-goldens", "goldens/", "--opswald-modify", "temperature=0.5")
    assert "reached none" not in result.stdout.str()


def test_a_modification_that_overrides_a_variants_key_is_said(bench: pytest.Pytester) -> None:
    """QA (probe26 #10): `--opswald-modify model=big` beside `--opswald-variant
    B:model=small` ran B with big, silently: the variants table then compared two runs of
    the same model. The summary says so."""
    result = bench.runpytest(
        "--opswald-goldens", "--opswald-variant", "A:model=big", "--opswald-variant",
        "B:model=small", "--opswald-modify", "model=big",
    )  # fmt: skip
    text = " ".join(result.stdout.str().split())
    assert (
        "note: --opswald-modify model=big overrides the variant B's model=small: the variant "
        "runs with the command line's value" in text
    ), result.stdout.str()
    assert "variant A's" not in text, "A asks for the same value: nothing overridden"


def test_a_markers_modify_that_overrides_a_variants_key_is_said(bench: pytest.Pytester) -> None:
    """QA (probe28 #8): a marker's `modify=` beats a variant's value (the stronger source)
    silently, as `--opswald-modify` did: the variants compared two identical runs."""
    bench.makepyfile(
        test_m=(
            "import pytest\n\n"
            '@pytest.mark.golden("goldens/w.golden.yaml", modify={"model": "big"}, verdict=False)\n'
            "def test_m(golden_replay):\n    pass\n"
        )
    )
    result = bench.runpytest(
        "test_m.py", "--opswald-variant", "A:model=small", "--opswald-variant", "B:model=big"
    )
    result.assert_outcomes(passed=2)
    text = " ".join(result.stdout.str().split())
    assert (
        "note: test_m.py::test_m: the marker's modify= model=big overrides the variant A's "
        "model=small: the variant runs with the marker's value" in text
    ), result.stdout.str()
    assert "variant B's" not in text
