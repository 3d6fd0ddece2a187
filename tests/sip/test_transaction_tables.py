"""Each transaction table checked, row by row, against the RFC figure it implements.

The figures are written here again, independently, as the RFC draws them:
``(from state, event label, to state, action labels)``.  The labels are the
figures' own words; a small glossary maps them to the code's enums.  Timer
starts are not drawn in the figures (the RFC text gives them) and are checked
separately, in ``test_transaction.py``.
"""

from __future__ import annotations

import pytest

from b2bua.sip.transaction import INITIAL, TABLES, Action, Input, Kind, State

EVENTS = {
    "1xx": Input.RESPONSE_1XX, "2xx": Input.RESPONSE_2XX, "300-699": Input.RESPONSE_300_699,
    "INVITE": Input.REQUEST, "Request received": Input.REQUEST, "ACK": Input.ACK,
    "Transport Err.": Input.TRANSPORT_ERROR,
    "1xx from TU": Input.TU_1XX, "101-199 from TU": Input.TU_1XX,
    "2xx from TU": Input.TU_2XX, "300-699 from TU": Input.TU_300_699,
    "300-699 from TU, once": Input.TU_300_699_ONCE,
    **{f"Timer {x} fires": Input["TIMER_" + x] for x in "ABDEFGHIJKLM"},
}
ACTIONS = {
    "INVITE sent": Action.SEND_REQUEST, "Request sent": Action.SEND_REQUEST,
    "ACK sent": Action.SEND_ACK, "send response": Action.SEND_RESPONSE,
    "resp. to TU": Action.RESPONSE_TO_TU, "1xx to TU": Action.RESPONSE_TO_TU,
    "2xx to TU": Action.RESPONSE_TO_TU, "ACK to TU": Action.ACK_TO_TU,
    "Timeout to TU": Action.TIMEOUT_TO_TU, "Transport Err. to TU": Action.TRANSPORT_ERROR_TO_TU,
}

