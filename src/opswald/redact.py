"""Secret scrubbing applied on every write and to every request before matching."""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A regex whose matches become `<redacted:{label}>`; when it has a group named
    `secret`, only that group does (`Bearer <redacted:bearer>`: what names it stays).

    `shortest`: no match is shorter (a shorter string is not searched). `gates`: a match
    holds one of these (lowercase) in any case; a string without any is not searched —
    a substring test is much cheaper than a case-insensitive search. `shape`: a key's
    shape alone, every match made of base64 characters: a match inside base64 data (see
    `data_spans`) is that data's, not a secret, and is kept."""

    label: str
    pattern: re.Pattern[str]
    shortest: int = 1
    gates: tuple[str, ...] = ()
    shape: bool = False

    def sub(self, value: str) -> str:
        placeholder = f"<redacted:{self.label}>"
        if self.shape:
            spans = data_spans(value)
            if spans:
                starts = [start for start, _ in spans]

                def outside(m: re.Match[str]) -> str:
                    # a match is all base64 characters: inside a span's run, or outside
                    i = bisect.bisect_right(starts, m.start()) - 1
                    return m[0] if i >= 0 and m.start() < spans[i][1] else placeholder

                clean = self.pattern.sub(outside, value)
                return value if clean == value else clean
        if "secret" not in self.pattern.groupindex:
            return self.pattern.sub(placeholder, value)

        def keep(m: re.Match[str]) -> str:
            at, start, end = m.start(), m.start("secret"), m.end("secret")
            return m[0][: start - at] + placeholder + m[0][end - at :]

        return self.pattern.sub(keep, value)


# Base64 data — an image, a PDF, audio; standard or URL-safe alphabet — holds key shapes
# by chance (`AIza` and 35 more characters in ~4% of 1 MB images): a `data:` URL's
# payload and a run of at least BASE64_MIN base64 characters are not searched for them.
# No key is near that long (`sk-proj-…` keys, the longest, are ~170 characters) even glued
# to a name, while images, documents and audio are much longer. A run right after a
# backslash does not count the letters of an escape (`\n`, `\u00e9`, `\x07`) that JSON
# text or a repr writes there, and `\/` (how some JSON writers escape `/`) is a `/` of it:
# a string's run has the same length in its JSON text.
BASE64_MIN = 1024
_B64 = r"A-Za-z0-9+/_\-"
_ESCAPE = r"(?<=\\)(?:u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[bfnrt])"
_RUN_START = rf"(?<![{_B64}])(?>(?:{_ESCAPE})?)"
_LONG_RUN = re.compile(rf"{_RUN_START}[{_B64}]{{{BASE64_MIN},}}")
_DATA_URL = re.compile(
    r"(?i:data:[A-Za-z0-9.+/_\-]*(?:;[A-Za-z0-9.+_\-]+=[A-Za-z0-9.+_%\-]*)*;base64,)"
    rf"(?P<payload>[{_B64}]+)"
)

# Base64 wrapped in lines (MIME: e-mail attachments, `base64.encodebytes`, GNU `base64`,
# at 76 characters; PEM and OpenPGP armor at 64) is data too when its lines total
# BASE64_MIN characters. A list of keys one a line is also base64 characters split by
# line breaks, so only the shape encoders write counts: every line but the last exactly
# one of WRAPS long, of the standard alphabet (none of them writes `-` or `_`, which
# `sk-…`, `xoxp-…` and `github_pat_…` keys hold), the last no longer and the whole a
# multiple of 4 (padding included). Other widths are searched: each one more is one more
# line length a key list could have. The line breaks: `\n` or `\r\n`, or in JSON text
# and reprs the escapes `\\n` or `\\r\\n` (`\\\\n` in JSON text held in JSON text), the same
# all through.
WRAPS = (64, 76)
_LINE_BREAK = r"\r?\n|(?:\\r)?\\n|(?:\\\\r)?\\\\n"
_WRAPPED = "|".join(
    rf"(?P<w{n}>[A-Za-z0-9+/]{{{n}}}(?P<s{n}>{_LINE_BREAK})(?:[A-Za-z0-9+/]{{{n}}}(?P=s{n}))*"
    rf"(?P<l{n}>[A-Za-z0-9+/]{{1,{n}}}={{0,2}}))(?![{_B64}=])"
    for n in WRAPS
)
# Lines of one of WRAPS (group `w<width>`, its last line `l<width>`) or one long run: in
# one scan, where a long run is passed over whole, not searched for lines at each of its
# characters.
_RUN = re.compile(rf"{_RUN_START}(?:{_WRAPPED}|[{_B64}]{{{BASE64_MIN},}})")
# What may follow a last line shorter than the others: the end of the text or of a quoted
# string (its quote escaped in JSON text), or a line break that no line of base64
# characters follows (a blank line, a MIME boundary `--…`, PEM's `-----END`); else it is
# no line of the data (a key, text).
_DATA_END = re.compile(rf"""\Z|\\*["']|(?:{_LINE_BREAK})(?![A-Za-z0-9+/])""")


