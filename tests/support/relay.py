"""Support for the relay tests (no tests here): UDP endpoints on loopback, a random port range, pumping the reactor."""

from __future__ import annotations

import random
import socket
import time

from twisted.internet import reactor

from media.sdp import Negotiated


def random_range(size: int = 60) -> tuple[int, int]:
    """A port range at random in 40000-60000 (never fixed ports), even start, whose every port was free when
    chosen: another test's relay or a benchmark's node on this host can hold part of that span, and a range
    picked into it failed its test with PortsExhausted."""
    for _ in range(100):
        base = random.randrange(40000, 60000 - size, 2)
        if all(port_is_free(port) for port in range(base, base + size)):
            return base, base + size - 1
    raise RuntimeError(f"no free range of {size} ports in 40000-60000 in 100 tries")


def pump(until, timeout_s: float = 2.0) -> None:
    """Run the real reactor until ``until()`` is true; bounded in time."""
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        reactor.iterate(0.002)


def settle(duration_s: float = 0.05) -> None:
    """Run the real reactor a short bounded while (to show that something does NOT arrive)."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        reactor.iterate(0.002)


class Endpoint:
    """A phone or carrier media port: an RTP and an RTCP socket on loopback, collecting what arrives."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.rtp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtp.bind((host, 0))
        self.rtp.setblocking(False)
        self.rtcp = socket.socket(family, socket.SOCK_DGRAM)
        self.rtcp.bind((host, 0))
        self.rtcp.setblocking(False)
        self.got: list[bytes] = []
        self.got_rtcp: list[bytes] = []

    @property
    def port(self) -> int:
        return self.rtp.getsockname()[1]

    def negotiated(self, codec: str = "PCMA", pt: int = 8, event_pt: int | None = 101,
                   direction: str = "sendrecv") -> Negotiated:
        return Negotiated(codec, pt, event_pt, self.host, self.port, self.rtcp.getsockname()[1], direction)

    def send(self, data: bytes, port: int, host: str | None = None) -> None:
        self.rtp.sendto(data, (host or ("::1" if ":" in self.host else "127.0.0.1"), port))

    def poll(self) -> int:
        for sock, into in ((self.rtp, self.got), (self.rtcp, self.got_rtcp)):
            while True:
                try:
                    into.append(sock.recv(2048))
                except BlockingIOError:
                    break
        return len(self.got)

    def wait_for(self, n: int, timeout_s: float = 2.0) -> list[bytes]:
        pump(lambda: self.poll() >= n, timeout_s)
        return self.got

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


def port_is_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
