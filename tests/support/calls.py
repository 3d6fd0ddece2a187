"""Support for the call manager tests on the wire (no tests here): the node, a carrier and an agent, one Clock.

:class:`Wire` holds three real :class:`~b2bua.sip.endpoint.SipEndpoint` objects
— the node (port 5060, behind a real :class:`~b2bua.calls.CallManager` with the
real :class:`~b2bua.callmedia.RelayCallMedia`), the carrier (5080) and the agent
(5070) — and passes their datagrams to each other in memory, logging each one.
Time is the media rig's ``task.Clock``; :meth:`Wire.run` moves it in small steps
and fires every endpoint's timers, so retransmissions, timer B/F/H and the
calls' own timers all happen as on a real network with no loss.

:class:`Ua` is a scripted peer: the agent answers INVITEs (180, 200) and both
answer in-dialog requests; how a re-INVITE/UPDATE is answered is
``Ua.on_modify`` (default: the RFC 3264 answer on its own phone's address).
A port in :attr:`Wire.raw` is not delivered but collected, for tests that write
that peer's answers by hand (a forking proxy).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from twisted.internet.task import Clock

from b2bua.capabilities import ALLOWED_METHODS, SUPPORTED_AS_UAS
from b2bua.calls import CallCounts, CallManager, CallSettings
from b2bua.routing import Router
from b2bua.sip.codec import make_response, parse_message, serialise
from b2bua.sip.endpoint import CancelReceived, RequestReceived, ResponseReceived, SipEndpoint
from b2bua.sip.message import SipRequest, SipResponse
from b2bua.sip.peer import Peer
from media.sdp import ANSWER_DIRECTION, parse_sdp, peer_direction
from tests.support.callfakes import Profile, billing_profile
from tests.support.callmedia import Rig

NODE, CARRIER, AGENT = 5060, 5080, 5070
SERVICE = "+493012345678"
CALLER = "+49301234567"
SDP = "application/sdp"
ALLOW_ALL = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK"
NOTHING_OPEN = CallCounts(0, 0, 0, 0)


@dataclass(frozen=True)
class WireProfile(Profile):
    """A profile as the manager reads it: ``answer_mode`` "agent" answers the carrier with the agent."""

    answer_mode: str = "agent"
    announce_tariff: bool = False
    withheld: str = "reject"
    agent_warning: str = "words"


class Ua:
    """A scripted carrier or agent on its own endpoint; keeps every request and response its TU saw."""

    def __init__(self, wire: "Wire", port: int, phone, allow: str = ALLOW_ALL):
        self.wire = wire
        self.port = port
        self.phone = phone
        self.allow = allow
        self.endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": port},
                                    supported_extensions=("timer", "100rel"))
        self.requests: list[SipRequest] = []
        self.responses: list[SipResponse] = []
        self.dialog_id = None
        self.answer_invite = True          # the agent: 180 and 200 at once (False: 180 only)
        #: the agent's codecs: None answers every INVITE with PCMA and telephone-event; else the first codec
        #: of the offer it accepts (and telephone-event when offered), 488 when it accepts none
        self.accepts: tuple[str, ...] | None = None
        self.on_modify = self.rfc3264_answer
        self.unanswered: dict[str, str] = {}   # method -> transaction of a request it keeps waiting
        self.cancelled = 0
        self.keep_waiting_on_bye = False   # True: a BYE leaves its unanswered requests waiting (a late 2xx)
        self._version = 1

    # -- what it does ------------------------------------------------------------------------
    def sdp(self, formats: str = "8 0 101", direction: str = "sendrecv", version: int | None = None,
            port: int | None = None) -> bytes:
        if version is None:
            self._version += 1
            version = self._version
        return self.phone.sdp(formats, direction=direction, version=version, port=port)

    def rfc3264_answer(self, request: SipRequest) -> tuple[int, bytes | None]:
        """200 with the first codec offered and the answering direction, from its own phone."""
        sd = parse_sdp(request.body)
        m = sd.media[0]
        formats = m.formats[0] + (" 101" if "101" in m.formats else "")
        return 200, self.sdp(formats, direction=ANSWER_DIRECTION[peer_direction(sd, m)])

    def codec_answer(self, request: SipRequest) -> bytes | None:
        """The answer of a phone taking only :attr:`accepts`: the offer's first codec among them, by name."""
        m = parse_sdp(request.body).media[0]
        names = m.rtpmap()
        taken = [f for f in m.formats if f.isdigit() and names.get(int(f), ("",))[0] in self.accepts]
        if not taken:
            return None
        return self.sdp(taken[0] + (" 101" if "101" in m.formats else ""))

    def call(self, extra: tuple[tuple[str, str], ...] = (), *, from_: str = f"<sip:{CALLER}@127.0.0.1>",
             body: bytes | None = None) -> None:
        """The carrier's INVITE to the service number, offering PCMA, PCMU and telephone-event (or ``body``)."""
        invite = self.endpoint.make_request(
            "INVITE", f"sip:{SERVICE}@127.0.0.1:{NODE}", from_=from_,
            to=f"<sip:{SERVICE}@127.0.0.1>", headers=[("Allow", self.allow), *extra],
            body=self.sdp("8 0 101", version=1) if body is None else body, content_type=SDP)
        self.endpoint.send_request(invite, self.wire.now())
        self.wire.pump()

    def send(self, method: str, body: bytes | None = None, headers: tuple[tuple[str, str], ...] = ()) -> str:
        """A request in its dialog (re-INVITE, UPDATE, BYE), with ``body`` as SDP."""
        tx = self.endpoint.request_in_dialog(self.dialog_id, method, self.wire.now(), body=body or b"",
                                             content_type=SDP if body else None, headers=headers)
        self.wire.pump()
        return tx

    def answer_waiting(self, method: str, status: int, body: bytes | None = None) -> None:
        self.endpoint.respond(self.unanswered.pop(method), status, self.wire.now(), body=body or b"",
                              content_type=SDP if body else None)
        self.wire.pump()

    # -- what it saw -------------------------------------------------------------------------
    def got(self, method: str) -> list[SipRequest]:
        return [r for r in self.requests if r.method == method]

    def finals(self, method: str) -> list[SipResponse]:
        return [r for r in self.responses if r.status >= 200 and r.cseq.method == method]

    def handle(self, event: object, now: float) -> None:
        ep = self.endpoint
        if isinstance(event, RequestReceived):
            request = event.request
            self.requests.append(request)
            tx = event.transaction_id
            if request.method == "INVITE" and event.dialog_id is None:
                body = self.sdp("8 101") if self.accepts is None else self.codec_answer(request)
                if body is None:
                    ep.respond(tx, 488, now)
                    return
                ep.respond(tx, 180, now)
                if self.answer_invite:
                    self.dialog_id = ep.respond(tx, 200, now, body=body, content_type=SDP,
                                                headers=[("Allow", self.allow)])
                else:
                    self.unanswered["INVITE"] = tx
            elif request.method in ("INVITE", "UPDATE"):
                answer = self.on_modify(request)
                if answer is None:
                    self.unanswered[request.method] = tx
                else:
                    status, body = answer
                    ep.respond(tx, status, now, body=body or b"", content_type=SDP if body else None)
            else:
                if request.method == "BYE" and not self.keep_waiting_on_bye:
                    for method in list(self.unanswered):     # RFC 3261 §15.1.2: what is pending gets 487
                        ep.respond(self.unanswered.pop(method), 487, now)
                ep.respond(tx, 200, now)
        elif isinstance(event, ResponseReceived):
            self.responses.append(event.response)
            if 200 <= event.response.status < 300 and event.response.cseq.method == "INVITE" and event.dialog_id:
                self.dialog_id = event.dialog_id
        elif isinstance(event, CancelReceived):
            self.cancelled += 1
            self.unanswered.pop("INVITE", None)


