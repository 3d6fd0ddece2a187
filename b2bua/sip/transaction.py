"""The four transaction state machines of RFC 3261 §17, with RFC 6026's changes, as tables.

Each machine is one mapping ``(State, Input) -> Step(next_state, actions)``
that reads like the RFC figure:

* client INVITE — RFC 6026 figure 5 (RFC 3261 figure 5 with "Accepted", timer M)
* client non-INVITE — RFC 3261 figure 6
* server INVITE — RFC 6026 figure 7 (RFC 3261 figure 7 with "Accepted", timer L), plus the
  "Refused" state: a 300-699 the TU sends once (RFC 3261 §8.2.7, §17.2.1), not retransmitted by G
* server non-INVITE — RFC 3261 figure 8

An input that is not in a table is absorbed (a 1xx after the final response, a
request retransmission in Trying...), as the RFC text says.  Actions are the
figure's labels (send request, ACK sent, response to TU...) plus the timer
starts the RFC text prescribes (``START_x``, ``RESTART_x``).  Timers that do not
belong to the new state are cancelled on every transition (:data:`STATE_TIMERS`),
so a reader need not look for "stop timer" actions.

:class:`TransactionMachine` runs one table with absolute deadlines: it never
reads a clock, every call takes ``now``.  It knows nothing of messages; the
transaction layer (:mod:`b2bua.sip.transactions`) turns its actions into bytes
and events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from b2bua.sip.timers import DEFAULT_TIMERS, RETRANSMIT_TIMERS, Timer, TimerValues


class Kind(enum.Enum):
    __hash__ = object.__hash__  # identity, as == is: see Timer (Enum's __hash__ is Python code)

    INVITE_CLIENT = "invite client"
    NON_INVITE_CLIENT = "non-invite client"
    INVITE_SERVER = "invite server"
    NON_INVITE_SERVER = "non-invite server"

    @property
    def is_client(self) -> bool:
        return self in (Kind.INVITE_CLIENT, Kind.NON_INVITE_CLIENT)

    @property
    def is_invite(self) -> bool:
        return self in (Kind.INVITE_CLIENT, Kind.INVITE_SERVER)


class State(enum.Enum):
    __hash__ = object.__hash__  # identity, as == is: see Timer (Enum's __hash__ is Python code)

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    REFUSED = "Refused"        # server INVITE: a 300-699 sent once; see INVITE_SERVER
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class Input(enum.Enum):
    __hash__ = object.__hash__  # identity, as == is: see Timer (Enum's __hash__ is Python code)

    # from the transport layer (client side: responses; server side: requests)
    RESPONSE_1XX = "1xx"
    RESPONSE_2XX = "2xx"
    RESPONSE_300_699 = "300-699"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TRANSPORT_ERROR = "transport error"
    # from the transaction user (server side)
    TU_1XX = "1xx from TU"
    TU_2XX = "2xx from TU"
    TU_300_699 = "300-699 from TU"
    TU_300_699_ONCE = "300-699 from TU, sent once"
    # timers
    TIMER_A = "Timer A"
    TIMER_B = "Timer B"
    TIMER_D = "Timer D"
    TIMER_E = "Timer E"
    TIMER_F = "Timer F"
    TIMER_G = "Timer G"
    TIMER_H = "Timer H"
    TIMER_I = "Timer I"
    TIMER_J = "Timer J"
    TIMER_K = "Timer K"
    TIMER_L = "Timer L"
    TIMER_M = "Timer M"


TIMER_INPUT = {timer: Input["TIMER_" + timer.value] for timer in Timer}


class Action(enum.Enum):
    __hash__ = object.__hash__  # identity, as == is: see Timer (Enum's __hash__ is Python code)

    # what the figures say
    SEND_REQUEST = "send request"            # (re)send the request this transaction was created with
    SEND_ACK = "send ACK"                    # the transaction's own ACK for a 300-699
    SEND_RESPONSE = "send response"          # (re)send the last response the TU gave
    RESPONSE_TO_TU = "response to TU"
    ACK_TO_TU = "ACK to TU"
    TIMEOUT_TO_TU = "inform TU: timeout"
    TRANSPORT_ERROR_TO_TU = "inform TU: transport error"
    # what the text says about timers
    START_A = "start A"
    START_B = "start B"
    START_D = "start D"
    START_E = "start E"
    START_F = "start F"
    START_G = "start G"
    START_H = "start H"
    START_I = "start I"
    START_J = "start J"
    START_K = "start K"
    START_L = "start L"
    START_M = "start M"
    RESTART_A = "restart A, doubled"
    RESTART_E = "restart E, doubled up to T2 (T2 in Proceeding)"
    RESTART_G = "restart G, doubled up to T2"

    @property
    def timer(self) -> Timer | None:
        """The timer a START_/RESTART_ action is about, else None."""
        if self.name.startswith(("START_", "RESTART_")):
            return Timer[self.name.rsplit("_", 1)[1]]
        return None


@dataclass(frozen=True)
class Step:
    """One row's right-hand side: where the machine goes and what it does, in order."""

    next_state: State
    actions: tuple[Action, ...] = ()


