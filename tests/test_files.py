"""Golden files: safe loading, canonical dumping, atomic writes."""

from __future__ import annotations

import datetime
import json
import os
import pickle
import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opswald import files, suffixes
from opswald.files import GoldenLoadError
from opswald.session import SCHEMA_URL, Session

SAMPLE: dict[str, Any] = {
    "name": "refund_flow",
    "description": "A customer asks for a refund.",
    "tags": ["critical"],
    "input": {"question": "Can I get a refund?", "order": 1234, "ratio": 0.1},
    "steps": [
        {"step": 1, "type": "user_input", "content": "Héllo"},
        {
            "step": 2,
            "type": "llm_call",
            "provider": "openai",
            "model": "gpt-4o",
            "input": {"messages": [{"role": "user", "content": "Can I get a refund?"}]},
            "output": {"content": "Let me check.", "finish_reason": "tool_calls"},
            "usage": {"input_tokens": 12, "output_tokens": 5},
            "cost": 0.00123,
            "duration_ms": 350.5,
        },
        {
            "step": 3,
            "type": "tool_call",
            "tool": "lookup_order",
            "call_id": "call_1",
            "input": {"order": 1234},
            "output": {"status": "shipped", "items": [1, 2]},
        },
        {"step": 4, "type": "state", "memory": {"facts": ["shipped"]}, "plan": ["reply"]},
    ],
    "output": "Your order has shipped, so a refund is possible.",
}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_error(path: Path) -> GoldenLoadError:
    with pytest.raises(GoldenLoadError) as excinfo:
        files.load(path)
    return excinfo.value


def assert_at(err: GoldenLoadError, path: Path, line: int) -> None:
    assert str(err).startswith(f"{path}:{line}: "), str(err)
    assert err.path == path
    assert err.line == line
    assert "https://" not in str(err)


# ------------------------------------------------------------------------ round trips


def test_yaml_round_trip(tmp_path: Path) -> None:
    session = Session.model_validate(SAMPLE)
    path = tmp_path / "refund.golden.yaml"
    files.dump(session, path)
    loaded = files.load(path)
    assert files.to_data(loaded) == files.to_data(session)
    assert path.read_text(encoding="utf-8") == files.dumps(session)
    assert files.dumps(loaded) == files.dumps(session)
    assert loaded.steps is not None and loaded.steps[3].model_extra == {"plan": ["reply"]}


def test_dump_makes_missing_folders(tmp_path: Path) -> None:
    """`opswald.dump(session, "goldens/new/x.golden.yaml")` in a fresh project (the
    importers' snippet) writes the file, as `opswald.record` does."""
    session = Session.model_validate(SAMPLE)
    path = tmp_path / "goldens" / "imported" / "refund.golden.yaml"
    files.dump(session, path)
    assert path.read_text(encoding="utf-8") == files.dumps(session)
    assert [p.name for p in path.parent.iterdir()] == ["refund.golden.yaml"]


