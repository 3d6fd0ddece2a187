"""The media workers' control protocol (media.control) with plain values: frames, cuts, and what breaks it."""

from __future__ import annotations

import json
import struct

import pytest

from media.control import MAX_FRAME, VERSION, ControlError, Decoder, Event, Hello, Request, Response, encode


def test_every_kind_round_trips_through_one_decoder_whatever_the_cut():
    """Hello, Request, Response and Event come out as they went in, in order, fed a byte at a time."""
    messages = [Hello(VERSION, {"address": "127.0.0.1", "port_min": 40000}), Request(1, "open", {"sid": 7}),
                Response(1, True, {"x": [1, 2]}), Response(2, False, error="PortsExhausted: none"),
                Event("dtmf", {"sid": 7, "leg": "a", "digit": "5", "end": False})]
    wire = b"".join(encode(m) for m in messages)
    decoder = Decoder()
    out = []
    for i in range(len(wire)):
        out += decoder.feed(wire[i:i + 1])
    assert out == messages


def test_a_frame_is_a_length_and_json():
    """The frame is a 4-byte big-endian length and a JSON object (readable by any peer of another language)."""
    frame = encode(Request(3, "stats"))
    (n,) = struct.unpack("!I", frame[:4])
    assert n == len(frame) - 4 and json.loads(frame[4:]) == {"t": "req", "id": 3, "op": "stats", "a": {}}


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"t": "req", "id": "1", "op": "open"}',
                                  b'{"t": "req", "id": 1, "op": "format_disk"}', b'{"t": "what"}',
                                  b'{"t": "ev", "k": "played", "a": []}', b'{"t": "res"}'])
def test_a_bad_frame_breaks_the_stream_for_good(body):
    """JSON that is not a message of the protocol raises ControlError, and the decoder takes nothing more."""
    decoder = Decoder()
    with pytest.raises(ControlError):
        decoder.feed(struct.pack("!I", len(body)) + body)
    with pytest.raises(ControlError):
        decoder.feed(encode(Request(1, "stats")))


def test_an_oversized_length_is_refused_before_it_is_buffered():
    """A length over MAX_FRAME is refused at once (a peer cannot make us hold a gigabyte)."""
    with pytest.raises(ControlError):
        Decoder().feed(struct.pack("!I", MAX_FRAME + 1))
