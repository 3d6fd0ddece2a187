"""SIPp's built-in uac and uas scenarios against our EchoUas and SimpleUac, over real sockets on 127.0.0.1.

Our side runs on a real reactor in a subprocess (``python -m tests.support.sip_apps``);
SIPp runs as another, bounded by ``-m`` calls and ``-timeout``.  The counts
come from SIPp's ``-trace_stat`` file and from our UAC's final JSON line.
"""

from __future__ import annotations

import pytest

from tests.sipp.harness import SCENARIOS, SIPP, free_port, our_side, run_our_uac, run_sipp, start_sipp

needs_sipp = pytest.mark.skipif(SIPP is None, reason="sipp (Debian sip-tester) not installed")

CALLS = 200


@pytest.mark.parametrize("transport,lost", [("u1", 0), ("t1", 0), ("u1", 10)], ids=["udp", "tcp", "udp-lost10"])
@pytest.mark.sipp
@needs_sipp
def test_sipp_uac_against_echo_uas(tmp_path, transport, lost):
    """SIPp places 200 calls (INVITE, ACK, BYE) to our EchoUas: all 200 succeed, none fail, even with 10% loss."""
    extra = ("-d", "200", "-l", "40") + (("-lost", str(lost)) if lost else ())
    with our_side("uas", "--address", "127.0.0.1", "--udp-port", "0", "--tcp-port", "0") as uas:
        port = uas.ports["udp" if transport == "u1" else "tcp"]
        result = run_sipp("uac", tmp_path, remote=f"127.0.0.1:{port}", transport=transport, calls=CALLS,
                          rate=50, extra=extra, timeout_s=40)
        counts = uas.stop()
    assert (result.successful, result.failed) == (CALLS, 0), result.summary()
    assert result.returncode == 0, result.summary()
    final = counts[-1]
    assert final["invite"] == CALLS, counts
    if not lost:
        assert final["bye"] == CALLS and final["ack"] == CALLS, counts
    else:
        # SIPp matches a response by Call-ID and status only: our 2xx to the INVITE, resent because its
        # ACK was lost, can end SIPp's wait for the 200 to a BYE that was itself lost.  So with loss a few
        # BYEs may never reach us although SIPp counts the call good; most must.
        assert final["bye"] >= CALLS * 0.9, counts
        assert result.retransmissions > 0, "with 10% loss SIPp should have retransmitted: " + result.summary()


UAS_LOSSY = str(SCENARIOS / "uas_lossy.xml")


@pytest.mark.parametrize("transport,lost", [("u1", 0), ("t1", 0), ("u1", 10)], ids=["udp", "tcp", "udp-lost10"])
@pytest.mark.sipp
@needs_sipp
def test_simple_uac_against_sipp_uas(tmp_path, transport, lost):
    """Our SimpleUac places 200 calls to SIPp's uas scenario: SIPp and our UAC both count 200 good calls, 0 failed.

    Under -lost 10 SIPp runs ``scenarios/uas_lossy.xml``: the built-in uas with an INVITE retransmission
    answered again and an 18 s time-wait that our BYE retransmissions (T1 = T2 = 2 s) reach 8 times (SIPp
    3.6 itself fails ~1% of calls otherwise).
    """
    port = free_port()
    extra = ("-lost", str(lost)) if lost else ()
    # With -lost 10 the built-in uas fails about 1% of calls whatever the UAC does (see the scenario's
    # comment); its copy with those two SIPp faults worked around is used instead.
    sipp = start_sipp(UAS_LOSSY if lost else "uas", tmp_path, transport=transport, calls=CALLS, rate=50, local_port=port,
                      extra=extra, timeout_s=60)
    try:
        target = f"sip:service@127.0.0.1:{port}" + (";transport=tcp" if transport == "t1" else "")
        ours = run_our_uac(target, calls=CALLS, rate=50, hold_ms=200, timeout_s=40,
                           extra=("--max-concurrent", "40",
                                  # SIPp's uas waits 4 s after its 200 to the BYE; closing TCP before fails the call
                                  "--linger-ms", "4500" if transport == "t1" else "0",
                                  # T1 2 s (RFC 3261 §17.1.1.1 allows a larger T1): SIPp's 200 retransmissions
                                  # at 0.5 and 1.5 s come before our INVITE's.  With T1 1 s a retransmitted INVITE
                                  # and our ACK to the 200 could reach SIPp together when it had "lost" its 180,
                                  # its 200 and the first retransmission; SIPp 3.6 then aborts the call on the ACK
                                  # while it is still about to answer the INVITE again (1 run in 8 failed so)
                                  "--t1-ms", "2000" if lost else "500",
                                  # T2 = T1: the BYE is resent every 2 s (not 2, 4, 4... s), 8 times within
                                  # the scenario's 18 s time-wait, which SIPp waits out before it ends
                                  *(("--t2-ms", "2000") if lost else ())))
        result = sipp.wait()
    finally:
        sipp.kill()
    assert (ours.get("succeeded"), ours.get("failed")) == (CALLS, 0), f"{ours}\n{result.summary()}"
    assert (result.successful, result.failed) == (CALLS, 0), result.summary()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_our_uac_against_our_uas_from_the_command_line(transport):
    """The SIP smoke test: ``python -m tests.support.sip_apps uac`` against ``... uas``, 20 calls, all good."""
    with our_side("uas", "--udp-port", "0", "--tcp-port", "0") as uas:
        target = f"sip:service@127.0.0.1:{uas.ports[transport]}" + (";transport=tcp" if transport == "tcp" else "")
        ours = run_our_uac(target, calls=20, rate=40, hold_ms=100, timeout_s=20)
        counts = uas.stop()
    assert (ours.get("succeeded"), ours.get("failed"), ours.get("returncode")) == (20, 0, 0), ours
    assert (counts[-1]["invite"], counts[-1]["ack"], counts[-1]["bye"]) == (20, 20, 20)
