"""RTP/RTCP wire format and the numbering of one outgoing stream across switches."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.rtp import (RTCP_RR, RTCP_SDES, RTCP_SR, EventDeduplicator, ReportBlock, RtpError,
                       StreamNumbering, build_rr, build_rtp, build_sdes_cname, build_sr,
                       build_telephone_event, parse_rtcp, parse_rtp, parse_telephone_event,
                       payload_offsets)


def test_build_and_parse_round_trip_bytes():
    """A built packet has the RFC 3550 header bytes and parses back to the same fields."""
    data = build_rtp(8, 0x1234, 0xDEADBEEF, 0x01020304, b"\xd5" * 160, marker=True)
    assert data[:12] == bytes.fromhex("8088 1234 deadbeef 01020304".replace(" ", ""))
    p = parse_rtp(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.marker) == (8, 0x1234, 0xDEADBEEF, 0x01020304, True)
    assert p.payload == b"\xd5" * 160


def test_parse_strips_csrcs_extension_and_padding():
    """CSRCs, a header extension and padding are not part of the payload."""
    header = struct.pack("!BBHII", 0xB2, 0, 1, 2, 3)  # V=2, P=1, X=1, CC=2
    csrcs = struct.pack("!II", 0xAAAA, 0xBBBB)
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    data = header + csrcs + ext + b"abc" + b"\x00\x00\x03"
    p = parse_rtp(data)
    assert p.payload == b"abc"
    assert p.csrcs == (0xAAAA, 0xBBBB)
    assert payload_offsets(data) == (12 + 8 + 8, len(data) - 3)


@pytest.mark.parametrize("data, reason", [
    (b"\x80\x08\x00", "shorter"),
    (b"\x40" + b"\x00" * 20, "version"),
    (b"\x8f" + b"\x00" * 20, "longer"),
    (b"\xa0" + b"\x00" * 11 + b"ab\x00", "padding"),
    (b"\x90" + b"\x00" * 11 + b"\x00", "extension"),
])
def test_malformed_rtp_is_a_clear_error(data, reason):
    """Truncated or inconsistent packets raise RtpError naming the problem, nothing else."""
    with pytest.raises(RtpError, match=reason):
        parse_rtp(data)


@given(st.binary(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_bytes_parse_or_raise_rtp_error(data):
    """Whatever a peer sends, parsing either succeeds or raises RtpError."""
    try:
        parse_rtp(data)
    except RtpError:
        pass
    try:
        parse_rtcp(data)
    except RtpError:
        pass


def test_relayed_packets_keep_their_spacing_and_loss():
    """Relayed packets map by offset: a lost input packet stays a gap, timestamps keep their spacing."""
    n = StreamNumbering(ssrc=7, seq=100, ts=1000)
    first = n.relayed(0xAAAA, 5000, 80000, now=0.0)
    assert first == (101, 1160, True)
    assert n.relayed(0xAAAA, 5001, 80160, now=0.02) == (102, 1320, False)
    assert n.relayed(0xAAAA, 5003, 80480, now=0.06) == (104, 1640, False)
    # a late packet keeps its place and does not move the stream back
    assert n.relayed(0xAAAA, 5002, 80320, now=0.061) == (103, 1480, False)
    assert n.relayed(0xAAAA, 5004, 80640, now=0.08) == (105, 1800, False)


def test_switching_between_relayed_and_own_audio_runs_on():
    """Relay -> own -> relay: sequence +1 at each switch, timestamp by elapsed time, marker on the first after a switch."""
    n = StreamNumbering(ssrc=7, seq=65534, ts=2**32 - 200)
    out = [n.relayed(0xAAAA, 10, 0, now=0.0), n.relayed(0xAAAA, 11, 160, now=0.02)]
    out += [n.own(now=0.04), n.own(now=0.06), n.own(now=0.08)]
    # relayed audio comes back 100 ms after the last own frame; the source jumped ahead meanwhile
    out += [n.relayed(0xAAAA, 30, 3200, now=0.18), n.relayed(0xAAAA, 31, 3360, now=0.2)]
    seqs = [s for s, _, _ in out]
    tss = [t for _, t, _ in out]
    markers = [m for _, _, m in out]
    assert seqs == [65535, 0, 1, 2, 3, 4, 5]
    assert [(b - a) % 2**32 for a, b in zip(tss, tss[1:])] == [160, 160, 160, 160, 800, 160]
    assert markers == [True, False, True, False, False, True, False]


def test_new_incoming_ssrc_is_a_switch():
    """When the other side's SSRC changes (a new phone after a re-INVITE), numbering continues, with marker."""
    n = StreamNumbering(ssrc=7, seq=0, ts=0)
    n.relayed(1, 100, 5000, now=0.0)
    assert n.relayed(2, 40000, 9, now=0.02) == (2, 320, True)
    assert n.relayed(2, 40001, 169, now=0.04) == (3, 480, False)


