"""Call rate and CPU per call of our B2BUA against sippy's, SIPp on both sides.

SIPp as the carrier (``bench_carrier.xml``: INVITE, ACK, 1 s of call, BYE) ->
the B2BUA under test -> SIPp as the agent (``bench_agent.xml``: 180, 200,
takes the BYE), all on 127.0.0.1.  Three B2BUAs, each measured the same way in
the same run:

* ``prepaid``: a real ``prepaid run`` (the example config on free ports, SQLite
  store) with 1000 callers topped up and called in turn, so billing opens, debits and settles a
  session and writes a call record for every call; its profile has
  ``answer_mode = "agent"`` (no announcement of ours: ring at once, answer the
  carrier with the agent), the same SIP flow as sippy's.  Media is anchored
  (four RTP/RTCP ports per call, silence sent where SIPp sends no audio).
* ``prepaid-announcing``: the whole product: it answers the carrier and speaks
  the minutes the credit buys (~2.1 s through the RTP relay) before it rings the
  agent, so its carrier holds 2.5 s longer and the agent still gets a 1 s call.
* ``sippy``: the reference, the B2BUA of the ``sippy`` package
  (``python -m sippy.b2bua``, ``--static_route`` to the agent), no billing, SDP
  passed through.

The aim (issue 3) compares ``prepaid`` with ``sippy``.

Two figures each:

* the highest clean rate: a probe of ``--calls`` calls at a rate is clean when
  the carrier has 0 failed calls and every call successful AND the agent side
  completed every call too (a B2BUA that drops the B-leg BYE still looks fine
  from the carrier's side).  The rate doubles from ``--start`` until a probe is
  not clean, then is bisected ``--steps`` times.
* CPU seconds per 1000 calls at a fixed 100 calls/s: the B2BUA process's
  utime+stime from ``/proc/<pid>/stat`` before and after a probe (the main
  process: with media workers, the signalling process), and beside it the
  node's total: its main process and every descendant (``loadkit.TreeCpu``).

Every SIPp run is bounded (``-m``, ``-timeout``). After a probe that is not
clean the B2BUA still holds some of its calls; the next probe waits until the
agent's port has been quiet for 17 s (at most 90 s), or those calls' INVITE and
CANCEL retransmissions would reach the next agent SIPp as new calls and spoil
every later probe (they did, before: one overloaded probe made all bisection
steps after it fail, for every B2BUA).  ``--quick`` uses 300-call
probes and 3 bisection steps (the full 5000-call probes take long on a shared
machine).  Prints both, the ratios (ours / sippy), and writes
``bench/results/cps.json``.

``--baseline PATH`` measures the prepaid B2BUAs of another checkout too (a git
worktree of the commit before a change), in the same run and the same way:
its node runs that checkout's code (``prepaid run`` started through a small
launcher that puts PATH first on ``sys.path``), on the same config, store,
SIPp scenarios and callers (so the baseline must take this checkout's example
config and store: compare with a commit whose config schema and migrations
are this one's).  The CPU probes of the two alternate
(``--rounds`` times each, the median counted), so that load from elsewhere on
the machine falls on both alike; then each one's highest clean rate, the two
searches in step (each step probes both, in alternating order).  Prints
ours / baseline for both figures.

``--workers 0,2`` measures the prepaid node again with ``[media] workers`` set
(where the config schema has the key; elsewhere each is reported skipped), and
prints each one's main-process CPU per call over sippy's (issue 18: at most
0.6 with media workers) and its total over today's node's (at most 1).
``--cpu-only`` runs the probes at a fixed 100 calls/s and no rate search.

    .venv/bin/python bench/cps.py [--quick] [--calls 5000] [--only prepaid|prepaid-announcing|sippy]...
    .venv/bin/python bench/cps.py --cpu-only --calls 1000 --only prepaid --only sippy --workers 0,2
    .venv/bin/python bench/cps.py --quick --only prepaid --baseline /tmp/prepaid-before
    PREPAID_BENCH_PROFILE=/tmp/prof .venv/bin/python bench/cps.py --cpu-only --calls 1000 --only prepaid --workers 1

``PREPAID_BENCH_PROFILE=DIR`` runs each prepaid node's main process under cProfile (``DIR/<label>.prof``); its
CPU figures are then the profiled ones (several times the real), for finding where the time goes only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sipp.harness import SCENARIOS, SIPP, free_port, start_sipp, subprocess_env  # noqa: E402
from tests.sipp.node import start_node  # noqa: E402

import loadkit  # noqa: E402  (bench/ is on sys.path when a bench runs as a script)
from loadkit import cpu_s  # noqa: E402

#: distinct callers, each with its own prepaid account, called in turn (as real traffic is: one caller
#: rarely has many calls at once, and calls of one account re-plan each other on every debit)
CALLERS = 1000
CALLER_FIRST = 49305000000          # +49 30 5000000..: Berlin landline numbers
CREDIT_CENTS = 100_000
SERVICE = "+493012345678"
HOLD_MS = 1000
#: ours answers the carrier first and speaks the minutes the credit buys (~2.1 s) before the agent is rung:
#: the carrier holds that much longer so that the agent too gets a 1 s call (more calls open at once for us)
ANNOUNCEMENT_MS = 2500
CPU_RATE = 100.0


#: a node of another checkout (``--baseline``): run as ``python -m`` this module, written into the node's
#: folder (its working directory, so first on ``sys.path``), which puts that checkout before ours
BASELINE_LAUNCHER = """import os, runpy, sys
ours = {ours!r}
sys.path[:] = [{root!r}] + [p for p in sys.path if os.path.realpath(p or ".") != ours]
runpy.run_module({entry!r}, run_name="__main__", alter_sys=True)
"""


#: ``PREPAID_BENCH_PROFILE=DIR``: each prepaid node runs under cProfile (its main process; media workers are not
#: profiled) through this launcher, and writes ``DIR/<label>.prof`` when it stops (read it with ``pstats``), and
#: ``DIR/<label>.prof.<thread name>`` for each other thread (the store's) when it ends
PROFILE_LAUNCHER = """import cProfile, runpy, threading
_run = threading.Thread.run
def _profiled_run(thread):      # every other thread (the store's) into a file of its own
    own = cProfile.Profile()
    own.enable()
    try:
        _run(thread)
    finally:
        own.disable()
        own.dump_stats({out!r} + "." + thread.name)
