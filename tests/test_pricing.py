"""The dated price table: lookup, cached-token arithmetic, overrides, missing models."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

import opswald
from conftest import sdk_setup
from fakeprovider import FakeProvider
from opswald.engine.responses import extract
from opswald.pricing import (
    Price,
    PriceError,
    Pricer,
    PriceTable,
    PriceWarning,
    cost_with_source,
    milliseconds,
    money,
)
from opswald.session import LLMCallStep, Usage


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.load_default()


def test_shipped_table_is_dated_and_sourced(table: PriceTable) -> None:
    assert table.as_of is not None
    assert datetime.date.fromisoformat(table.as_of).year >= 2025
    assert table.source is not None
    assert "list prices" in table.source.lower()
    assert table.currency == "USD"
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3", "o4-mini"):
        assert table.lookup(model) is not None, model
    for model in ("claude-3-5-sonnet", "claude-3-5-haiku", "claude-sonnet-4", "claude-opus-4"):
        assert table.lookup(model) is not None, model


@pytest.mark.parametrize(
    ("model", "listed"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("GPT-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3-2025-04-16", "o3"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("openai/gpt-4o", "gpt-4o"),
    ],
)
def test_lookup_exact_or_longest_snapshot_prefix(
    table: PriceTable, model: str, listed: str
) -> None:
    assert table.lookup(model) == table.prices[listed]


@pytest.mark.parametrize(
    "model", ["gpt-4o-realtime-preview", "o3-pro", "claude-opus-4-7", "gpt-4", "mystery", "", None]
)
def test_lookup_does_not_guess_other_models(table: PriceTable, model: str | None) -> None:
    # a variant is not its family: pricing it silently at the family's price would lie
    assert table.lookup(model) is None


def test_prefix_prefers_the_longest_listed_name() -> None:
    short = Price(input=1, output=1, cache_read=1, cache_write=1)
    long = Price(input=2, output=2, cache_read=2, cache_write=2)
    t = PriceTable({"m": short, "m-mini": long})
    assert t.lookup("m-mini-2024-01-01") == long
    assert t.lookup("m-20240101") == short
    assert t.lookup("m-0613") == short
    assert t.lookup("m-mini-20240101-v1:0") == long
    assert t.lookup("m-max-20240101") is None


def test_cost_with_cache_reads_and_writes_by_hand(table: PriceTable) -> None:
    # claude-sonnet-4: input 3.00, cache_write 3.75, cache_read 0.30, output 15.00 per M.
    usage = Usage(
        input_tokens=10_000,  # normalised: includes the 6,000 read and 2,000 written
        output_tokens=500,  # includes reasoning
        cache_read_tokens=6_000,
        cache_creation_tokens=2_000,
        reasoning_tokens=200,
    )
    # 2,000 x 3.00 + 6,000 x 0.30 + 2,000 x 3.75 + 500 x 15.00 = 22,800 per million
    assert table.cost("claude-sonnet-4-20250514", usage) == 0.0228


def test_cost_openai_cached_tokens_and_rounding(table: PriceTable) -> None:
    # gpt-4o-mini: input 0.15, cache_read 0.075, output 0.60 per M.
    usage = Usage(input_tokens=1_234, output_tokens=56, cache_read_tokens=1_024)
    # 210 x 0.15 + 1,024 x 0.075 + 56 x 0.60 = 31.5 + 76.8 + 33.6 = 141.9 per million
    assert table.cost("gpt-4o-mini", usage) == 0.0001419
    assert table.cost("gpt-4o-mini", Usage(input_tokens=1, output_tokens=0)) == 0.00000015
    assert table.cost("gpt-4o-mini", Usage(input_tokens=0, output_tokens=0)) == 0.0


def test_cost_needs_usage(table: PriceTable) -> None:
    assert table.cost("gpt-4o", None) is None
    assert table.cost("gpt-4o", Usage()) is None


def test_missing_cache_prices_default_to_input(table: PriceTable) -> None:
    price = table.lookup("gpt-4-turbo")
    assert price == Price(input=10.0, output=30.0, cache_read=10.0, cache_write=10.0)


def test_override_file_merges_over_the_shipped_table(table: PriceTable, tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "as_of: '2026-01-15'\n"
        "source: our negotiated rates\n"
        "unit: per_thousand_tokens\n"
        "models:\n"
        "  gpt-4o: {input: 0.002, output: 0.008}\n"
        "  acme-llm: {input: 0.001, output: 0.002, cache_read: 0.0005}\n"
    )
    merged = table.merged(PriceTable.from_file(path))
    assert merged.lookup("gpt-4o-2024-08-06") == Price(
        input=2.0, output=8.0, cache_read=2.0, cache_write=2.0
    )
    assert merged.lookup("acme-llm") == Price(
        input=1.0, output=2.0, cache_read=0.5, cache_write=1.0
    )
    assert merged.lookup("claude-3-5-haiku") == table.lookup("claude-3-5-haiku")
    assert merged.as_of == "2026-01-15"
    assert merged.source is not None
    assert "our negotiated rates" in merged.source
    assert table.lookup("acme-llm") is None  # the original is untouched
    assert merged.cost("acme-llm", Usage(input_tokens=1_000_000, output_tokens=0)) == 1.0


def test_each_price_keeps_the_date_of_the_table_it_came_from(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, table: PriceTable
) -> None:
    """An override file of 2030 that lists only `my-finetune` does not date the shipped
    table's price of `gpt-4o-mini`: each call's cost_source names its own price's date."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(magent=MIXED_AGENT)
    pytester.path.joinpath("prices.yaml").write_text(
        "as_of: '2030-01-01'\nmodels:\n  my-finetune: {input: 1, output: 2}\n"
    )
    pytester.makeini(
        "[pytest]\nopswald_adapter = magent:run\npythonpath = .\nopswald_prices = prices.yaml\n"
    )
    golden = pytester.mkdir("goldens") / "p.golden.yaml"
    golden.write_text("name: p\ninput: {q: x}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    shipped, override = opswald.load(golden).step_list
    assert isinstance(shipped, LLMCallStep) and isinstance(override, LLMCallStep)
    assert (shipped.model, shipped.cost_source) == ("gpt-4o-mini", f"price_table:{table.as_of}")
    assert (override.model, override.cost_source) == ("my-finetune", "price_table:2030-01-01")
    assert override.cost == 0.0012
    merged = table.merged({"mine": {"input": 1, "output": 1}})  # undated overrides
    assert merged.cost_source_of("mine") == "price_table"
    assert merged.cost_source_of("gpt-4o-2024-08-06") == f"price_table:{table.as_of}"


def test_merged_with_a_mapping() -> None:
    base = PriceTable({"a": Price(input=1, output=2, cache_read=1, cache_write=1)})
    merged = base.merged({"b": {"input": 3, "output": 4}})
    assert merged.lookup("b") == Price(input=3, output=4, cache_read=3, cache_write=3)
    assert merged.lookup("a") == base.lookup("a")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: {m: {input: 1}}\n", "needs both"),
        ("models: {m: {input: 1, output: -2}}\n", ">= 0"),
        ("models: {m: {input: 1, output: 'x'}}\n", "must be a number"),
        ("models: {m: {input: 1, output: 2, cached: 1}}\n", "unknown price field"),
        ("unit: per_byte\nmodels: {}\n", "unknown unit"),
        ("models: [1, 2]\n", "must map"),
        ("models: {m: {input: 1, output: 2}, m: {input: 1, output: 2}}\n", "prices.yaml"),
    ],
)
def test_bad_override_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceError, match=message) as err:
        PriceTable.from_file(path)
    assert "prices.yaml" in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "modles:\n  acme-1: {input: 1, output: 2}\n",
            "unknown top-level key 'modles'; did you mean 'models'? A price file holds "
            "as_of, source, currency, unit and models (a mapping of model names to prices), "
            "or model names alone",
        ),
        (
            "as_of: '2030-01-01'\nmodels:\n  acme-1: {input: 1, output: 2}\nsorce: ours\n",
            "unknown top-level key 'sorce'; did you mean 'source'? A price file holds "
            "as_of, source, currency, unit and models (a mapping of model names to prices)",
        ),
        (
            "asof: '2030-01-01'\nacme-1: {input: 1, output: 2}\n",
            "unknown top-level key 'asof'; did you mean 'as_of'?",
        ),
        (
            "prices:\n  acme-1: {input: 1, output: 2}\n",
            "unknown top-level key 'prices'; model names and their prices go under `models:`",
        ),
    ],
    ids=["flat_typo", "models_and_typo", "meta_typo", "another_section"],
)
def test_an_unknown_top_level_key_is_named(tmp_path: Path, text: str, message: str) -> None:
    """`modles:` (a typo of `models:`) read as a model named modles with an unknown price
    field for each model under it; a key that is no part of a price file is named as one,
    with the key it may have meant."""
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceError) as err:
        PriceTable.from_file(path)
    assert str(err.value).startswith(f"{path}: {message}")


