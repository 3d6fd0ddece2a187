"""The first-caller offer with real peers: SIPp as the carrier and the agent, a real `prepaid run` whose
profile gives first-time callers five free minutes, and a caller who never topped up."""

from __future__ import annotations

import pytest

from tests.sipp.harness import SIPP, free_port
from tests.sipp.node import start_node
from tests.sipp.test_calls import CALLER, agent, agent_uri, carrier, still_serving

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]

FREE_FIVE = {"first_caller_per_minute": '"0"', "first_caller_period_s": "300", "announce_tariff": "false"}


def test_a_caller_without_account_talks_free_once_then_is_refused_for_no_credit(tmp_path):
    """No top-up, no account: the first call hears "Ihre ersten fünf Minuten sind kostenlos" (the node's
    timeline says so), is bridged to the agent and billed a minute for 0 cents; the caller is on the
    first-caller list with a balance of 0; the second call is answered with the no-credit words and BYE,
    and no agent is rung."""
    port = free_port()
    node = start_node(tmp_path, agents=[agent_uri(port)], profile=FREE_FIVE)
    try:
        ag = agent(tmp_path, "agent_answer.xml", port=port)
        first = carrier(node, tmp_path, hold_ms=6000)
        agent_result = ag.wait()
        assert (first.successful, first.failed) == (1, 0), first.summary()
        assert agent_result.successful == 1, agent_result.summary()
        (record,) = node.records()
        assert (record["caller"], record["end_reason"], record["agent_answered"]) == (
            CALLER, "caller_hangup", agent_uri(port))
        assert (record["billed_s"], record["charge_cents"]) == (60, 0)
        assert node.balance_cents(CALLER) == 0
        assert [tuple(r) for r in node.rows("select profile, number from first_callers")] == [("demo", CALLER)]
        assert node.rows("select count(*) from ledger")[0][0] == 0          # nothing changed hands

        second = carrier(node, tmp_path, "carrier_wait_bye.xml", name="carrier2")
        assert (second.successful, second.failed) == (1, 0), second.summary()
        records = node.records(count=2)
        assert [r["end_reason"] for r in records] == ["caller_hangup", "no_credit"]
        assert records[1]["agent_tried"] is None and records[1]["charge_cents"] == 0
        still_serving(node, tmp_path)
    finally:
        log = node.stop()
        (tmp_path / "node.log").write_text(log)
    assert "Traceback" not in log, log[-4000:]
    assert log.count("announcing the first-caller offer: 5 minute(s) at 0/min") == 1, log[-4000:]
    assert "refused: balance too low (balance 0 cents)" in log, log[-4000:]
