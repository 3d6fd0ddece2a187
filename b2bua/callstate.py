"""The call controller's state machine, as one table.

A call has an A-leg (the carrier, we are its UAS) and a B-leg (the agent, we
are its UAC).  The controller (:mod:`b2bua.call`) turns what happens on the
wire, in billing and in media into :class:`Ev` inputs, looks up
``(state, event)`` in :data:`TRANSITIONS`, moves to the new state and carries
out the listed :class:`Act` actions in order.  Anything not in the table is
ignored only when :data:`IGNORED` lists it as late news (a 180 crossing our
CANCEL, a BYE crossing ours, a stopped prompt reporting its end); any other
pair without a row is a fault (:mod:`b2bua.faults`: raised in tests, logged
and counted in the node).

Guards that need facts (is the A-leg answered already? is another agent left?)
are decided by the controller *before* it feeds the event, by choosing between
two events (``B_FAILED`` vs ``B_FAILED_LAST``), so the table stays a plain
mapping a reader can check line by line.

Tests pin every row, and that from every state the hang-up events lead to
CLOSING and from there to DONE.
"""

from __future__ import annotations

import enum


class St(enum.Enum):
    ROUTING = "routing"          # INVITE in, 100 sent; identity, route and credit being looked up
    PIN_ENTRY = "pin_entry"      # number withheld: answered, the caller types the customer PIN
    ANNOUNCING = "announcing"    # A-leg answered (or early media): the minutes are being spoken
    REFUSING = "refusing"        # A-leg answered: the reason (no credit, withheld number) is being spoken
    HUNTING = "hunting"          # an agent is being rung (the caller hears ringback when its leg carries our audio)
    NO_AGENT = "no_agent"        # no agent took the call: the caller is told so (and that it cost nothing)
    BRIDGED = "bridged"          # both legs answered, media relayed, charging
    FINAL = "final"              # credit spent: the last words are being spoken to both
    CLOSING = "closing"          # BYE/CANCEL/final answers sent; waiting for both legs to finish
    DONE = "done"                # both legs ended, record written


class Ev(enum.Enum):
    ACCEPTED = "accepted"                    # caller identified, route found, credit buys >= 1 increment
    ACCEPTED_QUIET = "accepted_quiet"        # ...and the profile speaks no minutes (answer_mode "agent")
    ASK_PIN = "ask_pin"                      # number withheld, profile takes a PIN instead
    PIN_WRONG = "pin_wrong"                  # a PIN that names no account (another try is left)
    REFUSED_SPOKEN = "refused_spoken"        # refusal with an announcement (no credit, withheld)
    REFUSED = "refused"                      # refusal with a SIP status only (404, 403, 503)
    ANNOUNCEMENT_DONE = "announcement_done"
    B_PROGRESS = "b_progress"                # 180/183 from the agent
    B_ANSWERED = "b_answered"                # 2xx from the agent
    B_FAILED = "b_failed"                    # agent's final non-2xx / timeout / unreachable; another agent is left
    B_FAILED_LAST = "b_failed_last"          # ...and none is left (the carrier's leg never carried our audio)
    B_FAILED_LAST_SPOKEN = "b_failed_last_spoken"  # ...none is left, and the caller's leg carries our audio
                                                   # (answered, or early media): the caller is told
    RING_TIMEOUT = "ring_timeout"            # the ring timer of the current agent fired
    A_CANCEL = "a_cancel"                    # CANCEL from the carrier
    A_BYE = "a_bye"                          # BYE from the carrier
    B_BYE = "b_bye"                          # BYE from the agent
    CREDIT_EXHAUSTED = "credit_exhausted"    # billing: the credit is spent
    FINAL_DONE = "final_done"                # the last words were spoken
    ABORT = "abort"                          # session expired, max duration, media dead, ACK never came
    LEGS_DONE = "legs_done"                  # both legs' dialogs and transactions are finished
    A_MODIFY = "a_modify"                    # carrier's re-INVITE/UPDATE changes what the agent gets (hold, resume, codec)
    B_MODIFY = "b_modify"                    # the same from the agent
    MODIFY_ANSWERED = "modify_answered"      # the other leg's final answer to the change we relayed