threading.Thread.run = _profiled_run
profile = cProfile.Profile()
profile.enable()
try:
    runpy.run_module({entry!r}, run_name="__main__", alter_sys=True)
finally:
    profile.disable()
    profile.dump_stats({out!r})
"""


class Prepaid:
    """Call control with billing: ``answer_mode = "agent"`` (no announcement of ours), the same SIP flow as sippy's.

    ``root``: another checkout whose code the node runs, started by its module ``entry`` (None: this one,
    started as the SIPp tests start it). ``workers``: ``[media] workers`` written into its config (None:
    not written; see :func:`loadkit.media_workers_sections`)."""
    name = "prepaid"
    hold_ms = HOLD_MS
    profile = {"answer_mode": '"agent"'}

    def __init__(self, workdir: Path, root: Path | None = None, entry: str = "b2bua.node.cli",
                 workers: int | None = None):
        media = loadkit.media_workers_sections(workers)      # WorkersUnsupported before anything starts
        self.label = (self.name + ("" if workers is None else f" w={workers}")
                      + ("" if root is None else "@baseline"))
        self.workdir = workdir / self.label.replace(" ", "_")
        self.workdir.mkdir()
        self.agent_port = free_port()
        launcher = {}
        if root is not None:
            (self.workdir / "baseline_node.py").write_text(BASELINE_LAUNCHER.format(
                ours=os.path.realpath(ROOT), root=str(Path(root).resolve()), entry=entry))
            launcher = {"entry": "baseline_node"}
        profile_dir = os.environ.get("PREPAID_BENCH_PROFILE")
        if profile_dir:
            out = Path(profile_dir).resolve() / (self.label.replace(" ", "_").replace("=", "") + ".prof")
            (self.workdir / "profiled_node.py").write_text(PROFILE_LAUNCHER.format(
                entry=launcher.get("entry", entry), out=str(out)))
            launcher = {"entry": "profiled_node"}
        self.node = start_node(self.workdir, agents=[f"sip:agent@127.0.0.1:{self.agent_port};transport=UDP"],
                               profile=self.profile, **launcher,
                               sections={"sip": {"probe_interval_s": "0", "max_call_duration_s": "600"}, **media})
        self.node.follow()                 # drain its log so a busy node never blocks on the pipe
        topup_callers(self.node.config, callers(), CREDIT_CENTS)
        self.port = self.node.sip_port
        self.pid = self.node.proc.pid

    def stop(self) -> None:
        self.node.stop()


class PrepaidAnnouncing(Prepaid):
    """The whole product: answers, speaks the minutes through the RTP relay, then rings the agent."""
    name = "prepaid-announcing"
    hold_ms = HOLD_MS + ANNOUNCEMENT_MS
    profile = {"announce_tariff": "false"}


class Sippy:
    name = "sippy"
    label = "sippy"
    hold_ms = HOLD_MS

    def __init__(self, workdir: Path):
        if importlib.util.find_spec("sippy") is None:
            raise RuntimeError("sippy is not installed: pip install -e '.[bench]'")
        self.workdir = workdir / "sippy"
        self.workdir.mkdir()
        self.agent_port = free_port()
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sippy.b2bua", "--foreground=on", "--sip_address=127.0.0.1",
             "--auth_enable=off", "--acct_enable=off",
             f"--sip_port={self.port}", f"--static_route=127.0.0.1:{self.agent_port}",
             f"--logfile={self.workdir / 'sippy.log'}", f"--pidfile={self.workdir / 'sippy.pid'}"],
            cwd=self.workdir, env=subprocess_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        if self.proc.poll() is not None:
            raise RuntimeError(f"sippy b2bua exited with {self.proc.returncode}")
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


B2BUAS = (Prepaid, PrepaidAnnouncing, Sippy)


def callers(count: int = CALLERS, first: int = 0) -> list[str]:
    """``count`` distinct callers' numbers, from the ``first``-th on."""
    return [f"+{CALLER_FIRST + i}" for i in range(first, first + count)]


