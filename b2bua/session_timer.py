"""Session timers (RFC 4028), one leg at a time, as pure functions of header values and ``now``.

Each leg negotiates on its own: the carrier's INVITE (we are UAS) and our
INVITE to the agent (we are UAC).  The outcome is :class:`Terms`: the session
interval and who refreshes.  The refresher sends a refresh at half the
interval (§10); the other side, if no refresh arrived, ends the session
``min(32, interval/3)`` seconds before the interval runs out (§10) — in a B2BUA
that means BYE on both legs.

Tests pin: 422 with Min-SE for a too-small interval; the refresher chosen per
§9 (the UAC's choice kept, ``uas`` when the UAC does not support ``timer``);
no session timer when the agent's 2xx carries none; the refresh and expiry
times.
"""

from __future__ import annotations

from dataclasses import dataclass

#: RFC 4028 §4: the smallest Session-Expires anyone may ask for
ABSOLUTE_MIN_SE_S = 90


@dataclass(frozen=True)
class SessionExpires:
    """A parsed ``Session-Expires: <delta>;refresher=uac|uas`` value."""

    interval_s: int
    refresher: str | None  # "uac", "uas" or None

    @classmethod
    def parse(cls, value: str | None) -> "SessionExpires | None":
        """None for an absent or unreadable header (an unreadable one is treated as absent)."""
        if not value:
            return None
        parts = [p.strip() for p in value.split(";")]
        try:
            interval = int(parts[0])
        except ValueError:
            return None
        if interval <= 0:
            return None
        refresher = None
        for param in parts[1:]:
            name, _, val = param.partition("=")
            if name.strip().lower() == "refresher" and val.strip().lower() in ("uac", "uas"):
                refresher = val.strip().lower()
        return cls(interval, refresher)

    def __str__(self) -> str:
        return f"{self.interval_s};refresher={self.refresher}" if self.refresher else str(self.interval_s)


def parse_min_se(value: str | None) -> int:
    """The Min-SE header in seconds (absent or unreadable: the RFC's 90)."""
    if value:
        try:
            return max(int(value.split(";")[0].strip()), ABSOLUTE_MIN_SE_S)
        except ValueError:
            pass
    return ABSOLUTE_MIN_SE_S


@dataclass(frozen=True)
class Terms:
    """What was agreed on one leg: the interval, and whether we are the refresher."""

    interval_s: int
    we_refresh: bool

    def refresh_due(self, last_refresh_at: float) -> float:
        """When we send the next refresh (if we are the refresher): half the interval (§10)."""
        return last_refresh_at + self.interval_s / 2

    def expires_at(self, last_refresh_at: float) -> float:
        """When, without a refresh, the session is dead and we send BYE (§10)."""
        return last_refresh_at + self.interval_s - min(32, self.interval_s / 3)


@dataclass(frozen=True)
class TooSmall:
    """Answer 422 Session Interval Too Small with ``Min-SE: min_se_s``."""

    min_se_s: int


def as_uas(request_se: str | None, request_min_se: str | None, uac_supports_timer: bool,
           our_min_se_s: int, our_se_s: int) -> tuple[Terms | None, TooSmall | None, list[tuple[str, str]]]:
    """Negotiate on a leg where we answer an INVITE/UPDATE (§9).

    Returns (terms or None, a 422 to send instead or None, headers for our 2xx).
    """
    se = SessionExpires.parse(request_se)
    if se is None:
        if not uac_supports_timer:
            # we may still run a timer we refresh ourselves (§9, last paragraph)
            interval = max(our_se_s, our_min_se_s)
            return Terms(interval, True), None, [("Session-Expires", f"{interval};refresher=uas")]
        interval = max(our_se_s, parse_min_se(request_min_se), our_min_se_s)
        return (Terms(interval, False), None,
                [("Session-Expires", f"{interval};refresher=uac"), ("Require", "timer")])
    if se.interval_s < our_min_se_s:
        return None, TooSmall(our_min_se_s), [("Min-SE", str(our_min_se_s))]
    # we may shorten the interval, but not below the request's Min-SE
    interval = max(min(se.interval_s, our_se_s), parse_min_se(request_min_se), our_min_se_s)
    interval = min(interval, se.interval_s)
    refresher = se.refresher or ("uac" if uac_supports_timer else "uas")
    if not uac_supports_timer:
        refresher = "uas"
    headers = [("Session-Expires", f"{interval};refresher={refresher}")]
    if uac_supports_timer:
        headers.append(("Require", "timer"))
    return Terms(interval, refresher == "uas"), None, headers


def uac_request_headers(our_se_s: int, our_min_se_s: int) -> list[tuple[str, str]]:
    """Headers for our INVITE to an agent: we ask for a timer and offer to refresh it.  (``Supported: timer``
    comes with the INVITE's other capabilities: :mod:`b2bua.capabilities`.)"""
    return [("Session-Expires", f"{our_se_s};refresher=uac"), ("Min-SE", str(our_min_se_s))]


def as_uac(response_se: str | None) -> Terms | None:
    """What the agent's 2xx agreed (§7.2): None means no session timer on that leg."""
    se = SessionExpires.parse(response_se)
    if se is None:
        return None
    return Terms(se.interval_s, se.refresher != "uas")


def retry_after_422(response_min_se: str | None, our_se_s: int) -> int:
    """The Session-Expires to retry with after a 422: at least the agent's Min-SE (§7.4)."""
    return max(parse_min_se(response_min_se), our_se_s)
