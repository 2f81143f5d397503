"""`opswald import` on input that is odd but real: tags named like pytest's own markers, files
that are not UTF-8, traces without a model or tool call, malformed message attributes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.cli import main


def _ls_trace(tags: list[str]) -> list[dict[str, Any]]:
    """A LangSmith chain run with one LLM run inside it."""
    times = {"start_time": "2025-01-01T00:00:00", "end_time": "2025-01-01T00:00:01"}
    return [
        {"id": "r1", "trace_id": "r1", "run_type": "chain", "name": "bot", "tags": tags,
         "inputs": {"q": "hi"}, "outputs": {"a": "hello"}, "dotted_order": "1", **times},
        {"id": "r2", "trace_id": "r1", "parent_run_id": "r1", "run_type": "llm", "name": "m",
         "dotted_order": "1.2",
         "inputs": {"messages": [{"role": "user", "content": "hi"}]},
         "outputs": {"choices": [{"message": {"role": "assistant", "content": "hello"}}]},
         **times},
    ]  # fmt: skip


def _lf_trace(tags: list[str]) -> dict[str, Any]:
    return {
        "id": "t1",
        "name": "bot",
        "tags": tags,
        "observations": [
            {
                "id": "o1",
                "traceId": "t1",
                "type": "GENERATION",
                "name": "m",
                "model": "gpt-4o-mini",
                "input": [{"role": "user", "content": "hi"}],
                "output": {"role": "assistant", "content": "hello"},
                "startTime": "2025-01-01T00:00:00Z",
                "endTime": "2025-01-01T00:00:01Z",
            }
        ],
    }


@pytest.mark.parametrize("fmt", ["langsmith", "langfuse"])
def test_tags_named_like_pytest_markers_are_left_out_with_a_warning(
    fmt: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tags = ["smoke", "skip", "xfail", "golden", "a b"]
    trace = _ls_trace(tags) if fmt == "langsmith" else _lf_trace(tags)
    source = tmp_path / "t.json"
    source.write_text(json.dumps(trace))
    assert main(["import", fmt, str(source), "-o", str(tmp_path / "g")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the account's lines are wrapped
    (written,) = (tmp_path / "g").iterdir()
    assert opswald.load(written).tags == ["smoke"]
    assert "tag named like one of pytest's or opswald's own markers x3" in out
    assert "tag that is not a valid pytest marker name" in out
    assert "'skip', 'xfail', 'golden', 'a b'" in out


def test_a_file_that_is_not_utf8_is_an_error_and_a_utf8_bom_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    utf16 = tmp_path / "u16.json"
    utf16.write_bytes(b"\xff\xfe{\x00}\x00")
    assert main(["import", "otel", str(utf16), "-o", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {utf16}: not UTF-8 text")
    assert "Traceback" not in err
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(_lf_trace([])).encode())
    assert main(["import", "langfuse", str(bom), "-o", str(tmp_path / "g")]) == 0
    assert len(list((tmp_path / "g").iterdir())) == 1