def test_a_flat_price_file_of_model_names_is_accepted(tmp_path: Path) -> None:
    """Model names at the top, without `models:`, as README says, meta keys beside them."""
    path = tmp_path / "prices.yaml"
    path.write_text(
        "as_of: '2030-01-01'\nacme-1: {input: 1, output: 2}\nmodel-x: {input: 3, output: 4}\n"
    )
    table = PriceTable.from_file(path)
    assert table.lookup("acme-1") == Price(input=1, output=2, cache_read=1, cache_write=1)
    assert table.lookup("model-x") == Price(input=3, output=4, cache_read=3, cache_write=3)
    assert table.as_of == "2030-01-01"


def test_pytest_names_the_unknown_key_of_the_price_file(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("prices.yaml").write_text("modles:\n  acme-1: {input: 1, output: 2}\n")
    pytester.makeini("[pytest]\nopswald_prices = prices.yaml\n")
    pytester.mkdir("goldens").joinpath("p.golden.yaml").write_text("name: p\ninput: {q: x}\n")
    result = pytester.runpytest("--opswald-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*opswald_prices: cannot use *prices.yaml: *unknown top-level key 'modles'; did you "
            "mean 'models'?*"
        ]
    )
    assert "unknown price field" not in result.stderr.str()
    assert result.stderr.str().count("prices.yaml") == 1  # the file named once


