"""The relay with real UDP sockets on 127.0.0.1; its timers on a task.Clock."""

from __future__ import annotations

import math
import struct

import pytest
from twisted.internet import reactor
from twisted.internet.task import Clock

from media.ports import PortsExhausted
from media.relay import BufferViews, Relay
from media.rtp import (RTCP_BYE, RTCP_SDES, RTCP_SR, build_rtp, build_telephone_event, parse_rtcp,
                       parse_rtp)
from media import g711
from media.sdp import Negotiated
from media.stream import ALAW_TO_ULAW

from tests.support.relay import Endpoint, port_is_free, pump, random_range, settle

SSRC_A, SSRC_B = 0xA0A0A0A0, 0xB0B0B0B0


@pytest.fixture
def env():
    """A relay on a random loopback range, timers on a Clock; endpoints A (carrier) and B (agent)."""
    lo, hi = random_range()
    clock = Clock()
    clock.advance(1_000_000)
    relay = Relay(reactor, "127.0.0.1", lo, hi, silence_timeout_s=60, clock=clock)
    a, b = Endpoint(), Endpoint()
    yield relay, clock, a, b
    relay.close()
    a.close()
    b.close()
    settle(0.01)


def call(relay, a, b, *, a_codec=("PCMA", 8, 101), b_codec=("PCMA", 8, 101), **kw):
    session = relay.open_session(**kw)
    session.configure_leg("a", a.negotiated(*a_codec))
    session.configure_leg("b", b.negotiated(*b_codec))
    return session


def audio(seq, ssrc, payload=b"\x2a" * 160, pt=8):
    return build_rtp(pt, seq, seq * 160, ssrc, payload)


