"""The two legs of a call over the SIP endpoint: the carrier's (we are UAS) and the agent's (we are UAC).

A leg turns the controller's orders (answer, reject, BYE, CANCEL) into
endpoint calls, and keeps what the call record needs (final status, whether it
has ended).  Whenever it sends or receives on a new transaction or dialog it
reports that key (``own``), and the call manager (:mod:`b2bua.calls`) routes
the endpoint events of that key to it through one index
(:meth:`_Leg.on_endpoint_event`).  The leg updates itself and turns what its
peer did into neutral call events (:mod:`b2bua.callevents`), which it hands to
its one sink (``emit``); it never calls the call.  Its own timers (session
timer, PRACK, a relayed change's timeout) end in call events the same way.

Each leg runs its own RFC 4028 session timer (:mod:`b2bua.session_timer`):
when we are the refresher we send a re-INVITE with our current SDP at half the
interval; when the peer is and its refresh does not come, the call is aborted
(``LegBroken(leg, "session_expired")``: BYE on both legs).

A leg also carries re-INVITE/UPDATE exchanges: the peer's, pending until the
controller has its answer (:meth:`_Leg.answer_modify`), and ours relaying the
other leg's change (:meth:`_Leg.modify`), answered within 64*T1 or the call
ends; :meth:`_Leg.pending` names what is under way for the one-at-a-time rules
of :mod:`b2bua.modify`.  On the carrier's leg a reliable provisional waits for
the PRACK of the one before (RFC 3262 §3).  On the agent's leg each 18x To tag
is an early dialog (a forking proxy); the first 2xx confirms its own, a 2xx
from another fork is ACKed and BYEd with ``Reason: SIP;cause=200;text="Call
completed elsewhere"``, and a 2xx that crosses our CANCEL gets a BYE with the
CANCEL's Reason.

What the legs write for the peers' software to read: our 2xx to an INVITE and
our INVITE to an agent carry Allow and Supported (:mod:`b2bua.capabilities`);
every 488 a leg sends carries a Warning (RFC 3261 §20.43) with the warn-code
media chose, 305 by default; a BYE or CANCEL carries the Reason (RFC 3326) the
call chose (:mod:`b2bua.clearing`).

Tests pin this through the SIPp scenarios of ``tests/sipp/``, the manager's
unit tests with plain bytes on a Clock, and ``tests/b2bua/test_calls_modify.py``,
``tests/b2bua/test_legs_fork.py`` and ``tests/b2bua/test_prack_leg.py`` on the wire.
"""

from __future__ import annotations

import functools
import random
from types import MappingProxyType
from typing import Callable, Mapping

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .callevents import (Acked, Answered, Bye, Cancelled, Dtmf, Failed, LegBroken, LegEnded, ModifyAnswered,
                         ModifyOffer, Ringing, SendFailed)
from .capabilities import SUPPORTED_AS_UAC, uac_headers, uas_headers
from .clearing import COMPLETED_ELSEWHERE
from .info import answer_info
from .modify import (UAC_INVITE, UAC_OFFER, UAS_INVITE, UAS_OFFER, UAS_UPDATE, ModifyRequest, conflict,
                     retry_after)
from .prack import ReliableProvisional, first_rseq, parse_rack, wants_100rel, wants_p_early_media
from .session_timer import Terms, as_uac, as_uas, uac_request_headers
from .sip.causes import INCOMPATIBLE_MEDIA_FORMAT, Reason, warning_value
from .sip.dialog import DialogId
from .sip.endpoint import (AckNeverCame, AckReceived, CancelReceived, DialogEnded, RequestReceived,
                           ResponseReceived, SipEndpoint, TransactionError, TransactionTimedOut, TransportFailed)
from .sip.headers import header_key
from .sip.message import SipRequest, SipResponse
from .sip.timers import DEFAULT_TIMERS

SDP = "application/sdp"
#: what a leg reads while no re-INVITE/UPDATE of its peer waits for our answer (its ``uas_modify`` is None)
_NO_MODIFY: Mapping[str, tuple[str, SipRequest]] = MappingProxyType({})

#: what a leg hands its call events to (the manager's sink, which runs them as the call's input)
Emit = Callable[[object], None]
#: what a leg reports each transaction id or dialog id it now owns to: own(leg, key)
Own = Callable[["_Leg", object], None]


def glare_wait_s(owns_call_id: bool, rng: random.Random | None = None) -> float:
    """How long to wait before retrying a re-INVITE that got 491 (RFC 3261 §14.1).

    2.1 to 4 s when we chose the dialog's Call-ID (we sent its INVITE), 0 to 2 s otherwise,
    so that the two sides of a glare retry at different times.
    """
    rng = rng or random
    return rng.uniform(2.1, 4.0) if owns_call_id else rng.uniform(0.0, 2.0)