def data_spans(value: str) -> list[tuple[int, int]]:
    """Where base64 data is in `value`, in order and apart: each span a whole run of base64
    characters (a `data:` URL's payload, a long run) or lines of them (see WRAPS)."""
    # (a backslash first: a search for one character is much faster)
    if "\\" not in value or "\\/" not in value:
        return _data_spans(value)
    # found where `\/` is written `/`; `slashes`: where those `/` are in that text
    spans = _data_spans(value.replace("\\/", "/"))
    if not spans:
        return spans
    slashes, at = [], 0
    for piece in value.split("\\/")[:-1]:
        at += len(piece)
        slashes.append(at)
        at += 1
    return [
        (start + bisect.bisect_left(slashes, start), end + bisect.bisect_left(slashes, end))
        for start, end in spans
    ]


def _data_spans(value: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    if len(value) >= BASE64_MIN:
        if "\n" not in value and ("\\" not in value or "\\n" not in value):
            found += (m.span() for m in _LONG_RUN.finditer(value))
        else:
            for m in _RUN.finditer(value):
                width = next((n for n in WRAPS if m[f"w{n}"] is not None), None)
                span = m.span() if width is None else _wrapped_span(m, width)
                if span is not None:
                    found.append(span)
    if "base64," in value or "BASE64," in value.upper():
        found += (m.span("payload") for m in _DATA_URL.finditer(value))
    # a data URL's payload can be the first line of wrapped data: one span
    spans: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if spans and start < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


# An AWS access key id, which a last line of wrapped data could be but for its shape.
_AWS_ID = re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}")


def _wrapped_span(m: re.Match[str], width: int) -> tuple[int, int] | None:
    """The lines of `width` that `m` found, if they are data. A shorter last line that is
    an AWS key id (20 characters, a multiple of 4) is no line of the data: the odds of
    base64 ending so are about one in 10^11, and a key on the line after data is not."""
    sep, last = m[f"s{width}"], m[f"l{width}"]
    lines, end = m[f"w{width}"].count(sep), m.end()
    size = len(last)
    if (
        size % 4
        or size > width
        or (size < width and not _DATA_END.match(m.string, end))
        or _AWS_ID.fullmatch(last)
    ):
        # the last line is no line of the data: the data ends at the line before
        size, end = width, m.start(f"l{width}") - len(sep)
        lines -= 1
    return (m.start(f"w{width}"), end) if lines * width + size >= BASE64_MIN else None


