"""The money after a node dies mid-call, or loses its PostgreSQL connections mid-call.

Two real ``prepaid run`` nodes on one PostgreSQL schema (the cluster of
tests/node/test_two_nodes.py), SIPp as carrier and agent, three calls of one caller
in flight through node a. Then node a is killed with SIGKILL, or its PostgreSQL
backends are terminated (``pg_terminate_backend``, only the backends whose
client ports are node a's sockets: other tests share the server). Afterwards:
balance == sum of the ledger, nothing ever below zero, every billing session
settled (by node b's reconciler when a is dead) and charged what the ledger
took, and every call listed by ``prepaid calls``. Bounded in time, loopback.
"""

from __future__ import annotations

import json
import os
import signal
import time

import sqlalchemy as sa

from tests.hostile.support import report, resources
from tests.sipp.harness import SCENARIOS, free_port, start_sipp
from tests.node.test_two_nodes import (CALLER, FROM_CALLER, SERVICE, agent_uri, balance_cents, check_books,  # noqa: F401
                                  cluster, pytestmark, rows, wait_for)

CALLS = 3
SECTIONS = {"store": {"lease_s": "5", "reconcile_interval_s": "1", "renew_interval_s": "1"}}


def socket_ports(pid: int) -> set[int]:
    """The local TCP ports of process ``pid``'s sockets (from /proc: its fds' inodes in net/tcp, tcp6)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def calls_in_flight(tmp_path, cluster):
    """Nodes a and b, 10.00 for the caller, CALLS calls through node a: (a, b, engine, start_cents, sipps)."""
    port_a = free_port()
    a = cluster("a", agents=[agent_uri(port_a)], sections=SECTIONS)
    b = cluster("b", agents=[agent_uri(free_port())], sections=SECTIONS)
    a.topup(CALLER, "10")
    engine = cluster.engine
    start_cents = balance_cents(engine)
    ag = start_sipp(str(SCENARIOS / "agent_answer.xml"), tmp_path, local_port=port_a, calls=CALLS, timeout_s=30,
                    name="agent_a")
    call = start_sipp(str(SCENARIOS / "carrier_wait_bye.xml"), tmp_path, remote=f"127.0.0.1:{a.sip_port}",
                      calls=CALLS, timeout_s=30, name="carrier_a",
                      extra=("-s", SERVICE, "-key", "from_header", FROM_CALLER, "-key", "extra", "X-Test: 2"))
    assert wait_for(lambda: all_charging(engine), 15), rows(engine, "select * from call_sessions")
    return a, b, engine, start_cents, (ag, call)


def all_charging(engine) -> bool:
    return len(rows(engine, "select id from call_sessions where charging_started_ms is not null")) >= CALLS


def check_money_and_calls(engine, b, start_cents: int) -> dict:
    """Every session settled, the books add up to the cent, and ``prepaid calls`` lists every call."""
    settled = wait_for(lambda: all(s["state"] == "settled" for s in rows(engine, "select state from call_sessions")),
                       15)
    assert settled, rows(engine, "select id, state, node_id, lease_until_ms from call_sessions")
    books = check_books(engine, start_cents)
    listed = b.prepaid("calls", "--profile", "demo", CALLER, "--json")
    assert listed.returncode == 0, listed.stderr
    call_ids = {s["call_id"] for s in rows(engine, "select call_id from call_sessions")}
    assert len(call_ids) == CALLS and call_ids <= {c["call_id"] for c in json.loads(listed.stdout)}, listed.stdout
    return books


def test_kill_9_of_a_node_with_calls_in_flight(tmp_path, cluster):
    """Three calls charging through node a; a gets SIGKILL: node b's reconciler settles all three, the books
    add up to the cent, nothing below zero, and ``prepaid calls`` lists every call."""
    a, b, engine, start_cents, sipps = calls_in_flight(tmp_path, cluster)
    before = resources(b.proc.pid)
    time.sleep(2)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=5)
    try:
        books = check_money_and_calls(engine, b, start_cents)
    finally:
        for sipp in sipps:
            sipp.kill()
    assert {s["node_id"] for s in books["sessions"]} == {"a"}
    report("kill -9 mid-call", f"SIGKILL of node a with {CALLS} calls charging: settled by node b, "
           f"charged {books['charges_cents']} + balance {books['balance_cents']} == {start_cents} cents",
           before, resources(b.proc.pid))


def test_postgres_backends_terminated_mid_call(tmp_path, cluster):
    """Three calls charging through node a; every PostgreSQL backend of node a is terminated: the calls
    go on or end, every session is settled (by a, or by b's reconciler), the books add up to the cent."""
    a, b, engine, start_cents, sipps = calls_in_flight(tmp_path, cluster)
    before = resources(a.proc.pid)
    time.sleep(1)
    ports = socket_ports(a.proc.pid)
    with engine.begin() as conn:
        killed = conn.execute(sa.text("select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity "
                                      "where client_port = any(:ports) and pid <> pg_backend_pid()) t"),
                              {"ports": sorted(ports)}).scalar()
    assert killed >= 1
    time.sleep(3)
    assert a.proc.poll() is None, "node a died when its database connections were cut"
    after = resources(a.proc.pid)
    for sipp in sipps:  # what is left of the calls ends with the node's stop or its lease
        sipp.kill()
    a.proc.send_signal(signal.SIGTERM)
    a.proc.wait(timeout=20)         # a graceful stop ends, settles and records the calls before the node exits
    books = check_money_and_calls(engine, b, start_cents)
    report("pg_terminate_backend mid-call", f"{killed} backends of node a terminated with {CALLS} calls charging: "
           f"charged {books['charges_cents']} + balance {books['balance_cents']} == {start_cents} cents",
           before, after)
