"""What the SIPp load benchmarks share: a process's CPU time, and the search for the highest clean rate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def highest_clean_rate(probe: Callable[[int, float, str], dict], calls: int, start: float, limit: float,
                       steps: int) -> tuple[float, list]:
    """Double the rate from ``start`` until a probe is not clean (or ``limit``), then bisect ``steps`` times.

    ``probe(calls, rate, tag)`` runs one bounded probe and returns a row with a ``clean`` flag.
    """
    rows, good, bad, rate = [], 0.0, None, start
    while rate <= limit:
        row = probe(calls, rate, f"r{len(rows)}")
        rows.append(row)
        if not row["clean"]:
            bad = rate
            break
        good, rate = rate, rate * 2
    if bad is not None:
        for _ in range(steps):
            if bad - good < 1:
                break
            rate = round((good + bad) / 2, 1)
            row = probe(calls, rate, f"r{len(rows)}")
            rows.append(row)
            good, bad = (rate, bad) if row["clean"] else (good, rate)
    return good, rows
