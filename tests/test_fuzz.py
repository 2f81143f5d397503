"""Reliability of collection (DESIGN §6): malformed goldens, fuzzed.

Every test starts from a golden recorded by the real plugin, writes many mutated copies
beside it and runs `pytest --opswald-goldens` once over all of them. Whatever the
mutation, the run must go on: each golden that `opswald.files.load` refuses is exactly
one collection error naming its file, each golden it accepts is collected (it may pass
or fail, but is never a collection error), the untouched golden still passes, the exit
code is 1 when anything failed (never 2, 3 or 4), and neither pytest's INTERNALERROR nor
a traceback through our own code shows up in the output.
"""

from __future__ import annotations

import collections
import copy
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import opswald
from conftest import record
from opswald import files

VALID = "flight.golden.yaml"
VALID_ID = "goldens/flight.golden.yaml::book_flight"
# where opswald's code lives: `src/opswald` in an editable install, else site-packages
OUR_CODE = ("src/opswald", str(Path(opswald.__file__).parent))
_ERROR_LINE = re.compile(r"^ERROR goldens/(\S+?\.golden\.(?:yaml|yml|json))(?:::| - |\s*$)")

FUZZ = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # the same examples on every CI run; no flaky reds
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a pytest run
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


# When a hypothesis test fails, its pytest plugin imports libcst to suggest a patch, and
# libcst's import warns; under `filterwarnings = error` that would be an INTERNALERROR of
# the outer run instead of a readable failure.
HYPOTHESIS_REPORTING = pytest.mark.filterwarnings(
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
)

# ------------------------------------------------------------------------------ helpers


class _PlainDumper(yaml.SafeDumper):
    """Never writes an anchor: a mutation may put one object in two places."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def as_yaml(data: Any) -> bytes:
    text = yaml.dump(data, Dumper=_PlainDumper, allow_unicode=True, sort_keys=False)
    return text.encode("utf-8")


def as_json(data: Any, *, ascii_only: bool = False) -> bytes:
    return json.dumps(data, ensure_ascii=ascii_only, indent=1).encode("utf-8")


def changed(base: dict[str, Any], change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    change(data)
    return data


def write_batch(goldens: Path, batch: dict[str, bytes]) -> None:
    """Replace every golden but the recorded one with `batch`."""
    for path in goldens.iterdir():
        if path.name != VALID:
            path.unlink()
    for name, content in batch.items():
        (goldens / name).write_bytes(content)


def partition(goldens: Path, names: Iterable[str]) -> tuple[set[str], set[str]]:
    """(malformed, valid) by the loader's own judgement."""
    malformed: set[str] = set()
    valid: set[str] = set()
    for name in names:
        try:
            files.load(goldens / name)
        except files.GoldenLoadError:
            malformed.add(name)
        else:
            valid.add(name)
    return malformed, valid


def errored_files(lines: list[str]) -> collections.Counter[str]:
    """How often each golden file is named by an `ERROR goldens/<name>` summary line."""
    found = (_ERROR_LINE.match(line) for line in lines)
    return collections.Counter(match.group(1) for match in found if match)


def ran(lines: list[str], name: str) -> int:
    """How many summary lines report a test of golden file `name` as run."""
    pattern = re.compile(
        rf"^(?:PASSED|FAILED|XFAIL|XPASS|SKIPPED \[\d+\]) goldens/{re.escape(name)}\b"
    )
    return sum(1 for line in lines if pattern.match(line))


