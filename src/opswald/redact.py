"""Secret scrubbing applied on every write and to every request before matching."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A regex whose matches become `<redacted:{label}>`."""

    label: str
    pattern: re.Pattern[str]


SECRET_RULES: tuple[Rule, ...] = (
    Rule(label="anthropic-key", pattern=re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}")),
    Rule(
        label="openai-key", pattern=re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}")
    ),
    Rule(label="aws-key", pattern=re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Rule(
        label="jwt",
        pattern=re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    ),
    Rule(label="bearer", pattern=re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/\-]{12,}=*")),
)

PII_RULES: tuple[Rule, ...] = (
    Rule(label="email", pattern=re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")),
    Rule(label="phone", pattern=re.compile(r"(?<!\w)\+?\d[\d ()\-]{8,}\d(?!\w)")),
)

SECRET_KEYS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "api_key",
        "cookie",
        "set-cookie",
        "proxy-authorization",
    }
)


# A redactor remembers what it made of each string key it has seen (keys repeat on every
# step: "role", "content", ...), so a key costs one dict lookup; bounded for data keyed by ids.
_KEY_MEMORY = 4096


@dataclass(frozen=True, kw_only=True)
class Redactor:
    """Scrubs strings inside any JSON-like value, mapping keys included (by the same rules);
    keys in SECRET_KEYS lose their values."""

    rules: tuple[Rule, ...] = SECRET_RULES
    extra: tuple[Callable[[str], str], ...] = ()
    _keys: dict[str, tuple[str, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def text(self, value: str) -> str:
        for rule in self.rules:
            if rule.pattern.search(value):
                value = rule.pattern.sub(f"<redacted:{rule.label}>", value)
        for fn in self.extra:
            value = fn(value)
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return self._mapping(value)
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def _key(self, key: str) -> tuple[str, bool]:
        """The key as written (redacted) and whether its value is hidden."""
        known = (self.text(key), key.lower() in SECRET_KEYS)
        if len(self._keys) >= _KEY_MEMORY:
            self._keys.clear()
        self._keys[key] = known
        return known

    def _mapping(self, value: dict[Any, Any]) -> dict[Any, Any]:
        keys = self._keys
        out: dict[Any, Any] = {}
        renamed: dict[Any, tuple[str, Any]] | None = None
        for k, v in value.items():
            if type(k) is str:
                new, hidden = keys.get(k) or self._key(k)
            else:
                new, hidden = k, str(k).lower() in SECRET_KEYS
            v = "<redacted:header>" if hidden else self(v)
            if new == k:
                out[k] = v
            else:
                if renamed is None:
                    renamed = {}
                renamed[k] = (new, v)
        if renamed is None:
            return out
        # Keys that held a secret: in their place, and distinct from every other key.
        ordered: dict[Any, Any] = {}
        for k in value:
            if k not in renamed:
                ordered[k] = out[k]
                continue
            new, v = renamed[k]
            name, n = new, 2
            while name in out or name in ordered:
                name, n = f"{new}#{n}", n + 1
            ordered[name] = v
        return ordered


def make_redactor(*, pii: bool = False, extra: Sequence[Callable[[str], str]] = ()) -> Redactor:
    rules = SECRET_RULES + (PII_RULES if pii else ())
    return Redactor(rules=rules, extra=tuple(extra))


DEFAULT_REDACTOR = Redactor()


if TYPE_CHECKING:
    from opswald.session import Session


def redact_session(session: Session, redactor: Redactor = DEFAULT_REDACTOR) -> Session:
    """The session with every secret in it replaced: for sessions that did not come
    through a recording context (imported traces, promoted traces), before they are
    written. Returns `session` itself when there was nothing to replace."""
    data = session.model_dump(mode="json", exclude_unset=True, by_alias=True)
    clean = redactor(data)
    if clean == data:
        return session
    return type(session).model_validate(clean)