def test_json_round_trip(tmp_path: Path) -> None:
    session = Session.model_validate(SAMPLE)
    path = tmp_path / "refund.golden.json"
    files.dump(session, path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith('{\n  "schema_version": 1,\n  "name": "refund_flow",')
    assert text.endswith("}\n")
    assert "Héllo" in text  # not \u00e9
    loaded = files.load(path)
    assert files.dumps(loaded, "json") == text
    assert files.dumps(loaded) == files.dumps(session)


def _strict_json(text: str) -> Any:
    """`text` read as JSON is (RFC 8259): `Infinity` and `NaN` are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


NON_FINITE: dict[str, Any] = {
    "name": "ratio",
    "input": {"limit": float("inf"), "text": "NaN", "words": ["Infinity", "-Infinity"]},
    "steps": [
        {
            "step": 1,
            "type": "tool_call",
            "tool": "ratio",
            "input": {"a": 1.0, "b": 0.0, "xs": [float("-inf"), 2.5]},
            "output": float("inf"),
        },
        {
            "step": 2,
            "type": "tool_call",
            "tool": "stats",
            "input": {},
            # mappings that look like the encoding of NaN are kept as mappings
            "output": {
                "mean": float("nan"),
                "tagged": {"$float": "NaN"},
                "escaped": {"$$float": "NaN", "$float": 1},
                "other": {"$float": "Infinity", "n": -0.0},
            },
        },
        {"step": 3, "type": "state", "memory": {"low": float("-inf"), "mean": float("nan")}},
    ],
    "output": [float("nan"), float("inf"), float("-inf"), 1e308],
}


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, and -0.0 apart from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or (a == b and str(a) == str(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_non_finite_floats_make_valid_json_read_back_to_the_same_floats(tmp_path: Path) -> None:
    """Infinity is written `1e999` (what JSON parsers read as infinity), NaN as
    `{"$float": "NaN"}`; a mapping of the data shaped like that stays a mapping."""
    session = Session.model_validate(NON_FINITE)
    path = tmp_path / "ratio.golden.json"
    files.dump(session, path)
    text = path.read_text()
    data = _strict_json(text)
    assert data["steps"][0]["output"] == float("inf")  # any JSON parser's infinity
    assert data["steps"][0]["input"]["xs"][0] == float("-inf")
    assert data["steps"][1]["output"]["mean"] == {"$float": "NaN"}
    assert data["steps"][1]["output"]["tagged"] == {"$$float": "NaN"}
    assert '"output": 1e999' in text and '"low": -1e999' in text
    loaded = files.load(path)
    assert _same(files.to_data(loaded), files.to_data(session))
    assert _same(loaded.step_list[1].output["escaped"], {"$$float": "NaN", "$float": 1})
    assert files.dumps(loaded, "json") == text
    # YAML has its own: unchanged
    assert "output: .inf" in files.dumps(session, "yaml")
    assert "mean: .nan" in files.dumps(session, "yaml")
    again = files.loads(files.dumps(session, "yaml"), fmt="yaml")
    assert _same(files.to_data(again), files.to_data(session))
    # a JSON golden written before, with bare Infinity and NaN, still loads
    old = (
        '{"name": "ratio", "steps": [{"step": 1, "type": "tool_call", "tool": "ratio",\n'
        '"input": {}, "output": {"r": Infinity, "m": NaN, "l": -Infinity}}]}'
    )
    output = files.load(write(tmp_path, "old.golden.json", old)).step_list[0].output
    assert _same(output, {"r": float("inf"), "m": float("nan"), "l": float("-inf")})


_KEYS = st.sampled_from(["$float", "$$float", "$$$float", "float", "$", "a", "NaN"])
_FLOAT_DATA = st.recursive(
    st.floats() | st.integers() | st.booleans() | st.none() | st.sampled_from(["NaN", "$float"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(data=_FLOAT_DATA, indent=st.sampled_from([None, 2]))
def test_json_text_is_json_and_reads_back_as_it_was(data: Any, indent: int | None) -> None:
    from opswald import jsontext

    text = jsontext.dumps(data, indent=indent)
    _strict_json(text)
    assert _same(jsontext.loads(text), data)


def test_multiline_strings_are_literal_blocks() -> None:
    session = Session.model_validate(
        {"name": "n", "input": "first line\nsecond line\n", "steps": [], "output": "a\nb"}
    )
    text = files.dumps(session)
    assert "input: |\n  first line\n  second line\n" in text
    assert "output: |-\n  a\n  b\n" in text
    assert files.loads(text).input == "first line\nsecond line\n"


def test_key_order_is_schema_order_and_data_order_is_kept() -> None:
    data = {**SAMPLE, "input": {"zeta": 1, "alpha": 2}, "metadata": {"b": 1, "a": 2}}
    text = files.dumps(Session.model_validate(data))
    lines = text.splitlines()
    assert lines[0] == f"# yaml-language-server: $schema={SCHEMA_URL}"
    top = [m.group(1) for m in map(re.compile(r"^(\w+):").match, lines) if m]
    assert top == [
        *("schema_version", "name", "description", "tags", "metadata", "input"),
        *("steps", "output"),
    ]
    assert text.index("zeta: 1") < text.index("alpha: 2")
    assert "steps:\n  - step: 1\n    type: user_input\n    content: Héllo\n" in text
    as_json = json.loads(files.dumps(Session.model_validate(data), "json"))
    assert list(as_json["steps"][1])[:4] == ["step", "type", "duration_ms", "provider"]
    assert list(as_json["metadata"]) == ["b", "a"]


def test_defaults_are_left_out_but_kept_fields_stay() -> None:
    session = Session.model_validate(
        {
            "name": "n",
            "steps": [
                {"step": 1, "type": "user_input"},
                {"step": 2, "type": "tool_call", "tool": "t"},
                {"step": 3, "type": "llm_call", "output": {}},
            ],
        }
    )
    data = files.to_data(session)
    assert data == {
        "schema_version": 1,
        "name": "n",
        "steps": [
            {"step": 1, "type": "user_input", "content": None},
            {"step": 2, "type": "tool_call", "tool": "t", "input": None, "output": None},
            {"step": 3, "type": "llm_call", "output": {}},
        ],
        "output": None,
    }


def test_timestamps_stay_strings() -> None:
    text = (
        "name: n\n"
        "input: {day: 2024-05-01, at: 2024-05-01T10:00:00Z}\n"
        "steps:\n"
        "  - step: 1\n"
        "    type: user_input\n"
        "    timestamp: 2024-05-01T10:00:00.5+02:00\n"
        "    content: hi\n"
        "output: null\n"
    )
    session = files.loads(text)
    assert session.input == {"day": "2024-05-01", "at": "2024-05-01T10:00:00Z"}
    assert session.steps is not None and session.steps[0].timestamp == "2024-05-01T10:00:00.5+02:00"
    dumped = files.dumps(session)
    assert "day: '2024-05-01'" in dumped
    assert files.loads(dumped).input == session.input
    # PyYAML's own loaders are untouched.
    assert not isinstance(yaml.safe_load("d: 2024-05-01")["d"], str)


def test_strings_that_look_like_other_types_stay_strings() -> None:
    tricky = ["null", "~", "yes", "No", "on", "1e3", "1.0", "0x1F", "1_000", "12:30", "=", "<<"]
    session = Session.model_validate({"name": "n", "input": tricky, "steps": [], "output": "true"})
    for fmt in ("yaml", "json"):
        again = files.loads(files.dumps(session, fmt), fmt=fmt)
        assert again.input == tricky
        assert again.output == "true"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet="yYnNtTfFoOelsuaE0123456789.-+_~:", min_size=1, max_size=7)))
def test_plain_scalars_read_as_pyyaml_reads_them(words: list[str]) -> None:
    """Every shortcut past PyYAML's resolver (strings by first character, plain numbers,
    remembered tags) gives what PyYAML's safe loader gives; dates stay text by design."""
    text = "input:\n" + "".join(f"  - {word}\n" for word in words) + "name: n\n"
    try:
        expected = yaml.load(text, Loader=yaml.CSafeLoader)["input"] or []
    except yaml.YAMLError:
        return  # not a list of plain scalars after all (`- -`): refused either way
    if any(isinstance(v, dict | list) for v in expected):
        return  # `- 0:` is a mapping, whose keys opswald keeps as written
    pairs = zip(words, expected, strict=True)
    expected = [str(w) if isinstance(v, datetime.date) else v for w, v in pairs]
    for _ in range(2):  # the second read meets the remembered tags
        got = files._yaml_data(text, files.DEFAULT_MAX_DEPTH)["input"] or []
        assert [(type(v), v) for v in got] == [
            (type(v), v) if v == v else (float, got[i]) for i, v in enumerate(expected)
        ]


