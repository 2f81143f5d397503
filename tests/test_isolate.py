"""run_isolated: a session in a forked child, stopped for real when its time is up."""

from __future__ import annotations

import asyncio
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

import opswald
from opswald.engine import isolate
from opswald.engine.isolate import (
    IsolationError,
    Progress,
    RemoteError,
    Report,
    Timeout,
    run_isolated,
)
from opswald.engine.run import RunSettings, execute, judge
from opswald.session import Session

# These tests need fork and /proc (Linux, as CI is): they fail, never skip, elsewhere.
assert hasattr(os, "fork") and Path("/proc/self/task").is_dir(), "needs fork and /proc (Linux)"

TIMEOUT = 0.5
SLACK = 2.0  # the brief: stopped within timeout + ~2 s


class Reply(pydantic.BaseModel):
    text: str
    tokens: list[int]


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie whose parent is gone does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


# -- results and errors ---------------------------------------------------------------------


def test_the_return_value_comes_from_the_child() -> None:
    def session(report: Report) -> tuple[int, Reply, dict[str, Any]]:
        report(Progress(step=1, description="llm_call gpt"))
        return os.getpid(), Reply(text="hi", tokens=[1, 2, 3]), {"nested": [None, 1.5]}

    pid, reply, data = run_isolated(session, timeout=5)
    assert pid != os.getpid()
    assert not alive(pid) and not Path(f"/proc/{pid}").exists()  # reaped, not a zombie
    assert reply == Reply(text="hi", tokens=[1, 2, 3])
    assert data == {"nested": [None, 1.5]}


def test_a_large_result_does_not_fill_the_pipe() -> None:
    big = secrets.token_hex(2_500_000)  # 5 MB of text, made in the parent
    started = time.monotonic()

    def session(report: Report) -> str:
        for step in range(1, 201):  # progress interleaved with nothing but itself
            report(Progress(step=step, description="tool_call x"))
        return big[::-1]

    assert run_isolated(session, timeout=10) == big[::-1]
    assert time.monotonic() - started < 5


@opswald.llm
def shout(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": str(messages[-1]["content"]).upper(), "finish_reason": "stop"}


@opswald.tool
def look_up(key: str) -> str:
    return f"value of {key}"


def test_an_engine_run_crosses_back_and_is_judged_in_the_parent() -> None:
    def agent(input: Any) -> str:
        value = look_up(key=input)
        return str(shout(model="m", messages=[{"role": "user", "content": value}])["content"])

    stub = Session(name="s", input="k1")
    live = RunSettings(policy="live", block_side_effects=False)
    golden = execute(stub, agent, settings=live).actual

    run = run_isolated(lambda report: execute(golden, agent, settings=RunSettings()), timeout=10)
    assert run.actual.output == "VALUE OF K1"
    assert [s.type for s in run.actual.step_list] == ["tool_call", "llm_call"]
    assert judge(golden, run).passed
    assert run == pickle.loads(pickle.dumps(run))


def test_an_exception_comes_back_with_the_childs_traceback() -> None:
    def deep_in_the_agent() -> None:
        raise ValueError("bad input 42")

    def session(report: Report) -> None:
        deep_in_the_agent()

    with pytest.raises(ValueError) as info:
        run_isolated(session, timeout=5)
    assert str(info.value) == "bad input 42"
    # the child's frames follow the parent's, as if it had been raised here: shown (and
    # filtered) by pytest as any traceback, with their source lines
    child = [e for e in info.traceback if e.path == Path(__file__)]
    assert [e.name for e in child][-2:] == ["session", "deep_in_the_agent"]
    assert 'raise ValueError("bad input 42")' in str(child[-1].statement)
    assert "_child" not in [e.name for e in info.traceback]  # the machinery's own frame
    assert not getattr(info.value, "__notes__", None)  # no second traceback as text


def test_an_exception_comes_back_with_its_cause() -> None:
    def session(report: Report) -> None:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise RuntimeError("outer") from exc

    with pytest.raises(RuntimeError) as info:
        run_isolated(session, timeout=5)
    cause = info.value.__cause__
    assert isinstance(cause, KeyError) and cause.args == ("inner",)
    assert cause.__traceback__ is not None
    assert cause.__traceback__.tb_frame.f_code.co_name == "session"


class NeedsTwo(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickles, but does not unpickle
        super().__init__(f"{a}/{b}")


def test_an_exception_that_cannot_cross_becomes_a_remote_error() -> None:
    def session(report: Report) -> None:
        raise NeedsTwo(1, 2)

    with pytest.raises(RemoteError) as info:
        run_isolated(session, timeout=5)
    assert info.value.type_name.endswith("NeedsTwo")
    assert str(info.value).endswith("NeedsTwo: 1/2")
    assert info.traceback[-1].name == "session"


def test_a_result_that_cannot_be_pickled_names_its_type() -> None:
    class Holder:
        def __init__(self) -> None:
            self.lock = threading.Lock()

    with pytest.raises(IsolationError) as info:
        run_isolated(lambda report: Holder(), timeout=5)
    message = str(info.value)
    assert "Holder" in message and "cannot be pickled" in message


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        (lambda: os._exit(3), "exited with status 3"),
        (lambda: os.kill(os.getpid(), signal.SIGKILL), "was killed by signal 9 (SIGKILL)"),
    ],
    ids=["exit", "killed"],
)
def test_a_child_that_dies_without_a_result(how: Callable[[], None], expected: str) -> None:
    def session(report: Report) -> None:
        report(Progress(step=2, description="tool_call crash"))
        how()

    with pytest.raises(IsolationError) as info:
        run_isolated(session, timeout=5)
    assert expected in str(info.value)
    assert str(info.value).endswith("it was at step 2 (tool_call crash)")
    assert info.value.pid is not None and not Path(f"/proc/{info.value.pid}").exists()