def test_missing_model_costs_none_and_warns_once(table: PriceTable) -> None:
    fresh = PriceTable(table.prices, as_of=table.as_of)
    usage = Usage(input_tokens=100, output_tokens=10)
    assert fresh.cost("acme-unknown-1", usage) is None
    assert fresh.warn_missing("acme-unknown-1") is True
    assert fresh.warn_missing("acme-unknown-1") is False
    assert fresh.warn_missing("acme-unknown-2") is True
    assert fresh.missing == {"acme-unknown-1", "acme-unknown-2"}
    message = fresh.missing_message("acme-unknown-1")
    assert "'acme-unknown-1'" in message
    assert "cost is null" in message
    assert "opswald_prices" in message


def test_cost_with_source(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    assert cost_with_source(table, "gpt-4o", usage, reported=0.5) == (0.5, "provider")
    assert cost_with_source(table, "gpt-4o", usage) == (2.5, f"price_table:{table.as_of}")
    assert cost_with_source(table, "nope", usage) == (None, None)


def test_pricer_hook_then_table_then_one_warning(table: PriceTable) -> None:
    fresh = PriceTable(table.prices, as_of="2025-01-01")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    seen: list[str] = []

    def hook(model: str, usage: Usage) -> float | None:
        return 0.123 if model == "my-finetune" else None

    pricer = Pricer(fresh, hook, warn=seen.append)
    assert pricer.price("my-finetune", usage) == (0.123, "hook")
    assert pricer.price("gpt-4o-mini", usage) == (0.75, "price_table:2025-01-01")
    assert pricer.price("gpt-4o-mini", None) == (None, None)
    assert pricer.price("acme-x", usage) == (None, None)
    assert pricer.price("acme-x", usage) == (None, None)
    assert seen == [fresh.missing_message("acme-x")]


def test_pricer_warns_with_a_price_warning(table: PriceTable) -> None:
    pricer = Pricer(PriceTable(table.prices))
    with pytest.warns(PriceWarning, match="no price for model 'acme-y'"):
        assert pricer.price("acme-y", Usage(input_tokens=1)) == (None, None)


DECORATED_AGENT = """
import opswald


@opswald.llm
def chat(*, model, messages):  # a client that reports usage but no cost
    return {"content": "ok", "finish_reason": "stop",
            "usage": {"input_tokens": 1000, "output_tokens": 100}}


@opswald.llm
def reporting(*, model, messages):  # one that reports its own cost
    return {"content": "ok", "finish_reason": "stop", "cost": 0.5,
            "usage": {"input_tokens": 1000, "output_tokens": 100}}


def run(input):
    chat(model="gpt-4o-mini", messages=[{"role": "user", "content": input}])
    reporting(model="gpt-4o-mini", messages=[{"role": "user", "content": input}])
    return "done"
"""


def test_decorated_llm_calls_are_priced_like_sdk_calls(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, table: PriceTable
) -> None:
    """`@opswald.llm` responses without a cost get one from the price table (or the hook),
    so a cost budget can be checked; a cost the response reports wins."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(pagent=DECORATED_AGENT, conftest="import pagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = pagent:run\n")
    goldens = pytester.mkdir("goldens")
    golden = goldens / "p.golden.yaml"
    golden.write_text("name: p\ninput: hi\nexpect:\n  budgets:\n    cost: 1.0\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    first, second = opswald.load(golden).step_list
    usage = Usage(input_tokens=1000, output_tokens=100)
    assert isinstance(first, LLMCallStep) and isinstance(second, LLMCallStep)
    assert first.cost == table.cost("gpt-4o-mini", usage)
    assert first.cost_source == table.cost_source
    assert second.cost == 0.5 and second.cost_source == "provider"
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    assert "cannot be checked" not in result.stdout.str()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "$0"),
        (1.5, "$1.5000"),
        (0.0123456, "$0.0123"),
        (0.001, "$0.0010"),
        (0.0006, "$0.00060"),
        (0.0000705, "$0.000071"),
        (0.00005, "$0.000050"),
        (-0.0021, "-$0.0021"),
    ],
)
def test_money_keeps_two_significant_digits_below_a_tenth_of_a_cent(
    value: float, shown: str
) -> None:
    assert money(value) == shown


def test_money_shows_a_sum_as_the_figure_it_adds_up_to() -> None:
    """0.0045 + 0.00075 is 0.0052499999999999995 in floats: shown as the $0.0053 that a
    golden's own 0.00525 is shown as, not $0.0052 (the totals and the rows agree)."""
    assert money(0.0045 + 0.00075) == money(0.00525) == "$0.0053"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0, "0 ms"),
        (0.453, "0.5 ms"),
        (0.0453, "0.045 ms"),
        (0.006, "0.006 ms"),
        (0.0000012, "0.0000012 ms"),
        (2.54, "2.5 ms"),
        (9.96, "10 ms"),
        (1234.5, "1,234 ms"),
        (6200.0, "6,200 ms"),
    ],
)
def test_a_duration_under_a_millisecond_never_reads_as_zero(value: float, shown: str) -> None:
    assert milliseconds(value) == shown


