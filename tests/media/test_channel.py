"""The node's end of a media worker's control channel (media.channel, as media.workers attaches it) on a real Unix
socket pair and a reactor in memory: a request's frame and its sockets reach the worker in one message; what the
socket cannot take waits, in order, and its descriptors are sent once; the channel's end is told once, never
inside a write."""

from __future__ import annotations

import array
import socket

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from media.channel import Channel
from media.control import Request, encode
from media.workers import _WorkerProcess


class _Client:
    """What the channel reports to (a WorkerClient's two entries)."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.ends: list[str] = []

    def data_received(self, data: bytes) -> None:
        self.data.append(data)

    def lost(self, why: str) -> None:
        self.ends.append(why)


def _receive(sock: socket.socket, size: int = 1 << 16) -> tuple[bytes, list[int]]:
    """One recvmsg, as the worker's reader makes it: its bytes and the descriptors that came with them."""
    data, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(4 * 64))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
    return data, list(fds)


def _udp_pair() -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets, each on a port of its own (a call's RTP and RTCP, as far as the channel cares)."""
    pair = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    for sock in pair:
        sock.bind(("127.0.0.1", 0))
    return pair


def _attached():
    reactor = MemoryReactorClock()
    node_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    worker_end.settimeout(5)        # a read that would wait for bytes never sent fails the test, not hangs it
    process = _WorkerProcess(_Client())
    process.attach(reactor, node_end)
    return reactor, process, worker_end


def test_a_request_and_its_two_sockets_reach_the_worker_in_one_message():
    """The open of a call: its frame and its pair's two sockets in one recvmsg (Twisted's transport sent each
    descriptor with a byte of its own: three reads and reactor rounds for the worker), RTP then RTCP."""
    reactor, process, worker = _attached()
    pair = _udp_pair()
    frame = encode(Request(1, "open", {"sid": 1}))
    try:
        process.write(frame, pair)
        data, fds = _receive(worker)
        assert data == frame and len(fds) == 2
        got = [socket.socket(fileno=fd) for fd in fds]
        assert [s.getsockname() for s in got] == [s.getsockname() for s in pair]
        for s in got:
            s.close()
        assert not reactor.writers          # all sent at once: the reactor is not asked to wait
    finally:
        for s in pair:
            s.close()
        worker.close()
        process.kill()


def test_what_the_socket_cannot_take_waits_in_order_and_its_descriptors_go_once():
    """A full socket: the frames wait (the reactor says when it can take more), then go in the order written;
    the descriptors go with the first byte of what carried them, never a second time."""
    reactor, process, worker = _attached()
    channel = process.channel
    channel.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = encode(Request(1, "reload", {"prompt_sets": [["x" * 200_000, "y"]], "ringback_files": []}))
    pair = _udp_pair()
    opened = encode(Request(2, "open", {"sid": 1}))
    try:
        process.write(big)
        process.write(opened, pair)
        assert channel in reactor.writers
        received, fds = b"", []
        while channel in reactor.writers:
            data, more = _receive(worker)
            received += data
            fds += more
            channel.doWrite()
        while len(received) < len(big) + len(opened):
            data, more = _receive(worker)
            received += data
            fds += more
        assert received == big + opened and len(fds) == 2
        for fd in fds:
            socket.socket(fileno=fd).close()
    finally:
        for s in pair:
            s.close()
        worker.close()
        process.kill()


def test_bytes_in_go_to_the_client_and_the_workers_end_is_the_channels_end_once():
    """What the worker writes reaches the client; its end closing is the channel's end (ConnectionDone, which
    the reactor hands to connectionLost): the client hears it once, and the process is killed."""
    reactor, process, worker = _attached()
    channel = process.channel
    worker.sendall(b"hello")
    assert channel.doRead() is None and process.client.data == [b"hello"]
    worker.close()
    why = channel.doRead()
    assert isinstance(why, ConnectionDone)
    channel.connectionLost(Failure(why))
    channel.connectionLost(Failure(why))
    assert len(process.client.ends) == 1 and "its control channel closed" in process.client.ends[0]
    assert channel.closed and channel.socket.fileno() == -1


def test_a_write_that_fails_ends_the_channel_from_the_reactor_not_inside_the_write():
    """A write to a worker that is gone: nothing is said inside the caller's request; the next reactor round
    tells the client, once, and later writes are dropped."""
    reactor, process, worker = _attached()
    worker.close()
    process.write(b"\0\0\0\2{}")
    assert process.client.ends == []
    reactor.advance(0)
    assert len(process.client.ends) == 1 and process.channel.closed
    process.write(b"\0\0\0\2{}")
    reactor.advance(0)
    assert len(process.client.ends) == 1


def test_a_channel_given_up_sends_nothing_more_and_tells_nobody():
    """close (the node kills the worker): what waits is dropped, nothing is read or sent, on_lost is not called."""
    reactor = MemoryReactorClock()
    node_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    lost: list = []
    channel = Channel(reactor, node_end, lambda data: None, lost.append)
    assert channel in reactor.readers
    channel.close()
    channel.write(b"late")
    assert lost == [] and channel not in reactor.readers and channel not in reactor.writers
    assert worker_end.recv(10) == b""       # our end is closed
    worker_end.close()
