"""Warning (RFC 3261 §20.43) and Reason (RFC 3326) header values, on plain values."""

from __future__ import annotations

import pytest

from b2bua.sip.causes import WARN_TEXT, Reason, warning_value
from b2bua.sip.codec import parse_message
from b2bua.sip.headers import Headers


def test_a_warning_names_the_code_our_host_and_the_rfcs_text():
    """``305 192.0.2.1 "Incompatible media format"``; an IPv6 host in brackets; a text of our own quoted."""
    assert warning_value(305, "192.0.2.1") == '305 192.0.2.1 "Incompatible media format"'
    assert warning_value(304, "2001:db8::1") == '304 [2001:db8::1] "Media type not available"'
    assert warning_value(302, "sbc.example.net") == '302 sbc.example.net "Incompatible transport protocol"'
    assert warning_value(399, "192.0.2.1", 'say "why"') == '399 192.0.2.1 "say \\"why\\""'


@pytest.mark.parametrize("code", [200, 299, 400, 488])
def test_a_warn_code_outside_the_session_description_codes_is_refused(code):
    """Only 3xx warn-codes exist (RFC 3261 §20.43): anything else is a bug of ours, named."""
    with pytest.raises(ValueError, match=str(code)):
        warning_value(code, "192.0.2.1")


def test_every_standard_warn_code_has_its_text():
    """The table holds the twelve codes of RFC 3261 §20.43."""
    assert sorted(WARN_TEXT) == [300, 301, 302, 303, 304, 305, 306, 307, 330, 331, 370, 399]


def test_a_warning_reads_back_from_a_parsed_response():
    """The value survives a round trip through our codec as one header."""
    raw = (b"SIP/2.0 488 Not Acceptable Here\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK1\r\n"
           b"From: <sip:a@192.0.2.9>;tag=1\r\nTo: <sip:b@192.0.2.1>;tag=2\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
           b"Warning: " + warning_value(305, "192.0.2.1").encode() + b"\r\nContent-Length: 0\r\n\r\n")
    assert parse_message(raw).headers.get("warning") == '305 192.0.2.1 "Incompatible media format"'


def test_reason_values_for_sip_and_q850():
    """``SIP;cause=486;text="Busy Here"`` and ``Q.850;cause=16;text="Normal call clearing"`` (RFC 3326 §2)."""
    assert Reason("SIP", 486, "Busy Here").value == 'SIP;cause=486;text="Busy Here"'
    assert Reason("Q.850", 16, "Normal call clearing").header() == (
        "Reason", 'Q.850;cause=16;text="Normal call clearing"')
    assert Headers([Reason("SIP", 402, "Credit exhausted").header()]).get("reason") == \
        'SIP;cause=402;text="Credit exhausted"'


@pytest.mark.parametrize("protocol, cause", [("SIP", 100), ("SIP", 700), ("Q.850", 0), ("Q.850", 128), ("ISUP", 16)])
def test_a_reason_outside_its_protocols_range_is_refused(protocol, cause):
    """A SIP cause is a final status (200-699), a Q.850 cause 1-127; other protocols are not ours to send."""
    with pytest.raises(ValueError):
        Reason(protocol, cause, "x")
