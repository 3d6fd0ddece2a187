"""Media in worker processes: :class:`WorkerEngine`, the node's side of ``[media] workers = N``.

The node keeps SIP, call control and billing; N media workers
(:mod:`media.worker`, ``python -m media.worker``) each own an equal share of the
RTP port range and run the relay, the player, DTMF detection and RTCP for the
calls given to them.  :class:`WorkerEngine` is the same
:class:`media.engine.MediaEngine` the calls use in process, so a call's media
(``b2bua.callmedia``) does not know which it has:

- **ports at once**: the node takes a call's port pairs from the chosen
  worker's share itself (a :class:`media.ports.PortRange` per worker) and binds
  them (:func:`media.ports.bind_next_pair`: a pair another process holds is
  skipped and the next one tried, as in process), so our SDP is written without
  waiting and with a port that is ours; the pair's two sockets go to the worker
  with the request (``SCM_RIGHTS`` on the control channel,
  :data:`media.control.SOCKETS`), and the node closes its copies once the
  worker has answered it.
- **answers in order, a deadline**: every request (:mod:`media.control`) is
  answered in order (successes with nothing to say together, within
  ``media.worker.ACK_DELAY_S``); one not answered within
  :data:`REQUEST_DEADLINE_S` (the hello: :data:`HELLO_DEADLINE_S`, it loads
  the prompts) means the worker hangs: it is killed.  Nothing waits on the
  answers but errors and statistics: the calls go on at once.
- **a worker that dies** (its process ended, its channel broke, a deadline
  missed) is noticed at once: each of its calls hears ``on_failed("media_failed")``
  and ends cleanly, billed to that moment; the death is logged once at error
  with the worker's pid and how many calls it took; a new worker is started on
  the same share after :data:`RESTART_DELAY_S` (longer each time a restarted
  one dies again soon), and the node serves on (new calls go to the other
  workers meanwhile; with none: 503, as with no ports).
- **sounds by name**: a playback names its sound (:class:`media.sounds.Sound`);
  each worker loads the prompt sets and music files at its start and on reload.
  The node checks a reload by loading them once itself (all or nothing) before
  it tells the workers.
- **figures**: every :data:`STATS_INTERVAL_S` each worker is asked for its
  relay's counters; :meth:`WorkerEngine.counters` sums the last answers (and
  what workers that died had counted) with the node's own gauges.

How a worker is started is injected (``spawn``): :func:`spawn_process` for real
processes, an in-memory pair in the tests (``tests/support/media_workers.py``)
that runs the worker's :class:`media.worker.WorkerServer` on the test's Clock.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, fields, replace
from typing import Callable, Iterable, Protocol, Sequence

from twisted.internet import error as twisted_error
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import log as legacy_log

from .channel import Channel
from .control import CHANNEL_FD, VERSION, ControlError, Decoder, Event, Hello, Request, Response, encode, log_level
from .engine import DtmfHandler, FailedHandler, PlayPart, SilenceHandler
from .ports import PortRange, PortsExhausted, bind_next_pair
from .relay import RelayCounters
from .sdp import Negotiated
from .sounds import PromptLibraries, Ringbacks

__all__ = ["WorkerEngine", "WorkerClient", "WorkerSession", "WorkerSettings", "spawn_process", "port_shares",
           "default_workers", "REQUEST_DEADLINE_S", "HELLO_DEADLINE_S", "RESTART_DELAY_S", "STATS_INTERVAL_S",
           "MEDIA_FAILED"]

log = Logger(namespace="media.workers")

#: a request not answered in this time means the worker hangs: it is killed and restarted
REQUEST_DEADLINE_S = 2.0
#: the worker's hello answer (it loads every prompt set first)
HELLO_DEADLINE_S = 60.0
#: how often the deadlines are checked
DEADLINE_CHECK_S = 0.25
#: a worker that died is started again after this pause; a restarted one that dies within STABLE_S of its hello, or
#: before it said hello (it hung, refused, or ended at once), waits twice as long as the last time, up to
#: RESTART_DELAY_MAX_S (a worker that cannot run does not spin, and is logged once per attempt)
RESTART_DELAY_S = 0.5
STABLE_S = 10.0
RESTART_DELAY_MAX_S = 30.0
#: how often each worker is asked for its relay's counters
STATS_INTERVAL_S = 2.0
#: the reason a call's media ends with when its worker died (the call's end reason)
MEDIA_FAILED = "media_failed"


def default_workers(cores: int | None = None) -> int:
    """``[media] workers`` when unset: the cores but one (the node's own), at least one."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, cores - 1)


def port_shares(port_min: int, port_max: int, workers: int) -> list[tuple[int, int]]:
    """The range split into ``workers`` shares of whole even/odd pairs, as equal as they go; raises ValueError
    when a share would hold no pair."""
    first = port_min + (port_min % 2)
    pairs = (port_max - first + 1) // 2
    if workers < 1 or pairs < workers:
        raise ValueError(f"RTP port range {port_min}..{port_max} has {pairs} pairs for {workers} media workers")
    shares, start = [], first
    for i in range(workers):
        n = pairs // workers + (1 if i < pairs % workers else 0)
        shares.append((start, start + 2 * n - 1))
        start += 2 * n
    return shares


@dataclass(frozen=True)
class WorkerSettings:
    """What every worker is told at its start (its share is added per worker)."""

    address: str
    silence_timeout_s: int
    latch_networks: tuple[str, ...] = ()
    prompt_sets: tuple[tuple[str, str], ...] = ()
    ringback_files: tuple[str, ...] = ()
    #: the node's ``[node] log_level``: what the worker's log lets through
    log_level: str = "info"

    def hello(self, share: tuple[int, int]) -> dict:
        return {"address": self.address, "port_min": share[0], "port_max": share[1],
                "silence_timeout_s": self.silence_timeout_s, "latch_networks": list(self.latch_networks),
                "prompt_sets": [list(p) for p in self.prompt_sets], "ringback_files": list(self.ringback_files),
                "log_level": self.log_level}


class WorkerLink(Protocol):
    """A started worker as its spawner gives it: its pid, and a way to kill it."""

    pid: int

    def write(self, data: bytes, socks: tuple[socket.socket, ...] = ()) -> None:
        """A frame to the worker, and duplicates of ``socks`` ahead of its last byte; the caller keeps its own
        open until that frame is answered (they may still be queued here until then)."""
    def kill(self) -> None: ...


#: spawn(client) starts a worker whose channel's bytes go to client.data_received, and whose end (its process's or
#: its channel's) to client.lost
Spawner = Callable[["WorkerClient"], WorkerLink]


# -- one call on a worker --------------------------------------------------------------------------


class WorkerPlay:
    """A playback on a worker: ``done`` fires with the worker's "played" event (False if the worker dies)."""

    __slots__ = ("session", "pid", "done")

    def __init__(self, session: "WorkerSession", pid: int) -> None:
        self.session = session
        self.pid = pid
        self.done: Deferred = Deferred()

    def stop(self) -> None:
        if not self.done.called:
            self.session.request("stop_play", pid=self.pid)

    def finish(self, result: bool) -> None:
        if not self.done.called:
            self.done.callback(result)


class WorkerSession:
    """An :class:`media.engine.EngineSession` whose relay runs in a worker; each call a request."""

    def __init__(self, client: "WorkerClient", sid: int, a_port: int, on_silence: SilenceHandler,
                 on_dtmf: DtmfHandler, on_failed: FailedHandler, label: str = "") -> None:
        self.client = client
        self.sid = sid
        self.label = label
        self.a_port = a_port
        self.a_rtcp_port = a_port + 1
        self.b_port = 0
        self.b_rtcp_port = 0
        self.on_silence = on_silence
        self.on_dtmf = on_dtmf
        self.on_failed = on_failed
        self.plays: dict[int, WorkerPlay] = {}
        self._next_pid = 0
        self.closed = False

    def request(self, op: str, **args) -> None:
        if not self.closed:
            self.client.request(op, self._refused, sid=self.sid, **args)

    def _refused(self, error: str, op: str) -> None:
        """The worker could not do what was asked (bind a pair, configure, play): the call's media failed."""
        log.error("media worker {pid}: {op} for call {call_id} failed: {error}", pid=self.client.pid, op=op,
                  call_id=self.label, error=error)
        # not inside the caller's own request (an in-memory worker answers before open_session returns)
        self.client.engine.clock.callLater(0, self.fail)

    def bind_b(self) -> int:
        if not self.b_port and not self.closed:
            port, socks = bind_next_pair(self.client.ports, self.client.engine.address)    # raises PortsExhausted
            self.b_port, self.b_rtcp_port = port, port + 1
            self.request("bind_b", sockets=socks, port=port)
        return self.b_port

    def configure_leg(self, leg: str, negotiated: Negotiated) -> None:
        self.request("configure", leg=leg, negotiated={name: getattr(negotiated, name) for name in _NEGOTIATED})

    def play(self, parts: Sequence[PlayPart], loop: bool = False) -> WorkerPlay:
        self._next_pid += 1
        play = WorkerPlay(self, self._next_pid)
        if self.closed:
            play.finish(False)
            return play
        self.plays[play.pid] = play
        play.done.addBoth(self._play_ended, play.pid)
        self.client.request("play", lambda error, op: self._play_refused(play, error),
                            sid=self.sid, pid=play.pid, loop=loop,
                            parts=[{"leg": p.leg, "sound": p.sound.to_wire(), "mode": p.mode.value} for p in parts])
        return play

    def _play_refused(self, play: WorkerPlay, error: str) -> None:
        """A sound the worker cannot play (a prompt that does not load): logged, the playback ends False, the call
        goes on."""
        log.error("media worker {pid}: call {call_id} cannot play: {error}", pid=self.client.pid, call_id=self.label,
                  error=error)
        play.finish(False)

    def _play_ended(self, result, pid: int):
        self.plays.pop(pid, None)
        return result

    def stop(self) -> None:
        """Stop what plays: a request only while a playback of ours is not over (the worker plays nothing else:
        with none, there is nothing to stop; a call's end stops then closes, one request fewer a call)."""
        if self.plays:
            self.request("stop")

    def close(self) -> None:
        if self.closed:
            return
        self.request("close")
        self._release()

    def _release(self) -> None:
        self.closed = True
        self.client.forget(self)
        for play in list(self.plays.values()):
            play.finish(False)
        self.on_silence = _ignore
        self.on_dtmf = _ignore
        self.on_failed = _ignore

    def fail(self) -> None:
        """The call's media is lost (its worker died, or refused it): its owner hears it once."""
        if self.closed:
            return
        if not self.client.dead:        # refused by a live worker: what it holds of the call is let go
            self.request("close")
        on_failed = self.on_failed
        self._release()
        on_failed(MEDIA_FAILED)


def _ignore(*args) -> None:
    pass


#: what a configure request sends of a leg's Negotiated: its fields, plain values (dataclasses.asdict would copy
#: each value deeply: 10.0 us a leg against 0.8 us so, timeit; two legs a call, on the node's main process)
_NEGOTIATED = tuple(f.name for f in fields(Negotiated))


# -- one worker ------------------------------------------------------------------------------------


class WorkerClient:
    """The node's side of one worker's control channel: its share of ports, its calls, its open requests."""

    def __init__(self, engine: "WorkerEngine", slot: int, share: tuple[int, int]) -> None:
        self.engine = engine
        self.slot = slot
        self.share = share
        self.ports = PortRange(*share)
        self.sessions: dict[int, WorkerSession] = {}
        self.link: WorkerLink | None = None
        self.ready = False
        self.dead = False
        self.started: Deferred = Deferred()      # fires at the worker's hello (errback: it could not start)
        self.stats: RelayCounters | None = None
        self._decoder = Decoder()
        self._next_id = 0
        #: id -> (deadline in clock seconds, op, what to do with an error)
        self._pending: dict[int, tuple[float, str, Callable[[str, str], object] | None]] = {}
        self._results: dict[int, Callable[[dict], object]] = {}
        #: id -> the sockets sent with that request: ours are closed once it is answered (the worker has its own)
        self._held: dict[int, tuple[socket.socket, ...]] = {}
        self._hello_deadline_s = 0.0
        #: when its hello said it serves (None: it never did); what it served decides the pause before its restart
        self.ready_at_s: float | None = None

    @property
    def pid(self) -> int:
        return self.link.pid if self.link is not None else 0

    def start(self, spawn: Spawner, settings: WorkerSettings) -> None:
        """Spawn the worker and say hello; raises OSError when the process cannot be started."""
        self.link = spawn(self)
        self._hello_deadline_s = self.engine.clock.seconds() + HELLO_DEADLINE_S
        self.link.write(encode(Hello(VERSION, settings.hello(self.share))))

    def request(self, op: str, on_error: Callable[[str, str], object] | None = None,
                on_result: Callable[[dict], object] | None = None, sockets: tuple[socket.socket, ...] = (),
                **args) -> None:
        """Send one request, with ``sockets`` (ours: closed here once it is answered, or not sent); ``on_error(error,
        op)`` hears a refusal (not the worker's death)."""
        if self.dead or self.link is None:
            _close(sockets)
            return
        self._next_id += 1
        rid = self._next_id
        self._pending[rid] = (self.engine.clock.seconds() + REQUEST_DEADLINE_S, op, on_error)
        if on_result is not None:
            self._results[rid] = on_result
        if sockets:
            self._held[rid] = sockets
        self.link.write(encode(Request(rid, op, args)), sockets)

    def data_received(self, data: bytes) -> None:
        """Bytes from the worker."""
        try:
            messages = self._decoder.feed(data)
        except ControlError as exc:
            self.kill(f"its control channel broke: {exc}")
            return
        for message in messages:
            if self.dead:
                return
            if isinstance(message, Response):
                self._response(message)
            elif isinstance(message, Event):
                self._event(message)
            elif isinstance(message, Hello):
                self._hello(message)

    def _hello(self, hello: Hello) -> None:
        if hello.version != VERSION or hello.error:
            reason = hello.error or f"it speaks protocol version {hello.version}, not {VERSION}"
            if not self.started.called:
                self._fire(self.started.errback, WorkerFailed(f"media worker {self.pid} cannot start: {reason}"))
            self.kill(reason)
            return
        self.ready = True
        self.ready_at_s = self.engine.clock.seconds()
        if not self.started.called:
            self._fire(self.started.callback, self)

    @staticmethod
    def _fire(fire: Callable[[object], object], value: object) -> None:
        """Fire ``started``: the node's start goes on from here (its listeners log "... starting on 5060"), and
        not in the channel's log context, whose system (``media-worker-channel``) would label the node's lines."""
        legacy_log.callWithContext({"system": "-"}, fire, value)

    def _response(self, response: Response) -> None:
        # answers come in order, and one tells the success of every request before it (media.worker acknowledges
        # the successes that have nothing to say together)
        while self._pending:
            first = next(iter(self._pending))
            if first >= response.id:
                break
            del self._pending[first]
            self._results.pop(first, None)
        pending = self._pending.pop(response.id, None)
        on_result = self._results.pop(response.id, None)
        held = self._held
        while held:             # the worker has the sockets of every request answered: ours are closed
            first = next(iter(held))
            if first > response.id:
                break
            _close(held.pop(first))
        if pending is None:
            return
        if response.ok:
            if on_result is not None:
                on_result(response.result)
        elif pending[2] is not None:
            pending[2](response.error, pending[1])

    def _event(self, event: Event) -> None:
        args = event.args
        session = self.sessions.get(args.get("sid"))
        if session is None:
            return          # a call already closed here: its last news
        if event.kind == "played":
            play = session.plays.get(args.get("pid"))
            if play is not None:
                play.finish(bool(args.get("result")))
        elif event.kind == "silence":
            session.on_silence(str(args["leg"]), float(args["at_s"]))
        elif event.kind == "dtmf":
            session.on_dtmf(str(args["leg"]), str(args["digit"]), bool(args["end"]))

    def overdue(self, now: float) -> str | None:
        """What the worker failed to answer in time, or None."""
        if not self.ready:
            return "its hello" if now > self._hello_deadline_s and not self.dead else None
        for deadline, op, _ in self._pending.values():      # in the order sent: the first is the oldest
            return f"the {op} request" if now > deadline else None
        return None

    def open(self, label: str, lang: str, prompts_dir: str, on_silence: SilenceHandler, on_dtmf: DtmfHandler,
             on_failed: FailedHandler) -> WorkerSession:
        """A call on this worker, leg a's pair bound here (raises PortsExhausted) and sent to it."""
        port, socks = bind_next_pair(self.ports, self.engine.address)
        sid = self.engine.new_sid()
        session = WorkerSession(self, sid, port, on_silence, on_dtmf, on_failed, label)
        self.sessions[sid] = session
        self.request("open", session._refused, sockets=socks, sid=sid, label=label, lang=lang, prompts_dir=prompts_dir,
                     a_port=port)
        return session

    def forget(self, session: WorkerSession) -> None:
        if self.sessions.pop(session.sid, None) is not None and not self.dead:
            self.ports.give_back(session.a_port)
            if session.b_port:
                self.ports.give_back(session.b_port)

    def kill(self, why: str) -> None:
        """Give up on the worker: it is lost now (one log line, its calls fail), then its process is killed
        (the end of its process and of its channel that follow find it lost already)."""
        if self.dead:
            return
        self.lost(f"it was killed: {why}")
        if self.link is not None:
            self.link.kill()

    def lost(self, why: str) -> None:
        """The worker is gone: each of its calls fails now, once."""
        if self.dead:
            return
        self.dead = True
        self.ready = False
        sessions = list(self.sessions.values())
        self._pending.clear()
        self._results.clear()
        for socks in self._held.values():
            _close(socks)
        self._held.clear()
        if not self.started.called:
            self.started.errback(WorkerFailed(f"media worker {self.pid} ended before it started: {why}"))
        self.engine.worker_lost(self, why, len(sessions))
        for session in sessions:
            session.fail()


def _close(socks: tuple[socket.socket, ...]) -> None:
    for sock in socks:
        sock.close()


class WorkerFailed(RuntimeError):
    """A media worker could not start (its hello said why, or it ended first)."""


# -- the engine ------------------------------------------------------------------------------------


class WorkerEngine:
    """:class:`media.engine.MediaEngine` on N media worker processes; see the module's docstring."""

    def __init__(self, reactor, settings: WorkerSettings, port_min: int, port_max: int, workers: int,
                 spawn: Spawner, *, clock=None) -> None:
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.settings = settings
        self.spawn = spawn
        self.shares = port_shares(port_min, port_max, workers)
        self.port_pairs = sum(PortRange(*share).size for share in self.shares)
        self.clients: list[WorkerClient] = []
        self.restarts = 0
        self.closing = False
        self._sid = 0
        self._totals_of_dead = [0, 0, 0, 0, 0]   # relayed, dropped, stray, silence, rtcp of workers that died
        self._checker = LoopingCall(self._check)
        self._checker.clock = self.clock
        self._stats = LoopingCall(self._ask_stats)
        self._stats.clock = self.clock
        self._restart_delays: dict[int, float] = {}       # slot -> the pause before its last restart

    @property
    def address(self) -> str:
        return self.settings.address

    @property
    def silence_timeout_s(self) -> int:
        return self.settings.silence_timeout_s

    def start(self) -> Deferred:
        """Start every worker; fires when each has said hello (errback: one could not start)."""
        self.clients = [WorkerClient(self, slot, share) for slot, share in enumerate(self.shares)]
        for client in self.clients:
            client.start(self.spawn, self.settings)
        self._checker.start(DEADLINE_CHECK_S, now=False)
        self._stats.start(STATS_INTERVAL_S, now=False)
        return DeferredList([c.started for c in self.clients], fireOnOneErrback=True, consumeErrors=True
                            ).addCallbacks(lambda _: self, lambda f: f.value.subFailure)

    def new_sid(self) -> int:
        self._sid += 1
        return self._sid

    def open_session(self, label: str, lang: str, prompts_dir: str = "", *,
                     on_silence: SilenceHandler = lambda leg, at: None,
                     on_dtmf: DtmfHandler = lambda leg, digit, end: None,
                     on_failed: FailedHandler = lambda reason: None) -> WorkerSession:
        """The call goes to the ready worker with the most free pairs; raises PortsExhausted when none has one."""
        ready = [c for c in self.clients if c.ready and c.ports.free]
        if not ready:
            raise PortsExhausted("no media worker has a free RTP port pair"
                                 + ("" if any(c.ready for c in self.clients) else " (none is running)"))
        client = max(ready, key=lambda c: c.ports.free)
        return client.open(label, lang, prompts_dir, on_silence, on_dtmf, on_failed)

    # -- figures, reloads ---------------------------------------------------------------------------

    def counters(self) -> RelayCounters:
        totals = list(self._totals_of_dead)
        for client in self.clients:
            s = client.stats
            if s is not None:
                for i, v in enumerate((s.packets_relayed, s.packets_dropped, s.packets_stray, s.packets_silence,
                                       s.rtcp_sent)):
                    totals[i] += v
        live = [c for c in self.clients if not c.dead]
        return RelayCounters(totals[0], totals[1], totals[2], totals[3], totals[4],
                             sum(len(c.sessions) for c in live), sum(c.ports.free for c in live if c.ready))

    def _ask_stats(self) -> None:
        for client in self.clients:
            if client.ready:
                client.request("stats", on_result=lambda result, c=client: setattr(c, "stats", RelayCounters(**result)))

    def set_latch_networks(self, networks: Iterable) -> None:
        nets = tuple(str(n) for n in networks)
        self.settings = replace(self.settings, latch_networks=nets)
        for client in self.clients:
            client.request("latch", networks=list(nets))

    def set_log_level(self, level: str) -> None:
        """The node's log level changed (a reload of ``[node] log_level``): every worker's log follows now, and a
        worker started later says hello with it.  Raises ValueError for a level that is not one (and changes
        nothing: a worker would refuse a hello with it)."""
        log_level(level)
        self.settings = replace(self.settings, log_level=level)
        for client in self.clients:
            client.request("log_level", lambda error, op, c=client: log.error(
                "media worker {pid} could not change its log level: {error}", pid=c.pid, error=error), level=level)

    def reload_prompts(self, prompt_sets: Iterable[tuple[str, str]], ringback_files: Iterable[str]) -> int:
        """Checked here first (all or nothing: raises PromptError on a bad file, and the workers keep theirs),
        then each worker reads them again; a worker that fails to is logged."""
        prompt_sets, ringback_files = tuple(sorted(set(prompt_sets))), tuple(sorted(set(ringback_files)))
        Ringbacks().refresh(ringback_files)
        count = PromptLibraries().refresh(prompt_sets)
        self.settings = replace(self.settings, prompt_sets=prompt_sets, ringback_files=ringback_files)
        for client in self.clients:
            client.request("reload", lambda error, op, c=client: log.error(
                "media worker {pid} could not reload its prompts: {error}", pid=c.pid, error=error),
                prompt_sets=[list(p) for p in prompt_sets], ringback_files=list(ringback_files))
        return count

    # -- deaths and restarts -----------------------------------------------------------------------

    def _check(self) -> None:
        now = self.clock.seconds()
        for client in self.clients:
            what = client.overdue(now)
            if what is not None:
                client.kill(f"it did not answer {what} in time")

    def worker_lost(self, client: WorkerClient, why: str, calls: int) -> None:
        """A worker ended: counted, logged once (unless the node is stopping), restarted on its share."""
        s = client.stats
        if s is not None:
            for i, v in enumerate((s.packets_relayed, s.packets_dropped, s.packets_stray, s.packets_silence,
                                   s.rtcp_sent)):
                self._totals_of_dead[i] += v
            client.stats = None         # counted once, here, from now on
        if self.closing:
            return
        # stable: it served STABLE_S; one that never said hello (it hung, refused, or ended first) never was,
        # however long its hello's deadline made it live
        served_s = 0.0 if client.ready_at_s is None else self.clock.seconds() - client.ready_at_s
        last = self._restart_delays.get(client.slot)
        delay = (RESTART_DELAY_S if last is None or served_s >= STABLE_S else min(2 * last, RESTART_DELAY_MAX_S))
        self._restart_delays[client.slot] = delay
        if client.ready_at_s is None:
            log.error("media worker {pid} did not start ({why}); starting it again in {delay_s} s", pid=client.pid,
                      why=why, delay_s=delay)
        else:
            log.error("media worker {pid} died ({why}): its {calls} calls end now; restarting it in {delay_s} s",
                      pid=client.pid, why=why, calls=calls, delay_s=delay)
        self.clock.callLater(delay, self._restart, client.slot)

    def _restart(self, slot: int) -> None:
        if self.closing:
            return
        client = WorkerClient(self, slot, self.shares[slot])
        self.clients[slot] = client
        self.restarts += 1
        client.started.addCallbacks(
            lambda c: log.info("media worker {pid} restarted on ports {lo}..{hi}", pid=c.pid, lo=c.share[0],
                               hi=c.share[1]),
            lambda f: None)     # why it could not start: logged once, by worker_lost, with the next attempt's pause
        try:
            client.start(self.spawn, self.settings)
        except OSError as exc:
            client.lost(f"it could not be started: {exc}")      # tried again later

    def close(self) -> None:
        """At the node's stop (its calls have ended): the workers are killed."""
        self.closing = True
        for loop in (self._checker, self._stats):
            if loop.running:
                loop.stop()
        for client in self.clients:
            for session in list(client.sessions.values()):
                session.close()
            if client.link is not None and not client.dead:
                client.link.kill()


# -- real processes --------------------------------------------------------------------------------


class _WorkerProcess(ProcessProtocol):
    """A worker process and its control channel (:class:`media.channel.Channel`): bytes to
    :meth:`WorkerClient.data_received`; the end of either (the process ended, the channel broke) to
    :meth:`WorkerClient.lost`, once."""

    def __init__(self, client: WorkerClient) -> None:
        self.client = client
        self.pid = 0
        self.channel: Channel | None = None

    def attach(self, reactor, sock: socket.socket) -> None:
        """The node's end of the channel, ours from now on."""
        self.channel = Channel(reactor, sock, self.client.data_received, self.channel_lost)

    def write(self, data: bytes, socks: tuple[socket.socket, ...] = ()) -> None:
        if self.channel is not None:
            self.channel.write(data, tuple(sock.fileno() for sock in socks))

    def kill(self) -> None:
        """SIGKILL; the worker is told nothing more (what waits to be sent is dropped: its sockets are closed)."""
        if self.channel is not None:
            self.channel.close()
        try:
            self.transport.signalProcess("KILL")
        except (twisted_error.ProcessExitedAlready, OSError, AttributeError):
            pass

    def channel_lost(self, reason) -> None:
        """The worker can no longer be told anything: it is dead to the node now, and its process is killed."""
        self.client.lost(f"its control channel closed: {reason.value if reason is not None else 'closed'}")
        self.kill()

    def processEnded(self, reason) -> None:
        self.client.lost(f"its process ended: {reason.value}")
        if self.channel is not None:
            self.channel.close()


def spawn_process(reactor) -> Spawner:
    """A spawner of real workers: ``python -m media.worker``, its control channel one end of a Unix stream
    socket pair (its fd :data:`media.control.CHANNEL_FD`; the node adopts the other), its standard input
    ``/dev/null``, its standard output and error the node's standard output (the one log; its level comes with
    the hello, :attr:`WorkerSettings.log_level`)."""

    def spawn(client: WorkerClient) -> _WorkerProcess:
        process = _WorkerProcess(client)
        node_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        nothing = os.open(os.devnull, os.O_RDONLY)
        try:
            transport = reactor.spawnProcess(
                process, sys.executable, [sys.executable, "-m", "media.worker"], env=dict(os.environ),
                path=os.getcwd(), childFDs={0: nothing, 1: 1, 2: 1, CHANNEL_FD: worker_end.fileno()})
            process.pid = transport.pid
        except BaseException:
            node_end.close()
            raise
        finally:
            os.close(nothing)
            worker_end.close()         # the worker holds its own
        process.attach(reactor, node_end)
        return process

    return spawn
