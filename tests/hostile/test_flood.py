"""An INVITE flood from an untrusted source, and callers spoofing a victim's number, against a real node.

The node trusts 127.0.0.1 (the carrier); the attacker sends from 127.0.0.2, another
loopback address.  A bounded flood of INVITEs from random numbers runs while the
carrier places ordinary calls for a caller with credit: every ordinary call must be
answered and bridged, and the flood must get at most one response per INVITE (no
retransmission toward a source that may be forged).  With ``untrusted = "refuse"``
each flood INVITE is a 403 made without a call, media or a store query; with
``untrusted = "pin"`` the per-source rate answers most of them 503 with Retry-After
and the rest hold at most the refusals' share of the RTP ports.

Spoofing: an INVITE from 127.0.0.2 with the victim's number in From (``sip:`` and
``tel:``) or in P-Asserted-Identity is refused; the victim's balance does not move.
(On the code before, the forged From was believed and the victim charged.)
"""

from __future__ import annotations

import random
import socket
import threading
import time
import uuid

import pytest

from tests.hostile.rawua import RawAgent, RawCarrier
from tests.hostile.support import report, resources
from tests.sipp.node import start_node

pytestmark = pytest.mark.slow        # a real node and real calls: seconds a test

CALLER = "+49301234567"
SERVICE = "+493012345678"
ATTACKER = "127.0.0.2"
FLOOD_INVITES = 1500
FLOOD_PER_S = 500
ORDINARY_CALLS = 6


