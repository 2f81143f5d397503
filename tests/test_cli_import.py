"""`opswald import`: goldens written, the account of what was mapped, kept and skipped,
names never reused, and exit codes for unreadable input."""

from __future__ import annotations

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