class Act(enum.Enum):
    ANSWER_A = "answer_a"            # 200 (or 183 with SDP for early media) to the carrier, media anchored
    PLAY_MINUTES = "play_minutes"    # the tariff (if the profile says) and the minutes the credit buys
    PLAY_REFUSAL = "play_refusal"    # no credit / number withheld
    PLAY_PIN_PROMPT = "play_pin_prompt"  # "please type your customer PIN, then hash"
    PLAY_PIN_WRONG = "play_pin_wrong"    # "that PIN was wrong", then the prompt again
    PLAY_FINAL = "play_final"        # credit used up, to both legs
    RING_NEXT = "ring_next"          # INVITE to the next agent, ring timer armed
    RELAY_RINGING = "relay_ringing"  # 180 to the carrier if its leg is not answered yet
    PLAY_RINGBACK = "play_ringback"  # ringback (or the operator's music) to the caller, looped, when its leg has audio
    STOP_RINGBACK = "stop_ringback"  # the ringback stops at once (before the bridge or the words that end the hunt)
    PLAY_NO_AGENT = "play_no_agent"  # "nobody can take your call now; you were not charged"
    CONNECT = "connect"              # answer A if needed, bridge media, start the charging clock
    CANCEL_B = "cancel_b"            # CANCEL the agent's pending INVITE
    BYE_A = "bye_a"
    BYE_B = "bye_b"
    REJECT_A = "reject_a"            # final non-2xx to the carrier's INVITE (status from the controller)
    REJECT_A_CANCELLED = "reject_a_cancelled"  # 487 to the carrier's INVITE after its CANCEL
    STOP_MEDIA = "stop_media"        # stop prompts and the call's timers
    END_BILLING = "end_billing"      # the call has ended for billing now: settled at this instant, whatever the
                                     # legs still do (a BYE the other side never answers costs the caller nothing)
    FINISH = "finish"                # settle billing, write the call record, free media
    RELAY_MODIFY = "relay_modify"    # re-INVITE (or UPDATE) to the other leg with our SDP mirroring the change
    ANSWER_MODIFY = "answer_modify"  # the asking leg gets the other's outcome: 200 with our SDP (media switched) or a failure
    END_MODIFY = "end_modify"        # a change still being relayed when the call ends: the asking leg gets 487


