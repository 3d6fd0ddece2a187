"""Baresip (Debian's ``baresip``) as a real phone in the tests: its own config folder, a WAV it speaks, what it heard.

:func:`start_baresip` writes a ``config`` and an ``accounts`` file into a folder
of its own and starts ``baresip -f <folder>`` on 127.0.0.1 only (``net_interface``:
its SDP names 127.0.0.1, never another address of the machine), bounded by
``-t`` seconds. The phone speaks ``source_wav`` (the ``aufile`` module) and records
what it decodes with the ``sndfile`` filter (``dump-<time>-dec.wav`` in its folder;
no audio device is loaded). A caller dials at start (``-e /dial ...``); an agent
answers by itself (``answermode=auto``). :meth:`Baresip.command` drives it over the
``ctrl_tcp`` module (netstring JSON, e.g. ``hangup``).

TLS: baresip listens for TLS on its SIP port + 1, presenting ``certificate`` (the
certificate and its key in one PEM file).

Without baresip the tests are skipped, except under ``CI=true``, where that fails.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from b2bua.netutil import free_port
from tests.conftest import in_ci, worker_index

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")
SAMPLE_RATE = 8000
#: baresip's RTP ports: above the nodes' 20000-29999, 400 a worker, 20 a phone (a call takes 2 to 4)
RTP_BASE, RTP_PER_WORKER, RTP_PER_PHONE = 30000, 400, 20


def require_baresip() -> str:
    """baresip's path, or skip (fail under CI=true, where scripts/test.sh installs it)."""
    if BARESIP is None or not MODULES.is_dir():
        if in_ci():
            pytest.fail("baresip is not installed (Debian package baresip; CI=true: these tests may not be skipped)")
        pytest.skip("baresip is not installed (Debian package baresip)")
    return BARESIP


def write_tone(path: Path, hz: float, seconds: float, amplitude: int = 12000) -> np.ndarray:
    """A sine of ``hz`` as an 8 kHz mono 16-bit WAV at ``path``; its samples."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    samples = (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return samples.astype(float)


def read_wav(path: Path) -> np.ndarray:
    """The samples of an 8 kHz mono 16-bit WAV."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (SAMPLE_RATE, 1, 2), path
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(float)


def sip_port_pair() -> int:
    """A port P free on 127.0.0.1 with P + 1 free too (baresip's TLS listener)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two free ports in a row")


def _rtp_ports(slot: int) -> str:
    """The RTP ports of a test's phone number ``slot`` (0, 1): two windows side by side, at a random place in
    the worker's share (a late packet of an earlier run's phone rarely reaches this one's)."""
    first = RTP_BASE + (worker_index() % 8) * RTP_PER_WORKER
    pairs = RTP_PER_WORKER // (2 * RTP_PER_PHONE)
    low = first + random.randrange(pairs) * 2 * RTP_PER_PHONE + (slot % 2) * RTP_PER_PHONE
    return f"{low}-{low + RTP_PER_PHONE - 1}"


@dataclass
class Baresip:
    proc: subprocess.Popen
    folder: Path
    ctrl_port: int

    @property
    def log(self) -> str:
        return (self.folder / "baresip.log").read_text(errors="replace")

    def wait_log(self, needle: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if needle in self.log:
                return True
            if self.proc.poll() is not None:
                return needle in self.log
            time.sleep(0.05)
        return False

    def command(self, command: str, params: str = "") -> None:
        """One ctrl_tcp command (netstring JSON), e.g. ``hangup``."""
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        with socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=5) as conn:
            conn.sendall(str(len(body)).encode() + b":" + body + b",")
            conn.settimeout(5)
            answer = b""
            while b'"response"' not in answer:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk

    def heard(self) -> np.ndarray:
        """What the phone decoded from the call (the sndfile filter's ``-dec`` dump)."""
        [dump] = sorted(self.folder.glob("dump-*-dec.wav"))
        return read_wav(dump)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log


def start_baresip(folder: Path, *, aor: str, source_wav: Path, sip_port: int, rtp_slot: int,
                  quit_after_s: int = 30, dial: str | None = None, auto_answer: bool = False,
                  certificate: str | None = None, cafile: str | None = None) -> Baresip:
    """baresip with its own config in ``folder`` (see the module docstring); ``aor`` is the account's URI; the
    phones of one test take ``rtp_slot`` 0 and 1 (RTP ports of their own)."""
    require_baresip()
    folder.mkdir(parents=True, exist_ok=True)
    ctrl_port = free_port()
    lines = [
        "poll_method epoll", f"sip_listen 127.0.0.1:{sip_port}", "net_interface 127.0.0.1",
        f"audio_source aufile,{source_wav}", "audio_player none,none", "audio_alert none,none",
        f"rtp_ports {_rtp_ports(rtp_slot)}", f"module_path {MODULES}",
        "module g711.so", "module aufile.so", "module sndfile.so", "module_tmp account.so",
        "module_app menu.so", "module_app ctrl_tcp.so", f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
        f"snd_path {folder}", "call_local_timeout 30",
    ]
    if certificate:
        lines.append(f"sip_certificate {certificate}")
    if cafile:
        lines.append(f"sip_cafile {cafile}")
    (folder / "config").write_text("\n".join(lines) + "\n")
    (folder / "accounts").write_text(f"<{aor}>;regint=0{';answermode=auto' if auto_answer else ''}\n")
    argv = [BARESIP, "-f", str(folder), "-t", str(quit_after_s)]
    if dial:
        argv += ["-e", f"/dial {dial}"]
    with open(folder / "baresip.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder)
    phone = Baresip(proc, folder, ctrl_port)
    if not phone.wait_log("baresip is ready", timeout_s=10):
        phone.stop()
        raise RuntimeError(f"baresip did not start:\n{phone.log[-3000:]}")
    return phone
