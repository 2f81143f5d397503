"""Conditional breakpoint expressions: a whitelisted language walked over `ast`, never eval."""

from __future__ import annotations

import builtins
import pickle
import string
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opswald.engine.breakpoints import (
    MAX_DEPTH,
    MAX_LENGTH,
    VARIABLES,
    BreakpointError,
    Condition,
    Snapshot,
    compile_condition,
)


def step_variables(**overrides: Any) -> dict[str, Any]:
    """What an integrator binds for one step; every name in VARIABLES."""
    values: dict[str, Any] = {
        "step": 12,
        "type": "llm_call",
        "tool_name": None,
        "model": "gpt-4o",
        "cost": 0.02,
        "total_cost": 0.61,
        "duration_ms": 5200,
        "tokens": 1500,
        "total_tokens": 4200,
        "error": None,
        "memory": Snapshot({"user_preference": "quarterly reports"}, changed=True),
        "variables": Snapshot(
            {"cart": {"items": [{"sku": "A1"}, {"sku": "B2"}]}, "user": "ada", "n": 3, "m": 4},
            changed=False,
        ),
    }
    values.update(overrides)
    return values


def rejection(expression: str) -> BreakpointError:
    with pytest.raises(BreakpointError) as info:
        compile_condition(expression)
    return info.value


def caret_column(error: BreakpointError) -> int:
    """The column of the first caret under the displayed expression line."""
    lines = str(error).splitlines()
    carets = next(i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"^"})
    assert lines[carets - 1].startswith("    ")
    return lines[carets].index("^") - 4


# --- the examples work ----------------------------------------------------------------

EXAMPLES = [
    # (expression, true for step_variables(...overrides), overrides that make it false)
    ("total_cost > 0.50", {}, {"total_cost": 0.2}),
    ("tool_name == 'send_email'", {"tool_name": "send_email"}, {"tool_name": "lookup"}),
    ("step == 12", {}, {"step": 11}),
    ("memory.changed", {}, {"memory": Snapshot({}, changed=False)}),
    ("duration_ms > 5000", {}, {"duration_ms": 10}),
    ("error is not None", {"error": {"type": "TimeoutError"}}, {}),
    ("type == 'llm_call' and tokens > 1000", {}, {"tokens": 10}),
    ("memory.user_preference == 'quarterly reports'", {}, {"memory": Snapshot({}, changed=True)}),
    ("'refund' in (tool_name or '')", {"tool_name": "issue_refund"}, {}),
    ("len(variables) > 3", {}, {"variables": Snapshot({"a": 1}, changed=True)}),
]


@pytest.mark.parametrize(("expression", "true_when", "false_when"), EXAMPLES)
def test_examples_evaluate(
    expression: str, true_when: dict[str, Any], false_when: dict[str, Any]
) -> None:
    condition = compile_condition(expression)
    assert condition.evaluate(step_variables(**true_when)) is True
    assert condition.evaluate(step_variables(**false_when)) is False


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("variables.cart['items'][1].sku == 'B2'", True),
        ("variables['cart'].items[-1]['sku'] == 'B2'", True),
        ("memory.missing is None and memory['missing'] is None", True),
        ("not variables.changed", True),
        ("0.5 < total_cost < 1 and -cost < 0", True),
        ("total_cost - cost * 2 + 1 / 4 > 0.8 and step % 5 == 2", True),
        ("max(variables.n, variables.m, 1) == 4 and min(3, abs(-2)) == 2", True),
        ("max(variables) == 'user' and len(memory.user_preference) == 17", True),
        ("model in ('gpt-4o', 'gpt-4.1') and 'cart' in variables", True),
        ("model not in ['o1'] and 'zzz' not in memory", True),
        ("None is error and not (error is not None)", True),
        ("'a' * 3 + 'b' == 'aaab' and [1] * 2 == [1, 1]", True),
        ("tool_name or step == 12", True),
        ("type == 'tool_call' or tokens < 0", False),
        ("(\n  step == 12  # the step we care about\n  and model == 'gpt-4o'\n)", True),
        ("  step == 12", True),
    ],
)
def test_language(expression: str, expected: bool) -> None:
    assert compile_condition(expression).evaluate(step_variables()) is expected


