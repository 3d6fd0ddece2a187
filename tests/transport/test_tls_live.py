"""SIP over TLS and TCP on live sockets (127.0.0.1, port 0), with certificates made in the test by ``cryptography``.

Both ends are our own stack on the real reactor: a server (``EchoUas``) and a
client endpoint that sends OPTIONS to ``sip:...;transport=tls``; the last tests put
a real node (``prepaid run``) between a TLS phone and an agent.  The reactor
is spun in bounded steps until the answer or the failure comes.
"""

from __future__ import annotations

import time

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.internet import reactor

from b2bua.node.config import SipSettings
from b2bua.sip.endpoint import ResponseReceived, SipEndpoint, TransactionTimedOut, TransportFailed
from b2bua.sip.peer import Peer
from tests.support.sip_apps import EchoUas
from b2bua.transport import SipTransports, TlsConfigError, listen_sip
from b2bua.transport_tls import TlsFiles
from tests.sipp.harness import free_port
from tests.support.pki import make_ca, make_leaf


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "test-ca")
    other = make_ca(folder, "other-ca")
    return {
        "ca": ca[2].cert,
        "other_ca": other[2].cert,
        "server": make_leaf(folder, ca, "sip-server", ExtendedKeyUsageOID.SERVER_AUTH),
        "client": make_leaf(folder, ca, "carrier", ExtendedKeyUsageOID.CLIENT_AUTH),
        "stranger_server": make_leaf(folder, other, "stranger", ExtendedKeyUsageOID.SERVER_AUTH),
    }


# ---- two stacks on the real reactor --------------------------------------------------------------
class Side:
    def __init__(self, tls: TlsFiles | None) -> None:
        self.endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={})
        self.events: list[object] = []
        self.uas = EchoUas(self.endpoint, reactor.seconds)

        def on_event(event):
            self.events.append(event)
            self.uas.on_event(event)
        self.transports = SipTransports(reactor, self.endpoint, on_event, tls=tls)


@pytest.fixture
def sides():
    made: list[Side] = []

    def make(tls: TlsFiles | None = None) -> Side:
        side = Side(tls)
        made.append(side)
        return side
    yield make
    for side in made:
        side.transports.stop()
    for _ in range(20):
        reactor.iterate(0.001)


