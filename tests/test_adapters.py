"""Adapters that do not fit: one that cannot take the golden's input is a misconfiguration
(a failure naming it, never a recording), and the ini setting's messages say what is wrong."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import opswald
from opswald import adapters

STUB = "name: g\ninput:\n  q: hello\n"

AGENT = """
import opswald


@opswald.tool
def lookup(q):
    return {"q": q, "n": len(q)}


def run(input):
    return {"n": lookup(input["q"])["n"]}


class Agent:
    def run(self, input):  # an instance method
        return run(input)

    @staticmethod
    def static(input):
        return run(input)


class CallableAgent:  # called as CallableAgent(input): it takes no arguments
    def __call__(self, input):
        return run(input)


agent = Agent()
callable_agent = CallableAgent()


def no_input():
    return {}


def keyword_only(*, input):
    return run(input)


def wrong_inside(input):
    return len(5)  # the agent's own TypeError


def mods(input, modifications):
    return {"mods": modifications}
"""


def _setup(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(agent=AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = {spec}\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "g.golden.yaml").write_text(STUB)


@pytest.mark.parametrize(
    ("spec", "lines"),
    [
        (
            "agent:Agent.run",
            [
                "*opswald_adapter = 'agent:Agent.run' cannot take the golden's input: opswald "
                "calls it as adapter(input), and agent:Agent.run is (self, input): missing a "
                "required argument: 'input'",
                "*Agent.run is an instance method named through its class*agent:runner.run*",
            ],
        ),
        (
            "agent:CallableAgent",
            [
                "*opswald_adapter = 'agent:CallableAgent' cannot take the golden's input: "
                "opswald calls it as adapter(input), and agent:CallableAgent is (): too many "
                "positional arguments",
                "*a class is called as CallableAgent(input)*"
                "to call its instances, name one*agent:runner)",
            ],
        ),
        ("agent:no_input", ["*agent:no_input is (): too many positional arguments"]),
        (
            "agent:keyword_only",
            ["*agent:keyword_only is (*, input): too many positional arguments"],
        ),
    ],
)
@pytest.mark.parametrize("mode", ["record", "replay"])
def test_an_adapter_that_cannot_take_the_input_fails_and_records_nothing(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    spec: str,
    lines: list[str],
    mode: str,
) -> None:
    _setup(pytester, monkeypatch, spec)
    result = pytester.runpytest("--opswald-goldens", f"--opswald-mode={mode}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(lines)
    out = result.stdout.str()
    assert "recorded" not in out and "Traceback" not in out
    assert (pytester.path / "goldens" / "g.golden.yaml").read_text() == STUB


def test_a_complete_golden_is_not_passed_by_an_adapter_that_cannot_take_its_input(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A golden recorded before the fix holds the binding's TypeError as its `error:`."""
    _setup(pytester, monkeypatch, "agent:Agent.run")
    (pytester.path / "goldens" / "g.golden.yaml").write_text(
        STUB
        + "steps: []\noutput: null\nerror:\n  type: TypeError\n"
        + "  message: \"Agent.run() missing 1 required positional argument: 'input'\"\n"
    )
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot take the golden's input*"])


@pytest.mark.parametrize(
    "spec", ["agent:agent.run", "agent:Agent.static", "agent:callable_agent", "agent:mods"]
)
def test_adapters_that_take_the_input_record_and_replay(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    _setup(pytester, monkeypatch, spec)
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    assert "error:" not in (pytester.path / "goldens" / "g.golden.yaml").read_text()
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_a_type_error_raised_inside_the_agent_is_the_agents_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(pytester, monkeypatch, "agent:wrong_inside")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*recorded a session that ends with TypeError: object of type*"])
    text = (pytester.path / "goldens" / "g.golden.yaml").read_text()
    assert "type: TypeError" in text
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_a_hook_adapter_that_cannot_take_the_input_is_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(pytester, monkeypatch, "agent:run")
    pytester.makeconftest(
        "import agent\n\ndef pytest_opswald_adapter(golden, config):\n    return agent.Agent.run\n"
    )
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the adapter from pytest_opswald_adapter cannot take the golden's input*"]
    )


