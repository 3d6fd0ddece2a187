"""Allow and Supported come from one place (b2bua.capabilities) and the node's endpoint answers by them."""

from __future__ import annotations

from b2bua.capabilities import ALLOW, ALLOWED_METHODS, SUPPORTED_AS_UAC, SUPPORTED_AS_UAS, uac_headers, uas_headers
from b2bua.sip.codec import parse_message
from b2bua.sip.endpoint import SipEndpoint
from b2bua.sip.peer import Peer

CARRIER = Peer("udp", "127.0.0.1", 5080)


def request(method: str, extra: str = "") -> bytes:
    return (f"{method} sip:+4930@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{method}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:c@127.0.0.1>;tag=1\r\nTo: <sip:+4930@127.0.0.1>\r\n"
            f"Call-ID: cap-{method}\r\nCSeq: 1 {method}\r\nContact: <sip:c@127.0.0.1:5080>\r\n{extra}"
            f"Content-Length: 0\r\n\r\n").encode()


def node() -> SipEndpoint:
    """The endpoint as the node makes it (b2bua.node.app)."""
    return SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060}, allowed_methods=ALLOWED_METHODS,
                       supported_extensions=SUPPORTED_AS_UAS)


def test_allow_lists_what_we_handle_info_included():
    """INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, PRACK and INFO (b2bua.info); REFER, MESSAGE... are not ours."""
    assert ALLOW == "ACK, BYE, CANCEL, INFO, INVITE, OPTIONS, PRACK, UPDATE"
    assert not {"REFER", "MESSAGE", "SUBSCRIBE", "NOTIFY", "PUBLISH"} & ALLOWED_METHODS


def test_supported_depends_on_our_role():
    """As UAS we do reliable provisionals and session timers; as UAC only timers (we send no PRACK)."""
    assert uas_headers() == [("Allow", ALLOW), ("Supported", "100rel, timer")]
    assert uac_headers() == [("Allow", ALLOW), ("Supported", "timer")]
    assert set(SUPPORTED_AS_UAC) <= set(SUPPORTED_AS_UAS)


def test_the_405_of_the_nodes_endpoint_carries_the_same_allow():
    """A REFER (or MESSAGE) out of the blue gets 405 whose Allow is exactly ours."""
    for method in ("REFER", "MESSAGE"):
        ep = node()
        ep.receive(request(method), CARRIER, 0.0)
        (out,) = ep.take_outgoing()
        response = parse_message(out.data)
        assert (response.status, response.headers.get("allow")) == (405, ALLOW)


def test_a_require_outside_what_we_support_as_uas_gets_420():
    """Require: 100rel and timer are fine; Require: replaces gets 420 Unsupported: replaces."""
    ep = node()
    ep.receive(request("OPTIONS", "Require: 100rel, timer\r\n"), CARRIER, 0.0)
    assert ep.take_outgoing() == [] and len(ep.take_events()) == 1
    ep.receive(request("INVITE", "Require: replaces\r\n"), CARRIER, 0.0)
    statuses = [(parse_message(o.data).status, parse_message(o.data).headers.get("unsupported"))
                for o in ep.take_outgoing()]
    assert [s for s in statuses if s[0] >= 200] == [(420, "replaces")]


def test_legs_with_the_same_allow_text_share_one_set_of_methods():
    """A held call keeps its peers' Allow per leg: the same text (any two calls through one carrier) gives the
    very same frozenset, read case-insensitively; a different text its own; an Allow too long to keep is still read."""
    from b2bua.legs import allowed_methods
    from b2bua.sip.headers import Headers
    one = allowed_methods(Headers([("Allow", "INVITE, ACK, bye"), ("Allow", "UPDATE")]))
    again = allowed_methods(Headers([("Allow", "INVITE, ACK, bye"), ("Allow", "UPDATE")]))
    assert one == {"INVITE", "ACK", "BYE", "UPDATE"} and again is one
    assert allowed_methods(Headers([("Allow", "INVITE, ACK")])) == {"INVITE", "ACK"}
    long_text = ", ".join(f"X{i}" for i in range(200))
    assert len(allowed_methods(Headers([("Allow", long_text)]))) == 200
