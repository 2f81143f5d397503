"""The core loop under awkward input: bad ini values and option values are usage errors,
a failure says what helps (and never offers an update that will not bless it), a raising
agent is the headline with its own traceback, and goldens keep the numbers as written."""

from __future__ import annotations

import json
import os

import pytest

from conftest import record

GOLDEN = "goldens/flight.golden.yaml"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "opswald_mode=recrod"], "*opswald_mode: 'recrod' is not one of 'replay'*"),
        (["-o", "opswald_diff_mode=bogus"], "*opswald_diff_mode: 'bogus' is not one of*"),
        (["-o", "opswald_redact=everything"], "*opswald_redact: 'everything' is not one of*"),
        (
            ["-o", "opswald_request_normalize=([ => x"],
            "*opswald_request_normalize: '([' is not a valid regular expression*",
        ),
        (
            ["-o", "opswald_langgraph_state=yes please"],
            # pytest 9.2 reads `bool` ini values itself, before any plugin, and names only
            # the value; earlier versions leave it to the plugin, whose message names both
            "*invalid truth value 'yes please'*",
        ),
        (["--opswald-timeout", "nan"], "*--opswald-timeout must be a positive, finite*, not nan"),
        (["--opswald-timeout", "inf"], "*--opswald-timeout must be a positive, finite*, not inf"),
        (["--opswald-timeout=-inf"], "*--opswald-timeout must be a positive, finite*, not -inf"),
        (["--opswald-timeout", "0"], "*--opswald-timeout must be a positive, finite*, not 0"),
        # the wording of opswald analyze --slow-ms and opswald html --slow-ms
        (["--opswald-slow-ms=-1"], "*--opswald-slow-ms: '-1' is negative: give 0 or more*"),
        (["--opswald-slow-ms", "nan"], "*--opswald-slow-ms: 'nan' is not a number*"),
    ],
)
def test_bad_settings_are_usage_errors(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    result = project.runpytest("--opswald-goldens", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_ini_choices_ignore_case(project: pytest.Pytester) -> None:
    record(project)
    project.runpytest("--opswald-goldens", "-o", "opswald_mode=Replay").assert_outcomes(passed=1)


def test_a_raising_agent_heads_the_failure_with_its_own_traceback(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "raise")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if "the agent raised RuntimeError" in line)
    unused = next(i for i, line in enumerate(lines) if "recorded call(s) unused" in line)
    assert head < unused, "the exception comes first; the unused calls follow from it"
    assert "\\n" not in out, "the traceback is printed on lines, not as escaped text"
    result.stdout.fnmatch_lines(
        ["*the agent's traceback ends:", "*agent.py*in run*", "*RuntimeError: agent broke*"]
    )
    assert "opswald/adapters.py" not in out and "opswald/instrument.py" not in out


def test_a_budget_failure_never_offers_an_update(project: pytest.Pytester) -> None:
    record(project)
    path = project.path / GOLDEN
    path.write_text(path.read_text() + "expect:\n  budgets:\n    llm_calls: 1\n")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "accept it with --opswald-update" not in out
    result.stdout.fnmatch_lines(["*fix: --opswald-update does not bless this*"])


def test_a_failing_breakpoint_is_not_blessed_nor_called_a_divergence(
    project: pytest.Pytester,
) -> None:
    record(project)
    path = project.path / GOLDEN
    before = path.read_bytes()
    args = ["--opswald-break", "tool_name == 'book'", "--opswald-break-action=fail"]
    result = project.runpytest("--opswald-goldens", *args, "--opswald-update")
    result.assert_outcomes(failed=1)
    assert path.read_bytes() == before, "a failing breakpoint is never written"
    result.stdout.fnmatch_lines(["*never blessed*"])
    result = project.runpytest("--opswald-goldens", *args)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "first divergence" not in out
    result.stdout.fnmatch_lines(["*failed (breakpoint): step 5 tool_call book"])


def test_numbers_stay_as_written(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """`timeout: 5` is not rewritten as `5.0` by an update (no churn in the golden's diff)."""
    record(project)
    path = project.path / GOLDEN
    path.write_text(path.read_text() + "timeout: 5\n")
    monkeypatch.setenv("AGENT_VARIANT", "output")
    project.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    text = path.read_text()
    assert "\ntimeout: 5\n" in text and "(v2)" in text


def test_order_subset_lets_replay_skip_a_recorded_tool_call(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent skips `book` (step 5) and goes on to its next model call."""
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "drop")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the agent did not call book and went on to a llm_call*"])
    path = project.path / GOLDEN
    path.write_text(path.read_text() + "expect:\n  tool_calls:\n    order: subset\n")
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_an_extra_tool_call_names_the_next_recorded_call(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`extra`: the agent looks up Zed after booking; the golden goes on with step 6."""
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "extra")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "every recorded call was already used" not in out
    # the headline numbers the call in the run, says where in the golden it came, shows
    # what it sent and names the call once; the hint numbers the golden's steps as such
    args = json.dumps({"passenger": "Zed"})
    result.stdout.fnmatch_lines(
        [
            "step 6 of this run · tool_call lookup: the agent made a call the golden does not "
            f"have, with {args}, after the golden's step 5 (tool_call book)",
            "  hint: this turn of the golden has no tool call left; the golden's next recorded "
            "call is its step 6 (llm_call m1)",
        ]
    )
    headline = next(line for line in result.stdout.lines if "does not have" in line)
    assert headline.count("lookup") == 1, headline


def test_an_extra_call_after_the_last_step_counts_the_goldens_steps(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-step golden: `the golden has 1 step`, not `1 steps`."""
    pytester.makepyfile(
        agent="""
        import os
        import opswald

        @opswald.tool
        def lookup(key):
            return 1

        def run(input):
            for _ in range(int(os.environ.get("CALLS", "1"))):
                lookup(input["key"])
            return "done"
        """
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens").joinpath("one.golden.yaml").write_text("name: one\ninput: {key: k}\n")
    record(pytester)
    monkeypatch.setenv("CALLS", "2")
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "step 2 of this run · tool_call lookup: the agent made a call the golden does not "
            'have, with {"key": "k"}, after the golden\'s last step, step 1 (tool_call lookup)',
            "  hint: every recorded call was already used (the golden has 1 step)",
        ]
    )


def test_a_modification_that_looks_like_yaml_but_is_broken(project: pytest.Pytester) -> None:
    result = project.runpytest("--opswald-goldens", "--opswald-modify", "x={a: [1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--opswald-modify: x={a: [1 is not valid YAML*"])


def test_a_mapping_key_glued_to_its_value_is_refused_with_the_fix(
    project: pytest.Pytester,
) -> None:
    """QA (probe26 #8): `tool_params={city:Rome}` (no space after the colon) is YAML for one
    key "city:Rome" with no value: accepted, it ended in the agent's TypeError; refused
    with the spelling that works. A URL's colons, or a key quoted on purpose, are not."""
    result = project.runpytest(
        "--opswald-goldens", "--opswald-fork-at=1", "--opswald-modify", "tool_params={city:Rome}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--opswald-modify: tool_params={city:Rome}: YAML reads 'city:Rome' as one key "
            "with no value; put a space after the colon: {city: Rome}"
        ]
    )
    from opswald.plugin import parse_assignments

    assert parse_assignments(["x={url: http://a:b}", 'y={"a:b": null}'], "--opswald-modify") == {
        "x": {"url": "http://a:b"},
        "y": {"a:b": None},
    }


@pytest.mark.parametrize(
    "args",
    [[], ["--opswald-timeout", "60"], ["--opswald-timeout", "60", "-n", "2"]],
    ids=["inline", "timeout", "timeout-xdist"],
)
def test_a_step_hook_that_raises_is_not_the_agents_error(
    project: pytest.Pytester, args: list[str]
) -> None:
    """Also under a timeout, whose forked child sends the hook's exception back."""
    record(project)
    project.makeconftest(
        """
        import agent


        def pytest_opswald_adapter(golden, config):
            return agent.run


        def pytest_opswald_after_step(replay, step, result):
            if step.step == 2:
                raise LookupError("my hook is broken")
        """
    )
    result = project.runpytest("--opswald-goldens", *args)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the agent raised" not in out
    assert "AssertionError" not in out and "HookFailed" not in out
    failure = out.split(" FAILURES ")[1].split(" opswald ")[0]
    assert "opswald/" not in failure and "pluggy" not in failure, "only the hook's frames"
    result.stdout.fnmatch_lines(
        [
            "conftest.py:*: in pytest_opswald_after_step",
            "*raise LookupError*",
            "E   LookupError: my hook is broken",
            "E   (raised by the pytest_opswald_after_step hook, not by the agent)",
        ],
        consecutive=False,
    )


CONVERSATION = """
import os

import opswald


@opswald.llm
def chat(*, model, messages):
    return {"content": f"{model} heard: {messages[-1]['content']}", "finish_reason": "stop"}


def run(input):
    model = os.environ.get("CONV_MODEL", "m1")
    messages, replies = [], []
    for _ in range(2):
        messages.append({"role": "user", "content": opswald.user_input("You: ")})
        reply = chat(model=model, messages=list(messages))["content"]
        messages.append({"role": "assistant", "content": reply})
        replies.append(reply)
    return {"replies": replies}
"""


def test_after_a_divergence_the_conversation_goes_on_with_the_next_scripted_input(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 1 (the first question) is served from the golden, step 2 diverges (another
    model), and the live rest must ask the *second* scripted question, not the first."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("CONV_MODEL", raising=False)
    pytester.makepyfile(convagent=CONVERSATION, conftest="import convagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = convagent:run\n")
    pytester.mkdir("goldens")
    path = pytester.path / "goldens" / "conv.golden.yaml"
    path.write_text("name: conv\ninput:\n  user_inputs: [first question, second question]\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("CONV_MODEL", "m2")
    pytester.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    import opswald

    golden = opswald.load(path)
    assert golden.output == {"replies": ["m2 heard: first question", "m2 heard: second question"]}
    # a fork on another model (a variant) hears both questions too; its output differs
    result = pytester.runpytest(
        "--opswald-goldens", "--opswald-variant", "big:model=m3", "--opswald-save-actual=out"
    )
    result.assert_outcomes(failed=1)
    (saved,) = (pytester.path / "out").iterdir()
    replies = opswald.load(saved).output["replies"]
    assert replies == ["m3 heard: first question", "m3 heard: second question"]


def test_a_run_stopped_at_step_1_does_not_also_blame_its_missing_cost(
    project: pytest.Pytester,
) -> None:
    record(project)
    path = project.path / GOLDEN
    text = path.read_text().replace("content: Book AF1 for me", "content: Book AF2 for me", 1)
    assert "AF2" in text
    path.write_text(text + "expect:\n  budgets:\n    cost: 1.0\n")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*step 1 of 7 · llm_call m1: the agent sent another request*"])
    assert "cannot be checked" not in result.stdout.str()


def test_the_json_report_gives_the_reason_an_update_was_not_written(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")  # book (side effects) with other arguments
    result = project.runpytest("--opswald-goldens", "--opswald-update", "--opswald-json=r.json")
    result.assert_outcomes(failed=1)
    (row,) = json.loads((project.path / "r.json").read_text())["failed_tests"]
    assert row["step"] == 5 and "side effects" in row["error"]
    assert "--opswald-allow-side-effects" in row["suggestion"]


def test_the_ini_adapter_is_found_beside_the_ini_file_without_a_conftest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's framework layout: pytest.ini naming `lonely_agent:run`, the module
    beside it, no conftest.py to put that folder on sys.path."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(lonely_agent="def run(input):\n    return {'echo': input}\n")
    pytester.makeini("[pytest]\nopswald_adapter = lonely_agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "g.golden.yaml").write_text("name: g\ninput: hi\n")
    sub = pytester.mkdir("sub")  # run from elsewhere: the ini's folder is what counts
    monkeypatch.chdir(sub)
    args = ["--opswald-goldens", str(pytester.path / "goldens"), "-p", "no:cacheprovider"]
    result = pytester.runpytest_subprocess(*args, "--opswald-mode=record")
    result.assert_outcomes(passed=1)
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)


def test_a_blocked_side_effect_stays_in_the_saved_actual(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opswald
    from opswald.session import ToolCallStep

    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("--opswald-goldens", "--opswald-update", "--opswald-save-actual=out")
    result.assert_outcomes(failed=1)
    (saved,) = (project.path / "out").iterdir()
    last = opswald.load(saved).step_list[-1]
    assert isinstance(last, ToolCallStep) and last.step == 5 and last.tool == "book"
    assert last.input == {"flight": "AF1", "passenger": "Bob"}
    assert last.error is not None and last.error.type == "SideEffectBlocked"
    assert not (project.path / "side_effects.log").read_text().count("Bob")


def test_a_bad_request_ignore_ini_path_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("-o", "opswald_request_ignore=messages[")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*opswald_request_ignore: *messages[*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_bad_rule_from_the_normalize_hook_is_one_clear_failure(
    project: pytest.Pytester,
) -> None:
    record(project)
    project.makeconftest(
        """
        import agent


        def pytest_opswald_adapter(golden, config):
            return agent.run


        def pytest_opswald_normalize(config):
            return {r"(\\d{4}": "<year>"}
        """
    )
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest_opswald_normalize returned a rule that is not one:*"])
    assert "pydantic_core" not in result.stdout.str()


def test_an_update_does_not_bless_what_expect_itself_fails(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A json_subset value the output can never hold: rewriting the golden would not make
    the next run pass, so the update writes nothing and says why."""
    record(project)
    path = project.path / GOLDEN
    path.write_text(
        path.read_text() + "expect:\n  output: {match: json_subset, value: {answer: nope}}\n"
    )
    before = path.read_bytes()
    monkeypatch.setenv("AGENT_VARIANT", "output")
    result = project.runpytest("--opswald-goldens")  # replay: the fix line says it too
    result.stdout.fnmatch_lines(["*fix: --opswald-update cannot fix this: it rewrites the golden*"])
    assert "accept it with --opswald-update" not in result.stdout.str()
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*fix: not written: the golden's own `expect:` fails this run*"])
    assert path.read_bytes() == before
    monkeypatch.delenv("AGENT_VARIANT")
    path.write_text(path.read_text().replace("value: {answer: nope}", "value: {who: Alice}"))
    monkeypatch.setenv("AGENT_VARIANT", "output")  # now the expectation follows the run
    project.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_state_differences_of_a_passing_golden_are_shown(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """expect.state: report (the default): shown, not failing, also when all else passes."""
    record(project)
    monkeypatch.setenv("AGENT_MUTATES", "1")  # the seat in the snapshots gets a "!"
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "note: flight.golden.yaml: step 3 of 7 · state: state snapshot differs (state: "
            "report): step 3 › memory.seat: '12A' → '12A!'"
        ]
    )


def test_a_watched_state_path_that_names_nothing_is_said(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    path = project.path / GOLDEN
    path.write_text(path.read_text() + "expect:\n  state: [memory.set]\n")  # memory.seat
    monkeypatch.setenv("AGENT_MUTATES", "1")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)  # the change to memory.seat is not watched...
    result.stdout.fnmatch_lines(  # ...and the summary says why the path watches nothing
        ["note: *expect.state watches memory.set, which no snapshot has: it cannot fail*"]
    )


def test_paths_copied_from_a_failure_ignore_and_a_misspelt_tool_rule_is_said(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure names `input.passenger` and `output.who`; written so in `expect:` they
    ignore those fields. A per-tool rule for a tool no call has (`boook`) can never apply:
    the summary says so, naming the close tool."""
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")  # book(passenger="Bob")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*step 5 › input.passenger: 'Alice' → 'Bob'*"])
    path = project.path / GOLDEN
    path.write_text(
        path.read_text()
        + "expect:\n"
        + "  tool_calls:\n"
        + "    ignore_args: [input.passenger]\n"
        + "    tools: {boook: {args: ignore}}\n"
    )
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "note: *expect.tool_calls.tools has a rule for boook, which no tool call of the "
            "golden or the run has: it never applies (did you mean book?)*"
        ]
    )


def test_an_update_keeps_hand_written_expectation_shorthands(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    path = project.path / GOLDEN
    path.write_text(path.read_text() + "expect:\n  output: normalized\n  state: [memory.seat]\n")
    monkeypatch.setenv("AGENT_VARIANT", "output")
    project.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    text = path.read_text()
    assert text.endswith("expect:\n  output: normalized\n  state: [memory.seat]\n"), text[-200:]


def test_an_update_that_cannot_write_shows_the_failure_and_why(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The goldens folder read-only (a bind mount in a private mount namespace, so that
    even root cannot write): the failure is the divergence plus why nothing was written."""
    import shlex
    import subprocess
    import sys

    record(project)
    goldens = project.path / "goldens"
    before = (goldens / "flight.golden.yaml").read_bytes()
    folder = shlex.quote(str(goldens))
    run = (
        f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
        f"{shlex.quote(sys.executable)} -m pytest --opswald-goldens --opswald-update "
        "-p no:cacheprovider"
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", run],
        cwd=project.path,
        env={**os.environ, "AGENT_VARIANT": "output"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "output differs" in proc.stdout
    assert "fix: not written: cannot write " in proc.stdout
    assert "Read-only file system" in proc.stdout
    assert "Traceback" not in proc.stdout and "OSError" not in proc.stdout
    assert (goldens / "flight.golden.yaml").read_bytes() == before


def test_a_stub_that_cannot_be_written_says_why(project: pytest.Pytester) -> None:
    """Recording a stub in a read-only folder (a read-only bind mount in a private mount
    namespace): the run has nothing to differ from, so the failure is why nothing was
    written — in the failure, the short summary and the JSON report."""
    import json
    import shlex
    import subprocess
    import sys

    goldens = project.path / "goldens"
    stub = (goldens / "flight.golden.yaml").read_bytes()
    folder = shlex.quote(str(goldens))
    run = (
        f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
        f"{shlex.quote(sys.executable)} -m pytest --opswald-goldens --opswald-mode=record "
        "-p no:cacheprovider -rf --opswald-json=r.json"
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", run],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    why = f"flight.golden.yaml: not written: cannot write {goldens / 'flight.golden.yaml'}: "
    assert why + "Read-only file system" in proc.stdout, proc.stdout
    summary = "FAILED goldens/flight.golden.yaml::book_flight - flight.golden.yaml: not writ"
    assert summary in proc.stdout, proc.stdout  # (pytest cuts it to the terminal's width)
    assert "Traceback" not in proc.stdout and "OSError" not in proc.stdout
    (row,) = json.loads((project.path / "r.json").read_text())["failed_tests"]
    assert row["error"] is not None and row["error"].startswith(why), row
    assert row["error"].endswith("Read-only file system"), row
    assert (goldens / "flight.golden.yaml").read_bytes() == stub


def test_a_stub_not_written_on_ci_says_why_in_the_json_report(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("CI", "true")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-mode=record", "--opswald-json=r.json"
    )
    result.assert_outcomes(failed=1)
    (row,) = json.loads((project.path / "r.json").read_text())["failed_tests"]
    assert row["error"] is not None and "CI environment variable is set" in row["error"], row


def test_a_goldens_folder_named_in_the_ini_that_does_not_exist_is_warned_about(
    project: pytest.Pytester,
) -> None:
    project.makeini("[pytest]\nopswald_goldens = goldenz\n")
    result = project.runpytest("--opswald-goldens")
    result.stdout.fnmatch_lines(["*opswald_goldens = goldenz: no such file or folder under *"])
    project.makeini("[pytest]\n")  # the default `goldens` exists: no warning
    assert "opswald_goldens" not in project.runpytest("--opswald-goldens").stdout.str()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_goldens_sharing_a_name_are_warned_about_when_actuals_are_saved(
    project: pytest.Pytester, workers: list[str]
) -> None:
    record(project)
    nested = project.mkdir("goldens/more")
    (nested / "flight.golden.yaml").write_text((project.path / GOLDEN).read_text())
    shown = ["-W", "always::pytest.PytestConfigWarning"]  # this suite makes warnings errors
    result = project.runpytest("--opswald-goldens", "--opswald-save-actual=out", *shown, *workers)
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*goldens/more/flight.golden.yaml:1: PytestConfigWarning: --opswald-save-actual: "
            "2 goldens are named 'book_flight'*give them distinct names*"
        ]
    )
    assert "goldens are named" not in project.runpytest("--opswald-goldens").stdout.str()
    if workers:
        return
    # warnings made errors: a usage error naming the problem, not an INTERNALERROR
    errors = ["-W", "error::pytest.PytestConfigWarning"]
    result = project.runpytest("--opswald-goldens", "--opswald-save-actual=out", *errors)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --opswald-save-actual: 2 goldens are named*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
