"""JSON on the busy paths: orjson where it is installed, else the stdlib.

Every request parses a body and writes an answer, a journal line and often
a webhook; with the standard library that JSON is about a fifth of what a
create and a detail cost. orjson (installed with the ``server`` extra) does
the same work several times faster. It is used only where it gives what the
standard library would, and the standard library takes over for anything it
does not handle alike:

- parsing: integers past 64 bits (orjson reads them as floats), ``1e400``,
  lone surrogates, a byte-order mark, UTF-16 or UTF-32, nesting deep enough
  to exhaust Python's stack, and every error, so that the reason an answer
  gives is the standard library's;
- writing: keys that are not strings, integers past 64 bits, lone
  surrogates, floats below 0.0001 (orjson writes them its own way), and any
  type but dict, list, str, int, float, bool and None.

What remains different: orjson writes null for a float that is not finite,
where Python writes NaN or Infinity, which is not JSON.
"""

from __future__ import annotations

import json
import re
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
# orjson reads arrays and objects nested up to 1,024 deep; the standard
# library runs out of Python's stack sooner (about 970 deep, fewer the
# deeper the stack it is called from), which the API answers as an 810. A
# text that opens this many arrays and objects is left to the standard
# library; one with fewer cannot nest them deeply enough to tell the two
# apart.
_MANY_OPENINGS = 500
# How orjson writes a float below 0.0001 (0.00001, 1e-7) where Python
# writes 1e-05 and 1e-07. An answer holding either (also inside a string,
# "version 2e-3", which only sends a few more answers the slow way) is
# written by the standard library, so that the text is the same, byte for
# byte. The regular expression runs only on the few answers with "e-".
_DECIMAL_SMALL_FLOAT = b"0.0000"
_EXPONENT_SMALL_FLOAT = re.compile(rb"[0-9]e-")


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
        if raw.count(b"[") + raw.count(b"{") >= _MANY_OPENINGS:
            return SLOW
        return orjson.loads(raw)
    # A str with a lone surrogate does not encode. What orjson refuses goes
    # to the standard library, which takes it or words the refusal.
    except (UnicodeEncodeError, orjson.JSONDecodeError):
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
        text = orjson.dumps(value, option=_PASSTHROUGH)
    except TypeError:  # JSONEncodeError too: not one it writes alike
        return SLOW
    if _DECIMAL_SMALL_FLOAT in text or (
        b"e-" in text and _EXPONENT_SMALL_FLOAT.search(text)
    ):
        return SLOW
    return text.decode()


def dumps(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``."""
    text = fast_dumps(value)
    if text is SLOW:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text