def test_audio_flows_both_ways_with_our_ssrcs(env):
    """A's packets reach B and B's reach A, payload intact, each side seeing only our SSRC for that leg."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    for i in range(10):
        a.send(audio(100 + i, SSRC_A, bytes([i]) * 160), s.leg_a.local_port)
        b.send(audio(500 + i, SSRC_B, bytes([i + 50]) * 160), s.leg_b.local_port)
    got_b = [parse_rtp(d) for d in b.wait_for(10)]
    got_a = [parse_rtp(d) for d in a.wait_for(10)]
    assert sorted(p.payload[0] for p in got_b) == list(range(10))
    assert sorted(p.payload[0] for p in got_a) == list(range(50, 60))
    assert {p.ssrc for p in got_b} == {s.b_out.ssrc} and {p.ssrc for p in got_a} == {s.a_out.ssrc}
    assert s.a_out.ssrc not in (SSRC_A, SSRC_B) and s.b_out.ssrc not in (SSRC_A, SSRC_B)
    seqs = sorted(p.sequence for p in got_b)
    assert seqs == list(range(seqs[0], seqs[0] + 10))
    assert s.packets_relayed == 20 and relay.counters().packets_relayed == 20


def test_transcoding_and_payload_types_between_different_codecs(env):
    """A on PCMA (event type 96), B on PCMU (101): audio is transcoded, payload types follow each leg."""
    relay, clock, a, b = env
    s = call(relay, a, b, a_codec=("PCMA", 8, 96), b_codec=("PCMU", 0, 101))
    payload = bytes(range(160))
    a.send(audio(1, SSRC_A, payload), s.leg_a.local_port)
    p = parse_rtp(b.wait_for(1)[0])
    assert p.payload_type == 0 and p.payload == payload.translate(ALAW_TO_ULAW)


def test_alaw_from_a_reaches_b_as_mulaw_and_mulaw_from_b_reaches_a_as_alaw(env):
    """A caller on PCMA, an agent on PCMU: every A-law byte from A arrives at B as the mu-law code of the same
    sample (decoded with G.711 A-law, encoded with mu-law), and B's mu-law arrives at A as A-law the same
    way; the tone's samples survive both ways within G.711's quantisation."""
    relay, clock, a, b = env
    s = call(relay, a, b, a_codec=("PCMA", 8, 101), b_codec=("PCMU", 0, 101))
    tone = struct.pack("<160h", *(int(8000 * math.sin(2 * math.pi * 1000 * k / 8000)) for k in range(160)))
    alaw, ulaw = g711.encode(tone, "PCMA"), g711.encode(tone, "PCMU")
    a.send(audio(1, SSRC_A, alaw, pt=8), s.leg_a.local_port)
    b.send(audio(1, SSRC_B, ulaw, pt=0), s.leg_b.local_port)
    at_b, at_a = parse_rtp(b.wait_for(1)[0]), parse_rtp(a.wait_for(1)[0])
    assert at_b.payload_type == 0 and at_a.payload_type == 8
    assert at_b.payload == g711.encode(g711.decode(alaw, "PCMA"), "PCMU")
    assert at_a.payload == g711.encode(g711.decode(ulaw, "PCMU"), "PCMA")
    for heard, codec in ((at_b.payload, "PCMU"), (at_a.payload, "PCMA")):
        samples = struct.unpack("<160h", g711.decode(heard, codec))
        sent = struct.unpack("<160h", tone)
        assert max(abs(x - y) for x, y in zip(samples, sent)) <= 8000 // 16     # G.711 steps at 8000
    assert at_b.payload != alaw and at_a.payload != ulaw      # transcoded, not passed through


def test_a_peer_that_renumbered_our_offer_is_read_with_our_numbers_and_sent_its_own(env):
    """An agent answering our PCMU 0 / telephone-event 101 offer with PCMU as 0 and events as 96 receives
    events under 96 and sends them to us under 101 (RFC 3264 §5.1): both are relayed, not dropped."""
    relay, clock, a, b = env
    s = relay.open_session()
    s.configure_leg("a", a.negotiated("PCMA", 8, 101))
    s.configure_leg("b", Negotiated("PCMU", 0, 96, b.host, b.port, b.rtcp.getsockname()[1], "sendrecv",
                                    rx_event_payload_type=101))
    a.send(build_rtp(101, 7, 800, SSRC_A, build_telephone_event(5, False, 10, 160)), s.leg_a.local_port)
    assert parse_rtp(b.wait_for(1)[0]).payload_type == 96
    b.send(build_rtp(101, 9, 900, SSRC_B, build_telephone_event(3, False, 10, 160)), s.leg_b.local_port)
    b.send(build_rtp(96, 10, 1060, SSRC_B, build_telephone_event(4, False, 10, 160)), s.leg_b.local_port)
    a.wait_for(1)
    settle(0.01)
    a.poll()
    assert [(parse_rtp(d).payload_type, parse_rtp(d).payload[0]) for d in a.got] == [(101, 3)]
    assert s.leg_b.dropped == 1         # key 4 under its own 96 is not what it sends us


def test_symmetric_rtp_latches_onto_the_source_port(env):
    """The SDP names one port, packets come from another port of the same host: we answer to the source."""
    relay, clock, a, b = env
    s = relay.open_session()
    nat = Endpoint()
    try:
        s.configure_leg("a", a.negotiated())      # SDP says a's port
        s.configure_leg("b", b.negotiated())
        nat.send(audio(1, SSRC_A), s.leg_a.local_port)   # but a packet comes from nat's port
        b.wait_for(1)
        b.send(audio(1, SSRC_B), s.leg_b.local_port)
        assert len(nat.wait_for(1)) == 1
        a.poll()
        assert a.got == []                         # nothing goes to the signalled port any more
        # a second source on the same host does not take over while the first is talking
        a.send(audio(2, SSRC_A), s.leg_a.local_port)
        settle()
        assert s.leg_a.stray == 1 and len(b.got) == 1
    finally:
        nat.close()


def test_stray_packets_from_elsewhere_are_dropped_and_counted(env):
    """Packets from an address that is neither signalled nor in the latch ranges are dropped and counted."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    stranger = Endpoint("127.0.0.2")
    try:
        for i in range(3):
            stranger.send(audio(i, 0x5757), s.leg_a.local_port)
        a.send(audio(9, SSRC_A, b"\x09" * 160), s.leg_a.local_port)
        got = b.wait_for(1)
        settle()
        b.poll()
        assert [parse_rtp(d).payload[:1] for d in b.got] == [b"\x09"]
        assert s.packets_stray == 3 and relay.counters().packets_stray == 3
    finally:
        stranger.close()
    assert got


def test_carrier_ranges_allow_latching_onto_another_address(env):
    """With latch_networks, leg A latches onto a carrier address that the SDP did not name."""
    relay, clock, a, b = env
    lo, hi = random_range()
    carrier_relay = Relay(reactor, "127.0.0.1", lo, hi, 60, clock=clock, latch_networks=["127.0.0.0/29"])
    media_server = Endpoint("127.0.0.3")
    try:
        s = call(carrier_relay, a, b)
        media_server.send(audio(1, SSRC_A), s.leg_a.local_port)
        assert len(b.wait_for(1)) == 1
        b.send(audio(1, SSRC_B), s.leg_b.local_port)
        assert len(media_server.wait_for(1)) == 1
    finally:
        carrier_relay.close()
        media_server.close()


