"""`opswald import`: goldens written, the account of what was mapped, kept and skipped,
names never reused, and exit codes for unreadable input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.cli import main

DEPRECATED = Path(__file__).parent / "data" / "import_otel" / "deprecated.json"


def test_import_prints_its_account(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    snapshot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out_dir = tmp_path / "goldens"
    assert main(["import", "otel", str(DEPRECATED), "-o", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("wrote "))
    assert out.replace(str(tmp_path), "<tmp>") == snapshot
    written = sorted(out_dir.iterdir())
    assert len(written) == 2
    sessions = [opswald.load(p) for p in written]
    assert all(p.name == f"{s.name}.golden.yaml" for p, s in zip(written, sessions, strict=True))
    # a second import never overwrites: the names get a suffix
    assert main(["import", "otel", str(DEPRECATED), "-o", str(out_dir)]) == 0
    second = capsys.readouterr().out
    assert "_2.golden.yaml" in second
    assert len(list(out_dir.iterdir())) == 4


def test_import_of_unreadable_files_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceSpans": [')
    code = main(["import", "otel", str(broken), str(tmp_path / "absent.json"), "-o", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.splitlines()
    assert errors[0].startswith(f"error: {broken}:1:")
    assert errors[1].startswith(f"error: {tmp_path / 'absent.json'}: No such file")
    assert "0 goldens from otel" in captured.out
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "zipkin", str(broken)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'zipkin'" in capsys.readouterr().err


def test_imported_goldens_hold_no_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Production traces carry keys (in prompts, answers, attributes): every imported
    golden is scrubbed before it is written, as recorded ones are."""
    aws, openai_key = "AKIA" + "IOSFODNN7EXAMPLQ", "sk-proj-" + "Q1w2E3r4T5y6" * 3
    password, google = "S3cr3tPassw0rdValue", "AIza" + "SyDxK3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0Ac"
    text = DEPRECATED.read_text(encoding="utf-8")
    text = text.replace("You are terse.", f"You are terse. Key {openai_key}")
    text = text.replace("Weather in Oslo?", f"Weather in Oslo? {aws}")
    # an attribute named by a key: kept raw in the step's attributes, listed by the account
    doc = json.loads(text)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"].append({"key": openai_key, "value": {"stringValue": "x"}})
    # and credentials in a URL: a password, a key in its query
    url = f"https://user:{password}@api.example/v1?key={google}"
    span["attributes"].append({"key": "url.full", "value": {"stringValue": url}})
    text = json.dumps(doc)
    assert aws in text and openai_key in text
    source = tmp_path / "trace.json"
    source.write_text(text, encoding="utf-8")
    out_dir = tmp_path / "goldens"
    assert main(["import", "otel", str(source), "-o", str(out_dir)]) == 0
    printed = capsys.readouterr()
    assert "kept raw in attributes" in printed.out
    assert openai_key[:20] not in printed.out + printed.err
    written = "".join(p.read_text(encoding="utf-8") for p in sorted(out_dir.iterdir()))
    assert aws not in written and openai_key not in written
    assert password not in written and google not in written
    assert (
        "url.full: https://user:<redacted:password>@api.example/v1?key=<redacted:google-key>"
        in (written)
    )
    assert "<redacted:aws-key>" in written and "<redacted:openai-key>" in written
