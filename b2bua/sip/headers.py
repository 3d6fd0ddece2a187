"""SIP header fields: the raw multi-map, and parsed forms of the headers the core reads.

``Headers`` keeps header lines as received (name spelling and value text), and
looks names up case-insensitively with compact forms mapped to their long
names. Values are parsed only when asked: ``Via.parse``, ``NameAddr.parse``,
``CSeq.parse`` each raise SipParseError (400) for text that breaks the grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

from b2bua.sip.errors import SipParseError
from b2bua.sip.textcache import cached_parser
from b2bua.sip.uri import Params, Uri, format_host, parse_hostport, parse_uri, set_params as _set_params

__all__ = [
    "Headers",
    "Via",
    "NameAddr",
    "CSeq",
    "COMPACT_FORMS",
    "header_key",
    "canonical_name",
    "split_commas",
    "parse_params",
    "format_params",
    "quote_string",
    "is_token",
    "ascii_int",
]

#: RFC 3261 §7.3.3 and later RFCs: compact form -> long name, lower case.
COMPACT_FORMS: dict[str, str] = {
    "v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
    "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
    "e": "content-encoding", "o": "event", "r": "refer-to", "x": "session-expires",
    "u": "allow-events", "a": "accept-contact", "b": "referred-by", "j": "reject-contact",
    "d": "request-disposition", "y": "identity", "n": "identity-info",
}

_CANONICAL = {name.lower(): name for name in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length",
    "Content-Type", "Content-Encoding", "Supported", "Require", "Proxy-Require", "Unsupported",
    "Allow", "Accept", "Accept-Encoding", "Accept-Language", "Route", "Record-Route",
    "Subject", "Event", "Refer-To", "Referred-By", "Session-Expires", "Min-SE", "Allow-Events",
    "Accept-Contact", "Reject-Contact", "Request-Disposition", "Identity", "Identity-Info",
    "P-Asserted-Identity", "P-Preferred-Identity", "Privacy", "User-Agent", "Server", "Date",
    "Expires", "Min-Expires", "Retry-After", "Warning", "Reason", "RSeq", "RAck",
    "WWW-Authenticate", "Authorization", "Proxy-Authenticate", "Proxy-Authorization",
    "Timestamp", "Organization", "Priority", "Call-Info", "Alert-Info", "Error-Info",
    "MIME-Version", "Content-Disposition", "Content-Language", "In-Reply-To", "Reply-To",
)}

#: Headers whose grammar is a comma-separated list (``#element``); only these are split.
LIST_HEADERS = frozenset({
    "via", "contact", "route", "record-route", "allow", "supported", "require",
    "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
    "alert-info", "call-info", "error-info", "content-encoding", "content-language",
    "in-reply-to", "warning", "p-asserted-identity", "p-preferred-identity", "path",
    "service-route", "allow-events", "reason", "history-info", "diversion",
    "accept-contact", "reject-contact", "request-disposition", "security-client",
    "security-server", "security-verify", "p-associated-uri", "p-visited-network-id",
})

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# An unquoted display name is tokens (RFC 3261); non-ASCII letters are let through as
# well, because carriers send names like ``Müller <sip:...>`` and a 400 would lose the call.
_DISPLAY_WORD_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\u0080-\U0010ffff]+")
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_QUOTED_RE = re.compile(r'"(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"')
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)
_SENT_PROTOCOL_RE = re.compile(
    r"\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+")
_MAX_CSEQ = 2**31


def ascii_int(text: str, max_digits: int = 10) -> int | None:
    """``text`` as an int when it is 1 to ``max_digits`` ASCII digits, else None.

    Every number a peer writes goes through here before ``int()``: ``str.isdigit`` is
    true for ``'²'`` (which ``int()`` refuses) and for other scripts' digits, and
    ``int()`` raises ValueError past 4,300 digits (CPython's ``int_max_str_digits``).
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


_KEY_CACHE: dict[str, str] = {}
_KEY_CACHE_MAX = 512  # names come from peers: the cache stops growing here


#: ``cached_header_key(name)``: the lookup key of a name seen before, else None (then :func:`header_key`).
#: The codec's loops over every line call this, not ``header_key``: a dict lookup without a Python call
#: frame. Measured in one session against the codec reading the private cache (alternating runs):
#: bench/sip_core.py --calls 2000 --rounds 5, us CPU per call, private 673/700/714/708, this 653/735/711/733
#: (noise); make_response of a 9-line INVITE 3.0-3.7 us either way, 3.7-4.0 us through a method that
#: listed (key, name, value) triples instead.
cached_header_key = _KEY_CACHE.get


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms mapped to the long name."""
    key = _KEY_CACHE.get(name)
    if key is None:
        lower = name.lower()
        key = COMPACT_FORMS.get(lower, lower)
        if len(_KEY_CACHE) < _KEY_CACHE_MAX:
            _KEY_CACHE[name] = key
    return key


def canonical_name(name: str) -> str:
    """The usual spelling of a header name (``call-id`` -> ``Call-ID``, ``v`` -> ``Via``)."""
    key = header_key(name)
    known = _CANONICAL.get(key)
    if known is not None:
        return known
    return "-".join(part.capitalize() for part in key.split("-"))


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return _TOKEN_RE.fullmatch(text) is not None


def quote_string(text: str) -> str:
    """``text`` as a quoted-string, with ``"`` and ``\\`` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(quoted: str) -> str:
    inner = quoted[1:-1]
    return _UNESCAPE_RE.sub(r"\1", inner) if "\\" in inner else inner


def _split_top_level(text: str, sep: str, angles: bool) -> list[str]:
    """Split on ``sep`` outside quoted strings (and ``<...>`` when ``angles``).

    An unclosed quote runs to the end of the text; the element that holds it
    then fails its own parse.
    """
    parts = []
    start = 0
    in_quotes = in_angle = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if in_quotes:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif in_angle:
            if ch == ">":
                in_angle = False
        elif angles and ch == "<":
            in_angle = True
        elif ch == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_commas(value: str) -> list[str]:
    """Split a list header value on commas outside quoted strings and ``<...>``; drops empty elements."""
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    if '"' not in value and "<" not in value:
        parts = value.split(",")
    else:
        parts = _split_top_level(value, ",", True)
    return [part for part in (p.strip() for p in parts) if part]


def _split_semicolons(text: str) -> list[str]:
    if '"' not in text:
        return text.split(";")
    return _split_top_level(text, ";", False)


def parse_params(text: str, what: str) -> Params:
    """Parse header parameters (the text after the first ``;``) into ((name lower, value or None), ...).

    Values are kept as written (a quoted-string keeps its quotes). LWS around
    ``;`` and ``=`` is allowed; an empty parameter is an error.
    """
    params = []
    for item in _split_semicolons(text):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not _TOKEN_RE.fullmatch(name):
            raise SipParseError(f"Bad parameter in {what}")
        if sep:
            value = value.strip()
            if not (_PARAM_VALUE_RE.fullmatch(value) or _QUOTED_RE.fullmatch(value)):
                raise SipParseError(f"Bad parameter value in {what}")
            params.append((name.lower(), value))
        else:
            params.append((name.lower(), None))
    return tuple(params)


def format_params(params: Params) -> str:
    """Parameters as written after a header value: ``;name=value;flag``."""
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def _param(params: Params, name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


class Headers:
    """An immutable, ordered multi-map of raw header lines (name as received, value text).

    Lookup is case-insensitive and maps compact forms (``v`` is Via). Equality
    compares the lines exactly, in order.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple(items)
        self._index: dict[str, tuple[str, ...]] | None = None

    def _lookup(self) -> dict[str, tuple[str, ...]]:
        """Lookup key -> the values of its lines, in order.

        Tuples, not lists: a dict of str and tuples of str is left alone by the
        garbage collector once it has looked at it, and a message lives as long
        as its transaction (32 s after the answer on UDP).
        """
        index = self._index
        if index is None:
            index = {}
            cache = _KEY_CACHE
            for name, value in self._items:
                key = cache.get(name)
                if key is None:
                    key = header_key(name)
                found = index.get(key)
                index[key] = (value,) if found is None else found + (value,)
            self._index = index
        return index

    def _lines(self, name: str) -> tuple[str, ...] | None:
        """The values of the lines named ``name``, or None.

        The core asks by lookup key (``call-id``, ``via``), which is its own key:
        the index answers at once and ``header_key`` is needed only for another
        spelling (``Call-ID``, ``v``) or an absent header.
        """
        index = self._index
        if index is None:
            index = self._lookup()
        found = index.get(name)
        if found is None:
            key = _KEY_CACHE.get(name) or header_key(name)
            if key != name:
                found = index.get(key)
        return found

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first line named ``name``, or ``default``."""
        found = self._lines(name)
        return found[0] if found else default

    def get_lines(self, name: str) -> list[str]:
        """The value of every line named ``name``, one per line, not split."""
        return list(self._lines(name) or ())

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``: lines split on top-level commas for list headers, whole otherwise."""
        lines = self._lines(name)
        if not lines:
            return []
        if (_KEY_CACHE.get(name) or header_key(name)) not in LIST_HEADERS:
            return list(lines)
        if len(lines) == 1:
            return split_commas(lines[0])
        out: list[str] = []
        for line in lines:
            out.extend(split_commas(line))
        return out

    def count(self, name: str) -> int:
        """How many lines are named ``name``."""
        return len(self._lines(name) or ())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._lines(name) is not None

    def items(self) -> tuple[tuple[str, str], ...]:
        """All lines as (name, value), in order."""
        return self._items

    def values_of_key(self, key: str) -> tuple[str, ...] | None:
        """The values of the lines whose lookup key is ``key`` (a key already: ``content-length``), or None.

        From the index when a lookup built it; else by a look at the names, which is cheaper than the index
        for the one question a message we built is asked when it is written (a 180 of 7 lines: 0.82 us
        looking at the names, 1.05 us building the index; timeit, best of 9 x 200,000).
        """
        index = self._index
        if index is not None:
            return index.get(key)
        cache = _KEY_CACHE
        return tuple(value for name, value in self._items if (cache.get(name) or header_key(name)) == key) or None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"

    def with_added(self, name: str, value: str, *, first: bool = False) -> "Headers":
        """A copy with one more line: at the end, or before all others of the same name when ``first``."""
        line = (name, str(value))
        if not first:
            return Headers(self._items + (line,))
        key = header_key(name)
        items = list(self._items)
        for i, (existing, _) in enumerate(items):
            if header_key(existing) == key:
                items.insert(i, line)
                break
        else:
            items.append(line)
        return Headers(items)

    def with_replaced(self, name: str, value: str) -> "Headers":
        """A copy where all lines named ``name`` become one line with ``value`` (at the first one's place)."""
        key = header_key(name)
        items: list[tuple[str, str]] = []
        placed = False
        for line in self._items:
            if header_key(line[0]) == key:
                if not placed:
                    items.append((name, str(value)))
                    placed = True
            else:
                items.append(line)
        if not placed:
            items.append((name, str(value)))
        return Headers(items)

    def without(self, *names: str) -> "Headers":
        """A copy without any line named one of ``names``."""
        keys = {header_key(n) for n in names}
        return Headers(line for line in self._items if header_key(line[0]) not in keys)


@dataclass(frozen=True, slots=True)
class Via:
    """One Via entry: ``protocol`` (``SIP/2.0``), ``transport`` (upper case), ``host``
    (IPv6 without brackets), ``port`` or None, ``params`` (ordered, names lower case)."""

    protocol: str
    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> "Via":
        """Parse one via-parm (the text between commas). Raises SipParseError (400).

        Values are kept per text (``textcache``): a request's Via read again in its
        responses is not parsed again.
        """
        return _parse_via_cached(text, "Via")

    @classmethod
    def _parse(cls, text: str, what: str = "Via") -> "Via":
        m = _SENT_PROTOCOL_RE.match(text)
        if m is None:
            raise SipParseError("Bad Via header")
        rest = text[m.end():]
        semi = rest.find(";")
        sent_by = (rest if semi < 0 else rest[:semi]).strip()
        if not sent_by:
            raise SipParseError("Bad Via header")
        if " " in sent_by or "\t" in sent_by:
            # LWS is allowed only around the colon (RFC 3261 COLON = SWS ":" SWS).
            words = sent_by.split()
            if not all(a.endswith(":") or b.startswith(":") for a, b in zip(words, words[1:])):
                raise SipParseError("Bad sent-by in Via")
            sent_by = "".join(words)
        host, port = parse_hostport(sent_by, "Via")
        params = parse_params(rest[semi + 1:], "Via") if semi >= 0 else ()
        rport = _param(params, "rport")
        if rport is not None and ((port_number := ascii_int(rport, 5)) is None or port_number > 65535):
            raise SipParseError("Bad rport in Via")
        return cls(f"{m.group(1).upper()}/{m.group(2)}", m.group(3).upper(), host, port, params)

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), None when absent or a flag."""
        return _param(self.params, name.lower())

    @property
    def branch(self) -> str | None:
        """The ``branch`` parameter, or None (an RFC 2543 peer)."""
        return _param(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (brackets of an IPv6 address removed), or None."""
        value = _param(self.params, "received")
        if value is not None and value.startswith("[") and value.endswith("]"):
            return value[1:-1]
        return value

    @property
    def rport(self) -> int | bool | None:
        """``rport``: None when absent, True when present without a value (RFC 3581), else the port."""
        for key, value in self.params:
            if key == "rport":
                return True if value is None or value == "" else int(value)
        return None

    @property
    def sent_by(self) -> str:
        """``host[:port]`` as written in the Via."""
        host = format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def with_params(self, **params: str | int | bool | None) -> "Via":
        """A copy with parameters set: a value sets ``name=value``, True a flag, None or False removes."""
        return replace(self, params=_set_params(self.params, params))

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A name-addr or addr-spec with header parameters: From, To, Contact, Route,
    Record-Route, P-Asserted-Identity, Refer-To.

    ``display_name`` is unquoted (None when absent); ``uri`` is None only for the
    Contact wildcard ``*``; ``params`` are the header parameters (``tag``...).
    """

    display_name: str | None
    uri: Uri | None
    params: Params = ()

    @classmethod
    def parse(cls, text: str, what: str = "address") -> "NameAddr":
        """Parse a name-addr or addr-spec with parameters. Raises SipParseError (400).

        ``what`` names the header in error reasons. Values are kept per text
        (``textcache``): a dialog's From, To and Contact are read once.
        """
        return _parse_name_addr_cached(text, what)

    @classmethod
    def _parse(cls, text: str, what: str) -> "NameAddr":
        text = text.strip()
        if text == "*":
            return cls(None, None, ())
        display: str | None = None
        if text.startswith('"'):
            m = _QUOTED_RE.match(text)
            if m is None:
                raise SipParseError(f"Bad display name in {what}")
            display = _unquote(m.group(0))
            rest = text[m.end():].lstrip()
            if not rest.startswith("<"):
                raise SipParseError(f"Bad {what} header")
            lt = text.find("<", m.end())
        else:
            lt = text.find("<")
            colon = text.find(":")
            if lt < 0 or (0 <= colon < lt):
                return cls._parse_addr_spec(text, what)
            words = text[:lt].split()
            for word in words:
                if not _DISPLAY_WORD_RE.fullmatch(word):
                    raise SipParseError(f"Bad display name in {what}")
            display = " ".join(words) if words else None
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError(f"Unclosed < in {what}")
        uri_text = text[lt + 1:gt]
        if not uri_text or uri_text != uri_text.strip():
            raise SipParseError(f"Bad URI in {what}")
        uri = parse_uri(uri_text, what)
        rest = text[gt + 1:].lstrip()
        if not rest:
            return cls(display, uri, ())
        if rest[0] != ";":
            raise SipParseError(f"Bad {what} header")
        return cls(display, uri, parse_params(rest[1:], what))

    @classmethod
    def _parse_addr_spec(cls, text: str, what: str) -> "NameAddr":
        semi = text.find(";")
        uri_text = text if semi < 0 else text[:semi].rstrip()
        if not uri_text or any(ch in uri_text for ch in " \t?,\"<>"):
            raise SipParseError(f"Bad URI in {what}")
        uri = parse_uri(uri_text, what)
        params = parse_params(text[semi + 1:], what) if semi >= 0 else ()
        return cls(None, uri, params)

    @property
    def is_wildcard(self) -> bool:
        """True for the Contact ``*`` of a REGISTER that removes all bindings."""
        return self.uri is None

    def param(self, name: str) -> str | None:
        """The value of header parameter ``name`` (case-insensitive), None when absent or a flag."""
        return _param(self.params, name.lower())

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (dialog identification), or None."""
        return _param(self.params, "tag")

    def with_tag(self, tag: str | None) -> "NameAddr":
        """A copy with ``tag`` set (or removed with None)."""
        return self.with_params(tag=tag)

    def with_params(self, **params: str | int | bool | None) -> "NameAddr":
        """A copy with header parameters set: a value sets ``name=value``, True a flag, None or False removes."""
        return replace(self, params=_set_params(self.params, params))

    def __str__(self) -> str:
        if self.uri is None:
            return "*"
        params = format_params(self.params)
        if self.display_name is not None:
            return f"{quote_string(self.display_name)} <{self.uri}>{params}"
        return f"<{self.uri}>{params}"


@dataclass(frozen=True, slots=True)
class CSeq:
    """The CSeq header: ``seq`` (0 .. 2**31-1) and ``method``."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> "CSeq":
        """Parse ``<number> <method>``. Raises SipParseError (400). Values are kept per text (``textcache``)."""
        return _parse_cseq_cached(text, "CSeq")

    @classmethod
    def _parse(cls, text: str, what: str = "CSeq") -> "CSeq":
        parts = text.split()
        if len(parts) != 2:
            raise SipParseError("Bad CSeq header")
        number, method = parts
        seq = ascii_int(number)
        if seq is None or not _TOKEN_RE.fullmatch(method):
            raise SipParseError("Bad CSeq header")
        if seq >= _MAX_CSEQ:
            raise SipParseError("CSeq number out of range")
        return cls(seq, method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"



_parse_via_cached = cached_parser(Via._parse)
_parse_name_addr_cached = cached_parser(NameAddr._parse)
_parse_cseq_cached = cached_parser(CSeq._parse)
