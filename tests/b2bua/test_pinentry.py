"""PIN entry with plain values: the keys typed, the tries, and each check's outcome, with no reactor.

The store and the guard are fakes whose Deferreds have fired already, so every check's outcome is there
when ``check`` returns.
"""

from __future__ import annotations

from twisted.internet.defer import succeed

from b2bua.pinentry import GONE, LOCKED, RIGHT, WRONG, PinEntry, PinOutcome

PINS = {"1234": "+49301234567", "9999": "+49309999999"}


class Gate:
    """A guard that admits ``admit`` attempts, and locks after ``lock_after`` wrong ones."""

    def __init__(self, admit: bool = True, lock_after: int = 99):
        self.admit = admit
        self.lock_after = lock_after
        self.wrongs = 0
        self.rights = 0

    def locked(self, profile, source, account):
        return succeed(not self.admit)

    def attempt(self, profile, source, account, call_id):
        return succeed(("attempt", call_id) if self.admit else None)

    def wrong(self, attempt):
        self.wrongs += 1
        return succeed(self.wrongs >= self.lock_after)

    def right(self, attempt):
        self.rights += 1
        return succeed(None)


def entry(gate=None, account=None) -> PinEntry:
    return PinEntry(lookup=lambda profile, pin: succeed(PINS.get(pin)), gate=gate, profile="demo",
                    source="192.0.2.1", account=account, call_id="c1", log_id="c1")


def outcome_of(pin_entry: PinEntry, pin: str, wanted=lambda: True) -> PinOutcome:
    seen = []
    pin_entry.check(pin, wanted).addCallback(seen.append)
    (outcome,) = seen
    return outcome


def test_keys_make_a_pin_on_hash_star_starts_again_and_at_most_16_digits_count():
    p = entry()
    assert [p.key(k) for k in "12*34"] == [None] * 5 and p.digits == "34"
    assert p.key("#") == "34" and p.digits == ""
    for _ in range(20):
        p.key("7")
    assert p.take_typed() == "7" * 16


def test_a_right_pin_names_its_number_and_the_guard_hears_it():
    gate = Gate()
    assert outcome_of(entry(gate), "1234") == PinOutcome(RIGHT, "+49301234567")
    assert gate.rights == 1 and gate.wrongs == 0


def test_a_wrong_pin_an_empty_one_and_another_accounts_pin_are_wrong_tries():
    """Nothing typed is a try of the call but no guess for the guard; a PIN of another account than the one
    the call names opens nothing."""
    gate = Gate()
    p = entry(gate, account="+49301234567")
    assert outcome_of(p, "") == PinOutcome(WRONG) and gate.wrongs == 0
    assert outcome_of(p, "0000") == PinOutcome(WRONG) and gate.wrongs == 1
    assert outcome_of(p, "9999") == PinOutcome(WRONG) and gate.wrongs == 2
    assert p.tries == 3 and p.last_try


def test_the_guard_locks_before_the_lookup_or_with_a_wrong_pin():
    assert outcome_of(entry(Gate(admit=False)), "1234") == PinOutcome(LOCKED)
    assert outcome_of(entry(Gate(lock_after=1)), "0000") == PinOutcome(LOCKED, after_wrong=True)


def test_a_gone_calls_pin_is_settled_when_the_guard_counted_it():
    """A PIN the guard locked out is not looked up. A PIN the guard counted is looked up and settled even
    when the call went meanwhile (a caller typing on after the lock ended it): left pending, it would
    count against its source unaudited (the CI failure of tests/hostile/test_pin_guessing.py)."""
    looked_up = []

    def lookup(profile, pin):
        looked_up.append(pin)
        return succeed(PINS.get(pin))

    gate = Gate()
    p = PinEntry(lookup=lookup, gate=gate, profile="demo", source="", account=None, call_id="c1", log_id="c1")
    assert outcome_of(p, "0000", wanted=lambda: False) == PinOutcome(GONE) and gate.wrongs == 1
    assert outcome_of(p, "1234", wanted=lambda: False) == PinOutcome(GONE) and gate.rights == 1
    p = PinEntry(lookup=lookup, gate=Gate(admit=False), profile="demo", source="", account=None, call_id="c1",
                 log_id="c1")
    assert outcome_of(p, "9999", wanted=lambda: False) == PinOutcome(GONE)
    assert looked_up == ["0000", "1234"]


def test_a_calls_pin_entry_keeps_no_instance_dict():
    """Each call of a node that takes PINs holds its PinEntry for the whole call: slotted (its instance dict was
    ~50 B of each held call, bench/memory.py --by-site: call.py:119)."""
    p = PinEntry(lookup=lambda profile, pin: succeed(None), gate=None, profile="demo", source="", account=None,
                 call_id="c1", log_id="c1")
    assert not hasattr(p, "__dict__")
    assert p.key("1") is None and p.key("#") == "1"
