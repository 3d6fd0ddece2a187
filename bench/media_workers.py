"""The node's main-process CPU per call for its media, in process (``workers = 0``) against one media worker.

The calls of ``bench/media_call.py`` (the carrier's offer answered, our offer to
the agent and its answer 0.1 s later, the minutes announced to the caller, one
second of call, the close) started at ``--cps`` a second on the real reactor in
real time, first with a :class:`media.engine.LocalEngine` (the reference, the
same run), then with a :class:`media.workers.WorkerEngine` of one real worker
process.  The peers send no RTP: the relay's work is silence fill and the
announcement's frames, which move to the worker.

Printed and written to ``bench/results/media_workers.json``: the main process's
CPU per call in each mode and their ratio (the issue's aim: at most 0.5 for the
whole node at 100 calls/s; this is the media part alone), and the worker's own
CPU per call (from ``/proc``), so the two sides add up.

    .venv/bin/python bench/media_workers.py [--calls 1000] [--cps 100] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
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
SETTINGS = WorkerSettings("127.0.0.1", 30, prompt_sets=(("en", ""),))


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


@inlineCallbacks
def main(args):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    rows = []
    for _ in range(args.repeat):
        local = LocalEngine(Relay(reactor, "127.0.0.1", *PORTS, 30), Player(reactor))
        local.load_prompts(SETTINGS.prompt_sets, ())
        local_cpu, _ = yield run(local, args.calls, args.cps, sink.getsockname()[1])
        local.close()
        workers = WorkerEngine(reactor, SETTINGS, *PORTS, 1, spawn_process(reactor, "warn"))
        yield workers.start()
        pid = workers.clients[0].pid
        w0 = _proc_cpu_s(pid)
        main_cpu, wall = yield run(workers, args.calls, args.cps, sink.getsockname()[1])
        worker_cpu = _proc_cpu_s(pid) - w0
        workers.close()
        rows.append({"local_main_us": local_cpu / args.calls * 1e6, "worker_main_us": main_cpu / args.calls * 1e6,
                     "worker_process_us": worker_cpu / args.calls * 1e6, "wall_s": wall})
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["main_ratio"] = med["worker_main_us"] / med["local_main_us"]
    med["sum_ratio"] = (med["worker_main_us"] + med["worker_process_us"]) / med["local_main_us"]
    print(f"media CPU per call ({args.calls} calls at {args.cps:g}/s, median of {args.repeat}):")
    print(f"  workers = 0: main {med['local_main_us']:8.1f} us (reference)")
    print(f"  workers = 1: main {med['worker_main_us']:8.1f} us  x{med['main_ratio']:.2f} of the reference;"
          f"  worker {med['worker_process_us']:.1f} us;  both x{med['sum_ratio']:.2f}")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "media_workers.json"), "w") as f:
        json.dump({"args": vars(args), "median": med, "runs": rows}, f, indent=1)
    sink.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--cps", type=float, default=100.0)
    ap.add_argument("--repeat", type=int, default=2)
    parsed = ap.parse_args()
    done = main(parsed)
    done.addErrback(lambda f: f.printTraceback())
    done.addBoth(lambda _: reactor.stop())
    reactor.run()
