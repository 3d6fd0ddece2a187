"""Memory per held call of a real node (issue 18: at most 20 KB of node memory per held call).

A real ``prepaid run`` (the example config on free ports, SQLite store, as ``bench/cps.py`` starts it) with
its callers topped up; SIPp as the carrier (``bench_carrier.xml``: INVITE, ACK, the call held ``-d``, BYE)
and as the agent (``bench_agent.xml``: 180, 200, takes the BYE), all on 127.0.0.1. Media is anchored
(the node's relay ports, silence sent where SIPp sends none). The profile has ``answer_mode = "agent"``
(the flow of sippy's B2BUA, whose ~23 KB per call without media the issue names), or with
``--announcing`` the whole product (answers, speaks the minutes, then rings).

For each N of ``--calls`` (each bounded, 200 and 600 by default), one node:

1. a few warm-up calls (``--warmup``: pools and lazily built tables exist before the baseline; 800 also fill
   the header parsers' bounded text caches, and grow the heap as a burst of set-ups does);
2. ``before``: the node's RSS and Private_Dirty (``/proc/<pid>/smaps_rollup``, with its child processes:
   media workers count), once the warm-up calls are gone;
3. N calls placed at ``--rate`` and held; ``held``: the same figures ``--steady-s`` (34 s) after the node's
   ``prepaid_calls_active`` gauge says all N are up, when the set-up's transactions (64*T1) are over;
4. the calls end; ``after`` (what stays once they are gone: a leak shows here).

Per held call: (held - before) / N, in KB (1024 bytes). Kernel socket buffers are not in either figure.

``--by-site``: the node runs under tracemalloc (started by a small launcher before anything is imported,
so the node's code is unchanged); on SIGUSR1 it collects garbage and writes a snapshot. The bench diffs
the held snapshot against the one before and prints the top allocation sites per held call (by line, and
by file), and tracemalloc's own per-call total. tracemalloc slows the node: its figures are for finding
sites, the RSS run for the aim.

``--probe``: what tracemalloc does not see, in the node's own process (a launcher again): on SIGUSR2 its RSS by
kind of mapping, threads, descriptors, the header parsers' text cache sizes and pymalloc's arena figures
(``sys._debugmallocstats``), then the RSS after glibc's ``malloc_trim(0)``. At 200 calls after 10 warm-up
calls it showed the RSS per held call (37-38 KB) as ~24 KB of live pymalloc blocks (what tracemalloc
counts), ~9 KB of free blocks and ~3 KB of unused pools in arenas the burst's set-ups grew (their
transactions live 64*T1; pymalloc returns an arena only when it is empty, so the "after" RSS stays), and
~3 KB of glibc heap; no thread per call, 4 descriptors (RTP/RTCP of both legs), and malloc_trim gives
nothing back. After ``--warmup 800`` the same 200 held calls did not grow the RSS at all: they fit in the
space the warm-up's set-ups left, with ~21 KB of live blocks each (22.3 before the shared timers). The RSS
figure of a cold node is the high-water mark of its set-up burst; the live blocks are what a held call keeps.
``--workers N`` runs N media worker processes (their RSS summed in).

    .venv/bin/python bench/memory.py [--calls 200 --calls 600] [--by-site | --probe] [--workers 1] [--announcing]

Prints the figures and writes ``bench/results/memory.json`` (``memory-by-site.json`` with ``--by-site``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sipp.harness import SCENARIOS, SIPP, free_port, start_sipp  # noqa: E402
from tests.sipp.node import start_node  # noqa: E402

from cps import CALLERS, CREDIT_CENTS, SERVICE, callers, callers_csv, topup_callers  # noqa: E402
import loadkit  # noqa: E402

#: the issue's aim: node memory per held call, workers included, kernel socket buffers excluded
AIM_KB = 20.0
WARMUP_CALLS = 10
#: how long a node may take to start; under tracemalloc (``--by-site``) that many times more per frame kept
#: (with ``--frames 4`` the node took longer than the 20 s a plain one gets)
READY_TIMEOUT_S = 20.0
#: SIPp's media ports (-mp) and the node's RTP range: each bench process keeps to its own
CARRIER_MP, AGENT_MP = 50000, 51000
RTP_PORT_MIN, RTP_PORT_MAX = 52000, 57999

#: the node under tracemalloc: started before anything is imported; SIGUSR1 writes a snapshot
#: (garbage collected first) to snap-<n>.pickle in the working directory, renamed into place when whole, and
#: beside it census-<n>.json: the objects the collector tracks, counted by type (count, bytes by getsizeof), and
#: garbage-<n>.json: what that collection freed (cyclic garbage, kept by DEBUG_SAVEALL to be counted by type)
#: and how many collections of each generation had run
TRACE_LAUNCHER = """import gc, json, os, runpy, signal, sys, tracemalloc
tracemalloc.start({frames})
_taken = [0]
def _snapshot(signum, frame):
    _taken[0] += 1
    # what the collection frees (cyclic garbage waiting for the collector), by type, before it is freed
    stats = gc.get_stats()
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    gc.set_debug(0)
    garbage = {{}}
    for obj in gc.garbage:
        kind = type(obj)
        row = garbage.setdefault(kind.__module__ + "." + kind.__qualname__, [0, 0])
        row[0] += 1
        row[1] += sys.getsizeof(obj)
    gc.garbage.clear()
    gc.collect()
    with open("garbage-%d.json" % _taken[0], "w") as out:
        json.dump({{"types": garbage, "collections": [g["collections"] for g in stats]}}, out)
    census = {{}}
    for obj in gc.get_objects():
        kind = type(obj)
        name = kind.__module__ + "." + kind.__qualname__
        row = census.setdefault(name, [0, 0])
        row[0] += 1
        row[1] += sys.getsizeof(obj)
    with open("census-%d.json" % _taken[0], "w") as out:
        json.dump(census, out)
    path = "snap-%d.pickle" % _taken[0]
    tracemalloc.take_snapshot().dump(path + ".part")
    os.rename(path + ".part", path)
