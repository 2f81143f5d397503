"""The golden schema (v1): stubs, aliases, step numbering, extras, shorthands, JSON Schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from opswald import files
from opswald.session import (
    SCHEMA_URL,
    ErrorExpect,
    Expect,
    LLMCallStep,
    NormalizeRule,
    Session,
    StateExpect,
    StateStep,
    ToolCallStep,
    Usage,
    UserInputStep,
    json_schema,
)

EXAMPLES = sorted((Path(__file__).parents[1] / "goldens").glob("*.golden.*"))


def session(**fields: Any) -> Session:
    return Session.model_validate({"name": "s", "input": {"q": "hi"}, **fields})


def steps(*numbers: int) -> list[dict[str, Any]]:
    return [{"step": n, "type": "state"} for n in numbers]


# ------------------------------------------------------------------------------- stubs


def test_no_steps_and_no_output_is_a_stub() -> None:
    stub = session()
    assert stub.is_stub
    assert stub.steps is None
    assert stub.step_list == []
    assert "steps" not in files.to_data(stub)
    assert "output" not in files.to_data(stub)


def test_empty_steps_with_an_output_is_a_real_empty_session() -> None:
    empty = session(steps=[], output={"answer": 42})
    assert not empty.is_stub
    assert empty.steps == []
    assert empty.step_list == []
    data = files.to_data(empty)
    assert data["steps"] == []
    assert data["output"] == {"answer": 42}
    assert not files.loads(files.dumps(empty)).is_stub


@pytest.mark.parametrize(
    "fields",
    [{"steps": []}, {"output": None}, {"steps": None}, {"output": "done"}],
    ids=["steps_only", "null_output", "null_steps", "output_only"],
)
def test_either_key_present_means_recorded(fields: dict[str, Any]) -> None:
    recorded = session(**fields)
    assert not recorded.is_stub
    # the written form keeps it recorded: `output` is always written for a non-stub
    again = files.loads(files.dumps(recorded))
    assert not again.is_stub
    assert again.output == recorded.output


def test_a_stub_survives_a_round_trip() -> None:
    again = files.loads(files.dumps(session(tags=["critical"])))
    assert again.is_stub
    assert again.tags == ["critical"]


# ------------------------------------------------------------------------------ usage


def test_openai_token_names_are_aliases() -> None:
    usage = Usage.model_validate({"prompt_tokens": 12, "completion_tokens": 5})
    assert usage.input_tokens == 12
    assert usage.output_tokens == 5
    assert usage.total() == 17


def test_aliases_are_written_under_the_canonical_names() -> None:
    step = {"step": 1, "type": "llm_call", "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    data = files.to_data(session(steps=[step], output=None))
    assert data["steps"][0]["usage"] == {"input_tokens": 3, "output_tokens": 4}


def test_canonical_names_are_accepted_too() -> None:
    usage = Usage.model_validate({"input_tokens": 1, "output_tokens": 2, "reasoning_tokens": 9})
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (1, 2, 9)


@pytest.mark.parametrize(
    ("fields", "total"),
    [
        ({}, 0),
        ({"input_tokens": 7}, 7),
        ({"output_tokens": 7}, 7),
        ({"input_tokens": 7, "output_tokens": 3}, 10),
        ({"input_tokens": 7, "output_tokens": 3, "total_tokens": 12}, 12),
        ({"input_tokens": 7, "output_tokens": 3, "total_tokens": 0}, 0),
        ({"prompt_tokens": 2, "completion_tokens": 2, "cache_read_tokens": 50}, 4),
    ],
)
def test_usage_total(fields: dict[str, Any], total: int) -> None:
    assert Usage.model_validate(fields).total() == total


def test_unknown_usage_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Usage.model_validate({"input_tokens": 1, "tokens_in": 2})


# ------------------------------------------------------------------------- numbering


@pytest.mark.parametrize("numbers", [(1,), (1, 2), (1, 2, 3, 4, 5)])
def test_steps_numbered_one_to_n(numbers: tuple[int, ...]) -> None:
    assert [s.step for s in session(steps=steps(*numbers), output=None).step_list] == list(numbers)


@pytest.mark.parametrize(
    ("numbers", "position", "says"),
    [((2,), 1, 2), ((1, 3), 2, 3), ((1, 1), 2, 1), ((2, 1), 1, 2), ((1, 2, 2, 3), 3, 2)],
)
def test_steps_out_of_order_are_rejected(
    numbers: tuple[int, ...], position: int, says: int
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        session(steps=steps(*numbers), output=None)
    message = str(excinfo.value)
    assert "steps must be numbered 1, 2, 3" in message
    assert f"step at position {position} says step: {says}" in message


@pytest.mark.parametrize("number", [0, -1])
def test_step_numbers_start_at_one(number: int) -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        session(steps=steps(number), output=None)


def test_step_numbering_error_from_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.golden.yaml"
    path.write_text("name: x\ninput: 1\nsteps:\n  - step: 2\n    type: state\noutput: 1\n")
    with pytest.raises(files.GoldenLoadError, match="steps must be numbered") as excinfo:
        files.load(path)
    assert str(excinfo.value).startswith(str(path))


@pytest.mark.parametrize("suffix", [".golden.yaml", ".golden.json"])
def test_step_numbering_error_points_at_the_misnumbered_step(
    tmp_path: Path, pytester: pytest.Pytester, suffix: str
) -> None:
    """A gap (1, 3) is reported at the line of `step: 3`, not at `steps:`, with no
    `(got a list)`: the message names the value that is wrong."""
    data = {
        "name": "x",
        "input": 1,
        "steps": [{"step": 1, "type": "state"}, {"step": 3, "type": "state"}],
        "output": 1,
    }
    path = tmp_path / f"x{suffix}"
    if suffix.endswith("json"):
        path.write_text(json.dumps(data, indent=2))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    lines = path.read_text().splitlines()
    wrong = next(n for n, line in enumerate(lines, start=1) if re.search(r'"?step"?: 3\b', line))
    with pytest.raises(files.GoldenLoadError) as excinfo:
        files.load(path)
    err = excinfo.value
    assert (err.line, err.field) == (wrong, "step 2 › step")
    assert "step at position 2 says step: 3" in err.message
    assert "(got" not in err.message
    assert str(err) == f"{path}:{wrong}: step 2 › step: {err.message}"
    # as collection reports it
    pytester.mkdir("goldens")
    path.rename(pytester.path / "goldens" / path.name)
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*goldens/x{suffix}:{wrong}: step 2 › step: {err.message}"])


# ------------------------------------------------------------------- extra fields


@pytest.mark.parametrize("key", ["nmae", "step", "output_expect", "Name"])
def test_unknown_top_level_field_is_rejected(key: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        session(**{key: 1})
    assert [e["type"] for e in excinfo.value.errors()] == ["extra_forbidden"]
    assert excinfo.value.errors()[0]["loc"] == (key,)


@pytest.mark.parametrize(
    "step",
    [
        {"step": 1, "type": "tool_call", "tool": "t", "result": 1},
        {"step": 1, "type": "llm_call", "prompt": "hi"},
        {"step": 1, "type": "user_input", "content": "hi", "role": "user"},
    ],
    ids=["tool_call", "llm_call", "user_input"],
)
def test_unknown_fields_on_call_steps_are_rejected(step: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        session(steps=[step], output=None)


def test_state_steps_keep_extra_fields() -> None:
    snapshot = {
        "step": 1,
        "type": "state",
        "memory": {"seat": "12A"},
        "plan": ["search", "book"],
        "scratchpad": {"nested": {"deep": [1, 2.5, None, True]}},
    }
    state = session(steps=[snapshot], output=None).step_list[0]
    assert isinstance(state, StateStep)
    assert state.model_extra == {
        "plan": ["search", "book"],
        "scratchpad": {"nested": {"deep": [1, 2.5, None, True]}},
    }
    assert state.memory == {"seat": "12A"}


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_state_extras_round_trip(fmt: files.Format) -> None:
    snapshot = {"step": 1, "type": "state", "variables": {"n": 1}, "plan": ["a"], "z_last": 0}
    original = session(steps=[snapshot], output=None)
    text = files.dumps(original, fmt)
    again = files.loads(text, fmt=fmt)
    assert again == original
    written = files.to_data(again)["steps"][0]
    assert written == snapshot
    assert list(written) == ["step", "type", "variables", "plan", "z_last"]
    assert files.dumps(again, fmt) == text


def test_step_types_become_their_classes() -> None:
    made = session(
        steps=[
            {"step": 1, "type": "user_input", "content": "hi"},
            {"step": 2, "type": "llm_call", "model": "m"},
            {"step": 3, "type": "tool_call", "tool": "t"},
            {"step": 4, "type": "state"},
        ],
        output=None,
    )
    kinds = [type(s) for s in made.step_list]
    assert kinds == [UserInputStep, LLMCallStep, ToolCallStep, StateStep]


@pytest.mark.parametrize("kind", ["tool_cal", "State", "", "llm"])
def test_unknown_step_type_is_rejected(kind: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        session(steps=[{"step": 1, "type": kind}], output=None)
    assert [e["type"] for e in excinfo.value.errors()] == ["union_tag_invalid"]


def test_tool_call_needs_a_tool_name() -> None:
    with pytest.raises(ValidationError, match="tool"):
        session(steps=[{"step": 1, "type": "tool_call"}], output=None)


# ------------------------------------------------------------------- expect shorthands


def test_a_regex_without_its_pattern_is_refused() -> None:
    with pytest.raises(ValidationError, match="match: regex needs `value:`"):
        Expect.model_validate({"output": "regex"})
    with pytest.raises(ValidationError) as excinfo:
        Expect.model_validate({"output": {"match": "regex", "value": 123}})
    assert [e["loc"] for e in excinfo.value.errors()] == [("output", "value")]


@pytest.mark.parametrize(
    "budget",
    [
        *("10%", "+abc", True, -1, float("inf"), [1], "-150%", "-100.5%"),
        # numbers a float cannot hold (an infinite limit, +inf% of 0 is NaN) and digits
        # of other scripts (`\d` reads them, float() too), which nothing else reads
        *("1e400", "<=1e999", "$1e400", "+1e999%", "-1e999%", 10**400, float("nan")),
        *("\u0661\u0662", "+\u0662\u0660%", "\uff11"),
    ],
    ids=lambda budget: repr(budget)[:12],
)
def test_a_budget_that_cannot_be_read_is_refused_at_load(budget: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Expect.model_validate({"budgets": {"cost": budget}})
    assert [e["loc"] for e in excinfo.value.errors()] == [("budgets", "cost")]


@pytest.mark.parametrize(
    "budget", [0, 0.05, "<=0.05", "$0.05", "+20%", "-10%", "-100%", " 3 ", "1e-6", "<=2.5E+3"]
)
def test_budgets_in_every_documented_form_load(budget: Any) -> None:
    assert Expect.model_validate({"budgets": {"cost": budget}}).budgets.cost == budget


@pytest.mark.parametrize("match", ["exact", "normalized", "contains", "json_subset"])
def test_output_shorthand(match: str) -> None:
    expect = Expect.model_validate({"output": match})
    assert expect.output.match == match
    assert expect.output.value is None
    assert expect.output.ignore_paths == []


def test_output_shorthand_is_checked() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Expect.model_validate({"output": "fuzzy"})
    assert [e["loc"] for e in excinfo.value.errors()] == [("output", "match")]


@pytest.mark.parametrize("mode", ["report", "exact"])
def test_state_shorthand_mode(mode: str) -> None:
    assert Expect.model_validate({"state": mode}).state == StateExpect.model_validate(
        {"mode": mode, "paths": []}
    )


def test_state_shorthand_paths() -> None:
    state = Expect.model_validate({"state": ["memory.seat", "variables.*"]}).state
    assert state.mode == "paths"
    assert state.paths == ["memory.seat", "variables.*"]


def test_state_long_form() -> None:
    state = Expect.model_validate({"state": {"mode": "paths", "paths": ["memory"]}}).state
    assert state == StateExpect(mode="paths", paths=["memory"])


def test_state_shorthand_is_checked() -> None:
    with pytest.raises(ValidationError):
        Expect.model_validate({"state": "strict"})


@pytest.mark.parametrize("match", ["same", "type", "any", "fixed"])
def test_error_shorthand(match: str) -> None:
    assert Expect.model_validate({"error": match}).error == ErrorExpect.model_validate(
        {"match": match}
    )


def test_error_shorthand_is_checked() -> None:
    with pytest.raises(ValidationError):
        Expect.model_validate({"error": "message"})


def test_normalize_as_a_mapping() -> None:
    requests = Expect.model_validate(
        {"requests": {"normalize": {r"\d{4}-\d\d-\d\d": "<date>", "[0-9a-f]{32}": "<id>"}}}
    ).requests
    assert requests.normalize == [
        NormalizeRule(pattern=r"\d{4}-\d\d-\d\d", replace="<date>"),
        NormalizeRule(pattern="[0-9a-f]{32}", replace="<id>"),
    ]


def test_normalize_as_a_list_keeps_the_default_placeholder() -> None:
    requests = Expect.model_validate(
        {"requests": {"normalize": [{"pattern": "x+"}], "ignore": ["input.params.seed"]}}
    ).requests
    assert requests.normalize == [NormalizeRule(pattern="x+", replace="<normalized>")]
    assert requests.ignore == ["input.params.seed"]


def test_shorthands_in_a_golden_file_round_trip() -> None:
    text = (
        "name: s\ninput: 1\nsteps: []\noutput: 1\n"
        "expect:\n  output: contains\n  state: [memory.seat]\n  error: type\n"
        "  requests:\n    normalize: {'\\d+': '<n>'}\n"
    )
    golden = files.loads(text)
    expect = golden.expectations
    assert expect.output.match == "contains"
    assert (expect.state.mode, expect.state.paths) == ("paths", ["memory.seat"])
    assert expect.error.match == "type"
    assert expect.requests.normalize == [NormalizeRule(pattern=r"\d+", replace="<n>")]
    assert files.loads(files.dumps(golden)) == golden


def test_expectations_default_when_absent() -> None:
    golden = session()
    assert golden.expect is None
    assert golden.expectations == Expect()
    assert golden.expectations.output.match == "exact"
    assert golden.expectations.state.mode == "report"
    assert golden.expectations.tool_calls.order == "exact"


# ------------------------------------------------------------------------ JSON Schema


def test_json_schema_has_an_id_and_a_title() -> None:
    schema = json_schema()
    assert schema["$id"] == SCHEMA_URL
    assert "schema v1" in schema["title"]
    json.dumps(schema)  # plain JSON
    jsonschema.Draft202012Validator.check_schema(schema)


def test_json_schema_knows_every_session_field() -> None:
    assert set(json_schema()["properties"]) == set(Session.model_fields)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_goldens_validate_against_the_json_schema(path: Path) -> None:
    golden = files.load(path)
    assert golden.step_list, path
    jsonschema.Draft202012Validator(json_schema()).validate(files.to_data(golden))


def test_there_are_example_goldens() -> None:
    assert len(EXAMPLES) >= 6
    assert {p.suffix for p in EXAMPLES} == {".yaml", ".json"}


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "bogus": 1},
        {"name": "x", "steps": [{"step": 1, "type": "tool_cal", "tool": "t"}], "output": 1},
        {"name": "x", "steps": [{"step": 0, "type": "state"}], "output": 1},
        {"name": "x", "steps": [{"step": 1, "type": "tool_call"}], "output": 1},
        {"name": "x", "schema_version": 2},
        {"name": "x", "tags": "critical"},
        {"name": "x", "expect": {"output": {"match": "fuzzy"}}},
        {"name": "x", "expect": {"budgets": {"cost": "cheap"}}},
        {"name": "x", "expect": {"budgets": {"cost": "0.05 USD"}}},
        {"name": "x", "expect": {"budgets": {"total_tokens": "+20"}}},
        {"name": "x", "expect": {"budgets": {"duration_ms": -5}}},
        {"name": "x", "expect": {"budgets": {"steps": True}}},
    ],
    ids=[
        "extra",
        "step_type",
        "step_zero",
        "no_tool",
        "version",
        "tags",
        "match",
        "budget_word",
        "budget_unit",
        "budget_no_percent",
        "budget_negative",
        "budget_bool",
    ],
)
def test_json_schema_rejects_what_load_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Session.model_validate(bad)
    errors = list(jsonschema.Draft202012Validator(json_schema()).iter_errors(bad))
    assert errors


# Everything `load` accepts should pass the JSON Schema too: it is what editors validate
# hand-written goldens with (the `# yaml-language-server: $schema=` line).
ACCEPTED_BY_LOAD = {
    "openai_token_names": {
        "steps": [
            {
                "step": 1,
                "type": "llm_call",
                "usage": {"prompt_tokens": 3, "completion_tokens": 4},
            }
        ],
        "output": 1,
    },
    "output_shorthand": {"expect": {"output": "contains"}},
    "state_shorthand": {"expect": {"state": "exact"}},
    "state_paths_shorthand": {"expect": {"state": ["memory.seat"]}},
    "error_shorthand": {"expect": {"error": "type"}},
    "budget_forms": {
        "expect": {
            "budgets": {
                "cost": " $0.05 ",
                "input_tokens": "<= 1200",
                "output_tokens": "+20%",
                "total_tokens": "- 10.5 %",
                "duration_ms": 1.5e3,
                "llm_calls": 0,
                "tool_calls": ".5",
                "steps": "1e2",
            }
        }
    },
    "normalize_mapping": {"expect": {"requests": {"normalize": {r"\d+": "<n>"}}}},
    "state_extras": {"steps": [{"step": 1, "type": "state", "plan": [1]}], "output": 1},
    "error_args_attributes": {
        "steps": [
            {
                "step": 1,
                "type": "tool_call",
                "tool": "charge",
                "error": {
                    "type": "PaymentError",
                    "message": "(402, 'card declined')",
                    "module": "agent",
                    "args": [402, "card declined"],
                    "attributes": {"code": 402, "details": {"retry": False}},
                },
            }
        ],
        "output": 1,
        "error": {"type": "KeyError", "message": "42", "args": [42]},
    },
}


@pytest.mark.parametrize("label", list(ACCEPTED_BY_LOAD))
def test_json_schema_accepts_what_load_accepts(label: str) -> None:
    document = {"name": "x", "input": 1, **ACCEPTED_BY_LOAD[label]}
    Session.model_validate(document)  # load accepts it
    errors = [
        e.message for e in jsonschema.Draft202012Validator(json_schema()).iter_errors(document)
    ]
    assert not errors, f"{label}: the JSON Schema refuses a golden load accepts: {errors}"