def callers_csv(workdir: Path, count: int = CALLERS, first: int = 0) -> Path:
    """SIPp's injection file: one caller per call, in turn."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "callers.csv"
    path.write_text("SEQUENTIAL\n" + "".join(f"{number};\n" for number in callers(count, first)))
    return path


def topup_callers(config_path: Path, numbers: list[str], amount_cents: int) -> None:
    """Credit every caller on the node's store, through the store's own top-up (one process, inline store)."""
    from b2bua.node.commands.db import fired, open_store
    from b2bua.node.config import load_config
    config = load_config(str(config_path))
    profile = config.profiles["demo"]
    store = open_store(config)
    try:
        for number in numbers:
            fired(store.topup(profile.billing, number, amount_cents, source="manual",
                              external_ref=f"bench-{number}", actor="bench/cps.py"))
    finally:
        store.close()


def probe(b2bua, calls: int, rate: float, tag: str) -> dict:
    """One probe: ``calls`` calls at ``rate``; the counts of both SIPp sides and the B2BUA's CPU: its main
    process's (``cpu_s``) and that of all its processes (``tree_cpu_s``: with media workers, theirs too)."""
    workdir = b2bua.workdir / tag
    timeout_s = calls / rate + 30
    agent = start_sipp(str(SCENARIOS / "bench_agent.xml"), workdir, local_port=b2bua.agent_port, calls=calls,
                       timeout_s=timeout_s + 5, name="agent")
    time.sleep(0.3)
    tree = loadkit.TreeCpu(b2bua.pid)
    tree_before = tree.sample()
    before = cpu_s(b2bua.pid)
    started = time.monotonic()
    carrier = start_sipp(str(SCENARIOS / "bench_carrier.xml"), workdir, remote=f"127.0.0.1:{b2bua.port}",
                         calls=calls, rate=rate, timeout_s=timeout_s, name="carrier",
                         extra=("-s", SERVICE, "-d", str(b2bua.hold_ms), "-inf", str(callers_csv(workdir)),
                                "-key", "extra", "X-Bench: 1",
                                "-l", str(int(rate * 4) + 50)))
    c = carrier.wait()
    a = agent.wait()
    elapsed = time.monotonic() - started
    cpu = cpu_s(b2bua.pid) - before
    tree_cpu = tree.sample() - tree_before
    clean = c.failed == 0 and c.successful == calls and a.successful == calls
    drained_s = 0.0 if clean else drain_agent_port(b2bua.agent_port)
    row = {"rate": rate, "calls": calls, "clean": clean, "carrier_ok": c.successful, "carrier_failed": c.failed,
           "agent_ok": a.successful, "agent_failed": a.failed, "retransmissions": c.retransmissions,
           "cpu_s": round(cpu, 3), "tree_cpu_s": round(tree_cpu, 3), "processes": len(tree.pids),
           "elapsed_s": round(elapsed, 1), "drained_s": round(drained_s, 1)}
    print(f"  {b2bua.label:8} {rate:7.1f} cps x {calls}: {'clean' if clean else 'NOT clean'} "
          f"(carrier ok {c.successful} failed {c.failed}, agent ok {a.successful}, retrans {c.retransmissions}, "
          f"cpu {cpu:.2f} s, all {len(tree.pids)} processes {tree_cpu:.2f} s"
          f"{f', drained {drained_s:.0f} s' if drained_s else ''})", flush=True)
    return row