# A key quoted in text (JSON, a Python dict's repr) and the colon after it.
_QUOTED_NAME = re.compile(
    r"""(?<!\\)(?:"(?P<d>[^"\\\n]{1,100})"|'(?P<s>[^'\\\n]{1,100})')[ \t]*:[ \t]*"""
)
# In such text: a quoted string, or a bracket (scanned for its match, strings skipped).
_STRING_OR_BRACKET = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|[\[\]{}()]""")
_STRING = {'"': re.compile(r'"(?:[^"\\\n]|\\.)*"'), "'": re.compile(r"'(?:[^'\\\n]|\\.)*'")}
# A value that is no string, list or mapping: a number or a literal (JSON's and Python's).
_BARE = re.compile(
    r"-?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|Infinity|NaN|inf|nan)(?![\w.])"
    r"|(?:true|false|null|True|False|None)(?!\w)"
)
_KEPT = frozenset({"true", "false", "null", "True", "False", "None"})
_CLOSER = {"{": "}", "[": "]", "(": ")"}


def _value_end(text: str, at: int) -> int | None:
    """Where the JSON (or Python literal) value that starts at `at` ends, else None."""
    first = text[at : at + 1]
    if first in _STRING:
        string = _STRING[first].match(text, at)
        return string.end() if string else None
    if first and first in _CLOSER:
        open_: list[str] = []
        for m in _STRING_OR_BRACKET.finditer(text, at):
            token = m[0]
            if token in _CLOSER:
                open_.append(_CLOSER[token])
            elif len(token) == 1:
                if open_.pop() != token:
                    return None
                if not open_:
                    return m.end()
        return None
    bare = _BARE.match(text, at)
    return bare.end() if bare else None


@dataclass(frozen=True, kw_only=True)
class KeyedValueRule(Rule):
    """Values quoted in text (JSON, a Python dict's repr) under a key that `key_label`
    names, hidden as a mapping's are: the same placeholder, whatever the value holds (a
    secret another rule knows, a number, a list or a mapping), quoted as a string, so
    `json.dumps` or `repr` of the redacted mapping is the redacted text."""

    def sub(self, value: str, learn: Callable[[str, str], None] | None = None) -> str:
        pieces: list[str] = []
        done = at = 0
        while m := self.pattern.search(value, at):
            at = m.end()
            double = m["d"] is not None
            label = _label_of(m["d"] if double else m["s"])
            if label is None:
                continue
            end = _value_end(value, at)
            if end is None:
                continue
            old = value[at:end]
            quote = '"' if double else "'"
            new = f"{quote}<redacted:{label}>{quote}"
            if old != new and not (label == "credential" and old in _KEPT):
                pieces += (value[done:at], new)
                done = end
                if learn is not None and old[:1] == quote and "\\" not in old:
                    learn(old[1:-1], new[1:-1])
            at = end
        if not pieces:
            return value
        pieces.append(value[done:])
        return "".join(pieces)


# Keys whose values are hidden, whatever they hold (headers; kept as they always were).
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

# Keys whose values (other than null, true and false) are hidden: OAuth token responses
# and requests, passwords, API keys by other names. `key_label` also hides keys named
# like these (`google_api_key`, `X-Custom-Token`, `clientSecret`, `GITHUB_TOKEN`).
CREDENTIAL_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
        "passwd",
        "secret",
        "apikey",
        "x-goog-api-key",
    }
)

# Between an auth scheme and its credential: spaces, tabs, a (shell) line continuation.
_GAP = r"(?:[ \t]|\\?\r?\n)+"
# Credentials in a URL's query or fragment (`?key=`, `&access_token=`, `#id_token=`).
_URL_PARAM = (
    r"api[_-]?key|key|x-goog-api-key|(?:access|refresh|id|auth|session)[_-]?token|token"
    r"|client[_-]?secret|secret|password|passwd|sig|signature|x-amz-signature"
    r"|x-amz-security-token|x-goog-signature"
)

_URL_CREDENTIAL = re.compile(rf"(?i:{_URL_PARAM})")


def url_param_label(name: str) -> str | None:
    """The placeholder label of a URL query parameter whose value is hidden (`key`,
    `access_token`, `sig`, ...: the names hidden in a URL's text), else None."""
    return "credential" if _URL_CREDENTIAL.fullmatch(name) else None


# After `sk-`: not lowercase words joined by hyphens, to the end of the key's characters.
_PROSE = r"(?![a-z]+(?:-[a-z]+)+(?![A-Za-z0-9_\-]))"

SECRET_RULES: tuple[Rule, ...] = (
    # first: a value under a credential's name is hidden by the name, as in a mapping
    # (`"api_key": "sk-..."` is `<redacted:header>` in the text as in the tool result)
    KeyedValueRule(
        label="credential",
        pattern=_QUOTED_NAME,
        shortest=9,
        gates=("key", "token", "secret", "pass", "authoriz", "cookie"),
    ),
    # a key's body is random: lowercase words joined by hyphens after `sk-` are prose
    # (`task-management-system-design`, `desk-ant-colony-builders`), whatever comes before
    # `sk-` (a key glued to a letter is still one: `\nsk-...` in JSON text, `%3Dsk-...`)
    Rule(
        label="anthropic-key",
        pattern=re.compile(rf"sk-ant-{_PROSE}[A-Za-z0-9_\-]{{8,}}"),
        shortest=15,
        shape=True,
    ),
    Rule(
        label="openai-key",
        pattern=re.compile(rf"sk-{_PROSE}(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{{16,}}"),
        shortest=19,
        shape=True,
    ),
    # also glued to a name (AWS_KEY_AKIA..., KEYAKIA...): no boundary on either side
    Rule(
        label="aws-key",
        pattern=re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
        shortest=20,
        shape=True,
    ),
    Rule(
        label="jwt",
        # no ASCII word character before `eyJ` (or an escape: `\\neyJ…`, `\\u00e9eyJ…` in JSON
        # text, `\\x07eyJ…` in a repr, are a character, then the token; a character JSON
        # escapes is never an ASCII one), written after it: a search for the literal is much
        # faster
        pattern=re.compile(
            r"eyJ(?:(?<![A-Za-z0-9_]eyJ)|(?<=\\[bfnrt]eyJ)|(?<=\\x[0-9a-fA-F]{2}eyJ)"
            r"|(?<=\\u[0-9a-fA-F]{4}eyJ)|(?<=\\U[0-9a-fA-F]{8}eyJ))"
            r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
        ),
        shortest=29,
    ),
    Rule(
        label="google-key",
        pattern=re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
        shortest=39,
        shape=True,
    ),
    Rule(
        label="github-token",
        pattern=re.compile(r"gh[pousr]_[A-Za-z0-9]{36,}"),
        shortest=40,
        shape=True,
    ),
    Rule(
        label="github-token",
        pattern=re.compile(r"github_pat_[A-Za-z0-9_]{22,}"),
        shortest=33,
        shape=True,
    ),
    Rule(
        label="slack-token",
        pattern=re.compile(r"xox[abeprs]-[A-Za-z0-9\-]{10,}"),
        shortest=15,
        shape=True,
    ),
    Rule(
        label="bearer",
        # not a word of prose ("Bearer authentication", "bearer token-based auth"): a
        # token of lowercase letters and hyphens only (after one capital) is not one
        pattern=re.compile(
            rf"(?i:bearer){_GAP}(?![A-Za-z]?[a-z\-]+(?![A-Za-z0-9._~+/=\-]))"
            r"(?P<secret>[A-Za-z0-9._~+/\-]{12,}=*)"
        ),
        shortest=19,
        gates=("bearer",),
    ),
    # after an authorization header's name: any scheme's credential, short ones too
    Rule(
        label="authorization",
        pattern=re.compile(
            r"(?i:authorization)[\"']?[ \t]*[:=][ \t]*[\"']?"
            rf"(?i:bearer|token|basic){_GAP}(?P<secret>[A-Za-z0-9._~+/\-]{{4,}}=*)"
        ),
        shortest=24,
        gates=("authorization",),
    ),
    # https://user:PASSWORD@host (the last @ before the path)
    Rule(
        label="password",
        pattern=re.compile(r"://[^\s/?#@:]*:(?P<secret>(?!<redacted:)[^\s/?#]+)@"),
        shortest=6,
    ),
    Rule(
        label="credential",
        pattern=re.compile(
            rf"[?&#](?:amp;)?(?i:{_URL_PARAM})="
            r"(?P<secret>(?!<redacted:)[^&#\s\"'<>()\[\]{},;\\]+)"
        ),
        shortest=6,
        gates=("=",),
    ),
)

PII_RULES: tuple[Rule, ...] = (
    Rule(label="email", pattern=re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), shortest=5),
    # a phone number, but not a date (2024-01-01) or a date and time (2024-01-01 12:30)
    Rule(
        label="phone",
        pattern=re.compile(r"(?<!\w)(?!\d{4}-\d\d-\d\d(?![\d\-]))\+?\d[\d ()\-]{8,}\d(?!\w)"),
        shortest=10,
    ),
)