signal.signal(signal.SIGUSR1, _snapshot)
runpy.run_module("b2bua.node.cli", run_name="__main__", alter_sys=True)
"""

#: ``--probe``: what the RSS tracemalloc does not see. The node (no tracemalloc) on SIGUSR2 collects garbage and
#: writes probe-<n>.json: its RSS by kind of mapping ([heap], other anonymous, files), its threads, its open
#: descriptors, pymalloc's arenas (sys._debugmallocstats), then the same RSS after glibc's malloc_trim(0): what
#: trimming gives back is free memory the allocator kept, not memory a held call needs
PROBE_LAUNCHER = """import ctypes, gc, json, os, runpy, signal, sys, tempfile
_taken = [0]
def _rss():
    kinds = {"heap_kb": 0, "anon_kb": 0, "file_kb": 0}
    kind = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if not head[0].endswith(":"):
                name = head[5] if len(head) > 5 else ""
                kind = "heap_kb" if name == "[heap]" else ("file_kb" if name.startswith("/") else "anon_kb")
            elif head[0] == "Rss:":
                kinds[kind] += int(head[1])
    return kinds
def _mallocstats():
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        lines = out.read().splitlines()
    wanted = ("# arenas allocated current", "# bytes in allocated blocks", "# bytes in available blocks",
              "unused pools", "# bytes lost to pool headers", "# bytes lost to quantization")
    return [line for line in lines if line.startswith(wanted) or "unused pools" in line]
def _caches():
    # the header parsers' text caches (b2bua.sip.textcache): bounded, so their filling is not per call
    found = {}
    for module, names in (("b2bua.sip.headers", ("_parse_via_cached", "_parse_name_addr_cached",
                                                 "_parse_cseq_cached")), ("b2bua.sip.uri", ("_parse_uri_cached",))):
        for name in names:
            found[name] = getattr(sys.modules[module], name).cache_info().currsize
    return found