def sdp_of(message: SipRequest | SipResponse) -> bytes | None:
    """The message's SDP body, or None (``content_type`` is the media type, lower case, without parameters)."""
    return message.body if message.body and message.content_type == SDP else None


#: Allow texts up to this long share their set (longer ones, which no phone sends, are read each time)
_ALLOW_SHARED_CHARS = 512


def allowed_methods(headers) -> frozenset[str]:
    """The methods a message's Allow headers list, upper case (none: an empty set, nothing assumed).

    Legs whose peers send the same Allow text share one frozenset: a held call keeps one per leg, 432 B a
    call when each had its own (``bench/memory.py --by-site``, legs.py:85)."""
    values = tuple(headers.get_all("allow"))
    if sum(map(len, values)) <= _ALLOW_SHARED_CHARS:
        return _shared_allowed(values)
    return _allowed(values)


def _allowed(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(t.strip().upper() for v in values for t in v.split(","))


_shared_allowed = functools.lru_cache(maxsize=256)(_allowed)


#: our Supported in the requests we send (re-INVITE, UPDATE)
_SUPPORTED_UAC = ("Supported", ", ".join(SUPPORTED_AS_UAC))


def _reason_headers(reason: Reason | None) -> list[tuple[str, str]]:
    return [reason.header()] if reason is not None else []


class _SessionTimer:
    """One leg's refresh/expiry timer: at the refresh it has the leg send one (``_send_refresh``), at the expiry the
    leg ends the call (``_session_expired``). It holds the leg, not two bound methods of it (a held call kept
    four, 256 B, ``bench/memory.py --by-site``: legs.py)."""

    __slots__ = ("reactor", "_leg", "terms", "_last", "_timer", "_retry")

    def __init__(self, reactor: IReactorTime, leg: "_Leg"):
        self.reactor = reactor
        self._leg: _Leg | None = leg
        self.terms: Terms | None = None
        #: when the session was last refreshed (clock seconds)
        self._last = 0.0
        self._timer: IDelayedCall | None = None
        self._retry: IDelayedCall | None = None

    def start(self, terms: Terms | None) -> None:
        self.terms = terms
        self.refreshed()

    def refreshed(self) -> None:
        """A refresh went through (sent by us and answered 2xx, or received from the peer)."""
        self.cancel()
        if self.terms is None:
            return
        self._last = now = self.reactor.seconds()
        if self.terms.we_refresh:
            self._timer = self.reactor.callLater(self.terms.refresh_due(now) - now, self._fire_refresh)
        else:
            self._timer = self.reactor.callLater(self.terms.expires_at(now) - now, self._fire_expire)

    def _fire_refresh(self) -> None:
        if self._leg is not None:
            self._leg._send_refresh()
        # until its 2xx comes (refreshed()), the session dies when the last refresh's interval runs out
        now = self.reactor.seconds()
        self._timer = self.reactor.callLater(max(0.0, self.terms.expires_at(self._last) - now), self._fire_expire)

    def _fire_expire(self) -> None:
        if self._leg is not None:
            self._leg._session_expired()

    def _fire_retry(self) -> None:
        if self._leg is not None:
            self._leg._send_refresh()

    def retry_refresh(self, delay_s: float) -> None:
        """Send the refresh again in ``delay_s`` (after a 491); the expiry timer keeps running."""
        if self._retry is not None and self._retry.active():
            return
        self._retry = self.reactor.callLater(delay_s, self._fire_retry)

    def cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def close(self) -> None:
        """The leg is over: cancel, and let go of the leg (the leg holds this timer: no cycle is left)."""
        self.cancel()
        self._leg = None

    @property
    def pending(self) -> bool:
        return ((self._timer is not None and self._timer.active())
                or (self._retry is not None and self._retry.active()))


class _Leg:
    """What both legs share: the endpoint, the dialog, the session timer, BYE, re-INVITE/UPDATE.

    A leg is kept for the whole call, so it keeps no message: what it needs of the peer's INVITE or 2xx is
    read out when it comes (``bench/memory.py``: the INVITE and the peer's headers were ~6 KB of a held call's
    36 KB, and an instance dict ~0.8 KB a leg before these slots)."""

    __slots__ = ("endpoint", "reactor", "_emit", "_own", "keys", "dialog_id", "ended", "final_status", "bye_tx",
                 "local_sdp", "refresh_tx", "owns_call_id", "timer", "uas_modify", "modify_tx", "modify_method",
                 "_modify_body", "_modify_timer", "offer_in_2xx", "peer_allow")

    #: how long the other leg's answer to a relayed change may take (Timer B's 64*T1)
    MODIFY_TIMEOUT_S = DEFAULT_TIMERS.sixty_four_t1
    #: Allow and Supported of our 2xx to this leg's (re-)INVITE: as the carrier's UAS (100rel, timer); the
    #: agent's leg says what it said in our INVITE (timer)
    CAPABILITIES = staticmethod(uas_headers)

    def __init__(self, endpoint: SipEndpoint, reactor: IReactorTime, *, emit: Emit, own: Own):
        self.endpoint = endpoint
        #: the call's clock (:class:`b2bua.calldriver.CallInputs`): each timer's firing is one input
        self.reactor = reactor
        self._emit = emit
        self._own = own
        #: the transaction and dialog ids this leg reported as its own (the manager's index holds them)
        self.keys: list[object] = []
        self.dialog_id: DialogId | None = None
        self.ended = False
        self.final_status: int | None = None
        self.bye_tx: str | None = None
        self.local_sdp: bytes | None = None
        #: our re-INVITE (session refresh) in progress on this leg, until its final response
        self.refresh_tx: str | None = None
        #: whether we chose this dialog's Call-ID (the agent's leg): sets the glare retry wait (§14.1)
        self.owns_call_id = False
        self.timer = _SessionTimer(reactor, self)
        #: the peer's re-INVITE/UPDATE still waiting for our final answer: method -> (transaction, request); None
        #: until the first (a held call's legs kept an empty dict each, 64 B)
        self.uas_modify: dict[str, tuple[str, SipRequest]] | None = None
        #: our re-INVITE/UPDATE carrying the other leg's change, until its final response
        self.modify_tx: str | None = None
        self.modify_method: str | None = None
        self._modify_body = b""
        self._modify_timer: IDelayedCall | None = None
        #: our offer went in a 2xx to an offerless re-INVITE; the ACK brings the answer
        self.offer_in_2xx = False
        #: the methods in the Allow of the peer's INVITE (carrier) or 2xx (agent), upper case: UPDATE or not
        self.peer_allow: frozenset[str] = frozenset()

    def _now(self) -> float:
        return self.reactor.seconds()

    def _owns(self, key: object) -> None:
        """``key`` (a transaction or dialog id) is this leg's now: its events are routed here."""
        self.keys.append(key)
        self._own(self, key)

    # -- endpoint events (the manager routes those of our keys here) --------------------------

    def on_endpoint_event(self, event: object) -> None:
        """One endpoint event of a transaction or dialog this leg owns; what it means for the call is emitted."""
        if isinstance(event, ResponseReceived):
            self._response(event)
        elif isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, (TransactionTimedOut, TransportFailed)):
            self._transaction_failed(event)
        elif isinstance(event, AckReceived):
            self.offer_in_2xx = False
            sdp = sdp_of(event.request)
            if sdp is not None:
                self._emit(Acked(self, sdp))
        elif isinstance(event, AckNeverCame):
            self.offer_in_2xx = False
            self._emit(LegBroken(self, "no_ack"))
        elif isinstance(event, DialogEnded):
            self.dialog_ended()
            if event.reason in ("timeout", "481", "408"):
                self._emit(LegBroken(self, f"dialog_{event.reason}"))
            self._emit(LegEnded(self))
        elif isinstance(event, CancelReceived):
            self._cancelled()

    def _cancelled(self) -> None:
        """A CANCEL for a transaction that is not an INVITE we answer: nothing to do."""

    def _request(self, event: RequestReceived) -> None:
        """A request in our dialog: BYE ends it, re-INVITE/UPDATE go to the call, INFO is answered by
        :mod:`b2bua.info` (its DTMF key to the call), anything else gets 200."""
        method = event.request.method
        now = self._now()
        if method == "BYE":
            self.endpoint.respond(event.transaction_id, 200, now)
            self.dialog_ended()
            self._emit(Bye(self))
            self._emit(LegEnded(self))
        elif method in ("INVITE", "UPDATE"):
            self._modify_request(event)
        elif method == "INFO":
            answer = answer_info(event.request)
            self.endpoint.respond(event.transaction_id, answer.status, now, reason=answer.reason,
                                  headers=answer.headers)
            if answer.key is not None:
                self._emit(Dtmf(answer.key, self))
        else:
            self.endpoint.respond(event.transaction_id, 200, now)

    def _modify_request(self, event: RequestReceived) -> None:
        """A re-INVITE or UPDATE: refused when it crosses another exchange (RFC 3261 §14.2, RFC 3311 §5.2:
        491, or 500 with Retry-After), else pending here until the call answers it."""
        request = event.request
        method = request.method
        offer = sdp_of(request)
        status = conflict(method, offer is not None, self.pending())
        if status is not None:
            self.endpoint.respond(event.transaction_id, status, self._now(),
                                  headers=[("Retry-After", retry_after())] if status == 500 else ())
            return
        if self.uas_modify is None:
            self.uas_modify = {}
        self.uas_modify[method] = (event.transaction_id, request)
        self._emit(ModifyOffer(self, ModifyRequest(method, event.transaction_id, offer)))

    def _response(self, event: ResponseReceived) -> None:
        status = event.response.status
        tx = event.transaction_id
        if tx == self.modify_tx:
            if status >= 200:
                self.modify_answered(status)
                self._emit(ModifyAnswered(self, status, sdp_of(event.response)))
        elif tx == self.refresh_tx:
            if status >= 200:
                self.refresh_answered(status)
            if 200 <= status < 300:
                self.timer.refreshed()
            elif status >= 300 and status != 491:
                self._emit(LegBroken(self, "refresh_failed"))
        if status >= 200 and tx == self.bye_tx:
            self.dialog_ended()
            self._emit(LegEnded(self))

    def _transaction_failed(self, event: TransactionTimedOut | TransportFailed) -> None:
        """Our request in the dialog timed out (408) or the transport could not carry it (503): the asker of a
        relayed change hears that status, and the call hears :class:`SendFailed` (a call still up ends)."""
        tx = event.transaction_id
        status = 408 if isinstance(event, TransactionTimedOut) else 503
        if tx == self.modify_tx:
            self.modify_answered(408)
            self._emit(ModifyAnswered(self, status, None))
        elif tx == self.bye_tx:
            self.dialog_ended()
            self._emit(SendFailed(self, event.method, status))
            self._emit(LegEnded(self))
            return
        elif tx == self.refresh_tx:
            self.refresh_tx = None
        else:
            return
        self._emit(SendFailed(self, event.method, status))

    # -- what the call orders -----------------------------------------------------------------

    def bye(self, reason: Reason | None = None) -> None:
        """End the dialog with a BYE, carrying ``reason`` (RFC 3326: why, see :mod:`b2bua.clearing`)."""
        self.timer.cancel()
        self._stop_modify_timer()
        if self.ended or self.bye_tx is not None:
            return
        if self.dialog_id is None or self.dialog_id not in self.endpoint.dialogs:
            self.ended = True
            return
        self.bye_tx = self.endpoint.request_in_dialog(self.dialog_id, "BYE", self._now(),
                                                      headers=_reason_headers(reason))
        self._owns(self.bye_tx)

    def _warned(self, status: int, headers, warn_code: int | None) -> list[tuple[str, str]]:
        """``headers``, and on a 488 a Warning (RFC 3261 §20.43) with ``warn_code`` (default 305) from our host,
        unless one is given: every 488 we send says what in the session description we cannot take."""
        extra = list(headers)
        if status == 488 and not any(header_key(name) == "warning" for name, _ in extra):
            extra.append(("Warning", warning_value(warn_code or INCOMPATIBLE_MEDIA_FORMAT, self.endpoint.local_host)))
        return extra

    def _send_refresh(self) -> None:
        if self.ended or self.dialog_id is None or self.dialog_id not in self.endpoint.dialogs:
            return
        if self.pending():
            # a re-INVITE/UPDATE is under way on this leg (its 2xx refreshes too): try again a little later
            self.timer.retry_refresh(glare_wait_s(self.owns_call_id))
            return
        body = self.local_sdp or b""
        self.refresh_tx = self.endpoint.request_in_dialog(
            self.dialog_id, "INVITE", self._now(), body=body, content_type=SDP if body else None,
            headers=[("Session-Expires", f"{self.timer.terms.interval_s};refresher=uac"), _SUPPORTED_UAC])
        self._owns(self.refresh_tx)

    @property
    def reinvite_pending(self) -> bool:
        """Our re-INVITE on this leg has no final answer yet: a re-INVITE from the peer now is glare (491)."""
        return self.refresh_tx is not None

    def refresh_answered(self, status: int, rng: random.Random | None = None) -> None:
        """The final answer to our refresh; on 491 (glare) it is sent again after the §14.1 wait."""
        self.refresh_tx = None
        if status == 491 and not self.ended:
            self.timer.retry_refresh(glare_wait_s(self.owns_call_id, rng))

    # -- re-INVITE and UPDATE: one offer/answer at a time (b2bua.modify) ---------------------

    def pending(self) -> frozenset[str]:
        """What is in progress on this leg that a new re-INVITE/UPDATE would cross (b2bua.modify's names)."""
        flags = set()
        for method, (_, request) in (self.uas_modify or _NO_MODIFY).items():
            flags.add(UAS_INVITE if method == "INVITE" else UAS_UPDATE)
            if sdp_of(request) is not None:
                flags.add(UAS_OFFER)
        if self.refresh_tx is not None or self.modify_method == "INVITE":
            flags.add(UAC_INVITE)
        if self.refresh_tx is not None or self.modify_tx is not None or self.offer_in_2xx:
            flags.add(UAC_OFFER)
        return frozenset(flags)

    def peer_allows(self, method: str) -> bool:
        """Whether the peer listed ``method`` in its Allow (no Allow: we do not assume it)."""
        return method in self.peer_allow

    def answer_modify(self, method: str, status: int, body: bytes | None = None,
                      headers: list[tuple[str, str]] | tuple = (), warn_code: int | None = None) -> None:
        """The final answer to the peer's pending re-INVITE/UPDATE; a 2xx also refreshes the session timer.

        A 2xx to a re-INVITE carries our Allow and Supported; a 488 a Warning with ``warn_code``."""
        transaction_id, request = self.uas_modify.pop(method, (None, None)) if self.uas_modify else (None, None)
        if transaction_id is None:
            return
        extra = self._warned(status, headers, warn_code)
        ok = 200 <= status < 300
        if ok:
            se = request.headers.get("session-expires")
            if se:
                extra += [("Session-Expires", se), ("Require", "timer")]
            if method == "INVITE":
                extra += self.CAPABILITIES()
        try:
            self.endpoint.respond(transaction_id, status, self._now(), body=body or b"",
                                  content_type=SDP if body else None, headers=extra)
        except TransactionError:
            ok = False       # the transaction is gone (the peer gave up); nothing to refresh
        if ok:
            if body:
                self.local_sdp = body
            self.offer_in_2xx = bool(body) and method == "INVITE" and sdp_of(request) is None
            self.timer.refreshed()

    def modify(self, method: str, body: bytes) -> str | None:
        """Send the other leg's change to this leg's peer (re-INVITE or UPDATE with our ``body``).

        None when this leg cannot take one now: no dialog, BYE under way, or an offer/answer or
        INVITE of either side still pending here (the asker then gets 491 and retries).
        """
        if (self.ended or self.bye_tx is not None or self.dialog_id is None
                or self.dialog_id not in self.endpoint.dialogs or self.pending()):
            return None
        headers = [_SUPPORTED_UAC]
        terms = self.timer.terms
        if terms is not None:      # a refresh too; whoever refreshes this leg goes on doing so
            headers.append(("Session-Expires", f"{terms.interval_s};refresher={'uac' if terms.we_refresh else 'uas'}"))
        try:
            self.modify_tx = self.endpoint.request_in_dialog(self.dialog_id, method, self._now(), body=body,
                                                             content_type=SDP, headers=headers)
        except (TransactionError, ValueError):
            return None
        self._owns(self.modify_tx)
        self.modify_method = method
        self._modify_body = body
        # a re-INVITE answered 100 and then nothing has no transaction timer (Proceeding): ours ends the wait
        self._modify_timer = self.reactor.callLater(self.MODIFY_TIMEOUT_S, self._modify_expired)
        return self.modify_tx

    def modify_answered(self, status: int) -> None:
        """The final response to our :meth:`modify`; a 2xx makes its SDP ours on this leg and refreshes the timer."""
        self.modify_tx = self.modify_method = None
        self._stop_modify_timer()
        if 200 <= status < 300:
            self.local_sdp = self._modify_body
            self.timer.refreshed()

    def _modify_expired(self) -> None:
        """No final answer in 64*T1: the asker gets 408 and, as for a request that timed out in a dialog
        (RFC 3261 §12.2.1.2), this leg's dialog is given up, which ends the call."""
        self._modify_timer = None
        self.modify_tx = self.modify_method = None
        self._emit(ModifyAnswered(self, 408, None))
        self._emit(LegBroken(self, "modify_timeout"))

    def _stop_modify_timer(self) -> None:
        if self._modify_timer is not None and self._modify_timer.active():
            self._modify_timer.cancel()
        self._modify_timer = None

    @property
    def modify_timer_pending(self) -> bool:
        return self._modify_timer is not None and self._modify_timer.active()

    def pending_timers(self) -> int:
        """This leg's timers still armed (the open-counts invariant)."""
        return int(self.timer.pending) + int(self.modify_timer_pending)

    def stop_timers(self) -> None:
        """The call is over: no timer of this leg may fire any more."""
        self.timer.close()
        self._stop_modify_timer()

    def _session_expired(self) -> None:
        if not self.ended:
            self._emit(LegBroken(self, "session_expired"))

    def dialog_ended(self) -> None:
        """The endpoint forgot this leg's dialog (BYE either way, 481, timeout)."""
        self.timer.cancel()
        self._stop_modify_timer()
        self.ended = True