def check_run(
    result: pytest.RunResult, batch: dict[str, bytes], malformed: set[str]
) -> collections.Counter[str]:
    """The §6 guarantees for one run over `batch`; returns the files reported as errors."""
    out = result.stdout.str()
    lines = result.stdout.lines + result.stderr.lines
    assert "INTERNALERROR" not in out + result.stderr.str(), out[-6000:]
    internals = [line for line in lines if any(place in line for place in OUR_CODE)]
    assert not internals, "traceback through opswald's own code:\n" + "\n".join(internals[:20])
    errors = errored_files(result.stdout.lines)
    unexpected = {name: count for name, count in errors.items() if name not in malformed}
    assert not unexpected, "goldens that load() accepts were reported as errors: " + ", ".join(
        f"{name} ({batch[name][:300]!r})" for name in sorted(unexpected)
    )
    missing = sorted(malformed - set(errors))
    assert not missing, "malformed goldens not reported as an error: " + ", ".join(missing)
    repeated = sorted(name for name, count in errors.items() if count != 1)
    assert not repeated, "malformed goldens reported more than once: " + ", ".join(repeated)
    for name in malformed:
        pattern = re.compile(rf"malformed golden: \S*goldens/{re.escape(name)}\b")
        assert any(pattern.search(line) for line in lines), f"no 'malformed golden:' for {name}"
    not_run = sorted(name for name in set(batch) - malformed if ran(result.stdout.lines, name) != 1)
    assert not not_run, "valid goldens not run exactly once: " + ", ".join(not_run)
    assert f"PASSED {VALID_ID}" in result.stdout.lines, out[-6000:]
    assert result.parseoutcomes().get("errors", 0) == len(malformed)
    # 1 when anything failed or was malformed, else 0; never interrupted or a usage error
    failed = malformed or result.parseoutcomes().get("failed", 0)
    expected = pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK
    assert result.ret == expected, out[-6000:]
    return errors


def run_batch(
    project: pytest.Pytester, batch: dict[str, bytes], *args: str
) -> tuple[pytest.RunResult, set[str]]:
    goldens = project.path / "goldens"
    write_batch(goldens, batch)
    malformed, _ = partition(goldens, batch)
    result = project.runpytest("--opswald-goldens", "-rA", "-p", "no:cacheprovider", *args)
    return result, malformed


