"""The node's end of a media worker's control channel: frames out with their sockets in one ``sendmsg``, bytes in.

:mod:`media.workers` writes each frame (:mod:`media.control`) together with
the sockets its request carries (:data:`media.control.SOCKETS`), and hears the
worker's bytes and the channel's end.  The reactor drives the Unix stream
socket directly (an ``IReadWriteDescriptor``), not through Twisted's Unix
transport, which sends every descriptor with a 1-byte ``sendmsg`` of its own:
the worker took a call's four sockets in about five reads, each a reactor round
(strace: 391 of 458 ``recvmsg`` carried one descriptor, for 94 calls).  Here:

- **out**: what is written waits in our own buffer of (bytes, descriptors)
  only while the socket cannot take it; each ``sendmsg`` carries the buffered
  bytes and their descriptors (``SCM_RIGHTS``, at most :data:`MAX_FDS`), so the
  descriptors arrive with the first byte of what they are sent with, never after
  their request's bytes; the rest of a short send follows when the socket can
  take it (``addWriter`` until then).  The caller keeps the sockets open until
  their request is answered (:class:`media.workers.WorkerClient` does).
- **in**: every read's bytes to ``on_data``.
- **the end**: the worker closed its end, or reading or writing failed:
  ``on_lost(reason)``, once; :meth:`Channel.close` (the node gives the worker
  up) ends it without a word.
"""

from __future__ import annotations

import errno
import socket
from array import array
from collections import deque
from typing import Callable

from twisted.internet import error, main
from twisted.internet.interfaces import IReadWriteDescriptor
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["Channel", "MAX_FDS"]

#: the most descriptors one sendmsg carries (the kernel takes 253; the worker's reader has room for far more)
MAX_FDS = 64
#: the most bytes one read takes
READ_SIZE = 1 << 16


@implementer(IReadWriteDescriptor)
class Channel:
    """One connected Unix stream socket on the reactor; see the module's docstring."""

    def __init__(self, reactor, sock: socket.socket, on_data: Callable[[bytes], object],
                 on_lost: Callable[[Failure], object]) -> None:
        sock.setblocking(False)
        self.socket = sock
        self._reactor = reactor
        self._on_data = on_data
        self._on_lost = on_lost
        #: what waits to be sent: (bytes, the descriptors to send with their first byte)
        self._queue: deque[tuple[bytes, tuple[int, ...]]] = deque()
        self._writing = False
        self.closed = False
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.socket.fileno()

    def logPrefix(self) -> str:
        return "media-worker-channel"

    def write(self, data: bytes, fds: tuple[int, ...] = ()) -> None:
        """Send ``data``, and the descriptors ``fds`` no later than its first byte (they must stay open until the
        peer has read them); a failure ends the channel (``on_lost``) from the reactor, not inside this call."""
        if self.closed:
            return
        self._queue.append((data, fds))
        if not self._writing:
            why = self._flush()
            if why is not None:
                self._reactor.callLater(0, self._lose, why)

    def doWrite(self):
        return self._flush()

    def _flush(self) -> Exception | None:
        """Send what waits, until the socket takes no more (then the reactor is asked to say when it can)."""
        queue = self._queue
        while queue:
            data, fds = queue.popleft()
            if queue and len(fds) + len(queue[0][1]) <= MAX_FDS:      # all that waits, in one send
                parts, all_fds = [data], list(fds)
                while queue and len(all_fds) + len(queue[0][1]) <= MAX_FDS:
                    more, more_fds = queue.popleft()
                    parts.append(more)
                    all_fds.extend(more_fds)
                data, fds = b"".join(parts), tuple(all_fds)
            try:
                if fds:
                    sent = self.socket.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array("i", fds))])
                else:
                    sent = self.socket.send(data)
            except (BlockingIOError, InterruptedError):
                queue.appendleft((data, fds))
                self._start_writing()
                return None
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:     # the kernel's buffers are short: later, as Twisted does
                    queue.appendleft((data, fds))
                    self._start_writing()
                    return None
                return error.ConnectionLost(str(exc))
            if sent < len(data):
                queue.appendleft((data[sent:], ()))     # the descriptors went with the first byte
        if self._writing:
            self._writing = False
            self._reactor.removeWriter(self)
        return None

    def _start_writing(self) -> None:
        if not self._writing:
            self._writing = True
            self._reactor.addWriter(self)

    def doRead(self):
        try:
            data = self.socket.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            return error.ConnectionLost(str(exc))
        if not data:
            return main.CONNECTION_DONE
        self._on_data(data)
        return None

    def _lose(self, why: Exception) -> None:
        if not self.closed:
            self._reactor.removeReader(self)
            self._reactor.removeWriter(self)
            self.connectionLost(Failure(why))

    def connectionLost(self, reason: Failure) -> None:
        """The reactor's word (or ours, after a failed write) that the channel ended: ``on_lost``, once."""
        if self.closed:
            return
        self._end()
        self._on_lost(reason)

    def close(self) -> None:
        """Give the channel up: nothing more is sent or read, and ``on_lost`` is not called."""
        if not self.closed:
            self._reactor.removeReader(self)
            self._reactor.removeWriter(self)
            self._end()

    def _end(self) -> None:
        self.closed = True
        self._writing = False
        self._queue.clear()
        self.socket.close()

