"""The node's media with ``[media] workers = 1`` against the same in process (``workers = 0``), in one run.

**Calls** (``--calls``, at ``--cps``): the calls of ``bench/media_call.py`` (the
carrier's offer answered, our offer to the agent and its answer 0.1 s later,
the minutes announced to the caller, one second of call, the close) on the
real reactor in real time, without RTP from the peers: the relay's work is
silence fill and the announcement's frames, which move to the worker.  Printed:
the main process's CPU per call in each mode and their ratio (the issue's aim:
at most 0.5 for the whole node at 100 calls/s; this is the media part alone),
and the worker's own CPU per call (from ``/proc``).

**Relay** (``--relay-calls`` bridged calls, both legs PCMA, for
``--relay-seconds``): a generator process (the carrier and the agent of every
call, 50 packets a second each way, reading what it gets) sends to the relay's
ports; the relaying CPU (the node's with ``workers = 0``; the worker's and the
node's with one worker) per packet relayed, over the same window (read when the
counters change: a worker's reach the node every 2 s).  The issue's aim: at most
1.1x the in-process relay's.

    .venv/bin/python bench/media_workers.py [--calls 1000] [--cps 100] [--relay-calls 50] [--repeat 2]

Writes ``bench/results/media_workers.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import reactor  # noqa: E402
from twisted.internet.defer import inlineCallbacks  # noqa: E402
from twisted.internet.task import deferLater  # noqa: E402

from b2bua.callmedia import CallMediaFactory  # noqa: E402
from b2bua.callports import Announcement, Say  # noqa: E402
from media.engine import LocalEngine  # noqa: E402
from media.player import Player  # noqa: E402
from media.relay import Relay  # noqa: E402
from media.workers import WorkerEngine, WorkerSettings, spawn_process  # noqa: E402

from bench.media_call import AGENT_ANSWER, ANSWER_AFTER_S, CALL_S, CARRIER_OFFER  # noqa: E402

PORTS = (43000, 46999)
SETTINGS = WorkerSettings("127.0.0.1", 30, prompt_sets=(("en", ""),), log_level="warn")


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@inlineCallbacks
def run(engine, calls: int, cps: float, sink_port: int):
    """The calls on ``engine``; (main CPU s, wall s)."""
    factory = CallMediaFactory(reactor, engine)
    offer = CARRIER_OFFER.format(port=sink_port).encode()
    answer = AGENT_ANSWER.format(port=sink_port).encode()
    minutes = Announcement(Say.MINUTES, minutes=5)

    def one(i: int) -> None:
        media = factory.for_call(f"call-{i}", "en")
        media.check_offer(offer)
        media.answer_for_a(offer)
        media.announce(minutes)
        media.offer_for_b()
        reactor.callLater(ANSWER_AFTER_S, media.b_answered, answer)
        reactor.callLater(ANSWER_AFTER_S + CALL_S, media.close)

    c0, t0 = time.process_time(), time.monotonic()
    for i in range(calls):
        due = t0 + i / cps
        wait = due - time.monotonic()
        if wait > 0:
            yield deferLater(reactor, wait, lambda: None)
        one(i)
    yield deferLater(reactor, ANSWER_AFTER_S + CALL_S + 0.3, lambda: None)
    return time.process_time() - c0, time.monotonic() - t0


#: the carriers and agents: binds 2 sockets a call, prints their ports, reads the relay's, sends 20 ms frames
GENERATOR = r"""
import json, select, socket, sys, time
calls, seconds = int(sys.argv[1]), float(sys.argv[2])
socks = []
for _ in range(2 * calls):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); s.setblocking(False)
    socks.append(s)
print(json.dumps([s.getsockname()[1] for s in socks]), flush=True)
targets = json.loads(sys.stdin.readline())
payload = bytes(160)
seq, start = 0, time.monotonic()
sent = got = 0
ep = select.epoll()
for s in socks:
    ep.register(s.fileno(), select.EPOLLIN)
by_fd = {s.fileno(): s for s in socks}
while time.monotonic() - start < seconds:
    for s, port in zip(socks, targets):
        s.sendto(b"\x80\x08" + (seq & 0xFFFF).to_bytes(2, "big") + (seq * 160 & 0xFFFFFFFF).to_bytes(4, "big")
                 + port.to_bytes(4, "big") + payload, ("127.0.0.1", port))
        sent += 1
    seq += 1
    due = start + seq * 0.02
    while True:
        left = due - time.monotonic()
        for fd, _ in ep.poll(max(0.0, left)):
            try:
                while True:
                    by_fd[fd].recv(2048); got += 1
            except BlockingIOError:
                pass
        if left <= 0:
            break
print(json.dumps({"sent": sent, "got": got}), flush=True)
"""


@inlineCallbacks
def fresh(engine, cpu_of):
    """(CPU, counters) at the moment the counters change: a worker's arrive every 2 s, and the CPU is read with
    them, so that both windows are the same."""
    last = engine.counters().packets_relayed
    while True:
        yield deferLater(reactor, 0.002, lambda: None)
        counters = engine.counters()
        if counters.packets_relayed != last:
            return cpu_of(), counters


#: the generator's seconds around the measured window: 0.5 s to bind, 1.0 s to latch, 1.0 s to end, and up to a
#: worker's stats interval (2 s) waited by the first :func:`fresh`
RELAY_MARGIN_S = 4.5


def relay_seconds(text: str) -> float:
    """``--relay-seconds``: the generator's run, which must leave a measured window after RELAY_MARGIN_S."""
    seconds = float(text)
    if seconds <= RELAY_MARGIN_S:
        raise argparse.ArgumentTypeError(f"must be more than {RELAY_MARGIN_S} s (the unmeasured set-up and end), "
                                         f"not {text}")
    return seconds


