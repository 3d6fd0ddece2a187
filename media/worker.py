"""A media worker: the relay, the player, DTMF and RTCP of the calls the node gives it, in a process of its own.

``python -m media.worker`` is started by the node (:mod:`media.workers`) with
the control channel (:mod:`media.control`) on its file descriptor
:data:`media.control.CHANNEL_FD`, its end of a Unix stream socket pair; its
standard input is ``/dev/null``, what it writes to standard output or error
joins the node's log.  It reads nothing else:
its settings (address, its share of the RTP port range, silence timeout, latch
networks, the prompt sets and music files to load, the log level) come in the
node's :class:`media.control.Hello`; a reload of the node's log level comes as
a ``log_level`` request.  It runs a real reactor with one
:class:`media.engine.LocalEngine`, exactly what a node without workers runs in
process, and :class:`WorkerServer` turns each request into a call on it and
what the relay notices into events.

It ends when its control channel closes (the node stopped or died); SIGINT is
ignored (a Ctrl-C reaches the node's whole process group: the node stops its
workers itself, after it has ended its calls).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import deque
from dataclasses import asdict
from typing import Callable

from twisted.logger import Logger, LogLevelFilterPredicate

from .control import (CHANNEL_FD, SOCKETS, VERSION, ControlError, Decoder, Event, Hello, Request, Response, encode,
                      log_level)
from .engine import LocalEngine, LocalSession, PlayPart
from .library import PromptError
from .player import Mode, Player
from .ports import PortsExhausted, adopt_pair
from .relay import Relay
from .sdp import Negotiated
from .sounds import Sound

__all__ = ["WorkerServer", "engine_from_settings", "main"]

log = Logger(namespace="media.worker")

#: the longest a request's success waits to be told, together with the others done meanwhile (the node's deadline
#: on a request is far longer: media.workers.REQUEST_DEADLINE_S)
ACK_DELAY_S = 0.05


def engine_from_settings(reactor, settings: dict, clock=None) -> LocalEngine:
    """The worker's engine from the node's hello: a Relay on its share, a Player, its prompts loaded
    (raises PromptError naming a bad file, ValueError for bad settings)."""
    relay = Relay(reactor, settings["address"], int(settings["port_min"]), int(settings["port_max"]),
                  int(settings["silence_timeout_s"]), clock=clock,
                  latch_networks=tuple(settings.get("latch_networks", ())))
    engine = LocalEngine(relay, Player(clock if clock is not None else reactor))
    engine.load_prompts([tuple(p) for p in settings.get("prompt_sets", ())], settings.get("ringback_files", ()))
    return engine


class WorkerServer:
    """The worker's side of the control channel: bytes in, calls on its engine, bytes out through ``send``.

    ``make_engine(settings)`` builds the engine at the node's hello; the tests give it one on their Clock.
    ``levels`` is the filter of the worker's log: its level is the node's, from the hello and each ``log_level``
    request.
    """

    def __init__(self, make_engine: Callable[[dict], LocalEngine], send: Callable[[bytes], object],
                 pid: int = 0, *, clock=None, ack_delay_s: float = ACK_DELAY_S,
                 levels: LogLevelFilterPredicate | None = None) -> None:
        self._make_engine = make_engine
        self.levels = levels if levels is not None else LogLevelFilterPredicate()
        self._send = send
        self.pid = pid
        self._clock = clock                 # IReactorTime for the coalesced acknowledgements (None: at once)
        self._ack_delay_s = ack_delay_s
        self._unacked = 0                   # the last request done whose success is not told yet
        self._ack_call = None
        self.engine: LocalEngine | None = None
        self.sessions: dict[int, LocalSession] = {}
        self._plays: dict[tuple[int, int], object] = {}
        self._decoder = Decoder()
        #: descriptors from the node not yet taken by their request (media.control.SOCKETS), in the order they came
        self._descriptors: deque[int] = deque()
        self.failed = False
        self._ops = {"open": self._open, "bind_b": self._bind_b, "configure": self._configure, "play": self._play,
                     "stop_play": self._stop_play, "stop": self._stop, "close": self._close, "stats": self._stats,
                     "reload": self._reload, "latch": self._latch, "log_level": self._log_level}

    def data_received(self, data: bytes) -> None:
        """Bytes from the node; raises ControlError when they break the protocol (the caller gives up)."""
        for message in self._decoder.feed(data):
            if isinstance(message, Hello):
                self._hello(message)
            elif isinstance(message, Request) and self.engine is not None:
                self._request(message)
            else:
                raise ControlError(f"unexpected {type(message).__name__} from the node")

    def descriptor_received(self, fd: int) -> None:
        """A descriptor from the node (``SCM_RIGHTS``), ours now: the next request that carries sockets takes it.
        It comes no later than that request's bytes."""
        self._descriptors.append(fd)

    def _hello(self, hello: Hello) -> None:
        if hello.version != VERSION:
            self._send(encode(Hello(VERSION, {"pid": self.pid}, f"protocol version {hello.version} is not {VERSION}")))
            raise ControlError(f"the node speaks version {hello.version}")
        try:
            self._log_level(hello.settings.get("log_level", "info"))
            self.engine = self._make_engine(hello.settings)
        except (PromptError, ValueError, KeyError, OSError) as exc:
            self._send(encode(Hello(VERSION, {"pid": self.pid}, f"{type(exc).__name__}: {exc}")))
            raise ControlError(f"cannot start: {exc}") from None
        self._send(encode(Hello(VERSION, {"pid": self.pid})))

    def _request(self, request: Request) -> None:
        args = request.args
        count = SOCKETS.get(request.op, 0)
        if count:
            if len(self._descriptors) < count:
                raise ControlError(f"a {request.op} request came without its {count} sockets")
            fds = self._descriptors
            socks = adopt_pair(self.engine.address, (fds.popleft(), fds.popleft()))
            args = dict(args, socks=socks)
        try:
            result = self._ops[request.op](**args)
        except (PortsExhausted, PromptError, ValueError, KeyError, TypeError) as exc:
            if count:
                for sock in args["socks"]:      # not taken by a session (closing a taken one twice is harmless)
                    sock.close()
            self._answer(Response(request.id, False, error=f"{type(exc).__name__}: {exc}"))
            return
        if result or self._clock is None:
            self._answer(Response(request.id, True, result or {}))
            return
        # a success with nothing to say: told with the next answer, or within ack_delay_s, for all done by then.
        # bench/media_workers.py (500 calls at 100/s, 8 requests a call): the node reads 109 answers instead of
        # 4003; its media CPU a call 704 us with an answer per request, 593 us so (one run each, a noisy machine)
        self._unacked = request.id
        if self._ack_call is None:
            self._ack_call = self._clock.callLater(self._ack_delay_s, self._flush_ack)

    def _answer(self, response: Response) -> None:
        """Send ``response``; it tells the success of every request before it too (answers are in order)."""
        if self._ack_call is not None and self._ack_call.active():
            self._ack_call.cancel()
        self._ack_call = None
        self._unacked = 0
        self._send(encode(response))

    def _flush_ack(self) -> None:
        self._ack_call = None
        if self._unacked:
            self._answer(Response(self._unacked, True))

    def _event(self, kind: str, **args) -> None:
        self._send(encode(Event(kind, args)))

    # -- the ops ---------------------------------------------------------------------------------

    def _open(self, sid: int, label: str, lang: str, prompts_dir: str, a_port: int, socks) -> None:
        session = self.engine.open_session(
            label, lang, prompts_dir, a_socks=socks,
            on_silence=lambda leg, at_s: self._event("silence", sid=sid, leg=leg, at_s=at_s),
            on_dtmf=lambda leg, digit, end: self._event("dtmf", sid=sid, leg=leg, digit=digit, end=end))
        if session.a_port != a_port:
            session.close()
            raise ValueError(f"the sockets given for port {a_port} are bound to {session.a_port}")
        self.sessions[sid] = session
        log.debug("call {call_id}: media in worker {pid} on ports {port}/{rtcp_port}", call_id=label, pid=self.pid,
                  port=a_port, rtcp_port=a_port + 1)

    def _bind_b(self, sid: int, port: int, socks) -> None:
        bound = self.sessions[sid].bind_b(socks)
        if bound != port:
            raise ValueError(f"the sockets given for port {port} are bound to {bound}")

    def _configure(self, sid: int, leg: str, negotiated: dict) -> None:
        self.sessions[sid].configure_leg(leg, Negotiated(**negotiated))

    def _play(self, sid: int, pid: int, parts: list, loop: bool = False) -> None:
        session = self.sessions[sid]
        handle = session.play([PlayPart(p["leg"], Sound.from_wire(p["sound"]), Mode(p["mode"])) for p in parts],
                              loop=loop)
        key = (sid, pid)
        self._plays[key] = handle

        def played(result):
            self._plays.pop(key, None)
            self._event("played", sid=sid, pid=pid, result=bool(result))
            return result
        handle.done.addBoth(played)

    def _stop_play(self, sid: int, pid: int) -> None:
        handle = self._plays.get((sid, pid))
        if handle is not None:
            handle.stop()

    def _stop(self, sid: int) -> None:
        self.sessions[sid].stop()

    def _close(self, sid: int) -> None:
        session = self.sessions.pop(sid, None)
        if session is not None:
            session.close()

    def _stats(self) -> dict:
        return asdict(self.engine.counters())

    def _reload(self, prompt_sets: list, ringback_files: list) -> dict:
        return {"libraries": self.engine.reload_prompts([tuple(p) for p in prompt_sets], ringback_files)}

    def _latch(self, networks: list) -> None:
        self.engine.set_latch_networks(networks)

    def _log_level(self, level: str) -> None:
        self.levels.setLogLevelForNamespace("", log_level(level))

    def close(self) -> None:
        """The node is gone: every session closed."""
        if self._ack_call is not None and self._ack_call.active():
            self._ack_call.cancel()
        for sid in list(self.sessions):
            self._close(sid)
        while self._descriptors:
            os.close(self._descriptors.popleft())
        if self.engine is not None:
            self.engine.close()