_HANGUP_TO_CLOSING = {
    # the carrier hangs up or cancels before the agent answered
    (St.ROUTING, Ev.A_CANCEL): (St.CLOSING, (Act.REJECT_A_CANCELLED, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.ANNOUNCING, Ev.A_CANCEL): (St.CLOSING, (Act.REJECT_A_CANCELLED, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.REFUSING, Ev.A_CANCEL): (St.CLOSING, (Act.REJECT_A_CANCELLED, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.NO_AGENT, Ev.A_CANCEL): (St.CLOSING, (Act.REJECT_A_CANCELLED, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.HUNTING, Ev.A_CANCEL): (St.CLOSING, (Act.CANCEL_B, Act.REJECT_A_CANCELLED, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.ANNOUNCING, Ev.A_BYE): (St.CLOSING, (Act.STOP_MEDIA, Act.END_BILLING)),
    (St.REFUSING, Ev.A_BYE): (St.CLOSING, (Act.STOP_MEDIA, Act.END_BILLING)),
    (St.NO_AGENT, Ev.A_BYE): (St.CLOSING, (Act.STOP_MEDIA, Act.END_BILLING)),
    (St.HUNTING, Ev.A_BYE): (St.CLOSING, (Act.CANCEL_B, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.BRIDGED, Ev.A_BYE): (St.CLOSING, (Act.END_MODIFY, Act.BYE_B, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.FINAL, Ev.A_BYE): (St.CLOSING, (Act.END_MODIFY, Act.BYE_B, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.BRIDGED, Ev.B_BYE): (St.CLOSING, (Act.END_MODIFY, Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.FINAL, Ev.B_BYE): (St.CLOSING, (Act.END_MODIFY, Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    # timers, dead media, an ACK that never came: both legs go
    (St.ROUTING, Ev.ABORT): (St.CLOSING, (Act.REJECT_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.ANNOUNCING, Ev.ABORT): (St.CLOSING, (Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.REFUSING, Ev.ABORT): (St.CLOSING, (Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.NO_AGENT, Ev.ABORT): (St.CLOSING, (Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.HUNTING, Ev.ABORT): (St.CLOSING, (Act.CANCEL_B, Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.BRIDGED, Ev.ABORT): (St.CLOSING, (Act.END_MODIFY, Act.BYE_A, Act.BYE_B, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.FINAL, Ev.ABORT): (St.CLOSING, (Act.END_MODIFY, Act.BYE_A, Act.BYE_B, Act.STOP_MEDIA, Act.END_BILLING)),
}

#: (state, event) -> (next state, actions in order)
TRANSITIONS: dict[tuple[St, Ev], tuple[St, tuple[Act, ...]]] = {
    (St.ROUTING, Ev.ACCEPTED): (St.ANNOUNCING, (Act.ANSWER_A, Act.PLAY_MINUTES)),
    (St.ROUTING, Ev.ACCEPTED_QUIET): (St.HUNTING, (Act.RING_NEXT,)),
    (St.ROUTING, Ev.REFUSED_SPOKEN): (St.REFUSING, (Act.ANSWER_A, Act.PLAY_REFUSAL)),
    (St.ROUTING, Ev.REFUSED): (St.CLOSING, (Act.REJECT_A, Act.END_BILLING)),
    (St.ROUTING, Ev.ASK_PIN): (St.PIN_ENTRY, (Act.ANSWER_A, Act.PLAY_PIN_PROMPT)),
    (St.PIN_ENTRY, Ev.PIN_WRONG): (St.PIN_ENTRY, (Act.PLAY_PIN_WRONG,)),
    (St.PIN_ENTRY, Ev.ACCEPTED): (St.ANNOUNCING, (Act.PLAY_MINUTES,)),
    (St.PIN_ENTRY, Ev.ACCEPTED_QUIET): (St.HUNTING, (Act.RING_NEXT, Act.PLAY_RINGBACK)),
    (St.PIN_ENTRY, Ev.REFUSED_SPOKEN): (St.REFUSING, (Act.PLAY_REFUSAL,)),
    (St.PIN_ENTRY, Ev.A_CANCEL): (St.CLOSING, (Act.REJECT_A_CANCELLED, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.PIN_ENTRY, Ev.A_BYE): (St.CLOSING, (Act.STOP_MEDIA, Act.END_BILLING)),
    (St.PIN_ENTRY, Ev.ABORT): (St.CLOSING, (Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.ANNOUNCING, Ev.ANNOUNCEMENT_DONE): (St.HUNTING, (Act.RING_NEXT, Act.PLAY_RINGBACK)),
    (St.REFUSING, Ev.ANNOUNCEMENT_DONE): (St.CLOSING, (Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.HUNTING, Ev.B_PROGRESS): (St.HUNTING, (Act.RELAY_RINGING,)),
    (St.HUNTING, Ev.B_ANSWERED): (St.BRIDGED, (Act.STOP_RINGBACK, Act.CONNECT)),
    (St.HUNTING, Ev.B_FAILED): (St.HUNTING, (Act.RING_NEXT,)),
    (St.HUNTING, Ev.B_FAILED_LAST): (St.CLOSING, (Act.REJECT_A, Act.STOP_MEDIA, Act.END_BILLING)),
    # the hunt ended with no agent and the caller hears us: told so, then BYE (early media: the final status)
    (St.HUNTING, Ev.B_FAILED_LAST_SPOKEN): (St.NO_AGENT, (Act.STOP_RINGBACK, Act.PLAY_NO_AGENT)),
    (St.NO_AGENT, Ev.ANNOUNCEMENT_DONE): (St.CLOSING, (Act.BYE_A, Act.STOP_MEDIA, Act.END_BILLING)),
    (St.HUNTING, Ev.RING_TIMEOUT): (St.HUNTING, (Act.CANCEL_B,)),
    (St.BRIDGED, Ev.CREDIT_EXHAUSTED): (St.FINAL, (Act.PLAY_FINAL,)),
    (St.FINAL, Ev.FINAL_DONE): (St.CLOSING, (Act.END_MODIFY, Act.BYE_A, Act.BYE_B, Act.STOP_MEDIA, Act.END_BILLING)),
    # hold, resume, codec change while bridged: relayed to the other leg, its answer relayed back;
    # before bridging and while closing a re-INVITE/UPDATE is answered on its own leg (no row)
    (St.BRIDGED, Ev.A_MODIFY): (St.BRIDGED, (Act.RELAY_MODIFY,)),
    (St.BRIDGED, Ev.B_MODIFY): (St.BRIDGED, (Act.RELAY_MODIFY,)),
    (St.BRIDGED, Ev.MODIFY_ANSWERED): (St.BRIDGED, (Act.ANSWER_MODIFY,)),
    (St.FINAL, Ev.MODIFY_ANSWERED): (St.FINAL, (Act.ANSWER_MODIFY,)),
    # the 200/CANCEL race: the agent answered while we were closing -> ACK and BYE it
    (St.CLOSING, Ev.B_ANSWERED): (St.CLOSING, (Act.BYE_B,)),
    (St.CLOSING, Ev.LEGS_DONE): (St.DONE, (Act.FINISH,)),
    **_HANGUP_TO_CLOSING,
}

#: (state, event) pairs that mean nothing by design: news that comes late, after the state that wanted it.
#: Any other pair without a row is a fault (:mod:`b2bua.faults`).
IGNORED: frozenset[tuple[St, Ev]] = frozenset({
    # a prompt stopped by the hang-up reports its end
    (St.CLOSING, Ev.ANNOUNCEMENT_DONE), (St.DONE, Ev.ANNOUNCEMENT_DONE),
    (St.CLOSING, Ev.FINAL_DONE), (St.DONE, Ev.FINAL_DONE),
    # a peer hangs up, cancels or rings while our own BYE, CANCEL or final answer crosses it
    (St.CLOSING, Ev.A_BYE), (St.CLOSING, Ev.B_BYE), (St.CLOSING, Ev.A_CANCEL), (St.CLOSING, Ev.B_PROGRESS),
    # a timer, dead media or the stopping node ends a call that is already ending
    (St.CLOSING, Ev.ABORT), (St.DONE, Ev.ABORT),
})


def transition(state: St, event: Ev) -> tuple[St, tuple[Act, ...]] | None:
    """The row for ``(state, event)``, or None when the event means nothing in that state."""
    return TRANSITIONS.get((state, event))


def ignored(state: St, event: Ev) -> bool:
    """Whether ``event`` in ``state`` is late news that needs no row (see :data:`IGNORED`)."""
    return (state, event) in IGNORED
