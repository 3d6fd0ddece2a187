"""The transaction machines run with plain `now` numbers: retransmissions, timeouts, reliable transports."""

from __future__ import annotations

import pytest

from b2bua.sip.timers import TimerValues
from b2bua.sip.transaction import Action, Input, Kind, State, TransactionMachine, response_input


def _run_until(machine, until, step=0.25):
    """Fire timers tick by tick until `until`; return (time, action) for every action."""
    seen = []
    now = 0.0
    while now <= until and not machine.terminated:
        deadline = machine.next_deadline()
        if deadline is None or deadline > until:
            break
        now = deadline
        seen.extend((now, a) for a in machine.fire_due(now))
    return seen


def test_invite_client_over_udp_retransmits_then_times_out_with_b():
    """Calling over UDP: INVITE at 0, again at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5; B at 32 tells the TU."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=False)
    assert m.start(0.0) == [Action.SEND_REQUEST]
    seen = _run_until(m, 100.0)
    sends = [t for t, a in seen if a is Action.SEND_REQUEST]
    assert sends == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert seen[-1] == (32.0, Action.TIMEOUT_TO_TU)
    assert m.terminated and m.next_deadline() is None


def test_invite_client_over_tcp_sends_once_and_times_out_with_b():
    """Over a stream there is no timer A; B still ends the transaction at 32 s."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=True)
    m.start(0.0)
    assert _run_until(m, 100.0) == [(32.0, Action.TIMEOUT_TO_TU)]


def test_provisional_stops_invite_retransmission_and_timer_b():
    """A 1xx in Calling moves to Proceeding: no more retransmissions, no timeout."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=False)
    m.start(0.0)
    m.fire_due(0.5)
    assert m.feed(Input.RESPONSE_1XX, 0.7) == [Action.RESPONSE_TO_TU]
    assert m.state is State.PROCEEDING and m.next_deadline() is None


def test_invite_client_final_failure_waits_timer_d_over_udp_and_acks_retransmissions():
    """A 486 is ACKed and passed up; its retransmission is re-ACKed only; D ends it 32 s later."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=False)
    m.start(0.0)
    assert m.feed(Input.RESPONSE_300_699, 1.0) == [Action.SEND_ACK, Action.RESPONSE_TO_TU]
    assert m.feed(Input.RESPONSE_300_699, 2.0) == [Action.SEND_ACK]
    assert m.next_deadline() == 33.0
    m.fire_due(33.0)
    assert m.terminated


def test_invite_client_final_failure_over_tcp_terminates_at_once():
    """Timer D is zero on streams: Completed is left inside the same call."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=True)
    m.start(0.0)
    assert m.feed(Input.RESPONSE_300_699, 1.0) == [Action.SEND_ACK, Action.RESPONSE_TO_TU]
    assert m.terminated


def test_invite_client_accepted_passes_every_2xx_until_timer_m():
    """RFC 6026: after a 2xx, each 2xx retransmission goes to the TU (which re-ACKs) until M."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=False)
    m.start(0.0)
    assert m.feed(Input.RESPONSE_2XX, 1.0) == [Action.RESPONSE_TO_TU]
    assert m.feed(Input.RESPONSE_2XX, 1.5) == [Action.RESPONSE_TO_TU]
    assert m.feed(Input.RESPONSE_1XX, 1.6) == []
    assert m.next_deadline() == 33.0
    m.fire_due(33.0)
    assert m.terminated