def test_the_replay_api_refuses_an_adapter_that_cannot_take_the_input() -> None:
    class Agent:
        def run(self, input: object) -> object:
            return input

    golden = opswald.Session(name="g", input={"q": "hi"}, steps=[], output={"q": "hi"})
    with pytest.raises(adapters.AdapterMismatch, match=r"cannot take the golden's input"):
        opswald.Replay(golden, adapter=Agent.run)  # type: ignore[arg-type]


def test_a_wrapper_that_hides_its_signature_is_called_as_before() -> None:
    """A decorator's (*args, **kwargs) wrapper says nothing about what it accepts: no
    check, the call itself decides (as before)."""
    import functools

    def inject(fn):  # type: ignore[no-untyped-def]
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            return fn("client", *args, **kwargs)

        return wrapper

    @inject
    def run(client: str, input: object) -> object:
        return {"client": client, "input": input}

    assert adapters.call(run, {"q": 1}, {}) == {"client": "client", "input": {"q": 1}}


def test_what_an_adapters_signature_says_is_read_once_and_holds_for_every_call() -> None:
    """The signature is read once per adapter (not per golden): a second call of an
    adapter that cannot take the input is refused as the first was, one that takes
    `modifications` gets them each time, and one that does not is never given them."""
    seen: list[dict[str, object]] = []

    def takes_them(input: object, modifications: dict[str, object]) -> object:
        seen.append(modifications)
        return input

    def plain(input: object) -> object:
        return input

    def two(input: object, other: object) -> object:
        return input

    for round_ in (1, 2):
        assert adapters.call(takes_them, {"q": round_}, {"model": f"m{round_}"}) == {"q": round_}
        assert adapters.call(plain, {"q": round_}, {"model": "m"}) == {"q": round_}
        with pytest.raises(adapters.AdapterMismatch, match=r"missing a required argument"):
            adapters.call(two, {"q": round_}, {})
    assert seen == [{"model": "m1"}, {"model": "m2"}]

    class Unhashable:  # a callable instance that cannot be a cache's key
        __hash__ = None  # type: ignore[assignment]

        def __call__(self, input: object) -> object:
            return ["called", input]

    assert adapters.call(Unhashable(), 1, {}) == ["called", 1]


def test_the_engine_raises_rather_than_records_an_adapter_that_cannot_take_the_input() -> None:
    from opswald.engine.run import RunSettings, execute

    class Agent:
        def run(self, input: object) -> object:
            return input

    stub = opswald.Session(name="g", input={"q": "hi"})
    with pytest.raises(adapters.AdapterMismatch, match=r"instance method named through its"):
        execute(stub, Agent.run, settings=RunSettings(policy="live"))


def test_a_marker_tests_adapter_that_cannot_take_the_input_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(pytester, monkeypatch, "agent:Agent.run")
    pytester.makepyfile(
        test_marked_golden=(  # not test_marker: the suite has one of that name
            "import pytest\n\n"
            '@pytest.mark.golden("goldens/g.golden.yaml")\n'
            "def test_g(golden_replay):\n"
            "    pass\n"
        )
    )
    result = pytester.runpytest("test_marked_golden.py", "--opswald-mode=record")
    result.assert_outcomes(errors=1)  # in the fixture, as for an adapter that is not found
    result.stdout.fnmatch_lines(["*'agent:Agent.run' cannot take the golden's input*"])
    assert (pytester.path / "goldens" / "g.golden.yaml").read_text() == STUB