def test_a_small_budget_violation_reads_as_one() -> None:
    from opswald.expect.budgets import Figures, check_budgets
    from opswald.session import BudgetsExpect

    spent = Figures(cost=0.0000705, input_tokens=0, output_tokens=0, total_tokens=0,
                    duration_ms=0.0, llm_calls=1, tool_calls=0, steps=1)  # fmt: skip
    (finding,) = check_budgets(BudgetsExpect(cost=0.00005), spent, None)
    assert "cost $0.000071 > $0.000050" in finding.message


MIXED_AGENT = """
import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):  # usage, no cost: the table prices it, if it knows the model
    return {"content": "ok", "finish_reason": "stop",
            "usage": {"input_tokens": 1000, "output_tokens": 100}}


def run(input):
    chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "plan"}])  # priced
    chat(model="my-finetune", messages=[{"role": "user", "content": "write"}])  # not priced
    return {"answer": "ok"}
"""


def test_a_run_with_an_unpriced_call_has_a_partial_cost(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    table: PriceTable,
) -> None:
    """One call priced, one not: the run's cost is unknown, not the priced part. It is shown
    as a lower bound, the JSON report counts the calls without a cost, and a cost budget
    cannot be checked on it unless the priced part alone is already over the limit."""
    import json

    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(magent=MIXED_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = magent:run\npythonpath = .\n")
    golden = pytester.mkdir("goldens") / "mixed.golden.yaml"
    golden.write_text("name: mixed\ninput: {q: x}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    # the budget comes after the recording, which it would refuse (a stub is not written
    # when its own expect: fails it)
    golden.write_text(golden.read_text() + "expect:\n  budgets:\n    cost: 0.001\n")
    priced = table.cost("gpt-4o-mini", Usage(input_tokens=1000, output_tokens=100))
    assert priced is not None and priced < 0.001
    result = pytester.runpytest("--opswald-goldens", "-v", "--opswald-json", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "budget cost cannot be checked: 1 of the run's 2 model calls has no cost: "
            f"it cost at least {money(priced)}, how much more is unknown (step 2: no price "
            "for model 'my-finetune')",
            f"* 2200 tok, ≥ {money(priced)}, 1 call unpriced*",
            f"  totals: mixed ≥ {money(priced)}, 1 call unpriced",
        ]
    )
    (row,) = json.loads((pytester.path / "r.json").read_text())["goldens"]
    assert (row["cost"], row["unpriced_calls"]) == (priced, 1)
    assert row["delta"]["cost"] is None  # a lower bound against a lower bound: no change
    from opswald.cli import main

    capsys.readouterr()
    assert main(["analyze", str(golden), "--json"]) == 0
    (analysis,) = json.loads(capsys.readouterr().out)
    assert (analysis["cost"], analysis["unpriced_calls"]) == (priced, 1)
    assert analysis["by_model"]["my-finetune"]["cost"] is None  # unknown, not $0
    assert main(["show", str(golden)]) == 0
    assert f"≥ {money(priced)}, 1 call unpriced" in capsys.readouterr().out
    golden.write_text(golden.read_text().replace("cost: 0.001", "cost: 0.0001"))
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"budget exceeded: cost at least {money(priced)} (1 model call without a cost) > *"]
    )


VARIANT_AGENT = """
import opswald


@opswald.llm
def plan(*, model, messages):  # reports its own cost, whatever the model
    return {"content": "plan", "finish_reason": "stop", "cost": 0.001,
            "usage": {"input_tokens": 10, "output_tokens": 5}}


@opswald.llm
def write(*, model, messages):  # the provider reports a cost for `cheap` only
    cost = {"cost": 0.003} if model == "cheap" else {}
    return {"content": "text", "finish_reason": "stop", **cost,
            "usage": {"input_tokens": 10, "output_tokens": 5}}


def run(input):
    plan(model="cheap", messages=[{"role": "user", "content": "a"}])
    write(model="cheap", messages=[{"role": "user", "content": "b"}])
    return {"answer": "ok"}
"""


