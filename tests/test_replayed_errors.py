"""A recorded exception is raised again with what it carried: its attributes and its args,
so an agent that reads them (`except PaymentError as e: e.code`) replays as it ran."""

from __future__ import annotations

import pytest

from conftest import record
from opswald import load
from opswald.session import ErrorInfo

SECRET = "sk-proj-" + "Z9x8C7v6" * 5

AGENT = """
import datetime

import opswald


class PaymentError(Exception):
    def __init__(self, code, reason):
        super().__init__(f"payment failed ({code}): {reason}")
        self.code = code
        self.reason = reason
        self.details = {"retry": False, "codes": [code, 1]}


class Conflict(Exception):
    pass


class Unreadable(Exception):
    def __init__(self, code):
        super().__init__(f"unreadable answer ({code})")
        self.code = code
        self.response = object()  # no JSON form
        self.when = datetime.date(2024, 5, 1)
        self.tags = {"a", "b"}
        self.ratio = float("nan")
        self.huge = "x" * 20_000  # beyond the size bound
        self._private = "internal"


class AuthError(Exception):
    def __init__(self, token):
        super().__init__("the provider refused the credentials")
        self.token = token
        self.api_key = "plain-key-1234"


class Plain(Exception):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after):
        super().__init__(f"rate limited, retry in {retry_after}s")
        self.retry_after = retry_after


@opswald.tool
def act(case):
    if case == "attributes":
        raise PaymentError(402, "card declined")
    if case == "args":
        raise Conflict(409, "seat taken")
    if case == "unreadable":
        raise Unreadable(502)
    if case == "secret":
        raise AuthError("SECRET")
    if case == "oserror":
        open("missing.txt")
    if case == "keyerror":
        raise KeyError(42)
    if case == "plain":
        raise Plain("nothing more")
    raise ValueError("bad case")


@opswald.llm
def chat(*, model, messages):
    raise RateLimited(3)


def run(input):
    case = input["case"]
    if case == "llm":
        try:
            chat(model="m", messages=[{"role": "user", "content": "hi"}])
        except RateLimited as e:
            return {"retry_after": e.retry_after, "str": str(e)}
    try:
        act(case)
    except PaymentError as e:
        return {"code": e.code, "reason": e.reason, "details": e.details, "str": str(e),
                "repr": repr(e), "class": type(e).__name__}
    except Conflict as e:
        return {"args": list(e.args), "str": str(e), "repr": repr(e)}
    except Unreadable as e:
        return {"code": e.code, "str": str(e)}
    except AuthError as e:
        return {"token": e.token, "api_key": e.api_key}
    except FileNotFoundError as e:
        return {"errno": e.errno, "strerror": e.strerror, "filename": e.filename, "str": str(e)}
    except KeyError as e:
        return {"args": list(e.args), "str": str(e)}
    except (Plain, ValueError) as e:
        return {"str": str(e), "args": list(e.args)}
""".replace("SECRET", SECRET)

CASES = ["attributes", "args", "unreadable", "secret", "oserror", "keyerror", "plain", "builtin"]
CASES += ["llm"]


@pytest.fixture
def errors(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with one stub golden per kind of error."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(agent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    goldens = pytester.mkdir("goldens")
    for case in CASES:
        (goldens / f"{case}.golden.yaml").write_text(f"name: {case}\ninput: {{case: {case}}}\n")
    return pytester


def _error(pytester: pytest.Pytester, case: str) -> ErrorInfo:
    session = load(pytester.path / f"goldens/{case}.golden.yaml")
    (step,) = session.step_list
    assert step.error is not None
    return step.error


def test_recorded_errors_replay_with_their_attributes_and_args(errors: pytest.Pytester) -> None:
    record(errors)
    # each golden passes its own replay: the agent reads what the errors carried
    result = errors.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=len(CASES))

    payment = _error(errors, "attributes")
    assert (payment.type, payment.module, payment.args) == ("PaymentError", "agent", None)
    assert payment.attributes == {
        "code": 402,
        "reason": "card declined",
        "details": {"retry": False, "codes": [402, 1]},
    }
    assert load(errors.path / "goldens/attributes.golden.yaml").output == {
        "code": 402,
        "reason": "card declined",
        "details": {"retry": False, "codes": [402, 1]},
        "str": "payment failed (402): card declined",
        "repr": "PaymentError('payment failed (402): card declined')",
        "class": "PaymentError",
    }

    conflict = _error(errors, "args")
    assert conflict.message == "(409, 'seat taken')"
    assert (conflict.args, conflict.attributes) == ([409, "seat taken"], None)

    llm = _error(errors, "llm")
    assert (llm.type, llm.attributes) == ("RateLimited", {"retry_after": 3})

    oserror = _error(errors, "oserror")
    assert oserror.type == "FileNotFoundError"
    assert oserror.args == [2, "No such file or directory", "missing.txt"]
    assert load(errors.path / "goldens/oserror.golden.yaml").output["errno"] == 2

    keyerror = _error(errors, "keyerror")
    assert (keyerror.message, keyerror.args) == ("42", [42])
    assert keyerror.text() == "KeyError: 42"

    # an error that carries nothing more is written as before: type, message, module
    text = (errors.path / "goldens/plain.golden.yaml").read_text()
    error = "    error:\n      type: Plain\n      message: nothing more\n      module: agent\n"
    assert f"{error}    tool: act\n" in text
    text = (errors.path / "goldens/builtin.golden.yaml").read_text()
    assert "    error:\n      type: ValueError\n      message: bad case\n    tool: act\n" in text


