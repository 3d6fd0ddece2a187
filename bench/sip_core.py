"""CPU of the sans-I/O SIP core per call: two endpoints, a UAC and a UAS, joined by a list, no reactor.

Each call is the 7 messages of one B2BUA leg: INVITE (with SDP), 100, 180,
200 (with SDP), ACK, and later BYE and its 200. Between them the driver does
what ``SipTransports`` does after every input: takes the output, hands the
events to the transaction user, and asks ``next_deadline()``; the timers run
as virtual time passes, so transactions end and are reaped as in a real run.
``--concurrent`` calls are in flight at once (their transactions share the
tables), and every call has its own Call-ID, tags and branches (nothing is
the same text as an earlier call's).

What is measured is process CPU for ``--calls`` calls (both endpoints, so the
work of one leg on each side: the two legs of a B2BUA call), best of
``--rounds`` rounds; printed as microseconds per call, and written to
``bench/results/sip_core.json``. The reference in the same run is the driver
alone: the same loop with the endpoints' work replaced by handing over
pre-built bytes, so the figure for the core is the difference.

    .venv/bin/python bench/sip_core.py [--calls 2000] [--concurrent 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from b2bua.sip.endpoint import AckReceived, RequestReceived, ResponseReceived, SipEndpoint  # noqa: E402
from b2bua.sip.peer import Peer  # noqa: E402

SDP = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       b"m=audio 30000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
       b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
UAC_PEER = Peer("udp", "127.0.0.1", 5070)
UAS_PEER = Peer("udp", "127.0.0.1", 5060)


class Scenario:
    """Two endpoints and the calls between them; ``run`` plays ``calls`` calls to the end."""

    def __init__(self, concurrent: int) -> None:
        self.uac = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5070})
        self.uas = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060})
        self.concurrent = concurrent
        self.now = 0.0
        self.messages = 0
        self.answered: list = []          # UAC dialog ids to hang up
        self.done = 0

    def _pump(self) -> None:
        """Carry output both ways and run the TUs until nothing moves; ask each side its deadline."""
        moved = True
        while moved:
            moved = False
            for ep, other, source in ((self.uac, self.uas, UAC_PEER), (self.uas, self.uac, UAS_PEER)):
                for out in ep.take_outgoing():
                    self.messages += 1
                    other.receive(out.data, source, self.now)
                    moved = True
                for event in ep.take_events():
                    self._on_event(ep, event)
                    moved = True
                ep.next_deadline()

    def _on_event(self, ep: SipEndpoint, event: object) -> None:
        if ep is self.uas:
            if isinstance(event, RequestReceived):
                if event.request.method == "INVITE":
                    ep.respond(event.transaction_id, 180, self.now)
                    ep.respond(event.transaction_id, 200, self.now, body=SDP, content_type="application/sdp")
                else:
                    ep.respond(event.transaction_id, 200, self.now)
            return
        if isinstance(event, ResponseReceived) and event.response.status == 200:
            if event.response.cseq.method == "INVITE":
                self.answered.append(event.dialog_id)
            else:
                self.done += 1

    def _timers(self) -> None:
        for ep in (self.uac, self.uas):
            deadline = ep.next_deadline()
            if deadline is not None and deadline <= self.now:
                ep.handle_timer(self.now)

    def run(self, calls: int) -> None:
        placed = 0
        while self.done < calls:
            for _ in range(min(self.concurrent, calls - placed)):
                request = self.uac.make_request("INVITE", "sip:service@127.0.0.1:5060",
                                                from_="<sip:+4915112345678@127.0.0.1>",
                                                to="<sip:+493012345678@127.0.0.1>",
                                                body=SDP, content_type="application/sdp")
                self.uac.send_request(request, self.now)
                placed += 1
            self._pump()
            self.now += 0.3
            self._timers()
            self._pump()
            hang_up, self.answered = self.answered, []
            for dialog_id in hang_up:
                self.uac.request_in_dialog(dialog_id, "BYE", self.now)
            self._pump()
            self.now += 0.7
            self._timers()
            self._pump()
        self.now += 64.0
        self._timers()
        self._pump()


def core_round(calls: int, concurrent: int) -> tuple[float, int]:
    scenario = Scenario(concurrent)
    start = time.process_time()
    scenario.run(calls)
    seconds = time.process_time() - start
    counts = (scenario.uac.open_counts(), scenario.uas.open_counts())
    assert all(c.transactions == 0 and c.dialogs == 0 for c in counts), counts
    return seconds, scenario.messages


def driver_round(calls: int, messages: list[bytes]) -> float:
    """The reference: the same hand-over of every message and a no-op per event, without the core."""
    sink: list[bytes] = []
    start = time.process_time()
    for _ in range(calls):
        for data in messages:
            sink.append(data)
        sink.clear()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    best, messages = float("inf"), 0
    ref = float("inf")
    for _ in range(args.rounds):
        seconds, messages = core_round(args.calls, args.concurrent)
        best = min(best, seconds)
        ref = min(ref, driver_round(args.calls, [b"x" * 600] * (messages // args.calls)))
    per_call_us = (best - ref) / args.calls * 1e6
    result = {"calls": args.calls, "concurrent": args.concurrent, "rounds": args.rounds,
              "messages_per_call": messages / args.calls, "core_us_per_call": round(per_call_us, 1),
              "driver_us_per_call": round(ref / args.calls * 1e6, 2)}
    print(f"SIP core, UAC + UAS endpoints, {messages / args.calls:.0f} messages per call, "
          f"{args.concurrent} calls in flight")
    print(f"  core  : {per_call_us:8.1f} us CPU per call (both sides; best of {args.rounds})")
    print(f"  driver: {ref / args.calls * 1e6:8.2f} us per call (reference, subtracted)")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "sip_core.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
