"""Prepaid calls end to end through a real node on 127.0.0.1, run in a subprocess of its own.

``python -m tests.support.e2e OUT.json`` starts a whole :class:`~b2bua.node.app.Node` (SQLite in a temporary
folder, the web side with the demo's PayPal signer) four times on the real reactor, the four at once, each
with the test UA as carrier and as agent, and writes what happened as plain JSON facts for ``tests/node/test_e2e.py``:

- ``full``: the demo call (credit bought by a top-up with bonus, a PayPal webhook top-up during the call,
  warning, cut-off by credit exhaustion) with a tariff of 3.99/min so that it lasts seconds;
- ``announce``: a caller whose credit buys whole minutes; the carrier hangs up after the
  announcement and some conversation;
- ``no_credit``: a caller without an account;
- ``warn30``: a profile warning 30 s before the end, a caller whose credit lasts 33 s (so the warning
  comes 3 s into the conversation); the carrier hangs up once it has been said.

Correlation scores (``demo.phone.find``) are computed here, where the recordings are; the test asserts
on them. A subprocess because the reactor runs once per process.
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile
import uuid
from typing import Any

import numpy as np
from twisted.internet.defer import DeferredLock, gatherResults, inlineCallbacks, maybeDeferred

import demo.scenario as demo_mod
from b2bua.callports import Announcement, Say
from b2bua.callmedia import agent_phrase_for, phrase_for
from demo.scenario import Demo, DemoPlan, _wait_for, _wait_for_deferred
from demo.report import PROFILE
from demo.phone import band_level, find
from media.tones import beeps_pcm
from media.library import PromptLibrary

PER_MINUTE = "3.99"                  # landline tariff of the e2e profile: 6.65 cents a second

ANNOUNCE_TOPUP_CENTS = 1000          # at 3.99/min: 150 s, so 2 whole minutes are announced
FULL_CALLER = "+493088776655"
ANNOUNCE_CALLER = "+493088776601"
NO_CREDIT_CALLER = "+493088776602"
HANGUP_AFTER_S = 9.0                 # the announce carrier's hang-up after its answer
WARN30_CALLER = "+493088776603"
WARN30_PLAN = DemoPlan(warn_before_s=30)
WARN30_TOPUP_CENTS = 220             # at 3.99/min in 1/1: 33 s (219 cents), so the warning comes 3 s in
WARN30_HANGUP_AFTER_S = 18.0         # tariff and minutes (~7 s), the agent, 3 s, the warning (~4 s), a margin

_original_demo_config = demo_mod.demo_config


class _Demo(Demo):
    """The demo whose node starts while no other does: a starting node migrates its store with alembic,
    whose context is one per process; the calls themselves run at once."""

    starting = DeferredLock()

    def start(self):
        return self.starting.run(Demo.start, self)


def _e2e_config(*args, **kwargs) -> dict[str, Any]:
    """The demo config with a tariff that makes the demo's credit last seconds."""
    raw = _original_demo_config(*args, **kwargs)
    raw["profiles"][PROFILE]["landline_per_minute"] = PER_MINUTE
    return raw


demo_mod.demo_config = _e2e_config          # this process only (write_demo_config looks it up at call time)


def _pcm(library, names) -> np.ndarray:
    return np.frombuffer(library.pcm(names), dtype="<i2").astype(float)


def _score(phone, pattern: np.ndarray) -> float:
    signal, _ = phone.rtp.recording()
    if len(signal) < len(pattern):
        return 0.0
    return float(find(signal, pattern)[1])


def _tone_share(phone, other) -> float:
    """The other side's tone as a share of both tones' levels in what ``phone`` heard."""
    signal, _ = phone.rtp.recording()
    if not len(signal):
        return 0.0
    mine, theirs = band_level(signal, phone.rtp.tone_hz), band_level(signal, other.rtp.tone_hz)
    return float(theirs / (theirs + mine)) if theirs + mine > 0 else 0.0


