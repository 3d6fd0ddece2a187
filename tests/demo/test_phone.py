"""The scripted test UA (``demo.phone``) on real sockets on 127.0.0.1, ports chosen by the OS.

Two test UAs call each other (or one calls ``tests.support.sip_apps.EchoUas``) on the
real reactor, pumped in bounded steps; the tests pin that a call is set up,
that audio flows both ways and each side's recording holds the other's tone
(spectral peak and correlation), that BYE ends it on both sides, and that bad
offers get a clear SIP answer.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from twisted.internet import reactor

from b2bua.sip.endpoint import SipEndpoint
from tests.support.sip_apps import EchoUas
from demo.phone import RtpPeer, TestUa, band_level, find, ua_sdp
from b2bua.transport import SipTransports

CARRIER_HZ = 700
AGENT_HZ = 1900


def pump(until, timeout_s: float) -> bool:
    """Run the real reactor until ``until()`` holds; bounded in time. Returns whether it held."""
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        reactor.iterate(0.005)
    return until()


@pytest.fixture
def closing():
    """Things with a ``stop()`` returning a Deferred, stopped (bounded) after the test."""
    things: list = []
    yield things.append
    for thing in things:
        d = thing.stop()
        done: list = []
        d.addBoth(done.append)
        pump(lambda: bool(done), 2.0)


def test_two_uas_call_hear_each_other_and_bye_ends_both(closing):
    """A call between two test UAs: 200 and ACK, each side records the other's tone (correlation > 0.95,
    the other's frequency dominates over ours), and the caller's BYE ends both with the right ``ended_by``."""
    agent = TestUa(reactor, name="agent", tone_hz=AGENT_HZ, answer=True, ring_s=0.1, ssrc=0xA)
    carrier = TestUa(reactor, name="carrier", tone_hz=CARRIER_HZ, hangup_after_s=1.0, ssrc=0xC)
    closing(agent)
    closing(carrier)
    agent.start()
    carrier.start()
    carrier.call(agent.uri, from_="<sip:+493088776655@127.0.0.1>")
    assert pump(lambda: carrier.ended.called and agent.ended.called, 10.0)
    c, a = carrier.summary(), agent.summary()
    assert (c.final_status, a.final_status) == (200, 200)
    assert (c.ended_by, a.ended_by) == ("local", "remote")
    assert c.reason == "BYE answered 200" and a.reason == "BYE received"
    assert any(what == "ACK received" for _, what in a.events)
    assert c.packets_sent >= 30 and a.packets_sent >= 30
    for me, other in ((carrier, agent), (agent, carrier)):
        heard, t0 = me.rtp.recording()
        assert t0 is not None and len(heard) >= 30 * 160
        assert band_level(heard, other.rtp.tone_hz) > 20 * band_level(heard, me.rtp.tone_hz)
        pattern = other.rtp.tone(10)
        lag, score = find(heard, pattern)
        assert score > 0.95
    # the recording is placed by RTP timestamp: the tone stays phase-continuous across it
    heard, _ = agent.rtp.recording()
    lag, score = find(heard[:4000], carrier.rtp.tone(20))
    assert score > 0.99


def test_agent_hangs_up_and_caller_records_the_end(closing):
    """The answering UA's ``hangup_after_s`` sends BYE: the caller sees ``ended_by == 'remote'`` and stops sending."""
    agent = TestUa(reactor, name="agent", tone_hz=AGENT_HZ, answer=True, hangup_after_s=0.5)
    carrier = TestUa(reactor, name="carrier", tone_hz=None)
    closing(agent)
    closing(carrier)
    agent.start()
    carrier.start()
    carrier.call(agent.uri, from_="<sip:+493088776655@127.0.0.1>")
    assert pump(lambda: carrier.ended.called and agent.ended.called, 10.0)
    assert carrier.summary().ended_by == "remote" and agent.summary().ended_by == "local"
    sent = carrier.rtp.packets_sent
    heard, _ = agent.rtp.recording()
    assert len(heard) > 0 and float(np.abs(heard).max()) < 50      # the caller sent silence
    pump(lambda: False, 0.1)
    assert carrier.rtp.packets_sent == sent                         # and nothing after the BYE


