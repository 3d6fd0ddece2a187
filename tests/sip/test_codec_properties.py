"""Property tests of the codec: any input gives a message or the one declared error; round trips hold."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2bua.sip.checks import check_request, check_response
from b2bua.sip.codec import parse_message, serialise
from b2bua.sip.errors import FramingError, SipParseError
from b2bua.sip.framing import StreamFramer
from b2bua.sip.headers import Headers, NameAddr, Via, header_key
from b2bua.sip.message import SipRequest, SipResponse
from b2bua.sip.uri import SipUri, TelUri, parse_uri

DATA = Path(__file__).parent.parent / "data" / "sip-torture"
TORTURE = sorted(p.read_bytes() for p in DATA.rglob("*") if p.is_file() and p.name != "README.md")
VIEWS = ("call_id", "cseq", "vias", "top_via", "from_", "to", "contacts", "record_route", "route",
         "max_forwards", "content_type")
# SIP_FUZZ_EXAMPLES=5000 runs a deeper search locally; the suite keeps 200 per property.
FAST = settings(max_examples=int(os.environ.get("SIP_FUZZ_EXAMPLES", "200")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
lower_tokens = st.text("abcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~", min_size=1, max_size=10)
# Text without CR/LF/NUL and without surrogates, as header values and phrases can carry it.
line_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)


def written_names(headers: Headers) -> list[str]:
    """The header names ``serialise`` writes for ``headers``: the first Content-Length line (long or compact
    name) kept, further ones (equal values, as parsing allowed them) left out, one appended when there is none."""
    names, seen_length = [], False
    for name, _ in headers:
        if header_key(name) == "content-length":
            if seen_length:
                continue
            seen_length = True
        names.append(name)
    return names if seen_length else names + ["Content-Length"]


def exercise(data: bytes) -> None:
    """Parse ``data``, read every view and check, write it back: only SipParseError may come out."""
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert exc.status in (400, 505, 416)
        return
    for view in VIEWS:
        try:
            getattr(msg, view)
        except SipParseError:
            pass
    again = parse_message(serialise(msg))  # whatever parsed is written back, and reads back the same
    assert again.body == msg.body and [k for k, _ in again.headers] == written_names(msg.headers)
    if isinstance(msg, SipRequest):
        answer = check_request(msg)
        assert answer is None or 400 <= answer.status < 600
        if answer is not None:
            parse_message(serialise(answer))
    else:
        check_response(msg)


@FAST
@given(st.binary(max_size=400))
def test_random_bytes_parse_or_raise_the_declared_error(data):
    """Arbitrary bytes never raise anything but SipParseError, from parsing or any header view."""
    exercise(data)


@st.composite
def mutated_torture(draw):
    data = bytearray(draw(st.sampled_from(TORTURE)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate", "dup"]))
        if action == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif action == "insert":
            data[pos:pos] = draw(st.sampled_from([b";", b",", b"\"", b"<", b">", b":", b"\r\n", b" ", b"[",
                                                  b"]", b"%", b"@", b"\\", b"\x00", b"\r\n ", b"=", b"\xff"]))
        elif action == "truncate":
            del data[pos:]
        elif action == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 40))]
    return bytes(data)


@FAST
@given(mutated_torture())
def test_mutated_torture_messages_parse_or_raise_the_declared_error(data):
    """Torture messages with bytes flipped, cut, doubled or inserted: a message or SipParseError."""
    exercise(data)


@FAST
@given(st.lists(st.binary(max_size=60), max_size=8))
def test_framer_takes_any_bytes_or_raises_framing_error(chunks):
    """The stream framer returns messages/keep-alives or raises FramingError, whatever arrives."""
    framer = StreamFramer(max_header_bytes=200, max_body_bytes=100)
    try:
        for chunk in chunks:
            for item in framer.feed(chunk):
                if isinstance(item, bytes):
                    exercise(item)
    except FramingError:
        pass


def hosts():
    names = st.from_regex(r"[a-z0-9]([a-z0-9\-]{0,10}[a-z0-9])?(\.[a-z0-9]{1,8}){0,3}", fullmatch=True)
    v4 = st.ip_addresses(v=4).map(str)
    v6 = st.ip_addresses(v=6).map(lambda a: str(ipaddress.IPv6Address(a)))
    return st.one_of(names, v4, v6)


any_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
params = st.lists(st.tuples(lower_tokens, st.one_of(st.none(), any_text)), max_size=3).map(tuple)


@st.composite
def sip_uris(draw):
    uri_params = draw(st.lists(st.tuples(st.text("abcdefghijklmnopqrstuvwxyz0123456789%", min_size=1, max_size=8),
                                         st.one_of(st.none(), any_text)), max_size=3))
    return SipUri(
        scheme=draw(st.sampled_from(["sip", "sips"])),
        user=draw(st.one_of(st.none(), any_text)),
        password=None,
        host=draw(hosts()),
        port=draw(st.one_of(st.none(), st.integers(0, 65535))),
        params=tuple(uri_params),
        headers=tuple(draw(st.lists(st.tuples(any_text, st.text(max_size=6)), max_size=2))),
    )


tel_uris = st.builds(TelUri, st.from_regex(r"\+[0-9]{1,15}", fullmatch=True),
                     st.lists(st.tuples(st.sampled_from(["phone-context", "ext", "isub"]),
                                        st.from_regex(r"[0-9a-z.+]{1,8}", fullmatch=True)), max_size=2).map(tuple))
header_params = st.lists(st.tuples(lower_tokens.filter(lambda n: n != "rport"), st.one_of(st.none(), tokens)), max_size=3).map(tuple)


@FAST
@given(st.one_of(sip_uris(), tel_uris))
def test_uri_round_trips(uri):
    """parse_uri(str(u)) == u for generated sip, sips and tel URIs (escaping is undone on reading)."""
    assert parse_uri(str(uri)) == uri


@FAST
@given(st.builds(NameAddr, st.one_of(st.none(), line_text), sip_uris(), header_params))
def test_name_addr_round_trips(addr):
    """NameAddr.parse(str(a)) == a, display names with quotes and backslashes included."""
    assert NameAddr.parse(str(addr)) == addr


@FAST
@given(st.builds(Via, st.just("SIP/2.0"), st.sampled_from(["UDP", "TCP", "TLS", "SCTP", "WS"]), hosts(),
                 st.one_of(st.none(), st.integers(0, 65535)), header_params))
def test_via_round_trips(via):
    """Via.parse(str(v)) == v."""
    assert Via.parse(str(via)) == via


header_lines = st.lists(
    st.tuples(tokens.filter(lambda n: n.lower() not in ("content-length", "l")),
              line_text.map(lambda v: v.strip(" \t"))),
    max_size=10)


@st.composite
def messages(draw):
    body = draw(st.binary(max_size=80))
    lines = draw(header_lines)
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), (draw(st.sampled_from(["Content-Length", "l"])), str(len(body))))
    headers = Headers(lines)
    if draw(st.booleans()):
        return SipRequest(draw(tokens), draw(st.one_of(sip_uris(), tel_uris)), headers, body)
    return SipResponse(draw(st.integers(100, 699)), draw(line_text), headers, body)


@FAST
@given(messages())
def test_generated_messages_round_trip(msg):
    """parse(serialise(m)) == m for messages whose Content-Length (if any) is right."""
    wire = serialise(msg)
    again = parse_message(wire)
    if "content-length" not in msg.headers:
        again = again.without_headers("content-length")
    assert again == msg
