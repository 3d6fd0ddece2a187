"""RTP and RTCP on the wire (RFC 3550, RFC 4733), and one outgoing stream's numbering.

Pure: no sockets, no reactor.  Time, where it matters, is an argument ``now``
in seconds.

:class:`StreamNumbering` is the heart of the media-switching mixer (RFC 7667
section 3.6.2): everything we send towards one leg is ONE RTP stream with our own
SSRC.  Relayed packets keep their spacing (sequence and timestamp offsets, so
that the receiver still sees upstream loss), our own audio runs on from where
the relayed audio stopped, and the first packet after every switch carries the
marker bit.  Neither sequence nor timestamp ever jumps backwards at a switch,
and an SSRC or CSRC of the other side never reaches the wire.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")
RTP_HEADER_LEN = 12
CLOCK_RATE_HZ = 8000           # G.711 and telephone-event on the legs we negotiate
FRAME_MS = 20
SAMPLES_PER_FRAME = CLOCK_RATE_HZ * FRAME_MS // 1000   # 160

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
# An incoming sequence step larger than this (either way) is a new stream, not loss.
MAX_SEQ_STEP = 3000
# Own frames further apart than this start a new talkspurt (marker, timestamp by the clock).
OWN_PAUSE_S = 0.1

# RFC 4733 section 3.2: events 0-15 are the DTMF digits.
DTMF_DIGITS = "0123456789*#ABCD"


class RtpError(ValueError):
    """A datagram that is not RTP (or RTCP) we can use; the relay drops and counts it."""


@dataclass(frozen=True)
class RtpPacket:
    """One parsed RTP packet; ``payload`` without CSRCs, header extension and padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes
    csrcs: tuple[int, ...] = ()


