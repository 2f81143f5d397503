"""Bad input to the `opswald` command line: every case ends in one clear line and the
documented exit status (2 argument errors, 4 bad input to a valid command), never a
traceback or a wrong answer; and options go between positionals as in most tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import opswald
from conftest import opswald_cli as cli
from opswald.cli import main

GOLDENS = Path(__file__).parent.parent / "goldens"
REFUND = GOLDENS / "refund.golden.yaml"
WEATHER = GOLDENS / "weather.golden.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_diff_limit_below_one_is_a_usage_error_not_a_false_pass(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "diff", str(REFUND), str(WEATHER), "--limit", "-1")
    assert code == 2 and "--limit: '-1': must be at least 1" in err
    assert "no differences" not in out
    code, out, _ = run(capsys, "diff", str(REFUND), str(WEATHER), "--limit", "1")
    assert code == 1 and "... more than 1 difference; raise --limit" in out
    code, out, _ = run(capsys, "diff", str(REFUND), str(WEATHER), "--limit", "2")
    assert code == 1 and "... more than 2 differences; raise --limit" in out


def test_options_may_sit_between_the_two_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "diff", str(REFUND), "--json", str(WEATHER))
    assert code == 1, err
    data = json.loads(out)
    assert data["equal"] is False and data["actual"] == str(WEATHER)
    code, out, _ = run(capsys, "diff", str(REFUND), "--mode", "short", str(REFUND))
    assert code == 0 and out.startswith("no differences")


@pytest.mark.parametrize("port", ["99999", "-5", "http"])
def test_serve_port_out_of_range(capsys: pytest.CaptureFixture[str], port: str) -> None:
    code, _, err = run(capsys, "serve", str(REFUND), "--port", port)
    assert code == 2 and "argument --port" in err and "Traceback" not in err


def test_traces_limit_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "traces", "list", "--limit", "0")
    assert code == 2 and "--limit: '0': must be at least 1" in err


def test_output_cut_short_by_the_reader_ends_quietly() -> None:
    """`opswald show ... | head -1`: no BrokenPipeError traceback, the shell's 141."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "opswald.cli", "show", str(GOLDENS / "conversation.golden.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader goes away before the first line
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("target", ["missing/dir/report.html", "a_file/report.html", "."])
def test_an_unwritable_html_output_is_one_line(tmp_path: Path, target: str) -> None:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "dir").write_text("a file where a folder should be")
    proc = cli("html", str(REFUND), "-o", target, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["a_file", "missing"]  # no temp file left behind


@pytest.mark.parametrize("there", [False, True], ids=["no-folder", "folder"])
def test_an_html_output_ending_in_a_slash_is_a_folder_path(tmp_path: Path, there: bool) -> None:
    """`-o reports/` wrote the page as a file named `reports` (and said it wrote
    `reports/`); a path ending in / names a folder, there or not, and is refused as
    pytest's --opswald-html refuses it, before any golden is read."""
    if there:
        (tmp_path / "reports").mkdir()
    proc = cli("html", str(REFUND), "-o", "reports/", cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    said = (
        "reports/ is a folder; name a file in it"
        if there
        else "reports/ is a folder path (it ends in /), not a file name; name a file"
    )
    assert proc.stderr == (
        f"error: -o must be a file name: {said}, such as reports/opswald-replay.html\n"
    )
    assert os.listdir(tmp_path) == (["reports"] if there else [])


def test_report_merge_into_an_unwritable_path(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--opswald-goldens", str(REFUND), "-p", "no:cacheprovider",
         f"--opswald-json={report}", "-q", f"--rootdir={GOLDENS.parent}"],
        cwd=GOLDENS.parent, capture_output=True, encoding="utf-8", timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = cli("report", "merge", str(report), "-o", f"{report}/x.json")
    assert merged.returncode == 4 and merged.stderr.startswith("error: ")
    assert "Traceback" not in merged.stderr
    merged = cli("report", "merge", str(report), "-o", "merged/", cwd=tmp_path)
    assert merged.returncode == 4
    assert merged.stderr == (
        "error: -o must be a file name: merged/ is a folder path (it ends in /), not a file "
        "name; name a file, such as merged/report.json\n"
    )
    assert not (tmp_path / "merged").exists()


# a folder no file system can make (its name is over 255 bytes) and, on Linux, one /proc
# refuses: the -o of html and report merge, as pytest's --opswald-json
_UNMAKEABLE = ["x" * 300 + "/out", *(["/proc/nope/out"] if Path("/proc/self").is_dir() else [])]


@pytest.mark.parametrize("given", _UNMAKEABLE, ids=["long", "proc"][: len(_UNMAKEABLE)])
@pytest.mark.parametrize("command", ["html", "merge"])
def test_an_output_folder_that_cannot_be_made_is_refused_before_anything_is_read(
    tmp_path: Path, command: str, given: str
) -> None:
    """`opswald html -o /proc/nope/x.html` read every golden, then failed with `error:
    /proc/nope: No such file or directory`, naming neither -o nor what was not written
    (and `-o /proc/x.html` named a temp file). As pytest's --opswald-json, the folder is
    made first and one that cannot be is refused naming -o, the path and why, before any
    input is read (here a malformed one, which would be an error line too)."""
    source = "bad.golden.yaml" if command == "html" else "bad.json"
    (tmp_path / source).write_text("garbage: [\n")
    argv = ["html", source, "-o", given] if command == "html" else ["report", "merge", source]
    if command != "html":
        argv += ["-o", given]
    proc = cli(*argv, cwd=tmp_path)
    folder = given.rsplit("/", 1)[0]
    reason = "File name too long" if given.startswith("x") else "No such file or directory"
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr == (
        f"error: -o: cannot write {given}: cannot make the folder {folder}: {reason}\n"
    )
    assert proc.stdout == ""
    assert os.listdir(tmp_path) == [source]


@pytest.mark.parametrize("command", ["html", "merge"])
def test_an_output_folder_is_made_as_needed(tmp_path: Path, command: str) -> None:
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--opswald-goldens", str(REFUND), "-p", "no:cacheprovider",
         f"--opswald-json={report}", "-q", f"--rootdir={GOLDENS.parent}"],
        cwd=GOLDENS.parent, capture_output=True, encoding="utf-8", timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    source = str(REFUND) if command == "html" else str(report)
    argv = ["html", source] if command == "html" else ["report", "merge", source]
    proc = cli(*argv, "-o", "deep/er/out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.listdir(tmp_path / "deep" / "er") == ["out"]


@pytest.mark.parametrize("command", ["html", "merge"])
def test_an_output_that_cannot_be_written_at_the_end_names_it(tmp_path: Path, command: str) -> None:
    """A write that fails after the inputs were read (a full disk; /dev/full here) said
    `error: /dev/full: No space left on device`: it names -o and what was not written."""
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"total": 0, "passed": 0, "failed": 0, "goldens": []}))
    argv = ["html", str(REFUND)] if command == "html" else ["report", "merge", str(report)]
    proc = cli(*argv, "-o", "/dev/full", cwd=tmp_path)
    what = "the page" if command == "html" else "the merged report"
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr == (
        f"error: -o: {what} was not written: cannot write /dev/full: No space left on device\n"
    )
    assert "wrote" not in proc.stdout and "merged" not in proc.stdout


