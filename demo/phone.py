"""A scripted SIP user agent with real RTP: the demo's carrier and agent, and a peer for end-to-end tests.

:class:`TestUa` is a SIP endpoint (:class:`~b2bua.sip.endpoint.SipEndpoint`
behind :class:`~b2bua.transport.SipTransports`, UDP on 127.0.0.1 port 0) and
one UDP RTP socket (:class:`RtpPeer`).  It either places one call
(:meth:`TestUa.call`) or answers the calls that reach it (``answer=True``),
sends G.711 audio every 20 ms on the injected reactor (a sine of ``tone_hz``,
or silence when ``tone_hz`` is None), RECORDS every audio packet it receives
(decoded to 16-bit PCM, with its arrival time, RTP sequence and timestamp),
sends BYE (:meth:`TestUa.hangup`, or ``hangup_after_s``) or takes one, and
reports a frozen :class:`UaSummary` through :attr:`TestUa.ended` (and the answer time
through :attr:`TestUa.answered`, which never fires for a call not answered).

What it heard is :meth:`RtpPeer.recording`: one signal of 8 kHz samples placed
by RTP timestamp (gaps stay silent), so a prompt can be found in it with
:func:`find` (FFT cross-correlation) and a tone with :func:`band_level`.

It is deliberately small: one call at a time (an INVITE during a call gets 486;
an answering UA takes the next call once one has ended, with fresh
:attr:`TestUa.ended` and :attr:`TestUa.answered`), UDP
only, no authentication, PCMA/PCMU only; a re-INVITE or UPDATE is answered
with our SDP.  Bad input from the peer never raises: SDP we cannot use is
answered 488 (UAS) or ends the call with a BYE (UAC).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from twisted.internet import protocol
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.logger import Logger

from media import g711
from media.rtp import RtpError, build_rtp, is_rtcp, parse_rtp
from media.sdp import SdpError, parse_sdp

from b2bua.sip.endpoint import (AckNeverCame, AckReceived, CancelReceived, DialogEnded, RequestReceived,
                           ResponseReceived, SipEndpoint, TransactionTimedOut, TransportFailed)
from b2bua.transport import SipTransports

__all__ = ["TestUa", "UaSummary", "RtpPeer", "Heard", "find", "band_level", "ua_sdp"]

log = Logger()

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
PT_CODEC = {0: "PCMU", 8: "PCMA"}
CODEC_PT = {"PCMU": 0, "PCMA": 8}
MAX_CATCH_UP_FRAMES = 5          # a late reactor sends at most this many frames at once, then skips
MAX_RECORDED_PACKETS = 50 * 600  # ten minutes of 20 ms packets: a bound on what one call records


# ---- signal helpers -------------------------------------------------------------------------------
def find(signal: np.ndarray, pattern: np.ndarray) -> tuple[int, float]:
    """(lag, normalised correlation) of the best match of ``pattern`` in ``signal`` (FFT cross-correlation).

    0.0 when ``signal`` is shorter than ``pattern`` or either is silent.
    """
    signal = np.asarray(signal, dtype=float)
    pattern = np.asarray(pattern, dtype=float)
    if len(pattern) == 0 or len(signal) < len(pattern):
        return 0, 0.0
    n = 1 << int(math.ceil(math.log2(len(signal) + len(pattern))))
    corr = np.fft.irfft(np.fft.rfft(signal, n) * np.conj(np.fft.rfft(pattern, n)), n)[:len(signal) - len(pattern) + 1]
    lag = int(np.argmax(corr))
    seg = signal[lag:lag + len(pattern)]
    norm = float(np.linalg.norm(seg) * np.linalg.norm(pattern))
    return lag, (float(np.dot(seg, pattern)) / norm if norm else 0.0)


def band_level(x: np.ndarray, hz: float) -> float:
    """Magnitude of ``x`` at ``hz`` (Hann-windowed DFT, the bins around it), per sample; 0.0 for no signal."""
    x = np.asarray(x, dtype=float)
    if len(x) < 16:
        return 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
    i = int(np.argmin(np.abs(freqs - hz)))
    return float(spectrum[max(0, i - 2):i + 3].max()) / len(x)


def ua_sdp(address: str, rtp_port: int, codecs: tuple[str, ...] = ("PCMA", "PCMU"), session_version: int = 1) -> bytes:
    """An audio SDP offering (or answering with) ``codecs`` on ``address``:``rtp_port``."""
    family = "IP6" if ":" in address else "IP4"
    pts = " ".join(str(CODEC_PT[c]) for c in codecs)
    lines = ["v=0", f"o=testua 4242 {session_version} IN {family} {address}", "s=-",
             f"c=IN {family} {address}", "t=0 0", f"m=audio {rtp_port} RTP/AVP {pts}"]
    lines += [f"a=rtpmap:{CODEC_PT[c]} {c}/8000" for c in codecs]
    lines += ["a=ptime:20", "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def _remote_media(body: bytes | None) -> tuple[str, int, str]:
    """(host, port, codec) of the first audio stream of an SDP with PCMA or PCMU; raises ValueError."""
    if not body:
        raise ValueError("no SDP")
    sd = parse_sdp(body)
    for m in sd.media:
        if m.media != "audio" or m.port == 0:
            continue
        for fmt in m.formats:
            if fmt.isdigit() and int(fmt) in PT_CODEC:
                conn = m.connection or sd.connection
                if conn is None:
                    raise ValueError("no c= line")
                return conn.address, m.port, PT_CODEC[int(fmt)]
    raise ValueError("no PCMA/PCMU audio stream")


# ---- RTP ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Heard:
    """One audio packet received: when (reactor seconds), its RTP numbering, and its decoded PCM."""

    at_s: float
    ssrc: int
    sequence: int
    timestamp: int
    payload_type: int
    pcm: bytes


class RtpPeer(protocol.DatagramProtocol):
    """One RTP socket: sends a tone (or silence) every 20 ms to the remote, records what arrives."""

    def __init__(self, reactor, address: str = "127.0.0.1", *, tone_hz: float | None = None,
                 amplitude: int = 3000, ssrc: int = 0x7E57) -> None:
        self.reactor = reactor
        self.address = address
        self.tone_hz = tone_hz
        self.amplitude = amplitude
        self.ssrc = ssrc
        self.port: int | None = None
        self.remote: tuple[str, int] | None = None
        self.codec = "PCMA"
        self.heard: list[Heard] = []
        self.packets_sent = 0
        self.packets_received = 0
        self.rtcp_received = 0
        self.bad_packets = 0
        self._listening = None
        self._timer = None
        self._frame = 0
        self._start_s = 0.0

    def listen(self) -> int:
        self._listening = self.reactor.listenUDP(0, self, interface=self.address)
        self.port = self._listening.getHost().port
        return self.port

    # -- sending --
    def frame_pcm(self, k: int) -> bytes:
        """The ``k``-th 20 ms frame of what we say: our tone, phase-continuous, or silence."""
        if self.tone_hz is None:
            return bytes(2 * FRAME_SAMPLES)
        t = np.arange(k * FRAME_SAMPLES, (k + 1) * FRAME_SAMPLES) / SAMPLE_RATE
        return (self.amplitude * np.sin(2 * math.pi * self.tone_hz * t)).astype("<i2").tobytes()

    def tone(self, frames: int) -> np.ndarray:
        """The first ``frames`` frames of what we send, as samples (for correlation)."""
        return np.frombuffer(b"".join(self.frame_pcm(k) for k in range(frames)), dtype="<i2").astype(float)

    def start_sending(self, host: str, port: int, codec: str) -> None:
        self.remote, self.codec = (host, port), codec
        if self._timer is None:
            self._start_s = self.reactor.seconds()
            self._frame = 0
            self._tick()

    def _tick(self) -> None:
        self._timer = None
        due = int((self.reactor.seconds() - self._start_s) * 1000 // FRAME_MS) + 1
        if due - self._frame > MAX_CATCH_UP_FRAMES:
            self._frame = due - MAX_CATCH_UP_FRAMES        # the reactor was late: skip, as a real phone would
        while self._frame < due:
            self._send_frame(self._frame)
            self._frame += 1
        next_s = self._start_s + self._frame * FRAME_MS / 1000
        self._timer = self.reactor.callLater(max(0.0, next_s - self.reactor.seconds()), self._tick)

    def _send_frame(self, k: int) -> None:
        if self.remote is None or self.transport is None:
            return
        payload = g711.encode(self.frame_pcm(k), self.codec)
        packet = build_rtp(CODEC_PT[self.codec], k & 0xFFFF, (k * FRAME_SAMPLES) & 0xFFFFFFFF, self.ssrc,
                           payload, marker=(k == 0))
        try:
            self.transport.write(packet, self.remote)
            self.packets_sent += 1
        except OSError:
            pass

    def stop_sending(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- receiving --
    def datagramReceived(self, data: bytes, addr) -> None:
        if is_rtcp(data):
            self.rtcp_received += 1
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.bad_packets += 1
            return
        codec = PT_CODEC.get(packet.payload_type)
        if codec is None:               # telephone-event, comfort noise...: not audio we record
            return
        self.packets_received += 1
        if len(self.heard) < MAX_RECORDED_PACKETS:
            self.heard.append(Heard(self.reactor.seconds(), packet.ssrc, packet.sequence, packet.timestamp,
                                    packet.payload_type, g711.decode(bytes(packet.payload), codec)))

    def recording(self) -> tuple[np.ndarray, float | None]:
        """What we heard as one signal, and the reactor time of its sample 0 (None: nothing heard).

        Packets are placed by RTP timestamp within one SSRC; a new SSRC starts
        where its first packet's arrival time says (never before what is written).
        """
        if not self.heard:
            return np.zeros(0), None
        t0 = self.heard[0].at_s
        bases: dict[int, tuple[int, int]] = {}          # ssrc -> (timestamp, sample position)
        placed: list[tuple[int, bytes]] = []
        end = 0
        for h in self.heard:
            if h.ssrc not in bases:
                bases[h.ssrc] = (h.timestamp, max(end, round((h.at_s - t0) * SAMPLE_RATE)))
            base_ts, base_pos = bases[h.ssrc]
            delta = (h.timestamp - base_ts) & 0xFFFFFFFF
            if delta >= 1 << 31:
                delta -= 1 << 32
            pos = base_pos + delta
            if pos < 0 or pos > SAMPLE_RATE * 3600:
                continue
            placed.append((pos, h.pcm))
            end = max(end, pos + len(h.pcm) // 2)
        out = np.zeros(end)
        for pos, pcm in placed:
            samples = np.frombuffer(pcm, dtype="<i2")
            out[pos:pos + len(samples)] = samples
        return out, t0

    def close(self):
        self.stop_sending()
        if self._listening is not None:
            listening, self._listening = self._listening, None
            return listening.stopListening()
        return None

    def stop(self) -> Deferred:
        """:meth:`close`, as a Deferred."""
        return maybeDeferred(self.close)


# ---- the user agent -------------------------------------------------------------------------------
@dataclass(frozen=True)
class UaSummary:
    """What one call looked like from this user agent (times are reactor seconds; None: did not happen)."""

    name: str
    role: str                       # "uac" or "uas"
    final_status: int | None        # the INVITE's final answer (sent or received)
    invited_at: float | None
    answered_at: float | None
    ended_at: float | None
    ended_by: str | None            # "local" (we sent BYE), "remote" (BYE received), "failed", "cancelled"
    reason: str
    packets_sent: int
    packets_received: int
    events: tuple[tuple[float, str], ...] = field(default=())

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def duration_s(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at


class TestUa:
    """A scripted carrier or agent phone; see the module docstring."""

    __test__ = False        # not a pytest class, despite its name

    def __init__(self, reactor, *, name: str, user: str | None = None, address: str = "127.0.0.1",
                 tone_hz: float | None = None, amplitude: int = 3000, answer: bool = False,
                 ring_s: float = 0.0, hangup_after_s: float | None = None, ssrc: int = 0x7E57) -> None:
        self.reactor = reactor
        self.name = name
        self.user = user or name
        self.address = address
        self.answer = answer
        self.ring_s = ring_s
        self.hangup_after_s = hangup_after_s
        self.endpoint = SipEndpoint(local_host=address, local_ports={}, user_agent=f"prepaid-testua-{name}")
        self.transports = SipTransports(reactor, self.endpoint, self._on_event)
        self.rtp = RtpPeer(reactor, address, tone_hz=tone_hz, amplitude=amplitude, ssrc=ssrc)
        self.sip_port: int | None = None
        self.ended: Deferred = Deferred()
        self.answered: Deferred = Deferred()       # fires with the answer time (reactor seconds)
        self.events: list[tuple[float, str]] = []
        self.final_status: int | None = None
        self.invited_at: float | None = None
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.ended_by: str | None = None
        self.reason = ""
        self.role = "uas" if answer else "uac"
        self._invite_tid: str | None = None
        self._dialog = None
        self._bye_tid: str | None = None
        self._answer_timer = None
        self._hangup_timer = None
        self._done = False
        self._version = 1

    # -- setup --
    def start(self) -> int:
        """Bind SIP (UDP) and RTP on ``address``, ports chosen by the OS; returns the SIP port."""
        self.rtp.listen()
        self.sip_port = self.transports.listen_udp(0, self.address)
        self.endpoint.local_ports["udp"] = self.sip_port
        return self.sip_port

    @property
    def uri(self) -> str:
        """Where to reach this UA: ``sip:user@address:port``."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"sip:{self.user}@{host}:{self.sip_port}"

    def note(self, what: str) -> None:
        self.events.append((self.reactor.seconds(), what))
        log.debug("testua {name}: {what}", name=self.name, what=what)

    # -- placing a call --
    def call(self, target: str, *, from_: str, headers: tuple[tuple[str, str], ...] = ()) -> Deferred:
        """INVITE ``target`` (a sip: URI with an IP address) as ``from_``; returns :attr:`ended`."""
        self.role = "uac"
        body = ua_sdp(self.address, self.rtp.port)
        request = self.endpoint.make_request("INVITE", target, from_=from_, to=f"<{target}>", headers=list(headers),
                                             body=body, content_type="application/sdp")
        self.invited_at = self.reactor.seconds()
        try:
            self._invite_tid = self.endpoint.send_request(request, self.invited_at)
        except Exception as exc:
            self._finish("failed", f"cannot send INVITE: {exc}")
            return self.ended
        self.note(f"INVITE {target}")
        self.transports.flush()
        return self.ended

    def hangup(self) -> None:
        """Send BYE (in a call), or CANCEL a call still ringing; nothing once ended."""
        if self._done:
            return
        now = self.reactor.seconds()
        if self._dialog is None:
            if self.role == "uac" and self._invite_tid is not None:
                self.note("CANCEL")
                self.endpoint.cancel(self._invite_tid, now)
                self.transports.flush()
            return
        if self._bye_tid is None:
            self.rtp.stop_sending()
            try:
                self._bye_tid = self.endpoint.request_in_dialog(self._dialog, "BYE", now)
                self.note("BYE sent")
            except Exception as exc:
                self._finish("failed", f"cannot send BYE: {exc}")
            self.transports.flush()

    # -- what the endpoint tells us --
    def _on_event(self, event: object) -> None:
        try:
            self._dispatch(event)
        except Exception:
            log.failure("testua {name}: event {event!r} failed", name=self.name, event=type(event).__name__)

    def _dispatch(self, event: object) -> None:
        now = self.reactor.seconds()
        if isinstance(event, RequestReceived):
            self._request(event, now)
        elif isinstance(event, ResponseReceived):
            self._response(event)
        elif isinstance(event, AckReceived):
            self.note("ACK received")
        elif isinstance(event, AckNeverCame):
            self.note("no ACK for our 200: BYE")
            self.hangup()
        elif isinstance(event, CancelReceived):
            self._cancel_timers()
            self.final_status = 487
            self.note("CANCEL received")
            self._finish("cancelled", "the caller cancelled")
        elif isinstance(event, DialogEnded):
            if event.dialog_id == self._dialog and event.reason not in ("bye sent", "bye received"):
                self._finish("failed", f"dialog ended: {event.reason}")
        elif isinstance(event, (TransactionTimedOut, TransportFailed)):
            if event.transaction_id in (self._invite_tid, self._bye_tid):
                self._finish("failed", f"{event.method} {type(event).__name__}")

    def _request(self, event: RequestReceived, now: float) -> None:
        method, tid = event.request.method, event.transaction_id
        if event.dialog_id is not None:
            if method == "BYE":
                self.endpoint.respond(tid, 200, now)
                self.note("BYE received")
                self._finish("remote", "BYE received")
            elif method in ("INVITE", "UPDATE"):
                self._version += 1
                self.endpoint.respond(tid, 200, now, body=ua_sdp(self.address, self.rtp.port,
                                                                (self.rtp.codec,), self._version),
                                      content_type="application/sdp")
                self.note(f"{method} in dialog answered")
            else:
                self.endpoint.respond(tid, 200, now)
            return
        if method == "OPTIONS":
            self.endpoint.respond(tid, 200, now)
        elif method != "INVITE":
            self.endpoint.respond(tid, 481 if method in ("BYE", "UPDATE", "INFO") else 405, now)
        elif not self.answer or (self.invited_at is not None and not self._done):
            self.endpoint.respond(tid, 486 if self.answer else 403, now)
        else:
            if self._done:
                self._next_call()
            self._incoming(event, now)

    def _incoming(self, event: RequestReceived, now: float) -> None:
        self.role = "uas"
        self.invited_at = now
        self._invite_tid = event.transaction_id
        self.note(f"INVITE from {event.request.headers.get('from')}")
        try:
            host, port, codec = _remote_media(event.request.body)
        except (SdpError, ValueError) as exc:
            self.final_status = 488
            self.endpoint.respond(event.transaction_id, 488, now)
            self._finish("failed", f"offer not usable: {exc}")
            return
        self.rtp.remote, self.rtp.codec = (host, port), codec
        self.endpoint.respond(event.transaction_id, 180, now)
        self._answer_timer = self.reactor.callLater(self.ring_s, self._answer_now)

    def _answer_now(self) -> None:
        self._answer_timer = None
        if self._done:
            return
        now = self.reactor.seconds()
        body = ua_sdp(self.address, self.rtp.port, (self.rtp.codec,))
        try:
            self._dialog = self.endpoint.respond(self._invite_tid, 200, now, body=body, content_type="application/sdp")
        except Exception as exc:          # the INVITE was cancelled meanwhile
            self._finish("failed", f"cannot answer: {exc}")
            return
        self.final_status = 200
        self._answered(now)
        self.transports.flush()

    def _answered(self, now: float) -> None:
        self.answered_at = now
        self.note(f"answered ({self.rtp.codec})")
        self.answered.callback(now)
        self.rtp.start_sending(self.rtp.remote[0], self.rtp.remote[1], self.rtp.codec)
        if self.hangup_after_s is not None:
            self._hangup_timer = self.reactor.callLater(self.hangup_after_s, self.hangup)

    def _response(self, event: ResponseReceived) -> None:
        status = event.response.status
        if event.transaction_id == self._invite_tid:
            if status < 200:
                self.note(f"{status} {event.response.reason}")
                return
            if self.final_status is not None:       # a retransmitted 2xx: the core ACKs it again
                return
            self.final_status = status
            if status >= 300:
                self.note(f"{status} {event.response.reason}")
                self._finish("failed", f"INVITE answered {status}")
                return
            self._dialog = event.dialog_id
            try:
                host, port, codec = _remote_media(event.response.body)
            except (SdpError, ValueError) as exc:
                self.note(f"answer not usable: {exc}")
                self.hangup()
                return
            self.rtp.remote, self.rtp.codec = (host, port), codec
            self._answered(self.reactor.seconds())
        elif event.transaction_id == self._bye_tid and status >= 200:
            self._finish("local", f"BYE answered {status}")

    def _next_call(self) -> None:
        """An answering UA takes one call after another: fresh per-call state (the recording goes on)."""
        self.ended, self.answered = Deferred(), Deferred()
        self.final_status = self.invited_at = self.answered_at = self.ended_at = self.ended_by = None
        self.reason = ""
        self._invite_tid = self._dialog = self._bye_tid = None
        self._done = False

    # -- the end --
    def _cancel_timers(self) -> None:
        for timer in (self._answer_timer, self._hangup_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._answer_timer = self._hangup_timer = None

    def _finish(self, by: str, reason: str) -> None:
        if self._done:
            return
        self._done = True
        self._cancel_timers()
        self.rtp.stop_sending()
        self.ended_at = self.reactor.seconds()
        self.ended_by, self.reason = by, reason
        self.note(f"ended ({by}): {reason}")
        self.ended.callback(self.summary())

    def summary(self) -> UaSummary:
        return UaSummary(self.name, self.role, self.final_status, self.invited_at, self.answered_at,
                         self.ended_at, self.ended_by, self.reason, self.rtp.packets_sent,
                         self.rtp.packets_received, tuple(self.events))

    @inlineCallbacks
    def stop(self):
        """Stop sending, close the RTP and SIP sockets and the endpoint's timer (in a call: no BYE is sent)."""
        self._cancel_timers()
        self.rtp.stop_sending()
        yield self.rtp.close()
        yield self.transports.stop()


def on_ended(ua: TestUa, callback: Callable[[UaSummary], object]) -> None:
    """Call ``callback`` with ``ua``'s summary when its call ends (a convenience for scripts)."""
    ua.ended.addCallback(lambda summary: (callback(summary), summary)[1])
