"""A node's internal errors, each logged once, with its time and its call id, and the node serving on."""

from __future__ import annotations

import re
import socket
import time
import uuid

import pytest

from tests.support.faulty_node import CALL_CALLER, RTP_MARK
from tests.hostile.rawua import RawCarrier
from tests.sipp.node import start_node

STAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[[^\]]+#(error|critical)\] "
CALLER = "+4930555000111"          # no account: the call is answered and hears the refusal


def options(node_port: int, own_port: int, call_id: str, extra: str = "") -> str:
    via = f"SIP/2.0/UDP 127.0.0.1:{own_port};branch=z9hG4bK{uuid.uuid4().hex[:12]}"
    return (f"OPTIONS sip:+493012345678@127.0.0.1:{node_port} SIP/2.0\r\nVia: {via}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:+493012345678@127.0.0.1>\r\nCall-ID: {call_id}\r\n"
            f"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n")


def error_lines(output: str, needle: str) -> list[str]:
    """The log lines at error level and above that start an entry naming ``needle``."""
    return [line for line in output.splitlines() if re.match(STAMP, line) and needle in line]


@pytest.mark.slow
def test_a_fault_in_the_sip_core_the_relay_and_a_call_is_logged_once_each_with_time_and_call_id(tmp_path):
    """An OPTIONS the SIP core fails on, an RTP datagram the relay fails on and a call whose start fails: one
    stamped error line each, naming the call id (the OPTIONS' Call-ID; the call whose RTP port got the
    datagram; the failed call's), with the traceback after it; the node still answers a plain OPTIONS, the
    failed call is ended with an answer to the carrier, and the other call ends with its record."""
    node = start_node(tmp_path, entry="tests.support.faulty_node", agents=["sip:agent@127.0.0.1:9"])
    node.follow()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        own = sock.getsockname()[1]
        sock.sendto(options(node.sip_port, own, "planted-core-1", "X-Plant: core\r\n").encode(), ("127.0.0.1", node.sip_port))
        carrier = RawCarrier(node.sip_port, "+493012345678", CALLER)
        assert carrier.call(), carrier.seen
        rtp_port = int(re.search(r"m=audio (\d+) ", carrier.answer).group(1))
        packet = bytes([0x80, 8, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7]) + RTP_MARK + bytes(160 - len(RTP_MARK))
        sock.sendto(packet, ("127.0.0.1", rtp_port))
        sock.settimeout(5)
        sock.sendto(options(node.sip_port, own, "plain-1").encode(), ("127.0.0.1", node.sip_port))
        answer = sock.recv(65536).decode()
        assert answer.startswith("SIP/2.0 200") and "plain-1" in answer, answer
        broken = RawCarrier(node.sip_port, "+493012345678", CALL_CALLER)
        broken.call(timeout_s=10)
        assert any(re.match(r"SIP/2.0 [2-6]\d\d", line) and not line.startswith("SIP/2.0 100") for line in broken.seen)
        carrier.serve(12)                   # the refusal is played, then the node's BYE
        assert carrier.got_bye
        deadline = time.monotonic() + 10
        while not node.rows("select 1 from call_records where call_id = ?", carrier.call_id):
            assert time.monotonic() < deadline, "no call record"
            time.sleep(0.2)
    finally:
        output = node.stop()
    core = error_lines(output, "planted-core-1")
    assert len(core) == 1 and "SIP core" in core[0], output
    relay = error_lines(output, carrier.call_id)
    assert len(relay) == 1 and "media" in relay[0], output
    failed = error_lines(output, broken.call_id)
    assert len(failed) == 1 and "start failed" in failed[0], output
    assert output.count("RuntimeError: planted in call control") == 1, output
    assert output.count("RuntimeError: planted in the SIP core") == 1, output          # one traceback each
    assert output.count("RuntimeError: planted in the RTP relay") == 1, output
