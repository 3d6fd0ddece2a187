"""Calls held per core: real two-way G.711 RTP through a node, ramped until loss or jitter says stop.

SIPp as the carrier (``tests/sipp/scenarios/bench_carrier.xml``, its SDP pointing at the load
generator's side-A socket) calls a real ``prepaid run`` (the example config on free ports, its own
SQLite store, a distinct topped-up caller per call, the default ``answer_mode``: it answers, speaks the
minutes the credit buys, then rings the agent); SIPp as the agent (``bench_agent.xml``, SDP pointing at
side B) answers; the calls are held.  The load generator (``bench/rtpload.py``, one Python process:
non-blocking sockets, a timer wheel) sends 50 packets a second of 172 bytes each way of every call from
the moment the node's leg first sends to it, and measures at the receivers: loss by sequence numbers,
p99 of the RFC 3550 jitter, and when each call's announcement (the first audible frame on the carrier's
side) arrived after SIPp saw the 200 to its INVITE.

The ramp: ``--start`` calls, then ``--step`` more at a time (set up at ``--cps``); at each level, once
every stream of every call is relayed (waited for at most 60 s), a settle second and a window of
``--seconds``; it stops at the first level with loss above 0.1 % or p99 jitter above 20 ms, or when the
generator itself could not keep up (it skipped more than 5 % of its send slots, being over 40 ms behind:
then it no longer offers the load asked for, and its own lag would be measured), or at ``--max-calls``
(1200 by default: the node's RTP range here, 45000-49999, holds 1250 calls), or when the next level
would end past ``--time-cap`` seconds (150 by default) of this configuration's ramp.  A level that fails is measured a second time with the same calls
(the machine is shared: one stall must not end the ramp); the second verdict stands.

The configurations, one after the other in the same run (``--only`` picks):

* ``node w=N``: the node with ``[media] workers = N``: 0 (the relay in the node's process) always,
  and 1, 2, 4 where the machine has that many cores (``--workers`` changes the list). ``workers`` is
  written into the config only where the node's config schema declares it: on a checkout without
  media workers, 0 is run without the key (that is what 0 means) and the others are reported skipped.
* ``rtpengine``: Debian's ``rtpengine`` (``rtpengine-daemon``, installed with apt-get when missing) in
  userspace forwarding (no kernel module), started on loopback by the bench (:mod:`rtpengine`), its
  calls set up over the ng protocol; ``--rtpengine-threads`` worker threads (1).
* ``plain``: the ceiling, a plain blocking socket loop in Python (``rtpload.py plain``).

For the node, SIPp and the announcement run too; the references carry the same RTP load only.

Figures per level, and per configuration: CPU per relayed packet (the CPU time of every process of the
relay: its main pid and all its descendants, read from ``/proc`` before and after the window, a process
that ended counting its last reading; over the packets the receivers got in the window), calls held per
core from it (1 / (CPU per packet x 100 packets a second)), calls held per core from the ramp (the last
clean level / the cores it used), RSS per call (the tree's resident memory above what it had with no
call, over the calls held), and the ratios to rtpengine and to the plain loop.  Per level also: the
generator's own CPU share and the share of the window it waited, runnable, for a CPU (other work on
the machine), the share of its send slots fired over 10 ms late (its sends carry their real
send time, so lateness is not counted as jitter) and skipped, and the machine's UDP receive drops in the
window (``/proc/net/snmp``; the generator's own sockets' drops are reported apart).  The machine's 2 cores are
shared with other work: the CPU per packet is the figure to compare, and only within one run.

    .venv/bin/python bench/capacity.py [--only node,rtpengine,plain] [--workers 0,1,2,4] [--start 100]
        [--step 150] [--max-calls 1200] [--seconds 3] [--time-cap 150] [--cps 50] [--keep]

Prints a table and writes ``bench/results/capacity.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sipp.harness import SCENARIOS, SIPP, free_port, start_sipp  # noqa: E402
from tests.sipp.node import start_node  # noqa: E402

import loadkit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)
import rtpengine  # noqa: E402
from cps import CREDIT_CENTS, PrepaidAnnouncing, SERVICE, callers, callers_csv, topup_callers  # noqa: E402
from rtpstats import (PROMPT_LIMIT_S, RampLimits, StepFigures, answer_times, prompt_figures,  # noqa: E402
                      ramp_verdict)

PACKETS_PER_CALL_S = 100          # 50 a second each way
RTP_PORT_MIN, RTP_PORT_MAX = 45000, 49999     # the relays' RTP ports (4 a call: 1250 calls)
SIPP_MEDIA_PORTS = iter(range(43000, 45000, 10))   # each SIPp's own -mp (it binds one though it sends none)
READY_WAIT_S = 60.0
RETRIED = ("loss", "jitter", "generator")   # a level stopped by these is measured a second time
SETTLE_S = 1.0
RTPLOAD = Path(__file__).resolve().parent / "rtpload.py"


class RtpLoad:
    """The generator process (``rtpload.py generator``): its side A and B ports, and a JSON line a command."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(RTPLOAD), "generator"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, cwd=ROOT)
        hello = json.loads(self.proc.stdout.readline() or b"{}")
        if "a" not in hello:
            self.close()
            raise RuntimeError("the RTP generator did not start")
        self.port_a, self.port_b = hello["a"], hello["b"]

    def ask(self, cmd: str, **fields) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# -- what carries the load ---------------------------------------------------------------------------