def _probe(signum, frame):
    gc.collect()
    _taken[0] += 1
    row = {"rss": _rss(), "threads": len(os.listdir("/proc/self/task")), "fds": len(os.listdir("/proc/self/fd")),
           "blocks": sys.getallocatedblocks(), "pymalloc": _mallocstats(), "caches": _caches()}
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    row["rss_after_trim"] = _rss()
    with open("probe-%d.json.part" % _taken[0], "w") as out:
        json.dump(row, out)
    os.rename("probe-%d.json.part" % _taken[0], "probe-%d.json" % _taken[0])
signal.signal(signal.SIGUSR2, _probe)
runpy.run_module("b2bua.node.cli", run_name="__main__", alter_sys=True)
"""


def memory_kb(pid: int) -> dict[str, int]:
    """RSS and Private_Dirty (KB) of ``pid`` and its child processes, from ``smaps_rollup``."""
    total = {"rss_kb": 0, "private_dirty_kb": 0}
    for each in [pid, *children(pid)]:
        try:
            text = Path(f"/proc/{each}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key == "Rss":
                total["rss_kb"] += int(rest.split()[0])
            elif key == "Private_Dirty":
                total["private_dirty_kb"] += int(rest.split()[0])
    return total


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (media worker processes), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


class Bench:
    """One node, its agent port, and the SIPp runs against it."""

    def __init__(self, workdir: Path, args) -> None:
        self.workdir = workdir
        self.args = args
        self.agent_port = free_port()
        profile = {"answer_mode": '"agent"'} if not args.announcing else {"announce_tariff": "false"}
        launcher = {}
        if args.by_site:
            (workdir / "traced_node.py").write_text(TRACE_LAUNCHER.format(frames=args.frames))
            launcher = {"entry": "traced_node"}
        elif args.probe:
            (workdir / "probed_node.py").write_text(PROBE_LAUNCHER)
            launcher = {"entry": "probed_node"}
        self.node = start_node(
            workdir, agents=[f"sip:agent@127.0.0.1:{self.agent_port};transport=UDP"], profile=profile, **launcher,
            ready_timeout_s=READY_TIMEOUT_S * (1 + args.frames if args.by_site else 1),
            sections={"sip": {"probe_interval_s": "0", "max_call_duration_s": "3600"},
                      "media": {"rtp_port_min": str(RTP_PORT_MIN), "rtp_port_max": str(RTP_PORT_MAX),
                                "silence_timeout_s": "3600", "workers": str(args.workers)}})
        self.node.follow()
        topup_callers(self.node.config, callers(), CREDIT_CENTS)
        self.pid = self.node.proc.pid
        self._snapshots = 0
        self._probes = 0

    def calls(self, n: int, hold_s: float, tag: str):
        """Start ``n`` calls held ``hold_s`` (both SIPps); returns (carrier, agent) to wait for."""
        workdir = self.workdir / tag
        timeout_s = n / self.args.rate + hold_s + 60
        agent = start_sipp(str(SCENARIOS / "bench_agent.xml"), workdir, local_port=self.agent_port, calls=n,
                           timeout_s=timeout_s + 5, name="agent", extra=("-mp", str(AGENT_MP)))
        time.sleep(0.3)
        carrier = start_sipp(str(SCENARIOS / "bench_carrier.xml"), workdir, remote=f"127.0.0.1:{self.node.sip_port}",
                             calls=n, rate=self.args.rate, timeout_s=timeout_s, name="carrier",
                             extra=("-s", SERVICE, "-d", str(int(hold_s * 1000)), "-inf", str(callers_csv(workdir)),
                                    "-key", "extra", "X-Bench: 1", "-l", str(n + 10), "-mp", str(CARRIER_MP)))
        return carrier, agent

    def active(self) -> int:
        metrics = self.node.metrics()
        return int(next((v for (name, _), v in metrics.items() if name == "prepaid_calls_active"), 0))

    def wait_active(self, n: int, timeout_s: float) -> int:
        """Wait (bounded) until the node holds ``n`` calls; returns how many it holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            seen = self.active()
            if seen == n or time.monotonic() > deadline:
                return seen
            time.sleep(0.25)

    def snapshot(self) -> tuple[tracemalloc.Snapshot, dict, dict] | None:
        """The node's tracemalloc snapshot, census by type and the garbage its collection freed (``--by-site``),
        else None."""
        if not self.args.by_site:
            return None
        self._snapshots += 1
        path = self._signalled(signal.SIGUSR1, f"snap-{self._snapshots}.pickle", "tracemalloc snapshot")
        census = json.loads((self.node.workdir / f"census-{self._snapshots}.json").read_text())
        garbage = json.loads((self.node.workdir / f"garbage-{self._snapshots}.json").read_text())
        return tracemalloc.Snapshot.load(str(path)), census, garbage

    def probe(self) -> dict | None:
        """``--probe``: the node's RSS by mapping, threads, descriptors, pymalloc arenas, RSS after malloc_trim."""
        if not self.args.probe:
            return None
        self._probes += 1
        return json.loads(self._signalled(signal.SIGUSR2, f"probe-{self._probes}.json", "probe").read_text())

    def _signalled(self, signum: int, name: str, what: str) -> Path:
        """Send the launcher ``signum`` and wait (bounded) for the file ``name`` it answers with."""
        path = self.node.workdir / name
        os.kill(self.pid, signum)
        deadline = time.monotonic() + 120
        while not path.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node wrote no {what}")
            time.sleep(0.2)
        return path

    def stop(self) -> None:
        self.node.stop()


