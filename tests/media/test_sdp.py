"""SDP parsing and offer/answer for the anchoring B2BUA, checked on the bytes we write."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.sdp import (LocalSdp, NotAcceptable, SdpError, accept_answer, answer_offer, check_offer, chosen_codec,
                       make_offer, offer_from, parse_sdp, write_sdp)


def sdp(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


CARRIER_OFFER = sdp(
    "v=0", "o=carrier 1234 1 IN IP4 198.51.100.7", "s=call", "c=IN IP4 198.51.100.7", "t=0 0",
    "m=audio 30000 RTP/AVP 8 0 96", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-15", "a=ptime:20", "a=sendrecv")


def leg(address="192.0.2.1", port=20000) -> LocalSdp:
    local = LocalSdp(address, port, session_id="4711")
    local.version = 1
    return local


def test_answer_to_plain_offer_is_exact_bytes():
    """A PCMA/PCMU offer is answered with our o=, c= and port, PCMA only, the offer's event type, ptime 20."""
    answer, neg = answer_offer(parse_sdp(CARRIER_OFFER), leg())
    assert write_sdp(answer) == sdp(
        "v=0", "o=prepaid 4711 1 IN IP4 192.0.2.1", "s=prepaid", "c=IN IP4 192.0.2.1", "t=0 0",
        "m=audio 20000 RTP/AVP 8 96", "a=rtpmap:8 PCMA/8000", "a=rtpmap:96 telephone-event/8000",
        "a=fmtp:96 0-15", "a=ptime:20", "a=sendrecv")
    assert (neg.codec, neg.payload_type, neg.event_payload_type) == ("PCMA", 8, 96)
    assert (neg.remote_address, neg.remote_port, neg.remote_rtcp_port) == ("198.51.100.7", 30000, 30001)
    assert neg.we_may_send and neg.peer_sends


def test_alaw_is_chosen_first_even_when_offered_second():
    """An offer listing PCMU before PCMA gets PCMA (German carriers expect A-law), unless told to prefer."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                          "m=audio 4000 RTP/AVP 0 8"))
    assert answer_offer(offer, leg())[1].codec == "PCMA"
    assert answer_offer(offer, leg(), prefer="PCMU")[1].codec == "PCMU"
    assert b"m=audio 20000 RTP/AVP 0\r\n" in write_sdp(answer_offer(offer, leg(), prefer="PCMU")[0])


def test_ulaw_only_offer_and_our_offer_to_the_agent():
    """A mu-law-only offer is answered with PCMU; our offer to the agent lists both, A-law first, and event 101."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                          "m=audio 4000 RTP/AVP 0"))
    assert answer_offer(offer, leg())[1].payload_type == 0
    ours = make_offer(leg(port=20002))
    assert write_sdp(ours) == sdp(
        "v=0", "o=prepaid 4711 1 IN IP4 192.0.2.1", "s=prepaid", "c=IN IP4 192.0.2.1", "t=0 0",
        "m=audio 20002 RTP/AVP 8 0 101", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv")


def test_agent_answer_is_read_back():
    """The agent's answer picks PCMU; we read its codec, event type and address."""
    ours = make_offer(leg(port=20002))
    answer = parse_sdp(sdp("v=0", "o=agent 9 9 IN IP4 10.1.1.1", "s=-", "c=IN IP4 10.1.1.1", "t=0 0",
                           "m=audio 5004 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000", "a=rtcp:5010"))
    neg = accept_answer(ours, answer)
    assert (neg.codec, neg.payload_type, neg.event_payload_type) == ("PCMU", 0, 101)
    assert (neg.remote_address, neg.remote_port, neg.remote_rtcp_port) == ("10.1.1.1", 5004, 5010)


def test_no_common_codec_is_not_acceptable_488():
    """An offer of G.729 only cannot be relayed: NotAcceptable with status 488."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                          "m=audio 4000 RTP/AVP 18", "a=rtpmap:18 G729/8000"))
    with pytest.raises(NotAcceptable) as err:
        answer_offer(offer, leg())
    assert err.value.status == 488
    srtp_only = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                              "m=audio 4000 RTP/SAVP 8", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xyz"))
    with pytest.raises(NotAcceptable):
        answer_offer(srtp_only, leg())


def test_rejected_and_unrelayable_streams_keep_their_place_with_port_0():
    """A port-0 stream and a video stream stay in place in the answer, with port 0; audio is accepted."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                          "m=audio 0 RTP/AVP 8", "m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000",
                          "m=audio 4000 RTP/AVP 8"))
    answer, neg = answer_offer(offer, leg())
    body = write_sdp(answer)
    assert b"m=audio 0 RTP/AVP 8\r\nm=video 0 RTP/AVP 96\r\nm=audio 20000 RTP/AVP 8\r\n" in body
    assert neg.media_index == 2 and neg.remote_port == 4000


