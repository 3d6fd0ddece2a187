"""The node's side of media workers (media.workers) against in-memory workers on a Clock: shares, deaths,
deadlines, refusals, restarts and figures; and one real worker process, for its control channel (a Unix socket,
nothing on stdin) and its death when the node's end closes (tests/sipp/test_media_workers.py runs a node)."""

from __future__ import annotations

import os
import socket

import pytest
from twisted.internet import process, reactor
from twisted.internet.task import Clock
from twisted.logger import LogLevel, PredicateResult, globalLogPublisher
from twisted.python import context
from twisted.python.log import ILogContext

from media.control import Decoder
from media.engine import LocalEngine, PlayPart
from media.ports import PortsExhausted
from media.worker import ACK_DELAY_S
from media.player import REPLACE, Player
from media.relay import Relay, RelayCounters
from media.sdp import Negotiated
from media.sounds import TONE, PromptLibraries, Sound
from media.workers import (DEADLINE_CHECK_S, HELLO_DEADLINE_S, MEDIA_FAILED, REQUEST_DEADLINE_S, RESTART_DELAY_MAX_S,
                           RESTART_DELAY_S, STATS_INTERVAL_S, WorkerEngine, WorkerFailed, WorkerSettings,
                           default_workers, port_shares, spawn_process)
from tests.support.callmedia import free_range
from tests.support.media_workers import memory_engine, worker_relay_session
from tests.support.relay import port_is_free, pump

LIBRARIES = PromptLibraries()


@pytest.fixture
def rig():
    """Two in-memory workers on a Clock, each on half of a free port range; closed after the test."""
    clock = Clock()
    clock.advance(1000)
    lo, hi = free_range(40)

    def make_engine(settings):
        relay = Relay(reactor, settings["address"], settings["port_min"], settings["port_max"],
                      settings["silence_timeout_s"], clock=clock)
        return LocalEngine(relay, Player(clock), LIBRARIES)
    engine, spawner = memory_engine(clock, "127.0.0.1", lo, hi, make_engine, workers=2)
    yield clock, engine, spawner
    engine.close()


@pytest.fixture
def errors():
    seen: list = []

    def observe(event):
        if event.get("log_level") is LogLevel.error:
            seen.append(event)
    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


def test_the_range_is_shared_in_whole_pairs_and_the_default_leaves_the_node_a_core():
    """Shares are even/odd pairs, back to back, as equal as they go; a share with no pair is refused."""
    assert port_shares(20000, 20011, 2) == [(20000, 20005), (20006, 20011)]
    assert port_shares(20001, 20012, 4) == [(20002, 20005), (20006, 20007), (20008, 20009), (20010, 20011)]
    with pytest.raises(ValueError):
        port_shares(20000, 20003, 3)
    assert (default_workers(1), default_workers(2), default_workers(8)) == (1, 1, 7)


def test_calls_go_to_the_worker_with_most_free_pairs_and_bind_the_pair_the_node_chose(rig):
    """The node writes the ports into SDP before the worker answers; the worker binds exactly them."""
    clock, engine, spawner = rig
    first = engine.open_session("c1", "de", "")
    second = engine.open_session("c2", "de", "")
    assert first.client is not second.client
    for session in (first, second):
        bound = session.client.link.server.sessions[session.sid].media
        assert bound.leg_a.local_port == session.a_port
        assert session.client.share[0] <= session.a_port <= session.client.share[1]
        port = session.bind_b()
        assert bound.leg_b.local_port == port
    assert engine.counters().sessions_open == 2


