"""Small network helpers shared by the demo and the tests."""

from __future__ import annotations

import random
import socket

#: where the kernel hands out ports for bind(port 0) and outgoing sockets, when /proc does not say
_EPHEMERAL_FALLBACK = (32768, 60999)
#: never picked: the well-known ports, and the example config's RTP range (20000-29999)
_AVOIDED = ((0, 9999), (20000, 29999))


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    """The kernel's range for automatically assigned ports (inclusive)."""
    try:
        low, high = (int(v) for v in open(path).read().split())
        return low, high
    except (OSError, ValueError):
        return _EPHEMERAL_FALLBACK


def _candidates(ephemeral: tuple[int, int]) -> list[range]:
    """Port ranges outside the kernel's ephemeral range and outside the avoided ones."""
    taken = sorted([*_AVOIDED, ephemeral])
    ranges, start = [], 0
    for low, high in taken:
        if low > start:
            ranges.append(range(start, low))
        start = max(start, high + 1)
    if start <= 65535:
        ranges.append(range(start, 65536))
    return [r for r in ranges if len(r) >= 100]


def free_port(host: str = "127.0.0.1", rng: random.Random | None = None) -> int:
    """A port number free for both UDP and TCP on ``host`` right now (SIP listens on both).

    The port is for a peer that binds it later (SIPp is told its port): it is
    picked at random OUTSIDE the kernel's ephemeral range, so that a socket
    bound to port 0 or an outgoing connection, anywhere on the machine, cannot
    be handed the same number between this check and that bind (seen once:
    an agent's SIPp found "its" port taken, and the carrier's SIPp got it).
    """
    rng = rng or random.SystemRandom()
    ranges = _candidates(ephemeral_range())
    weights = [len(r) for r in ranges]
    for _ in range(200):
        port = rng.choice(rng.choices(ranges, weights)[0]) if ranges else 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                udp.bind((host, port))
                port = udp.getsockname()[1]
                tcp.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError("no port free for both UDP and TCP")