# Names whose last words say they hold a credential (`google_api_key`, `clientSecret`,
# `X-Auth-Token`); `token` or `key` alone does not (logprobs' `token`, a `cache_key`).
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# header and environment names (not a placeholder such as `<redacted:openai-key>`)
_HEADER_OR_ENV = re.compile(
    r"[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)+"  # X-Custom-Token
    r"|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"  # GITHUB_TOKEN
)
_CREDENTIAL_WORDS = frozenset({"password", "passwd", "passphrase", "secret", "apikey"})
_CREDENTIAL_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("secret", "key"),
        ("private", "key"),
        ("signing", "key"),
        ("subscription", "key"),
        ("access", "token"),
        ("refresh", "token"),
        ("id", "token"),
        ("auth", "token"),
        ("api", "token"),
        ("bearer", "token"),
        ("session", "token"),
        ("security", "token"),
    }
)


def key_label(key: str) -> str | None:
    """The placeholder label of a key whose value is hidden, else None: `header` for
    SECRET_KEYS (any value), `credential` for a key named like a credential (values other
    than null, true and false): CREDENTIAL_KEYS, names ending in password, secret or a
    pair such as api key or access token, and header or environment names ending in
    token or key (`X-Custom-Token`, `Idempotency-Key`, `GITHUB_TOKEN`)."""
    name = key.lower()
    if name in SECRET_KEYS:
        return "header"
    if name in CREDENTIAL_KEYS:
        return "credential"
    if "key" not in name and "token" not in name and "secret" not in name and "pass" not in name:
        return None
    words = [w.lower() for w in _WORDS.findall(key)]
    if not words:
        return None
    last = words[-1]
    if last in _CREDENTIAL_WORDS or tuple(words[-2:]) in _CREDENTIAL_PAIRS:
        return "credential"
    if last in ("token", "key") and len(words) > 1 and _HEADER_OR_ENV.fullmatch(key):
        return "credential"
    return None


