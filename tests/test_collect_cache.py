"""The collection index: a golden unchanged since it was last collected valid is not read
again until its item runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import record
from opswald import files

GOLDEN = "goldens/flight.golden.yaml"
INDEX = ".pytest_cache/d/opswald/collected.json"


def rewrite_in_place(path: Path, text: str) -> None:
    """Replace the file's content keeping its size and modification time (what the index
    cannot see), padding with a YAML comment."""
    before = path.stat()
    data = text.encode()
    assert len(data) + 2 <= before.st_size, "the new text must fit"
    data += b"\n#" + b"x" * (before.st_size - len(data) - 2)
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def later(path: Path, seconds: int = 5) -> None:
    """Move the file's modification time forward, as a fresh checkout or `touch` does."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


def parses(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The goldens `files.load` parses from now on (`runpytest` runs in this process)."""
    parsed: list[Path] = []
    load = files.load
    monkeypatch.setattr(files, "load", lambda path, **kw: parsed.append(path) or load(path, **kw))
    return parsed


def index_entries(project: pytest.Pytester) -> dict[str, list[object]]:
    data = json.loads((project.path / INDEX).read_text())
    return data["goldens"]  # type: ignore[no-any-return]


def test_a_warm_collection_does_not_read_unchanged_goldens(project: pytest.Pytester) -> None:
    record(project)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["goldens/flight.golden.yaml::book_flight"])
    entry = index_entries(project)[GOLDEN]
    assert entry[2:4] == ["book_flight", ["critical"]]

    # the index cannot see this change, so a warm collection proves it did not read the file
    rewrite_in_place(project.path / GOLDEN, "name: x\ninput: {a: 1\n")
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["goldens/flight.golden.yaml::book_flight"])

    # running it reads it: a failure of that item naming the file, not a crash
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*malformed golden: *flight.golden.yaml:*"])
    assert "INTERNALERROR" not in result.stdout.str()

    # and the entry is gone: the next run reports it as the collection error it is
    assert GOLDEN not in index_entries(project)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*malformed golden: *flight.golden.yaml:*"])


def test_deselected_goldens_are_never_read(project: pytest.Pytester) -> None:
    record(project)
    golden = project.path / GOLDEN
    other = project.path / "goldens" / "other.golden.yaml"
    other.write_text(golden.read_text().replace("name: book_flight", "name: other_flight"))
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    rewrite_in_place(other, "name: [broken\n")
    result = project.runpytest("--opswald-goldens", "-k", "book_flight")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_changed_golden_is_collected_afresh(project: pytest.Pytester) -> None:
    record(project)
    golden = project.path / GOLDEN
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    golden.write_text(golden.read_text().replace("name: book_flight", "name: book_flight_v2"))
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["goldens/flight.golden.yaml::book_flight_v2"])
    assert index_entries(project)[GOLDEN][2] == "book_flight_v2"


def test_a_golden_renamed_in_place_heals_on_its_next_collection(project: pytest.Pytester) -> None:
    """Same size, same modification time, other name: the run replays what the file says
    and drops the entry, so the next collection shows the new name."""
    record(project)
    golden = project.path / GOLDEN
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    text = golden.read_text()
    renamed = text.replace("name: book_flight", "name: book_fligh2")
    assert len(renamed) == len(text)
    stat = golden.stat()
    golden.write_text(renamed)
    os.utime(golden, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["goldens/flight.golden.yaml::book_fligh2"])


def test_malformed_goldens_are_never_remembered(project: pytest.Pytester) -> None:
    record(project)
    bad = project.path / "goldens" / "bad.golden.yaml"
    bad.write_text("name: x\ninput: 1\ntags: 5\n")
    for _ in range(2):
        result = project.runpytest("--opswald-goldens")
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*malformed golden: *bad.golden.yaml:3*tags*"])
    assert "goldens/bad.golden.yaml" not in index_entries(project)
    assert GOLDEN in index_entries(project)


def test_without_pytests_cache_every_collection_reads_every_golden(
    project: pytest.Pytester,
) -> None:
    record(project, "-p", "no:cacheprovider")
    result = project.runpytest("--opswald-goldens", "-p", "no:cacheprovider", "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    assert not (project.path / INDEX).exists()

    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    rewrite_in_place(project.path / GOLDEN, "name: x\ninput: {a: 1\n")
    for args in (["-p", "no:cacheprovider"], ["--cache-clear"]):
        result = project.runpytest("--opswald-goldens", *args)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*malformed golden: *flight.golden.yaml:*"])


def test_a_stale_or_foreign_index_is_ignored(project: pytest.Pytester) -> None:
    record(project)
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    index = project.path / INDEX
    data = json.loads(index.read_text())
    rewrite_in_place(project.path / GOLDEN, "name: x\ninput: {a: 1\n")
    for text in ("{not json", json.dumps({**data, "fingerprint": "0.0.0/1/1"}), "[]"):
        index.write_text(text)
        result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
        result.stdout.fnmatch_lines(["*malformed golden: *flight.golden.yaml:*"])
        assert "INTERNALERROR" not in result.stdout.str()


def test_xdist_workers_share_the_index(project: pytest.Pytester) -> None:
    record(project)
    golden = project.path / GOLDEN
    for i in range(6):
        (project.path / "goldens" / f"copy{i}.golden.yaml").write_text(
            golden.read_text().replace("name: book_flight", f"name: copy_{i}")
        )
    project.runpytest("--opswald-goldens", "-n", "2").assert_outcomes(passed=7)
    entries = index_entries(project)
    assert len(entries) == 7
    rewrite_in_place(project.path / "goldens" / "copy0.golden.yaml", "name: [broken\n")
    result = project.runpytest("--opswald-goldens", "-n", "2")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["*malformed golden: *copy0.golden.yaml:*"])
    assert "goldens/copy0.golden.yaml" not in index_entries(project)


def test_deleted_goldens_leave_the_index(project: pytest.Pytester) -> None:
    record(project)
    golden = project.path / GOLDEN
    moved = project.path / "goldens" / "moved.golden.yaml"
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    assert list(index_entries(project)) == [GOLDEN]
    golden.rename(moved)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["goldens/moved.golden.yaml::book_flight"])
    assert list(index_entries(project)) == ["goldens/moved.golden.yaml"]


def test_a_golden_touched_with_the_same_bytes_is_not_parsed_again(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh checkout (or `touch`) changes every time, not the bytes: the content digest
    says the golden is unchanged, and the entry takes the new time."""
    record(project)
    golden = project.path / GOLDEN
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    before = index_entries(project)[GOLDEN]
    later(golden)
    parsed = parses(monkeypatch)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["goldens/flight.golden.yaml::book_flight"])
    assert parsed == []
    after = index_entries(project)[GOLDEN]
    assert after[0] == golden.stat().st_mtime_ns != before[0]
    assert after[1:] == before[1:]