def test_what_json_cannot_hold_is_left_out(errors: pytest.Pytester) -> None:
    record(errors)
    unreadable = _error(errors, "unreadable")
    # an object, a date, a set, NaN, a private name and a 20,000-character text are not kept
    assert unreadable.attributes == {"code": 502}
    errors.runpytest("--opswald-goldens", "-k", "unreadable").assert_outcomes(passed=1)


def test_secrets_in_attributes_are_redacted(errors: pytest.Pytester) -> None:
    record(errors)
    text = (errors.path / "goldens/secret.golden.yaml").read_text()
    assert SECRET not in text
    assert "plain-key-1234" not in text
    attributes = _error(errors, "secret").attributes
    assert attributes is not None
    assert set(attributes) == {"token", "api_key"}
    assert "redacted" in attributes["token"] and "redacted" in attributes["api_key"]
    errors.runpytest("--opswald-goldens", "-k", "secret").assert_outcomes(passed=1)


GONE = """
import opswald


class PaymentError(Exception):
    def __init__(self, code):
        super().__init__(f"payment failed ({code})")
        self.code = code


@opswald.tool
def charge():
    raise PaymentError(402)


def run(input):
    try:
        charge()
    except Exception as e:
        return {"type": getattr(e, "type_name", type(e).__name__),
                "replayed": isinstance(e, opswald.ReplayedToolError),
                "code": getattr(e, "code", None), "str": str(e)}
"""


def test_a_class_that_is_gone_replays_as_replayed_tool_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(agent=GONE)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens/pay.golden.yaml").write_text("name: pay\ninput: {}\n")
    record(pytester)
    session = load(pytester.path / "goldens/pay.golden.yaml")
    (step,) = session.step_list
    assert step.error is not None and step.error.attributes == {"code": 402}
    assert session.output == {
        "type": "PaymentError",
        "replayed": False,
        "code": 402,
        "str": "payment failed (402)",
    }

    # the class was renamed since: the error comes back as a ReplayedToolError naming it
    pytester.makepyfile(agent=GONE.replace("PaymentError", "CardError"))
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "Traceback" not in out
    result.stdout.fnmatch_lines(["*output.replayed: false → true*"])
    result.stdout.fnmatch_lines(["*output.code: 402 → null*"])
    result.stdout.fnmatch_lines(["*output.str: 'payment failed (402)' → 'PaymentError: payment*"])


def test_a_replayed_error_the_agent_lets_out_is_the_recorded_one(
    errors: pytest.Pytester,
) -> None:
    """An agent that lets a replayed error out fails with it as recorded, args, attributes
    and module included (what an update would write back)."""
    errors.makepyfile(leak="from agent import act\n\ndef run(input):\n    act(input['case'])\n")
    errors.makeini("[pytest]\nopswald_adapter = leak:run\n")
    record(errors, "-k", "attributes or args")
    goldens = {
        case: load(errors.path / f"goldens/{case}.golden.yaml") for case in ("attributes", "args")
    }
    assert goldens["attributes"].error is not None
    assert goldens["attributes"].error.attributes == _error(errors, "attributes").attributes
    assert goldens["args"].error is not None and goldens["args"].error.args == [409, "seat taken"]
    errors.runpytest("--opswald-goldens", "-k", "attributes or args").assert_outcomes(passed=2)

    # `error: fixed` makes both fail, so that their actual sessions are saved
    for case in goldens:
        path = errors.path / f"goldens/{case}.golden.yaml"
        path.write_text(path.read_text() + "expect:\n  error: fixed\n")
    result = errors.runpytest(
        "--opswald-goldens", "-k", "attributes or args", "--opswald-save-actual", "actual"
    )
    result.assert_outcomes(failed=2)
    for case, golden in goldens.items():
        actual = load(errors.path / f"actual/{case}.actual.yaml")
        assert actual.error == golden.error, case