def test_report_merge_of_a_path_that_names_nothing_says_it_as_the_other_commands(
    tmp_path: Path,
) -> None:
    """`opswald report merge nope.json` said `error: nope.json: [Errno 2] No such file or
    directory: 'nope.json'`; it is worded as the other commands word a missing path (a
    usage error, exit 4), and nothing is written."""
    proc = cli("report", "merge", "nope.json", "-o", "m.json", cwd=tmp_path)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr == "error: file or folder not found: nope.json\n"
    assert os.listdir(tmp_path) == []


def test_a_malformed_actual_leaves_its_golden_on_the_page(tmp_path: Path) -> None:
    goldens = tmp_path / "goldens"
    shutil.copytree(GOLDENS, goldens)
    actual_dir = tmp_path / "actual"
    actual_dir.mkdir()
    weather = opswald.load(WEATHER)
    (actual_dir / f"{weather.name}.actual.yaml").write_text("garbage: [\n")
    out = tmp_path / "r.html"
    proc = cli("html", str(goldens), "--actual-dir", str(actual_dir), "-o", str(out))
    assert proc.returncode == 1  # the unreadable actual is an error...
    assert f"{weather.name}.actual.yaml:" in proc.stderr and "invalid YAML" in proc.stderr
    assert "no golden of that name" not in proc.stdout  # ...not an orphan
    count = len(list(goldens.glob("*.golden.*")))
    assert f"wrote {out}: {count} goldens" in proc.stdout  # ...and its golden is still shown
    assert weather.name in out.read_text(encoding="utf-8")


