"""What the caller hears while the agent rings, and when none answers: SIPp as the carrier and the agent, a real
`prepaid run`, and the caller's audio caught by a plain UDP socket that the carrier's SDP names as its media port.

Pinned with the default ringback of a German node ("de": 425 Hz, 1 s on, 4 s off): after the minutes the caller
receives one whole second of 425 Hz at about -19 dBm0, then silence until (and after) the agent answers, 2 s
into its ringing; and when the agent rings out, the caller receives the whole no-agent prompt, and the node's
BYE comes after its last packet; nothing is charged.
"""

from __future__ import annotations

import math
import re
import socket
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from media import g711, phrases
from media.library import PromptLibrary
from media.rtp import parse_rtp
from tests.sipp.harness import SCENARIOS, SIPP, free_port, run_sipp
from tests.sipp.test_calls import (CALLER, FROM_CALLER, SERVICE, agent, agent_uri,  # noqa: F401 (fixtures)
                                   node_factory, workdir)
from tests.support.callmedia import find

pytestmark = [pytest.mark.sipp, pytest.mark.skipif(SIPP is None, reason="sipp is not installed")]

PT_CODEC = {0: "PCMU", 8: "PCMA"}
FULL_SCALE_SINE_RMS = 32767 / math.sqrt(2)      # +3.14 dBm0


class Ear:
    """A UDP socket on 127.0.0.1 that keeps every RTP packet sent to it, with its arrival (wall clock)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.packets: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            self.packets.append((time.time(), data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def audio(self) -> tuple[np.ndarray, list[float]]:
        """The G.711 audio in sequence order, decoded, and each 160-sample frame's arrival time."""
        rtp = sorted(((parse_rtp(d), at) for at, d in self.packets), key=lambda p: p[0].sequence)
        frames = [(g711.decode(p.payload, PT_CODEC[p.payload_type]), at) for p, at in rtp
                  if p.payload_type in PT_CODEC and len(p.payload) == 160]
        pcm = np.frombuffer(b"".join(f for f, _ in frames), dtype="<i2").astype(float)
        return pcm, [at for _, at in frames]


@pytest.fixture
def ear():
    listener = Ear()
    yield listener
    listener.close()


def carrier_to(ear: Ear, node, workdir: Path, scenario: str, *, hold_ms: int = 0, timeout_s: int = 40):
    """The carrier scenario with its SDP naming ``ear``'s port as its media port (the rest of SIPp's media
    stays on its own -mp port)."""
    text = (SCENARIOS / scenario).read_text().replace("m=audio [media_port]", f"m=audio {ear.port}")
    assert f"m=audio {ear.port}" in text
    path = workdir / f"listening_{scenario}"
    path.write_text(text)
    return run_sipp(str(path), workdir, remote=f"127.0.0.1:{node.sip_port}", timeout_s=timeout_s, name="carrier",
                    extra=("-s", SERVICE, "-d", str(hold_ms), "-mp", str(free_port()), "-key", "from_header",
                           FROM_CALLER, "-key", "extra", "X-Test: 1", "-trace_msg", "-message_file",
                           str(workdir / "carrier.msg")))


def rms_dbm0(frame: np.ndarray) -> float:
    return 20 * math.log10(max(np.sqrt((frame ** 2).mean()), 1e-3) / FULL_SCALE_SINE_RMS) + 3.14


def tone_425(frame: np.ndarray) -> bool:
    """A frame whose sound is (almost) all 425 Hz, above -40 dBm0: the German ringback, not speech."""
    if rms_dbm0(frame) < -40:
        return False
    t = np.arange(len(frame)) / 8000
    amplitude = 2 * abs(np.dot(frame, np.exp(-2j * np.pi * 425 * t))) / len(frame)
    return amplitude / (np.sqrt((frame ** 2).mean()) * math.sqrt(2)) > 0.8


def test_the_caller_hears_the_ringback_while_the_agent_rings_2_s(workdir, node_factory, ear):  # noqa: F811
    """Minutes spoken, then 1 s of 425 Hz at -19 dBm0 (one burst of the German cadence), then silence through
    the agent's answer 2 s later and the bridged call: no second burst, no tone under the bridged audio."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)])
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_rings_answers.xml", port=port, hold_ms=2000)
    result = carrier_to(ear, node, workdir, "carrier_call.xml", hold_ms=9500)
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1
    time.sleep(0.2)
    pcm, _ = ear.audio()
    frames = pcm[:len(pcm) // 160 * 160].reshape(-1, 160)
    tonal = "".join("1" if tone_425(f) else "0" for f in frames)
    runs = [(m.start(), len(m.group())) for m in re.finditer("1+", tonal)]
    assert len(runs) == 1, runs                     # one burst: the ringback stopped at the answer
    start, length = runs[0]
    assert abs(length - 50) <= 1                    # 1 s on
    speech = [rms_dbm0(f) > -40 for f in frames[:start]]
    assert sum(speech) > 50                         # the minutes came first
    burst = frames[start + 2:start + length - 2].ravel()
    assert abs(rms_dbm0(burst) + 19) < 1
    after = frames[start + length:]
    assert len(after) > 5 * 50                      # through the answer, well past where a second burst would be
    assert all(rms_dbm0(f) < -50 for f in after)    # 4 s off, then the bridged (silent) agent
    (record,) = node.records()
    assert (record["end_reason"], record["agent_answered"]) == ("caller_hangup", agent_uri(port))


def bye_received_at(message_log: str) -> float:
    """The wall-clock time SIPp logged receiving the node's BYE (the stamp on the dashed line above it)."""
    stamp = None
    for line in message_log.splitlines():
        dashed = re.match(r"-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})", line)
        if dashed:
            stamp = dashed.group(1)
        elif line.startswith("BYE sip:") and stamp is not None:
            return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
    raise AssertionError(f"no BYE in the carrier's message log: {message_log[-3000:]}")


def test_no_agent_answers_the_caller_hears_why_before_the_bye(workdir, node_factory, ear):  # noqa: F811
    """The agent rings out (ring_timeout_s 2, CANCEL, 487): the caller receives the whole no-agent prompt (by
    correlation with the built-in recording), the BYE comes after its last packet, nothing is charged."""
    port = free_port()
    node = node_factory(agents=[agent_uri(port)], profile={"ring_timeout_s": "2"})
    node.topup(CALLER, "10")
    ag = agent(workdir, "agent_noanswer.xml", port=port)
    result = carrier_to(ear, node, workdir, "carrier_wait_bye.xml")
    assert (result.successful, result.failed) == (1, 0), result.summary()
    assert ag.wait().successful == 1
    pcm, arrivals = ear.audio()
    words = np.frombuffer(PromptLibrary(lang="de").pcm(phrases.no_agent("de")), dtype="<i2").astype(float)
    lag, score = find(pcm, words)
    assert score > 0.99
    last_frame = (lag + len(words)) // 160 - 1
    assert last_frame < len(arrivals)
    bye_s = bye_received_at((workdir / "carrier.msg").read_text(errors="replace"))
    assert arrivals[last_frame] <= bye_s + 0.005
    (record,) = node.records()
    assert (record["end_reason"], record["a_status"], record["charge_cents"], record["billed_s"]) == (
        "no_agent", 200, 0, 0)
