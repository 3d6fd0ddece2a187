"""The two legs of a call over the SIP endpoint: the carrier's (we are UAS) and the agent's (we are UAC).

A leg turns the controller's orders (answer, reject, BYE, CANCEL) into
endpoint calls, and keeps what the call record needs (final status, whether it
has ended).  The call manager (:mod:`b2bua.calls`) routes endpoint events to
the leg they belong to; the leg updates itself and tells the controller.

Each leg runs its own RFC 4028 session timer (:mod:`b2bua.session_timer`):
when we are the refresher we send a re-INVITE with our current SDP at half the
interval; when the peer is and its refresh does not come, the call is aborted
(BYE on both legs).

Tests pin this through the SIPp scenarios of ``tests/sipp/`` and the manager's
unit tests with plain bytes on a Clock.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .prack import ReliableProvisional, first_rseq, parse_rack, wants_100rel, wants_p_early_media
from .session_timer import Terms, as_uac, as_uas, uac_request_headers
from .sip.dialog import DialogId
from .sip.endpoint import SipEndpoint, TransactionError
from .sip.message import SipRequest, SipResponse

if TYPE_CHECKING:
    from .call import Call

SDP = "application/sdp"


def glare_wait_s(owns_call_id: bool, rng: random.Random | None = None) -> float:
    """How long to wait before retrying a re-INVITE that got 491 (RFC 3261 §14.1).

    2.1 to 4 s when we chose the dialog's Call-ID (we sent its INVITE), 0 to 2 s otherwise,
    so that the two sides of a glare retry at different times.
    """
    rng = rng or random
    return rng.uniform(2.1, 4.0) if owns_call_id else rng.uniform(0.0, 2.0)


def sdp_of(message: SipRequest | SipResponse) -> bytes | None:
    """The message's SDP body, or None."""
    if message.body and (message.content_type or "").split(";")[0].strip().lower() == SDP:
        return message.body
    return None


class _SessionTimer:
    """One leg's refresh/expiry timer; ``refresh`` sends a refresh, ``expire`` ends the call."""

    def __init__(self, reactor: IReactorTime, refresh: Callable[[], None], expire: Callable[[], None]):
        self.reactor = reactor
        self._refresh = refresh
        self._expire = expire
        self.terms: Terms | None = None
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
            self._timer = self.reactor.callLater(self.terms.expires_at(now) - now, self._expire)

    def _fire_refresh(self) -> None:
        self._refresh()
        # until its 2xx comes (refreshed()), the session dies when the last refresh's interval runs out
        now = self.reactor.seconds()
        self._timer = self.reactor.callLater(max(0.0, self.terms.expires_at(self._last) - now), self._expire)

    def retry_refresh(self, delay_s: float) -> None:
        """Send the refresh again in ``delay_s`` (after a 491); the expiry timer keeps running."""
        if self._retry is not None and self._retry.active():
            return
        self._retry = self.reactor.callLater(delay_s, self._refresh)

    def cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    @property
    def pending(self) -> bool:
        return ((self._timer is not None and self._timer.active())
                or (self._retry is not None and self._retry.active()))


