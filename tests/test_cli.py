"""The `opswald` command line, run as users run it: a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from opswald.session import SCHEMA_URL, json_schema

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "goldens"
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir() if ".golden." in p.name)
FLIGHT = EXAMPLES / "flight_booking.golden.yaml"

BROKEN_YAML = """\
name: broken
input: {q: hi}
steps:
  - step: 1
    type: tool_cal
    tool: lookup
output: done
"""
BROKEN_JSON = '{\n  "name": "broken",\n  "input": 1,\n  "steps": [1,,]\n}\n'


def opswald(
    *args: str, cwd: Path = ROOT, script: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI: `python -m opswald.cli`, or the installed console script."""
    command = [script] if script else [sys.executable, "-m", "opswald.cli"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
        check=False,
    )


def console_script() -> str:
    """The `opswald` entry point: beside this interpreter (a venv), else on PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("opswald", path=search)
    assert found, "the `opswald` console script is not installed"
    return found


# ------------------------------------------------------------------------------ schema


def test_schema_prints_the_json_schema() -> None:
    result = opswald("schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["$id"] == SCHEMA_URL
    assert schema == json_schema()
    assert result.stderr == ""


def test_the_console_script_is_the_same_program() -> None:
    script = console_script()
    schema = opswald("schema", script=script)
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["$id"] == SCHEMA_URL
    validate = opswald("validate", "goldens/", script=script)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert validate.stdout == opswald("validate", "goldens/").stdout


# ---------------------------------------------------------------------------- validate


def test_validate_the_example_goldens() -> None:
    result = opswald("validate", "goldens/")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(EXAMPLE_NAMES) >= 6
    for name in EXAMPLE_NAMES:
        pattern = re.compile(rf"ok: goldens/{re.escape(name)} \(\d+ steps\)")
        assert sum(bool(pattern.fullmatch(line)) for line in lines) == 1, (name, lines)
    assert lines[-1] == f"{len(EXAMPLE_NAMES)} valid, 0 invalid"
    assert len(lines) == len(EXAMPLE_NAMES) + 1


def test_validate_names_the_malformed_file_and_line(tmp_path: Path) -> None:
    goldens = tmp_path / "goldens"
    shutil.copytree(EXAMPLES, goldens)
    (goldens / "broken.golden.yaml").write_text(BROKEN_YAML)
    (goldens / "sub").mkdir()
    (goldens / "sub" / "broken.golden.json").write_text(BROKEN_JSON)
    (goldens / "notes.yaml").write_text("not: a golden\n")
    result = opswald("validate", "goldens/", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert (
        "error: goldens/broken.golden.yaml:5: step 1 › type: unknown step type 'tool_cal'; "
        "expected one of: user_input, llm_call, tool_call, state"
    ) in lines
    assert any(line.startswith("error: goldens/sub/broken.golden.json:4: ") for line in lines)
    assert sum(line.startswith("ok: goldens/") for line in lines) == len(EXAMPLE_NAMES)
    assert "notes.yaml" not in result.stdout
    assert lines[-1] == f"{len(EXAMPLE_NAMES)} valid, 2 invalid"
    assert "Traceback" not in result.stderr


def test_validate_a_single_file() -> None:
    result = opswald("validate", str(FLIGHT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"ok: {FLIGHT} (7 steps)", "1 valid, 0 invalid"]


def test_validate_a_stub(tmp_path: Path) -> None:
    (tmp_path / "new.golden.yaml").write_text("name: new\ninput: {q: hi}\n")
    result = opswald("validate", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: new.golden.yaml (stub (not recorded yet))" in result.stdout.splitlines()


def test_validate_warns_of_raw_characters_that_hide_or_reorder_text(tmp_path: Path) -> None:
    """A hand-edited golden holding a raw RIGHT-TO-LEFT OVERRIDE is valid, with a warning;
    one that opswald wrote holds escapes and gets none (its emoji keep their joiners)."""
    from opswald import dump
    from opswald.session import Session

    edited = 'name: edited\ninput: {q: hi}\nsteps: []\noutput: "total 1\u202e00"\n'
    (tmp_path / "edited.golden.yaml").write_text(edited, encoding="utf-8")
    tagged = "\U000e0069\U000e0067\U000e006e\U000e006f\U000e0072\U000e0065"
    (tmp_path / "tagged.golden.json").write_text(
        f'{{"name": "tagged", "input": "hi {tagged}", "steps": [], "output": "x"}}\n',
        encoding="utf-8",
    )
    reply = "total 1\u202e00 👨‍👩‍👧 \U000e0069"
    dump(Session(name="w", input={"q": "hi"}, steps=[], output=reply), tmp_path / "w.golden.yaml")
    result = opswald("validate", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "ok: edited.golden.yaml (0 steps)",
        "warning: edited.golden.yaml:4: U+202E RIGHT-TO-LEFT OVERRIDE, which can hide or "
        'reorder text in a diff, is written raw; write it as "\\u202E" in a double-quoted string',
        "ok: tagged.golden.json (0 steps)",
        "warning: tagged.golden.json:1: 6 characters that can hide or reorder text in a diff "
        "are written raw, the first U+E0069 TAG LATIN SMALL LETTER I; write them as escapes "
        'in double-quoted strings ("\\U000E0069")',
        "ok: w.golden.yaml (0 steps)",
        "3 valid, 0 invalid",
    ]
    rows = json.loads(opswald("validate", "--json", ".", cwd=tmp_path).stdout)["goldens"]
    assert [row.get("warning", "")[:24] for row in rows] == [
        "edited.golden.yaml:4: U+",
        "tagged.golden.json:1: 6 ",
        "",
    ]


HOURS = """\
name: hours
input: {}
steps:
  - step: 1
    type: tool_call
    tool: store_hours
    input: {store: oslo}
    output: {opens: 2026-01-05, closes: 17:30, country: NO, code: '017', id: 0o17}