def test_output_reaches_the_parents_capture(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """capsys replaces sys.stdout with an object without a file descriptor: forwarded."""

    def session(report: Report) -> int:
        print("to stdout from the child")
        print("to stderr from the child", file=sys.stderr)
        return 1

    print("before")
    assert run_isolated(session, timeout=5) == 1
    out, err = capsys.readouterr()
    assert out == "before\nto stdout from the child\n"  # "before" is not written twice
    assert err == "to stderr from the child\n"


def test_output_through_file_descriptors(capfd: pytest.CaptureFixture[str]) -> None:
    def session(report: Report) -> int:
        print("fd child")
        os.write(2, b"raw fd child\n")
        return 1

    print("before")
    assert run_isolated(session, timeout=5) == 1
    out, err = capfd.readouterr()
    assert out == "before\nfd child\n"
    assert err == "raw fd child\n"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="positive"):
        run_isolated(lambda report: 1, timeout=0)
    with pytest.raises(ValueError, match="positive"):
        run_isolated(lambda report: 1, timeout=float("nan"))


def test_a_timeout_beyond_what_poll_takes_is_waited_in_turns() -> None:
    # poll() takes at most 2**31-1 ms; a longer wait is not an OverflowError
    assert run_isolated(lambda report: 1, timeout=2_500_000) == 1
    assert run_isolated(lambda report: 2, timeout=1e300) == 2


def test_without_fork_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "fork")
    with pytest.raises(IsolationError, match="has no fork; run without a timeout"):
        run_isolated(lambda report: 1, timeout=5)


# -- hangs ----------------------------------------------------------------------------------


def busy(report: Report) -> None:
    report(Progress(step=3, description="tool_call send_email"))
    while True:
        pass


def sleeps(report: Report) -> None:
    report(Progress(step=3, description="tool_call send_email"))
    time.sleep(3600)


def reads_a_silent_socket(report: Report) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    report(Progress(step=3, description="tool_call send_email"))
    client.recv(1)


def awaits_forever(report: Report) -> None:
    async def main() -> None:
        report(Progress(step=3, description="tool_call send_email"))
        await asyncio.get_running_loop().create_future()

    asyncio.run(main())


def ignores_sigterm_in_c(report: Report) -> None:
    """A C loop that never checks for signals, and a SIGTERM handler that never gets to run."""
    import itertools

    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    report(Progress(step=3, description="tool_call send_email"))
    sum(itertools.repeat(1, 10**15))


HANGS = {
    "busy_loop": busy,
    "sleep": sleeps,
    "socket_recv": reads_a_silent_socket,
    "await": awaits_forever,
    "c_call": ignores_sigterm_in_c,
}


