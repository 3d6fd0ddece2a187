"""A call's media work, alone: CPU per call of b2bua.callmedia + media.relay for the bench's calls.

What ``bench/cps.py`` asks of the media per call, without SIP, billing or SIPp:
the carrier's offer checked and answered (leg a), our offer to the agent and
its answer (leg b), one second of call during which neither peer sends RTP (as
in the bench: both streams filled with silence, ~74 frames per call), RTCP
every 5 s, and the close (RTCP BYE, four ports freed).  Calls start at
``--cps`` a second on a ``task.Clock`` driven in 20 ms steps, so the relay's
timer sees as many open calls as the real node does; the sockets are real
(our RTP goes to a bound sink socket nobody reads: the kernel drops what its
buffer cannot hold, as it does for a peer that does not listen).

The reference in the same run is the floor for the same system calls: the
same number of ``sendto`` of 172-byte datagrams and RTCP-sized datagrams, and
four UDP sockets bound, registered in an epoll set and closed per call, in a
plain loop.  ``over floor`` is what the Python around them costs per call.

    .venv/bin/python bench/media_call.py [--calls 4000] [--cps 100] [--repeat 3]

Prints CPU microseconds per call (median of the repeats, each phase apart) and
writes ``bench/results/media_call.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet.testing import MemoryReactorClock  # noqa: E402

from b2bua.callmedia import CallMediaFactory, PromptLibraries  # noqa: E402
from media.engine import LocalEngine  # noqa: E402
from media.player import Player  # noqa: E402
from media.relay import Relay  # noqa: E402

TICK_S = 0.02
CALL_S = 1.0
ANSWER_AFTER_S = 0.1          # the agent's 200 (with its SDP) this long after the INVITE

CARRIER_OFFER = ("v=0\r\no=carrier 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                 "t=0 0\r\nm=audio {port} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
                 "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")
AGENT_ANSWER = ("v=0\r\no=agent 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                "t=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n")


def _cpu() -> float:
    return time.process_time()


def run_media(calls: int, cps: float, port_base: int, sink_port: int) -> dict:
    """The calls through the real code; CPU seconds per phase and the packets sent."""
    reactor = MemoryReactorClock()
    relay = Relay(reactor, "127.0.0.1", port_base, port_base + 3999, 30)
    factory = CallMediaFactory(reactor, LocalEngine(relay, Player(reactor), PromptLibraries()))
    offer = CARRIER_OFFER.format(port=sink_port).encode()
    answer = AGENT_ANSWER.format(port=sink_port).encode()
    every = max(1, round(1 / (cps * TICK_S)))          # ticks between calls (cps <= 50)
    per_tick = max(1, round(cps * TICK_S))             # calls per tick (cps >= 50)
    pending: list[tuple[float, object]] = []            # (answer at, media)
    ending: list[tuple[float, object]] = []             # (close at, media)
    phases = {"setup": 0.0, "answer_b": 0.0, "ticks": 0.0, "close": 0.0}
    started = ended = tick = 0
    while ended < calls:
        now = reactor.seconds()
        c0 = _cpu()
        if started < calls and tick % every == 0:
            for _ in range(min(per_tick, calls - started)):
                media = factory.for_call(f"call-{started}", "en")
                media.check_offer(offer)
                media.answer_for_a(offer)
                media.offer_for_b()
                pending.append((now + ANSWER_AFTER_S, media))
                started += 1
        c1 = _cpu()
        while pending and pending[0][0] <= now:
            _, media = pending.pop(0)
            media.b_answered(answer)
            ending.append((now + CALL_S, media))
        c2 = _cpu()
        while ending and ending[0][0] <= now:
            _, media = ending.pop(0)
            media.close()
            ended += 1
        c3 = _cpu()
        reactor.advance(TICK_S)
        c4 = _cpu()
        phases["setup"] += c1 - c0
        phases["answer_b"] += c2 - c1
        phases["close"] += c3 - c2
        phases["ticks"] += c4 - c3
        tick += 1
    counters = relay.counters()
    factory.close()
    return {"phases": phases, "silence": counters.packets_silence, "rtcp": counters.rtcp_sent}


def run_floor(calls: int, silence: int, rtcp: int, port_base: int, sink_port: int) -> float:
    """The same system calls in a plain loop: CPU seconds."""
    ep = select.epoll()
    sink = ("127.0.0.1", sink_port)
    frame = b"\x80\x08" + b"\x00" * 170
    report = b"\x81\xc8" + b"\x00" * 66
    per_call = silence // calls
    c0 = _cpu()
    rtcp_left = rtcp
    for i in range(calls):
        socks = []
        port = port_base + 2 * (i % 1000)
        for p in (port, port + 1, port + 2000, port + 2001):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.bind(("127.0.0.1", p))
            ep.register(s.fileno(), select.EPOLLIN)
            socks.append(s)
        send = socks[0].sendto
        for _ in range(per_call):
            send(frame, sink)
        for _ in range(min(4, rtcp_left)):
            socks[1].sendto(report, sink)
            rtcp_left -= 1
        for s in socks:
            ep.unregister(s.fileno())
            s.close()
    c1 = _cpu()
    ep.close()
    return c1 - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--cps", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--port-base", type=int, default=12000)
    args = ap.parse_args()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink_port = sink.getsockname()[1]
    rows = []
    for _ in range(args.repeat):
        m = run_media(args.calls, args.cps, args.port_base, sink_port)
        floor = run_floor(args.calls, m["silence"], m["rtcp"], args.port_base, sink_port)
        total = sum(m["phases"].values())
        rows.append({"total_us": total / args.calls * 1e6, "floor_us": floor / args.calls * 1e6,
                     **{f"{k}_us": v / args.calls * 1e6 for k, v in m["phases"].items()},
                     "silence_per_call": m["silence"] / args.calls, "rtcp_per_call": m["rtcp"] / args.calls})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["over_floor_us"] = med["total_us"] - med["floor_us"]
    print(f"media per call ({args.calls} calls at {args.cps:g}/s, median of {args.repeat}):")
    print(f"  silence frames {med['silence_per_call']:.1f}  RTCP {med['rtcp_per_call']:.2f}")
    for k in ("setup", "answer_b", "ticks", "close"):
        print(f"  {k:10} {med[k + '_us']:8.1f} us")
    print(f"  {'total':10} {med['total_us']:8.1f} us   floor (same syscalls, plain loop) {med['floor_us']:.1f} us"
          f"   over floor {med['over_floor_us']:.1f} us")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "media_call.json"), "w") as f:
        json.dump({"args": vars(args), "median": med, "runs": rows}, f, indent=1)
    sink.close()


if __name__ == "__main__":
    main()