output:
  - 1_000
  - "17:30"
  - y
"""


def test_validate_warns_of_plain_values_yaml_1_1_and_1_2_read_apart(tmp_path: Path) -> None:
    """A hand-written `17:30` or `NO` is valid, and read by YAML 1.1's rules (1050, false),
    where YAML 1.2 tools read text: `validate` says so, with the line and how to quote it.
    Quoted values, dates (text for both) and `y` (text for PyYAML too) get no warning."""
    from opswald import load

    (tmp_path / "hours.golden.yaml").write_text(HOURS)
    step = load(tmp_path / "hours.golden.yaml").step_list[0]
    assert step.output["closes"] == 1050 and step.output["country"] is False
    result = opswald("validate", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    head = "warning: hours.golden.yaml"
    assert result.stdout.splitlines() == [
        "ok: hours.golden.yaml (1 step)",
        f"{head}:8: `closes: 17:30` reads as the number 1050 in opswald (YAML 1.1) but as the "
        "text '17:30' in YAML 1.2 tools such as yq; quote it ('17:30') if you mean the text, "
        "or write 1050",
        f"{head}:8: `country: NO` reads as the boolean false in opswald (YAML 1.1) but as the "
        "text 'NO' in YAML 1.2 tools such as yq; quote it ('NO') if you mean the text, or "
        "write false",
        f"{head}:8: `id: 0o17` reads as the text '0o17' in opswald (YAML 1.1) but as the "
        "number 15 in YAML 1.2 tools such as yq; quote it ('0o17') so that every reader "
        "takes the text",
        f"{head}:10: `- 1_000` reads as the number 1000 in opswald (YAML 1.1) but as the text "
        "'1_000' in YAML 1.2 tools such as yq; quote it ('1_000') if you mean the text, or "
        "write 1000",
        "1 valid, 0 invalid",
    ]
    rows = json.loads(opswald("validate", "--json", ".", cwd=tmp_path).stdout)["goldens"]
    assert [w.split(": `")[1][:9] for w in rows[0]["warnings"]] == [
        "closes: 1",
        "country: ",
        "id: 0o17`",
        "- 1_000` ",
    ]


def test_goldens_opswald_writes_read_alike_in_yaml_1_1_and_1_2() -> None:
    from opswald.files import yaml_version_differences

    root = Path(__file__).parent.parent
    found = [
        (path, line)
        for folder in ("goldens", "tests/data")
        for path in sorted((root / folder).rglob("*.golden.y*ml"))
        for line, _ in yaml_version_differences(path.read_text(encoding="utf-8"))
    ]
    assert found == []


@pytest.mark.parametrize("content", [None, "notes.yaml"], ids=["empty", "no_goldens"])
def test_validate_a_folder_without_goldens_exits_4(tmp_path: Path, content: str | None) -> None:
    if content:
        (tmp_path / content).write_text("name: x\ninput: 1\n")
        (tmp_path / "golden.yaml").write_text("name: x\ninput: 1\n")
    result = opswald("validate", str(tmp_path))
    assert result.returncode == 4, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("error: no golden files found")  # as analyze, html say


def walked_project(root: Path) -> None:
    """goldens/ holding what pytest collects — a golden, a folder, a symlinked folder with
    a malformed golden — and what it skips by default: hidden, build and node_modules
    folders, a virtualenv, __pycache__."""
    stub = "name: {}\ninput: {{q: hi}}\n"
    files = {
        "goldens/local.golden.yaml": stub.format("local"),
        "goldens/sub/json.golden.json": '{"name": "json", "input": 1}',
        "shared/goldens/broken.golden.yaml": BROKEN_YAML,
        "shared/goldens/deep/ok.golden.yaml": stub.format("ok"),
        "goldens/.drafts/draft.golden.yaml": BROKEN_YAML,
        "goldens/build/built.golden.yaml": BROKEN_YAML,
        "goldens/node_modules/n.golden.yaml": BROKEN_YAML,
        "goldens/env/pyvenv.cfg": "home = /usr/bin\n",  # a virtualenv to every pytest
        "goldens/env/bin/activate": "",  # (8.0 looks for this, later ones for pyvenv.cfg)
        "goldens/env/v.golden.yaml": BROKEN_YAML,
        "goldens/__pycache__/p.golden.yaml": BROKEN_YAML,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "goldens" / "shared").symlink_to(Path("..") / "shared" / "goldens")


def pytest_collects(root: Path, *args: str) -> set[str]:
    """The golden files `pytest --opswald-goldens --co ARGS` collects (or fails to load)."""
    command = ["pytest", "--opswald-goldens", "--co", "-q", "-p", "no:cacheprovider", *args]
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=root,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    lines = result.stdout.splitlines()
    files = {line.split("::")[0] for line in lines if "::" in line}
    files |= {line.split()[1] for line in lines if line.startswith("ERROR goldens/")}
    assert files, result.stdout + result.stderr
    return files


def validated(root: Path, *args: str) -> tuple[int, list[str]]:
    result = opswald("validate", "--json", *args, cwd=root)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, [row["path"] for row in json.loads(result.stdout)["goldens"]]


def test_validate_walks_a_folder_as_pytest_collects_it(tmp_path: Path) -> None:
    walked_project(tmp_path)
    code, paths = validated(tmp_path, "goldens")
    assert paths == [
        "goldens/local.golden.yaml",
        "goldens/shared/broken.golden.yaml",
        "goldens/shared/deep/ok.golden.yaml",
        "goldens/sub/json.golden.json",
    ]
    assert code == 1, "the malformed golden in the symlinked folder fails, as under pytest"
    assert set(paths) == pytest_collects(tmp_path, "goldens")
    # the config's norecursedirs replaces pytest's default
    (tmp_path / "pytest.ini").write_text("[pytest]\nnorecursedirs = sub shared\n")
    code, paths = validated(tmp_path, "goldens")
    assert paths == [
        "goldens/.drafts/draft.golden.yaml",
        "goldens/build/built.golden.yaml",
        "goldens/local.golden.yaml",
        "goldens/node_modules/n.golden.yaml",
    ]
    assert set(paths) == pytest_collects(tmp_path, "goldens")
    for command in (("analyze", "--json"), ("upgrade", "--check")):
        result = opswald(*command, "goldens", cwd=tmp_path)
        assert "draft.golden.yaml" in result.stdout + result.stderr, command
        assert "json.golden.json" not in result.stdout + result.stderr, command


@pytest.mark.parametrize("mark", ["pyvenv.cfg", "bin/activate", "conda-meta/history"])
def test_validate_skips_the_virtualenvs_the_installed_pytest_skips(
    tmp_path: Path, mark: str
) -> None:
    """pytest 8.0 knows a virtualenv by its activate script, later versions by pyvenv.cfg
    (or conda's history): validate asks the pytest it runs beside, so the two agree."""
    (tmp_path / "goldens" / "env" / mark).parent.mkdir(parents=True)
    (tmp_path / "goldens" / "env" / mark).write_text("")
    (tmp_path / "goldens" / "env" / "v.golden.yaml").write_text("name: v\ninput: 1\n")
    (tmp_path / "goldens" / "a.golden.yaml").write_text("name: a\ninput: 1\n")
    _, paths = validated(tmp_path, "goldens")
    assert "goldens/a.golden.yaml" in paths
    assert set(paths) == pytest_collects(tmp_path, "goldens")


def test_folders_and_files_named_are_always_taken(tmp_path: Path) -> None:
    walked_project(tmp_path)
    named = ("goldens/.drafts", "goldens/build/built.golden.yaml", "goldens/local.golden.yaml")
    code, paths = validated(tmp_path, *named, "goldens/local.golden.yaml")
    assert code == 1
    assert paths == [
        "goldens/.drafts/draft.golden.yaml",
        "goldens/build/built.golden.yaml",
        "goldens/local.golden.yaml",
    ], "each path once"
    assert set(paths) == pytest_collects(tmp_path, *named)


def test_symlinks_back_into_the_walk_are_not_followed(tmp_path: Path) -> None:
    goldens = tmp_path / "goldens"
    (goldens / "sub").mkdir(parents=True)
    (goldens / "a.golden.yaml").write_text("name: a\ninput: 1\n")
    (goldens / "sub" / "b.golden.yaml").write_text("name: b\ninput: 1\n")
    (goldens / "again").symlink_to(".")
    (goldens / "sub" / "up").symlink_to("..")
    code, paths = validated(tmp_path, "goldens")
    assert code == 0
    assert paths == ["goldens/a.golden.yaml", "goldens/sub/b.golden.yaml"]


# -------------------------------------------------------------------------------- show


def test_show_the_flight_booking(snapshot: SnapshotAssertion) -> None:
    result = opswald("show", str(FLIGHT))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("book_cheapest_flight: 7 steps (3 LLM, 3 tool), 1,928 tokens")
    assert lines[1].split() == ["step", "type", "name", "tokens", "cost", "duration"]
    rows = [line.split() for line in lines[2:9]]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    assert rows[4][1:3] == ["tool_call", "book_flight"]
    assert rows[0][1:4] == ["llm_call", "sim-small", "350"]
    assert all(len(line) <= 80 for line in lines)
    assert result.stdout == snapshot


def test_show_a_malformed_golden(tmp_path: Path) -> None:
    path = tmp_path / "broken.golden.yaml"
    path.write_text(BROKEN_YAML)
    result = opswald("show", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}:5: step 1 › type: unknown step type")
    assert "Traceback" not in result.stderr


MISSING_PATH_COMMANDS = {
    "validate": ["validate", "{missing}"],
    "validate_json": ["validate", "--json", "{golden}", "{missing}"],
    "show": ["show", "{missing}"],
    "show_step": ["show", "--step", "1", "{missing}"],
    "diff_golden": ["diff", "{missing}", "{golden}"],
    "diff_actual": ["diff", "{golden}", "{missing}"],
    "diff_steps": ["diff", "{missing}", "--steps", "0", "1"],
    "analyze": ["analyze", "{golden}", "{missing}"],
    "upgrade": ["upgrade", "{missing}"],
    "upgrade_check": ["upgrade", "--check", "{missing}"],
    "replay": ["replay", "{missing}", "--adapter", "examples.travel_agent:run"],
    "serve": ["serve", "{missing}"],
    "html": ["html", "{missing}", "-o", "page.html"],
    "html_among_others": ["html", "{golden}", "{missing}", "-o", "page.html"],
    "html_actual": ["html", "{golden}", "--actual", "{missing}", "-o", "page.html"],
    "html_actual_dir": ["html", "{golden}", "--actual-dir", "{missing}", "-o", "page.html"],
    "golden_note": ["golden", "note", "{missing}", "a note"],
    "import": ["import", "otel", "{missing}", "-o", "imported"],
    "report_merge": ["report", "merge", "{missing}", "-o", "merged.json"],
}


@pytest.mark.parametrize("missing", ["nope.golden.yaml", "nope/"])
@pytest.mark.parametrize("argv", MISSING_PATH_COMMANDS.values(), ids=MISSING_PATH_COMMANDS)
def test_a_path_that_names_nothing_is_a_usage_error(
    tmp_path: Path, argv: list[str], missing: str
) -> None:
    """A path given that names nothing was read as one unreadable golden: validate said
    `error: nope: cannot read the file`, `0 valid, 1 invalid` and exited 1, and html wrote
    a page listing it. As `pytest nope` (`ERROR: file or directory not found`, exit 4,
    nothing run), it is a usage error: said as given (a folder's / kept), exit 4, nothing
    read or written, whatever else is named with it."""
    golden = tmp_path / "book.golden.yaml"
    shutil.copy(FLIGHT, golden)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(missing=missing, golden=golden.name) for a in argv]
    result = opswald(*args, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == f"error: file or folder not found: {missing}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no page, report, folder
    assert golden.read_bytes() == FLIGHT.read_bytes()


def test_each_path_that_names_nothing_is_said(tmp_path: Path) -> None:
    result = opswald("validate", "gone/", "goldens", "lost.golden.yaml", cwd=ROOT)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr.splitlines() == [
        "error: file or folder not found: gone/",
        "error: file or folder not found: lost.golden.yaml",
    ]


def test_a_dangling_symlink_is_an_unreadable_golden(tmp_path: Path) -> None:
    """A link to nothing names something, the link: read, and said unreadable (exit 1)."""
    link = tmp_path / "gone.golden.yaml"
    link.symlink_to(tmp_path / "elsewhere.golden.yaml")
    result = opswald("validate", str(link))
    assert result.returncode == 1
    assert f"error: {link}: cannot read the file: No such file" in result.stdout


def test_show_survives_strings_that_cannot_be_printed(tmp_path: Path) -> None:
    """JSON may escape a lone surrogate; `load` accepts it, so `show` must not crash on it."""
    path = tmp_path / "odd.golden.json"
    path.write_text(
        '{"name": "odd", "input": 1, "steps": [{"step": 1, "type": "tool_call",'
        ' "tool": "lookup", "input": {"who": "\\ud800"}}], "output": "\\udfff"}'
    )
    result = opswald("show", str(path))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1)
    if result.returncode == 0:
        assert "step 1 of 1" in result.stdout
    else:
        assert result.stderr.startswith(f"error: {path}")


