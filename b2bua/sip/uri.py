"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), and any other scheme kept as text.

Components are stored unescaped (``%41`` reads as ``A``) so that equal URIs
compare equal; ``str(uri)`` escapes what the grammar requires. Host names are
lower-cased, IPv6 references are kept without their brackets, parameter names
are lower-cased, and parameters keep their order. A URI read by ``parse_uri``
is written back exactly as received (that text parses to the same value); a
URI built or changed in code is written in canonical form.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from b2bua.sip.errors import SipParseError
from b2bua.sip.textcache import cached_parser

__all__ = [
    "SipUri",
    "TelUri",
    "AbsoluteUri",
    "Uri",
    "parse_uri",
    "parse_hostport",
    "format_host",
]

_ESC = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESC})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESC})*")
_PARAM_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESC})+")
_HNAME_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESC})+")
_HVALUE_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESC})*")
# Host names: RFC 3261 allows alphanum and '-' in labels; '_' is accepted because
# real networks use it. IPv4 literals match the same pattern.
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9.])?")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_OPAQUE_RE = re.compile(r"[^\x00-\x20\x7f<>\"]+")
# "at least one digit among separators": a lookahead, not ``x*[0-9]x*``, which
# backtracks quadratically on a long run of digits with a bad character at the end.
_TEL_GLOBAL_RE = re.compile(r"\+(?=[\-.()]*[0-9])[0-9\-.()]+")
_TEL_LOCAL_RE = re.compile(r"(?=[\-.()]*[0-9A-Fa-f*#])[0-9A-Fa-f*#\-.()]+")
_TEL_PARAM_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESC})+")

_SAFE_USER = "!*'()&=+$,;?/"
_SAFE_PASSWORD = "!*'()&=+$,"
_SAFE_PARAM = "!*'()[]/:&+$"
_SAFE_HEADER = "!*'()[]/?:+$"

Params = tuple[tuple[str, "str | None"], ...]


def _unescape(text: str) -> str:
    if "%" not in text:
        return text
    return unquote(text, errors="surrogateescape")


def _escape(text: str, safe: str) -> str:
    return quote(text, safe=safe, errors="surrogateescape")