def test_non_invite_client_caps_at_t2_in_trying_and_uses_t2_in_proceeding():
    """Trying: 0.5, 1.5, 3.5; after a 1xx at 4.0 the gaps are T2: 7.5, 11.5 ...; F at 32."""
    m = TransactionMachine(Kind.NON_INVITE_CLIENT, reliable=False)
    m.start(0.0)
    seen = _run_until(m, 4.0)
    assert [t for t, a in seen if a is Action.SEND_REQUEST] == [0.5, 1.5, 3.5]
    m.feed(Input.RESPONSE_1XX, 4.0)
    seen = _run_until(m, 100.0)
    assert [t for t, a in seen if a is Action.SEND_REQUEST] == [7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert seen[-1] == (32.0, Action.TIMEOUT_TO_TU)


def test_non_invite_client_udp_full_schedule():
    """Without a provisional: 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5 then F at 32."""
    m = TransactionMachine(Kind.NON_INVITE_CLIENT, reliable=False)
    m.start(0.0)
    seen = _run_until(m, 100.0)
    assert [t for t, a in seen if a is Action.SEND_REQUEST] == [
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert seen[-1] == (32.0, Action.TIMEOUT_TO_TU)


def test_non_invite_client_completed_absorbs_for_timer_k():
    """After the final response the transaction lingers T4 (5 s) over UDP, 0 over TCP."""
    m = TransactionMachine(Kind.NON_INVITE_CLIENT, reliable=False)
    m.start(0.0)
    assert m.feed(Input.RESPONSE_2XX, 0.2) == [Action.RESPONSE_TO_TU]
    assert m.feed(Input.RESPONSE_2XX, 0.3) == []
    assert m.next_deadline() == pytest.approx(5.2)
    tcp = TransactionMachine(Kind.NON_INVITE_CLIENT, reliable=True)
    tcp.start(0.0)
    tcp.feed(Input.RESPONSE_2XX, 0.2)
    assert tcp.terminated


def test_invite_server_failure_retransmits_with_g_until_ack_then_waits_i():
    """A 486 is resent at 0.5, 1.5, 3.5 after it was sent at 0; the ACK at 4 stops G; I (T4) ends it."""
    m = TransactionMachine(Kind.INVITE_SERVER, reliable=False)
    m.start(0.0)
    assert m.feed(Input.TU_300_699, 0.0) == [Action.SEND_RESPONSE]
    seen = _run_until(m, 4.0)
    assert [t for t, a in seen if a is Action.SEND_RESPONSE] == [0.5, 1.5, 3.5]
    assert m.feed(Input.ACK, 4.0) == []
    assert m.state is State.CONFIRMED and m.next_deadline() == 9.0
    assert m.feed(Input.ACK, 5.0) == []  # retransmitted ACKs are absorbed
    m.fire_due(9.0)
    assert m.terminated


def test_invite_server_failure_without_ack_times_out_with_h():
    """No ACK for a 486: G resends capped at T2, H at 32 s tells the TU."""
    m = TransactionMachine(Kind.INVITE_SERVER, reliable=False)
    m.start(0.0)
    m.feed(Input.TU_300_699, 0.0)
    seen = _run_until(m, 100.0)
    assert [t for t, a in seen if a is Action.SEND_RESPONSE] == [
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert seen[-1] == (32.0, Action.TIMEOUT_TO_TU)


def test_invite_server_refusal_sent_once_is_never_resent_by_timer_and_ends_after_t4():
    """A 403 sent once over UDP: no G retransmissions, no H timeout for the TU; each retransmitted INVITE
    gets it once more; the transaction ends at T4 (5 s), not at H (32 s)."""
    m = TransactionMachine(Kind.INVITE_SERVER, reliable=False)
    m.start(0.0)
    assert m.feed(Input.TU_300_699_ONCE, 0.0) == [Action.SEND_RESPONSE]
    assert m.state is State.REFUSED and m.next_deadline() == 5.0
    assert m.feed(Input.REQUEST, 0.5) == [Action.SEND_RESPONSE]
    assert m.feed(Input.REQUEST, 1.5) == [Action.SEND_RESPONSE]
    assert _run_until(m, 100.0) == []
    assert m.terminated


def test_invite_server_refusal_sent_once_ends_at_the_ack_and_at_once_on_streams():
    """The ACK ends a once-sent refusal at once; over TCP timer I is 0, so it ends when sent."""
    m = TransactionMachine(Kind.INVITE_SERVER, reliable=False)
    m.start(0.0)
    m.feed(Input.TU_300_699_ONCE, 0.0)
    assert m.feed(Input.ACK, 0.2) == [] and m.terminated
    tcp = TransactionMachine(Kind.INVITE_SERVER, reliable=True)
    tcp.start(0.0)
    assert tcp.feed(Input.TU_300_699_ONCE, 0.0) == [Action.SEND_RESPONSE]
    assert tcp.terminated


def test_only_a_final_failure_from_the_tu_is_sent_once():
    """``once`` classifies a TU's 300-699 only; a 1xx, 2xx or a received response is refused."""
    assert response_input(403, from_tu=True, once=True) is Input.TU_300_699_ONCE
    for status, from_tu in ((180, True), (200, True), (403, False)):
        with pytest.raises(ValueError):
            response_input(status, from_tu=from_tu, once=True)


def test_invite_server_accepted_absorbs_invite_and_lasts_timer_l():
    """After a 2xx: INVITE retransmissions absorbed, TU's 2xx retransmissions sent, L ends at 64*T1."""
    m = TransactionMachine(Kind.INVITE_SERVER, reliable=True)
    m.start(0.0)
    assert m.feed(Input.TU_1XX, 0.0) == [Action.SEND_RESPONSE]
    assert m.feed(Input.REQUEST, 0.1) == [Action.SEND_RESPONSE]
    assert m.feed(Input.TU_2XX, 1.0) == [Action.SEND_RESPONSE]
    assert m.feed(Input.REQUEST, 1.1) == []
    assert m.feed(Input.TU_2XX, 1.5) == [Action.SEND_RESPONSE]
    assert m.next_deadline() == 33.0
    m.fire_due(33.0)
    assert m.terminated


def test_non_invite_server_resends_final_on_retransmission_and_lingers_j():
    """A retransmitted request in Completed re-gets the final response; J is 64*T1 on UDP, 0 on TCP."""
    m = TransactionMachine(Kind.NON_INVITE_SERVER, reliable=False)
    m.start(0.0)
    assert m.feed(Input.REQUEST, 0.1) == []  # Trying absorbs
    assert m.feed(Input.TU_2XX, 0.2) == [Action.SEND_RESPONSE]
    assert m.feed(Input.REQUEST, 1.0) == [Action.SEND_RESPONSE]
    assert m.next_deadline() == pytest.approx(32.2)
    tcp = TransactionMachine(Kind.NON_INVITE_SERVER, reliable=True)
    tcp.start(0.0)
    tcp.feed(Input.TU_300_699, 0.2)
    assert tcp.terminated


def test_shrunk_timers_scale_the_schedule():
    """With T1 = 0.1 s the INVITE client retransmits at 0.1, 0.3, 0.7 ... 6.3 and B fires at 6.4 s."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=False, timer_values=TimerValues(t1=0.1, t2=0.4))
    m.start(0.0)
    seen = _run_until(m, 100.0)
    assert [round(t, 6) for t, a in seen if a is Action.SEND_REQUEST] == [0.1, 0.3, 0.7, 1.5, 3.1, 6.3]
    assert seen[-1][0] == pytest.approx(6.4)


def test_late_tick_fires_each_due_timer_in_order():
    """A tick at 2.0 after none since 0 resends twice (0.5 and 1.5 were due), in one call."""
    m = TransactionMachine(Kind.INVITE_CLIENT, reliable=False)
    m.start(0.0)
    assert m.fire_due(2.0) == [Action.SEND_REQUEST, Action.SEND_REQUEST]
    assert m.next_deadline() == 3.5


@pytest.mark.parametrize("status, from_tu, expected", [
    (100, False, Input.RESPONSE_1XX), (183, False, Input.RESPONSE_1XX), (200, False, Input.RESPONSE_2XX),
    (299, False, Input.RESPONSE_2XX), (300, False, Input.RESPONSE_300_699), (699, False, Input.RESPONSE_300_699),
    (180, True, Input.TU_1XX), (202, True, Input.TU_2XX), (487, True, Input.TU_300_699),
])
def test_status_codes_classify_into_table_inputs(status, from_tu, expected):
    """1xx, 2xx and 300-699, from the wire or from the TU."""
    assert response_input(status, from_tu=from_tu) is expected


def test_status_outside_100_699_is_refused():
    """Status 99 or 700 is not a response class a table knows."""
    with pytest.raises(ValueError):
        response_input(700, from_tu=False)