def measure(n: int, args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-memory-{n}-"))
    bench = Bench(tmp, args)
    try:
        carrier, agent = bench.calls(args.warmup, 1.0, "warmup")
        carrier.wait(), agent.wait()
        # the warm-up calls settle; a long warm-up's transactions (64*T1) are over too, or their memory, freed
        # while the calls are held, would be counted against them
        time.sleep(args.steady_s if args.warmup > WARMUP_CALLS else args.settle_s)
        before = memory_kb(bench.pid)
        snap_before = bench.snapshot()
        probe_before = bench.probe()
        hold_s = n / args.rate + args.steady_s + args.hold_s
        carrier, agent = bench.calls(n, hold_s, "held")
        held_count = bench.wait_active(n, n / args.rate + 30)
        time.sleep(args.steady_s)          # the set-up's transactions are over: what a held call keeps
        held = memory_kb(bench.pid)
        snap_held = bench.snapshot()
        probe_held = bench.probe()
        c, a = carrier.wait(), agent.wait()
        time.sleep(args.settle_s)
        after = memory_kb(bench.pid)
        probe_after = bench.probe()
    finally:
        bench.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"  kept {tmp}")
    row = {"calls": n, "held": held_count, "carrier_ok": c.successful, "carrier_failed": c.failed,
           "agent_ok": a.successful, "before": before, "held_mem": held, "after": after,
           "rss_kb_per_call": round((held["rss_kb"] - before["rss_kb"]) / max(held_count, 1), 2),
           "private_dirty_kb_per_call": round((held["private_dirty_kb"] - before["private_dirty_kb"])
                                              / max(held_count, 1), 2),
           "rss_kb_left_after": after["rss_kb"] - before["rss_kb"]}
    print(f"  {n} calls ({held_count} held; carrier ok {c.successful} failed {c.failed}, agent ok {a.successful}): "
          f"RSS {before['rss_kb']} -> {held['rss_kb']} KB, {row['rss_kb_per_call']:.1f} KB per call; "
          f"Private_Dirty {row['private_dirty_kb_per_call']:.1f} KB per call; "
          f"{row['rss_kb_left_after']} KB more RSS once they ended", flush=True)
    if probe_before is not None:
        row["probe"] = {"before": probe_before, "held": probe_held, "after": probe_after}
        report_probe(row["probe"], held_count)
    if snap_before is not None and snap_held is not None:
        print("  (RSS under tracemalloc counts its traces and snapshots: see the run without --by-site)")
        row["tracemalloc"] = by_site(snap_before[0], snap_held[0], held_count, args.top, args.frames)
        row["tracemalloc"]["by_type"] = by_type(snap_before[1], snap_held[1], held_count, args.top)
        row["tracemalloc"]["garbage"] = garbage(snap_held[2], held_count, args.top)
    return row


