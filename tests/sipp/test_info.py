"""DTMF as SIP INFO end to end: a real ``prepaid run``, SIPp as a withheld caller's carrier and as the agent.

The carrier's caller withholds its number on a profile that asks for the customer PIN (``withheld =
"pin"``) and types it as INFO in the dialog (``carrier_info_pin.xml``), the way carriers that do not
send RFC 4733 events pass keys on: it is identified by that PIN, billed on its account and put through
to the agent.  On the way, an INFO of a type the node does not read gets 415 with Accept, and a DTMF
body without a Signal 400 with a reason phrase saying so (``b2bua.info``).
"""

from __future__ import annotations

import re

import pytest

from tests.sipp.harness import SCENARIOS, SIPP, free_port, run_sipp, start_sipp
from tests.sipp.node import start_node

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]

CALLER = "+49301234567"
SERVICE = "+493012345678"


def test_a_withheld_caller_typing_its_pin_as_info_is_identified_and_put_through(tmp_path):
    """Privacy: id, anonymous From, no PAI: answered for the PIN prompt; 415 and 400 to the INFOs the node
    cannot take; the six PIN digits and "#" as INFO each get 200; the caller is identified by the PIN
    ("pin"), the agent (its own SIPp on its own port; ``answer_mode = "agent"`` rings it as soon as the caller
    is known) answers, the caller hangs up, and the record names the caller and the agent's 200."""
    agent_port = free_port()
    node = start_node(tmp_path, agents=[f"sip:agent@127.0.0.1:{agent_port};transport=UDP"],
                      profile={"withheld": '"pin"', "answer_mode": '"agent"'})
    try:
        node.topup(CALLER, "10")
        [(pin,)] = node.rows("select pin from accounts where number = ?", CALLER)
        assert re.fullmatch(r"\d{6}", pin)
        agent = start_sipp(str(SCENARIOS / "agent_answer.xml"), tmp_path, local_port=agent_port, timeout_s=40,
                           name="agent", extra=("-aa", "-d", "1000"))
        digits = [arg for n, d in enumerate(pin, 1) for arg in ("-key", f"d{n}", d)]
        carrier = run_sipp(str(SCENARIOS / "carrier_info_pin.xml"), tmp_path, remote=f"127.0.0.1:{node.sip_port}",
                           timeout_s=30, name="carrier",
                           extra=("-s", SERVICE, "-d", "4500",
                                  "-key", "from_header", '"Anonymous" <sip:anonymous@anonymous.invalid>',
                                  "-key", "extra", "Privacy: id", *digits,
                                  "-trace_msg", "-message_file", str(tmp_path / "carrier.msg")))
        agent_result = agent.wait()
        assert (carrier.successful, carrier.failed) == (1, 0), carrier.summary()
        assert agent_result.successful == 1, agent_result.summary()
        msgs = (tmp_path / "carrier.msg").read_text(errors="replace")
        assert re.search(r"^SIP/2\.0 400 Bad DTMF: no Signal\r?$", msgs, re.M), msgs[-3000:]
        assert re.search(r"^Accept: application/dtmf-relay, application/dtmf\r?$", msgs, re.M)
        answered = re.search(r"SIP/2\.0 200 .*?CSeq: 1 INVITE.*?(?:\r?\n){2}", msgs, re.S).group(0)
        assert re.search(r"^Allow: .*\bINFO\b", answered, re.M)
        (record,) = node.records()
        assert (record["caller"], record["identity_source"], record["end_reason"]) == (CALLER, "pin",
                                                                                      "caller_hangup")
        assert (record["a_status"], record["b_status"]) == (200, 200)
    finally:
        log = node.stop()
        (tmp_path / "node.log").write_text(log)
    assert "Traceback" not in log, log[-4000:]
