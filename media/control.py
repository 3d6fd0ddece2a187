"""The media workers' control protocol, sans-I/O: messages, their framing, and the decoder.

The node's main process and each media worker (:mod:`media.worker`) speak it
over a local socket: a Unix stream socket pair the node makes, its one end
the worker's file descriptor :data:`CHANNEL_FD` (the worker's standard input
is ``/dev/null``; its standard output and error join the node's log).  Every
message is one frame: a 4-byte big-endian length, then that many bytes of
UTF-8 JSON, an object whose ``t`` names its kind.  Four kinds
(:class:`Hello`, :class:`Request`, :class:`Response`, :class:`Event`), frozen
dataclasses built with plain values:

- the node sends :class:`Hello` first, with :data:`VERSION` and the worker's
  settings (address, its share of the RTP port range, silence timeout, latch
  networks, the prompt sets and music files to load, the log level); the worker answers with
  its own :class:`Hello` (its version, its pid, and ``error`` when it cannot
  serve: another version, a prompt that does not load).  A version that differs
  ends the conversation: no message of another version is read.
- the node's :class:`Request` (``id``, ``op``, ``args``; the ops are
  :data:`OPS`) is answered by a :class:`Response`, in the order sent: an error
  or a result at once, with the request's ``id``; a success with nothing to
  say may wait for the next answer (the worker sends one within a few tens of
  ms), because a :class:`Response` with ``id`` N also tells that every request
  before N succeeded (it would have had its own error answer).  The node holds
  each request to a deadline (``media.workers``).
- the worker's :class:`Event` tells what nobody asked for: a leg fell silent, a
  telephone event, a playback ended.
- a call's RTP port pair is bound by the node (so a pair another process holds
  is skipped at once, and the next one tried, before the port goes into the
  SDP); the requests that give a worker a pair (:data:`SOCKETS`: ``open`` and
  ``bind_b``) carry its two sockets, RTP then RTCP, as file descriptors
  (``SCM_RIGHTS``) sent on the channel ahead of the request's last byte.  The
  worker takes the descriptors in the order they came, each such request the
  next two; the node closes its own copies once the request is answered.
  (Version 1 sent only the port number, and the worker bound it: a pair held
  by another process failed the call; and it had no ``log_level``: a worker
  kept the level it was started with.)

A frame that is not one of these (bad length, JSON, kind or field) raises
:class:`ControlError`: the peer misbehaves, and the connection is given up.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Union

from twisted.logger import InvalidLogLevelError, LogLevel

__all__ = ["VERSION", "CHANNEL_FD", "OPS", "SOCKETS", "EVENTS", "Hello", "Request", "Response", "Event", "Message",
           "ControlError", "encode", "Decoder", "MAX_FRAME", "log_level"]

#: the protocol's version; both sides say it in their Hello and talk only to the same (2: the node binds the pairs
#: and passes their sockets, see SOCKETS; the log level in the hello and the "log_level" request)
VERSION = 2
#: the worker's end of the control channel: this file descriptor in the worker process
CHANNEL_FD = 3
#: the largest frame either side accepts (a hello with many prompt sets is a few kB)
MAX_FRAME = 1 << 20
_LENGTH = struct.Struct("!I")
#: one encoder for every frame: json.dumps with separators builds a new one each time (a configure request:
#: 11.7 us with json.dumps, 9.6 us so, timeit on the shared machine; about 8 frames a call, on the node's main thread)
_JSON = json.JSONEncoder(separators=(",", ":")).encode

#: what the node asks a worker
OPS = ("open", "bind_b", "configure", "play", "stop_play", "stop", "close", "stats", "reload", "latch", "log_level")
#: the requests that carry a port pair's two sockets (RTP, RTCP) as descriptors: op -> how many
SOCKETS = {"open": 2, "bind_b": 2}
#: what a worker tells the node unasked
EVENTS = ("silence", "dtmf", "played")


class ControlError(ValueError):
    """A frame that breaks the protocol: the peer misbehaves (its connection is given up)."""


def log_level(name: str) -> LogLevel:
    """The level a hello's ``log_level`` or a ``log_level`` request names (Twisted's names: debug, info, warn,
    error, critical); raises ValueError for any other, which the node checks before it sends one."""
    try:
        return LogLevel.levelWithName(name)
    except InvalidLogLevelError:
        raise ValueError(f"no log level named {name!r}") from None


@dataclass(frozen=True)
class Hello:
    version: int
    settings: dict = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class Request:
    id: int
    op: str
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    id: int
    ok: bool
    result: dict = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class Event:
    kind: str
    args: dict = field(default_factory=dict)


Message = Union[Hello, Request, Response, Event]


def encode(message: Message) -> bytes:
    """One frame for ``message``."""
    if isinstance(message, Request):
        obj = {"t": "req", "id": message.id, "op": message.op, "a": message.args}
    elif isinstance(message, Response):
        obj = {"t": "res", "id": message.id, "ok": message.ok, "r": message.result, "e": message.error}
    elif isinstance(message, Event):
        obj = {"t": "ev", "k": message.kind, "a": message.args}
    elif isinstance(message, Hello):
        obj = {"t": "hello", "v": message.version, "s": message.settings, "e": message.error}
    else:
        raise TypeError(f"not a control message: {message!r}")
    body = _JSON(obj).encode()
    if len(body) > MAX_FRAME:
        raise ValueError(f"control message of {len(body)} bytes is over {MAX_FRAME}")
    return _LENGTH.pack(len(body)) + body


def _message(obj) -> Message:
    if not isinstance(obj, dict):
        raise ControlError("a frame is not a JSON object")
    try:
        kind = obj["t"]
        if kind == "req":
            op = obj["op"]
            if op not in OPS:
                raise ControlError(f"unknown op {op!r}")
            return Request(_int(obj["id"]), op, _dict(obj.get("a", {})))
        if kind == "res":
            return Response(_int(obj["id"]), bool(obj["ok"]), _dict(obj.get("r", {})), str(obj.get("e", "")))
        if kind == "ev":
            if obj["k"] not in EVENTS:
                raise ControlError(f"unknown event {obj['k']!r}")
            return Event(obj["k"], _dict(obj.get("a", {})))
        if kind == "hello":
            return Hello(_int(obj["v"]), _dict(obj.get("s", {})), str(obj.get("e", "")))
    except KeyError as exc:
        raise ControlError(f"a {obj.get('t')!r} frame without {exc}") from None
    raise ControlError(f"unknown frame kind {kind!r}")


def _int(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ControlError(f"{value!r} is not an integer")
    return value


def _dict(value) -> dict:
    if not isinstance(value, dict):
        raise ControlError(f"{value!r} is not an object")
    return value


class Decoder:
    """Bytes in (any cut), messages out, in order; raises ControlError at the first bad frame and stays broken."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.broken = False

    def feed(self, data: bytes) -> list[Message]:
        if self.broken:
            raise ControlError("the stream broke earlier")
        self._buffer += data
        out: list[Message] = []
        buf = self._buffer
        pos = 0
        try:
            while len(buf) - pos >= 4:
                (n,) = _LENGTH.unpack_from(buf, pos)
                if n > MAX_FRAME:
                    raise ControlError(f"a frame of {n} bytes is over {MAX_FRAME}")
                if len(buf) - pos - 4 < n:
                    break
                try:
                    obj = json.loads(bytes(buf[pos + 4:pos + 4 + n]))
                except ValueError as exc:
                    raise ControlError(f"a frame that is not JSON: {exc}") from None
                pos += 4 + n
                out.append(_message(obj))
        except ControlError:
            self.broken = True
            raise
        finally:
            del buf[:pos]
        return out
