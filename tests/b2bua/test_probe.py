"""OPTIONS probing of agents (b2bua.probe) with a real SipEndpoint, plain bytes and a Clock."""

from __future__ import annotations

from twisted.internet.task import Clock

from b2bua.probe import AgentProber, alive_after
from b2bua.routing import Router
from b2bua.sip.endpoint import SipEndpoint
from b2bua.sip.codec import parse_message
from b2bua.sip.message import SipRequest
from b2bua.sip.peer import Peer
from tests.b2bua.test_routing import P

A = "sip:a@127.0.0.1:5071"
B = "sip:b@127.0.0.1:5072"


PROFILES = [P("one", ("+493012345678",), (A, B)), P("two", ("+498912345678",), (B,))]


class Rig:
    """An endpoint, a router and a prober; ``pump`` feeds the endpoint's events to the prober."""

    def __init__(self, interval_s: float = 30):
        self.clock = Clock()
        self.endpoint = SipEndpoint(local_host="127.0.0.1", local_ports={"udp": 5060})
        self.router = Router(PROFILES, "DE")
        self.wire: list = []
        self.prober = AgentProber(endpoint=self.endpoint, reactor=self.clock, router=lambda: self.router,
                                  agents=lambda: [a for p in PROFILES for a in p.agents],
                                  interval_s=interval_s, flush=self.pump)
        self.others: list = []

    def pump(self) -> None:
        self.wire.extend(self.endpoint.take_outgoing())
        for event in self.endpoint.take_events():
            if not self.prober.on_event(event):
                self.others.append(event)

    def advance(self, seconds: float, step: float = 0.5) -> None:
        end = self.clock.seconds() + seconds
        while self.clock.seconds() < end:
            self.clock.advance(min(step, end - self.clock.seconds()))
            self.endpoint.handle_timer(self.clock.seconds())
            self.pump()

    def options_sent(self) -> list[tuple[SipRequest, Peer]]:
        out = [(parse_message(o.data), o.peer) for o in self.wire]
        self.wire.clear()
        return [(m, p) for m, p in out if isinstance(m, SipRequest)]

    def answer(self, request: SipRequest, peer: Peer, status: int) -> None:
        via = request.headers.get("via")
        text = (f"SIP/2.0 {status} X\r\nVia: {via}\r\nFrom: {request.headers.get('from')}\r\n"
                f"To: {request.headers.get('to')};tag=t1\r\nCall-ID: {request.headers.get('call-id')}\r\n"
                f"CSeq: {request.headers.get('cseq')}\r\nContent-Length: 0\r\n\r\n")
        self.endpoint.receive(text.encode(), peer, self.clock.seconds())
        self.pump()


def test_verdicts():
    """No answer and 5xx mean dead; 2xx, and 4xx (the agent is there), mean alive."""
    assert [alive_after(s) for s in (None, 500, 503, 200, 404, 405, 486)] == [False] * 3 + [True] * 4


def test_one_options_per_distinct_agent_on_the_wire():
    """The first round (interval_s after start) sends one OPTIONS to each distinct agent (B is in two profiles)."""
    rig = Rig()
    rig.prober.start()
    assert rig.options_sent() == []
    rig.advance(30)
    sent = rig.options_sent()
    assert sorted((m.method, str(m.uri), p.port) for m, p in sent) == [("OPTIONS", A, 5071), ("OPTIONS", B, 5072)]
    rig.prober.stop()


def test_unanswered_agent_is_dead_and_rung_last_then_alive_after_200():
    """A timeout puts A into router.dead (route order B, A); a 200 to the next probe brings it back first."""
    rig = Rig(interval_s=40)
    rig.prober.probe_all()
    rig.prober.start()
    for m, p in rig.options_sent():
        if p.port == 5072:
            rig.answer(m, p, 200)
    assert rig.router.dead == set()
    rig.advance(33)            # 64*T1 = 32 s: A's non-INVITE transaction times out
    assert rig.router.dead == {A}
    assert rig.router.route("+493012345678").agents == (B, A)
    assert rig.others == []    # the manager never sees probe events
    rig.wire.clear()
    rig.advance(8)             # the next round at 40 s
    sent = [(m, p) for m, p in rig.options_sent() if m.method == "OPTIONS" and p.port == 5071]
    assert sent
    rig.answer(*sent[0], 200)
    assert rig.router.dead == set()
    assert rig.router.route("+493012345678").agents == (A, B)
    rig.prober.stop()


def test_5xx_marks_dead_and_provisional_is_ignored():
    """A 100 changes nothing; a 503 final marks the agent dead at once."""
    rig = Rig()
    rig.prober.probe_all()
    sent = {p.port: (m, p) for m, p in rig.options_sent()}
    rig.answer(*sent[5072], 100)
    assert rig.prober.pending == 2 and rig.router.dead == set()
    rig.answer(*sent[5072], 503)
    assert rig.router.dead == {B} and rig.prober.pending == 1
    rig.prober.stop()


def test_pending_agent_is_not_probed_twice_and_stop_leaves_no_timer():
    """A round while a probe is pending skips that agent; stop() cancels the interval timer."""
    rig = Rig(interval_s=10)
    rig.prober.start()
    rig.prober.probe_all()
    first = rig.options_sent()
    rig.answer(*[x for x in first if x[1].port == 5071][0], 200)
    rig.advance(10)
    again = {(p.port, m.headers.get("via")) for m, p in rig.options_sent() if m.method == "OPTIONS"}
    first_b = next(m.headers.get("via") for m, p in first if p.port == 5072)
    # A gets a new probe (new branch); B's first probe is still pending: only its retransmissions go out
    assert len([1 for port, _ in again if port == 5071]) == 1
    assert {via for port, via in again if port == 5072} == {first_b}
    rig.prober.stop()
    assert rig.clock.getDelayedCalls() == []


def test_interval_zero_is_off():
    """probe_interval_s = 0 sends nothing and schedules nothing."""
    rig = Rig(interval_s=0)
    rig.prober.start()
    assert rig.options_sent() == [] and rig.clock.getDelayedCalls() == []
