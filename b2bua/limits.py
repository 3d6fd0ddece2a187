"""The descriptors a node may hold: the soft RLIMIT_NOFILE raised to the hard limit at start, and the headroom left.

Service managers often start a process with a soft limit of 1,024 descriptors and
a far higher hard one; every SIP connection, RTP port, store and HTTP connection
takes one, so the node raises its soft limit to the hard limit once at start
(:func:`raise_descriptor_limit`, logged with both values). A readiness check asks
:func:`descriptor_headroom` how many are open against the soft limit.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

from twisted.logger import Logger

__all__ = ["DescriptorLimit", "DescriptorHeadroom", "raise_descriptor_limit", "descriptor_headroom"]

log = Logger()

#: What "no hard limit" is raised to: Linux refuses a soft limit above fs.nr_open (1,048,576 by default).
UNLIMITED_TARGET = 1 << 20


@dataclass(frozen=True)
class DescriptorLimit:
    """RLIMIT_NOFILE as found at start and as left: ``soft_before`` -> ``soft``, under ``hard``."""

    soft_before: int
    soft: int
    hard: int


@dataclass(frozen=True)
class DescriptorHeadroom:
    """Open descriptors against the soft limit, at one moment."""

    open: int
    limit: int

    @property
    def free(self) -> int:
        return max(0, self.limit - self.open)

    @property
    def free_fraction(self) -> float:
        return self.free / self.limit if self.limit > 0 else 0.0


def _limit_text(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def raise_descriptor_limit(*, getrlimit=resource.getrlimit, setrlimit=resource.setrlimit) -> DescriptorLimit:
    """Raise the soft RLIMIT_NOFILE to the hard limit (``UNLIMITED_TARGET`` when there is none) and log both.

    A refusal (a container's nr_open below the hard limit, say) is logged once and the soft limit kept.
    """
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    raised = soft
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            raised = target
        except (ValueError, OSError) as exc:
            log.warn("descriptor soft limit stays {soft}: raising it to {target} was refused: {why}",
                     soft=soft, target=target, why=exc)
    log.info("descriptor limit: soft {soft} (was {before}), hard {hard}",
             soft=_limit_text(raised), before=_limit_text(soft), hard=_limit_text(hard))
    return DescriptorLimit(soft, raised, hard)


def _open_descriptors() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1   # listdir's own descriptor on the folder
        except OSError:
            continue
    return 0


def descriptor_headroom() -> DescriptorHeadroom:
    """How many descriptors this process has open, and its soft limit (a plain call, for /healthz)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = UNLIMITED_TARGET if soft == resource.RLIM_INFINITY else soft
    return DescriptorHeadroom(_open_descriptors(), limit)