# the label of a name quoted in text (names repeat: every JSON text holds its keys)
_label_of = functools.lru_cache(maxsize=4096)(key_label)


# A redactor remembers what it made of each string key it has seen (keys repeat on every
# step: "role", "content", ...), so a key costs one dict lookup; bounded for data keyed by ids.
_KEY_MEMORY = 4096


SURROGATE = re.compile("[\ud800-\udfff]")


def mend_surrogates(text: str) -> str:
    """`text` as Unicode can hold it: surrogate halves side by side (a streamed emoji whose
    halves came in two JSON escapes) become their one character, a lone half becomes
    U+FFFD. YAML cannot hold a lone half at all: a golden written with one could not be
    read back."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


# A value hidden under a credential's name is also hidden where it appears later without
# its name, when it is at least this long (a short value would hide ordinary words).
LEARN_MIN = 8

PLACEHOLDER = re.compile(r"<redacted:[^<>\s]{1,64}>")


def placeholders_alike(value: Any) -> Any:
    """`value` with every `<redacted:…>` placeholder written `<redacted>` (a copy where it
    changes): one secret gets one label or another depending on where it stands (its name
    in a mapping, its shape in text), and replay compares requests with the labels alike."""
    if isinstance(value, str):
        return PLACEHOLDER.sub("<redacted>", value) if "<redacted:" in value else value
    if isinstance(value, dict):
        return {k: placeholders_alike(v) for k, v in value.items()}
    if isinstance(value, list):
        return [placeholders_alike(v) for v in value]
    return value


class LearnedSecrets:
    """Values a run's redaction hid under a credential's name, and their placeholders:
    the same value is hidden wherever it appears later in the run (`f"key: {key}"` in a
    prompt, after a tool returned `{"password": key}`), whatever its shape."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.pattern: re.Pattern[str] | None = None

    def learn(self, value: str, placeholder: str) -> None:
        if len(value) < LEARN_MIN or value in self.values or PLACEHOLDER.search(value):
            return
        values = {**self.values, value: placeholder}
        # longest first: a value holding another is replaced whole
        alternation = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
        # swapped in together (threads of the agent redact concurrently)
        self.values, self.pattern = values, re.compile(alternation)

    def learn_all(self, value: Any, placeholder: str) -> None:
        """Learn what a hidden value holds: a string; a number, as the text it prints as
        (`f"pin {pin}"`); the strings and numbers inside a list or a mapping."""
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                self.learn(item, placeholder)
            elif isinstance(item, int | float) and not isinstance(item, bool):
                self.learn(str(item), placeholder)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list | tuple):
                stack.extend(item)

    def sub(self, value: str) -> str:
        pattern, values = self.pattern, self.values  # one consistent pair
        if pattern is None or len(value) < LEARN_MIN or not pattern.search(value):
            return value
        return pattern.sub(lambda m: values.get(m[0], m[0]), value)