def report_probe(probe: dict, n: int) -> None:
    """The node process's growth per held call by kind of mapping, before and after malloc_trim."""
    for stage in ("held", "after"):
        was, now = probe["before"], probe[stage]
        parts = ", ".join(f"{kind[:-3]} {(now['rss'][kind] - was['rss'][kind]) / max(n, 1):.1f}"
                          for kind in now["rss"])
        trimmed = ", ".join(f"{kind[:-3]} {(now['rss_after_trim'][kind] - was['rss_after_trim'][kind]) / max(n, 1):.1f}"
                            for kind in now["rss"])
        print(f"  probe {stage} - before, KB per held call: {parts}; after malloc_trim: {trimmed}; threads "
              f"{was['threads']} -> {now['threads']}, fds {was['fds']} -> {now['fds']}, pymalloc blocks "
              f"{(now['blocks'] - was['blocks']) / max(n, 1):.1f} per call")
        print("    text caches (entries): " + ", ".join(f"{name} {was['caches'][name]} -> {count}"
                                                       for name, count in now["caches"].items()))
        for line, was_line in zip(now["pymalloc"], was["pymalloc"]):
            print(f"    {was_line.split('=')[0].strip():40} {was_line.split('=')[-1].strip():>14} -> "
                  f"{line.split('=')[-1].strip():>14}")