def payload_offsets(data: bytes) -> tuple[int, int]:
    """(start, end) of the payload inside an RTP datagram; raises :class:`RtpError`."""
    n = len(data)
    if n < RTP_HEADER_LEN:
        raise RtpError(f"RTP datagram of {n} bytes is shorter than the 12-byte header")
    b0 = data[0]
    if b0 >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    start = RTP_HEADER_LEN + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if n < start + 4:
            raise RtpError("RTP header extension runs past the datagram")
        start += 4 + 4 * ((data[start + 2] << 8) | data[start + 3])
    end = n
    if b0 & 0x20:
        pad = data[n - 1]
        if pad == 0:
            raise RtpError("RTP padding length of 0")
        end -= pad
    if start > end:
        raise RtpError("RTP header, extension and padding are longer than the datagram")
    return start, end


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP datagram (RFC 3550 section 5.1); raises :class:`RtpError`."""
    start, end = payload_offsets(data)
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data, 0)
    csrcs = struct.unpack_from(f"!{b0 & 0x0F}I", data, RTP_HEADER_LEN)
    return RtpPacket(b1 & 0x7F, seq, ts, ssrc, bool(b1 & 0x80), bytes(data[start:end]), csrcs)


def build_rtp(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes,
              marker: bool = False) -> bytes:
    """A plain RTP datagram: version 2, no padding, extension or CSRCs."""
    if not 0 <= payload_type < 128:
        raise ValueError(f"payload type {payload_type} outside 0..127")
    return RTP_HEADER.pack(0x80, payload_type | (0x80 if marker else 0),
                           sequence % SEQ_MOD, timestamp % TS_MOD, ssrc) + payload


# -- RFC 4733 telephone events -----------------------------------------------

@dataclass(frozen=True)
class TelephoneEvent:
    """The payload of one RFC 4733 event packet."""

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def digit(self) -> str | None:
        """The DTMF digit ("0".."9", "*", "#", "A".."D"), or None for other events."""
        return DTMF_DIGITS[self.event] if self.event < len(DTMF_DIGITS) else None


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """The first event of an RFC 4733 payload; raises :class:`RtpError`."""
    if len(payload) < 4:
        raise RtpError(f"telephone-event payload of {len(payload)} bytes, needs 4")
    return TelephoneEvent(payload[0], bool(payload[1] & 0x80), payload[1] & 0x3F,
                          (payload[2] << 8) | payload[3])


def build_telephone_event(event: int, end: bool, volume: int, duration: int) -> bytes:
    """An RFC 4733 event payload."""
    return bytes((event, (0x80 if end else 0) | (volume & 0x3F), (duration >> 8) & 0xFF, duration & 0xFF))


class EventDeduplicator:
    """Turns the packets of RFC 4733 events into one start and one end per event.

    An event is known by (SSRC, timestamp): all its packets share the start
    timestamp, and its end packet is sent three times.  ``feed`` answers
    ``(digit, end)`` when something new happened, else None.
    """

    __slots__ = ("_current", "_ended")

    def __init__(self) -> None:
        self._current: tuple[int, int] | None = None
        self._ended = False

    def feed(self, ssrc: int, timestamp: int, event: TelephoneEvent) -> tuple[str, bool] | None:
        digit = event.digit
        if digit is None:
            return None
        key = (ssrc, timestamp)
        if key != self._current:
            self._current = key
            self._ended = event.end
            if event.end:
                # We missed the start (or it is a one-packet event): report both.
                return (digit, True)
            return (digit, False)
        if event.end and not self._ended:
            self._ended = True
            return (digit, True)
        return None


# -- one outgoing stream's numbering ------------------------------------------

#: SSRCs, first sequence numbers and timestamps are random (RFC 3550 §5.1, §8.1) to avoid collisions and
#: to not be predictable from the clock; SRTP is not used, so a PRNG seeded once from the OS serves
_rng = random.Random(os.urandom(16))


def random_u32() -> int:
    return _rng.getrandbits(32)


class StreamNumbering:
    """SSRC, sequence and timestamp of everything we send towards one leg.

    Two sources take turns: *relayed* packets (from the other leg, with their
    own SSRC, sequence and timestamp) and *own* packets (announcements, comfort
    noise).  For relayed packets the output is ``input + offset``; the offsets
    are set at each switch so the output continues from the last packet we
    sent, with the timestamp advanced by the time that passed (at least one
    frame).  ``now`` is only read at a switch.
    """

    __slots__ = ("ssrc", "seq", "ts", "relaying", "in_ssrc", "in_seq", "seq_off", "ts_off",
                 "started", "last_own_at", "packets_sent", "octets_sent", "last_sent_ts_at")

    def __init__(self, ssrc: int | None = None, seq: int | None = None, ts: int | None = None) -> None:
        self.ssrc = random_u32() if ssrc is None else ssrc
        # The last sequence number and timestamp sent (the first packet uses +1 and +160).
        self.seq = (random_u32() & 0x7FFF) if seq is None else seq
        self.ts = random_u32() if ts is None else ts
        self.relaying = False        # was the last packet sent a relayed one?
        self.started = False         # has anything been sent at all?
        self.in_ssrc = -1            # the relayed source we are mapped onto
        self.in_seq = 0
        self.seq_off = 0
        self.ts_off = 0
        self.last_own_at = 0.0       # when the last own packet went out
        self.last_sent_ts_at = 0.0   # wall time of the packet that carried self.ts (for RTCP SR)
        self.packets_sent = 0
        self.octets_sent = 0

    def _advance(self, now: float, since: float) -> int:
        """Timestamp step at a switch: the time passed, in whole frames, at least one frame."""
        frames = int((now - since) * (1000 / FRAME_MS) + 0.5) if self.started else 1
        return SAMPLES_PER_FRAME * max(1, frames)

    def relayed(self, in_ssrc: int, in_seq: int, in_ts: int, now: float) -> tuple[int, int, bool]:
        """Numbers for one relayed packet: (sequence, timestamp, marker)."""
        if self.relaying and in_ssrc == self.in_ssrc and (
                (in_seq - self.in_seq) % SEQ_MOD < MAX_SEQ_STEP or (self.in_seq - in_seq) % SEQ_MOD < MAX_SEQ_STEP):
            marker = False
        else:
            # A switch (from our own audio, or a new or jumping source): run on from the last packet sent.
            step = self._advance(now, self.last_own_at if not self.relaying else self.last_sent_ts_at)
            self.seq_off = (self.seq + 1 - in_seq) % SEQ_MOD
            self.ts_off = (self.ts + step - in_ts) % TS_MOD
            self.in_ssrc = in_ssrc
            self.relaying = True
            self.started = True
            marker = True
        seq = (in_seq + self.seq_off) % SEQ_MOD
        ts = (in_ts + self.ts_off) % TS_MOD
        if (seq - self.seq) % SEQ_MOD < MAX_SEQ_STEP:   # newest so far (not a late or duplicate one)
            self.seq = seq
            self.in_seq = in_seq
            if ts != self.ts:
                self.ts = ts
                self.last_sent_ts_at = now
        return seq, ts, marker

    def own(self, now: float) -> tuple[int, int, bool]:
        """Numbers for one own 20 ms frame: (sequence, timestamp, marker)."""
        if self.relaying or not self.started:
            marker = True
            step = self._advance(now, self.last_sent_ts_at)
        elif now - self.last_own_at > OWN_PAUSE_S:
            # Our own audio paused (between announcements): a new talkspurt.
            marker = True
            step = self._advance(now, self.last_own_at)
        else:
            marker = False
            step = SAMPLES_PER_FRAME
        self.relaying = False
        self.started = True
        self.in_ssrc = -1
        self.seq = (self.seq + 1) % SEQ_MOD
        self.ts = (self.ts + step) % TS_MOD
        self.last_own_at = now
        self.last_sent_ts_at = now
        return self.seq, self.ts, marker

    def own_event(self, event_ts_key: int | None, now: float) -> tuple[int, int]:
        """Numbers for a relayed telephone-event packet while our own audio is on the wire.

        The event's packets share one timestamp (its start); the caller keeps the
        mapping per event and passes the mapped timestamp back as ``event_ts_key``
        (None for a new event: it starts at the current own timestamp).
        """
        self.seq = (self.seq + 1) % SEQ_MOD
        ts = self.ts if event_ts_key is None else event_ts_key
        return self.seq, ts


# -- RTCP (RFC 3550 section 6) ------------------------------------------------

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
NTP_EPOCH_OFFSET_S = 2208988800


def ntp_timestamp(now: float) -> tuple[int, int]:
    """(seconds, fraction) of the NTP timestamp for a Unix time."""
    secs = int(now)
    return (secs + NTP_EPOCH_OFFSET_S) % TS_MOD, int((now - secs) * TS_MOD) % TS_MOD


@dataclass(frozen=True)
class ReportBlock:
    """One reception report block (RFC 3550 section 6.4.1)."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int


