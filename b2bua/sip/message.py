"""SIP requests and responses as frozen values, with the header views the core reads.

The convenience properties parse their header on first use and keep the result
(the message itself never changes). Those for mandatory headers (``cseq``,
``vias``, ``top_via``, ``from_``, ``to``) raise SipParseError (400) when the
header is missing or broken; the others answer None when the header is absent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import CSeq, Headers, NameAddr, Via, ascii_int, header_key
from b2bua.sip.uri import Uri

__all__ = ["SipRequest", "SipResponse", "SipMessage"]

SIP_VERSION = "SIP/2.0"


class cached_property:  # noqa: N801 - named like the functools one it stands in for
    """``functools.cached_property`` without its lock (Python 3.11 takes an RLock on every first read).

    A non-data descriptor: the first read computes the value and stores it in the
    instance ``__dict__`` (a frozen dataclass is not asked), later reads find it
    there without calling the descriptor. An exception is not stored: the next
    read raises again. Messages are read on the reactor thread only.
    """

    def __init__(self, func) -> None:
        self.func = func
        self.attrname: str | None = None
        self.__doc__ = func.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self.attrname = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.attrname] = value
        return value


class _MessageViews:
    """Header views shared by requests and responses (``headers`` is set by the dataclass)."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str | None:
        """The Call-ID, or None when absent."""
        return self.headers.get("call-id")

    @cached_property
    def cseq(self) -> CSeq:
        """The parsed CSeq. Raises SipParseError when missing or bad."""
        value = self.headers.get("cseq")
        if value is None:
            raise SipParseError("Missing CSeq header")
        return CSeq.parse(value)

    @cached_property
    def vias(self) -> list[Via]:
        """Every Via entry, topmost first (the first is ``top_via``). Raises SipParseError when one is bad."""
        values = self.headers.get_all("via")
        if not values:
            if "via" in self.headers:
                raise SipParseError("Bad Via header")   # only commas and blanks: ``Via: ,,,,``
            return []
        return [self.top_via] + [Via.parse(v) for v in values[1:]]

    @cached_property
    def top_via(self) -> Via:
        """The topmost Via. Raises SipParseError when missing or bad."""
        values = self.headers.get_all("via")
        if not values:
            raise SipParseError("Bad Via header" if "via" in self.headers else "Missing Via header")
        return Via.parse(values[0])

    def _address(self, name: str, label: str) -> NameAddr:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"Missing {label} header")
        return NameAddr.parse(value, label)

    @cached_property
    def from_(self) -> NameAddr:
        """The From address. Raises SipParseError when missing or bad."""
        return self._address("from", "From")

    @cached_property
    def to(self) -> NameAddr:
        """The To address. Raises SipParseError when missing or bad."""
        return self._address("to", "To")

    @cached_property
    def contacts(self) -> list[NameAddr]:
        """Every Contact entry, in order (empty when absent)."""
        return [NameAddr.parse(v, "Contact") for v in self.headers.get_all("contact")]

    @property
    def contact(self) -> NameAddr | None:
        """The first Contact, or None."""
        contacts = self.contacts
        return contacts[0] if contacts else None

    @cached_property
    def record_route(self) -> list[NameAddr]:
        """The Record-Route entries, topmost first."""
        return [NameAddr.parse(v, "Record-Route") for v in self.headers.get_all("record-route")]

    @cached_property
    def route(self) -> list[NameAddr]:
        """The Route entries, topmost first."""
        return [NameAddr.parse(v, "Route") for v in self.headers.get_all("route")]

    @cached_property
    def max_forwards(self) -> int | None:
        """Max-Forwards as an int (None when absent). Raises SipParseError when not 0..255."""
        value = self.headers.get("max-forwards")
        if value is None:
            return None
        hops = ascii_int(value)
        if hops is None or hops > 255:
            raise SipParseError("Bad Max-Forwards header")
        return hops

    @property
    def content_type(self) -> str | None:
        """The media type of the body, lower case and without parameters (``application/sdp``), or None."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    def replace(self, **changes):
        """A copy with the given fields changed (``headers=``, ``body=``...)."""
        return dataclasses.replace(self, **changes)

    def with_top_via(self, headers: Headers, top_via: Via):
        """A copy with ``headers``, which differ from this message's in the top Via only, now ``top_via``.

        The views already read (From, To, CSeq, Contact...) are handed on, not read
        again, and the new top Via is known without parsing the text written for it.
        """
        copy = dataclasses.replace(self, headers=headers)
        views = copy.__dict__
        for name, value in self.__dict__.items():
            if name in _HEADER_VIEWS and name not in ("vias", "top_via"):
                views[name] = value
        views["top_via"] = top_via
        return copy

    def with_header(self, name: str, value: str, *, first: bool = False):
        """A copy with one more header line (before the others of its name when ``first``)."""
        return dataclasses.replace(self, headers=self.headers.with_added(name, value, first=first))

    def with_header_replaced(self, name: str, value: str):
        """A copy where every ``name`` line is replaced by one with ``value``."""
        return dataclasses.replace(self, headers=self.headers.with_replaced(name, value))

    def without_headers(self, *names: str):
        """A copy without any line of the given names."""
        return dataclasses.replace(self, headers=self.headers.without(*names))

    def with_body(self, body: bytes, content_type: str | None = None):
        """A copy with ``body`` (and Content-Type when given; None keeps the current one).

        A Content-Length line, when present, is set to the new length in place.
        """
        headers = self.headers
        if "content-length" in headers:
            headers = Headers((n, str(len(body))) if header_key(n) == "content-length" else (n, v)
                              for n, v in headers.items())
        if content_type is not None:
            headers = headers.with_replaced("Content-Type", content_type)
        return dataclasses.replace(self, headers=headers, body=body)


_HEADER_VIEWS = frozenset(name for name, value in vars(_MessageViews).items() if isinstance(value, cached_property))


@dataclass(frozen=True)
class SipRequest(_MessageViews):
    """A SIP request: ``method``, Request-URI ``uri``, ``headers``, ``body`` (bytes) and ``version``."""

    method: str
    uri: Uri
    headers: Headers
    body: bytes = b""
    version: str = SIP_VERSION

    def __repr__(self) -> str:
        return f"<SipRequest {self.method} {self.uri} call-id={self.call_id!r}>"


@dataclass(frozen=True)
class SipResponse(_MessageViews):
    """A SIP response: ``status`` (100..699), ``reason`` phrase, ``headers``, ``body`` and ``version``."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = SIP_VERSION

    @property
    def provisional(self) -> bool:
        """True for 1xx."""
        return self.status < 200

    @property
    def status_class(self) -> int:
        """1 for 1xx ... 6 for 6xx."""
        return self.status // 100

    def __repr__(self) -> str:
        return f"<SipResponse {self.status} {self.reason!r} call-id={self.call_id!r}>"


SipMessage = SipRequest | SipResponse
