"""What a fork or a variant run says about itself, in the terminal, its saved actual and
the viewer: the pairing of its snapshots, the modification named as the cause, hints a
fork can follow."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from opswald.report import html_cli

AGENT = """
import json
import opswald

PRICES = {"m-small": (1.0, 2.0), "m-large": (10.0, 30.0)}
WEATHER = {"Oslo": {"temp": 3, "sky": "snow"}, "Rome": {"temp": 18, "sky": "sun"}}


@opswald.tool
def lookup(city):
    return WEATHER.get(city, {"temp": None, "sky": "unknown"})


@opswald.tool
def convert(celsius):
    return celsius * 9 / 5 + 32


@opswald.tool(side_effects=True)
def send_email(to, body):
    return {"sent": True, "to": to}


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages, tools=None, temperature=0.0):
    tool_msgs = [m for m in messages if m["role"] == "tool"]
    user = [m for m in messages if m["role"] == "user"][-1]["content"]
    done = {m["name"] for m in tool_msgs}
    calls, content = [], None
    if "lookup" not in done:
        city = "Rome" if "rome" in user.lower() else "Oslo"
        calls = [{"id": "c1", "name": "lookup", "arguments": {"city": city}}]
    elif "fahrenheit" in user.lower() and "convert" not in done:
        w = json.loads([m for m in tool_msgs if m["name"] == "lookup"][-1]["content"])
        calls = [{"id": "c2", "name": "convert", "arguments": {"celsius": w["temp"]}}]
    elif "email" in user.lower() and "send_email" not in done:
        calls = [{"id": "c3", "name": "send_email", "arguments": {"to": "a@b.c", "body": "wx"}}]
    else:
        w = json.loads([m for m in tool_msgs if m["name"] == "lookup"][-1]["content"])
        content = f"It is {w['temp']}C and {w['sky']}."
        if model == "m-large":
            content = "After careful consideration: " + content
    inp = 10 * len(messages)
    out = 5 if content is None else len(content)
    pi, po = PRICES.get(model, (0, 0))
    return {"content": content, "tool_calls": calls,
            "finish_reason": "tool_calls" if calls else "stop",
            "usage": {"input_tokens": inp, "output_tokens": out},
            "cost": (inp * pi + out * po) / 1e6}


TOOLS = {"lookup": lookup, "convert": convert, "send_email": send_email}


def run(input, modifications=None):
    if (modifications or {}).get("extra_state"):
        opswald.state(variables={"extra": True})
    question = opswald.user_input("You: ")
    messages = [{"role": "user", "content": question}]
    for turn in range(6):
        r = chat(model="m-small", messages=messages, tools=list(TOOLS), temperature=0.0)
        if r["tool_calls"]:
            messages.append({"role": "assistant", "tool_calls": r["tool_calls"]})
            for c in r["tool_calls"]:
                res = TOOLS[c["name"]](**c["arguments"])
                messages.append({"role": "tool", "name": c["name"], "content": json.dumps(res)})
            opswald.state(variables={"turn": turn,
                                     "tools": [m["name"] for m in messages if m["role"] == "tool"]})
            continue
        opswald.state(memory={"answer": r["content"]})
        return {"answer": r["content"]}
    return {"answer": None}
