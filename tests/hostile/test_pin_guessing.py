"""Attack: guessing the customer PIN with parallel calls from one address, then the right PIN.

A real ``prepaid run`` with a profile that asks withheld callers for the PIN (``withheld = "pin"``,
``[pin] max_failures = 4``). Six calls from one address at once, each typing three wrong PINs as
RFC 4733 telephone-events (18 guesses), then a seventh call typing the right PIN. Before the limit
across calls, each call had its own three tries: every guess was looked up, and the right PIN
connected. Now only 4 guesses are ever looked up, every call ends locked out ("too many wrong PINs"),
the right PIN is refused while locked, and the lockout is in the audit table.

The calls are raw SIP over UDP and RTP on loopback sockets of this process, bounded in time.
"""

from __future__ import annotations

import re
import select
import socket
import time
import uuid

import pytest

from media.rtp import build_rtp, build_telephone_event
from tests.hostile.support import report, resources
from tests.sipp.node import start_node

CALLER = "+4915112345678"
SERVICE = "+493012345678"
EVENT_PT = 101
PARALLEL = 6
WRONG_PER_CALL = 3
BOUND_S = 25.0


class AttackCall:
    """One withheld caller: INVITE, ACK, PINs as telephone-events, and the node's BYE answered."""

    def __init__(self, node_port: int, pins: list[str]) -> None:
        self.node = ("127.0.0.1", node_port)
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.port = self.sip.getsockname()[1]
        self.call_id = uuid.uuid4().hex
        self.tag = uuid.uuid4().hex[:8]
        self.pins = pins
        self.answered = False
        self.ended = False
        self.final_status: int | None = None
        self._seq = 1000
        self._ts = 8000

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def invite(self) -> None:
        rtp_port = self.rtp.getsockname()[1]
        sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {rtp_port} RTP/AVP 8 {EVENT_PT}\r\na=rtpmap:8 PCMA/8000\r\n"
               f"a=rtpmap:{EVENT_PT} telephone-event/8000\r\na=fmtp:{EVENT_PT} 0-15\r\na=sendrecv\r\n")
        self._send(f"INVITE sip:{SERVICE}@127.0.0.1:{self.node[1]} SIP/2.0", "INVITE", 1, sdp,
                   to=f"<sip:{SERVICE}@127.0.0.1>", extra="Privacy: id\r\nContent-Type: application/sdp\r\n")

    def _send(self, start: str, method: str, cseq: int, body: str = "", *, to: str, extra: str = "") -> None:
        self.sip.sendto((f"{start}\r\nVia: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                         f"Max-Forwards: 70\r\nFrom: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={self.tag}\r\n"
                         f"To: {to}\r\nCall-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
                         f"Contact: <sip:anonymous@127.0.0.1:{self.port}>\r\n{extra}"
                         f"Content-Length: {len(body)}\r\n\r\n{body}").encode(), self.node)

    def receive(self) -> None:
        data = self.sip.recv(65535).decode(errors="replace")
        head, _, body = data.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), value.strip())
        if lines[0].startswith("SIP/2.0 "):
            status = int(lines[0].split()[1])
            if "INVITE" in headers.get("cseq", "") and status >= 200:
                self.final_status = status
                if status == 200:
                    to = headers.get("to") or headers.get("t")
                    contact = re.search(r"<([^>]+)>", headers.get("contact") or headers.get("m", "")).group(1)
                    self._send(f"ACK {contact} SIP/2.0", "ACK", 1, to=to)
                    if not self.answered:
                        self.answered = True
                        media = re.search(r"m=audio (\d+)", body)
                        self.type_pins(int(media.group(1)))
                else:
                    self.ended = True
        elif lines[0].startswith("BYE "):
            reply = "".join(f"{name}: {headers[name.lower()]}\r\n" for name in ("Via", "From", "To", "Call-ID", "CSeq"))
            self.sip.sendto(f"SIP/2.0 200 OK\r\n{reply}Content-Length: 0\r\n\r\n".encode(), self.node)
            self.ended = True

    def type_pins(self, node_rtp_port: int) -> None:
        """Every PIN and its hash as RFC 4733 events: a start, a continuation and three end packets each."""
        for digit in "".join(pin + "#" for pin in self.pins):
            event = 11 if digit == "#" else int(digit)
            packets = [(build_telephone_event(event, False, 10, 160), True),
                       (build_telephone_event(event, False, 10, 320), False)]
            packets += [(build_telephone_event(event, True, 10, 480), False)] * 3
            for payload, marker in packets:
                self.rtp.sendto(build_rtp(EVENT_PT, self._seq, self._ts, 0x5EED, payload, marker=marker),
                                ("127.0.0.1", node_rtp_port))
                self._seq += 1
            self._ts += 1600


