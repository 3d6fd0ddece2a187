"""Media workers as real processes: a `prepaid run` node with ``[media] workers = 1``, SIPp as the carrier and
the agent, and the worker killed with SIGKILL in the middle of a call.

Pinned: the caller receives the minutes announcement from the worker (by correlation with the built-in
recording, caught on a UDP socket the carrier's SDP names) and the agent's audio relayed through it (the agent
SIPp echoes the node's RTP back, ``-rtp_echo``); the kill ends the call with a BYE to both sides within 3 s,
the record says ``media_failed``, billing stopped at the kill (the ledger's sum is the balance), the node logs
the death once with the worker's pid, starts a new worker, and the next call is bridged and billed as usual.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time

import numpy as np
import pytest

from media import phrases
from media.library import PromptLibrary
from tests.sipp.harness import SCENARIOS, SIPP, free_port, start_sipp
from tests.sipp.test_calls import (CALLER, FROM_CALLER, SERVICE, agent, agent_uri, carrier,  # noqa: F401 (fixtures)
                                   node_factory, workdir)
from tests.sipp.test_ringback import Ear, bye_received_at
from tests.support.callmedia import find

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]


def media_port() -> str:
    """A SIPp media port (-mp) of this test's range, 41000-41999, free now with the three above it (SIPp binds
    the audio and video ports and their RTCP)."""
    for _ in range(50):
        port = random.randrange(41000, 41990, 4)
        socks = []
        try:
            for p in range(port, port + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", p))
            return str(port)
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no free SIPp media ports in 41000-41999")


def what_happened(node, workdir) -> str:
    """The node's last lines and the SIPp peers' errors, for a failed wait."""
    lines = "".join(line for _, line in node.lines[-40:])
    errors = "".join((workdir / f"{name}.errors.log").read_text(errors="replace")[-1500:]
                     for name in ("agent", "carrier") if (workdir / f"{name}.errors.log").exists())
    return f"node:\n{lines}\nsipp errors:\n{errors}"


def worker_pids(node) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(node.proc.pid), "-f", "media.worker"], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def wait_for(predicate, timeout_s: float, step_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    return predicate()


def relayed(node) -> float:
    return node.metrics().get(("prepaid_rtp_packets_relayed_total", ()), 0.0)


def test_a_killed_media_worker_ends_its_call_billed_to_that_moment_and_is_restarted(workdir, node_factory):
    """See the module: announcement and relay through the worker, SIGKILL, BYE both ways, books, restart."""
    node = node_factory(agents=[agent_uri(port := free_port())], sections={"media": {"workers": "1"}}).follow()
    node.topup(CALLER, "10")
    (pid,) = wait_for(lambda: worker_pids(node), 5)
    ear = Ear()
    try:
        ag = start_sipp(str(SCENARIOS / "agent_answer.xml"), workdir, local_port=port, timeout_s=40, name="agent",
                        extra=("-aa", "-rtp_echo", "-mp", media_port(), "-trace_msg", "-message_file",
                               str(workdir / "agent.msg")))
        text = (SCENARIOS / "carrier_wait_bye.xml").read_text().replace("m=audio [media_port]", f"m=audio {ear.port}")
        scenario = workdir / "carrier_wait_bye_ear.xml"
        scenario.write_text(text)
        call = start_sipp(str(scenario), workdir, remote=f"127.0.0.1:{node.sip_port}", timeout_s=40, name="carrier",
                          extra=("-s", SERVICE, "-mp", media_port(), "-key", "from_header", FROM_CALLER, "-key",
                                 "extra", "X-Test: 1", "-trace_msg", "-message_file", str(workdir / "carrier.msg")))
        # the agent answers after the minutes (about 2 s); its echo is relayed; the worker's stats every 2 s
        assert wait_for(lambda: relayed(node) > 50, 15, 0.25), what_happened(node, workdir)
        killed_at = time.time()
        subprocess.run(["kill", "-KILL", str(pid)], check=True)
        carrier_result, agent_result = call.wait(), ag.wait()
        assert (carrier_result.successful, agent_result.successful) == (1, 1), (carrier_result.summary(),
                                                                                 agent_result.summary())
        bye_s = bye_received_at((workdir / "carrier.msg").read_text(errors="replace"))
        assert bye_s - killed_at < 3.0
        pcm, _ = ear.audio()
    finally:
        ear.close()
    words = np.frombuffer(PromptLibrary(lang="de").pcm(phrases.remaining_minutes(5, "de")), dtype="<i2").astype(float)
    assert find(pcm, words)[1] > 0.99                                   # the minutes, played by the worker
    (record,) = node.records()
    assert record["end_reason"] == "media_failed" and record["agent_answered"] == agent_uri(port)
    assert abs(record["end_ms"] / 1000 - killed_at) < 1.0               # billing ended at the kill
    assert node.balance_cents(CALLER) == 1100 - record["charge_cents"]
    assert node.rows("select sum(amount_cents) from ledger")[0][0] == node.balance_cents(CALLER)
    died = node.wait_line(f"media worker {pid} died", 2)
    assert died is not None and "its 1 calls end now" in died[1]
    assert wait_for(lambda: node.wait_line("restarted on ports", 0), 5)
    (new_pid,) = worker_pids(node)
    assert new_pid != pid and node.metrics()[("prepaid_media_worker_restarts_total", ())] == 1
    # the next call goes through the new worker
    ag = start_sipp(str(SCENARIOS / "agent_answer.xml"), workdir, local_port=port, timeout_s=40, name="agent2",
                    extra=("-aa", "-mp", media_port()))
    result = carrier(node, workdir, name="carrier2", port=None)
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1
    second = node.records(count=2)[1]
    assert second["end_reason"] == "caller_hangup" and second["charge_cents"] == 199


def test_a_reload_of_the_log_level_reaches_the_media_worker(workdir, node_factory):
    """``[node] log_level`` reloaded from "info" to "debug" (SIGHUP): the running worker's log follows, and the
    next call's media line, a debug line the worker writes, is in the node's log; at "info" it was not."""
    node = node_factory(agents=[agent_uri(port := free_port())], sections={"media": {"workers": "1"}}).follow()
    node.topup(CALLER, "10")
    (pid,) = wait_for(lambda: worker_pids(node), 5)
    needle = f"media in worker {pid} on ports"
    for name, level in (("info", "info"), ("debug", "debug")):
        if level == "debug":
            node.config.write_text(node.config.read_text().replace('log_level = "info"', 'log_level = "debug"'))
            os.kill(node.proc.pid, signal.SIGHUP)
            assert node.wait_line("config reloaded", 5), what_happened(node, workdir)
        ag = agent(workdir, "agent_answer.xml", port=port, name=f"agent_{name}")
        result = carrier(node, workdir, name=f"carrier_{name}")
        assert (result.successful, ag.wait().successful) == (1, 1), result.summary()
        seen = node.wait_line(needle, 2 if level == "debug" else 0)
        assert (seen is not None) == (level == "debug"), what_happened(node, workdir)