def test_no_subcommand_is_a_usage_error() -> None:
    result = opswald()
    assert result.returncode == 2
    assert "usage: opswald" in result.stderr


def monorepo(root: Path, ini: str) -> None:
    """Goldens in tests/ (pytest's testpaths), in services/a and services/b, and in a root
    goldens/ and other/ folder that neither names."""
    stub = "name: {}\ninput: {{q: hi}}\n"
    for name in (
        "tests/t",
        "services/a/goldens/a",
        "services/b/goldens/b",
        "services/b/goldens/deep/b2",
        "goldens/root",
        "other/o",
    ):
        (root / f"{name}.golden.yaml").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.golden.yaml").write_text(stub.format(name.rsplit("/", 1)[-1]))
    (root / "pytest.ini").write_text(ini)


def test_validate_without_paths_checks_what_pytest_collects_without_paths(
    tmp_path: Path,
) -> None:
    """In the rootdir: testpaths and every folder of opswald_goldens (a glob expanded);
    in a subfolder: the goldens below it, as pytest run there."""
    monorepo(tmp_path, "[pytest]\ntestpaths = tests\nopswald_goldens = services/*/goldens\n")
    code, paths = validated(tmp_path)
    assert code == 0
    assert paths == [
        "tests/t.golden.yaml",
        "services/a/goldens/a.golden.yaml",
        "services/b/goldens/b.golden.yaml",
        "services/b/goldens/deep/b2.golden.yaml",
    ]
    assert set(paths) == pytest_collects(tmp_path)
    here = tmp_path / "services" / "b"
    code, paths = validated(here)
    assert paths == ["goldens/b.golden.yaml", "goldens/deep/b2.golden.yaml"]
    assert {f"services/b/{path}" for path in paths} == pytest_collects(here)


