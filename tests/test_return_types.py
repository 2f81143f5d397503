"""What replay hands back for an instrumented function's result: the function's return
annotation rebuilt from the recorded data (dataclasses, tuples, dates, pydantic models with
aliases, ...); plain data without one, said at recording time, and never an update that
writes the crash an agent had on data where it expected its own type. A result whose dict
keys a golden would write alike is never written."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import uuid
from typing import Any

import pytest
from pydantic import BaseModel, Field

from conftest import record
from opswald import load
from opswald.jsonable import lost_keys, to_jsonable
from opswald.returns import Returns

TYPES_AGENT = """
import dataclasses, datetime, decimal, enum, pathlib, uuid
from typing import Optional

import opswald
from pydantic import BaseModel, Field


class Color(enum.Enum):
    RED = "red"


class Item(BaseModel):
    sku: str
    unit_price: float = Field(alias="unitPrice")


@dataclasses.dataclass
class Order:
    id: str
    total: decimal.Decimal
    placed: datetime.date
    items: list[Item]


@opswald.tool
def lookup_order(order_id: str) -> Order:
    return Order(order_id, decimal.Decimal("120.10"), datetime.date(2026, 1, 5),
                 [Item(sku="a", unitPrice=1.5)])

@opswald.tool
def pair() -> tuple[int, str]: return (1, "x")
@opswald.tool
def tags() -> set[int]: return {2, 1}
@opswald.tool
def blob() -> bytes: return b"\\xff\\x00"
@opswald.tool
def when() -> datetime.datetime: return datetime.datetime(2026, 1, 5, 3, 4, 5)
@opswald.tool
def price() -> decimal.Decimal: return decimal.Decimal("1.10")
@opswald.tool
def ident() -> uuid.UUID: return uuid.UUID(int=5)
@opswald.tool
def where() -> pathlib.Path: return pathlib.Path("/tmp/x")
@opswald.tool
def color() -> Color: return Color.RED
@opswald.tool
def stock() -> dict[int, int]: return {7: 3}
@opswald.tool
def items() -> list[Item]: return [Item(sku="c", unitPrice=2.0)]
@opswald.tool
def maybe() -> Optional[Item]: return Item(sku="d", unitPrice=3.0)


def run(input):
    order = lookup_order(input["order_id"])
    answers = [pair(), tags(), blob(), when(), price(), ident(), where(), color(), stock(),
               items(), maybe()]
    return {
        "order": [order.total + 1, order.placed.year, order.items[0].unit_price],
        "answers": [repr(a) for a in answers],
        "stock": stock()[7],
    }
"""


def test_annotated_results_replay_as_the_type_the_function_returned(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(agent=TYPES_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "types.golden.yaml"
    golden.write_text("name: types\ninput: {order_id: ORD-1}\n")
    recorded = record(pytester)
    assert "note:" not in recorded.stdout.str()  # every result comes back as it was
    session = load(golden)
    assert session.error is None
    outputs = {s.tool: s.output for s in session.step_list}  # type: ignore[union-attr]
    assert outputs["lookup_order"] == {
        "id": "ORD-1",
        "total": "120.10",
        "placed": "2026-01-05",
        "items": [{"sku": "a", "unit_price": 1.5}],
    }
    assert outputs["price"] == "1.10" and outputs["where"] == "/tmp/x"
    assert outputs["ident"] == "00000000-0000-0000-0000-000000000005"
    assert all(s.attributes is None for s in session.step_list)
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    assert session.output == {
        "order": ["Decimal('121.10')", 2026, 1.5],
        "answers": [
            "(1, 'x')",
            "{1, 2}",
            "b'\\xff\\x00'",
            "datetime.datetime(2026, 1, 5, 3, 4, 5)",
            "Decimal('1.10')",
            "UUID('00000000-0000-0000-0000-000000000005')",
            "PosixPath('/tmp/x')",
            "<Color.RED: 'red'>",
            "{7: 3}",
            "[Item(sku='c', unit_price=2.0)]",
            "Item(sku='d', unit_price=3.0)",
        ],
        "stock": 3,
    }


OLD_TYPES_GOLDEN = """\
name: old
input: {order_id: ORD-1}
steps:
  - {step: 1, type: tool_call, tool: lookup_order, input: {order_id: ORD-1},
     output: {id: ORD-1, total: "Decimal('120.10')", placed: '2026-01-05',
              items: [{sku: a, unit_price: 1.5}]}}
  - {step: 2, type: tool_call, tool: pair, input: {}, output: [1, x]}
  - {step: 3, type: tool_call, tool: tags, input: {}, output: [1, 2]}
  - {step: 4, type: tool_call, tool: blob, input: {}, output: "base64:/wA="}
  - {step: 5, type: tool_call, tool: when, input: {}, output: '2026-01-05T03:04:05'}
  - {step: 6, type: tool_call, tool: price, input: {}, output: "Decimal('1.10')"}
  - {step: 7, type: tool_call, tool: ident, input: {},
     output: "UUID('00000000-0000-0000-0000-000000000005')"}
  - {step: 8, type: tool_call, tool: where, input: {}, output: "PosixPath('/tmp/x')"}
  - {step: 9, type: tool_call, tool: color, input: {}, output: red}
  - {step: 10, type: tool_call, tool: stock, input: {}, output: {'7': 3}}
  - {step: 11, type: tool_call, tool: items, input: {}, output: [{sku: c, unit_price: 2.0}]}
  - {step: 12, type: tool_call, tool: maybe, input: {}, output: {sku: d, unit_price: 3.0}}
  - {step: 13, type: tool_call, tool: stock, input: {}, output: {'7': 3}}
