"""The call controller's table with plain values, no reactor: each row against the figure below, the late
news, and that every state can reach DONE."""

from __future__ import annotations

import pytest

from b2bua.callstate import IGNORED, TRANSITIONS, Act, Ev, St, ignored, transition

HANGUPS = (Ev.A_CANCEL, Ev.A_BYE, Ev.B_BYE, Ev.ABORT)


def test_happy_path_rows():
    """INVITE accepted -> answered and announced -> agent rung -> bridged -> credit spent -> closing -> done."""
    path = [
        (St.ROUTING, Ev.ACCEPTED, St.ANNOUNCING, (Act.ANSWER_A, Act.PLAY_MINUTES)),
        (St.ANNOUNCING, Ev.ANNOUNCEMENT_DONE, St.HUNTING, (Act.RING_NEXT, Act.PLAY_RINGBACK)),
        (St.HUNTING, Ev.B_PROGRESS, St.HUNTING, (Act.RELAY_RINGING,)),
        (St.HUNTING, Ev.B_ANSWERED, St.BRIDGED, (Act.STOP_RINGBACK, Act.CONNECT)),
        (St.BRIDGED, Ev.CREDIT_EXHAUSTED, St.FINAL, (Act.PLAY_FINAL,)),
        (St.FINAL, Ev.FINAL_DONE, St.CLOSING, (Act.END_MODIFY, Act.BYE_A, Act.BYE_B, Act.STOP_MEDIA,
                                               Act.END_BILLING)),
        (St.CLOSING, Ev.LEGS_DONE, St.DONE, (Act.FINISH,)),
    ]
    for state, event, new, actions in path:
        assert transition(state, event) == (new, actions)


def test_cancel_while_agent_rings_cancels_the_agent_and_answers_487():
    """Carrier CANCEL while hunting: CANCEL to the agent and 487 to the carrier's INVITE."""
    new, actions = transition(St.HUNTING, Ev.A_CANCEL)
    assert new is St.CLOSING
    assert Act.CANCEL_B in actions and Act.REJECT_A_CANCELLED in actions


def test_agent_200_crossing_our_cancel_is_acked_and_byed():
    """The 200/CANCEL race: a 2xx from the agent while closing gets ACK and BYE (BYE_B)."""
    assert transition(St.CLOSING, Ev.B_ANSWERED) == (St.CLOSING, (Act.BYE_B,))


def test_no_credit_is_spoken_then_hung_up_without_ringing():
    """A refusal with words: answer, speak, BYE; the agent is never rung."""
    new, actions = transition(St.ROUTING, Ev.REFUSED_SPOKEN)
    assert new is St.REFUSING and Act.RING_NEXT not in actions
    new, actions = transition(St.REFUSING, Ev.ANNOUNCEMENT_DONE)
    assert new is St.CLOSING and actions[0] is Act.BYE_A


def test_last_agent_failing_rejects_the_carrier():
    assert transition(St.HUNTING, Ev.B_FAILED) == (St.HUNTING, (Act.RING_NEXT,))
    assert transition(St.HUNTING, Ev.B_FAILED_LAST)[1][0] is Act.REJECT_A


def test_last_agent_failing_is_told_to_a_caller_who_hears_us_then_bye():
    """A caller whose leg carries our audio hears why the hunt ended (the ringback stopped first), and only
    then gets BYE (early media: the final status); the hunt's ringback never runs into the bridge."""
    assert transition(St.HUNTING, Ev.B_FAILED_LAST_SPOKEN) == (St.NO_AGENT, (Act.STOP_RINGBACK, Act.PLAY_NO_AGENT))
    new, actions = transition(St.NO_AGENT, Ev.ANNOUNCEMENT_DONE)
    assert new is St.CLOSING and actions[0] is Act.BYE_A
    assert transition(St.HUNTING, Ev.B_ANSWERED)[1][0] is Act.STOP_RINGBACK
    rows_that_start_it = [key for key, (_, actions) in TRANSITIONS.items() if Act.PLAY_RINGBACK in actions]
    assert all(TRANSITIONS[key][0] is St.HUNTING for key in rows_that_start_it)
    assert (St.ROUTING, Ev.ACCEPTED_QUIET) not in rows_that_start_it     # "agent": the carrier rings itself