def parse_hostport(text: str, what: str = "host") -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 in brackets) into a lower-cased host and an int port.

    Raises SipParseError (400) for a bad host, a bad IPv6 reference or a port
    outside 0..65535.
    """
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"Unclosed IPv6 reference in {what}")
        host = text[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise SipParseError(f"Bad IPv6 address in {what}") from None
        host = host.lower()
        rest = text[end + 1:]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise SipParseError(f"Bad {what}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.partition(":")
        if not _HOSTNAME_RE.fullmatch(host):
            raise SipParseError(f"Bad {what}")
        host = host.lower()
        if not sep:
            return host, None
    if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
        raise SipParseError(f"Bad port in {what}")
    port = int(port_text)
    if port > 65535:
        raise SipParseError(f"Bad port in {what}")
    return host, port


def format_host(host: str) -> str:
    """A host as written in a URI or Via: IPv6 addresses get their brackets back."""
    return f"[{host}]" if ":" in host else host


def _find_param(params: Params, name: str) -> tuple[bool, str | None]:
    name = name.lower()
    for key, value in params:
        if key == name:
            return True, value
    return False, None


@dataclass(frozen=True, slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI.

    ``user`` and ``password`` are unescaped (None when absent); ``host`` is
    lower-cased and IPv6 has no brackets; ``port`` is an int or None;
    ``params`` an ordered tuple of (lower-cased name, value or None for a flag);
    ``headers`` an ordered tuple of (name, value) from the ``?`` part.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    #: the text it was read from, or its first rendering: str() writes it back (outside equality, hash and repr,
    #: and left out of copies). A slot, not an instance ``__dict__``: a held call keeps URIs in its dialogs, its
    #: transactions' requests and the parsers' text cache (~50 B each, bench/memory.py --by-site: uri.py)
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The value of URI parameter ``name`` (case-insensitive); ``default`` when absent or a flag."""
        found, value = _find_param(self.params, name)
        return value if found and value is not None else default

    def has_param(self, name: str) -> bool:
        """True when parameter ``name`` is present, with or without a value."""
        return _find_param(self.params, name)[0]

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter lower-cased (``UDP`` and ``udp`` route alike), or None."""
        value = self.param("transport")
        return value.lower() if value is not None else None

    @property
    def lr(self) -> bool:
        """True for a loose-routing URI (``;lr``)."""
        return self.has_param("lr")

    @property
    def maddr(self) -> str | None:
        """The ``maddr`` parameter lower-cased, or None."""
        value = self.param("maddr")
        return value.lower() if value is not None else None

    @property
    def secure(self) -> bool:
        """True for ``sips:``."""
        return self.scheme == "sips"

    def with_params(self, **params: str | bool | None) -> "SipUri":
        """A copy with parameters set: a str sets ``name=value``, True a flag, None or False removes.

        Existing parameters keep their place; new ones are appended.
        """
        return replace(self, params=set_params(self.params, params))

    def replace(self, **changes) -> "SipUri":
        """A copy with the given fields changed."""
        return replace(self, **changes)

    def equivalent(self, other: object) -> bool:
        """URI equality by RFC 3261 §19.1.4 (user, password, host, port, and the parameters that matter)."""
        if not isinstance(other, SipUri):
            return False
        if (self.scheme, self.user, self.password, self.host, self.port) != (
                other.scheme, other.user, other.password, other.host, other.port):
            return False
        mine = {k: (v.lower() if v is not None else None) for k, v in self.params}
        theirs = {k: (v.lower() if v is not None else None) for k, v in other.params}
        for name in ("user", "ttl", "method", "maddr", "transport"):
            if mine.get(name, "") != theirs.get(name, ""):
                return False
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        return sorted(self.headers) == sorted(other.headers)

    def __str__(self) -> str:
        cached = self._text
        if cached is not None:
            return cached
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(_escape(self.user, _SAFE_USER))
            if self.password is not None:
                parts.append(":")
                parts.append(_escape(self.password, _SAFE_PASSWORD))
            parts.append("@")
        parts.append(format_host(self.host))
        if self.port is not None:
            parts.append(f":{self.port}")
        for name, value in self.params:
            parts.append(";")
            parts.append(_escape(name, _SAFE_PARAM))
            if value is not None:
                parts.append("=")
                parts.append(_escape(value, _SAFE_PARAM))
        if self.headers:
            parts.append("?")
            parts.append("&".join(
                f"{_escape(n, _SAFE_HEADER)}={_escape(v, _SAFE_HEADER)}" for n, v in self.headers))
        text = "".join(parts)
        object.__setattr__(self, "_text", text)      # frozen: the memo is set as __init__ sets fields
        return text


@dataclass(frozen=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): ``number`` as written (``+49-30-1234`` or a local
    number), ``params`` an ordered tuple of (lower-cased name, value or None)."""

    number: str
    params: Params = ()

    scheme = "tel"

    @property
    def is_global(self) -> bool:
        """True for a global number (starts with ``+``)."""
        return self.number.startswith("+")

    @property
    def phone_context(self) -> str | None:
        """The ``phone-context`` parameter of a local number, or None."""
        found, value = _find_param(self.params, "phone-context")
        return value if found else None

    @property
    def digits(self) -> str:
        """The number without visual separators (``-``, ``.``, ``(``, ``)``)."""
        return "".join(ch for ch in self.number if ch not in "-.()")

    def param(self, name: str, default: str | None = None) -> str | None:
        """The value of parameter ``name`` (case-insensitive); ``default`` when absent or a flag."""
        found, value = _find_param(self.params, name)
        return value if found and value is not None else default

    def __str__(self) -> str:
        parts = ["tel:", self.number]
        for name, value in self.params:
            parts.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(parts)


@dataclass(frozen=True)
class AbsoluteUri:
    """A URI of any other scheme (``http:``, ``urn:``, ``isbn:``...), kept as text.

    ``scheme`` is lower-cased; ``opaque`` is everything after the colon.
    """

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | TelUri | AbsoluteUri