def run_calls(calls: list[AttackCall], deadline: float) -> None:
    """Drive the calls until each is ended, or the deadline."""
    for call in calls:
        call.invite()
    while time.monotonic() < deadline and not all(c.ended for c in calls):
        open_ = [c for c in calls if not c.ended]
        ready, _, _ = select.select([c.sip for c in open_], [], [], 0.2)
        for call in open_:
            if call.sip in ready:
                call.receive()


@pytest.mark.slow
def test_parallel_pin_guessing_locks_the_source_and_refuses_the_right_pin(tmp_path):
    """Six parallel calls from one address typing 18 wrong PINs get 4 looked up, all end locked out;
    then the right PIN is refused while locked; one lockout audit row; the node keeps serving."""
    node = start_node(tmp_path, agents=["sip:agent@127.0.0.1:9"], profile={"withheld": '"pin"'},
                      sections={"pin": {"max_failures": "4", "carrier_max_failures": "4", "window_s": "600",
                                        "lockout_s": "600"}}).follow()
    try:
        node.topup(CALLER, "10")
        [(pin,)] = node.rows("select pin from accounts where number = ?", CALLER)
        wrong = [p for p in ("111111", "222222", "333333", "444444") if p != pin][:WRONG_PER_CALL]
        before = resources(node.proc.pid)
        started = time.monotonic()
        guesses = [AttackCall(node.sip_port, wrong) for _ in range(PARALLEL)]
        run_calls(guesses, started + BOUND_S * 0.6)
        right = [AttackCall(node.sip_port, [pin])]
        run_calls(right, started + BOUND_S)
        took_s = time.monotonic() - started
        after = resources(node.proc.pid)
        for call in guesses + right:
            call.close()
        assert all(c.ended for c in guesses + right), "a call was not ended within the bound"
        records = node.records(count=PARALLEL + 1)
        # which guessing call reaches the limit depends on timing: one that typed its three wrong PINs before
        # the others may end "pin_wrong"; every other call, and the right PIN after them, ends locked out
        reasons = [r["end_reason"] for r in records]
        assert set(reasons[:-1]) <= {"pin_locked", "pin_wrong"} and "pin_locked" in reasons[:-1], reasons
        assert reasons[-1] == "pin_locked", reasons
        assert all(r["caller"] is None and r["charge_cents"] == 0 for r in records)
        looked_up = node.rows("select count(*) from pin_attempts where outcome != 'right'")[0][0]
        assert looked_up == 4
        # a call ended by the lock may still be settling a PIN it typed before (its lookup, then "wrong"):
        # the lockout's audit row comes with the fourth wrong one
        settle_by = time.monotonic() + 5.0
        while node.rows("select count(*) from pin_attempts where outcome = 'pending'")[0][0] and \
                time.monotonic() < settle_by:
            time.sleep(0.05)
        assert [tuple(r) for r in node.rows("select outcome, count(*) from pin_attempts group by outcome")] == \
            [("wrong", 4)]
        audit = node.rows("select actor, source, action, subject from audit where action = 'pin_lockout'")
        assert [tuple(r) for r in audit] == [(audit[0]["actor"], "127.0.0.1", "pin_lockout", "source 127.0.0.1")]
        assert node.balance_cents(CALLER) == 1100
        assert node.proc.poll() is None
        report("pin_guessing", f"{PARALLEL} parallel calls from one address typing {PARALLEL * WRONG_PER_CALL} "
               f"wrong PINs, then the right PIN, in {took_s:.1f} s: {looked_up} looked up, "
               f"{reasons.count('pin_locked')} of {PARALLEL + 1} calls locked out, right PIN refused", before, after)
    finally:
        node.stop()