output:
  order: ["Decimal('121.10')", 2026, 1.5]
  answers: ["(1, 'x')", "{1, 2}", "b'\\\\xff\\\\x00'", "datetime.datetime(2026, 1, 5, 3, 4, 5)",
            "Decimal('1.10')", "UUID('00000000-0000-0000-0000-000000000005')",
            "PosixPath('/tmp/x')", "<Color.RED: 'red'>", "{7: 3}",
            "[Item(sku='c', unit_price=2.0)]", "Item(sku='d', unit_price=3.0)"]
  stock: 3
"""


def test_goldens_recorded_before_keep_replaying_into_the_annotated_types(
    pytester: pytest.Pytester,
) -> None:
    """What goldens held before the annotation's form was recorded: reprs of decimals,
    UUIDs and paths, `base64:` bytes, string keys, model fields by name, not alias."""
    pytester.makepyfile(agent=TYPES_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "old.golden.yaml").write_text(OLD_TYPES_GOLDEN)
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)


DATACLASS_AGENT = """
import dataclasses, datetime
import opswald

@dataclasses.dataclass
class Order:
    id: str
    total: float
    placed: datetime.date

@opswald.tool
def lookup_order(order_id: str){annotation}:
    return Order(order_id, 120.0, datetime.date(2026, 1, 5))

def run(input):
    return {{"total": lookup_order(input["order_id"]).total}}
"""


def _dataclass_project(pytester: pytest.Pytester, annotation: str) -> Any:
    pytester.makepyfile(agent=DATACLASS_AGENT.format(annotation=annotation))
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "dc.golden.yaml"
    golden.write_text("name: dc\ninput: {order_id: ORD-1}\n")
    return golden


def test_a_dataclass_annotation_replays_a_dataclass(pytester: pytest.Pytester) -> None:
    golden = _dataclass_project(pytester, " -> Order")
    record(pytester)
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    assert load(golden).output == {"total": 120.0}


def test_an_unannotated_object_result_is_noted_and_its_crash_never_blessed(
    pytester: pytest.Pytester,
) -> None:
    golden = _dataclass_project(pytester, "")
    recorded = record(pytester)
    recorded.stdout.fnmatch_lines(
        [
            "note: dc.golden.yaml: lookup_order returned an agent.Order, which replay gives "
            "back as plain data (a dict): annotate lookup_order with its return type "
            "(`-> Order`) or give it decode= to get an Order back"
        ]
    )
    before = golden.read_bytes()
    replayed = pytester.runpytest("--opswald-goldens")
    replayed.assert_outcomes(failed=1)
    text = replayed.stdout.str()
    assert (
        "the agent raised AttributeError: 'dict' object has no attribute 'total', after step 1 "
        "(tool_call lookup_order) handed the agent a dict where the function had returned an "
        "agent.Order" in text
    )
    assert "fix: annotate lookup_order with its return type (`-> Order`) or give it decode=" in (
        text
    )
    assert "accept it with --opswald-update" not in text
    updated = pytester.runpytest("--opswald-goldens", "--opswald-update")
    updated.assert_outcomes(failed=1)
    assert "fix: not written: the agent failed on what replay handed it" in updated.stdout.str()
    assert golden.read_bytes() == before  # the crash is not written
    assert load(golden).error is None


def test_a_decode_callable_rebuilds_a_tool_result(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        agent=DATACLASS_AGENT.format(annotation="").replace(
            "@opswald.tool\n", "@opswald.tool(decode=lambda d: Order(**d))\n"
        )
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "dc.golden.yaml").write_text("name: dc\ninput: {order_id: A}\n")
    assert "note:" not in record(pytester).stdout.str()
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


ALIAS_AGENT = """
import opswald
from pydantic import BaseModel, Field

