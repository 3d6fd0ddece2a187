"""Call control's own faults: an event without a row, an exception out of a call's code.

Strict (what every test gets unless it says otherwise) raises, so the test that meets a fault fails there;
the node's lenient policy logs one line with the call id, the state and the event, counts it, and goes on.
"""

from __future__ import annotations

import pytest
from twisted.logger import LogLevel, globalLogPublisher

from b2bua.callevents import Answered, Bye, Ringing
from b2bua.callstate import Ev, St
from b2bua.faults import CallFaults, UnknownTransition
from tests.support.callfakes import make_call


@pytest.fixture
def logged():
    """Every event logged through Twisted's logger at warn or above during the test."""
    seen: list = []

    def observe(event):
        if event.get("log_level") is not None and event["log_level"] >= LogLevel.warn:
            seen.append(event)
    globalLogPublisher.addObserver(observe)
    yield seen
    globalLogPublisher.removeObserver(observe)


def test_an_event_without_a_row_raises_by_default():
    """A 180 while bridged (no row, not late news): UnknownTransition names the state and the event."""
    w = make_call(1000)
    w.clock.advance(5)
    w.call.handle(Ringing(w.b(), 180))
    w.call.handle(Answered(w.b(), b"v=0 agent"))
    assert w.call.state is St.BRIDGED
    with pytest.raises(UnknownTransition, match="b_progress in bridged"):
        w.call.feed(Ev.B_PROGRESS)


def test_the_node_logs_an_event_without_a_row_once_with_the_call_id_and_counts_it(logged):
    """Lenient (the node): one error line with call id, state and event; the counter moves; the call goes on
    in its state."""
    faults = CallFaults(strict=False)
    w = make_call(1000, faults=faults)
    w.call.feed(Ev.B_BYE)                    # the agent cannot hang up while the minutes are announced
    assert w.call.state is St.ANNOUNCING and faults.unknown_transitions == 1
    (line,) = logged
    assert line["log_level"] is LogLevel.error
    assert (line["call_id"], line["state"], line["event"]) == ("c1", "announcing", "b_bye")


def test_late_news_is_no_fault():
    """A prompt stopped by the caller's hang-up reports its end after the call closed: no fault."""
    faults = CallFaults(strict=True)
    w = make_call(1000, faults=faults)
    w.a.ended = True
    w.call.handle(Bye(w.a))
    w.clock.advance(10)                      # the minutes announcement "ends" now, in CLOSING/DONE
    assert w.call.state is St.DONE and faults.unknown_transitions == 0


def test_an_error_is_raised_again_in_strict_mode_and_logged_with_its_traceback_and_counted_otherwise(logged):
    for strict in (True, False):
        faults = CallFaults(strict=strict)
        try:
            try:
                raise KeyError("boom")
            except KeyError:
                faults.error("c9", "a handler failed")
        except KeyError:
            assert strict
        else:
            assert not strict
        assert faults.errors == 1
    (line,) = logged
    assert line["call_id"] == "c9" and line["log_failure"].check(KeyError)


def test_the_manager_logs_an_exception_out_of_a_call_with_that_calls_id_and_serves_on(logged, monkeypatch):
    """A call whose BYE handler raises (a bug): the node's manager logs it once with the call's id and its
    traceback, counts it, and returns (the transport's loop goes on with the next datagram)."""
    from tests.support.calls import Wire
    faults = CallFaults(strict=False)
    wire = Wire("answer", faults=faults)
    try:
        wire.carrier.call()
        call = wire.call

        def broken(self) -> None:
            raise RuntimeError("a bug in on_a_bye")
        monkeypatch.setattr(type(call), "_on_a_bye", broken)     # a Call has slots: the bug goes in its class
        wire.carrier.send("BYE")
        assert faults.errors == 1
        (line,) = [e for e in logged if "log_failure" in e]
        assert line["call_id"] == call.log_id and line["log_failure"].check(RuntimeError)
    finally:
        wire.close()