def test_a_worker_that_dies_fails_each_of_its_calls_once_logs_once_and_is_restarted(rig, errors):
    """Killing a worker: its two calls hear media_failed at once (the other worker's call nothing), one error
    line names the pid and the calls, and after RESTART_DELAY_S a new worker serves the same share."""
    clock, engine, spawner = rig
    failed: list = []
    sessions = [engine.open_session(f"c{i}", "de", "", on_failed=lambda r, i=i: failed.append((i, r)))
                for i in range(4)]
    victim = sessions[0].client
    link = victim.link
    on_victim = sorted(i for i, s in enumerate(sessions) if s.client is victim)
    link.kill()
    assert failed == [(i, MEDIA_FAILED) for i in on_victim]
    died = [e for e in errors if "died" in e.get("log_format", "")]
    assert len(died) == 1 and died[0]["pid"] == link.pid and died[0]["calls"] == 2
    for s in sessions:
        s.close()                               # the calls close their media: nothing is sent to the dead
    clock.advance(RESTART_DELAY_S)
    assert engine.restarts == 1 and engine.clients[victim.slot].ready
    assert engine.clients[victim.slot].share == victim.share
    again = [engine.open_session(f"d{i}", "de", "") for i in range(2)]
    assert {s.client.slot for s in again} == {0, 1}


def test_a_worker_that_misses_a_deadline_is_killed_and_its_calls_fail(rig, errors):
    """A hung worker (it reads nothing more): the request's deadline passes, the worker is killed, its call
    fails, and a new worker takes the share."""
    clock, engine, spawner = rig
    failed: list = []
    session = engine.open_session("c1", "de", "", on_failed=failed.append)
    session.client.link.deaf = True
    session.configure_leg("a", _negotiated())
    clock.advance(REQUEST_DEADLINE_S)
    assert failed == []
    clock.advance(2 * DEADLINE_CHECK_S)
    assert failed == [MEDIA_FAILED]
    # one line for the one failure: why it was killed (the end of its process and channel add nothing)
    [died] = errors
    assert "died" in died["log_format"] and "did not answer the configure request in time" in died["why"]
    clock.advance(RESTART_DELAY_S)
    assert engine.restarts == 1


def _hold_all_but_the_next_pair(client, ours: tuple[int, ...] = ()) -> tuple[int, list[socket.socket]]:
    """Foreign sockets on every pair of ``client``'s share but one, the one its range would give last, and those
    its calls hold (``ours``): the pair the node takes first is held by "another process". Returns the free pair
    and the holders."""
    last = client.ports.take()
    client.ports.give_back(last)            # to the back of the queue: every other pair comes before it
    holders = []
    for port in range(client.share[0], client.share[1], 2):
        if port != last and port not in ours:
            holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            holder.bind(("127.0.0.1", port))
            holders.append(holder)
    return last, holders


def test_pairs_another_process_holds_are_skipped_and_the_call_gets_a_free_one(rig, errors):
    """The node binds a call's pair itself: pairs held by another process (a node stopped a moment ago) are
    skipped at once, the call gets the one free pair of the share in its SDP and the worker runs the call on that
    very socket; once the call is closed and the worker answered, neither process holds the pair any more."""
    clock, engine, spawner = rig
    client = engine.clients[0]
    free, holders = _hold_all_but_the_next_pair(client)
    try:
        failed: list = []
        session = client.open("c1", "de", "", lambda leg, at: None, lambda leg, d, e: None, failed.append)
        assert session.a_port == free
        clock.advance(0)
        assert failed == [] and not session.closed and errors == []
        assert client.link.server.sessions[session.sid].media.leg_a.local_port == free
        assert not port_is_free(free)
        session.close()
        clock.advance(ACK_DELAY_S)
        assert port_is_free(free)          # the worker's socket and the node's copy are both closed
    finally:
        for holder in holders:
            holder.close()


def test_a_share_whose_pairs_are_all_held_refuses_the_call_at_once(rig):
    """Every pair of the share held by another process: open raises PortsExhausted before any SDP is written
    (the call is refused, as in process), and nothing is left taken on either side."""
    clock, engine, spawner = rig
    client = engine.clients[0]
    holders = []
    for port in range(client.share[0], client.share[1], 2):
        holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        holder.bind(("127.0.0.1", port))
        holders.append(holder)
    try:
        with pytest.raises(PortsExhausted):
            client.open("c1", "de", "", lambda leg, at: None, lambda leg, d, e: None, lambda reason: None)
        assert client.ports.in_use == 0 and client.sessions == {} and client.link.server.sessions == {}
    finally:
        for holder in holders:
            holder.close()


