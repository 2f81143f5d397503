"""Cost from a dated price table: the shipped `prices.yaml`, merged with user overrides.

The provider's reported cost wins when a response has one (`cost_source: provider`);
otherwise the `pytest_opswald_price` hook may price it (`cost_source: hook`), else the
table estimates it (`cost_source: price_table:<as_of>`). A model nothing prices costs
`None` — never a silent 0 — and is warned about once.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from typing import Any, Self

from opswald.session import Usage

PRICES_RESOURCE = "prices.yaml"
META_KEYS = ("as_of", "source", "currency", "unit")
UNITS = {"per_million_tokens": 1.0, "per_thousand_tokens": 1_000.0, "per_token": 1_000_000.0}
COST_SOURCE_PROVIDER = "provider"
COST_SOURCE_TABLE = "price_table"
COST_SOURCE_HOOK = "hook"
PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
# What may follow a listed name: a snapshot date or `-latest`, then a Bedrock-style `-v1:0`.
_SNAPSHOT = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest))(?:-v\d+(?::\d+)?)?")


class PriceError(ValueError):
    """A price table that cannot be read or has an invalid entry."""


class CostError(ValueError):
    """A cost from the price hook or a response that is no number of dollars."""


COST_IS = "a cost is a number of dollars, 0 or more"


def cost_problem(value: Any) -> str | None:
    """Why `value` is no cost (None when it is one): a bool (`True` is no $1), a string, or
    a number below 0, NaN or infinite, which no budget or total could add up."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        return f"a {type(value).__name__} is not a number"
    try:
        number = float(value)
    except (OverflowError, ValueError):  # Decimal("sNaN"), an int of 400 digits
        return "it is not a finite number"
    if not math.isfinite(number):
        return "it is not a finite number"
    return "it is below 0" if number < 0 else None