def _warning_scores(demo, library, lang: str, left_s: int) -> dict[str, Any]:
    """How well each phone's recording matches the warning as said ``left_s`` before the end: the caller's
    words at the carrier (and the "noch eine Minute" a warning under a minute used to say), the agent's
    words and the warning tone at the agent."""
    warning = Announcement(Say.WARNING, seconds=left_s)
    return {
        "warn_before_s": left_s,
        "warning_score_carrier": _score(demo.carrier, _pcm(library, phrase_for(warning, lang))),
        "warning_minute_score_carrier": _score(demo.carrier, _pcm(library, phrase_for(
            Announcement(Say.WARNING, minutes=1), lang))),
        "warning_words_score_agent": _score(demo.agent, _pcm(library, agent_phrase_for(warning, lang))),
        "warning_tone_score_agent": _score(demo.agent, np.frombuffer(beeps_pcm(), dtype="<i2").astype(float)),
    }


def _ledger(entries) -> list[dict[str, Any]]:
    return [{"kind": e.kind, "amount_cents": e.amount_cents, "balance_after_cents": e.balance_after_cents,
             "source": e.source, "at_ms": e.at_ms} for e in sorted(entries, key=lambda e: e.id)]


def _record(rec) -> dict[str, Any] | None:
    if rec is None:
        return None
    return {"call_id": rec.call_id, "end_reason": rec.end_reason, "billed_s": rec.billed_s,
            "charge_cents": rec.charge_cents, "end_ms": rec.end_ms, "caller_class": rec.caller_class}


def _call(call) -> dict[str, Any] | None:
    if call is None:
        return None
    return {"events": [[at, what] for at, what in call.events],
            "charging_start_ms": call.session.start_ms if call.session is not None else None,
            "minutes": call.session.minutes if call.session is not None else None}


@inlineCallbacks
def run_full(reactor, folder: pathlib.Path):
    """The demo's call with the e2e tariff; the verdict and the facts."""
    from demo.report import verdict
    demo = _Demo(reactor, folder, DemoPlan(), web=True, caller=FULL_CALLER)
    try:
        result = yield demo.run()
        library = PromptLibrary(None, demo.node.config.profiles[PROFILE].language)
        lang = demo.node.config.profiles[PROFILE].language
        out = {
            "verdict": verdict(result),
            "heard": {k: [v[0], v[2]] for k, v in result.heard.items()},
            **_warning_scores(demo, library, lang, DemoPlan().warn_before_s),
            "agent_tone_share_at_carrier": _tone_share(demo.carrier, demo.agent),
            "carrier_tone_share_at_agent": _tone_share(demo.agent, demo.carrier),
            "midcall": [result.midcall_ok, result.midcall],
            "ledger": _ledger(result.ledger),
            "record": _record(result.record),
            "call": _call(result.call),
            "balance_cents": result.balance_cents,
            "carrier": {"final_status": result.carrier.final_status, "ended_by": result.carrier.ended_by},
            "agent": ({"final_status": result.agent.final_status, "ended_by": result.agent.ended_by}
                      if result.agent else None),
            "increment_next_s": demo.node.config.profiles[PROFILE].billing.increment.next_s,
        }
    finally:
        yield demo.stop()
    return out


