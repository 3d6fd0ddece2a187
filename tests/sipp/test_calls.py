"""Issue 3's call scenarios with real peers: SIPp as the carrier and as the agent(s), a real `prepaid run`.

Each test starts the node on free ports with its own SQLite store, tops up the
caller with the real `prepaid topup`, runs SIPp agent(s) in the background and
the SIPp carrier to its end, then asserts what the agent received (its
message log), the call record in the store, the money, and that the node
answered an OPTIONS afterwards (it kept serving).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.sipp.harness import SCENARIOS, SIPP, free_port, run_sipp, start_sipp
from tests.sipp.node import start_node

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]

CALLER = "+49301234567"
SERVICE = "+493012345678"
FROM_CALLER = f"<sip:{CALLER}@127.0.0.1>"


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


def agent_uri(port: int) -> str:
    return f"sip:agent@127.0.0.1:{port};transport=UDP"     # upper case, as SIPp writes it


#: the minutes announcement ("Ihr Guthaben reicht für fünf Minuten") takes about 2.1 s before the agent is rung
HOLD_MS = 4500


def carrier(node, workdir, scenario="carrier_call.xml", *, hold_ms=HOLD_MS, from_header=FROM_CALLER,
            extra="X-Test: 1", timeout_s=30, name="carrier", port=None):
    return run_sipp(str(SCENARIOS / scenario), workdir, remote=f"127.0.0.1:{node.sip_port}",
                    local_port=port, timeout_s=timeout_s, name=name,
                    extra=("-s", SERVICE, "-d", str(hold_ms), "-key", "from_header", from_header,
                           "-key", "extra", extra, "-trace_msg", "-message_file", str(workdir / f"{name}.msg")))


def agent(workdir, scenario, *, port, hold_ms=1000, name="agent", timeout_s=40):
    # -aa: like a real phone, the agent answers the node's OPTIONS probes (200) outside the scenario
    return start_sipp(str(SCENARIOS / scenario), workdir, local_port=port, timeout_s=timeout_s, name=name,
                      extra=("-aa", "-d", str(hold_ms), "-trace_msg", "-message_file", str(workdir / f"{name}.msg")))


def first_invite(workdir, name="agent") -> str:
    """The INVITE the agent received, as SIPp logged it."""
    text = (workdir / f"{name}.msg").read_text(errors="replace")
    match = re.search(r"(INVITE sip:.*?)(?:\n\n|\r\n\r\n)", text, re.S)
    assert match, text[-2000:]
    return match.group(1)


def still_serving(node, workdir):
    """After the scenario the node still answers an OPTIONS (SIPp's built-in options scenario is not in 3.6: a tiny one)."""
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(5)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.sendto((f"OPTIONS sip:{SERVICE}@127.0.0.1:{node.sip_port} SIP/2.0\r\n"
                 f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKkeepalive1\r\n"
                 f"From: <sip:carrier@127.0.0.1>;tag=k1\r\nTo: <sip:{SERVICE}@127.0.0.1>\r\n"
                 "Call-ID: keepalive-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(),
                ("127.0.0.1", node.sip_port))
    data, _ = sock.recvfrom(65535)
    sock.close()
    assert data.startswith(b"SIP/2.0 200 ")


def node_metrics(node) -> dict[str, float]:
    """The node's /metrics samples without labels (read on its portal's listener)."""
    return {name: value for (name, labels), value in node.metrics().items() if not labels}


@pytest.fixture
def node_factory(workdir):
    nodes = []

    def make(**config):
        config.setdefault("profile", {}).setdefault("announce_tariff", "false")
        node = start_node(workdir, **config)
        nodes.append(node)
        return node
    yield make
    for node in nodes:
        log = node.stop()
        (workdir / "node.log").write_text(log)
        assert "Traceback" not in log, log[-4000:]


def test_basic_call_caller_hangs_up(workdir, node_factory):
    """SIPp carrier -> B2BUA -> SIPp agent; the caller hangs up; one billed minute, agent saw our own dialog."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_answer.xml", port=port)
    result = carrier(node, workdir)
    agent_result = ag.wait()
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert agent_result.successful == 1, agent_result.summary()
    invite = first_invite(workdir)
    assert f"From: <sip:{CALLER}@127.0.0.1;user=phone>" in invite
    assert "X-Test" not in invite                          # a B2BUA: the agent's INVITE is our own
    (record,) = node.records()
    assert (record["caller"], record["identity_source"], record["end_reason"]) == (CALLER, "from", "caller_hangup")
    assert (record["billed_s"], record["charge_cents"], record["a_status"], record["b_status"]) == (60, 199, 200, 200)
    assert record["call_id"] not in invite                 # the B-leg has its own Call-ID
    assert node.balance_cents(CALLER) == 1100 - 199
    still_serving(node, workdir)
    metrics = node_metrics(node)
    assert metrics["prepaid_calls_completed_total"] == 1 and metrics["prepaid_calls_active"] == 0
    assert metrics["prepaid_rtp_sessions_open"] == 0 and metrics["prepaid_sip_dialogs_open"] == 0
    assert metrics["prepaid_billing_debits_total"] == 1


def test_agent_hangs_up(workdir, node_factory):
    """The agent's BYE ends the carrier's leg with our BYE."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_hangs_up.xml", port=port, hold_ms=1000)
    result = carrier(node, workdir, "carrier_wait_bye.xml")
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1
    (record,) = node.records()
    assert record["end_reason"] == "agent_hangup"


def test_cancel_while_agent_rings(workdir, node_factory):
    """Early media, the agent rings, the carrier CANCELs: 200 + 487 to it, CANCEL to the agent, nothing billed."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)], profile={"answer_mode": '"early_media"'})
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_noanswer.xml", port=port)
    result = carrier(node, workdir, "carrier_cancel.xml", hold_ms=3500)
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1
    (record,) = node.records()
    assert (record["end_reason"], record["a_status"], record["charge_cents"]) == ("caller_cancelled", 487, 0)
    assert node.balance_cents(CALLER) == 1100


def test_200_crossing_cancel(workdir, node_factory):
    """The agent's 200 crosses our CANCEL: we ACK and BYE the agent; the carrier's leg ends 487."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)], profile={"answer_mode": '"early_media"'})
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_race.xml", port=port)
    result = carrier(node, workdir, "carrier_cancel.xml", hold_ms=3500)
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1, "the agent did not get ACK and BYE"
    (record,) = node.records()
    assert record["a_status"] == 487 and record["charge_cents"] == 0


def test_a_second_fork_that_answers_is_byed_saying_the_call_was_completed_elsewhere(workdir, node_factory):
    """The agent is a forking proxy: two forks ring, both answer.  The node bridges the first, ACKs the
    second and BYEs it with ``Reason: SIP;cause=200;text="Call completed elsewhere"`` (RFC 3326); the
    caller's hang-up reaches the first fork with Q.850 16 (both checked by the agent's scenario)."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_forked.xml", port=port)
    result = carrier(node, workdir)
    agent_result = ag.wait()
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert agent_result.successful == 1, agent_result.summary()
    (record,) = node.records()
    assert (record["end_reason"], record["b_status"]) == ("caller_hangup", 200)


def test_first_agent_busy_second_answers(workdir, node_factory):
    busy, answers = free_port(), free_port()
    node = node_factory(agents=[agent_uri(busy), agent_uri(answers)])
    node.topup(CALLER, "10")
    ag1 = agent(workdir, "agent_busy.xml", port=busy, name="busy")
    ag2 = agent(workdir, "agent_answer.xml", port=answers, name="agent")
    result = carrier(node, workdir)
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag1.wait().successful == 1 and ag2.wait().successful == 1
    (record,) = node.records()
    assert record["agent_tried"] == f"{agent_uri(busy)},{agent_uri(answers)}"
    assert record["agent_answered"] == agent_uri(answers)


def test_no_agent_answers_480(workdir, node_factory):
    """Each agent rings out its timeout and is cancelled; the caller hears why (early media), then 480."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)], profile={"answer_mode": '"early_media"', "ring_timeout_s": "2"})
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_noanswer.xml", port=port)
    result = carrier(node, workdir, "carrier_refused.xml")
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert "SIP/2.0 480" in (workdir / "carrier.msg").read_text()
    assert ag.wait().successful == 1
    (record,) = node.records()
    assert (record["end_reason"], record["a_status"]) == ("no_agent", 480)


def received_invites(workdir, name="agent") -> list[str]:
    """Every INVITE (headers and body) the SIPp peer ``name`` received, in order, as it logged them."""
    text = (workdir / f"{name}.msg").read_text(errors="replace")
    blocks = re.split(r"^-{10,}.*$", text, flags=re.M)
    invites = []
    for block in blocks:
        if "message received" not in block:
            continue
        message = block.split("\n", 2)[-1].lstrip()
        if message.startswith("INVITE sip:"):
            invites.append(message)
    return invites


def test_hold_and_resume_reinvite_relayed_to_the_agent(workdir, node_factory):
    """re-INVITE sendonly then sendrecv from the carrier (each a session refresh too): the agent receives our
    re-INVITE with a=sendonly, then one with a=sendrecv, from our address; the carrier's 200s say recvonly,
    then sendrecv; billed and recorded like any call."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_hold.xml", port=port)
    result = carrier(node, workdir, "carrier_hold.xml")
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1, "the agent did not receive both re-INVITEs"
    first, hold, resume = received_invites(workdir)
    assert "a=sendrecv" in first
    assert "a=sendonly" in hold and "a=sendrecv" not in hold and "X-Test" not in hold
    assert "a=sendrecv" in resume and "a=sendonly" not in resume
    assert "o=prepaid " in hold and "o=agent" not in hold                 # our SDP, not the carrier's
    log = (workdir / "carrier.msg").read_text()
    assert log.count("Session-Expires: 1800;refresher=uac") >= 3      # the two refreshes were answered with it
    assert "a=recvonly" in log                                        # the carrier's hold answered as the agent did
    (record,) = node.records()
    assert record["end_reason"] == "caller_hangup"
    assert (record["billed_s"], record["charge_cents"], record["a_status"], record["b_status"]) == (60, 199, 200, 200)
    assert node.balance_cents(CALLER) == 1100 - 199
    still_serving(node, workdir)


def test_withheld_number_identified_from_trusted_pai_and_hidden_from_agent(workdir, node_factory):
    """Privacy: id, anonymous From, PAI from the trusted 127.0.0.1: identified, billed, agent sees no number."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_answer.xml", port=port)
    result = carrier(node, workdir, from_header='"Anonymous" <sip:anonymous@anonymous.invalid>',
                     extra=f"Privacy: id\r\nP-Asserted-Identity: <tel:{CALLER}>")
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1
    invite = first_invite(workdir)
    assert "From: \"Anonymous\" <sip:anonymous@anonymous.invalid>" in invite
    assert "P-Asserted-Identity" not in invite and CALLER[1:] not in invite
    (record,) = node.records()
    assert (record["caller"], record["identity_source"], record["privacy"]) == (CALLER, "pai", 1)
    assert record["charge_cents"] == 199


