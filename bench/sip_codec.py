"""Parse + serialise rate of a realistic carrier INVITE: our codec against sippy's, in one run.

The message: an INVITE as a carrier trunk sends it (two Vias, Record-Route,
P-Asserted-Identity, Privacy, Supported, Session-Expires, an SDP offer of about
300 bytes). Each side, per message:

- ours: ``parse_message(bytes)``; read the top Via's branch, Call-ID, CSeq
  (number and method), From tag and To tag (each a lazy parse of that header
  only); ``serialise(msg)`` back to bytes (headers written as received,
  Content-Length computed).
- sippy (``sippy.SipRequest``, the Sippy B2BUA's parser, with its own lazy
  header bodies): decode the bytes (its parser takes ``str``), ``SipRequest(buf)``
  and ``init_body()`` as its transaction manager does; read the same five
  values through ``getHFBody('via').getBranch()``, ``getHFBody('call-id')``,
  ``getHFBody('cseq').getCSeqNum()/getCSeqMethod()``, ``getHFBody('from').getTag()``
  and ``getHFBody('to').getTag()``; ``localStr()`` and encode back to bytes.

Each side runs in rounds of ``--count`` messages, the two sides alternating;
each side's best round counts (the machine is shared). Prints both rates (messages/s) and the ratio ours/sippy;
writes ``bench/results/sip_codec.json``. The aim: a ratio of at least 1.

Our codec keeps parsed URIs, addresses, Vias and CSeqs per exact text
(``b2bua/sip/textcache.py``), so the same message over and over reads them
from that cache. A second row, "fresh", sends every message of every round with
its own Via branch, From tag and Call-ID (as new calls do), which our cache has
never seen; sippy keeps nothing, so its rate is the same message for message.

    .venv/bin/python bench/sip_codec.py [--count 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from b2bua.sip.codec import parse_message, serialise  # noqa: E402

SDP = (
    "v=0\r\n"
    "o=carrier 1700000000 1700000001 IN IP4 198.51.100.20\r\n"
    "s=-\r\n"
    "c=IN IP4 198.51.100.20\r\n"
    "t=0 0\r\n"
    "m=audio 31000 RTP/AVP 8 0 18 101\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)

INVITE = (
    "INVITE sip:+493012345678@192.0.2.10:5060;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-524287-1---7a3f9c1e0b2d4e5f;rport\r\n"
    "Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK3d1f2a9b8c7e6d5f4a3b2c1d;received=198.51.100.20\r\n"
    "Record-Route: <sip:198.51.100.7;lr;ftag=as5f2a1b3c>\r\n"
    "Max-Forwards: 68\r\n"
    "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=as5f2a1b3c\r\n"
    "To: <sip:+493012345678@192.0.2.10>\r\n"
    "Call-ID: 4f2a9c1e7b3d4e5fa6b7c8d9e0f1a2b3@198.51.100.20\r\n"
    "CSeq: 102 INVITE\r\n"
    "Contact: <sip:+4915112345678@198.51.100.20:5060;transport=udp>\r\n"
    "P-Asserted-Identity: <sip:+4915112345678@carrier.example;user=phone>\r\n"
    "Privacy: id\r\n"
    "Supported: timer, replaces, 100rel\r\n"
    "Session-Expires: 1800;refresher=uac\r\n"
    "Min-SE: 90\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, INFO\r\n"
    "User-Agent: CarrierSBC 4.2\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n" + SDP
).encode()


def ours(data: bytes) -> tuple:
    msg = parse_message(data)
    cseq = msg.cseq
    seen = (msg.top_via.branch, msg.call_id, cseq.seq, cseq.method, msg.from_.tag, msg.to.tag)
    return seen, serialise(msg)


def sippy_side(data: bytes) -> tuple:
    from sippy.SipRequest import SipRequest
    msg = SipRequest(data.decode("utf-8"))
    msg.init_body()
    cseq = msg.getHFBody("cseq")
    seen = (msg.getHFBody("via").getBranch(), str(msg.getHFBody("call-id")), cseq.getCSeqNum(),
            cseq.getCSeqMethod(), msg.getHFBody("from").getTag(), msg.getHFBody("to").getTag())
    return seen, msg.localStr().encode("utf-8")


def fresh(i: int) -> bytes:
    """The INVITE of another call: its own top Via branch, From tag and Call-ID (same length)."""
    return (INVITE.replace(b"7a3f9c1e0b2d4e5f", b"%016x" % i)
            .replace(b"tag=as5f2a1b3c", b"tag=as%08x" % i)
            .replace(b"4f2a9c1e7b3d4e5fa6b7c8d9e0f1a2b3", b"%032x" % i))


def one_round(fn, messages: list[bytes]) -> float:
    """Seconds for every message of ``messages`` through ``fn``."""
    start = time.perf_counter()
    for data in messages:
        fn(data)
    return time.perf_counter() - start


def rates(sides, batches, count: int, rounds: int) -> list[float]:
    """Messages per second of each side: rounds alternate between the sides (so a busy
    moment of the shared machine hits both), and each side's best round counts.
    ``batches(round, side)`` gives the messages of that round for that side."""
    best = [float("inf")] * len(sides)
    for r in range(rounds):
        for i, fn in enumerate(sides):
            best[i] = min(best[i], one_round(fn, batches(r, i)))
    return [count / seconds for seconds in best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side; the best counts")
    args = parser.parse_args(argv)

    # Both sides read the same values, and both outputs parse back with our codec.
    seen_ours, out_ours = ours(INVITE)
    seen_sippy, out_sippy = sippy_side(INVITE)
    assert seen_ours == seen_sippy, (seen_ours, seen_sippy)
    assert parse_message(out_ours).call_id == parse_message(out_sippy).call_id

    same = [INVITE] * args.count
    ours_rate, sippy_rate = rates([ours, sippy_side], lambda r, i: same, args.count, args.rounds)
    ratio = ours_rate / sippy_rate
    assert ours(fresh(1))[0][:2] != seen_ours[:2] and len(fresh(1)) == len(INVITE)
    fresh_batches = [[fresh(1 + r * args.count + k) for k in range(args.count)] for r in range(args.rounds)]
    fresh_ours, fresh_sippy = rates([ours, sippy_side], lambda r, i: fresh_batches[r], args.count, args.rounds)
    fresh_ratio = fresh_ours / fresh_sippy
    result = {
        "message_bytes": len(INVITE),
        "sdp_bytes": len(SDP),
        "count": args.count,
        "rounds": args.rounds,
        "ours_msgs_per_s": round(ours_rate),
        "sippy_msgs_per_s": round(sippy_rate),
        "ratio_ours_to_sippy": round(ratio, 2),
        "fresh_ours_msgs_per_s": round(fresh_ours),
        "fresh_sippy_msgs_per_s": round(fresh_sippy),
        "fresh_ratio_ours_to_sippy": round(fresh_ratio, 2),
        "aim": "ratio >= 1",
    }
    print(f"carrier INVITE, {len(INVITE)} bytes (SDP {len(SDP)}): parse, read 6 values, serialise")
    print(f"  ours : {ours_rate:10.0f} msgs/s")
    print(f"  sippy: {sippy_rate:10.0f} msgs/s")
    print(f"  ratio ours/sippy: {ratio:.2f} ({'meets' if ratio >= 1 else 'misses'} the aim of >= 1)")
    print("fresh: each message another call's (branch, From tag, Call-ID never seen before)")
    print(f"  ours : {fresh_ours:10.0f} msgs/s")
    print(f"  sippy: {fresh_sippy:10.0f} msgs/s")
    print(f"  ratio ours/sippy: {fresh_ratio:.2f} ({'meets' if fresh_ratio >= 1 else 'misses'} the aim of >= 1)")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "sip_codec.json"), "w") as fh:
        json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
