"""What a caller's codecs meet: every caller offer against every agent, through the real manager, SIP and relay.

The carrier offers PCMU, PCMA, both in either order, or no G.711 at all (G.722, opus), each with and without
telephone-event; the agent takes PCMU, PCMA or both (it answers with the first codec of our offer it takes,
RFC 3264).  Each row pins our offer to the agent, the codec each leg agreed, whether the relay transcodes,
or the 488 with its Warning that a caller without G.711 gets before any agent is rung.  The rows are
written out, not computed: they are the behaviour the README describes.
"""

from __future__ import annotations

import pytest

from media.sdp import parse_sdp
from tests.support.calls import AGENT, CARRIER, NODE
from tests.support.callmedia import relay_session

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True

BOTH = ("PCMA", "PCMU")
OPUS = "m=audio {port} RTP/AVP 111{ev}\r\na=rtpmap:111 opus/48000/2\r\n"
G722 = "m=audio {port} RTP/AVP 9{ev}\r\n"

#: (carrier formats, agent takes, answer mode) -> (our offer's formats, leg a codec, leg b codec, transcoded)
ROWS = [
    ("0", ("PCMU",), "agent", ("0", "8"), "PCMU", "PCMU", False),
    ("0", ("PCMA",), "agent", ("0", "8"), "PCMU", "PCMA", True),
    ("0", BOTH, "agent", ("0", "8"), "PCMU", "PCMU", False),
    ("8", ("PCMU",), "agent", ("8", "0"), "PCMA", "PCMU", True),
    ("8", ("PCMA",), "agent", ("8", "0"), "PCMA", "PCMA", False),
    ("8", BOTH, "agent", ("8", "0"), "PCMA", "PCMA", False),
    ("8 0", ("PCMU",), "agent", ("8", "0"), "PCMU", "PCMU", False),     # the carrier is answered after
    ("8 0", ("PCMA",), "agent", ("8", "0"), "PCMA", "PCMA", False),     # the agent, in the agent's law
    ("8 0", BOTH, "agent", ("8", "0"), "PCMA", "PCMA", False),
    ("0 8", ("PCMU",), "agent", ("8", "0"), "PCMU", "PCMU", False),
    ("0 8", ("PCMA",), "agent", ("8", "0"), "PCMA", "PCMA", False),
    ("0 8", BOTH, "agent", ("8", "0"), "PCMA", "PCMA", False),
    # answered first (the announcement), the carrier keeps A-law: an agent on mu-law is transcoded
    ("8 0", ("PCMU",), "answer", ("8", "0"), "PCMA", "PCMU", True),
    ("0 8", ("PCMU",), "answer", ("8", "0"), "PCMA", "PCMU", True),
    ("0", ("PCMA",), "answer", ("0", "8"), "PCMU", "PCMA", True),
    ("0", BOTH, "answer", ("0", "8"), "PCMU", "PCMU", False),
]


def formats(body: bytes) -> tuple[str, ...]:
    return parse_sdp(body).media[0].formats


@pytest.mark.parametrize("events", [True, False], ids=["events", "no-events"])
@pytest.mark.parametrize("carrier, agent_takes, mode, offered, a_codec, b_codec, transcoded", ROWS)
def test_each_caller_offer_meets_each_agent(make_wire, events, carrier, agent_takes, mode, offered, a_codec,
                                            b_codec, transcoded):
    """The row's offer reaches the agent (telephone-event 101 after the laws when the carrier offered it), the
    call is bridged with the row's codec on each leg, and the relay transcodes exactly when they differ."""
    wire = make_wire(mode)
    wire.agent.accepts = agent_takes
    wire.carrier.call(body=wire.carrier.sdp(carrier + (" 101" if events else ""), version=1))
    (invite,) = wire.agent.got("INVITE")
    assert formats(invite.body) == offered + (("101",) if events else ())
    call, (media,) = wire.call, wire.media
    assert call.state.value == "bridged"
    (ok,) = wire.sent(NODE, CARRIER, status=200)
    assert formats(ok.body)[0] == {"PCMA": "8", "PCMU": "0"}[a_codec]
    assert (media.a.codec, media.b.codec) == (a_codec, b_codec)
    assert (media.a.event_payload_type is not None, media.b.event_payload_type is not None) == (events, events)
    s = relay_session(media)
    assert (s.a_out.codec, s.a_out.source_codec, s.b_out.codec, s.b_out.source_codec) == (
        a_codec, b_codec, b_codec, a_codec)
    assert (s.a_out.source_codec != s.a_out.codec) is transcoded
    wire.carrier.send("BYE")
    wire.settle()


@pytest.mark.parametrize("events", [True, False], ids=["events", "no-events"])
@pytest.mark.parametrize("codec", [G722, OPUS], ids=["G722", "opus"])
@pytest.mark.parametrize("agent_takes", [("PCMU",), ("PCMA",), BOTH], ids=["PCMU", "PCMA", "both"])
def test_a_caller_without_g711_gets_488_with_a_warning_and_no_agent_is_rung(make_wire, events, codec,
                                                                              agent_takes):
    """G.722 or opus only: 488 with ``Warning: 305 <our host> "Incompatible media format"`` (RFC 3261
    §20.43), before anything else is sent; no agent is rung, nothing is left open."""
    wire = make_wire("answer")
    wire.agent.accepts = agent_takes
    media = codec.format(port=40000, ev=" 101" if events else "")
    if events:
        media += "a=rtpmap:101 telephone-event/8000\r\n"
    wire.carrier.call(body=("v=0\r\no=c 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                            + media).encode())
    finals = [m for src, dst, m in wire.log if (src, dst) == (NODE, CARRIER) and getattr(m, "status", 0) > 100]
    assert [m.status for m in finals] == [488]
    assert finals[0].headers.get_all("warning") == ['305 127.0.0.1 "Incompatible media format"']
    assert wire.sent(NODE, AGENT, method="INVITE") == []
    wire.settle()


def test_an_agent_answering_with_a_codec_we_did_not_offer_ends_the_call_as_media_refused(make_wire):
    """The agent's 200 names G.722 only (we offered G.711): the media reports ``media_refused`` and that is
    the call's end reason as the node wires it (CallManager.media_dead; the node once turned every reason into
    ``media_timeout``); the agent gets our BYE, the carrier a BYE or a final error, and nothing is left open."""
    wire = make_wire("agent")
    wire.agent.accepts = ("G722",)
    wire.agent.codec_answer = lambda request: wire.agent.sdp("9")
    wire.carrier.call()
    wire.run(1.0)
    (record,) = wire.records
    assert record.end_reason == "media_refused"
    assert len(wire.agent.got("BYE")) == 1
    carrier_ended = wire.carrier.got("BYE") or [r for r in wire.carrier.finals("INVITE") if r.status >= 300]
    assert len(carrier_ended) == 1
    wire.settle()
