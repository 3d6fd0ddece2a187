"""One prepaid call: the controller that holds the carrier's leg and the agent's leg.

The controller relays call-control events between the A-leg (we are the
carrier's UAS) and the B-leg (we are the agent's UAC) through the table of
:mod:`b2bua.callstate`.  It does no SIP itself: the legs (``b2bua.legs``) turn
its orders into SIP and report what their peers did as call events
(:mod:`b2bua.callevents`, taken in by :meth:`Call.handle`, one at a time from
the driver of :mod:`b2bua.calldriver`); media
(:class:`CallMedia`) anchors the audio and speaks into it; billing
(``billing.session``) says how long the credit lasts and when it is spent.

Timeline of a call (the README, "What a call does"): identify -> open the
billing session -> answer and announce the minutes -> ring the agents in turn,
the caller hearing ringback (when none answers: told so, not charged, BYE)
-> bridge -> charging starts at the profile's point -> warning -> credit spent:
last words to both, BYE to both -> settle and write the call record.  A BYE or
CANCEL the call sends carries the Reason (RFC 3326) :mod:`b2bua.clearing` gives
the way it ended; a 488 refusing the carrier's offer carries media's warn-code.

Tests (``tests/b2bua/test_call.py``) drive it with fake legs and media on a
``task.Clock`` and pin: the agent is rung only with credit; hunting on busy and
no answer; CANCEL while ringing; the 200/CANCEL race; each charging start;
warning and cut-off; the call record's fields; and that nothing is left pending.

While bridged, a re-INVITE/UPDATE that changes what the other side gets (hold,
resume, codec) is relayed by the table (``A_MODIFY``/``B_MODIFY`` ->
``RELAY_MODIFY``, the other leg's answer -> ``ANSWER_MODIFY``); media switches
only when both legs agreed (``tests/b2bua/test_calls_modify.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from billing.db.calls import HUNG_UP_DURING_REFUSAL, SPOKEN_REFUSALS
from billing.db.rows import CallRecord
from billing.profile import ChargingStart
from billing.session import (CallBilling, CallSession, CreditEnds, Exhausted, Refund, Refused, TopUp, Warning_,
                             charging_start_ms)

from .calldriver import CallDriver, CallInputs
from .callevents import (Abort, Acked, Answered, Bye, Cancelled, Dtmf, Failed, LegBroken, LegEnded, MediaDead,
                         ModifyAnswered, ModifyOffer, Ringing, SendFailed)
from .callports import Announcement, CallMedia, Dialer, InboundLeg, MediaRefused, OutboundLeg, Say
from .callrecord import CallTimes, call_record, log_record
from .callstate import Act, Ev, St, ignored, transition
from .clearing import NO_ANSWER, clearing_reason
from .faults import CallFaults
from .identity import CallerIdentity
from .modifyrelay import ModifyRelay
from .pinentry import GONE, LOCKED, RIGHT, PinEntry, PinGate, PinOutcome
from .routing import AgentHunt, Outcome, Route, outcome_of_status
from .sip.causes import Reason

log = Logger()

#: the longest Call-ID written whole into a log line; longer ones are cut (the peer chooses its length,
#: and a 60 KB Call-ID must not cost 60 KB of log per line)
LOG_CALL_ID_CHARS = 80


def log_id(call_id: str) -> str:
    """``call_id`` fit for a log line: whole up to :data:`LOG_CALL_ID_CHARS` characters, else cut, with its length."""
    if len(call_id) <= LOG_CALL_ID_CHARS:
        return call_id
    return f"{call_id[:LOG_CALL_ID_CHARS - 16]}...({len(call_id)} chars)"


class Call:
    """The controller of one call. Made by the call manager for each new INVITE."""

    #: a held call keeps its controller: slots, not a ~1.2 KB instance dict (bench/memory.py)
    __slots__ = ("call_id", "log_id", "inputs", "reactor", "a", "route", "identity", "dialer", "media", "billing", "_record",
                 "max_duration_s", "answer_mode", "announce_tariff", "withheld_policy", "agent_warning", "_on_done",
                 "source_address", "_pin", "_log_steps", "_faults", "_pin_timer", "state", "times", "hunt", "b", "session",
                 "refusal", "reject_status", "reject_warn_code", "end_reason", "events", "_ring_timer", "_charge_timer",
                 "_limit_timer", "_timed_out", "_finished", "_settling", "_relay", "_free_minutes_over", "credit_ends_ms",
                 "_b_answer_sdp", "_a_has_audio", "_ringback")

    def __init__(self, *, call_id: str, reactor: IReactorTime, a: InboundLeg, route: Route | None,
                 identity: CallerIdentity, dialer: Dialer, media: CallMedia | None,
                 billing: CallBilling | None, record: Callable[[CallRecord], object],
                 max_duration_s: int, answer_mode: str = "answer", announce_tariff: bool = False,
                 withheld_policy: str = "reject", on_done: Callable[["Call"], None] = lambda call: None,
                 pin_lookup: Callable[[str, str], Deferred] | None = None, log_steps: bool = True,
                 pin_gate: PinGate | None = None, source_address: str = "", pin_account: str | None = None,
                 faults: CallFaults | None = None, inputs: CallInputs | None = None,
                 agent_warning: str = "words"):
        self.call_id = call_id
        #: the Call-ID as log lines carry it (cut when a peer sent an absurdly long one)
        self.log_id = log_id(call_id)
        #: the driver as this call sees it: every timer, billing and media callback is one input of it
        #: (without a manager, as in the controller's own tests: a driver of its own, which flushes nothing)
        self.inputs = inputs if inputs is not None else CallDriver(reactor, faults=faults).inputs(self.log_id)
        #: the call's clock: ``callLater`` arms a timer whose firing is one input
        self.reactor = self.inputs
        self.a = a
        self.route = route
        self.identity = identity
        self.dialer = dialer
        self.media = media
        self.billing = billing
        self._record = record
        self.max_duration_s = max_duration_s
        self.answer_mode = answer_mode
        self.announce_tariff = announce_tariff
        self.withheld_policy = withheld_policy
        #: how the agent hears the credit warning: "words" (short, spoken) or "tone" (three beeps)
        self.agent_warning = agent_warning
        self._on_done = on_done
        #: where the INVITE came from
        self.source_address = source_address
        #: the customer PIN, for a caller whose number is withheld (None: the call takes no PIN)
        self._pin = (PinEntry(lookup=pin_lookup, gate=pin_gate, profile=route.profile.name, source=source_address,
                              account=pin_account, call_id=call_id, log_id=self.log_id)
                     if pin_lookup is not None and route is not None else None)
        self._log_steps = log_steps
        #: what an event with no row in the table does (raise in tests, log and count in the node)
        self._faults = self.inputs.driver.faults
        self._pin_timer: IDelayedCall | None = None
        self.state = St.ROUTING
        self.times = CallTimes(self._now_ms())
        self.hunt = AgentHunt(route) if route is not None else None
        self.b: OutboundLeg | None = None
        self.session: CallSession | None = None
        self.refusal: Say | None = None
        self.reject_status = 480
        #: the warn-code of a 488 we refuse the carrier's offer with (RFC 3261 §20.43; None: the leg's default)
        self.reject_warn_code: int | None = None
        self.end_reason: str | None = None
        self.events: list[tuple[int, str]] = []     # (ms, what) for the log and the demo's timeline
        self._ring_timer: IDelayedCall | None = None
        self._charge_timer: IDelayedCall | None = None
        self._limit_timer: IDelayedCall | None = None
        self._timed_out: OutboundLeg | None = None
        self._finished: Deferred = Deferred()
        #: the session's settlement, asked for when the call ended for billing (END_BILLING)
        self._settling: Deferred | None = None
        #: a hold/resume/codec change being relayed to the other leg (one at a time), and the local answers
        self._relay = ModifyRelay(media, self.log_id)
        #: the credit ended where a first caller's free minutes ended: the last words say where to top up
        self._free_minutes_over = False
        #: where billing last said the credit ends (ms of the clock); None before charging starts
        self.credit_ends_ms: int | None = None
        #: the answering agent's SDP, for media and (without media) the carrier
        self._b_answer_sdp: bytes | None = None
        #: the carrier's leg carries our audio (answered, or early media): a failed hunt is told in words
        self._a_has_audio = False
        #: what plays as ringback ("de", the music file's name) and since when (ms); None while none plays
        self._ringback: tuple[str, int] | None = None

    # -- time and bookkeeping -------------------------------------------------------

    def _now_ms(self) -> int:
        return round(self.reactor.seconds() * 1000)

    def note(self, what: str, *, worth_reading: bool = False) -> None:
        """Add ``what`` to the call's timeline; logged at info when ``worth_reading`` (refusals, aborts,
        warnings, top-ups: what an operator looks for), else at debug (``[node] log_level``)."""
        self.events.append((self._now_ms(), what))
        if worth_reading:
            log.info("call {call_id}: {what}", call_id=self.log_id, what=what)
        elif self._log_steps:       # not even built when the log would drop it
            log.debug("call {call_id}: {what}", call_id=self.log_id, what=what)

    @property
    def finished(self) -> Deferred:
        """Fires with the :class:`CallRecord` once the call is over and settled."""
        return self._finished

    def pending_timers(self) -> int:
        return sum(1 for t in (self._ring_timer, self._charge_timer, self._limit_timer, self._pin_timer)
                   if t is not None and t.active())

    # -- call events (b2bua.callevents), one at a time from the driver ----------------------

    def handle(self, event) -> None:
        """One call event from a leg, media or the manager (see :data:`_HANDLERS`)."""
        self._HANDLERS[type(event)](self, event)

    def _on_bye(self, event: Bye) -> None:
        if event.leg is self.a:
            self._on_a_bye()
        else:
            self._on_b_bye(event.leg)

    def _on_acked(self, event: Acked) -> None:
        if event.leg is self.a and self.media is not None:
            self.media.a_acked(event.sdp)       # the answer to our late offer (an INVITE without SDP)

    def _on_leg_broken(self, event: LegBroken) -> None:
        if event.reason.startswith("dialog_") and self.state in (St.CLOSING, St.DONE):
            return              # a request in a dialog we are ending found it gone: nothing more to end
        self.abort(event.reason)

    def _on_send_failed(self, event: SendFailed) -> None:
        """Our BYE, re-INVITE or UPDATE reached nobody (timed out, or the connection could not be opened or
        failed): logged once at warning; a call still up ends now, so the other side hears our BYE and billing
        stops at this moment instead of the call going on silent (end reason ``caller_unreachable`` or
        ``agent_unreachable``)."""
        side = "caller" if event.leg is self.a else "agent"
        if event.leg is not self.a and event.leg is not self.b:
            return          # an agent the call gave up on: nothing of this call depends on it
        what = "got no answer" if event.status == 408 else "could not be sent"
        log.warn("call {call_id}: our {method} to the {side} {what} ({status})", call_id=self.log_id,
                 method=event.method, side=side, what=what, status=event.status)
        self.events.append((self._now_ms(), f"our {event.method} to the {side} {what} ({event.status})"))
        if self.state not in (St.CLOSING, St.DONE):
            self.abort(f"{side}_unreachable")

    # -- the table ------------------------------------------------------------------------

    def feed(self, event: Ev) -> None:
        row = transition(self.state, event)
        if row is None:
            if not ignored(self.state, event):
                self._faults.unknown_transition(self.log_id, self.state, event)
            return
        self.state, actions = row
        for action in actions:
            self._ACTIONS[action](self)
        if self.state is St.CLOSING:
            self._maybe_done()

    # -- admission ----------------------------------------------------------------------

    def start(self) -> None:
        """Decide whether this call may go on: route, offer, identity, credit.

        The offer is checked before anything answers the carrier, on every path (the PIN prompt and the
        spoken refusals answer the A-leg too): an offer our media cannot take is refused with its SIP
        status (400, 488) and the call, its ports and its transaction are released at once.
        """
        if self.route is None:
            self.reject_status = 404
            self.end_reason = "unknown_service_number"
            self.note("refused: unknown service number", worth_reading=True)
            self.feed(Ev.REFUSED)
            return
        if self.media is not None:
            try:
                self.media.check_offer(self.a.offer)
            except MediaRefused as exc:        # no common codec (488, with its Warning), bad SDP (400)
                self.reject_status = exc.status
                self.reject_warn_code = exc.warn_code
                self.end_reason = "media_refused"
                self.note(f"refused: {exc}", worth_reading=True)
                self.feed(Ev.REFUSED)
                return
        if self.identity.number is None:
            if self.withheld_policy == "pin" and self.media is not None and self._pin is not None \
                    and self.billing is not None:
                self._ask_pin()
                return
            self.end_reason = "unidentified"
            self.note("refused: caller not identified", worth_reading=True)
            self._refuse(Say.WITHHELD, 403)
            return
        self.note(f"identified {self.identity.number} ({self.identity.source}"
                  f"{', withheld' if self.identity.privacy else ''})")
        if self.billing is None:
            self.feed(self._accepted())
            return
        self._open_billing()

    def _refuse(self, say: Say, status: int) -> None:
        """Refuse the caller: in words where media may hold a port pair for it (its share of the range
        for refusals is not used up), else with ``status`` only."""
        if self.media is not None and self.media.hold_for_refusal():
            self.refusal = say
            self.feed(Ev.REFUSED_SPOKEN)
        else:
            self.reject_status = status
            self.feed(Ev.REFUSED)

    def _accepted(self) -> Ev:
        """ACCEPTED, or ACCEPTED_QUIET when the profile speaks no minutes and answers with the agent."""
        return Ev.ACCEPTED_QUIET if self.answer_mode == "agent" else Ev.ACCEPTED

    def _open_billing(self) -> None:
        profile = self.route.profile.billing
        d = self.billing.open(profile, self.identity.number, self.identity.caller_class, self.call_id, self)
        d.addCallbacks(self.inputs.input(self._opened), self.inputs.input(self._not_opened))

    def _opened(self, session: CallSession) -> None:
        self.session = session
        self.note(f"billing session {session.session_id}: {session.minutes} minute(s) at "
                  f"{session.tariff.per_minute}/min")
        if self.state not in (St.ROUTING, St.PIN_ENTRY):      # the carrier hung up meanwhile
            session.settle(self._now_ms(), "cancelled")
            return
        self.feed(self._accepted())

    def _not_opened(self, failure) -> None:
        if failure.check(Refused) and self.state not in (St.ROUTING, St.PIN_ENTRY):
            return              # the carrier hung up (or its transaction ended) meanwhile: nobody to refuse
        if failure.check(Refused):
            self.end_reason = "no_credit"
            self.note(f"refused: {failure.value.reason} (balance {failure.value.balance_cents} cents)",
                      worth_reading=True)
            self._refuse(Say.NO_CREDIT, 402)
            return
        log.failure("call {call_id}: billing failed", failure, call_id=self.log_id)
        self.end_reason = "billing_error"
        self.reject_status = 503
        self.feed(Ev.REFUSED)

    # -- what the legs report ---------------------------------------------------------

    def _on_a_cancel(self, event: Cancelled | None = None) -> None:
        self.end_reason = self.end_reason or "caller_cancelled"
        self.note("carrier cancelled")
        self.feed(Ev.A_CANCEL)

    def _on_a_bye(self) -> None:
        if self.state is St.REFUSING and self.end_reason in SPOKEN_REFUSALS:
            self.end_reason += HUNG_UP_DURING_REFUSAL       # the refusal's outcome, and who ended the call
            self.note("caller hung up during the refusal")
        else:
            self.end_reason = self.end_reason or "caller_hangup"
            self.note("caller hung up")
        self.feed(Ev.A_BYE)

    def _on_b_bye(self, leg: OutboundLeg) -> None:
        if leg is not self.b:
            return
        self.end_reason = self.end_reason or "agent_hangup"
        self.note("agent hung up")
        self.feed(Ev.B_BYE)

    def _on_b_progress(self, event: Ringing) -> None:
        if event.leg is self.b:
            self.feed(Ev.B_PROGRESS)

    def _on_b_answer(self, event: Answered) -> None:
        leg, sdp = event.leg, event.sdp
        if leg is not self.b:
            # a late 2xx from an agent we gave up on: the leg has ACKed it; its BYE says what its CANCEL said
            leg.bye()
            return
        self._b_answer_sdp = sdp
        if self.state is St.HUNTING:
            self.hunt.record(Outcome.ANSWERED)
            self.times.agent_answer_ms = self._now_ms()
            self.note(f"agent {leg.agent} answered")
        self.feed(Ev.B_ANSWERED)

    def _on_b_failed(self, event: Failed) -> None:
        leg, status = event.leg, event.status
        if leg is not self.b or self.state is not St.HUNTING:
            self._maybe_done()
            return
        self._cancel(self._ring_timer)
        outcome = Outcome.NO_ANSWER if self._timed_out is leg else outcome_of_status(status)
        self.hunt.record(outcome)
        self.note(f"agent {leg.agent}: {status} ({outcome.value})")
        if self.hunt.has_next():
            self.feed(Ev.B_FAILED)
        else:
            self.reject_status = self.hunt.final_status()
            self.end_reason = "no_agent"
            self.feed(Ev.B_FAILED_LAST_SPOKEN if self._a_has_audio and self.media is not None
                      else Ev.B_FAILED_LAST)

    def _on_leg_ended(self, event: LegEnded | None = None) -> None:
        self._maybe_done()

    def give_up_on_legs(self) -> None:
        """The node is stopping: an ended call (CLOSING) does not wait for its legs' last transactions (a BYE
        not answered yet); it finishes now: media freed, record written with the settlement of its end."""
        if self.state is St.CLOSING:
            self.note("not waiting for the legs: the node is stopping")
            self.feed(Ev.LEGS_DONE)

    def _on_abort(self, event: Abort | MediaDead) -> None:
        self.abort(event.reason)

    def abort(self, reason: str) -> None:
        """Session expired, maximum duration, dead media, an ACK that never came: end both legs."""
        self.end_reason = self.end_reason or reason
        self.note(f"aborted: {reason}", worth_reading=True)
        self.reject_status = 500 if reason != "max_duration" else 480
        self.feed(Ev.ABORT)

    # -- re-INVITE / UPDATE that changes the session (hold, resume, codec) --------------------

    def _on_modify_offer(self, event: ModifyOffer) -> None:
        """A leg's re-INVITE/UPDATE: relayed to the other leg while bridged when it changes what that leg
        gets (:mod:`b2bua.modifyrelay`), else answered on its own leg (a 2xx refreshes its session timer)."""
        leg, request = event.leg, event.request
        side = "a" if leg is self.a else ("b" if leg is self.b else None)
        modify = Ev.A_MODIFY if side == "a" else Ev.B_MODIFY
        if side is not None and transition(self.state, modify) is not None and self._relay.take(side, request):
            self.feed(modify)        # the asking leg is answered when the other leg has
        else:
            self._relay.answer_alone(leg, "a" if leg is self.a else "b", request)

    def _on_modify_answered(self, event: ModifyAnswered) -> None:
        """The other leg's final answer to the change we relayed to it (408 when none came)."""
        side = "a" if event.leg is self.a else ("b" if event.leg is self.b else None)
        if side is not None and self._relay.awaits(side):
            self._relay.answered(event.status, event.sdp)
            self.feed(Ev.MODIFY_ANSWERED)

    def _do_relay_modify(self) -> None:
        self._relay.relay(self.a, self.b, self.note)

    def _do_answer_modify(self) -> None:
        self._relay.answer(self.a, self.b, self.note)

    def _do_end_modify(self) -> None:
        self._relay.end(self.a, self.b, self.note)

    # -- the customer PIN of a caller with a withheld number (RFC 4733 or INFO keys): b2bua.pinentry ------

    #: seconds to type a PIN and the hash
    PIN_TIMEOUT_S = PinEntry.TIMEOUT_S

    def _on_dtmf(self, event: Dtmf) -> None:
        """A key pressed: the caller's RFC 4733 event (media reports each press once) or the key of an INFO
        (:mod:`b2bua.info`), the same input either way.  Only PIN entry reads keys (no agent is rung yet)."""
        if self.state is not St.PIN_ENTRY:
            return
        pin = self._pin.key(event.digit)
        if pin is not None:
            self._cancel(self._pin_timer)
            self._check_pin(pin)

    def _arm_pin_timer(self, _=None) -> None:
        self._cancel(self._pin_timer)
        if self.state is St.PIN_ENTRY:
            self._pin_timer = self.reactor.callLater(self.PIN_TIMEOUT_S, self._pin_timeout)

    def _pin_timeout(self) -> None:
        self._pin_timer = None
        self._check_pin(self._pin.take_typed())

    def _ask_pin(self) -> None:
        """Ask for the PIN, unless this source (or account) is locked out: then say so and end."""
        self._pin.locked().addCallbacks(self.inputs.input(self._pin_asked), self.inputs.input(self._pin_error))

    def _pin_asked(self, locked: bool) -> None:
        if self.state is not St.ROUTING:        # the carrier cancelled meanwhile
            return
        if locked:
            self._pin_locked_out()
            return
        self.note("number withheld: asking for the customer PIN", worth_reading=True)
        self.feed(Ev.ASK_PIN)

    def _check_pin(self, pin: str) -> None:
        self._pin.check(pin, lambda: self.state is St.PIN_ENTRY).addCallbacks(
            self.inputs.input(self._pin_checked), self.inputs.input(self._pin_error))

    def _pin_checked(self, outcome: PinOutcome) -> None:
        if outcome.kind == GONE or self.state is not St.PIN_ENTRY:
            return
        if outcome.kind == RIGHT:
            from billing.numbers import classify
            number = outcome.number
            self.identity = dataclasses.replace(self.identity, number=number, source="pin",
                                                caller_class=classify(number))
            self.note(f"identified {number} by PIN")
            self._open_billing()
        elif outcome.kind == LOCKED:
            if outcome.after_wrong:
                self.note(f"PIN wrong (try {self._pin.tries} of {self._pin.TRIES})", worth_reading=True)
            self._pin_locked_out()
        else:
            self._pin_rejected()

    def _pin_error(self, failure) -> None:
        log.failure("call {call_id}: PIN lookup failed", failure, call_id=self.log_id)
        if self.state in (St.ROUTING, St.PIN_ENTRY):
            self.abort("billing_error")

    def _pin_locked_out(self) -> None:
        """Too many wrong PINs from this source (or for this account): say so, no PIN asked, and end."""
        self.end_reason = "pin_locked"
        self.refusal = Say.PIN_LOCKED
        self.note(f"PIN entry locked for {self.source_address or 'this source'}"
                  f"{f' / {self._pin.account}' if self._pin.account else ''}", worth_reading=True)
        self.feed(Ev.REFUSED_SPOKEN)

    def _pin_rejected(self) -> None:
        self.note(f"PIN wrong (try {self._pin.tries} of {self._pin.TRIES})", worth_reading=True)
        if self._pin.last_try:
            self.end_reason = "pin_wrong"
            self.refusal = Say.PIN_WRONG
            self.feed(Ev.REFUSED_SPOKEN)
        else:
            self.feed(Ev.PIN_WRONG)

    def _do_play_pin_prompt(self) -> None:
        self.media.announce(Announcement(Say.WITHHELD)).addBoth(self.inputs.input(self._arm_pin_timer))

    def _do_play_pin_wrong(self) -> None:
        self.media.announce(Announcement(Say.PIN_WRONG)).addBoth(self.inputs.input(self._pin_wrong_said))

    def _pin_wrong_said(self, _=None) -> None:
        if self.state is St.PIN_ENTRY:
            self._do_play_pin_prompt()

    # -- what billing reports (billing.session.SessionObserver): each one input of this call ------

    def session_warning(self, event: Warning_) -> None:
        self.inputs.driver.run(self.log_id, self._warning, event)

    def session_exhausted(self, event: Exhausted) -> None:
        self.inputs.driver.run(self.log_id, self._exhausted, event)

    def session_credit_ends(self, event: CreditEnds) -> None:
        self.credit_ends_ms = event.end_ms

    def session_topped_up(self, event: TopUp) -> None:
        self.inputs.driver.run(self.log_id, self._topped_up, event)

    def session_refunded(self, event: Refund) -> None:
        """Another call of the caller settled and refunded: more credit (billing moved the end), nothing said."""
        self.note(f"another call of the caller refunded {event.cents} cents")

    def _warning(self, event: Warning_) -> None:
        self.note(f"warning: credit ends in {event.remaining_s} s", worth_reading=True)
        if self.state is St.BRIDGED and self.media is not None:
            # the time left to the nearest second (a timer fires a few ms late: 29.99 s is still "30 seconds")
            left_s = max(0, (event.end_ms - event.at_ms + 500) // 1000)
            self.media.announce(Announcement(Say.WARNING, to_caller=True, to_agent=True, mixed=True, seconds=left_s,
                                             agent_tone=self.agent_warning == "tone"))

    def _exhausted(self, event: Exhausted) -> None:
        self.end_reason = "credit_exhausted"
        self._free_minutes_over = event.free_minutes_over
        self.note("free minutes over" if event.free_minutes_over else "credit exhausted", worth_reading=True)
        self.feed(Ev.CREDIT_EXHAUSTED)

    def _topped_up(self, event: TopUp) -> None:
        """A top-up booked while the call runs: billing has moved the end; the caller is told, mixed over
        the conversation, how many minutes the credit now lasts."""
        if self.state in (St.CLOSING, St.DONE):
            return          # news after the call: nobody to tell
        self.note(f"topped up during the call: +{event.cents} cents", worth_reading=True)
        if self.state is St.BRIDGED and self.media is not None:
            self.media.announce(Announcement(Say.TOPPED_UP, to_caller=True, mixed=True, minutes=event.minutes))

    # -- actions ------------------------------------------------------------------------

    def _do_answer_a(self) -> None:
        sdp = self.media.answer_for_a(self.a.offer) if self.media is not None else self.a.offer
        if self.answer_mode == "early_media" and self.refusal is None and self.state is not St.PIN_ENTRY:
            self.a.provisional(183, sdp)
            self.note("early media to the carrier (183)")
        else:
            self.a.answer(sdp or b"")
            self.times.answer_ms = self._now_ms()
            self.note("answered the carrier")
        self._a_has_audio = True
        self._arm_limit()

    def _arm_limit(self) -> None:
        """The hard limit on the call's duration, from the carrier's answer (or early media) on."""
        if self._limit_timer is None:
            self._limit_timer = self.reactor.callLater(self.max_duration_s, self.abort, "max_duration")

    def _announce(self, announcement: Announcement, done: Ev) -> None:
        if self.media is None:
            self.feed(done)
            return
        self.media.announce(announcement).addBoth(self.inputs.input(self._announced), done)

    def _announced(self, _, done: Ev) -> None:
        if done is Ev.ANNOUNCEMENT_DONE and self.state is not St.NO_AGENT:
            self.times.announcement_end_ms = self._now_ms()
        self.feed(done)

    def _do_play_minutes(self) -> None:
        minutes = self.session.minutes if self.session is not None else None
        tariff = self.session.tariff.per_minute if (self.session is not None and self.announce_tariff) else None
        klass = self.identity.caller_class.value if self.identity.caller_class is not None else None
        offer = self.session.tariff.first_caller if self.session is not None else None
        offer_minutes = offer_price = None
        if offer is not None and offer.period_s >= 60:      # under a minute there are no whole minutes to offer
            # the offer is what the caller is told instead of the tariff; with no credit beside free
            # minutes, the minutes the credit buys would only say the same again
            offer_minutes, offer_price, tariff = offer.period_s // 60, offer.per_minute, None
            if offer.free and self.session.balance_cents == 0:
                minutes = None
            self.note(f"announcing the first-caller offer: {offer_minutes} minute(s) at {offer_price}/min",
                      worth_reading=True)
        if minutes is not None:
            self.note(f"announcing {minutes} minute(s)")
        self._announce(Announcement(Say.MINUTES, minutes=minutes, per_minute=tariff, caller_class=klass,
                                    offer_minutes=offer_minutes, offer_per_minute=offer_price),
                       Ev.ANNOUNCEMENT_DONE)

    def _do_play_refusal(self) -> None:
        self._announce(Announcement(self.refusal or Say.NO_CREDIT), Ev.ANNOUNCEMENT_DONE)

    def _do_play_final(self) -> None:
        say = Say.FREE_MINUTES_OVER if self._free_minutes_over else Say.USED_UP
        self._announce(Announcement(say, to_caller=True, to_agent=True), Ev.FINAL_DONE)

    def _do_ring_next(self) -> None:
        agent = self.hunt.next_agent()
        try:
            offer = self.media.offer_for_b() if self.media is not None else (self.a.offer or b"")
        except MediaRefused as exc:        # no port pair left for the agent's leg (503)
            self.note(f"cannot ring {agent}: {exc}", worth_reading=True)
            self.reactor.callLater(0, self.abort, "no_rtp_ports")
            return
        self.note(f"ringing agent {agent}")
        self.b = self.dialer(agent, self.identity, offer, self)
        self._ring_timer = self.reactor.callLater(self.hunt.ring_timeout_s, self._ring_timeout, self.b)

    def _ring_timeout(self, leg: OutboundLeg) -> None:
        self._ring_timer = None
        if leg is self.b:
            self._timed_out = leg
            self.note(f"agent {leg.agent}: no answer in {self.hunt.ring_timeout_s} s")
            self.feed(Ev.RING_TIMEOUT)

    def _do_play_ringback(self) -> None:
        if self.media is None or self.state is not St.HUNTING:
            return
        what = self.media.start_ringback()
        if what is not None:
            self._ringback = (what, self._now_ms())
            self.note(f"ringback ({what}) while the agents ring")

    def _do_stop_ringback(self) -> None:
        if self.media is not None:
            self.media.stop_ringback()
        self._ringback_ended()

    def _ringback_ended(self) -> None:
        """The timeline's line for the ringback that stopped now: how long it played, and why it stopped."""
        if self._ringback is None:
            return
        (what, since_ms), self._ringback = self._ringback, None
        why = {St.BRIDGED: "the agent answered", St.NO_AGENT: "the hunt ended"}.get(self.state, "the call ended")
        self.note(f"ringback ({what}) until {why} after {(self._now_ms() - since_ms) / 1000:.1f} s")

    def _do_play_no_agent(self) -> None:
        self.note("no agent took the call: telling the caller", worth_reading=True)
        self._announce(Announcement(Say.NO_AGENT), Ev.ANNOUNCEMENT_DONE)

    def _do_relay_ringing(self) -> None:
        if not self.a.answered and self.answer_mode != "early_media":
            self.a.provisional(180)

    def _do_connect(self) -> None:
        self._cancel(self._ring_timer)
        if self.media is not None:
            self.media.b_answered(self._b_answer_sdp)
        if not self.a.answered:
            sdp = self.media.answer_for_a(self.a.offer) if self.media is not None else self._b_answer_sdp
            self.a.answer(sdp or b"")
            self.times.answer_ms = self._now_ms()
            self._arm_limit()
        self.note("bridged")
        if self.session is None:
            return
        mode = self.route.profile.billing.charging_starts
        agent_ms = self.times.agent_answer_ms or self._now_ms()
        start_ms = charging_start_ms(mode, answer_ms=agent_ms, announcement_end_ms=self.times.announcement_end_ms)
        delay_s = max(0, start_ms - self._now_ms()) / 1000
        if mode is ChargingStart.AFTER_ANNOUNCEMENT or delay_s == 0:
            self._start_charging(start_ms)
        else:
            self._charge_timer = self.reactor.callLater(delay_s, self._start_charging, start_ms)

    def _start_charging(self, at_ms: int) -> None:
        self._charge_timer = None
        if self.state is St.BRIDGED and self.session is not None:
            self.session.start_charging(at_ms)
            self.note("charging started")

    def _clearing(self) -> Reason | None:
        """The Reason (RFC 3326) of the BYE/CANCEL that ends a leg now (:mod:`b2bua.clearing`), or None."""
        return clearing_reason(self.end_reason, self.reject_status)

    def _do_cancel_b(self) -> None:
        if self.b is not None and not self.b.ended:
            self.b.cancel(NO_ANSWER if self._timed_out is self.b and self.end_reason is None else self._clearing())

    def _do_bye_a(self) -> None:
        if self.a.ended:
            return
        if self.a.answered:
            self.a.bye(self._clearing())
        else:                       # early media only: the INVITE still wants its final answer
            self.a.reject(self.reject_status, warn_code=self.reject_warn_code)

    def _do_bye_b(self) -> None:
        if self.b is not None and not self.b.ended:
            self.b.bye(self._clearing())

    def _do_reject_a(self) -> None:
        if self.a.answered:
            self.a.bye(self._clearing())
        elif not self.a.ended:
            self.a.reject(self.reject_status, warn_code=self.reject_warn_code)

    def _do_reject_a_cancelled(self) -> None:
        if not self.a.ended:
            self.a.reject(487)

    def _do_stop_media(self) -> None:
        for timer in (self._ring_timer, self._charge_timer, self._limit_timer, self._pin_timer):
            self._cancel(timer)
        if self.media is not None:
            self.media.stop()       # the ringback too
        self._ringback_ended()

    def _do_end_billing(self) -> None:
        """The call has ended for the caller now (the first hang-up, cancel, failure or abort): the end is
        stamped and the session settled at this instant, before the legs have finished (our BYE to the
        other side may go unanswered for 32 s; that time is not the caller's)."""
        self.times.end_ms = self._now_ms()
        if self.end_reason == "media_timeout" and self.media is not None:
            # a side that vanished (its connection closed, its phone gone) is billed to its last sign of life
            last_heard_ms = self.media.dead_since_ms()
            if last_heard_ms is not None:
                self.times.end_ms = min(self.times.end_ms, last_heard_ms)
        if self.session is not None:
            self._settling = self.session.settle(self.times.end_ms, self.end_reason or "hangup")

    def _do_finish(self) -> None:
        if self.media is not None:
            self.media.close()
        self.note(f"ended: {self.end_reason}")
        if self._settling is not None:
            self._settling.addCallbacks(self.inputs.input(self._write_record), self.inputs.input(self._settle_failed))
        else:
            self._write_record(None)

    def _settle_failed(self, failure) -> None:
        log.failure("call {call_id}: settle failed; the reconciler will settle it", failure,
                    call_id=self.log_id)
        self._write_record(None)

    def _write_record(self, settlement) -> None:
        record = call_record(call_id=self.call_id, route=self.route, identity=self.identity, hunt=self.hunt,
                             times=self.times, end_reason=self.end_reason, a_status=self.a.final_status,
                             b_status=self.b.final_status if self.b is not None else None,
                             session_id=self.session.session_id if self.session is not None else None,
                             settlement=settlement)
        if settlement is not None:
            self.note(f"settled: {settlement.billed_s} s billed, {settlement.charge_cents} cents charged, "
                      f"{settlement.refund_cents} cents refunded")
        log_record(self.log_id, record)
        try:
            self._record(record)
        finally:
            self._on_done(self)
            self._finished.callback(record)

    def _maybe_done(self) -> None:
        if self.state is St.CLOSING and self.a.ended and (self.b is None or self.b.ended):
            self.feed(Ev.LEGS_DONE)

    @staticmethod
    def _cancel(timer: IDelayedCall | None) -> None:
        if timer is not None and timer.active():
            timer.cancel()

    #: what each call event (b2bua.callevents) does
    _HANDLERS: dict[type, Callable[["Call", object], None]] = {
        Ringing: _on_b_progress, Answered: _on_b_answer, Failed: _on_b_failed, Bye: _on_bye,
        Cancelled: _on_a_cancel, ModifyOffer: _on_modify_offer, ModifyAnswered: _on_modify_answered,
        Acked: _on_acked, LegEnded: _on_leg_ended, LegBroken: _on_leg_broken, SendFailed: _on_send_failed,
        Dtmf: _on_dtmf, MediaDead: _on_abort, Abort: _on_abort,
    }

    #: what each action of the table (:class:`~b2bua.callstate.Act`) does
    _ACTIONS: dict[Act, Callable[["Call"], None]] = {
        Act.ANSWER_A: _do_answer_a, Act.PLAY_MINUTES: _do_play_minutes, Act.PLAY_REFUSAL: _do_play_refusal,
        Act.PLAY_PIN_PROMPT: _do_play_pin_prompt, Act.PLAY_PIN_WRONG: _do_play_pin_wrong,
        Act.PLAY_FINAL: _do_play_final, Act.RING_NEXT: _do_ring_next, Act.RELAY_RINGING: _do_relay_ringing,
        Act.PLAY_RINGBACK: _do_play_ringback, Act.STOP_RINGBACK: _do_stop_ringback,
        Act.PLAY_NO_AGENT: _do_play_no_agent,
        Act.CONNECT: _do_connect, Act.CANCEL_B: _do_cancel_b, Act.BYE_A: _do_bye_a, Act.BYE_B: _do_bye_b,
        Act.REJECT_A: _do_reject_a, Act.REJECT_A_CANCELLED: _do_reject_a_cancelled, Act.STOP_MEDIA: _do_stop_media,
        Act.END_BILLING: _do_end_billing, Act.FINISH: _do_finish, Act.RELAY_MODIFY: _do_relay_modify,
        Act.ANSWER_MODIFY: _do_answer_modify, Act.END_MODIFY: _do_end_modify,
    }
