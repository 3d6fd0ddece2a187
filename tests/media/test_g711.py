"""G.711 A-law / mu-law tables: known code points, round-trip error bounds, transcoding."""

import struct
import warnings

import pytest

from media import g711


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def unpcm(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


ALL_SAMPLES = pcm(*range(-32768, 32768))

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # noqa: F401  (removed in Python 3.13)
except ImportError:  # pragma: no cover
    audioop = None


def test_alaw_known_code_points():
    """A-law encodes zero as 0xD5, full scale as 0xAA/0x2A, and decodes them to the ITU values."""
    assert g711.encode_alaw(pcm(0, 32767, -32768, -1, 8)) == bytes([0xD5, 0xAA, 0x2A, 0x55, 0xD5])
    assert unpcm(g711.decode_alaw(bytes([0xD5, 0x55, 0xAA, 0x2A, 0x80, 0x00]))) == \
        [8, -8, 32256, -32256, 5504, -5504]


def test_ulaw_known_code_points():
    """mu-law encodes zero as 0xFF, full scale as 0x80/0x00, and 0x7F/0xFF both decode to zero."""
    assert g711.encode_ulaw(pcm(0, 32767, -32768)) == bytes([0xFF, 0x80, 0x00])
    assert unpcm(g711.decode_ulaw(bytes([0xFF, 0x7F, 0x80, 0x00, 0xFE, 0x7E]))) == \
        [0, 0, 32124, -32124, 8, -8]


def test_decode_tables_are_symmetric_and_monotonic():
    """Each law's codes map to 128 positive and 128 mirror negative levels, strictly ordered within a sign."""
    for table, sign_bit in ((g711.ALAW_DECODE, 0x80), (g711.ULAW_DECODE, 0x80)):
        pos = sorted(v for c, v in enumerate(table) if c & sign_bit)
        neg = sorted(-v for c, v in enumerate(table) if not c & sign_bit)
        assert pos == neg
        assert len(set(pos)) == 128


@pytest.mark.parametrize("enc,dec,table", [
    (g711.encode_alaw, g711.decode_alaw, g711.ALAW_DECODE),
    (g711.encode_ulaw, g711.decode_ulaw, g711.ULAW_DECODE),
])
def test_round_trip_lands_on_a_bracketing_level(enc, dec, table):
    """Decode(encode(x)) is one of the two levels that bracket x, so the error is under one step (about 6 % of |x|)."""
    import bisect
    levels = sorted(set(table))
    back = unpcm(dec(enc(ALL_SAMPLES)))
    for x, y in zip(range(-32768, 32768), back):
        i = bisect.bisect_right(levels, x)
        below = levels[max(i - 1, 0)]
        above = levels[min(i, len(levels) - 1)]
        assert y in (below, above), (x, y, below, above)
        if levels[0] <= x <= levels[-1]:
            assert abs(x - y) <= max(16, abs(x) / 16), (x, y)


def test_decoded_levels_are_fixed_points():
    """Every decoded level encodes back to a code that decodes to the same level (idempotent)."""
    for enc, dec in ((g711.encode_alaw, g711.decode_alaw), (g711.encode_ulaw, g711.decode_ulaw)):
        levels = dec(bytes(range(256)))
        assert dec(enc(levels)) == levels


@pytest.mark.skipif(audioop is None, reason="audioop is gone in this Python")
def test_agrees_with_audioop_on_every_sample():
    """Our tables agree with the stdlib reference coder for all 65536 samples and all 256 codes."""
    assert g711.encode_alaw(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES, 2)
    assert g711.encode_ulaw(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)
    codes = bytes(range(256))
    assert g711.decode_alaw(codes) == audioop.alaw2lin(codes, 2)
    assert g711.decode_ulaw(codes) == audioop.ulaw2lin(codes, 2)


def test_transcoding_tables_translate_bytes():
    """alaw_to_ulaw / ulaw_to_alaw are 256-byte tables that map each code to the nearest level of the other law."""
    assert len(g711.alaw_to_ulaw) == len(g711.ulaw_to_alaw) == 256
    assert bytes([0xD5]).translate(g711.alaw_to_ulaw) == bytes([g711.encode_ulaw(pcm(8))[0]])
    assert bytes([0xFF, 0x80, 0x00]).translate(g711.ulaw_to_alaw) == bytes([0xD5, 0xAA, 0x2A])
    for c in range(256):
        a = g711.ALAW_DECODE[c]
        u = g711.ULAW_DECODE[g711.alaw_to_ulaw[c]]
        assert abs(a - u) <= max(16, abs(a) / 16), (c, a, u)
    # mu-law -> A-law -> mu-law lands on the same level or a neighbour
    for c in range(256):
        back = g711.alaw_to_ulaw[g711.ulaw_to_alaw[c]]
        assert abs(g711.ULAW_DECODE[back] - g711.ULAW_DECODE[c]) <= max(16, abs(g711.ULAW_DECODE[c]) / 8)


def test_bad_input_is_a_clear_error():
    """Odd-length PCM and unknown codec names raise ValueError rather than garbage."""
    with pytest.raises(ValueError):
        g711.encode_alaw(b"\x00\x01\x02")
    with pytest.raises(ValueError):
        g711.encode(b"", "G722")
    assert g711.encode(pcm(0), "PCMU") == b"\xff" and g711.decode(b"\xd5", "PCMA") == pcm(8)
