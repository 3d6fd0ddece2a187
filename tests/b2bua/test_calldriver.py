"""The call driver: each input runs to its end with the call events it caused, then one flush; faults counted."""

from __future__ import annotations

import pytest
from twisted.internet.defer import succeed
from twisted.internet.error import AlreadyCalled, AlreadyCancelled
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from b2bua.calldriver import CallDriver
from b2bua.faults import CallFaults


class Trace:
    """What happened, in order: handler steps, events handled, and flushes."""

    def __init__(self):
        self.steps: list = []

    def flush(self) -> None:
        self.steps.append("flush")


def test_events_emitted_during_an_input_follow_its_handler_in_order_then_one_flush():
    """A leg that emits two events while the call acts: they are handled after the action, in the order
    emitted, and the endpoint is flushed once, after all of it."""
    trace = Trace()
    driver = CallDriver(Clock(), trace.flush)

    def on_event(event):
        trace.steps.append(("event", event))

    def handler():
        driver.emit("c1", on_event, "ringing")
        driver.emit("c1", on_event, "answered")
        trace.steps.append("handler done")

    driver.run("c1", handler)
    assert trace.steps == ["handler done", ("event", "ringing"), ("event", "answered"), "flush"]


def test_a_timer_and_a_deferred_callback_are_one_input_each_and_nested_runs_do_not_flush_again():
    """A call's timer firing is one input (one flush); a callback on a Deferred that had fired already runs
    inside the running input, which flushes once."""
    clock, trace = Clock(), Trace()
    driver = CallDriver(clock, trace.flush)
    inputs = driver.inputs("c1")
    inputs.callLater(5, trace.steps.append, "ring timeout")
    clock.advance(5)
    assert trace.steps == ["ring timeout", "flush"]
    trace.steps.clear()

    def handler():
        succeed("opened").addCallback(inputs.input(trace.steps.append))
    driver.run("c1", handler)
    assert trace.steps == ["opened", "flush"]


def test_an_emit_outside_any_input_is_an_input_of_its_own():
    trace = Trace()
    driver = CallDriver(Clock(), trace.flush)
    driver.emit("c1", trace.steps.append, "dtmf 5")
    assert trace.steps == ["dtmf 5", "flush"]


def test_a_fault_is_raised_in_tests():
    driver = CallDriver(Clock())

    def broken():
        raise RuntimeError("a bug")
    with pytest.raises(RuntimeError):
        driver.run("c1", broken)
    driver.run("c1", lambda: None)       # the driver is usable again: no input is left running


def test_the_node_logs_a_fault_with_the_call_id_counts_it_and_goes_on_with_the_queued_events():
    """Lenient (the node): the failing handler is logged once with the call id (worked out only then) and
    counted; the events queued before it still reach their handlers, and the flush still comes."""
    trace = Trace()
    faults = CallFaults(strict=False)
    driver = CallDriver(Clock(), trace.flush, faults)
    asked: list = []
    seen: list = []
    globalLogPublisher.addObserver(seen.append)
    try:
        def handler(event):
            driver.emit("c7", trace.steps.append, "bye")
            raise RuntimeError("a bug")

        def call_id_of(event):
            asked.append(event)
            return "c7"
        driver.run(call_id_of, handler, "an endpoint event")
        driver.run(call_id_of, trace.steps.append, "no fault")
    finally:
        globalLogPublisher.removeObserver(seen.append)
    assert trace.steps == ["bye", "flush", "no fault", "flush"]
    assert faults.errors == 1 and asked == ["an endpoint event"]
    (line,) = [e for e in seen if "log_failure" in e]
    assert line["call_id"] == "c7" and line["log_failure"].check(RuntimeError)


def test_a_fault_inside_a_running_input_is_its_own_calls_and_the_outer_input_goes_on():
    """Billing telling another call of the caller while this call acts: that call's bug is logged with its
    own id, and this call's handler finishes."""
    trace = Trace()
    faults = CallFaults(strict=False)
    driver = CallDriver(Clock(), trace.flush, faults)
    seen: list = []

    def other_call():
        raise RuntimeError("the other call's bug")

    def this_call():
        driver.run("c2", other_call)
        trace.steps.append("this call done")
    globalLogPublisher.addObserver(seen.append)
    try:
        driver.run("c1", this_call)
    finally:
        globalLogPublisher.removeObserver(seen.append)
    assert trace.steps == ["this call done", "flush"] and faults.errors == 1
    (line,) = [e for e in seen if "log_failure" in e]
    assert line["call_id"] == "c2"


def test_a_calls_timers_share_one_reactor_timer_and_fire_in_time_order_each_one_input():
    """Three timers of one call keep one reactor timer, at the earliest; a step over all of them fires them
    earliest first (ties in the order armed), each one input with its flush; one cancelled by an earlier one
    does not fire; cancelling the last leaves the reactor no timer, and cancelling twice raises as Twisted's."""
    clock, trace = Clock(), Trace()
    inputs = CallDriver(clock, trace.flush).inputs("c1")
    late = inputs.callLater(30, trace.steps.append, "late")
    inputs.callLater(20, trace.steps.append, "tie 1")
    inputs.callLater(20, lambda: (trace.steps.append("tie 2"), late.cancel()))
    first = inputs.callLater(10, trace.steps.append, "first")
    assert [call.getTime() for call in clock.getDelayedCalls()] == [10]
    clock.advance(25)
    assert trace.steps == ["first", "flush", "tie 1", "flush", "tie 2", "flush"]
    assert clock.getDelayedCalls() == [] and not late.active()
    with pytest.raises(AlreadyCalled):
        first.cancel()
    with pytest.raises(AlreadyCancelled):
        late.cancel()
    again = inputs.callLater(5, trace.steps.append, "never")
    again.cancel()
    assert clock.getDelayedCalls() == []


def test_every_calls_inputs_read_the_one_clock_the_driver_bound():
    """The calls' clocks are the driver's one bound ``reactor.seconds``, not one each (64 B of a held call)."""
    clock = Clock()
    driver = CallDriver(clock)
    first, second = driver.inputs("c1"), driver.inputs("c2")
    assert first.seconds is second.seconds
    clock.advance(7)
    assert first.seconds() == 7