def flood(node_port: int, count: int, per_s: float, seed: int) -> dict[str, int]:
    """``count`` INVITEs from ``ATTACKER`` at ``per_s``, each a new call from a random number; then 2 s more
    of listening.  Returns the responses received per status class ("403", "503", ...) and "invites"."""
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((ATTACKER, 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    counts: dict[str, int] = {"invites": 0}

    def drain() -> None:
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            status = data[8:11].decode(errors="replace")
            counts[status] = counts.get(status, 0) + 1

    started = time.monotonic()
    for i in range(count):
        caller = "+4930" + "".join(rng.choice("0123456789") for _ in range(8))
        body = ("v=0\r\no=f 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
                "m=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
        call_id = uuid.uuid4().hex
        message = (f"INVITE sip:{SERVICE}@127.0.0.1:{node_port} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP {ATTACKER}:{port};branch=z9hG4bK{call_id[:16]}\r\n"
                   f"From: <sip:{caller}@{ATTACKER}>;tag={call_id[:8]}\r\nTo: <sip:{SERVICE}@127.0.0.1>\r\n"
                   f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:f@{ATTACKER}:{port}>\r\n"
                   f"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        sock.sendto(message.encode(), ("127.0.0.1", node_port))
        counts["invites"] += 1
        drain()
        delay = started + (i + 1) / per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        drain()
        time.sleep(0.05)
    sock.close()
    return counts


def ordinary_calls(node, agent: RawAgent, count: int) -> int:
    """``count`` calls from the trusted carrier for the caller with credit, one after another; how many were
    answered (the agent answers, the node bridges and answers the carrier), each hung up after answer."""
    answered = 0
    for _ in range(count):
        carrier = RawCarrier(node.sip_port, SERVICE, CALLER)
        try:
            if carrier.call(timeout_s=10):
                answered += 1
                carrier.hang_up()
                carrier.serve(0.3)
        finally:
            carrier.close()
    return answered


@pytest.fixture
def agent():
    agent = RawAgent()
    serving = agent.serve_in_background(40)
    yield agent
    agent.close()
    serving.join(timeout=5)


def start(tmp_path, agent, untrusted: str):
    node = start_node(tmp_path, agents=[agent.uri], profile={"answer_mode": '"agent"'},
                      sections={"carriers": {"untrusted": f'"{untrusted}"'},
                                "admission": {"invites_per_s": "5", "invite_burst": "10"}})
    node.topup(CALLER, "50")
    return node


@pytest.mark.parametrize("untrusted", ["refuse", "pin"])
def test_an_untrusted_flood_leaves_the_carriers_calls_alone(tmp_path, agent, untrusted):
    """1,500 INVITEs at 500/s from an untrusted address while the carrier places 6 calls: all 6 are
    answered, the flood gets at most one response per INVITE, and no flood call is charged anything."""
    node = start(tmp_path, agent, untrusted)
    try:
        before = resources(node.proc.pid)
        result: dict[str, int] = {}
        attack = threading.Thread(target=lambda: result.update(flood(node.sip_port, FLOOD_INVITES, FLOOD_PER_S, 7)))
        attack.start()
        time.sleep(0.5)
        answered = ordinary_calls(node, agent, ORDINARY_CALLS)
        attack.join()
        after = resources(node.proc.pid)
        refusals = sum(v for k, v in result.items() if k != "invites" and "300" <= k <= "699")
        assert answered == ORDINARY_CALLS, (answered, result)
        assert refusals <= result["invites"], result      # one final answer per INVITE, never resent by timer
        if untrusted == "refuse":
            assert result.get("403", 0) == FLOOD_INVITES, result
        else:       # over invites_per_s = 5 (burst 10) most are 503 with Retry-After; the others hear a PIN prompt
            assert result.get("503", 0) >= FLOOD_INVITES * 0.9, result
        # the flood's callers have no account and nothing in the ledger; the carrier's caller paid its calls
        assert [r["number"] for r in node.rows("select number from accounts")] == [CALLER]
        (ledger_cents,) = node.rows("select sum(amount_cents) from ledger")[0]
        assert ledger_cents == node.balance_cents(CALLER) < 6000
        assert node.proc.poll() is None
        report(f"invite_flood_{untrusted}", f"{result['invites']} INVITEs at {FLOOD_PER_S}/s from {ATTACKER} "
               f"(responses {dict((k, v) for k, v in result.items() if k != 'invites')}), "
               f"{answered} of {ORDINARY_CALLS} carrier calls answered meanwhile", before, after)
    finally:
        node.stop()


@pytest.mark.parametrize("forged", [
    ("from", f"<sip:{CALLER}@127.0.0.2>", ""),
    ("from", f"<tel:{CALLER}>", ""),
    ("pai", "<sip:anonymous@anonymous.invalid>", f"P-Asserted-Identity: <tel:{CALLER}>\r\nPrivacy: id\r\n"),
])
def test_a_victims_number_from_an_untrusted_address_is_refused(tmp_path, agent, forged):
    """The victim's number in From (sip: or tel:) or PAI, sent from 127.0.0.2: 403, no call, no charge."""
    node = start(tmp_path, agent, "refuse")
    try:
        before = resources(node.proc.pid)
        balance = node.balance_cents(CALLER)
        kind, from_header, extra = forged
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((ATTACKER, 0))
        sock.settimeout(5)
        port = sock.getsockname()[1]
        body = "v=0\r\no=f 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\n"
        sock.sendto((f"INVITE sip:{SERVICE}@127.0.0.1:{node.sip_port} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP {ATTACKER}:{port};branch=z9hG4bKspoof{kind}\r\n"
                     f"From: {from_header};tag=s1\r\nTo: <sip:{SERVICE}@127.0.0.1>\r\nCall-ID: spoof-{uuid.uuid4().hex}\r\n"
                     f"CSeq: 1 INVITE\r\nContact: <sip:s@{ATTACKER}:{port}>\r\nMax-Forwards: 70\r\n{extra}"
                     f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode(),
                    ("127.0.0.1", node.sip_port))
        finals = []
        while not finals:
            data = sock.recv(65535)
            if not data.startswith(b"SIP/2.0 1"):
                finals.append(data[:12].decode())
        sock.close()
        assert finals == ["SIP/2.0 403 "]
        time.sleep(0.5)
        assert agent.invite is None and node.balance_cents(CALLER) == balance
        assert node.records(timeout_s=0) == []
        report(f"identity_spoofing_{kind}", f"victim's number in {kind} ({from_header}) from {ATTACKER}: 403, "
               f"nothing charged", before, resources(node.proc.pid))
    finally:
        node.stop()
