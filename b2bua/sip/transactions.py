"""The transaction layer: matching (RFC 3261 §17.1.3, §17.2.3), creation, the table of live transactions.

Sans-I/O: every call takes ``now``; bytes to send are appended to ``outbox``
(a list of :class:`~b2bua.sip.peer.Outgoing` the endpoint owns).  What the
transaction user must hear comes back as :class:`Upcall` values, which the
endpoint turns into events after its dialog processing.

Server side: a request whose top Via branch starts with ``z9hG4bK`` matches by
branch + sent-by + method (ACK matches its INVITE); without the cookie, by the
RFC 2543 rule (Request-URI, To tag, From tag, Call-ID, CSeq, top Via; an ACK by
the To tag of the response we sent).  Responses to a server transaction go per
its top Via (§18.2.2 with RFC 3581 ``rport``); ``stamp_via`` fills ``received``
and ``rport`` on the way in.  A new INVITE gets its 100 Trying at once.

Client side: a response matches by top Via branch and CSeq method (§17.1.3).
The ACK for a 300-699 is built here (§17.1.1.3); the ACK for a 2xx is not a
transaction and is the dialog layer's job.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import itertools
from dataclasses import dataclass
from typing import Iterable

from b2bua.sip.codec import make_response, serialise
from b2bua.sip.deadlines import DeadlineHeap
from b2bua.sip.headers import Headers, Via, cached_header_key, header_key, split_commas
from b2bua.sip.message import SIP_VERSION, SipRequest, SipResponse
from b2bua.sip.peer import Outgoing, Peer
from b2bua.sip.timers import DEFAULT_TIMERS, TimerValues
from b2bua.sip.transaction import Action, Input, Kind, State, TransactionMachine, response_input

MAGIC_COOKIE = "z9hG4bK"
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


class TransactionError(Exception):
    """Local misuse: the transaction user asked for something the transaction cannot do."""


class Up(enum.Enum):
    """What a transaction hands up to the transaction user."""

    REQUEST = "request"                  # a new server transaction's request
    RESPONSE = "response"                # a response for a client transaction
    ACK = "ack"                          # an ACK to pass to the core (ACK for 2xx, or no transaction)
    TIMEOUT = "timeout"                  # timer B, F or H
    TRANSPORT_ERROR = "transport error"  # the transport could not deliver


@dataclass(frozen=True)
class Upcall:
    kind: Up
    transaction: "Transaction | None"
    message: SipRequest | SipResponse | None = None
    peer: Peer | None = None


@dataclass(eq=False, slots=True)
class Transaction:
    """One live transaction: its machine and what it resends.

    Once it has its final answer (Completed, Accepted, Confirmed) a UDP transaction lives
    on for up to 32 s only to absorb retransmissions, from the bytes it keeps.  The layer
    then *settles* it: ``request`` is replaced by a message without the header views parsed
    on the way (Via, From, To, CSeq... objects the garbage collector would otherwise walk for
    those 32 s; a later read parses again) and with only the lines still read
    (:data:`SETTLED_HEADER_KEYS`): a burst of set-ups holds each call's messages for those
    32 s, and its high-water mark is the RSS a cold node keeps. The bytes it can no longer
    send go too: a client's request, a server's 2xx (the core resends that one, until the
    ACK) or the refusal an ACK confirmed.  ``last_response`` is
    only read to match an RFC 2543 ACK by the To tag we sent: a branch-matched (RFC 3261)
    transaction drops it, an RFC 2543 one keeps an equal copy without views.
    """

    id: str
    machine: TransactionMachine
    request: SipRequest
    peer: Peer                          # client: where the request goes; server: where it came from
    key: tuple
    request_bytes: bytes = b""          # client: for retransmission
    ack_bytes: bytes = b""              # client INVITE: the ACK for a 300-699
    to_tag: str | None = None           # server: the To tag of our responses
    last_response: SipResponse | None = None
    response_bytes: bytes = b""         # server: the last response, for retransmission
    response_peer: Peer | None = None
    cancel_pending: bool = False        # client INVITE: CANCEL asked before any provisional came
    cancelled: bool = False
    dialog_id: object = None            # the dialog an in-dialog request belongs to (endpoint's business)
    #: client INVITE (endpoint's business): each dialog whose 2xx was reported to the TU -> the ACK sent for it
    #: (bytes, peer), None until the TU sends it; a retransmitted 2xx is matched here, and gone with the transaction
    acks: dict | None = None
    merge: tuple | None = None          # server: its §8.2.2.2 merge key (a request without To tag)
    settled: bool = False               # final answer had: queued for, or done, settling (see above)
    #: the deadline last pushed on the layer's timer heap for it (None: none yet)
    scheduled: float | None = None
    #: client INVITE (endpoint's business): the headers of the CANCEL asked for before a provisional came
    cancel_headers: tuple = ()

    @property
    def kind(self) -> Kind:
        return self.machine.kind

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def method(self) -> str:
        return self.request.method


# The states after the final answer, where a transaction only absorbs retransmissions.
SETTLED_STATES = frozenset({State.COMPLETED, State.ACCEPTED, State.CONFIRMED, State.REFUSED})


def bare(message: SipRequest | SipResponse) -> SipRequest | SipResponse:
    """A message equal to ``message`` (same fields, same Headers) without the views parsed from it."""
    if isinstance(message, SipRequest):
        return SipRequest(message.method, message.uri, message.headers, message.body, message.version)
    return SipResponse(message.status, message.reason, message.headers, message.body, message.version)


#: the header lines a settled transaction's request is still read for: matching (Via, To, From, Call-ID, CSeq),
#: a 2xx the TU sends again in Accepted (what a response copies, Record-Route) and the dialog it makes (Contact,
#: Route); the rest (Max-Forwards, User-Agent, Allow, Supported, P-Asserted-Identity, Content-*...) are not
SETTLED_HEADER_KEYS = frozenset({"via", "from", "to", "call-id", "cseq", "record-route", "route", "contact"})


def settled_request(request: SipRequest) -> SipRequest:
    """``request`` as a settled transaction keeps it: no parsed views, only the lines of SETTLED_HEADER_KEYS
    (in order, as received), the same Request-URI and body (shared with the leg that reads the SDP)."""
    cached = cached_header_key
    kept = Headers(line for line in request.headers.items()
                   if (cached(line[0]) or header_key(line[0])) in SETTLED_HEADER_KEYS)
    return SipRequest(request.method, request.uri, kept, request.body, request.version)


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address (no brackets).

    The answers for short hosts are kept (a call asks about the same few hosts,
    and ``ipaddress`` costs tens of microseconds); a long one is never kept.
    """
    if len(host) <= 64:
        return _is_ip_literal_cached(host)
    return _is_ip_literal(host)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_is_ip_literal_cached = functools.lru_cache(maxsize=1024)(_is_ip_literal)


