"""ITU-T G.711 A-law and mu-law as tables computed once at import.

Linear audio is signed 16-bit little-endian PCM (``pcm16le``), one G.711 byte
per sample.  Decoding looks each code up in a 256-entry table; encoding looks
each sample up in a 65536-entry table indexed by the sample's unsigned 16-bit
pattern.  ``alaw_to_ulaw`` and ``ulaw_to_alaw`` are 256-byte tables for
``bytes.translate`` (decode in one law, encode in the other), which is what
G.711 Appendix/transcoders do.

The encoders follow the reference coder of ITU-T G.711 (and Sun's g711.c,
which the stdlib ``audioop`` copied): A-law works on 13-bit magnitudes with
even bits inverted (XOR 0x55), mu-law on 14-bit magnitudes with a bias of 33
and all bits inverted.  The stdlib ``audioop`` is not used (removed in 3.13).
"""

from __future__ import annotations

import sys
from array import array

__all__ = [
    "encode_alaw", "decode_alaw", "encode_ulaw", "decode_ulaw",
    "alaw_to_ulaw", "ulaw_to_alaw", "ALAW_DECODE", "ULAW_DECODE", "ALAW_ENCODE", "ULAW_ENCODE",
    "DECODE_TABLES", "ENCODE_TABLES",
    "encode", "decode", "SILENCE",
]

_LITTLE = sys.byteorder == "little"


def _alaw_code_to_linear(code: int) -> int:
    a = code ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def _ulaw_code_to_linear(code: int) -> int:
    u = ~code & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return (0x84 - t) if u & 0x80 else (t - 0x84)


_A_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_U_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for i, end in enumerate(ends):
        if value <= end:
            return i
    return len(ends)


def _linear_to_alaw_code(sample: int) -> int:
    pcm = sample >> 3                       # 13-bit
    if pcm >= 0:
        mask = 0xD5                         # sign bit set, even bits inverted
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = _segment(pcm, _A_SEG_END)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((pcm >> 1) if seg < 2 else (pcm >> seg)) & 0x0F
    return aval ^ mask


def _linear_to_ulaw_code(sample: int) -> int:
    pcm = sample >> 2                       # 14-bit
    if pcm < 0:
        pcm = -pcm
        mask = 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + (0x84 >> 2)      # clip, add the bias of 33
    seg = _segment(pcm, _U_SEG_END)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0x0F)) ^ mask


def _signed(u16: int) -> int:
    return u16 - 0x10000 if u16 & 0x8000 else u16


#: code -> linear sample (int), 256 entries each
ALAW_DECODE: tuple[int, ...] = tuple(_alaw_code_to_linear(c) for c in range(256))
ULAW_DECODE: tuple[int, ...] = tuple(_ulaw_code_to_linear(c) for c in range(256))
#: unsigned 16-bit sample pattern -> code
_ALAW_ENCODE = bytes(_linear_to_alaw_code(_signed(u)) for u in range(0x10000))
_ULAW_ENCODE = bytes(_linear_to_ulaw_code(_signed(u)) for u in range(0x10000))
#: public names of the encode tables: ``ALAW_ENCODE[sample & 0xFFFF]`` is the code of one sample
ALAW_ENCODE: bytes = _ALAW_ENCODE
ULAW_ENCODE: bytes = _ULAW_ENCODE
#: transcoding tables for ``bytes.translate``
alaw_to_ulaw: bytes = bytes(_ULAW_ENCODE[ALAW_DECODE[c] & 0xFFFF] for c in range(256))
ulaw_to_alaw: bytes = bytes(_ALAW_ENCODE[ULAW_DECODE[c] & 0xFFFF] for c in range(256))

#: the code of a zero sample, per codec name
SILENCE = {"PCMA": _ALAW_ENCODE[0], "PCMU": _ULAW_ENCODE[0]}


def _samples(pcm16le: bytes) -> array:
    if len(pcm16le) % 2:
        raise ValueError("16-bit PCM must have an even number of bytes")
    a = array("H")
    a.frombytes(pcm16le)
    if not _LITTLE:
        a.byteswap()
    return a


def _pcm(values: array) -> bytes:
    if not _LITTLE:
        values.byteswap()
    return values.tobytes()


def encode_alaw(pcm16le: bytes) -> bytes:
    """Signed 16-bit little-endian PCM -> A-law, one byte per sample."""
    table = _ALAW_ENCODE
    return bytes([table[s] for s in _samples(pcm16le)])


def encode_ulaw(pcm16le: bytes) -> bytes:
    """Signed 16-bit little-endian PCM -> mu-law, one byte per sample."""
    table = _ULAW_ENCODE
    return bytes([table[s] for s in _samples(pcm16le)])


def decode_alaw(data: bytes) -> bytes:
    """A-law -> signed 16-bit little-endian PCM."""
    table = ALAW_DECODE
    return _pcm(array("h", [table[c] for c in data]))


def decode_ulaw(data: bytes) -> bytes:
    """mu-law -> signed 16-bit little-endian PCM."""
    table = ULAW_DECODE
    return _pcm(array("h", [table[c] for c in data]))


#: per codec name: code -> sample, and sample & 0xFFFF -> code
DECODE_TABLES = {"PCMA": ALAW_DECODE, "PCMU": ULAW_DECODE}
ENCODE_TABLES = {"PCMA": ALAW_ENCODE, "PCMU": ULAW_ENCODE}

_ENCODERS = {"PCMA": encode_alaw, "PCMU": encode_ulaw}
_DECODERS = {"PCMA": decode_alaw, "PCMU": decode_ulaw}


def encode(pcm16le: bytes, codec: str) -> bytes:
    """Encode PCM in the named codec ("PCMA" or "PCMU")."""
    try:
        return _ENCODERS[codec](pcm16le)
    except KeyError:
        raise ValueError(f"unknown G.711 codec {codec!r}") from None


def decode(data: bytes, codec: str) -> bytes:
    """Decode the named codec ("PCMA" or "PCMU") to PCM."""
    try:
        return _DECODERS[codec](data)
    except KeyError:
        raise ValueError(f"unknown G.711 codec {codec!r}") from None