class Wire:
    """The node and its two peers on one Clock; datagrams passed in memory and logged as (from, to, message)."""

    def __init__(self, answer_mode: str = "agent", carrier_allow: str = ALLOW_ALL, agent_allow: str = ALLOW_ALL,
                 *, trusted: tuple[str, ...] = ("127.0.0.1/32",), untrusted: str = "refuse",
                 withheld: str = "reject", billing=None, pin_lookup=None, faults=None, **settings_kw):
        self.rig = Rig(silence_timeout_s=3600)
        self.rig.media.close()                     # the rig's own media: each call makes its own
        self.clock: Clock = self.rig.clock
        self.node = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": NODE},
                                allowed_methods=ALLOWED_METHODS, supported_extensions=SUPPORTED_AS_UAS,
                                report_ended=True)
        profile = WireProfile("demo", billing_profile(), agents=(f"sip:agent@127.0.0.1:{AGENT}",),
                              answer_mode=answer_mode, withheld=withheld)
        settings = CallSettings(trusted=tuple(ipaddress.ip_network(n) for n in trusted), default_region="DE",
                                max_call_duration_s=3600, session_expires_s=1800, min_se_s=90,
                                untrusted=untrusted, **settings_kw)
        self.records: list = []
        self.media: list = []
        self.manager = CallManager(endpoint=self.node, reactor=self.clock, router=Router([profile], "DE"),
                                   settings=settings, billing=billing, record=self.records.append,
                                   media_for_call=self._media_for_call, pin_lookup=pin_lookup, faults=faults)
        self.carrier = Ua(self, CARRIER, self.rig.carrier, carrier_allow)
        self.agent = Ua(self, AGENT, self.rig.agent, agent_allow)
        self.endpoints = {NODE: self.node, CARRIER: self.carrier.endpoint, AGENT: self.agent.endpoint}
        self.log: list[tuple[int, int, object]] = []
        self.raw: dict[int, list] = {}             # port -> messages for it, not delivered

    def _media_for_call(self, call_id: str, profile):
        media = self.rig.factory.for_call(call_id, "de", on_dead=self.manager.media_dead(call_id),
                                          on_dtmf=self.manager.media_dtmf(call_id))
        self.media.append(media)
        return media

    def now(self) -> float:
        return self.clock.seconds()

    @property
    def call(self):
        (call,) = self.manager.calls.values()
        return call

    def inject(self, message: SipResponse | SipRequest, source: int) -> None:
        """A message written by hand, as if ``source`` had sent it to the node."""
        self.log.append((source, NODE, message))
        self.node.receive(serialise(message), Peer("udp", "127.0.0.1", source), self.now())
        self.pump()

    def respond_raw(self, request: SipRequest, status: int, *, to_tag: str, body: bytes = b"",
                    headers: tuple[tuple[str, str], ...] = ()) -> None:
        """A response by the peer at a :attr:`raw` port to ``request`` (Contact and SDP filled in)."""
        extra = [("Contact", f"<sip:agent@127.0.0.1:{AGENT}>"), *headers]
        if body:
            extra.append(("Content-Type", SDP))
        self.inject(make_response(request, status, to_tag=to_tag, headers=extra, body=body), AGENT)

    def pump(self) -> None:
        """Deliver until nothing moves: datagrams between the endpoints, then their events to the TUs."""
        for _ in range(10_000):
            moved = False
            for port, ep in self.endpoints.items():
                for out in ep.take_outgoing():
                    moved = True
                    message = parse_message(out.data)
                    self.log.append((port, out.peer.port, message))
                    if out.peer.port in self.raw:
                        self.raw[out.peer.port].append(message)
                    elif out.peer.port in self.endpoints:
                        self.endpoints[out.peer.port].receive(out.data, Peer("udp", "127.0.0.1", port), self.now())
            for event in self.node.take_events():
                moved = True
                self.manager.on_event(event)
            for ua in (self.carrier, self.agent):
                for event in ua.endpoint.take_events():
                    moved = True
                    ua.handle(event, self.now())
            if not moved:
                return
        raise AssertionError("the wire never settled")

    def run(self, seconds: float, step_s: float = 0.1) -> None:
        """Move the clock ``seconds`` in steps, firing every endpoint's timers and delivering what they send."""
        end = self.now() + seconds
        while self.now() < end - 1e-9:
            self.clock.advance(min(step_s, end - self.now()))
            for ep in self.endpoints.values():
                ep.handle_timer(self.now())
            self.pump()

    def sent(self, source: int, target: int, method: str | None = None, status: int | None = None) -> list:
        """Messages logged from ``source`` to ``target``: requests of ``method`` or responses of ``status``."""
        out = []
        for src, dst, message in self.log:
            if (src, dst) != (source, target):
                continue
            if method is not None and getattr(message, "method", None) == method:
                out.append(message)
            elif status is not None and getattr(message, "status", None) == status:
                out.append(message)
        return out

    def settle(self, seconds: float = 40.0) -> None:
        """Let every transaction end (64*T1 and Timer K/I/D), then the invariant: the node has nothing open."""
        self.run(seconds, step_s=0.5)
        assert self.manager.open_counts() == NOTHING_OPEN, self.manager.open_counts()
        assert all(m.closed for m in self.media)
        assert self.rig.relay.ports.in_use == 0, "RTP port pairs left bound"

    def close(self) -> None:
        self.rig.close()


def bridged_call(wire: Wire) -> object:
    """The carrier calls, the agent answers: both legs confirmed; the call's controller."""
    wire.carrier.call()
    call = wire.call
    assert call.state.value == "bridged" and wire.carrier.dialog_id is not None and wire.agent.dialog_id is not None
    return call


def audio(body: bytes):
    """The first m= section of an SDP body and the whole parse."""
    sd = parse_sdp(body)
    return sd, sd.media[0]
