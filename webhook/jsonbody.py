"""Request JSON parsed with limits: every place that parses a peer's JSON body calls :func:`parse_json`.

``json.loads`` recurses once per nesting level: a body of 64 KiB of ``[`` raises
RecursionError (a 500, and a traceback per request), not ValueError. So the
nesting is measured first, without recursion (strings taken out, then brackets
counted), and a body that is too big, too deep, not UTF-8 or not JSON raises
:class:`BadJson` (a ValueError: callers' ``except ValueError`` keep working) with
a reason fit for a 400 answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: deeper than anything the balance API or a payment provider sends
MAX_DEPTH = 32
MAX_BYTES = 64 * 1024

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class BadJson(ValueError):
    """A request body that is not acceptable JSON; ``str()`` says why."""


def nesting(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (brackets inside strings do not count)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _no_constant(name: str):
    raise BadJson(f"the body is not JSON: {name} is no JSON number")


def parse_json(body: bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON value of ``body``; raises :class:`BadJson` with the reason it is refused."""
    if len(body) > max_bytes:
        raise BadJson(f"the body is over {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson("the body is not UTF-8") from None
    if nesting(text) > max_depth:
        raise BadJson(f"the JSON is nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except BadJson:
        raise
    except ValueError as exc:
        raise BadJson(f"the body is not JSON: {exc}") from None
