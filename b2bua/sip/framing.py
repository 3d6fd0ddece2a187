"""Cutting a byte stream (TCP, TLS) into SIP messages: RFC 3261 §18.3 and RFC 5626 §3.5.1.

On a stream every message must carry Content-Length. Between messages a
double CRLF is a keep-alive "ping" (answer it with a single CRLF "pong"); a lone
CRLF is skipped. Limits on the header block and the body protect memory; when
one is exceeded, or Content-Length is missing or garbage, ``feed`` raises
FramingError and the transport closes the connection.
"""

from __future__ import annotations

import re

from b2bua.sip.errors import FramingError

__all__ = ["StreamFramer", "KEEPALIVE", "PONG", "FramingError"]


class _Keepalive:
    """The marker ``feed`` returns for a CRLFCRLF ping."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "KEEPALIVE"


#: Returned by ``StreamFramer.feed`` for each double-CRLF ping; answer with ``PONG``.
KEEPALIVE = _Keepalive()
#: The single CRLF that answers a ping (RFC 5626 §3.5.1).
PONG = b"\r\n"

# Greedy value, stripped afterwards: a lazy ``(.*?)[ \t]*$`` is quadratic on long blank runs.
_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:(.*)$", re.IGNORECASE | re.MULTILINE)


class StreamFramer:
    """Accumulates stream bytes and hands back whole messages and keep-alive pings.

    ``max_header_bytes`` bounds the start line plus headers (blank line
    included); ``max_body_bytes`` bounds Content-Length.
    """

    def __init__(self, max_header_bytes: int = 16384, max_body_bytes: int = 65536) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._scan_from = 0
        self._need: int | None = None  # total length of the message being read, once known
        self._broken: str | None = None

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | _Keepalive]:
        """Add received bytes; return every complete message (bytes) and KEEPALIVE, in order.

        Raises FramingError when the stream cannot be framed; after that the
        framer stays broken and raises again on every call.
        """
        if self._broken is not None:
            raise FramingError(self._broken)
        self._buffer += data
        out: list[bytes | _Keepalive] = []
        try:
            while self._next(out):
                pass
        except FramingError as exc:
            self._broken = exc.reason
            raise
        return out

    def _next(self, out: list) -> bool:
        buf = self._buffer
        if self._need is None:
            while buf[:2] == b"\r\n":
                if buf[:4] == b"\r\n\r\n":
                    out.append(KEEPALIVE)
                    del buf[:4]
                elif len(buf) < 4 and buf == b"\r\n\r"[:len(buf)]:
                    return False  # maybe a ping split over two reads
                else:
                    del buf[:2]  # a lone CRLF (a pong, or padding): skipped
                self._scan_from = 0
            if not buf:
                return False
            end = buf.find(b"\r\n\r\n", max(0, self._scan_from - 3))
            if end < 0:
                if len(buf) > self.max_header_bytes:
                    raise FramingError("Header block too large")
                self._scan_from = len(buf)
                return False
            header_len = end + 4
            if header_len > self.max_header_bytes:
                raise FramingError("Header block too large")
            body_len = self._content_length(bytes(buf[:end]))
            self._need = header_len + body_len
        if len(buf) < self._need:
            return False
        message = bytes(buf[:self._need])
        del buf[:self._need]
        self._need = None
        self._scan_from = 0
        out.append(message)
        return True

    def _content_length(self, head: bytes) -> int:
        head = re.sub(rb"\r\n[ \t]+", b" ", head) if b"\r\n " in head or b"\r\n\t" in head else head
        values = {m.group(1).strip(b" \t") for m in _CONTENT_LENGTH_RE.finditer(head.replace(b"\r\n", b"\n"))}
        if not values:
            raise FramingError("Missing Content-Length on a stream")
        if len(values) > 1:
            raise FramingError("Conflicting Content-Length headers")
        value = values.pop()
        if not value.isdigit() or len(value) > 10:
            raise FramingError("Bad Content-Length header")
        length = int(value)
        if length > self.max_body_bytes:
            raise FramingError("Body too large")
        return length
