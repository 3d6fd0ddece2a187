"""A message's parsed header views: read once and kept, a broken header raising on every read."""

from __future__ import annotations

import pytest

from b2bua.sip.codec import parse_message
from b2bua.sip.errors import SipParseError

REQUEST = (b"OPTIONS sip:service@127.0.0.1 SIP/2.0\r\n"
           b"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-views-1\r\n"
           b"From: <sip:a@192.0.2.10>;tag=f1\r\nTo: <sip:b@127.0.0.1>\r\n"
           b"Call-ID: views-1@192.0.2.10\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def test_a_view_is_read_once_and_kept_on_the_message():
    """from_, vias and cseq give the same objects on the second read; they live in the message's own dict."""
    msg = parse_message(REQUEST)
    assert msg.from_ is msg.from_ and msg.vias is msg.vias
    assert msg.cseq.seq == 7 and "cseq" in vars(msg)
    assert type(msg).from_.__doc__.startswith("The From address")


def test_a_broken_header_raises_on_every_read():
    """A bad To is not remembered as anything: each read raises the same 400 reason."""
    msg = parse_message(REQUEST.replace(b"To: <sip:b@127.0.0.1>", b"To: <sip:b@bad host>"))
    for _ in range(2):
        with pytest.raises(SipParseError) as err:
            msg.to  # noqa: B018
        assert err.value.reason == "Bad To"
    assert "to" not in vars(msg)


def test_a_stamped_request_knows_its_new_top_via_and_keeps_the_other_views():
    """stamp_via's copy: top_via is what its header text reads as, vias start with it, From is the one read before."""
    from b2bua.sip.headers import Via
    from b2bua.sip.peer import Peer
    from b2bua.sip.transactions import stamp_via

    msg = parse_message(REQUEST.replace(b"z9hG4bK-views-1", b"z9hG4bK-views-1;rport").replace(
        b"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-views-1;rport\r\n",
        b"Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-views-1;rport, SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK2\r\n"))
    from_ = msg.from_
    stamped = stamp_via(msg, Peer("udp", "198.51.100.7", 40000))
    text = stamped.headers.get_all("via")[0]
    assert stamped.top_via == Via.parse(text) and stamped.top_via.received == "198.51.100.7"
    assert stamped.top_via.rport == 40000
    assert stamped.vias[0] is stamped.top_via and stamped.vias[1].host == "10.0.0.1"
    assert stamped.from_ is from_ and stamped.headers.get("from") == msg.headers.get("from")