# RFC 6026 §8.4, figure 5: INVITE client transaction.
FIGURE_5 = [
    ("Calling", "Timer A fires", "Calling", ["INVITE sent"]),
    ("Calling", "Timer B fires", "Terminated", ["Timeout to TU"]),
    ("Calling", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Calling", "2xx", "Accepted", ["2xx to TU"]),
    ("Calling", "1xx", "Proceeding", ["1xx to TU"]),
    ("Calling", "300-699", "Completed", ["ACK sent", "resp. to TU"]),
    ("Proceeding", "1xx", "Proceeding", ["1xx to TU"]),
    ("Proceeding", "2xx", "Accepted", ["2xx to TU"]),
    ("Proceeding", "300-699", "Completed", ["ACK sent", "resp. to TU"]),
    ("Completed", "300-699", "Completed", ["ACK sent"]),
    ("Completed", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Completed", "Timer D fires", "Terminated", []),
    ("Accepted", "2xx", "Accepted", ["2xx to TU"]),
    ("Accepted", "Timer M fires", "Terminated", []),
]

# RFC 3261 §17.1.2.2, figure 6: non-INVITE client transaction ("200-699" is 2xx and 300-699).
FIGURE_6 = [
    ("Trying", "Timer E fires", "Trying", ["Request sent"]),
    ("Trying", "Timer F fires", "Terminated", ["Timeout to TU"]),
    ("Trying", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Trying", "1xx", "Proceeding", ["resp. to TU"]),
    ("Trying", "2xx", "Completed", ["resp. to TU"]),
    ("Trying", "300-699", "Completed", ["resp. to TU"]),
    ("Proceeding", "Timer E fires", "Proceeding", ["Request sent"]),
    ("Proceeding", "1xx", "Proceeding", ["resp. to TU"]),
    ("Proceeding", "Timer F fires", "Terminated", ["Timeout to TU"]),
    ("Proceeding", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Proceeding", "2xx", "Completed", ["resp. to TU"]),
    ("Proceeding", "300-699", "Completed", ["resp. to TU"]),
    ("Completed", "Timer K fires", "Terminated", []),
]

# RFC 6026 §8.7, figure 7: INVITE server transaction.
FIGURE_7 = [
    ("Proceeding", "INVITE", "Proceeding", ["send response"]),
    ("Proceeding", "101-199 from TU", "Proceeding", ["send response"]),
    ("Proceeding", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Proceeding", "2xx from TU", "Accepted", ["send response"]),
    ("Proceeding", "300-699 from TU", "Completed", ["send response"]),
    ("Completed", "INVITE", "Completed", ["send response"]),
    ("Completed", "Timer G fires", "Completed", ["send response"]),
    ("Completed", "ACK", "Confirmed", []),
    ("Completed", "Timer H fires", "Terminated", ["Timeout to TU"]),
    ("Completed", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Confirmed", "Timer I fires", "Terminated", []),
    ("Accepted", "INVITE", "Accepted", []),
    ("Accepted", "ACK", "Accepted", ["ACK to TU"]),
    ("Accepted", "2xx from TU", "Accepted", ["send response"]),
    ("Accepted", "Transport Err.", "Accepted", ["Transport Err. to TU"]),
    ("Accepted", "Timer L fires", "Terminated", []),
]

# Not drawn in the RFC: an INVITE refused with one response (RFC 3261 §8.2.7 allows answering statelessly
# what we reject), drawn here as figure 7 would draw it. No timer G resends it; a retransmitted INVITE
# gets it again; the ACK or timer I ends it.
REFUSED_ONCE = [
    ("Proceeding", "300-699 from TU, once", "Refused", ["send response"]),
    ("Refused", "INVITE", "Refused", ["send response"]),
    ("Refused", "ACK", "Terminated", []),
    ("Refused", "Timer I fires", "Terminated", []),
    ("Refused", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
]

# RFC 3261 §17.2.2, figure 8: non-INVITE server transaction ("200-699 from TU").
FIGURE_8 = [
    ("Trying", "1xx from TU", "Proceeding", ["send response"]),
    ("Trying", "2xx from TU", "Completed", ["send response"]),
    ("Trying", "300-699 from TU", "Completed", ["send response"]),
    ("Proceeding", "1xx from TU", "Proceeding", ["send response"]),
    ("Proceeding", "Request received", "Proceeding", ["send response"]),
    ("Proceeding", "2xx from TU", "Completed", ["send response"]),
    ("Proceeding", "300-699 from TU", "Completed", ["send response"]),
    ("Proceeding", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Completed", "Request received", "Completed", ["send response"]),
    ("Completed", "Transport Err.", "Terminated", ["Transport Err. to TU"]),
    ("Completed", "Timer J fires", "Terminated", []),
]

FIGURES = {
    Kind.INVITE_CLIENT: (FIGURE_5, "Calling"),
    Kind.NON_INVITE_CLIENT: (FIGURE_6, "Trying"),
    Kind.INVITE_SERVER: (FIGURE_7 + REFUSED_ONCE, "Proceeding"),
    Kind.NON_INVITE_SERVER: (FIGURE_8, "Trying"),
}


def _figure_as_mapping(rows):
    mapping = {}
    for source, event, target, actions in rows:
        key = (State(source), EVENTS[event])
        assert key not in mapping, f"figure lists {key} twice"
        mapping[key] = (State(target), [ACTIONS[a] for a in actions])
    return mapping


def _drawn(actions):
    return [a for a in actions if a.timer is None]


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_table_has_exactly_the_rows_of_the_rfc_figure(kind):
    """Every (state, event) of the figure is in the table, and the table has no row the figure lacks."""
    figure = _figure_as_mapping(FIGURES[kind][0])
    assert set(TABLES[kind]) == set(figure)


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_every_row_goes_where_the_figure_goes_and_does_what_it_says(kind):
    """Each row's next state and drawn actions (in order) match the figure's arrow and label."""
    figure = _figure_as_mapping(FIGURES[kind][0])
    for key, step in TABLES[kind].items():
        target, actions = figure[key]
        assert step.next_state is target, key
        assert _drawn(step.actions) == actions, key


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_transactions_start_in_the_figures_entry_state(kind):
    """The entry arrow: INVITE client in Calling, non-INVITE client and server in Trying, INVITE server in Proceeding."""
    assert INITIAL[kind].next_state is State(FIGURES[kind][1])


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.value)
def test_terminated_is_reachable_and_final(kind):
    """No row leaves Terminated, and every state the table names can reach it."""
    table = TABLES[kind]
    assert not any(state is State.TERMINATED for state, _ in table)
    states = {s for s, _ in table} | {step.next_state for step in table.values()}
    for state in states:
        seen, todo = set(), [state]
        while todo:
            current = todo.pop()
            seen.add(current)
            todo.extend(step.next_state for (s, _), step in table.items() if s is current and step.next_state not in seen)
        assert State.TERMINATED in seen, state
