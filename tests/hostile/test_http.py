"""Attacks on a real node's HTTP listener: slow and idle connections, deep JSON, a Host header pointing elsewhere.

One node (``prepaid run``) with short deadlines; the attacker sends from 127.0.0.1,
a legitimate client from 127.0.0.2 (both loopback), which must get /healthz and
the top-up page answered during and after every attack. Each attack prints one
``report`` line with the node's RSS and descriptors before and after.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time

import pytest

from tests.hostile.support import report, resources
from tests.sipp.harness import free_port
from tests.sipp.node import start_node

HEADER_TIMEOUT_S = 2
IDLE_TIMEOUT_S = 4
PER_SOURCE = 20
ATTACKER = "127.0.0.1"
LEGIT = "127.0.0.2"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    http_port = free_port()
    n = start_node(tmp_path_factory.mktemp("http"), agents=["sip:agent@127.0.0.1:5070"], http_port=http_port,
                   sections={"http": {"header_timeout_s": str(HEADER_TIMEOUT_S), "body_timeout_s": "2",
                                      "idle_timeout_s": str(IDLE_TIMEOUT_S),
                                      "max_connections_per_source": str(PER_SOURCE), "max_connections": "200"}})
    n.follow()
    n.http_port = http_port
    yield n
    n.stop()


def legit(node, method: str = "GET", path: str = "/healthz", body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, bytes]:
    """One request from the legitimate client's address: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=5, source_address=(LEGIT, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def serves(node) -> bool:
    return legit(node)[0] == 200 and legit(node, path="/topup/demo")[0] == 200


def attacker_sockets(node, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", node.http_port), timeout=5, source_address=(ATTACKER, 0))
        sock.setblocking(False)
        socks.append(sock)
    return socks


def closed(sock: socket.socket) -> bool:
    """The node closed ``sock`` (EOF or reset after whatever it wrote)."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if sock.recv(4096) == b"":
                return True
        except ConnectionResetError:
            return True
    return False


def wait_closed(socks: list[socket.socket], timeout_s: float, each_second=None) -> int:
    """Seconds until every socket is closed by the node (bounded); ``each_second`` runs once a second meanwhile."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if all(closed(s) for s in socks):
            break
        if each_second is not None:
            each_second()
        time.sleep(1)
    return round(time.monotonic() - start)


def metric(node, line_start: str) -> str:
    text = node.scrape()[1]
    return next((line for line in text.splitlines() if line.startswith(line_start)), "")


def test_slowloris_is_cut_at_the_header_deadline(node):
    """15 connections sending a header byte a second are closed within the header deadline; the node
    serves a legitimate client all the while."""
    before = resources(node.proc.pid)
    socks = attacker_sockets(node, 15)
    try:
        for sock in socks:
            sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answered = []

        def drip():
            for sock in socks:
                try:
                    sock.send(b"a")
                except OSError:
                    pass
            answered.append(serves(node))
        took_s = wait_closed(socks, HEADER_TIMEOUT_S + 6, drip)
        assert all(closed(s) for s in socks) and took_s <= HEADER_TIMEOUT_S + 2
        assert all(answered) and serves(node)
        assert metric(node, 'prepaid_http_timeouts_total{listener="public",phase="header"}').endswith(" 15")
    finally:
        for sock in socks:
            sock.close()
    report("http slowloris", f"15 connections, a header byte a second, closed after {took_s} s",
           before, resources(node.proc.pid))


def test_idle_connections_beyond_the_per_source_cap(node):
    """30 idle connections from one address: 10 over the cap are closed at once and counted, the other
    20 at the idle timeout; the node's descriptors come back; a client from another address is served."""
    before = resources(node.proc.pid)
    socks = attacker_sockets(node, 30)
    try:
        time.sleep(0.5)
        refused = sum(closed(s) for s in socks)
        assert refused == 30 - PER_SOURCE
        assert serves(node)
        counted = metric(node, 'prepaid_http_connections_refused_total{listener="public",reason="per_source"}')
        assert counted.endswith(" 10")
        took_s = wait_closed(socks, IDLE_TIMEOUT_S + 6)
        assert all(closed(s) for s in socks)
        assert serves(node)
    finally:
        for sock in socks:
            sock.close()
    time.sleep(0.5)
    after = resources(node.proc.pid)
    assert after.fds <= before.fds + 2
    report("http idle connections", f"30 from one address, {refused} refused at once, the rest closed after "
           f"{took_s} s", before, after)


def test_deeply_nested_json_to_the_balance_api(node):
    """30,000 nested arrays to the credit endpoint: 400 with the reason, three times over; the node serves on."""
    made = node.prepaid("apikey", "create", "--provider", "Demo Beratung GmbH", "--profile", "demo", "--json")
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout)["token"]
    before = resources(node.proc.pid)
    body = b"[" * 30_000 + b"]" * 30_000
    for _ in range(3):
        status, answer = legit(node, "POST", "/api/v1/accounts/demo/%2B4915112345678/credit", body,
                               {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert status == 400 and b"nested deeper" in answer
    assert serves(node)
    report("http deep JSON", "3 credits of 30,000 nested arrays, each 400", before, resources(node.proc.pid))


def test_a_host_header_pointing_elsewhere_on_the_top_up_flow(node):
    """The page fetched with `Host: evil.example` names no such host, and a form post from there is refused."""
    before = resources(node.proc.pid)
    status, page = legit(node, path="/topup/demo", headers={"Host": "evil.example"})
    assert status == 200 and b"evil.example" not in page
    form = b"number=%2B4915112345678&amount=1000&method=paypal&confirm=1"
    status, _ = legit(node, "POST", "/topup/demo", form, {"Host": "evil.example", "Origin": "http://evil.example",
                                                         "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and serves(node)
    assert not any("evil.example" in line for _, line in node.lines)
    report("http Host header", "page and pay step with Host: evil.example; page clean, post 403",
           before, resources(node.proc.pid))