@pytest.mark.parametrize("event", [Ev.A_BYE, Ev.A_CANCEL, Ev.ABORT])
def test_hanging_up_while_told_no_agent_took_the_call_ends_it(event):
    """While the caller hears that no agent took the call, its BYE, CANCEL (early media) or an abort lead to
    CLOSING, the prompt stopped and billing ended there; the prompt's end after that is late news."""
    new, actions = transition(St.NO_AGENT, event)
    assert new is St.CLOSING and Act.STOP_MEDIA in actions and Act.END_BILLING in actions
    assert ignored(St.CLOSING, Ev.ANNOUNCEMENT_DONE)


@pytest.mark.parametrize("state", [St.ROUTING, St.ANNOUNCING, St.REFUSING, St.HUNTING, St.NO_AGENT, St.BRIDGED,
                                   St.FINAL])
def test_every_live_state_has_a_way_to_closing(state):
    """From every live state an abort leads to CLOSING, so no call can hang forever."""
    row = transition(state, Ev.ABORT)
    assert row is not None and row[0] is St.CLOSING


def test_late_news_is_ignored_by_name_and_has_no_row():
    """A 180 crossing our CANCEL, a BYE crossing ours, a stopped prompt reporting its end: no row, and listed
    in IGNORED; a pair in neither (a 180 while bridged, a BYE after DONE) is a fault."""
    for state, event in ((St.CLOSING, Ev.B_PROGRESS), (St.CLOSING, Ev.A_BYE), (St.DONE, Ev.ANNOUNCEMENT_DONE)):
        assert transition(state, event) is None and ignored(state, event)
    for state, event in ((St.BRIDGED, Ev.B_PROGRESS), (St.DONE, Ev.B_BYE)):
        assert transition(state, event) is None and not ignored(state, event)


def test_no_pair_is_both_a_row_and_ignored():
    assert not IGNORED & set(TRANSITIONS)


def test_bridged_hangups_end_the_other_leg():
    """BYE from either side while bridged ends the other side."""
    assert Act.BYE_B in transition(St.BRIDGED, Ev.A_BYE)[1]
    assert Act.BYE_A in transition(St.BRIDGED, Ev.B_BYE)[1]


def test_table_only_names_known_states_and_actions():
    for (state, event), (new, actions) in TRANSITIONS.items():
        assert isinstance(state, St) and isinstance(event, Ev) and isinstance(new, St)
        assert all(isinstance(a, Act) for a in actions)


def test_media_changes_are_relayed_only_while_bridged():
    """Hold/resume/codec change from either leg: relayed to the other leg while bridged (its answer relayed
    back, also while the last words play); before the bridge and while closing there is no row, so the
    manager answers on the asking leg alone."""
    for event in (Ev.A_MODIFY, Ev.B_MODIFY):
        assert transition(St.BRIDGED, event) == (St.BRIDGED, (Act.RELAY_MODIFY,))
        for state in (St.ROUTING, St.ANNOUNCING, St.HUNTING, St.FINAL, St.CLOSING, St.DONE):
            assert transition(state, event) is None
    for state in (St.BRIDGED, St.FINAL):
        assert transition(state, Ev.MODIFY_ANSWERED) == (state, (Act.ANSWER_MODIFY,))
    assert transition(St.CLOSING, Ev.MODIFY_ANSWERED) is None


@pytest.mark.parametrize("state", [St.BRIDGED, St.FINAL])
def test_a_relay_still_pending_is_answered_first_when_the_call_ends(state):
    """Every way out of BRIDGED/FINAL answers a pending relayed change (487) before any BYE goes out."""
    for event in (Ev.A_BYE, Ev.B_BYE, Ev.ABORT, Ev.FINAL_DONE):
        row = transition(state, event)
        if row is not None:
            assert row[0] is St.CLOSING and row[1][0] is Act.END_MODIFY


def test_every_way_into_closing_ends_billing_there():
    """Whatever brings a call to CLOSING (a hang-up, cancel, failure, refusal, abort, the last words), the
    row ends billing at that instant: the settlement never waits for the other leg's BYE to complete."""
    into_closing = [(key, row) for key, row in TRANSITIONS.items()
                    if row[0] is St.CLOSING and key[0] is not St.CLOSING]
    assert len(into_closing) > 20
    assert all(Act.END_BILLING in row[1] for _, row in into_closing)
    assert all(Act.END_BILLING not in row[1] for key, row in TRANSITIONS.items() if row[0] is not St.CLOSING
               or key[0] is St.CLOSING)


