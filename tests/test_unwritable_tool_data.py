"""A tool call whose data a golden cannot hold as it was is never written: arguments
whose dict keys a golden writes alike (`1` and `'1'`, `None` and `'null'`), and a result
with no data form (an object written only as a repr with a memory address). Both fail the
recording or update, naming the tool, instead of writing a golden that lost data or that
changes every run. Every way of calling a tool refuses the same."""

from __future__ import annotations

import pytest

from conftest import agent_project
from opswald.instrument import _binder, _bound_arguments

STUB = "name: t\ninput: {}\n"

# One agent, every way of calling a tool: `input.way` picks it, `input.bad` the data.
AGENT = """
import asyncio
import os

import opswald

BAD = {
    "int": {1: "a", "1": "c"},
    "none": {None: 1, "null": 2},
    "bool": {True: 1, "true": 2},
    "good": {"1": "b"},
    "other": {"1": "d"},
}


class Thing:
    pass


BAD["thing"] = {"where": Thing()}


def made(kind):
    if kind == "thing":
        return Thing()
    if kind == "nested":
        return {"items": [1, Thing()]}
    return {"ok": True}


@opswald.tool
def search(filters):
    return made(os.environ.get("RESULT", ""))


@opswald.tool
async def asearch(filters):
    return made(os.environ.get("RESULT", ""))


@opswald.tool
def spread(*parts, **filters):
    return made(os.environ.get("RESULT", ""))


@opswald.tool
def annotated(filters) -> Thing:
    return made(os.environ.get("RESULT", ""))


@opswald.tool(decode=lambda data: data)
def decoded(filters):
    return made(os.environ.get("RESULT", ""))


def run(input):
    filters = BAD[input.get("bad", os.environ.get("BAD", "good"))]
    way = input["way"]
    if way == "sync":
        search(filters)
    elif way == "async":
        asyncio.run(asearch(filters=filters))
    elif way == "var":
        spread(1, inner=filters)
    elif way == "annotated":
        annotated(filters)
    elif way == "decoded":
        decoded(filters)
    elif way == "call_tool":
        opswald.call_tool(
            "search", {"filters": filters}, lambda: made(os.environ.get("RESULT", ""))
        )
    else:
        async def call():
            return made(os.environ.get("RESULT", ""))

        asyncio.run(opswald.acall_tool("search", {"filters": filters}, call))
    return {"done": True}
"""

WAYS = ["sync", "async", "var", "annotated", "decoded", "call_tool", "acall_tool"]


def _project(pytester: pytest.Pytester, golden: str) -> None:
    pytester.makepyfile(agent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "t.golden.yaml").write_text(golden)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    ("bad", "keys"),
    [("int", "1 and '1'"), ("none", "None and 'null'"), ("bool", "True and 'true'")],
)
def test_arguments_whose_keys_collide_are_never_recorded(
    pytester: pytest.Pytester, way: str, bad: str, keys: str
) -> None:
    stub = f"name: t\ninput: {{way: {way}, bad: {bad}}}\n"
    _project(pytester, stub)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    where = "input.inner" if way == "var" else "input.filters"
    name = {"var": "spread", "annotated": "annotated", "decoded": "decoded"}.get(way, "search")
    if way == "async":
        name = "asearch"
    written = {"int": "1", "none": "null", "bool": "true"}[bad]
    result.stdout.fnmatch_lines(
        [
            f"*the arguments of {name} have keys that a golden writes alike: {keys} in "
            f"{where} are both written '{written}', so the golden would keep only one",
            "*hint: use keys of one type in that dict (strings, say), so that none is lost",
            "fix: not written: the golden would lose those keys",
        ]
    )
    assert (pytester.path / "goldens" / "t.golden.yaml").read_text() == stub


def test_an_update_does_not_write_arguments_whose_keys_collide(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester, "name: t\ninput: {way: sync}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    recorded = (pytester.path / "goldens" / "t.golden.yaml").read_text()
    assert "'1': b" in recorded
    monkeypatch.setenv("BAD", "int")  # the call diverges, runs live, and its keys collide
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the arguments of search have keys that a golden writes alike: 1 and '1' in "
            "input.filters are both written '1'*",
            "fix: not written: the golden would lose those keys",
        ]
    )
    assert (pytester.path / "goldens" / "t.golden.yaml").read_text() == recorded


@pytest.mark.parametrize("way", WAYS)
def test_a_tool_result_with_no_data_form_is_never_recorded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    stub = f"name: t\ninput: {{way: {way}}}\n"
    _project(pytester, stub)
    monkeypatch.setenv("RESULT", "thing")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    name = {"var": "spread", "annotated": "annotated", "decoded": "decoded"}.get(way, "search")
    if way == "async":
        name = "asearch"
    result.stdout.fnmatch_lines(
        [
            f"*the result of {name} has no data form: value is an instance of agent.Thing, "
            "written only as its repr <agent.Thing object at 0x*>, which changes every run",
            f"*hint: return plain data (dicts, lists, strings, numbers), a dataclass or a "
            f"pydantic model from {name}",
            "fix: not written: a golden holding that repr would fail its own next replay",
        ]
    )
    assert (pytester.path / "goldens" / "t.golden.yaml").read_text() == stub