def hooked_cost(value: Any, model: str) -> float | None:
    """What the price hook returned for a call of `model` as a cost (None: the table
    prices it); CostError, naming the hook and the value, when it is no cost."""
    if value is None:
        return None
    problem = cost_problem(value)
    if problem is not None:
        raise CostError(
            f"the pytest_opswald_price hook returned {value!r} for model {model!r} ({problem}): "
            f"{COST_IS}, or None to leave the call to the price table; fix the hook"
        )
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Price:
    """USD per million tokens for one model. `cache_write` is the rate of a cache write
    that lasts five minutes (Anthropic's default), `cache_write_1h` that of one that lasts
    an hour (None: the `cache_write` rate)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, scale: float = 1.0) -> Price:
        """Build from `{input, output, cache_read?, cache_write?, cache_write_1h?}`
        (missing cache_read / cache_write = input; missing cache_write_1h = cache_write)."""
        unknown = sorted(set(data) - set(PRICE_FIELDS))
        if unknown:
            raise PriceError(f"unknown price field(s): {', '.join(unknown)}")
        if "input" not in data or "output" not in data:
            raise PriceError("a price needs both `input` and `output`")
        base = _amount(data["input"], "input") * scale

        def field(name: str) -> float:
            value = data.get(name)
            return base if value is None else _amount(value, name) * scale

        hour = data.get("cache_write_1h")
        return cls(
            input=base,
            output=_amount(data["output"], "output") * scale,
            cache_read=field("cache_read"),
            cache_write=field("cache_write"),
            cache_write_1h=None if hour is None else _amount(hour, "cache_write_1h") * scale,
        )


def _amount(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PriceError(f"`{name}` must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise PriceError(f"`{name}` must be a finite number >= 0, not {value!r}")
    return float(value)


@functools.cache
def _shipped_data() -> Any:
    """The shipped table's data, parsed once per process (`from_data` only reads it):
    `opswald.record` prices every recording with it."""
    import yaml

    text = resources.files("opswald").joinpath(PRICES_RESOURCE).read_text("utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class PriceTable:
    """Model prices with their date and source; `lookup`, `cost`, and missing-model notes."""

    def __init__(
        self,
        prices: Mapping[str, Price],
        *,
        as_of: str | None = None,
        source: str | None = None,
        currency: str = "USD",
    ) -> None:
        self.prices: dict[str, Price] = {k.lower(): v for k, v in prices.items()}
        self.as_of = as_of
        # the date of each model's price: that of the table it came from (a merged table
        # holds prices of several dates)
        self.dates: dict[str, str | None] = dict.fromkeys(self.prices, as_of)
        self.source = source
        self.currency = currency
        self.missing: set[str] = set()
        self._lock = threading.Lock()

    # -- construction

    @classmethod
    def load_default(cls) -> Self:
        """The table shipped with opswald (`opswald/prices.yaml`)."""
        return cls.from_data(_shipped_data(), origin=PRICES_RESOURCE)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Self:
        """A table from a YAML or JSON file of the shipped table's shape."""
        from opswald.files import GoldenLoadError, load_data

        try:
            data = load_data(path)
        except GoldenLoadError as exc:
            raise PriceError(f"price table {exc}") from None
        return cls.from_data(data, origin=os.fspath(path))

    @classmethod
    def from_data(cls, data: Any, *, origin: str = "<data>") -> Self:
        """A table from plain data: `{as_of, source, currency, unit, models: {name: price}}`
        (a mapping of model names to prices alone is accepted too)."""
        if not isinstance(data, Mapping):
            raise PriceError(f"{origin}: a price table is a mapping")
        _refuse_unknown_keys(origin, data)
        models = data.get("models", {k: v for k, v in data.items() if k not in META_KEYS})
        if not isinstance(models, Mapping):
            raise PriceError(f"{origin}: `models` must map model names to prices")
        unit = str(data.get("unit", "per_million_tokens"))
        if unit not in UNITS:
            raise PriceError(f"{origin}: unknown unit {unit!r}; use one of {', '.join(UNITS)}")
        prices = {
            str(name): _entry(origin, name, value, UNITS[unit]) for name, value in models.items()
        }
        return cls(
            prices,
            as_of=_text(data.get("as_of")),
            source=_text(data.get("source")) or origin,
            currency=str(data.get("currency", "USD")),
        )

    def merged(self, overrides: PriceTable | Mapping[str, Price | Mapping[str, Any]]) -> PriceTable:
        """A new table: this one with `overrides`' entries replacing or adding whole models."""
        if isinstance(overrides, PriceTable):
            other = overrides
        else:
            other = PriceTable({k: _price(k, v) for k, v in overrides.items()}, source="overrides")
        source = "; ".join(s for s in (self.source, f"overridden by {other.source}") if s)
        table = PriceTable(
            {**self.prices, **other.prices},
            as_of=other.as_of or self.as_of,
            source=source,
            currency=self.currency,
        )
        table.dates = {**self.dates, **other.dates}
        return table

    # -- queries

    @property
    def cost_source(self) -> str:
        """What a cost from this table is recorded as: `price_table:<as_of>`."""
        return f"{COST_SOURCE_TABLE}:{self.as_of}" if self.as_of else COST_SOURCE_TABLE

    def cost_source_of(self, model: str | None) -> str:
        """What a cost of `model` from this table is recorded as: `price_table:<as_of>`,
        dated by the table its price came from (the shipped one, or an override file)."""
        listed = self._listed(model)
        as_of = self.dates.get(listed, self.as_of) if listed is not None else self.as_of
        return f"{COST_SOURCE_TABLE}:{as_of}" if as_of else COST_SOURCE_TABLE

    def lookup(self, model: str | None) -> Price | None:
        """The price of `model`: an exact name, else the longest listed name that
        `model` extends by a snapshot suffix (`gpt-4o-2024-08-06` → `gpt-4o`)."""
        listed = self._listed(model)
        return self.prices[listed] if listed is not None else None

    def _listed(self, model: str | None) -> str | None:
        """The listed name that prices `model` (see `lookup`)."""
        if not model:
            return None
        name = model.strip().lower()
        found = self._match(name)
        if found is None and "/" in name:  # "openai/gpt-4o"
            found = self._match(name.rsplit("/", 1)[1])
        return found

    def _match(self, name: str) -> str | None:
        if name in self.prices:
            return name
        best = ""
        for listed in self.prices:
            if len(listed) > len(best) and name.startswith(listed):
                if _SNAPSHOT.fullmatch(name, len(listed)):
                    best = listed
        return best or None

    def cost(self, model: str | None, usage: Usage | None) -> float | None:
        """USD for one call, rounded to 10 places; None when the model or usage is unknown.

        Usage is normalised (input includes cache reads and writes; output includes
        reasoning), so uncached input = input - cache reads - cache writes. The writes
        that last an hour (`cache_creation_1h_tokens`) cost `cache_write_1h` each.
        """
        price = self.lookup(model)
        if price is None or usage is None:
            return None
        if usage.input_tokens is None and usage.output_tokens is None:
            return None
        read = usage.cache_read_tokens or 0
        hour = usage.cache_creation_1h_tokens or 0
        written = max(usage.cache_creation_tokens or 0, hour)
        uncached = max(0, (usage.input_tokens or 0) - read - written)
        hour_rate = price.cache_write if price.cache_write_1h is None else price.cache_write_1h
        total = (
            uncached * price.input
            + read * price.cache_read
            + (written - hour) * price.cache_write
            + hour * hour_rate
            + (usage.output_tokens or 0) * price.output
        )
        return round(total / 1_000_000, 10)

    def warn_missing(self, model: str | None) -> bool:
        """True the first time an unpriced `model` is reported; then False."""
        key = model or "<unknown model>"
        with self._lock:
            if key in self.missing:
                return False
            self.missing.add(key)
            return True

    def missing_message(self, model: str | None) -> str:
        """The warning for a model the table does not price."""
        dated = f" (prices as of {self.as_of})" if self.as_of else ""
        return (
            f"opswald has no price for model {model!r}{dated}, so its cost is null. "
            "Add it to a price file named by the ini option `opswald_prices`, "
            "or return it from the `pytest_opswald_price` hook."
        )


