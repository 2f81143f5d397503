"""The Python API prices the model calls that run live as pytest and `opswald replay` do:
the shipped price table, with the project's `opswald_prices` over it. Real openai SDK
against the fake provider on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

import opswald
from fakeprovider import FakeProvider
from opswald.pricing import PriceTable
from opswald.session import LLMCallStep, Session, Usage

OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 5
USAGE = Usage(input_tokens=10, output_tokens=5)  # what the fake provider reports
BUDGET = 'expect:\n  budgets: {cost: "+10%"}\n'


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    with FakeProvider() as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        yield fp


def run(input: str) -> str:
    """Two calls to gpt-4o-mini through the openai SDK."""
    answer = ""
    with openai.OpenAI(max_retries=0) as client:  # no socket left for a later gc
        for question in (input, "and then?"):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
            )
            answer += reply.choices[0].message.content or ""
    return answer


def _recorded(folder: Path, name: str = "x") -> Path:
    """A golden recorded through the SDK, with a cost budget of +10% over its cost."""
    path = folder / f"{name}.golden.yaml"
    with opswald.record(path, input="hi") as rec:
        rec.output = run("hi")
    path.write_text(path.read_text() + BUDGET)
    return path


def _llm_steps(session: Session) -> list[LLMCallStep]:
    return [s for s in session.step_list if isinstance(s, LLMCallStep)]


def test_a_live_replay_prices_its_calls_with_the_shipped_table(
    tmp_path: Path, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    golden = _recorded(tmp_path)
    replay = opswald.Replay(str(golden), adapter=run, mode="live")
    result = replay.run()
    assert result is not None
    assert result.passed, result.verdict.findings
    table = PriceTable.load_default()
    steps = _llm_steps(result.actual)
    assert len(steps) == 2 and len(provider.requests) == 4  # recorded, then live
    assert [(s.cost, s.cost_source) for s in steps] == [
        (table.cost("gpt-4o-mini", USAGE), table.cost_source_of("gpt-4o-mini"))
    ] * 2
    assert [s.cost for s in replay.steps if s.type == "llm_call"] == [s.cost for s in steps]


def test_a_fork_prices_its_live_calls_at_the_other_models_price(
    tmp_path: Path, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fork's second call runs live on gpt-4o: priced, it costs more than the budget
    allows (the budget is checked, not "cannot be checked")."""
    monkeypatch.chdir(tmp_path)
    replay = opswald.Replay(_recorded(tmp_path), adapter=run)
    fork = replay.fork_from(step=2, modifications={"model": "gpt-4o"})
    result = fork.run()
    assert result is not None
    table = PriceTable.load_default()
    first, second = _llm_steps(result.actual)
    assert first.cost == table.cost("gpt-4o-mini", USAGE)  # served as recorded
    assert (second.model, second.cost) == ("gpt-4o", table.cost("gpt-4o", USAGE))
    (finding,) = result.verdict.failures
    assert finding.message.startswith("budget exceeded: cost"), finding.message


def test_batch_replay_with_modifications_prices_its_live_calls(
    tmp_path: Path, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    goldens = [_recorded(tmp_path, "a"), _recorded(tmp_path, "b")]
    batch = opswald.batch_replay(goldens, adapter=run, modifications={"temperature": 0.5})
    assert batch.success_rate == 1.0, {n: r.verdict.findings for n, r in batch.results.items()}
    table = PriceTable.load_default()
    for result in batch.results.values():
        assert result.fork_step == 1
        assert [s.cost for s in _llm_steps(result.actual)] == [table.cost("gpt-4o-mini", USAGE)] * 2


def test_the_projects_price_file_prices_live_calls(
    tmp_path: Path, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config pytest would use for the golden names a price file: its price wins over
    the shipped one, as under pytest; a golden given as a Session uses the working
    directory's config."""
    project = tmp_path / "project"
    (project / "goldens").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\nopswald_prices = prices.yaml\n")
    (project / "prices.yaml").write_text(
        "as_of: '2030-01-01'\nmodels:\n  gpt-4o-mini: {input: 1000.0, output: 2000.0}\n"
    )
    monkeypatch.chdir(project)
    golden = _recorded(project / "goldens")
    expected = (round((10 * 1000.0 + 5 * 2000.0) / 1_000_000, 10), "price_table:2030-01-01")
    assert [(s.cost, s.cost_source) for s in _llm_steps(opswald.load(golden))] == [expected] * 2
    for source in (golden, opswald.load(golden)):
        result = opswald.Replay(source, adapter=run, mode="live").run()
        assert result is not None and result.passed, result.verdict.findings
        assert [(s.cost, s.cost_source) for s in _llm_steps(result.actual)] == [expected] * 2


def test_a_price_file_that_cannot_be_used_is_a_warning_and_the_shipped_table_prices(
    tmp_path: Path, provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    golden = _recorded(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\nopswald_prices = missing.yaml\n")
    with pytest.warns(UserWarning, match=r"^opswald.Replay: .*using the shipped price table"):
        replay = opswald.Replay(golden, adapter=run, mode="live")
    result = replay.run()
    assert result is not None and result.passed, result.verdict.findings
    table = PriceTable.load_default()
    assert [s.cost for s in _llm_steps(result.actual)] == [table.cost("gpt-4o-mini", USAGE)] * 2
