"""Peers that misbehave at the end of a call must not make the caller pay for it.

A real ``prepaid run`` at 1 EUR a second in 1/1 increments (charging from the agent's
answer, no announcement), hand-written peers (tests/hostile/rawua.py) that send no
RTP:

- the agent hangs up after 3 s and the carrier never answers our BYE (it is
  retransmitted for 32 s): the session is settled at the hang-up;
- the caller hangs up after 3 s and the agent never answers our BYE: the same;
- a carrier on TCP closes its connection right after the ACK and says nothing
  more: the call ends by the media silence timeout (5 s here), is billed to
  the last sign of life, and gets its record.

Each checks the settled session's billed seconds, that the balance equals the
ledger, and prints its report line.  On the code before the fix the first two
billed about 35 s.
"""

from __future__ import annotations

import time

import pytest

from tests.hostile.rawua import RawAgent, RawCarrier
from tests.hostile.support import report, resources
from tests.sipp.node import start_node

pytestmark = pytest.mark.slow        # a real node and real calls: seconds a test

CALLER = "+49301234567"
SERVICE = "+493012345678"
EUR_PER_SECOND = {"landline_per_minute": '"60.00"', "mobile_per_minute": '"60.00"', "increment": '"1/1"',
                  "charging_starts": '"answer"', "answer_mode": '"agent"'}


@pytest.fixture
def agent():
    agent = RawAgent()
    yield agent
    agent.close()


@pytest.fixture
def node(tmp_path, agent):
    node = start_node(tmp_path, agents=[agent.uri], profile=EUR_PER_SECOND,
                      sections={"media": {"silence_timeout_s": "5"}}).follow()
    node.topup(CALLER, "100")
    yield node
    node.stop()


def settled_session(node, timeout_s: float = 5.0):
    """The caller's call session once it is settled (waiting, bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows = node.rows("select state, billed_s, charged_cents from call_sessions")
        if rows and rows[0]["state"] == "settled" or time.monotonic() > deadline:
            return rows[0] if rows else None
        time.sleep(0.1)


def ledger_matches_balance(node) -> bool:
    (total,) = node.rows("select coalesce(sum(amount_cents), 0) from ledger")[0]
    return total == node.balance_cents(CALLER)


@pytest.mark.parametrize("hangs_up", ["agent", "caller"])
def test_one_side_hangs_up_and_the_other_never_answers_our_bye(node, agent, hangs_up):
    """One side hangs up after 3 s and the other never answers the BYE we send it (retransmitted for 32 s):
    the session is settled at the hang-up, 3-4 s billed (on the old code about 35 s)."""
    before = resources(node.proc.pid)
    carrier = RawCarrier(node.sip_port, SERVICE, CALLER)
    silent = carrier if hangs_up == "agent" else agent
    silent.ignore_bye = True
    try:
        serving = agent.serve_in_background(6)
        assert carrier.call()
        time.sleep(3)
        (agent if hangs_up == "agent" else carrier).hang_up()
        carrier.serve(1.0)
        serving.join()
        session = settled_session(node)
        assert silent.got_bye and session is not None and session["state"] == "settled", session
        assert 3 <= session["billed_s"] <= 4 and session["charged_cents"] == session["billed_s"] * 100
        assert ledger_matches_balance(node)
        other = "carrier" if hangs_up == "agent" else "agent"
        report(f"bye_never_answered_by_{other}", f"{hangs_up} hung up after 3 s, {other} ignored our BYE: "
               f"{session['billed_s']} s billed at the hang-up", before, resources(node.proc.pid))
    finally:
        carrier.close()


def test_a_tcp_carrier_that_vanishes_after_the_ack_ends_its_call(node, agent):
    """The carrier's TCP connection closes after the ACK, no RTP ever: the call ends by the silence timeout
    (5 s), is settled and recorded, and costs at most the silence timeout plus a second."""
    before = resources(node.proc.pid)
    carrier = RawCarrier(node.sip_port, SERVICE, CALLER, transport="tcp")
    serving = agent.serve_in_background(10)
    assert carrier.call()
    carrier.close()
    serving.join()
    records = node.records(timeout_s=10)
    session = settled_session(node)
    assert [r["end_reason"] for r in records] == ["media_timeout"], [dict(r) for r in records]
    assert session["state"] == "settled" and session["billed_s"] <= 6
    assert agent.got_bye
    assert ledger_matches_balance(node)
    report("tcp_carrier_vanished", f"TCP carrier closed after the ACK, no RTP: ended by the silence timeout, "
           f"{session['billed_s']} s billed", before, resources(node.proc.pid))


def test_a_graceful_stop_settles_and_records_the_open_calls(node, agent):
    """SIGTERM with a call in progress whose carrier never answers our BYE: the node ends the call, settles
    it at the stop and writes its record before it exits (on the old code: no record, session left open)."""
    before = resources(node.proc.pid)
    carrier = RawCarrier(node.sip_port, SERVICE, CALLER)
    carrier.ignore_bye = True
    try:
        serving = agent.serve_in_background(5)
        assert carrier.call()
        time.sleep(2)
        after = resources(node.proc.pid)
        output = node.stop()
        serving.join()
        assert node.proc.returncode == 0, output[-3000:]
        session = settled_session(node, timeout_s=0)
        records = node.records(timeout_s=0)
        assert [r["end_reason"] for r in records] == ["node_stopped"], output[-3000:]
        assert session["state"] == "settled" and 2 <= session["billed_s"] <= 3
        assert agent.got_bye and ledger_matches_balance(node)
        report("graceful_stop", f"SIGTERM with a call up 2 s, carrier ignoring our BYE: settled at the stop, "
               f"{session['billed_s']} s billed, record written", before, after)
    finally:
        carrier.close()


def test_a_tcp_caller_without_credit_closing_right_after_the_invite_leaves_nothing(node, agent):
    """A caller with no credit sends its INVITE over TCP and closes: the call ends at once (no refusal is
    spoken into nothing), gets its record, and the node has no call open afterwards."""
    before = resources(node.proc.pid)
    for _ in range(20):
        carrier = RawCarrier(node.sip_port, SERVICE, "+49309999999", transport="tcp")
        carrier._request("INVITE", carrier.remote_uri, 1, "v=0\r\no=raw 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
                         "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n")
        carrier.close()
    records = node.records(timeout_s=10, count=20)
    assert len(records) == 20 and all(r["caller"] == "+49309999999" for r in records)
    after = resources(node.proc.pid)
    assert after.fds <= before.fds + 2
    report("tcp_caller_gone_after_invite", "20 TCP callers without credit closed right after their INVITE: "
           "20 records, nothing left open", before, after)