class _Leg:
    """What both legs share: the endpoint, the dialog, the session timer, BYE."""

    def __init__(self, endpoint: SipEndpoint, reactor: IReactorTime, flush: Callable[[], None]):
        self.endpoint = endpoint
        self.reactor = reactor
        self._flush = flush
        self.call: Call | None = None
        self.dialog_id: DialogId | None = None
        self.ended = False
        self.final_status: int | None = None
        self.bye_tx: str | None = None
        self.local_sdp: bytes | None = None
        #: our re-INVITE (session refresh) in progress on this leg, until its final response
        self.refresh_tx: str | None = None
        #: whether we chose this dialog's Call-ID (the agent's leg): sets the glare retry wait (§14.1)
        self.owns_call_id = False
        self.timer = _SessionTimer(reactor, self._send_refresh, self._session_expired)
        #: told when the leg's dialog exists (the manager routes in-dialog requests by it)
        self.on_dialog: Callable[["_Leg"], None] = lambda leg: None

    def _now(self) -> float:
        return self.reactor.seconds()

    def bye(self) -> None:
        self.timer.cancel()
        if self.ended or self.bye_tx is not None:
            return
        if self.dialog_id is None or self.dialog_id not in self.endpoint.dialogs:
            self.ended = True
            return
        self.bye_tx = self.endpoint.request_in_dialog(self.dialog_id, "BYE", self._now())
        self._flush()

    def _send_refresh(self) -> None:
        if self.ended or self.dialog_id is None or self.dialog_id not in self.endpoint.dialogs:
            return
        body = self.local_sdp or b""
        self.refresh_tx = self.endpoint.request_in_dialog(
            self.dialog_id, "INVITE", self._now(), body=body, content_type=SDP if body else None,
            headers=[("Session-Expires", f"{self.timer.terms.interval_s};refresher=uac"), ("Supported", "timer")])
        self._flush()

    @property
    def reinvite_pending(self) -> bool:
        """Our re-INVITE on this leg has no final answer yet: a re-INVITE from the peer now is glare (491)."""
        return self.refresh_tx is not None

    def refresh_answered(self, status: int, rng: random.Random | None = None) -> None:
        """The final answer to our refresh; on 491 (glare) it is sent again after the §14.1 wait."""
        self.refresh_tx = None
        if status == 491 and not self.ended:
            self.timer.retry_refresh(glare_wait_s(self.owns_call_id, rng))

    def _session_expired(self) -> None:
        if self.call is not None and not self.ended:
            self.call.abort("session_expired")
            self._flush()

    def dialog_ended(self) -> None:
        """The endpoint forgot this leg's dialog (BYE either way, 481, timeout)."""
        self.timer.cancel()
        self.ended = True


class SipInboundLeg(_Leg):
    """The carrier's leg: we answer its INVITE (server transaction ``tx_id``)."""

    def __init__(self, endpoint: SipEndpoint, reactor: IReactorTime, flush: Callable[[], None], *,
                 tx_id: str, invite: SipRequest, session_expires_s: int, min_se_s: int):
        super().__init__(endpoint, reactor, flush)
        self.tx_id = tx_id
        self.invite = invite
        self.offer = sdp_of(invite)
        self.answered = False
        #: RFC 3262: the carrier asked for reliable provisionals; ``reliable`` is the one awaiting its PRACK
        self.use_100rel = wants_100rel(invite)
        self.p_early_media = wants_p_early_media(invite)
        self.reliable: ReliableProvisional | None = None
        self._rseq = first_rseq()
        self._prack_timer: IDelayedCall | None = None
        self._reliable_args: tuple = ()
        supported = {t.strip().lower() for v in invite.headers.get_all("supported") for t in v.split(",")}
        self.terms, self.too_small, self._timer_headers = as_uas(
            invite.headers.get("session-expires"), invite.headers.get("min-se"), "timer" in supported,
            min_se_s, session_expires_s)

    def provisional(self, status: int, sdp: bytes | None = None) -> None:
        if self.ended or self.answered:
            return
        if self.use_100rel and status > 100:
            self._send_reliable(status, sdp)
            return
        self.endpoint.respond(self.tx_id, status, self._now(), body=sdp or b"",
                              content_type=SDP if sdp else None)
        self._flush()

    # -- RFC 3262 -------------------------------------------------------------------
    def _send_reliable(self, status: int, sdp: bytes | None) -> None:
        """A reliable provisional (Require: 100rel, RSeq), retransmitted until its PRACK comes."""
        if self.reliable is not None and not self.reliable.acknowledged:
            return        # one unacknowledged reliable provisional at a time (RFC 3262 §3)
        self._rseq += 1 if self.reliable is not None else 0
        self.reliable = ReliableProvisional(self._rseq, self.invite.cseq.seq, self._now())
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
        self._flush()

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
            if self.call is not None:
                self.call.abort("no_prack")
                self._flush()
            return
        if what == "retransmit":
            self._send_reliable_again()
        self._arm_prack_timer()

    def prack(self, rack_value: str | None) -> bool:
        """A PRACK's RAck: True when it acknowledges our reliable provisional (retransmissions stop)."""
        rel = self.reliable
        if rel is None or not rel.matches(parse_rack(rack_value)):
            return False
        rel.acknowledged = True
        self.stop_prack()
        return True

    @property
    def prack_timer_pending(self) -> bool:
        return self._prack_timer is not None and self._prack_timer.active()

    def stop_prack(self) -> None:
        if self._prack_timer is not None and self._prack_timer.active():
            self._prack_timer.cancel()
        self._prack_timer = None

    def dialog_ended(self) -> None:
        self.stop_prack()
        super().dialog_ended()

    def answer(self, sdp: bytes) -> None:
        if self.ended or self.answered:
            return
        self.local_sdp = sdp or None
        self.stop_prack()
        self.dialog_id = self.endpoint.respond(self.tx_id, 200, self._now(), body=sdp or b"",
                                               content_type=SDP if sdp else None, headers=self._timer_headers)
        self.answered = True
        self.final_status = 200
        if self.dialog_id is not None:
            self.on_dialog(self)
        self.timer.start(self.terms)
        self._flush()

    def reject(self, status: int, headers: list[tuple[str, str]] | None = None) -> None:
        if self.ended or self.answered:
            return
        self.stop_prack()
        try:
            self.endpoint.respond(self.tx_id, status, self._now(), headers=headers or ())
        except TransactionError:
            pass   # the transaction is gone already (a CANCEL answered it 487)
        self.final_status = status
        self.ended = True
        self._flush()

    def cancelled(self) -> None:
        """The endpoint answered the carrier's CANCEL (200) and its INVITE (487)."""
        self.stop_prack()
        self.final_status = 487
        self.ended = True