def stamp_via(request: SipRequest, source: Peer) -> SipRequest:
    """§18.2.1 and RFC 3581: add ``received`` when sent-by is not the source, fill a bare ``rport``."""
    via = request.top_via
    if via.rport is True:
        new = via.with_params(received=source.host, rport=str(source.port))
    elif via.host.lower() != source.host.lower():
        new = via.with_params(received=source.host)
    else:
        return request
    return request.with_top_via(replace_top_via(request.headers, new), new)


def replace_top_via(headers: Headers, via: Via) -> Headers:
    """``headers`` with the first Via value (which may share a line with others) replaced.

    A Via line without a value (``Via: ,,,``) is passed over, as ``top_via`` passes over it.
    """
    items = list(headers.items())
    for i, (name, value) in enumerate(items):
        if header_key(name) == "via" and (values := split_commas(value)):
            values[0] = str(via)
            items[i] = (name, ", ".join(values))
            break
    return Headers(items)


def response_destination(via: Via, source: Peer) -> Peer:
    """Where a response goes (§18.2.2, RFC 3581 §4): the stream it came on, or per the top Via.

    When that is the source address, ``source`` itself (an equal value, one object fewer to keep).
    """
    if source.reliable:
        return source
    maddr = via.param("maddr")
    if maddr:
        host, port = maddr, via.port or DEFAULT_PORTS["udp"]
    else:
        rport = via.rport
        host = via.received or via.host
        if isinstance(rport, int) and not isinstance(rport, bool):
            port = rport
        else:
            port = via.port or DEFAULT_PORTS.get(source.transport, 5060)
    if host == source.host and port == source.port:
        return source
    return Peer(source.transport, host, port)


def _via_key(via: Via) -> tuple:
    return (via.transport, via.host.lower(), via.port, via.branch)


