"""RTP ports: the range (pairs of even RTP and RTCP = RTP + 1 ports), binding a pair, and reading them.

:class:`PortRange` is pure.  Freed pairs go to the back of the queue, so a port
just released is not given to the next call at once (late packets of the old
call then reach nobody, instead of a stranger's call).  The queue starts at a
random pair of the range, so that two nodes on one host with the same range do
not both begin at its first port (the relay tries only a few busy ports before
it gives up).

:func:`bind_pair` binds the two UDP sockets of a pair, :func:`bind_next_pair` the range's next pair it
can (another process may hold one: up to :data:`BIND_ATTEMPTS` are tried), :func:`connect_twin` a
connected second socket on a port once its peer is known; :class:`SocketPoller`
is the one reader the reactor sees for all of them.
"""

from __future__ import annotations

import _socket
import os
import random
import select
import socket
from collections import deque
from typing import Callable

from twisted.logger import Logger, LogLevel

log = Logger(namespace="media.ports")

MAX_EVENTS = 1024
POLL_ROUNDS = 4
MAX_DATAGRAM = 2048
#: pairs of the range tried in turn when another process holds the one taken (a node stopped a moment ago, another
#: node on the same range), before the call is refused
BIND_ATTEMPTS = 16
_rng = random.Random(os.urandom(16))     # where the range's queue starts (PortRange), unless one is given


class PortsExhausted(RuntimeError):
    """Every RTP port pair in the range is in use (or could not be bound)."""


class PortRange:
    """Even RTP ports ``p`` in ``[port_min, port_max]`` with ``p + 1 <= port_max``.

    The first pair handed out is ``rng.randrange(size)`` pairs into the range (``rng`` a
    ``random.Random``, or anything with ``randrange``; a private one seeded from the OS unless given),
    and the others follow it round the range.
    """

    def __init__(self, port_min: int, port_max: int, *, rng=None) -> None:
        first = port_min + (port_min % 2)
        if not (0 < port_min <= port_max <= 65535) or first + 1 > port_max:
            raise ValueError(f"RTP port range {port_min}..{port_max} holds no even/odd pair")
        self.port_min = port_min
        self.port_max = port_max
        self._free: deque[int] = deque(range(first, port_max, 2))
        self._free.rotate(-(rng or _rng).randrange(len(self._free)))
        self._used: set[int] = set()
        self.size = len(self._free)

    def take(self) -> int:
        """The next free RTP port (even); its RTCP port is one above.  Raises :class:`PortsExhausted`."""
        if not self._free:
            raise PortsExhausted(f"all {self.size} RTP port pairs of {self.port_min}..{self.port_max} are in use")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def claim(self, port: int) -> None:
        """Take this very pair (a media worker given a pair the node bound from its share); raises
        :class:`PortsExhausted` when it is not a free pair of the range."""
        try:
            self._free.remove(port)         # one scan of the queue, at a call's setup (not per packet)
        except ValueError:
            raise PortsExhausted(f"RTP port pair {port} is not a free pair of {self.port_min}..{self.port_max}") from None
        self._used.add(port)

    def give_back(self, port: int) -> None:
        """Return a pair taken with :meth:`take` (twice is harmless)."""
        if port in self._used:
            self._used.remove(port)
            self._free.append(port)

    @property
    def free(self) -> int:
        """How many pairs are free."""
        return len(self._free)

    @property
    def in_use(self) -> int:
        """How many pairs are taken."""
        return len(self._used)


#: Where the kernel can open a socket non-blocking (Linux), one system call per socket less.
_SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)


def bind_pair(address: str, port: int) -> tuple[socket.socket, socket.socket]:
    """Non-blocking UDP sockets bound to ``port`` and ``port + 1`` on ``address``; OSError when either is taken.

    Four per call, opened and closed with the call: they are the C socket objects (``_socket.socket``,
    what ``socket.socket`` wraps for files and context managers the relay does not use), made
    non-blocking when opened where the kernel can."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        for p in (port, port + 1):
            sock = _socket.socket(family, socket.SOCK_DGRAM | _SOCK_NONBLOCK)
            socks.append(sock)
            if not _SOCK_NONBLOCK:
                sock.setblocking(False)
            sock.bind((address, p))
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks[0], socks[1]


def adopt_pair(address: str, fds: tuple[int, int]) -> tuple[socket.socket, socket.socket]:
    """The two sockets of a pair :func:`bind_pair` bound in another process, from their descriptors here (a media
    worker's, passed by the node): their family from ``address``, no system call (they are non-blocking already:
    the flag belongs to the socket, which both processes share)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    socks = tuple(_socket.socket(family, socket.SOCK_DGRAM | _SOCK_NONBLOCK, 0, fd) for fd in fds)
    if not _SOCK_NONBLOCK:
        for sock in socks:
            sock.setblocking(False)
    return socks[0], socks[1]


