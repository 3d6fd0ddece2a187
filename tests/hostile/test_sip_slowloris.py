"""Attack: slow and many SIP TCP connections against a real node with short limits in its ``[sip]`` section.

Slowloris connections trickle an OPTIONS a byte a second: each is closed by the message deadline (2 s
here). One source opens more connections than ``max_connections_per_source`` (8 here): those over the
cap are closed at once. Meanwhile and afterwards a legitimate OPTIONS over TCP gets its 200.
"""

from __future__ import annotations

import socket
import time

from tests.hostile.support import report, resources
from tests.hostile.test_sip_fuzz import options, options_over_tcp
from tests.sipp.harness import free_port
from tests.sipp.node import start_node

DEADLINE_S = 2
PER_SOURCE = 8
SLOW = 5
OVER_CAP = 20


def _closed_by_peer(sock: socket.socket, wait_s: float) -> bool:
    """True when the node closed ``sock`` (EOF or reset) within ``wait_s``."""
    sock.settimeout(wait_s)
    try:
        return sock.recv(65535) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _open_or_reset(port: int) -> socket.socket | None:
    """A connection to the node, or None when the node reset it before connect() returned: a connection over
    the cap is closed as soon as it is made, which a loaded machine may show the client as a reset."""
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionResetError:
        return None


def test_slow_and_surplus_connections_are_closed_and_a_legitimate_options_is_answered(tmp_path):
    """Five connections trickling a byte a second are closed by the 2 s message deadline (none lives to
    4 s); of 20 held connections from one address 8 are kept and the rest closed at once; an OPTIONS
    over TCP is answered 200 while the slow ones trickle and after."""
    node = start_node(tmp_path, agents=[f"sip:agent@127.0.0.1:{free_port()}"],
                      sections={"sip": {"message_deadline_s": str(DEADLINE_S), "connection_idle_timeout_s": "5",
                                        "max_connections_per_source": str(PER_SOURCE)}}).follow()
    try:
        before = resources(node.proc.pid)
        slow = [socket.create_connection(("127.0.0.1", node.sip_port), timeout=5) for _ in range(SLOW)]
        message = options(0, "TCP", "slow")
        started = time.monotonic()
        alive = set(range(SLOW))
        for i in range(2 * DEADLINE_S):
            for n in sorted(alive):
                try:
                    slow[n].sendall(message[i:i + 1])
                except OSError:
                    alive.discard(n)
            if i == 0:
                assert options_over_tcp(node.sip_port, "during-slow") == b"SIP/2.0 200 OK"
            time.sleep(1.0)
        closed_slow = sum(_closed_by_peer(sock, 1.0) for sock in slow)
        slow_s = time.monotonic() - started
        for sock in slow:
            sock.close()

        held = [_open_or_reset(node.sip_port) for _ in range(OVER_CAP)]
        closed_at_once = sum(sock is None or _closed_by_peer(sock, 0.3) for sock in held)
        held = [sock for sock in held if sock is not None]
        for sock in held:
            sock.close()
        time.sleep(0.2)
        assert options_over_tcp(node.sip_port) == b"SIP/2.0 200 OK"
        after = resources(node.proc.pid)
    finally:
        output = node.stop()
    report("sip slowloris", f"{SLOW} connections at a byte a second ({closed_slow} closed by the {DEADLINE_S} s "
                            f"deadline in {slow_s:.1f} s), {OVER_CAP} from one address ({closed_at_once} over the "
                            f"cap of {PER_SOURCE} closed at once)", before, after)
    assert closed_slow == SLOW
    assert closed_at_once == OVER_CAP - PER_SOURCE
    assert after.fds <= before.fds + 2
    assert "Unhandled" not in output and "Traceback" not in output, output[-4000:]