class NodeUnderTest:
    """A ``prepaid run`` with ``[media] workers`` (where given), SIPp carrier and agent, the calls held."""

    def __init__(self, label: str, workdir: Path, load: RtpLoad, workers: int | None, args) -> None:
        self.label = label
        self.workdir = workdir
        self.load = load
        self.args = args
        sections = {"sip": {"probe_interval_s": "0", "max_call_duration_s": "3600"},
                    "media": {"rtp_port_min": str(RTP_PORT_MIN), "rtp_port_max": str(RTP_PORT_MAX)}}
        for section, values in loadkit.media_workers_sections(workers).items():
            sections.setdefault(section, {}).update(values)
        self.agent_port = free_port()
        self.node = start_node(workdir, agents=[f"sip:agent@127.0.0.1:{self.agent_port};transport=UDP"],
                               profile=PrepaidAnnouncing.profile, sections=sections)
        self.node.follow()
        self.pid = self.node.proc.pid
        self.carriers: list = []
        self.hold_ms = int((args.time_cap + READY_WAIT_S + 60) * 1000)
        self.carrier_xml = workdir / "carrier.xml"
        self.agent_xml = workdir / "agent.xml"
        # the scenarios of bench/cps.py, their SDP pointing at the generator's sockets
        self.carrier_xml.write_text((SCENARIOS / "bench_carrier.xml").read_text()
                                    .replace("[media_port]", str(load.port_a)))
        self.agent_xml.write_text((SCENARIOS / "bench_agent.xml").read_text()
                                  .replace("[media_port]", str(load.port_b)))
        topup_callers(self.node.config, callers(args.max_calls), CREDIT_CENTS)
        self.agent = start_sipp(str(self.agent_xml), workdir / "agent", local_port=self.agent_port,
                                calls=args.max_calls, timeout_s=self.hold_ms / 1000 + 30, name="agent",
                                extra=("-mp", str(next(SIPP_MEDIA_PORTS))))
        self.held = 0

    def add_calls(self, n: int) -> None:
        workdir = self.workdir / f"carrier{len(self.carriers)}"
        csv = callers_csv(workdir, n, first=self.held)
        self.carriers.append(start_sipp(
            str(self.carrier_xml), workdir, remote=f"127.0.0.1:{self.node.sip_port}", calls=n,
            rate=self.args.cps, timeout_s=self.hold_ms / 1000 + 30, name="carrier",
            extra=("-s", SERVICE, "-d", str(self.hold_ms), "-inf", str(csv), "-key", "extra", "X-Bench: 1",
                   "-l", str(n), "-mp", str(next(SIPP_MEDIA_PORTS)),
                   "-trace_msg", "-message_file", str(workdir / "messages.log"))))
        self.held += n

    def answers(self) -> dict[int, float]:
        """Node's carrier-leg RTP port -> when SIPp saw the 200 to the INVITE (epoch seconds)."""
        found: dict[int, float] = {}
        for i in range(len(self.carriers)):
            path = self.workdir / f"carrier{i}" / "messages.log"
            if path.exists():
                found.update(answer_times(path.read_text(errors="replace")))
        return found

    def close(self) -> None:
        for sipp in self.carriers + [self.agent]:
            sipp.kill()
        self.node.stop()


