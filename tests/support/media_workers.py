"""Media workers without processes (no tests here): the node's :class:`media.workers.WorkerEngine` wired in
memory to :class:`media.worker.WorkerServer` s, each running a :class:`media.engine.LocalEngine`.

Bytes go both ways at once, through the real codec (:mod:`media.control`), and
the worker's engine runs on the test's Clock and reactor: a call's media on this
engine is the very thing a node with ``[media] workers`` runs, but its
"process" is a :class:`MemoryLink` that a test can kill, or make deaf.
"""

from __future__ import annotations

import os
from typing import Callable

from media.control import ControlError
from media.engine import LocalEngine
from media.relay import MediaSession
from media.worker import WorkerServer
from media.workers import WorkerClient, WorkerEngine, WorkerSession, WorkerSettings


class MemoryLink:
    """One worker "process": the client's bytes into its server and back, synchronously."""

    def __init__(self, client: WorkerClient, make_engine: Callable[[dict], LocalEngine], pid: int) -> None:
        self.pid = pid
        self.client = client
        self.server = WorkerServer(make_engine, self._to_client, pid, clock=client.engine.clock)
        #: the filter of this worker's log (as media.worker.main gives its observer)
        self.levels = self.server.levels
        self.alive = True
        #: a deaf worker reads nothing more (a hung process): its requests miss their deadline
        self.deaf = False

    def write(self, data: bytes, socks=()) -> None:
        """The frame to the worker, ``socks`` ahead of it as SCM_RIGHTS does: the worker gets duplicates of the
        descriptors (the node closes its own)."""
        if not self.alive or self.deaf:
            return
        for sock in socks:
            self.server.descriptor_received(os.dup(sock.fileno()))
        try:
            self.server.data_received(data)
        except ControlError:
            self.kill()

    def _to_client(self, data: bytes) -> None:
        if self.alive:
            self.client.data_received(data)

    def kill(self) -> None:
        """SIGKILL: the worker's sockets close, the node hears that it ended."""
        if self.alive:
            self.alive = False
            self.server.close()
            self.client.lost("killed")


class MemorySpawner:
    """``spawn`` for :class:`WorkerEngine`: every worker a :class:`MemoryLink` on ``make_engine``."""

    def __init__(self, make_engine: Callable[[dict], LocalEngine]) -> None:
        self.make_engine = make_engine
        self.links: list[MemoryLink] = []
        #: workers started from now on hang at once: they never read their hello
        self.hang = False

    def __call__(self, client: WorkerClient) -> MemoryLink:
        link = MemoryLink(client, self.make_engine, 1000 + len(self.links))
        link.deaf = self.hang
        self.links.append(link)
        return link


def memory_engine(clock, address: str, port_min: int, port_max: int, make_engine: Callable[[dict], LocalEngine],
                  workers: int = 1, silence_timeout_s: int = 60) -> tuple[WorkerEngine, MemorySpawner]:
    """A started WorkerEngine of ``workers`` in-memory workers on ``clock``."""
    spawner = MemorySpawner(make_engine)
    engine = WorkerEngine(clock, WorkerSettings(address, silence_timeout_s), port_min, port_max, workers, spawner,
                          clock=clock)
    started = engine.start()
    failures: list = []
    started.addErrback(failures.append)
    if failures:
        failures[0].raiseException()
    return engine, spawner


def worker_relay_session(session: WorkerSession) -> MediaSession:
    """The relay's session in the worker that runs ``session``."""
    server = session.client.link.server
    return server.sessions[session.sid].media
