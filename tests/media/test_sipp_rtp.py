"""SIPp as the carrier: its INVITE's SDP is answered with the relay's A-leg port, then it plays
SIPp's own G.711 A-law pcap and an RFC 4733 DTMF pcap into the relay, and a plain UDP socket
on the B side receives what the relay sends on."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time

import pytest
from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

from media.relay import Relay
from media.rtp import parse_rtp
from media.sdp import LocalSdp, answer_offer, parse_sdp, write_sdp

from tests.support.relay import Endpoint, pump, random_range, settle

PCAP_DIR = "/usr/share/sip-tester"
AUDIO_PCAP = os.path.join(PCAP_DIR, "g711a.pcap")
DTMF_PCAP = os.path.join(PCAP_DIR, "dtmf_2833_1.pcap")

pytestmark = [
    pytest.mark.sipp,
    pytest.mark.skipif(shutil.which("sipp") is None or not os.path.exists(AUDIO_PCAP),
                       reason="SIPp (Debian sip-tester) with its pcap files is not installed"),
]

SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carrier plays G.711 and DTMF into the relay">
  <send retrans="500">
    <![CDATA[
      INVITE sip:+493012345678@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4930111222@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:+493012345678@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:carrier@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=carrier 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
      a=ptime:20
    ]]>
  </send>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:+493012345678@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4930111222@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:+493012345678@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <nop><action><exec play_pcap_audio="AUDIO_PCAP"/></action></nop>
  <pause milliseconds="7300"/>
  <nop><action><exec play_pcap_audio="DTMF_PCAP"/></action></nop>
  <pause milliseconds="400"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:+493012345678@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+4930111222@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:+493012345678@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def pcap_rtp_payloads(path: str) -> list[bytes]:
    """The RTP payloads in a pcap (Ethernet/IPv4/UDP), in order."""
    data = open(path, "rb").read()
    pos, out = 24, []
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        pkt = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        ip = pkt[14:]
        rtp = ip[(ip[0] & 0x0F) * 4 + 8:]
        out.append(rtp[12:])
    return out


class TinyUas(DatagramProtocol):
    """Just enough of a SIP UAS for one call: answers the INVITE's SDP with the relay's A leg, 200s the BYE."""

    def __init__(self, session, local_sdp: LocalSdp) -> None:
        self.session = session
        self.local_sdp = local_sdp
        self.answered = False
        self.byed = False

    def datagramReceived(self, data: bytes, addr) -> None:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method = lines[0].split(" ", 1)[0]
        if method not in ("INVITE", "BYE"):
            return
        keep = [h for h in lines[1:] if h.split(":", 1)[0].lower() in ("via", "from", "call-id", "cseq")]
        to = next(h for h in lines[1:] if h.lower().startswith("to:"))
        extra = ""
        payload = b""
        if method == "INVITE":
            answer, neg = answer_offer(parse_sdp(body), self.local_sdp)
            self.session.configure_leg("a", neg)
            payload = write_sdp(answer)
            to += ";tag=relaytest"
            extra = "Contact: <sip:relay@127.0.0.1>\r\nContent-Type: application/sdp\r\n"
            self.answered = True
        else:
            self.byed = True
        resp = ("SIP/2.0 200 OK\r\n" + "\r\n".join(keep + [to]) + "\r\n" + extra
                + f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
        self.transport.write(resp, addr)


def test_sipp_pcap_audio_and_dtmf_cross_the_relay(tmp_path):
    """Every A-law packet of SIPp's pcap arrives on the B side, payload intact, on our SSRC with
    continuous sequence numbers; the DTMF pcap arrives as telephone-event and is reported as digit 1."""
    lo, hi = random_range()
    relay = Relay(reactor, "127.0.0.1", lo, hi, silence_timeout_s=60)
    digits = []
    session = relay.open_session(on_dtmf=lambda leg, digit, end: digits.append((leg, digit, end)))
    agent = Endpoint()
    session.configure_leg("b", agent.negotiated("PCMA", 8, 101))
    uas = TinyUas(session, LocalSdp("127.0.0.1", session.leg_a.local_port))
    sip_port = reactor.listenUDP(0, uas, interface="127.0.0.1")
    scenario = tmp_path / "carrier.xml"
    scenario.write_text(SCENARIO.replace("AUDIO_PCAP", AUDIO_PCAP).replace("DTMF_PCAP", DTMF_PCAP))
    sipp_sip, sipp_media = random_range(4)
    proc = subprocess.Popen(
        ["sipp", f"127.0.0.1:{sip_port.getHost().port}", "-sf", str(scenario), "-m", "1",
         "-i", "127.0.0.1", "-p", str(sipp_sip), "-mi", "127.0.0.1", "-mp", str(sipp_media + 2),
         "-nostdin", "-timeout", "14s", "-timeout_error", "-trace_err", "-error_file", str(tmp_path / "err.log")],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            pump(lambda: agent.poll() < 0, 0.05)
        settle(0.05)
        agent.poll()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)
        sip_port.stopListening()
        relay.close()
        agent.close()
    stderr = proc.stderr.read().decode(errors="replace")
    assert proc.returncode == 0, f"SIPp failed ({proc.returncode}): {stderr[-800:]}"
    assert uas.answered and uas.byed
    got = [parse_rtp(d) for d in agent.got]
    silence = b"\xd5" * 160          # the relay's fill while SIPp is quiet (before, between the pcaps)
    audio = [p for p in got if p.payload_type == 8 and p.payload != silence]
    events = [p for p in got if p.payload_type == 101]
    expected = pcap_rtp_payloads(AUDIO_PCAP)
    assert [p.payload for p in audio] == expected                   # all 236, in order, bytes intact
    assert {p.ssrc for p in got} == {session.b_out.ssrc}
    seqs = [p.sequence for p in got]
    # one stream: each packet +1, except the repeated end packets of the event (RFC 4733 retransmissions)
    assert all((b - a) % 65536 in (0, 1) for a, b in zip(seqs, seqs[1:]))
    assert len(got) > len(expected) + 10 and any(p.payload == silence for p in got)
    assert [e.payload for e in events] == pcap_rtp_payloads(DTMF_PCAP)
    assert digits == [("a", "1", False), ("a", "1", True)]
    assert session.leg_a.stray == 0
