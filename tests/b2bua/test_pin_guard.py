"""PIN guessing limited across calls: the call controller with fake legs and media on a task.Clock, the real
:class:`billing.pinguard.PinGuard` on an SQLite store running inline on the same clock.

Each test asserts outcomes: what the caller heard, the SIP answers, the call record, the audit row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from twisted.internet.defer import succeed
from twisted.internet.task import Clock

from b2bua.call import Call
from b2bua.callports import Say
from b2bua.callstate import St
from b2bua.identity import CallerIdentity
from b2bua.routing import Router
from billing.db import audit, pins
from billing.pinguard import PinGuard, PinRule
from billing.session import CallBilling
from billing.store import Store
from tests.billing.test_session_harness import MemorySessionStore
from tests.conftest import fired
from tests.support.callfakes import CALLER, FakeA, FakeB, FakeMedia, Profile, billing_profile, type_keys

RULE = PinRule(max_failures=4, window_s=600, lockout_s=1800)
OTHER = "+49301234599"
PINS = {"4711": CALLER, "5822": OTHER}
ATTACKER = "192.0.2.66"


@dataclass
class Site:
    """One node's view: a clock, the PIN guard on a store, billing, and the calls made so far."""

    clock: Clock
    store: Store
    guard: PinGuard
    billing: CallBilling
    lookups: list = field(default_factory=list)

    def lookup(self, profile_name: str, pin: str):
        self.lookups.append(pin)
        return succeed(PINS.get(pin))


@dataclass
class Caller:
    call: Call
    media: FakeMedia
    a: FakeA
    legs: list
    records: list

    def heard(self) -> list[Say]:
        return [a.say for a in self.media.said]


@pytest.fixture
def site(tmp_path):
    clock = Clock()
    clock.advance(1_800_000_000)
    store = Store.open(f"sqlite:///{tmp_path}/store.db", clock, node_id="n1", inline=True)
    store.upgrade()
    sessions = MemorySessionStore()
    sessions.set_balance("demo", CALLER, 1000)
    yield Site(clock, store, PinGuard(store, lambda: RULE, actor="node:n1"),
               CallBilling(sessions, clock, node_id="n1", lease_s=60))
    store.close()


def pin_call(site: Site, call_id: str, source: str = ATTACKER, pin_account: str | None = None) -> Caller:
    """A withheld caller from ``source`` on a profile that takes PINs, started."""
    media, a, legs, records = FakeMedia(site.clock), FakeA(), [], []

    def dialer(agent, ident, offer, call):
        legs.append(FakeB(agent))
        return legs[-1]

    profile = Profile("demo", billing_profile())
    call = Call(call_id=call_id, reactor=site.clock, a=a, route=Router([profile], "DE").route("+493012345678"),
                identity=CallerIdentity(None, "none", True, None), dialer=dialer, media=media,
                billing=site.billing, record=records.append, max_duration_s=3600, withheld_policy="pin",
                pin_lookup=site.lookup, pin_gate=site.guard, source_address=source, pin_account=pin_account)
    call.start()
    return Caller(call, media, a, legs, records)


def wrong_pins(site: Site, caller: Caller, count: int) -> None:
    for _ in range(count):
        site.clock.advance(5)
        type_keys(caller, "0000#")


def lockouts(site: Site) -> list[audit.AuditEntry]:
    return fired(site.store.run(audit.entries, action=pins.LOCKOUT))


def ended_locked_out(site: Site, caller: Caller) -> None:
    """The caller heard "too many wrong PINs", then BYE; nobody rung, nothing billed."""
    assert caller.heard()[-1] is Say.PIN_LOCKED
    site.clock.advance(10)
    assert caller.a.sent[-1] == "BYE" and caller.legs == []
    assert caller.call.state is St.DONE and caller.call.pending_timers() == 0
    assert caller.records[0].end_reason == "pin_locked" and caller.records[0].charge_cents == 0