def test_ice_and_crypto_lines_never_cross():
    """ICE candidates, credentials, rtcp-mux and fingerprints from the offer are not in what we write."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                          "a=ice-lite", "m=audio 4000 RTP/AVP 8", "a=ice-ufrag:F7gI", "a=ice-pwd:x9cml",
                          "a=candidate:1 1 UDP 2130706431 10.0.0.2 4000 typ host", "a=rtcp-mux",
                          "a=fingerprint:sha-256 AB:CD", "a=end-of-candidates"))
    answer, _ = answer_offer(offer, leg())
    other = offer_from(offer, leg(port=20002))
    for body in (write_sdp(answer), write_sdp(other)):
        for token in (b"ice", b"candidate", b"rtcp-mux", b"fingerprint", b"10.0.0.2"):
            assert token not in body


def test_hold_and_resume_map_direction_and_raise_version_once():
    """sendonly crosses as sendonly, the answer says recvonly; o= version rises on change and not on a repeat."""
    b_side = leg(port=20002)
    first = offer_from(parse_sdp(CARRIER_OFFER), b_side)
    assert first.origin.version == 1
    hold = parse_sdp(CARRIER_OFFER.replace(b"a=sendrecv", b"a=sendonly"))
    held = offer_from(hold, b_side)
    assert b"a=sendonly\r\n" in write_sdp(held) and held.origin.version == 2
    assert offer_from(hold, b_side).origin.version == 2          # same again: same version
    a_side = leg()
    answer_offer(parse_sdp(CARRIER_OFFER), a_side)
    answer, neg = answer_offer(hold, a_side)
    assert b"a=recvonly\r\n" in write_sdp(answer) and answer.origin.version == 2
    assert not neg.we_may_send and neg.peer_sends
    resumed = offer_from(parse_sdp(CARRIER_OFFER), b_side)
    assert b"a=sendrecv\r\n" in write_sdp(resumed) and resumed.origin.version == 3


def test_old_style_hold_with_zero_address():
    """c=0.0.0.0 (RFC 2543 hold) is read as sendonly: no remote address, and sendonly crosses to the other leg."""
    hold = parse_sdp(CARRIER_OFFER.replace(b"c=IN IP4 198.51.100.7", b"c=IN IP4 0.0.0.0"))
    answer, neg = answer_offer(hold, leg())
    assert neg.remote_address is None and neg.direction == "sendonly" and not neg.we_may_send
    assert b"a=recvonly\r\n" in write_sdp(answer)
    assert b"a=sendonly\r\n" in write_sdp(offer_from(hold, leg(port=20002)))
    assert b"0.0.0.0" not in write_sdp(answer)


def test_ipv6_offer_and_our_ipv6_side():
    """An IN IP6 offer gives an IPv6 remote; our IPv6 address is written as IN IP6 in o= and c=."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP6 2001:db8::7", "s=-", "c=IN IP6 2001:db8::7", "t=0 0",
                          "m=audio 4000 RTP/AVP 8"))
    answer, neg = answer_offer(offer, leg(address="2001:db8::1"))
    assert neg.remote_address == "2001:db8::7"
    body = write_sdp(answer)
    assert b"o=prepaid 4711 1 IN IP6 2001:db8::1\r\n" in body and b"c=IN IP6 2001:db8::1\r\n" in body