def test_the_figures_sum_the_workers_last_stats_and_keep_what_a_dead_worker_counted(rig):
    """counters() sums each worker's last stats answer; a worker's counts outlive it."""
    clock, engine, spawner = rig
    for link in spawner.links:          # as if each had relayed 10 packets
        link.server.engine.counters = lambda: RelayCounters(10, 0, 0, 0, 0, 0, 0)
    clock.advance(STATS_INTERVAL_S)
    assert engine.counters().packets_relayed == 20
    spawner.links[0].kill()
    assert engine.counters().packets_relayed == 20
    assert engine.counters().port_pairs_free == engine.clients[1].ports.size


def test_a_worker_that_cannot_load_its_prompts_does_not_start():
    """The worker's hello says why it cannot serve (a bad prompt): start() fails with that reason."""
    clock = Clock()

    def make_engine(settings):
        raise ValueError("prompts folder /nowhere cannot be read")
    failures: list = []
    with pytest.raises(WorkerFailed, match="/nowhere"):
        memory_engine(clock, "127.0.0.1", 41000, 41099, make_engine)
    assert failures == []


def test_successes_are_told_together_within_the_ack_delay(rig):
    """Requests that succeed with nothing to say are acknowledged by one answer within ACK_DELAY_S: until then
    they are open (a hung worker would miss their deadline), after it none is."""
    clock, engine, spawner = rig
    session = engine.open_session("c1", "de", "")
    session.configure_leg("a", _negotiated())
    client = session.client
    late = clock.seconds() + REQUEST_DEADLINE_S + 1
    assert client.overdue(late) == "the open request"
    clock.advance(ACK_DELAY_S)
    assert client.overdue(late) is None


def test_a_call_ends_with_a_stop_request_only_while_a_playback_of_ours_is_not_over(rig):
    """A call's end is stop then close: the worker is asked to stop only while something the node played there
    is not over (it plays nothing else), so a call that played nothing ends with one request, close."""
    clock, engine, spawner = rig
    quiet = engine.open_session("c1", "de", "")
    ops = _ops_sent(quiet.client.link)
    quiet.stop()
    quiet.close()
    assert ops == ["close"]

    ringing = engine.open_session("c2", "de", "")
    ops = _ops_sent(ringing.client.link)
    play = ringing.play([PlayPart("a", Sound(TONE, name="warning"), REPLACE)], loop=True)
    done: list = []
    play.done.addCallback(done.append)
    ringing.stop()
    assert ops == ["play", "stop"] and done == [False]
    ringing.stop()                  # over now: nothing more to stop
    ringing.close()
    assert ops == ["play", "stop", "close"]


def _ops_sent(link) -> list[str]:
    """The ops of the requests the node writes to this in-memory worker from now on."""
    ops: list[str] = []
    decoder, write = Decoder(), link.write

    def spy(data: bytes, *socks) -> None:
        ops.extend(message.op for message in decoder.feed(data))
        write(data, *socks)
    link.write = spy
    return ops


def test_a_restarted_worker_that_dies_at_once_waits_twice_as_long_each_time(rig):
    """A worker that cannot run does not spin: the first restart comes after RESTART_DELAY_S, a restarted one
    that dies within STABLE_S waits twice the last pause; one that ran STABLE_S is restarted after the first
    pause again."""
    from media.workers import STABLE_S
    clock, engine, spawner = rig
    engine.clients[0].link.kill()
    clock.advance(RESTART_DELAY_S)
    assert engine.restarts == 1
    engine.clients[0].link.kill()
    clock.advance(RESTART_DELAY_S)
    assert engine.restarts == 1
    clock.advance(RESTART_DELAY_S)
    assert engine.restarts == 2
    clock.advance(STABLE_S)
    engine.clients[0].link.kill()
    clock.advance(RESTART_DELAY_S)
    assert engine.restarts == 3


def test_agent_legs_skip_held_pairs_too(rig):
    """bind_b as open: a pair another process holds is skipped, the agent leg gets the free one and the worker
    binds nothing itself."""
    clock, engine, spawner = rig
    failed: list = []
    session = engine.open_session("c1", "de", "", on_failed=failed.append)
    free, holders = _hold_all_but_the_next_pair(session.client, (session.a_port,))
    try:
        assert session.bind_b() == free
        clock.advance(ACK_DELAY_S)
        assert failed == [] and worker_relay_session(session).leg_b.local_port == free
    finally:
        for holder in holders:
            holder.close()


