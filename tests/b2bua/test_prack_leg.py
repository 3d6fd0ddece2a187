"""Reliable 183 (RFC 3262 100rel/PRACK, RFC 5009 P-Early-Media) on the carrier's leg: plain bytes on a Clock."""

from __future__ import annotations

from types import SimpleNamespace

from twisted.internet.task import Clock

from b2bua.callevents import LegBroken
from b2bua.calls import CallManager
from b2bua.legs import SipInboundLeg
from b2bua.prack import ReliableProvisional, parse_rack
from b2bua.sip.codec import parse_message
from b2bua.sip.endpoint import RequestReceived, SipEndpoint
from b2bua.sip.peer import Peer

CARRIER = Peer("udp", "127.0.0.1", 5080)
SDP = b"v=0\r\no=b2bua 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 8\r\n"


def invite(extra: str) -> bytes:
    return ("INVITE sip:+493012345678@127.0.0.1:5060 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcarrier1\r\n"
            "From: <sip:+49301234567@127.0.0.1>;tag=c1\r\nTo: <sip:+493012345678@127.0.0.1>\r\n"
            "Call-ID: call-prack-1\r\nCSeq: 7 INVITE\r\nContact: <sip:carrier@127.0.0.1:5080>\r\n"
            f"Max-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n").encode()


def prack(rack: str, to_tag: str, branch: str = "z9hG4bKprack1") -> bytes:
    return ("PRACK sip:b2bua@127.0.0.1:5060 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5080;branch={branch}\r\n"
            f"From: <sip:+49301234567@127.0.0.1>;tag=c1\r\nTo: <sip:+493012345678@127.0.0.1>;tag={to_tag}\r\n"
            f"Call-ID: call-prack-1\r\nCSeq: 8 PRACK\r\nRAck: {rack}\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode()


class Rig:
    """A real endpoint (100rel supported), the carrier's leg, and a manager that knows the call and flushes
    the endpoint onto :attr:`wire` after each input; the leg's call events are collected (:attr:`aborted`)."""

    def __init__(self, extra: str):
        self.clock = Clock()
        self.endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060},
                                    supported_extensions=("timer", "100rel"))
        self.endpoint.receive(invite(extra), CARRIER, 0.0)
        event = [e for e in self.endpoint.take_events() if isinstance(e, RequestReceived)][0]
        self.wire: list = []
        self.manager = CallManager(endpoint=self.endpoint, reactor=self.clock, router=None, settings=None,
                                   billing=None, record=lambda r: None, flush=self.pump)
        self.aborted: list[str] = []
        self.inputs = self.manager.driver.inputs("call-prack-1")
        self.leg = SipInboundLeg(self.endpoint, self.inputs, emit=self.told, own=self.manager.own_key,
                                 tx_id=event.transaction_id, invite=event.request, session_expires_s=1800,
                                 min_se_s=90)
        self.manager.calls["call-prack-1"] = SimpleNamespace(a=self.leg, pending_timers=lambda: 0)

    def told(self, event) -> None:
        if isinstance(event, LegBroken):
            self.aborted.append(event.reason)

    def act(self, order, *args) -> None:
        """One order of the call to the leg, as one input (flushed after it)."""
        self.manager.driver.run("call-prack-1", order, *args)

    def pump(self) -> None:
        self.wire.extend(parse_message(o.data) for o in self.endpoint.take_outgoing())

    def receive(self, data: bytes) -> None:
        self.endpoint.receive(data, CARRIER, self.clock.seconds())
        for event in self.endpoint.take_events():
            self.manager.on_event(event)
        self.pump()

    def responses(self, status: int, method: str = "INVITE") -> list:
        return [m for m in self.wire if getattr(m, "status", None) == status and m.cseq.method == method]


def test_rack_parsing_and_retransmission_schedule():
    """RAck is three fields; retransmissions at T1 doubling to T2 (0.5, 1.5, 3.5, 7.5, 11.5 ...), give up at 64*T1."""
    assert parse_rack("5 7 INVITE") == (5, 7, "INVITE") and parse_rack("5 x INVITE") is None and parse_rack("") is None
    rel = ReliableProvisional(5, 7, 0.0)
    times, now = [], 0.0
    while now < 40:
        now += 0.25
        what = rel.due(now)
        if what == "retransmit":
            times.append(now)
        if what == "give_up":
            break
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5] and now == 32.0