@pytest.mark.parametrize("name", list(HANGS))
def test_a_hung_agent_is_stopped(name: str) -> None:
    hang = HANGS[name]
    threads_before = threading.active_count(), os_threads()
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        run_isolated(hang, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    err = info.value
    assert TIMEOUT <= elapsed < TIMEOUT + SLACK
    assert str(err) == (
        "the agent did not finish within 0.5 s; it hung at step 3 (tool_call send_email)"
    )
    assert err.seconds == TIMEOUT
    assert err.progress == Progress(step=3, description="tool_call send_email")
    # really stopped: the child is gone (reaped, not even a zombie) ...
    assert not Path(f"/proc/{err.pid}").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(err.pid, 0)
    # ... and nothing of it lives on in the parent
    assert (threading.active_count(), os_threads()) == threads_before
    if name == "c_call":
        assert err.stack is None  # its own SIGTERM handler replaced the stack dump
    else:
        assert err.stack is not None and f"in {hang.__name__}" in err.stack
        assert f"in {hang.__name__}" in "\n".join(err.__notes__)
    # the next session runs normally
    assert run_isolated(lambda report: "next", timeout=5) == "next"


def test_no_cpu_is_burned_after_a_timeout() -> None:
    with pytest.raises(Timeout):
        run_isolated(busy, timeout=0.3)
    children_before = os.times().children_user
    cpu_before = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - cpu_before < 0.1  # the parent is idle
    assert os.times().children_user == children_before  # and no child is left to account


def test_timeout_before_the_first_step_and_pickling() -> None:
    with pytest.raises(Timeout) as info:
        run_isolated(lambda report: time.sleep(3600), timeout=0.2)
    assert str(info.value) == "the agent did not finish within 0.2 s; it hung before its first step"
    copy = pickle.loads(pickle.dumps(info.value))
    assert (str(copy), copy.pid, copy.progress) == (str(info.value), info.value.pid, Progress())


def test_processes_the_agent_started_are_stopped_with_it() -> None:
    def session(report: Report) -> None:
        sleeper = subprocess.Popen(["sleep", "3600"])
        report(Progress(step=1, description=str(sleeper.pid)))
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
        time.sleep(3600)

    with pytest.raises(Timeout) as info:
        run_isolated(session, timeout=TIMEOUT)
    grandchild = int(info.value.progress.description or "0")
    assert grandchild > 0
    deadline = time.monotonic() + 2
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(grandchild)


def test_leftover_processes_are_stopped_after_a_normal_return() -> None:
    def session(report: Report) -> int:
        return subprocess.Popen(["sleep", "3600"]).pid

    grandchild = run_isolated(session, timeout=5)
    deadline = time.monotonic() + 2
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(grandchild)


def test_sessions_run_side_by_side_from_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def session(report: Report) -> int:
        report(Progress(step=1, description="llm_call m"))
        return os.getpid()

    with ThreadPoolExecutor(3) as pool:
        hung = pool.submit(run_isolated, sleeps, timeout=TIMEOUT)
        pids = list(pool.map(lambda _: run_isolated(session, timeout=5), range(8)))
        with pytest.raises(Timeout):
            hung.result(timeout=TIMEOUT + SLACK)
    assert len(set(pids)) == 8 and os.getpid() not in pids
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


class Interrupted(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[None]:
    def interrupt(signum: int, frame: Any) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_an_interrupted_parent_kills_the_child(alarm: None, tmp_path: Path) -> None:
    """A KeyboardInterrupt (here: an exception from a signal handler) while waiting."""
    pid_file = tmp_path / "pid"

    def session(report: Report) -> None:
        pid_file.write_text(str(os.getpid()))
        while True:
            pass

    signal.setitimer(signal.ITIMER_REAL, 0.3)
    with pytest.raises(Interrupted):
        run_isolated(session, timeout=30)
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists()


def test_the_child_dies_with_its_parent(tmp_path: Path) -> None:
    """An orphaned child (its parent SIGKILLed, no chance to clean up) does not spin on."""
    pid_file = tmp_path / "pid"
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os
            from opswald.engine.isolate import run_isolated

            def session(report):
                with open({str(pid_file)!r}, "w") as f:
                    f.write(str(os.getpid()))
                while True:
                    pass

            run_isolated(session, timeout=60)
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 10
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        child = int(pid_file.read_text())
        assert alive(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(child)


def test_the_grace_period_is_bounded() -> None:
    started = time.monotonic()
    with pytest.raises(Timeout):
        run_isolated(ignores_sigterm_in_c, timeout=0.2, grace=0.1)
    assert time.monotonic() - started < 0.2 + 0.1 + 1.0
    assert isolate.GRACE <= 1.0


# -- inside pytest runs ---------------------------------------------------------------------

INNER = """
import os
import sys
import time

import pytest

from opswald.engine.isolate import Progress, Timeout, run_isolated


def test_hung(capsys):
    def session(report):
        report(Progress(step=4, description="llm_call stuck"))
        print("child says hello")
        while True:
            pass

    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        run_isolated(session, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert info.value.progress.step == 4
    assert not os.path.exists(f"/proc/{info.value.pid}")
    assert capsys.readouterr().out == "child says hello\\n"


def test_normal():
    def session(report):
        print("normal child output")
        return {"pid": os.getpid()}

    assert run_isolated(session, timeout=5)["pid"] != os.getpid()


def test_failing_inside_the_child():
    def session(report):
        print("printed before the failure")
        assert 1 == 2, "inner assertion"

    run_isolated(session, timeout=5)
"""


# third-party plugins installed here that only slow the start of the inner workers down
QUIET = [
    f"-pno:{name}" for name in ("benchmark", "recording", "syrupy", "anyio", "hypothesispytest")
]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inline", "xdist"])
def test_under_pytester_and_xdist(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytester.makepyfile(test_inner=textwrap.dedent(INNER))
    result = pytester.runpytest(*workers, "-p", "no:cacheprovider", *QUIET)
    # a child that hung would be stopped by its timeout and fail its test: the outcomes
    # say every child finished by itself
    result.assert_outcomes(passed=2, failed=1)
    assert "did not finish" not in result.stdout.str()
    text = result.stdout.str()
    assert "AssertionError: inner assertion" in text
    # the child's frame is shown as any other, its source line with it
    result.stdout.fnmatch_lines(
        ["    def session(report):", '>       assert 1 == 2, "inner assertion"', "test_inner.py:*"]
    )
    # the child's output appears once, in the report of the test that printed it
    assert result.stdout.lines.count("printed before the failure") == 1
    assert "normal child output" not in text
    assert "INTERNALERROR" not in text
