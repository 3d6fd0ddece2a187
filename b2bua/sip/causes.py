"""Why, in words a peer's software reads: the Warning header (RFC 3261 §20.43) and the Reason header (RFC 3326).

A ``Warning`` goes with a response and says what in the session description we
could not take: ``Warning: 305 192.0.2.1 "Incompatible media format"``.  The
warn-agent is our host (``hostport``), the text the RFC's for the code unless
given.

A ``Reason`` goes with a BYE or CANCEL (RFC 3326 §2) and says why the session
ends: a SIP status (``SIP;cause=486;text="Busy Here"``) or an ITU-T Q.850 cause
(``Q.850;cause=16;text="Normal call clearing"``), the values carriers map onto
ISUP release causes.  :class:`Reason` is one such value; the B2BUA's choice per
way a call ends is :mod:`b2bua.clearing`.

Pure; pinned by ``tests/sip/test_causes.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.sip.headers import quote_string

__all__ = ["WARN_TEXT", "INCOMPATIBLE_MEDIA_FORMAT", "warning_value", "Reason"]

#: the warn-codes of RFC 3261 §20.43 and their texts
WARN_TEXT: dict[int, str] = {
    300: "Incompatible network protocol",
    301: "Incompatible network address formats",
    302: "Incompatible transport protocol",
    303: "Incompatible bandwidth units",
    304: "Media type not available",
    305: "Incompatible media format",
    306: "Attribute not understood",
    307: "Session description parameter not understood",
    330: "Multicast not available",
    331: "Unicast not available",
    370: "Insufficient bandwidth",
    399: "Miscellaneous warning",
}
#: the warn-code of a 488 that knows no finer reason: our offers are G.711 only, so it is the codec
INCOMPATIBLE_MEDIA_FORMAT = 305


def warning_value(code: int, host: str, text: str | None = None) -> str:
    """One warning-value: ``code host "text"`` (an IPv6 host in brackets); ``text`` defaults to the RFC's.

    Raises ValueError for a code outside 300-399 (the codes of RFC 3261 §20.43) or without a text."""
    if not 300 <= code <= 399:
        raise ValueError(f"warn-code {code} is not a session description warning (300-399)")
    text = text if text is not None else WARN_TEXT.get(code)
    if not text:
        raise ValueError(f"warn-code {code} has no standard text: give one")
    agent = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{code} {agent} {quote_string(text)}"


@dataclass(frozen=True)
class Reason:
    """One reason-value of RFC 3326: ``protocol`` "SIP" (cause a status code) or "Q.850" (cause 1-127)."""

    protocol: str
    cause: int
    text: str

    def __post_init__(self) -> None:
        if self.protocol == "SIP" and not 200 <= self.cause <= 699:
            raise ValueError(f"a SIP Reason names a final status (200-699), not {self.cause}")
        if self.protocol == "Q.850" and not 1 <= self.cause <= 127:
            raise ValueError(f"a Q.850 cause is 1-127, not {self.cause}")
        if self.protocol not in ("SIP", "Q.850"):
            raise ValueError(f"Reason protocol {self.protocol!r} is neither SIP nor Q.850")

    @property
    def value(self) -> str:
        """The header's value: ``Q.850;cause=16;text="Normal call clearing"``."""
        return f"{self.protocol};cause={self.cause};text={quote_string(self.text)}"

    def header(self) -> tuple[str, str]:
        """The (name, value) pair for a request's headers."""
        return ("Reason", self.value)