def test_media_level_connection_overrides_session_level():
    """A c= inside the m= section is the stream's address."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                          "m=audio 4000 RTP/AVP 8", "c=IN IP4 10.0.0.9"))
    assert answer_offer(offer, leg())[1].remote_address == "10.0.0.9"


@pytest.mark.parametrize("body, reason", [
    (b"", "v=0"),
    (b"v=1\r\n", "v=0"),
    (sdp("v=0", "s=-"), "o= line"),
    (sdp("v=0", "o=x 1 one IN IP4 1.2.3.4"), "numeric version"),
    (sdp("v=0", "o=x 1 1 IN IP4 1.2.3.4", "garbage"), "x=value"),
    (sdp("v=0", "o=x 1 1 IN IP4 1.2.3.4", "c=IN IP4 host.example"), "not an IP address"),
    (sdp("v=0", "o=x 1 1 IN IP4 1.2.3.4", "c=IN IP6 1.2.3.4"), "does not match"),
    (sdp("v=0", "o=x 1 1 IN IP4 1.2.3.4", "m=audio 99999 RTP/AVP 8"), "bad port"),
    (sdp("v=0", "o=x 1 1 IN IP4 1.2.3.4", "m=audio 4000 RTP/AVP 8"), "no c= line"),
    (sdp("v=0", "o=x 1 1 IN IP4 1.2.3.4", "m=audio 4000"), "needs media"),
    (b"v=0\r\no=\xff\r\n", "UTF-8"),
])
def test_parse_errors_are_clear(body, reason):
    """Bad SDP raises SdpError (status 400) naming the problem."""
    with pytest.raises(SdpError, match=reason) as err:
        parse_sdp(body)
    assert err.value.status == 400


def test_bad_rtpmap_is_an_sdp_error():
    """A broken rtpmap in an offer is an SdpError, not a crash, when answering."""
    offer = parse_sdp(sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0",
                          "m=audio 4000 RTP/AVP 96", "a=rtpmap:96 PCMA"))
    with pytest.raises(SdpError):
        answer_offer(offer, leg())


def test_write_parse_round_trip():
    """What we write parses back to the same description."""
    ours = make_offer(leg())
    assert parse_sdp(write_sdp(ours)) == ours


@given(st.lists(st.sampled_from([
    "v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "c=IN IP6 ::1", "c=IN IP4 0.0.0.0",
    "t=0 0", "m=audio 4000 RTP/AVP 8 0 101", "m=audio 0 RTP/AVP 8", "m=video 1 RTP/AVP 96",
    "a=rtpmap:101 telephone-event/8000", "a=rtpmap:8 PCMA", "a=sendonly", "a=inactive", "a=rtcp:x",
    "a=", "x", "m=audio -1 RTP/AVP 8", "a=fmtp:101 0-15"]), max_size=14))
@settings(max_examples=300, deadline=None)
def test_any_line_soup_gives_an_answer_or_an_sdp_error(lines):
    """Whatever lines a peer sends, parsing and answering either work or raise SdpError."""
    try:
        answer_offer(parse_sdp(sdp(*lines)), leg())
    except SdpError:
        pass


CHECKED_OFFERS = [
    CARRIER_OFFER,
    sdp("v=0", "o=x 1 1 IN IP4 192.0.2.9", "s=-", "c=IN IP4 192.0.2.9", "t=0 0", "m=audio 4000 RTP/AVP 18",
        "a=rtpmap:18 G729/8000"),
    sdp("v=0", "o=x 1 1 IN IP4 192.0.2.9", "s=-", "c=IN IP4 192.0.2.9", "t=0 0",
        "m=audio 4000 RTP/SAVP 8", "m=video 4002 RTP/AVP 97", "m=audio 4004 RTP/AVP 0 8"),
    sdp("v=0", "o=x 1 1 IN IP4 192.0.2.9", "s=-", "c=IN IP4 192.0.2.9", "t=0 0",
        "m=audio 4000 RTP/AVP 8", "m=audio 4004 RTP/AVP 96", "a=rtpmap:96 broken"),
    sdp("v=0", "o=x 1 1 IN IP4 192.0.2.9", "s=-", "c=IN IP4 192.0.2.9", "t=0 0", "m=audio 0 RTP/AVP 8"),
    sdp("v=0", "o=x 1 1 IN IP4 192.0.2.9", "s=-", "t=0 0"),
]


@pytest.mark.parametrize("body", CHECKED_OFFERS)
def test_check_offer_raises_what_answer_offer_raises(body):
    """check_offer (the B2BUA's check before answering) accepts and refuses exactly the offers
    answer_offer does, with the same error class, status and reason, a bad rtpmap in a later stream
    included."""
    from media.sdp import check_offer
    parsed = parse_sdp(body)

    def outcome(f):
        try:
            f()
        except SdpError as exc:
            return type(exc), exc.status, str(exc)
        return None

    expected = outcome(lambda: answer_offer(parsed, leg()))
    assert outcome(lambda: check_offer(parsed)) == expected
    assert outcome(lambda: check_offer(parse_sdp(body))) == expected      # again, from the kept answers
    assert (expected is None) == (body in (CHECKED_OFFERS[0], CHECKED_OFFERS[2]))   # both ways covered


def test_codecs_kept_on_our_sections_are_what_their_lines_say():
    """Our own audio sections carry the codec list they were built from; it equals what reading their
    rtpmap lines gives, and it takes no part in comparing sections (LocalSdp's version rule)."""
    from media.sdp import _codecs_of, _read_codecs
    for kwargs in ({}, {"prefer": "PCMU"}, {"codecs": ("PCMU",), "events": False}, {"direction": "sendonly"}):
        m = make_offer(leg(), **kwargs).media[0]
        assert _codecs_of(m) == _read_codecs(m)
        fresh = parse_sdp(write_sdp(make_offer(leg(), **kwargs))).media[0]
        assert fresh._relay_codecs is None
        assert _codecs_of(fresh) == _codecs_of(m) and fresh == m and hash(fresh) == hash(m)
        assert repr(fresh) == repr(m)


def test_sections_keep_what_was_read_of_them_without_an_instance_dict():
    """A held call keeps our section of each leg: what _codecs_of and _event_fmtp keep lives in the section's
    own fields, so no per-section ``__dict__`` is made for them (the collector sees no dict holding them)."""
    import gc

    from media.sdp import _codecs_of, _event_fmtp
    ours = make_offer(leg()).media[0]
    theirs = parse_sdp(write_sdp(make_offer(leg()))).media[0]
    for m in (ours, theirs):
        codecs = _codecs_of(m)
        _event_fmtp(m, codecs[1])
        held = [r for r in gc.get_referents(m) if isinstance(r, dict)]
        assert not any("_relay_codecs" in r or "_event_fmtp" in r for r in held), held
        assert _codecs_of(m) is codecs


def test_what_a_held_call_keeps_of_its_sdp_has_no_instance_dicts():
    """A held call keeps each leg's last description (its o=, c= and m= lines) and what each leg agreed: slotted,
    none of them has a ``__dict__`` of its own (~50 B each, a dozen a call, bench/memory.py --by-site)."""
    from media.sdp import audio_offer
    ours = make_offer(leg())
    theirs = parse_sdp(write_sdp(ours))
    agreed = accept_answer(ours, theirs)
    kept = [theirs, theirs.origin, theirs.connection, theirs.media[0], ours, ours.origin, ours.connection,
            ours.media[0], agreed, audio_offer(theirs)]
    assert [type(o).__name__ for o in kept if hasattr(o, "__dict__")] == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"]),
                          st.integers(0, 3)), max_size=12))