class Reply(BaseModel):
    content: str
    finish_reason: str = Field(alias="finishReason")

@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model: str, messages: list) -> Reply:
    return Reply(content="hello", finishReason="stop")

@opswald.tool
def last_reply() -> Reply:
    return Reply(content="before", finishReason="length")

def run(input):
    r = chat(model="m", messages=[{"role": "user", "content": input["q"]}])
    return {"answer": r.content, "why": r.finish_reason, "last": last_reply().finish_reason}
"""

OLD_ALIAS_GOLDEN = """\
name: alias
input: {q: hi}
steps:
  - step: 1
    type: llm_call
    provider: acme
    api: acme.chat
    model: m
    input: {messages: [{role: user, content: hi}]}
    output: {content: hello, finish_reason: stop}
    raw: {content: hello, finish_reason: stop}
  - {step: 2, type: tool_call, tool: last_reply, input: {},
     output: {content: before, finish_reason: length}}
output: {answer: hello, why: stop, last: length}
"""


def test_models_with_field_aliases_replay(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(agent=ALIAS_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    old = pytester.path / "goldens" / "alias.golden.yaml"
    old.write_text(OLD_ALIAS_GOLDEN)
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)  # as recorded before
    new = pytester.path / "goldens" / "fresh.golden.yaml"
    new.write_text("name: fresh\ninput: {q: hi}\n")
    record(pytester, "-k", "fresh")
    assert load(new).output == {"answer": "hello", "why": "stop", "last": "length"}
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=2)


KEYS_AGENT = """
import opswald

@opswald.tool
def prices(){annotation}:
    return {{1: 9.99, "1": 19.99, None: 0.0, "null": 5.0}}

def run(input):
    if input.get("output"):
        return {{2: "int key", "2": "str key"}}
    return {{"n": len(prices())}}