def spin_until(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(5000):
        if predicate():
            return
        if time.monotonic() > deadline:
            break
        reactor.iterate(0.005)
    raise AssertionError("nothing happened in time")


def ask_options(client: Side, uri: str) -> str:
    request = client.endpoint.make_request("OPTIONS", uri, from_="<sip:carrier@127.0.0.1>", to=f"<{uri}>")
    tid = client.endpoint.send_request(request, reactor.seconds())
    client.transports.flush()
    return tid


def outcome(client: Side, tid: str):
    for e in client.events:
        if isinstance(e, ResponseReceived) and e.transaction_id == tid and e.response.status >= 200:
            return e.response.status
        if isinstance(e, (TransportFailed, TransactionTimedOut)) and e.transaction_id == tid:
            return type(e).__name__
    return None


def test_options_over_tls_is_answered(pki, sides):
    """A client trusting the test CA sends OPTIONS over TLS; the server's certificate checks out and 200 comes back."""
    server = sides(TlsFiles(pki["server"].cert, pki["server"].key))
    port = server.transports.listen_tls(0, "127.0.0.1")
    client = sides(TlsFiles("", "", server_ca=pki["ca"]))
    tid = ask_options(client, f"sip:service@127.0.0.1:{port};transport=tls")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == 200
    assert server.uas.counts["options"] == 1
    assert list(client.transports.connections) == [Peer("tls", "127.0.0.1", port)]


def test_mutual_tls_accepts_a_client_certificate_from_the_carrier_ca(pki, sides):
    """With tls_client_ca set, a client presenting a certificate signed by that CA is answered."""
    server = sides(TlsFiles(pki["server"].cert, pki["server"].key, pki["ca"]))
    port = server.transports.listen_tls(0, "127.0.0.1")
    client = sides(TlsFiles(pki["client"].cert, pki["client"].key, server_ca=pki["ca"]))
    tid = ask_options(client, f"sip:service@127.0.0.1:{port};transport=tls")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == 200


def test_mutual_tls_refuses_a_client_without_certificate(pki, sides):
    """With tls_client_ca set, a client with no certificate loses the connection; its request never reaches the TU."""
    server = sides(TlsFiles(pki["server"].cert, pki["server"].key, pki["ca"]))
    port = server.transports.listen_tls(0, "127.0.0.1")
    client = sides(TlsFiles("", "", server_ca=pki["ca"]))
    tid = ask_options(client, f"sip:service@127.0.0.1:{port};transport=tls")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == "TransportFailed"
    assert server.uas.counts["options"] == 0


def test_client_refuses_a_server_certificate_from_another_ca(pki, sides):
    """Our TLS client checks the peer: a server certificate not signed by the configured CA fails the request."""
    server = sides(TlsFiles(pki["stranger_server"].cert, pki["stranger_server"].key))
    port = server.transports.listen_tls(0, "127.0.0.1")
    client = sides(TlsFiles("", "", server_ca=pki["ca"]))
    tid = ask_options(client, f"sip:service@127.0.0.1:{port};transport=tls")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == "TransportFailed"
    assert server.uas.counts["options"] == 0


def test_tls_server_ca_is_what_outgoing_connections_trust(pki, sides):
    """Agents signed by another CA than the carriers': with ``tls_server_ca`` naming it, the node's outgoing
    connection accepts the agent's certificate, while ``tls_client_ca`` still names the carriers' CA."""
    server = sides(TlsFiles(pki["stranger_server"].cert, pki["stranger_server"].key))
    port = server.transports.listen_tls(0, "127.0.0.1")
    client = sides(TlsFiles("", "", client_ca=pki["ca"], server_ca=pki["other_ca"]))
    tid = ask_options(client, f"sip:agent@127.0.0.1:{port};transport=tls")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == 200


def test_without_tls_server_ca_the_carriers_ca_vouches_for_no_server(pki, sides):
    """``tls_server_ca`` unset: outgoing connections trust the system's store only. A server signed by the CA
    of ``tls_client_ca`` (which signs carriers' client certificates) is refused: that CA is no server's
    authority, and trusting it for servers was the old default."""
    server = sides(TlsFiles(pki["server"].cert, pki["server"].key))
    port = server.transports.listen_tls(0, "127.0.0.1")
    client = sides(TlsFiles("", "", client_ca=pki["ca"]))
    tid = ask_options(client, f"sip:agent@127.0.0.1:{port};transport=tls")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == "TransportFailed"
    assert server.uas.counts["options"] == 0


def test_our_bye_reaches_a_tls_caller_over_its_own_connection(pki, sides):
    """A phone calls over TLS with a Contact where nothing listens (behind NAT, no certificate of its own).
    When the node ends the call its BYE goes over the phone's connection and is answered; no connection is
    opened toward the Contact (which used to leave the phone in a silent call)."""
    node = sides(TlsFiles(pki["server"].cert, pki["server"].key))
    port = node.transports.listen_tls(0, "127.0.0.1")
    phone = sides(TlsFiles("", "", server_ca=pki["ca"]))
    dead_port = free_port()
    target = f"sip:service@127.0.0.1:{port};transport=tls"
    invite = phone.endpoint.make_request("INVITE", target, from_="<sip:caller@127.0.0.1>", to=f"<{target}>",
                                         headers=[("Contact", f"<sip:phone@127.0.0.1:{dead_port};transport=tls>")])
    phone.endpoint.send_request(invite, reactor.seconds())
    phone.transports.flush()
    spin_until(lambda: node.uas.counts["ack"] == 1)
    [dialog_id] = node.endpoint.dialogs
    bye = node.endpoint.request_in_dialog(dialog_id, "BYE", reactor.seconds())
    node.transports.flush()
    spin_until(lambda: outcome(node, bye) is not None)
    assert outcome(node, bye) == 200 and phone.uas.counts["bye"] == 1
    assert len(node.transports.connections) == 1


def test_bad_tls_files_are_reported_with_the_key_name(tmp_path, pki, sides):
    """A missing certificate file or a key that is not PEM raises TlsConfigError naming the setting."""
    side = sides(TlsFiles(str(tmp_path / "missing.crt"), pki["server"].key))
    with pytest.raises(TlsConfigError, match="tls_certificate"):
        side.transports.listen_tls(0, "127.0.0.1")
    (tmp_path / "junk.key").write_text("not a key")
    side = sides(TlsFiles(pki["server"].cert, str(tmp_path / "junk.key")))
    with pytest.raises(TlsConfigError, match="tls_private_key"):
        side.transports.listen_tls(0, "127.0.0.1")


def test_listen_sip_serves_udp_tcp_and_tls_from_the_config(pki, sides):
    """listen_sip binds the configured ports, sets the endpoint's Via/Contact ports, and OPTIONS is answered on each."""
    udp, tcp, tls = free_port(), free_port(), free_port()
    settings = SipSettings(address="127.0.0.1", udp_port=udp, tcp_port=tcp, tls_port=tls,
                           tls_certificate=pki["server"].cert, tls_private_key=pki["server"].key, tls_client_ca="",
                           default_region="DE", max_call_duration_s=14400, session_expires_s=1800, min_se_s=90,
                           user_agent="prepaid")
    endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={})
    uas = EchoUas(endpoint, reactor.seconds)
    transports, bound = listen_sip(reactor, endpoint, settings, uas.on_event)
    try:
        assert (bound.udp, bound.tcp, bound.tls) == (udp, tcp, tls)
        assert bound.by_transport() == {"udp": udp, "tcp": tcp, "tls": tls}
        endpoint.local_ports.update(bound.by_transport())
        client = sides(TlsFiles("", "", server_ca=pki["ca"]))
        client.endpoint.local_ports["udp"] = client.transports.listen_udp(0, "127.0.0.1")
        tids = [ask_options(client, f"sip:service@127.0.0.1:{udp}"),
                ask_options(client, f"sip:service@127.0.0.1:{tcp};transport=tcp"),
                ask_options(client, f"sip:service@127.0.0.1:{tls};transport=tls")]
        spin_until(lambda: all(outcome(client, t) is not None for t in tids))
        assert [outcome(client, t) for t in tids] == [200, 200, 200]
        assert uas.counts["options"] == 3
    finally:
        transports.stop()


