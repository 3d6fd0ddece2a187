"""The RTP port range: pairs of ports (even RTP, RTCP = RTP + 1) handed out and taken back.  Pure.

Freed pairs go to the back of the queue, so a port just released is not given
to the next call at once (late packets of the old call then reach nobody,
instead of a stranger's call).
"""

from __future__ import annotations

from collections import deque


class PortsExhausted(RuntimeError):
    """Every RTP port pair in the range is in use (or could not be bound)."""


class PortRange:
    """Even RTP ports ``p`` in ``[port_min, port_max]`` with ``p + 1 <= port_max``."""

    def __init__(self, port_min: int, port_max: int) -> None:
        first = port_min + (port_min % 2)
        if not (0 < port_min <= port_max <= 65535) or first + 1 > port_max:
            raise ValueError(f"RTP port range {port_min}..{port_max} holds no even/odd pair")
        self.port_min = port_min
        self.port_max = port_max
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._used: set[int] = set()
        self.size = len(self._free)

    def take(self) -> int:
        """The next free RTP port (even); its RTCP port is one above.  Raises :class:`PortsExhausted`."""
        if not self._free:
            raise PortsExhausted(f"all {self.size} RTP port pairs of {self.port_min}..{self.port_max} are in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def give_back(self, port: int) -> None:
        """Return a pair taken with :meth:`take` (twice is harmless)."""
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)

    @property
    def free(self) -> int:
        """How many pairs are free."""
        return len(self._free)

    @property
    def in_use(self) -> int:
        """How many pairs are taken."""
        return len(self._used)