#: the agent port must have been quiet this long before the next probe (longer than the gap between
#: INVITE retransmissions at 16 s), and at most this long is waited (Timer B/F: 32 s after the last request)
QUIET_S = 17.0
DRAIN_MAX_S = 90.0


def drain_agent_port(port: int, quiet_s: float = QUIET_S, max_s: float = DRAIN_MAX_S) -> float:
    """Listen on the agent's port (its SIPp is gone) until the B2BUA has sent nothing there for ``quiet_s``.

    After a probe that was not clean, the B2BUA still has calls of it: INVITEs retransmitted to the agent,
    CANCELs when their ring timeout ends them. The next probe's agent SIPp would take each as a new
    call (and count it against its ``-m``), so one bad probe spoiled every later one. Returns the seconds
    waited; nothing is answered."""
    started = time.monotonic()
    last = started
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.settimeout(0.5)
        while time.monotonic() - last < quiet_s and time.monotonic() - started < max_s:
            try:
                sock.recvfrom(65536)
                last = time.monotonic()
            except socket.timeout:
                pass
    return time.monotonic() - started


def highest_clean_rate(b2bua, calls: int, start: float, limit: float, steps: int) -> tuple[float, list]:
    """Double from ``start`` until a probe fails (or ``limit``), then bisect ``steps`` times."""
    return loadkit.highest_clean_rate(lambda c, r, tag: probe(b2bua, c, r, tag), calls, start, limit, steps)


def measure(cls, workdir: Path, args, **options) -> dict:
    """CPU per call at CPU_RATE, then (unless ``--cpu-only``) the highest clean rate; ``options`` go to
    ``cls`` (``workers`` for ours)."""
    b2bua = cls(workdir, **options)
    rate, rows = None, []
    try:
        print(f"{b2bua.label}: CPU at {CPU_RATE:.0f} calls/s", flush=True)
        cpu_row = probe(b2bua, args.calls, CPU_RATE, "cpu")
        if not args.cpu_only:
            print(f"{b2bua.label}: highest clean rate", flush=True)
            rate, rows = highest_clean_rate(b2bua, args.calls, args.start, args.limit, args.steps)
    finally:
        b2bua.stop()
    return {"clean_cps": rate, "cpu_s_per_1000_calls": round(cpu_row["cpu_s"] / cpu_row["calls"] * 1000, 3),
            "tree_cpu_s_per_1000_calls": round(cpu_row["tree_cpu_s"] / cpu_row["calls"] * 1000, 3),
            "cpu_probe_clean": cpu_row["clean"], "probes": rows, "cpu_probe": cpu_row}


def clean_rates_in_step(b2buas: tuple, args) -> dict[str, tuple[float, list]]:
    """Each one's highest clean rate, the searches run in step: at each step every B2BUA still searching is
    probed once, in turns that alternate, so that load from elsewhere falls on all alike."""
    searches = {b.label: loadkit.rate_search(args.start, args.limit, args.steps) for b in b2buas}
    rates = {label: next(search) for label, search in searches.items()}
    rows: dict[str, list] = {b.label: [] for b in b2buas}
    found: dict[str, tuple[float, list]] = {}
    step = 0
    print(f"highest clean rate: {', '.join(b.label for b in b2buas)} in step", flush=True)
    while len(found) < len(b2buas):
        for b2bua in (b2buas if step % 2 == 0 else tuple(reversed(b2buas))):
            if b2bua.label in found:
                continue
            row = probe(b2bua, args.calls, rates[b2bua.label], f"r{len(rows[b2bua.label])}")
            rows[b2bua.label].append(row)
            try:
                rates[b2bua.label] = searches[b2bua.label].send(row["clean"])
            except StopIteration as done:
                found[b2bua.label] = (done.value, rows[b2bua.label])
        step += 1
    return found