"""

DATA_BLOCK = re.compile(r'<script type="application/json" id="opswald-data">(.*?)</script>', re.S)

GOLDENS = {
    "rome_f": "Weather in Rome in fahrenheit please",
    "oslo": "Weather in Oslo please",
    "email": "Weather in Oslo, and email it please",
}


@pytest.fixture
def weather(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The weather agent with its three goldens recorded (rome_f: 9 steps, 4 and 7 and 9
    snapshots)."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(agent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    for name, question in GOLDENS.items():
        (pytester.path / "goldens" / f"{name}.golden.yaml").write_text(
            f"name: {name}\ninput: {{user_inputs: [{json.dumps(question)}]}}\n"
        )
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    return pytester


def _only(pytester: pytest.Pytester, name: str, tail: str = "") -> None:
    """Keep only golden `name`, with `tail` added to it."""
    for path in (pytester.path / "goldens").iterdir():
        if not path.name.startswith(f"{name}."):
            path.unlink()
        elif tail:
            path.write_text(path.read_text() + tail)


def _page(pytester: pytest.Pytester, *args: str) -> dict[str, Any]:
    out = pytester.path / "page.html"
    assert html_cli.main(["html", *args, "-o", str(out)]) == 0
    match = DATA_BLOCK.search(out.read_text())
    assert match is not None
    data = json.loads(match.group(1))
    assert isinstance(data, dict)
    return data


STATE_EXACT = "expect:\n  state: exact\n  output: {match: contains, value: ''}\n"


def test_a_forks_extra_snapshot_and_missing_one_are_paired_as_diff_pairs_them(
    weather: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run took one snapshot more before its user input and, its answer forked at step
    5, stopped before the golden's snapshot at step 7: `expect.state: exact` says the first
    is extra (the run's step 1) and the second missing, as the fork's own diff does, and
    so does the viewer from the saved actual."""
    _only(weather, "rome_f", STATE_EXACT)
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "--opswald-modify", "extra_state=true",
        "--opswald-fork-at=5", "--opswald-modify", "response=No conversion.",
        "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "step 1 of this run · state: extra state snapshot 1: the golden has none in its "
            "place (state: exact)",
            "step 7 of 9 · state: state snapshot 2 missing: the run recorded none in its "
            "place (state: exact)",
            "step 9 of 9 · state: state snapshot differs (state: exact)",
        ]
    )
    assert "variables.extra: added" not in out
    monkeypatch.chdir(weather.path)
    page = _page(weather, "goldens", "--actual-dir", "actual")
    states = [
        (f["step"], bool(f.get("run_step")), f["message"])
        for f in page["goldens"][0]["findings"]
        if f["kind"] == "state"
    ]
    assert states == [
        (1, True, "extra state snapshot 1: the golden has none in its place (state: exact)"),
        (7, False, "state snapshot 2 missing: the run recorded none in its place (state: exact)"),
        (9, False, "state snapshot differs (state: exact)"),
    ]


def _analysis(page: dict[str, Any]) -> dict[str, Any]:
    found = [a for a in page["goldens"][0]["analyses"] if a["kind"] == "divergence"]
    assert len(found) == 1, page["goldens"][0]["analyses"]
    return found[0]


@pytest.mark.parametrize("fork", [["--opswald-fork-at=2"], []])
def test_a_request_modification_is_the_cause_not_the_agent(
    weather: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fork: list[str]
) -> None:
    """`model=` is applied by opswald to the request: the viewer's analysis names it as the
    cause of the step it changed, and the live answer's cost is its consequence, not a value
    the run passed; the terminal says the modification changed the request, not that the
    agent sent another one."""
    _only(weather, "rome_f")
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", *fork, "--opswald-modify", "model=m-large",
        "--opswald-html", "run.html", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the agent sent another request" not in out
    if not fork:  # went live at the first call the modification changed: said so
        result.stdout.fnmatch_lines(
            ["*step 2 of 9 · llm_call m-small: the run left the golden here: the modification "
             "model=m-large changed the request"]
        )  # fmt: skip
    monkeypatch.chdir(weather.path)
    for page in (
        _page_of(weather.path / "run.html"),
        _page(weather, "goldens", "--actual-dir", "actual"),
    ):
        fix = _analysis(page)["fix"]
        assert "the run passed" not in fix, fix
        assert "model=`m-large`" in fix, fix
        assert "not something the agent did" in fix, fix
        assert "cost" in fix and "live answer" in fix, fix


CHANGED_BY_MODEL = "the modification model=m-large changed the request"