def test_a_golden_of_the_same_size_with_other_bytes_and_time_is_read(
    project: pytest.Pytester,
) -> None:
    record(project)
    golden = project.path / GOLDEN
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    rewrite_in_place(golden, "name: x\ninput: {a: 1\n")
    later(golden)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*malformed golden: *flight.golden.yaml:*"])
    assert GOLDEN not in index_entries(project)


def test_a_fresh_clone_elsewhere_with_the_cache_restored_collects_warm(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """CI: a clone in another directory, every file with a new time, `.pytest_cache`
    restored from the last run: no golden is parsed at collection."""
    record(project)
    project.runpytest("--opswald-goldens", "--collect-only", "-q").assert_outcomes()
    clone = tmp_path_factory.mktemp("ci") / "checkout"
    shutil.copytree(project.path, clone)
    for golden in (clone / "goldens").iterdir():
        later(golden)
    monkeypatch.chdir(clone)
    parsed = parses(monkeypatch)
    result = project.runpytest("--opswald-goldens", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["goldens/flight.golden.yaml::book_flight"])
    assert parsed == []
    entries = json.loads((clone / INDEX).read_text())["goldens"]
    assert entries[GOLDEN][0] == (clone / GOLDEN).stat().st_mtime_ns
    result = project.runpytest("--opswald-goldens")  # and the clone's golden runs
    result.assert_outcomes(passed=1)
