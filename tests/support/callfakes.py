"""A call controller on fakes: legs and media that record what they were told, billing on the in-memory store.

Shared by the controller's tests (``tests/b2bua/test_call.py``) and the tests that build calls on it
(PIN guard, the interfaces, the call record). :func:`make_call` gives a :class:`World`: a Clock at a
realistic epoch, the caller's balance, the call started; the helpers below drive it as a leg would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from b2bua.call import Call
from b2bua.callevents import Answered, Bye, Dtmf, Ringing
from b2bua.callports import Announcement
from b2bua.callstate import St
from b2bua.identity import CallerIdentity
from b2bua.routing import Router
from billing.profile import BillingProfile, CallerClass, ChargingStart, Increment
from billing.session import CallBilling
from tests.billing.test_session_harness import MemorySessionStore

CALLER = "+49301234567"


@dataclass(frozen=True)
class Profile:
    name: str
    billing: BillingProfile
    service_numbers: tuple = ("+493012345678",)
    agents: tuple = ("sip:a1@agents", "sip:a2@agents")
    hunting: str = "order"
    ring_timeout_s: int = 20


def billing_profile(**kw) -> BillingProfile:
    defaults = dict(name="demo", landline_per_minute=Decimal("1.20"), mobile_per_minute=Decimal("2.40"),
                    increment=Increment(60, 60), charging_starts=ChargingStart.ANSWER, warn_before_s=120)
    defaults.update(kw)
    return BillingProfile(**defaults)


class FakeModifyingLeg:
    """What both fake legs do with re-INVITE/UPDATE relaying (b2bua.callports.ModifyingLeg): record it."""

    def __init__(self):
        self.sent: list = []
        self.local_sdp = None
        #: the Reason (b2bua.sip.causes) of each BYE/CANCEL sent, the warn-code of each final answer
        self.reasons: list = []
        self.warn_codes: list = []

    def peer_allows(self, method):
        return True

    def modify(self, method, body):
        self.sent.append((method, body))
        return f"tx-{len(self.sent)}"

    def answer_modify(self, method, status, body=None, headers=(), warn_code=None):
        self.sent.append((method, status))
        self.warn_codes.append(warn_code)


class FakeA(FakeModifyingLeg):
    def __init__(self):
        super().__init__()
        self.offer = b"v=0 carrier"
        self.answered = False
        self.ended = False
        self.final_status = None

    def provisional(self, status, sdp=None):
        self.sent.append(status)

    def answer(self, sdp):
        self.sent.append(200)
        self.answered = True
        self.final_status = 200

    def reject(self, status, headers=None, warn_code=None):
        self.sent.append(status)
        self.warn_codes.append(warn_code)
        self.final_status = status
        self.ended = True

    def bye(self, reason=None):
        self.sent.append("BYE")
        self.reasons.append(("BYE", reason))
        self.ended = True


class FakeB(FakeModifyingLeg):
    def __init__(self, agent):
        super().__init__()
        self.agent = agent
        self.ended = False
        self.final_status = None

    def cancel(self, reason=None):
        self.sent.append("CANCEL")
        self.reasons.append(("CANCEL", reason))

    def bye(self, reason=None):
        self.sent.append("BYE")
        self.reasons.append(("BYE", reason))
        self.ended = True


class FakeMedia:
    """Announcements take `say_s` seconds of clock time; records what was said to whom, and when the
    ringback (``ringback``: what plays, None for none) started and stopped."""

    def __init__(self, clock, say_s=5, ringback="de"):
        self.clock = clock
        self.say_s = say_s
        self.ringback = ringback
        self.ringing = False               # the ringback plays now
        self.ringback_log: list[tuple[float, str]] = []   # (clock seconds, "start" / "stop")
        self.said: list[Announcement] = []
        self.closed = False
        self.bridged = False
        self.silent_since_ms = None        # set by a test: the leg went silent, last heard then
        self.acked = None                  # the carrier's answer in its ACK (to our late offer)

    def check_offer(self, offer):
        pass

    def hold_for_refusal(self):
        return True

    def dead_since_ms(self):
        return self.silent_since_ms

    def answer_for_a(self, offer):
        return b"v=0 ours-a"

    def offer_for_b(self):
        return b"v=0 ours-b"

    def b_answered(self, answer):
        self.bridged = True

    def announce(self, announcement):
        self.said.append(announcement)
        d = Deferred()
        self.clock.callLater(self.say_s, d.callback, None)
        return d

    def stop(self):
        self.stop_ringback()

    def start_ringback(self):
        if self.ringback is None or self.ringing:
            return None
        self.ringing = True
        self.ringback_log.append((self.clock.seconds(), "start"))
        return self.ringback

    def stop_ringback(self):
        if self.ringing:
            self.ringing = False
            self.ringback_log.append((self.clock.seconds(), "stop"))

    def close(self):
        self.closed = True

    def a_acked(self, answer):
        self.acked = answer

    def reoffer_from_a(self, offer):
        return b"v=0 ours-a"

    def reoffer_from_b(self, offer):
        return b"v=0 ours-b"

    def modify_offer(self, side, offer):
        return None                        # the other leg would see no change: answered on its own leg

    def modify_answer(self, side, answer):
        return b"v=0 ours-a" if side == "a" else b"v=0 ours-b"

    def modify_dropped(self, side):
        pass


@dataclass
class World:
    clock: Clock
    store: MemorySessionStore
    billing: CallBilling
    media: FakeMedia
    a: FakeA
    legs: list = field(default_factory=list)
    records: list = field(default_factory=list)
    call: Call | None = None

    def b(self, i=-1) -> FakeB:
        return self.legs[i]


def make_call(balance_cents=1000, profile=None, identity=None, answer_mode="answer", dialled="+493012345678",
              with_media=True, max_duration_s=4 * 3600, dialer_leg=None, faults=None, agent_warning="words"):
    clock = Clock()
    clock.advance(1_800_000_000)
    store = MemorySessionStore()
    profile = profile or Profile("demo", billing_profile())
    if balance_cents is not None:
        store.set_balance("demo", CALLER, balance_cents)
    billing = CallBilling(store, clock, node_id="n1", lease_s=60)
    world = World(clock, store, billing, FakeMedia(clock), FakeA())

    def dialer(agent, ident, offer, call):
        leg = (dialer_leg or FakeB)(agent)
        world.legs.append(leg)
        return leg

    route = Router([profile], "DE").route(dialled)
    ident = identity or CallerIdentity(CALLER, "from", False, CallerClass.LANDLINE)
    world.call = Call(call_id="c1", reactor=clock, a=world.a, route=route, identity=ident, dialer=dialer,
                      media=world.media if with_media else None, billing=billing, record=world.records.append,
                      max_duration_s=max_duration_s, answer_mode=answer_mode, faults=faults,
                      agent_warning=agent_warning)
    world.call.start()
    return world


def nothing_pending(w: World):
    assert w.call.state is St.DONE
    assert w.call.pending_timers() == 0
    assert w.billing.sessions == ()
    assert w.a.ended and all(leg.ended for leg in w.legs)


def caller_hangs_up(w: World):
    """The carrier's BYE: its leg has answered the BYE (so it has ended) before telling the call."""
    w.a.ended = True
    w.call.handle(Bye(w.a))


def answer_agent(w: World, leg=None):
    leg = leg or w.b()
    w.call.handle(Ringing(leg, 180))
    w.call.handle(Answered(leg, b"v=0 agent"))
    leg.final_status = 200


def type_keys(w: World, keys: str):
    for key in keys:
        w.call.handle(Dtmf(key))