class SipOutboundLeg(_Leg):
    """One agent's leg: our INVITE (client transaction ``tx_id``) and, once answered, its dialog."""

    def __init__(self, endpoint: SipEndpoint, reactor: IReactorTime, flush: Callable[[], None], *,
                 agent: str, invite: SipRequest):
        super().__init__(endpoint, reactor, flush)
        self.agent = agent
        self.invite = invite
        self.local_sdp = sdp_of(invite)
        self.owns_call_id = True
        self.tx_id = endpoint.send_request(invite, self._now())
        self.answered = False
        self.cancel_sent = False

    @staticmethod
    def timer_headers(session_expires_s: int, min_se_s: int) -> list[tuple[str, str]]:
        return uac_request_headers(session_expires_s, min_se_s)

    def cancel(self) -> None:
        if self.ended or self.answered or self.cancel_sent:
            return
        self.cancel_sent = True
        try:
            self.endpoint.cancel(self.tx_id, self._now())
        except TransactionError:
            pass
        self._flush()

    def bye(self) -> None:
        if not self.answered and not self.ended:
            # not answered yet: a BYE is impossible, a CANCEL does it (the 2xx that may cross gets ACK+BYE)
            self.cancel()
            return
        super().bye()

    def response(self, response: SipResponse, dialog_id: DialogId | None) -> None:
        """A response to our INVITE."""
        call = self.call
        status = response.status
        if status < 200:
            if call is not None:
                call.on_b_progress(self, status)
            return
        if status < 300:
            self.answered = True
            self.final_status = status
            self.dialog_id = dialog_id
            if dialog_id is not None:
                self.on_dialog(self)
            self.timer.start(as_uac(response.headers.get("session-expires")))
            if call is not None:
                call.on_b_answer(self, sdp_of(response))
            return
        self.final_status = status
        self.ended = True
        if call is not None:
            call.on_b_failed(self, status)

    def failed(self, status: int) -> None:
        """Our INVITE got no answer (408) or could not be sent (503)."""
        if self.ended or self.answered:
            return
        self.final_status = status
        self.ended = True
        if self.call is not None:
            self.call.on_b_failed(self, status)