def test_upgrade_words_a_typo_as_validate_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "typo.golden.yaml"
    bad.write_text(REFUND.read_text().replace("type: tool_call", "type: tool_cal", 1))
    code, validated, _ = run(capsys, "validate", str(bad))
    assert code == 1
    code, out, _ = run(capsys, "upgrade", "--check", str(bad))
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("error: "))
    assert "unknown step type 'tool_cal'" in line and f"{bad}:" in line
    assert line in validated  # the same words, the same line number
    assert "errors.pydantic.dev" not in out


def test_show_steps_past_the_end_and_stubs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    code, _, err = run(capsys, "show", str(REFUND), "--steps", "7-9")
    assert code == 4 and "the session has 6 steps" in err
    code, out, _ = run(capsys, "show", str(REFUND), "--steps", "5-99")
    assert code == 0 and "(2 of 6 steps shown; the session ends at step 6)" in out
    code, out, _ = run(capsys, "show", str(REFUND), "--steps", "1-99")
    assert code == 0 and "(6 of 6 steps shown; the session ends at step 6)" in out
    code, out, _ = run(capsys, "show", str(REFUND), "--steps", "5-6")
    assert code == 0 and "(2 of 6 steps shown)\n" in out
    stub = tmp_path / "stub.golden.yaml"
    stub.write_text("name: stub\ninput: {q: 1}\n")
    code, _, err = run(capsys, "show", str(stub), "--step", "1")
    assert code == 4 and "stub" in err
    code, out, _ = run(capsys, "show", str(stub), "--json")
    assert code == 0 and json.loads(out) == {
        "name": "stub",
        "stub": True,
        "total_steps": 0,
        "steps": [],
    }
    code, out, _ = run(capsys, "analyze", str(stub))
    assert code == 0 and "a stub, not recorded yet: nothing to analyze" in out


def test_show_json_carries_whole_values_and_totals(capsys: pytest.CaptureFixture[str]) -> None:
    golden = opswald.load(REFUND)
    code, out, _ = run(capsys, "show", str(REFUND), "--step", "4", "--json")
    assert code == 0
    change = json.loads(out)["changes"][0]
    assert "…" not in change
    refund = golden.step_list[3]
    assert json.dumps(refund.output, ensure_ascii=False) in change  # type: ignore[union-attr]
    code, out, _ = run(capsys, "show", str(REFUND), "--json")
    totals = json.loads(out)["totals"]
    assert totals["steps"] == len(golden.step_list)
    assert totals["llm_calls"] == sum(s.type == "llm_call" for s in golden.step_list)
    conversation = GOLDENS / "conversation.golden.yaml"
    session = opswald.load(conversation)
    code, out, _ = run(capsys, "show", str(conversation), "--json", "--type", "user")
    rows = json.loads(out)["steps"]
    contents = [s.content for s in session.step_list if s.type == "user_input"]  # type: ignore[union-attr]
    assert [row["name"] for row in rows] == [json.dumps(c, ensure_ascii=False) for c in contents]


def test_first_snapshot_reads_as_an_addition(capsys: pytest.CaptureFixture[str]) -> None:
    golden = opswald.load(REFUND)
    first = next(s.step for s in golden.step_list if s.type == "state")
    code, out, _ = run(capsys, "diff", str(REFUND), "--steps", str(first - 1), str(first))
    assert code == 0
    assert "+ memory = " in out and "~ memory: None" not in out