def set_params(params: Params, changes: dict) -> Params:
    """``params`` with ``changes`` applied: a value sets ``name=value`` (in place, or appended),
    True a flag, None or False removes; ``_`` in keyword names reads as ``-``."""
    out = list(params)
    for raw_name, value in changes.items():
        name = raw_name.replace("_", "-").lower()
        idx = next((i for i, (k, _) in enumerate(out) if k == name), None)
        if value is None or value is False:
            if idx is not None:
                del out[idx]
            continue
        entry = (name, None if value is True else str(value))
        if idx is None:
            out.append(entry)
        else:
            out[idx] = entry
    return tuple(out)


def _parse_uri_params(text: str, what: str) -> Params:
    params = []
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if not _PARAM_RE.fullmatch(name):
            raise SipParseError(f"Bad parameter in {what}")
        if sep:
            if not _PARAM_RE.fullmatch(value):
                raise SipParseError(f"Bad parameter value in {what}")
            params.append((_unescape(name).lower(), _unescape(value)))
        else:
            params.append((_unescape(name).lower(), None))
    return tuple(params)


def _parse_sip(scheme: str, rest: str, what: str) -> SipUri:
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1:]
        user_text, sep, password_text = userinfo.partition(":")
        if not _USER_RE.fullmatch(user_text):
            raise SipParseError(f"Bad user part in {what}")
        user = _unescape(user_text)
        if sep:
            if not _PASSWORD_RE.fullmatch(password_text):
                raise SipParseError(f"Bad password in {what}")
            password = _unescape(password_text)
    headers: tuple[tuple[str, str], ...] = ()
    q = rest.find("?")
    if q >= 0:
        header_text = rest[q + 1:]
        rest = rest[:q]
        items = []
        for item in header_text.split("&"):
            name, sep, value = item.partition("=")
            if not sep or not _HNAME_RE.fullmatch(name) or not _HVALUE_RE.fullmatch(value):
                raise SipParseError(f"Bad header in {what}")
            items.append((_unescape(name), _unescape(value)))
        headers = tuple(items)
    params: Params = ()
    semi = rest.find(";")
    if semi >= 0:
        params = _parse_uri_params(rest[semi + 1:], what)
        rest = rest[:semi]
    if not rest:
        raise SipParseError(f"Missing host in {what}")
    host, port = parse_hostport(rest, what)
    return SipUri(scheme, user, password, host, port, params, headers)


def _remember_text(uri: SipUri, text: str) -> SipUri:
    # ``text`` parses to ``uri``, so it is a faithful str(uri): writing it back
    # keeps the peer's spelling and saves re-escaping every component.
    object.__setattr__(uri, "_text", text)
    return uri


def _parse_tel(rest: str, what: str) -> TelUri:
    number, sep, param_text = rest.partition(";")
    if not (_TEL_GLOBAL_RE.fullmatch(number) or _TEL_LOCAL_RE.fullmatch(number)):
        raise SipParseError(f"Bad telephone number in {what}")
    params = []
    if sep:
        for item in param_text.split(";"):
            name, sep2, value = item.partition("=")
            if not _TEL_PARAM_RE.fullmatch(name) or (sep2 and not _TEL_PARAM_RE.fullmatch(value)):
                raise SipParseError(f"Bad parameter in {what}")
            params.append((name.lower(), value if sep2 else None))
    return TelUri(number, tuple(params))


def parse_uri(text: str, what: str = "URI") -> Uri:
    """Parse a URI: ``SipUri`` for sip/sips, ``TelUri`` for tel, ``AbsoluteUri`` for any other scheme.

    ``what`` names the place of the URI in error reasons (``Request-URI``,
    ``To``...). Raises SipParseError (400) when the text is not a URI. The
    values are frozen and kept per text (``textcache``): the same text gives
    the same value back without reading it again.
    """
    return _parse_uri_cached(text, what)


def _parse_uri(text: str, what: str) -> Uri:
    scheme, sep, rest = text.partition(":")
    if not sep or not _SCHEME_RE.fullmatch(scheme):
        raise SipParseError(f"Bad {what}")
    scheme = scheme.lower()
    if scheme == "sip" or scheme == "sips":
        return _remember_text(_parse_sip(scheme, rest, what), text)
    if scheme == "tel":
        return _parse_tel(rest, what)
    if not _OPAQUE_RE.fullmatch(rest):
        raise SipParseError(f"Bad {what}")
    return AbsoluteUri(scheme, rest)


_parse_uri_cached = cached_parser(_parse_uri)