def test_fourth_wrong_pin_from_one_source_across_two_calls_locks_out(site):
    """Call 1 from one address: 3 wrong PINs, ended as before (pin_wrong). Call 2 from it is asked again;
    its first wrong PIN is the 4th: the caller hears the lockout message and BYE, an audit row names the
    source, and the node counts one lockout."""
    first = pin_call(site, "c1")
    wrong_pins(site, first, 3)
    site.clock.advance(10)
    assert first.records[0].end_reason == "pin_wrong" and lockouts(site) == []
    second = pin_call(site, "c2")
    assert second.heard() == [Say.WITHHELD]
    wrong_pins(site, second, 1)
    ended_locked_out(site, second)
    [row] = lockouts(site)
    assert (row.subject, row.source, row.profile, row.actor) == (f"source {ATTACKER}", ATTACKER, "demo", "node:n1")
    assert "c2" in row.detail and site.guard.lockouts == 1


def test_a_locked_source_is_not_asked_and_its_right_pin_is_not_looked_up(site):
    """After the lockout a new call from that address hears the lockout message at once (answered 200, no PIN
    prompt) and is ended; the right PIN typed meanwhile is not looked up. Another address is still asked."""
    wrong_pins(site, pin_call(site, "c1"), 3)
    wrong_pins(site, pin_call(site, "c2"), 1)
    site.clock.advance(60)
    looked_up = len(site.lookups)
    third = pin_call(site, "c3")
    assert third.a.sent == [200] and third.heard() == [Say.PIN_LOCKED]
    type_keys(third, "4711#")
    assert len(site.lookups) == looked_up
    ended_locked_out(site, third)
    assert pin_call(site, "c4", source="192.0.2.1").heard() == [Say.WITHHELD]


def test_the_lockout_ends_after_lockout_s(site):
    """lockout_s after the 4th wrong PIN the address may type again, and the right PIN connects."""
    wrong_pins(site, pin_call(site, "c1"), 3)
    wrong_pins(site, pin_call(site, "c2"), 1)
    site.clock.advance(RULE.lockout_s)
    later = pin_call(site, "c3")
    assert later.heard() == [Say.WITHHELD]
    type_keys(later, "4711#")
    assert later.call.identity.number == CALLER and later.heard()[-1] is Say.MINUTES


def test_parallel_calls_from_one_source_share_the_limit(site):
    """Two calls open at once from one address, taking turns: 4 wrong PINs between them lock both; the other
    call's next PIN (the right one) is refused unlooked-up and that call ends with the message too."""
    one, two = pin_call(site, "c1"), pin_call(site, "c2")
    for caller in (one, two, one):
        wrong_pins(site, caller, 1)
    assert one.call.state is St.PIN_ENTRY and two.call.state is St.PIN_ENTRY
    wrong_pins(site, two, 1)                    # the 4th
    assert two.heard()[-1] is Say.PIN_LOCKED
    type_keys(one, "4711#")
    assert site.lookups == ["0000"] * 4
    ended_locked_out(site, one)
    ended_locked_out(site, two)
    assert len(lockouts(site)) == 1


def test_a_right_pin_does_not_reset_the_count_of_its_source(site):
    """3 wrong PINs, then a call with the right PIN (connected): the next wrong PIN from that address is
    still the 4th and locks."""
    wrong_pins(site, pin_call(site, "c1"), 3)
    good = pin_call(site, "c2")
    type_keys(good, "4711#")
    assert good.call.identity.number == CALLER
    third = pin_call(site, "c3")
    wrong_pins(site, third, 1)
    ended_locked_out(site, third)


def test_a_call_naming_an_account_needs_that_accounts_pin_and_the_account_locks(site):
    """A call that names CALLER's account: OTHER's valid PIN is wrong there; 4 such wrong PINs from 4 addresses
    lock the account (audited as the account), while those addresses may still call."""
    callers = [pin_call(site, f"c{i}", source=f"198.51.100.{i}", pin_account=CALLER) for i in range(4)]
    for caller in callers[:3]:
        site.clock.advance(5)
        type_keys(caller, "5822#")
        assert caller.call.identity.number is None and caller.heard()[-1] is Say.PIN_WRONG
    wrong_pins(site, callers[3], 1)
    ended_locked_out(site, callers[3])
    assert [r.subject for r in lockouts(site)] == [f"account {CALLER}"]
    assert pin_call(site, "c9", source="198.51.100.9", pin_account=CALLER).heard() == [Say.PIN_LOCKED]
    assert pin_call(site, "c10", source="198.51.100.0").heard() == [Say.WITHHELD]
