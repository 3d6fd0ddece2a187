"""The public listener's deadlines and connection caps: slow clients are cut, too many connections refused."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from billing.profile import BillingProfile
from webhook.server import build_site
from webhook.settings import ConnectionLimits, PageProfile, WebSettings

LIMITS = ConnectionLimits(header_timeout_s=5, body_timeout_s=8, idle_timeout_s=60, max_connections=3,
                          max_connections_per_source=2)


def settings(limits: ConnectionLimits = LIMITS) -> WebSettings:
    billing = BillingProfile(name="demo", landline_per_minute=Decimal("1"), mobile_per_minute=Decimal("1"))
    return WebSettings(public_url="http://127.0.0.1:1", profiles=(PageProfile("demo", billing, "demo"),),
                       limits=limits)


def connect(site, host: str = "192.0.2.7"):
    """A channel of ``site`` on a StringTransport, as the listening port would make it."""
    channel = site.buildProtocol(IPv4Address("TCP", host, 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
    channel.makeConnection(transport)
    return channel, transport


def trickle(clock, channel, byte: bytes, seconds: int) -> None:
    """One ``byte`` a second for ``seconds`` seconds."""
    for _ in range(seconds):
        clock.advance(1)
        channel.dataReceived(byte)


def on_clock():
    clock = Clock()
    site = build_site(settings(), None, clock, providers={})
    site.startFactory()
    return clock, site


def test_headers_trickling_a_byte_a_second_are_cut_at_the_header_deadline():
    """A client that sends its headers one byte a second (each byte restarts Twisted's idle timer) gets
    408 and is closed header_timeout_s after its first byte; the timeout is counted by phase."""
    clock, site = on_clock()
    channel, transport = connect(site)
    channel.dataReceived(b"GET /healthz HTTP/1.1\r\n")
    trickle(clock, channel, b"X", 4)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting
    assert transport.value().startswith(b"HTTP/1.1 408 ")
    assert site.app.metrics.value("prepaid_http_timeouts_total", phase="header") == 1


def test_a_trickling_body_is_cut_at_the_body_deadline():
    """Headers in time, then a body of 100 bytes at one byte a second: closed body_timeout_s after the headers."""
    clock, site = on_clock()
    channel, transport = connect(site)
    channel.dataReceived(b"POST /hooks/klarna HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    trickle(clock, channel, b"{", 7)
    assert not transport.disconnecting
    clock.advance(1)
    assert transport.disconnecting and transport.value().startswith(b"HTTP/1.1 408 ")
    assert site.app.metrics.value("prepaid_http_timeouts_total", phase="body") == 1


def test_a_kept_alive_connection_waits_for_the_idle_timeout_not_the_header_deadline():
    """A request sent whole is answered; the kept-alive connection then stays open past the header
    deadline and is closed at idle_timeout_s; no deadline was counted."""
    clock, site = on_clock()
    channel, transport = connect(site)
    channel.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 200 ")
    clock.advance(LIMITS.header_timeout_s + 1)
    assert not transport.disconnecting
    clock.advance(LIMITS.idle_timeout_s)
    assert transport.disconnecting
    assert site.app.metrics.value("prepaid_http_timeouts_total", phase="header") == 0


def _until(condition, timeout_s: float = 5.0):
    """Drive the global reactor until ``condition()`` is true, bounded in time; its last value."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        reactor.iterate(0.005)
    return condition()


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_connections_over_the_caps_are_closed_at_once_and_counted():
    """A real listener with 2 connections per source and 3 in all: the third from one address is closed
    at once, so is the fourth in all from another; a freed slot is taken again and served."""
    site = build_site(settings(), None, reactor, providers={})
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    address = ("127.0.0.1", port.getHost().port)
    socks = []

    def open_from(source: str) -> socket.socket:
        sock = socket.create_connection(address, timeout=5, source_address=(source, 0))
        sock.setblocking(False)
        socks.append(sock)
        return sock

    try:
        a1, a2 = open_from("127.0.0.1"), open_from("127.0.0.1")
        _until(lambda: site.gate.open == 2)
        a3 = open_from("127.0.0.1")
        assert _until(lambda: _closed_by_peer(a3))
        b1 = open_from("127.0.0.2")
        _until(lambda: site.gate.open == 3)
        b2 = open_from("127.0.0.2")
        assert _until(lambda: _closed_by_peer(b2))
        assert not any(_closed_by_peer(s) for s in (a1, a2, b1))
        metrics = site.app.metrics
        assert metrics.value("prepaid_http_connections_refused_total", reason="per_source") == 1
        assert metrics.value("prepaid_http_connections_refused_total", reason="total") == 1
        a1.close()
        assert _until(lambda: site.gate.open == 2)
        a4 = open_from("127.0.0.1")
        assert _until(lambda: site.gate.open == 3)
        assert b'prepaid_http_connections_open{listener="public"} 3' in metrics.render()
        a4.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        got = bytearray()

        def answered() -> bool:
            try:
                got.extend(a4.recv(4096))
            except BlockingIOError:
                pass
            return b"\r\n\r\nok\n" in got
        assert _until(answered), bytes(got)
        assert got.startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in socks:
            sock.close()
        d = port.stopListening()
        _until(lambda: d.called)
