"""A mutation fuzzer for SIP messages (no tests here): seeded from the RFC 4475/5118 torture messages.

:func:`mutations` yields ``count`` byte strings from a fixed ``seed``: torture messages and a
plain INVITE/OPTIONS with bytes flipped, cut, truncated, header lines doubled or made absurd
(numbers of thousands of digits, runs of commas and quotes, stray CR and LF). The same seed
gives the same messages, so a failure found in CI is replayed by its index.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

TORTURE_DIR = Path(__file__).resolve().parent.parent / "data" / "sip-torture"


def _plain(method: str) -> bytes:
    return (f"{method} sip:+493012345678@127.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKfuzz1;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:+4915112345678@127.0.0.1>;tag=ft1\r\n"
            "To: <sip:+493012345678@127.0.0.1>\r\n"
            "Call-ID: fuzz-1@127.0.0.1\r\n"
            f"CSeq: 1 {method}\r\n"
            "Contact: <sip:carrier@127.0.0.1:5999>\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def seeds() -> list[bytes]:
    """The messages mutations start from: every torture message, and a plain INVITE, OPTIONS and BYE."""
    files = sorted(p for p in TORTURE_DIR.rglob("*") if p.is_file() and p.name != "README.md")
    return [p.read_bytes() for p in files] + [_plain("INVITE"), _plain("OPTIONS"), _plain("BYE")]


_HEADERS = (b"Via", b"v", b"From", b"f", b"To", b"t", b"Call-ID", b"i", b"CSeq", b"Max-Forwards",
            b"Content-Length", b"l", b"Contact", b"m", b"Route", b"Record-Route", b"Content-Type", b"c",
            b"Require", b"Expires", b"Date", b"Accept", b"RAck", b"RSeq", b"Session-Expires", b"Min-SE",
            b"Privacy", b"P-Asserted-Identity", b"Supported", b"Content-Encoding", b"Allow", b"Event")
_INSERTS = (b";", b",", b"\"", b"<", b">", b":", b"\r\n", b"\r", b"\n", b" ", b"[", b"]", b"%", b"@", b"\\",
            b"\x00", b"\r\n ", b"=", b"\xff", b"\r\n\r\n", b"sips:", b"tel:", b";branch=", b";tag=", b";rport",
            b";received=", b";maddr=", b";ttl=")


def _absurd(rng: random.Random) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return b"9" * rng.choice((11, 20, 400, 4300, 5000))
    if kind == 1:
        return b"," * rng.randrange(1, 200)
    if kind == 2:
        return b"\"" * rng.randrange(1, 50)
    if kind == 3:
        return b"-" + b"1" * rng.randrange(1, 30)
    if kind == 4:
        return b"<" * rng.randrange(1, 30) + b">" * rng.randrange(0, 30)
    if kind == 5:
        return b";" * rng.randrange(1, 100) + b"="
    if kind == 6:
        return b"SIP/2.0/UDP " + b"9" * rng.randrange(1, 30) + b":" + b"9" * rng.randrange(1, 30)
    if kind == 7:
        return b"1 " + b"9" * rng.choice((5, 12, 4301))
    if kind == 8:
        return (b"SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1;" + rng.choice((b"rport", b"maddr", b"received", b"ttl"))
                + b"=" + rng.choice((b"9" * 4400, b"\xc2\xb2", b"-1", b"", b"65536", b"[::1", b"\"")))
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one to six mutations chosen by ``rng``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        pos = rng.randrange(len(out) + 1)
        action = rng.randrange(9)
        if action == 0 and out:                               # byte flip
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif action == 1:                                     # truncation
            del out[pos:]
        elif action == 2:                                     # a slice cut out
            del out[pos:pos + rng.randint(1, 40)]
        elif action == 3:                                     # a stray character
            out[pos:pos] = rng.choice(_INSERTS)
        elif action == 4:                                     # a header line doubled
            lines = bytes(out).split(b"\r\n")
            if len(lines) > 2:
                i = rng.randrange(1, len(lines) - 1)
                lines.insert(i, lines[i])
                out = bytearray(b"\r\n".join(lines))
        elif action in (5, 6):                                # a header with an absurd value
            line = rng.choice(_HEADERS) + b": " + _absurd(rng)
            head_end = out.find(b"\r\n")
            at = head_end + 2 if head_end >= 0 and action == 5 else len(out.split(b"\r\n\r\n")[0]) + 2
            out[at:at] = line + b"\r\n"
        elif action == 7:                                     # a header's value replaced by an absurd one
            lines = bytes(out).split(b"\r\n")
            if len(lines) > 2:
                i = rng.randrange(1, len(lines) - 1)
                name, sep, _ = lines[i].partition(b":")
                if sep:
                    lines[i] = name + b": " + _absurd(rng)
                    out = bytearray(b"\r\n".join(lines))
        else:                                                 # a run of one character
            out[pos:pos] = rng.choice((b",", b"\"", b";", b" ", b"\r\n", b"<")) * rng.randint(2, 300)
    return bytes(out)


def mutations(seed: int, count: int) -> Iterator[bytes]:
    """``count`` mutated messages, the same for the same ``seed``."""
    rng = random.Random(seed)
    base = seeds()
    for _ in range(count):
        yield mutate(rng.choice(base), rng)