def test_validate_without_paths_warns_of_a_folder_the_ini_names_that_is_missing(
    tmp_path: Path,
) -> None:
    monorepo(
        tmp_path,
        "[pytest]\ntestpaths = tests\nopswald_goldens =\n    services/a/goldens\n    services/c\n",
    )
    result = opswald("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "2 valid, 0 invalid"
    assert result.stderr == (
        f"warning: opswald_goldens = services/c: no such file or folder under {tmp_path}; "
        "no goldens are collected from it\n"
    )
    result = opswald("validate", cwd=tmp_path / "other")  # a subfolder: its goldens only
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "ok: o.golden.yaml (stub (not recorded yet))",
        "1 valid, 0 invalid",
    ]


def test_report_merge_names_the_file_that_is_not_a_report(tmp_path: Path) -> None:
    """`report merge s1.json bad.json` said `input 2 is not an opswald JSON report`; the
    file is named as given, and no report is written."""
    (tmp_path / "s1.json").write_text('{"goldens": [], "total": 0}')
    (tmp_path / "bad.json").write_text('{"tests": []}')
    result = opswald("report", "merge", "s1.json", "bad.json", "-o", "m.json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        "error: bad.json is not an opswald JSON report (no 'goldens'); give the files "
        "--opswald-json wrote\n"
    )
    assert not (tmp_path / "m.json").exists()