S, I, A = State, Input, Action  # short names make the tables readable

# RFC 6026 figure 5 (client INVITE).  In Calling, A (unreliable only) and B run.
INVITE_CLIENT: dict[tuple[State, Input], Step] = {
    (S.CALLING, I.TIMER_A): Step(S.CALLING, (A.SEND_REQUEST, A.RESTART_A)),
    (S.CALLING, I.TIMER_B): Step(S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.CALLING, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.CALLING, I.RESPONSE_1XX): Step(S.PROCEEDING, (A.RESPONSE_TO_TU,)),
    (S.CALLING, I.RESPONSE_2XX): Step(S.ACCEPTED, (A.RESPONSE_TO_TU, A.START_M)),
    (S.CALLING, I.RESPONSE_300_699): Step(S.COMPLETED, (A.SEND_ACK, A.RESPONSE_TO_TU, A.START_D)),
    (S.PROCEEDING, I.RESPONSE_1XX): Step(S.PROCEEDING, (A.RESPONSE_TO_TU,)),
    (S.PROCEEDING, I.RESPONSE_2XX): Step(S.ACCEPTED, (A.RESPONSE_TO_TU, A.START_M)),
    (S.PROCEEDING, I.RESPONSE_300_699): Step(S.COMPLETED, (A.SEND_ACK, A.RESPONSE_TO_TU, A.START_D)),
    (S.COMPLETED, I.RESPONSE_300_699): Step(S.COMPLETED, (A.SEND_ACK,)),
    (S.COMPLETED, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.COMPLETED, I.TIMER_D): Step(S.TERMINATED),
    (S.ACCEPTED, I.RESPONSE_2XX): Step(S.ACCEPTED, (A.RESPONSE_TO_TU,)),
    (S.ACCEPTED, I.TIMER_M): Step(S.TERMINATED),
}

# RFC 3261 figure 6 (client non-INVITE).  E (unreliable only) and F run in Trying and Proceeding.
NON_INVITE_CLIENT: dict[tuple[State, Input], Step] = {
    (S.TRYING, I.TIMER_E): Step(S.TRYING, (A.SEND_REQUEST, A.RESTART_E)),
    (S.TRYING, I.TIMER_F): Step(S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.TRYING, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.TRYING, I.RESPONSE_1XX): Step(S.PROCEEDING, (A.RESPONSE_TO_TU,)),
    (S.TRYING, I.RESPONSE_2XX): Step(S.COMPLETED, (A.RESPONSE_TO_TU, A.START_K)),
    (S.TRYING, I.RESPONSE_300_699): Step(S.COMPLETED, (A.RESPONSE_TO_TU, A.START_K)),
    (S.PROCEEDING, I.TIMER_E): Step(S.PROCEEDING, (A.SEND_REQUEST, A.RESTART_E)),
    (S.PROCEEDING, I.RESPONSE_1XX): Step(S.PROCEEDING, (A.RESPONSE_TO_TU,)),
    (S.PROCEEDING, I.TIMER_F): Step(S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.PROCEEDING, I.RESPONSE_2XX): Step(S.COMPLETED, (A.RESPONSE_TO_TU, A.START_K)),
    (S.PROCEEDING, I.RESPONSE_300_699): Step(S.COMPLETED, (A.RESPONSE_TO_TU, A.START_K)),
    (S.COMPLETED, I.TIMER_K): Step(S.TERMINATED),
}

