"""What an INFO in a dialog gets from us and which key it carries (b2bua.info), on plain values."""

from __future__ import annotations

import pytest

from b2bua.info import ACCEPT, BadDtmf, answer_info, dtmf_key
from b2bua.sip.codec import parse_message, reason_phrase


def info(body: bytes = b"", content_type: str | None = None, extra: str = "") -> object:
    """An INFO in a dialog (To tag), as the endpoint hands it on."""
    head = ("INFO sip:node@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKinfo1\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:c@127.0.0.1>;tag=a\r\nTo: <sip:n@127.0.0.1>;tag=b\r\n"
            "Call-ID: info-1\r\nCSeq: 2 INFO\r\n")
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return parse_message((head + extra + f"Content-Length: {len(body)}\r\n\r\n").encode() + body)


@pytest.mark.parametrize("body, key", [
    (b"Signal=5\r\nDuration=160\r\n", "5"),
    (b"Signal=#\r\nDuration=250", "#"),
    (b"signal = *\nduration= 100\n", "*"),       # names in any case, spaces, bare LF
    (b"Signal=11\r\nDuration=160\r\n", "#"),      # the RFC 4733 event code
    (b"Signal=d\r\n", "D"),
    (b"Signal=0", "0"),                           # no Duration, no line end
    (b"Duration=160\r\nSignal=9\r\nVolume=10\r\n", "9"),   # other lines are read past
])
def test_a_dtmf_relay_body_gives_its_signal(body, key):
    """``Signal`` is the key (a DTMF character or its event code 0-15); ``Duration`` may be missing."""
    assert dtmf_key("application/dtmf-relay", body) == key
    answer = answer_info(info(body, "application/dtmf-relay"))
    assert (answer.status, answer.key, answer.reason) == (200, key, None)


@pytest.mark.parametrize("body, key", [(b"5", "5"), (b"5\r\n", "5"), (b"10", "*"), (b"#", "#"), (b"15", "D")])
def test_a_dtmf_body_is_the_key_or_its_event_code(body, key):
    """``application/dtmf``: the body is one key, or its RFC 4733 event code (10 is ``*``)."""
    assert answer_info(info(body, "application/dtmf; charset=us-ascii")).key == key


@pytest.mark.parametrize("content_type, body, reason", [
    ("application/dtmf-relay", b"Duration=160\r\n", "Bad DTMF: no Signal"),
    ("application/dtmf-relay", b"Signal=X\r\nDuration=160", "Bad DTMF: Signal is not a key"),
    ("application/dtmf-relay", b"Signal=16\r\n", "Bad DTMF: Signal is not a key"),
    ("application/dtmf-relay", b"Signal=55\r\n", "Bad DTMF: Signal is not a key"),
    ("application/dtmf-relay", b"Signal=5\r\nSignal=6\r\n", "Bad DTMF: two Signal lines"),
    ("application/dtmf-relay", b"Signal=5\r\nDuration=long\r\n", "Bad DTMF: Duration is not a number"),
    ("application/dtmf-relay", b"Signal 5\r\n", "Bad DTMF: a line is not name=value"),
    ("application/dtmf-relay", "Signal=\u00b2".encode(), "Bad DTMF: body is not ASCII"),
    ("application/dtmf", b"55", "Bad DTMF: body is not one key"),
    ("application/dtmf", b"5 6", "Bad DTMF: body is not one key"),
])
def test_a_malformed_dtmf_body_gets_400_saying_what_was_wrong(content_type, body, reason):
    """400 with a reason phrase naming the problem (never the peer's text), and no key."""
    with pytest.raises(BadDtmf, match=f"^{reason}$"):
        dtmf_key(content_type, body)
    answer = answer_info(info(body, content_type))
    assert (answer.status, answer.reason, answer.key) == (400, reason, None)


def test_another_body_gets_415_with_what_we_read():
    """A legacy INFO with a body we do not read (here ISUP): 415 whose Accept lists the two DTMF types."""
    answer = answer_info(info(b"\x01\x02", "application/isup"))
    assert (answer.status, answer.key, answer.headers) == (415, None, (("Accept", ACCEPT),))
    assert ACCEPT == "application/dtmf-relay, application/dtmf"


def test_an_info_package_gets_469_with_an_empty_recv_info():
    """RFC 6086 §4.2.2: we indicated no package, so any ``Info-Package`` is answered 469 with our (empty)
    ``Recv-Info`` - even one whose body is DTMF."""
    answer = answer_info(info(b"Signal=5\r\n", "application/dtmf-relay", "Info-Package: dtmf\r\n"))
    assert (answer.status, answer.key, answer.headers) == (469, None, (("Recv-Info", ""),))
    assert reason_phrase(469) == "Bad Info Package"


def test_an_info_without_a_body_gets_200_and_no_key():
    """An empty INFO (a dialog probe some peers send): 200, nothing to the call."""
    answer = answer_info(info())
    assert (answer.status, answer.key) == (200, None)
