"""The transaction machine's enums hash by identity, and what the tables rely on still holds."""

import copy
import pickle

import pytest

from b2bua.sip.timers import RETRANSMIT_TIMERS, Timer
from b2bua.sip.transaction import STATE_TIMERS, TABLES, TIMER_INPUT, Action, Input, Kind, State

ENUMS = [Timer, Kind, State, Input, Action]


@pytest.mark.parametrize("enum_type", ENUMS, ids=lambda e: e.__name__)
def test_members_hash_by_identity_and_stay_equal_only_to_themselves(enum_type):
    """Each member's hash is its identity hash (not Enum's Python-level hash of the name); a member
    equals itself only, not its value or name, and a copy or an unpickled member is the same object,
    so a dict keyed by members finds every one of them."""
    members = list(enum_type)
    for member in members:
        assert type(member).__hash__ is object.__hash__
        assert hash(member) == object.__hash__(member)
        assert member != member.value and member != member.name
        assert copy.deepcopy(member) is member and pickle.loads(pickle.dumps(member)) is member
        assert enum_type(member.value) is member and enum_type[member.name] is member
    assert len(set(members)) == len(members)
    assert {member: i for i, member in enumerate(members)}[members[-1]] == len(members) - 1


def test_tables_answer_for_members_looked_up_by_value():
    """The tables, keyed by (State, Input), Kind and Timer, answer for members reached by value."""
    assert TABLES[Kind("invite server")][(State("Accepted"), Input("ACK"))].actions == (Action("ACK to TU"),)
    assert TIMER_INPUT[Timer("J")] is Input.TIMER_J
    assert Timer("G") in RETRANSMIT_TIMERS
    assert Timer("D") in STATE_TIMERS[Kind.INVITE_CLIENT][State.COMPLETED]
