"""The outgoing RTP stream towards one leg: what the relay and the announcement player send into.

Everything we send towards one leg's remote RTP address is one stream, with our
own SSRC and numbering (:class:`media.rtp.StreamNumbering`).  Two sources feed
it: the relay (audio and telephone events from the other leg) and our own
audio (the player's frames, and the silence the relay sends when nothing else
flows).  This class knows nothing of sockets: it writes finished datagrams to
the ``send`` callable the relay gives it, and reads the time from ``clock``.
"""

from __future__ import annotations

from typing import Callable

from .g711 import SILENCE, alaw_to_ulaw, ulaw_to_alaw
from .rtp import (MAX_SEQ_STEP, RTP_HEADER, RTP_HEADER_LEN, SAMPLES_PER_FRAME, SEQ_MOD, TS_MOD, StreamNumbering,
                  payload_offsets)

CODEC_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
# The G.711 code of a zero sample per codec (0xD5 / 0xFF).
SILENCE_BYTE = dict(SILENCE)
FRAME_BYTES = SAMPLES_PER_FRAME  # G.711: one byte per sample

_pack_into = RTP_HEADER.pack_into
_unpack_from = RTP_HEADER.unpack_from

# Transcoding tables for bytes.translate, shared with the player (media.g711).
ALAW_TO_ULAW: bytes = alaw_to_ulaw
ULAW_TO_ALAW: bytes = ulaw_to_alaw
TRANSCODE = {("PCMA", "PCMU"): ALAW_TO_ULAW, ("PCMU", "PCMA"): ULAW_TO_ALAW}


