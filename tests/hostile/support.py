"""What every attack test prints: what it tried, and the node's memory and descriptors before and after.

An attack test starts a real ``prepaid run`` (``tests.sipp.node.start_node``), takes a
:class:`Resources` reading, attacks it (bounded, on loopback), reads again and
prints both with :func:`report`, so that a CI log shows what each attack cost the
node.  :func:`resources` reads ``/proc/PID``: resident memory in KiB and open file
descriptors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Resources:
    """A process's resident memory and open descriptors at one moment."""

    rss_kib: int
    fds: int


def resources(pid: int) -> Resources:
    """The resident set size (``VmRSS``) and the number of open descriptors of process ``pid``."""
    rss_kib = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
                break
    return Resources(rss_kib=rss_kib, fds=len(os.listdir(f"/proc/{pid}/fd")))


def report(attack: str, tried: str, before: Resources, after: Resources) -> str:
    """One line for the CI log: the attack, what it sent, and RSS and descriptors before -> after."""
    line = (f"[hostile] {attack}: {tried}; node RSS {before.rss_kib} -> {after.rss_kib} KiB, "
            f"descriptors {before.fds} -> {after.fds}")
    print(line)
    return line