def test_render_versions_follow_the_rfc3264_rule(steps):
    """Against the rule written out: each body carries the version at that time, which rises by one
    exactly when the connection or the media differ from the last body (a repeat keeps it, and is
    equal to the last body); a version the owner sets in between is used as it is."""
    from dataclasses import replace
    local = leg()
    last = None
    expected_version = local.version
    for step in steps:
        if isinstance(step, int):                   # the owner sets the version itself
            local.version = expected_version = step
            continue
        media = make_offer(leg(), direction=step).media
        body = local.render(media)
        if last is not None and replace(last, origin=body.origin) != replace(body, media=media):
            expected_version += 1
        assert body.origin.version == local.version == expected_version
        assert body.media == media and body.origin.session_id == "4711"
        if last is not None and last.media == media and last.origin.version == expected_version:
            assert body == last
        last = body


# -- what a 488 says, and payload types across the two legs (RFC 3264, RFC 3261 §20.43) ----------------

def offer_of(*media_lines: str) -> bytes:
    return sdp("v=0", "o=x 1 1 IN IP4 10.0.0.2", "s=-", "c=IN IP4 10.0.0.2", "t=0 0", *media_lines)


@pytest.mark.parametrize("media_lines, warn_code, names", [
    (("m=audio 4000 RTP/AVP 9",), 305, "G722"),
    (("m=audio 4000 RTP/AVP 111 101", "a=rtpmap:111 opus/48000/2", "a=rtpmap:101 telephone-event/8000"),
     305, "opus"),
    (("m=audio 4000 RTP/AVP 18 9", "a=rtpmap:18 G729/8000"), 305, "G729, G722"),
    (("m=video 4002 RTP/AVP 96", "a=rtpmap:96 H264/90000"), 304, "no audio stream"),
    (("m=audio 0 RTP/AVP 8",), 304, "no audio stream"),
    (("m=audio 4000 RTP/SAVP 8", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xyz"), 302, "RTP/SAVP"),
])
def test_an_offer_we_cannot_take_says_why_with_its_warn_code(media_lines, warn_code, names):
    """No G.711 in the audio: 305 (the formats named in the reason); no audio at all: 304; audio only over
    SRTP: 302.  The same from check_offer, answer_offer and offer_from."""
    offer = parse_sdp(offer_of(*media_lines))
    for attempt in (lambda: check_offer(offer), lambda: answer_offer(offer, leg()),
                    lambda: offer_from(offer, leg())):
        with pytest.raises(NotAcceptable) as err:
            attempt()
        assert (err.value.status, err.value.warn_code) == (488, warn_code)
        assert names in str(err.value)


def test_a_bad_sdp_has_no_warn_code():
    """SDP that does not parse is a 400: nothing for a Warning to say about its media."""
    with pytest.raises(SdpError) as err:
        parse_sdp(b"v=0\r\ns=-\r\n")
    assert (err.value.status, err.value.warn_code) == (400, None)


@pytest.mark.parametrize("codecs, prefer, chosen", [
    (("PCMA", "PCMU"), None, "PCMA"), (("PCMU", "PCMA"), None, "PCMA"), (("PCMU",), None, "PCMU"),
    (("PCMA", "PCMU"), "PCMU", "PCMU"), (("PCMA",), "PCMU", "PCMA"), ((), None, None),
])
def test_chosen_codec_is_the_law_answer_offer_takes(codecs, prefer, chosen):
    """A-law when offered, unless told to prefer mu-law and that is offered too; None without G.711."""
    assert chosen_codec(codecs, prefer) == chosen
    if codecs:
        offer = parse_sdp(offer_of("m=audio 4000 RTP/AVP " + " ".join({"PCMA": "8", "PCMU": "0"}[c] for c in codecs)))
        assert answer_offer(offer, leg(), prefer=prefer)[1].codec == chosen


def test_our_offer_lists_both_laws_the_preferred_first_under_our_own_numbers():
    """make_offer with mu-law preferred: PCMU 0, PCMA 8, telephone-event 101, whatever the other leg used."""
    m = make_offer(leg(), prefer="PCMU").media[0]
    assert m.formats == ("0", "8", "101")
    assert m.attribute_values("rtpmap") == ["0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000"]
    assert make_offer(leg(), prefer="PCMU", events=False).media[0].formats == ("0", "8")


def test_an_answer_under_other_numbers_sends_with_ours_and_receives_with_its_own():
    """The agent answers our offer (PCMU 0, PCMA 8, events 101) with PCMU as 97 and events as 96: we send it
    97 and 96 (what it receives), and read what it sends under our 0 and 101 (RFC 3264 §5.1, §6.1)."""
    ours = make_offer(leg(), prefer="PCMU")
    answer = parse_sdp(offer_of("m=audio 5004 RTP/AVP 97 96", "a=rtpmap:97 PCMU/8000",
                                "a=rtpmap:96 telephone-event/8000"))
    neg = accept_answer(ours, answer)
    assert (neg.codec, neg.payload_type, neg.event_payload_type) == ("PCMU", 97, 96)
    assert (neg.receive_payload_type, neg.receive_event_payload_type) == (0, 101)
    same = accept_answer(ours, parse_sdp(offer_of("m=audio 5004 RTP/AVP 8 101", "a=rtpmap:101 telephone-event/8000")))
    assert (same.codec, same.payload_type, same.rx_payload_type, same.rx_event_payload_type) == ("PCMA", 8, None, None)
    assert (same.receive_payload_type, same.receive_event_payload_type) == (8, 101)


def test_an_answer_with_events_we_did_not_offer_gets_none():
    """Without telephone-event in our offer, an answer listing it negotiates no events either way."""
    ours = make_offer(leg(), events=False)
    neg = accept_answer(ours, parse_sdp(offer_of("m=audio 5004 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000")))
    assert (neg.event_payload_type, neg.receive_event_payload_type) == (None, None)


def test_we_answer_with_the_offerers_numbers():
    """The carrier's offer names telephone-event 96: our answer uses 96 (and its event list), PCMA 8."""
    offer = parse_sdp(offer_of("m=audio 4000 RTP/AVP 0 8 96", "a=rtpmap:96 telephone-event/8000", "a=fmtp:96 0-11"))
    answer, neg = answer_offer(offer, leg())
    assert answer.media[0].formats == ("8", "96") and "96 0-11" in answer.media[0].attribute_values("fmtp")
    assert (neg.payload_type, neg.event_payload_type, neg.rx_event_payload_type) == (8, 96, None)