def test_malformed_packets_are_dropped_without_harm(env):
    """Garbage, short packets and unknown payload types are counted as dropped; relaying goes on."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    for junk in (b"", b"\x00" * 5, b"\x40" + b"\x00" * 20, build_rtp(18, 1, 1, SSRC_A, b"x" * 20),
                 struct.pack("!BBHII", 0x8F, 8, 1, 1, 1)):
        a.send(junk, s.leg_a.local_port)
    a.send(audio(7, SSRC_A), s.leg_a.local_port)
    assert len(b.wait_for(1)) == 1
    settle()
    assert s.leg_a.dropped == 5 and s.packets_relayed == 1


def test_dtmf_is_mapped_passed_through_and_reported_once(env):
    """B's event (type 101) reaches A as type 96; on_dtmf hears start and end once despite three end packets."""
    relay, clock, a, b = env
    heard = []
    s = call(relay, a, b, a_codec=("PCMA", 8, 96), b_codec=("PCMA", 8, 101),
             on_dtmf=lambda leg, digit, end: heard.append((leg, digit, end)))
    packets = [(False, 160), (False, 320), (True, 480), (True, 480), (True, 480)]
    for i, (end, dur) in enumerate(packets):
        b.send(build_rtp(101, 10 + i, 8000, SSRC_B, build_telephone_event(7, end, 10, dur)), s.leg_b.local_port)
    got = [parse_rtp(d) for d in a.wait_for(5)]
    assert {p.payload_type for p in got} == {96}
    assert len({p.timestamp for p in got}) == 1
    pump(lambda: len(heard) >= 2)
    assert heard == [("b", "7", False), ("b", "7", True)]


def test_silence_fills_a_quiet_leg_and_stops_when_audio_returns(env):
    """Nothing from B: A gets 20 ms silence frames; when B talks, its audio follows with the marker, no seq gap."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    b.send(audio(1, SSRC_B), s.leg_b.local_port)
    a.wait_for(1)
    for _ in range(20):
        clock.advance(0.02)
    silence = [parse_rtp(d) for d in a.wait_for(10)[1:]]
    assert len(silence) >= 10
    assert {p.payload for p in silence} == {b"\xd5" * 160}
    assert silence[0].marker and not any(p.marker for p in silence[1:])
    b.send(audio(2, SSRC_B, b"\x33" * 160), s.leg_b.local_port)
    pump(lambda: a.poll() and parse_rtp(a.got[-1]).payload == b"\x33" * 160)
    back = parse_rtp(a.got[-1])
    assert back.marker and back.sequence == (silence[-1].sequence + 1) % 65536
    n = len(a.got)
    clock.advance(0.02)
    settle()
    assert a.poll() == n     # filling stopped
    assert relay.counters().packets_silence >= 10


def test_muted_relay_lets_the_player_speak(env):
    """While A's stream is muted, B's audio does not reach A, the player's frames do, on the same SSRC."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    s.a_out.set_relay_muted(True)
    b.send(audio(1, SSRC_B, b"\x11" * 160), s.leg_b.local_port)
    settle()
    s.a_out.send_own_audio(b"\x77" * 160)
    p = parse_rtp(a.wait_for(1)[0])
    assert p.payload == b"\x77" * 160 and p.ssrc == s.a_out.ssrc
    assert s.a_out.packets_muted == 1