def test_tcp_garbage_on_a_live_socket_closes_that_connection_only(sides):
    """A live TCP peer sending unframeable bytes is disconnected; a second connection is still answered."""
    import socket
    server = sides()
    port = server.transports.listen_tcp(0, "127.0.0.1")
    bad = socket.create_connection(("127.0.0.1", port))
    bad.setblocking(False)
    bad.sendall(b"INVITE sip:x SIP/2.0\r\nContent-Length: lots\r\n\r\n")
    closed = []

    def bad_closed():
        try:
            closed.append(bad.recv(100) == b"")
        except BlockingIOError:
            return False
        except ConnectionResetError:
            closed.append(True)
        return bool(closed)
    spin_until(bad_closed)
    bad.close()
    client = sides()
    tid = ask_options(client, f"sip:service@127.0.0.1:{port};transport=tcp")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == 200


def _ipv6_loopback() -> bool:
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_udp_over_ipv6_loopback(sides):
    """A listener on ::1 answers an OPTIONS sent over IPv6 UDP; the answer goes back to the IPv6 source."""
    server = sides()
    port = server.transports.listen_udp(0, "::1")
    client = sides()
    client.endpoint.local_host = "::1"
    client.endpoint.local_ports["udp"] = client.transports.listen_udp(0, "::1")
    tid = ask_options(client, f"sip:service@[::1]:{port}")
    spin_until(lambda: outcome(client, tid) is not None)
    assert outcome(client, tid) == 200
    request = [e for e in server.events if hasattr(e, "peer")][0]
    assert request.peer == Peer("udp", "::1", client.endpoint.local_ports["udp"])