def _run_variants(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *variants: str
) -> pytest.RunResult:
    """VARIANT_AGENT's golden recorded, then replayed once per variant (JSON in r.json)."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(vagent=VARIANT_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = vagent:run\npythonpath = .\n")
    pytester.mkdir("goldens").joinpath("v.golden.yaml").write_text("name: v\ninput: {q: x}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    given = [arg for variant in variants for arg in ("--opswald-variant", variant)]
    result = pytester.runpytest("--opswald-goldens", *given, "--opswald-json", "r.json")
    result.assert_outcomes(passed=len(variants))
    return result


def test_a_variant_with_unpriced_calls_is_not_ranked_cheapest_on_its_priced_part(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Variant M's priced part ($0.001) is below C's whole cost ($0.004), but M's second
    call has no cost: which one is cheaper is unknown, and M's costs are lower bounds."""
    import json

    result = _run_variants(pytester, monkeypatch, "C:model=cheap", "M:model=mystery")
    result.stdout.fnmatch_lines(
        [
            "*C * 1/1 *$    0.0040 *",
            "*M * 1/1 *≥$   0.0010 *",
            "  ≥ a lower bound: M made 1 model call without a cost",
            "*v: passed C, M; cheapest -; fastest *",
        ]
    )
    stats = json.loads((pytester.path / "r.json").read_text())["variants"]
    assert [(v["variant"], v["total_cost"], v["unpriced_calls"]) for v in stats["variants"]] == [
        ("C", 0.004, 0),
        ("M", 0.001, 1),
    ]
    assert stats["goldens"][0]["cheapest"] is None


def test_variants_that_cost_the_same_have_no_cheapest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two variants both at $0.0040: the comparison named the one given first cheapest."""
    import json

    result = _run_variants(pytester, monkeypatch, "A:model=cheap", "B:model=cheap")
    result.stdout.fnmatch_lines(["*v: passed A, B; cheapest -; fastest *"])
    stats = json.loads((pytester.path / "r.json").read_text())["variants"]
    assert [v["total_cost"] for v in stats["variants"]] == [0.004, 0.004]
    assert stats["goldens"][0]["cheapest"] is None


SMALL_AGENT = """
import opswald


@opswald.llm
def chat(*, model, messages):  # usage, no cost: the shipped table prices it
    return {"content": "ok", "finish_reason": "stop",
            "usage": {"input_tokens": 100, "output_tokens": 25}}


def run(input):
    chat(model="gpt-4o-mini", messages=[{"role": "user", "content": "a"}])
    return {"answer": "ok"}