class OutgoingStream:
    """Everything we send towards one leg's remote RTP address.

    ``codec`` ("PCMA" or "PCMU") and ``payload_type`` are what was negotiated on
    that leg; ``event_payload_type`` its telephone-event payload type (None when
    the leg did not negotiate RFC 4733).  ``source_codec`` is the codec relayed
    payloads arrive in (the other leg's); when it differs, relayed audio is
    transcoded with a table.  Counters: ``packets_relayed``, ``packets_own``,
    ``packets_muted`` (relayed audio dropped while muted), ``packets_unsent`` (no sender), ``packets_failed``
    (the sender raised OSError), ``octets_sent``.
    """

    # slots: the relay reads and writes these on every relayed packet, one object with no dictionary to go through
    # (and 48 bytes less per stream); bench/rtp_relay.py --relays prepaid,prepaid@base,rtpengine --steps 600
    # --seconds 4 --rounds 4 against the parent: median 11.30 -> 10.88 us per packet, rtpengine 8.19 (loaded
    # machine: paired by round -0.74, -1.07, +0.20, +0.37, within its noise)
    __slots__ = ("_clock", "_send", "numbering", "codec", "payload_type", "event_payload_type", "source_codec",
                 "_filter", "_muted", "_table", "_plain", "_event_map", "packets_relayed", "packets_own",
                 "packets_muted", "packets_unsent", "packets_failed", "octets_sent", "_silence", "_silence_codec")

    def __init__(self, clock: Callable[[], float], send: Callable[[bytes], object] | None = None,
                 codec: str = "PCMA", payload_type: int | None = None,
                 event_payload_type: int | None = None, source_codec: str | None = None,
                 ssrc: int | None = None) -> None:
        self._clock = clock
        self._send = send
        self.numbering = StreamNumbering(ssrc=ssrc)
        self.codec = codec
        self.payload_type = CODEC_PAYLOAD_TYPES[codec] if payload_type is None else payload_type
        self.event_payload_type = event_payload_type
        self.source_codec = source_codec or codec
        self._filter: Callable[[bytes], bytes] | None = None
        self._muted = False
        self._table: bytes | None = None
        self._plain = True
        self._event_map: tuple[int, int, int] | None = None   # (in_ssrc, in_ts, out_ts) while muted
        self.packets_relayed = 0
        self.packets_own = 0
        self.packets_muted = 0
        self.packets_unsent = 0
        self.packets_failed = 0
        self.octets_sent = 0
        self._silence: bytearray = bytearray(RTP_HEADER_LEN + FRAME_BYTES)   # header packed per frame
        self._silence_codec: str | None = None
        self._update()

    # -- the player's interface ------------------------------------------------

    def send_own_audio(self, payload: bytes) -> None:
        """Send one 20 ms frame (160 bytes of G.711 in ``codec``) of our own audio.

        It is stamped with this stream's SSRC, next sequence number and a
        timestamp that runs on from the last packet sent; the first own packet
        after relayed audio (or after a pause) carries the marker bit.
        """
        seq, ts, marker = self.numbering.own(self._clock())
        self.packets_own += 1
        self._emit(RTP_HEADER.pack(0x80, self.payload_type | (0x80 if marker else 0), seq, ts,
                                   self.numbering.ssrc) + payload)

    def set_audio_filter(self, f: Callable[[bytes], bytes] | None) -> None:
        """Apply ``f`` to every relayed audio payload (already in ``codec``) before it is sent.

        The player's mixing hook: ``f`` gets one frame's payload and returns the
        payload to send instead.  None removes it.
        """
        self._filter = f
        self._update()

    def set_relay_muted(self, muted: bool) -> None:
        """Drop relayed audio while ``muted`` (an announcement replaces it); relayed telephone events still pass."""
        self._muted = bool(muted)
        self._event_map = None

    # -- the relay's side ------------------------------------------------------

    @property
    def relay_muted(self) -> bool:
        """Is relayed audio being dropped?"""
        return self._muted

    def configure(self, codec: str, payload_type: int, event_payload_type: int | None,
                  source_codec: str) -> None:
        """Set what this leg negotiated, and the codec relayed audio arrives in (after an offer/answer)."""
        if codec not in CODEC_PAYLOAD_TYPES or source_codec not in CODEC_PAYLOAD_TYPES:
            raise ValueError(f"only PCMA and PCMU are relayed, not {codec}/{source_codec}")
        self.codec = codec
        self.payload_type = payload_type
        self.event_payload_type = event_payload_type
        self.source_codec = source_codec
        self._update()

    def set_sender(self, send: Callable[[bytes], object] | None) -> None:
        """Where finished datagrams go (the leg's socket towards its remote address); None: nowhere yet.

        ``send`` gets bytes, a bytearray or a memoryview that may be reused once it returns: it sends it
        (or copies it) at once.  It may raise OSError (a socket's ``send``): the datagram is counted in
        ``packets_failed`` and nothing else happens."""
        self._send = send

    def _update(self) -> None:
        self._table = TRANSCODE.get((self.source_codec, self.codec))
        self._plain = self._table is None and self._filter is None
        if self._silence_codec != self.codec:
            self._silence[RTP_HEADER_LEN:] = bytes((SILENCE_BYTE[self.codec],)) * FRAME_BYTES
            self._silence_codec = self.codec

    def _emit(self, datagram: bytes | bytearray) -> None:
        send = self._send
        if send is None:
            self.packets_unsent += 1
            return
        self.octets_sent += len(datagram) - RTP_HEADER_LEN
        try:
            send(datagram)
        except OSError:
            self.packets_failed += 1

    def relay_audio(self, data: bytes | memoryview, now: float) -> None:
        """Send one relayed audio packet (from the other leg, in ``source_codec``) on this stream.

        ``data`` is the datagram: bytes, or a writable memoryview of exactly the datagram (the relay's
        receive buffer), which is then rewritten and sent in place: the hot path is one header unpack and
        one ``pack_into``, and no copy.  The sender gets that view and must be done with it when it
        returns (the next datagram is read into the same buffer).  Raises :class:`media.rtp.RtpError`
        for a malformed packet (the relay counts it).
        """
        b0, _, in_seq, in_ts, in_ssrc = _unpack_from(data, 0)
        self.relay_unpacked(data, now, b0, in_seq, in_ts, in_ssrc)

    def relay_unpacked(self, data: bytes | memoryview, now: float, b0: int, in_seq: int, in_ts: int,
                       in_ssrc: int) -> None:
        """:meth:`relay_audio` for a caller that unpacked the header already (``b0`` its first byte, then the
        source's sequence number, timestamp and SSRC): the relay reads them for its reception statistics,
        and one unpack serves both."""
        if self._muted:
            self.packets_muted += 1
            return
        n = self.numbering
        if n.relaying and in_ssrc == n.in_ssrc and (in_seq - n.in_seq) % SEQ_MOD < MAX_SEQ_STEP:
            # StreamNumbering.relayed for the next packet of the source being relayed, inlined (no call,
            # no tuple): bench/rtp_relay.py, same run, 3 rounds at 300 and 600 calls: 9.67 -> 9.27 us per packet
            seq = (in_seq + n.seq_off) % SEQ_MOD
            ts = (in_ts + n.ts_off) % TS_MOD
            if (seq - n.seq) % SEQ_MOD < MAX_SEQ_STEP:
                n.seq = seq
                n.in_seq = in_seq
                if ts != n.ts:
                    n.ts = ts
                    n.last_sent_ts_at = now
            pt = self.payload_type
        else:
            seq, ts, marker = n.relayed(in_ssrc, in_seq, in_ts, now)
            pt = self.payload_type | 0x80 if marker else self.payload_type
        if b0 == 0x80 and self._plain:
            out = data if data.__class__ is memoryview else bytearray(data)
            _pack_into(out, 0, 0x80, pt, seq, ts, n.ssrc)
        else:
            start, end = payload_offsets(data)     # drops CSRCs (their SSRCs), extension, padding
            payload = bytes(data[start:end])
            if self._table is not None:
                payload = payload.translate(self._table)
            if self._filter is not None:
                payload = self._filter(payload)
            out = RTP_HEADER.pack(0x80, pt, seq, ts, n.ssrc) + payload
        self.packets_relayed += 1
        send = self._send                          # _emit, inlined on the hot path
        if send is None:
            self.packets_unsent += 1
            return
        self.octets_sent += len(out) - RTP_HEADER_LEN
        try:
            send(out)
        except OSError:
            self.packets_failed += 1

    def relay_event(self, data: bytes, now: float) -> bool:
        """Send one relayed RFC 4733 packet with this leg's telephone-event payload type.

        Answers False (and sends nothing) when this leg has no telephone-event.
        While muted, our own audio owns the numbering: the event's packets take the
        next sequence numbers and share one timestamp, the own stream's at the
        event's first packet.
        """
        if self.event_payload_type is None:
            return False
        start, end = payload_offsets(data)
        b1 = data[1]
        _, _, in_seq, in_ts, in_ssrc = _unpack_from(data, 0)
        n = self.numbering
        if not self._muted:
            seq, ts, marker = n.relayed(in_ssrc, in_seq, in_ts, now)
            marker = marker or bool(b1 & 0x80)
        else:
            m = self._event_map
            if m is not None and m[0] == in_ssrc and m[1] == in_ts:
                seq, ts = n.own_event(m[2], now)
                marker = False
            else:
                seq, ts = n.own_event(None, now)
                self._event_map = (in_ssrc, in_ts, ts)
                marker = True
        self.packets_relayed += 1
        self._emit(RTP_HEADER.pack(0x80, self.event_payload_type | (0x80 if marker else 0), seq, ts, n.ssrc)
                   + data[start:end])
        return True

    def send_silence(self) -> None:
        """One 20 ms frame of silence as our own audio (keeps media flowing while the other side is quiet)."""
        send = self._send
        if send is None:
            self.send_own_audio(self.silence_frame)     # numbered, counted as unsent
            return
        try:
            send(bytes(self.silence_datagram(self._clock())))
        except OSError:
            self.packets_failed += 1

    def silence_datagram(self, now: float) -> bytearray:
        """The next 20 ms silence frame as a finished datagram, numbered and counted as our own audio sent.

        The relay's fill path (once per stream per tick while filling): the header is packed into a
        buffer that holds the silence payload already, so a frame costs one ``pack_into`` and no
        allocation.  The buffer is reused by the next call: the caller sends it at once (``sendto``
        copies it) and keeps no reference.  Numbered by the stream's one rule
        (:meth:`StreamNumbering.own`), as :meth:`send_own_audio` numbers a frame at ``now``.
        """
        n = self.numbering
        seq, ts, marker = n.own(now)
        buf = self._silence
        _pack_into(buf, 0, 0x80, self.payload_type | 0x80 if marker else self.payload_type, seq, ts, n.ssrc)
        self.packets_own += 1
        self.octets_sent += FRAME_BYTES
        return buf

    @property
    def silence_frame(self) -> bytes:
        """A 20 ms frame of silence in ``codec``."""
        return bytes((SILENCE_BYTE[self.codec],)) * FRAME_BYTES

    @property
    def ssrc(self) -> int:
        """Our SSRC on this stream (the only one this leg ever sees)."""
        return self.numbering.ssrc


