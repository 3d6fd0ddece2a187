"""Dialog state per RFC 3261 §12 and the UAS core's 2xx retransmission (§13.3.1.4)."""

from __future__ import annotations

from b2bua.sip.codec import parse_message
from b2bua.sip.dialog import (
    DialogId, TwoXxRetransmission, build_2xx_ack, build_in_dialog_request, uac_dialog, uas_dialog,
)
from b2bua.sip.headers import NameAddr, Via
from b2bua.sip.peer import Peer
from b2bua.sip.timers import TimerValues
from tests.support.sip_endpoint import CARRIER, request, response_to

VIA = Via.parse("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnew")


def _uas():
    invite = parse_message(request("INVITE", cseq=7, extra=(
        "Record-Route: <sip:192.0.2.1;lr>", "Record-Route: <sip:192.0.2.2;lr>")))
    return uas_dialog(invite, "ours", CARRIER)


def test_uas_dialog_takes_route_set_in_order_and_target_from_contact():
    """§12.1.1: Record-Route in received order, Contact as remote target, remote CSeq from the INVITE."""
    d = _uas()
    assert d.id == DialogId("call-1@192.0.2.10", "ours", "ft1")
    assert [str(r.uri) for r in d.route_set] == ["sip:192.0.2.1;lr", "sip:192.0.2.2;lr"]
    assert str(d.remote_target) == "sip:carrier@192.0.2.10:5062"
    assert d.remote_seq == 7 and d.local_seq is None and not d.secure
    assert NameAddr.parse(d.local_address).tag == "ours" and NameAddr.parse(d.remote_address).tag == "ft1"


def test_uac_dialog_reverses_record_route():
    """§12.1.2: the UAC's route set is the 2xx's Record-Route reversed; local CSeq is the INVITE's."""
    invite_bytes = request("INVITE", cseq=3)
    resp = parse_message(response_to(invite_bytes, 200, to_tag="callee", extra=(
        "Record-Route: <sip:192.0.2.1;lr>, <sip:192.0.2.2;lr>", "Contact: <sip:callee@192.0.2.50>")))
    d = uac_dialog(parse_message(invite_bytes), resp, Peer("udp", "192.0.2.1", 5060))
    assert [str(r.uri) for r in d.route_set] == ["sip:192.0.2.2;lr", "sip:192.0.2.1;lr"]
    assert d.local_seq == 3 and d.remote_seq is None and d.id.remote_tag == "callee"
    assert str(d.remote_target) == "sip:callee@192.0.2.50"


def test_in_dialog_requests_count_cseq_up_from_the_first():
    """§12.2.1.1: the UAS side starts its own CSeq and increments it; tags are swapped for the UAS."""
    d = _uas()
    first = build_in_dialog_request(d, "BYE", VIA, contact=None)
    second = build_in_dialog_request(d, "INFO", VIA, contact=None)
    assert (first.cseq.seq, second.cseq.seq) == (1, 2)
    assert first.from_.tag == "ours" and first.to.tag == "ft1"
    assert first.headers.get_all("route") == ["<sip:192.0.2.1;lr>", "<sip:192.0.2.2;lr>"]
    assert str(first.uri) == "sip:carrier@192.0.2.10:5062"


def test_a_dialog_keeps_its_local_and_remote_address_as_the_text_it_writes():
    """A held call keeps two dialogs for the whole call, and their addresses are only ever written into From and
    To: each is kept as that text, not as a parsed NameAddr with its URI and parameters (~130 B less a dialog,
    tracemalloc), and written as it was kept."""
    d = _uas()
    assert d.local_address == "<sip:+493012345678@127.0.0.1>;tag=ours"
    assert d.remote_address == "<sip:+4915112345678@192.0.2.10>;tag=ft1"
    bye = build_in_dialog_request(d, "BYE", VIA, contact=None)
    assert bye.headers.get("from") == d.local_address and bye.headers.get("to") == d.remote_address


def test_ack_for_2xx_keeps_the_invite_cseq_and_does_not_advance_it():
    """§13.2.2.4: the ACK's CSeq number is the INVITE's, method ACK; the dialog's CSeq stays."""
    d = _uas()
    d.local_seq = 5
    ack = build_2xx_ack(d, 5, VIA)
    assert str(ack.cseq) == "5 ACK" and d.local_seq == 5 and ack.contact is None


def test_lower_cseq_is_out_of_order_but_ack_and_cancel_are_exempt():
    """§12.2.2: lower CSeq -> 500; equal or higher accepted and remembered; ACK and CANCEL not checked."""
    d = _uas()
    assert d.check_remote_cseq(parse_message(request("INFO", cseq=6, to_tag="ours"))) == 500
    assert d.check_remote_cseq(parse_message(request("ACK", cseq=1, to_tag="ours"))) is None
    assert d.check_remote_cseq(parse_message(request("INFO", cseq=9, to_tag="ours"))) is None
    assert d.remote_seq == 9


def test_target_refresh_moves_the_remote_target():
    """A re-INVITE's Contact becomes the remote target."""
    d = _uas()
    reinvite = parse_message(request("INVITE", cseq=8, to_tag="ours").replace(
        b"<sip:carrier@192.0.2.10:5062>", b"<sip:moved@192.0.2.99:5062>"))
    d.refresh_target(reinvite)
    assert str(d.remote_target) == "sip:moved@192.0.2.99:5062"


def test_2xx_retransmission_schedule_and_give_up():
    """§13.3.1.4 with T1=0.5, T2=4: resends at 0.5, 1.5, 3.5, 7.5, 11.5 ... 31.5; gives up at 32."""
    r = TwoXxRetransmission(DialogId("c", "l", "r"), 1, b"200", CARRIER, started=0.0)
    times = []
    while True:
        at = r.next_deadline()
        sends, gave_up = r.fire(at)
        times.extend([at] * sends)
        if gave_up:
            break
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert at == 32.0


def test_2xx_retransmission_with_shrunk_timers():
    """With T1=0.1, T2=0.4 the gaps are 0.1, 0.2, 0.4, 0.4 ... and it gives up at 6.4 s."""
    r = TwoXxRetransmission(DialogId("c", "l", "r"), 1, b"200", CARRIER, started=10.0,
                            timer_values=TimerValues(t1=0.1, t2=0.4))
    assert r.fire(10.35) == (2, False)
    assert r.give_up_at == 16.4
    assert r.fire(16.4)[1] is True
