"""Secret scrubbing applied on every write and to every request before matching."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, kw_only=True)
class Redactor:
    """Scrubs strings inside any JSON-like value; keys in SECRET_KEYS lose their values."""

    rules: tuple[Rule, ...] = SECRET_RULES
    extra: tuple[Callable[[str], str], ...] = ()

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
            return {
                k: ("<redacted:header>" if str(k).lower() in SECRET_KEYS else self(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self(v) for v in value]
        return value


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