"""


def test_small_variant_costs_do_not_read_as_free_and_stay_aligned(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, table: PriceTable
) -> None:
    """gpt-4o-mini's call costs $0.00003: the table showed `$    0.0000`, as if free. Each
    cost column has as many decimals as its smallest cost needs for two significant digits
    (as the per-golden lines have), the same in every row, so costs line up and compare."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(sagent=SMALL_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = sagent:run\npythonpath = .\n")
    pytester.mkdir("goldens").joinpath("s.golden.yaml").write_text("name: s\ninput: {q: x}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    given = ("--opswald-variant", "mini:model=gpt-4o-mini", "--opswald-variant", "big:model=gpt-4o")
    result = pytester.runpytest("--opswald-goldens", *given, "-v")
    result.assert_outcomes(passed=2)
    usage = Usage(input_tokens=100, output_tokens=25)
    mini, big = table.cost("gpt-4o-mini", usage), table.cost("gpt-4o", usage)
    assert mini is not None and big is not None and mini < 0.0001 < big < 0.001
    result.stdout.fnmatch_lines([f"*{money(mini)}*"])  # the golden's own line
    lines = result.outlines
    start = lines.index("variants:")
    header, *rows = lines[start + 1 : start + 4]
    assert rows[0].split()[:4] == ["mini", "1/1", "1", "$"], rows
    decimals = len(money(mini).split(".")[1])  # two significant digits of the smaller
    assert rows[0].split()[4:7] == [f"{mini:.{decimals}f}", "$", f"{mini:.{decimals}f}"], rows
    assert rows[1].split()[4:7] == [f"{big:.{decimals}f}", "$", f"{big:.{decimals}f}"], rows
    # aligned: the dollar signs and the decimal points in the same columns, each cost
    # ending under its heading
    for mark in ("$", "."):
        assert [i for i, c in enumerate(rows[0]) if c == mark] == [
            i for i, c in enumerate(rows[1]) if c == mark
        ], rows
    ends = [header.index(name) + len(name) for name in ("mean cost", "total cost")]
    assert ends == [rows[0].index(f"{mini:.{decimals}f}", i) + decimals + 2 for i in (0, ends[0])]


UNPRICED_AGENT = """
import opswald


@opswald.llm
def chat(*, model, messages):  # usage, no cost, a model no price table has
    return {"content": "ok", "finish_reason": "stop",
            "usage": {"input_tokens": 1000, "output_tokens": 100}}


def run(input):
    chat(model="acme-unpriced", messages=[{"role": "user", "content": input}])
    return "done"
"""


def test_an_unknown_recorded_cost_is_fixed_by_a_new_recording_and_the_hint_says_so(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay (and an update) keeps each served call's recorded cost: after a price is
    added, only a new recording gives a cost budget a cost, and the hint and the update's
    refusal say so; a live run, priced afresh, is told to configure the price only."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(uagent=UNPRICED_AGENT, conftest="import uagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = uagent:run\n")
    golden = pytester.mkdir("goldens") / "u.golden.yaml"
    golden.write_text("name: u\ninput: hi\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    golden.write_text(golden.read_text() + "expect:\n  budgets: {cost: 0.05}\n")
    (pytester.path / "prices.yaml").write_text(
        "models:\n  acme-unpriced: {input: 1.0, output: 2.0}\n"
    )
    pytester.makeini("[pytest]\nopswald_adapter = uagent:run\nopswald_prices = prices.yaml\n")
    before = golden.read_bytes()
    again = "then record the golden again with --opswald-mode=rerecord"

    result = pytester.runpytest("--opswald-goldens")  # the price is there; the cost is not
    result.assert_outcomes(failed=1)
    (hint,) = [line for line in result.outlines if "hint:" in line]
    assert again in hint, hint
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [f"fix: not written: a cost budget that cannot be checked is never blessed; *{again}*"]
    )
    assert golden.read_bytes() == before
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=live")
    result.assert_outcomes(passed=1)  # priced afresh
    pytester.makeini("[pytest]\nopswald_adapter = uagent:run\n")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=live")
    result.assert_outcomes(failed=1)
    (hint,) = [line for line in result.outlines if "hint:" in line]
    assert "configure prices for the model" in hint and "rerecord" not in hint, hint
    pytester.makeini("[pytest]\nopswald_adapter = uagent:run\nopswald_prices = prices.yaml\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=rerecord").assert_outcomes(passed=1)
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


# -- Anthropic 1-hour prompt-cache writes ------------------------------------------------

CACHE_AGENT = """
import anthropic


def run(input):
    doc = {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    with anthropic.Anthropic(max_retries=0) as client:  # no socket left for a later gc
        message = client.messages.create(model="claude-sonnet-4-5", max_tokens=100,
                                         system=[doc],
                                         messages=[{"role": "user", "content": input["q"]}])
    written = message.usage.cache_creation
    return {"answer": message.content[0].text,
            "written_1h": written.ephemeral_1h_input_tokens if written else None}
"""

# 100k tokens written to the cache for an hour, none read, none uncached, none out
HOUR_WRITE = {
    "content": "cached",
    "usage": {"input_tokens": 100_000, "output_tokens": 0, "cached_tokens": 0},
    "usage_extra": {
        "input_tokens": 0,
        "cache_creation_input_tokens": 100_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 100_000},
    },
}


def _record_cache_agent(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, script: list[Any]
) -> Path:
    """Record the agent against the fake provider (again: from a stub)."""
    golden = "goldens/doc.golden.yaml"
    stub = "name: doc\ninput:\n  q: summarise\n"
    if (pytester.path / "goldens").exists():
        (pytester.path / golden).write_text(stub)
    else:
        sdk_setup(
            pytester, monkeypatch, module="cacheagent", agent=CACHE_AGENT, golden=golden, stub=stub
        )
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    return pytester.path / golden


def _with_cost_budget(path: Path, dollars: float) -> None:
    path.write_text(path.read_text() + f"expect:\n  budgets:\n    cost: {dollars}\n")


def test_one_hour_cache_writes_are_priced_at_their_rate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claude-sonnet-4-5 writes the cache at $3.75/M for five minutes, $6.00/M for an hour
    (twice the input price): 100k tokens written for an hour cost $0.60, not $0.375, so a
    $0.50 cost budget fails."""
    golden = _record_cache_agent(pytester, monkeypatch, [HOUR_WRITE])
    session = opswald.load(golden)
    (step,) = session.step_list
    assert isinstance(step, LLMCallStep) and step.usage is not None
    assert step.usage.cache_creation_tokens == 100_000
    assert step.usage.cache_creation_1h_tokens == 100_000
    assert step.cost == 0.6  # 100k x 6.00 per million
    assert session.output == {"answer": "cached", "written_1h": 100_000}
    _with_cost_budget(golden, 0.5)
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    assert "budget exceeded: cost $0.6000 > $0.5000" in result.stdout.str()


def test_the_split_replays_and_a_price_file_sets_the_hour_rate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent reads the split on replay as it did live (the stored usage, or one built
    from the step); a price file's `cache_write_1h` prices the hour's writes, and one
    without it prices them at its `cache_write`."""
    golden = _record_cache_agent(pytester, monkeypatch, [HOUR_WRITE])
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    session = opswald.load(golden)
    (step,) = session.step_list
    assert isinstance(step, LLMCallStep)
    rebuilt = session.model_copy(update={"steps": [step.model_copy(update={"raw": None})]})
    rebuilt.model_fields_set.add("steps")
    opswald.dump(rebuilt, golden)
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)

    prices = pytester.path / "prices.yaml"
    pytester.makeini("[pytest]\nopswald_adapter = cacheagent:run\nopswald_prices = prices.yaml\n")
    prices.write_text(
        "models:\n  claude-sonnet-4-5: {input: 3, output: 15, cache_write: 3.75, "
        "cache_write_1h: 9}\n"
    )
    golden = _record_cache_agent(pytester, monkeypatch, [HOUR_WRITE])
    (step,) = opswald.load(golden).step_list
    assert isinstance(step, LLMCallStep) and step.cost == 0.9
    prices.write_text("models:\n  claude-sonnet-4-5: {input: 3, output: 15, cache_write: 3.75}\n")
    golden = _record_cache_agent(pytester, monkeypatch, [HOUR_WRITE])
    (step,) = opswald.load(golden).step_list
    assert isinstance(step, LLMCallStep) and step.cost == 0.375


