"""What a TCP/TLS peer may hold of the node, on ``MemoryReactorClock``: the deadline of a started message
(a slowloris is closed), the idle timeout (only whole messages and keep-alives count), and the caps on
connections per source address and in total (one more is closed at once and counted)."""

from __future__ import annotations

import pytest
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from b2bua.node.config import SipSettings, parse_config
from b2bua.node.schema import ConfigInvalid
from b2bua.sip.endpoint import SipEndpoint
from b2bua.transport import SipTransports
from tests.support.sip_apps import EchoUas
from tests.support.sip_endpoint import request
from tests.transport.test_adapter import Reactor, accept, tcp_options


def limited(**limits):
    reactor = Reactor()
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060, "tcp": 5060})
    uas = EchoUas(endpoint, reactor.seconds)
    limits.setdefault("idle_timeout_s", 30)
    limits.setdefault("message_deadline_s", 10)
    transports = SipTransports(reactor, endpoint, uas.on_event, **limits)
    transports.listen_tcp(5060, "127.0.0.1")
    return reactor, transports


def test_a_message_trickled_a_byte_a_second_is_closed_at_its_deadline():
    """A slowloris: one byte of an OPTIONS every second. Each byte used to reset the idle wait, so it
    stayed open for ever; now the message begun at 0 is not whole at 10 s and the connection is closed."""
    reactor, transports = limited()
    proto, wire = accept(reactor)
    message = tcp_options()
    for i in range(10):
        proto.dataReceived(message[i:i + 1])
        reactor.advance(0.999)
        assert not wire.disconnecting, i
    reactor.advance(0.01)
    assert wire.disconnecting and transports.closed_slow == 1
    assert wire.value() == b""


def test_a_message_whole_before_its_deadline_is_answered_and_the_next_one_gets_its_own():
    """Half an OPTIONS, the rest 9 s later: answered, the deadline gone; the next message's deadline
    starts at its own first byte."""
    reactor, transports = limited()
    proto, wire = accept(reactor)
    message = tcp_options()
    proto.dataReceived(message[:40])
    reactor.advance(9)
    proto.dataReceived(message[40:] + b"OPT")
    assert wire.value().startswith(b"SIP/2.0 200 OK\r\n")
    reactor.advance(9)
    assert not wire.disconnecting
    reactor.advance(1)
    assert wire.disconnecting and transports.closed_slow == 1


def test_keepalive_pings_keep_a_connection_and_silence_closes_it_at_the_idle_timeout():
    """CRLFCRLF pings every 20 s (whole, or split over two reads) are answered and keep the connection
    past the idle timeout (30 s); after the last one, 30 s of silence close it, counted as idle."""
    reactor, transports = limited()
    proto, wire = accept(reactor)
    for _ in range(3):
        proto.dataReceived(b"\r\n\r\n")
        reactor.advance(10)
        proto.dataReceived(b"\r\n")
        reactor.advance(5)
        proto.dataReceived(b"\r\n")
        reactor.advance(5)
    assert not wire.disconnecting and wire.value() == b"\r\n" * 6
    reactor.advance(30)
    assert wire.disconnecting and transports.closed_idle == 1 and transports.closed_slow == 0


def test_a_connection_that_a_call_needs_back_is_not_closed_as_idle():
    """A caller's INVITE came on this connection and its call is up: the connection is the call's only way
    back (our BYE goes over it), so 30 s of silence do not close it; once the caller's BYE ended the dialog,
    the next 30 s of silence do."""
    reactor, transports = limited()
    proto, wire = accept(reactor)
    proto.dataReceived(request("INVITE", transport="TCP", via_host="127.0.0.1", via_port=6000))
    assert b"SIP/2.0 200 OK" in wire.value()
    [dialog_id] = transports.endpoint.dialogs
    proto.dataReceived(request("ACK", transport="TCP", via_host="127.0.0.1", via_port=6000, branch="z9hG4bKack",
                               to_tag=dialog_id.local_tag))
    reactor.advance(31)
    reactor.advance(31)
    assert not wire.disconnecting and transports.closed_idle == 0
    proto.dataReceived(request("BYE", transport="TCP", via_host="127.0.0.1", via_port=6000, branch="z9hG4bKbye",
                               to_tag=dialog_id.local_tag, cseq=2))
    assert transports.endpoint.dialogs == {}
    reactor.advance(31)
    assert wire.disconnecting and transports.closed_idle == 1


def test_connections_over_the_cap_of_one_source_are_closed_at_once():
    """With two per source: the third from 192.0.2.7 is closed as it is made and counted; another
    source still gets in; when one of the two closes, 192.0.2.7 may open one again."""
    reactor, transports = limited(max_connections_per_source=2)
    first, first_wire = accept(reactor, host="192.0.2.7", port=7000)
    accept(reactor, host="192.0.2.7", port=7001)
    _, third_wire = accept(reactor, host="192.0.2.7", port=7002)
    assert third_wire.disconnecting and transports.refused_connections == 1
    _, other_wire = accept(reactor, host="198.51.100.1", port=7000)
    assert not other_wire.disconnecting
    first.connectionLost(Failure(ConnectionDone()))
    proto, again = accept(reactor, host="192.0.2.7", port=7003)
    assert not again.disconnecting
    proto.dataReceived(tcp_options())
    assert again.value().startswith(b"SIP/2.0 200 OK\r\n")


def test_connections_over_the_total_cap_are_closed_at_once():
    """With three in all: the fourth, from a fourth address, is closed and counted."""
    reactor, transports = limited(max_connections=3)
    wires = [accept(reactor, host=f"192.0.2.{i}")[1] for i in range(1, 5)]
    assert [w.disconnecting for w in wires] == [False, False, False, True]
    assert transports.refused_connections == 1


def test_stream_limits_are_sip_keys_with_their_defaults_and_reasons():
    """The four keys default to 120 s idle, 10 s per message, 2048 connections, 64 per source; a bad
    value names its key."""
    settings = SipSettings(address="127.0.0.1", udp_port=0, tcp_port=0, tls_port=0, tls_certificate="",
                           tls_private_key="", tls_client_ca="", default_region="DE", max_call_duration_s=60,
                           session_expires_s=1800, min_se_s=90, user_agent="prepaid")
    assert (settings.connection_idle_timeout_s, settings.message_deadline_s, settings.max_connections,
            settings.max_connections_per_source) == (120, 10, 2048, 64)
    with open("conf/prepaid.toml", encoding="utf-8") as f:
        text = f.read()
    for key in ("connection_idle_timeout_s", "message_deadline_s", "max_connections", "max_connections_per_source"):
        bad = text.replace("[sip]\n", f"[sip]\n{key} = 0\n", 1)
        bad = "\n".join(line for line in bad.split("\n") if not line.startswith(f"{key} = ") or line == f"{key} = 0")
        with pytest.raises(ConfigInvalid) as info:
            parse_config(bad, "x.toml")
        assert [str(p) for p in info.value.problems if f"sip.{key}" in str(p)], key