# --- malicious and disallowed text is refused at compile time, at the right spot -------

MALICIOUS = [
    # (expression, caret column, words the message must contain)
    ("__import__('os').system('echo hi')", 0, "calling '__import__'"),
    ("().__class__.__bases__[0].__subclasses__()", 3, "'__class__'"),
    ("memory.__class__", 7, "'__class__'"),
    ("memory._data", 7, "'_data'"),
    ("[x for x in ().__class__.__mro__]", 0, "comprehensions"),
    ("(lambda: 1)()", 1, "lambda"),
    ("open('/etc/passwd')", 0, "calling 'open'"),
    ("exec('1')", 0, "calling 'exec'"),
    ("eval('step')", 0, "calling 'eval'"),
    ("step.__add__(1)", 5, "'__add__'"),
    ("f'{step}'", 0, "f-strings"),
    ("(x := 1)", 1, "':='"),
    ("import os", 0, "'import'"),
    ("step = 1", 5, "use '=='"),
    ("'a' * 10**9", 8, "'**'"),
    ("max(range(10))", 4, "calling 'range'"),
    ("tool_name.upper()", 10, "'.upper'"),
    ("memory.keys()", 7, "calling methods"),
    ("os.system('x')", 0, "unknown name 'os'"),
    ("step == 1; import os", 11, "'import'"),
    ("step == 1; step == 2", 11, "one expression"),
    ("max(*variables)", 4, "starred"),
    ("max(1, key=abs)", 7, "keyword arguments"),
    ("variables.user[0:2]", 15, "slices"),
    ("memory[tool_name]", 7, "literal string or integer"),
    ("step if error else 0", 0, "conditional expressions"),
    ("{'a': 1}", 0, "dict displays"),
    ("step // 2", 5, "'//'"),
    ("step is 12", 5, "only compare with None"),
    ("b'x' == step", 0, "bytes literals"),
    ("total_costs > 1", 0, "did you mean 'total_cost'"),
    ("getattr(memory, '_data')", 0, "calling 'getattr'"),
    ("variables.x.__dict__", 12, "'__dict__'"),
    ("len(step, step)", 0, "exactly one argument"),
]


@pytest.mark.parametrize(("expression", "column", "words"), MALICIOUS)
def test_malicious_is_refused_at_the_spot(expression: str, column: int, words: str) -> None:
    error = rejection(expression)
    assert error.expression == expression
    assert error.offset == column
    assert caret_column(error) == column
    assert words in error.reason
    assert expression in str(error)


def test_message_lists_what_is_allowed() -> None:
    message = str(rejection("memory.__class__"))
    for name in VARIABLES:
        assert name in message
    for word in ("len, abs, min, max", "is None", "memory.changed", "Example:"):
        assert word in message


def test_caret_on_a_later_line() -> None:
    error = rejection("(step == 12\n and tool_name.strip)")
    assert error.offset == error.expression.index("strip")
    lines = str(error).splitlines()
    assert lines[1] == "     and tool_name.strip)"
    assert lines[2] == "                   ^^^^^"


def test_non_ascii_columns_count_characters() -> None:
    error = rejection("'é' == memory.__doc__")
    assert error.offset == 14
    assert caret_column(error) == 14


@pytest.mark.parametrize(
    ("expression", "offset", "words"),
    [
        ("", 0, "empty"),
        ("   ", 3, "empty"),
        ("step ==", 7, "ends too early"),
        ("(step == 1", 0, "never closed"),
        ("step\x00 == 1", 4, "null byte"),
        ("yield step", 0, "'yield'"),
        ("await step", 0, "'await'"),
        ("step == 1j", 8, "complex"),
        ("step & 1", 5, "'and'"),
        ("~step", 0, "'~'"),
        ("...", 0, "Ellipsis"),
    ],
)
def test_other_refusals(expression: str, offset: int, words: str) -> None:
    error = rejection(expression)
    assert error.offset == offset
    assert words in error.reason