#: the whole table as a figure: state, event -> next state, then the commands the row gives, in order
FIGURE = """
routing     accepted           -> announcing  answer_a play_minutes
routing     accepted_quiet     -> hunting     ring_next
routing     ask_pin            -> pin_entry   answer_a play_pin_prompt
routing     refused_spoken     -> refusing    answer_a play_refusal
routing     refused            -> closing     reject_a end_billing
routing     a_cancel           -> closing     reject_a_cancelled stop_media end_billing
routing     abort              -> closing     reject_a stop_media end_billing
pin_entry   accepted           -> announcing  play_minutes
pin_entry   accepted_quiet     -> hunting     ring_next play_ringback
pin_entry   pin_wrong          -> pin_entry   play_pin_wrong
pin_entry   refused_spoken     -> refusing    play_refusal
pin_entry   a_cancel           -> closing     reject_a_cancelled stop_media end_billing
pin_entry   a_bye              -> closing     stop_media end_billing
pin_entry   abort              -> closing     bye_a stop_media end_billing
announcing  announcement_done  -> hunting     ring_next play_ringback
announcing  a_cancel           -> closing     reject_a_cancelled stop_media end_billing
announcing  a_bye              -> closing     stop_media end_billing
announcing  abort              -> closing     bye_a stop_media end_billing
refusing    announcement_done  -> closing     bye_a stop_media end_billing
refusing    a_cancel           -> closing     reject_a_cancelled stop_media end_billing
refusing    a_bye              -> closing     stop_media end_billing
refusing    abort              -> closing     bye_a stop_media end_billing
hunting     b_progress         -> hunting     relay_ringing
hunting     b_answered         -> bridged     stop_ringback connect
hunting     b_failed           -> hunting     ring_next
hunting     b_failed_last      -> closing     reject_a stop_media end_billing
hunting     b_failed_last_spoken -> no_agent  stop_ringback play_no_agent
hunting     ring_timeout       -> hunting     cancel_b
hunting     a_cancel           -> closing     cancel_b reject_a_cancelled stop_media end_billing
hunting     a_bye              -> closing     cancel_b stop_media end_billing
hunting     abort              -> closing     cancel_b bye_a stop_media end_billing
no_agent    announcement_done  -> closing     bye_a stop_media end_billing
no_agent    a_cancel           -> closing     reject_a_cancelled stop_media end_billing
no_agent    a_bye              -> closing     stop_media end_billing
no_agent    abort              -> closing     bye_a stop_media end_billing
bridged     a_bye              -> closing     end_modify bye_b stop_media end_billing
bridged     b_bye              -> closing     end_modify bye_a stop_media end_billing
bridged     credit_exhausted   -> final       play_final
bridged     abort              -> closing     end_modify bye_a bye_b stop_media end_billing
bridged     a_modify           -> bridged     relay_modify
bridged     b_modify           -> bridged     relay_modify
bridged     modify_answered    -> bridged     answer_modify
final       a_bye              -> closing     end_modify bye_b stop_media end_billing
final       b_bye              -> closing     end_modify bye_a stop_media end_billing
final       final_done         -> closing     end_modify bye_a bye_b stop_media end_billing
final       abort              -> closing     end_modify bye_a bye_b stop_media end_billing
final       modify_answered    -> final       answer_modify
closing     b_answered         -> closing     bye_b
closing     legs_done          -> done        finish
"""

#: the late news that has no row and is no fault
LATE_NEWS = """
closing     announcement_done
closing     b_progress
closing     a_cancel
closing     a_bye
closing     b_bye
closing     final_done
closing     abort
done        announcement_done
done        final_done
done        abort
"""


def _figure_rows():
    for line in FIGURE.strip().splitlines():
        state, event, arrow, new, *acts = line.split()
        assert arrow == "->"
        yield (St(state), Ev(event)), (St(new), tuple(Act(a) for a in acts))


@pytest.mark.parametrize("key, row", list(_figure_rows()),
                         ids=[f"{state.value}+{event.value}" for (state, event), _ in _figure_rows()])
def test_each_row_of_the_table_is_the_figures(key, row):
    """Row by row with plain values, as the transaction tables are: the table gives, for this state and
    event, the figure's next state and its commands in the figure's order."""
    assert transition(*key) == row


def test_the_table_has_no_row_the_figure_lacks_and_the_late_news_is_the_listed():
    assert dict(_figure_rows()) == TRANSITIONS
    late = {(St(state), Ev(event)) for state, event in (line.split() for line in LATE_NEWS.strip().splitlines())}
    assert late == IGNORED and all(ignored(*pair) and transition(*pair) is None for pair in late)
