"""Call control's own faults: an event the call's table has no row for, and an error in a call's code.

Both are bugs of ours, not of a peer (a peer's nonsense gets its SIP answer
from the SIP core and the legs). One :class:`CallFaults` per call manager
counts them for ``/metrics`` and says what to do with them:

* ``strict`` (the default, what tests get): raise, so that the test that meets
  a missing row or a broken handler fails where it happened;
* not strict (what the node wires up): log one line with the call id, the
  state and the event (an error also with its traceback), count it, and go
  on, so that one call's bug does not stop the others.

Pairs that mean nothing by design (a late 180 after the call ended, a prompt
that finished after the caller hung up) are rows of
:data:`b2bua.callstate.IGNORED`, not faults.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.python.failure import Failure

from .callstate import Ev, St

log = Logger()


class UnknownTransition(Exception):
    """A call was fed an event its table has no row for, in strict mode."""


class CallFaults:
    """Counts (and in strict mode raises) call control's faults; see the module's docstring."""

    def __init__(self, *, strict: bool = True) -> None:
        self.strict = strict
        #: events fed in a state the table has no row (and no ignored row) for
        self.unknown_transitions = 0
        #: exceptions out of a call's handlers, caught so that the other calls go on
        self.errors = 0

    def unknown_transition(self, call_id: str, state: St, event: Ev) -> None:
        """``event`` means nothing in ``state`` and is not a known late one: raise, or log and count."""
        self.unknown_transitions += 1
        if self.strict:
            raise UnknownTransition(f"call {call_id}: no row for {event.value} in {state.value}")
        log.error("call {call_id}: no row for event {event} in state {state}; the event is dropped",
                  call_id=call_id, state=state.value, event=event.value)

    def error(self, call_id: str, what: str, failure: Failure | None = None) -> None:
        """An exception out of call control's code (``failure``, default: the one being handled): raise it
        again, or log it once with its traceback and the call id, and count it."""
        failure = failure or Failure()
        self.errors += 1
        if self.strict:
            failure.raiseException()
        log.failure("call {call_id}: {what}", failure, call_id=call_id, what=what)
