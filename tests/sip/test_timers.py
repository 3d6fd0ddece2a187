"""The timers of RFC 3261 §17 and RFC 6026, checked with plain numbers."""

from __future__ import annotations

import pytest

from b2bua.sip.timers import (
    DEFAULT_TIMERS, T1, T2, T4, Timer, TimerValues, retransmit_intervals, retransmit_offsets,
)


def test_base_values_are_the_rfc_defaults():
    """T1 is 500 ms, T2 4 s, T4 5 s (RFC 3261 table 4)."""
    assert (T1, T2, T4) == (0.5, 4.0, 5.0)
    assert (DEFAULT_TIMERS.t1, DEFAULT_TIMERS.t2, DEFAULT_TIMERS.t4) == (0.5, 4.0, 5.0)


def test_invite_request_over_udp_retransmits_at_doubling_offsets_until_timer_b():
    """Timer A: sends again at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; timer B ends it at 32 s."""
    assert DEFAULT_TIMERS.invite_request_schedule(reliable=False) == (0.5, 1.5, 3.5, 7.5, 15.5, 31.5)
    assert retransmit_intervals(0.5, None, 32.0) == (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    assert DEFAULT_TIMERS.duration(Timer.B, reliable=False) == 32.0
    assert DEFAULT_TIMERS.duration(Timer.B, reliable=True) == 32.0


def test_non_invite_request_retransmission_caps_at_t2():
    """Timer E doubles to T2 then stays at 4 s: 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5; F at 32 s."""
    assert DEFAULT_TIMERS.non_invite_request_schedule(reliable=False) == (
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)
    assert DEFAULT_TIMERS.duration(Timer.F, reliable=False) == 32.0
    assert DEFAULT_TIMERS.next_interval(Timer.E, 0.5) == 1.0
    assert DEFAULT_TIMERS.next_interval(Timer.E, 4.0) == 4.0
    assert DEFAULT_TIMERS.next_interval(Timer.E, 0.5, proceeding=True) == 4.0


def test_invite_final_response_retransmission_caps_at_t2_until_timer_h():
    """Timer G resends a 3xx-6xx like E; timer H (64*T1) gives up waiting for the ACK."""
    assert DEFAULT_TIMERS.invite_response_schedule(reliable=False) == (
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)
    assert DEFAULT_TIMERS.next_interval(Timer.G, 2.0) == 4.0
    assert DEFAULT_TIMERS.duration(Timer.H, reliable=True) == 32.0


def test_uas_2xx_retransmission_follows_t1_doubling_to_t2_until_64_t1():
    """§13.3.1.4: the UAS core resends its 2xx at 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 s."""
    assert DEFAULT_TIMERS.two_xx_schedule() == (0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5)


def test_reliable_transports_do_not_retransmit_and_wait_timers_are_zero():
    """Over TCP/TLS: no A, E, G; D, I, J, K are zero; B, F, H, L, M keep 64*T1."""
    for timer in (Timer.A, Timer.E, Timer.G):
        assert DEFAULT_TIMERS.duration(timer, reliable=True) is None
    for timer in (Timer.D, Timer.I, Timer.J, Timer.K):
        assert DEFAULT_TIMERS.duration(timer, reliable=True) == 0.0
    for timer in (Timer.B, Timer.F, Timer.H, Timer.L, Timer.M):
        assert DEFAULT_TIMERS.duration(timer, reliable=True) == 32.0
    assert DEFAULT_TIMERS.invite_request_schedule(reliable=True) == ()
    assert DEFAULT_TIMERS.non_invite_request_schedule(reliable=True) == ()
    assert DEFAULT_TIMERS.invite_response_schedule(reliable=True) == ()


@pytest.mark.parametrize("timer, expected", [
    (Timer.A, 0.5), (Timer.B, 32.0), (Timer.D, 32.0), (Timer.E, 0.5), (Timer.F, 32.0),
    (Timer.G, 0.5), (Timer.H, 32.0), (Timer.I, 5.0), (Timer.J, 32.0), (Timer.K, 5.0),
    (Timer.L, 32.0), (Timer.M, 32.0),
])
def test_every_timer_over_udp_has_its_table_4_value(timer, expected):
    """Each named timer over UDP has the RFC 3261 table 4 / RFC 6026 value for default T1, T2, T4."""
    assert DEFAULT_TIMERS.duration(timer, reliable=False) == expected


def test_timers_follow_overridden_base_values():
    """With T1=0.1, T2=0.4, T4=1 (a test endpoint) B is 6.4 s, K is 1 s, E caps at 0.4 s."""
    fast = TimerValues(t1=0.1, t2=0.4, t4=1.0)
    assert fast.duration(Timer.B, reliable=False) == pytest.approx(6.4)
    assert fast.duration(Timer.K, reliable=False) == 1.0
    assert retransmit_offsets(0.1, 0.4, 1.0) == pytest.approx((0.1, 0.3, 0.7))
    # D is "at least 32 s" on UDP whatever T1 is, unless set explicitly
    assert fast.duration(Timer.D, reliable=False) == 32.0
    assert TimerValues(d_udp=2.0).duration(Timer.D, reliable=False) == 2.0


def test_only_a_e_g_retransmit():
    """Asking the next interval of a timer that does not retransmit is a programming error."""
    with pytest.raises(ValueError):
        DEFAULT_TIMERS.next_interval(Timer.B, 1.0)