"""


@pytest.mark.parametrize("annotation", ["", " -> dict"])
def test_a_result_whose_keys_collide_is_never_written(
    pytester: pytest.Pytester, annotation: str
) -> None:
    pytester.makepyfile(agent=KEYS_AGENT.format(annotation=annotation))
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    stub = "name: keys\ninput: {}\n"
    golden = pytester.path / "goldens" / "keys.golden.yaml"
    golden.write_text(stub)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the result of prices has keys that a golden writes alike: 1 and '1' in value are "
            "both written '1', so the golden would keep only one",
            "fix: not written: the golden would lose those keys",
        ]
    )
    assert golden.read_text() == stub


def test_an_output_whose_keys_collide_is_never_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(agent=KEYS_AGENT.format(annotation=""))
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    stub = "name: out\ninput: {output: true}\n"
    golden = pytester.path / "goldens" / "out.golden.yaml"
    golden.write_text(stub)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["the agent's output has keys that a golden writes alike: 2 and '2' in output *"]
    )
    assert golden.read_text() == stub


def test_keys_are_spelled_as_json_writes_them_whatever_else_the_value_holds() -> None:
    plain = {None: 1, True: 2, False: 3, 1.5: 4, 7: 5}
    assert to_jsonable(plain) == {"null": 1, "true": 2, "false": 3, "1.5": 4, "7": 5}
    assert to_jsonable({**plain, "s": {0}}) == {
        "null": 1,
        "true": 2,
        "false": 3,
        "1.5": 4,
        "7": 5,
        "s": [0],
    }
    found = lost_keys({"a": [{None: 1, "null": 2}]})
    assert found is not None and found.path == ("a", 0) and found.written == "null"
    assert found.keys == ("None", "'null'")
    assert lost_keys({1: 1, 2: 2, "x": {"1": 1}}) is None


class _Reply(BaseModel):
    content: str
    finish_reason: str = Field(alias="finishReason")


class _Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class _Order:
    id: str
    placed: datetime.date


@pytest.mark.parametrize(
    ("hint", "value"),
    [
        (tuple[int, str], (1, "x")),
        (frozenset[int], frozenset({2, 1})),
        (bytes, b"\xff\x00"),
        (bytes, b"text"),
        (datetime.date, datetime.date(2026, 1, 5)),
        (decimal.Decimal, decimal.Decimal("1.10")),
        (uuid.UUID, uuid.UUID(int=5)),
        (pathlib.Path, pathlib.Path("/tmp/x")),
        (_Color, _Color.RED),
        (dict[int, str], {7: "a"}),
        (list[_Reply], [_Reply(content="a", finishReason="stop")]),
        (_Reply | None, None),
        (_Order, _Order("a", datetime.date(2026, 1, 5))),
    ],
)
def test_an_annotated_result_round_trips_through_its_record(hint: Any, value: Any) -> None:
    def tool() -> None: ...

    tool.__annotations__["return"] = hint
    returns = Returns(tool)
    data, rebuilt = returns.encode(value)
    assert rebuilt
    assert to_jsonable(data) == data  # plain data, as a golden holds it
    assert returns(data) == value and type(returns(data)) is type(value)


def test_a_result_the_annotation_does_not_fit_is_handed_back_as_recorded() -> None:
    def tool() -> datetime.date: ...

    returns = Returns(tool)
    assert returns.encode("not a date") == ("not a date", False)
    assert returns.decode("not a date") == ("not a date", False)
    assert returns.decode("2026-01-05") == (datetime.date(2026, 1, 5), True)


def test_a_plain_data_annotation_hands_the_data_over_as_it_is() -> None:
    def tool() -> dict[str, list[float]]: ...

    returns = Returns(tool)
    assert returns.adapter() is None and returns.declared == "dict[str, list[float]]"
    assert returns.encode({"a": [1]}) == ({"a": [1]}, True)  # not 1.0: goldens stay as they were


ARGS_STATE_AGENT = """
import os

import opswald

@opswald.tool
def save(d):
    return True

def run(input):
    if os.environ.get("WHERE") == "args":
        save({1: "x", "1": "y"})
    else:
        opswald.state(variables={None: "a", "null": "b"})
    return {}
"""


def test_a_snapshot_whose_keys_collide_is_never_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for results and outputs: a value lost in the golden would let a changed one pass."""
    monkeypatch.setenv("WHERE", "state")
    pytester.makepyfile(agent=ARGS_STATE_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    stub = "name: w\ninput: {}\n"
    golden = pytester.path / "goldens" / "w.golden.yaml"
    golden.write_text(stub)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "a state snapshot has keys *None and 'null' in state.variables *",
            "fix: not written: the golden would lose those keys",
        ]
    )
    assert golden.read_text() == stub


UNRESOLVED_AGENT = """
from __future__ import annotations

from typing import TYPE_CHECKING

import opswald
import orders

if TYPE_CHECKING:
    from orders import Order


@opswald.tool
def lookup() -> Order:
    return orders.Order("O1")


def run(input):
    return {"id": lookup().id}
"""


