"""Parsed header and URI values kept per exact text, so a dialog's repeated lines are read once.

Every message of a leg carries the same From, To, Contact and Route text, and a
request's top Via comes back in each of its responses; the parsed values (URIs,
``NameAddr``, ``Via``, ``CSeq``) are frozen, so one value can serve every
message that holds the same text. :func:`cached_parser` wraps a parser
``parse(text, what)`` whose ``what`` only names the header in error reasons:

- a text that parsed before gives the same value back (an LRU of ``maxsize``
  entries; texts longer than ``max_chars`` are never kept, so a peer cannot fill
  memory with long lines);
- a text that does not parse is never kept, and raises from ``parse(text, what)``
  itself: the same SipParseError, with the same reason, as without the cache.
"""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

from b2bua.sip.errors import SipParseError

__all__ = ["cached_parser", "DEFAULT_MAXSIZE", "DEFAULT_MAX_CHARS"]

T = TypeVar("T")

#: a few seconds of set-ups: a text that repeats comes back within its call's set-up (a request's Via in each of
#: its responses, the From and To in the ACK), while most texts are one call's own (its tags and branches): at
#: 4096 entries each, 600 held calls kept ~6000 such entries, ~5.5 KB of a held call's ~23 KB of live blocks
#: (``bench/memory.py --calls 600 --by-site``); a text read again after it left is parsed again (3-5 us)
DEFAULT_MAXSIZE = 512
DEFAULT_MAX_CHARS = 512


def cached_parser(parse: Callable[[str, str], T], *, maxsize: int = DEFAULT_MAXSIZE,
                  max_chars: int = DEFAULT_MAX_CHARS) -> Callable[[str, str], T]:
    """``parse`` with its values kept per text; see the module docstring.

    The wrapper has ``cache_info`` and ``cache_clear`` (from ``functools.lru_cache``).
    """

    @functools.lru_cache(maxsize=maxsize)
    def by_text(text: str) -> T:
        return parse(text, "")

    def cached(text: str, what: str) -> T:
        if len(text) <= max_chars:
            try:
                return by_text(text)
            except SipParseError:
                pass  # not kept: raise again below with the caller's label in the reason
        return parse(text, what)

    cached.cache_info = by_text.cache_info  # type: ignore[attr-defined]
    cached.cache_clear = by_text.cache_clear  # type: ignore[attr-defined]
    cached.__doc__ = parse.__doc__
    return cached
