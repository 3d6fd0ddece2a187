"""A finished call leaves nothing for the cyclic collector (b2bua/heap.py counts on it).

A node frees a call's objects by reference counting as the call ends: the legs let go of the call
(CallManager._call_done), a leg's session timer lets go of the leg's methods, a settled billing
session lets go of its controller. Were any of these cycles left, every call would leave its
controller, legs, messages and media for the collector to find. Real endpoints, real media, a
task.Clock (tests/support/calls.py).
"""

from __future__ import annotations

import gc
import tracemalloc
import types

import pytest

from tests.support.calls import Wire, bridged_call

#: every test here runs with the call's media in process and behind a media worker (tests/b2bua/conftest.py)
BOTH_ENGINES = True

OURS = ("b2bua.", "billing.", "media.")


@pytest.fixture
def saved_garbage():
    """The collector keeps what it would free; what earlier tests left alive is held here meanwhile, so
    that only this test's objects can turn up (an earlier test's object dropped now is not ours)."""
    gc.collect()
    alive_before = gc.get_objects()
    gc.set_debug(gc.DEBUG_SAVEALL)
    yield
    gc.set_debug(0)
    gc.garbage.clear()
    del alive_before


def test_a_bridged_call_hung_up_leaves_no_cycle_of_ours(saved_garbage):
    """Two bridged calls, each hung up by the carrier and settled; the collector then finds no object of
    b2bua/, billing/ or media/ in a cycle (DEBUG_SAVEALL keeps what it would have freed)."""
    w = Wire()
    for _ in range(2):
        bridged_call(w)
        w.carrier.send("BYE")
        assert w.agent.got("BYE")
        w.settle()
    w.media.clear()          # the rig's own references to the calls' media
    gc.collect()
    left = sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                   if type(o).__module__.startswith(OURS)})
    w.close()
    assert left == [], left


def test_calls_and_their_legs_share_the_managers_hooks():
    """A held call keeps no bound method of the manager of its own: two calls' legs hold the very same
    emit and own hooks, and the calls the same dialer and done hook (bench/memory.py: 384 B a call)."""
    w = Wire()
    seen = []
    for _ in range(2):
        call = bridged_call(w)
        seen.append((call.a._emit, call.a._own, call.b._emit, call.b._own, call.dialer, call._on_done))
        w.carrier.send("BYE")
        assert w.agent.got("BYE")
        w.settle()
    w.close()
    first, second = seen
    assert [a is b for a, b in zip(first, second)] == [True] * 6
    assert first[0] is first[2] and first[1] is first[3]


def test_a_held_call_is_indexed_by_its_two_dialogs_once_its_invite_transactions_are_gone():
    """The manager's index and the legs' keys hold a transaction's id while the endpoint may still report on
    it: 34 s after the answer (the INVITEs' 64*T1 over) a held call is found by its two dialog ids only, and a
    BYE then still reaches it (its transaction owned and gone again as the call ends)."""
    w = Wire()
    call = bridged_call(w)
    assert len(w.manager._owner) == 4
    w.run(34.0, step_s=0.5)
    assert call.a.keys == [call.a.dialog_id] and call.b.keys == [call.b.dialog_id]
    assert w.manager._owner == {call.a.dialog_id: call.a, call.b.dialog_id: call.b}
    w.carrier.send("BYE")
    assert w.agent.got("BYE")
    w.settle()
    assert w.manager._owner == {}
    w.close()


def test_a_held_calls_legs_keep_no_empty_containers():
    """A held call's legs keep no empty dict or list for what may come (a re-INVITE waiting for our answer,
    queued reliable provisionals, early dialogs, BYEs to other forks): each is None until it has something
    (five of them were ~300 B of each held call), and the early dialogs go with the answer."""
    w = Wire()
    call = bridged_call(w)
    carrier, agent = call.a, call.b
    assert (carrier.uas_modify, carrier.reliable_queue, agent.uas_modify, agent.early, agent.fork_byes) == (
        None, None, None, None, None)
    w.carrier.send("INVITE", w.carrier.sdp(version=2))
    assert [r.status for r in w.carrier.finals("INVITE")][-1] == 200
    assert not carrier.uas_modify
    w.carrier.send("BYE")
    assert w.agent.got("BYE")
    w.settle()
    w.close()


def test_what_a_calls_media_reports_through_keeps_little_per_call():
    """The ``on_dead`` and ``on_dtmf`` each call's media is made with hold the manager and the call's id and
    little else: under 300 B a call (two closures were ~570 B of each held call, bench/memory.py --by-site)."""
    w = Wire()
    manager = w.manager
    call_ids = [f"call-{n}" for n in range(200)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [(manager.media_dead(call_id), manager.media_dtmf(call_id)) for call_id in call_ids]
        per_call = (tracemalloc.get_traced_memory()[0] - before) / len(call_ids)
    finally:
        tracemalloc.stop()
    w.close()
    assert len(kept) == len(call_ids) and per_call < 300, per_call


def test_a_held_calls_session_timers_hold_their_legs_and_no_bound_methods():
    """Each leg's session timer holds the leg itself, not bound methods of it (four of them were 256 B of a held
    call, bench/memory.py --by-site); once the call is over it lets go of the leg."""
    w = Wire()
    call = bridged_call(w)
    legs = (call.a, call.b)
    for leg in legs:
        held = gc.get_referents(leg.timer)
        assert any(o is leg for o in held) and not [o for o in held if isinstance(o, types.MethodType)]
    w.carrier.send("BYE")
    assert w.agent.got("BYE")
    w.settle()
    for leg in legs:
        assert not any(o is leg for o in gc.get_referents(leg.timer))
    w.close()


def test_an_answered_carrier_leg_keeps_no_header_lines_of_its_2xx():
    """The session timer lines of our 2xx to the carrier's INVITE are sent once and not kept for the rest of the
    call (~175 B of each held call, bench/memory.py --by-site: session_timer.py); the 2xx carried them."""
    w = Wire()
    call = bridged_call(w)
    [ok] = [r for r in w.carrier.responses if r.status == 200 and r.cseq.method == "INVITE"]
    assert ok.headers.get("session-expires")
    header_lines = [o for o in gc.get_referents(call.a)
                    if isinstance(o, (list, tuple)) and o and isinstance(o[0], tuple) and isinstance(o[0][0], str)]
    assert header_lines == []
    w.close()
