"""The RTP relay: per call two legs of UDP port pairs, latching, relaying, silence fill, RTCP.

Twisted at the edge: the reactor (``IReactorFDSet``) is injected and wakes us
for the sockets, through one reader for all of them (:class:`SocketPoller`, an
epoll set of our own: Twisted's per-socket dispatch would cost more than the
relaying), and a clock (``IReactorTime``, the reactor unless given) for time,
so tests can drive the timers with ``task.Clock`` while the sockets are real.

One call is a :class:`MediaSession` with leg A (carrier) and leg B (agent).
Each leg has an RTP and an RTCP port from the configured range.  A packet
arriving on leg A's RTP port goes out of leg B's port, on ``session.b_out``
(our stream towards B, :class:`media.stream.OutgoingStream`), and the other way.
Legs on different G.711 laws (a carrier on PCMA, an agent on PCMU) are
transcoded by the stream, each way; each leg's packets are read under the
payload types it sends with (``Leg.rx_payload_type``), which RFC 3264 lets
differ from those we send it.

- **Latching / symmetric RTP**: we send to the address the leg's packets come
  from, once one arrived from an address we may latch onto: the host signalled
  in SDP, or (leg A) any address within the relay's ``latch_networks``.
  Packets from anywhere else are stray: dropped and counted.
- **Silence fill**: a stream on which nothing went out for ``fill_after_ms``
  (the other side on hold, not answered yet, using DTX; or muted for an
  announcement that has not started) gets a 20 ms frame of G.711 silence every
  tick, so carriers that supervise media see packets.
- **Silence timeout**: a leg whose peer should send (SDP says it sends) but from
  which nothing arrived for ``silence_timeout_s`` is reported once to the
  session's ``on_silence(session, leg_name)``; the owner decides (usually BYE
  and ``session.close()``).
- **RTCP**: generated per leg, never forwarded.  Every ``rtcp_interval_s`` each
  leg gets a compound of an SR about our stream towards it (our SSRC, our
  packet and octet counts; an RR when we sent nothing yet), with one report
  block about what that leg sent us (highest sequence, cumulative and fraction
  lost, interarrival jitter per RFC 3550 A.8, LSR/DLSR from its last SR), and
  an SDES CNAME.  Incoming RTCP is parsed for
  LSR and dropped.  Neither side ever sees the other's SSRCs.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Callable

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .ports import MAX_DATAGRAM, PortRange, PortsExhausted, SocketPoller, bind_next_pair, connect_twin
from .rtp import (RTP_HEADER, EventDeduplicator, ReportBlock, RtpError, build_bye, build_rr, build_sdes_cname,
                  build_sr, parse_rtcp, parse_telephone_event, payload_offsets, RTCP_SR)
from .sdp import Negotiated, ip_of
from .stream import OutgoingStream

log = Logger(namespace="media.relay")

TICK_MS = 20
FILL_AFTER_MS = 100
SCAN_EVERY_TICKS = 5          # idle-stream scan: every 100 ms
SLOW_EVERY_TICKS = 50         # silence timeout and RTCP: every 1 s
RTCP_INTERVAL_S = 5
TWIN_DRAIN_MAX = 64           # datagrams read off a twin socket when it is connected or dropped
_unpack_ts = struct.Struct("!I").unpack_from
_unpack_header = RTP_HEADER.unpack_from
#: a twin's peer while there is no twin: no address is this object, so ``dest is _twin_peer`` is False
_NOT_CONNECTED: tuple = ("", 0)


@dataclass(frozen=True)
class RelayCounters:
    """Counters for metrics: packets relayed, dropped (malformed, unknown payload type, muted), stray."""

    packets_relayed: int
    packets_dropped: int
    packets_stray: int
    packets_silence: int
    rtcp_sent: int
    sessions_open: int
    port_pairs_free: int


class BufferViews(dict):
    """``views[n]``: a memoryview of the first ``n`` bytes of ``buffer``, made the first time ``n`` is asked for
    and kept (a relayed datagram is sent from the receive buffer as a view of exactly its length: G.711 streams
    have one or two lengths, so a packet costs a lookup, not a new view).  At most ``len(buffer) + 1`` entries."""

    def __init__(self, buffer: bytearray) -> None:
        super().__init__()
        self._whole = memoryview(buffer)

    def __missing__(self, n: int) -> memoryview:
        view = self[n] = self._whole[:n]
        return view


class Leg:
    """One side of a call: our RTP/RTCP ports, the peer's address (signalled and latched), what it sends.

    ``local_port`` / ``local_rtcp_port`` go into our SDP for that leg.
    ``payload_type`` / ``event_payload_type`` / ``codec`` are what this leg
    negotiated (None until :meth:`MediaSession.configure_leg`), the numbers we
    send with; ``rx_payload_type`` / ``rx_event_payload_type`` those its packets
    carry (the same, unless its answer renumbered our offer's).
    """

    __slots__ = ("session", "name", "out", "peer_out", "latch_networks", "local_port", "local_rtcp_port",
                 "codec", "payload_type", "event_payload_type", "rx_payload_type", "rx_event_payload_type",
                 "signalled", "signalled_rtcp", "latch_host",
                 "latched", "relatch_ok", "latched_rtcp", "dest", "rtcp_dest", "peer_sends", "may_send",
                 "_sendto", "_rtcp_sendto", "_recvfrom_into", "_rtcp_recvfrom", "_socks", "_poller", "_label",
                 "_twin", "_twin_peer", "_twin_send", "_twin_recv_into", "_buf", "_views", "_events", "_clock",
                 "rx_packets", "relayed", "dropped", "stray", "rtcp_packets", "rx_ssrc", "rx_base_seq",
                 "rx_max_seq", "rx_stats_base", "rx_transit", "rx_jitter", "rx_cycles", "rx_expected_prior",
                 "rx_received_prior", "last_sr_middle", "last_sr_at", "_sdes_for", "_sdes", "last_rx_count",
                 "last_rx_at", "silence_reported", "fill_mark", "seen_count", "idle_scans")

    def __init__(self, session: "MediaSession", name: str, out: OutgoingStream,
                 latch_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> None:
        self.session: MediaSession | None = session     # None once closed
        self.name = name
        self.out = out                     # our stream TOWARDS this leg
        self.peer_out: OutgoingStream      # our stream towards the other leg (set by the session)
        self.latch_networks = latch_networks
        self.local_port = 0
        self.local_rtcp_port = 0
        self.codec: str | None = None
        self.payload_type = -1
        self.event_payload_type = -1
        # what the peer's packets carry (RFC 3264: our offer's numbers, which its answer may not have used)
        self.rx_payload_type = -1
        self.rx_event_payload_type = -1
        self.signalled: tuple[str, int] | None = None
        self.signalled_rtcp: tuple[str, int] | None = None
        self.latch_host: str | None = None     # the host named in the leg's latest SDP with an address
        self.latched: tuple | None = None
        self.relatch_ok = True             # no source latched, or the latched one went quiet
        self.latched_rtcp: tuple | None = None
        self.dest: tuple | None = None
        self.rtcp_dest: tuple | None = None
        self.peer_sends = False
        self.may_send = False
        self._sendto: Callable = _nowhere
        self._rtcp_sendto: Callable = _nowhere
        self._recvfrom_into: Callable = _nowhere
        self._rtcp_recvfrom: Callable = _nowhere
        self._socks: list[socket.socket] = []
        self._poller: SocketPoller | None = None
        self._label = ""
        # the twin: a second socket on our RTP port, connected to the latched peer (ports.connect_twin)
        self._twin: socket.socket | None = None
        self._twin_peer: tuple = _NOT_CONNECTED
        self._twin_send: Callable = _nowhere
        self._twin_recv_into: Callable = _nowhere
        self._buf = session.relay._rx_buffer        # the relay's one receive buffer, and views of it by length
        self._views = session.relay._rx_views
        self._events = EventDeduplicator()
        self._clock = session.relay.clock.seconds
        # counters
        self.rx_packets = 0
        self.relayed = 0
        self.dropped = 0
        self.stray = 0
        self.rtcp_packets = 0
        self.rx_ssrc: int | None = None
        self.rx_base_seq = 0
        self.rx_max_seq = 0
        self.rx_stats_base = 0
        self.rx_transit = 0
        self.rx_jitter = 0.0
        self.rx_cycles = 0
        self.rx_expected_prior = 0
        self.rx_received_prior = 0
        self.last_sr_middle = 0
        self.last_sr_at = 0.0
        self._sdes_for: tuple[int, str] | None = None
        self._sdes = b""
        # silence watch
        self.last_rx_count = 0
        self.last_rx_at = 0.0
        self.silence_reported = False
        # silence fill of our stream towards this leg (the relay's timer): while filling, the stream's
        # packets_relayed + packets_own after the last silence frame; -1 when not filling
        self.fill_mark = -1
        self.seen_count = -1               # that sum at the last idle scan
        self.idle_scans = 0                # scans in a row that saw it unchanged

    # -- configuration ---------------------------------------------------------------

    def _attach(self, poller: SocketPoller, socks: tuple[socket.socket, socket.socket], port: int,
                label: str = "") -> None:
        """The leg's RTP and RTCP sockets, bound to ``port`` and ``port + 1`` (:func:`media.ports.bind_pair`)."""
        poller.add(socks[0], self._rtp_readable, label)
        poller.add(socks[1], self._rtcp_readable, label)
        self._poller = poller
        self._label = label
        self._socks = list(socks)
        self.local_port, self.local_rtcp_port = port, port + 1
        self._sendto = socks[0].sendto
        self._recvfrom_into = socks[0].recvfrom_into
        self._rtcp_sendto = socks[1].sendto
        self._rtcp_recvfrom = socks[1].recvfrom

    def set_remote(self, host: str | None, port: int, rtcp_port: int | None = None, *,
                   may_send: bool = True, peer_sends: bool = True) -> None:
        """The peer's RTP address from its SDP (None: it wants no media, e.g. c=0.0.0.0); resets latching."""
        if host is not None:
            host = str(ip_of(host))
            self.latch_host = host
        # (with the old c=0.0.0.0 hold the peer may still send: its last known host may still latch)
        self.signalled = (host, port) if host is not None and port else None
        self.signalled_rtcp = (host, rtcp_port or port + 1) if self.signalled else None
        self.latched = self.latched_rtcp = None
        self.relatch_ok = True
        self.dest = self.signalled
        self.rtcp_dest = self.signalled_rtcp
        self.may_send = may_send and self.signalled is not None
        self.peer_sends = peer_sends
        self.silence_reported = False
        self.last_rx_at = self._clock()
        self._route()

    def _may_latch(self, addr: tuple) -> bool:
        try:
            ip = ip_of(addr[0])
        except ValueError:
            return False
        if self.latch_host is not None and str(ip) == self.latch_host:
            return True
        return any(ip in net for net in self.latch_networks)

    # -- the hot path ------------------------------------------------------------------
    #
    # A datagram from the latched peer arrives on the twin (one recv_into into the relay's buffer, no
    # source address), its header is rewritten in place by the other leg's stream, and it leaves from
    # that buffer through the other leg's twin (send, no address): two system calls and no copy of the
    # datagram.  Everything else (the first packets, strays, a new source) arrives on the listening
    # socket with its source address.  bench/rtp_relay.py --rounds 3 (300-900 calls, medians of 9 steps,
    # two runs): CPU per relayed packet 13.3 / 11.6 us with recvfrom/sendto and a bytes and a bytearray
    # per packet, 10.9 / 10.0 us so (user time 4.8-5.1 us of it); rtpengine in userspace 9.4 / 8.2 us
    # (user 2.6-3.6 us) on the same load: x1.16 / x1.21 of it.  With the stream's numbering inlined too
    # (media/stream.py), a third run: 11.1 us before, 8.9 us so, rtpengine 8.6 us (x1.04).

    def send_rtp(self, data) -> None:
        """Send one datagram to this leg's peer (latched address, else the signalled one); OSError when it fails."""
        if self.dest is self._twin_peer:        # the twin is connected to it: no address per packet
            self._twin_send(data)
        else:
            self._sendto(data, self.dest)

    def _route(self) -> None:
        """Give our stream towards this leg what it sends with, after its address, the latch or the twin changed:
        the twin's own ``send`` while the twin is connected to where we send (a relayed packet then costs no
        frame of ours), else :meth:`send_rtp`; nothing when we may not send.  The stream counts a send that fails
        (``packets_failed``).  bench/rtp_relay.py --relays prepaid,prepaid@base,rtpengine --steps 600 --seconds 4
        --rounds 5, with this and the stream's slots against the commit before both: median 12.27 -> 11.87 us
        per packet, rtpengine 11.57 in that run (x1.06 -> x1.03; paired by round -2.23, +1.60, -0.60, +0.54,
        -0.13: the machine's noise is larger than the gain)."""
        if not self.may_send:
            self.out.set_sender(None)
        elif self.dest is self._twin_peer:
            self.out.set_sender(self._twin_send)
        else:
            self.out.set_sender(self.send_rtp)

    def _rtp_readable(self) -> None:
        """A datagram on the listening RTP socket: before latching, from a stray, or from a new source."""
        try:
            n, addr = self._recvfrom_into(self._buf)
        except OSError:           # EAGAIN after a spurious wakeup, ICMP errors: nothing to relay
            return
        self._rtp_from(n, addr)

    def _rtp_from(self, n: int, addr: tuple) -> None:
        """The datagram in the buffer came from ``addr``: latch, check, hand to the other leg's stream."""
        if n < 12 or self._buf[0] & 0xC0 != 0x80:
            self.dropped += 1
            return
        if addr != self.latched:
            if not (self.relatch_ok and self._may_latch(addr)):
                self.stray += 1
                return
            if addr == self._twin_peer:
                addr = self._twin_peer              # the twin's own tuple: send_rtp tests it by identity
            self.latched = addr
            self.dest = addr
            self.relatch_ok = False
            self._route()
            self._start_stats(self._buf)
            self._rtp_in(n)
            if addr is not self._twin_peer and self._socks:     # (not closed by what the packet set off)
                self._connect_twin(addr)
            return
        self._rtp_in(n)

    def _rtp_in(self, n: int = -1) -> None:
        """RTP from the latched source: a datagram read off the twin (the poller calls this with no ``n``: the
        kernel gives the twin nothing else), or ``n`` bytes in the buffer already (version 2, header complete:
        the listening socket's, just checked and latched by :meth:`_rtp_from`).

        The twin's read shares this frame (it was a method of its own calling this one), and the datagram is
        sent as a kept view of its length (it was a new memoryview slice per packet): bench/rtp_relay.py
        --relays prepaid,prepaid@base,rtpengine --steps 600 --seconds 4 --rounds 4, this commit's parent as
        prepaid@base, paired by round: 13.66/14.77/11.41/13.54 -> 13.10/12.96/11.07/13.13 us per packet
        (median 13.60 -> 13.03), rtpengine 9.39 in that run (a loaded machine: x1.45 -> x1.39)."""
        buf = self._buf
        if n < 0:
            try:
                n = self._twin_recv_into(buf)
            except OSError:       # EAGAIN, or the peer's ICMP port unreachable (ECONNREFUSED): nothing to relay
                return
            if self.latched is not self._twin_peer:     # a new SDP reset the latch: this source latches anew
                self._rtp_from(n, self._twin_peer)
                return
            if n < 12 or buf[0] & 0xC0 != 0x80:
                self.dropped += 1
                return
        # one unpack for our statistics and the stream's rewrite (it was three byte reads, a "!I" unpack here
        # and the stream's own header unpack): bench/rtp_relay.py --steps 300,600 --seconds 3 --rounds 2,
        # same run against this commit's parent as prepaid@base: 11.96 -> 11.67 us per packet (rtpengine 8.94)
        b0, b1, seq, ts, ssrc = _unpack_header(buf, 0)
        self.rx_packets += 1
        max_seq = self.rx_max_seq
        if (seq - max_seq) & 0xFFFF < 0x8000:
            if seq < max_seq:
                self.rx_cycles += 0x10000
            self.rx_max_seq = seq
        pt = b1 & 0x7F
        try:
            if pt == self.rx_payload_type:
                now = self._clock()
                # RFC 3550 A.8 interarrival jitter, in timestamp units (8 kHz)
                transit = int(now * 8000) - ts
                d = transit - self.rx_transit
                self.rx_transit = transit
                self.rx_jitter += ((d if d >= 0 else -d) - self.rx_jitter) / 16
                # rewritten in place and sent from there: a view of exactly the datagram, one per length, kept
                self.peer_out.relay_unpacked(self._views[n], now, b0, seq, ts, ssrc)
                self.relayed += 1
            elif pt == self.rx_event_payload_type:
                self._event(bytes(buf[:n]))
            else:
                self.dropped += 1
        except RtpError:
            self.dropped += 1

    def _connect_twin(self, addr: tuple) -> None:
        """Open the twin towards the source just latched (the old twin, if any, closes)."""
        self._drop_twin()
        try:
            twin = connect_twin(self._socks[0], addr)
        except OSError as e:      # relaying goes on through the listening socket, with sendto
            log.warn("call {call_id}: media leg {leg}: no connected socket towards {addr}: {error}",
                     call_id=self._label or "-", leg=self.name, addr=addr, error=e)
            return
        self._twin = twin
        self._twin_peer = addr
        self._twin_send = twin.send
        self._twin_recv_into = twin.recv_into
        self._route()
        # what landed on the twin between its bind and its connect may come from anyone: read as the listener's
        for _ in range(TWIN_DRAIN_MAX):
            try:
                n, src = twin.recvfrom_into(self._buf)
            except OSError:
                break
            self._rtp_from(n, src)
        self._poller.add(twin, self._rtp_in, self._label)

    def _drop_twin(self) -> None:
        """Close the twin; what its peer still had queued there is stray now (it is no longer latched)."""
        twin = self._twin
        if twin is None:
            return
        self._twin = None
        self._twin_peer = _NOT_CONNECTED
        self._twin_send = self._twin_recv_into = _nowhere
        self._route()
        for _ in range(TWIN_DRAIN_MAX):
            try:
                twin.recv_into(self._buf)
            except OSError:
                break
            self.stray += 1
        self._poller.close_socket(twin)

    def _event(self, data: bytes) -> None:
        start, end = payload_offsets(data)
        ev = parse_telephone_event(data[start:end])
        ssrc = int.from_bytes(data[8:12], "big")
        ts = int.from_bytes(data[4:8], "big")
        news = self._events.feed(ssrc, ts, ev)
        if self.peer_out.relay_event(data, self._clock()):
            self.relayed += 1
        else:
            self.dropped += 1
        session = self.session
        if news is not None and session is not None and session.on_dtmf is not None:
            session.on_dtmf(self.name, news[0], news[1])

    def _start_stats(self, data: bytes) -> None:
        """A new source latched: reception statistics (for our reports) start at this packet."""
        self.rx_transit = int(self._clock() * 8000) - _unpack_ts(data, 4)[0]
        self.rx_jitter = 0.0
        self.rx_ssrc = int.from_bytes(data[8:12], "big")
        self.rx_base_seq = self.rx_max_seq = data[2] << 8 | data[3]
        self.rx_cycles = 0
        self.rx_stats_base = self.rx_packets
        self.rx_expected_prior = self.rx_received_prior = 0

    def _rtcp_readable(self) -> None:
        try:
            data, addr = self._rtcp_recvfrom(MAX_DATAGRAM)
        except OSError:           # EAGAIN after a spurious wakeup, ICMP errors
            return
        self.rtcp_received(data, addr)

    def rtcp_received(self, data: bytes, addr: tuple) -> None:
        """RTCP from the peer: latched like RTP, read for its SR time, never forwarded."""
        if addr != self.latched_rtcp:
            if not self._may_latch(addr):
                self.stray += 1
                return
            self.latched_rtcp = addr
            self.rtcp_dest = addr
        try:
            packets = parse_rtcp(data)
        except RtpError:
            self.dropped += 1
            return
        self.rtcp_packets += 1
        for p in packets:
            if p.packet_type == RTCP_SR and p.ntp_middle is not None:
                self.last_sr_middle = p.ntp_middle
                self.last_sr_at = self._clock()

    # -- RTCP we generate ------------------------------------------------------------------

    def report_block(self, now: float) -> ReportBlock | None:
        """What we received from this leg, for the reports we send it (None before any packet)."""
        if self.rx_ssrc is None:
            return None
        received = self.rx_packets - self.rx_stats_base
        ext_max = self.rx_cycles + self.rx_max_seq
        expected = ext_max - self.rx_base_seq + 1
        lost = expected - received
        exp_int = expected - self.rx_expected_prior
        rec_int = received - self.rx_received_prior
        self.rx_expected_prior, self.rx_received_prior = expected, received
        lost_int = exp_int - rec_int
        fraction = (lost_int << 8) // exp_int if exp_int > 0 and lost_int > 0 else 0
        dlsr = int((now - self.last_sr_at) * 65536) if self.last_sr_middle else 0
        return ReportBlock(self.rx_ssrc, min(fraction, 255), lost, ext_max, int(self.rx_jitter),
                           self.last_sr_middle, dlsr)

    def send_rtcp(self, now: float, cname: str, bye: bool = False) -> bool:
        """Send our RTCP compound to this leg's peer; False when we have nowhere to send it."""
        if self.rtcp_dest is None:
            return False
        n = self.out.numbering
        block = self.report_block(now)
        blocks = (block,) if block is not None else ()
        if self.out.packets_relayed + self.out.packets_own:
            ts = (n.ts + int((now - n.last_sent_ts_at) * 8000)) % (1 << 32)
            report = build_sr(n.ssrc, now, ts, self.out.packets_relayed + self.out.packets_own,
                              self.out.octets_sent, blocks)
        else:
            report = build_rr(n.ssrc, blocks)
        if self._sdes_for != (n.ssrc, cname):          # the same for every report on this stream
            self._sdes_for = (n.ssrc, cname)
            self._sdes = build_sdes_cname(n.ssrc, cname)
        compound = report + self._sdes + (build_bye(n.ssrc) if bye else b"")
        try:
            self._rtcp_sendto(compound, self.rtcp_dest)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._twin is not None:
            self._poller.close_socket(self._twin)
            self._twin = None
        for sock in self._socks:
            self._poller.close_socket(sock)
        self._socks = []
        self.out.set_sender(None)
        self._sendto = self._rtcp_sendto = self._twin_send = _nowhere
        self._twin_peer = _NOT_CONNECTED
        self.session = None         # the session holds its legs: no cycle is left when it is dropped


def _ignore(*args) -> None:
    pass


def _nowhere(*args) -> None:
    raise OSError("leg closed")


class MediaSession:
    """The media of one call: ``leg_a`` (carrier) and ``leg_b`` (agent), and our streams ``a_out`` / ``b_out``.

    ``on_dtmf(leg_name, digit, end)`` hears telephone events (start and end once
    each); ``on_silence(session, leg_name)`` hears a leg that went silent.
    """

    def __init__(self, relay: "Relay", on_silence, on_dtmf, label: str) -> None:
        self.relay = relay
        self.label = label
        self.on_silence = on_silence
        self.on_dtmf = on_dtmf
        clock = relay.clock.seconds
        self.a_out = OutgoingStream(clock)
        self.b_out = OutgoingStream(clock)
        self.leg_a = Leg(self, "a", self.a_out, relay.latch_networks)
        self.leg_b = Leg(self, "b", self.b_out, ())
        self.leg_a.peer_out = self.b_out
        self.leg_b.peer_out = self.a_out
        self.closed = False

    def bind_b(self, socks: tuple[socket.socket, socket.socket] | None = None) -> None:
        """Bind leg b's port pair if it has none yet (see ``Relay.open_session``); ``socks``, when given, are a
        pair bound already (a media worker's, bound by the node); raises PortsExhausted."""
        if not self.leg_b.local_port and not self.closed:
            self.relay._bind_leg(self.leg_b, self.label, socks)

    def leg(self, name: str) -> Leg:
        """Leg "a" (carrier) or "b" (agent)."""
        return {"a": self.leg_a, "b": self.leg_b}[name]

    def configure_leg(self, name: str, negotiated: Negotiated) -> None:
        """Apply one leg's offer/answer result: its codec and payload types, and its peer's address."""
        leg = self.leg(name)
        other = self.leg_b if leg is self.leg_a else self.leg_a
        leg.codec = negotiated.codec
        leg.payload_type = negotiated.payload_type
        leg.event_payload_type = -1 if negotiated.event_payload_type is None else negotiated.event_payload_type
        leg.rx_payload_type = negotiated.receive_payload_type
        rx_event = negotiated.receive_event_payload_type
        leg.rx_event_payload_type = -1 if rx_event is None else rx_event
        leg.out.configure(negotiated.codec, negotiated.payload_type, negotiated.event_payload_type,
                          other.codec or negotiated.codec)
        if other.codec is not None:
            other.out.configure(other.codec, other.payload_type,
                                None if other.event_payload_type < 0 else other.event_payload_type,
                                negotiated.codec)
        leg.set_remote(negotiated.remote_address, negotiated.remote_port, negotiated.remote_rtcp_port,
                       may_send=negotiated.we_may_send, peer_sends=negotiated.peer_sends)

    @property
    def packets_relayed(self) -> int:
        """Packets (audio and events) relayed from either leg to the other."""
        return self.leg_a.relayed + self.leg_b.relayed

    @property
    def packets_dropped(self) -> int:
        """Packets not relayed: malformed, unknown payload type, no telephone-event on the other leg, muted, or
        their send failed."""
        return (self.leg_a.dropped + self.leg_b.dropped + self.a_out.packets_muted + self.b_out.packets_muted
                + self.a_out.packets_failed + self.b_out.packets_failed)

    @property
    def packets_stray(self) -> int:
        """Packets from addresses we may not latch onto."""
        return self.leg_a.stray + self.leg_b.stray

    def close(self) -> None:
        """Send RTCP BYE, close the four ports and give the pairs back to the range.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        now = self.relay.clock.seconds()
        for leg in (self.leg_a, self.leg_b):
            if leg.local_port:
                leg.send_rtcp(now, self.relay.cname, bye=True)
        self.relay._closed(self)
        # the owner's methods are let go: the owner holds this session, so the two would be a cycle
        self.on_silence = _ignore
        self.on_dtmf = _ignore


class Relay:
    """Allocates :class:`MediaSession` s on ``address`` from the port range, and runs their timers."""

    def __init__(self, reactor, address: str, port_min: int, port_max: int, silence_timeout_s: int, *,
                 clock=None, latch_networks=(), fill_after_ms: int = FILL_AFTER_MS,
                 rtcp_interval_s: int = RTCP_INTERVAL_S, cname: str = "prepaid", port_rng=None) -> None:
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.address = str(ipaddress.ip_address(address))
        self.ports = PortRange(port_min, port_max, rng=port_rng)     # (port_rng: where its queue starts)
        self.silence_timeout_s = silence_timeout_s
        self.latch_networks = tuple(ipaddress.ip_network(n, strict=False) for n in latch_networks)
        self.fill_after_ms = fill_after_ms
        self.rtcp_interval_s = rtcp_interval_s
        self.cname = cname
        self.sessions: set[MediaSession] = set()
        self._poller = SocketPoller()
        self._reading = False
        self._ticker: LoopingCall | None = None
        self._ticks = 0
        self._filling: list[Leg] = []      # legs whose stream gets silence every tick (Leg.fill_mark >= 0)
        self._closed_totals = [0, 0, 0]   # relayed, dropped, stray of closed sessions
        self._rtcp_sent = 0
        self._silence_sent = 0
        # every datagram is read into this one buffer and handled before the next is read
        self._rx_buffer = bytearray(MAX_DATAGRAM)
        self._rx_views = BufferViews(self._rx_buffer)

    def open_session(self, *, on_silence: Callable[[MediaSession, str], object] | None = None,
                     on_dtmf: Callable[[str, str, bool], object] | None = None, label: str = "",
                     bind_b: bool = True, a_socks: tuple[socket.socket, socket.socket] | None = None
                     ) -> MediaSession:
        """A new call's media: leg a's port pair bound (``a_socks`` when given: a pair bound already, a media
        worker's, bound by the node; else the range's next that binds), and leg
        b's unless ``bind_b`` is False (then :meth:`MediaSession.bind_b` binds it when an agent is rung, so
        that a caller who only hears a refusal holds one pair, not two).  Raises :class:`PortsExhausted`."""
        session = MediaSession(self, on_silence, on_dtmf, label)
        try:
            self._bind_leg(session.leg_a, label, a_socks)
            if bind_b:
                self._bind_leg(session.leg_b, label)
        except PortsExhausted:
            session.leg_a.close()
            self.ports.give_back(session.leg_a.local_port)
            raise
        self.sessions.add(session)
        if not self._reading:
            self.reactor.addReader(self._poller)
            self._reading = True
        if self._ticker is None:
            self._ticker = LoopingCall.withCount(self._tick)
            self._ticker.clock = self.clock
            self._ticker.start(TICK_MS / 1000, now=False)
        return session

    def _bind_leg(self, leg: Leg, label: str, socks: tuple[socket.socket, socket.socket] | None = None) -> None:
        if socks is None:
            port, socks = bind_next_pair(self.ports, self.address)      # raises PortsExhausted
        else:       # bound by the node for a media worker: its port is claimed in this range (its share)
            port = socks[0].getsockname()[1]
            self.ports.claim(port)
        leg._attach(self._poller, socks, port, label)

    def _closed(self, session: MediaSession) -> None:
        for leg in (session.leg_a, session.leg_b):
            leg.close()
            if leg.local_port:
                self.ports.give_back(leg.local_port)
            # (a leg being filled leaves self._filling at the next tick: its stream has no sender now)
        t = self._closed_totals
        t[0] += session.packets_relayed
        t[1] += session.packets_dropped
        t[2] += session.packets_stray
        self.sessions.discard(session)
        if not self.sessions:
            self._filling = []
            if self._ticker is not None:
                self._ticker.stop()
                self._ticker = None
            if self._reading:
                self.reactor.removeReader(self._poller)
                self._reading = False

    def set_latch_networks(self, networks) -> None:
        """Leg a of calls set up from now may latch onto these networks (CIDR strings or networks)."""
        self.latch_networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def counters(self) -> RelayCounters:
        """Global counters over open and closed sessions."""
        s = self.sessions
        t = self._closed_totals
        return RelayCounters(t[0] + sum(x.packets_relayed for x in s), t[1] + sum(x.packets_dropped for x in s),
                             t[2] + sum(x.packets_stray for x in s), self._silence_sent, self._rtcp_sent,
                             len(s), self.ports.free)

    def close(self) -> None:
        """Close every session (at shutdown)."""
        for session in list(self.sessions):
            session.close()
        self._poller.connectionLost(None)
        self._poller = SocketPoller()

    # -- timers ---------------------------------------------------------------------------

    def _tick(self, count: int = 1) -> None:
        before = self._ticks
        self._ticks += count
        if self._filling:
            self._fill(self.clock.seconds())
        if self._ticks // SCAN_EVERY_TICKS != before // SCAN_EVERY_TICKS:
            self._scan_idle()
        if self._ticks // SLOW_EVERY_TICKS != before // SLOW_EVERY_TICKS:
            self._slow(self.clock.seconds())

    def _fill(self, now: float) -> None:
        """One silence frame on each stream being filled; a stream that sent anything else since the
        last tick (relayed audio, the player), or lost its sender, leaves the fill.

        The hot part of a call's media when the peers send no RTP: one frame per stream per tick, so
        per frame only the stream's numbering, one ``pack_into`` and the leg's ``send`` (its twin, connected
        to the latched address) or ``sendto`` (to the signalled one): what :meth:`Leg.send_rtp` does, the
        stream's sender being that leg's."""
        keep: list[Leg] = []
        for leg in self._filling:
            out = leg.out
            mark = leg.fill_mark
            if out.packets_relayed + out.packets_own != mark or out._send is None:
                leg.fill_mark = -1           # relayed audio (or the player) took over
                continue
            datagram = out.silence_datagram(now)
            try:
                if leg.dest is leg._twin_peer:       # Leg.send_rtp, inlined
                    leg._twin_send(datagram)
                else:
                    leg._sendto(datagram, leg.dest)
            except OSError:
                leg.dropped += 1
            leg.fill_mark = mark + 1
            keep.append(leg)
        self._silence_sent += len(keep)
        self._filling = keep

    def _scan_idle(self) -> None:
        """Streams on which nothing went out since the last scans start getting silence."""
        need = max(1, self.fill_after_ms // (TICK_MS * SCAN_EVERY_TICKS))
        filling = self._filling
        for session in self.sessions:
            for leg in (session.leg_a, session.leg_b):
                out = leg.out
                if out._send is None or leg.fill_mark >= 0:
                    continue
                count = out.packets_relayed + out.packets_own
                if leg.seen_count == count:
                    leg.idle_scans += 1
                    if leg.idle_scans >= need:
                        leg.fill_mark = count
                        filling.append(leg)
                        leg.idle_scans = 0
                else:
                    leg.seen_count = count
                    leg.idle_scans = 0

    def _slow(self, now: float) -> None:
        """Once a second: silence timeouts, and RTCP for a fifth of the sessions."""
        second = self._ticks // SLOW_EVERY_TICKS
        for session in list(self.sessions):
            rtcp_due = (second + id(session) // 16) % self.rtcp_interval_s == 0
            for leg in (session.leg_a, session.leg_b):
                if leg.rx_packets != leg.last_rx_count:
                    leg.last_rx_count = leg.rx_packets
                    leg.last_rx_at = now
                    leg.silence_reported = False
                else:
                    leg.relatch_ok = True        # the latched source is quiet: another allowed one may take over
                    if (leg.signalled is not None and leg.peer_sends and not leg.silence_reported
                            and now - leg.last_rx_at >= self.silence_timeout_s):
                        leg.silence_reported = True
                        log.info("call {call_id}: media leg {leg} silent for {silent_s:.0f} s",
                                 call_id=session.label, leg=leg.name, silent_s=now - leg.last_rx_at)
                        if session.on_silence is not None:
                            session.on_silence(session, leg.name)
                        if session.closed:
                            break
                if rtcp_due and not session.closed and leg.send_rtcp(now, self.cname):
                    self._rtcp_sent += 1
