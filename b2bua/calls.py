"""The B2BUA's transaction user: new INVITEs become calls, endpoint events reach their leg.

:class:`CallManager` receives every event of the SIP endpoint (through the
transports' ``on_event``).  An out-of-dialog INVITE is checked (session
interval, our own loops), its caller identified, its service number routed,
and a :class:`~b2bua.call.Call` started with an inbound leg; the call dials
agents through :meth:`CallManager.dial`.  In-dialog requests and responses are
routed to the leg that owns the dialog or transaction.  OPTIONS is answered
200 (carriers use it as a keepalive).

Events flow one way.  Each leg reports the transaction and dialog ids it
owns as it sends or receives, and the manager keeps them in one index; an
endpoint event goes to the leg that owns its transaction (else its dialog),
and the leg turns it into neutral call events (:mod:`b2bua.callevents`) for
its call.  A transaction's id leaves the index when the endpoint (made with
``report_ended``) says the transaction is gone.  Every input (an endpoint event, a timer, a billing or media
callback) runs through the one driver (:mod:`b2bua.calldriver`), which flushes
the endpoint once after it.  The OPTIONS prober's responses (``probes``) are
taken out before routing.

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
from .call import Call, log_id
from .calldriver import CallDriver
from .callevents import Dtmf, Failed, MediaDead
from .callports import CallMedia, MediaRefused
from .capabilities import ALLOW, uas_headers
from .faults import CallFaults
from .identity import ANONYMOUS_FROM, CallerIdentity, identify, is_trusted
from .legs import SDP, SipInboundLeg, SipOutboundLeg, UnreachableLeg
from .routing import Router
from .sip.endpoint import (AckNeverCame, AckReceived, CancelReceived, DialogEnded, RequestReceived,
                           ResponseReceived, SipEndpoint, TransactionEnded, TransactionError,
                           TransactionTimedOut, TransportFailed)
from .sip.uri import SipUri, TelUri

log = Logger()


@dataclass(frozen=True)
class CallSettings:
    """What the manager needs of the config (``b2bua.node.config``: sip, carriers, the profiles)."""

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


#: endpoint events that may answer one of the prober's OPTIONS
_PROBE_ANSWERS = (ResponseReceived, TransactionTimedOut, TransportFailed)


class CallManager:
    """Every call of this node, and the routing of SIP events to them."""

    def __init__(self, *, endpoint: SipEndpoint, reactor: IReactorTime, router: Router, settings: CallSettings,
                 billing: CallBilling | None, record: Callable, flush: Callable[[], None] = lambda: None,
                 media_for_call: Callable[[str, object], CallMedia | None] = lambda call_id, profile: None,
                 on_call_done: Callable[[Call], None] = lambda call: None,
                 pin_lookup: Callable | None = None, pin_gate=None, faults: CallFaults | None = None,
                 probes: Callable[[object], bool] = lambda event: False):
        self.endpoint = endpoint
        self.reactor = reactor
        self.router = router
        self.settings = settings
        self.billing = billing
        self.record = record
        self.media_for_call = media_for_call
        self.on_call_done = on_call_done
        self.pin_lookup = pin_lookup
        self.pin_gate = pin_gate                # billing.pinguard.PinGuard: PIN guessing limited across calls
        #: the OPTIONS prober's (b2bua.probe): True when the event answered one of its probes
        self._probes = probes
        #: the hooks every call and leg is handed, bound once: each read of ``self.leg_event`` makes a new bound
        #: method, and a held call kept six of them (384 B a call, bench/memory.py --by-site, calls.py:238/306)
        self._emit, self._own, self._dial, self._done = self.leg_event, self.own_key, self.dial, self._call_done
        #: runs every input and flushes the endpoint once after it; its faults (an event without a row, an
        #: exception) are raised in tests, logged with the call id and counted in the node
        self.driver = CallDriver(reactor, flush, faults)
        self.faults = self.driver.faults
        self.calls: dict[str, Call] = {}
        #: the one index: each transaction id and dialog id a leg reported as its own -> that leg
        self._owner: dict[object, object] = {}
        #: each open call's legs, and each leg's call (a leg's events go to it; a finished call's are dropped)
        self._legs_of: dict[Call, list] = {}
        self._call_of: dict[object, Call] = {}
        self.completed = 0
        #: the rate limits of new INVITEs, made afresh when a reload changes ``settings.admission``
        self._admission: Admission | None = None
        #: INVITEs answered before a call was made for them, by reason ("untrusted", "rate")
        self.refused_early: dict[str, int] = {"untrusted": 0, "rate": 0}

    # -- inputs -------------------------------------------------------------------------

    def on_event(self, event: object) -> None:
        """Feed one endpoint event: one input of the driver. A bug in one call must not stop the others: an
        exception out of call control is a fault (:class:`~b2bua.faults.CallFaults`), raised in tests,
        logged with the call id and counted in the node. A transaction gone is no input of a call: its id
        only leaves the index."""
        if type(event) is TransactionEnded:
            self._transaction_ended(event.transaction_id)
            return
        self.driver.run(self._call_id_of, self._dispatch, event)

    def media_news(self, call_id: str, news: Dtmf | MediaDead) -> None:
        """What a call's media reports (a key pressed, dead media): one input of that call."""
        call = self.calls.get(call_id)
        if call is not None:
            self.driver.run(call.log_id, call.handle, news)

    def media_dead(self, call_id: str) -> Callable[[str], None]:
        """The ``on_dead`` a call's media is made with: ``reason`` ("media_timeout", "media_refused", ...) is
        fed to the call as :class:`MediaDead` (the call record's end reason)."""
        return _MediaNews(self, call_id).dead

    def media_dtmf(self, call_id: str) -> Callable[[str], None]:
        """The ``on_dtmf`` a call's media is made with: each key is fed to the call as :class:`Dtmf`."""
        return _MediaNews(self, call_id).dtmf

    def leg_event(self, event) -> None:
        """The legs' one sink: a call event goes to the leg's call once the running input is done."""
        call = self._call_of.get(event.leg)
        if call is not None:
            self.driver.emit(call.log_id, call.handle, event)

    def own_key(self, leg, key: object) -> None:
        """A leg now owns ``key`` (a transaction or dialog id): its endpoint events are routed to it."""
        self._owner[key] = leg

    def _leg_of(self, event: object):
        """The leg that owns the event's transaction, else its dialog; None when no open call's leg does."""
        owner = self._owner
        match event:
            case ResponseReceived() | TransactionTimedOut() | TransportFailed():
                leg = owner.get(event.transaction_id)
                if leg is None and event.dialog_id is not None:
                    leg = owner.get(event.dialog_id)     # an in-dialog request of ours it does not own
                return leg
            case CancelReceived():
                return owner.get(event.transaction_id)
            case RequestReceived() | AckReceived() | AckNeverCame() | DialogEnded():
                return owner.get(event.dialog_id)
        return None

    def _call_id_of(self, event: object) -> str:
        """The call an endpoint event belongs to, for its log line: its leg's call, else the Call-ID it carries."""
        leg = self._leg_of(event)
        call = self._call_of.get(leg) if leg is not None else None
        if call is not None:
            return call.log_id
        match event:
            case RequestReceived(dialog_id=None) | CancelReceived():
                call_id = event.request.call_id
            case ResponseReceived() | TransactionTimedOut() | TransportFailed():
                call_id = event.dialog_id.call_id if event.dialog_id is not None else ""
            case RequestReceived() | AckReceived() | AckNeverCame() | DialogEnded():
                call_id = event.dialog_id.call_id
            case _:
                call_id = ""
        return log_id(call_id or "-")

    def _dispatch(self, event: object) -> None:
        if isinstance(event, _PROBE_ANSWERS) and self._probes(event):
            return
        if isinstance(event, RequestReceived) and event.dialog_id is None:
            self._new_request(event)
            return
        leg = self._leg_of(event)
        if isinstance(event, ResponseReceived) and (leg is None or leg.ended) and self._stray_2xx(event):
            return
        if leg is not None:
            leg.on_endpoint_event(event)
        elif isinstance(event, RequestReceived):
            self.endpoint.respond(event.transaction_id, 481, self.reactor.seconds())

    def _new_request(self, event: RequestReceived) -> None:
        request = event.request
        now = self.reactor.seconds()
        if request.method == "OPTIONS":
            self.endpoint.respond(event.transaction_id, 200, now, headers=uas_headers() + [("Accept", SDP)])
            return
        if request.method == "PRACK" and self._prack(event):
            return
        if request.method != "INVITE":
            # BYE/UPDATE/INFO without a dialog we know (RFC 6086 §4.2.1: INFO lives in a dialog), PRACK for
            # nothing...; a method we do not handle: 405
            status = 481 if request.method in ("BYE", "UPDATE", "PRACK", "INFO") else 405
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
        inputs = self.driver.inputs(log_id(call_id))
        leg = SipInboundLeg(self.endpoint, inputs, emit=self._emit, own=self._own, tx_id=event.transaction_id,
                            invite=request, session_expires_s=self.settings.session_expires_s,
                            min_se_s=self.settings.min_se_s)
        if leg.too_small is not None:
            leg.reject(422, [("Min-SE", str(leg.too_small.min_se_s))])
            self._forget(leg)
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
                self._forget(leg)
                return
        withheld_policy = "pin" if identity.untrusted_source else profile.withheld if profile is not None else "reject"
        call = Call(call_id=call_id, reactor=self.reactor, inputs=inputs, a=leg, route=route, identity=identity,
                    dialer=self._dial, media=media, billing=self.billing, record=self.record,
                    max_duration_s=self.settings.max_call_duration_s,
                    answer_mode=profile.answer_mode if profile is not None else "answer",
                    announce_tariff=profile.announce_tariff if profile is not None else False,
                    agent_warning=profile.agent_warning if profile is not None else "words",
                    withheld_policy=withheld_policy,
                    on_done=self._done, pin_lookup=self.pin_lookup, log_steps=self.settings.log_steps,
                    pin_gate=self.pin_gate, source_address=source, pin_account=identity.claimed)
        self.calls[call_id] = call
        self._legs_of[call] = [leg]
        self._call_of[leg] = call
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

    def dial(self, agent: str, identity: CallerIdentity, offer: bytes, call: Call):
        """The controller's dialer: INVITE ``agent`` for ``call`` (a new dialog, its own Call-ID)."""
        if identity.privacy or identity.number is None:
            from_ = ANONYMOUS_FROM     # a withheld number is never shown to the agent, nor asserted
            extra = [("Privacy", "id")]
        else:
            host = self.endpoint.local_host
            host = f"[{host}]" if ":" in host else host
            from_ = f"<sip:{identity.number}@{host};user=phone>"
            extra = []
        extra += SipOutboundLeg.invite_headers(self.settings.session_expires_s, self.settings.min_se_s)
        try:
            invite = self.endpoint.make_request("INVITE", agent, from_=from_, to=f"<{agent}>", headers=extra,
                                                body=offer, content_type=SDP if offer else None)
            leg = SipOutboundLeg(self.endpoint, call.inputs, emit=self._emit, own=self._own, agent=agent,
                                 invite=invite)
        except (TransactionError, ValueError) as exc:
            log.warn("call {call_id}: cannot dial {agent}: {exc}", call_id=call.log_id, agent=agent, exc=exc)
            leg = UnreachableLeg(agent)
            self._legs_of[call].append(leg)
            self._call_of[leg] = call
            self.leg_event(Failed(leg, 503))      # heard once the ringing of it is done
            return leg
        self._legs_of[call].append(leg)
        self._call_of[leg] = call
        return leg

    def _stray_2xx(self, event: ResponseReceived) -> bool:
        """A 2xx to an INVITE of a leg that is over (a re-INVITE answered after our BYE went through, or a
        call already done): the endpoint ACKed it and made the dialog again, so it gets a BYE (§13.2.2.4).
        True when ``event`` was one."""
        if not (200 <= event.response.status < 300 and event.dialog_id is not None
                and event.response.cseq.method == "INVITE"):
            return False
        if event.dialog_id not in self.endpoint.dialogs:
            return True
        try:
            self.endpoint.request_in_dialog(event.dialog_id, "BYE", self.reactor.seconds())
        except TransactionError:
            self.endpoint.end_dialog(event.dialog_id)
        return True

    def end_all(self, reason: str) -> list[Call]:
        """End every open call now (the node is stopping): BYE or a final answer to both legs, billing
        ended at this instant.  Returns the calls; their ``finished`` fire once recorded."""
        calls = list(self.calls.values())
        for call in calls:
            self.driver.run(call.log_id, call.abort, reason)
        return calls

    def give_up_on_legs(self, call: Call) -> None:
        """The node is stopping: ``call`` does not wait for its legs' last transactions (one input)."""
        self.driver.run(call.log_id, call.give_up_on_legs)

    # -- bookkeeping -------------------------------------------------------------------

    def _transaction_ended(self, transaction_id: str) -> None:
        """No event carries ``transaction_id`` any more: out of the index and its leg's keys (a held call's two
        INVITE transactions were kept there for the whole call)."""
        leg = self._owner.pop(transaction_id, None)
        if leg is not None and transaction_id in leg.keys:
            leg.keys.remove(transaction_id)

    def _forget(self, leg) -> None:
        """Take ``leg``'s keys out of the index (an entry entered again since by another leg stays)."""
        owner = self._owner
        for key in leg.keys:
            if owner.get(key) is leg:
                del owner[key]

    def _call_done(self, call: Call) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        for leg in self._legs_of.pop(call, ()):
            self._forget(leg)
            self._call_of.pop(leg, None)
            leg.stop_timers()
            if leg.dialog_id is not None and leg.dialog_id in self.endpoint.dialogs and leg.ended:
                self.endpoint.end_dialog(leg.dialog_id)
        self.completed += 1
        self.on_call_done(call)

    def open_counts(self) -> CallCounts:
        ep = self.endpoint.open_counts()
        timers = sum(c.pending_timers() for c in self.calls.values())
        timers += sum(leg.pending_timers() for leg in set(self._owner.values()))
        return CallCounts(len(self.calls), ep.transactions, ep.dialogs, ep.timers + timers)


class _MediaNews:
    """What one call's media reports, as inputs of that call: a held call keeps two bound methods of this and
    not two closures (~380 B less of each, ``bench/memory.py --by-site``: calls.py and node/app.py)."""

    __slots__ = ("manager", "call_id")

    def __init__(self, manager: CallManager, call_id: str) -> None:
        self.manager = manager
        self.call_id = call_id

    def dead(self, reason: str) -> None:
        self.manager.media_news(self.call_id, MediaDead(reason))

    def dtmf(self, digit: str) -> None:
        self.manager.media_news(self.call_id, Dtmf(digit))


def _dialled_number(uri) -> str | None:
    """The user part of the Request-URI (``+4930...``, ``030...``), or a tel: URI's number."""
    if isinstance(uri, TelUri):
        return uri.number
    if isinstance(uri, SipUri) and uri.user:
        return uri.user.split(";")[0]
    return None
