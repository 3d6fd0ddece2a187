"""Baresip as the caller and as the agent, a real ``prepaid run`` between them: one call over UDP, one over TLS.

The caller (baresip) dials the service number; the node answers, speaks the
minutes the credit buys, rings the agent (baresip, answering by itself) and
bridges them; after a few seconds of talk the agent hangs up and the caller gets
the node's BYE. Each phone speaks a sine of its own (440 Hz the caller, 1000 Hz
the agent) from a WAV file and records what it decoded; the recordings are
searched by cross-correlation (``demo.phone.find``): the caller's must hold the
announcement (the prompt WAVs of ``media/prompts/de``) and the agent's tone, the
agent's the caller's tone and not its own.

Over TLS both legs are TLS: the node presents a certificate of the test PKI, and
checks the agent's against ``sip.tls_server_ca``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from demo.phone import find
from tests.sipp.baresip import read_wav, require_baresip, sip_port_pair, start_baresip, write_tone
from tests.sipp.harness import ROOT, free_port
from tests.sipp.node import start_node
from tests.support.pki import make_ca, make_leaf

pytestmark = [pytest.mark.baresip, pytest.mark.slow]

CALLER = "+49301234567"
SERVICE = "+493012345678"
CALLER_HZ, AGENT_HZ = 440.0, 1000.0
PROMPTS = ROOT / "media" / "prompts" / "de"
#: how long the two talk before the agent hangs up
TALK_S = 3
#: normalised correlation that counts as heard (a clean copy scores ~1.0); what was not sent scores far below
HEARD, NOT_HEARD = 0.8, 0.5


def _one_pem(folder: Path, leaf) -> str:
    """baresip's sip_certificate: the certificate and its key in one file."""
    path = folder / (Path(leaf.cert).stem + ".pem")
    path.write_text(Path(leaf.cert).read_text() + Path(leaf.key).read_text())
    return str(path)


def _call(tmp_path: Path, tls: bool) -> dict:
    """One call caller -> node -> agent; what each phone heard, the node's record, the phones' logs."""
    require_baresip()
    caller_tone = write_tone(tmp_path / "caller.wav", CALLER_HZ, 25)
    agent_tone = write_tone(tmp_path / "agent.wav", AGENT_HZ, 25)
    agent_port, caller_port = sip_port_pair(), sip_port_pair()
    sections, certs = {}, {}
    if tls:
        pki = tmp_path / "pki"
        pki.mkdir()
        ca = make_ca(pki, "test-ca")
        server = make_leaf(pki, ca, "node", ExtendedKeyUsageOID.SERVER_AUTH)
        node_tls = free_port()
        sections = {"sip": {"tls_port": str(node_tls), "tls_certificate": f'"{server.cert}"',
                            "tls_private_key": f'"{server.key}"', "tls_server_ca": f'"{ca[2].cert}"'}}
        certs = {name: dict(certificate=_one_pem(pki, make_leaf(pki, ca, name, ExtendedKeyUsageOID.SERVER_AUTH)),
                            cafile=ca[2].cert) for name in ("agent", "caller")}
        agent_uri = f"sip:agent@127.0.0.1:{agent_port + 1};transport=tls"
    else:
        agent_uri = f"sip:agent@127.0.0.1:{agent_port}"
    node = start_node(tmp_path, agents=[agent_uri], sections=sections)
    phones = []
    try:
        node.topup(CALLER, "10")
        target = (f"sip:{SERVICE}@127.0.0.1:{node.ports['tls']};transport=tls" if tls
                  else f"sip:{SERVICE}@127.0.0.1:{node.sip_port}")
        agent = start_baresip(tmp_path / "agent", aor=f"sip:agent@127.0.0.1:{agent_port}",
                              source_wav=tmp_path / "agent.wav", sip_port=agent_port, rtp_slot=0, auto_answer=True,
                              **certs.get("agent", {}))
        phones.append(agent)
        caller = start_baresip(tmp_path / "caller", aor=f"sip:{CALLER}@127.0.0.1:{caller_port}",
                               source_wav=tmp_path / "caller.wav", sip_port=caller_port, rtp_slot=1, dial=target,
                               **certs.get("caller", {}))
        phones.append(caller)
        assert agent.wait_log("Call established", timeout_s=20), f"{caller.log[-2000:]}\n{agent.log[-2000:]}"
        time.sleep(TALK_S)
        agent.command("hangup")
        assert caller.wait_log("terminated", timeout_s=10), caller.log[-3000:]
        [record] = node.records()
    finally:
        for phone in phones:
            phone.stop()
        node.stop()
    return {"caller_heard": caller.heard(), "agent_heard": agent.heard(), "record": record,
            "caller_tone": caller_tone[:4000], "agent_tone": agent_tone[:4000]}


def _check(call: dict) -> None:
    record = call["record"]
    assert record["end_reason"] == "agent_hangup"
    assert record["a_status"] == 200 and record["b_status"] == 200
    caller_heard, agent_heard = call["caller_heard"], call["agent_heard"]
    for prompt in ("credit_lasts", "fuenf", "minuten"):          # 10 EUR at 1.99/min: five minutes
        assert find(caller_heard, read_wav(PROMPTS / f"{prompt}.wav"))[1] >= HEARD, prompt
    assert find(caller_heard, call["agent_tone"])[1] >= HEARD
    assert find(agent_heard, call["caller_tone"])[1] >= HEARD
    assert find(agent_heard, call["agent_tone"])[1] < NOT_HEARD       # the agent does not hear itself


def test_a_baresip_caller_and_agent_over_udp_hear_the_announcement_and_each_other(tmp_path):
    """Over UDP: the caller hears the minutes and then the agent, the agent hears the caller; the agent's
    hang-up reaches the caller as our BYE and the record says so."""
    _check(_call(tmp_path, tls=False))


def test_a_baresip_caller_and_agent_over_tls_hear_the_announcement_and_each_other(tmp_path):
    """The same over TLS on both legs: the caller's connection to the node's TLS port, the node's to the
    agent's TLS listener, whose certificate is checked against ``sip.tls_server_ca``."""
    _check(_call(tmp_path, tls=True))