def test_rtcp_reports_per_leg_never_show_the_other_ssrc(env):
    """Each leg gets SR + SDES from our SSRC for it, reporting on its own SSRC (sequence, jitter),
    never the other leg's."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    for i in range(5):
        a.send(audio(100 + i, SSRC_A), s.leg_a.local_port)
        b.send(audio(200 + i, SSRC_B), s.leg_b.local_port)
    a.wait_for(5)
    b.wait_for(5)
    for _ in range(6):
        clock.advance(1.0)
    pump(lambda: (a.poll(), b.poll()) and a.got_rtcp and b.got_rtcp)
    for ep, ours, theirs, other in ((a, s.a_out.ssrc, SSRC_A, SSRC_B), (b, s.b_out.ssrc, SSRC_B, SSRC_A)):
        data = ep.got_rtcp[0]
        kinds = [p.packet_type for p in parse_rtcp(data)]
        assert kinds[:2] == [RTCP_SR, RTCP_SDES]
        assert struct.unpack_from("!I", data, 4)[0] == ours
        assert struct.unpack_from("!I", data, 28)[0] == theirs          # report block about that leg's stream
        assert struct.unpack_from("!I", data, 36)[0] == (204 if ep is b else 104)  # its highest sequence
        # five packets 20 ms of timestamp apart arrived at one (Clock) instant: RFC 3550 A.8 gives
        # J = 160 * (1 - (15/16)^4) = 36 timestamp units
        assert struct.unpack_from("!I", data, 40)[0] == 36
        assert struct.pack("!I", other) not in data


def test_close_frees_the_ports_and_says_bye(env):
    """session.close() sends RTCP BYE and the four ports can be bound again; the range has them back."""
    relay, clock, a, b = env
    free_before = relay.ports.free
    s = call(relay, a, b)
    ports = [s.leg_a.local_port, s.leg_a.local_rtcp_port, s.leg_b.local_port, s.leg_b.local_rtcp_port]
    assert ports[0] % 2 == 0 and ports[1] == ports[0] + 1
    assert not any(port_is_free(p) for p in ports)
    s.close()
    settle(0.02)
    assert all(port_is_free(p) for p in ports)
    assert relay.ports.free == free_before
    a.poll()
    assert RTCP_BYE in [p.packet_type for p in parse_rtcp(a.got_rtcp[-1])]


def test_silent_leg_times_out_and_the_owner_frees_the_ports(env):
    """A leg that sends nothing for silence_timeout_s is reported once; the owner closes and the ports are free."""
    relay, clock, a, b = env
    reported = []

    def on_silence(session, leg):
        reported.append(leg)
        session.close()

    s = call(relay, a, b, on_silence=on_silence)
    port = s.leg_a.local_port
    for i in range(59):
        a.send(audio(i, SSRC_A), s.leg_a.local_port)
        b.send(audio(i, SSRC_B), s.leg_b.local_port)
        pump(lambda: s.leg_a.rx_packets > i and s.leg_b.rx_packets > i)
        clock.advance(1.0)
    assert reported == []
    for _ in range(61):          # now B stops; A goes on talking
        a.send(audio(100, SSRC_A), s.leg_a.local_port)
        settle(0.002)
        clock.advance(1.0)
    assert reported == ["b"]
    assert s.closed and port_is_free(port) and relay.sessions == set()


def test_port_range_exhaustion_is_clear_and_leaks_nothing(env):
    """A range with three pairs serves one call (two pairs); the next call fails with PortsExhausted, nothing kept."""
    _, clock, a, b = env
    lo, _ = random_range()
    small = Relay(reactor, "127.0.0.1", lo, lo + 5, 60, clock=clock)
    try:
        small.open_session()
        with pytest.raises(PortsExhausted):
            small.open_session()
        assert small.ports.free == 1 and len(small.sessions) == 1
    finally:
        small.close()
    assert small.ports.free == 3


def test_ipv6_relay_on_loopback():
    """A relay on ::1 relays between IPv6 endpoints, latching on their IPv6 addresses."""
    lo, hi = random_range()
    relay = Relay(reactor, "::1", lo, hi, 60, clock=Clock())
    a, b = Endpoint("::1"), Endpoint("::1")
    try:
        s = call(relay, a, b)
        a.send(audio(1, SSRC_A, b"\x61" * 160), s.leg_a.local_port)
        assert parse_rtp(b.wait_for(1)[0]).payload == b"\x61" * 160
        b.send(audio(1, SSRC_B, b"\x62" * 160), s.leg_b.local_port)
        assert parse_rtp(a.wait_for(1)[0]).payload == b"\x62" * 160
    finally:
        relay.close()
        a.close()
        b.close()


def test_held_leg_gets_no_media_and_no_fill(env):
    """A leg whose SDP says sendonly (it holds us) receives nothing: neither relayed audio nor silence."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    s.configure_leg("a", a.negotiated(direction="sendonly"))
    b.send(audio(1, SSRC_B), s.leg_b.local_port)
    for _ in range(20):
        clock.advance(0.02)
    settle()
    assert a.poll() == 0
    a.send(audio(1, SSRC_A, b"\x44" * 160), s.leg_a.local_port)   # its music on hold still reaches B
    pump(lambda: b.poll() and any(parse_rtp(d).payload == b"\x44" * 160 for d in b.got))
    assert any(parse_rtp(d).payload == b"\x44" * 160 for d in b.got)