class SipInboundLeg(_Leg):
    """The carrier's leg: we answer its INVITE (server transaction ``tx_id``)."""

    #: reliable provisionals that may wait for an earlier one's PRACK; more are dropped
    MAX_QUEUED_RELIABLE = 8

    __slots__ = ("tx_id", "invite_seq", "offer", "answered", "use_100rel", "p_early_media", "reliable",
                 "reliable_queue", "_rseq", "_prack_timer", "_reliable_args", "terms", "too_small", "_timer_headers")

    def __init__(self, endpoint: SipEndpoint, reactor: IReactorTime, *, emit: Emit, own: Own,
                 tx_id: str, invite: SipRequest, session_expires_s: int, min_se_s: int):
        super().__init__(endpoint, reactor, emit=emit, own=own)
        self.tx_id = tx_id
        #: the INVITE's CSeq number (the RAck of a reliable provisional names it)
        self.invite_seq = invite.cseq.seq
        self.offer = sdp_of(invite)
        self.answered = False
        #: RFC 3262: the carrier asked for reliable provisionals; ``reliable`` is the one awaiting its PRACK
        self.use_100rel = wants_100rel(invite)
        self.p_early_media = wants_p_early_media(invite)
        self.reliable: ReliableProvisional | None = None
        #: reliable provisionals waiting for the one before to be PRACKed (RFC 3262 §3), oldest first; None while
        #: none has waited, and again after the final answer (kept for the whole call, an empty list was 56 B)
        self.reliable_queue: list[tuple[int, bytes | None]] | None = None
        self._rseq = first_rseq()
        self._prack_timer: IDelayedCall | None = None
        self._reliable_args: tuple = ()
        self.peer_allow = allowed_methods(invite.headers)
        supported = {t.strip().lower() for v in invite.headers.get_all("supported") for t in v.split(",")}
        self.terms, self.too_small, self._timer_headers = as_uas(
            invite.headers.get("session-expires"), invite.headers.get("min-se"), "timer" in supported,
            min_se_s, session_expires_s)
        self._owns(tx_id)

    def _cancelled(self) -> None:
        """The endpoint answered the carrier's CANCEL (200) and its INVITE (487)."""
        self._final_sent()
        self.final_status = 487
        self.ended = True
        self._emit(Cancelled(self))

    def _transaction_failed(self, event: TransactionTimedOut | TransportFailed) -> None:
        if event.transaction_id == self.tx_id:
            if not self.answered:
                # the caller's connection closed before we answered its INVITE: nobody is left to answer.
                # (After the answer a closed connection is no hang-up, RFC 5923 §4: the carrier may open
                # another for its BYE; a side that is really gone falls silent, and the media silence
                # timeout ends the call.)
                self._final_sent()
                self.ended = True
                self._emit(LegBroken(self, "carrier_transport_failed"))
            return
        super()._transaction_failed(event)

    def provisional(self, status: int, sdp: bytes | None = None) -> None:
        if self.ended or self.answered:
            return
        if self.use_100rel and status > 100:
            self._send_reliable(status, sdp)
            return
        try:
            self.endpoint.respond(self.tx_id, status, self._now(), body=sdp or b"",
                                  content_type=SDP if sdp else None)
        except TransactionError:
            self._transaction_gone()

    def _transaction_gone(self) -> None:
        """The carrier's INVITE transaction ended before we answered it (its connection closed, an ICMP
        error, our own timers while the store was slow): nothing can be sent on this leg any more, so the
        leg has ended; the call hears it once its current action is done (the driver queues the events)."""
        self.ended = True
        self._emit(LegBroken(self, "carrier_transaction_gone"))
        self._emit(LegEnded(self))

    # -- RFC 3262 -------------------------------------------------------------------
    def _send_reliable(self, status: int, sdp: bytes | None) -> None:
        """A reliable provisional (Require: 100rel, RSeq), retransmitted until its PRACK comes."""
        if self.reliable is not None and not self.reliable.acknowledged:
            # one unacknowledged reliable provisional at a time (RFC 3262 §3): this one waits its turn
            if self.reliable_queue is None:
                self.reliable_queue = []
            if len(self.reliable_queue) < self.MAX_QUEUED_RELIABLE:
                self.reliable_queue.append((status, sdp))
            return
        self._rseq += 1 if self.reliable is not None else 0
        self.reliable = ReliableProvisional(self._rseq, self.invite_seq, self._now())
        headers = self.reliable.headers(self.p_early_media)
        self._reliable_args = (status, dict(body=sdp or b"", content_type=SDP if sdp else None, headers=headers))
        self._send_reliable_again()
        self._arm_prack_timer()

    def _send_reliable_again(self) -> None:
        status, kwargs = self._reliable_args
        try:
            self.endpoint.respond(self.tx_id, status, self._now(), **kwargs)
        except TransactionError:
            self.stop_prack()

    def _arm_prack_timer(self) -> None:
        rel = self.reliable
        self._prack_timer = self.reactor.callLater(max(0.0, rel.next_at - self._now()), self._prack_due)

    def _prack_due(self) -> None:
        self._prack_timer = None
        rel = self.reliable
        if rel is None or self.ended or self.answered:
            return
        what = rel.due(self._now())
        if what == "give_up":
            self._emit(LegBroken(self, "no_prack"))
            return
        if what == "retransmit":
            self._send_reliable_again()
        self._arm_prack_timer()

    def prack(self, rack_value: str | None) -> bool:
        """A PRACK's RAck: True when it acknowledges our reliable provisional (retransmissions stop).

        The next queued reliable provisional goes with :meth:`send_queued`, after the PRACK's 200.
        """
        rel = self.reliable
        if rel is None or not rel.matches(parse_rack(rack_value)):
            return False
        rel.acknowledged = True
        self.stop_prack()
        return True

    def send_queued(self) -> None:
        """Send the oldest reliable provisional that waited for the last one's PRACK, if any."""
        if self.reliable_queue and not (self.ended or self.answered):
            status, sdp = self.reliable_queue.pop(0)
            self._send_reliable(status, sdp)

    @property
    def prack_timer_pending(self) -> bool:
        return self._prack_timer is not None and self._prack_timer.active()

    def pending_timers(self) -> int:
        return super().pending_timers() + int(self.prack_timer_pending)

    def stop_prack(self) -> None:
        if self._prack_timer is not None and self._prack_timer.active():
            self._prack_timer.cancel()
        self._prack_timer = None

    def stop_timers(self) -> None:
        super().stop_timers()
        self.stop_prack()

    def _final_sent(self) -> None:
        """The INVITE got its final answer: no more provisionals, queued ones are dropped, and the session timer
        headers of our 2xx are not kept for the rest of the call (~175 B of it, bench/memory.py --by-site)."""
        self.stop_prack()
        self.reliable_queue = None
        self._timer_headers = ()

    def dialog_ended(self) -> None:
        self._final_sent()
        super().dialog_ended()

    def answer(self, sdp: bytes) -> None:
        if self.ended or self.answered:
            return
        self.local_sdp = sdp or None
        headers = [*self._timer_headers, *self.CAPABILITIES()]
        self._final_sent()
        try:
            self.dialog_id = self.endpoint.respond(self.tx_id, 200, self._now(), body=sdp or b"",
                                                   content_type=SDP if sdp else None, headers=headers)
        except TransactionError:
            self._transaction_gone()
            return
        self.answered = True
        self.final_status = 200
        if self.dialog_id is not None:
            self._owns(self.dialog_id)
        self.timer.start(self.terms)

    def reject(self, status: int, headers: list[tuple[str, str]] | None = None, warn_code: int | None = None) -> None:
        """A final non-2xx to the carrier's INVITE; a 488 carries a Warning with ``warn_code`` (default 305)."""
        if self.ended or self.answered:
            return
        self._final_sent()
        try:
            self.endpoint.respond(self.tx_id, status, self._now(),
                                  headers=self._warned(status, headers or (), warn_code))
        except TransactionError:
            pass   # the transaction is gone already (a CANCEL answered it 487)
        self.final_status = status
        self.ended = True