def test_length_and_depth_limits() -> None:
    assert compile_condition("step == " + "1" * (MAX_LENGTH - 8)).expression
    error = rejection("step == " + "1" * (MAX_LENGTH - 7))
    assert "too long" in error.reason and error.offset == MAX_LENGTH
    compile_condition("not " * (MAX_DEPTH - 1) + "step")
    error = rejection("not " * MAX_DEPTH + "step")
    assert "nested too deeply" in error.reason
    assert error.offset == 4 * MAX_DEPTH


def test_condition_itself_checks_and_survives_pickling() -> None:
    with pytest.raises(BreakpointError):
        Condition("memory._data")
    condition = Condition("step == 12")
    assert condition == compile_condition("step == 12")
    assert pickle.loads(pickle.dumps(condition)).evaluate(step_variables())
    error = rejection("memory._data")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.expression, copy.offset, str(copy)) == (error.expression, 7, str(error))
    assert isinstance(error, ValueError)


def test_not_a_string() -> None:
    with pytest.raises(BreakpointError, match="a condition is a string"):
        compile_condition(12)  # type: ignore[arg-type]


def test_user_text_is_never_compiled_to_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only `ast.parse` (compile with PyCF_ONLY_AST) may see the text."""
    real_compile = builtins.compile

    def ast_only(source: Any, filename: Any, mode: str, flags: int = 0, *a: Any, **k: Any) -> Any:
        assert flags & 0x400, "user text compiled to a code object"  # ast.PyCF_ONLY_AST
        return real_compile(source, filename, mode, flags, *a, **k)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "compile", ast_only)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    for expression, _, _ in EXAMPLES:
        compile_condition(expression).evaluate(step_variables())
    for expression, _, _ in MALICIOUS:
        rejection(expression)


# --- run-time problems are False, never exceptions ---------------------------------------


@pytest.mark.parametrize(
    ("expression", "overrides"),
    [
        ("cost > 0.5", {"cost": None}),  # None > 0.5
        ("tool_name > 0.5", {}),
        ("step > 'a'", {}),
        ("len(step) > 0", {}),
        ("abs(model) > 0", {}),
        ("step / 0 > 1", {}),
        ("step % 0 == 0", {}),
        ("not (step + 'x')", {}),
        ("not -model", {}),
        ("memory.user_preference.first is None", {}),  # attribute of a str
        ("not variables.cart['items'][5]", {}),  # index out of range
        ("'x' in step", {}),
        ("not max(step)", {}),
        ("max(step, 'a')", {}),
        ("variables[5] is None", {"variables": [1]}),  # index out of range
    ],
)
def test_runtime_problems_are_false(expression: str, overrides: dict[str, Any]) -> None:
    condition = compile_condition(expression)
    assert condition.evaluate(step_variables(**overrides)) is False


def test_missing_variable_is_false() -> None:
    assert compile_condition("error is None").evaluate({}) is False
    assert compile_condition("memory.changed").evaluate({"memory": None}) is False


def test_big_results_are_refused_at_run_time() -> None:
    variables = step_variables(tool_name="x" * 600_000)
    assert compile_condition("'a' * 100000 == ''").evaluate(variables) is False
    assert compile_condition("not [0] * 10001").evaluate(variables) is False
    assert compile_condition("not ('ab' * 5000) * 5000").evaluate(variables) is False
    assert compile_condition("len('ab' * 5000) == 10000").evaluate(variables) is True
    assert compile_condition("len(tool_name + tool_name) > 0").evaluate(variables) is False
    assert compile_condition("len(tool_name + 'y') == 600001").evaluate(variables) is True
    assert compile_condition("'%s' % step == '12'").evaluate(variables) is False  # no formatting


def test_unusual_truthiness_is_false() -> None:
    class Weird:
        def __bool__(self) -> bool:
            raise RuntimeError("no truth here")

        def __eq__(self, other: object) -> bool:
            return self is other

        __hash__ = object.__hash__

    assert compile_condition("error").evaluate(step_variables(error=Weird())) is False


# --- Snapshot ----------------------------------------------------------------------------


def test_snapshot() -> None:
    snap = Snapshot({"user_preference": "quarterly", "changed": "a key"}, changed=True)
    assert isinstance(snap, Mapping)
    assert snap.changed is True
    assert snap.user_preference == "quarterly"
    assert snap.missing is None
    assert snap["changed"] == "a key"
    assert dict(snap) == {"user_preference": "quarterly", "changed": "a key"}
    assert "changed" in snap and "missing" not in snap and len(snap) == 2
    with pytest.raises(KeyError):
        snap["missing"]
    with pytest.raises(AttributeError):
        _ = snap._private
    assert Snapshot(None, changed=False) == {}
    assert "changed=True" in repr(snap)
    assert pickle.loads(pickle.dumps(snap)) == snap
    variables = {"memory": snap}
    assert compile_condition("memory.changed").evaluate(variables)
    assert compile_condition("memory['changed'] == 'a key'").evaluate(variables)


# --- fuzzing: BreakpointError or a bool, nothing else --------------------------------------

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
SAMPLE = step_variables(
    tool_name="send_email",
    error={"type": "TimeoutError", "message": "slow"},
    memory=Snapshot({"a": [1, "x", None], "b": {"c": 2.5}, "": 0}, changed=True),
)
TOKENS = [
    *VARIABLES,
    *("len", "abs", "min", "max", "range", "__class__", "_x", "x"),
    *("0", "1", "-1", "0.5", "10", "10000", "1e308", "'a'", "''", "True", "False", "None"),
    *("==", "!=", "<", "<=", ">", ">=", "in", "not in", "is", "is not", "and", "or", "not"),
    *("+", "-", "*", "/", "%", "**", "//", ".", ",", "(", ")", "[", "]", ":", "=", ":="),
    *("lambda", "for", "if", "else", "f'", "{", "}", "#", "\n", ";", "import"),
    *(".changed", ".a", ".b", ".c", "[0]", "[-1]", "['a']", "[1:]", "()"),
]


def fuzz_once(text: str) -> None:
    try:
        condition = compile_condition(text)
    except BreakpointError as error:
        event("rejected")
        assert error.expression == text
        assert error.offset is None or 0 <= error.offset <= len(text)
        assert "Allowed in a condition" in str(error)
        return
    event("compiled")
    assert condition.evaluate(SAMPLE) in (True, False)
    assert condition.evaluate({}) in (True, False)


@FUZZ
@given(st.text(st.characters(max_codepoint=127), max_size=60))
def test_fuzz_ascii_text(text: str) -> None:
    fuzz_once(text)


@FUZZ
@given(st.text(alphabet=string.ascii_letters + string.digits + " _.'()[]=<>!+-*/%,", max_size=60))
def test_fuzz_expression_like_text(text: str) -> None:
    fuzz_once(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join).filter(lambda t: len(t) <= 60))
def test_fuzz_token_soup(text: str) -> None:
    fuzz_once(text)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner),
    max_leaves=6,
)
SNAPSHOTS = st.builds(
    Snapshot, st.dictionaries(st.sampled_from("abc"), JSON, max_size=3), changed=st.booleans()
)
ENVIRONMENTS = st.fixed_dictionaries(
    {name: SNAPSHOTS if name in ("memory", "variables") else JSON for name in VARIABLES}
)
ATOMS = st.sampled_from(
    [
        *VARIABLES,
        *("memory.changed", "memory.a", "variables.b.c", "memory['a'][0]", "variables.a[-1]"),
        *("0", "1", "-1", "0.5", "10000", "1e308", "'a'", "''", "True", "None", "(1, 'a')", "[]"),
    ]
)


def _combine(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "%", "==", "<", ">=", "in", "not in", "and"])
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["not ", "-"]), inner).map(lambda t: f"({t[0]}({t[1]}))"),
        st.tuples(st.sampled_from(["len", "abs", "min", "max"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(inner, inner).map(lambda t: f"max({t[0]}, {t[1]})"),
        inner.map(lambda e: f"(({e}) is not None)"),
    )


@settings(FUZZ, max_examples=150)
@given(st.recursive(ATOMS, _combine, max_leaves=10), ENVIRONMENTS)
def test_fuzz_valid_conditions_on_random_values(text: str, environment: dict[str, Any]) -> None:
    """Well-formed conditions over arbitrary JSON-like values: a bool, never an exception."""
    condition = compile_condition(text)
    assert condition.evaluate(environment) in (True, False)
