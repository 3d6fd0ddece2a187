"""A re-INVITE or UPDATE of one leg, relayed to the other leg or answered on its own (hold, resume, codec).

While the call is bridged, a leg's change that the other leg would see (media
says so: :meth:`~b2bua.callports.CallMedia.modify_offer`) is relayed: our offer goes
to the other leg in a re-INVITE (or an UPDATE where the asker used one and the
other peer allows it), and its final answer comes back to the asker through
:func:`b2bua.modify.relay_status` (media switches only when both legs agreed).
One change is relayed at a time; a change still under way when the call ends
is answered 487.  Anything else (a session refresh, an address change of one
leg, a bad offer, anything before the bridge) is answered on the asking leg
alone, from our anchored media.

:class:`ModifyRelay` is the call's part of this; the table of
:mod:`b2bua.callstate` says when (``A_MODIFY``/``B_MODIFY`` -> ``RELAY_MODIFY``,
``MODIFY_ANSWERED`` -> ``ANSWER_MODIFY``, ``END_MODIFY`` on the way out).

Pinned by ``tests/b2bua/test_calls_modify.py`` (on the wire) and ``tests/b2bua/test_call.py``.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from .callports import CallMedia, MediaRefused, ModifyingLeg
from .modify import ModifyRequest, PendingModify, relay_status, retry_after
from .sip.causes import INCOMPATIBLE_MEDIA_FORMAT as WARN_MEDIA_FORMAT

#: the warn-code of a relayed refusal that was not a 488 (RFC 3261 §20.43 "Miscellaneous warning")
WARN_OTHER = 399

log = Logger()

#: the call's timeline (:meth:`b2bua.call.Call.note`), passed to each step: held, it would tie the call to
#: itself in a cycle that only the collector frees
Note = Callable[[str], None]


class ModifyRelay:
    """One call's relayed change (at most one at a time) and the local answers; see the module docstring."""

    def __init__(self, media: CallMedia | None, log_id: str) -> None:
        self.media = media
        self._log_id = log_id
        #: the change being relayed, and the other leg's final answer to it once it came
        self.pending: PendingModify | None = None
        self._answer: tuple[int, bytes | None] = (0, None)

    def take(self, side: str, request: ModifyRequest) -> bool:
        """Whether leg ``side``'s change is one to relay (then it is pending here); else it is answered alone."""
        if self.media is None or request.offer is None or self.pending is not None:
            return False
        try:
            offer = self.media.modify_offer(side, request.offer)
        except MediaRefused:       # the local answer says why (400/488)
            return False
        if offer is None:
            return False
        self.pending = PendingModify(side, request, offer)
        return True

    def answer_alone(self, leg: ModifyingLeg, side: str, request: ModifyRequest) -> None:
        """Answer a change on its own leg: our answer to its offer, or (no offer) our last SDP as an offer."""
        body = leg.local_sdp or b""
        if request.offer is not None and self.media is not None:
            reoffer = self.media.reoffer_from_a if side == "a" else self.media.reoffer_from_b
            try:
                body = reoffer(request.offer)
            except MediaRefused as exc:        # an offer we cannot answer (400/488), media closed (500)
                leg.answer_modify(request.method, exc.status, warn_code=exc.warn_code)
                return
        leg.answer_modify(request.method, 200, body)   # no SDP: its answer comes in the ACK

    def awaits(self, side: str) -> bool:
        """Whether leg ``side`` owes the answer to the change being relayed."""
        return self.pending is not None and side != self.pending.side

    def answered(self, status: int, sdp: bytes | None) -> None:
        """The other leg's final answer (408 when none came); :meth:`answer` relays it."""
        self._answer = (status, sdp)

    def relay(self, a: ModifyingLeg, b: ModifyingLeg, note: Note) -> None:
        """Send the pending change to the other leg (``RELAY_MODIFY``)."""
        pending = self.pending
        target = b if pending.side == "a" else a
        method = "UPDATE" if pending.request.method == "UPDATE" and target.peer_allows("UPDATE") else "INVITE"
        note(f"relaying a media change from leg {pending.side} ({pending.request.method} -> {method})")
        if target.modify(method, pending.offer) is None:
            self._done(a, b, note, 491)       # the other leg has its own exchange under way: the asker retries

    def answer(self, a: ModifyingLeg, b: ModifyingLeg, note: Note) -> None:
        """Give the asking leg the other leg's outcome (``ANSWER_MODIFY``)."""
        status, sdp = self._answer
        if not 200 <= status < 300:
            # a 488 relayed says what the other side's did (305: our offers differ only in codec); any other
            # refusal turned into 488 says only that it was refused (399, "Miscellaneous warning")
            self._done(a, b, note, relay_status(status), warn_code=WARN_MEDIA_FORMAT if status == 488 else WARN_OTHER)
            return
        try:
            body = self.media.modify_answer(self.pending.side, sdp)
        except MediaRefused as exc:    # its answer is unusable, the session stays as it was
            log.warn("call {call_id}: media change not applied: {exc}", call_id=self._log_id, exc=exc)
            self._done(a, b, note, 488, warn_code=exc.warn_code)
            return
        self._done(a, b, note, 200, body)

    def end(self, a: ModifyingLeg, b: ModifyingLeg | None, note: Note) -> None:
        """The call ends: a change still being relayed is answered 487 (``END_MODIFY``)."""
        if self.pending is not None:
            self._done(a, b, note, 487)

    def _done(self, a, b, note: Note, status: int, body: bytes | None = None, warn_code: int | None = None) -> None:
        """Answer the asking leg and forget the change (media switched only on a 2xx, by modify_answer)."""
        pending, self.pending = self.pending, None
        if status >= 300:
            self.media.modify_dropped(pending.side)
        origin = a if pending.side == "a" else b
        headers = [("Retry-After", retry_after())] if status == 500 else []
        origin.answer_modify(pending.request.method, status, body, headers, warn_code=warn_code)
        note(f"media change from leg {pending.side}: {status}")