class SipOutboundLeg(_Leg):
    """One agent's leg: our INVITE (client transaction ``tx_id``) and, once answered, its dialog."""

    CAPABILITIES = staticmethod(uac_headers)

    __slots__ = ("agent", "tx_id", "answered", "cancel_sent", "cancel_reason", "early", "fork_byes")

    def __init__(self, endpoint: SipEndpoint, reactor: IReactorTime, *, emit: Emit, own: Own,
                 agent: str, invite: SipRequest):
        super().__init__(endpoint, reactor, emit=emit, own=own)
        self.agent = agent
        self.local_sdp = sdp_of(invite)
        self.owns_call_id = True
        self.tx_id = endpoint.send_request(invite, self._now())
        self.answered = False
        self.cancel_sent = False
        #: the Reason our CANCEL carried: a 2xx that crosses it gets a BYE saying the same
        self.cancel_reason: Reason | None = None
        #: early dialogs (RFC 3261 §12.1.2): the To tag of each 18x, its last status; a forking proxy makes several.
        #: None before the first and once the INVITE has its answer (a held call kept an emptied dict, 64 B)
        self.early: dict[str, int] | None = None
        #: 2xx from other forks after ours: ACKed (by the endpoint) and BYEd, their BYE transactions (None: none)
        self.fork_byes: list[str] | None = None
        self._owns(self.tx_id)

    @staticmethod
    def invite_headers(session_expires_s: int, min_se_s: int) -> list[tuple[str, str]]:
        """Our INVITE's Allow and Supported (:mod:`b2bua.capabilities`) and session timer request."""
        return uac_headers() + uac_request_headers(session_expires_s, min_se_s)

    def cancel(self, reason: Reason | None = None) -> None:
        """CANCEL our INVITE, carrying ``reason`` (RFC 3326)."""
        if self.ended or self.answered or self.cancel_sent:
            return
        self.cancel_sent = True
        self.cancel_reason = reason
        try:
            self.endpoint.cancel(self.tx_id, self._now(), headers=_reason_headers(reason))
        except TransactionError:
            pass

    def bye(self, reason: Reason | None = None) -> None:
        """End the dialog with a BYE carrying ``reason`` (none given: the Reason of the CANCEL its 2xx crossed);
        not answered yet, a CANCEL does it (the 2xx that may cross gets ACK+BYE)."""
        if not self.answered and not self.ended:
            self.cancel(reason)
            return
        super().bye(reason if reason is not None else self.cancel_reason)

    def _response(self, event: ResponseReceived) -> None:
        if event.transaction_id == self.tx_id:
            self.response(event.response, event.dialog_id)
        else:
            super()._response(event)

    def _transaction_failed(self, event: TransactionTimedOut | TransportFailed) -> None:
        if event.transaction_id == self.tx_id:
            self.failed(408 if isinstance(event, TransactionTimedOut) else 503)
        else:
            super()._transaction_failed(event)

    def response(self, response: SipResponse, dialog_id: DialogId | None) -> None:
        """A response to our INVITE."""
        status = response.status
        if status < 200:
            tag = response.to.tag if status > 100 else None
            if tag is not None and not self.answered:
                if self.early is None:
                    self.early = {}
                self.early[tag] = status
            self._emit(Ringing(self, status))
            return
        self.early = None      # the INVITE has its answer: the early dialogs that did not answer are gone
        if status < 300:
            if self.answered:
                if dialog_id is not None and dialog_id != self.dialog_id:
                    self._bye_fork(dialog_id)     # §13.2.2.4: another fork answered too: ACKed, now BYE
                return
            self.answered = True
            self.final_status = status
            self.dialog_id = dialog_id
            self.peer_allow = allowed_methods(response.headers)
            if dialog_id is not None:
                self._owns(dialog_id)
            self.timer.start(as_uac(response.headers.get("session-expires")))
            self._emit(Answered(self, sdp_of(response)))
            return
        if self.answered:
            return
        self.final_status = status
        self.ended = True
        self._emit(Failed(self, status))

    def _bye_fork(self, dialog_id: DialogId) -> None:
        """BYE the dialog of a fork that answered after ours: the call was completed elsewhere (RFC 3326)."""
        try:
            bye_tx = self.endpoint.request_in_dialog(dialog_id, "BYE", self._now(),
                                                     headers=_reason_headers(COMPLETED_ELSEWHERE))
        except TransactionError:
            return
        if self.fork_byes is None:
            self.fork_byes = []
        self.fork_byes.append(bye_tx)

    def failed(self, status: int) -> None:
        """Our INVITE got no answer (408) or could not be sent (503)."""
        if self.ended or self.answered:
            return
        self.early = None
        self.final_status = status
        self.ended = True
        self._emit(Failed(self, status))


class UnreachableLeg:
    """An agent we could not even send to (bad URI, no route): ended, 503; the call hears ``Failed``."""

    def __init__(self, agent: str):
        self.agent = agent
        self.ended = True
        self.answered = False
        self.final_status = 503
        self.dialog_id = None
        self.local_sdp: bytes | None = None
        self.keys: list[object] = []

    def cancel(self, reason: Reason | None = None) -> None:
        pass

    def bye(self, reason: Reason | None = None) -> None:
        pass

    def peer_allows(self, method: str) -> bool:
        return False

    def modify(self, method: str, body: bytes) -> str | None:
        return None

    def answer_modify(self, method: str, status: int, body: bytes | None = None,
                      headers: list[tuple[str, str]] | tuple = (), warn_code: int | None = None) -> None:
        pass

    def pending_timers(self) -> int:
        return 0

    def stop_timers(self) -> None:
        pass