def test_a_forks_path_line_names_model_as_the_cause_of_the_changed_steps(
    weather: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Under the fork line, a model call whose name changed only because opswald applied
    `model=` reads as that modification's doing (as the also (not failing) line says it),
    in pytest, opswald replay and the viewer; a step the agent made otherwise does not."""
    _only(weather, "rome_f")
    fork = ["--opswald-fork-at=5", "--opswald-modify", "model=m-large"]
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", *fork, "--opswald-html", "run.html"
    )
    result.assert_outcomes(failed=1)
    lines = [
        f"    step {n}: 'llm_call m-small' → 'llm_call m-large' ({CHANGED_BY_MODEL})"
        for n in (5, 8)
    ]
    out = result.stdout.lines
    assert all(line in out for line in lines), result.stdout.str()
    page = _page_of(weather.path / "run.html")
    [entry] = page["goldens"]
    [path] = [f for f in entry["findings"] if f["kind"] == "fork"]
    assert [line.strip() for line in lines] == [
        line for line in path["diff"] if line.startswith("step ")
    ], path["diff"]
    assert {d.get("cause") for d in path["differences"]} == {CHANGED_BY_MODEL}
    monkeypatch.chdir(weather.path)
    monkeypatch.setenv("COLUMNS", "160")
    from opswald.cli import main

    capsys.readouterr()
    golden = "goldens/rome_f.golden.yaml"
    assert main(["replay", golden, "--fork-at", "5", "--modify", "model=m-large"]) == 1
    # replay breaks a long line to fit the terminal: read it whole again
    replayed = " ".join(line.strip() for line in capsys.readouterr().out.splitlines())
    assert all(line.strip() in replayed for line in lines), replayed
    # another tool at a step, under model= too: not the modification's doing
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", *fork, "--opswald-modify",
        "tool_params={celsius: 3}", "--opswald-modify", "selected_tool=lookup",
    )  # fmt: skip
    assert "    step 6: 'tool_call convert' → 'tool_call lookup'" in result.stdout.lines, (
        result.stdout.str()
    )


def _page_of(path: Path) -> dict[str, Any]:
    match = DATA_BLOCK.search(path.read_text())
    assert match is not None
    data = json.loads(match.group(1))
    assert isinstance(data, dict)
    return data


def _findings(page: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entry = next(g for g in page["goldens"] if g["name"].split("[")[0] == name)
    found = entry["findings"]
    assert isinstance(found, list)
    return found


def test_the_viewer_of_a_saved_fork_hints_as_a_fork_and_names_its_block(
    weather: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saved fork read alone (`opswald html --actual-dir`) is still a fork: its hints say a
    fork is judged, never written (as pytest did), not to accept it with --opswald-update;
    the fork of `email` stopped at the blocked send_email: that block is its finding at that
    step, with the option that lets it run, and the golden's steps it never came to and the
    output it never made are no findings."""
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "--opswald-fork-at=2",
        "--opswald-modify", "model=m-large", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=3)
    monkeypatch.chdir(weather.path)
    page = _page(weather, "goldens", "--actual-dir", "actual")
    for name in GOLDENS:
        hints = {f["suggestion"] for f in _findings(page, name) if f["suggestion"]}
        assert hints, name
        for hint in hints:
            assert "accept it with --opswald-update" not in hint or "--opswald-modify" in hint
            assert "a fork is judged, never written" in hint or "allow-side-effects" in hint
    email = _findings(page, "email")
    blocked = [f for f in email if f["kind"] == "side_effect"]
    assert [(f["step"], f["run_step"], f["message"]) for f in blocked] == [
        (6, True, "send_email has side effects and would run live")
    ]
    assert "--opswald-allow-side-effects" in blocked[0]["suggestion"]
    assert "rerecord" not in blocked[0]["suggestion"]
    assert not [f for f in email if f["kind"] != "side_effect" and f.get("step") == 6]
    assert all((f.get("step") or 0) < 7 for f in email), email
    assert not [f for f in email if f["message"] == "output differs"]


def test_the_viewer_of_a_saved_variant_hints_with_the_variant(
    weather: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A saved variant's findings say how pytest would accept it: an update with the same
    variant alone."""
    _only(weather, "rome_f")
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "--opswald-variant", "b:model=m-large",
        "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    monkeypatch.chdir(weather.path)
    page = _page(weather, "goldens", "--actual-dir", "actual")
    hints = {f["suggestion"] for f in _findings(page, "rome_f") if f["suggestion"]}
    assert hints
    for hint in hints:
        assert "--opswald-update --opswald-variant b:model=m-large" in hint, hint


def test_the_viewers_slowest_and_costliest_steps_are_the_runs_when_it_has_one(
    weather: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fork to a dearer model, with one snapshot more at its start: the most expensive
    steps listed are the run's model calls at their m-large cost, numbered as the golden's
    steps they face (the run's 9 is the golden's 8); a step only the run has is numbered
    in the run. A golden shown alone lists its own."""
    _only(weather, "rome_f")
    monkeypatch.chdir(weather.path)
    alone = _page(weather, "goldens")["goldens"][0]
    assert alone["top_steps"]["side"] == "golden"
    assert [t["step"] for t in alone["top_steps"]["costliest"]] == [8, 5, 2]
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "--opswald-fork-at=2",
        "--opswald-modify", "model=m-large", "--opswald-modify", "extra_state=true",
        "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    entry = _page(weather, "goldens", "--actual-dir", "actual")["goldens"][0]
    top = entry["top_steps"]
    assert top["side"] == "actual"
    costliest = top["costliest"]
    assert [(t["n"], t["step"], t["run_step"]) for t in costliest] == [
        (9, 8, False),
        (6, 5, False),
        (3, 2, False),
    ]
    run_costs = {s["n"]: s["cost"] for s in entry["actual"]["steps"]}
    golden_costs = {s["n"]: s["cost"] for s in entry["golden"]["steps"]}
    assert run_costs[9] > golden_costs[8]
    extra = [t for t in top["slowest"] if t["n"] == 1]
    assert all(t["run_step"] and t["step"] == 1 for t in extra)


def test_a_quiet_variants_run_still_prints_its_comparison(weather: pytest.Pytester) -> None:
    """The comparison table is what a variants run is for: -q keeps it (and drops the rest
    of the summary: the failure table and the analyses)."""
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "-q",
        "--opswald-variant", "small:model=m-small", "--opswald-variant", "large:model=m-large",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "goldens: *",
            "variants:",
            "  variant *passed complete*",
            "  small *3/3 *",
            "  large *0/3 *",
            "  per golden:",
            "    rome_f: passed small; cheapest *",
        ]
    )
    out = result.stdout.str()
    assert "cost analysis" not in out
    assert "FAILED    " not in out