def file_problem(path: str | os.PathLike[str], exc: Exception) -> str:
    """What is wrong with the price file `path`, for a message that names the file first
    (`cannot use PATH: ...`): without the path its PriceError starts with."""
    text = str(exc)
    prefix = f"{os.fspath(path)}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _refuse_unknown_keys(origin: str, data: Mapping[Any, Any]) -> None:
    """A top-level key that is no part of a price file, named as one (with the key it may
    have meant): beside `models:` anything but the meta keys; in a file of model names
    alone (no `models:`, accepted by design), a key that is not a price and reads as a
    misspelt key (`modles:`, `asof:`) or holds model entries of its own (`prices:`) —
    else `modles:` would read as a model whose price has a field for each model."""
    import difflib

    known = (*META_KEYS, "models")
    flat = "models" not in data
    for key, value in data.items():
        if key in known or (flat and _looks_like_a_price(value)):
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.7)
        if flat and not close and not _holds_entries(value):
            continue  # a model whose price is wrong: _entry says what is wrong with it
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else "model names and their prices go under `models:`."
        )
        holds = ", ".join(META_KEYS) + " and models (a mapping of model names to prices)"
        raise PriceError(
            f"{origin}: unknown top-level key {str(key)!r}; {hint} A price file holds "
            f"{holds}{', or model names alone' if flat else ''}"
        )


def _looks_like_a_price(value: Any) -> bool:
    """A mapping with a price's fields (whether or not they are all right)."""
    return isinstance(value, Mapping) and bool(set(value) & set(PRICE_FIELDS))


