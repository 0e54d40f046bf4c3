"""JSON on the busy paths: orjson where it is installed, else the stdlib.

Every request parses a body and writes an answer, a journal line and often
a webhook; with the standard library that JSON is about a fifth of what a
create and a detail cost. orjson (installed with the ``server`` extra) does
the same work several times faster. It is used only where it gives what the
standard library would, and the standard library takes over for anything it
does not handle alike:

- parsing: integers past 64 bits (orjson reads them as floats), ``1e400``,
  lone surrogates, a byte-order mark, UTF-16 or UTF-32, and every error, so
  that the reason an answer gives is the standard library's;
- writing: keys that are not strings, integers past 64 bits, lone
  surrogates, and any type but dict, list, str, int, float, bool and None.

What remains different is how a float is written, never what it is: orjson
writes 0.00001 where Python writes 1e-05, and null for a float that is not
finite (Python writes NaN or Infinity, which is not JSON).
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # the standard library does it all
    orjson = None

# Passed over by orjson's writer, so that the standard library (and a
# caller's ``default``) writes them as before.
_PASSTHROUGH = (
    0
    if orjson is None
    else orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# orjson reads an integer as a float once it does not fit in 64 bits: past
# 18446744073709551615, or below -9223372036854775808. So a text goes the
# slow way when it holds a run of 20 digits, or a minus sign and 19 (inside
# a string or a float too, which only sends a few more texts that way).
# Such a run is found by making every digit and "-" a "0" and everything
# else a space, which is several times quicker than a regular expression.
_DIGITS_AS_ZEROS = bytes(48 if 48 <= b <= 57 or b == 45 else 32 for b in range(256))
_LONG_NUMBER = b"0" * 20


def fast() -> bool:
    """Whether orjson is installed and used."""
    return orjson is not None


# What fast_loads and fast_dumps answer for what they leave to the
# standard library.
SLOW = object()


def fast_loads(text: str | bytes) -> Any:
    """What orjson parses ``text`` to, when it parses it as ``json.loads``
    would; else :data:`SLOW`, for the caller to parse it the standard way
    (and to word the error, if it is one)."""
    if orjson is None:
        return SLOW
    try:
        raw = text.encode() if isinstance(text, str) else text
        if _LONG_NUMBER in raw.translate(_DIGITS_AS_ZEROS):
            return SLOW
        return orjson.loads(raw)
    except (UnicodeEncodeError, orjson.JSONDecodeError):  # a lone surrogate
        return SLOW


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``; faster when orjson is there."""
    value = fast_loads(text)
    return json.loads(text) if value is SLOW else value


def fast_dumps(value: Any) -> str | object:
    """``value`` written by orjson, compact, when it writes it as the
    standard library would; else :data:`SLOW`."""
    if orjson is None:
        return SLOW
    try:
        return orjson.dumps(value, option=_PASSTHROUGH).decode()
    except TypeError:  # JSONEncodeError too: not one it writes alike
        return SLOW


def dumps(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``."""
    text = fast_dumps(value)
    if text is SLOW:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text
