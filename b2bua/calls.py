"""The B2BUA's transaction user: new INVITEs become calls, endpoint events reach their leg.

:class:`CallManager` receives every event of the SIP endpoint (through the
transports' ``on_event``).  An out-of-dialog INVITE is checked (session
interval, our own loops), its caller identified, its service number routed,
and a :class:`~b2bua.call.Call` started with an inbound leg; the call dials
agents through :meth:`CallManager.dial`.  In-dialog requests and responses are
routed to the leg that owns the dialog or transaction.  OPTIONS is answered
200 (carriers use it as a keepalive).

A re-INVITE or UPDATE first meets the one-at-a-time rules of
:mod:`b2bua.modify` (500 with Retry-After or 491 when it crosses another
exchange on its leg).  Once the call is bridged, one that changes what the
other side gets (hold, resume, another codec) goes to the controller, which
relays it to the other leg and answers with that leg's outcome; a session
refresh, an address change of one leg, and anything before the bridge are
answered here from our anchored media.  Either way a 2xx refreshes the leg's
session timer.

``open_counts()`` gives what is still alive — the invariant the tests check
after every scenario: no call, dialog, transaction or timer left.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from billing.session import CallBilling

from .admission import Admission, AdmissionSettings
from .call import Call, CallMedia, MediaRefused, log_id
from .faults import CallFaults
from .identity import ANONYMOUS_FROM, CallerIdentity, identify, is_trusted
from .legs import SDP, SipInboundLeg, SipOutboundLeg, sdp_of
from .modify import ModifyRequest, conflict, retry_after
from .routing import Router
from .sip.dialog import DialogId
from .sip.endpoint import (AckNeverCame, AckReceived, CancelReceived, DialogEnded, RequestReceived,
                           ResponseReceived, SipEndpoint, TransactionError, TransactionTimedOut,
                           TransportFailed)
from .sip.uri import SipUri, TelUri

log = Logger()

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK"


@dataclass(frozen=True)
class CallSettings:
    """What the manager needs of the config (``b2bua.config``: sip, carriers, the profiles)."""

    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    default_region: str
    max_call_duration_s: int
    session_expires_s: int
    min_se_s: int
    log_steps: bool = True           # every step of every call at debug (``[node] log_level = "debug"``)
    #: a call from outside ``trusted``: "refuse" (403) or "pin" (answered, identified only by the customer PIN)
    untrusted: str = "refuse"
    admission: AdmissionSettings = AdmissionSettings()


@dataclass(frozen=True)
class CallCounts:
    calls: int
    transactions: int
    dialogs: int
    timers: int


class CallManager:
    """Every call of this node, and the routing of SIP events to them."""

    def __init__(self, *, endpoint: SipEndpoint, reactor: IReactorTime, router: Router, settings: CallSettings,
                 billing: CallBilling | None, record: Callable, flush: Callable[[], None] = lambda: None,
                 media_for_call: Callable[[str, object], CallMedia | None] = lambda call_id, profile: None,
                 on_call_done: Callable[[Call], None] = lambda call: None,
                 pin_lookup: Callable | None = None, pin_gate=None, faults: CallFaults | None = None):
        self.endpoint = endpoint
        self.reactor = reactor
        self.router = router
        self.settings = settings
        self.billing = billing
        self.record = record
        self.flush = flush
        self.media_for_call = media_for_call
        self.on_call_done = on_call_done
        self.pin_lookup = pin_lookup
        self.pin_gate = pin_gate                # billing.pinguard.PinGuard: PIN guessing limited across calls
        #: call control's own faults (an event without a row, an exception): raised in tests, counted in the node
        self.faults = faults if faults is not None else CallFaults()
        self.calls: dict[str, Call] = {}
        self._by_tx: dict[str, object] = {}
        self._by_dialog: dict[DialogId, object] = {}
        #: per call, the (table, key) pairs its legs were entered under: a finished call's entries are
        #: removed by these keys, not by a scan of every table (the tables hold every open call's legs)
        self._keys_of: dict[Call, list[tuple[dict, object]]] = {}
        self.completed = 0
        #: the rate limits of new INVITEs, made afresh when a reload changes ``settings.admission``
        self._admission: Admission | None = None
        #: INVITEs answered before a call was made for them, by reason ("untrusted", "rate")
        self.refused_early: dict[str, int] = {"untrusted": 0, "rate": 0}
        #: the OPTIONS prober's hook (b2bua.probe): True when the event was one of its probes
        self.probe_events: Callable[[object], bool] = lambda event: False

    # -- events -------------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        """Feed one endpoint event. A bug in one call must not stop the others: an exception out of call
        control is a fault (:class:`~b2bua.faults.CallFaults`), raised in tests, logged with the call id
        and counted in the node."""
        try:
            self._dispatch(event)
        except Exception:
            self.faults.error(self._call_id_of(event), f"{type(event).__name__} failed")

    def _call_id_of(self, event: object) -> str:
        """The call an endpoint event belongs to, for its log line: its leg's call, else the Call-ID it carries."""
        leg = None
        match event:
            case RequestReceived(dialog_id=None) | CancelReceived():
                leg = self._by_tx.get(event.transaction_id)
                call_id = event.request.call_id
            case RequestReceived(dialog_id=dialog_id) | AckReceived(dialog_id=dialog_id):
                leg = self._by_dialog.get(dialog_id)
                call_id = dialog_id.call_id
            case ResponseReceived() | TransactionTimedOut() | TransportFailed():
                leg = self._by_tx.get(event.transaction_id)
                if leg is None and event.dialog_id is not None:
                    leg = self._by_dialog.get(event.dialog_id)
                call_id = event.dialog_id.call_id if event.dialog_id is not None else ""
            case AckNeverCame(dialog_id=dialog_id) | DialogEnded(dialog_id=dialog_id):
                leg = self._by_dialog.get(dialog_id)
                call_id = dialog_id.call_id
            case _:
                call_id = ""
        if leg is not None and leg.call is not None:
            return leg.call.log_id
        return log_id(call_id or "-")

    def _dispatch(self, event: object) -> None:
        if isinstance(event, (ResponseReceived, TransactionTimedOut, TransportFailed)) and self.probe_events(event):
            return
        if isinstance(event, RequestReceived):
            if event.dialog_id is None:
                self._new_request(event)
            else:
                self._in_dialog_request(event)
        elif isinstance(event, ResponseReceived):
            self._response(event)
        elif isinstance(event, CancelReceived):
            leg = self._by_tx.get(event.transaction_id)
            if isinstance(leg, SipInboundLeg) and leg.call is not None:
                leg.cancelled()
                leg.call.on_a_cancel()
        elif isinstance(event, AckNeverCame):
            leg = self._by_dialog.get(event.dialog_id)
            if leg is not None:
                leg.offer_in_2xx = False
            if leg is not None and leg.call is not None:
                leg.call.abort("no_ack")
        elif isinstance(event, DialogEnded):
            leg = self._by_dialog.get(event.dialog_id)
            if leg is not None:
                leg.dialog_ended()
                call = leg.call          # the call lets go of its legs when it finishes (within abort)
                if call is not None:
                    if event.reason in ("timeout", "481", "408") and call.state.value not in ("closing", "done"):
                        call.abort(f"dialog_{event.reason}")
                    call.on_leg_ended()
        elif isinstance(event, (TransactionTimedOut, TransportFailed)):
            self._transaction_failed(event)
        elif isinstance(event, AckReceived):
            leg = self._by_dialog.get(event.dialog_id)
            if leg is not None:
                self._acked(leg, event)
        self.flush()

    @staticmethod
    def _acked(leg, event: AckReceived) -> None:
        """An ACK on a leg: our offer in a 2xx is answered; the carrier's answer to our late offer goes to media."""
        leg.offer_in_2xx = False
        sdp = sdp_of(event.request)
        if isinstance(leg, SipInboundLeg) and sdp is not None and leg.call is not None and leg.call.media is not None:
            leg.call.media.a_acked(sdp)       # the answer to our late offer (an INVITE without SDP)

    def _new_request(self, event: RequestReceived) -> None:
        request = event.request
        now = self.reactor.seconds()
        if request.method == "OPTIONS":
            self.endpoint.respond(event.transaction_id, 200, now,
                                  headers=[("Allow", ALLOW), ("Accept", SDP), ("Supported", "timer")])
            return
        if request.method == "PRACK" and self._prack(event):
            return
        if request.method != "INVITE":
            # BYE/INFO/UPDATE without a dialog we know, PRACK for nothing...
            status = 481 if request.method in ("BYE", "INFO", "UPDATE", "PRACK") else 405
            self.endpoint.respond(event.transaction_id, status, now,
                                  headers=[("Allow", ALLOW)] if status == 405 else ())
            return
        self._new_call(event)

    def _prack(self, event: RequestReceived) -> bool:
        """A PRACK for the carrier's reliable provisional (RFC 3262): 200, True; else False (481 follows)."""
        call = self.calls.get(event.request.call_id or "")
        leg = call.a if call is not None else None
        if isinstance(leg, SipInboundLeg) and leg.prack(event.request.headers.get("rack")):
            self.endpoint.respond(event.transaction_id, 200, self.reactor.seconds())
            leg.send_queued()        # the next reliable provisional, now that this one is acknowledged
            return True
        return False

    def _new_call(self, event: RequestReceived) -> None:
        request = event.request
        now = self.reactor.seconds()
        source = event.peer.host
        trusted = is_trusted(source, self.settings.trusted)
        if self._admission is None or self._admission.settings != self.settings.admission:
            self._admission = Admission(self.settings.admission)
        if not trusted and self.settings.untrusted != "pin":
            self._refuse_early(event, 403, "untrusted", trusted)
            return
        retry_after_s = self._admission.retry_after_s(source, trusted, now)
        if retry_after_s is not None:
            self._refuse_early(event, 503, "rate", trusted, [("Retry-After", str(retry_after_s))])
            return
        call_id = request.call_id or event.transaction_id
        leg = SipInboundLeg(self.endpoint, self.reactor, self.flush, tx_id=event.transaction_id, invite=request,
                            session_expires_s=self.settings.session_expires_s, min_se_s=self.settings.min_se_s)
        if leg.too_small is not None:
            leg.reject(422, [("Min-SE", str(leg.too_small.min_se_s))])
            return
        dialled = _dialled_number(request.uri)
        route = self.router.route(dialled) if dialled else None
        identity = identify(
            from_value=request.headers.get("from"), privacy_values=request.headers.get_all("privacy"),
            pai_values=request.headers.get_all("p-asserted-identity"), source_host=source,
            trusted=self.settings.trusted, default_region=self.settings.default_region)
        profile = route.profile if route is not None else None
        media = None
        if route is not None:
            try:
                media = self.media_for_call(call_id, profile)
            except MediaRefused as exc:      # no ports free (503)
                log.warn("no media for call {call_id}: {exc}", call_id=log_id(call_id), exc=exc)
                leg.reject(exc.status)
                return
        withheld_policy = "pin" if identity.untrusted_source else profile.withheld if profile is not None else "reject"
        call = Call(call_id=call_id, reactor=self.reactor, a=leg, route=route, identity=identity,
                    dialer=self.dial, media=media, billing=self.billing, record=self.record,
                    max_duration_s=self.settings.max_call_duration_s,
                    answer_mode=profile.answer_mode if profile is not None else "answer",
                    announce_tariff=profile.announce_tariff if profile is not None else False,
                    withheld_policy=withheld_policy,
                    on_done=self._call_done, pin_lookup=self.pin_lookup, log_steps=self.settings.log_steps,
                    pin_gate=self.pin_gate, source_address=source, pin_account=identity.claimed,
                    faults=self.faults)
        leg.call = call
        leg.on_dialog = self._register_dialog
        self.calls[call_id] = call
        self._enter(self._by_tx, leg.tx_id, leg)
        try:
            call.start()
        except Exception:
            self.faults.error(call.log_id, "start failed")
            call.abort("internal_error")

    def _refuse_early(self, event: RequestReceived, status: int, reason: str, trusted: bool,
                      headers: list[tuple[str, str]] | tuple = ()) -> None:
        """Answer a new INVITE at once, before a call, media or a store query is made for it; counted.

        Toward an untrusted source the answer is not retransmitted by timer (RFC 3261 §17.2.1 lets a UAS
        answer what it refuses statelessly): a forged source address gets one response per INVITE sent
        in its name, so the node reflects nothing larger than what reached it.
        """
        self.refused_early[reason] += 1
        self.endpoint.respond(event.transaction_id, status, self.reactor.seconds(), headers=headers,
                              retransmit=trusted)

    def dial(self, agent: str, identity: CallerIdentity, offer: bytes, call: Call) -> SipOutboundLeg:
        """The controller's dialer: INVITE ``agent`` for ``call`` (a new dialog, its own Call-ID)."""
        if identity.privacy or identity.number is None:
            from_ = ANONYMOUS_FROM     # a withheld number is never shown to the agent, nor asserted
            extra = [("Privacy", "id")]
        else:
            host = self.endpoint.local_host
            host = f"[{host}]" if ":" in host else host
            from_ = f"<sip:{identity.number}@{host};user=phone>"
            extra = []
        extra += SipOutboundLeg.timer_headers(self.settings.session_expires_s, self.settings.min_se_s)
        try:
            invite = self.endpoint.make_request("INVITE", agent, from_=from_, to=f"<{agent}>", headers=extra,
                                                body=offer, content_type=SDP if offer else None)
            leg = SipOutboundLeg(self.endpoint, self.reactor, self.flush, agent=agent, invite=invite)
        except (TransactionError, ValueError) as exc:
            log.warn("call {call_id}: cannot dial {agent}: {exc}", call_id=call.log_id, agent=agent, exc=exc)
            leg = _Unreachable(agent)
            self.reactor.callLater(0, call.on_b_failed, leg, 503)
            return leg
        leg.call = call
        leg.on_dialog = self._register_dialog
        self._enter(self._by_tx, leg.tx_id, leg)
        self.flush()
        return leg

    def _register_dialog(self, leg) -> None:
        self._enter(self._by_dialog, leg.dialog_id, leg)

    def _enter(self, table: dict, key: object, leg) -> None:
        table[key] = leg
        self._keys_of.setdefault(leg.call, []).append((table, key))

    def _in_dialog_request(self, event: RequestReceived) -> None:
        now = self.reactor.seconds()
        leg = self._by_dialog.get(event.dialog_id)
        request = event.request
        if leg is None:
            self.endpoint.respond(event.transaction_id, 481, now)
            return
        if request.method == "BYE":
            self.endpoint.respond(event.transaction_id, 200, now)
            leg.dialog_ended()
            call = leg.call          # the BYE may finish the call, which then lets go of its legs
            if call is not None:
                if isinstance(leg, SipInboundLeg):
                    call.on_a_bye()
                else:
                    call.on_b_bye(leg)
                call.on_leg_ended()
        elif request.method in ("INVITE", "UPDATE"):
            self._refresh_or_modify(leg, event)
        else:
            self.endpoint.respond(event.transaction_id, 200, now)

    def _refresh_or_modify(self, leg, event: RequestReceived) -> None:
        """A re-INVITE or UPDATE: refused when it crosses another exchange, relayed when it changes what the
        other leg gets, else answered from our anchored media; a 2xx also refreshes the session timer."""
        request = event.request
        method = request.method
        offer = sdp_of(request)
        status = conflict(method, offer is not None, leg.pending())
        if status is not None:       # RFC 3261 §14.2, RFC 3311 §5.2: 491 (glare) or 500 with Retry-After
            self.endpoint.respond(event.transaction_id, status, self.reactor.seconds(),
                                  headers=[("Retry-After", retry_after())] if status == 500 else ())
            return
        leg.modify_received(method, event.transaction_id, request)
        call = leg.call
        if call is not None and call.on_modify(leg, ModifyRequest(method, event.transaction_id, offer)):
            return                   # relayed: the controller answers when the other leg has
        media = call.media if call is not None else None
        body = leg.local_sdp or b""
        if offer is not None and media is not None:
            reoffer = media.reoffer_from_a if isinstance(leg, SipInboundLeg) else media.reoffer_from_b
            try:
                body = reoffer(offer)
            except MediaRefused as exc:        # an offer we cannot answer (400/488), media closed (500)
                leg.answer_modify(method, exc.status)
                return
        leg.answer_modify(method, 200, body)      # no SDP: our last SDP, as an offer (its answer in the ACK)

    def _response(self, event: ResponseReceived) -> None:
        leg = self._by_tx.get(event.transaction_id)
        if leg is None and event.dialog_id is not None:
            leg = self._by_dialog.get(event.dialog_id)     # our in-dialog requests (refresh, BYE)
        status = event.response.status
        if (200 <= status < 300 and (leg is None or leg.ended) and event.dialog_id is not None
                and event.response.cseq.method == "INVITE"):
            self._stray_2xx(event)
            return
        if leg is None:
            return
        if isinstance(leg, SipOutboundLeg) and event.transaction_id == leg.tx_id:
            leg.response(event.response, event.dialog_id)
        elif event.transaction_id == leg.modify_tx:
            if status >= 200:
                leg.modify_answered(status)
                if leg.call is not None:
                    leg.call.on_modify_answered(leg, status, sdp_of(event.response))
        elif event.transaction_id == leg.refresh_tx:
            if status >= 200:
                leg.refresh_answered(status)
            if 200 <= status < 300:
                leg.timer.refreshed()
            elif status >= 300 and status not in (491,) and leg.call is not None:
                leg.call.abort("refresh_failed")
        if status >= 200 and event.transaction_id == leg.bye_tx:
            leg.dialog_ended()
            if leg.call is not None:
                leg.call.on_leg_ended()

    def _stray_2xx(self, event: ResponseReceived) -> None:
        """A 2xx to an INVITE of a leg that is over (a re-INVITE answered after our BYE went through, or a
        call already done): the endpoint ACKed it and made the dialog again, so it gets a BYE (§13.2.2.4)."""
        if event.dialog_id not in self.endpoint.dialogs:
            return
        try:
            self.endpoint.request_in_dialog(event.dialog_id, "BYE", self.reactor.seconds())
        except TransactionError:
            self.endpoint.end_dialog(event.dialog_id)

    def _transaction_failed(self, event) -> None:
        leg = self._by_tx.get(event.transaction_id)
        if leg is None and event.dialog_id is not None:
            leg = self._by_dialog.get(event.dialog_id)
        if leg is None:
            return
        if isinstance(leg, SipOutboundLeg) and event.transaction_id == leg.tx_id:
            leg.failed(408 if isinstance(event, TransactionTimedOut) else 503)
        elif isinstance(leg, SipInboundLeg) and event.transaction_id == leg.tx_id and not leg.answered:
            # the caller's connection closed before we answered its INVITE: nobody is left to answer.  (After
            # the answer a closed connection is no hang-up, RFC 5923 §4: the carrier may open another for its
            # BYE; a side that is really gone falls silent, and the media silence timeout ends the call.)
            leg.transaction_failed()
            if leg.call is not None:
                leg.call.abort("carrier_transport_failed")
        elif event.transaction_id == leg.modify_tx:
            # no answer to the change we relayed (§12.2.1.2 ends that leg's dialog, and so the call)
            leg.modify_answered(408)
            if leg.call is not None:
                leg.call.on_modify_answered(leg, 408 if isinstance(event, TransactionTimedOut) else 503, None)
        elif event.transaction_id == leg.bye_tx:
            leg.dialog_ended()
            if leg.call is not None:
                leg.call.on_leg_ended()
        elif event.transaction_id == leg.refresh_tx and leg.call is not None:
            leg.refresh_tx = None
            leg.call.abort("refresh_failed")

    def end_all(self, reason: str) -> list[Call]:
        """End every open call now (the node is stopping): BYE or a final answer to both legs, billing
        ended at this instant.  Returns the calls; their ``finished`` fire once recorded."""
        calls = list(self.calls.values())
        for call in calls:
            call.abort(reason)
        self.flush()
        return calls

    # -- bookkeeping -------------------------------------------------------------------

    def _call_done(self, call: Call) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        legs = []
        for table, key in self._keys_of.pop(call, ()):
            leg = table.get(key)
            if leg is None or leg.call is not call:
                continue        # entered again since (a key is unique per open leg; never another's)
            del table[key]
            if leg not in legs:
                legs.append(leg)
        for leg in legs:
            leg.stop_timers()
            if leg.dialog_id is not None and leg.dialog_id in self.endpoint.dialogs and leg.ended:
                self.endpoint.end_dialog(leg.dialog_id)
            # the call keeps its legs (its record and tests read them); the legs let go of the call, so
            # that a finished call's objects are freed by reference counting, not left to the collector
            leg.call = None
            leg.on_dialog = _unrouted
        self.completed += 1
        self.on_call_done(call)

    def open_counts(self) -> CallCounts:
        ep = self.endpoint.open_counts()
        timers = sum(c.pending_timers() for c in self.calls.values())
        legs = set(self._by_tx.values()) | set(self._by_dialog.values())
        timers += sum(1 for leg in legs if leg.timer.pending)
        timers += sum(1 for leg in legs if isinstance(leg, SipInboundLeg) and leg.prack_timer_pending)
        timers += sum(1 for leg in legs if leg.modify_timer_pending)
        return CallCounts(len(self.calls), ep.transactions, ep.dialogs, ep.timers + timers)


def _unrouted(leg) -> None:
    """A finished call's leg is not entered again, whatever its dialog does."""


class _Unreachable:
    """An agent we could not even send to (bad URI, no route): fails at once."""

    def __init__(self, agent: str):
        self.agent = agent
        self.ended = True
        self.final_status = 503
        self.dialog_id = None

    def cancel(self) -> None:
        pass

    def bye(self) -> None:
        pass

    def peer_allows(self, method: str) -> bool:
        return False

    def modify(self, method: str, body: bytes) -> str | None:
        return None

    def answer_modify(self, method: str, status: int, body: bytes | None = None,
                      headers: list[tuple[str, str]] | tuple = ()) -> None:
        pass


def _dialled_number(uri) -> str | None:
    """The user part of the Request-URI (``+4930...``, ``030...``), or a tel: URI's number."""
    if isinstance(uri, TelUri):
        return uri.number
    if isinstance(uri, SipUri) and uri.user:
        return uri.user.split(";")[0]
    return None