def test_new_sdp_address_moves_the_latch(env):
    """After a re-INVITE names a new address, packets from it are relayed and replies go there."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    a.send(audio(1, SSRC_A), s.leg_a.local_port)
    b.wait_for(1)
    moved = Endpoint("127.0.0.4")
    try:
        s.configure_leg("a", moved.negotiated())
        moved.send(audio(2, 0xC0C0, b"\x66" * 160), s.leg_a.local_port)
        assert parse_rtp(b.wait_for(2)[1]).payload == b"\x66" * 160
        b.send(audio(1, SSRC_B), s.leg_b.local_port)
        assert len(moved.wait_for(1)) == 1
    finally:
        moved.close()


def test_after_latching_the_peer_is_relayed_and_strays_are_still_counted(env):
    """Once latched (the peer's datagrams then arrive on a socket connected to it, rewritten and sent in
    place), audio keeps flowing both ways intact and numbered on, and a packet from another source of the
    same host in between is still seen, counted stray and not relayed."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    other = Endpoint()
    try:
        a.send(audio(100, SSRC_A, b"\x00" * 160), s.leg_a.local_port)
        b.send(audio(500, SSRC_B, b"\x80" * 160), s.leg_b.local_port)
        b.wait_for(1)
        a.wait_for(1)
        for i in range(1, 6):
            a.send(audio(100 + i, SSRC_A, bytes([i]) * 160), s.leg_a.local_port)
            other.send(audio(7, 0x0707, b"\x07" * 160), s.leg_a.local_port)
            b.send(audio(500 + i, SSRC_B, bytes([0x80 + i]) * 160), s.leg_b.local_port)
        got_b = [parse_rtp(d) for d in b.wait_for(6)]
        got_a = [parse_rtp(d) for d in a.wait_for(6)]
        settle()
        assert [p.payload[0] for p in got_b] == list(range(6)) and b.poll() == 6
        assert [p.payload[0] for p in got_a] == list(range(0x80, 0x86))
        assert [p.sequence - got_b[0].sequence for p in got_b] == list(range(6))
        assert {p.ssrc for p in got_b} == {s.b_out.ssrc} and {p.ssrc for p in got_a} == {s.a_out.ssrc}
        assert s.leg_a.stray == 5 and s.packets_relayed == 12
    finally:
        other.close()


def test_a_quiet_source_hands_the_latch_over_and_its_late_packets_are_stray(env):
    """Latched on one source (its datagrams read from the connected socket), quiet for a second: another
    allowed source takes over, replies go to it, and what the old source sends then is stray, not relayed."""
    relay, clock, a, b = env
    s = relay.open_session()
    nat = Endpoint()
    try:
        s.configure_leg("a", a.negotiated())
        s.configure_leg("b", b.negotiated())
        for i in range(3):
            nat.send(audio(1 + i, SSRC_A), s.leg_a.local_port)
        assert len(b.wait_for(3)) == 3 and s.leg_a.latched == nat.rtp.getsockname()
        clock.advance(1.0)                   # the slow tick: nothing new from nat since the last one...
        clock.advance(1.0)                   # ...so another source may latch
        a.send(audio(50, SSRC_A, b"\x50" * 160), s.leg_a.local_port)
        assert parse_rtp(b.wait_for(4)[3]).payload == b"\x50" * 160
        b.send(audio(1, SSRC_B), s.leg_b.local_port)
        assert len(a.wait_for(1)) == 1 and nat.poll() == 0
        nat.send(audio(4, SSRC_A, b"\x04" * 160), s.leg_a.local_port)
        settle()
        assert b.poll() == 4 and s.leg_a.stray == 1
    finally:
        nat.close()


