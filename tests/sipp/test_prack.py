"""RFC 3262 end to end: a carrier that requires 100rel gets the early-media 183 reliably, PRACKs it, and the call completes."""

from __future__ import annotations

import re

import pytest

from tests.sipp.harness import SCENARIOS, SIPP, free_port, run_sipp, start_sipp
from tests.sipp.node import start_node

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]

CALLER = "+49301234567"
SERVICE = "+493012345678"


def test_carrier_requiring_100rel_pracks_the_183_and_the_call_completes(tmp_path):
    """The 183 has Require: 100rel, an RSeq and P-Early-Media: sendrecv; the PRACK gets 200; the agent answers; both sides end clean."""
    agent_port = free_port()
    node = start_node(tmp_path, agents=[f"sip:agent@127.0.0.1:{agent_port};transport=UDP"],
                      profile={"answer_mode": '"early_media"', "announce_tariff": "false"})
    try:
        node.topup(CALLER, "10")
        agent = start_sipp(str(SCENARIOS / "agent_answer.xml"), tmp_path, local_port=agent_port, timeout_s=30,
                           name="agent")
        carrier = run_sipp(str(SCENARIOS / "prack_carrier.xml"), tmp_path, remote=f"127.0.0.1:{node.sip_port}",
                           timeout_s=25, name="carrier",
                           extra=("-s", SERVICE, "-d", "1500", "-key", "from_header", f"<sip:{CALLER}@127.0.0.1>",
                                  "-key", "extra", "X-Test: prack", "-trace_msg",
                                  "-message_file", str(tmp_path / "carrier.msg")))
        agent_result = agent.wait()
        assert carrier.successful == 1 and carrier.failed == 0, carrier.summary()
        assert agent_result.successful == 1, agent_result.summary()
        msgs = (tmp_path / "carrier.msg").read_text(errors="replace")
        first_183 = re.search(r"SIP/2.0 183 .*?(?:\r?\n){2}", msgs, re.S).group(0)
        assert re.search(r"^Require: *100rel", first_183, re.M | re.I)
        assert re.search(r"^P-Early-Media: *sendrecv", first_183, re.M | re.I)
        assert re.search(r"^SIP/2.0 200 .*?^CSeq: *2 PRACK", msgs, re.S | re.M)
        record = node.records()[0]
        assert record["a_status"] == 200 and record["b_status"] == 200
    finally:
        log = node.stop()
        (tmp_path / "node.log").write_text(log)
    assert "Traceback" not in log, log[-4000:]
