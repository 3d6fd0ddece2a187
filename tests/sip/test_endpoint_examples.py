"""Minimal transaction users on the endpoint, as the SIPp interop tests and call control use it.

Two endpoints talk over a simulated UDP network in virtual time (10 ms one way,
packets dropped by a seeded random source), with no reactor and no sockets:

* ``AnsweringUas`` - a small UAS that answers every INVITE 200 and takes the BYE;
* ``CallingUac`` - a small UAC that places calls and hangs up with BYE.

The point is how little TU code each needs, and that retransmissions carry
every call through packet loss with nothing left open afterwards.
"""

from __future__ import annotations

import heapq
import itertools
import random

from b2bua.sip.endpoint import (
    AckNeverCame, OpenCounts, RequestReceived, ResponseReceived, SipEndpoint, TransactionTimedOut,
)
from b2bua.sip.peer import Peer
from tests.support.sip_endpoint import counter_tokens

UAS_ADDR = Peer("udp", "127.0.0.1", 5060)
UAC_ADDR = Peer("udp", "127.0.0.1", 5070)


class AnsweringUas:
    """Answers every INVITE with 200 (SDP), every BYE and OPTIONS with 200."""

    def __init__(self, ep: SipEndpoint) -> None:
        self.ep = ep
        self.byes = 0

    def handle(self, now: float) -> None:
        for ev in self.ep.take_events():
            if isinstance(ev, RequestReceived):
                if ev.request.method == "INVITE":
                    self.ep.respond(ev.transaction_id, 200, now, body=b"v=0\r\n", content_type="application/sdp")
                else:
                    self.ep.respond(ev.transaction_id, 200, now)
                    self.byes += ev.request.method == "BYE"
            elif isinstance(ev, AckNeverCame):
                self.ep.request_in_dialog(ev.dialog_id, "BYE", now)


class CallingUac:
    """Places ``calls`` calls one after another; each is hung up with BYE ``hold_s`` after the 200."""

    def __init__(self, ep: SipEndpoint, calls: int, hold_s: float = 1.0) -> None:
        self.ep, self.left, self.hold_s = ep, calls, hold_s
        self.hangups: list[tuple[float, object]] = []
        self.completed = self.failed = 0
        self.byes: set[str] = set()

    def start_call(self, now: float) -> None:
        self.left -= 1
        invite = self.ep.make_request("INVITE", "sip:+493012345678@127.0.0.1:5060",
                                      from_="<sip:+4915112345678@127.0.0.1>", to="<sip:+493012345678@127.0.0.1>",
                                      body=b"v=0\r\n", content_type="application/sdp")
        self.ep.send_request(invite, now)

    def handle(self, now: float) -> None:
        for ev in self.ep.take_events():
            if isinstance(ev, ResponseReceived):
                if ev.transaction_id in self.byes:
                    if ev.response.status >= 200:
                        self.completed += 1
                        self._next(now)
                elif 200 <= ev.response.status < 300 and ev.response.cseq.method == "INVITE":
                    self.hangups.append((now + self.hold_s, ev.dialog_id))
                elif ev.response.status >= 300:
                    self.failed += 1
                    self._next(now)
            elif isinstance(ev, TransactionTimedOut):
                self.failed += 1
                self._next(now)
        for due, dialog_id in [h for h in self.hangups if h[0] <= now]:
            self.hangups.remove((due, dialog_id))
            self.byes.add(self.ep.request_in_dialog(dialog_id, "BYE", now))

    def _next(self, now: float) -> None:
        if self.left > 0:
            self.start_call(now)

    def next_deadline(self) -> float | None:
        return min((due for due, _ in self.hangups), default=None)


def run_network(calls: int, loss: float, seed: int, max_steps: int = 200_000):
    """Run a UAC against a UAS over a lossy simulated network until all calls end and 64*T1 has passed."""
    rng = random.Random(seed)
    uas_ep = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060}, new_token=counter_tokens("s"))
    uac_ep = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5070}, new_token=counter_tokens("c"))
    uas, uac = AnsweringUas(uas_ep), CallingUac(uac_ep, calls)
    owners = {UAS_ADDR: (uas_ep, uas), UAC_ADDR: (uac_ep, uac)}
    wire: list = []
    order = itertools.count()
    sent_packets = lost = 0
    now = 0.0
    uac.start_call(now)

    def flush(ep: SipEndpoint, source: Peer) -> None:
        nonlocal sent_packets, lost
        for out in ep.take_outgoing():
            sent_packets += 1
            if rng.random() < loss:
                lost += 1
                continue
            heapq.heappush(wire, (now + 0.01, next(order), out.data, out.peer, source))

    for _ in range(max_steps):
        flush(uac_ep, UAC_ADDR)
        flush(uas_ep, UAS_ADDR)
        candidates = [t for t in (uac_ep.next_deadline(), uas_ep.next_deadline(), uac.next_deadline()) if t is not None]
        if wire:
            candidates.append(wire[0][0])
        if not candidates:
            break
        now = max(now, min(candidates))
        while wire and wire[0][0] <= now:
            _, _, data, dest, source = heapq.heappop(wire)
            ep, tu = owners[dest]
            ep.receive(data, source, now)
            tu.handle(now)
        for ep, tu in owners.values():
            ep.handle_timer(now)
            tu.handle(now)
    return uas, uac, uas_ep, uac_ep, sent_packets, lost, now


def test_small_uas_and_uac_complete_every_call_without_loss():
    """20 calls, no loss: 20 complete, 20 BYEs reach the UAS, and both endpoints end with nothing open."""
    uas, uac, uas_ep, uac_ep, sent_packets, lost, _ = run_network(calls=20, loss=0.0, seed=1)
    assert (uac.completed, uac.failed, uas.byes) == (20, 0, 20)
    assert sent_packets == 20 * 6  # INVITE, 100, 200, ACK, BYE, 200: no retransmission
    assert uas_ep.open_counts() == OpenCounts(0, 0, 0)
    assert uac_ep.open_counts() == OpenCounts(0, 0, 0)


def test_retransmissions_carry_every_call_through_ten_percent_loss():
    """50 calls with 10% of packets dropped: every call completes, retransmissions happened, nothing stays open."""
    uas, uac, uas_ep, uac_ep, sent_packets, lost, _ = run_network(calls=50, loss=0.10, seed=7)
    assert lost > 10
    assert (uac.completed, uac.failed) == (50, 0)
    assert sent_packets > 50 * 6
    assert uas_ep.open_counts() == OpenCounts(0, 0, 0)
    assert uac_ep.open_counts() == OpenCounts(0, 0, 0)
    assert not uas_ep.dropped.get("internal error: Exception") and uas_ep.last_error is None
    assert uac_ep.last_error is None
    assert not uas_ep.layer._merge and not uac_ep.layer._merge  # the merged-request index forgets ended ones