def test_a_call_from_an_untrusted_address_is_refused_whatever_it_asserts(workdir, node_factory):
    """127.0.0.1 not a trusted carrier (``untrusted = "refuse"``, the default): the INVITE, with a PAI naming
    a caller with credit, gets 403; nobody is identified, nothing is recorded or charged, and the refusal is
    counted.  (Before, From and PAI decided the caller whoever sent them.)"""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)], trusted=["192.0.2.0/24"])
    node.topup(CALLER, "10")
    result = carrier(node, workdir, "carrier_refused.xml", from_header=FROM_CALLER,
                     extra=f"P-Asserted-Identity: <tel:{CALLER}>")
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert "SIP/2.0 403" in (workdir / "carrier.msg").read_text(errors="replace")
    assert node.records(timeout_s=1) == []
    assert node.balance_cents(CALLER) == 1100
    assert node_metrics(node)["prepaid_invites_untrusted_refused_total"] == 1

def test_a_caller_without_credit_hanging_up_during_the_refusal(workdir, node_factory):
    """A real node, a SIPp carrier whose caller has no credit and hangs up 1 s into the spoken refusal: the
    BYE gets its 200, no agent is rung, the node logs no traceback and nothing at critical or error level (it
    logged a CRITICAL AttributeError on every such call), and the record says the caller hung up during the
    refusal, nothing charged."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    result = carrier(node, workdir, hold_ms=1000)
    assert (result.successful, result.failed) == (1, 0), result.summary()
    (record,) = node.records()
    assert (record["end_reason"], record["a_status"], record["b_status"]) == ("no_credit_hangup", 200, None)
    assert record["charge_cents"] == 0
    still_serving(node, workdir)
    output = "".join(node.output)
    assert "[critical]" not in output.lower() and "[error]" not in output.lower(), output[-3000:]
    metrics = node_metrics(node)
    assert metrics["prepaid_call_errors_total"] == 0 and metrics["prepaid_call_unknown_events_total"] == 0
    assert metrics["prepaid_sip_internal_errors_total"] == 0 and metrics["prepaid_store_listener_errors_total"] == 0