def server_key(request: SipRequest) -> tuple:
    """The key of the server transaction a request belongs to (§17.2.3); raises SipParseError on bad headers."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch and branch.startswith(MAGIC_COOKIE):
        return ("3261", branch, via.host.lower(), via.port, method)
    cseq = request.cseq
    return ("2543", str(request.uri), request.from_.tag, request.call_id, cseq.seq, _via_key(via), method)


def client_key(branch: str, method: str) -> tuple:
    return (branch, "INVITE" if method == "ACK" else method)


def merge_key(request: SipRequest) -> tuple:
    """§8.2.2.2: From tag, Call-ID and CSeq of a request without To tag."""
    cseq = request.cseq
    return (request.from_.tag, request.call_id, cseq.seq, cseq.method)


def build_from_invite(invite: SipRequest, method: str, to: str | None = None) -> SipRequest:
    """A request that goes with our ``invite``'s transaction (§9.1 CANCEL, §17.1.1.3 non-2xx ACK): the same
    Request-URI, Call-ID, From, Route, Max-Forwards, CSeq number and top Via as the INVITE, no body; the
    INVITE's To, or ``to`` (the response's, with its tag)."""
    items: list[tuple[str, str]] = []
    top_via_done = False
    for name, value in invite.headers.items():
        key = header_key(name)
        if key == "via" and not top_via_done:
            items.append((name, split_commas(value)[0]))
            top_via_done = True
        elif key in ("from", "call-id", "route", "max-forwards"):
            items.append((name, value))
        elif key == "to":
            items.append((name, to or value))
        elif key == "cseq":
            items.append((name, f"{invite.cseq.seq} {method}"))
    return SipRequest(method, invite.uri, Headers(items), b"", SIP_VERSION)


def build_non_2xx_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """§17.1.1.3: the ACK of a non-2xx final answer to our INVITE, with the response's To."""
    return build_from_invite(invite, "ACK", response.headers.get("to"))


def build_cancel(invite: SipRequest, headers: Iterable[tuple[str, str]] = ()) -> SipRequest:
    """§9.1: the CANCEL of our pending INVITE, with ``headers`` added (a Reason, RFC 3326)."""
    cancel = build_from_invite(invite, "CANCEL")
    extra = list(headers)
    if not extra:
        return cancel
    return SipRequest("CANCEL", cancel.uri, Headers(list(cancel.headers.items()) + extra), b"", SIP_VERSION)