_REPORT_BLOCK = struct.Struct("!IIIIII")
_SR_HEAD = struct.Struct("!BBHIIIIII")     # header, sender SSRC, NTP seconds and fraction, RTP time, counts
_RR_HEAD = struct.Struct("!BBHI")          # header, reporter SSRC


def build_report_block(b: ReportBlock) -> bytes:
    lost = max(-0x800000, min(0x7FFFFF, b.cumulative_lost)) & 0xFFFFFF
    return _REPORT_BLOCK.pack(b.ssrc, (b.fraction_lost & 0xFF) << 24 | lost,
                              b.highest_seq % TS_MOD, b.jitter % TS_MOD, b.lsr % TS_MOD, b.dlsr % TS_MOD)


def build_sr(ssrc: int, now: float, rtp_ts: int, packets: int, octets: int,
             blocks: tuple[ReportBlock, ...] = ()) -> bytes:
    """A sender report (PT 200) with up to 31 report blocks."""
    blocks = blocks[:31]
    ntp_s, ntp_f = ntp_timestamp(now)
    head = _SR_HEAD.pack(0x80 | len(blocks), RTCP_SR, 6 + 6 * len(blocks), ssrc, ntp_s, ntp_f,
                         rtp_ts % TS_MOD, packets % TS_MOD, octets % TS_MOD)
    return head + b"".join(build_report_block(b) for b in blocks) if blocks else head


def build_rr(ssrc: int, blocks: tuple[ReportBlock, ...] = ()) -> bytes:
    """A receiver report (PT 201)."""
    blocks = blocks[:31]
    head = _RR_HEAD.pack(0x80 | len(blocks), RTCP_RR, 1 + 6 * len(blocks), ssrc)
    return head + b"".join(build_report_block(b) for b in blocks) if blocks else head


def build_sdes_cname(ssrc: int, cname: str) -> bytes:
    """An SDES packet with one chunk: our SSRC and its CNAME (RFC 3550 requires it in every compound)."""
    text = cname.encode("utf-8")[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(text)) + text + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    return struct.pack("!BBH", 0x81, RTCP_SDES, (len(chunk) + 4) // 4 - 1) + chunk


def build_bye(ssrc: int) -> bytes:
    return struct.pack("!BBHI", 0x81, RTCP_BYE, 1, ssrc)


@dataclass(frozen=True)
class RtcpPacket:
    """One packet of an RTCP compound: its type, the sender SSRC, and for an SR its NTP middle 32 bits."""

    packet_type: int
    ssrc: int
    ntp_middle: int | None = None


def parse_rtcp(data: bytes) -> tuple[RtcpPacket, ...]:
    """The packets of an RTCP compound datagram; raises :class:`RtpError`."""
    out = []
    pos = 0
    n = len(data)
    if n < 8:
        raise RtpError(f"RTCP datagram of {n} bytes is too short")
    while pos < n:
        if n - pos < 4:
            raise RtpError("RTCP compound ends inside a header")
        b0, pt, length = struct.unpack_from("!BBH", data, pos)
        if b0 >> 6 != RTP_VERSION:
            raise RtpError(f"RTCP version {b0 >> 6}, expected 2")
        size = 4 * (length + 1)
        if pos + size > n:
            raise RtpError("RTCP packet length runs past the datagram")
        ssrc = struct.unpack_from("!I", data, pos + 4)[0] if size >= 8 else 0
        middle = None
        if pt == RTCP_SR and size >= 28:
            ntp_s, ntp_f = struct.unpack_from("!II", data, pos + 8)
            middle = ((ntp_s & 0xFFFF) << 16) | (ntp_f >> 16)
        out.append(RtcpPacket(pt, ssrc, middle))
        pos += size
    return tuple(out)


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 section 4: RTCP packet types 192..223 in the second byte (for rtcp-mux)."""
    return len(data) >= 2 and 192 <= data[1] <= 223