def test_the_same_sdp_again_latches_the_same_peer_anew(env):
    """A repeated SDP resets latching while the peer's datagrams already arrive on the socket connected to
    it: they latch it again like any allowed source, and the replies keep going to it."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    a.send(audio(1, SSRC_A), s.leg_a.local_port)
    b.wait_for(1)
    s.configure_leg("a", a.negotiated())
    assert s.leg_a.latched is None
    a.send(audio(2, SSRC_A, b"\x22" * 160), s.leg_a.local_port)
    assert parse_rtp(b.wait_for(2)[1]).payload == b"\x22" * 160
    assert s.leg_a.latched == a.rtp.getsockname()
    b.send(audio(1, SSRC_B), s.leg_b.local_port)
    assert len(a.wait_for(1)) == 1 and s.packets_stray == 0 and s.packets_relayed == 3


def test_old_style_hold_still_relays_what_the_holder_sends(env):
    """After c=0.0.0.0 (old hold), A gets nothing, but its music on hold from its known host still reaches B."""
    relay, clock, a, b = env
    s = call(relay, a, b)
    held = a.negotiated(direction="sendonly")
    s.configure_leg("a", type(held)(held.codec, held.payload_type, held.event_payload_type, None,
                                    held.remote_port, held.remote_rtcp_port, "sendonly"))
    b.send(audio(1, SSRC_B), s.leg_b.local_port)
    a.send(audio(1, SSRC_A, b"\x47" * 160), s.leg_a.local_port)
    assert parse_rtp(b.wait_for(1)[0]).payload == b"\x47" * 160
    settle()
    assert a.poll() == 0 and s.leg_a.stray == 0


def test_random_datagrams_never_break_the_relay(env):
    """200 random datagrams (RTP-looking or not, RTP and RTCP ports) are dropped without an error; relaying goes on."""
    import random as rnd
    relay, clock, a, b = env
    s = call(relay, a, b)
    gen = rnd.Random(5)
    for i in range(200):
        data = bytes(gen.randrange(256) for _ in range(gen.randrange(0, 60)))
        if i % 2:
            data = bytes([0x80 | gen.randrange(64), gen.choice([8, 101, 0x80 | 8, 13, 200])]) + data
        a.rtp.sendto(data, ("127.0.0.1", s.leg_a.local_port if i % 3 else s.leg_a.local_rtcp_port))
    settle(0.05)
    a.send(audio(9999, SSRC_A, b"\x5a" * 160), s.leg_a.local_port)
    pump(lambda: b.poll() and any(parse_rtp(d).payload == b"\x5a" * 160 for d in b.got if len(d) >= 12
                                  and d[1] & 0x7F == 8))
    assert any(d[12:] == b"\x5a" * 160 for d in b.got)
    assert relay._poller.errors == 0


def test_peer_rtcp_is_read_for_lsr_and_never_forwarded(env):
    """A's sender report is consumed: not forwarded to B, and our next report to A carries its LSR."""
    from media.rtp import build_sr
    relay, clock, a, b = env
    s = call(relay, a, b)
    a.send(audio(1, SSRC_A), s.leg_a.local_port)
    b.wait_for(1)
    sr = build_sr(SSRC_A, 1_700_000_000.25, 160, 1, 160)
    a.rtcp.sendto(sr, ("127.0.0.1", s.leg_a.local_rtcp_port))
    pump(lambda: s.leg_a.rtcp_packets == 1)
    assert s.leg_a.rtcp_packets == 1
    clock.advance(0.5)
    a.got_rtcp.clear()
    for _ in range(6):
        clock.advance(1.0)
    pump(lambda: a.poll() is not None and a.got_rtcp)
    ntp_s, ntp_f = struct.unpack_from("!II", sr, 8)
    report = a.got_rtcp[0]
    # an SR when our stream towards A sent something by then (the silence fill starts within the first
    # second), else an RR (which second the session's reports fall on depends on the session): the
    # report block follows the SR's sender info or the RR's SSRC
    block_at = 28 if report[1] == 200 else 8
    lsr, dlsr = struct.unpack_from("!II", report, block_at + 16)
    assert lsr == ((ntp_s & 0xFFFF) << 16) | (ntp_f >> 16)
    assert dlsr >= 65536 // 2             # at least half a second, in 1/65536 s
    b.poll()
    assert all(struct.pack("!I", SSRC_A) not in d for d in b.got_rtcp + b.got)


def test_a_relayed_datagram_is_sent_from_a_kept_view_of_the_receive_buffer():
    """The views the relay sends datagrams from: one per length, made once, reading the buffer as it is now."""
    buffer = bytearray(8)
    views = BufferViews(buffer)
    first = views[3]
    buffer[:3] = b"abc"
    assert views[3] is first and bytes(first) == b"abc" and len(views[5]) == 5
    assert len(views) == 2