def test_an_annotation_that_cannot_be_resolved_is_named_not_asked_for(
    pytester: pytest.Pytester,
) -> None:
    """An annotation replay cannot use (imported only for type checkers) is said to be
    unusable, and why: the note does not ask for the annotation the function has."""
    pytester.makepyfile(
        orders="import dataclasses\n\n\n@dataclasses.dataclass\nclass Order:\n    id: str\n",
        agent=UNRESOLVED_AGENT,
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "u.golden.yaml").write_text("name: u\ninput: {}\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(passed=1)
    out = " ".join(result.stdout.str().split())
    assert (
        "lookup returned an orders.Order, which replay gives back as plain data (a dict): its "
        "return annotation is not used, as it cannot be resolved (NameError: name 'Order' is "
        "not defined)"
    ) in out
    assert "annotate lookup with its return type" not in out


REPR_TEXT_AGENT = """
import pathlib

import opswald
from pydantic import BaseModel


class Note(BaseModel):
    note: str
    where: pathlib.Path


@opswald.tool
def read_note() -> Note:
    return Note(note="Path('/tmp/x')", where=pathlib.Path("/tmp/y"))


@opswald.tool
def note_text() -> list[str]:
    return ["PosixPath('/tmp/z')"]


def run(input):
    n = read_note()
    return {"note": n.note, "where": str(n.where), "text": note_text()}
"""


def test_text_that_looks_like_a_legacy_repr_stays_text_in_a_str_field(
    pytester: pytest.Pytester,
) -> None:
    """Goldens used to hold reprs (`Path('/tmp/x')`) for paths: read so only where the
    annotation expects a path; a `str` field holding such text gets it back as it was."""
    pytester.makepyfile(agent=REPR_TEXT_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "n.golden.yaml"
    golden.write_text("name: n\ninput: {}\n")
    recorded = record(pytester)
    assert "note:" not in recorded.stdout.str()
    assert load(golden).output == {
        "note": "Path('/tmp/x')",
        "where": "/tmp/y",
        "text": ["PosixPath('/tmp/z')"],
    }
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


class _Note(BaseModel):
    note: str
    where: pathlib.Path
    label: str
    total: decimal.Decimal
    blob: str
    raw: bytes
    ids: list[uuid.UUID]
    words: tuple[str, pathlib.Path]


def test_a_legacy_repr_in_an_old_golden_is_read_only_where_its_type_is_expected() -> None:
    def tool() -> _Note: ...

    old = {
        "note": "PosixPath('/a')",
        "where": "PosixPath('/b')",
        "label": "Decimal('1')",
        "total": "Decimal('2.50')",
        "blob": "base64:/wA=",
        "raw": "base64:/wA=",
        "ids": ["UUID('00000000-0000-0000-0000-000000000005')"],
        "words": ["Path('/c')", "PosixPath('/d')"],
    }
    value, rebuilt = Returns(tool).decode(old)
    assert rebuilt
    assert value == _Note(
        note="PosixPath('/a')",
        where=pathlib.Path("/b"),
        label="Decimal('1')",
        total=decimal.Decimal("2.50"),
        blob="base64:/wA=",
        raw=b"\xff\x00",
        ids=[uuid.UUID(int=5)],
        words=("Path('/c')", pathlib.Path("/d")),
    )


HIDDEN_AGENT = """
import enum

import opswald
from pydantic import BaseModel


class Tier(enum.Enum):
    GOLD = "gold"


class Account(BaseModel):
    id: int
    secret: {secret}
    api_key: {api_key}


@opswald.tool
def get_account() -> Account:
    return Account(id=7, api_key={api_key}(1234567890123), secret={value})


def run(input):
    account = get_account()
    return {{"id": account.id, "sent": f"key {{account.api_key}}"{use}}}
"""


def _hidden_project(
    pytester: pytest.Pytester, secret: str, value: str, use: str = "", api_key: str = "int"
) -> Any:
    agent = HIDDEN_AGENT.format(secret=secret, value=value, use=use, api_key=api_key)
    pytester.makepyfile(agent=agent)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "acct.golden.yaml"
    golden.write_text("name: acct\ninput: {}\n")
    return golden


def test_a_credential_field_of_another_type_replays_as_its_placeholder(
    pytester: pytest.Pytester,
) -> None:
    """Recording hides `api_key: int` by its name: the golden's first replay hands the agent
    the placeholder there (never the value), and the recording says so."""
    golden = _hidden_project(pytester, "list[int]", "[4, 2]")
    recorded = record(pytester)
    out = " ".join(recorded.stdout.str().split())
    assert (
        "note: acct.golden.yaml: get_account returned an agent.Account whose secret "
        "(`<redacted:credential>` in the golden, where the annotation expects a valid list) "
        "and api_key (`<redacted:header>`, where it expects a valid integer) recording hid "
        "by their names, as credentials: replay hands the agent the placeholders there; "
        "secret and api_key are hidden in the golden by their names: rename those that hold "
        "no secret (see the names redaction hides under Secrets in the README) and record "
        "the golden again; else give get_account decode= to fill them in for replay"
    ) in out
    text = golden.read_text()
    assert "1234567890123" not in text and "<redacted:header>" in text
    assert load(golden).output == {"id": 7, "sent": "key <redacted:header>"}
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_a_hidden_field_the_agent_computes_with_is_named_in_the_failure(
    pytester: pytest.Pytester,
) -> None:
    _hidden_project(pytester, "int", "99", use=', "next": account.secret + 1', api_key="str")
    record(pytester)
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = " ".join(result.stdout.str().split())
    assert (
        "after step 1 (tool_call get_account) handed the agent `<redacted:credential>` in "
        "place of secret, where its annotation `-> Account` expects a valid integer: "
        "recording hid that value by its name, as a credential's, and the golden does not "
        "hold it"
    ) in out
    assert (
        "fix: secret is hidden in the golden by its name: if it holds no secret, rename it "
        "(see the names redaction hides under Secrets in the README) and record the golden "
        "again; else give get_account decode= to fill it in for replay"
    ) in out
    assert "make step 1's recorded result valid" not in out


def test_a_hidden_field_no_placeholder_can_stand_in_is_said_at_record_and_replay(
    pytester: pytest.Pytester,
) -> None:
    """An enum cannot hold the placeholder even for a moment: the agent gets the data, and
    both the recording and the failure say why, instead of blaming the golden."""
    _hidden_project(pytester, "Tier", "Tier.GOLD", use=', "tier": account.secret.value')
    # api_key: int takes its placeholder for a moment; secret: Tier takes none
    recorded = record(pytester)
    out = " ".join(recorded.stdout.str().split())
    assert (
        "get_account returned an agent.Account whose secret (`<redacted:credential>` in the "
        "golden, where the annotation expects 'gold') recording hid by its name, as a "
        "credential's: replay cannot rebuild `Account` with the placeholder there and hands "
        "the agent the data (a dict)"
    ) in out
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = " ".join(result.stdout.str().split())
    assert (
        "after step 1 (tool_call get_account) was handed the recorded data (dict): its "
        "function's `-> Account` cannot be rebuilt from it, as recording hid secret by its "
        "name, as a credential's, and the placeholder `<redacted:credential>` is not 'gold'"
    ) in out
    assert "fix: secret is hidden in the golden by its name" in out
    assert "make step 1's recorded result valid" not in out


class _Account(BaseModel):
    id: int
    api_key: int


@dataclasses.dataclass(frozen=True)
class _Vault:
    owner: _Account
    keys: tuple[str, _Account]
    by_id: dict[int, _Account]


def test_placeholders_are_put_back_wherever_the_annotation_nests_them() -> None:
    def tool() -> list[_Vault]: ...

    hidden = "<redacted:header>"
    data = [
        {
            "owner": {"id": 1, "api_key": hidden},
            "keys": ["a", {"id": 2, "api_key": hidden}],
            "by_id": {"3": {"id": 3, "api_key": hidden}},
        }
    ]
    back = Returns(tool).rebuild(data)
    assert back.rebuilt
    [vault] = back.value
    assert isinstance(vault, _Vault) and isinstance(vault.keys[1], _Account)
    assert [vault.owner.api_key, vault.keys[1].api_key, vault.by_id[3].api_key] == [hidden] * 3
    assert [h.where for h in back.hidden] == [
        "[0].owner.api_key",
        "[0].keys[1].api_key",
        "[0].by_id.3.api_key",
    ]


UNBUILDABLE_AGENT = """
import opswald


class Order(dict):  # a dict to record (its data form), but no type pydantic builds
    @property
    def id(self):
        return self["id"]


@opswald.tool
def lookup() -> Order:
    return Order(id="O1")


def run(input):
    return {"id": lookup().id}
"""


@pytest.mark.parametrize(
    ("agent", "kind", "reason", "remedy"),
    [
        (
            UNRESOLVED_AGENT,
            "orders.Order",
            "it cannot be resolved (NameError: name 'Order' is not defined)",
            "make it one that resolves when the function is first called (a class imported "
            "outside `if TYPE_CHECKING:`, defined at module level)",
        ),
        (
            UNBUILDABLE_AGENT,
            "agent.Order",
            "pydantic cannot build `Order`",
            "make it a type pydantic builds (a dataclass, a pydantic model)",
        ),
    ],
)
def test_the_replay_fix_names_why_the_annotation_the_function_has_is_not_used(
    pytester: pytest.Pytester, agent: str, kind: str, reason: str, remedy: str
) -> None:
    """The failure of an agent handed plain data where its function has an annotation
    replay cannot use says why that annotation is not used, not to add one."""
    pytester.makepyfile(
        orders="import dataclasses\n\n\n@dataclasses.dataclass\nclass Order:\n    id: str\n",
        agent=agent,
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "u.golden.yaml"
    golden.write_text("name: u\ninput: {}\n")
    record(pytester)
    [step] = load(golden).step_list
    assert step.attributes == {"opswald.returned": kind, "opswald.unusable": reason}
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = " ".join(result.stdout.str().split())
    assert (
        f"fix: lookup's return annotation is not used, as {reason}: {remedy} or give it "
        "decode=, so that replay rebuilds what it returned"
    ) in out
    assert "annotate lookup with its return type" not in out


BINARY_AGENT = """
import opswald, pydantic


class Blob(pydantic.BaseModel):
    name: str
    data: bytes


@opswald.tool
def fetch() -> Blob:
    return Blob(name="x", data=b"\\xff\\x00abc")


@opswald.tool
def fetch_plain():
    return Blob(name="y", data=b"\\xfe\\x01")


def run(input):
    blob = fetch()
    fetch_plain()
    return {"data": blob.data.hex()}
"""


def test_a_model_holding_bytes_that_are_not_utf8_is_recorded_and_given_back(
    pytester: pytest.Pytester,
) -> None:
    """pydantic writes a model's bytes as UTF-8 text in JSON and raises on other bytes:
    the recording crashed the agent there. They are written as base64 text, and an
    annotated function gets its bytes back on replay."""
    pytester.makepyfile(agent=BINARY_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "b.golden.yaml"
    golden.write_text("name: b\ninput: {}\n")
    record(pytester)
    session = load(golden)
    assert session.error is None
    assert [step.output for step in session.step_list] == [
        {"name": "x", "data": "base64:/wBhYmM="},
        {"name": "y", "data": "base64:/gE="},
    ]
    assert session.output == {"data": "ff00616263"}
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_to_jsonable_writes_a_models_non_utf8_bytes_as_base64() -> None:
    class Blob(BaseModel):
        data: bytes

    assert to_jsonable(Blob(data=b"\xff")) == {"data": "base64:/w=="}
    assert to_jsonable(Blob(data=b"ok")) == {"data": "ok"}
    assert lost_keys({"b": Blob(data=b"\xff")}) is None


def test_an_output_changed_by_a_plain_data_answer_says_so_in_its_hint(
    pytester: pytest.Pytester,
) -> None:
    """An agent that does not crash on the dict replay hands it, but writes it otherwise
    (`repr` of a dataclass vs of a dict): the output differs, and the hint names the step
    and the annotation to add before an update writes an output only replay gives."""
    pytester.makepyfile(
        agent=DATACLASS_AGENT.format(annotation="").replace(
            'return {"total": lookup_order(input["order_id"]).total}',
            'return {"order": str(lookup_order(input["order_id"]))}',
        )
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "dc.golden.yaml").write_text("name: dc\ninput: {order_id: A}\n")
    record(pytester)
    replayed = pytester.runpytest("--opswald-goldens")
    replayed.assert_outcomes(failed=1)
    text = " ".join(replayed.stdout.str().split())
    assert "output differs" in text
    assert (
        "hint: step 1 (tool_call lookup_order) handed the agent a dict where the function had "
        "returned an agent.Order: if that is what changed the output, annotate lookup_order "
        "with its return type (`-> Order`) or give it decode=, so that replay rebuilds what it "
        "returned; an update would write an output that only replay gives; otherwise: "
    ) in text


def test_an_output_that_differs_without_a_plain_data_answer_has_no_such_hint(
    pytester: pytest.Pytester,
) -> None:
    golden = _dataclass_project(pytester, " -> Order")
    record(pytester)
    golden.write_text(golden.read_text().replace("total: 120.0", "total: 121.0", 1))
    replayed = pytester.runpytest("--opswald-goldens")
    replayed.assert_outcomes(failed=1)
    assert "handed the agent" not in replayed.stdout.str()


def test_colliding_keys_inside_a_pydantic_model_are_found() -> None:
    """A model's `dict[int | str, X]` field keeps keys that are not strings: written as
    data, `1` and `'1'` are one key, and one value would be lost in silence."""
    from typing import Union

    class Table(BaseModel):
        d: dict[Union[int, str], str]  # noqa: UP007 - the annotation as users write it

    found = lost_keys({"table": Table(d={1: "a", "1": "b"})})
    assert found is not None and found.path == ("table", "d")
    assert lost_keys(Table(d={1: "a", "2": "b"})) is None