OBJECTS = """
import dataclasses
import decimal
import os

import opswald


@opswald.tool
def lookup(q):
    return {"q": q, "n": len(q)}


class Agent:  # a class adapter: its instance is the output
    def __init__(self, input):
        self.result = {"n": lookup(input["q"])["n"]}


class Handle:
    pass


def nested(input):
    if os.environ.get("AGENT_OBJECT"):
        return {"n": lookup(input["q"])["n"], "items": [1, Handle()]}
    return {"n": lookup(input["q"])["n"], "items": [1, 2]}


@dataclasses.dataclass
class Answer:
    n: int
    amount: decimal.Decimal


def data(input):
    return Answer(n=lookup(input["q"])["n"], amount=decimal.Decimal("1.50"))
"""


def _objects(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    _setup(pytester, monkeypatch, spec)
    pytester.makepyfile(agent=OBJECTS)


@pytest.mark.parametrize(
    ("spec", "lines"),
    [
        (
            "agent:Agent",
            [
                "*the agent's output has no data form: output is an instance of agent.Agent, "
                "written only as its repr <agent.Agent object at 0x*>, which changes every run",
                "*hint: return plain data (dicts, lists, strings, numbers), a dataclass or a "
                "pydantic model; an adapter that is a class returns the instance it creates: "
                "name a function that returns the agent's result instead",
            ],
        ),
        (
            "agent:nested",
            [
                "*output.items[[]1] is an instance of agent.Handle, written only as its repr*",
                "*hint: return plain data (dicts, lists, strings, numbers), a dataclass or a "
                "pydantic model",
            ],
        ),
    ],
)
def test_an_output_with_no_data_form_is_not_recorded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str, lines: list[str]
) -> None:
    _objects(pytester, monkeypatch, spec)
    monkeypatch.setenv("AGENT_OBJECT", "1")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            *lines,
            "fix: not written: a golden holding that repr would fail its own next replay",
        ]
    )
    assert (pytester.path / "goldens" / "g.golden.yaml").read_text() == STUB


def test_an_update_does_not_write_an_output_with_no_data_form(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _objects(pytester, monkeypatch, "agent:nested")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    recorded = (pytester.path / "goldens" / "g.golden.yaml").read_text()
    monkeypatch.setenv("AGENT_OBJECT", "1")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output.items[[]1] is an instance of agent.Handle*"])
    assert (pytester.path / "goldens" / "g.golden.yaml").read_text() == recorded


def test_dataclasses_and_stable_reprs_are_recorded_and_replay(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _objects(pytester, monkeypatch, "agent:data")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    text = (pytester.path / "goldens" / "g.golden.yaml").read_text()
    assert "amount: Decimal('1.50')" in text and "n: 5" in text
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_formless_names_the_first_part_written_only_as_a_repr_with_an_address() -> None:
    import dataclasses
    import decimal

    from opswald.jsonable import formless

    class Thing:
        pass

    @dataclasses.dataclass
    class Box:
        inside: object

    assert formless({"a": [1, "x", decimal.Decimal("2")], "b": (None, True)}) is None
    assert formless("<agent.Agent object at 0x7f00>") is None  # a string the agent wrote
    found = formless({"a": [1, {"b": Box(inside=Thing())}]})
    assert found is not None
    assert found.path == ("a", 1, "b", "inside")
    assert found.kind.endswith(".Thing") and " object at 0x" in found.text
    assert formless(lambda: 1) is not None


def _package(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    _setup(pytester, monkeypatch, spec)
    pytester.mkpydir("myagent")
    (pytester.path / "myagent" / "main.py").write_text(
        "import opswald\n\n\n"
        "def helper(q):\n    return len(q)\n\n\n"
        "@opswald.tool\ndef lookup(q):\n    return q\n\n\n"
        "def run(input):\n    return {'n': helper(lookup(input['q']))}\n"
    )  # `lookup` is a step of the agent: never named as one


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (
            "myagent.main",
            "opswald_adapter = 'myagent.main' names a module, not a callable: it wants "
            "'package.module:callable'; myagent.main defines helper, run\n"
            "fix: name one of them, for example 'myagent.main:run'",
        ),
        (
            "myagent",
            "opswald_adapter = 'myagent' names a module, not a callable: it wants "
            "'package.module:callable'",
        ),
        ("myagent.main:", "opswald_adapter = 'myagent.main:' names a module, not a callable*"),
        (  # a name the module lacks: what it defines, and one that takes the input
            "myagent.main:nope",
            "opswald_adapter = 'myagent.main:nope': 'myagent.main' has no attribute 'nope'; "
            "myagent.main defines helper, run\n"
            "fix: name one of them, for example 'myagent.main:run'",
        ),
        (  # a package that defines nothing itself: its modules
            "myagent.nope",
            "opswald_adapter = 'myagent.nope': 'myagent' has no attribute 'nope'; myagent is "
            "a package, with the modules main\n"
            "fix: name a callable in one of them ('myagent.main:callable')",
        ),
    ],
)
def test_a_setting_that_names_a_module_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str, line: str
) -> None:
    _package(pytester, monkeypatch, spec)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(line.split("\n"))