def test_a_fork_asked_at_a_snapshot_records_and_says_the_call_it_forked_at(
    weather: pytest.Pytester,
) -> None:
    """Step 4 of rome_f is a snapshot, which a fork cannot start at: it starts at the next
    call, step 5. The fork line and the saved actual's metadata.fork say step 5, and both
    say step 4 was asked for."""
    _only(weather, "rome_f")
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "--opswald-fork-at=4",
        "--opswald-modify", "model=m-large", "--opswald-save-actual", "actual",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "  step 5 of 9 · forked at step 5 (step 4, asked for, is a state snapshot, which a "
            "fork cannot start at: it starts at the next call): *"
        ]
    )
    actual = yaml.safe_load((weather.path / "actual" / "rome_f.actual.yaml").read_text())
    assert actual["metadata"]["fork"] == {"step": 5, "asked": 4}


def test_a_fork_that_made_no_tool_call_says_so_in_words(weather: pytest.Pytester) -> None:
    """The forked answer at step 2 is final: the agent made no tool call at all."""
    _only(weather, "rome_f")
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "--opswald-fork-at=2",
        "--opswald-modify", "response=No tools needed.",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*step 3 expected lookup, the agent made no tool calls*"])
    assert "made only 0" not in result.stdout.str()


def test_a_side_effect_blocked_in_a_fork_is_let_run_not_rerecorded(
    weather: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recording the golden again does not unblock a fork's side effect: the hint, and the
    viewer's analysis of the blocked step, offer --opswald-allow-side-effects alone."""
    _only(weather, "email")
    result = weather.runpytest(
        "--opswald-goldens", "-p", "no:randomly", "--opswald-fork-at=2",
        "--opswald-modify", "model=m-large", "--opswald-html", "run.html",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "step 6 of this run · tool_call send_email: send_email has side effects and would "
            "run live",
            "  hint: re-run with --opswald-allow-side-effects to let it run",
        ]
    )
    assert "--opswald-mode=rerecord" not in result.stdout.str()
    page = _page_of(weather.path / "run.html")
    (blocked,) = [a for a in page["goldens"][0]["analyses"] if a["kind"] == "step_error"]
    assert "--opswald-allow-side-effects" in blocked["fix"]
    assert "record the golden again" not in blocked["fix"]


def _variant_record(variant: str, cost: float | None, unpriced: int) -> dict[str, Any]:
    return {
        "name": f"goldens/a.golden.yaml::a[{variant}]",
        "golden": "a",
        "file": "goldens/a.golden.yaml",
        "variant": variant,
        "status": "passed",
        "completed": True,
        "cost": cost,
        "unpriced_calls": unpriced,
        "total_tokens": 10,
        "duration_ms": 1.0,
    }


def test_the_variants_legend_agrees_with_a_row_whose_cost_is_unknown() -> None:
    """A variant whose model calls all answered without a cost shows `-` (no cost known),
    and its legend line says the cost is unknown, not that `-` is a lower bound; a variant
    with a known part keeps its `≥$` lower bound and says so."""
    from opswald.report.summary import variant_comparison

    lines = variant_comparison(
        (_variant_record("unk", None, 4), _variant_record("some", 0.002, 1)), ("unk", "some")
    )
    unk = next(line for line in lines if line.startswith("  unk "))
    some = next(line for line in lines if line.startswith("  some "))
    assert "≥$" not in unk and " - " in unk
    assert "≥$" in some
    assert "  cost unknown: unk made 4 model calls without a cost" in lines
    assert "  ≥ a lower bound: some made 1 model call without a cost" in lines
    assert not [line for line in lines if "lower bound: unk" in line]
