"""JSON text that is JSON whatever floats the data holds, and read back to the same floats.

Python's `json` writes infinity and NaN as `Infinity`, `-Infinity` and `NaN`, which JSON
does not have (JavaScript's `JSON.parse` throws on them). Written here instead:

- infinity as `1e999` (`-1e999`): a number too large for a double, which JSON parsers
  read as infinity (Python's, JavaScript's) or as the largest double;
- NaN, which no JSON number is, as the mapping `{"$float": "NaN"}`; so that no mapping of
  the data reads back as NaN, a key named `$float` (`$$float`, ...) is written with one
  `$` more, and read with one less.

`loads` reads all of these, and the bare `Infinity`, `-Infinity` and `NaN` of older files.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

TAG = "$float"

# in text from `json.dumps`: a string (a key when a colon follows), else a bare constant
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"(?P<colon>[ \t]*:)?|(?P<bare>-?Infinity|NaN)', re.DOTALL)
_TAG_KEY = re.compile(r'"\$+float"')
_ESCAPED_KEY = re.compile(r"\$\$+float")


def dumps(
    data: Any,
    *,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    ensure_ascii: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """`json.dumps(data, ...)`, with the non-finite floats and `$float` keys as above."""
    try:
        text = json.dumps(
            data,
            indent=indent,
            separators=separators,
            ensure_ascii=ensure_ascii,
            default=default,
            allow_nan=False,
        )
        if 'float"' not in text or _TAG_KEY.search(text) is None:
            return text
    except ValueError:  # a non-finite float (or a circular reference: raised again below)
        pass
    text = json.dumps(
        data, indent=indent, separators=separators, ensure_ascii=ensure_ascii, default=default
    )
    colon = (separators or (",", ": "))[1]
    nan = "{" + json.dumps(TAG) + colon + '"NaN"}'
    constants = {"Infinity": "1e999", "-Infinity": "-1e999", "NaN": nan}

    def encode(m: re.Match[str]) -> str:
        bare = m["bare"]
        if bare is not None:
            return constants[bare]
        token = m[0]
        if m["colon"] is not None and _TAG_KEY.match(token):
            return '"$' + token[1:]
        return token

    return _TOKEN.sub(encode, text)


def decode_pairs(pairs: list[tuple[str, Any]]) -> Any:
    """An `object_pairs_hook` for text `dumps` wrote: NaN for its mapping, `$float` keys
    with one `$` less (later keys win on a duplicate, as `json.loads` has it)."""
    if len(pairs) == 1 and pairs[0] == (TAG, "NaN"):
        return math.nan
    return {(k[1:] if _ESCAPED_KEY.fullmatch(k) else k): v for k, v in pairs}


def needs_decoding(text: str) -> bool:
    """Whether text holds a key `decode_pairs` changes (a cheap test; may say yes wrongly)."""
    return 'float"' in text and _TAG_KEY.search(text) is not None


def loads(text: str) -> Any:
    """JSON text as data: what `dumps` wrote as it was given to it."""
    if needs_decoding(text):
        return json.loads(text, object_pairs_hook=decode_pairs)
    return json.loads(text)
