"""EchoUas and SimpleUac against each other on a ``Clock``: two stacks joined by an in-memory UDP link, no sockets.

The link delivers each datagram 1 ms later through the reactor, and can drop
datagrams, so retransmissions and hold times run on virtual time.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock

from b2bua.sip.codec import parse_message
from b2bua.sip.endpoint import RequestReceived, SipEndpoint
from tests.support.sip_apps import EchoUas, SimpleUac
from b2bua.transport import SipTransports


class LinkPort:
    """A UDP port on a shared in-memory link: writes arrive at the port bound to the address, 1 ms later."""

    def __init__(self, link: "Link", port: int, protocol) -> None:
        self.link, self.port, self.protocol = link, port, protocol

    def write(self, data: bytes, addr) -> None:
        self.link.send(data, ("127.0.0.1", self.port), addr)

    def getHost(self):
        return IPv4Address("UDP", "127.0.0.1", self.port)

    def stopListening(self):
        self.link.ports.pop(self.port, None)


class Link(MemoryReactorClock):
    def __init__(self, drop=lambda data: False) -> None:
        super().__init__()
        self.ports: dict[int, LinkPort] = {}
        self.drop = drop
        self.log: list[bytes] = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.ports[port] = LinkPort(self, port, protocol)
        return self.ports[port]

    def send(self, data, source, dest) -> None:
        self.log.append(data)
        if self.drop(data) or dest[1] not in self.ports:
            return
        self.callLater(0.001, lambda: dest[1] in self.ports and
                       self.ports[dest[1]].protocol.datagramReceived(data, source))

    def run(self, seconds: float, step: float = 0.001) -> None:
        for _ in range(int(seconds / step)):
            self.advance(step)


def pair(link: Link, *, calls: int, hold_s: float = 2.0, uas_factory=EchoUas):
    uas_ep = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060})
    uas = uas_factory(uas_ep, link.seconds)
    uas_tr = SipTransports(link, uas_ep, uas.on_event)
    uas_tr.listen_udp(5060, "127.0.0.1")
    uac_ep = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5070})
    done = []
    box = {}
    uac_tr = SipTransports(link, uac_ep, lambda e: box["uac"].on_event(e))
    uac_tr.listen_udp(5070, "127.0.0.1")
    uac = SimpleUac(uac_ep, link, uac_tr.flush, target="sip:service@127.0.0.1:5060", calls=calls,
                    rate_per_s=10, hold_s=hold_s, on_done=done.append)
    box["uac"] = uac
    return uas, uac, done


def methods(link: Link) -> list[str]:
    out = []
    for data in link.log:
        msg = parse_message(data)
        out.append(getattr(msg, "method", None) or str(msg.status))
    return out


def test_calls_are_placed_answered_held_and_hung_up():
    """Five calls: INVITE, 100, 200, ACK, BYE after the hold time, 200; both sides count five."""
    link = Link()
    uas, uac, done = pair(link, calls=5, hold_s=2.0)
    uac.start()
    link.run(1.0)
    assert uas.counts["invite"] == 5 and uas.counts["bye"] == 0       # still held at 1 s (rate 10/s)
    link.run(2.5)
    assert done and (done[0].succeeded, done[0].failed) == (5, 0)
    assert (uas.counts["invite"], uas.counts["ack"], uas.counts["bye"]) == (5, 5, 5)
    seen = methods(link)
    assert seen.count("INVITE") == 5 and seen.count("ACK") == 5 and seen.count("BYE") == 5


def test_lost_datagrams_are_retransmitted_and_calls_still_succeed():
    """Dropping the first copy of every INVITE, 200 and BYE: the cores retransmit on the Clock; all calls succeed."""
    seen: set[bytes] = set()

    def drop_first_copy(data: bytes) -> bool:
        first = data.split(b"\r\n", 1)[0]
        if first.startswith((b"INVITE", b"BYE", b"SIP/2.0 200")) and data not in seen:
            seen.add(data)
            return True
        return False
    link = Link(drop=drop_first_copy)
    uas, uac, done = pair(link, calls=3, hold_s=1.0)
    uac.start()
    link.run(8.0, step=0.005)
    assert done and (done[0].succeeded, done[0].failed) == (3, 0)


class BusyUas(EchoUas):
    """Answers every INVITE 486."""

    def on_event(self, event):
        if isinstance(event, RequestReceived) and event.request.method == "INVITE":
            self.endpoint.respond(event.transaction_id, 486, self.now())
        else:
            super().on_event(event)


def test_a_refused_call_counts_as_failed_with_its_status():
    """A 486 to the INVITE is a failure named by its status; no BYE is sent."""
    link = Link()
    uas, uac, done = pair(link, calls=2, uas_factory=BusyUas)
    uac.start()
    link.run(1.0)
    assert done and (done[0].succeeded, done[0].failed) == (0, 2)
    assert done[0].failures == {"INVITE 486": 2}
    assert "BYE" not in methods(link)


def test_an_unreachable_target_fails_by_timeout():
    """With nothing listening, the INVITE times out (timer B, 64*T1) and the call counts as failed."""
    link = Link()
    uac_ep = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5070})
    done = []
    box = {}
    tr = SipTransports(link, uac_ep, lambda e: box["uac"].on_event(e))
    tr.listen_udp(5070, "127.0.0.1")
    box["uac"] = SimpleUac(uac_ep, link, tr.flush, target="sip:service@127.0.0.1:5999", calls=1,
                           on_done=done.append)
    box["uac"].start()
    link.run(31.0, step=0.5)
    assert not done
    link.run(2.0, step=0.5)
    assert done and done[0].failed == 1 and done[0].failures == {"INVITE TransactionTimedOut": 1}