def bind_next_pair(ports: PortRange, address: str) -> tuple[int, tuple[socket.socket, socket.socket]]:
    """The range's next pair that binds, taken, and its two sockets (:func:`bind_pair`); a pair another process
    holds goes back to the range (tried again later), and the next is tried, up to :data:`BIND_ATTEMPTS`.
    Raises :class:`PortsExhausted`."""
    tries = min(BIND_ATTEMPTS, ports.size)
    for _ in range(tries):
        port = ports.take()
        try:
            return port, bind_pair(address, port)
        except OSError:
            ports.give_back(port)
    raise PortsExhausted(f"could not bind an RTP port pair on {address} after {tries} "
                         f"{'try' if tries == 1 else 'tries'} (other processes hold them)")


def connect_twin(listener: socket.socket, peer: tuple) -> socket.socket:
    """A second socket on ``listener``'s address and port, connected to ``peer``; OSError when it cannot be.

    The kernel hands a datagram to the socket whose binding matches it best: the peer's datagrams go to
    the twin (a connected socket's match is the closer one), everyone else's stay with ``listener``.  So
    the twin is read with ``recv_into`` and written with ``send`` (no address to build or parse, no route
    lookup per packet), while the listener still sees strays and new sources.  Both sockets carry
    ``SO_REUSEADDR`` only while the twin binds: afterwards no other socket can join the port.

    Between the twin's bind and its connect, a datagram from anyone may land on it: the caller reads what
    is queued there with ``recvfrom`` before trusting its source.
    """
    twin = _socket.socket(listener.family, socket.SOCK_DGRAM | _SOCK_NONBLOCK)
    try:
        if not _SOCK_NONBLOCK:
            twin.setblocking(False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        twin.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            twin.bind(listener.getsockname())
            twin.connect(peer)
        finally:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        twin.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    except OSError:
        twin.close()
        raise
    return twin


class SocketPoller:
    """One reader on the reactor for all of the relay's sockets: an epoll set of its own.

    Twisted's per-descriptor dispatch (a logging context, ``fileno()``, a read
    loop that ends in EAGAIN) costs more than relaying the packet; here the
    reactor wakes us once for all ready sockets, and we call each ready socket's
    ``read()`` once (level-triggered: a datagram still queued is reported
    again).  ``read`` does its own receive (``recv_into`` a buffer, or
    ``recvfrom_into`` where the source matters) and handles its own OSError.
    Provides ``IReadDescriptor``.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        #: fd -> its read(); fd -> the call it serves (named when read fails)
        self._readers: dict[int, Callable[[], object]] = {}
        self._labels: dict[int, str] = {}
        self.errors = 0

    def add(self, sock: socket.socket, read: Callable[[], object], label: str = "") -> None:
        """Call ``read()`` whenever ``sock`` is readable; ``label`` (the call id) names the call when it fails."""
        fd = sock.fileno()
        self._readers[fd] = read
        self._labels[fd] = label
        self._epoll.register(fd, select.EPOLLIN)

    def close_socket(self, sock: socket.socket) -> None:
        """Forget ``sock`` and close it: closing its (never duplicated) descriptor takes it out of the
        epoll set, so no ``epoll_ctl`` is needed."""
        fd = sock.fileno()
        self._readers.pop(fd, None)
        self._labels.pop(fd, None)
        sock.close()

    def fileno(self) -> int:
        return self._epoll.fileno()

    def doRead(self) -> None:
        readers = self._readers
        poll = self._epoll.poll
        for _ in range(POLL_ROUNDS):       # under load, more rounds before going back to the reactor
            events = poll(0, MAX_EVENTS)
            if not events:
                return
            for fd, _ in events:
                read = readers.get(fd)
                if read is None:
                    continue
                try:
                    read()
                except Exception:          # a bug must not stop the other calls' media
                    self.errors += 1
                    if self.errors <= 10:
                        log.failure("call {call_id}: media: handling a datagram failed (error {count})",
                                    call_id=self._labels.get(fd) or "-", count=self.errors, level=LogLevel.error)

    def connectionLost(self, reason) -> None:
        self._epoll.close()

    def logPrefix(self) -> str:
        return "media.relay"