def test_yaml_keys_are_kept_as_written() -> None:
    session = files.loads("name: n\ninput: {on: 1, 1: x, null: y}\n")
    assert session.input == {"on": 1, "1": "x", "null": "y"}


def test_prompt_tokens_alias_loads_and_is_written_as_input_tokens() -> None:
    text = (
        "name: n\nsteps:\n  - step: 1\n    type: llm_call\n"
        "    usage: {prompt_tokens: 7, completion_tokens: 3}\noutput: x\n"
    )
    session = files.loads(text)
    assert session.steps is not None
    step = session.steps[0]
    assert step.type == "llm_call" and step.usage is not None
    assert (step.usage.input_tokens, step.usage.output_tokens) == (7, 3)
    dumped = files.dumps(session)
    assert "input_tokens: 7" in dumped and "output_tokens: 3" in dumped
    assert "prompt_tokens" not in dumped and "completion_tokens" not in dumped


def test_stub_and_empty_steps_stay_distinct() -> None:
    stub = files.loads("name: n\ninput: {q: 1}\n")
    empty = files.loads("name: n\ninput: {q: 1}\nsteps: []\n")
    assert stub.is_stub and not empty.is_stub
    assert "output" not in files.to_data(stub)
    assert files.to_data(empty)["steps"] == [] and files.to_data(empty)["output"] is None
    for fmt in ("yaml", "json"):
        assert files.loads(files.dumps(stub, fmt), fmt=fmt).is_stub
        again = files.loads(files.dumps(empty, fmt), fmt=fmt)
        assert not again.is_stub and again.steps == []


def test_dump_never_writes_anchors() -> None:
    shared = {"a": [1, 2]}
    session = Session.model_validate({"name": "n", "input": [shared, shared], "steps": []})
    text = files.dumps(session)
    assert "&" not in text and "*" not in text
    assert files.loads(text).input == [shared, shared]


def test_tuples_and_odd_keys_become_json_data() -> None:
    session = Session.model_validate({"name": "n", "input": {"t": (1, (2, 3)), "k": {1: "x"}}})
    assert files.to_data(session)["input"] == {"t": [1, [2, 3]], "k": {"1": "x"}}