def test_sequence_jump_in_same_ssrc_is_resynchronised():
    """A jump of thousands of sequence numbers within one SSRC does not become a jump on our stream."""
    n = StreamNumbering(ssrc=7, seq=0, ts=0)
    n.relayed(1, 100, 5000, now=0.0)
    assert n.relayed(1, 30000, 10**6, now=0.02) == (2, 320, True)


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 10)), min_size=1, max_size=60),
       st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_numbering_never_steps_back_or_skips_at_switches(turns, seq0, ts0):
    """Any interleaving of relayed and own runs: our sequence steps by exactly 1, timestamps strictly forward."""
    n = StreamNumbering(ssrc=1, seq=seq0, ts=ts0)
    now = 0.0
    in_seq, in_ts = 77, 12345
    last = None
    for relayed, count in turns:
        for _ in range(count):
            now += 0.02
            if relayed:
                in_seq += 1
                in_ts += 160
                seq, ts, _ = n.relayed(99, in_seq % 2**16, in_ts % 2**32, now)
            else:
                seq, ts, _ = n.own(now)
            if last is not None:
                assert (seq - last[0]) % 2**16 == 1
                assert 0 < (ts - last[1]) % 2**32 <= 4 * 160
            last = (seq, ts)


def test_telephone_event_payload_and_dedup():
    """An event reports start once and end once, though its end packet comes three times."""
    d = EventDeduplicator()
    got = []
    for dur, end in [(160, False), (320, False), (480, True), (480, True), (480, True)]:
        ev = parse_telephone_event(build_telephone_event(5, end, 10, dur))
        got.append(d.feed(0xAB, 9000, ev))
    assert got == [("5", False), None, ("5", True), None, None]
    ev = parse_telephone_event(build_telephone_event(11, False, 10, 160))
    assert d.feed(0xAB, 9800, ev) == ("#", False)
    with pytest.raises(RtpError):
        parse_telephone_event(b"\x01\x02")


def test_rtcp_sender_report_layout():
    """An SR carries our SSRC, the NTP time, our RTP timestamp and counters, and parses back."""
    blk = ReportBlock(ssrc=0x55, fraction_lost=12, cumulative_lost=3, highest_seq=70000, jitter=4, lsr=5, dlsr=6)
    sr = build_sr(0x1234, 1_700_000_000.5, 160, 10, 1600, (blk,))
    assert len(sr) == 28 + 24
    assert sr[:4] == bytes([0x81, RTCP_SR]) + struct.pack("!H", 12)
    assert struct.unpack_from("!I", sr, 4)[0] == 0x1234
    assert struct.unpack_from("!III", sr, 16) == (160, 10, 1600)
    assert struct.unpack_from("!IIIIII", sr, 28) == (0x55, (12 << 24) | 3, 70000, 4, 5, 6)
    compound = sr + build_rr(0x1234) + build_sdes_cname(0x1234, "prepaid")
    types = [p.packet_type for p in parse_rtcp(compound)]
    assert types == [RTCP_SR, RTCP_RR, RTCP_SDES]
    assert parse_rtcp(compound)[0].ntp_middle is not None