def measure_against(cls, workdir: Path, args) -> dict:
    """Ours and the baseline's node, both up at once: ``--rounds`` CPU probes each, alternating; then each
    one's highest clean rate. Returns both, and ours / baseline."""
    ours = cls(workdir)
    before = None
    try:
        before = cls(workdir, root=args.baseline, entry=args.baseline_entry)
        cpu: dict[str, list] = {ours.label: [], before.label: []}
        for i in range(args.rounds):
            for b2bua in ((before, ours) if i % 2 == 0 else (ours, before)):
                print(f"{b2bua.label}: CPU at {CPU_RATE:.0f} calls/s (round {i + 1})", flush=True)
                cpu[b2bua.label].append(probe(b2bua, args.calls, CPU_RATE, f"cpu{i}"))
        out = {}
        found = clean_rates_in_step((before, ours), args)
        for b2bua in (before, ours):
            rate, rows = found[b2bua.label]
            per_1000 = [row["cpu_s"] / row["calls"] * 1000 for row in cpu[b2bua.label]]
            out[b2bua.label] = {"clean_cps": rate, "cpu_s_per_1000_calls": round(statistics.median(per_1000), 3),
                                "cpu_s_per_1000_calls_each": [round(x, 3) for x in per_1000],
                                "cpu_probe_clean": all(row["clean"] for row in cpu[b2bua.label]),
                                "probes": rows, "cpu_probes": cpu[b2bua.label]}
    finally:
        ours.stop()
        if before is not None:
            before.stop()
    a, b = out[ours.label], out[before.label]
    out["cpu_ratio_vs_baseline"] = round(a["cpu_s_per_1000_calls"] / b["cpu_s_per_1000_calls"], 3)
    out["rate_ratio_vs_baseline"] = round(a["clean_cps"] / b["clean_cps"], 3) if b["clean_cps"] else None
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300-call probes, 3 bisection steps")
    parser.add_argument("--calls", type=int, default=5000, help="calls per probe")
    parser.add_argument("--start", type=float, default=50.0, help="first rate tried (calls/s)")
    parser.add_argument("--limit", type=float, default=1600.0, help="highest rate tried")
    parser.add_argument("--steps", type=int, default=5, help="bisection steps")
    parser.add_argument("--only", choices=("prepaid", "prepaid-announcing", "sippy"), action="append",
                        help="measure only these (repeatable); default: all three")
    parser.add_argument("--keep", action="store_true", help="keep the SIPp logs (printed folder)")
    parser.add_argument("--baseline", type=Path, help="another checkout (the commit before a change): its prepaid "
                        "B2BUAs are measured beside ours in this run, and the ratios printed")
    parser.add_argument("--baseline-entry", help="the module of the baseline's `prepaid` command (default: "
                        "b2bua.node.cli where the baseline has it, else b2bua.cli, where it was before)")
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: CPU probes of each, alternating")
    parser.add_argument("--workers", default="", help="also measure the prepaid node with these [media] workers "
                        "(a comma list, e.g. 0,2), each beside today's node; refused where the config schema has "
                        "no [media] workers")
    parser.add_argument("--cpu-only", action="store_true", help=f"only the CPU probe at a fixed {CPU_RATE:.0f} "
                        "calls/s, no search for the highest clean rate")
    args = parser.parse_args()
    args.workers = [int(n) for n in args.workers.split(",") if n]
    if args.baseline is not None and args.baseline_entry is None:
        args.baseline_entry = "b2bua.node.cli" if (args.baseline / "b2bua" / "node" / "cli.py").exists() else "b2bua.cli"
    if args.quick:
        args.calls, args.steps = min(args.calls, 300), min(args.steps, 3)
    if SIPP is None:
        print("sipp is not installed (Debian package sip-tester)")
        return 1
    results: dict = {"calls_per_probe": args.calls, "agent_call_ms": HOLD_MS, "quick": args.quick,
                     "carrier_hold_ms": {cls.name: cls.hold_ms for cls in B2BUAS}}
    tmp = tempfile.mkdtemp(prefix="bench-cps-")
    try:
        for cls in B2BUAS:
            if not args.only or cls.name in args.only:
                if args.baseline is not None and cls is not Sippy:
                    results[f"{cls.name} vs baseline"] = against = measure_against(cls, Path(tmp), args)
                    results[cls.name] = against[cls.name]
                    results[f"{cls.name}@baseline"] = against[f"{cls.name}@baseline"]
                else:
                    results[cls.name] = measure(cls, Path(tmp), args)
                if cls is Prepaid:
                    for n in args.workers:
                        try:
                            results[f"prepaid w={n}"] = measure(cls, Path(tmp), args, workers=n)
                        except loadkit.WorkersUnsupported as refused:
                            print(f"prepaid w={n}: skipped, {refused}", flush=True)
                            results.setdefault("skipped", {})[f"prepaid w={n}"] = str(refused)
    finally:
        if args.keep:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    measured = [cls.name for cls in B2BUAS] + [f"prepaid w={n}" for n in args.workers]
    for name in measured:
        if name in results:
            r = results[name]
            rate = "-" if r["clean_cps"] is None else f"{r['clean_cps']:.1f}"
            total = r.get("tree_cpu_s_per_1000_calls")
            print(f"{name:18} clean rate {rate:>7} calls/s   CPU {r['cpu_s_per_1000_calls']:6.2f} s per 1000 calls "
                  f"(main process; all its processes {'-' if total is None else f'{total:.2f}'} s) at "
                  f"{CPU_RATE:.0f}/s{'' if r['cpu_probe_clean'] else ' (that probe was NOT clean)'}")
    for name in (cls.name for cls in B2BUAS):
        against = results.get(f"{name} vs baseline")
        if against is not None:
            base = results[f"{name}@baseline"]
            print(f"{name + '@baseline':18} clean rate {base['clean_cps']:7.1f} calls/s   CPU "
                  f"{base['cpu_s_per_1000_calls']:6.2f} s per 1000 calls (median of {args.rounds})")
            print(f"{name} / baseline: CPU per call {against['cpu_ratio_vs_baseline']} (aim <= 1.05), "
                  f"clean rate {against['rate_ratio_vs_baseline']} (aim >= 1)")
    if "prepaid" in results and "sippy" in results:
        ours, ref = results["prepaid"], results["sippy"]     # the aim: call control with billing vs sippy
        results["rate_ratio"] = (round(ours["clean_cps"] / ref["clean_cps"], 3)
                                 if ours["clean_cps"] is not None and ref["clean_cps"] else None)
        results["cpu_ratio"] = (round(ours["cpu_s_per_1000_calls"] / ref["cpu_s_per_1000_calls"], 3)
                                if ref["cpu_s_per_1000_calls"] else None)
        results["total_cpu_ratio"] = (round(ours["tree_cpu_s_per_1000_calls"] / ref["tree_cpu_s_per_1000_calls"], 3)
                                      if ours.get("tree_cpu_s_per_1000_calls") and
                                      ref.get("tree_cpu_s_per_1000_calls") else None)
        print(f"ratio (prepaid / sippy): clean rate {results['rate_ratio']} (aim >= 2), "
              f"main process's CPU per call {results['cpu_ratio']} (aim <= 0.5), all processes' "
              f"{results['total_cpu_ratio']}")
    for n in args.workers:           # issue 18: the signalling process and the node's total, with media workers
        mine, today, ref = results.get(f"prepaid w={n}"), results.get("prepaid"), results.get("sippy")
        if mine is None:
            continue
        if ref and ref["cpu_s_per_1000_calls"]:
            mine["main_cpu_ratio_to_sippy"] = round(mine["cpu_s_per_1000_calls"] / ref["cpu_s_per_1000_calls"], 3)
            print(f"prepaid w={n} / sippy: main process's CPU per call {mine['main_cpu_ratio_to_sippy']} "
                  f"(aim with media workers <= 0.6 at {CPU_RATE:.0f} calls/s)")
        if today and today.get("tree_cpu_s_per_1000_calls"):
            mine["total_cpu_ratio_to_today"] = round(mine["tree_cpu_s_per_1000_calls"]
                                                     / today["tree_cpu_s_per_1000_calls"], 3)
            print(f"prepaid w={n} / prepaid (no workers key): the node's total CPU per call "
                  f"{mine['total_cpu_ratio_to_today']} (aim <= 1)")
    loadkit.write_results("cps.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