def test_load_data_returns_plain_data_without_validation(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: n\nbogus: [1, 2.5, true, null]\n")
    assert files.load_data(path) == {"name": "n", "bogus": [1, 2.5, True, None]}


def test_is_golden_path() -> None:
    assert suffixes.is_golden_path("goldens/refund.golden.yaml")
    assert suffixes.is_golden_path(Path("a.golden.yml"))
    assert suffixes.is_golden_path("a.golden.json")
    assert not suffixes.is_golden_path("a.yaml")
    assert not suffixes.is_golden_path(".a.golden.yaml.1f2e3d.opswald-tmp")
    assert not suffixes.is_golden_path(".golden.yaml")


# ------------------------------------------------------------------------- rejections


def test_bad_yaml_syntax(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: x\ninput: [1, 2\noutput: 3\n")
    err = load_error(path)
    assert "invalid YAML" in err.message
    assert err.line is not None and err.line >= 3
    assert str(err).startswith(f"{path}:{err.line}: invalid YAML")


def test_schema_violation_names_field_and_line(tmp_path: Path) -> None:
    text = (
        "name: x\ninput: 1\nsteps:\n  - step: 1\n    type: tool_call\n    tool: t\n"
        "    duration_ms: fast\noutput: 1\n"
    )
    err = load_error(write(tmp_path, "x.golden.yaml", text))
    assert_at(err, tmp_path / "x.golden.yaml", 7)
    assert err.field == "step 1 › duration_ms"
    assert 'got "fast"' in err.message


def test_unknown_step_type_message(tmp_path: Path) -> None:
    steps = "".join(f"  - step: {i}\n    type: state\n" for i in range(1, 4))
    text = f"name: x\ninput: 1\nsteps:\n{steps}  - step: 4\n    type: tool_cal\noutput: 1\n"
    path = write(tmp_path, "x.golden.yaml", text)
    err = load_error(path)
    assert str(err) == (
        f"{path}:11: step 4 › type: unknown step type 'tool_cal'; "
        "expected one of: user_input, llm_call, tool_call, state"
    )
    assert (err.line, err.field) == (11, "step 4 › type")


def test_missing_type_and_missing_field_point_at_the_step(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - step: 1\n    tool: t\n  - step: 2\n    type: tool_call\n"
    path = write(tmp_path, "x.golden.yaml", text)
    err = load_error(path)
    assert_at(err, path, 3)
    assert err.field == "step 1 › type"
    assert "no `type`" in err.message
    # the other problem is its own line, not `(and 1 more problem)`
    assert str(err).splitlines()[1] == f"{path}:5: step 2 › tool: required field is missing"
    path = write(
        tmp_path,
        "y.golden.json",
        '{"name": "x",\n "steps": [\n  {"step": 1,\n   "type": "tool_call"}]}',
    )
    err = load_error(path)
    assert_at(err, path, 3)
    assert str(err).endswith("step 1 › tool: required field is missing")


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - step: 1\n    type: tool_call\n    tool: t\n    ouput: 1\n"
    path = write(tmp_path, "x.golden.yaml", text)
    err = load_error(path)
    assert_at(err, path, 6)
    assert err.field == "step 1 › ouput"
    assert "did you mean 'output'?" in err.message


def test_alias_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: &n x\ninput: 1\ndescription: *n\n")
    err = load_error(path)
    assert_at(err, path, 3)
    assert "alias" in err.message


def test_alias_bomb_rejected_cheaply(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path, "bomb.golden.yaml", "\n".join(lines) + "\n")
    err = load_error(path)
    assert_at(err, path, 2)
    with pytest.raises(GoldenLoadError):
        files.load_data(path)


def test_duplicate_key_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: x\ninput:\n  a: 1\n  b: 2\n  a: 3\n")
    err = load_error(path)
    assert_at(err, path, 5)
    assert err.field == "input.a"
    assert "duplicate key 'a'" in err.message and "line 3" in err.message


def test_duplicate_key_json(tmp_path: Path) -> None:
    text = '{\n  "name": "x",\n  "input": {"a": 1},\n  "name": "y"\n}\n'
    path = write(tmp_path, "x.golden.json", text)
    err = load_error(path)
    assert_at(err, path, 4)
    assert "duplicate key 'name'" in err.message and "line 2" in err.message


def test_deep_nesting_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: x\ninput: " + "[" * 10_000 + "]" * 10_000)
    err = load_error(path)
    assert_at(err, path, 2)
    # our own depth check, or the parser's own limit in newer PyYAML releases
    assert "deeper than 64" in err.message or "maximum nesting depth" in err.message
    deep = write(tmp_path, "d.golden.yaml", "name: x\ninput: " + "[" * 200 + "]" * 200)
    with pytest.raises(GoldenLoadError, match="deeper than 64"):
        files.load_data(deep)
    assert files.load_data(deep, max_depth=500)["input"] is not None


def test_deep_nesting_json(tmp_path: Path) -> None:
    text = '{"name": "x",\n "input": ' + "[" * 10_000 + "]" * 10_000 + "}"
    path = write(tmp_path, "x.golden.json", text)
    err = load_error(path)
    assert_at(err, path, 2)
    assert "deeper than 64" in err.message
    shallow = write(tmp_path, "y.golden.json", '{"name": "x",\n "input": [[[[1]]]]}')
    with pytest.raises(GoldenLoadError, match=r"y\.golden\.json:2: nested deeper than 3"):
        files.load(shallow, max_depth=3)
    # the boundary: the root mapping is level 1, the innermost list level 5
    assert files.load_data(shallow, max_depth=5)["input"] == [[[[1]]]]
    with pytest.raises(GoldenLoadError, match="nested deeper than 4"):
        files.load_data(shallow, max_depth=4)
    mixed = write(tmp_path, "z.golden.json", '{"name": "x", "input": [{"a": [{"b": {}}]}]}')
    assert files.load_data(mixed, max_depth=6)["input"] == [{"a": [{"b": {}}]}]
    with pytest.raises(GoldenLoadError, match="nested deeper than 5"):
        files.load_data(mixed, max_depth=5)


def test_oversized_file_rejected_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.golden.yaml"
    with path.open("wb") as handle:
        handle.truncate(200 * 1024 * 1024)
    err = load_error(path)
    assert str(err).startswith(f"{path}: file is 209,715,200 bytes (200.0 MB)")
    assert "20,971,520 bytes (20.0 MB)" in err.message
    small = write(tmp_path, "small.golden.yaml", "name: x\n")
    with pytest.raises(GoldenLoadError, match="over the limit of 4 bytes"):
        files.load(small, max_bytes=4)


def test_a_file_grown_after_its_size_was_read_is_read_whole_up_to_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read is sized from the stat; a golden written to between the stat and the read
    is still read to its end, and one that grew over the cap is still refused."""
    text = "name: grown\ninput:\n  question: " + "x" * 5000 + "\n"
    path = write(tmp_path, "grown.golden.yaml", text)
    real_stat = os.stat

    def stale_stat(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        st = real_stat(target, *args, **kwargs)
        if os.fspath(target) != os.fspath(path):
            return st
        fields = list(st)
        fields[stat.ST_SIZE] = 10  # the size before the writer appended the rest
        return os.stat_result(fields)

    monkeypatch.setattr(files.os, "stat", stale_stat)
    assert files.load_data(path)["input"] == {"question": "x" * 5000}
    with pytest.raises(GoldenLoadError, match="over the limit of 1,000 bytes"):
        files.load_data(path, max_bytes=1000)


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", b"name: x\ninput: caf\xe9\n")
    err = load_error(path)
    assert_at(err, path, 2)
    assert "UTF-8" in err.message and "0xe9" in err.message


def test_nul_bytes(tmp_path: Path) -> None:
    for name in ("x.golden.yaml", "x.golden.json"):
        path = write(tmp_path, name, b'{"name": "x",\n"input": "a\x00b"}\n')
        err = load_error(path)
        assert_at(err, path, 2)
        assert "NUL" in err.message


def test_control_characters_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: x\ninput: a\x07b\n")
    err = load_error(path)
    assert_at(err, path, 2)
    assert "U+0007" in err.message


def test_empty_file(tmp_path: Path) -> None:
    for name in ("x.golden.yaml", "x.golden.json"):
        err = load_error(write(tmp_path, name, ""))
        assert_at(err, tmp_path / name, 1)
        assert "empty file" in err.message and "mapping" in err.message
    err = load_error(write(tmp_path, "c.golden.yaml", "# just a comment\n---\n"))
    assert "empty document" in err.message


def test_list_at_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "# a list\n- name: x\n")
    err = load_error(path)
    assert_at(err, path, 2)
    assert "must be a mapping" in err.message and "not a list" in err.message
    path = write(tmp_path, "x.golden.json", '\n\n["x"]')
    assert_at(load_error(path), path, 3)


def test_two_yaml_documents(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: a\ninput: 1\n---\nname: b\n")
    err = load_error(path)
    assert_at(err, path, 3)
    assert "document" in err.message


def test_unsupported_tags(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "name: x\ninput: !!binary aGk=\n")
    err = load_error(path)
    assert_at(err, path, 2)
    assert "!!binary" in err.message
    path = write(tmp_path, "y.golden.yaml", "name: x\ninput: !!python/object:os.system {}\n")
    assert_at(load_error(path), path, 2)


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    err = load_error(tmp_path / "nope.golden.yaml")
    assert "cannot read" in err.message
    assert isinstance(err.__cause__, FileNotFoundError)


def test_loads_names_its_source() -> None:
    with pytest.raises(GoldenLoadError) as excinfo:
        files.loads("name: [1]\n", source="inline")
    assert str(excinfo.value) == "inline:1: name: Input should be a valid string (got a list)"
    assert excinfo.value.path is None


def test_error_text_and_pickling() -> None:
    assert str(GoldenLoadError("broken")) == "broken"
    assert str(GoldenLoadError("broken", path="g/x.golden.yaml")) == "g/x.golden.yaml: broken"
    err = GoldenLoadError("bad", path="./x.golden.yaml", line=3, field="name")
    assert str(err) == "./x.golden.yaml:3: name: bad"
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.line, again.field, again.path) == (str(err), 3, "name", err.path)


def test_pure_python_loader_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    class PureLoader(yaml.SafeLoader):
        pass

    PureLoader.yaml_implicit_resolvers = files._GoldenLoader.yaml_implicit_resolvers
    text = files.dumps(Session.model_validate(SAMPLE))
    expected = files.to_data(files.loads(text))
    monkeypatch.setattr(files, "_GoldenLoader", PureLoader)
    assert files.to_data(files.loads(text)) == expected
    for bad, line in [("a: &x 1\nb: *x\n", 2), ("a: 1\n" + "[" * 5000, 2), ("a: b\x07\n", 1)]:
        with pytest.raises(GoldenLoadError) as excinfo:
            files.loads(bad)
        assert excinfo.value.line == line


# ----------------------------------------------------------------------- atomic write


def test_atomic_write_keeps_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = write(tmp_path, "x.golden.yaml", "old\n")
    os.chmod(path, 0o640)
    files.dump(Session.model_validate(SAMPLE), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert files.load(path).name == "refund_flow"
    assert [p.name for p in tmp_path.iterdir()] == ["x.golden.yaml"]
    files.atomic_write_text(tmp_path / "new.txt", "fresh")
    assert (tmp_path / "new.txt").read_text(encoding="utf-8") == "fresh"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "x.golden.yaml"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "x.golden.yaml", "old content\n")
    seen: list[str] = []

    def broken_replace(src: str, dst: str) -> None:
        seen.append(os.path.basename(src))
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        files.dump(Session.model_validate(SAMPLE), path)
    assert path.read_text(encoding="utf-8") == "old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.golden.yaml"]
    assert seen and seen[0].startswith(".x.golden.yaml.") and seen[0].endswith(".opswald-tmp")
    assert not suffixes.is_golden_path(seen[0])


@pytest.mark.parametrize("stem", ["f" * 230, "é" * 120, "x"], ids=["long", "multibyte", "short"])
def test_a_file_with_a_name_near_the_limit_is_written_through_a_temp_file_that_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stem: str
) -> None:
    """A name of up to 255 bytes can be written: its temp file beside it is cut to fit,
    stays hidden and unique, is never a golden, and the stale-file cleanup knows it."""
    path = write(tmp_path, f"{stem}.golden.yaml", "old\n")
    seen: list[str] = []
    replace = os.replace

    def spying_replace(src: str, dst: str) -> None:
        seen.append(os.path.basename(src))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", spying_replace)
    files.dump(Session.model_validate(SAMPLE), path)
    files.dump(Session.model_validate(SAMPLE), path)
    assert files.load(path).name == "refund_flow"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert len(seen) == 2 and seen[0] != seen[1]
    for name in seen:
        assert len(name.encode()) <= 255, name
        assert name.startswith("." + path.name[:20]) and name.endswith(".opswald-tmp")
        assert not suffixes.is_golden_path(name)
        left = tmp_path / name  # as a killed write would leave it
        left.write_text("x")
        os.utime(left, (time.time() - 600, time.time() - 600))
        assert files.remove_if_stale_temp(left) and not left.exists()
    if stem == "x":  # a short name's temp file keeps the whole name
        assert seen[0].startswith(".x.golden.yaml.")


# ------------------------------------------------------------------- property: stable


TRICKY = [
    *("", " ", "null", "Null", "~", "yes", "no", "on", "true", "1e3", "1.0", "-.5", "0x1F"),
    *("0o17", "1_000", "12:30", "2024-01-01", "2024-01-01T10:00:00Z", "=", "<<", "-", "- x"),
    *(":", "a: b", "#x", "x #y", "'", '"', "*a", "&a", "!x", "%x", "@x", "`x", "|", ">"),
    *("...", "---", " lead", "trail ", "a\nb", "a\n", "\n", "\n\n", " a\nb", "a \nb", "a\n "),
    *("a\r\nb", "\t", "x\x85y", "x\u2028y", "é", "\U0001f600", "\ufeff", "a" * 130, "\x00"),
]
texts = st.one_of(st.sampled_from(TRICKY), st.text(max_size=20))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_data = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=10,
)
user_steps = st.fixed_dictionaries(
    {"type": st.just("user_input")}, optional={"content": json_data, "description": texts}
)
llm_steps = st.fixed_dictionaries(
    {"type": st.just("llm_call")},
    optional={
        "model": texts,
        "input": st.fixed_dictionaries(
            {},
            optional={
                "messages": st.lists(json_data, max_size=3),
                "params": st.dictionaries(texts, json_data, max_size=3),
            },
        ),
        "output": st.fixed_dictionaries(
            {}, optional={"content": json_data, "finish_reason": texts}
        ),
        "usage": st.fixed_dictionaries(
            {}, optional={"prompt_tokens": st.integers(0, 10**6), "output_tokens": st.integers()}
        ),
        "cost": st.floats(0, 100),
        "raw": json_data,
    },
)
tool_steps = st.fixed_dictionaries(
    {"type": st.just("tool_call"), "tool": texts},
    optional={
        "call_id": texts,
        "input": json_data,
        "output": json_data,
        "error": st.fixed_dictionaries({"type": texts}, optional={"message": texts}),
        "duration_ms": st.floats(0, 1e9),
    },
)
state_steps = st.fixed_dictionaries(
    {"type": st.just("state")},
    optional={"memory": json_data, "variables": json_data, "scratchpad": json_data},
)
expects = st.sampled_from(
    [{}, {"output": "contains"}, {"budgets": {"cost": 0.5}}, {"state": ["memory.x"]}]
)


@st.composite
def sessions(draw: st.DrawFn) -> Session:
    data = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "name": texts,
                "tags": st.lists(
                    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True), max_size=3
                ),
                "metadata": st.dictionaries(texts, json_data, max_size=3),
                "input": json_data,
                "steps": st.lists(
                    st.one_of(user_steps, llm_steps, tool_steps, state_steps), max_size=5
                ),
                "output": json_data,
                "expect": expects,
            },
        )
    )
    for number, step in enumerate(data.get("steps", []), start=1):
        step["step"] = number
    return Session.model_validate(data)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=sessions())
def test_dumps_loads_dumps_is_stable(fmt: files.Format, session: Session) -> None:
    text = files.dumps(session, fmt)
    assert files.dumps(session, fmt) == text
    again = files.loads(text, fmt=fmt)
    assert files.dumps(again, fmt) == text
    assert files.to_data(again) == files.to_data(session)
    assert again.is_stub == session.is_stub
    assert files.dumps(again, "yaml") == files.dumps(session, "yaml")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    session=sessions(),
    words=st.lists(st.text(alphabet="yYnNoOfFeEsS0123456789.-+_~:x", min_size=1, max_size=7)),
)
def test_what_the_writer_writes_reads_alike_in_yaml_1_1_and_1_2(
    session: Session, words: list[str]
) -> None:
    """`opswald validate` warns of no value the writer wrote (it quotes what YAML 1.1 and
    1.2 would read apart); written unquoted, the same words are warned of exactly when
    the two readings differ."""
    session.output = words
    text = files.dumps(session)
    assert files.yaml_version_differences(text) == []
    plain = "name: n\ninput:\n" + "".join(f"  - {word}\n" for word in words)
    try:
        read = files.loads(plain).input or []
    except GoldenLoadError:
        return  # not a list of plain words after all (`- -`, `- a: b`)
    if any(isinstance(value, dict | list) for value in read):
        return
    warned = {line for line, _ in files.yaml_version_differences(plain)}
    for line, (word, value) in enumerate(zip(words, read, strict=True), start=3):
        other = files._yaml12_value(word)
        number = isinstance(other, int | float) and not isinstance(other, bool)
        assert number == bool(_YAML12_CORE_NUMBER.fullmatch(word)), word
        alike = type(value) is type(other) and (value == other or value != value)
        assert (line in warned) == (not alike), (word, value, other)


def test_only_stale_temp_files_are_removed(tmp_path: Path) -> None:
    from opswald.files import remove_if_stale_temp

    fresh = tmp_path / ".a.golden.yaml.0123456789abcdef.opswald-tmp"
    old = tmp_path / ".b.golden.yaml.0123456789abcdef.opswald-tmp"
    golden = tmp_path / "c.golden.yaml"
    for path in (fresh, old, golden):
        path.write_text("x")
    for path in (old, golden):
        os.utime(path, (time.time() - 600, time.time() - 600))
    assert [remove_if_stale_temp(p) for p in (fresh, old, golden)] == [False, True, False]
    assert (fresh.exists(), old.exists(), golden.exists()) == (True, False, True)


GOLDENS = sorted((Path(__file__).parent.parent / "goldens").glob("*.golden.*"))


@pytest.mark.parametrize("path", GOLDENS, ids=lambda p: p.name)
def test_the_compact_form_gives_back_the_loaded_golden(path: Path) -> None:
    """What a collected item keeps until it runs rebuilds the same session, down to which
    fields were set (update writes back only those)."""
    session, blob = files.load_compact(path)
    rebuilt = files.from_compact(blob)
    loaded = files.load(path)
    assert rebuilt == loaded == session
    assert rebuilt.model_fields_set == loaded.model_fields_set
    assert [s.model_fields_set for s in rebuilt.step_list] == [
        s.model_fields_set for s in loaded.step_list
    ]
    assert files.dumps(rebuilt) == files.dumps(loaded)
    assert len(blob) < path.stat().st_size


def test_the_compact_form_refuses_what_load_refuses(tmp_path: Path) -> None:
    bad = tmp_path / "bad.golden.yaml"
    bad.write_text("name: x\ninput: 1\ntags: 5\n")
    with pytest.raises(GoldenLoadError) as compact:
        files.load_compact(bad)
    with pytest.raises(GoldenLoadError) as plain:
        files.load(bad)
    assert str(compact.value) == str(plain.value)
    assert "bad.golden.yaml:3" in str(compact.value)


# The YAML 1.2 core schema's implicit numbers, from the spec (10.3.2), as other languages'
# parsers and yq read them.
_YAML12_CORE_NUMBER = re.compile(
    r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?"
    r"|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-._eExo", min_size=1, max_size=8))
def test_strings_a_yaml_1_2_parser_reads_as_numbers_are_quoted(text: str) -> None:
    session = Session.model_validate({"name": "n", "steps": [], "output": {"v": text}})
    dumped = files.dumps(session)
    line = next(line for line in dumped.splitlines() if line.startswith("  v: "))
    plain = line.removeprefix("  v: ")
    if _YAML12_CORE_NUMBER.fullmatch(plain):
        pytest.fail(f"{text!r} written as {plain!r}, a number to YAML 1.2 tools")
    assert files.loads(dumped).output == {"v": text}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_merge_conflict_is_named_with_its_line(fmt: files.Format) -> None:
    lines = files.dumps(Session.model_validate(SAMPLE), fmt).splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "Can I get a refund?" in line)
    ours, theirs = lines[at], lines[at].replace("refund", "return")
    conflicted = [*lines[:at], "<<<<<<< HEAD\n", ours, "=======\n", theirs]
    conflicted += [">>>>>>> feature\n", *lines[at + 1 :]]
    with pytest.raises(GoldenLoadError) as caught:
        files.loads("".join(conflicted), fmt=fmt, source="g")
    assert caught.value.line == at + 1
    assert "unresolved merge conflict" in caught.value.message


@pytest.mark.parametrize("name", ["g.golden.yaml", "g.golden.json"])
def test_a_rewrite_keeps_the_files_crlf_line_endings_and_byte_order_mark(
    tmp_path: Path, name: str
) -> None:
    session = Session.model_validate(SAMPLE)
    path = tmp_path / name
    files.dump(session, path)
    lf = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n"))
    files.dump(session, path)
    assert path.read_bytes() == b"\xef\xbb\xbf" + lf.replace(b"\n", b"\r\n")
    assert files.load(path) == session
    path.write_bytes(lf)
    files.dump(session, path)
    assert path.read_bytes() == lf


@pytest.mark.parametrize("tag", ["!!int", "!!float", "!!bool"])
def test_an_empty_tagged_scalar_is_a_load_error_with_its_line(tag: str) -> None:
    """`!!int ""` made PyYAML's constructor raise IndexError, which reached the user as
    a traceback from its internals."""
    with pytest.raises(files.GoldenLoadError, match=rf"<string>:3: cannot read '' as {tag}"):
        files.loads(f'name: x\ninput:\n  amount: {tag} ""\n')


@pytest.mark.parametrize(
    ("written", "says"),
    [
        ("model: 42", "model must be text, a model name; got int 42 (quote it: model='42')"),
        ("temperature: warm", "temperature must be a number; got str 'warm'"),
        ("tool_params: [1, 2]", "tool_params must be a mapping of the tool's arguments"),
    ],
)
def test_a_modification_of_the_wrong_kind_in_the_golden_is_a_load_error(
    tmp_path: Path, written: str, says: str
) -> None:
    """The golden's own `modifications: {model: 42}` loaded (validate said ok) and every
    replay failed at its first call ('model: sim-small → 42'), where --opswald-modify
    model=42 is refused up front; it is an error at its line, as the option's words say."""
    path = tmp_path / "m.golden.yaml"
    path.write_text(f"name: m\ninput: {{}}\nsteps: []\noutput: 1\nmodifications:\n  {written}\n")
    err = load_error(path)
    assert f"{path}:5: modifications: {says}" in str(err), str(err)
    assert "(got a mapping)" not in str(err)
    path.write_text("name: m\ninput: {}\nsteps: []\noutput: 1\nmodifications: {model: '42'}\n")
    assert files.load(path).modifications == {"model": "42"}


@pytest.mark.parametrize(
    ("written", "says"),
    [
        (
            "budgets:",
            "expect.budgets: must be a mapping, with any of: cost, input_tokens, output_tokens, "
            "total_tokens, duration_ms, llm_calls, tool_calls, steps (got null)",
        ),
        ("requests: 3", "expect.requests: must be a mapping, with any of: ignore, normalize"),
        (
            "output: [a]",
            "expect.output: must be a match name (exact, contains, regex, ...) or a mapping, "
            "with any of: match, value, ignore_paths, threshold, rubric (got a list)",
        ),
        ("state:", "expect.state: must be report, exact, a list of paths or a mapping"),
        ("error: 3", "expect.error: must be same, type, any, fixed or a mapping, with any of"),
    ],
)
def test_an_expect_part_that_is_not_a_mapping_says_what_it_takes(
    tmp_path: Path, written: str, says: str
) -> None:
    """`expect: {budgets: }` said `Input should be a valid dictionary or instance of
    BudgetsExpect`, naming a class of opswald's code; it says what the part is written as."""
    path = tmp_path / "s.golden.yaml"
    path.write_text(f"name: s\ninput: {{}}\nsteps: []\noutput: 1\nexpect:\n  {written}\n")
    err = load_error(path)
    assert says in str(err), str(err)
    assert "Expect" not in str(err) and "instance" not in str(err), str(err)
    assert err.line == 6


@pytest.mark.parametrize(
    ("written", "says"),
    [
        (
            "exactly",
            "expect.state is report, exact or a list of paths, not 'exactly'; "
            "did you mean 'exact'?",
        ),
        ("paths", "expect.state is report, exact or a list of paths, not 'paths'"),
        ("[]", "expect.state is report, exact or a list of paths: no paths are listed"),
        ("{mode: paths}", "no paths are listed"),
    ],
)
def test_a_wrong_expect_state_says_the_forms_it_takes(
    tmp_path: Path, written: str, says: str
) -> None:
    """`expect.state` is written `report`, `exact` or a list of paths: a typo named the
    internal field (`expect.state.mode`) and offered `paths`, which, written alone, loaded
    as a setting that can never fail."""
    path = tmp_path / "s.golden.yaml"
    path.write_text(f"name: s\ninput: {{}}\nsteps: []\noutput: 1\nexpect:\n  state: {written}\n")
    err = load_error(path)
    assert err.field == "expect.state", err.field
    assert says in str(err), str(err)
    assert err.line == 6
    for form in ("exact", "report", "[a.b]"):
        path.write_text(f"name: s\ninput: {{}}\nsteps: []\noutput: 1\nexpect:\n  state: {form}\n")
        assert files.load(path).expect.state.mode in ("exact", "report", "paths")


def test_a_rule_written_as_a_mapping_is_named_as_written(tmp_path: Path) -> None:
    """`normalize:` written as a mapping is reported at `normalize:` with its pattern, not
    as `normalize[0].pattern` (the list it is read into), and the message does not quote
    the value twice."""
    path = write(
        tmp_path,
        "a.golden.yaml",
        "name: a\ninput: {q: 1}\nsteps: []\nexpect:\n  requests:\n    normalize: {'(': x}\n",
    )
    err = load_error(path)
    assert_at(err, path, 6)
    assert str(err) == (
        f"{path}:6: expect.requests.normalize: '(' is not a valid regular expression: "
        "missing ), unterminated subpattern at position 0"
    )


def test_a_bad_path_in_a_list_is_quoted_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.golden.yaml",
        "name: b\ninput: {q: 1}\nsteps: []\nexpect:\n  output:\n    ignore_paths: [ok, 'a..b']\n",
    )
    err = load_error(path)
    assert str(err) == f"{path}:6: expect.output.ignore_paths: bad path 'a..b' at position 1"
    # a value the message does not name is still shown
    path = write(tmp_path, "c.golden.yaml", "name: c\ninput: {q: 1}\nsteps: []\nagent: [1]\n")
    assert str(load_error(path)).endswith("agent: Input should be a valid string (got a list)")
