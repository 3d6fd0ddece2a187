"""The outgoing stream: relayed and own audio on one SSRC, muting, the mixing hook, transcoding, events."""

from __future__ import annotations

import struct

from twisted.internet.task import Clock

from media.rtp import build_rtp, build_telephone_event, parse_rtp
from media.rtp import StreamNumbering
from media.stream import ALAW_TO_ULAW, OutgoingStream


def make(codec="PCMA", source="PCMA", event_pt=101):
    clock = Clock()
    sent: list[bytes] = []
    s = OutgoingStream(clock.seconds, sent.append, codec=codec, event_payload_type=event_pt,
                       source_codec=source, ssrc=0x5EED)
    return s, clock, sent


def test_relayed_audio_gets_our_ssrc_and_payload_type_bytes():
    """A relayed packet leaves with our SSRC, our payload type, and the same payload bytes."""
    s, clock, sent = make()
    s.relay_audio(build_rtp(8, 1, 1000, 0xBAD, b"\x01" * 160), clock.seconds())
    p = parse_rtp(sent[0])
    assert p.ssrc == 0x5EED and p.payload_type == 8 and p.marker
    assert p.payload == b"\x01" * 160
    assert len(sent[0]) == 172


def test_relay_unpacked_sends_what_relay_audio_sends_in_place():
    """The relay's entry (header fields unpacked by the caller, the datagram a writable view of its buffer)
    numbers and sends exactly what relay_audio sends for the same packets, rewriting the view in place."""
    a, clock, sent_a = make()
    b, _, sent_b = make()
    a.numbering, b.numbering = StreamNumbering(0x5EED, 100, 5000), StreamNumbering(0x5EED, 100, 5000)
    for seq in (1, 2, 4):
        data = build_rtp(8, seq, 1000 + 160 * seq, 0xBAD, bytes([seq]) * 160)
        a.relay_audio(data, clock.seconds())
        buf = bytearray(data)
        b0, _, in_seq, in_ts, in_ssrc = struct.unpack_from("!BBHII", buf)
        b.relay_unpacked(memoryview(buf), clock.seconds(), b0, in_seq, in_ts, in_ssrc)
        assert bytes(buf) == sent_a[-1]
        clock.advance(0.02)
    assert [bytes(d) for d in sent_b] == sent_a
    assert (b.packets_relayed, b.octets_sent) == (a.packets_relayed, a.octets_sent) == (3, 480)


def test_csrcs_of_the_other_side_never_leak():
    """A relayed packet with CSRCs (other SSRCs) is re-sent without them."""
    s, clock, sent = make()
    data = struct.pack("!BBHIIII", 0x82, 8, 1, 1000, 0xBAD, 0xC5C1, 0xC5C2) + b"\x02" * 160
    s.relay_audio(data, 0.0)
    assert b"\x00\x00\x0b\xad" not in sent[0] and b"\x00\x00\xc5\xc1" not in sent[0]
    assert parse_rtp(sent[0]).csrcs == ()
    assert parse_rtp(sent[0]).payload == b"\x02" * 160


def test_own_audio_after_relayed_runs_on_with_marker():
    """send_own_audio after relayed audio: next sequence number, timestamp by elapsed time, marker once."""
    s, clock, sent = make()
    for i in range(3):
        s.relay_audio(build_rtp(8, 100 + i, 5000 + 160 * i, 0xBAD, b"\x01" * 160), clock.seconds())
        clock.advance(0.02)
    for _ in range(3):
        s.send_own_audio(b"\x55" * 160)
        clock.advance(0.02)
    ps = [parse_rtp(d) for d in sent]
    assert [(b.sequence - a.sequence) % 65536 for a, b in zip(ps, ps[1:])] == [1] * 5
    assert [(b.timestamp - a.timestamp) % 2**32 for a, b in zip(ps, ps[1:])] == [160] * 5
    assert [p.marker for p in ps] == [True, False, False, True, False, False]
    assert {p.ssrc for p in ps} == {0x5EED}
    assert ps[3].payload == b"\x55" * 160


def test_muted_relay_drops_audio_but_passes_events():
    """While muted, relayed audio is dropped and counted; a relayed telephone event still goes out."""
    s, clock, sent = make()
    s.set_relay_muted(True)
    s.relay_audio(build_rtp(8, 1, 1000, 0xBAD, b"\x01" * 160), 0.0)
    assert sent == [] and s.packets_muted == 1
    s.send_own_audio(b"\x55" * 160)
    ev = build_telephone_event(1, False, 10, 160)
    assert s.relay_event(build_rtp(96, 2, 1160, 0xBAD, ev), 0.01)
    assert s.relay_event(build_rtp(96, 3, 1160, 0xBAD, build_telephone_event(1, True, 10, 320)), 0.03)
    own, e1, e2 = (parse_rtp(d) for d in sent)
    assert (e1.payload_type, e2.payload_type) == (101, 101)       # mapped 96 -> 101
    assert e1.sequence == own.sequence + 1 and e2.sequence == own.sequence + 2
    assert e1.timestamp == e2.timestamp                          # one event, one timestamp
    assert e1.payload == ev and e1.ssrc == 0x5EED


def test_event_to_a_leg_without_telephone_event_is_not_sent():
    """A leg that did not negotiate telephone-event gets no event packets."""
    s, clock, sent = make(event_pt=None)
    assert not s.relay_event(build_rtp(101, 2, 1160, 0xBAD, build_telephone_event(1, False, 10, 160)), 0.0)
    assert sent == []