@inlineCallbacks
def run_relay(engine, calls: int, seconds: float, cpu_of):
    """Bridge ``calls`` calls on ``engine``, let the generator talk; (CPU s, packets relayed) over the window."""
    gen = subprocess.Popen([sys.executable, "-c", GENERATOR, str(calls), str(seconds)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    peer_ports = json.loads(gen.stdout.readline())
    factory = CallMediaFactory(reactor, engine)
    media, targets = [], []
    for i in range(calls):
        m = factory.for_call(f"call-{i}", "en")
        m.answer_for_a(CARRIER_OFFER.format(port=peer_ports[2 * i]).encode())
        m.offer_for_b()
        m.b_answered(AGENT_ANSWER.format(port=peer_ports[2 * i + 1]).encode())
        a_port, _, b_port, _ = m.ports
        targets += [a_port, b_port]
        media.append(m)
    yield deferLater(reactor, 0.5, lambda: None)        # the worker has bound and configured them
    gen.stdin.write(json.dumps(targets) + "\n")
    gen.stdin.flush()
    yield deferLater(reactor, 1.0, lambda: None)        # latched, steady
    before_cpu, before = yield fresh(engine, cpu_of)
    yield deferLater(reactor, seconds - RELAY_MARGIN_S, lambda: None)
    after_cpu, after = yield fresh(engine, cpu_of)
    yield deferLater(reactor, 1.0, lambda: None)
    gen.wait(10)
    for m in media:
        m.close()
    return after_cpu - before_cpu, after.packets_relayed - before.packets_relayed


@inlineCallbacks
def main(args):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    rows = []
    for _ in range(args.repeat):
        row = {}
        local = LocalEngine(Relay(reactor, "127.0.0.1", *PORTS, 30), Player(reactor))
        local.load_prompts(SETTINGS.prompt_sets, ())
        local_cpu, _ = yield run(local, args.calls, args.cps, sink.getsockname()[1])
        relay_cpu, relay_packets = yield run_relay(local, args.relay_calls, args.relay_seconds, time.process_time)
        local.close()
        workers = WorkerEngine(reactor, SETTINGS, *PORTS, 1, spawn_process(reactor))
        yield workers.start()
        pid = workers.clients[0].pid
        w0 = _proc_cpu_s(pid)
        main_cpu, _ = yield run(workers, args.calls, args.cps, sink.getsockname()[1])
        worker_cpu = _proc_cpu_s(pid) - w0
        w_relay_cpu, w_relay_packets = yield run_relay(workers, args.relay_calls, args.relay_seconds,
                                                       lambda: _proc_cpu_s(pid) + time.process_time())
        workers.close()
        row.update(local_main_us=local_cpu / args.calls * 1e6, worker_main_us=main_cpu / args.calls * 1e6,
                   worker_process_us=worker_cpu / args.calls * 1e6,
                   relay_local_us_per_packet=relay_cpu / max(1, relay_packets) * 1e6,
                   relay_workers_us_per_packet=w_relay_cpu / max(1, w_relay_packets) * 1e6)
        rows.append(row)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["main_ratio"] = med["worker_main_us"] / med["local_main_us"]
    med["sum_ratio"] = (med["worker_main_us"] + med["worker_process_us"]) / med["local_main_us"]
    med["relay_ratio"] = med["relay_workers_us_per_packet"] / med["relay_local_us_per_packet"]
    print(f"media CPU per call ({args.calls} calls at {args.cps:g}/s, median of {args.repeat}):")
    print(f"  workers = 0: main {med['local_main_us']:8.1f} us (reference)")
    print(f"  workers = 1: main {med['worker_main_us']:8.1f} us  x{med['main_ratio']:.2f} of the reference;"
          f"  worker {med['worker_process_us']:.1f} us;  both x{med['sum_ratio']:.2f}")
    print(f"CPU per relayed packet ({args.relay_calls} calls, PCMA both ways):")
    print(f"  workers = 0: {med['relay_local_us_per_packet']:.2f} us (reference)")
    print(f"  workers = 1: {med['relay_workers_us_per_packet']:.2f} us, worker and node  x{med['relay_ratio']:.2f}")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "media_workers.json"), "w") as f:
        json.dump({"args": vars(args), "median": med, "runs": rows}, f, indent=1)
    sink.close()

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--cps", type=float, default=100.0)
    ap.add_argument("--relay-calls", type=int, default=50)
    ap.add_argument("--relay-seconds", type=relay_seconds, default=12.0)
    ap.add_argument("--repeat", type=int, default=2)
    parsed = ap.parse_args()
    done = main(parsed)
    done.addErrback(lambda f: f.printTraceback())
    done.addBoth(lambda _: reactor.stop())
    reactor.run()
