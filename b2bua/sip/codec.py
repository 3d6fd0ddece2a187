"""Bytes to messages and back (RFC 3261 §7), and responses built from requests (§8.2.6).

``parse_message`` reads the start line and cuts the header lines (unfolded,
names and values as received); header values are parsed later, when asked.
``serialise`` writes header names and values as they are held (names kept as
received, no compact/long rewriting), CRLF line ends, and a Content-Length
computed from the body: the first Content-Length line gets the true value, or
one ``Content-Length`` line is appended.
"""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import Headers, NameAddr, ascii_int, cached_header_key, header_key
from b2bua.sip.message import SIP_VERSION, SipRequest, SipResponse
from b2bua.sip.uri import parse_uri

__all__ = ["parse_message", "serialise", "make_response", "reason_phrase", "REASON_PHRASES", "stable_tag"]

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
    607: "Unwanted",
}

_CLASS_PHRASES = {1: "Trying", 2: "OK", 3: "Redirect", 4: "Client Error", 5: "Server Error", 6: "Global Failure"}

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_FOLD_RE = re.compile(r"\r\n[ \t]+")
_HEADER_LINE_RE = re.compile(r"^([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:[ \t]*([^\r\n]*)\r?$", re.MULTILINE)


def reason_phrase(status: int) -> str:
    """The standard reason phrase for ``status`` (falls back to its class: ``Client Error``...)."""
    return REASON_PHRASES.get(status) or _CLASS_PHRASES.get(status // 100, "Unknown")


def _readable_lines(lines: Iterable[str]) -> tuple[list[tuple[str, str]], str | None]:
    """(name, value) of every header line that reads, and why the first one that does not, or None.

    A line that does not read is passed over, not the end of reading: the Via, From, To,
    Call-ID and CSeq after it still address the 400 (the slow path, for broken messages only).
    """
    items: list[tuple[str, str]] = []
    problem = None
    for line in lines:
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if not sep or _TOKEN_RE.fullmatch(name) is None:
            problem = problem or ("Malformed header line" if not sep else "Bad header name")
            continue
        items.append((name, value.strip(" \t")))
    return items, problem


def _header_line_error(rest: str) -> SipParseError:
    """The precise error for the first header line that does not read, with every line that does."""
    items, problem = _readable_lines(rest.split("\r\n"))
    return SipParseError(problem or "Malformed header line", partial=Headers(items))


_ANY_LINE_END_RE = re.compile(r"\r\n|\r|\n")


def _split_header_lines(rest: str) -> list[tuple[str, str]]:
    """(name, value) of every header line; one regex pass, the line count proves none was skipped."""
    items = _HEADER_LINE_RE.findall(rest)
    if len(items) != rest.count("\r\n") + 1:
        raise _header_line_error(rest)
    if " \r" in rest or "\t\r" in rest or rest[-1] in " \t":
        items = [(name, value.rstrip(" \t")) for name, value in items]
    return items


def _content_length(headers: Headers) -> int | None:
    values = headers.get_lines("content-length")
    if not values:
        return None
    length = ascii_int(values[0])
    if length is None:
        raise SipParseError("Bad Content-Length header", partial=headers)
    for other in values[1:]:
        if ascii_int(other) != length:
            raise SipParseError("Conflicting Content-Length headers", partial=headers)
    return length


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one datagram or one framed stream message into a SipRequest or SipResponse.

    CRLFs before the start line are skipped. With Content-Length the body is
    that many bytes and anything after it is ignored (RFC 4475 dblreq); without
    it the body is the rest of the data. Raises SipParseError: 505 for a SIP
    version other than 2.0, 400 otherwise, with the readable header lines in
    ``partial``.
    """
    if data[:2] == b"\r\n":
        data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if data.endswith(b"\r\n"):
            end = len(data) - 2
            body_start = len(data)
        else:
            end = body_start = len(data)
    else:
        body_start = end + 4
    try:
        head = data[:end].decode("utf-8", "surrogateescape")
    except Exception:  # surrogateescape decodes any bytes; this is a guard only
        raise SipParseError("Undecodable message") from None
    if "\r\n " in head or "\r\n\t" in head:
        head = _FOLD_RE.sub(" ", head)
    crlf = head.count("\r\n")
    if head.count("\n") != crlf or head.count("\r") != crlf:
        items, _ = _readable_lines(_ANY_LINE_END_RE.split(head)[1:])
        raise SipParseError("Bare CR or LF in headers", partial=Headers(items))
    start, sep, rest = head.partition("\r\n")
    headers = Headers(_split_header_lines(rest) if sep and rest else ())
    length = _content_length(headers)
    if length is None:
        body = data[body_start:]
    else:
        body = data[body_start:body_start + length]
        if len(body) < length:
            raise SipParseError("Content-Length larger than the body", partial=headers)

    if start.startswith("SIP/") or start[:4].upper() == "SIP/":
        parts = start.split(" ", 2)
        if len(parts) < 2:
            raise SipParseError("Bad status line", partial=headers)
        version, code = parts[0], parts[1]
        reason = parts[2] if len(parts) == 3 else ""
        if not _VERSION_RE.fullmatch(version):
            raise SipParseError("Bad SIP version", partial=headers)
        if version.upper() != SIP_VERSION:
            raise SipParseError("Version Not Supported", 505, partial=headers)
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            raise SipParseError("Bad status code", partial=headers)
        if any(ch in reason for ch in "\x00\x7f") or any(ord(ch) < 32 and ch != "\t" for ch in reason):
            raise SipParseError("Bad reason phrase", partial=headers)
        return SipResponse(int(code), reason, headers, body, SIP_VERSION)

    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError("Bad request line", partial=headers)
    method, uri_text, version = parts
    if not _TOKEN_RE.fullmatch(method):
        raise SipParseError("Bad method", partial=headers)
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError("Bad SIP version", partial=headers)
    if version.upper() != SIP_VERSION:
        raise SipParseError("Version Not Supported", 505, partial=headers)
    try:
        uri = parse_uri(uri_text, "Request-URI")
    except SipParseError as exc:
        raise SipParseError(exc.reason, exc.status, partial=headers) from None
    return SipRequest(method, uri, headers, body, SIP_VERSION)


def serialise(msg: SipRequest | SipResponse) -> bytes:
    """The wire form of ``msg``: start line, header lines as held, Content-Length from the body, body.

    The first Content-Length line (long or compact name) gets the body's length
    and any further ones are left out; without one, ``Content-Length`` is appended.
    Raises ValueError (our own misuse, never a peer's) when a start-line part,
    header name or value holds CR or LF, which would forge lines on the wire.
    """
    if isinstance(msg, SipRequest):
        start = f"{msg.method} {msg.uri} {msg.version}"
    else:
        start = f"{msg.version} {msg.status} {msg.reason}"
    body = msg.body
    length = str(len(body))
    headers = msg.headers
    items = headers.items()
    lengths = headers.values_of_key("content-length")
    if lengths is None:
        # what we build has none: every line as held, then the one we owe
        lines = [f"{name}: {value}" for name, value in items]
        lines.append(f"Content-Length: {length}")
    elif len(lengths) == 1 and lengths[0] == length:
        lines = [f"{name}: {value}" for name, value in items]
    else:
        lines = []
        done = False
        for name, value in items:
            if header_key(name) == "content-length":
                if done:
                    continue
                value = length
                done = True
            lines.append(f"{name}: {value}")
        if not done:
            lines.append(f"Content-Length: {length}")
    if lines:
        text = f"{start}\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    else:
        text = f"{start}\r\n\r\n"
    line_ends = len(lines) + 2
    if text.count("\n") != line_ends or text.count("\r") != line_ends:
        # A value built in code carried a line break: writing it would forge header lines.
        raise ValueError("CR or LF inside a start line, header name or value")
    return text.encode("utf-8", "surrogateescape") + body


def stable_tag(request: SipRequest) -> str:
    """A To tag that is the same for every retransmission of ``request`` (from Call-ID, From tag, CSeq, branch)."""
    h = request.headers
    seed = "\x00".join((h.get("call-id") or "", h.get("from") or "", h.get("cseq") or "",
                        (h.get_all("via") or [""])[0]))
    return hashlib.blake2s(seed.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


def make_response(request: SipRequest, status: int, reason: str | None = None, *,
                  to_tag: str | None = None,
                  headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> SipResponse:
    """A response to ``request`` by RFC 3261 §8.2.6.2.

    Copies every Via (in order), From, To, Call-ID and CSeq lines as received;
    adds ``to_tag`` to To when given and To has no tag yet; then the extra
    ``headers`` (name, value) pairs. ``reason`` defaults to the standard phrase.
    """
    copied: list[tuple[str, str]] = []
    cached = cached_header_key
    for name, value in request.headers.items():
        key = cached(name) or header_key(name)
        if key == "via" or key == "from" or key == "call-id" or key == "cseq":
            copied.append((name, value))
        elif key == "to":
            if to_tag is not None:
                try:
                    has_tag = NameAddr.parse(value, "To").tag is not None
                except SipParseError:
                    has_tag = True  # an unreadable To is echoed as it came
                if not has_tag:
                    value = f"{value};tag={to_tag}"
            copied.append((name, value))
    copied.extend((name, str(value)) for name, value in headers)
    return SipResponse(status, reason if reason is not None else reason_phrase(status),
                       Headers(copied), body, SIP_VERSION)
