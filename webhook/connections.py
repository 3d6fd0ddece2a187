"""The HTTP listener against slow and many connections: deadlines per request, caps on connections.

    site = GuardedSite(resource, limits, metrics, reactor=reactor, access_line=access_log_line,
                       access_lines=FileLines("/var/log/prepaid/access.log"))

Every open connection holds a descriptor, and the node shares its descriptors
with SIP and RTP. Twisted's idle timeout (``timeOut``) restarts at every byte, so
a client sending one header byte every few seconds would hold its connection for
ever; hence, per :class:`~webhook.settings.ConnectionLimits`:

- a request's line and headers must arrive within ``header_timeout_s`` of its first byte;
- its body within ``body_timeout_s`` of the end of its headers;
- a connection that sends nothing for ``idle_timeout_s`` is closed (Twisted's ``timeOut``);
- at most ``max_connections_per_source`` open connections from one address and
  ``max_connections`` in all: one more is closed at once (``buildProtocol`` answers
  None, and the port closes the socket) and counted.

A request over its deadline gets ``408`` and the connection is closed, as Twisted
closes an idle one (``timeoutConnection``: close, and abort if the peer does not
let go). The listener speaks HTTP/1.1 only (no ALPN, no HTTP/2).
"""

from __future__ import annotations

from collections import Counter

from typing import Callable

from twisted.web.http import HTTPChannel, datetimeToLogString
from twisted.web.server import Site

from .accesslog import AccessLines, DebugLines
from .metrics import Metrics, declared_sample
from .settings import ConnectionLimits

_TIMEOUT_ANSWER = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class ConnectionGate:
    """Open connections per source address and in all, against their caps (no I/O)."""

    def __init__(self, max_connections: int, max_connections_per_source: int) -> None:
        self.max_connections = max_connections
        self.max_connections_per_source = max_connections_per_source
        self._by_source: Counter[str] = Counter()
        self.open = 0

    def admit(self, source: str) -> str | None:
        """Count one more connection from ``source``; or, over a cap, which one ("total", "per_source")."""
        if self.open >= self.max_connections:
            return "total"
        if self._by_source[source] >= self.max_connections_per_source:
            return "per_source"
        self._by_source[source] += 1
        self.open += 1
        return None

    def release(self, source: str) -> None:
        """One connection from ``source`` closed."""
        self.open -= 1
        self._by_source[source] -= 1
        if self._by_source[source] <= 0:
            del self._by_source[source]


class DeadlineChannel(HTTPChannel):
    """An HTTP/1.1 channel whose requests must arrive within their deadlines; it releases its gate slot."""

    source = ""
    gate: ConnectionGate
    limits: ConnectionLimits
    metrics: Metrics
    #: which listener the channel belongs to (a label of its metrics): "public" or "portal"
    listener = "public"

    def __init__(self) -> None:
        super().__init__()
        self._deadlines: dict[str, object] = {}

    def dataReceived(self, data: bytes) -> None:
        # line mode: reading a request line or headers (the body and the time a request is
        # being answered are raw mode); the first byte of a request starts its header deadline
        if data and self.line_mode and "header" not in self._deadlines:
            self._arm("header", self.limits.header_timeout_s)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._disarm("header")
        super().allHeadersReceived()
        if self.length != 0:        # a body follows (Content-Length, or chunked: None)
            self._arm("body", self.limits.body_timeout_s)

    def allContentReceived(self) -> None:
        self._disarm("body")
        super().allContentReceived()

    def connectionLost(self, reason) -> None:
        for phase in tuple(self._deadlines):
            self._disarm(phase)
        self.gate.release(self.source)
        super().connectionLost(reason)

    def _arm(self, phase: str, seconds: int) -> None:
        self._deadlines[phase] = self.callLater(seconds, self._expired, phase)

    def _disarm(self, phase: str) -> None:
        call = self._deadlines.pop(phase, None)
        if call is not None and call.active():
            call.cancel()

    def _expired(self, phase: str) -> None:
        del self._deadlines[phase]
        self.metrics.inc("prepaid_http_timeouts_total", listener=self.listener, phase=phase)
        self.transport.write(_TIMEOUT_ANSWER)
        self.timeoutConnection()


class GuardedSite(Site):
    """A Site whose connections are :class:`DeadlineChannel` s, admitted through a :class:`ConnectionGate`."""

    protocol = DeadlineChannel
    #: no "Starting factory <GuardedSite object at 0x...>" lines: the node says once what it serves
    noisy = False

    def __init__(self, resource, limits: ConnectionLimits, metrics: Metrics, *, reactor,
                 access_line: Callable[[str, object], str], access_lines: AccessLines | None = None,
                 listener: str = "public") -> None:
        """``listener`` labels this Site's figures in ``metrics`` (one registry serves the node's listeners)."""
        super().__init__(resource, timeout=limits.idle_timeout_s, reactor=reactor)
        self.listener = listener
        self.access_line = access_line
        self.access_lines = access_lines if access_lines is not None else DebugLines()
        self.limits = limits
        self.metrics = metrics
        self.gate = ConnectionGate(limits.max_connections, limits.max_connections_per_source)
        metrics.add_collector(self._collect)

    def log(self, request) -> None:
        """One answered request: its line (``access_line(time, request)``) to :attr:`access_lines`, not to the
        node log at info as twisted.web would."""
        self.access_lines.write(self.access_line(datetimeToLogString(self.reactor.seconds()), request))

    def buildProtocol(self, addr):
        source = addr.host
        refused = self.gate.admit(source)
        if refused is not None:
            self.metrics.inc("prepaid_http_connections_refused_total", listener=self.listener, reason=refused)
            return None
        channel = super().buildProtocol(addr)
        channel.source, channel.gate, channel.limits, channel.metrics = source, self.gate, self.limits, self.metrics
        channel.listener = self.listener
        return channel

    def _collect(self):
        yield declared_sample("prepaid_http_connections_open", float(self.gate.open), (("listener", self.listener),))
