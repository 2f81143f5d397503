"""The local trace store: opswald.record() without a path, `opswald traces list|prune`,
`opswald golden create`, and batch re-runs of historical failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.cli import main
from opswald.session import ToolCallStep
from opswald.tracestore import find, list_traces, save

AGENT_VERSION = {"current": "v1"}


@opswald.llm
def plan(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "content": f"fetch {messages[-1]['content']}",
        "finish_reason": "stop",
        "usage": {"input_tokens": 20, "output_tokens": 3},
        "cost": 0.001,
    }


@opswald.tool
def fetch_report(name: str) -> dict[str, Any]:
    if name.endswith(".pdf"):
        raise FileNotFoundError(f"{name} does not exist")
    return {"name": name, "pages": 3}


def agent(task: str, modifications: dict[str, Any] | None = None) -> str:
    version = (modifications or {}).get("agent_version", "v1")
    plan(model="m", messages=[{"role": "user", "content": task}])
    # v1 asks for the file the user named; v2 falls back to the text export
    name = task if version == "v1" else task.replace(".pdf", ".txt")
    return f"{fetch_report(name)['pages']} pages"


def _record(store: Path, task: str, tags: list[str]) -> Path:
    try:
        with opswald.record(name="report", input=task, tags=tags, store=store) as rec:
            rec.output = agent(task)
    except FileNotFoundError:
        pass
    assert rec.path is not None
    return rec.path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    folder = tmp_path / "traces"
    _record(folder, "q1.txt", ["nightly"])
    _record(folder, "q1-sales.pdf", ["nightly", "sales"])
    _record(folder, "q2-sales.pdf", ["sales"])
    return folder


def test_record_without_a_path_goes_to_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with opswald.record(name="scratch run", input="q.txt") as rec:
        rec.output = agent("q.txt")
    assert rec.path is not None and rec.session is not None
    assert rec.path.parent == tmp_path / ".opswald" / "traces"
    assert rec.path.name.endswith(f"-scratch_run-{rec.session.session_id}.trace.yaml")
    stored = opswald.load(rec.path)
    assert stored.session_id == rec.session.session_id and len(stored.step_list) == 2
    monkeypatch.setenv("OPSWALD_TRACES_DIR", str(tmp_path / "elsewhere"))
    with opswald.record(name="env", input="q.txt") as rec2:
        rec2.output = agent("q.txt")
    assert rec2.path is not None and rec2.path.parent == tmp_path / "elsewhere"


def test_list_filters_newest_first(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    infos = list_traces(store)
    assert [i.tags for i in infos] == [("sales",), ("nightly", "sales"), ("nightly",)]
    assert [i.error is not None for i in infos] == [True, True, False]
    assert main(["traces", "list", "--store", str(store), "--error", "--tag", "nightly"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "ERROR FileNotFoundError: q1-sales.pdf does not exist" in lines[0]
    assert lines[0].startswith(infos[1].id)
    assert main(["traces", "list", "--store", str(store), "--limit", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["traces", "list", "--store", str(store), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [i.id for i in infos]
    assert rows[0]["error"] == "FileNotFoundError: q2-sales.pdf does not exist"


def test_list_with_no_match_says_none_match_not_that_the_store_is_empty(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Filters that match none of the stored traces: the store is not empty, and the
    message says so, naming the filters; an empty store still says it has none."""
    assert main(["traces", "list", "--store", str(store), "--tag", "nosuch"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == (
        f"no traces match --tag nosuch (3 traces in {store}); "
        "opswald traces list without filters lists them all"
    )
    calm = tmp_path / "calm"
    _record(calm, "q1.txt", ["nightly"])  # no trace here ended in an error
    assert main(["traces", "list", "--store", str(calm), "--error", "--tag", "nightly"]) == 0
    assert capsys.readouterr().err.strip() == (
        f"no traces match --error --tag nightly (1 trace in {calm}); "
        "opswald traces list without filters lists them all"
    )
    empty = tmp_path / "empty"
    assert main(["traces", "list", "--store", str(empty), "--error"]) == 0
    assert capsys.readouterr().err.strip() == f"no traces in {empty}"


def test_prune_deletes_only_old_traces(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = save(
        opswald.load(next(store.iterdir())).model_copy(update={"session_id": None}),
        store,
        now=datetime(2026, 1, 2, tzinfo=UTC),
    )
    assert old.name.startswith("20260102T000000.000000Z-report-")
    assert main(["traces", "prune", "--store", str(store), "--older-than", "30d"]) == 0
    assert "removed 1 trace from" in capsys.readouterr().out
    assert not old.exists() and len(list_traces(store)) == 3
    assert main(["traces", "prune", "--store", str(store), "--older-than", "soon"]) == 2
    assert "not an age like 30d" in capsys.readouterr().err


@pytest.mark.parametrize("age", ["1000000d", "99999999999d", "999999999999w", "99999999999999h"])
def test_prune_of_an_age_beyond_the_calendar_is_a_usage_error(
    store: Path, capsys: pytest.CaptureFixture[str], age: str
) -> None:
    assert main(["traces", "prune", "--store", str(store), "--older-than", age]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --older-than: {age!r} reaches back before the year 1")
    assert len(list_traces(store)) == 3


def test_golden_create_promotes_a_trace(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = list_traces(store, error=True)[-1]
    goldens = tmp_path / "goldens"
    args = [
        "golden",
        "create",
        failing.id[:6],
        "--name",
        "q1_sales_missing",
        "--goldens",
        str(goldens),
        "--store",
        str(store),
        "--description",
        "PDF export missing",
        "--tags",
        "sales,regression",
    ]
    assert main(args) == 0
    target = goldens / "q1_sales_missing.golden.yaml"
    assert f"wrote {target}" in capsys.readouterr().out
    golden = opswald.load(target)
    assert golden.name == "q1_sales_missing" and golden.description == "PDF export missing"
    assert golden.tags == ["sales", "regression"]
    assert golden.metadata["trace"] == failing.id
    assert golden.error is not None and golden.error.type == "FileNotFoundError"
    tool = golden.step_list[1]
    assert isinstance(tool, ToolCallStep) and tool.input == {"name": "q1-sales.pdf"}
    replayed = opswald.Replay(target, adapter=agent).run()
    assert replayed is not None and replayed.passed, "the promoted golden replays"
    assert main(args) == 4, "never over an existing golden"
    assert "exists" in capsys.readouterr().err
    assert main(["golden", "create", "ffffffff", "--name", "x", "--store", str(store)]) == 4
    assert "no trace 'ffffffff'" in capsys.readouterr().err
    with pytest.raises(LookupError, match=r"ambiguous|no trace"):
        find("", store)


def test_a_trace_reference_too_short_for_a_prefix_says_so(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [s.id for s in list_traces(store)]
    three = ids[0][:3]
    starting = sum(i.startswith(three) for i in ids)
    assert main(["golden", "create", three, "--name", "x", "--store", str(store)]) == 4
    err = capsys.readouterr().err
    assert f"no trace {three!r} in {store}: a trace id prefix takes 4 or more characters" in err
    assert f"; {starting} trace id{'s start' if starting != 1 else ' starts'} with it" in err
    with pytest.raises(LookupError, match=r"takes 4 or more characters \(see: opswald"):
        find("zz", store)  # no id starts with it: nothing to count


def test_batch_replay_of_historical_failures(store: Path) -> None:
    failures = opswald.traces(error=True, limit=20, store=store)
    assert [s.input for s in failures] == ["q2-sales.pdf", "q1-sales.pdf"]
    before = opswald.batch_replay(failures, adapter=agent)
    assert sorted(before.still_failing) == sorted(before.results), "same agent: still failing"
    after = opswald.batch_replay(failures, adapter=agent, modifications={"agent_version": "v2"})
    assert len(after.results) == 2, "two traces named 'report' are both kept"
    assert after.still_failing == []
    outputs = sorted(r.actual.output for r in after.results.values())
    assert outputs == ["3 pages", "3 pages"]


def test_golden_create_bad_input_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = list_traces(store)[0].id
    base = ["golden", "create", trace, "--store", str(store)]
    # bad input to a valid command: exit 4, as README's table of exit statuses says
    assert main([*base, "--name", "g", "--tags", "has space,ok", "--goldens", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: tags[0]: ") and "has space" in err
    assert len(err.strip().splitlines()) == 1 and "errors.pydantic.dev" not in err
    a_file = tmp_path / "not_a_folder"
    a_file.write_text("x")
    assert main([*base, "--name", "a b", "--goldens", str(tmp_path)]) == 4
    assert "golden name 'a b'" in capsys.readouterr().err
    assert main([*base, "--name", "g", "--goldens", str(a_file)]) == 4
    err = capsys.readouterr().err
    assert err.startswith(f"error: {a_file}: ") and "Errno" not in err
    assert len(err.strip().splitlines()) == 1
    # a secret typed as a tag is refused, not dropped in silence (QA probe30 #7d)
    key = "sk-proj-" + "Q1w2E3r4T5y6" * 3
    assert main([*base, "--name", "g", "--tags", f"ok,{key}", "--goldens", str(tmp_path)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: --tags: '<redacted:openai-key>' is a secret") and key not in err
    assert not (tmp_path / "g.golden.yaml").exists()
    # a tag given twice is one tag
    assert main([*base, "--name", "g", "--tags", "a,a,b", "--goldens", str(tmp_path)]) == 0
    capsys.readouterr()
    assert opswald.load(tmp_path / "g.golden.yaml").tags == ["a", "b"]


def test_golden_create_scrubs_every_secret_of_the_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trace stored with secrets (one recorded before a rule covered them, or put in the
    store by hand): in its metadata, a model call's parameters and headers, tool arguments,
    results and errors, its tags. The golden promoted from it holds none, and a tag that is
    a key is left out rather than refusing the promotion."""
    from opswald.session import LLMCallStep, Session

    key, aws = "sk-proj-" + "Q1w2E3r4T5y6" * 3, "AKIA" + "IOSFODNN7EXAMPLR"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36P"
    trace = Session.model_validate(
        {
            "name": "leaky",
            "tags": ["nightly", key],
            "metadata": {"note": f"key {key}"},
            "input": "go",
            "steps": [
                {
                    "step": 1,
                    "type": "llm_call",
                    "model": "m",
                    "input": {
                        "messages": [{"role": "user", "content": "go"}],
                        "params": {"user": key, "extra_headers": {"x-api-key": "k-123"}},
                    },
                    "output": {"content": "ok"},
                },
                {
                    "step": 2,
                    "type": "tool_call",
                    "tool": "fetch",
                    "input": {"q": aws},
                    "output": None,
                    "error": {"type": "PermissionError", "message": f"refused {jwt}"},
                },
            ],
            "output": f"done {key}",
        }
    )
    store = tmp_path / "traces"
    stored = save(trace, store)
    assert key in stored.read_text(encoding="utf-8")
    goldens = tmp_path / "goldens"
    args = ["golden", "create", stored.name, "--name", "leaky", "--store", str(store)]
    assert main([*args, "--goldens", str(goldens)]) == 0, capsys.readouterr().err
    text = (goldens / "leaky.golden.yaml").read_text(encoding="utf-8")
    for secret in (key, aws, jwt, "k-123"):
        assert secret not in text
    golden = opswald.load(goldens / "leaky.golden.yaml")
    assert golden.tags == ["nightly"]
    assert golden.metadata["note"] == "key <redacted:openai-key>"
    llm, tool = golden.step_list
    assert isinstance(llm, LLMCallStep) and llm.input.params == {
        "user": "<redacted:openai-key>",
        "extra_headers": {"x-api-key": "<redacted:header>"},
    }
    assert isinstance(tool, ToolCallStep) and tool.input == {"q": "<redacted:aws-key>"}
    assert tool.error is not None and tool.error.message == "refused <redacted:jwt>"
    assert golden.output == "done <redacted:openai-key>"
