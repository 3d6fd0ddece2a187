"""The sans-I/O SIP endpoint: codec, transactions and dialogs behind one object.

A transport feeds it whole messages (``receive``), tells it about failed
streams (``transport_error``), sends what ``take_outgoing`` returns, and calls
``handle_timer`` at ``next_deadline``.  The transaction user (call control)
reads ``take_events`` and acts through the TU API:

* UAC: :meth:`SipEndpoint.make_request` then :meth:`send_request` (a client
  transaction); the ACK for a 2xx is sent by the core (``auto_ack``) or by
  :meth:`send_ack`; :meth:`cancel` a pending INVITE;
  :meth:`request_in_dialog` for BYE, re-INVITE, UPDATE, INFO...
* UAS: :meth:`respond` to a server transaction; a 2xx to an INVITE creates the
  dialog and is resent (T1..T2) until the ACK, else :class:`AckNeverCame`.

What the core answers by itself: 100 Trying to a new INVITE at once (it is
cheap here, so we do not wait 200 ms); the answers of
:func:`~b2bua.sip.checks.check_request` (400, 405, 415, 416, 420, 483, 505;
to an INVITE sent once, as ``respond(..., retransmit=False)`` does);
400 to a request that does not parse but can still be addressed; 482 to a
merged request (§8.2.2.2); 481 to a request naming a dialog we do not know and
to a CANCEL matching nothing; 500 to an in-dialog request with a lower CSeq;
200 to a CANCEL and 487 to the INVITE it cancels (then :class:`CancelReceived`).
Bad input never raises out of :meth:`receive`: what cannot be answered is
dropped and counted in ``dropped``.

Events (frozen dataclasses) carry ``transaction_id`` strings and
:class:`~b2bua.sip.dialog.DialogId` values:

=====================  ==========================================================
RequestReceived        a new request for the TU (respond to ``transaction_id``)
ResponseReceived       a response to our request (1xx, 2xx, final); ``dialog_id`` for a 2xx to INVITE and in-dialog requests
AckReceived            the ACK for our 2xx arrived (2xx retransmission stopped)
AckNeverCame           64*T1 passed without that ACK: send BYE
CancelReceived         the peer cancelled its INVITE; 200 and 487 were sent
TransactionTimedOut    timer B, F or H: no answer (or no ACK for our non-2xx)
TransportFailed        the stream carrying a transaction failed
DialogEnded            a BYE ended the dialog (either way), or its request timed out / got 481
TransactionEnded       a transaction is gone, after every event that carried its id (``report_ended`` only)
=====================  ==========================================================

A UAS that answers every call and takes the BYE is a few lines of TU code::

    for ev in endpoint.take_events():
        if isinstance(ev, RequestReceived):
            endpoint.respond(ev.transaction_id, 200, now, body=sdp if ev.request.method == "INVITE" else b"",
                             content_type="application/sdp" if ev.request.method == "INVITE" else None)

and a UAC places a call with ``send_request(make_request("INVITE", uri, from_=..., to=...), now)``,
gets ``ResponseReceived`` with a ``dialog_id`` for the 2xx (already ACKed), and hangs up with
``request_in_dialog(dialog_id, "BYE", now)``; see ``tests/sip/test_endpoint_examples.py``.

Not handled here: early dialogs (requests in a dialog before its 2xx get 481), PRACK/100rel,
DNS (request targets must be IP literals), and authentication challenges.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable, Collection, Iterable

from b2bua.sip.checks import DEFAULT_ALLOWED_METHODS, check_request, check_response
from b2bua.sip.codec import make_response, parse_message, reason_phrase, serialise
from b2bua.sip.deadlines import DeadlineHeap
from b2bua.sip.dialog import (
    Dialog, DialogId, TwoXxRetransmission, build_2xx_ack, build_in_dialog_request, next_hop, uac_dialog, uas_dialog,
)
from b2bua.sip.errors import SipParseError
from b2bua.sip.headers import Headers, NameAddr, Via, header_key
from b2bua.sip.message import SIP_VERSION, SipRequest, SipResponse
from b2bua.sip.peer import Outgoing, Peer
from b2bua.sip.timers import DEFAULT_TIMERS, TimerValues
from b2bua.sip.transaction import Kind, State
from b2bua.sip.transactions import (
    DEFAULT_PORTS, MAGIC_COOKIE, Transaction, TransactionError, TransactionLayer, Up, Upcall, build_cancel,
    is_ip_literal, stamp_via,
)
from b2bua.sip.uri import SipUri, Uri, parse_uri

__all__ = [
    "SipEndpoint", "OpenCounts", "RequestReceived", "ResponseReceived", "AckReceived", "AckNeverCame",
    "CancelReceived", "TransactionTimedOut", "TransportFailed", "DialogEnded", "TransactionEnded", "TransactionError",
]


# ---- events -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestReceived:
    transaction_id: str
    request: SipRequest
    peer: Peer
    dialog_id: DialogId | None
    received_at: float


@dataclass(frozen=True)
class ResponseReceived:
    transaction_id: str
    response: SipResponse
    dialog_id: DialogId | None
    received_at: float


@dataclass(frozen=True)
class AckReceived:
    dialog_id: DialogId
    request: SipRequest
    received_at: float


@dataclass(frozen=True)
class AckNeverCame:
    dialog_id: DialogId


@dataclass(frozen=True)
class CancelReceived:
    transaction_id: str          # the cancelled INVITE's server transaction
    request: SipRequest          # the CANCEL
    received_at: float


@dataclass(frozen=True)
class TransactionTimedOut:
    transaction_id: str
    method: str
    dialog_id: DialogId | None


@dataclass(frozen=True)
class TransportFailed:
    transaction_id: str
    method: str
    peer: Peer
    #: the dialog of an in-dialog request (our BYE over a connection that is gone), as TransactionTimedOut
    dialog_id: DialogId | None = None


@dataclass(frozen=True)
class DialogEnded:
    dialog_id: DialogId
    reason: str                  # "bye sent", "bye received", "timeout", "481"...


@dataclass(frozen=True)
class TransactionEnded:
    """The transaction is gone: no later event carries ``transaction_id`` (a TU that indexes its transactions
    drops it; an INVITE's lives 32 s past its answer). Reported only by an endpoint made with ``report_ended``."""

    transaction_id: str


@dataclass(frozen=True)
class OpenCounts:
    """What is still alive: a scenario that ended cleanly (after 64*T1) leaves all three at 0."""

    transactions: int
    dialogs: int
    timers: int


class _Tokens:
    """Tags, branches and Call-IDs: 64 random bits each from the OS's CSPRNG (RFC 3261 §19.3 asks for
    cryptographic randomness), read 4 KiB at a time so a call costs no ``getrandom`` call of its own."""

    BATCH_BYTES = 4096

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0

    def __call__(self) -> str:
        if self._at + 16 > len(self._hex):
            self._hex, self._at = secrets.token_hex(self.BATCH_BYTES), 0
        self._at += 16
        return self._hex[self._at - 16:self._at]


_token = _Tokens()



@dataclass(frozen=True)
class CoreFault:
    """An error of the core itself while it handled a message or a timer: ``call_id`` of the message ("-" when
    there was none), ``why`` as counted in ``dropped``, and the exception with its traceback."""

    call_id: str
    why: str
    error: Exception

class SipEndpoint:
    """One SIP user agent core (UAC and UAS) over any number of transports; sans-I/O."""

    def __init__(self, *, local_host: str, local_ports: dict[str, int], user_agent: str = "prepaid",
                 timer_values: TimerValues = DEFAULT_TIMERS,
                 allowed_methods: Collection[str] = DEFAULT_ALLOWED_METHODS,
                 supported_extensions: Collection[str] = (),
                 accepted_content_types: Collection[str] = ("application/sdp",),
                 auto_ack: bool = True,
                 report_ended: bool = False,
                 new_token: Callable[[], str] = _token) -> None:
        self.local_host = local_host
        self.local_ports = {k.lower(): v for k, v in local_ports.items()}
        self.user_agent = user_agent
        self.timer_values = timer_values
        self.allowed_methods = frozenset(allowed_methods)
        self.supported_extensions = tuple(supported_extensions)
        self.accepted_content_types = tuple(accepted_content_types)
        self.auto_ack = auto_ack
        self._token = new_token
        self._outbox: list[Outgoing] = []
        self._events: list[object] = []
        #: the ids of the transactions gone since the last take_events, reported last in its list (so after
        #: every event that carried them); None when this endpoint reports none (``report_ended`` off)
        self._ended: list[str] | None = [] if report_ended else None
        self.layer = TransactionLayer(self._outbox, timer_values=timer_values, new_tag=new_token, ended=self._ended)
        self.dialogs: dict[DialogId, Dialog] = {}
        self._retransmits: dict[tuple[DialogId, int], TwoXxRetransmission] = {}
        # (key, retransmission) by deadline, pushed when one starts and after each firing; an entry whose
        # retransmission is no longer the live one under its key (ACKed, dialog ended) is dropped.
        self._retransmit_timers: DeadlineHeap[tuple[tuple[DialogId, int], TwoXxRetransmission]] = DeadlineHeap(
            self._retransmit_holds)
        self.dropped: dict[str, int] = {}
        self.last_error: Exception | None = None
        self._faults: list[CoreFault] = []
        #: stream peers (TCP, TLS) a message came from whose connection the transport has not reported lost:
        #: a dialog's requests go back over its peer's connection while it is here (see :meth:`_dialog_peer`)
        self._flows: set[Peer] = set()

    # ---- the transport's side ---------------------------------------------------------------
    def take_outgoing(self) -> list[Outgoing]:
        outbox = self._outbox            # shared with the transaction layer: emptied in place
        if not outbox:
            return []
        out = outbox[:]
        outbox.clear()
        return out

    def take_faults(self) -> list["CoreFault"]:
        """The core's own errors since the last call (a bug, never a peer's bad bytes): the transport logs each
        once, with its call id; the message was dropped and counted in :attr:`dropped`."""
        faults, self._faults = self._faults, []
        return faults

    def _fault(self, why: str, exc: Exception, call_id: str | None = None) -> None:
        self.last_error = exc
        self._faults.append(CoreFault(call_id or "-", why, exc))
        self._drop(why)

    def take_events(self) -> list[object]:
        events = self._events
        ended = self._ended
        if ended:
            events.extend(TransactionEnded(transaction_id) for transaction_id in ended)
            ended.clear()
        if not events:
            return []
        self._events = []
        return events

    def next_deadline(self) -> float | None:
        layer = self.layer.next_deadline()
        top = self._retransmit_timers.first()
        if top is None:
            return layer
        return top[0] if layer is None or top[0] < layer else layer

    def _add_retransmit(self, key: tuple[DialogId, int], retransmit: TwoXxRetransmission) -> None:
        self._retransmits[key] = retransmit
        self._push_retransmit(key, retransmit)

    def _push_retransmit(self, key: tuple[DialogId, int], retransmit: TwoXxRetransmission) -> None:
        self._retransmit_timers.push(retransmit.next_deadline(), (key, retransmit))

    def _retransmit_holds(self, deadline: float, entry: tuple[tuple[DialogId, int], TwoXxRetransmission]) -> bool:
        """A retransmission's entry holds while it is the one under its key (it is pushed again after firing)."""
        return self._retransmits.get(entry[0]) is entry[1]

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now`` (transactions, then 2xx retransmissions).  Never raises."""
        try:
            self._handle_timer(now)
        except Exception as exc:  # keep the transport's timer loop alive whatever happened
            self._fault(f"internal error in timers: {type(exc).__name__}", exc)

    def _handle_timer(self, now: float) -> None:
        self._upcalls(self.layer.handle_timer(now), now)
        while (entry := self._retransmit_timers.pop_due(now)) is not None:
            key, retransmit = entry
            sends, gave_up = retransmit.fire(now)
            for _ in range(sends):
                self._outbox.append(Outgoing(retransmit.data, retransmit.peer))
            if gave_up:
                del self._retransmits[key]
                self._events.append(AckNeverCame(retransmit.dialog_id))
            else:
                self._push_retransmit(key, retransmit)

    def transport_error(self, peer: Peer, now: float) -> None:
        """A stream to ``peer`` failed or closed: its transactions fail (§17.1.4).  Never raises."""
        self._flows.discard(peer)
        try:
            self._upcalls(self.layer.transport_error(peer, now), now)
        except Exception as exc:
            self._fault(f"internal error on transport error: {type(exc).__name__}", exc)

    def holds_flow(self, peer: Peer) -> bool:
        """Whether an open dialog sends its requests back over the connection to ``peer``: the transport keeps
        such a connection open past its idle timeout (a phone behind NAT or without a listening port of its
        own can be reached over nothing else)."""
        return peer in self._flows and any(d.peer == peer for d in self.dialogs.values())

    def open_counts(self) -> OpenCounts:
        timers = self.layer.pending_timers() + len(self._retransmits)
        return OpenCounts(len(self.layer), len(self.dialogs), timers)

    def receive(self, data: bytes, peer: Peer, now: float) -> None:
        """One whole message from ``peer``.  Never raises: what cannot be handled is answered or dropped."""
        message = None
        if peer.reliable:
            self._flows.add(peer)
        try:
            try:
                message = parse_message(data)
            except SipParseError as exc:
                self._parse_error(data, exc, peer)
                return
            if isinstance(message, SipResponse):
                self._receive_response(message, now)
            else:
                self._receive_request(message, peer, now)
        except Exception as exc:  # a peer's bytes must never take the process down
            self._fault(f"internal error: {type(exc).__name__}", exc, message.call_id if message is not None else None)

    # ---- receiving ------------------------------------------------------------------------------
    def _drop(self, why: str) -> None:
        self.dropped[why] = self.dropped.get(why, 0) + 1

    def _parse_error(self, data: bytes, exc: SipParseError, peer: Peer) -> None:
        if data.lstrip(b"\r\n")[:4].upper() == b"SIP/" or exc.partial is None:
            self._drop("unparseable " + ("response" if data.lstrip(b"\r\n")[:4].upper() == b"SIP/" else "message"))
            return
        items = [(n, v) for n, v in exc.partial.items() if header_key(n) in ("via", "from", "to", "call-id", "cseq")]
        if not any(header_key(n) == "via" for n, _ in items) or data.lstrip(b"\r\n").startswith(b"ACK "):
            self._drop("unparseable request without Via")
            return
        reason = exc.reason if exc.status == 400 else reason_phrase(exc.status)
        response = SipResponse(exc.status, reason, Headers(items), b"", SIP_VERSION)
        self._send_stateless(response, peer)

    def _send_stateless(self, response: SipResponse, source: Peer) -> None:
        """An answer to a request we could not fully read goes back where it came from.

        Its Via was not stamped with ``received`` (the request did not parse far enough), so
        following the Via's sent-by would aim at whatever host name or address a broken or
        hostile peer wrote there; the source address is what §18.2.2 and RFC 3581 amount to.
        """
        self._outbox.append(Outgoing(serialise(response), source))

    def _receive_response(self, response: SipResponse, now: float) -> None:
        problem = check_response(response)
        if problem is not None:
            self._drop("bad response: " + problem)
            return
        ups = self.layer.receive_response(response, now)
        if ups is None:
            self._drop("response to no transaction")
            return
        self._upcalls(ups, now)

    def _receive_request(self, request: SipRequest, peer: Peer, now: float) -> None:
        try:
            request.from_, request.to, request.cseq  # noqa: B018 - the core reads these; a bad one gets 400 now
            request = stamp_via(request, peer)
            tx = self.layer.match_request(request)
            merged = self.layer.merged_with(request) if tx is None else None
        except SipParseError as exc:
            if request.method != "ACK":
                self._send_stateless(make_response(request, 400, exc.reason), peer)
            else:
                self._drop("bad ACK")
            return
        if tx is not None or request.method == "ACK":
            self._upcalls(self.layer.receive_request(request, peer, now), now)
            return
        answer = check_request(request, allowed_methods=self.allowed_methods,
                               supported_extensions=self.supported_extensions,
                               accepted_content_types=self.accepted_content_types)
        if answer is None and merged is not None:
            answer = make_response(request, 482, "Loop Detected")
        if answer is not None:
            # sent once (no timer G): a malformed INVITE from a spoofed source must not make us a reflector
            new = self.layer.new_server(request, peer, now)
            self._respond_tx(new, answer.status, now, reason=answer.reason,
                             headers=[(n, v) for n, v in answer.headers.items()
                                      if header_key(n) not in ("via", "from", "to", "call-id", "cseq")],
                             retransmit=False)
            return
        self._upcalls(self.layer.receive_request(request, peer, now), now)

    def _upcalls(self, ups: Iterable[Upcall], now: float) -> None:
        for up in ups:
            if up.kind is Up.REQUEST:
                self._new_request(up.transaction, now)
            elif up.kind is Up.RESPONSE:
                self._response(up.transaction, up.message, now)
            elif up.kind is Up.ACK:
                self._ack(up.message, now)
            elif up.kind is Up.TIMEOUT:
                tx = up.transaction
                self._events.append(TransactionTimedOut(tx.id, tx.method, tx.dialog_id))
                if tx.dialog_id is not None and tx.kind.is_client:
                    self._end_dialog(tx.dialog_id, "timeout")
            elif up.kind is Up.TRANSPORT_ERROR:
                tx = up.transaction
                self._events.append(TransportFailed(tx.id, tx.method, up.peer, tx.dialog_id))

    def _new_request(self, tx: Transaction, now: float) -> None:
        request = tx.request
        if request.method == "CANCEL":
            self._cancel_received(tx, now)
            return
        dialog_id = None
        if request.to.tag is not None:
            dialog_id = DialogId(request.call_id or "", request.to.tag, request.from_.tag or "")
            dialog = self.dialogs.get(dialog_id)
            if dialog is None and request.method == "PRACK":
                # a PRACK in the early dialog of a reliable provisional (RFC 3262): the TU matches its RAck
                # (and answers 481 when it acknowledges nothing)
                self._events.append(RequestReceived(tx.id, request, tx.peer, None, now))
                return
            if dialog is None:
                self._respond_tx(tx, 481, now)
                return
            if dialog.check_remote_cseq(request) is not None:
                self._respond_tx(tx, 500, now, reason="CSeq Out of Order")
                return
            tx.dialog_id = dialog_id
            if tx.peer.reliable:
                dialog.peer = tx.peer        # the peer's newest connection is the way back (RFC 5923 §4)
            if request.method in ("INVITE", "UPDATE"):
                dialog.refresh_target(request)
            if request.method == "BYE":
                dialog.ending = True
        self._events.append(RequestReceived(tx.id, request, tx.peer, dialog_id, now))

    def _cancel_received(self, cancel_tx: Transaction, now: float) -> None:
        cancel = cancel_tx.request
        # §9.2: the CANCEL's key with method INVITE, for the branch rule and the RFC 2543 rule alike
        invite = self.layer.server.get(cancel_tx.key[:-1] + ("INVITE",))
        if invite is None:
            self._respond_tx(cancel_tx, 481, now)
            return
        cancel_tx.to_tag = invite.to_tag
        self._respond_tx(cancel_tx, 200, now)
        if invite.state is State.PROCEEDING:
            self._respond_tx(invite, 487, now)
            self._events.append(CancelReceived(invite.id, cancel, now))

    def _ack(self, ack: SipRequest, now: float) -> None:
        dialog_id = DialogId(ack.call_id or "", ack.to.tag or "", ack.from_.tag or "")
        retransmit = self._retransmits.pop((dialog_id, ack.cseq.seq), None)
        if retransmit is None:
            self._drop("ACK for nothing")
            return
        self._events.append(AckReceived(dialog_id, ack, now))

    def _response(self, tx: Transaction, response: SipResponse, now: float) -> None:
        dialog_id = tx.dialog_id
        if tx.method == "INVITE":
            if response.status < 200 and tx.cancel_pending:
                tx.cancel_pending = False
                self._send_cancel(tx, now)
            if 200 <= response.status < 300 and response.to.tag is not None:
                dialog_id = DialogId(response.call_id or "", tx.request.from_.tag or "", response.to.tag)
                if not self._invite_2xx(tx, response, dialog_id):
                    return
        if dialog_id is not None and response.status >= 200 and (
                response.status in (408, 481) or tx.method == "BYE"):
            # §12.2.1.2: a 481 or 408 to a request in the dialog ends it, as does the answer to our BYE
            self._events.append(ResponseReceived(tx.id, response, dialog_id, now))
            self._end_dialog(dialog_id, "bye sent" if tx.method == "BYE" else str(response.status))
            return
        self._events.append(ResponseReceived(tx.id, response, dialog_id, now))

    def _invite_2xx(self, tx: Transaction, response: SipResponse, dialog_id: DialogId) -> bool:
        """Set up or refresh the dialog of a 2xx and ACK it; False for a retransmission (re-ACKed, not reported).

        What was reported and ACKed is kept on the transaction (``tx.acks``): only it can match a retransmitted
        2xx, and it goes 64*T1 after its first 2xx, so the dialog keeps nothing per re-INVITE."""
        dialog = self.dialogs.get(dialog_id)
        acks = tx.acks
        if acks is None:
            acks = tx.acks = {}
        if dialog is not None and dialog_id in acks:
            ack = acks[dialog_id]
            if ack is not None:
                self._outbox.append(Outgoing(*ack))
            return False
        if dialog is None:
            dialog = uac_dialog(tx.request, response, tx.peer, dialog_id)
            self.dialogs[dialog_id] = dialog
        else:
            dialog.refresh_target(response)
        acks[dialog_id] = None
        if self.auto_ack:
            self._send_2xx_ack(dialog, tx.request.cseq.seq, tx)
        return True

    def _end_dialog(self, dialog_id: DialogId, reason: str) -> None:
        if self.dialogs.pop(dialog_id, None) is not None:
            for key in [k for k in self._retransmits if k[0] == dialog_id]:
                del self._retransmits[key]
            self._events.append(DialogEnded(dialog_id, reason))

    # ---- the transaction user's API: building and sending ----------------------------------------
    def via(self, transport: str) -> Via:
        """A Via for a request we send over ``transport``, with a new branch and ``rport``."""
        port = self.local_ports.get(transport.lower(), DEFAULT_PORTS.get(transport.lower(), 5060))
        return Via("SIP/2.0", transport.upper(), self.local_host, port,
                   (("branch", MAGIC_COOKIE + self._token()), ("rport", None)))

    def contact(self, transport: str) -> str:
        """Our Contact for ``transport``."""
        port = self.local_ports.get(transport.lower(), DEFAULT_PORTS.get(transport.lower(), 5060))
        param = "" if transport.lower() == "udp" else f";transport={transport.lower()}"
        host = f"[{self.local_host}]" if ":" in self.local_host else self.local_host
        return f"<sip:{host}:{port}{param}>"

    def make_request(self, method: str, uri: Uri | str, *, from_: NameAddr | str, to: NameAddr | str,
                     call_id: str | None = None, cseq: int = 1, transport: str | None = None,
                     headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                     content_type: str | None = None) -> SipRequest:
        """A new out-of-dialog request (§8.1.1): Via with a fresh branch, From with a new tag, Call-ID, CSeq."""
        if isinstance(uri, str):
            uri = parse_uri(uri)
        from_addr = from_ if isinstance(from_, NameAddr) else NameAddr.parse(from_, "From")
        if from_addr.tag is None:
            from_addr = from_addr.with_tag(self._token())
        to_addr = to if isinstance(to, NameAddr) else NameAddr.parse(to, "To")
        transport = (transport or (uri.transport if isinstance(uri, SipUri) else None) or "udp").lower()
        items = [("Via", str(self.via(transport))), ("Max-Forwards", "70"), ("From", str(from_addr)),
                 ("To", str(to_addr)), ("Call-ID", call_id or f"{self._token()}@{self.local_host}"),
                 ("CSeq", f"{cseq} {method}")]
        if method in ("INVITE", "SUBSCRIBE", "REFER", "UPDATE"):
            items.append(("Contact", self.contact(transport)))
        items.append(("User-Agent", self.user_agent))
        items.extend(headers)
        if content_type is not None:
            items.append(("Content-Type", content_type))
        return SipRequest(method, uri, Headers(items), body, SIP_VERSION)

    def destination(self, uri: Uri, transport: str | None = None) -> Peer:
        """The peer a request to ``uri`` goes to: host must be an IP literal (no DNS in the core).

        The URI's ``transport`` parameter wins, then ``transport``, then TLS for sips, else UDP.
        """
        if not isinstance(uri, SipUri) or not is_ip_literal(uri.maddr or uri.host):
            raise TransactionError(f"cannot send to {uri}: not a sip/sips URI with an IP address")
        transport = (uri.transport or transport or ("tls" if uri.secure else "udp")).lower()
        return Peer(transport, uri.maddr or uri.host, uri.port or DEFAULT_PORTS.get(transport, 5060))

    def send_request(self, request: SipRequest, now: float, *, peer: Peer | None = None) -> str:
        """Start a client transaction for ``request``; returns its transaction id.

        Without ``peer`` the destination is the first Route (loose routing) or the Request-URI.
        """
        if peer is None:
            routes = request.route
            target = routes[0].uri if routes else request.uri
            peer = self.destination(target, request.top_via.transport.lower())
        return self.layer.send_request(request, peer, now).id

    def cancel(self, transaction_id: str, now: float, *, headers: Iterable[tuple[str, str]] = ()) -> None:
        """CANCEL our pending INVITE (§9.1): at once after a provisional, else when the first one comes.

        ``headers`` go into the CANCEL (a ``Reason``, RFC 3326)."""
        tx = self.layer.get(transaction_id)
        if tx.kind is not Kind.INVITE_CLIENT:
            raise TransactionError(f"{transaction_id} is not an INVITE we sent")
        if tx.cancelled or tx.cancel_pending:
            return
        tx.cancel_headers = tuple(headers)
        if tx.state is State.CALLING:
            tx.cancel_pending = True
        elif tx.state is State.PROCEEDING:
            self._send_cancel(tx, now)

    def _send_cancel(self, invite_tx: Transaction, now: float) -> None:
        invite_tx.cancelled = True
        cancel = build_cancel(invite_tx.request, invite_tx.cancel_headers)
        invite_tx.cancel_headers = ()
        self.layer.send_request(cancel, invite_tx.peer, now)

    def send_ack(self, dialog_id: DialogId, now: float, *, invite_cseq: int | None = None, body: bytes = b"",
                 content_type: str | None = None) -> None:
        """Send the ACK for the 2xx of the dialog's last INVITE (when ``auto_ack`` is off, e.g. to carry SDP)."""
        dialog = self._dialog(dialog_id)
        seq = invite_cseq if invite_cseq is not None else dialog.local_seq or 1
        self._send_2xx_ack(dialog, seq, self._answered_invite(dialog_id, seq), body=body, content_type=content_type)

    def _answered_invite(self, dialog_id: DialogId, seq: int) -> Transaction | None:
        """Our live INVITE transaction with CSeq ``seq`` whose 2xx set up or refreshed ``dialog_id``, else None
        (gone: no retransmitted 2xx can reach us any more). A scan of the live transactions, on the path of the
        TU's own ACK only (``auto_ack`` off), which the node does not take."""
        for tx in self.layer.by_id.values():
            if tx.acks is not None and dialog_id in tx.acks and tx.request.cseq.seq == seq:
                return tx
        return None

    def _send_2xx_ack(self, dialog: Dialog, seq: int, tx: Transaction | None, *, body: bytes = b"",
                      content_type: str | None = None) -> None:
        """Send the ACK for the 2xx to our INVITE ``seq``; ``tx`` (that INVITE's transaction, while it lives)
        keeps it for a retransmitted 2xx."""
        extra = (("Content-Type", content_type),) if content_type else ()
        peer = self._dialog_peer(dialog)
        ack = build_2xx_ack(dialog, seq, self.via(peer.transport), extra_headers=extra, body=body)
        data = serialise(ack)
        if tx is not None and tx.acks is not None:
            tx.acks[dialog.id] = (data, peer)
        self._outbox.append(Outgoing(data, peer))

    def _dialog_peer(self, dialog: Dialog) -> Peer:
        """Where the dialog's next request goes: over the connection the dialog's peer last sent on while it is
        open (a phone behind NAT, or one without a server certificate, can be reached over nothing else; the
        previous hop of a record-routing proxy is that connection too), else to the route set or the
        remote target (§12.2.1.1), by the dialog's transport."""
        if dialog.peer in self._flows:
            return dialog.peer
        try:
            return self.destination(next_hop(dialog), dialog.peer.transport)
        except TransactionError:
            return dialog.peer  # a Contact with a host name: back the way the dialog came

    def request_in_dialog(self, dialog_id: DialogId, method: str, now: float, *,
                          headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                          content_type: str | None = None) -> str:
        """Send BYE, re-INVITE, UPDATE, INFO... inside a dialog; returns the transaction id."""
        dialog = self._dialog(dialog_id)
        extra = tuple(headers) + ((("Content-Type", content_type),) if content_type else ())
        peer = self._dialog_peer(dialog)
        request = build_in_dialog_request(dialog, method, self.via(peer.transport),
                                          contact=self.contact(peer.transport),
                                          extra_headers=extra + (("User-Agent", self.user_agent),), body=body)
        tx = self.layer.send_request(request, peer, now)
        tx.dialog_id = dialog_id
        if method == "BYE":
            dialog.ending = True
            for key in [k for k in self._retransmits if k[0] == dialog_id]:
                del self._retransmits[key]
        return tx.id

    def _dialog(self, dialog_id: DialogId) -> Dialog:
        try:
            return self.dialogs[dialog_id]
        except KeyError:
            raise TransactionError(f"no dialog {dialog_id}") from None

    def respond(self, transaction_id: str, status: int, now: float, *, reason: str | None = None,
                headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None, retransmit: bool = True) -> DialogId | None:
        """Answer a server transaction.  A 2xx to INVITE sets up (or refreshes) the dialog and returns its id.

        ``retransmit=False`` refuses an INVITE (300-699) with one response, not resent by timer G: for a
        source that may be spoofed, whom timer retransmissions would turn us into a reflector for. Each
        retransmission of the INVITE still gets the response once, and the transaction is freed after T4
        (at once on TCP/TLS) instead of 32 s (RFC 3261 §8.2.7).

        Raises :class:`TransactionError` when the transaction is gone or may not send this status (a
        second final response, or a 2xx after a CANCEL already got the INVITE its 487; a 1xx or 2xx
        with ``retransmit=False``).
        """
        tx = self.layer.get(transaction_id)
        return self._respond_tx(tx, status, now, reason=reason, headers=headers, body=body,
                                content_type=content_type, retransmit=retransmit)

    def _respond_tx(self, tx: Transaction, status: int, now: float, *, reason: str | None = None,
                    headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                    content_type: str | None = None, retransmit: bool = True) -> DialogId | None:
        request = tx.request
        extra = list(headers)
        transport = tx.peer.transport
        if (request.method in ("INVITE", "UPDATE") and 100 < status < 300
                and not any(header_key(n) == "contact" for n, _ in extra)):
            extra.append(("Contact", self.contact(transport)))
        if request.method == "INVITE" and 100 < status < 300:
            extra = [("Record-Route", v) for v in request.headers.get_lines("record-route")] + extra
        if content_type is not None:
            extra.append(("Content-Type", content_type))
        response = make_response(request, status, reason, to_tag=tx.to_tag if status > 100 else None,
                                 headers=extra, body=body)
        self.layer.respond(tx, response, now, retransmit=retransmit)
        dialog_id = tx.dialog_id
        if request.method == "INVITE" and 200 <= status < 300 and tx.to_tag is not None:
            dialog_id = dialog_id or DialogId(request.call_id or "", tx.to_tag, request.from_.tag or "")
            if dialog_id not in self.dialogs:
                self.dialogs[dialog_id] = uas_dialog(request, tx.to_tag, tx.peer, dialog_id)
            self._add_retransmit((dialog_id, request.cseq.seq), TwoXxRetransmission(
                dialog_id, request.cseq.seq, tx.response_bytes, tx.response_peer or tx.peer, now, self.timer_values))
        elif request.method == "BYE" and status >= 200 and tx.dialog_id is not None:
            self._end_dialog(tx.dialog_id, "bye received")
        return dialog_id

    def end_dialog(self, dialog_id: DialogId) -> None:
        """Forget a dialog without a BYE (the TU gave up on it)."""
        self._end_dialog(dialog_id, "forgotten")

    def dialog(self, dialog_id: DialogId) -> Dialog:
        """The dialog's state (read it; change it only through the endpoint)."""
        return self._dialog(dialog_id)