def test_a_golden_recorded_without_the_split_replays_and_keeps_its_cost(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A golden written before the split was recorded: its usage has none, its stored
    response has it. The stored response still agrees with the step, so the agent gets it
    as recorded; the recorded cost stays."""
    golden = _record_cache_agent(pytester, monkeypatch, [HOUR_WRITE])
    text = golden.read_text()
    assert "cache_creation_1h_tokens: 100000\n" in text
    lines = [line for line in text.splitlines() if "cache_creation_1h_tokens" not in line]
    old = "\n".join(lines).replace("cost: 0.6\n", "cost: 0.375\n") + "\n"
    assert "cost: 0.375\n" in old and "cache_creation_1h_tokens" not in old
    golden.write_text(old)
    _with_cost_budget(golden, 0.5)
    result = pytester.runpytest("--opswald-goldens", "--opswald-json", "r.json")
    result.assert_outcomes(passed=1)
    (row,) = json.loads((pytester.path / "r.json").read_text())["goldens"]
    assert row["cost"] == 0.375


def test_hour_writes_by_hand(table: PriceTable) -> None:
    # claude-sonnet-4: input 3.00, cache_write 3.75, cache_write_1h 6.00, output 15.00 per M
    usage = Usage(
        input_tokens=10_000,  # includes the 3,000 written, 1,000 of them for an hour
        output_tokens=0,
        cache_creation_tokens=3_000,
        cache_creation_1h_tokens=1_000,
    )
    # 7,000 x 3.00 + 2,000 x 3.75 + 1,000 x 6.00 = 34,500 per million
    assert table.cost("claude-sonnet-4-20250514", usage) == 0.0345
    for model, price in table.prices.items():
        if model.startswith("claude"):  # Anthropic: an hour's write is twice the input
            assert price.cache_write_1h == 2 * price.input, model
        else:
            assert price.cache_write_1h is None, model
    # a model without an hour's rate writes at its cache_write rate
    plain = Price.from_mapping({"input": 1, "output": 1, "cache_write": 2})
    assert plain.cache_write_1h is None
    assert PriceTable({"m": plain}).cost("m", usage) == 0.013  # 7,000 + 3,000 x 2
    with pytest.raises(PriceError, match="`cache_write_1h` must be a number"):
        Price.from_mapping({"input": 1, "output": 1, "cache_write_1h": "x"})
    # an `@opswald.llm` function reports the split in its usage as the SDKs do
    _, reported, _ = extract({"content": "ok", "usage": usage.model_dump(exclude_none=True)})
    assert reported == usage


COSTING_AGENT = """
import os

import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    answer = {"content": "ok", "finish_reason": "stop",
              "usage": {"input_tokens": 1000, "output_tokens": 100}}
    if "COST" in os.environ:
        answer["cost"] = eval(os.environ["COST"])
    return answer


def run(input):
    try:  # an agent that goes on whatever its model call raised
        chat(model="acme-9", messages=[{"role": "user", "content": input}])
    except Exception as exc:
        return f"recovered from {exc!r}"
    return "done"
"""

PRICE_HOOK = """
import os


def pytest_opswald_price(model, usage, config):
    return eval(os.environ["PRICE"]) if "PRICE" in os.environ else None
"""


@pytest.fixture
def costing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(cagent=COSTING_AGENT, conftest=PRICE_HOOK)
    pytester.makeini("[pytest]\nopswald_adapter = cagent:run\npythonpath = .\n")
    (pytester.mkdir("goldens") / "c.golden.yaml").write_text("name: c\ninput: hi\n")
    return pytester


HOOK_SAID = "the pytest_opswald_price hook returned {} for model 'acme-9'"
RESPONSE_SAID = "chat() returned `cost: {}` in its response"


@pytest.mark.parametrize(
    ("env", "value", "said", "xdist"),
    [
        ("PRICE", "'abc'", HOOK_SAID.format("'abc'"), []),
        ("PRICE", "-0.5", HOOK_SAID.format("-0.5"), ["-n", "2"]),
        ("PRICE", "float('nan')", HOOK_SAID.format("nan"), []),
        ("PRICE", "True", HOOK_SAID.format("True"), []),
        ("COST", "-1", RESPONSE_SAID.format("-1"), []),
        ("COST", "float('nan')", RESPONSE_SAID.format("nan"), ["-n", "2"]),
        ("COST", "True", RESPONSE_SAID.format("True"), []),
        ("COST", "'0.01'", RESPONSE_SAID.format("'0.01'"), []),
    ],
    ids=lambda v: str(v)[:20],
)
def test_a_cost_that_is_not_one_fails_the_recording_and_writes_nothing(
    costing: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    env: str,
    value: str,
    said: str,
    xdist: list[str],
) -> None:
    """A price hook's or a response's cost that is no number of dollars (a string, a bool,
    below 0, NaN) is not the agent's error to catch: the run fails naming where it came
    from and the value, and the stub stays a stub."""
    golden = costing.path / "goldens" / "c.golden.yaml"
    monkeypatch.setenv(env, value)
    result = costing.runpytest("--opswald-goldens", "--opswald-mode=record", *xdist)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert said in out
    assert "a cost is a number of dollars, 0 or more" in out
    assert golden.read_text() == "name: c\ninput: hi\n"
    assert "recovered from" not in out and "recorded" not in out.split(" opswald ")[-1]


def test_a_cost_the_hook_raises_on_is_the_hooks_error(
    costing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the price hook raises is its own error, not one the agent catches and goes on."""
    monkeypatch.setenv("PRICE", "1 / 0")
    golden = costing.path / "goldens" / "c.golden.yaml"
    result = costing.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   ZeroDivisionError: division by zero",
            "E   (raised by the pytest_opswald_price hook, not by the agent)",
        ]
    )
    assert golden.read_text() == "name: c\ninput: hi\n"


