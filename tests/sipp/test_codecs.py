"""A carrier offering only A-law meets an agent taking only mu-law, with real peers: SIPp on both sides, a real
`prepaid run` in between.

Our offer to the agent lists both laws (the carrier's first), the agent answers PCMU, the call connects
and bills, and the carrier's A-law RTP (SIPp's g711a.pcap) is relayed to the agent, transcoded.  The two
scenarios check the headers a carrier's test plan reads: Allow and Supported on our 200 and on our INVITE,
the Reason on our BYE to the agent (a failed check fails the SIPp call).  Each SIPp has its own ``-mp``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sipp.harness import SCENARIOS, SIPP, free_port, run_sipp, start_sipp
from tests.sipp.test_calls import CALLER, FROM_CALLER, HOLD_MS, SERVICE, agent_uri, first_invite, node_metrics
from tests.sipp.test_calls import node_factory, workdir  # noqa: F401  (fixtures)
from tests.sipp.test_metrics import PCAP, with_audio

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]


def test_a_law_caller_and_mu_law_agent_connect_transcoded_and_bill(workdir: Path, node_factory):  # noqa: F811
    """PCMA-only carrier, PCMU-only agent: connected (both SIPps count the call good, their header checks
    passed), one minute billed, and the carrier's A-law packets relayed to the agent, none dropped."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    node.topup(CALLER, "10")
    ag = start_sipp(str(SCENARIOS / "agent_pcmu_only.xml"), workdir, local_port=port, timeout_s=40, name="agent",
                    extra=("-aa", "-d", "1000", "-mp", str(free_port()), "-trace_msg", "-message_file",
                           str(workdir / "agent.msg")))
    scenario = (with_audio(workdir, "carrier_pcma_only.xml") if PCAP.exists()
                else str(SCENARIOS / "carrier_pcma_only.xml"))
    result = run_sipp(scenario, workdir, remote=f"127.0.0.1:{node.sip_port}", timeout_s=30, name="carrier",
                      extra=("-s", SERVICE, "-d", str(HOLD_MS), "-mp", str(free_port()), "-key", "from_header",
                             FROM_CALLER, "-trace_msg", "-message_file", str(workdir / "carrier.msg")))
    agent_result = ag.wait()
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert (agent_result.successful, agent_result.failed) == (1, 0), agent_result.summary()
    invite = first_invite(workdir)
    assert "\nAllow: ACK, BYE, CANCEL, INFO, INVITE, OPTIONS, PRACK, UPDATE\n" in invite and "\nSupported: timer\n" in invite
    body = (workdir / "agent.msg").read_text(errors="replace")
    assert "m=audio" in body and "a=rtpmap:8 PCMA/8000" in body and "a=rtpmap:0 PCMU/8000" in body
    (record,) = node.records()
    assert (record["end_reason"], record["a_status"], record["b_status"]) == ("caller_hangup", 200, 200)
    assert (record["billed_s"], record["charge_cents"]) == (60, 199)
    assert node.balance_cents(CALLER) == 1100 - 199
    metrics = node_metrics(node)
    if PCAP.exists():
        assert metrics["prepaid_rtp_packets_relayed_total"] > 0
    assert metrics["prepaid_rtp_sessions_open"] == 0 and metrics["prepaid_calls_active"] == 0
