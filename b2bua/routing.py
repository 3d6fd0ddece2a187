"""Routing: which billing profile a dialled service number reaches, and which agent to ring next.

:class:`Router` maps the Request-URI's user part, in any of the forms carriers
send (``+4930...``, ``004930...``, ``030...``), to a profile; an unknown
number is a 404.  :class:`AgentHunt` is the per-call hunting state: agents are
tried in order or round-robin, each for the profile's ring timeout; busy (486),
unavailable (480, 503, other failures), no answer (the ring timeout) and
unreachable (transport error, 408) move on to the next.  When none is left, the
carrier gets 486 if every agent was busy, else 480.

Both are sans-I/O: the call controller tells the hunt what happened and asks
what to do next.  Tests pin the number forms, both orders, the final status
codes, and that agents marked dead by OPTIONS probing are skipped.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Iterable, Protocol

from billing.numbers import normalise


class Outcome(enum.Enum):
    """How one agent's attempt ended."""

    ANSWERED = "answered"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"
    NO_ANSWER = "no_answer"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


def outcome_of_status(status: int) -> Outcome:
    """The hunting outcome of an agent's final response ``status``."""
    if 200 <= status < 300:
        return Outcome.ANSWERED
    if status in (486, 600):
        return Outcome.BUSY
    if status == 487:
        return Outcome.CANCELLED
    if status == 408:
        return Outcome.NO_ANSWER
    return Outcome.UNAVAILABLE


class RoutableProfile(Protocol):
    """What routing needs of a config profile (``b2bua.node.config.Profile`` provides it)."""

    name: str
    service_numbers: tuple[str, ...]
    agents: tuple[str, ...]
    hunting: str
    ring_timeout_s: int


@dataclass(frozen=True, slots=True)
class Route:
    """The profile a call reached, the E.164 number dialled, and the agents in the order to try (slotted: a
    held call keeps its route, and with AgentHunt, 271 B a call instead of 314, tracemalloc)."""

    profile: RoutableProfile
    service_number: str
    agents: tuple[str, ...]
    ring_timeout_s: int


class Router:
    """Service number -> profile, with a round-robin cursor per profile.

    ``dead`` is the set of agent URIs that OPTIONS probing found unreachable;
    they are put last (still tried when nothing else is left, since a probe can
    be wrong and an unanswered call is worse than a slow one).
    """

    def __init__(self, profiles: Iterable[RoutableProfile], default_region: str = "DE"):
        self._default_region = default_region
        self._by_number: dict[str, RoutableProfile] = {}
        for profile in profiles:
            for number in profile.service_numbers:
                self._by_number[number] = profile
        self._cursors: dict[str, itertools.count] = {}
        self.dead: set[str] = set()

    def route(self, dialled: str) -> Route | None:
        """The route for the dialled ``dialled`` user part, or None (the caller gets 404)."""
        number = normalise(dialled, self._default_region)
        if number is None:
            return None
        profile = self._by_number.get(number)
        if profile is None:
            return None
        agents = tuple(profile.agents)
        if profile.hunting == "round_robin" and len(agents) > 1:
            cursor = self._cursors.setdefault(profile.name, itertools.count())
            start = next(cursor) % len(agents)
            agents = agents[start:] + agents[:start]
        live = tuple(a for a in agents if a not in self.dead)
        agents = live + tuple(a for a in agents if a in self.dead)
        return Route(profile, number, agents, profile.ring_timeout_s)


class AgentHunt:
    """One call's walk through its route's agents (slotted: a held call keeps it, as :class:`Route`)."""

    __slots__ = ("_agents", "ring_timeout_s", "tried", "_current")

    def __init__(self, route: Route):
        self._agents = list(route.agents)
        self.ring_timeout_s = route.ring_timeout_s
        self.tried: list[tuple[str, Outcome]] = []
        self._current: str | None = None

    def next_agent(self) -> str | None:
        """The next agent to ring, or None when every one has been tried."""
        if self._current is not None:
            raise RuntimeError("the current attempt has no outcome yet")
        if len(self.tried) >= len(self._agents):
            return None
        self._current = self._agents[len(self.tried)]
        return self._current

    def has_next(self) -> bool:
        """Whether an agent is left to try after the current attempt."""
        return len(self.tried) + (self._current is not None) < len(self._agents)

    @property
    def current(self) -> str | None:
        """The agent being rung now, if any."""
        return self._current

    def record(self, outcome: Outcome) -> None:
        """What became of the agent last returned by :meth:`next_agent`."""
        if self._current is None:
            raise RuntimeError("no attempt in progress")
        self.tried.append((self._current, outcome))
        self._current = None

    @property
    def answered_by(self) -> str | None:
        for agent, outcome in self.tried:
            if outcome is Outcome.ANSWERED:
                return agent
        return None

    def final_status(self) -> int:
        """The carrier's answer when nobody answered: 486 when all were busy, else 480."""
        if self.tried and all(outcome is Outcome.BUSY for _, outcome in self.tried):
            return 486
        return 480
