"""Debian's rtpengine (package ``rtpengine-daemon``) as a reference relay for the media benchmarks.

:class:`RtpEngine` starts ``/usr/bin/rtpengine`` itself, on loopback only, in
userspace forwarding (``--table=-1``: no kernel module, so every packet goes
through the daemon's own recvmsg/sendmsg as ours does), in the foreground,
logging to stderr (a file in the bench's work folder), with no config file
(``--config-file=none``), a PID file of its own, a port range of its own and
an ng control port on 127.0.0.1.  It needs no root-only path; on this
machine the benches run as root, which rtpengine does not require.

:meth:`RtpEngine.call` sets up one call through the ng control protocol (a
cookie and a bencoded dictionary per UDP datagram, :mod:`bencode`): an
``offer`` carrying side A's SDP, then an ``answer`` carrying side B's; the
offer's reply is the SDP for B (the port B sends to), the answer's reply the
SDP for A.  :meth:`RtpEngine.stop` ends the process whatever state it is in;
the class is a context manager so that a failing bench still kills it.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import subprocess
import time

import bencode

RTPENGINE = "/usr/bin/rtpengine"
NG_TIMEOUT_S = 2.0
NG_ATTEMPTS = 3                  # an ng request is a datagram: resent (same cookie) when the reply is late
START_ATTEMPTS = 50              # pings while the daemon starts, NG_START_PAUSE_S apart
NG_START_PAUSE_S = 0.1
STOP_WAIT_S = 5.0


class RtpEngineError(RuntimeError):
    """rtpengine did not start, or refused or did not answer an ng request (its log's tail attached)."""


def available() -> bool:
    """Is rtpengine installed here?"""
    return shutil.which(RTPENGINE) is not None or os.access(RTPENGINE, os.X_OK)


def ensure_installed() -> str | None:
    """Install Debian's ``rtpengine-daemon`` where it is missing (``apt-get``, as root: the package
    registry is the only thing fetched). None when rtpengine is there afterwards, else why not. The
    package's own service is not wanted: the benches start the daemon themselves on loopback."""
    if available():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "rtpengine is not installed and this is not a Debian machine as root: apt-get install rtpengine-daemon"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "rtpengine-daemon"]):
        done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"{' '.join(cmd)} failed: {done.stderr[-500:]}"
    return None if available() else "rtpengine-daemon installed, but /usr/bin/rtpengine is not there"


def sdp_for(call: str, host: str, port: int) -> str:
    """A plain G.711 A-law offer or answer (with telephone-event) for one side at ``host:port``."""
    return (f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            f"a=sendrecv\r\n")


_MEDIA_PORT = re.compile(rb"^m=audio (\d+) ", re.MULTILINE)


def media_port(sdp: bytes) -> int:
    """The audio port of an SDP rtpengine gave back; RtpEngineError when there is none."""
    m = _MEDIA_PORT.search(sdp)
    if m is None:
        raise RtpEngineError(f"no m=audio line in rtpengine's SDP: {sdp[:200]!r}")
    return int(m.group(1))


class RtpEngine:
    """One rtpengine process on ``address`` with RTP ports ``port_min..port_max``, in userspace forwarding."""

    def __init__(self, workdir: str, port_min: int, port_max: int, *, address: str = "127.0.0.1",
                 threads: int = 1) -> None:
        self.workdir = workdir
        self.port_min = port_min
        self.port_max = port_max
        self.address = address
        self.threads = threads
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, f"rtpengine.{port_min}.log")
        self._sock: socket.socket | None = None
        self._ng: tuple[str, int] | None = None
        self._cookie = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "rtpengine is not running"
        return self.proc.pid

    def __enter__(self) -> "RtpEngine":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        """Start the daemon and wait (bounded) until its ng port answers a ping."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((self.address, 0))
        self._sock.settimeout(NG_TIMEOUT_S)
        self._ng = (self.address, _free_udp_port(self.address))
        cmd = [RTPENGINE, "--config-file=none", "--table=-1", "--foreground", "--log-stderr",
               "--log-level=4", f"--pidfile={os.path.join(self.workdir, f'rtpengine.{self.port_min}.pid')}",
               f"--interface={self.address}", f"--listen-ng={self._ng[0]}:{self._ng[1]}",
               f"--port-min={self.port_min}", f"--port-max={self.port_max}",
               f"--num-threads={self.threads}", "--timeout=600", "--delete-delay=0"]
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=_raise_file_limit)
        finally:
            log.close()
        for _ in range(START_ATTEMPTS):
            if self.proc.poll() is not None:
                raise RtpEngineError(f"rtpengine exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if self.request({"command": "ping"}, attempts=1, timeout_s=NG_START_PAUSE_S).get("result") == b"pong":
                    return
            except RtpEngineError:
                pass
        self.stop()
        raise RtpEngineError(f"rtpengine's ng port did not answer a ping: {self.log_tail()}")

    def request(self, message: dict, *, attempts: int = NG_ATTEMPTS, timeout_s: float = NG_TIMEOUT_S) -> dict:
        """Send one ng command and return its reply dictionary; RtpEngineError on an error reply or silence."""
        assert self._sock is not None and self._ng is not None, "rtpengine is not started"
        self._cookie += 1
        cookie = b"%d_%d" % (os.getpid(), self._cookie)
        datagram = cookie + b" " + bencode.encode(message)
        self._sock.settimeout(timeout_s)
        for _ in range(attempts):
            self._sock.sendto(datagram, self._ng)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    reply = self._sock.recv(65536)
                except (socket.timeout, ConnectionRefusedError):
                    break
                got, _, body = reply.partition(b" ")
                if got != cookie:
                    continue                # a late reply to an earlier attempt
                answer = bencode.decode(body)
                if not isinstance(answer, dict) or answer.get("result") == b"error":
                    raise RtpEngineError(f"rtpengine refused {message.get('command')}: {answer!r}")
                return answer
        raise RtpEngineError(f"rtpengine did not answer {message.get('command')} in {attempts} x {timeout_s} s")

    def call(self, call_id: str, a: tuple[str, int], b: tuple[str, int]) -> tuple[int, int]:
        """Set up a call between A at ``a`` and B at ``b``: the ports (A sends to, B sends to)."""
        offer = self.request({"command": "offer", "call-id": call_id, "from-tag": "a-" + call_id,
                              "sdp": sdp_for(call_id, *a), "ICE": "remove"})
        answer = self.request({"command": "answer", "call-id": call_id, "from-tag": "a-" + call_id,
                               "to-tag": "b-" + call_id, "sdp": sdp_for(call_id, *b), "ICE": "remove"})
        return media_port(answer["sdp"]), media_port(offer["sdp"])

    def log_tail(self, size: int = 800) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log_path) - size))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """End the daemon (SIGTERM, then SIGKILL after STOP_WAIT_S); harmless when it is not running."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_udp_port(address: str) -> int:
    """A UDP port free on ``address`` now (the kernel's choice of an ephemeral one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _raise_file_limit() -> None:
    """In the child before exec: four sockets per call need more descriptors than the default soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