@functools.lru_cache(maxsize=64)
def _plans_for(rules: tuple[Rule, ...]) -> tuple[tuple[Rule, ...], ...]:
    """By a string's length (up to the longest `shortest`): the rules it can match, in
    order. Kept per rule set: every run makes a redactor (`Redactor.learning`) of the same
    rules, and working this out is most of what making one costs."""
    top = max((rule.shortest for rule in rules), default=0)
    return tuple(tuple(rule for rule in rules if rule.shortest <= size) for size in range(top + 1))


@dataclass(frozen=True, kw_only=True)
class Redactor:
    """Scrubs strings inside any JSON-like value, mapping keys included (by the same rules);
    keys named like credentials lose their values (see `key_label`). With `learned`, one
    run's memory: values hidden by name are hidden wherever else they appear."""

    rules: tuple[Rule, ...] = SECRET_RULES
    extra: tuple[Callable[[str], str], ...] = ()
    learned: LearnedSecrets | None = field(default=None, compare=False, repr=False)
    _keys: dict[str, tuple[str, str | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # by a string's length (up to the longest `shortest`): the rules it can match, in order
    _plans: tuple[tuple[Rule, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            plans = _plans_for(self.rules)
        except TypeError:  # rules that cannot be hashed (a list given for the tuple)
            plans = _plans_for.__wrapped__(tuple(self.rules))
        object.__setattr__(self, "_plans", plans)

    def learning(self, memory: LearnedSecrets) -> Redactor:
        """This redactor with a run's memory of the secrets it hid by name."""
        return Redactor(rules=self.rules, extra=self.extra, learned=memory)

    def text(self, value: str) -> str:
        if not value.isascii() and SURROGATE.search(value):
            value = mend_surrogates(value)
        learned = self.learned
        if learned is not None and learned.pattern is not None:
            value = learned.sub(value)
        clean = self._rules(value)
        if clean is not value:
            # a placeholder may uncover a secret a rule did not see (`<redacted:…>` ends a
            # word; a key glued to another): again until nothing changes, as a second
            # redaction of what is written (a golden, matched again) would
            for _ in range(4):
                again = self._rules(clean)
                if again == clean:
                    break
                clean = again
        for fn in self.extra:
            clean = fn(clean)
        return clean

    def hides(self, value: str) -> bool:
        """Whether the rules (and the user's, not the run's memory) hide any of `value`."""
        clean = self._rules(value)
        for fn in self.extra:
            clean = fn(clean)
        return clean != value

    def _rules(self, value: str) -> str:
        """One pass of the rules; `value` itself when none matched."""
        plans = self._plans
        folded: str | None = None
        for rule in plans[min(len(value), len(plans) - 1)]:
            if rule.gates:
                if folded is None:
                    folded = value.lower()
                for gate in rule.gates:
                    if gate in folded:
                        break
                else:
                    continue
            if rule.pattern.search(value):
                if self.learned is not None and isinstance(rule, KeyedValueRule):
                    value = rule.sub(value, self.learned.learn)
                else:
                    value = rule.sub(value)
                folded = None
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return self._mapping(value)
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def _key(self, key: str) -> tuple[str, str | None]:
        """The key as written (redacted) and the label its value is hidden under, if any."""
        # named by the key as written: what a second redaction sees is the same
        new = self.text(key)
        known = (new, key_label(new))
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
                new, label = keys.get(k) or self._key(k)
            else:
                new, label = k, key_label(str(k))
            if label is None:
                v = self(v)
            elif label == "header" or not (v is None or v is True or v is False):
                if self.learned is not None:
                    self.learned.learn_all(v, f"<redacted:{label}>")
                v = f"<redacted:{label}>"
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


# Key shapes searched for inside base64 data too, as goldens written before data was left
# alone were redacted (an image holding `<redacted:google-key>`).
_SHAPES_IN_DATA = Redactor(rules=tuple(replace(r, shape=False) for r in SECRET_RULES if r.shape))


def shapes_in_data_alike(value: Any) -> Any:
    """`value` with key shapes replaced inside base64 data too, and placeholders alike:
    replay compares a request with a golden written before base64 data was left alone
    this way when they differ, so that golden still matches (only its images hold
    placeholders)."""
    return placeholders_alike(_SHAPES_IN_DATA(value))


def make_redactor(*, pii: bool = False, extra: Sequence[Callable[[str], str]] = ()) -> Redactor:
    rules = SECRET_RULES + (PII_RULES if pii else ())
    return Redactor(rules=rules, extra=tuple(extra))


DEFAULT_REDACTOR = Redactor()

# The redactor of the pytest run in progress (its `opswald_redact` and the rules of its
# `pytest_opswald_redact` hooks), so that `opswald.record` and `opswald.dump` in a test
# hide what the run's own recordings hide; None outside a run.
_RUN_REDACTOR: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "opswald_run_redactor", default=None
)


def run_redactor() -> Redactor | None:
    """The redactor of the pytest run in progress, if any."""
    return _RUN_REDACTOR.get()


@contextlib.contextmanager
def using_redactor(redactor: Redactor) -> Iterator[None]:
    """`redactor` as the run's, for `opswald.record` and `opswald.dump` inside the block."""
    token = _RUN_REDACTOR.set(redactor)
    try:
        yield
    finally:
        _RUN_REDACTOR.reset(token)


if TYPE_CHECKING:
    from opswald.session import Session


def redact_session(session: Session, redactor: Redactor = DEFAULT_REDACTOR) -> Session:
    """The session with every secret in it replaced: for sessions that did not come
    through a recording context (imported traces, promoted traces), before they are
    written. Returns `session` itself when there was nothing to replace."""
    from opswald.jsonable import to_jsonable

    # the fields as set (a golden's reviewed defaults stay set, a stub stays a stub), and
    # each step's `type` though it holds its default: it says which kind of step it is
    data = to_jsonable(session.model_dump(exclude_unset=True, by_alias=True))
    for step, raw in zip(session.step_list, data.get("steps") or (), strict=True):
        raw.setdefault("type", step.type)
    clean = redact_data(data, redactor)
    if clean == data:
        return session
    return type(session).model_validate(clean)


def redact_data(data: dict[str, Any], redactor: Redactor = DEFAULT_REDACTOR) -> dict[str, Any]:
    """A session's plain data (as written) with every secret in it replaced. A tag that
    held one is left out: a tag is a pytest marker name, which a placeholder is not."""
    clean: dict[str, Any] = redactor(data)
    tags = data.get("tags")
    if isinstance(tags, list) and clean.get("tags") != tags:
        clean["tags"] = [tag for tag in tags if not isinstance(tag, str) or redactor(tag) == tag]
    return clean