class RtpEngineUnderTest:
    """Debian's rtpengine in userspace, its calls set up over ng between the generator's two sockets."""

    def __init__(self, label: str, workdir: Path, load: RtpLoad, args) -> None:
        self.label = label
        self.load = load
        self.engine = rtpengine.RtpEngine(str(workdir), RTP_PORT_MIN, RTP_PORT_MAX, threads=args.rtpengine_threads)
        self.engine.start()
        self.pid = self.engine.pid
        self.held = 0

    def add_calls(self, n: int) -> None:
        pairs = [self.engine.call(f"capacity-{self.held + i}", ("127.0.0.1", self.load.port_a),
                                  ("127.0.0.1", self.load.port_b)) for i in range(n)]
        self.load.ask("targets", pairs=pairs)
        self.held += n

    def answers(self) -> dict[int, float]:
        return {}

    def close(self) -> None:
        self.engine.stop()


class PlainUnderTest:
    """The plain blocking socket loop (``rtpload.py plain``): the ceiling of a Python relay."""

    def __init__(self, label: str, workdir: Path, load: RtpLoad, args) -> None:
        self.label = label
        self.load = load
        self.proc = subprocess.Popen([sys.executable, str(RTPLOAD), "plain", f"127.0.0.1:{load.port_a}",
                                      f"127.0.0.1:{load.port_b}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     cwd=ROOT)
        self.pid = self.proc.pid
        self.held = 0

    def add_calls(self, n: int) -> None:
        self.proc.stdin.write(json.dumps({"cmd": "add", "calls": n}).encode() + b"\n")
        self.proc.stdin.flush()
        self.load.ask("targets", pairs=json.loads(self.proc.stdout.readline())["pairs"])
        self.held += n

    def answers(self) -> dict[int, float]:
        return {}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- the ramp ------------------------------------------------------------------------------------------

def wait_ready(load: RtpLoad, held: int) -> tuple[dict, float]:
    """Wait (at most READY_WAIT_S) until both streams of every call are relayed; the last status, seconds."""
    started = time.monotonic()
    while True:
        status = load.ask("status")
        if status["streams"] >= 2 * held and status["delivering"] >= 2 * held:
            break
        if time.monotonic() - started > READY_WAIT_S:
            break
        time.sleep(0.25)
    return status, time.monotonic() - started


def ramp(subject, load: RtpLoad, limits: RampLimits, args) -> dict:
    tree = loadkit.TreeCpu(subject.pid)
    tree.sample()
    rss_idle = loadkit.tree_rss_bytes(tree.pids)
    steps: list[dict] = []
    started = time.monotonic()
    next_held, stop = args.start, None
    retried = False
    while stop is None:
        step_started = time.monotonic()
        if subject.held < next_held:
            subject.add_calls(next_held - subject.held)
        status, ready_s = wait_ready(load, subject.held)
        time.sleep(SETTLE_S)
        cpu_before = tree.sample()
        drops_before = loadkit.udp_drops()
        wall_before = time.monotonic()
        load.ask("start")
        time.sleep(args.seconds)
        cpu_after = tree.sample()
        wall = time.monotonic() - wall_before
        w = load.ask("stop")
        drops = loadkit.udp_drops() - drops_before
        rss = loadkit.tree_rss_bytes(tree.pids)
        cpu = cpu_after - cpu_before
        row = {"held_calls": subject.held, "ready": status["delivering"] >= 2 * subject.held,
               "ready_s": round(ready_s, 1), "streams_delivering": status["delivering"],
               "processes": len(tree.pids), "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
               "cores_used": round(cpu / wall, 3),
               "cpu_us_per_packet": round(cpu / w["received"] * 1e6, 3) if w["received"] else None,
               "rss_bytes": rss, "rss_bytes_per_call": round((rss - rss_idle) / subject.held),
               # the machine's UDP receive drops in the window, the generator's own among them: the rest
               # were dropped at full receive buffers elsewhere (the relay's, or other work's)
               "machine_udp_drops": drops,
               **{k: w[k] for k in ("loss", "jitter_p99_ms", "jitter_p50_ms", "jitter_max_ms", "expected",
                                    "received", "streams", "streams_silent", "generator_cpu_share",
                                    "generator_waiting_share", "generator_late_share", "generator_skipped_share",
                                    "generator_socket_drops")}}
        steps.append(row)
        figures = StepFigures(subject.held, w["loss"], w["jitter_p99_ms"], w["generator_skipped_share"])
        stop = ramp_verdict(figures, limits, subject.held + args.step, time.monotonic() - started,
                            time.monotonic() - step_started)
        row["retry"] = retried
        print(f"{subject.label:<12}{subject.held:>6}{w['loss'] * 100:>9.3f}{w['jitter_p99_ms'] or 0:>9.2f}"
              f"{row['cores_used'] * 100:>8.0f}%{row['cpu_us_per_packet'] or 0:>9.2f}"
              f"{row['rss_bytes_per_call'] / 1024:>9.1f}{w['generator_cpu_share'] * 100:>8.0f}%"
              f"{w['generator_waiting_share'] * 100:>6.0f}%{w['generator_late_share'] * 100:>7.1f}%"
              f"{w['generator_skipped_share'] * 100:>7.1f}%{drops:>7}  "
              f"{'' if row['ready'] else 'NOT READY '}{stop or ''}",
              flush=True)
        if stop in RETRIED and not retried:
            # a level that failed is measured once more with the same calls: on a shared machine one
            # stall of the generator or the relay (other work took the CPU) must not end the ramp
            retried, stop, next_held = True, None, subject.held
            continue
        retried = False
        next_held = subject.held + args.step
    return summarise(subject, load, steps, stop, limits)


def summarise(subject, load: RtpLoad, steps: list[dict], stop: str, limits: RampLimits) -> dict:
    clean = [s for s in steps if s["loss"] <= limits.loss_max and s["jitter_p99_ms"] is not None
             and s["jitter_p99_ms"] <= limits.jitter_p99_max_ms and s["ready"]
             and s["generator_skipped_share"] <= limits.generator_skipped_max]
    # the clean levels' median (an overloaded level's packets pile up in queues: its CPU per packet is not
    # the relay's cost); all levels where none was clean
    per_packet = ([s["cpu_us_per_packet"] for s in clean if s["cpu_us_per_packet"]]
                  or [s["cpu_us_per_packet"] for s in steps if s["cpu_us_per_packet"]])
    us = statistics.median(per_packet) if per_packet else None
    last = clean[-1] if clean else None
    out = {"steps": steps, "stopped_by": stop, "max_clean_held_calls": last["held_calls"] if last else 0,
           "cpu_us_per_packet": round(us, 3) if us else None,
           "calls_per_core_from_cpu": int(1e6 / (us * PACKETS_PER_CALL_S)) if us else None,
           "calls_per_core_held": (round(last["held_calls"] / last["cores_used"])
                                   if last and last["cores_used"] > 0.05 else None),
           "rss_bytes_per_call": last["rss_bytes_per_call"] if last else None}
    answers = subject.answers()
    if answers:
        out["prompts"] = prompt_figures(load.ask("prompts")["legs"], answers)
    return out


def configurations(args, cores: int) -> list[tuple[str, int | None]]:
    """(label, workers) of the node runs, and the references: workers above the cores are left out."""
    runs: list[tuple[str, int | None]] = []
    if "node" in args.only:
        for n in args.workers:
            if n <= cores or n == 0:
                runs.append((f"node w={n}", n))
            else:
                print(f"node w={n}: skipped, this machine has {cores} cores", flush=True)
    for ref in ("rtpengine", "plain"):
        if ref in args.only:
            runs.append((ref, None))
    return runs


def run_one(label: str, workers: int | None, workdir: Path, limits: RampLimits, args) -> dict:
    load = RtpLoad()
    subject = None
    try:
        if label.startswith("node"):
            subject = NodeUnderTest(label, workdir, load, workers, args)
        elif label == "rtpengine":
            subject = RtpEngineUnderTest(label, workdir, load, args)
        else:
            subject = PlainUnderTest(label, workdir, load, args)
        return ramp(subject, load, limits, args)
    finally:
        if subject is not None:
            subject.close()
        load.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="node,rtpengine,plain", help="which of node, rtpengine, plain")
    ap.add_argument("--workers", default="0,1,2,4", help="the node's [media] workers to run (those above the "
                    "machine's cores are skipped; 0 is the relay in the node's process)")
    ap.add_argument("--start", type=int, default=100, help="calls held at the first level")
    ap.add_argument("--step", type=int, default=150, help="calls added per level")
    ap.add_argument("--max-calls", type=int, default=1200, help="the most calls held (bound of the ramp)")
    ap.add_argument("--time-cap", type=float, default=150.0, help="seconds a configuration's ramp may take")
    ap.add_argument("--seconds", type=float, default=3.0, help="measuring window per level")
    ap.add_argument("--cps", type=float, default=50.0, help="the rate SIPp sets calls up at")
    ap.add_argument("--rtpengine-threads", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (SIPp logs, node config)")
    args = ap.parse_args()
    args.only = [x for x in args.only.split(",") if x]
    args.workers = [int(x) for x in args.workers.split(",") if x]
    if args.max_calls * 4 > RTP_PORT_MAX - RTP_PORT_MIN + 1:
        ap.error(f"--max-calls above {(RTP_PORT_MAX - RTP_PORT_MIN + 1) // 4}: the RTP range holds no more")
    cores = len(os.sched_getaffinity(0))
    limits = RampLimits(max_calls=args.max_calls, time_cap_s=args.time_cap)
    report: dict = {"cores": cores, "limits": limits.__dict__, "seconds": args.seconds, "start": args.start,
                    "step": args.step, "cps": args.cps, "load_before": os.getloadavg(),
                    "prompt_limit_s": PROMPT_LIMIT_S, "runs": {}, "skipped": {}}
    print(f"{cores} cores; ramp {args.start} + {args.step} calls a level up to {args.max_calls}, "
          f"{args.time_cap:g} s at most a configuration; stop at loss > {limits.loss_max * 100:g} % or p99 jitter "
          f"> {limits.jitter_p99_max_ms:g} ms")
    if "node" in args.only and SIPP is None:
        print("sipp is not installed (Debian package sip-tester): the node is skipped")
        args.only.remove("node")
    if "rtpengine" in args.only:
        why = rtpengine.ensure_installed()
        if why:
            print(f"rtpengine skipped: {why}")
            report["skipped"]["rtpengine"] = why
            args.only.remove("rtpengine")
    tmp = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    print(f"{'config':<12}{'calls':>6}{'loss %':>9}{'p99 ms':>9}{'CPU':>9}{'us/pkt':>9}{'KiB/call':>9}"
          f"{'gen CPU':>9}{'wait':>7}{'late':>8}{'skipped':>8}{'drops':>7}")
    try:
        for label, workers in configurations(args, cores):
            workdir = tmp / label.replace(" ", "_").replace("=", "")
            workdir.mkdir()
            try:
                report["runs"][label] = run_one(label, workers, workdir, limits, args)
            except loadkit.WorkersUnsupported as refused:
                print(f"{label}: skipped, {refused}", flush=True)
                report["skipped"][label] = str(refused)
            except RuntimeError as failed:          # a node that refused its config, a daemon that did not start
                print(f"{label}: FAILED, {failed}", flush=True)
                report["skipped"][label] = f"failed: {failed}"
    finally:
        if args.keep:
            print(f"work folder kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_summary(report)
    report["load_after"] = os.getloadavg()
    loadkit.write_results("capacity.json", report)
    return 0


def print_summary(report: dict) -> None:
    runs = report["runs"]
    print()
    print(f"{'config':<12}{'clean calls':>12}{'stopped by':>12}{'calls/core':>11}{'from CPU':>10}{'us/pkt':>8}"
          f"{'KiB/call':>9}{'x rtpengine':>12}{'x plain':>8}  prompt p99 ms")
    engine = runs.get("rtpengine", {}).get("cpu_us_per_packet")
    plain = runs.get("plain", {}).get("cpu_us_per_packet")
    for label, r in runs.items():
        us = r["cpu_us_per_packet"]
        r["cpu_ratio_to_rtpengine"] = round(us / engine, 3) if us and engine else None
        r["cpu_ratio_to_plain"] = round(us / plain, 3) if us and plain else None
        prompts = r.get("prompts") or {}
        print(f"{label:<12}{r['max_clean_held_calls']:>12}{r['stopped_by']:>12}{r['calls_per_core_held'] or '-':>11}"
              f"{r['calls_per_core_from_cpu'] or '-':>10}{us or 0:>8.2f}"
              f"{(r['rss_bytes_per_call'] or 0) / 1024:>9.1f}{r['cpu_ratio_to_rtpengine'] or '-':>12}"
              f"{r['cpu_ratio_to_plain'] or '-':>8}  {prompts.get('p99_ms', '-')}"
              + (f" ({prompts.get('unheard')} unheard, {prompts.get(f'late_over_{PROMPT_LIMIT_S:g}_s')} late)"
                 if prompts else ""))
    for label, why in report["skipped"].items():
        print(f"{label:<12} skipped: {why}")
    print(f"{report['cores']} cores, shared with other work (load average {report['load_before'][0]:.2f} before): "
          "the figures are noisy; compare ratios within this run")


if __name__ == "__main__":
    sys.exit(main())