def _fails_to_start(spawner, how: str) -> None:
    if how == "hangs":
        spawner.hang = True
    else:
        def refuse(settings):
            raise ValueError("prompts folder /nowhere cannot be read")
        spawner.make_engine = refuse


@pytest.mark.parametrize("how", ["hangs", "refuses"])
def test_a_worker_that_cannot_start_is_tried_again_ever_later_with_one_line_per_attempt(rig, errors, how):
    """A worker whose restarts never say hello (it hangs until HELLO_DEADLINE_S, or its hello refuses): each
    attempt waits twice the last pause, from RESTART_DELAY_S up to RESTART_DELAY_MAX_S (never having served, it is
    never "stable", however long its hello's deadline let it live), and each is one error line with that pause."""
    clock, engine, spawner = rig
    engine.clients[0].link.kill()
    _fails_to_start(spawner, how)
    pauses = []
    for attempt in range(8):
        clock.advance(errors[-1]["delay_s"])            # the pause the last line announced: the next attempt
        assert engine.restarts == attempt + 1
        deadline_s = clock.seconds() + HELLO_DEADLINE_S + 2 * DEADLINE_CHECK_S
        while len(errors) == attempt + 1 and clock.seconds() < deadline_s:
            clock.advance(DEADLINE_CHECK_S)             # a hung one: until its hello's deadline
        assert len(errors) == attempt + 2               # one line for this attempt
        assert "did not start" in errors[-1]["log_format"] and errors[-1]["pid"] == spawner.links[-1].pid
        pauses.append(errors[-1]["delay_s"])
    assert pauses == [min(RESTART_DELAY_S * 2 ** n, RESTART_DELAY_MAX_S) for n in range(1, 9)]
    assert not engine.clients[0].ready and engine.clients[1].ready


def test_a_new_log_level_reaches_every_live_worker_and_the_hello_of_a_restarted_one(rig):
    """set_log_level (a reload of ``[node] log_level``): each running worker's log filter lets debug lines through
    at once, and a worker started after it (a restart) says hello at that level; a level that is not one is refused
    by the node (nothing sent, so a later hello still starts) and by a worker (its filter stays)."""
    clock, engine, spawner = rig
    debug = {"log_level": LogLevel.debug, "log_namespace": "media.worker"}
    assert [link.levels(debug) for link in spawner.links] == [PredicateResult.no] * 2      # the hello's "info"
    engine.set_log_level("debug")
    assert [link.levels(debug) for link in spawner.links] == [PredicateResult.maybe] * 2
    spawner.links[0].kill()
    clock.advance(RESTART_DELAY_S)
    assert engine.clients[0].ready and spawner.links[-1].levels(debug) == PredicateResult.maybe
    with pytest.raises(ValueError):
        engine.set_log_level("chatty")
    assert engine.settings.log_level == "debug"
    refused: list = []
    engine.clients[0].request("log_level", lambda error, op: refused.append(error), level="chatty")
    assert len(refused) == 1 and "chatty" in refused[0]
    assert spawner.links[-1].levels(debug) == PredicateResult.maybe


def test_a_refused_agent_leg_fails_the_call_and_the_worker_lets_go_of_its_carrier_leg(rig):
    """The worker refuses leg b's pair (its range says the pair is not free: a bug on one side): the call fails
    (media_failed) and the worker is told to close the session, so the carrier leg's pair is free on both sides
    and the refused pair's sockets are closed in both processes."""
    clock, engine, spawner = rig
    failed: list = []
    session = engine.open_session("c1", "de", "", on_failed=failed.append)
    client = session.client
    worker_ports = client.link.server.engine.relay.ports
    for port in range(client.share[0], client.share[1], 2):
        if port != session.a_port:
            worker_ports.claim(port)
    port = session.bind_b()
    clock.advance(0)
    assert failed == [MEDIA_FAILED] and client.link.server.sessions == {} and client.ports.in_use == 0
    assert port_is_free(port) and port_is_free(session.a_port)