def test_filter_is_applied_to_relayed_audio():
    """The mixing hook gets each relayed payload and its answer is what is sent."""
    s, clock, sent = make()
    s.set_audio_filter(lambda p: bytes(reversed(p)))
    s.relay_audio(build_rtp(8, 1, 1000, 0xBAD, bytes(range(160))), 0.0)
    assert parse_rtp(sent[0]).payload == bytes(reversed(range(160)))
    s.set_audio_filter(None)
    s.relay_audio(build_rtp(8, 2, 1160, 0xBAD, bytes(range(160))), 0.02)
    assert parse_rtp(sent[1]).payload == bytes(range(160))


def test_transcodes_alaw_to_ulaw_between_legs_of_different_codecs():
    """A-law from one leg reaches a mu-law leg as mu-law, payload type 0, via the G.711 tables."""
    s, clock, sent = make(codec="PCMU", source="PCMA")
    s.configure("PCMU", 0, None, "PCMA")
    payload = bytes(range(0, 256, 2)) + bytes(32)
    s.relay_audio(build_rtp(8, 1, 1000, 0xBAD, payload), 0.0)
    p = parse_rtp(sent[0])
    assert p.payload_type == 0
    assert p.payload == payload.translate(ALAW_TO_ULAW)


def test_g711_tables_match_the_reference_codec():
    """The transcoding tables agree with the ITU reference algorithm (as in audioop) for all 256 codes."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    from media.stream import ULAW_TO_ALAW
    for code in range(256):
        assert ALAW_TO_ULAW[code] == audioop.lin2ulaw(audioop.alaw2lin(bytes([code]), 2), 2)[0]
        assert ULAW_TO_ALAW[code] == audioop.lin2alaw(audioop.ulaw2lin(bytes([code]), 2), 2)[0]


def test_silence_frame_per_codec():
    """send_silence sends 160 bytes of G.711 silence in the leg's codec."""
    s, clock, sent = make(codec="PCMU", source="PCMU")
    s.configure("PCMU", 0, None, "PCMU")
    s.send_silence()
    assert parse_rtp(sent[0]).payload == b"\xff" * 160


def test_silence_datagram_is_numbered_and_counted_like_own_audio():
    """The relay's fill path gives, frame for frame, the datagram send_own_audio would send with the
    silence payload: first frame, a talkspurt running on, after relayed audio, after a pause (markers
    and timestamps by the clock), and counts it as own audio sent."""
    clock = Clock()
    sent: list[bytes] = []
    ref_sent: list[bytes] = []
    s = OutgoingStream(clock.seconds, sent.append, ssrc=0x5EED)
    ref = OutgoingStream(clock.seconds, ref_sent.append, ssrc=0x5EED)
    s.numbering = StreamNumbering(ssrc=0x5EED, seq=65534, ts=2**32 - 200)   # both wrap on the way
    ref.numbering = StreamNumbering(ssrc=0x5EED, seq=65534, ts=2**32 - 200)
    events = ["own"] * 3 + ["relay"] * 2 + ["own"] * 2 + ["pause"] + ["own"] * 2
    seq = 100
    for what in events:
        if what == "relay":
            for stream in (s, ref):
                stream.relay_audio(build_rtp(8, seq, 160 * seq, 0xBAD, b"\x01" * 160), clock.seconds())
            seq += 1
        elif what == "pause":
            clock.advance(0.5)
            continue
        else:
            sent.append(bytes(s.silence_datagram(clock.seconds())))
            ref.send_own_audio(b"\xd5" * 160)
        clock.advance(0.02)
    assert sent == ref_sent and len(sent) == 9
    assert [parse_rtp(d).marker for d in sent] == [True, False, False, True, False, True, False, True,
                                                    False]
    assert (s.packets_own, s.octets_sent) == (ref.packets_own, ref.octets_sent) == (7, 9 * 160)


def test_silence_datagram_follows_the_codec():
    """After the leg switches to PCMU the fill frames carry mu-law silence and payload type 0."""
    s, clock, sent = make()
    s.configure("PCMU", 0, None, "PCMA")
    p = parse_rtp(bytes(s.silence_datagram(clock.seconds())))
    assert p.payload == b"\xff" * 160 and p.payload_type == 0


def test_send_silence_without_a_sender_counts_the_frame_unsent():
    """A stream with nowhere to send still numbers the silence frame and counts it as unsent."""
    clock = Clock()
    s = OutgoingStream(clock.seconds, None, ssrc=1)
    s.send_silence()
    assert (s.packets_own, s.packets_unsent, s.octets_sent) == (1, 1, 0)


def test_a_send_that_fails_is_counted_and_goes_no_further():
    """The sender may be a socket's own ``send`` (the relay's twin): its OSError is counted in packets_failed, and
    relayed audio, events, our own audio and silence all go on with the next packet."""
    s, clock, sent = make()
    fail = [True]

    def send(datagram):
        if fail[0]:
            raise OSError("connection refused")
        sent.append(bytes(datagram))

    s.set_sender(send)
    s.relay_audio(build_rtp(8, 1, 1000, 0xBAD, b"\x01" * 160), clock.seconds())
    s.relay_event(build_rtp(101, 2, 1160, 0xBAD, build_telephone_event(5, False, 10, 160)), clock.seconds())
    s.send_own_audio(b"\xd5" * 160)
    s.send_silence()
    assert s.packets_failed == 4 and sent == []
    fail[0] = False
    s.relay_audio(build_rtp(8, 3, 1320, 0xBAD, b"\x01" * 160), clock.seconds())
    assert s.packets_failed == 4 and len(sent) == 1