def by_site(before: tracemalloc.Snapshot, held: tracemalloc.Snapshot, n: int, top: int, frames: int = 1) -> dict:
    """The growth between the snapshots per held call: total, and the top sites by line (by chain of calls when
    ``frames`` > 1) and by file."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    before, held = before.filter_traces(ignore), held.filter_traces(ignore)
    total = sum(s.size_diff for s in held.compare_to(before, "filename"))
    out: dict = {"bytes_per_call": round(total / max(n, 1)), "by_line": [], "by_file": []}
    print(f"  tracemalloc: {total / max(n, 1) / 1024:.1f} KB per held call", flush=True)
    # with more than one frame kept (--frames), a site is the whole chain of calls: who keeps what a line made
    line_key = "traceback" if frames > 1 else "lineno"
    for key, label in ((line_key, "by_line"), ("filename", "by_file")):
        stats = sorted(held.compare_to(before, key), key=lambda s: -s.size_diff)[:top]
        print(f"  top {top} sites {label.replace('_', ' ')} (bytes per call, blocks per call):")
        for stat in stats:
            frame = stat.traceback[0]
            where = (" <- ".join(f"{_short(f.filename)}:{f.lineno}" for f in stat.traceback) if key == "traceback"
                     else f"{_short(frame.filename)}:{frame.lineno}" if key == "lineno" else _short(frame.filename))
            per_call, blocks = stat.size_diff / max(n, 1), stat.count_diff / max(n, 1)
            print(f"    {per_call:8.0f} B {blocks:6.1f}  {where}")
            out[label].append({"site": where, "bytes_per_call": round(per_call), "blocks_per_call": round(blocks, 2)})
    return out


def by_type(before: dict, held: dict, n: int, top: int) -> list[dict]:
    """The objects (tracked by the collector) each held call adds, by type: count and shallow bytes."""
    rows = []
    for name, (count, size) in held.items():
        was_count, was_size = before.get(name, (0, 0))
        rows.append({"type": name, "per_call": round((count - was_count) / max(n, 1), 2),
                     "bytes_per_call": round((size - was_size) / max(n, 1))})
    rows.sort(key=lambda row: -row["bytes_per_call"])
    print(f"  top {top} types the collector tracks (objects per call, shallow bytes per call):")
    for row in rows[:top]:
        print(f"    {row['bytes_per_call']:8} B {row['per_call']:6.1f}  {row['type']}")
    return rows[:top]


def garbage(held: dict, n: int, top: int) -> dict:
    """What the collection before the held snapshot freed: cyclic garbage made since the one before (calls that
    make reference cycles leave them for a full collection, and their memory stays resident meanwhile)."""
    rows = sorted(({"type": name, "per_call": round(count / max(n, 1), 2), "bytes_per_call": round(size / max(n, 1))}
                   for name, (count, size) in held["types"].items()), key=lambda row: -row["bytes_per_call"])
    total = sum(size for _, size in held["types"].values())
    print(f"  cyclic garbage the held snapshot's collection freed: {total / max(n, 1):.0f} B per held call (shallow), "
          f"collections by generation so far {held['collections']}; top {top} types:")
    for row in rows[:top]:
        print(f"    {row['bytes_per_call']:8} B {row['per_call']:6.2f}  {row['type']}")
    return {"bytes_per_call": round(total / max(n, 1)), "collections": held["collections"], "types": rows[:top]}


def _short(filename: str) -> str:
    """A file's name from the repository root (or from site-packages / the stdlib)."""
    for anchor in (str(ROOT) + os.sep, "site-packages" + os.sep, "python3.11" + os.sep):
        if anchor in filename:
            return filename.split(anchor, 1)[1]
    return filename


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, action="append", help="calls held at once (repeatable; default 200, 600)")
    parser.add_argument("--rate", type=float, default=50.0, help="calls placed per second")
    parser.add_argument("--steady-s", type=float, default=34.0, help="the held figures this long after all calls are "
                        "up (the INVITE transactions' Timer L/J, 64*T1, are over: what a held call keeps)")
    parser.add_argument("--hold-s", type=float, default=10.0, help="calls are held this long after the held figures")
    parser.add_argument("--settle-s", type=float, default=3.0, help="quiet before the before/after figures")
    parser.add_argument("--by-site", action="store_true", help="tracemalloc in the node: top allocation sites per call")
    parser.add_argument("--frames", type=int, default=1, help="with --by-site: frames kept per allocation")
    parser.add_argument("--top", type=int, default=30, help="with --by-site: sites printed")
    parser.add_argument("--warmup", type=int, default=WARMUP_CALLS, help="calls made and ended before the "
                        "baseline (800 fill the header parsers' bounded text caches, whose filling is not per call)")
    parser.add_argument("--workers", type=int, default=0, help="[media] workers (their processes are summed in)")
    parser.add_argument("--probe", action="store_true", help="what tracemalloc does not see: RSS by mapping, "
                        "threads, descriptors, pymalloc arenas, and RSS after malloc_trim (node process only)")
    parser.add_argument("--announcing", action="store_true", help="the whole product: answer, announce, then ring")
    parser.add_argument("--keep", action="store_true", help="keep the node's and SIPp's folders")
    args = parser.parse_args()
    sizes = args.calls or [200, 600]
    if SIPP is None:
        print("sipp is not installed (Debian package sip-tester)")
        return 1
    if max(sizes) > CALLERS or args.warmup > CALLERS:
        print(f"at most {CALLERS} calls (one caller each)")
        return 2
    results: dict = {"aim_kb_per_call": AIM_KB, "by_site": args.by_site, "announcing": args.announcing,
                     "workers": args.workers,
                     "rate": args.rate, "runs": []}
    for n in sizes:
        print(f"{n} held calls, {args.workers} media workers{' (tracemalloc)' if args.by_site else ''}", flush=True)
        results["runs"].append(measure(n, args))
    print()
    for row in results["runs"]:
        line = (f"{row['calls']:5} calls: RSS {row['rss_kb_per_call']:6.1f} KB per call, Private_Dirty "
                f"{row['private_dirty_kb_per_call']:6.1f} KB per call")
        if "tracemalloc" in row:
            line += f", tracemalloc {row['tracemalloc']['bytes_per_call'] / 1024:6.1f} KB per call"
        print(f"{line}  (aim <= {AIM_KB:.0f} KB: ratio {row['rss_kb_per_call'] / AIM_KB:.2f})")
    loadkit.write_results("memory-by-site.json" if args.by_site else "memory.json", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
