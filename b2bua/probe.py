"""Probing agents with OPTIONS: agents that do not answer are tried last.

Every ``interval_s`` seconds :class:`AgentProber` sends one OPTIONS to each
distinct agent URI of every profile (one probe per agent at a time: an agent
whose last probe is still pending is skipped).  The verdict is
:func:`alive_after`: a timeout, a transport failure or a 5xx puts the agent
into ``router.dead``; any other final answer (2xx, but also 404/405/486: the
agent is there) takes it out.  :class:`~b2bua.routing.Router` rings dead
agents last.

The call manager hands the prober the endpoint events of its transactions
(:meth:`AgentProber.on_event`, by transaction id); the timer runs on the
injected reactor.  Pinned by ``tests/b2bua/test_probe.py`` with plain bytes on a Clock.
"""

from __future__ import annotations

from typing import Callable, Iterable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .sip.endpoint import ResponseReceived, SipEndpoint, TransactionError, TransactionTimedOut, TransportFailed

log = Logger()


def alive_after(status: int | None) -> bool:
    """The verdict of one probe: ``status`` is the final answer, None when none came (timeout, transport)."""
    return status is not None and status < 500


class AgentProber:
    """Sends the OPTIONS probes and keeps ``router().dead`` up to date."""

    def __init__(self, *, endpoint: SipEndpoint, reactor: IReactorTime, router: Callable[[], object],
                 agents: Callable[[], Iterable[str]], interval_s: float,
                 flush: Callable[[], None] = lambda: None, from_uri: str = "sip:probe@invalid"):
        self.endpoint = endpoint
        self.reactor = reactor
        self._router = router
        self._agents = agents
        self.interval_s = interval_s
        self._flush = flush
        self._from = from_uri
        self._pending: dict[str, str] = {}       # transaction id -> agent
        self._timer: IDelayedCall | None = None
        self.sent = 0

    def start(self) -> None:
        """Probe every ``interval_s`` (0: never), the first round ``interval_s`` after start."""
        if self.interval_s > 0 and self._timer is None:
            self._timer = self.reactor.callLater(self.interval_s, self._tick)

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    @property
    def pending(self) -> int:
        """Probes sent and not answered yet."""
        return len(self._pending)

    def _tick(self) -> None:
        self._timer = self.reactor.callLater(self.interval_s, self._tick)
        self.probe_all()

    def probe_all(self) -> None:
        """One OPTIONS to every distinct agent that has no probe pending."""
        busy = set(self._pending.values())
        for agent in dict.fromkeys(self._agents()):
            if agent in busy:
                continue
            now = self.reactor.seconds()
            try:
                request = self.endpoint.make_request("OPTIONS", agent, from_=f"<{self._from}>", to=f"<{agent}>",
                                                     headers=[("Accept", "application/sdp")])
                tx_id = self.endpoint.send_request(request, now)
            except (TransactionError, ValueError) as exc:
                log.warn("cannot probe agent {agent}: {why}", agent=agent, why=str(exc))
                self._verdict(agent, None)
                continue
            self._pending[tx_id] = agent
            self.sent += 1
        self._flush()

    def on_event(self, event: object) -> bool:
        """An endpoint event; True when it was one of our probes (the manager then ignores it)."""
        if not isinstance(event, (ResponseReceived, TransactionTimedOut, TransportFailed)):
            return False
        tx_id = event.transaction_id
        agent = self._pending.get(tx_id)
        if agent is None:
            return False
        if isinstance(event, ResponseReceived):
            if event.response.status < 200:
                return True
            del self._pending[tx_id]
            self._verdict(agent, event.response.status)
        elif isinstance(event, (TransactionTimedOut, TransportFailed)):
            del self._pending[tx_id]
            self._verdict(agent, None)
        return True

    def _verdict(self, agent: str, status: int | None) -> None:
        dead = self._router().dead
        if alive_after(status):
            if agent in dead:
                log.info("agent {agent} answers OPTIONS again ({status})", agent=agent, status=status)
            dead.discard(agent)
        else:
            if agent not in dead:
                log.warn("agent {agent} fails OPTIONS ({status}): rung last", agent=agent,
                         status=status or "no answer")
            dead.add(agent)
