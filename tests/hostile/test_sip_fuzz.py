"""Attack: mutated SIP messages over UDP and TCP against a real node; it must answer or drop each, and keep serving.

The mutations (``tests/sip/fuzz.py``) start from the RFC 4475/5118 torture messages: bytes flipped,
cut and truncated, header lines doubled, numbers of thousands of digits, runs of commas and quotes,
stray CR and LF. CI sends a fixed seed's few thousand datagrams and a few hundred TCP connections;
``PREPAID_FUZZ_COUNT=N`` sends N datagrams (and N/10 connections) for a longer run. Afterwards the node
still answers OPTIONS with 200 over UDP and TCP, and its output holds no "Unhandled" or "Traceback".
"""

from __future__ import annotations

import os
import socket
import time

from tests.hostile.support import report, resources
from tests.sip.fuzz import mutations
from tests.sipp.harness import free_port
from tests.sipp.node import start_node

SEED = 4475
COUNT = int(os.environ.get("PREPAID_FUZZ_COUNT", "3000"))


def options(port: int, transport: str, branch: str) -> bytes:
    return (f"OPTIONS sip:+493012345678@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{branch}\r\n"
            f"From: <sip:carrier@127.0.0.1>;tag={branch}\r\nTo: <sip:+493012345678@127.0.0.1>\r\n"
            f"Call-ID: {branch}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def options_over_udp(sip_port: int, branch: str = "after-udp") -> bytes:
    """The status line the node answers an OPTIONS over UDP with."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        sock.sendto(options(sock.getsockname()[1], "UDP", branch), ("127.0.0.1", sip_port))
        while True:
            data, _ = sock.recvfrom(65535)
            if branch.encode() in data:
                return data.split(b"\r\n", 1)[0]


def options_over_tcp(sip_port: int, branch: str = "after-tcp") -> bytes:
    """The status line the node answers an OPTIONS over a new TCP connection with."""
    with socket.create_connection(("127.0.0.1", sip_port), timeout=5) as sock:
        sock.sendall(options(sock.getsockname()[1], "TCP", branch))
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65535)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0]


def _drain(sock: socket.socket) -> int:
    got = 0
    while True:
        try:
            sock.recv(65535)
            got += 1
        except (BlockingIOError, InterruptedError):
            return got


def test_mutated_messages_over_udp_and_tcp_leave_the_node_serving(tmp_path):
    """A few thousand mutated datagrams and a few hundred mutated TCP messages: the node answers OPTIONS
    200 over UDP and TCP afterwards and never logged an unhandled error or a traceback."""
    node = start_node(tmp_path, agents=[f"sip:agent@127.0.0.1:{free_port()}"]).follow()
    try:
        before = resources(node.proc.pid)
        started = time.monotonic()
        answers = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.setblocking(False)
            for i, data in enumerate(mutations(SEED, COUNT)):
                try:
                    udp.sendto(data[:65000], ("127.0.0.1", node.sip_port))
                except OSError:
                    pass                              # EMSGSIZE and friends: the kernel's, not the node's
                if i % 50 == 49:
                    time.sleep(0.01)                  # let the node keep up: a flood is another test
                    answers += _drain(udp)
            time.sleep(0.2)
            answers += _drain(udp)
        tcp_count = max(1, COUNT // 10)
        batch: list[socket.socket] = []
        for i, data in enumerate(mutations(SEED + 1, tcp_count)):
            sock = socket.create_connection(("127.0.0.1", node.sip_port), timeout=5)
            batch.append(sock)
            try:
                sock.sendall(data)
            except OSError:
                pass                                  # the node closed it already: framing said garbage
            if len(batch) == 40 or i == tcp_count - 1:
                # held open a moment, under the per-source cap: a call the node starts answers on a live
                # connection (one closed mid-call is another test's business)
                time.sleep(0.3)
                for sock in batch:
                    sock.close()
                batch.clear()
        elapsed_s = time.monotonic() - started
        assert options_over_udp(node.sip_port) == b"SIP/2.0 200 OK"
        assert options_over_tcp(node.sip_port) == b"SIP/2.0 200 OK"
        after = resources(node.proc.pid)
    finally:
        output = node.stop()
    report("sip fuzz", f"{COUNT} mutated datagrams ({answers} answers) and {tcp_count} mutated TCP messages "
                       f"in {elapsed_s:.1f} s, seed {SEED}", before, after)
    assert "Unhandled" not in output and "Traceback" not in output, output[-4000:]
