"""What the SIPp load benchmarks share: a process's CPU time, and the search for the highest clean rate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Generator


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
