"""Bencode (the BitTorrent encoding), as rtpengine's ng control protocol speaks it.

Four kinds of value: integers ``i42e``, byte strings ``4:spam``, lists
``l...e`` and dictionaries ``d...e`` keyed by byte strings.  Keys are
encoded in sorted order, as the format asks; decoded in any order (rtpengine's
replies do not sort them), a repeated key refused.  :func:`encode` takes ``int``, ``bytes``, ``str`` (sent as UTF-8),
``list``/``tuple`` and ``dict`` (keys ``str`` or ``bytes``); :func:`decode`
gives ``int``, ``bytes``, ``list`` and ``dict`` with ``str`` keys (the ng
protocol's keys are ASCII words), and raises :class:`BencodeError` naming the
offset of what it could not read.
"""

from __future__ import annotations

MAX_DEPTH = 32       # lists and dictionaries nested deeper are refused (the decoder recurses)


class BencodeError(ValueError):
    """Bytes that are not one bencoded value, or a value bencode cannot carry."""


def encode(value) -> bytes:
    """The bencoding of ``value``; raises :class:`BencodeError` for a type bencode has no form for."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _key(k) -> bytes:
    if isinstance(k, str):
        return k.encode("utf-8")
    if isinstance(k, bytes):
        return k
    raise BencodeError(f"dictionary key {k!r} is neither str nor bytes")


def _encode(value, out: list[bytes], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BencodeError(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, bool):          # a bool is an int to Python, and nothing to bencode
        raise BencodeError("bencode has no booleans")
    if isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, (bytes, str)):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        out.append(b"%d:" % len(raw))
        out.append(raw)
    elif isinstance(value, (list, tuple)):
        out.append(b"l")
        for item in value:
            _encode(item, out, depth + 1)
        out.append(b"e")
    elif isinstance(value, dict):
        items = sorted((_key(k), v) for k, v in value.items())
        for (a, _), (b, _) in zip(items, items[1:]):
            if a == b:
                raise BencodeError(f"dictionary key {a!r} given twice (as str and as bytes)")
        out.append(b"d")
        for k, v in items:
            _encode(k, out, depth + 1)
            _encode(v, out, depth + 1)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot bencode a {type(value).__name__}")


def decode(data: bytes):
    """The one value in ``data``; raises :class:`BencodeError` for malformed input or bytes after the value."""
    value, end = _decode(bytes(data), 0, 0)
    if end != len(data):
        raise BencodeError(f"{len(data) - end} bytes after the value, at offset {end}")
    return value


def _decode(data: bytes, pos: int, depth: int):
    if depth > MAX_DEPTH:
        raise BencodeError(f"nested deeper than {MAX_DEPTH} at offset {pos}")
    if pos >= len(data):
        raise BencodeError(f"the data ends at offset {pos} where a value should start")
    lead = data[pos:pos + 1]
    if lead == b"i":
        end = data.find(b"e", pos + 1)
        digits = data[pos + 1:end]
        if end < 0 or not _is_integer(digits):
            raise BencodeError(f"malformed integer at offset {pos}")
        return int(digits), end + 1
    if lead.isdigit():
        colon = data.find(b":", pos)
        digits = data[pos:colon]
        if colon < 0 or not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0"):
            raise BencodeError(f"malformed string length at offset {pos}")
        end = colon + 1 + int(digits)
        if end > len(data):
            raise BencodeError(f"string at offset {pos} runs {end - len(data)} bytes past the data")
        return data[colon + 1:end], end
    if lead == b"l":
        items = []
        pos += 1
        while data[pos:pos + 1] != b"e":
            item, pos = _decode(data, pos, depth + 1)
            items.append(item)
        return items, pos + 1
    if lead == b"d":
        result = {}
        pos += 1
        while data[pos:pos + 1] != b"e":
            at = pos
            key, pos = _decode(data, pos, depth + 1)
            if not isinstance(key, bytes):
                raise BencodeError(f"dictionary key at offset {at} is not a string")
            name = key.decode("utf-8", "replace")
            if name in result:
                raise BencodeError(f"dictionary key {key!r} at offset {at} is repeated")
            result[name], pos = _decode(data, pos, depth + 1)
        return result, pos + 1
    raise BencodeError(f"unexpected {lead!r} at offset {pos}")


def _is_integer(digits: bytes) -> bool:
    """``i...e``'s digits: no leading zero, no ``-0``, no empty."""
    body = digits[1:] if digits[:1] == b"-" else digits
    return body.isdigit() and not (body[:1] == b"0" and (len(body) > 1 or digits[:1] == b"-"))