def test_the_api_refuses_what_it_would_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(GOLDENS.parent)  # the example agent imports from here
    golden = opswald.load(REFUND)
    kinds = [s.type for s in golden.step_list]
    tool_step = kinds.index("tool_call") + 1
    llm_step = kinds.index("llm_call") + 1

    def agent(task: object) -> None:  # never started: the checks come first
        raise AssertionError("the agent ran")

    with pytest.raises(ValueError, match="speed must be 'realtime' or a positive factor"):
        opswald.Replay(golden, adapter=agent, speed="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive factor"):
        opswald.Replay(golden, adapter=agent, speed=float("nan"))
    base = opswald.Replay(golden, adapter=agent)
    with pytest.raises(ValueError, match="steps are numbered from 1"):
        base.fork_from(0)
    with pytest.raises(ValueError, match=f"no step {len(kinds) + 1} to fork at"):
        base.fork_from(len(kinds) + 1, {"response": "hi"})
    with pytest.raises(ValueError, match=f"step {tool_step} of the golden is a tool_call"):
        base.fork_from(tool_step, {"response": "hi"})
    assert base.fork_from(llm_step, {"response": "hi"}).fork_at == llm_step


# --- small things of the command line ----------------------------------------------------


def test_import_to_an_existing_file_says_o_must_be_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "x.golden.yaml"
    target.write_text("name: x\n")
    trace = tmp_path / "t.json"
    trace.write_text("{}")
    code, _, err = run(capsys, "import", "otel", str(trace), "-o", str(target))
    assert code == 4
    assert err.strip() == f"error: -o {target}: a file; -o names the folder goldens are written to"


def test_show_step_with_type_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "show", str(REFUND), "--step", "2", "--type", "llm")
    assert code == 4
    assert "--step shows one step whole: --type and --steps do not combine with it" in err


@pytest.mark.parametrize("command", ["html", "analyze"])
def test_a_negative_slow_ms_is_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, str(REFUND), "--slow-ms", "-5"])
    assert info.value.code == 2
    assert "--slow-ms: '-5' is negative" in capsys.readouterr().err


def test_one_step_and_one_key_are_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    golden = tmp_path / "one.golden.yaml"
    big = {"rows": list(range(1000))}
    opswald.dump(
        opswald.Session.model_validate(
            {
                "name": "one",
                "input": 1,
                "steps": [{"step": 1, "type": "state", "memory": big}],
                "output": 1,
            }
        ),
        golden,
    )
    code, out, _ = run(capsys, "validate", str(golden))
    assert code == 0 and f"ok: {golden} (1 step)" in out
    code, out, _ = run(capsys, "show", str(golden))
    assert out.startswith("one: 1 step (0 LLM, 0 tool)"), out
    code, out, _ = run(capsys, "analyze", str(golden))
    assert out.startswith("one: 1 step,"), out


def test_show_names_the_step_that_shows_an_earlier_large_value_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    golden = tmp_path / "big.golden.yaml"
    big = {"rows": list(range(1000))}
    opswald.dump(
        opswald.Session.model_validate(
            {
                "name": "big",
                "input": 1,
                "steps": [
                    {"step": 1, "type": "state", "memory": big},
                    {
                        "step": 2,
                        "type": "llm_call",
                        "model": "m",
                        "input": {"messages": []},
                        "output": {"content": "x" * 3000},
                    },
                    {"step": 3, "type": "tool_call", "tool": "t", "input": {}, "output": 1},
                ],
                "output": 1,
            }
        ),
        golden,
    )
    code, out, _ = run(capsys, "show", str(golden), "--step", "3")
    assert code == 0
    assert "memory: '(1 key, 5 KB as JSON; `opswald show --step 1` shows it whole)" in out, out
    assert "`opswald show --step 2` shows it whole" in out, out
    assert "--json` shows it whole" not in out