def test_version() -> None:
    """QA (probe25 #8): `opswald --version` was refused ("the following arguments are
    required: command")."""
    from importlib.metadata import version

    result = opswald("--version")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"opswald {version('pytest-opswald')}\n"


def test_report_merge_of_a_file_that_is_not_json_says_so(tmp_path: Path) -> None:
    """QA (probe25 #6): a golden given to `report merge` got JSON's parser message alone
    (`Expecting value: line 1 column 1 (char 0)`)."""
    (tmp_path / "a.golden.yaml").write_text("name: a\ninput: {}\n")
    result = opswald("report", "merge", "a.golden.yaml", "-o", "m.json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        "error: a.golden.yaml:1:1: not JSON (Expecting value): not an opswald JSON report; "
        "give the files --opswald-json wrote\n"
    )
    assert not (tmp_path / "m.json").exists()


def test_html_refuses_actual_with_actual_dir_saying_so(tmp_path: Path) -> None:
    """QA (probe25 #5): `html G --actual A --actual-dir D` said --actual goes with exactly
    one GOLDEN file, which was what it was given."""
    shutil.copy(EXAMPLES / "refund.golden.yaml", tmp_path / "g.golden.yaml")
    (tmp_path / "a.actual.yaml").write_text((tmp_path / "g.golden.yaml").read_text())
    (tmp_path / "actual").mkdir()
    result = opswald(
        "html", "g.golden.yaml", "--actual", "a.actual.yaml", "--actual-dir", "actual",
        "-o", "page.html", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "error: --actual (one actual for one golden) and --actual-dir (the actuals of many) do "
        "not combine: give one of them\n"
    )
    assert not (tmp_path / "page.html").exists()