@pytest.fixture
def recorded(project: pytest.Pytester) -> tuple[pytest.Pytester, dict[str, Any], str]:
    """The project with its stub recorded: (pytester, the golden's data, its YAML text)."""
    record(project)
    path = project.path / "goldens" / VALID
    return project, files.load_data(path), path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- the fixed batch


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _drop(*path: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return change


def _rename(path: tuple[Any, ...], new: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        target[new] = target.pop(path[-1])

    return change


def _renumber(*numbers: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for step, number in zip(data["steps"], numbers, strict=False):
            step["step"] = number

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for one in changes:
            one(data)

    return change


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


STRUCTURAL: dict[str, Callable[[dict[str, Any]], None]] = {
    # dropped fields
    "drop_name": _drop("name"),
    "drop_input": _drop("input"),
    "drop_steps": _drop("steps"),
    "drop_steps_and_output": _both(_drop("steps"), _drop("output")),
    "drop_step_type": _drop("steps", 0, "type"),
    "drop_step_number": _drop("steps", 1, "step"),
    "drop_tool_name": _drop("steps", 1, "tool"),
    # renamed fields
    "rename_steps": _rename(("steps",), "step"),
    "rename_tool": _rename(("steps", 1, "tool"), "tool_name"),
    "rename_usage_to_openai_names": _both(
        _rename(("steps", 0, "usage", "input_tokens"), "prompt_tokens"),
        _rename(("steps", 0, "usage", "output_tokens"), "completion_tokens"),
    ),
    "rename_memory_to_an_extra": _rename(("steps", 2, "memory"), "plan"),
    "rename_to_unicode_key": _rename(("name",), "naмe"),
    # retyped fields
    "retype_tags": _set(("tags",), "critical"),
    "retype_steps": _set(("steps",), {"1": "llm_call"}),
    "retype_step": _set(("steps", 0), "llm_call"),
    "retype_usage": _set(("steps", 0, "usage", "input_tokens"), "forty"),
    "retype_metadata": _set(("metadata",), [1, 2]),
    "retype_schema_version": _set(("schema_version",), 2),
    "retype_duration": _set(("steps", 1, "duration_ms"), -1),
    "retype_expect_output": _set(("expect",), {"output": "sometimes"}),
    "retype_tool_output": _set(("steps", 1, "output"), 5),
    "retype_llm_output": _set(("steps", 0, "output"), ["not", "a", "mapping"]),
    "retype_error": _set(("steps", 1, "error"), {"message": "no type"}),
    # wrong step types
    "step_type_typo": _set(("steps", 1, "type"), "tool_cal"),
    "step_type_case": _set(("steps", 2, "type"), "State"),
    "step_type_number": _set(("steps", 0, "type"), 5),
    "step_type_swapped": _set(("steps", 1, "type"), "llm_call"),
    # step numbers
    "steps_swapped": _renumber(2, 1),
    "steps_from_zero": _renumber(0, 1, 2, 3, 4, 5, 6),
    "steps_repeated": _renumber(1, 1),
    "steps_with_a_gap": _renumber(1, 2, 4, 5, 6, 7, 8),
    "step_as_text": _set(("steps", 0, "step"), "one"),
    # huge numbers
    "huge_cost": _set(("steps", 0, "cost"), 10**400),
    "huge_step": _set(("steps", 0, "step"), 10**400),
    "huge_timeout": _set(("timeout",), 10**400),
    "huge_negative_duration": _set(("steps", 0, "duration_ms"), -(10**400)),
    "huge_usage": _set(("steps", 0, "usage", "input_tokens"), 10**400),
    "infinite_duration": _set(("steps", 0, "duration_ms"), float("inf")),
    # unicode
    "unicode_description": _set(("description",), "Réservation ✈ für Zoë 🚀 — 東京 \u202etxt"),
    "unicode_tool": _set(("steps", 1, "tool"), "lookup🔍"),
    "unicode_output": _set(("output", "answer"), "zero\u200bwidth\u2028line"),
    # nesting
    "nested_63_deep": _set(("metadata", "deep"), _nested(61)),
    "nested_65_deep": _set(("metadata", "deep"), _nested(66)),
}

ALIAS_BOMB = "\n".join(
    [
        "name: bomb",
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]"
            for i in range(8)
        ),
        "input: *i",
        "",
    ]
)


def fixed_batch(data: dict[str, Any], text: str) -> dict[str, bytes]:
    """About sixty malformed and odd-but-valid goldens made from the recorded one."""
    raw = text.encode("utf-8")
    unicode_text = as_yaml(changed(data, STRUCTURAL["unicode_description"])).decode("utf-8")
    unicode_raw = unicode_text.encode("utf-8")
    multibyte = unicode_raw.index("✈".encode())
    as_json_text = as_json(data)
    batch: dict[str, bytes] = {}
    for index, (label, change) in enumerate(STRUCTURAL.items()):
        content = changed(data, change)
        if index % 4 == 3:
            batch[f"s{index:02d}_{label}.golden.json"] = as_json(content, ascii_only=index % 8 == 3)
        else:
            batch[f"s{index:02d}_{label}.golden.yaml"] = as_yaml(content)
    batch.update(
        {
            # the same golden in the other spellings: valid
            "copy_as_yml.golden.yml": raw,
            "copy_as_json.golden.json": as_json_text,
            "copy_with_bom.golden.yaml": b"\xef\xbb\xbf" + raw,
            # raw-text mutations
            "nul_in_yaml.golden.yaml": raw.replace(b"seat: 12A", b"seat: 1\x002A", 1),
            "nul_in_json.golden.json": as_json_text.replace(b'"Alice"', b'"Al\x00ice"', 1),
            "invalid_utf8.golden.yaml": raw.replace(b"Alice", b"Al\xffice", 1),
            "invalid_utf8.golden.json": as_json_text.replace(b"Alice", b"Al\xc3(ice", 1),
            "latin1.golden.yaml": unicode_text.encode("latin-1", errors="replace"),
            "utf16.golden.yaml": text.encode("utf-16"),
            "cut_in_a_character.golden.yaml": unicode_raw[: multibyte + 1],
            "control_char.golden.yaml": raw.replace(b"Alice", b"Al\x07ice", 1),
            "tab_indent.golden.yaml": raw.replace(b"\n  who: Alice", b"\n\twho: Alice", 1),
            "duplicate_key.golden.yaml": raw + b"name: again\n",
            "duplicate_key.golden.json": as_json_text.replace(b"{", b'{"name": "x",', 1),
            "two_documents.golden.yaml": raw + b"---\nname: second\n",
            "python_tag.golden.yaml": raw.replace(
                b"input:\n", b"input: !!python/object/apply:os.system ['true']\nx:\n", 1
            ),
            "binary_tag.golden.yaml": raw.replace(b"who: Alice", b"who: !!binary QWxpY2U=", 1),
            "complex_key.golden.yaml": b"? [a, b]\n: 1\n" + raw,
            "alias_bomb.golden.yaml": ALIAS_BOMB.encode(),
            "deep_flow.golden.yaml": b"name: deep\ninput: " + b"[" * 10_000 + b"]" * 10_000,
            "deep_block.golden.yaml": b"name: deep\ninput:\n  " + b"- " * 10_000 + b"x\n",
            "deep_array.golden.json": b'{"name": "deep", "input": '
            + b"[" * 10_000
            + b"]" * 10_000
            + b"}",
            "deep_object.golden.json": b'{"name": "deep", "input": '
            + b'{"a": ' * 10_000
            + b"1"
            + b"}" * 10_000
            + b"}",
            "huge_int_5000_digits.golden.yaml": raw.replace(b"seat: 12A", b"seat: " + b"9" * 5000),
            "huge_int_5000_digits.golden.json": b'{"name": "x", "input": ' + b"9" * 5000 + b"}",
            "nan_duration.golden.json": b'{"name": "x", "steps": [{"step": 1, "type": "state",'
            b' "duration_ms": NaN}], "output": 1}',
            "empty.golden.yaml": b"",
            "empty.golden.json": b"",
            "only_a_comment.golden.yaml": b"# nothing here\n",
            "whitespace.golden.json": b" \n\t\n",
            "root_list.golden.yaml": b"- name: x\n- input: 1\n",
            "root_scalar.golden.json": b'"just a string"',
            "trailing_comma.golden.json": as_json_text.rstrip().rstrip(b"}") + b",}",
            "json_comment.golden.json": b"// a comment\n" + as_json_text,
            "not_json_at_all.golden.json": raw,
        }
    )
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        cut = int(len(raw) * fraction)
        batch[f"truncated_{int(fraction * 100):02d}.golden.yaml"] = raw[:cut]
        batch[f"truncated_{int(fraction * 100):02d}.golden.json"] = as_json_text[:cut]
    return batch


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["in_process", "xdist"])
def test_a_fixed_batch_of_malformed_goldens(
    recorded: tuple[pytest.Pytester, dict[str, Any], str], workers: list[str]
) -> None:
    project, data, text = recorded
    batch = fixed_batch(data, text)
    result, malformed = run_batch(project, batch, *workers)
    # the batch really exercises both sides of the partition
    assert len(malformed) >= 50
    assert {"copy_as_yml.golden.yml", "copy_as_json.golden.json"} <= set(batch) - malformed
    errors = check_run(result, batch, malformed)
    assert set(errors) == malformed