def main() -> None:       # pragma: no cover - run as a process by tests/media/test_workers_live.py
    """The worker process: a real reactor, the control channel on fd CHANNEL_FD, the log on stderr."""
    import socket

    from zope.interface import implementer
    from twisted.internet import reactor
    from twisted.internet.interfaces import IFileDescriptorReceiver
    from twisted.internet.protocol import Factory, Protocol
    from twisted.logger import FilteringLogObserver, globalLogBeginner, textFileLogObserver

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    levels = LogLevelFilterPredicate()      # info until the hello says the node's level
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(textFileLogObserver(sys.stderr), [levels])],
                                     redirectStandardIO=False)

    @implementer(IFileDescriptorReceiver)
    class Channel(Protocol):
        def connectionMade(self) -> None:
            self.server = WorkerServer(lambda settings: engine_from_settings(reactor, settings),
                                       self.transport.write, os.getpid(), clock=reactor, levels=levels)

        def fileDescriptorReceived(self, descriptor: int) -> None:
            """A pair's socket (before the bytes it came with): the server owns it now."""
            self.server.descriptor_received(descriptor)

        def dataReceived(self, data: bytes) -> None:
            try:
                self.server.data_received(data)
            except ControlError as exc:
                log.error("media worker {pid}: control channel broken: {reason}", pid=os.getpid(), reason=str(exc))
                self.transport.loseConnection()

        def connectionLost(self, reason=None) -> None:
            self.server.close()
            if reactor.running:
                reactor.stop()

    reactor.adoptStreamConnection(CHANNEL_FD, socket.AF_UNIX, Factory.forProtocol(Channel))
    os.close(CHANNEL_FD)            # the reactor reads its own copy
    reactor.run()


if __name__ == "__main__":
    main()