def test_report_merge_names_the_shards_a_golden_is_in(tmp_path: Path) -> None:
    row = '{"goldens": [{"name": "goldens/a.golden.yaml", "status": "passed"}]}'
    (tmp_path / "s1.json").write_text(row)
    (tmp_path / "s2.json").write_text('{"goldens": []}')
    (tmp_path / "s3.json").write_text(row)
    result = opswald(
        "report", "merge", "s1.json", "s2.json", "s3.json", "-o", "m.json", cwd=tmp_path
    )
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == (
        "error: goldens/a.golden.yaml is in two shards, s1.json and s3.json; shards must not "
        "overlap\n"
    )


def test_report_merge_refuses_a_report_given_twice(tmp_path: Path) -> None:
    """QA (probe27 #10): one file given twice read as two overlapping shards ("... is in
    two shards, s1.json and s1.json"); it is said as what it is."""
    row = '{"goldens": [{"name": "goldens/a.golden.yaml", "status": "passed"}]}'
    (tmp_path / "s1.json").write_text(row)
    result = opswald("report", "merge", "s1.json", "s1.json", "-o", "m.json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (4, "")
    assert result.stderr == "error: s1.json is given twice: give each shard's report once\n"
    result = opswald("report", "merge", "s1.json", "./s1.json", "-o", "m.json", cwd=tmp_path)
    assert result.returncode == 4
    assert result.stderr == (
        "error: ./s1.json is given twice (as s1.json): give each shard's report once\n"
    )
    assert not (tmp_path / "m.json").exists()


TWO_PROBLEMS = BROKEN_YAML.replace("output: done", "  - step: 2\n    type: tool_call\noutput: done")


def test_validate_shows_every_problem_of_a_golden_by_step_number(tmp_path: Path) -> None:
    """`validate` said the first problem and `(and 1 more problem)`, in text and JSON
    alike, so the other was said nowhere; and named the step `steps[0]` where the file
    says `step: 1`. Each problem is an `error:` line (`errors` in JSON), up to ten, then
    how many more."""
    (tmp_path / "two.golden.yaml").write_text(TWO_PROBLEMS)
    steps = "".join(f"  - step: {n}\n    type: bogus\n" for n in range(1, 13))
    (tmp_path / "many.golden.yaml").write_text(f"name: m\ninput: 1\nsteps:\n{steps}output: 1\n")
    result = opswald("validate", "many.golden.yaml", "two.golden.yaml", cwd=tmp_path)
    assert result.returncode == 1
    expected = "expected one of: user_input, llm_call, tool_call, state"
    assert result.stdout.splitlines() == [
        *(
            f"error: many.golden.yaml:{2 * n + 3}: step {n} › type: unknown step type 'bogus'; "
            + expected
            for n in range(1, 11)
        ),
        "error: many.golden.yaml: ... and 2 more problems",
        f"error: two.golden.yaml:5: step 1 › type: unknown step type 'tool_cal'; {expected}",
        "error: two.golden.yaml:7: step 2 › tool: required field is missing",
        "0 valid, 2 invalid",
    ]
    as_json = opswald("validate", "--json", "many.golden.yaml", "two.golden.yaml", cwd=tmp_path)
    many, two = json.loads(as_json.stdout)["goldens"]
    assert two["error"] == (
        f"two.golden.yaml:5: step 1 › type: unknown step type 'tool_cal'; {expected}"
    )
    assert two["errors"] == [
        two["error"],
        "two.golden.yaml:7: step 2 › tool: required field is missing",
    ]
    assert two["more_errors"] == 0
    assert len(many["errors"]) == 10 and many["more_errors"] == 2
    assert many["errors"][-1].startswith("many.golden.yaml:23: step 10 › type: ")


def test_report_merge_of_one_report_counts_in_the_singular(tmp_path: Path) -> None:
    row = {"name": "goldens/a.golden.yaml", "status": "passed"}
    (tmp_path / "s1.json").write_text(json.dumps({"goldens": [row]}))
    result = opswald("report", "merge", "s1.json", "-o", "m.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "merged 1 report: 1 golden, 1 passed, 0 failed -> m.json\n"