# RFC 6026 figure 7 (server INVITE).
INVITE_SERVER: dict[tuple[State, Input], Step] = {
    (S.PROCEEDING, I.REQUEST): Step(S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_1XX): Step(S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.PROCEEDING, I.TU_2XX): Step(S.ACCEPTED, (A.SEND_RESPONSE, A.START_L)),
    (S.PROCEEDING, I.TU_300_699): Step(S.COMPLETED, (A.SEND_RESPONSE, A.START_G, A.START_H)),
    (S.COMPLETED, I.REQUEST): Step(S.COMPLETED, (A.SEND_RESPONSE,)),
    (S.COMPLETED, I.TIMER_G): Step(S.COMPLETED, (A.SEND_RESPONSE, A.RESTART_G)),
    (S.COMPLETED, I.ACK): Step(S.CONFIRMED, (A.START_I,)),
    (S.COMPLETED, I.TIMER_H): Step(S.TERMINATED, (A.TIMEOUT_TO_TU,)),
    (S.COMPLETED, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.CONFIRMED, I.TIMER_I): Step(S.TERMINATED),
    (S.ACCEPTED, I.REQUEST): Step(S.ACCEPTED),
    (S.ACCEPTED, I.ACK): Step(S.ACCEPTED, (A.ACK_TO_TU,)),
    (S.ACCEPTED, I.TU_2XX): Step(S.ACCEPTED, (A.SEND_RESPONSE,)),
    (S.ACCEPTED, I.TRANSPORT_ERROR): Step(S.ACCEPTED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.ACCEPTED, I.TIMER_L): Step(S.TERMINATED),
    # Not in the figure: a refusal the TU sends once (to a source that may be spoofed, every timer
    # retransmission would make us a reflector: ~10 responses per INVITE until H). RFC 3261 §8.2.7 lets a
    # UAS answer a request it rejects statelessly; a retransmitted INVITE still gets the response again
    # (one response per request received), and I (T4; 0 on streams) frees the transaction, or the ACK.
    (S.PROCEEDING, I.TU_300_699_ONCE): Step(S.REFUSED, (A.SEND_RESPONSE, A.START_I)),
    (S.REFUSED, I.REQUEST): Step(S.REFUSED, (A.SEND_RESPONSE,)),
    (S.REFUSED, I.ACK): Step(S.TERMINATED),
    (S.REFUSED, I.TIMER_I): Step(S.TERMINATED),
    (S.REFUSED, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
}

# RFC 3261 figure 8 (server non-INVITE).  A 2xx and a 300-699 from the TU are both "200-699".
NON_INVITE_SERVER: dict[tuple[State, Input], Step] = {
    (S.TRYING, I.TU_1XX): Step(S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.TRYING, I.TU_2XX): Step(S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.TRYING, I.TU_300_699): Step(S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.TU_1XX): Step(S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.REQUEST): Step(S.PROCEEDING, (A.SEND_RESPONSE,)),
    (S.PROCEEDING, I.TU_2XX): Step(S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.TU_300_699): Step(S.COMPLETED, (A.SEND_RESPONSE, A.START_J)),
    (S.PROCEEDING, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.COMPLETED, I.REQUEST): Step(S.COMPLETED, (A.SEND_RESPONSE,)),
    (S.COMPLETED, I.TRANSPORT_ERROR): Step(S.TERMINATED, (A.TRANSPORT_ERROR_TO_TU,)),
    (S.COMPLETED, I.TIMER_J): Step(S.TERMINATED),
}

TABLES: dict[Kind, dict[tuple[State, Input], Step]] = {
    Kind.INVITE_CLIENT: INVITE_CLIENT,
    Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    Kind.INVITE_SERVER: INVITE_SERVER,
    Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
}

# The entry arrow of each figure: the state a new transaction starts in and what it does first.
# A new server INVITE transaction also answers 100 Trying: the layer does that, since it
# builds the response (we send it at once rather than after 200 ms: it is cheap here).
INITIAL: dict[Kind, Step] = {
    Kind.INVITE_CLIENT: Step(S.CALLING, (A.SEND_REQUEST, A.START_A, A.START_B)),
    Kind.NON_INVITE_CLIENT: Step(S.TRYING, (A.SEND_REQUEST, A.START_E, A.START_F)),
    Kind.INVITE_SERVER: Step(S.PROCEEDING),
    Kind.NON_INVITE_SERVER: Step(S.TRYING),
}

# Which timers live in which state; every other timer is cancelled on entering it.
STATE_TIMERS: dict[Kind, dict[State, frozenset[Timer]]] = {
    Kind.INVITE_CLIENT: {S.CALLING: frozenset({Timer.A, Timer.B}), S.COMPLETED: frozenset({Timer.D}),
                         S.ACCEPTED: frozenset({Timer.M})},
    Kind.NON_INVITE_CLIENT: {S.TRYING: frozenset({Timer.E, Timer.F}),
                             S.PROCEEDING: frozenset({Timer.E, Timer.F}), S.COMPLETED: frozenset({Timer.K})},
    Kind.INVITE_SERVER: {S.COMPLETED: frozenset({Timer.G, Timer.H}), S.CONFIRMED: frozenset({Timer.I}),
                         S.REFUSED: frozenset({Timer.I}), S.ACCEPTED: frozenset({Timer.L})},
    Kind.NON_INVITE_SERVER: {S.COMPLETED: frozenset({Timer.J})},
}

del S, I, A

# What each action does to timers, worked out once (the property reads the name each time).
_TIMER_OF: dict[Action, Timer | None] = {action: action.timer for action in Action}
_RESTARTS = frozenset(action for action in Action if action.name.startswith("RESTART_"))
_NO_TIMERS: frozenset[Timer] = frozenset()


def response_input(status: int, *, from_tu: bool, once: bool = False) -> Input:
    """Classify a status code as the tables' input (1xx, 2xx, 300-699; ``once``: a 300-699 sent once)."""
    if not 100 <= status <= 699:
        raise ValueError(f"status {status} is not a SIP status code")
    if once:
        if not (from_tu and status >= 300):
            raise ValueError(f"only a 300-699 from the TU may be sent once, not {status}")
        return Input.TU_300_699_ONCE
    if status < 200:
        return Input.TU_1XX if from_tu else Input.RESPONSE_1XX
    if status < 300:
        return Input.TU_2XX if from_tu else Input.RESPONSE_2XX
    return Input.TU_300_699 if from_tu else Input.RESPONSE_300_699


@dataclass(slots=True)
class TransactionMachine:
    """One running transaction: its state, its timers as absolute deadlines, and its table.

    :meth:`start` and :meth:`feed` return the non-timer actions for the
    transaction layer to carry out, in order; timer actions are applied here.
    A timer of zero length (D, I, J, K on streams) fires at once, inside the
    same call, so a reliable transaction ends without waiting for a tick.
    """

    kind: Kind
    reliable: bool
    timer_values: TimerValues = DEFAULT_TIMERS
    state: State = field(init=False)
    deadlines: dict[Timer, float] = field(init=False, default_factory=dict)
    #: the current interval of the machine's retransmission timer: each kind has one at most (A, E or G), so a
    #: float, not a dict per transaction (~220 B of each call's INVITE transaction, held 32 s after its answer)
    interval_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.state = INITIAL[self.kind].next_state

    @property
    def table(self) -> dict[tuple[State, Input], Step]:
        return TABLES[self.kind]

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    def start(self, now: float) -> list[Action]:
        """Enter the initial state: the figure's entry arrow."""
        return self._apply(INITIAL[self.kind], now)

    def feed(self, inp: Input, now: float) -> list[Action]:
        """Run one input; unknown (state, input) pairs are absorbed and return no actions."""
        step = self.table.get((self.state, inp))
        if step is None:
            return []
        return self._apply(step, now)

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values(), default=None)

    def fire_due(self, now: float) -> list[Action]:
        """Fire every timer whose deadline is at or before ``now``, earliest first."""
        actions: list[Action] = []
        while not self.terminated:
            due = [(deadline, timer.value, timer) for timer, deadline in self.deadlines.items() if deadline <= now]
            if not due:
                break
            deadline, _, timer = min(due)
            del self.deadlines[timer]
            actions.extend(self._fire(timer, deadline))
        return actions

    def _fire(self, timer: Timer, at: float) -> list[Action]:
        step = self.table.get((self.state, TIMER_INPUT[timer]))
        if step is None:
            return []
        return self._apply(step, at)

    def _apply(self, step: Step, now: float) -> list[Action]:
        self.state = step.next_state
        if self.deadlines:
            alive = STATE_TIMERS[self.kind].get(self.state, _NO_TIMERS)
            for timer in [t for t in self.deadlines if t not in alive]:
                del self.deadlines[timer]
        out: list[Action] = []
        fire_now: list[Timer] = []
        for action in step.actions:
            timer = _TIMER_OF[action]
            if timer is None:
                out.append(action)
            elif action in _RESTARTS:
                interval = self.timer_values.next_interval(
                    timer, self.interval_s, proceeding=self.state is State.PROCEEDING)
                self.interval_s = interval
                self.deadlines[timer] = now + interval
            else:
                duration = self.timer_values.duration(timer, self.reliable)
                if duration is None:
                    continue
                if timer in RETRANSMIT_TIMERS:
                    self.interval_s = duration
                if duration <= 0:
                    fire_now.append(timer)
                else:
                    self.deadlines[timer] = now + duration
        for timer in fire_now:
            out.extend(self._fire(timer, now))
        if self.terminated:
            self.deadlines.clear()
        return out