@pytest.mark.parametrize("command", ["validate", "replay", "serve", "import", "html"])
def test_every_command_help_has_a_description(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    between = out.split("\n\n")[1]
    assert not between.startswith(("positional arguments", "options")), out


def test_diff_help_describes_steps_and_mode(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--steps A B the state at step A against the state at step B" in out, out
    assert "--mode {detailed,short}" in out and "detailed (default): each difference" in out


def test_diff_of_a_stub_reports_no_empty_metadata(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub = tmp_path / "stub.golden.yaml"
    stub.write_text("name: refund_flow\ninput: {request: Please refund order ORD-1001}\n")
    code, out, _ = run(capsys, "diff", str(stub), str(REFUND))
    assert code == 1
    assert "metadata" not in out, out


def test_show_cuts_a_long_name_not_the_totals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns the headline keeps its figures (the duration last) and cuts the name."""
    long = tmp_path / "long.golden.yaml"
    name = "refund_flow_with_a_rather_long_descriptive_name_for_a_narrow_terminal"
    long.write_text(REFUND.read_text().replace("name: refund_flow", f"name: {name}", 1))
    monkeypatch.setenv("COLUMNS", "300")
    _, wide, _ = run(capsys, "show", str(long))
    headline = wide.splitlines()[0]
    totals = headline.split(": ", 1)[1]
    assert headline == f"{name}: {totals}" and totals.endswith(" ms")
    monkeypatch.setenv("COLUMNS", "80")
    _, narrow, _ = run(capsys, "show", str(long))
    cut = narrow.splitlines()[0]
    assert cut.endswith(f"…: {totals}") and len(cut) <= 80, cut
    assert name.startswith(cut.split("…")[0])
    # narrower than the totals and a short name (QA probe26 #3): they go on a line of
    # their own, whole
    monkeypatch.setenv("COLUMNS", "60")
    _, narrower, _ = run(capsys, "show", str(REFUND))
    first, second = narrower.splitlines()[:2]
    assert first == "refund_flow:" and second == f"  {totals}" and len(second) <= 60


def test_extra_arguments_are_refused_with_the_subcommands_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # one session too few is a usage error too, with the same status (QA probe26 #10)
    code, _, err = run(capsys, "diff", str(REFUND))
    assert code == 2 and "diff needs two sessions (GOLDEN ACTUAL) or --steps A B" in err
    code, _, err = run(capsys, "diff", str(REFUND), str(REFUND), str(REFUND))
    assert code == 2
    assert err.startswith("usage: opswald diff "), err
    assert f"opswald diff: error: unrecognized arguments: {REFUND}" in err


def test_a_saved_actual_over_a_budget_fails_diff_and_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA (probe27 #5): an actual saved because its run went over the golden's budget can
    be the golden's own steps (a budget lowered by hand): `opswald diff` said "no
    differences" (exit 0) and `opswald html --actual-dir` listed it as passed."""
    text = REFUND.read_text()
    assert "    total_tokens: +10%\n" in text
    golden = tmp_path / "refund.golden.yaml"
    golden.write_text(text.replace("    total_tokens: +10%\n", "    total_tokens: 1000\n"))
    saved = tmp_path / "actual"
    saved.mkdir()
    actual = saved / "refund_flow.actual.yaml"
    actual.write_text(golden.read_text())
    code, out, _ = run(capsys, "diff", str(golden), str(actual))
    assert code == 1
    assert "no differences between" in out and "budget exceeded: total_tokens 1250 > 1000" in out
    code, out, _ = run(capsys, "diff", str(golden), str(actual), "--json")
    assert code == 1 and json.loads(out)["budgets"] == ["budget exceeded: total_tokens 1250 > 1000"]
    page = tmp_path / "v.html"
    code, out, _ = run(capsys, "html", str(golden), "--actual-dir", str(saved), "-o", str(page))
    assert code == 0
    assert "1 failing against their actual: 0 differing, 1 over a budget" in out
    from test_viewer_data import page_data

    (shown,) = page_data(page.read_text())["goldens"]
    assert shown["status"] == "failed"
    assert any(
        f["message"] == "budget exceeded: total_tokens 1250 > 1000" for f in shown["findings"]
    )
    # within the budget: as before
    actual.write_text(text)
    golden.write_text(text)
    code, out, _ = run(capsys, "diff", str(golden), str(actual))
    assert code == 0 and "budget" not in out


def test_html_reads_the_actuals_of_several_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA (probe27 #6): `--actual-dir` given twice (the saved actuals of two CI shards)
    kept the last folder alone; each is read, and a test with an actual in both is shown
    once, the first folder's, with a note."""
    goldens = tmp_path / "goldens"
    goldens.mkdir()
    text = REFUND.read_text()
    (goldens / "a.golden.yaml").write_text(text.replace("name: refund_flow", "name: a", 1))
    (goldens / "b.golden.yaml").write_text(text.replace("name: refund_flow", "name: b", 1))
    changed = text.replace("Refunded $120.00", "Refunded $99.00")
    shard1, shard2 = tmp_path / "shard1", tmp_path / "shard2"
    shard1.mkdir()
    shard2.mkdir()
    (shard1 / "a.actual.yaml").write_text(changed.replace("name: refund_flow", "name: a", 1))
    (shard2 / "b.actual.yaml").write_text(changed.replace("name: refund_flow", "name: b", 1))
    page = tmp_path / "v.html"
    args = ["html", str(goldens), "--actual-dir", str(shard1), "--actual-dir", str(shard2)]
    code, out, _ = run(capsys, *args, "-o", str(page))
    assert code == 0 and "2 goldens (2 differing from their actual)" in out, out
    from test_viewer_data import page_data

    shown = {g["name"]: g["status"] for g in page_data(page.read_text())["goldens"]}
    assert shown == {"a": "failed", "b": "failed"}
    (shard2 / "a.actual.yaml").write_text(text.replace("name: refund_flow", "name: a", 1))
    code, out, _ = run(capsys, *args, "-o", str(page))
    assert f"note: {shard2 / 'a.actual.yaml'}: a has an actual in {shard1 / 'a.actual.yaml'}" in out
    assert "2 differing" in out, "the first folder's actual of a is shown"
    # one folder given twice is read once (QA probe28 #7)
    code, out, _ = run(capsys, "html", str(goldens), "--actual-dir", str(shard1),
                       "--actual-dir", f"{shard1}/", "-o", str(page))  # fmt: skip
    assert code == 0 and "note:" not in out, out


@pytest.mark.parametrize(
    ("expect", "answer", "failing"),
    [
        ("  output: {match: ignore}\n", "Something else entirely.", False),
        ("  output: {match: contains, value: ORD-1001}\n", "Refunded ORD-1001 again.", False),
        ("  output: {match: contains, value: ORD-1001}\n", "Refunded nothing.", True),
    ],
    ids=["ignore", "contains-held", "contains-broken"],
)
def test_a_saved_actual_is_judged_by_the_goldens_output_expectation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], expect: str, answer: str, failing: bool
) -> None:
    """QA (probe28 #8): `opswald html --actual-dir` failed an actual whose output differs
    where the golden's `expect.output` allows it (`ignore`, a `contains` that holds),
    offering an update; the difference is shown, not failing."""
    from test_viewer_data import page_data

    text = REFUND.read_text()
    start = text.index("\nexpect:\n")
    golden = tmp_path / "refund.golden.yaml"
    golden.write_text(text[:start] + "\nexpect:\n" + expect)
    saved = tmp_path / "actual"
    saved.mkdir()
    old = "Refunded $120.00 for order ORD-1001 (RF-1001)."
    assert old in text
    head, _, tail = golden.read_text().rpartition("\noutput:\n")  # the session's output alone
    (saved / "refund_flow.actual.yaml").write_text(
        head + "\noutput:\n" + tail.replace(old, answer, 1)
    )
    page = tmp_path / "v.html"
    code, out, _ = run(capsys, "html", str(golden), "--actual-dir", str(saved), "-o", str(page))
    assert code == 0, out
    (shown,) = page_data(page.read_text())["goldens"]
    assert shown["status"] == ("failed" if failing else "passed"), shown["findings"]
    (output,) = [f for f in shown["findings"] if f["kind"] == "output"]
    assert output["failing"] is failing