@pytest.mark.parametrize(
    ("spec", "lines"),
    [
        (  # the README's case: agent.py beside pytest.ini, a name it does not define
            "agent:nosuch",
            [
                "opswald_adapter = 'agent:nosuch': 'agent' has no attribute 'nosuch'; agent "
                "defines run, Agent, CallableAgent, no_input, keyword_only, ...",  # no tool
                "fix: name one of them, for example 'agent:run'",
            ],
        ),
        (  # through a class: its instance methods need an instance
            "agent:Agent.nosuch",
            [
                "opswald_adapter = 'agent:Agent.nosuch': 'agent:Agent' has no attribute "
                "'nosuch'; agent:Agent defines run, static",
                "fix: name one of them, for example 'agent:Agent.static'",
            ],
        ),
        (
            "agent:agent.nosuch",
            [
                "*'agent:agent' has no attribute 'nosuch'; agent:agent defines run, static",
                "fix: name one of them, for example 'agent:agent.run'",
            ],
        ),
    ],
)
def test_a_setting_naming_a_missing_attribute_lists_what_is_there_and_a_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str, lines: list[str]
) -> None:
    _setup(pytester, monkeypatch, spec)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(lines)
    assert not (pytester.path / "goldens" / "g.golden.yaml").read_text().count("steps")


def test_a_submodule_the_package_imports_is_named_as_a_module_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _package(pytester, monkeypatch, "myagent.main")
    (pytester.path / "myagent" / "__init__.py").write_text("from myagent import main\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["opswald_adapter = 'myagent.main' names a module, not a*"])


def test_a_missing_method_of_a_class_whose_methods_need_an_instance_says_to_name_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its instance methods are not offered as the example: named through the class they
    cannot take the input, so the fix is the one an instance method gets."""
    module = "bots_with_instance_methods"
    (tmp_path / f"{module}.py").write_text(
        "class Bot:\n    def answer(self, input):\n        return input\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(adapters.AdapterNotFound) as raised:
            adapters.import_string(f"{module}:Bot.run", setting="opswald_adapter")
    finally:
        sys.modules.pop(module, None)
    assert str(raised.value).splitlines() == [
        "opswald_adapter = 'bots_with_instance_methods:Bot.run': "
        "'bots_with_instance_methods:Bot' has no attribute 'run'; "
        "bots_with_instance_methods:Bot defines answer",
        "fix: Bot.answer is an instance method named through its class: name it on an "
        "instance (`runner = Bot()` in module bots_with_instance_methods, then "
        "bots_with_instance_methods:runner.answer), or make it a @staticmethod or a function",
    ]


@pytest.mark.parametrize("spec", ["myagent.main:run", "myagent.main.run"])
def test_a_callable_in_a_submodule_is_found(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    _package(pytester, monkeypatch, spec)
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