@pytest.mark.parametrize(("env", "value"), [("PRICE", "0.25"), ("COST", "0.25"), ("PRICE", "1")])
def test_a_numeric_cost_from_the_hook_or_the_response_is_recorded(
    costing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    result = costing.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(passed=1)
    (step,) = opswald.load(costing.path / "goldens" / "c.golden.yaml").step_list
    assert isinstance(step, LLMCallStep)
    assert step.cost == float(value)
    assert step.cost_source == ("hook" if env == "PRICE" else "provider")


@pytest.mark.parametrize("cost", [True, "0.01", -1, float("inf"), float("nan"), [1]], ids=repr)
def test_a_providers_cost_that_is_none_is_left_out(cost: Any) -> None:
    """A provider's body is not the agent's doing: its odd cost is dropped (the call is
    priced as one without a cost), where the hook's or an `@opswald.llm` response's fails."""
    from opswald.intercept.codecs.base import reported_cost

    assert reported_cost({"cost": cost}) is None
    assert reported_cost({"usage": {"cost": cost}, "cost": 0.5}) == 0.5


NO_USAGE_AGENT = """
import opswald


@opswald.llm
def chat(*, model, messages):  # a client that reports neither usage nor cost
    return {"content": "ok", "finish_reason": "stop"}


def run(input):
    chat(model="gpt-4o-mini", messages=[{"role": "user", "content": input}])
    return "done"
"""


def test_a_priced_models_call_without_usage_is_not_called_unpriced(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpt-4o-mini has a price; its call has no cost because it reported no usage to price.
    The failure says so and asks for usage, where a price would change nothing."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(nagent=NO_USAGE_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = nagent:run\npythonpath = .\n")
    golden = pytester.mkdir("goldens") / "n.golden.yaml"
    golden.write_text("name: n\ninput: hi\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    golden.write_text(golden.read_text() + "expect:\n  budgets:\n    cost: 1.0\n")
    for args in ([], ["--opswald-mode=rerecord"]):
        result = pytester.runpytest("--opswald-goldens", *args)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "budget cost cannot be checked: no step of the run reports a cost "
                "(step 1: its response reported no usage to price)",
                "*have the model client report usage*",
            ]
        )
        assert "configure" not in result.stdout.str()


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"recorded_with": "pytest-opswald 0.1.0"}, "no price for its model"),
        ({}, "no cost written"),  # written by hand
        ({"recorded_with": "pytest-opswald 0.1.0", "imported": "otel"}, "no cost written"),
    ],
    ids=["recorded", "by-hand", "imported"],
)
def test_the_viewer_says_why_a_call_with_usage_has_no_cost(
    metadata: dict[str, Any], reason: str
) -> None:
    """QA (probe25 #4): a call with usage and no cost is "no price for its model" only where
    opswald recorded it (it prices what it records where it can); in a golden written by
    hand or imported, its model may well have a price: the golden has no cost written."""
    from opswald.report.html import session_view
    from opswald.session import Session

    golden = Session.model_validate(
        {
            "name": "g",
            "metadata": metadata,
            "steps": [
                {
                    "step": 1,
                    "type": "llm_call",
                    "model": "gpt-4o-mini",
                    "input": {"messages": [{"role": "user", "content": "hi"}]},
                    "output": {"content": "hello"},
                    "usage": {"input_tokens": 10, "output_tokens": 2},
                }
            ],
            "output": "hello",
        }
    )
    [row] = session_view(golden, slow_ms=1000)["steps"]
    assert row["unpriced"] == reason