class TransactionLayer:
    """The live transactions, keyed for matching, with their timers."""

    def __init__(self, outbox: list[Outgoing], *, timer_values: TimerValues = DEFAULT_TIMERS,
                 new_tag=None, ended: list[str] | None = None) -> None:
        self.outbox = outbox
        self.timer_values = timer_values
        self._new_tag = new_tag
        self._ids = itertools.count(1)
        self.server: dict[tuple, Transaction] = {}
        self.client: dict[tuple, Transaction] = {}
        self.by_id: dict[str, Transaction] = {}
        self._merge: dict[tuple, Transaction] = {}
        # each transaction's next deadline, pushed whenever it changes (tx.scheduled says which);
        # entries of a transaction gone or of a deadline that moved are dropped when they come up
        self._timers: DeadlineHeap[Transaction] = DeadlineHeap(self._timer_holds, self._timer_dropped)
        # Transactions that reached a settled state; settled when the next input comes (the
        # endpoint reads the messages' views while it handles this input's upcalls).
        self._to_settle: list[Transaction] = []
        #: the ids of the transactions reaped, appended as each goes, when the endpoint reports them (else None)
        self.ended = ended

    # ---- counts and timers -------------------------------------------------
    def __len__(self) -> int:
        return len(self.by_id)

    def pending_timers(self) -> int:
        return sum(len(tx.machine.deadlines) for tx in self.by_id.values())

    def _schedule(self, tx: Transaction) -> None:
        deadline = tx.machine.next_deadline()
        if deadline is not None and tx.scheduled != deadline:
            tx.scheduled = deadline
            self._timers.push(deadline, tx)

    def _timer_holds(self, deadline: float, tx: Transaction) -> bool:
        return self.by_id.get(tx.id) is tx and tx.machine.next_deadline() == deadline

    def _timer_dropped(self, deadline: float, tx: Transaction) -> None:
        if tx.scheduled == deadline:      # its deadline moved unannounced: schedule it again
            tx.scheduled = None
            self._schedule(tx)

    def next_deadline(self) -> float | None:
        top = self._timers.first()
        return top[0] if top is not None else None

    def settle(self) -> None:
        """Settle the transactions that got their final answer since the last input (see :class:`Transaction`)."""
        pending = self._to_settle
        self._to_settle = []
        for tx in pending:
            if tx.machine.terminated:
                continue
            tx.request = settled_request(tx.request)
            if tx.kind.is_client:
                tx.request_bytes = b""      # after its final answer a request is never sent again
            elif tx.machine.state in (State.ACCEPTED, State.CONFIRMED):
                tx.response_bytes = b""     # the core resends a 2xx itself; Confirmed only absorbs ACKs
            if tx.last_response is not None:
                tx.last_response = bare(tx.last_response) if tx.key[0] == "2543" else None

    def handle_timer(self, now: float) -> list[Upcall]:
        if self._to_settle:
            self.settle()
        ups: list[Upcall] = []
        while (tx := self._timers.pop_due(now)) is not None:
            tx.scheduled = None
            ups.extend(self._run(tx, tx.machine.fire_due(now), None))
            self._reap(tx)
        return ups

    def transport_error(self, peer: Peer, now: float) -> list[Upcall]:
        """A stream to ``peer`` failed: every transaction sending to it hears TRANSPORT_ERROR."""
        if self._to_settle:
            self.settle()
        ups: list[Upcall] = []
        hit = [tx for tx in self.by_id.values()
               if (tx.peer if tx.kind.is_client else (tx.response_peer or tx.peer)) == peer]
        for tx in hit:
            ups.extend(self._run(tx, tx.machine.feed(Input.TRANSPORT_ERROR, now), None))
        self._reap(*hit)
        return ups

    def get(self, transaction_id: str) -> Transaction:
        try:
            return self.by_id[transaction_id]
        except KeyError:
            raise TransactionError(f"no live transaction {transaction_id!r}") from None

    # ---- server side --------------------------------------------------------
    def match_request(self, request: SipRequest) -> Transaction | None:
        """The live server transaction ``request`` belongs to, or None (raises SipParseError on bad headers)."""
        tx = self.server.get(server_key(request))
        if tx is None or tx.key[0] == "3261":
            return tx
        # RFC 2543: the To tag must match too; for ACK, the tag of the response we sent.
        if request.method == "ACK":
            sent_tag = tx.last_response.to.tag if tx.last_response is not None else None
            return tx if request.to.tag == sent_tag else None
        return tx if request.to.tag == tx.request.to.tag else None

    def receive_request(self, request: SipRequest, source: Peer, now: float) -> list[Upcall]:
        """A retransmission or ACK for a live transaction, or a new request: create its transaction."""
        if self._to_settle:
            self.settle()
        tx = self.match_request(request)
        if request.method == "ACK":
            if tx is None:
                return [Upcall(Up.ACK, None, request, source)]
            ups = self._run(tx, tx.machine.feed(Input.ACK, now), request)
            self._reap(tx)
            return ups
        if tx is not None:
            ups = self._run(tx, tx.machine.feed(Input.REQUEST, now), request)
            self._reap(tx)
            return ups
        return [Upcall(Up.REQUEST, self.new_server(request, source, now), request, source)]

    def merged_with(self, request: SipRequest) -> Transaction | None:
        """§8.2.2.2: a live transaction with this request's From tag, Call-ID and CSeq but another branch."""
        if request.to.tag is not None:
            return None
        return self._merge.get(merge_key(request))

    def new_server(self, request: SipRequest, source: Peer, now: float, *, to_tag: str | None = None) -> Transaction:
        kind = Kind.INVITE_SERVER if request.method == "INVITE" else Kind.NON_INVITE_SERVER
        machine = TransactionMachine(kind, source.reliable, self.timer_values)
        tag = request.to.tag or to_tag or (self._new_tag() if self._new_tag else None)
        tx = Transaction(f"s{next(self._ids)}", machine, request, source, server_key(request), to_tag=tag)
        tx.response_peer = response_destination(request.top_via, source)
        self.server[tx.key] = tx
        self.by_id[tx.id] = tx
        if request.to.tag is None:
            tx.merge = merge_key(request)
            self._merge.setdefault(tx.merge, tx)
        machine.start(now)
        if kind is Kind.INVITE_SERVER:
            self.respond(tx, make_response(request, 100), now)
        return tx

    def respond(self, tx: Transaction, response: SipResponse, now: float, *, retransmit: bool = True) -> None:
        """Send a response from the TU through the server transaction (raises TransactionError if it may not).

        ``retransmit=False`` sends a 300-699 to an INVITE once: no timer G, the transaction ends after T4
        (at once on streams) or at the ACK, and meanwhile answers each retransmitted INVITE with it again.
        A non-INVITE transaction never retransmits by timer, so there it changes nothing; a 1xx or 2xx
        cannot be sent so (TransactionError).
        """
        if tx.kind.is_client:
            raise TransactionError(f"{tx.id} is a client transaction")
        if not retransmit and response.status < 300:
            raise TransactionError(f"{tx.id}: only a 300-699 may be sent without retransmission, not {response.status}")
        inp = response_input(response.status, from_tu=True, once=not retransmit and tx.kind is Kind.INVITE_SERVER)
        if (tx.state, inp) not in tx.machine.table:
            raise TransactionError(f"{tx.id} in {tx.state.value} cannot send a {response.status}")
        tx.last_response = response
        tx.response_bytes = serialise(response)
        self._run(tx, tx.machine.feed(inp, now), response)
        self._reap(tx)

    # ---- client side --------------------------------------------------------
    def send_request(self, request: SipRequest, peer: Peer, now: float) -> Transaction:
        """Create a client transaction for ``request`` (its top Via carries a fresh branch) and send it."""
        if request.method == "ACK":
            raise TransactionError("ACK is not sent through a client transaction")
        branch = request.top_via.branch
        if not branch or not branch.startswith(MAGIC_COOKIE):
            raise TransactionError("client requests need a z9hG4bK branch")
        key = client_key(branch, request.method)
        if key in self.client:
            raise TransactionError(f"branch {branch} already in use for {request.method}")
        kind = Kind.INVITE_CLIENT if request.method == "INVITE" else Kind.NON_INVITE_CLIENT
        machine = TransactionMachine(kind, peer.reliable, self.timer_values)
        tx = Transaction(f"c{next(self._ids)}", machine, request, peer, key, request_bytes=serialise(request))
        self.client[key] = tx
        self.by_id[tx.id] = tx
        self._run(tx, machine.start(now), None)
        self._reap(tx)
        return tx

    def receive_response(self, response: SipResponse, now: float) -> list[Upcall] | None:
        """Match a response to its client transaction (§17.1.3); None when it matches none (drop it)."""
        if self._to_settle:
            self.settle()
        branch = response.top_via.branch
        if not branch:
            return None
        tx = self.client.get(client_key(branch, response.cseq.method))
        if tx is None:
            return None
        if tx.kind is Kind.INVITE_CLIENT and response.status >= 300 and tx.state in (State.CALLING, State.PROCEEDING):
            tx.ack_bytes = serialise(build_non_2xx_ack(tx.request, response))
        ups = self._run(tx, tx.machine.feed(response_input(response.status, from_tu=False), now), response)
        self._reap(tx)
        return ups

    # ---- actions ------------------------------------------------------------
    def _run(self, tx: Transaction, actions: list[Action], message) -> list[Upcall]:
        ups: list[Upcall] = []
        for action in actions:
            if action is Action.SEND_REQUEST:
                self.outbox.append(Outgoing(tx.request_bytes, tx.peer))
            elif action is Action.SEND_ACK:
                self.outbox.append(Outgoing(tx.ack_bytes, tx.peer))
            elif action is Action.SEND_RESPONSE:
                self.outbox.append(Outgoing(tx.response_bytes, tx.response_peer or tx.peer))
            elif action is Action.RESPONSE_TO_TU:
                ups.append(Upcall(Up.RESPONSE, tx, message, tx.peer))
            elif action is Action.ACK_TO_TU:
                ups.append(Upcall(Up.ACK, tx, message, tx.peer))
            elif action is Action.TIMEOUT_TO_TU:
                ups.append(Upcall(Up.TIMEOUT, tx))
            elif action is Action.TRANSPORT_ERROR_TO_TU:
                ups.append(Upcall(Up.TRANSPORT_ERROR, tx, None, tx.peer))
        return ups

    def _reap(self, *txs: Transaction) -> None:
        for tx in txs:
            if not tx.machine.terminated:
                self._schedule(tx)
                if not tx.settled and tx.machine.state in SETTLED_STATES:
                    tx.settled = True
                    self._to_settle.append(tx)
                continue
            if self.by_id.get(tx.id) is not tx:
                continue
            del self.by_id[tx.id]
            table = self.client if tx.kind.is_client else self.server
            if table.get(tx.key) is tx:
                del table[tx.key]
            if tx.merge is not None and self._merge.get(tx.merge) is tx:
                del self._merge[tx.merge]
            if self.ended is not None:
                self.ended.append(tx.id)
