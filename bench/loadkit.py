"""What the SIPp load benchmarks share: a process's CPU time, and the search for the highest clean rate."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Generator


#: where every benchmark writes its figures as JSON
RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, results: dict) -> Path:
    """Write ``results`` to ``bench/results/<name>`` (indented JSON), say where, and return the path."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return out


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate_search(start: float, limit: float, steps: int) -> Generator[float, bool, float]:
    """The rates to probe, as a generator: it yields a rate, is sent whether that probe was clean, and returns
    the highest clean rate. Doubles from ``start`` until a probe is not clean (or ``limit``), then bisects
    ``steps`` times. Two searches can run in step (``bench/cps.py --baseline``)."""
    good, bad, rate = 0.0, None, start
    while rate <= limit:
        if not (yield rate):
            bad = rate
            break
        good, rate = rate, rate * 2
    if bad is not None:
        for _ in range(steps):
            if bad - good < 1:
                break
            rate = round((good + bad) / 2, 1)
            good, bad = (rate, bad) if (yield rate) else (good, rate)
    return good


def highest_clean_rate(probe: Callable[[int, float, str], dict], calls: int, start: float, limit: float,
                       steps: int) -> tuple[float, list]:
    """The highest clean rate of :func:`rate_search`, one probe after another.

    ``probe(calls, rate, tag)`` runs one bounded probe and returns a row with a ``clean`` flag.
    """
    rows: list = []
    search = rate_search(start, limit, steps)
    try:
        rate = next(search)
        while True:
            row = probe(calls, rate, f"r{len(rows)}")
            rows.append(row)
            rate = search.send(row["clean"])
    except StopIteration as done:
        return done.value, rows


def udp_drops() -> int:
    """The kernel's UDP receive drops (RcvbufErrors + InErrors) of the whole machine, from /proc/net/snmp."""
    lines = [l.split() for l in Path("/proc/net/snmp").read_text().splitlines() if l.startswith("Udp:")]
    row = dict(zip(lines[0][1:], (int(x) for x in lines[1][1:])))
    return row.get("RcvbufErrors", 0) + row.get("InErrors", 0)


# -- every process of a node: its main process and all its descendants ---------------------------------

def process_table(proc: Path = Path("/proc")) -> dict[tuple[int, int], tuple[int, float]]:
    """Every process now: ``(pid, start time in ticks) -> (parent pid, utime + stime in seconds)``.

    The start time is in the key so that a pid used again by a new process is a new process. A process that
    ends while the table is read is left out."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[tuple[int, int], tuple[int, float]] = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] is the state (field 3 of proc(5)): ppid is field 4, utime 14, stime 15, starttime 22
        table[(int(entry.name), int(fields[19]))] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


def descendants(parents: dict[int, int], root: int) -> set[int]:
    """``root`` and every pid whose chain of parents (``parents``: pid -> parent pid) leads to it."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class TreeCpu:
    """The CPU seconds (utime + stime) of a process and all its descendants, summed.

    Each :meth:`sample` reads the process table; a process of the tree that has ended since still counts
    what it had at its last reading (a worker that exits mid-step is not lost, nor counted twice: its time
    goes to its parent's cutime, which is not read). A descendant that started and ended between two
    samples is missed: sample at each step's edges. ``read_table`` is :func:`process_table` unless given."""

    def __init__(self, root: int, read_table: Callable[[], dict] = process_table) -> None:
        self.root = root
        self._read_table = read_table
        self._last: dict[tuple[int, int], float] = {}
        self.pids: set[int] = set()

    def sample(self) -> float:
        table = self._read_table()
        self.pids = descendants({pid: parent for (pid, _), (parent, _) in table.items()}, self.root)
        for key, (_, cpu) in table.items():
            if key[0] in self.pids:
                self._last[key] = cpu
        return sum(self._last.values())


def tree_rss_bytes(pids: set[int]) -> int:
    """The resident memory of these processes (VmRSS from /proc), summed; an ended one counts 0."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


# -- [media] workers, written into a node's config only where its schema has the key ------------------

class WorkersUnsupported(RuntimeError):
    """The node's config schema has no ``[media] workers`` (a checkout without media workers)."""


def media_workers_sections(workers: int | None) -> dict[str, dict[str, str]]:
    """The ``sections`` override of ``tests.sipp.node.write_config`` that sets ``[media] workers``.

    None: nothing is written (the node's default: the relay in its own process). A number is written only
    where ``b2bua.node.config.SCHEMA`` declares the key; elsewhere 0 writes nothing (the in-process relay is
    what 0 means) and any other number raises :class:`WorkersUnsupported`."""
    if workers is None:
        return {}
    from b2bua.node.config import SCHEMA
    media = next((s for s in SCHEMA.tables if s.name == "media"), None)
    if media is None or "workers" not in {f.name for f in media.fields}:
        if workers == 0:
            return {}
        raise WorkersUnsupported("this checkout's config schema has no [media] workers (media workers are not "
                                 "merged here): only the in-process relay (workers = 0) can be measured")
    return {"media": {"workers": str(workers)}}
