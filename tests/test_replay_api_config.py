"""The Python API applies the project's pytest config as `opswald replay` and pytest do:
its request rules (`opswald_request_ignore`, `opswald_request_normalize`), its redaction
(`opswald_redact`) and its side-effect tools, found from the golden's path (a `Session`:
the working directory). A golden replayed with the API gets pytest's verdict."""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.projectconfig import SettingError
from opswald.redact import _RUN_REDACTOR

AGENT = textwrap.dedent(
    '''
    """Two model calls that send a SEED, a CONTACT and a DAY, then a notice sent to the
    CONTACT by a tool."""
    import os

    import opswald


    @opswald.llm(provider="sim")
    def chat(*, model, messages, seed):
        return {"content": "ok " + messages[-1]["content"], "finish_reason": "stop"}


    @opswald.tool
    def notify(to):
        return "sent"


    def run(input):
        seed = int(os.environ.get("SEED", "1"))
        contact = os.environ.get("CONTACT", "nobody")
        day = os.environ.get("DAY", "1")
        question = f"{input['q']} (contact {contact}) on day {day}"
        chat(model="sim-small", messages=[{"role": "user", "content": question}], seed=seed)
        answer = chat(model="sim-small", messages=[{"role": "user", "content": "and?"}], seed=seed)
        notify(to=contact)
        return {"answer": answer["content"]}
    '''
)


@pytest.fixture(autouse=True)
def _outside_a_run() -> Iterator[None]:
    """As in a script: in a pytest run, `opswald.record` and Replay take that run's
    redaction rules (here the rules of the run testing opswald), not the config's."""
    token = _RUN_REDACTOR.set(None)
    try:
        yield
    finally:
        _RUN_REDACTOR.reset(token)


def project(root: Path, module: str, ini: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`root/MODULE.py` (AGENT), a pytest.ini with `opswald_adapter = MODULE:run` and the
    `ini` lines, and `root/goldens/g.golden.yaml` recorded with `opswald.record` from `root`
    with SEED 1 and the environment's CONTACT."""
    source = root / f"{module}.py"
    source.write_text(AGENT, encoding="utf-8")
    (root / "pytest.ini").write_text(
        f"[pytest]\nopswald_adapter = {module}:run\n{textwrap.dedent(ini)}", encoding="utf-8"
    )
    spec = importlib.util.spec_from_file_location(f"{module}_recording", source)
    assert spec is not None and spec.loader is not None
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    monkeypatch.chdir(root)
    monkeypatch.setenv("SEED", "1")
    golden = root / "goldens" / "g.golden.yaml"
    golden.parent.mkdir()
    with opswald.record(golden, name="g", input={"q": "hello"}) as rec:
        rec.output = agent.run({"q": "hello"})
    return golden


def api_passes(golden: Path) -> list[bool]:
    """The API's verdicts on `golden`: Replay of its path, Replay of the loaded Session
    (from the working directory), a fork from step 2 (whether step 1 matched, and was
    served) and batch_replay."""
    verdicts = []
    for source in (golden, opswald.load(golden)):
        result = opswald.Replay(source).run()
        assert result is not None
        verdicts.append(result.passed)
    fork = opswald.Replay(golden).fork_from(step=2).run()
    assert fork is not None
    verdicts.append(fork.fork_step == 2)  # step 1 served: it matched (else live from 1)
    verdicts.append(opswald.batch_replay([golden]).success_rate == 1.0)
    return verdicts


@pytest.mark.parametrize("configured", [True, False])
@pytest.mark.parametrize(
    ("setting", "env"),
    [
        ("opswald_request_ignore =\n    params.seed\n", {"SEED": "7"}),
        ("opswald_request_normalize = day [0-9]+ => day <n>\n", {"DAY": "2"}),
    ],
)
def test_the_configs_request_rules_give_the_api_pytests_verdict(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    env: dict[str, str],
    configured: bool,
) -> None:
    """A request field that changes between runs, hidden by a suite-wide rule: the API
    replayed with the default rules and failed where pytest passed."""
    module = f"cfgagent_{setting.split(maxsplit=1)[0]}_{configured}"
    golden = project(pytester.path, module, setting, monkeypatch)
    if not configured:
        (pytester.path / "pytest.ini").write_text(f"[pytest]\nopswald_adapter = {module}:run\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert api_passes(golden) == [configured] * 4
    outcome = pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider")
    outcome.assert_outcomes(**({"passed": 1} if configured else {"failed": 1}))


def test_the_config_is_found_from_the_goldens_path(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any
) -> None:
    """Run from a folder outside the project, the API finds the project's config above a
    golden given by its path (a batch's paths too), as `opswald replay` does."""
    golden = project(
        pytester.path, "pathagent", "opswald_request_ignore = params.seed\n", monkeypatch
    )
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    monkeypatch.setenv("SEED", "7")
    result = opswald.Replay(golden).run()
    assert result is not None and result.passed, result.verdict.findings
    assert opswald.batch_replay([golden]).success_rate == 1.0


@pytest.mark.parametrize("configured", [True, False])
def test_the_configs_redaction_applies_to_record_and_to_api_matching(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    """`opswald_redact = pii`: `opswald.record` writes the address as `<redacted:email>`,
    and the API scrubs the agent's requests alike before matching them (it matched them
    unscrubbed, and failed on every address a golden holds)."""
    module = f"piiagent_{configured}"
    monkeypatch.setenv("CONTACT", "bob@example.com")
    golden = project(pytester.path, module, "opswald_redact = pii\n", monkeypatch)
    text = golden.read_text()
    assert "bob@example.com" not in text and "contact <redacted:email>" in text
    if not configured:
        (pytester.path / "pytest.ini").write_text(f"[pytest]\nopswald_adapter = {module}:run\n")
    assert api_passes(golden) == [configured] * 4
    outcome = pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider")
    outcome.assert_outcomes(**({"passed": 1} if configured else {"failed": 1}))


def test_the_configs_side_effect_tools_hold_a_live_run_unless_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`opswald_side_effect_tools = notify`: a live run stops at notify, as under pytest;
    `side_effect_tools=` given to Replay wins over the config."""
    golden = project(
        pytester.path, "sideagent", "opswald_side_effect_tools = notify\n", monkeypatch
    )
    held = opswald.Replay(golden, mode="live").run()
    assert held is not None and not held.passed
    assert "notify" in held.verdict.findings[0].message
    free = opswald.Replay(golden, mode="live", side_effect_tools=[]).run()
    assert free is not None and free.passed, free.verdict.findings


def test_a_bad_setting_is_refused_before_the_agent_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    golden = project(pytester.path, "badagent", "", monkeypatch)
    ini = pytester.path / "pytest.ini"
    ini.write_text("[pytest]\nopswald_adapter = badagent:run\nopswald_request_normalize = x\n")
    for make in (
        lambda: opswald.Replay(golden),
        lambda: opswald.batch_replay([golden]),
    ):
        with pytest.raises(SettingError) as refused:
            make()
        assert str(refused.value) == (
            f"{ini}: opswald_request_normalize: 'x' is not 'REGEX => PLACEHOLDER'"
        )


def test_an_explicit_suite_is_used_as_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `opswald replay` passes (`suite=`, read from the config it was told of) is not
    read again from the config found for the golden."""
    from opswald.engine.replay import Suite

    golden = project(
        pytester.path, "suiteagent", "opswald_request_ignore = params.seed\n", monkeypatch
    )
    monkeypatch.setenv("SEED", "7")
    result: Any = opswald.Replay(golden, suite=Suite()).run()
    assert result is not None and not result.passed