@inlineCallbacks
def _simple_call(reactor, folder: pathlib.Path, caller: str, topup_cents: int, hangup_after_s: float | None,
                 plan: DemoPlan = DemoPlan()):
    """One call of ``caller`` (topped up with ``topup_cents`` first, if any); the demo's node and phones."""
    demo = _Demo(reactor, folder, plan, web=False, caller=caller)
    if hangup_after_s is not None:
        demo.carrier.hangup_after_s = hangup_after_s
    try:
        ports = yield demo.start()
        node = demo.node
        profile = node.config.profiles[PROFILE]
        done_calls: list = []
        node.manager.on_call_done = done_calls.append
        if topup_cents:
            yield node.store.topup(profile.billing, caller, topup_cents, source="e2e",
                                   external_ref=f"e2e-{uuid.uuid4().hex}", actor="e2e", note="before the call")
        target = f"sip:{profile.service_numbers[0]}@127.0.0.1:{ports.sip_udp}"
        carrier = yield demo.carrier.call(target, from_=f"<sip:{caller}@127.0.0.1;user=phone>")
        call = yield _wait_for(reactor, lambda: done_calls[0] if done_calls else None, 10.0)
        record = None
        if call is not None:
            yield call.finished
            rows = yield _wait_for_deferred(reactor, lambda: node.store.calls(PROFILE, caller),
                                            lambda rows: bool(rows), 5.0)
            mine = [r for r in rows or () if r.call_id == call.call_id]
            record = mine[0] if mine else None
        yield _wait_for(reactor, lambda: True if demo.agent.invited_at is not None and demo.agent.ended.called
                        else None, 1.0)
        entries = yield node.store.transactions(profile=PROFILE, number=caller)
        account = yield node.store.account(PROFILE, caller)
        library = PromptLibrary(None, profile.language)
        lang = profile.language
        minutes_scores = {str(n): _score(demo.carrier, _pcm(library, phrase_for(Announcement(Say.MINUTES, minutes=n),
                                                                                  lang)))
                          for n in range(0, 9)}
        out = {
            "carrier": {"final_status": carrier.final_status, "ended_by": carrier.ended_by,
                        "reason": carrier.reason},
            "agent_invited": demo.agent.invited_at is not None,
            "no_credit_score": _score(demo.carrier, _pcm(library, phrase_for(Announcement(Say.NO_CREDIT), lang))),
            "minutes_scores": minutes_scores,
            **_warning_scores(demo, library, lang, plan.warn_before_s),
            "agent_tone_share_at_carrier": _tone_share(demo.carrier, demo.agent),
            "ledger": _ledger(entries),
            "record": _record(record),
            "call": _call(call),
            "balance_cents": account.balance_cents if account is not None else None,
        }
    finally:
        yield demo.stop()
    return out


@inlineCallbacks
def run_all(reactor, folder: pathlib.Path):
    """The four calls at once, each through a node, phones and store of its own (callers, ports and
    folders apart; the nodes start one after the other): the run takes as long as its longest call, the
    full one, not the four in a row."""
    results: dict[str, Any] = {"per_minute": PER_MINUTE,
                               "announce_topup_cents": ANNOUNCE_TOPUP_CENTS}

    def keep(value, name: str) -> None:
        results[name] = value

    def failed(f, name: str) -> None:        # the test reports it
        results[name] = {"error": f"{f.type.__name__}: {f.getErrorMessage()}"}

    runs = []
    for name, make in (
            ("no_credit", lambda: _simple_call(reactor, folder / "no_credit", NO_CREDIT_CALLER, 0, None)),
            ("announce", lambda: _simple_call(reactor, folder / "announce", ANNOUNCE_CALLER,
                                              ANNOUNCE_TOPUP_CENTS, HANGUP_AFTER_S)),
            ("warn30", lambda: _simple_call(reactor, folder / "warn30", WARN30_CALLER, WARN30_TOPUP_CENTS,
                                            WARN30_HANGUP_AFTER_S, WARN30_PLAN)),
            ("full", lambda: run_full(reactor, folder / "full"))):
        (folder / name).mkdir()
        runs.append(maybeDeferred(make).addCallbacks(keep, failed, callbackArgs=(name,), errbackArgs=(name,)))
    yield gatherResults(runs)
    return results


def main(argv: list[str]) -> int:
    from twisted.internet import reactor
    out_path = pathlib.Path(argv[0])
    holder: dict[str, Any] = {}

    def finish(value) -> None:
        holder["value"] = value
        reactor.stop()

    def fail(f) -> None:
        holder["value"] = {"error": f.getTraceback()}
        reactor.stop()

    with tempfile.TemporaryDirectory(prefix="prepaid-e2e-") as tmp:
        reactor.callWhenRunning(lambda: run_all(reactor, pathlib.Path(tmp)).addCallbacks(finish, fail))
        reactor.callLater(150, lambda: fail_timeout(holder, reactor))
        reactor.run()
    out_path.write_text(json.dumps(holder.get("value", {"error": "no result"}), default=str))
    return 0


def fail_timeout(holder: dict, reactor) -> None:
    holder.setdefault("value", {"error": "watchdog: the e2e run took more than 150 s"})
    if reactor.running:
        reactor.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