def test_a_real_worker_talks_over_a_unix_socket_and_dies_to_the_node_when_the_nodes_end_closes(errors):
    """spawn_process: the worker says hello over a Unix stream socket (the node's end), and the node's start goes on
    in the node's log context, not the channel's; its stdin is /dev/null and its stdout/stderr are the node's stdout; closing the node's end of the channel is the worker's death at once
    (logged once, "its control channel closed") and its process is ended."""
    lo, hi = free_range(20)
    engine = WorkerEngine(reactor, WorkerSettings("127.0.0.1", 60), lo, hi, 1, spawn_process(reactor))
    started: list = []
    systems: list = []      # the log system of what follows the start: the node's own ("-"), not the channel's
    engine.start().addBoth(started.append).addBoth(lambda _: systems.append(context.get(ILogContext)["system"]))
    try:
        pump(lambda: started, 20)
        assert started == [engine] and systems == ["-"]
        client = engine.clients[0]
        channel = client.link.channel.socket
        assert (channel.family, channel.type) == (socket.AF_UNIX, socket.SOCK_STREAM)
        assert os.readlink(f"/proc/{client.pid}/fd/0") == os.devnull
        for fd in (1, 2):
            assert os.readlink(f"/proc/{client.pid}/fd/{fd}") == os.readlink("/proc/self/fd/1")

        client.link.channel.socket.shutdown(socket.SHUT_RDWR)      # the channel broke
        pump(lambda: client.dead, 2)
        died = [e for e in errors if "died" in e.get("log_format", "")]
        assert client.dead and len(died) == 1 and "its control channel closed" in died[0]["why"]

        def ended() -> bool:
            process.reapAllProcesses()      # the reactor is not run here: no SIGCHLD handler reaps for us
            return client.link.transport.pid is None
        pump(ended, 5)
        assert ended()
    finally:
        engine.close()


def test_a_real_worker_runs_the_call_on_the_pair_the_node_bound_past_held_ones():
    """A real worker process: the pairs of its share that a foreign socket holds are skipped by the node, the
    worker is given the free pair's sockets over its Unix channel (SCM_RIGHTS) and runs the call's media on them
    (its silence fill reaches the carrier from that very port); once the call is closed, neither process holds
    the pair."""
    lo, hi = free_range(20)
    engine = WorkerEngine(reactor, WorkerSettings("127.0.0.1", 60), lo, hi, 1, spawn_process(reactor))
    started: list = []
    engine.start().addBoth(started.append)
    ear = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ear.bind(("127.0.0.1", 0))
    ear.setblocking(False)
    holders: list = []
    try:
        pump(lambda: started, 20)
        assert started == [engine]
        client = engine.clients[0]
        free, holders = _hold_all_but_the_next_pair(client)
        failed: list = []
        session = engine.open_session("c1", "de", "", on_failed=failed.append)
        assert session.a_port == free
        ear_port = ear.getsockname()[1]
        session.configure_leg("a", Negotiated("PCMA", 8, 101, "127.0.0.1", ear_port, ear_port + 1, "sendrecv"))
        sources: list = []

        def heard() -> list:
            try:
                sources.append(ear.recvfrom(2048)[1])
            except BlockingIOError:
                pass
            return sources
        pump(heard, 5)
        assert sources[:1] == [("127.0.0.1", free)] and failed == []
        session.close()
        pump(lambda: port_is_free(free), 5)
        assert port_is_free(free) and failed == []
    finally:
        for holder in holders:
            holder.close()
        ear.close()
        engine.close()
        if engine.clients:
            _reaped(engine.clients[0])


def _reaped(client) -> None:
    """The worker's process ended and reaped (the reactor is not run here: no SIGCHLD handler reaps for us)."""
    def ended() -> bool:
        process.reapAllProcesses()
        return client.link.transport.pid is None
    pump(ended, 5)


def _negotiated():
    return Negotiated("PCMA", 8, 101, "127.0.0.1", 41000, 41001, "sendrecv")