def _holds_entries(value: Any) -> bool:
    """A mapping whose values are all mappings: model entries, not a price."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value.values())
    )


def _entry(origin: str, name: Any, value: Any, scale: float) -> Price:
    if not isinstance(value, Mapping):
        raise PriceError(f"{origin}: model {name!r}: a price is a mapping of input/output/...")
    try:
        return Price.from_mapping(value, scale=scale)
    except PriceError as exc:
        raise PriceError(f"{origin}: model {name!r}: {exc}") from None


def _price(name: str, value: Price | Mapping[str, Any]) -> Price:
    return value if isinstance(value, Price) else _entry("overrides", name, value, 1.0)


def _text(value: Any) -> str | None:
    return None if value is None else str(value).strip()


def cost_with_source(
    table: PriceTable, model: str | None, usage: Usage | None, reported: float | None = None
) -> tuple[float | None, str | None]:
    """`(cost, cost_source)`: the provider's reported cost if any, else the table's estimate."""
    if reported is not None:
        return reported, COST_SOURCE_PROVIDER
    cost = table.cost(model, usage)
    return cost, (table.cost_source_of(model) if cost is not None else None)


class PriceWarning(UserWarning):
    """A model the price table does not know: its cost is null (warned once per model)."""


def _warn(message: str) -> None:
    import warnings

    warnings.warn(PriceWarning(message), stacklevel=3)


class Pricer:
    """Prices one LLM call: the `pytest_opswald_price` hook first, then the table.

    `hook(model, usage)` returns dollars or None. A model neither prices is reported
    once through `warn` (a `PriceWarning` by default) and costs None.
    """

    def __init__(
        self,
        table: PriceTable,
        hook: Callable[[str, Usage], float | None] | None = None,
        warn: Callable[[str], None] = _warn,
    ) -> None:
        self.table = table
        self.hook = hook
        self.warn = warn

    def price(self, model: str | None, usage: Usage | None) -> tuple[float | None, str | None]:
        """`(cost, cost_source)` with cost_source `hook` or `price_table:<as_of>`."""
        if usage is None:
            return None, None
        if self.hook is not None:
            hooked = self.hook(model or "", usage)
            if hooked is not None:
                return round(float(hooked), 10), COST_SOURCE_HOOK
        cost = self.table.cost(model, usage)
        if cost is not None:
            return cost, self.table.cost_source_of(model)
        if self.table.lookup(model) is None and self.table.warn_missing(model):
            self.warn(self.table.missing_message(model))
        return None, None


def money(value: float) -> str:
    """A cost for people: four decimals from a tenth of a cent up, else enough decimals for two
    significant digits, so that small costs neither read as `$0.0000` nor two different
    ones as the same (`$0.000071 > $0.000050`)."""
    if value == 0 or not math.isfinite(value):
        return f"${value:g}"
    # a sum's float noise off first (0.0045 + 0.00075 = 0.0052499999999999995), as the
    # reports round costs, so a total reads as the figure it adds up to
    value = round(value, 12)
    return f"{'-' if value < 0 else ''}${abs(value):.{money_decimals(value)}f}"


def money_decimals(value: float) -> int:
    """The decimals `money` shows `value` with (a column of costs shows each with as many as
    its smallest needs)."""
    if value == 0 or not math.isfinite(value) or abs(value) >= 0.001:
        return 4
    return min(16, 1 - math.floor(math.log10(abs(value))))


def milliseconds(value: float) -> str:
    """A duration for people, as `money` is a cost: whole milliseconds from 10 ms up
    (`1,234 ms`), a tenth of one below (`2.5 ms`, `0.5 ms`), and under a tenth up to two
    significant digits (`0.045 ms`, `0.006 ms`), so that a duration under a millisecond
    never reads as `0 ms`; only nothing at all is `0 ms`."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} ms"
    size = abs(value)
    if size >= 9.95:  # what would round to 10.0 is shown whole
        return f"{value:,.0f} ms"
    if size >= 0.095:
        return f"{value:.1f} ms"
    if size < 1e-6:  # under a nanosecond: clock noise, as it comes
        return f"{value:.2g} ms"
    decimals = 1 - math.floor(math.log10(size))
    return f"{value:.{decimals}f}".rstrip("0") + " ms"
