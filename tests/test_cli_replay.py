"""`opswald replay GOLDEN`: one line per step, the verdict, and interactive stepping.

The agent is a module written into tmp_path and imported by the CLI from its working
directory, as a user's agent would be."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import opswald
from opswald.engine.run import RunSettings, execute
from opswald.session import Session

AGENT = textwrap.dedent(
    '''
    """A refund agent: a scripted model, two tools and memory snapshots."""
    import os
    import time

    import opswald


    @opswald.llm(provider="sim")
    def chat(*, model, messages):
        usage = {"input_tokens": 100, "output_tokens": 20}
        if len(messages) == 1:
            call = {"id": "c1", "name": "lookup_order", "arguments": {"order_id": "ORD-1"}}
            return {"content": None, "tool_calls": [call], "finish_reason": "tool_calls",
                    "usage": usage, "cost": 0.0012}
        return {"content": "Refunded " + messages[-1]["content"] + "\\nThanks for waiting.",
                "finish_reason": "stop", "usage": usage, "cost": 0.0015}


    @opswald.tool
    def lookup_order(order_id):
        return {"total": 120.0}


    @opswald.tool(side_effects=bool(os.environ.get("REFUND_SIDE_EFFECTS")))
    def issue_refund(order_id, amount):
        return {"refund_id": "RF-1", "amount": amount}


    def run(input):
        messages = [{"role": "user", "content": input["request"]}]
        asked = chat(model="sim-small", messages=messages)               # step 1
        order = lookup_order(**asked["tool_calls"][0]["arguments"])      # step 2
        if os.environ.get("AGENT_HANG"):  # the agent's own code, hung
            time.sleep(300)
        memory = {"order_id": asked["tool_calls"][0]["arguments"]["order_id"],
                  "total": order["total"]}
        opswald.state(memory=dict(memory))                               # step 3
        amount = order["total"] / (2 if os.environ.get("AGENT_HALF") else 1)
        refund = issue_refund(order_id=memory["order_id"], amount=amount)  # step 4
        memory["refunded"] = refund["amount"]
        opswald.state(memory=dict(memory), variables={"turn": 1})        # step 5
        messages.append({"role": "tool", "content": str(refund["amount"])})
        answer = chat(model="sim-small", messages=messages)              # step 6
        return {"answer": answer["content"]}
    '''
)
TOTAL = 6
PROMPT = re.compile(r"\[step (\d+) of 6\] \(n\)ext \(c\)ontinue \(s\)tate \(d\)iff \(q\)uit > ")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tmp dir with `agentmod.py` and `refund.golden.yaml` recorded from it."""
    root = tmp_path_factory.mktemp("replay_cli")
    (root / "agentmod.py").write_text(AGENT, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("agentmod_for_recording", root / "agentmod.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stub = Session(name="refund", input={"request": "Refund ORD-1"})
    run = execute(stub, module.run, settings=RunSettings(policy="live", block_side_effects=False))
    assert run.actual.error is None and len(run.actual.step_list) == TOTAL
    opswald.dump(run.actual, root / "refund.golden.yaml")
    yield root


def replay(
    cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opswald.cli", "replay", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        encoding="utf-8",
        # the widest terminal replay writes for (pytest-xdist workers set COLUMNS=80)
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100", **(env or {})},
        timeout=60,
        check=False,
    )


def logical_lines(out: str) -> list[str]:
    """The lines of `out` with the lines a long message was broken into (to fit the
    terminal, later ones indented two more) joined again."""
    lines: list[str] = []
    base = 0
    for line in out.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        starts = body.startswith(("hint:", "fix:", "- ", "+ ", "step "))
        if lines and line.strip() and indent == base + 2 and not starts:
            lines[-1] += " " + body
            continue
        lines.append(line)
        base = indent
    return lines


def step_lines(out: str) -> list[str]:
    """The step lines printed while replaying (not the verdict's headline)."""
    replayed = out.split("\nFAILED\n", maxsplit=1)[0]
    return [line for line in replayed.splitlines() if re.match(r"step \d+ of 6 · ", line)]


def test_prints_every_step_in_order_and_passes(workdir: Path) -> None:
    proc = replay(workdir, "refund.golden.yaml", "--adapter", "agentmod:run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = step_lines(proc.stdout)
    assert [line.split(" · ")[0] for line in lines] == [f"step {k} of 6" for k in range(1, 7)]
    assert all(len(line) <= 100 for line in lines)
    llm, lookup, state, refund, state2, answer = lines
    assert llm.startswith("step 1 of 6 · llm_call sim-small  120 tokens  $0.0012  → lookup_order(")
    assert lookup.startswith('step 2 of 6 · tool_call lookup_order  {"order_id": "ORD-1"} → {')
    assert re.search(r'→ \{"total": 120.0\}  \([\d.,]+ ms\)$', lookup)  # 0.007 ms, 12 ms
    assert "…" in refund, "long values are cut to fit the line"
    assert state == "step 3 of 6 · state  memory (order_id, total)"
    assert refund.startswith('step 4 of 6 · tool_call issue_refund  {"order_id": "ORD-1"')
    assert state2 == "step 5 of 6 · state  memory (order_id, total, refunded), variables (turn)"
    assert '→ "Refunded 120.0" …' in answer, "the first line of the answer"
    assert "PROMPT" not in proc.stdout and "(n)ext" not in proc.stdout
    assert proc.stdout.rstrip().endswith("passed")


def test_a_changed_agent_fails_with_the_divergence(workdir: Path) -> None:
    proc = replay(
        workdir, "refund.golden.yaml", "--adapter", "agentmod:run", env={"AGENT_HALF": "1"}
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [line[:11] for line in step_lines(proc.stdout)] == [
        f"step {k} of 6" for k in (1, 2, 3)
    ], "the diverging step 4 is not replayed"
    assert "FAILED" in proc.stdout
    assert "step 4 of 6 · tool_call issue_refund" in proc.stdout
    assert "step 4 › input.amount: 120.0 → 60.0" in proc.stdout


def test_interactive_diff_after_the_first_step_names_no_step_0(workdir: Path) -> None:
    """`d` after step 1 said "state changes from step 0 to step 1": there is no step 0."""
    proc = replay(
        workdir, "refund.golden.yaml", "--adapter", "agentmod:run", "-i", stdin="n\nd\nc\n"
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "from the start to step 1" in out
    assert "step 0" not in out


def test_interactive_with_piped_stdin(workdir: Path) -> None:
    keys = "n\nn\nn\nn\n\ns\nd\nc\n"  # five steps (Enter is next), then state, diff, continue
    proc = replay(workdir, "refund.golden.yaml", "--adapter", "agentmod:run", "-i", stdin=keys)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert [int(n) for n in PROMPT.findall(out)] == [1, 2, 3, 4, 5, 6, 6, 6]
    assert [line[:11] for line in step_lines(out)] == [f"step {k} of 6" for k in range(1, 7)]
    state = out[out.index("state at step 5:") :]
    assert state.splitlines()[1] == (
        '  memory: {"order_id": "ORD-1", "total": 120.0, "refunded": 120.0}'
    )
    assert '  variables: {"turn": 1}' in state
    assert "state changes from step 4 to step 5:" in out
    assert "  + memory.refunded = 120.0" in out
    assert '  + variables = {"turn": 1}' in out  # a first snapshot adds
    assert out.rstrip().endswith("passed")
    # prompts come before the steps they announce
    assert out.index("[step 6 of 6]") < out.index("step 6 of 6 · llm_call")


def test_interactive_quit_stops_early(workdir: Path) -> None:
    proc = replay(
        workdir, "refund.golden.yaml", "--adapter", "agentmod:run", "--interactive", stdin="n\nq\n"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [line[:11] for line in step_lines(proc.stdout)] == ["step 1 of 6"]
    assert "quit: the replay was stopped before the end" in proc.stdout
    assert "passed" not in proc.stdout and "FAILED" not in proc.stdout


def test_interactive_in_a_terminal(workdir: Path) -> None:
    import pexpect

    child = pexpect.spawn(
        sys.executable,
        ["-m", "opswald.cli", "replay", "refund.golden.yaml", "--adapter", "agentmod:run", "-i"],
        cwd=str(workdir),
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100"},
        encoding="utf-8",
        timeout=30,
        dimensions=(24, 120),
    )
    try:
        child.expect(PROMPT)
        assert child.match.group(1) == "1"
        child.sendline("n")
        child.expect("step 1 of 6 · llm_call sim-small")
        child.expect(PROMPT)
        assert child.match.group(1) == "2"
        child.sendline("s")
        child.expect("state at step 1:")
        child.expect("last LLM output: ")
        child.expect(PROMPT)
        child.sendline("c")
        child.expect("step 6 of 6 · llm_call")
        child.expect("passed")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_fork_with_a_modified_tool_result(workdir: Path) -> None:
    proc = replay(
        workdir,
        "refund.golden.yaml",
        "--adapter",
        "agentmod:run",
        "--fork-at",
        "2",
        "--modify",
        "tool_result={total: 50.0}",
        "--speed",
        "realtime",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "6 steps, mode fork" in proc.stdout
    lines = step_lines(proc.stdout)
    assert len(lines) == 6 and '→ {"total": 50.0}  (' in lines[1]
    assert "forked at step 2" in proc.stdout
    assert "output.answer: 'Refunded 120.0\\nThanks for waiting.' → 'Refunded 50.0" in proc.stdout
    (fix,) = [line for line in logical_lines(proc.stdout) if line.startswith("fix:")]
    assert fix.startswith("fix: a fork is judged, never written"), fix  # --fork-at: never written


def test_a_step_modification_in_the_golden_needs_a_fork_step_and_applies_there(
    workdir: Path,
) -> None:
    """The golden's own `modifications:` is refused without --fork-at, as --modify is (it
    was dropped in silence), and applied at the fork step with it."""
    text = (workdir / "refund.golden.yaml").read_text(encoding="utf-8")
    golden = workdir / "own_mod.golden.yaml"
    golden.write_text(text + "modifications:\n  tool_result: {total: 50.0}\n", encoding="utf-8")
    proc = replay(workdir, golden.name, "--adapter", "agentmod:run")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stderr.startswith(
        "error: tool_result changes one step: give the step with --fork-at N "
        "(tool_result from the golden's own modifications:)"
    ), proc.stderr
    proc = replay(workdir, golden.name, "--adapter", "agentmod:run", "--fork-at", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "forked at step 2" in proc.stdout
    assert "→ 'Refunded 50.0" in proc.stdout


def test_a_modified_run_says_pytest_can_write_it_with_the_same_modification(
    workdir: Path,
) -> None:
    """Without --fork-at, pytest --opswald-update --opswald-modify writes the modified run."""
    args = ("refund.golden.yaml", "--adapter", "agentmod:run", "--modify", "model=sim-large")
    proc = replay(workdir, *args, env={"AGENT_HALF": "1"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (fix,) = [line for line in logical_lines(proc.stdout) if line.startswith("fix:")]
    assert "pytest --opswald-goldens --opswald-update and the same --opswald-modify" in fix, fix


@pytest.mark.parametrize(
    "given",
    [{"response": "NOPE"}, {"response": "NOPE", "agent_version": "v2"}],
    ids=["step-modification", "and-another"],
)
def test_a_forks_fix_line_names_a_pytest_command_that_runs(
    workdir: Path, pytester: pytest.Pytester, given: dict[str, str]
) -> None:
    """The fix line of a fork with a step modification names an update pytest accepts:
    pytest refuses a step modification without a fork step, and a fork with an update,
    so "the same --opswald-modify" is said only of the other modifications."""
    for name in ("agentmod.py", "refund.golden.yaml"):
        (pytester.path / name).write_bytes((workdir / name).read_bytes())
    pytester.makeini("[pytest]\nopswald_adapter = agentmod:run\n")
    modify = [arg for key, value in given.items() for arg in ("--modify", f"{key}={value}")]
    proc = replay(pytester.path, "refund.golden.yaml", "--fork-at", "6", *modify)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (fix,) = [line for line in logical_lines(proc.stdout) if line.startswith("fix:")]
    assert fix.startswith("fix: a fork is judged, never written"), fix
    command = fix.split(" and run ", 1)[1]
    assert command.startswith("pytest --opswald-goldens --opswald-update"), fix
    named = re.findall(r"--opswald-modify (\w+)=…", command)
    if "the same --opswald-modify" in command and not named:
        named = list(given)
    assert "response" not in named, fix
    # follow the advice, the agent unchanged: the update runs and passes
    args = [f"--opswald-modify={key}={given[key]}" for key in named]
    result = pytester.runpytest("--opswald-goldens", "--opswald-update", *args)
    assert result.ret == 0, result.stdout.str()
    assert "changes one step" not in result.stdout.str()


def test_a_blocked_side_effect_names_the_replay_option_that_allows_it(workdir: Path) -> None:
    """A fork reaches issue_refund (side_effects=True): the hint names an option of
    `opswald replay` itself, its --help lists it, and following the hint runs the tool."""
    env = {"REFUND_SIDE_EFFECTS": "1"}
    args = ("refund.golden.yaml", "--adapter", "agentmod:run", "--fork-at", "2")
    proc = replay(workdir, *args, "--modify", "tool_result={total: 120.0}", env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "issue_refund has side effects" in proc.stdout
    hint = next(line for line in logical_lines(proc.stdout) if "to let it run" in line)
    assert "--opswald-allow" not in hint, hint
    options = re.findall(r"(?<![\w-])(--[a-z][\w-]*)", hint.split("to let it run")[0])
    assert len(options) == 1, hint
    helped = replay(workdir, "--help")
    assert options[0] in helped.stdout
    proc = replay(workdir, *args, "--modify", "tool_result={total: 120.0}", options[0], env=env)
    assert "has side effects" not in proc.stdout, proc.stdout
    refund = [line for line in step_lines(proc.stdout) if line.startswith("step 4 of 6")]
    assert len(refund) == 1 and "issue_refund" in refund[0] and "RF-1" in refund[0], refund
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_budget_hint_names_the_update_in_the_words_of_replay(workdir: Path) -> None:
    """`opswald replay` has no --opswald-update: the hint says how a golden is updated
    from where the run was started, as its fix line does."""
    text = (workdir / "refund.golden.yaml").read_text(encoding="utf-8")
    assert "\nexpect:" not in text
    golden = workdir / "budget.golden.yaml"
    golden.write_text(text + "expect:\n  budgets:\n    cost: 0.001\n", encoding="utf-8")
    proc = replay(workdir, golden.name, "--adapter", "agentmod:run")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "budget exceeded: cost" in proc.stdout
    hint = next(line for line in logical_lines(proc.stdout) if "never blesses" in line)
    fix = next(line for line in logical_lines(proc.stdout) if line.startswith("fix:"))
    update = "pytest --opswald-goldens --opswald-update"
    assert update in fix, fix
    assert "does not bless this" in fix, fix  # as pytest's fix line says: an update won't help
    assert update in hint, hint
    assert re.sub(r"pytest [\w -]*--opswald-update", "", hint).count("--opswald-update") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--adapter", "no_such_module:run"], "cannot import 'no_such_module'"),
        (["--adapter", "agentmod:nope"], "'agentmod' has no attribute 'nope'"),
        (
            ["--adapter", "agentmod"],
            "--adapter: 'agentmod' names a module, not a callable: it wants "
            "'package.module:callable'; agentmod defines",
        ),
        (  # a callable that cannot take the input: refused before it runs
            ["--adapter", "agentmod:os.getcwd"],
            "--adapter agentmod:os.getcwd cannot take the golden's input: opswald calls it as "
            "adapter(input), and posix:getcwd is (): too many positional arguments",
        ),
        ([], "the golden names no agent"),
        (["--adapter", "agentmod:run", "--speed", "fast"], "--speed: 'fast'"),
        (["--adapter", "agentmod:run", "--modify", "novalue"], "'novalue' is not KEY=VALUE"),
        (["--adapter", "agentmod:run", "--modify", "response=hi"], "give the step with --fork-at"),
        # a step modification never dropped in silence: wrong step type, or past the end
        (
            ["--adapter", "agentmod:run", "--fork-at", "2", "--modify", "response=hi"],
            "response changes an llm_call step, and step 2 of the golden is a tool_call",
        ),
        (
            ["--adapter", "agentmod:run", "--fork-at", "1", "--modify", "tool_result=1"],
            "tool_result changes a tool_call step, and step 1 of the golden is an llm_call",
        ),
        (
            ["--adapter", "agentmod:run", "--fork-at", "3", "--modify", "response=hi"],
            "step 3 of the golden is a state",
        ),
        (
            ["--adapter", "agentmod:run", "--fork-at", "99", "--modify", "response=hi"],
            "the golden has 6 step(s): there is no step 99 to fork at",
        ),
        # a fork step with a mode that would run past it unguarded, or drop it
        (
            ["--adapter", "agentmod:run", "--fork-at", "2", "--mode", "replay"],
            "error: --fork-at needs --mode fork (or no --mode), not --mode replay",
        ),
        (
            ["--adapter", "agentmod:run", "--fork-at", "2", "--mode", "live"],
            "error: --fork-at needs --mode fork (or no --mode), not --mode live",
        ),
    ],
)
def test_usage_errors_exit_4(workdir: Path, args: list[str], message: str) -> None:
    proc = replay(workdir, "refund.golden.yaml", *args)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr


def test_a_missing_golden_exits_4(workdir: Path) -> None:
    proc = replay(workdir, "missing.golden.yaml", "--adapter", "agentmod:run")
    assert proc.returncode == 4
    assert "missing.golden.yaml" in proc.stderr and "Traceback" not in proc.stderr


def timed(workdir: Path, tmp_path: Path, seconds: float) -> Path:
    """A copy of the agent and its golden in `tmp_path`, the golden with `timeout: seconds`."""
    (tmp_path / "agentmod.py").write_text(AGENT, encoding="utf-8")
    golden = opswald.load(workdir / "refund.golden.yaml").model_copy(update={"timeout": seconds})
    opswald.dump(golden, tmp_path / "refund.golden.yaml")
    return tmp_path


def test_the_goldens_own_timeout_stops_a_hung_agent(workdir: Path, tmp_path: Path) -> None:
    """`opswald replay` ignored the golden's `timeout:` (pytest applies it): a hung agent
    hung the command. It is now stopped, as under pytest, and the golden fails."""
    project = timed(workdir, tmp_path, 1)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "opswald.cli",
            "replay",
            "refund.golden.yaml",
            "--adapter",
            "agentmod:run",
        ],
        cwd=project,
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100", "AGENT_HANG": "1"},
        timeout=100,  # a guard only: without the golden's timeout the agent sleeps 300 s
        check=False,
    )
    out = "\n".join(logical_lines(proc.stdout))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [line[:11] for line in step_lines(out)] == ["step 1 of 6", "step 2 of 6"]
    assert "FAILED" in out
    assert (
        "refund.golden.yaml: the agent did not finish within 1.0 s; it hung after step 2 "
        "(tool_call lookup_order had returned; in the agent's own code)"
    ) in out
    assert "fix: the agent was stopped (its process killed) after step 2" in out
    assert "raise the golden's `timeout:` if it needs longer" in out
    assert "Traceback" not in proc.stderr


def test_a_golden_with_a_timeout_replays_in_full_and_passes(workdir: Path, tmp_path: Path) -> None:
    """Run in a child process under the timeout: every step is printed, the verdict and
    the exit status come back."""
    project = timed(workdir, tmp_path, 60)
    proc = replay(project, "refund.golden.yaml", "--adapter", "agentmod:run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [line[:11] for line in step_lines(proc.stdout)] == [
        f"step {k} of 6" for k in range(1, 7)
    ]
    assert proc.stdout.rstrip().endswith("passed")
    failed = replay(
        project, "refund.golden.yaml", "--adapter", "agentmod:run", env={"AGENT_HALF": "1"}
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "step 4 › input.amount: 120.0 → 60.0" in failed.stdout


def test_interactive_says_the_goldens_timeout_is_not_applied(workdir: Path, tmp_path: Path) -> None:
    """Pauses wait for the user: they would count against the timeout."""
    project = timed(workdir, tmp_path, 5)
    proc = replay(project, "refund.golden.yaml", "--adapter", "agentmod:run", "-i", stdin="c\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.startswith(
        "note: the golden's `timeout: 5` is not applied under --interactive"
    ), proc.stderr
    assert proc.stdout.rstrip().endswith("passed")


DATED_AGENT = textwrap.dedent(
    '''
    """An agent that puts today's date (TODAY) and a CONTACT in its prompt and sends a
    SEED."""
    import os

    import opswald


    @opswald.llm(provider="sim")
    def chat(*, model, messages, seed):
        return {"content": "ok", "finish_reason": "stop"}


    def run(input):
        today = os.environ.get("TODAY", "2024-01-01")
        content = f"Today is {today}. {input['q']}"
        if os.environ.get("CONTACT"):
            content += f" Contact {os.environ['CONTACT']}."
        seed = int(os.environ.get("SEED", "1"))
        chat(model="sim-small", messages=[{"role": "user", "content": content}], seed=seed)
        return {"answer": "ok"}
    '''
)
DATE_RULE = r"\d{4}-\d\d-\d\d"


def dated_project(
    root: Path,
    *,
    module: str = "datedagent",
    expect: str = "",
    contact: str = "",
    pii: bool = False,
    agent_dir: str = "",
) -> Path:
    """`root/AGENT_DIR/MODULE.py` (DATED_AGENT) and `root/goldens/dated.golden.yaml`
    recorded from it on 2024-01-01 with seed 1 and `contact` (`pii`: as under
    `opswald_redact = pii`), with `expect` (YAML lines) added to the golden."""
    from opswald.redact import make_redactor

    (root / agent_dir).mkdir(parents=True, exist_ok=True)
    source = root / agent_dir / f"{module}.py"
    source.write_text(DATED_AGENT, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"{module}_recording", source)
    assert spec is not None and spec.loader is not None
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    stub = Session(name="dated", input={"q": "hello"})
    saved = {name: os.environ.pop(name, None) for name in ("TODAY", "SEED", "CONTACT")}
    if contact:
        os.environ["CONTACT"] = contact
    try:
        live = RunSettings(policy="live", redactor=make_redactor(pii=pii))
        run = execute(stub, agent.run, settings=live)
    finally:
        os.environ.pop("CONTACT", None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    golden = root / "goldens" / "dated.golden.yaml"
    golden.parent.mkdir(exist_ok=True)
    opswald.dump(run.actual, golden)
    if expect:
        with golden.open("a", encoding="utf-8") as f:
            f.write(textwrap.dedent(expect))
    return golden


def test_the_goldens_own_request_rules_apply(tmp_path: Path) -> None:
    dated_project(
        tmp_path,
        expect=f"""\
        expect:
          requests:
            normalize:
              - {{pattern: '{DATE_RULE}', replace: '<date>'}}
        """,
    )
    args = ("goldens/dated.golden.yaml", "--adapter", "datedagent:run")
    proc = replay(tmp_path, *args, env={"TODAY": "2025-06-30"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("passed")
    proc = replay(tmp_path, *args, env={"TODAY": "2025-06-30 and more"})
    assert proc.returncode == 1, "the rule hides the date only"
    assert "'Today is <date>. hello' → 'Today is <date> and more. hello'" in proc.stdout


# the suite-wide settings of the project's pytest config, in each kind of config file
SETTINGS = {
    "adapter": "datedagent:run",
    "normalize": rf"{DATE_RULE} => <date>",
    "ignore": "params.seed",
}
CONFIGS = {
    "pyproject.toml": textwrap.dedent(
        f"""\
        [tool.pytest.ini_options]
        opswald_adapter = "{SETTINGS["adapter"]}"
        opswald_request_normalize = ['{SETTINGS["normalize"]}']
        opswald_request_ignore = ["{SETTINGS["ignore"]}"]
        """
    ),
    **{
        name: textwrap.dedent(
            f"""\
            [{section}]
            opswald_adapter = {SETTINGS["adapter"]}
            opswald_request_normalize = {SETTINGS["normalize"]}
            opswald_request_ignore =
                {SETTINGS["ignore"]}
            """
        )
        for name, section in (
            ("pytest.ini", "pytest"),
            ("tox.ini", "pytest"),
            ("setup.cfg", "tool:pytest"),
        )
    },
}
NOISE = {"TODAY": "2025-06-30", "SEED": "7"}  # what the config's request rules hide


@pytest.mark.parametrize("config", list(CONFIGS))
def test_replay_applies_the_pytest_config_as_pytest_does(tmp_path: Path, config: str) -> None:
    """The adapter and the suite-wide request rules of the config pytest would use; the
    adapter's module is found beside the config file from a subfolder, as under pytest."""
    dated_project(tmp_path)
    (tmp_path / config).write_text(CONFIGS[config], encoding="utf-8")
    (tmp_path / "sub").mkdir()
    if config == "pyproject.toml":  # pytest itself passes it
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--opswald-goldens", "-q", "-p", "no:cacheprovider"],
            cwd=tmp_path,
            capture_output=True,
            encoding="utf-8",
            env={**os.environ, "COLUMNS": "100", **NOISE},
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
    for cwd, golden in (
        (tmp_path, "goldens/dated.golden.yaml"),
        (tmp_path / "sub", "../goldens/dated.golden.yaml"),
    ):
        proc = replay(cwd, golden, env=NOISE)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.rstrip().endswith("passed")
    sub = ("../goldens/dated.golden.yaml", "--adapter", "datedagent:run")
    proc = replay(tmp_path / "sub", *sub, env=NOISE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = replay(tmp_path, "goldens/dated.golden.yaml", env={"TODAY": "June 30th"})
    assert proc.returncode == 1, "the rules hide what they name, nothing else"
    assert "'Today is <date>. hello' → 'Today is June 30th. hello'" in proc.stdout
    assert "fix: if the new behaviour is intended" in proc.stdout


def test_explicit_options_win_over_the_config(tmp_path: Path) -> None:
    dated_project(tmp_path)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nopswald_adapter = nosuch.agent:run\nopswald_mode = live\n", encoding="utf-8"
    )
    golden = "goldens/dated.golden.yaml"
    proc = replay(tmp_path, golden)
    assert proc.returncode == 4
    assert proc.stderr.startswith(f"error: {tmp_path / 'pytest.ini'}: opswald_adapter: ")
    assert "cannot import 'nosuch.agent'" in proc.stderr and "Traceback" not in proc.stderr
    proc = replay(tmp_path, golden, "--adapter", "datedagent:run", env=NOISE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 step, mode live" in proc.stdout.splitlines()[0], "opswald_mode = live applies"
    proc = replay(tmp_path, golden, "--adapter", "datedagent:run", "--mode", "replay", env=NOISE)
    assert proc.returncode == 1, "--mode replay wins: the request changed"
    assert "mode live" not in proc.stdout


def test_a_bad_setting_in_the_config_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    dated_project(tmp_path)
    ini = tmp_path / "tox.ini"
    ini.write_text("[pytest]\nopswald_request_normalize = no arrow\n", encoding="utf-8")
    proc = replay(tmp_path, "goldens/dated.golden.yaml", "--adapter", "datedagent:run")
    assert proc.returncode == 4
    assert proc.stderr.strip() == (
        f"error: {ini}: opswald_request_normalize: 'no arrow' is not 'REGEX => PLACEHOLDER'"
    )


def test_pythonpath_and_redaction_of_the_config_apply(tmp_path: Path) -> None:
    """pytest's `pythonpath` (a src layout) and `opswald_redact = pii`: the golden holds
    `<redacted:email>` where the agent sends an address, and requests are scrubbed alike
    before matching."""
    dated_project(tmp_path, contact="bob@example.com", pii=True, agent_dir="src")
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\npythonpath = src\nopswald_adapter = datedagent:run\n")
    (tmp_path / "sub").mkdir()
    contact = {"CONTACT": "bob@example.com"}
    proc = replay(tmp_path / "sub", "../goldens/dated.golden.yaml", env=contact)
    assert proc.returncode == 1, "not scrubbed, the request differs from the golden's"
    assert "Contact <redacted:email>." in proc.stdout
    ini.write_text(ini.read_text() + "opswald_redact = pii\n")
    proc = replay(tmp_path / "sub", "../goldens/dated.golden.yaml", env=contact)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_config_file_names_the_config(tmp_path: Path) -> None:
    dated_project(tmp_path)
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "pytest.ini").write_text(CONFIGS["pytest.ini"], encoding="utf-8")
    proc = replay(tmp_path, "goldens/dated.golden.yaml", env=NOISE)
    assert proc.returncode == 4, "no config above the golden: no adapter"
    assert "no --adapter was given and no pytest config file sets no opswald_adapter" in (
        proc.stderr
    )
    proc = replay(tmp_path, "goldens/dated.golden.yaml", "-c", "configs/pytest.ini", env=NOISE)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_live_runs_fix_line_offers_no_update(workdir: Path, tmp_path: Path) -> None:
    """`--mode live` is judged on the golden's expectations against live answers: the fix
    line says a live run writes nothing, as pytest's does, and offers no update."""
    (tmp_path / "agentmod.py").write_text((workdir / "agentmod.py").read_text())
    golden = (workdir / "refund.golden.yaml").read_text()
    (tmp_path / "refund.golden.yaml").write_text(
        golden + "expect:\n  output: {match: contains, value: never-said}\n"
    )
    proc = replay(tmp_path, "refund.golden.yaml", "--adapter", "agentmod:run", "--mode", "live")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (fix,) = [line for line in logical_lines(proc.stdout) if line.startswith("fix:")]
    assert fix.startswith("fix: a live run writes nothing"), fix
    assert "--opswald-update" not in fix


def test_a_step_line_shows_a_duration_under_a_millisecond() -> None:
    """Durations as everywhere else: a step of 4 µs is `0.004 ms`, not `0.00 ms`."""
    from opswald.cli_replay import StepPrinter
    from opswald.session import ToolCallStep

    printer = StepPrinter(total=2)
    fast = ToolCallStep(step=1, tool="lookup", input={"id": 1}, output=2, duration_ms=0.004)
    slow = ToolCallStep(step=2, tool="lookup", input={"id": 1}, output=2, duration_ms=2500.0)
    assert printer.line(fast).endswith("  (0.004 ms)"), printer.line(fast)
    assert printer.line(slow).endswith("  (2,500 ms)"), printer.line(slow)


ADAPTER = "examples.travel_agent:run"


def test_the_failure_block_fits_the_terminal_width(tmp_path: Path) -> None:
    """A changed output's hint and diff lines (up to 239 characters) are broken or cut to
    the width (COLUMNS, as `shutil.get_terminal_size` reads it)."""
    repo = Path(__file__).parent.parent
    golden = tmp_path / "refund.golden.yaml"
    golden.write_text(
        (repo / "goldens" / "refund.golden.yaml")
        .read_text()
        .replace("answer: Refunded $120.00", "answer: Refunded $99.00")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "replay", str(golden), "--adapter", ADAPTER],
        cwd=repo,
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, "COLUMNS": "80"},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "output.answer" in proc.stdout and "hint:" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80, proc.stdout
    hint = next(line for line in logical_lines(proc.stdout) if "hint:" in line)
    assert "use `match: similar`, or `contains` or `regex`" in hint, hint


def test_replay_writes_costs_as_show_does(tmp_path: Path) -> None:
    """One money format (`pricing.money`): `$0.00026`, not `$0.000255` beside show's."""
    repo = Path(__file__).parent.parent
    golden = repo / "goldens" / "refund.golden.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "replay", str(golden), "--adapter", ADAPTER],
        cwd=repo,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "show", str(golden)],
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    ).stdout
    third = next(line for line in proc.stdout.splitlines() if line.startswith("step 3 of 6"))
    row = next(line for line in shown.splitlines() if line.split()[:2] == ["3", "llm_call"])
    cost = row.split()[4]
    assert cost.startswith("$") and f"  {cost}  " in third, (third, row)


@pytest.mark.parametrize("width", [60, 80])
def test_step_lines_with_long_or_wide_names_fit_the_terminal(width: int) -> None:
    """A tool or model name longer than the line is cut with … (it was printed whole, the
    line 100 columns wide at COLUMNS=60); wide characters count as two columns."""
    from opswald.cli_replay import StepPrinter
    from opswald.session import LLMCallStep, ToolCallStep
    from opswald.terminal import display_width

    printer = StepPrinter(total=3, width=width)
    steps = [
        ToolCallStep(
            step=1,
            tool="search_flights_with_a_really_long_descriptive_tool_name",
            input={"q": "rome"},
            output={"hits": 3},
            duration_ms=0.037,
        ),
        LLMCallStep(
            step=2,
            model="a-very-long-model-name-for-testing-widths-2025-01-01",
            input={},
            output={"content": "ok"},
            duration_ms=0.1,
        ),
        ToolCallStep(step=3, tool="検索ツール" * 10, input={"q": 1}, output=1, duration_ms=1.0),
    ]
    for step in steps:
        line = printer.line(step)
        assert display_width(line) <= width, (display_width(line), line)
        assert line.startswith(f"step {step.step} of 3 · "), line
        assert "…" in line, line
        assert line.endswith("ms)"), line


def test_a_modification_nothing_reads_is_named(workdir: Path) -> None:
    """`--modify modle=...` (a typo) on an adapter that takes no modifications: the replay
    runs as without it, and a note says the key changed nothing and which key is meant."""
    r = replay(workdir, "refund.golden.yaml", "--adapter", "agentmod:run", "--modify", "modle=x")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "passed" in r.stdout
    note = " ".join(r.stderr.split())
    assert (
        "note: modification 'modle' (did you mean 'model'?) changed nothing in the goldens of "
        "agentmod:run: the adapter takes no `modifications` parameter" in note
    ), r.stderr
    # a key opswald applies itself is no such key
    r = replay(workdir, "refund.golden.yaml", "--adapter", "agentmod:run", "--modify", "seed=5")
    assert "changed nothing" not in r.stderr, r.stderr