def test_an_update_does_not_write_a_tool_result_with_no_data_form(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester, "name: t\ninput: {way: sync}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    recorded = (pytester.path / "goldens" / "t.golden.yaml").read_text()
    monkeypatch.setenv("BAD", "other")  # the call diverges, runs live, returns an object
    monkeypatch.setenv("RESULT", "nested")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the result of search has no data form: value.items[[]1] is an instance of "
            "agent.Thing*",
            "fix: not written: a golden holding that repr would fail its own next replay",
        ]
    )
    assert (pytester.path / "goldens" / "t.golden.yaml").read_text() == recorded


def test_arguments_and_results_with_a_data_form_are_recorded_and_replay(
    pytester: pytest.Pytester,
) -> None:
    """The refusals leave what a golden can hold alone: string keys, other keys that do
    not collide, data."""
    _project(pytester, "name: t\ninput: {way: var, bad: good}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_tool_request_is_the_plain_copy_of_what_the_binder_gives() -> None:
    """The binder hands over the agent's own objects; `tool_request` copies them as plain
    data (in parameter order) and finds keys that collide."""
    from opswald.instrument import tool_request

    def fn(a: object, *, b: object) -> None: ...

    import inspect

    sig = inspect.signature(fn)
    given = {"x": (1, 2)}
    raw = _binder(sig)((given,), {"b": {2: "c"}}, True)
    assert raw["a"] is given, "not copied by the binder"
    assert raw == _bound_arguments(sig, (given,), {"b": {2: "c"}})
    data, lost = tool_request(raw)
    assert data == {"a": {"x": [1, 2]}, "b": {"2": "c"}}
    assert list(data) == ["a", "b"] and lost is None
    data, lost = tool_request({"a": {"k": [{1: "x", "1": "y"}]}})
    assert lost is not None and lost.path == ("a", "k", 0) and lost.written == "1"


def test_a_model_function_result_with_no_data_form_is_never_recorded(
    pytester: pytest.Pytester,
) -> None:
    """`@opswald.llm` results are recorded the same way as a tool's, and refused the same."""
    pytester.makepyfile(
        agent="""
import opswald

class Reply:
    pass

@opswald.llm
def chat(*, model, messages):
    return Reply()

def run(input):
    chat(model="m", messages=[{"role": "user", "content": "hi"}])
    return "done"
"""
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "t.golden.yaml"
    golden.write_text(STUB)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the result of chat has no data form: value is an instance of agent.Reply, "
            "written only as its repr <agent.Reply object at 0x*>, which changes every run",
            "fix: not written: a golden holding that repr would fail its own next replay",
        ]
    )
    assert golden.read_text() == STUB


def test_a_result_whose_keys_collide_is_never_recorded_with_decode_either(
    pytester: pytest.Pytester,
) -> None:
    """`decode=` rebuilds from the recorded data: it cannot get back a key the golden lost."""
    pytester.makepyfile(
        agent="""
import opswald

@opswald.tool(decode=lambda data: data)
def prices():
    return {1: 9.99, "1": 19.99}

def run(input):
    return {"n": len(prices())}
"""
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "t.golden.yaml"
    golden.write_text(STUB)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the result of prices has keys that a golden writes alike: 1 and '1' in value "
            "are both written '1', so the golden would keep only one",
            "fix: not written: the golden would lose those keys",
        ]
    )
    assert golden.read_text() == STUB


@pytest.mark.parametrize("way", WAYS)
def test_arguments_with_no_data_form_are_never_recorded(
    pytester: pytest.Pytester, way: str
) -> None:
    """An argument the golden could hold only as its repr (a plain class's instance, its
    memory address in it) was written so, and the golden failed its own next replay."""
    stub = f"name: t\ninput: {{way: {way}, bad: thing}}\n"
    _project(pytester, stub)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    name = {"var": "spread", "annotated": "annotated", "decoded": "decoded"}.get(way, "search")
    if way == "async":
        name = "asearch"
    result.stdout.fnmatch_lines(
        [
            f"*the arguments of {name} have no data form: input.*where is an instance of "
            "agent.Thing, written only as its repr <agent.Thing object at 0x*>, which changes "
            "every run",
            f"*hint: pass plain data (dicts, lists, strings, numbers), a dataclass or a "
            f"pydantic model to {name}",
            "fix: not written: a golden holding that repr would fail its own next replay",
        ]
    )
    assert (pytester.path / "goldens" / "t.golden.yaml").read_text() == stub


GENERATOR_AGENT = """
import asyncio

import opswald


@opswald.tool
async def rows(n):
    for i in range(n):
        yield {"i": i}


@opswald.tool
def sync_rows(n):
    for i in range(n):
        yield {"i": i}


async def collect():
    return [row async for row in rows(2)]


def run(input):
    if input == "async":
        return asyncio.run(collect())
    return list(sync_rows(2))
"""


@pytest.mark.parametrize(
    ("given", "name", "what"),
    [
        ("async", "rows", "an async generator function"),
        ("sync", "sync_rows", "a generator function"),
    ],
)
def test_a_generator_function_as_a_tool_is_refused_saying_why(
    pytester: pytest.Pytester, given: str, name: str, what: str
) -> None:
    """QA (typed #5): `@opswald.tool` on a generator function was refused at recording
    with the advice for any value without a data form ("return plain data"), which does not
    say that the function returns before it produces anything."""
    stub = f"name: g\ninput: {given}\n"
    goldens = agent_project(pytester, GENERATOR_AGENT, g=stub)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"  hint: {name} is {what}: a call is recorded when the function returns, and it "
            "returns before it has produced anything; return the items (a list) instead, and "
            f"keep the generator outside {name}",
        ]
    )
    assert (goldens / "g.golden.yaml").read_text() == stub