def test_every_malformed_yaml_golden_names_a_line(
    recorded: tuple[pytest.Pytester, dict[str, Any], str],
) -> None:
    """DESIGN §6: the error names the file, and the line for YAML."""
    project, data, text = recorded
    batch = fixed_batch(data, text)
    goldens = project.path / "goldens"
    write_batch(goldens, batch)
    without_line = []
    for name in sorted(batch):
        if not name.endswith((".yaml", ".yml")):
            continue
        try:
            files.load(goldens / name)
        except files.GoldenLoadError as err:
            if err.line is None or not str(err).startswith(f"{goldens / name}:{err.line}: "):
                without_line.append(f"{name}: {err}")
    assert not without_line, "YAML errors without a line:\n" + "\n".join(without_line)


# -------------------------------------------------------------------------- hypothesis

_FIELD_NAMES = sorted(
    {"name", "input", "steps", "output", "tags", "type", "step", "tool", "usage", "expect"}
    | {"memory", "metadata", "error", "cost", "duration_ms", "model", "prompt_tokens", "state"}
)
KEYS = st.text(max_size=8) | st.sampled_from(_FIELD_NAMES)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(
        [10**400, -(10**400), 0, -1, "", "tool_call", "state", "llm_call", "user_input", "\0"]
    )
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        found.append((*prefix, key))
        if isinstance(child, dict | list):
            found.extend(_paths(child, (*prefix, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> tuple[str, bytes]:
    """The recorded golden with one to three fields dropped, renamed or replaced."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = data
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        operation = draw(st.sampled_from(["drop", "rename", "replace", "replace"]))
        if operation == "drop":
            del parent[key]
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(key)
        else:
            parent[key] = draw(VALUES)
    if draw(st.booleans()):
        return "json", as_json(data, ascii_only=draw(st.booleans()))
    return "yaml", as_yaml(data)


DOCUMENTS = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(lambda text: text.encode("utf-8")),
    st.dictionaries(KEYS, VALUES, max_size=6).map(as_yaml),
    st.dictionaries(KEYS, VALUES, max_size=6).map(as_json),
    VALUES.map(as_yaml),
    VALUES.map(as_json),
)


@HYPOTHESIS_REPORTING
@FUZZ
@given(data=st.data())
def test_fuzzed_mutations_of_a_recorded_golden(
    recorded: tuple[pytest.Pytester, dict[str, Any], str], data: st.DataObject
) -> None:
    project, base, _ = recorded
    drawn = data.draw(st.lists(mutated(base), min_size=12, max_size=12), label="goldens")
    batch = {f"h{i:02d}.golden.{fmt}": content for i, (fmt, content) in enumerate(drawn)}
    result, malformed = run_batch(project, batch)
    check_run(result, batch, malformed)


@HYPOTHESIS_REPORTING
@FUZZ
@given(
    documents=st.lists(
        st.tuples(st.sampled_from(["yaml", "yml", "json"]), DOCUMENTS), min_size=15, max_size=15
    )
)
def test_fuzzed_documents(
    recorded: tuple[pytest.Pytester, dict[str, Any], str], documents: list[tuple[str, bytes]]
) -> None:
    project, _, _ = recorded
    batch = {f"r{i:02d}.golden.{ext}": content for i, (ext, content) in enumerate(documents)}
    result, malformed = run_batch(project, batch)
    check_run(result, batch, malformed)


# ------------------------------------------- goldens that load but trip the run (bugs)

ODD_BUT_VALID: dict[str, Callable[[dict[str, Any]], None]] = {
    "empty_tag": _set(("tags",), [""]),
    "underscore_tag": _set(("tags",), ["_private"]),
    "skip_tag": _set(("tags",), ["skip"]),
    "huge_recorded_duration": _set(("metadata", "duration_ms"), 10**400),
    "invalid_normalize_regex": _set(("expect",), {"requests": {"normalize": {"[": "<x>"}}}),
    "invalid_request_ignore_path": _set(("expect",), {"requests": {"ignore": ["[[["]}}),
    "invalid_ignore_args_path": _set(("expect",), {"tool_calls": {"ignore_args": ["["]}}),
    "lone_surrogate_in_name": _set(("name",), "\ud800"),
}


@pytest.mark.parametrize("label", list(ODD_BUT_VALID))
def test_goldens_that_load_never_crash_the_run(
    recorded: tuple[pytest.Pytester, dict[str, Any], str], label: str
) -> None:
    """A golden `load` accepts is collected and passes or fails cleanly (or `load` refuses it).

    Either way: no INTERNALERROR, no traceback through opswald, the rest of the run goes on.
    """
    project, data, _ = recorded
    content = as_json(changed(data, ODD_BUT_VALID[label]), ascii_only=True)
    batch = {f"{label}.golden.json": content}
    result, malformed = run_batch(project, batch)
    errors = check_run(result, batch, malformed)
    assert set(errors) == malformed


@pytest.mark.parametrize("tag", ["a:b", "x(y)"])
def test_tags_that_are_no_marker_name_under_strict_markers(
    recorded: tuple[pytest.Pytester, dict[str, Any], str], tag: str
) -> None:
    """Tags become markers, also under --strict-markers (README): a tag pytest cannot
    register must be refused by `load` as a malformed golden, or work."""
    project, data, _ = recorded
    batch = {"tagged.golden.yaml": as_yaml(changed(data, _set(("tags",), ["critical", tag])))}
    result, malformed = run_batch(project, batch, "--strict-markers")
    errors = check_run(result, batch, malformed)
    assert set(errors) == malformed
