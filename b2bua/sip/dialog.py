"""Dialog state (RFC 3261 §12) and what the UA cores do with it (§13.2.2.4, §13.3.1.4).

A :class:`Dialog` holds Call-ID, local and remote tag, local and remote CSeq,
the route set, the remote target and the secure flag.  It is created from the
INVITE and its 2xx (:func:`uac_dialog`, :func:`uas_dialog`), builds the
requests sent inside it (:func:`build_in_dialog_request`: Route headers, loose
and strict routing) and the ACK for a 2xx (:func:`build_2xx_ack`: a new
branch, the INVITE's CSeq number, no transaction), and checks the CSeq order
of requests that arrive in it (:meth:`Dialog.check_remote_cseq`: lower -> 500).

:class:`TwoXxRetransmission` is the UAS core's resending of its 2xx to an
INVITE: T1 doubling up to T2 until the ACK comes or 64*T1 passes, after which
the TU hears that the ACK never came (and should send BYE).
"""

from __future__ import annotations

from dataclasses import dataclass

from b2bua.sip.headers import Headers, NameAddr, Via
from b2bua.sip.message import SIP_VERSION, SipRequest, SipResponse
from b2bua.sip.peer import Peer
from b2bua.sip.timers import DEFAULT_TIMERS, TimerValues
from b2bua.sip.uri import SipUri, Uri

MAX_CSEQ = 2**31 - 1


@dataclass(frozen=True, slots=True)
class DialogId:
    """A dialog's identity (§12): Call-ID, our tag, the peer's tag."""

    call_id: str
    local_tag: str
    remote_tag: str

    def __str__(self) -> str:
        return f"{self.call_id};local={self.local_tag};remote={self.remote_tag}"


@dataclass(slots=True)
class Dialog:
    """The state of one dialog, UAC or UAS side (slots: a held call keeps two, and their ids in several indexes).

    Nothing in it grows with the requests sent in the dialog: which 2xx of our INVITEs were reported and the
    ACK each got are kept on the INVITE's client transaction (``Transaction.acks``), which alone can match a
    retransmitted 2xx and is gone 64*T1 after its first 2xx (RFC 6026 timer M). The local and remote URIs
    (with their tags) are only ever written into From and To again: kept as that text, not parsed.
    """

    id: DialogId
    role: str                       # "uac" or "uas"
    local_address: str              # our From (UAC) or the To of the INVITE (UAS), with our tag, as written
    remote_address: str             # the peer's address, with its tag, as written
    remote_target: Uri
    route_set: tuple[NameAddr, ...]
    local_seq: int | None
    remote_seq: int | None
    secure: bool
    peer: Peer                      # the transport hop the dialog was set up over
    ending: bool = False            # a BYE is on its way (sent or received)

    @property
    def call_id(self) -> str:
        return self.id.call_id

    def next_local_seq(self) -> int:
        """The CSeq number for the next request we send in this dialog (§12.2.1.1)."""
        self.local_seq = 1 if self.local_seq is None else self.local_seq + 1
        if self.local_seq > MAX_CSEQ:
            raise ValueError("local CSeq exhausted")
        return self.local_seq

    def check_remote_cseq(self, request: SipRequest) -> int | None:
        """§12.2.2: a lower CSeq than the last one is out of order (500); else remember it. ACK/CANCEL exempt."""
        if request.method in ("ACK", "CANCEL"):
            return None
        seq = request.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return 500
        self.remote_seq = seq
        return None

    def refresh_target(self, message: SipRequest | SipResponse) -> None:
        """A target refresh (re-INVITE, UPDATE, or their 2xx) moves the remote target to its Contact."""
        contact = message.contact
        if contact is not None and contact.uri is not None:
            self.remote_target = contact.uri


def _secure(request: SipRequest, peer: Peer) -> bool:
    return isinstance(request.uri, SipUri) and request.uri.secure and peer.transport == "tls"


def uac_dialog(invite: SipRequest, response: SipResponse, peer: Peer, dialog_id: DialogId | None = None) -> Dialog:
    """§12.1.2: the dialog our INVITE and its 2xx set up; ``dialog_id`` when the caller has made it already
    (one object for the dialog, the endpoint's index and the TU, which keep it as long as the call)."""
    contact = response.contact
    target = contact.uri if contact is not None and contact.uri is not None else invite.uri
    return Dialog(
        id=dialog_id or DialogId(invite.call_id or "", invite.from_.tag or "", response.to.tag or ""),
        role="uac", local_address=str(invite.from_), remote_address=str(response.to), remote_target=target,
        route_set=tuple(reversed(response.record_route)), local_seq=invite.cseq.seq, remote_seq=None,
        secure=_secure(invite, peer), peer=peer)


