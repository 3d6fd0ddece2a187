"""Bencode as rtpengine's ng control protocol speaks it (bench/bencode.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.bencode import BencodeError, decode, encode


def test_an_ng_offer_encodes_to_the_bytes_rtpengine_reads():
    """Keys go out sorted, strings as length:bytes, integers as i...e, lists as l...e."""
    message = {"sdp": "v=0\r\n", "command": "offer", "call-id": "c1", "replace": ["origin"], "ttl": 5}
    assert encode(message) == b"d7:call-id2:c17:command5:offer7:replacel6:origine3:sdp5:v=0\r\n3:ttli5ee"


def test_a_reply_with_its_keys_out_of_order_decodes():
    """rtpengine does not sort the keys of its replies: any order is read, values as bytes, keys as str."""
    assert decode(b"d3:sdp3:v=06:result2:oke") == {"sdp": b"v=0", "result": b"ok"}


@pytest.mark.parametrize("bad, where", [
    (b"i01e", "offset 0"),            # leading zero
    (b"i-0e", "offset 0"),
    (b"ie", "offset 0"),
    (b"5:abc", "runs 2 bytes past"),
    (b"d1:ai1e1:ai2ee", "repeated"),
    (b"di1ei2ee", "not a string"),
    (b"l", "ends at offset 1"),
    (b"i1ei2e", "after the value"),
    (b"x", "unexpected"),
])
def test_malformed_input_is_refused_with_where(bad, where):
    """Every malformed input raises BencodeError saying what and where, never a bare IndexError."""
    with pytest.raises(BencodeError, match=where):
        decode(bad)


def test_values_bencode_cannot_carry_are_refused():
    """A float, None, a bool or a key given as both str and bytes is an error, not a guess."""
    for value in (1.5, None, True, {"a": 1, b"a": 2}):
        with pytest.raises(BencodeError):
            encode(value)


values = st.recursive(st.integers() | st.binary(max_size=20),
                      lambda inner: (st.lists(inner, max_size=4)
                                     | st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=20)


@given(values)
def test_decode_undoes_encode(value):
    """Any value of bencode's kinds (str keys, bytes strings) comes back as it went in."""
    assert decode(encode(value)) == value