def test_a_large_udp_request_is_read_whole(sides):
    """An OPTIONS of about 20 kB in one datagram (more than Twisted's default 8 kB read) is answered 200."""
    import socket
    server = sides()
    port = server.transports.listen_udp(0, "127.0.0.1")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.setblocking(False)
    me = probe.getsockname()[1]
    filler = "".join(f"X-Filler-{i}: {'y' * 180}\r\n" for i in range(100))
    probe.sendto((f"OPTIONS sip:service@127.0.0.1:{port} SIP/2.0\r\n"
                  f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-big;rport\r\nMax-Forwards: 70\r\n{filler}"
                  "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: big@127.0.0.1\r\n"
                  "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode(), ("127.0.0.1", port))
    got = []

    def answered():
        try:
            got.append(probe.recv(65535))
        except BlockingIOError:
            return False
        return True
    try:
        spin_until(answered)
    finally:
        probe.close()
    assert got[0].startswith(b"SIP/2.0 200 ") and b"big@127.0.0.1" in got[0]   # the headers after 8 kB were read


# ---- a real node (``prepaid run``) between a TLS phone and an agent ------------------------------
CALLER = "+49301234567"
SERVICE = "+493012345678"


def _tls_call_through_node(pki, sides, tmp_path):
    """A real node listening on TLS, an agent (our UAS on UDP) it rings, and a phone that calls the node over
    TLS with a Contact where nothing listens (no certificate of its own, behind NAT): the call bridged, the
    phone's TLS connection the only way to it. (node, phone, agent, agent's dialog id)."""
    from tests.sipp.node import start_node
    from tests.support.sip_apps import minimal_sdp
    agent = sides()
    agent_port = agent.transports.listen_udp(0, "127.0.0.1")
    agent.endpoint.local_ports["udp"] = agent_port
    tls_port = free_port()
    node = start_node(tmp_path, agents=[f"sip:agent@127.0.0.1:{agent_port}"], sections={"sip": {
        "tls_port": str(tls_port), "tls_certificate": f'"{pki["server"].cert}"',
        "tls_private_key": f'"{pki["server"].key}"'}}).follow()
    node.topup(CALLER, "10")
    phone = sides(TlsFiles("", "", server_ca=pki["ca"]))
    target = f"sip:{SERVICE}@127.0.0.1:{tls_port};transport=tls"
    invite = phone.endpoint.make_request(
        "INVITE", target, from_=f"<sip:{CALLER}@127.0.0.1>", to=f"<{target}>",
        headers=[("Contact", f"<sip:{CALLER}@127.0.0.1:{free_port()};transport=tls>")],
        body=minimal_sdp("127.0.0.1", free_port()), content_type="application/sdp")
    phone.endpoint.send_request(invite, reactor.seconds())
    phone.transports.flush()
    spin_until(lambda: agent.uas.counts["ack"] == 1, timeout_s=15)
    [dialog_id] = agent.endpoint.dialogs
    assert len(phone.transports.connections) == 1
    return node, phone, agent, dialog_id


@pytest.mark.slow
def test_the_agent_hangs_up_and_a_tls_phone_that_accepts_no_connection_gets_our_bye(pki, sides, tmp_path):
    """Through a real node: the phone called over TLS and listens nowhere; the agent hangs up, and the node's
    BYE reaches the phone over the phone's own connection (the phone opened no other, and none was
    accepted); the record says the agent hung up."""
    node, phone, agent, dialog_id = _tls_call_through_node(pki, sides, tmp_path)
    try:
        agent.endpoint.request_in_dialog(dialog_id, "BYE", reactor.seconds())
        agent.transports.flush()
        spin_until(lambda: phone.uas.counts["bye"] == 1, timeout_s=10)
        assert len(phone.transports.connections) == 1
        spin_until(lambda: node.records(timeout_s=0), timeout_s=10)     # the phone's 200 goes out as the reactor runs
        [record] = node.records()
        assert record["end_reason"] == "agent_hangup"
    finally:
        node.stop()


@pytest.mark.slow
def test_a_reinvite_the_callers_gone_connection_cannot_carry_ends_the_call(pki, sides, tmp_path):
    """Through a real node: the phone's TLS connection closes after the answer and nothing listens at its
    Contact. The agent puts the call on hold; the re-INVITE the node relays to the phone cannot be sent (the
    new connection is refused): the node logs a warning with the call id, sends the agent its BYE at once
    instead of leaving a silent call, and records the caller as out of reach."""
    from tests.support.sip_apps import minimal_sdp
    node, phone, agent, dialog_id = _tls_call_through_node(pki, sides, tmp_path)
    try:
        [connection] = phone.transports.connections.values()
        connection.transport.loseConnection()
        spin_until(lambda: not phone.transports.connections)
        for _ in range(20):
            reactor.iterate(0.01)           # the node sees the close
        hold = minimal_sdp("127.0.0.1", free_port(), session_id=2) + b"a=sendonly\r\n"
        agent.endpoint.request_in_dialog(dialog_id, "INVITE", reactor.seconds(), body=hold,
                                         content_type="application/sdp")
        agent.transports.flush()
        spin_until(lambda: agent.uas.counts["bye"] == 1, timeout_s=10)
        seen = node.wait_line("our INVITE to the caller could not be sent (503)", timeout_s=5)
        assert seen is not None, "".join(line for _, line in node.lines)[-3000:]
        [record] = node.records()
        assert record["end_reason"] == "caller_unreachable"
        assert record["call_id"] in seen[1]
    finally:
        node.stop()
