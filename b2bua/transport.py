"""The Twisted side of SIP: UDP, TCP and TLS sockets around one sans-I/O :class:`SipEndpoint`.

This module only does I/O (aioquic's ``asyncio/protocol.py`` is the model).
:class:`SipTransports` owns the endpoint and, after every input (a datagram,
a framed stream message, a failed connection, the timer), feeds it with
``now = reactor.seconds()``, sends everything ``take_outgoing()`` returns to
the socket ``Outgoing.peer`` names, hands ``take_events()`` to the
transaction user's callback, and keeps exactly one ``callLater`` armed at the
endpoint's ``next_deadline()``.  A transaction user that acts on the endpoint
outside that callback (from its own timer, say) calls :meth:`SipTransports.flush`.

Streams (RFC 3261 §18): a response goes back on the connection its request
came on (the core answers to the source peer, which is that connection); a
request to a peer reuses an open connection to that host:port, else one is
opened and the bytes wait for it.  Each connection has its own
:class:`StreamFramer`; a CRLFCRLF ping is answered with CRLF (RFC 5626
§3.5.1); garbage (a :class:`FramingError`) closes that connection and nothing
else.  A failed connect, a failed TLS handshake, a lost connection and a
datagram the socket refuses (no route, too large; not a full buffer) are reported
with ``endpoint.transport_error``.

What a peer may hold of us on streams (``[sip]`` keys, see :func:`listen_sip`):
a connection that brings no whole message and no keep-alive for
``idle_timeout_s`` is closed (a lone CRLF or a message's first bytes do not
count); once a message's first byte arrived, the whole message must arrive
within ``message_deadline_s`` or the connection is closed (a slowloris sending
a byte every few seconds); and a connection accepted while its source address
already holds ``max_connections_per_source``, or all sources
``max_connections``, is closed at once and counted in ``refused_connections``.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Callable, Protocol as TypingProtocol

from twisted.internet import abstract, address, error, protocol, udp
from twisted.logger import Logger, LogLevel
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from b2bua.sip.endpoint import CoreFault
from b2bua.sip.errors import FramingError
from b2bua.sip.framing import KEEPALIVE, PONG, StreamFramer
from b2bua.sip.peer import Outgoing, Peer
from b2bua.transport_tls import TlsConfigError, TlsFiles, client_context_factory, server_context

__all__ = ["SipTransports", "BoundPorts", "listen_sip", "SipCore", "TlsConfigError", "DEFAULT_IDLE_TIMEOUT_S",
           "DEFAULT_MESSAGE_DEADLINE_S", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_MAX_CONNECTIONS_PER_SOURCE"]

log = Logger()

DEFAULT_IDLE_TIMEOUT_S = 120.0
DEFAULT_MESSAGE_DEADLINE_S = 10.0
DEFAULT_MAX_CONNECTIONS = 2048
DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 64
CONNECT_TIMEOUT_S = 10.0
MAX_DATAGRAM_BYTES = 65535
MAX_PENDING_BYTES = 1 << 20          # bytes waiting for one connection to open


class SipCore(TypingProtocol):
    """What the transports need of the sans-I/O endpoint (``b2bua.sip.endpoint.SipEndpoint`` provides it)."""

    def receive(self, data: bytes, peer: Peer, now: float) -> None: ...
    def transport_error(self, peer: Peer, now: float) -> None: ...
    def take_outgoing(self) -> list[Outgoing]: ...
    def take_events(self) -> list[object]: ...
    def take_faults(self) -> list[CoreFault]: ...
    def holds_flow(self, peer: Peer) -> bool: ...
    def next_deadline(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


def _family_key(host: str) -> str:
    return "ipv6" if ":" in host else "ipv4"


_MAX_CHECKED_HOSTS = 1024


class _DirectUdp:
    """Datagrams written on a listening Twisted UDP port's socket, with what ``udp.Port.write`` adds kept.

    ``Port.write`` checks on every send that the host is an address of the port's
    family (no name resolution on the reactor thread); here that answer is kept per
    host, and the socket's ``sendto`` is called with Twisted's error handling:
    EINTR retried, ECONNREFUSED ignored, EMSGSIZE as ``MessageLengthError``, any
    other OSError raised. A host that fails the check goes through ``Port.write``,
    which raises as before. The socket is the port's public ``getHandle()``; the port is
    one we listen on and never ``connect()``, so it may send to any address.

    A 600-byte datagram to 127.0.0.1 (timeit, best of 7 x 20,000): 1.6 us here,
    3.0-4.5 us through ``udp.Port.write``.
    """

    def __init__(self, port: udp.Port, family: str) -> None:
        self.port = port
        self.sendto = port.getHandle().sendto
        self.is_address = abstract.isIPv6Address if family == "ipv6" else abstract.isIPAddress
        self.checked: dict[str, bool] = {}

    def write(self, data: bytes, host: str, port_number: int) -> None:
        ok = self.checked.get(host)
        if ok is None:
            ok = self.is_address(host)
            if len(self.checked) >= _MAX_CHECKED_HOSTS:
                self.checked.clear()
            self.checked[host] = ok
        if not ok:
            self.port.write(data, (host, port_number))
            return
        while True:
            try:
                self.sendto(data, (host, port_number))
                return
            except OSError as se:
                no = se.args[0]
                if no == errno.EINTR:
                    continue
                if no == errno.EMSGSIZE:
                    raise error.MessageLengthError("message too long") from None
                if no == errno.ECONNREFUSED:
                    return  # as Twisted: an ICMP error from an earlier datagram, nothing to do for this one
                raise


#: send errors a retransmission may well get past (a full socket buffer): not reported as a failed transport
_TRANSIENT_ERRNOS = frozenset((errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ENOMEM))


def _transient(exc: Exception) -> bool:
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


# ---- UDP ------------------------------------------------------------------------------------------
class _SipDatagram(protocol.DatagramProtocol):
    # Peers are frozen values: one per source address serves every datagram from it, so the
    # transactions (alive up to 32 s after their answer) share a few Peer objects instead of
    # holding one each for the garbage collector to walk.  At most this many are kept.
    PEERS_KEPT = 4096
    #: no "Starting protocol <_SipDatagram object at 0x...>": the node says once what it serves
    noisy = False

    def __init__(self, owner: "SipTransports") -> None:
        self.owner = owner
        self._peers: dict[tuple, Peer] = {}

    def datagramReceived(self, data: bytes, addr) -> None:
        if not data.strip(b"\r\n\x00 "):
            return  # CRLF / NUL keep-alives on UDP (RFC 5626 §4.4.1 uses STUN; CRLF is common practice)
        peer = self._peers.get(addr)
        if peer is None:
            if len(self._peers) >= self.PEERS_KEPT:
                self._peers.clear()
            peer = self._peers[addr] = Peer("udp", addr[0], addr[1])
        self.owner.receive(data, peer)


# ---- TCP and TLS ----------------------------------------------------------------------------------
class _SipStream(protocol.Protocol, TimeoutMixin):
    """One TCP or TLS connection: framing, keep-alive answers, idle timeout, the deadline of a started message."""

    def __init__(self, owner: "SipTransports", transport_name: str, outbound_peer: Peer | None = None,
                 inbound_host: str | None = None) -> None:
        self.owner = owner
        self.transport_name = transport_name
        self.outbound_peer = outbound_peer
        self.inbound_host = inbound_host           # counted against the caps until the connection is lost
        self.peer: Peer | None = outbound_peer
        self.framer = StreamFramer(owner.max_header_bytes, owner.max_body_bytes)
        self.callLater = owner.reactor.callLater   # TimeoutMixin's clock: the injected reactor
        self.closing_reason: str | None = None
        self._message_timer = None                 # armed at a message's first byte, until it is whole

    def connectionMade(self) -> None:
        if self.peer is None:
            addr = self.transport.getPeer()
            self.peer = Peer(self.transport_name, addr.host, addr.port)
        self.setTimeout(self.owner.idle_timeout_s)
        self.owner._connected(self)

    def dataReceived(self, data: bytes) -> None:
        try:
            items = self.framer.feed(data)
        except FramingError as exc:
            log.info("closing {peer}: {reason}", peer=self.peer, reason=exc.reason)
            self.closing_reason = f"framing: {exc.reason}"
            self.transport.abortConnection()
            return
        timer = self._message_timer
        if items:
            self.resetTimeout()                    # only whole messages and keep-alives keep a connection
            if timer is not None:
                timer.cancel()
                self._message_timer = timer = None
        if self.framer.buffered:
            if timer is None:
                self._message_timer = self.callLater(self.owner.message_deadline_s, self._message_late)
        elif timer is not None:
            timer.cancel()
            self._message_timer = None
        for item in items:
            if item is KEEPALIVE:
                self.transport.write(PONG)
            elif self.closing_reason is None:
                self.owner.receive(item, self.peer)

    def write(self, data: bytes) -> None:
        self.resetTimeout()
        self.transport.write(data)

    def timeoutConnection(self) -> None:
        if self.owner.endpoint.holds_flow(self.peer):
            self.setTimeout(self.owner.idle_timeout_s)   # a call's only way back to its peer stays open
            return
        self.closing_reason = "idle"
        self.owner.closed_idle += 1
        self.transport.loseConnection()

    def _message_late(self) -> None:
        self._message_timer = None
        self.closing_reason = "message deadline"
        self.owner.closed_slow += 1
        log.info("closing {peer}: a message begun {deadline_s} s ago is not whole ({buffered} bytes)",
                 peer=self.peer, deadline_s=self.owner.message_deadline_s, buffered=self.framer.buffered)
        self.transport.abortConnection()

    def connectionLost(self, reason=protocol.connectionDone) -> None:
        self.setTimeout(None)
        if self._message_timer is not None:
            self._message_timer.cancel()
            self._message_timer = None
        if self.inbound_host is not None:
            self.owner._release(self.inbound_host)
            self.inbound_host = None
        self.owner._disconnected(self)


class _Refused(protocol.Protocol):
    """A connection over the caps: closed as soon as it is made."""

    def connectionMade(self) -> None:
        self.transport.abortConnection()


class _StreamServerFactory(protocol.Factory):
    noisy = False           # no "Starting factory <... at 0x...>" line at each start and stop

    def __init__(self, owner: "SipTransports", transport_name: str) -> None:
        self.owner = owner
        self.transport_name = transport_name

    def buildProtocol(self, addr):
        host = addr.host if isinstance(addr, (address.IPv4Address, address.IPv6Address)) else ""
        if not self.owner._admit(host):
            return _Refused()
        return _SipStream(self.owner, self.transport_name, inbound_host=host)


class _StreamClientFactory(protocol.ClientFactory):
    noisy = False           # one per outbound connection: no "Starting factory <... at 0x...>" lines

    def __init__(self, owner: "SipTransports", peer: Peer) -> None:
        self.owner = owner
        self.peer = peer

    def buildProtocol(self, addr):
        return _SipStream(self.owner, self.peer.transport, outbound_peer=self.peer)

    def clientConnectionFailed(self, connector, reason) -> None:
        self.owner._connect_failed(self.peer, reason)


# ---- the adapter ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class BoundPorts:
    """The ports actually bound (useful with port 0); None for a transport not listening."""

    udp: int | None
    tcp: int | None
    tls: int | None

    def by_transport(self) -> dict[str, int]:
        """``{"udp": port, ...}`` for the transports listening, as ``SipEndpoint.local_ports`` takes them."""
        return {name: port for name, port in (("udp", self.udp), ("tcp", self.tcp), ("tls", self.tls))
                if port is not None}


class SipTransports:
    """Owns a SIP endpoint and every socket it speaks through; see the module docstring."""

    def __init__(self, reactor, endpoint: SipCore, on_event: Callable[[object], None], *,
                 tls: TlsFiles | None = None, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
                 message_deadline_s: float = DEFAULT_MESSAGE_DEADLINE_S,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_connections_per_source: int = DEFAULT_MAX_CONNECTIONS_PER_SOURCE,
                 max_header_bytes: int = 16384, max_body_bytes: int = 65536) -> None:
        self.reactor = reactor
        self.endpoint = endpoint
        self.on_event = on_event
        self.idle_timeout_s = idle_timeout_s
        self.message_deadline_s = message_deadline_s
        self.max_connections = max_connections
        self.max_connections_per_source = max_connections_per_source
        self._inbound: dict[str, int] = {}          # source address -> accepted connections still open
        self._inbound_total = 0
        self.refused_connections: int = 0           # accepted over a cap and closed at once
        self.closed_slow: int = 0                   # a started message not whole by its deadline
        self.closed_idle: int = 0
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.tls_files = tls
        self._tls_client = None
        self._udp: dict[str, object] = {}          # address family -> listening UDP port
        self._udp_direct: dict[str, _DirectUdp] = {}  # address family -> its real Twisted port's socket
        self._listeners: list[object] = []
        self._connections: dict[Peer, _SipStream] = {}
        self._pending: dict[Peer, list[bytes]] = {}
        self._connectors: dict[Peer, object] = {}
        self._timer = None
        self._armed_for: float | None = None   # the endpoint deadline the timer was armed for
        self._pumping = False
        self._stopped = False
        self.sent: int = 0
        self.undeliverable: int = 0
        #: our bugs, logged with their traceback where caught: exceptions the SIP core caught on a message or
        #: timer (the message dropped), and exceptions out of the transaction user's event handler
        self.core_faults: int = 0
        self.user_failures: int = 0

    # -- listening --
    def listen_udp(self, port: int, interface: str) -> int:
        # a SIP datagram may be up to 65,535 bytes (RFC 3261 §18.1.1); Twisted reads 8,192 unless told
        listening = self.reactor.listenUDP(port, _SipDatagram(self), interface=interface, maxPacketSize=MAX_DATAGRAM_BYTES)
        family = _family_key(interface)
        if self._udp.setdefault(family, listening) is listening and isinstance(listening, udp.Port):
            # a port we listen on and never connect(): its socket may send to any address
            self._udp_direct[family] = _DirectUdp(listening, family)
        self._listeners.append(listening)
        return listening.getHost().port

    def listen_tcp(self, port: int, interface: str) -> int:
        listening = self.reactor.listenTCP(port, _StreamServerFactory(self, "tcp"), interface=interface)
        self._listeners.append(listening)
        return listening.getHost().port

    def listen_tls(self, port: int, interface: str) -> int:
        if self.tls_files is None or not self.tls_files.enabled:
            raise TlsConfigError("TLS needs tls_certificate and tls_private_key")
        context = server_context(self.tls_files)
        listening = self.reactor.listenSSL(port, _StreamServerFactory(self, "tls"), context, interface=interface)
        self._listeners.append(listening)
        return listening.getHost().port

    # -- input --
    def now(self) -> float:
        return self.reactor.seconds()

    def receive(self, data: bytes, peer: Peer) -> None:
        """One whole message from ``peer`` (a datagram, or a framed stream message)."""
        self.endpoint.receive(data, peer, self.now())
        self.flush()

    def transport_error(self, peer: Peer) -> None:
        self.endpoint.transport_error(peer, self.now())
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self.endpoint.handle_timer(self.now())
        self.flush()

    # -- output --
    def flush(self) -> None:
        """Send what the endpoint wants sent, deliver its events, and re-arm the one timer."""
        if self._pumping:
            return  # a TU acting inside on_event: the running loop picks its output up
        self._pumping = True
        try:
            while True:
                for fault in self.endpoint.take_faults():
                    self.core_faults += 1
                    exc = fault.error
                    log.failure("call {call_id}: SIP core: {why}; the message was dropped",
                                Failure(exc, type(exc), exc.__traceback__), call_id=fault.call_id,
                                why=fault.why, level=LogLevel.error)
                outgoing = self.endpoint.take_outgoing()
                for out in outgoing:
                    self._send(out)
                events = self.endpoint.take_events()
                for event in events:
                    try:
                        self.on_event(event)
                    except Exception:  # a TU bug must not stop the transport
                        self.user_failures += 1
                        log.failure("transaction user failed on {event!r}", event=event, level=LogLevel.error)
                if not outgoing and not events:
                    break
        finally:
            self._pumping = False
        self._arm()

    def _arm(self) -> None:
        deadline = None if self._stopped else self.endpoint.next_deadline()
        timer = self._timer
        if timer is not None and timer.active():
            if deadline is not None:
                armed_for = self._armed_for
                if deadline == armed_for:
                    # Already armed for this deadline: re-armed only when it moves, never stacked. The
                    # endpoint's own number is compared: the call's time is the reactor's clock read
                    # again plus a delay, microseconds off, and compared with it every flush re-armed.
                    return
                if deadline > armed_for:
                    # Later: DelayedCall.reset only notes the delay (the reactor re-files the call when its
                    # old time comes), cheaper than a cancel and a new call; sooner would search the heap.
                    timer.reset(max(0.0, deadline - self.now()))
                    self._armed_for = deadline
                    return
            timer.cancel()
        self._timer = None
        if deadline is not None:
            self._timer = self.reactor.callLater(max(0.0, deadline - self.now()), self._on_timer)
            self._armed_for = deadline

    def _send(self, out: Outgoing) -> None:
        peer = out.peer
        if self._stopped:
            self._lost(peer, "transports stopped")
            return
        self.sent += 1
        if peer.transport == "udp":
            family = _family_key(peer.host)
            direct = self._udp_direct.get(family)
            try:
                if direct is not None:
                    direct.write(out.data, peer.host, peer.port)
                    return
                port = self._udp.get(family)
                if port is None:
                    self._lost(peer, "no UDP socket for this address family")
                    return
                port.write(out.data, (peer.host, peer.port))
            except Exception as exc:  # EMSGSIZE, unreachable network...
                self._lost(peer, f"UDP send failed: {exc}")
                if not _transient(exc):
                    # RFC 3261 §18.4: the transport user hears of a failure in sending at once (its request's
                    # transaction fails with 503), not after 32 s of retransmissions into the same error
                    self.endpoint.transport_error(peer, self.now())
            return
        if peer.transport not in ("tcp", "tls"):
            self._lost(peer, f"unknown transport {peer.transport!r}")
            return
        conn = self._connections.get(peer)
        if conn is not None:
            conn.write(out.data)
            return
        pending = self._pending.setdefault(peer, [])
        if sum(map(len, pending)) + len(out.data) > MAX_PENDING_BYTES:
            self._lost(peer, "too much waiting for a connection")
            return
        pending.append(out.data)
        if peer not in self._connectors:
            self._connect(peer)

    def _lost(self, peer: Peer, why: str) -> None:
        self.undeliverable += 1
        log.info("cannot send to {peer}: {why}", peer=peer, why=why)

    def _connect(self, peer: Peer) -> None:
        factory = _StreamClientFactory(self, peer)
        if peer.transport == "tcp":
            self._connectors[peer] = self.reactor.connectTCP(peer.host, peer.port, factory, CONNECT_TIMEOUT_S)
            return
        try:
            if self._tls_client is None:
                self._tls_client = client_context_factory(self.tls_files or TlsFiles("", ""))
            context = self._tls_client(peer.host)
        except Exception as exc:
            self._pending.pop(peer, None)
            self._lost(peer, f"no TLS client context: {exc}")
            self.reactor.callLater(0, self.transport_error, peer)
            return
        self._connectors[peer] = self.reactor.connectSSL(peer.host, peer.port, factory, context, CONNECT_TIMEOUT_S)

    # -- connection bookkeeping (called by the protocols) --
    def _admit(self, host: str) -> bool:
        """Count a connection accepted from ``host``; False (and counted as refused) when over a cap."""
        held = self._inbound.get(host, 0)
        if self._stopped or held >= self.max_connections_per_source or self._inbound_total >= self.max_connections:
            self.refused_connections += 1
            log.debug("refusing a connection from {host}: {held} open from it, {total} in all",
                      host=host, held=held, total=self._inbound_total)
            return False
        self._inbound[host] = held + 1
        self._inbound_total += 1
        return True

    def _release(self, host: str) -> None:
        held = self._inbound.get(host, 0) - 1
        if held > 0:
            self._inbound[host] = held
        else:
            self._inbound.pop(host, None)
        self._inbound_total -= 1

    def _connected(self, conn: _SipStream) -> None:
        if self._stopped:
            conn.transport.loseConnection()
            return
        self._connectors.pop(conn.peer, None)
        self._connections[conn.peer] = conn
        for data in self._pending.pop(conn.peer, []):
            conn.write(data)

    def _disconnected(self, conn: _SipStream) -> None:
        if self._connections.get(conn.peer) is conn:
            del self._connections[conn.peer]
        if self._stopped or conn.peer is None:
            return
        self.transport_error(conn.peer)

    def _connect_failed(self, peer: Peer, reason) -> None:
        self._connectors.pop(peer, None)
        self._pending.pop(peer, None)
        log.info("connect to {peer} failed: {why}", peer=peer, why=reason.getErrorMessage())
        if not self._stopped:
            self.transport_error(peer)

    # -- looking and stopping --
    @property
    def connections(self) -> dict[Peer, object]:
        """Open stream connections by peer (read only)."""
        return dict(self._connections)

    def stop(self):
        """Close every listener and connection and cancel the timer; a Deferred that fires when all is closed."""
        from twisted.internet.defer import DeferredList, maybeDeferred
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        waits = [maybeDeferred(listening.stopListening) for listening in self._listeners]
        self._listeners.clear()
        for connector in self._connectors.values():
            connector.disconnect()
        self._connectors.clear()
        for conn in list(self._connections.values()):
            conn.setTimeout(None)
            conn.transport.loseConnection()
        self._connections.clear()
        self._pending.clear()
        return DeferredList(waits)


def listen_sip(reactor, endpoint: SipCore, sip_settings, on_event: Callable[[object], None]
               ) -> tuple[SipTransports, BoundPorts]:
    """Listen as ``config.sip`` says: on ``address``, each of ``udp_port``, ``tcp_port``, ``tls_port`` (0: off, as in the config schema).

    TLS listens when ``tls_port`` is set, with ``tls_certificate``/``tls_private_key``
    (and ``tls_client_ca`` for mutual TLS); our outgoing TLS connections check servers against
    ``tls_server_ca`` (empty: the system's trust store).  The ports bound are returned
    (:meth:`BoundPorts.by_transport`), for the endpoint's Via and Contact.  The stream limits come from the same section
    (``connection_idle_timeout_s``, ``message_deadline_s``, ``max_connections``, ``max_connections_per_source``).  Tests that want any free port call
    :meth:`SipTransports.listen_udp` and friends with port 0 instead.
    """
    tls = TlsFiles(sip_settings.tls_certificate or "", sip_settings.tls_private_key or "",
                   sip_settings.tls_client_ca or "", sip_settings.tls_server_ca or "")
    transports = SipTransports(reactor, endpoint, on_event, tls=tls,
                               idle_timeout_s=sip_settings.connection_idle_timeout_s,
                               message_deadline_s=sip_settings.message_deadline_s,
                               max_connections=sip_settings.max_connections,
                               max_connections_per_source=sip_settings.max_connections_per_source)
    address = sip_settings.address
    udp = tcp = tls_port = None
    try:
        if sip_settings.udp_port:
            udp = transports.listen_udp(sip_settings.udp_port, address)
        if sip_settings.tcp_port:
            tcp = transports.listen_tcp(sip_settings.tcp_port, address)
        if sip_settings.tls_port:
            tls_port = transports.listen_tls(sip_settings.tls_port, address)
    except Exception:
        transports.stop()
        raise
    return transports, BoundPorts(udp, tcp, tls_port)
