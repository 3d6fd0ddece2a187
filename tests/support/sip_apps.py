"""Two minimal SIP applications on the endpoint's transaction-user API: a peer for the transport tests and SIPp.

* :class:`EchoUas` answers every INVITE with 200 and a minimal SDP, takes the
  ACK and the BYE (200), answers OPTIONS with 200 and other requests with 501.
* :class:`SimpleUac` places N calls to a target at a given rate, lets the core
  ACK the 2xx, sends BYE after a hold time, and counts what succeeded.

Run one on a real reactor (ports 0 pick free ones; a JSON line with the bound
ports is printed when listening, and one with the counts at the end)::

    python -m tests.support.sip_apps uas --address 127.0.0.1 --udp-port 0 --tcp-port 0
    python -m tests.support.sip_apps uac --target sip:service@127.0.0.1:5060 --calls 10 --rate 5 --hold-ms 500
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Callable

from b2bua.sip.timers import T2, TimerValues
from b2bua.sip.endpoint import (
    AckNeverCame, AckReceived, DialogEnded, RequestReceived, ResponseReceived, SipEndpoint, TransactionTimedOut,
    TransportFailed,
)

__all__ = ["EchoUas", "SimpleUac", "UacCounts", "minimal_sdp", "main"]


def minimal_sdp(address: str, rtp_port: int = 9, session_id: int = 1) -> bytes:
    """A one-stream audio SDP (PCMA, PCMU) on ``address``; port 9 (discard) when no media is meant to flow."""
    family = "IP6" if ":" in address else "IP4"
    return (f"v=0\r\no=prepaid {session_id} {session_id} IN {family} {address}\r\ns=-\r\n"
            f"c=IN {family} {address}\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 8 0\r\n"
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n").encode()


class EchoUas:
    """Answers calls and OPTIONS at once; counts what it saw.  Pass :meth:`on_event` to the transports."""

    def __init__(self, endpoint: SipEndpoint, now: Callable[[], float]) -> None:
        self.endpoint = endpoint
        self.now = now
        self.counts: dict[str, int] = {"invite": 0, "ack": 0, "bye": 0, "options": 0, "other": 0,
                                       "ack_never_came": 0}

    def on_event(self, event: object) -> None:
        if isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, AckReceived):
            self.counts["ack"] += 1
        elif isinstance(event, AckNeverCame):
            self.counts["ack_never_came"] += 1
            self.endpoint.request_in_dialog(event.dialog_id, "BYE", self.now())

    def _request(self, event: RequestReceived) -> None:
        method = event.request.method
        tid, now = event.transaction_id, self.now()
        if method == "INVITE":
            self.counts["invite"] += 1
            self.endpoint.respond(tid, 200, now, body=minimal_sdp(self.endpoint.local_host),
                                  content_type="application/sdp")
        elif method in ("BYE", "OPTIONS"):
            self.counts[method.lower()] += 1
            headers = [("Allow", ", ".join(sorted(self.endpoint.allowed_methods)))] if method == "OPTIONS" else []
            self.endpoint.respond(tid, 200, now, headers=headers)
        else:
            self.counts["other"] += 1
            self.endpoint.respond(tid, 501, now)


@dataclass
class UacCounts:
    started: int = 0
    answered: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass
class _Call:
    number: int
    invite_tid: str
    dialog_id: object = None
    bye_tid: str | None = None
    done: bool = False


class SimpleUac:
    """Places ``calls`` calls to ``target`` at ``rate_per_s`` (at most ``max_concurrent`` at once), holds each ``hold_s``.

    A call succeeds when its INVITE got a 2xx and its BYE a 2xx; anything else
    (a final non-2xx, a timeout, a failed transport) is a failure.  ``flush`` is
    the transports' :meth:`~b2bua.transport.SipTransports.flush` (we act from our own
    timers); ``on_done`` is called once with the counts.
    """

    def __init__(self, endpoint: SipEndpoint, clock, flush: Callable[[], None], *, target: str, calls: int,
                 rate_per_s: float = 10.0, hold_s: float = 1.0, max_concurrent: int = 50,
                 from_uri: str = "sip:uac@prepaid.invalid", on_done: Callable[[UacCounts], None] | None = None) -> None:
        self.endpoint = endpoint
        self.clock = clock
        self.flush = flush
        self.target = target
        self.calls = calls
        self.interval_s = 1.0 / rate_per_s
        self.hold_s = hold_s
        self.max_concurrent = max_concurrent
        self.from_uri = from_uri
        self.on_done = on_done
        self.counts = UacCounts()
        self._by_tid: dict[str, _Call] = {}
        self._active = 0
        self._next = None
        self._finished = False

    def start(self) -> None:
        self._tick()

    def _tick(self) -> None:
        self._next = None
        if self.counts.started < self.calls and self._active < self.max_concurrent:
            self._place()
            self.flush()
        if self.counts.started < self.calls:
            self._next = self.clock.callLater(self.interval_s, self._tick)

    def _place(self) -> None:
        number = self.counts.started
        self.counts.started += 1
        self._active += 1
        request = self.endpoint.make_request(
            "INVITE", self.target, from_=f"<{self.from_uri}>", to=f"<{self.target}>",
            body=minimal_sdp(self.endpoint.local_host), content_type="application/sdp")
        try:
            tid = self.endpoint.send_request(request, self.clock.seconds())
        except Exception as exc:  # an unreachable target URI
            self._fail(_Call(number, ""), f"send: {exc}")
            return
        self._by_tid[tid] = _Call(number, tid)

    def on_event(self, event: object) -> None:
        if isinstance(event, ResponseReceived):
            call = self._by_tid.get(event.transaction_id)
            if call is None or call.done:
                return
            status = event.response.status
            if event.transaction_id == call.invite_tid:
                if 200 <= status < 300:
                    call.dialog_id = event.dialog_id
                    self.counts.answered += 1
                    self.clock.callLater(self.hold_s, self._hang_up, call)
                elif status >= 300:
                    self._fail(call, f"INVITE {status}")
            elif status >= 200:
                self._succeed(call) if status < 300 else self._fail(call, f"BYE {status}")
        elif isinstance(event, (TransactionTimedOut, TransportFailed)):
            call = self._by_tid.get(event.transaction_id)
            if call is not None and not call.done:
                self._fail(call, f"{event.method} {type(event).__name__}")
        elif isinstance(event, DialogEnded) and event.reason == "bye received":
            for call in self._by_tid.values():
                if call.dialog_id == event.dialog_id and not call.done:
                    self._fail(call, "BYE from the peer")

    def _hang_up(self, call: _Call) -> None:
        if call.done:
            return
        try:
            call.bye_tid = self.endpoint.request_in_dialog(call.dialog_id, "BYE", self.clock.seconds())
        except Exception as exc:
            self._fail(call, f"BYE: {exc}")
        else:
            self._by_tid[call.bye_tid] = call
        self.flush()

    def _succeed(self, call: _Call) -> None:
        call.done = True
        self.counts.succeeded += 1
        self._ended()

    def _fail(self, call: _Call, why: str) -> None:
        call.done = True
        self.counts.failed += 1
        self.counts.failures[why] = self.counts.failures.get(why, 0) + 1
        self._ended()

    def _ended(self) -> None:
        self._active -= 1
        if self.counts.succeeded + self.counts.failed == self.calls and not self._finished:
            self._finished = True
            if self._next is not None and self._next.active():
                self._next.cancel()
            if self.on_done is not None:
                self.on_done(self.counts)

    @property
    def finished(self) -> bool:
        return self._finished


# ---- the command line -----------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.support.sip_apps", description=__doc__.split("\n\n")[0])
    p.add_argument("role", choices=("uas", "uac"))
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--udp-port", type=int, default=0, help="0: any free port; -1: no UDP")
    p.add_argument("--tcp-port", type=int, default=0, help="0: any free port; -1: no TCP")
    p.add_argument("--tls-port", type=int, default=-1, help="-1 (default): no TLS")
    p.add_argument("--tls-certificate", default="")
    p.add_argument("--tls-private-key", default="")
    p.add_argument("--tls-client-ca", default="")
    p.add_argument("--target", help="uac: the Request-URI (an IP address; ;transport=tcp for TCP)")
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--rate", type=float, default=10.0, help="uac: calls per second")
    p.add_argument("--hold-ms", type=int, default=1000)
    p.add_argument("--max-concurrent", type=int, default=50)
    p.add_argument("--t1-ms", type=int, default=500,
                   help="RFC 3261 T1 (the round-trip estimate; RFC 3261 allows a larger one on slow or lossy paths)")
    p.add_argument("--t2-ms", type=int, default=0,
                   help="RFC 3261 T2 (the cap of non-INVITE retransmit intervals); 0: 4 s, or T1 if larger")
    p.add_argument("--linger-ms", type=int, default=0,
                   help="uac: keep connections open this long after the last call (a peer may still be closing)")
    p.add_argument("--timeout-s", type=float, default=0.0, help="stop after this long (0: uas never, uac 120 s)")
    return p


def main(argv: list[str] | None = None, reactor=None) -> int:
    from b2bua.transport import SipTransports
    from b2bua.transport_tls import TlsFiles

    args = _parser().parse_args(argv)
    if reactor is None:
        from twisted.internet import reactor  # the process's reactor: this is the program, not a library
    t1_s = args.t1_ms / 1000
    endpoint = SipEndpoint(local_host=args.address, local_ports={}, user_agent=f"prepaid-{args.role}",
                           timer_values=TimerValues(t1=t1_s, t2=max(args.t2_ms / 1000 or T2, t1_s)))
    box: dict[str, object] = {}
    transports = SipTransports(reactor, endpoint, lambda e: box["app"].on_event(e),
                               tls=TlsFiles(args.tls_certificate, args.tls_private_key, args.tls_client_ca))
    for name, port in (("udp", args.udp_port), ("tcp", args.tcp_port), ("tls", args.tls_port)):
        if port >= 0:
            endpoint.local_ports[name] = getattr(transports, f"listen_{name}")(port, args.address)
    result = {"status": 0}

    def finish(counts: dict, linger_s: float = 0.0) -> None:
        print(json.dumps(counts), flush=True)
        if reactor.running:
            reactor.callLater(linger_s, reactor.stop)

    if args.role == "uas":
        app = EchoUas(endpoint, reactor.seconds)
        reactor.addSystemEventTrigger("before", "shutdown", lambda: print(json.dumps(app.counts), flush=True))
    else:
        if not args.target:
            print("uac needs --target", file=sys.stderr)
            return 2

        def done(counts: UacCounts) -> None:
            result["status"] = 0 if counts.failed == 0 else 1
            finish({"started": counts.started, "answered": counts.answered, "succeeded": counts.succeeded,
                    "failed": counts.failed, "failures": counts.failures}, args.linger_ms / 1000)
        app = SimpleUac(endpoint, reactor, transports.flush, target=args.target, calls=args.calls,
                        rate_per_s=args.rate, hold_s=args.hold_ms / 1000, max_concurrent=args.max_concurrent,
                        on_done=done)
        reactor.callWhenRunning(app.start)
    box["app"] = app
    timeout_s = args.timeout_s or (120.0 if args.role == "uac" else 0.0)
    if timeout_s:
        def give_up() -> None:
            result["status"] = 3
            if args.role == "uac":
                c = app.counts
                finish({"started": c.started, "answered": c.answered, "succeeded": c.succeeded,
                        "failed": c.failed + (c.started - c.succeeded - c.failed), "failures": c.failures,
                        "timed_out": True})
            else:
                reactor.stop()
        reactor.callLater(timeout_s, give_up)
    ports = {name: port for name, port in endpoint.local_ports.items()}
    print(json.dumps({"ready": True, "ports": ports}), flush=True)
    reactor.run()
    return int(result["status"])


if __name__ == "__main__":
    sys.exit(main())
