"""The timers of RFC 3261 §17 (table 4) and RFC 6026, built from T1, T2 and T4.

Every value here is in seconds.  :class:`TimerValues` holds the three base
values (tests shrink them per endpoint) and derives every named timer from
them; retransmission schedules are data (:func:`retransmit_offsets`), so a
reader can compare them with the RFC by eye:

====== ============================= =========================== =================
timer  RFC 3261 / 6026 value          what for                    reliable transport
====== ============================= =========================== =================
T1     500 ms                         RTT estimate
T2     4 s                            max retransmit interval (non-INVITE, INVITE responses)
T4     5 s                            max time a message stays in the network
A      initially T1, doubles          INVITE request retransmit   not used
B      64*T1                          INVITE transaction timeout  same
D      > 32 s                         wait for response retransmits  0
E      initially T1, doubles to T2    non-INVITE request retransmit   not used
F      64*T1                          non-INVITE transaction timeout  same
G      initially T1, doubles to T2    INVITE response retransmit  not used
H      64*T1                          wait for ACK receipt        same
I      T4                             wait for ACK retransmits    0
J      64*T1                          wait for non-INVITE request retransmits  0
K      T4                             wait for response retransmits  0
L      64*T1 (RFC 6026)               wait for INVITE retransmits in Accepted  same
M      64*T1 (RFC 6026)               wait for 2xx retransmits in Accepted  same
====== ============================= =========================== =================

The UAS core's 2xx retransmission (§13.3.1.4) follows the schedule of G with
its own deadline of 64*T1; see :meth:`TimerValues.two_xx_schedule`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

T1 = 0.5
"""Round-trip time estimate, seconds (RFC 3261 §17.1.1.1)."""
T2 = 4.0
"""Maximum retransmit interval for non-INVITE requests and INVITE responses, seconds."""
T4 = 5.0
"""Maximum duration a message remains in the network, seconds."""
TIMER_D_UDP = 32.0
"""Timer D over unreliable transports: "at least 32 seconds" (RFC 3261 table 4)."""


class Timer(enum.Enum):
    """The named timers of RFC 3261 §17 and RFC 6026."""

    # Members are singletons compared by identity, so the identity hash agrees with ==; Enum's own
    # __hash__ is Python code (hash of the name), run on every table and dict lookup of the machine.
    __hash__ = object.__hash__

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"


RETRANSMIT_TIMERS = frozenset({Timer.A, Timer.E, Timer.G})
"""Timers that retransmit and re-arm, rather than end a state."""


def retransmit_intervals(first_s: float, cap_s: float | None, until_s: float) -> tuple[float, ...]:
    """The gaps between successive sends, starting from the first send at offset 0.

    Each gap doubles, capped at ``cap_s`` (``None``: no cap, as for timer A);
    only sends strictly before ``until_s`` (the timeout) count.  For INVITE over
    UDP with the defaults: ``(0.5, 1, 2, 4, 8, 16)``.
    """
    gaps: list[float] = []
    offset = 0.0
    gap = first_s
    while offset + gap < until_s:
        gaps.append(gap)
        offset += gap
        gap = gap * 2 if cap_s is None else min(gap * 2, cap_s)
    return tuple(gaps)


def retransmit_offsets(first_s: float, cap_s: float | None, until_s: float) -> tuple[float, ...]:
    """Offsets from the first send at which the message is sent again (see :func:`retransmit_intervals`)."""
    offsets: list[float] = []
    offset = 0.0
    for gap in retransmit_intervals(first_s, cap_s, until_s):
        offset += gap
        offsets.append(offset)
    return tuple(offsets)


@dataclass(frozen=True)
class TimerValues:
    """T1, T2, T4 and everything derived from them; one per endpoint."""

    t1: float = T1
    t2: float = T2
    t4: float = T4
    d_udp: float = TIMER_D_UDP

    @property
    def sixty_four_t1(self) -> float:
        return 64 * self.t1

    def duration(self, timer: Timer, reliable: bool) -> float | None:
        """How long ``timer`` runs when started; ``None`` when it is not used on this transport.

        For the retransmission timers (A, E, G) this is the first interval.
        """
        if timer in RETRANSMIT_TIMERS:
            return None if reliable else self.t1
        if timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
            return self.sixty_four_t1
        if timer is Timer.D:
            return 0.0 if reliable else self.d_udp
        if timer is Timer.J:
            return 0.0 if reliable else self.sixty_four_t1
        if timer in (Timer.I, Timer.K):
            return 0.0 if reliable else self.t4
        raise ValueError(f"unknown timer {timer!r}")  # pragma: no cover - the enum is closed

    def next_interval(self, timer: Timer, previous_s: float, *, proceeding: bool = False) -> float:
        """The gap after ``previous_s`` for a retransmission timer.

        A doubles without bound (B ends it); E and G double up to T2; E in the
        Proceeding state of a non-INVITE client transaction is T2 (§17.1.2.2).
        """
        if timer is Timer.A:
            return previous_s * 2
        if timer is Timer.E and proceeding:
            return self.t2
        if timer in (Timer.E, Timer.G):
            return min(previous_s * 2, self.t2)
        raise ValueError(f"{timer!r} does not retransmit")

    # Schedules as data, for reading and for tests.
    def invite_request_schedule(self, reliable: bool) -> tuple[float, ...]:
        """Offsets at which a client INVITE is retransmitted before timer B (none on streams)."""
        if reliable:
            return ()
        return retransmit_offsets(self.t1, None, self.sixty_four_t1)

    def non_invite_request_schedule(self, reliable: bool) -> tuple[float, ...]:
        """Offsets at which a client non-INVITE request is retransmitted in Trying, before timer F."""
        if reliable:
            return ()
        return retransmit_offsets(self.t1, self.t2, self.sixty_four_t1)

    def invite_response_schedule(self, reliable: bool) -> tuple[float, ...]:
        """Offsets at which a 3xx-6xx to INVITE is retransmitted (timer G) before timer H."""
        if reliable:
            return ()
        return retransmit_offsets(self.t1, self.t2, self.sixty_four_t1)

    def two_xx_schedule(self) -> tuple[float, ...]:
        """Offsets at which the UAS core resends a 2xx to INVITE until the ACK (§13.3.1.4).

        RFC 3261 asks for this on every transport: the hop after the next may be
        UDP, and only the UAS can recover a lost 2xx.
        """
        return retransmit_offsets(self.t1, self.t2, self.sixty_four_t1)


DEFAULT_TIMERS = TimerValues()
