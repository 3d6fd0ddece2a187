"""The SIP codec's errors: one for a message that cannot be read, one for a broken stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from b2bua.sip.headers import Headers


class SipParseError(Exception):
    """A message (or a part of one) that does not follow the SIP grammar.

    ``reason`` says what is wrong, in words fit for a reason phrase; ``status``
    is the answer a UAS owes the sender: 400, 505 for an unsupported SIP
    version, 416 for an unsupported URI scheme. ``partial`` holds the header
    lines that could be read (or None), so that a 400 can still be addressed
    (Via, From, To, Call-ID, CSeq); a response is never sent for a response.
    """

    def __init__(self, reason: str, status: int = 400, partial: "Headers | None" = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial

    def __repr__(self) -> str:
        return f"SipParseError({self.reason!r}, status={self.status})"


class FramingError(Exception):
    """A stream (TCP, TLS) that cannot be cut into messages: the transport closes it.

    Raised for a missing or garbage Content-Length (RFC 3261 §18.3) and for
    header or body sizes over the framer's limits.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