def uas_dialog(invite: SipRequest, local_tag: str, peer: Peer, dialog_id: DialogId | None = None) -> Dialog:
    """§12.1.1: the dialog a received INVITE and our 2xx set up (``dialog_id``: as for :func:`uac_dialog`)."""
    contact = invite.contact
    target = contact.uri if contact is not None and contact.uri is not None else invite.from_.uri
    return Dialog(
        id=dialog_id or DialogId(invite.call_id or "", local_tag, invite.from_.tag or ""),
        role="uas", local_address=str(invite.to.with_tag(local_tag)), remote_address=str(invite.from_),
        remote_target=target, route_set=tuple(invite.record_route), local_seq=None, remote_seq=invite.cseq.seq,
        secure=_secure(invite, peer), peer=peer)


def _request_uri_and_routes(dialog: Dialog) -> tuple[Uri, list[NameAddr]]:
    """§12.2.1.1: loose routing keeps the target as Request-URI; a strict first hop takes its place."""
    routes = list(dialog.route_set)
    if not routes:
        return dialog.remote_target, []
    first = routes[0].uri
    if isinstance(first, SipUri) and first.lr:
        return dialog.remote_target, routes
    stripped = first.replace(params=tuple((k, v) for k, v in first.params if k not in ("method", "maddr", "ttl",
                                                                                   "transport", "lr")),
                             headers=()) if isinstance(first, SipUri) else first
    return stripped, routes[1:] + [NameAddr(None, dialog.remote_target)]


def next_hop(dialog: Dialog) -> Uri:
    """The URI the next request in the dialog is sent to: the first Route, else the remote target."""
    return dialog.route_set[0].uri if dialog.route_set else dialog.remote_target


def build_in_dialog_request(dialog: Dialog, method: str, via: Via, *, contact: str | None,
                            extra_headers: tuple[tuple[str, str], ...] = (), body: bytes = b"",
                            cseq: int | None = None, max_forwards: int = 70) -> SipRequest:
    """A request inside ``dialog`` (§12.2.1.1); the CSeq is the next local one unless ``cseq`` is given."""
    uri, routes = _request_uri_and_routes(dialog)
    seq = cseq if cseq is not None else dialog.next_local_seq()
    items: list[tuple[str, str]] = [("Via", str(via)), ("Max-Forwards", str(max_forwards))]
    items.extend(("Route", str(route)) for route in routes)
    items += [("From", dialog.local_address), ("To", dialog.remote_address), ("Call-ID", dialog.call_id),
              ("CSeq", f"{seq} {method}")]
    if contact is not None and method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
        items.append(("Contact", contact))
    items.extend(extra_headers)
    return SipRequest(method, uri, Headers(items), body, SIP_VERSION)


def build_2xx_ack(dialog: Dialog, invite_seq: int, via: Via, *,
                  extra_headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> SipRequest:
    """§13.2.2.4: the ACK for a 2xx, built by the UAC core: the dialog's routing, the INVITE's CSeq number."""
    return build_in_dialog_request(dialog, "ACK", via, contact=None, extra_headers=extra_headers, body=body,
                                   cseq=invite_seq)


@dataclass
class TwoXxRetransmission:
    """§13.3.1.4: the UAS core resends its 2xx to an INVITE until the ACK, or gives up at 64*T1."""

    dialog_id: DialogId
    cseq: int
    data: bytes
    peer: Peer
    started: float
    timer_values: TimerValues = DEFAULT_TIMERS
    interval: float = 0.0
    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.interval = self.timer_values.t1
        self.deadline = self.started + self.interval

    @property
    def give_up_at(self) -> float:
        return self.started + self.timer_values.sixty_four_t1

    def next_deadline(self) -> float:
        return min(self.deadline, self.give_up_at)

    def fire(self, now: float) -> tuple[int, bool]:
        """Resend as often as due by ``now``; answers (how many resends, whether 64*T1 has passed)."""
        sends = 0
        while self.deadline <= now and self.deadline < self.give_up_at:
            sends += 1
            self.interval = min(self.interval * 2, self.timer_values.t2)
            self.deadline += self.interval
        return sends, now >= self.give_up_at