def test_reliable_183_with_p_early_media_retransmitted_until_prack():
    """With Supported: 100rel the 183 carries Require: 100rel, RSeq, P-Early-Media: sendrecv; it repeats until the PRACK, which gets 200."""
    rig = Rig("Supported: 100rel, timer\r\nP-Early-Media: supported\r\n")
    rig.act(rig.leg.provisional, 183, SDP)
    first = rig.responses(183)
    assert len(first) == 1
    r = first[0]
    assert r.headers.get("require") == "100rel" and r.headers.get("p-early-media") == "sendrecv"
    rseq = int(r.headers.get("rseq"))
    assert r.body == SDP
    assert rig.manager.open_counts().timers >= 1      # the retransmission timer is counted while it runs
    rig.clock.advance(0.5)
    rig.clock.advance(1.0)
    assert len(rig.responses(183)) == 3
    assert {m.headers.get("rseq") for m in rig.responses(183)} == {str(rseq)}
    to_tag = r.to.tag
    rig.receive(prack(f"{rseq} 7 INVITE", to_tag))
    assert len(rig.responses(200, "PRACK")) == 1
    rig.clock.advance(10)
    assert len(rig.responses(183)) == 3 and rig.clock.getDelayedCalls() == []
    assert not rig.leg.prack_timer_pending
    assert rig.aborted == []


def test_prack_that_matches_nothing_gets_481_and_retransmissions_go_on():
    """A PRACK with the wrong RSeq is answered 481; the 183 is still unacknowledged."""
    rig = Rig("Require: 100rel\r\n")
    rig.act(rig.leg.provisional, 183, SDP)
    r = rig.responses(183)[0]
    rseq = int(r.headers.get("rseq"))
    rig.receive(prack(f"{rseq + 1} 7 INVITE", r.to.tag))
    assert len(rig.responses(481, "PRACK")) == 1 and rig.responses(200, "PRACK") == []
    rig.clock.advance(0.5)
    assert len(rig.responses(183)) == 2
    rig.leg.stop_prack()


def test_no_prack_in_64_t1_aborts_the_call():
    """Without a PRACK the leg gives up at 32 s and aborts the call; no timer stays."""
    rig = Rig("Supported: 100rel\r\n")
    rig.act(rig.leg.provisional, 183, SDP)
    for _ in range(80):
        rig.clock.advance(0.5)
    assert rig.aborted == ["no_prack"]
    assert 6 <= len(rig.responses(183)) <= 12
    assert rig.clock.getDelayedCalls() == []


def test_without_100rel_the_183_is_unreliable():
    """A carrier that neither requires nor supports 100rel gets one plain 183 (no RSeq, no Require) and no timer."""
    rig = Rig("")
    rig.act(rig.leg.provisional, 183, SDP)
    r = rig.responses(183)
    assert len(r) == 1 and r[0].headers.get("rseq") is None and r[0].headers.get("require") is None
    assert r[0].headers.get("p-early-media") is None
    assert rig.clock.getDelayedCalls() == []


def test_second_reliable_provisional_waits_for_the_first_prack():
    """RFC 3262 §3: a 180 and then a 183 with SDP, both reliable: the 183 is not sent while the 180 is
    unacknowledged; the 180's PRACK gets 200, then the 183 goes with the next RSeq and is retransmitted
    until its own PRACK; no timer stays."""
    rig = Rig("Supported: 100rel\r\n")
    rig.act(rig.leg.provisional, 180)
    rig.act(rig.leg.provisional, 183, SDP)
    assert len(rig.responses(180)) == 1 and rig.responses(183) == []
    rig.clock.advance(0.5)
    assert len(rig.responses(180)) == 2 and rig.responses(183) == []      # only the first is retransmitted
    first = rig.responses(180)[0]
    rseq = int(first.headers.get("rseq"))
    rig.receive(prack(f"{rseq} 7 INVITE", first.to.tag))
    assert len(rig.responses(200, "PRACK")) == 1
    (second,) = rig.responses(183)
    assert int(second.headers.get("rseq")) == rseq + 1 and second.body == SDP
    assert rig.wire.index(second) > rig.wire.index(rig.responses(200, "PRACK")[0])   # after the PRACK's 200
    rig.clock.advance(0.5)
    assert len(rig.responses(183)) == 2 and len(rig.responses(180)) == 2
    rig.receive(prack(f"{rseq + 1} 7 INVITE", first.to.tag, branch="z9hG4bKprack2"))
    assert len(rig.responses(200, "PRACK")) == 2
    rig.clock.advance(10)
    assert len(rig.responses(183)) == 2 and rig.clock.getDelayedCalls() == [] and rig.aborted == []


def test_queued_reliable_provisional_is_dropped_when_the_final_answer_goes_first():
    """A 183 still waiting behind an unacknowledged 180 is never sent once the INVITE is answered 200."""
    rig = Rig("Require: 100rel\r\n")
    rig.act(rig.leg.provisional, 180)
    rig.act(rig.leg.provisional, 183, SDP)
    rig.act(rig.leg.answer, SDP)
    assert len(rig.responses(200)) == 1 and not rig.leg.reliable_queue
    first = rig.responses(180)[0]
    rig.receive(prack(f"{first.headers.get('rseq')} 7 INVITE", first.to.tag))
    rig.clock.advance(10)
    assert rig.responses(183) == [] and not rig.leg.prack_timer_pending
    rig.leg.timer.cancel()
    assert rig.clock.getDelayedCalls() == []