def test_call_to_echo_uas_is_answered_and_ended_by_bye(closing):
    """Against ``EchoUas`` (SDP with the discard port): the call is answered, and our BYE gets its 200."""
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={})
    uas = EchoUas(endpoint, reactor.seconds)
    transports = SipTransports(reactor, endpoint, uas.on_event)
    endpoint.local_ports["udp"] = port = transports.listen_udp(0, "127.0.0.1")
    closing(transports)
    carrier = TestUa(reactor, name="carrier", tone_hz=CARRIER_HZ, hangup_after_s=0.2)
    closing(carrier)
    carrier.start()
    carrier.call(f"sip:echo@127.0.0.1:{port}", from_="<sip:+493088776655@127.0.0.1>")
    assert pump(lambda: carrier.ended.called, 10.0)
    s = carrier.summary()
    assert (s.final_status, s.ended_by, s.reason) == (200, "local", "BYE answered 200")
    assert uas.counts["invite"] == 1 and uas.counts["bye"] == 1 and uas.counts["ack"] == 1


def test_unusable_offer_is_answered_488(closing):
    """An INVITE whose SDP has no PCMA/PCMU gets 488 from the answering UA, and the caller's call fails with it."""
    agent = TestUa(reactor, name="agent", answer=True)
    closing(agent)
    agent.start()
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={})
    got: list = []
    transports = SipTransports(reactor, endpoint, got.append)
    endpoint.local_ports["udp"] = transports.listen_udp(0, "127.0.0.1")
    closing(transports)
    body = ua_sdp("127.0.0.1", 4000).replace(b"RTP/AVP 8 0", b"RTP/AVP 18").replace(b"a=rtpmap:8 PCMA/8000\r\n", b"")
    body = body.replace(b"a=rtpmap:0 PCMU/8000\r\n", b"a=rtpmap:18 G729/8000\r\n")
    request = endpoint.make_request("INVITE", agent.uri, from_="<sip:x@127.0.0.1>", to=f"<{agent.uri}>",
                                    body=body, content_type="application/sdp")
    endpoint.send_request(request, reactor.seconds())
    transports.flush()
    finals = lambda: [e for e in got if getattr(e, "response", None) is not None and e.response.status >= 200]
    assert pump(lambda: bool(finals()), 5.0)
    assert finals()[0].response.status == 488
    assert agent.ended.called and agent.summary().ended_by == "failed"


def test_rtp_recording_places_packets_by_timestamp(closing):
    """A lost packet leaves 20 ms of silence at its place instead of pulling the rest forward."""
    peer = RtpPeer(reactor)
    closing(peer)
    peer.listen()
    sender = RtpPeer(reactor, tone_hz=1000, ssrc=5)
    closing(sender)
    sender.listen()
    sender.remote, sender.codec = ("127.0.0.1", peer.port), "PCMU"
    for k in (0, 1, 3, 4):
        sender._send_frame(k)
    assert pump(lambda: peer.packets_received == 4, 2.0)
    heard, _ = peer.recording()
    assert len(heard) == 5 * 160
    assert np.all(heard[2 * 160:3 * 160] == 0)
    lag, score = find(heard[3 * 160:], sender.tone(5)[3 * 160:])
    assert lag == 0 and score > 0.99


def test_answering_ua_is_busy_during_a_call_and_takes_the_next_one_after(closing):
    """An INVITE while the agent is in a call gets 486; after the BYE the agent answers the next call."""
    agent = TestUa(reactor, name="agent", tone_hz=AGENT_HZ, answer=True)
    first = TestUa(reactor, name="first", tone_hz=CARRIER_HZ)
    second = TestUa(reactor, name="second", tone_hz=CARRIER_HZ)
    third = TestUa(reactor, name="third", tone_hz=CARRIER_HZ, hangup_after_s=0.2)
    for ua in (agent, first, second, third):
        closing(ua)
        ua.start()
    first.call(agent.uri, from_="<sip:+493088776655@127.0.0.1>")
    assert pump(lambda: first.answered.called, 5.0)
    second.call(agent.uri, from_="<sip:+493088776656@127.0.0.1>")
    assert pump(lambda: second.ended.called, 5.0)
    assert second.summary().final_status == 486
    first.hangup()
    assert pump(lambda: first.ended.called and agent.ended.called, 5.0)
    third.call(agent.uri, from_="<sip:+493088776657@127.0.0.1>")
    assert pump(lambda: third.ended.called and agent.ended.called and agent.final_status == 200
                and agent.ended_by == "remote", 5.0)
    assert third.summary().final_status == 200 and third.summary().ended_by == "local"
