"""Prepaid calls end to end: a real node on 127.0.0.1, the test UA as carrier and agent, real SIP and RTP.

One subprocess (``python -m tests.support.e2e``, ~25 s) runs four calls at once, through a whole node each (SQLite,
web side with the demo's PayPal signer, tariff 3.99/min in 1/1 increments, warning 5 s before the end):
a caller without credit, a caller whose credit buys whole minutes (hangs up after the announcement), a
caller with 33 s of credit on a profile that warns 30 s before the end (hangs up after the warning), and
the demo call (top-up with bonus, PayPal webhook top-up mid-call, warning, cut-off). What each phone heard
is decoded from the RTP it received and searched by cross-correlation (``demo.phone.find``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from b2bua.node.config import load_config
from demo.scenario import DemoPlan, write_demo_config
from billing.profile import CallerClass
from billing.rating import charge_cents, tariff_for

pytestmark = pytest.mark.slow        # a real node and real calls: seconds a test

ROOT = Path(__file__).resolve().parents[2]
HEARD = 0.8            # normalised correlation that counts as heard (a prompt alone scores ~1.0)
NOT_HEARD = 0.5        # a different prompt or wording scores well below this


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """The facts of the four calls, as written by the subprocess."""
    out = tmp_path_factory.mktemp("e2e") / "e2e.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tests.support.e2e", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=170)
    assert out.exists(), f"the e2e run wrote nothing (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    data = json.loads(out.read_text())
    assert "error" not in data, data["error"]
    for name in ("no_credit", "announce", "warn30", "full"):
        assert "error" not in data[name], f"{name}: {data[name]['error']}\n{proc.stderr[-3000:]}"
    return data


@pytest.fixture(scope="module")
def tariff(tmp_path_factory, e2e):
    """The landline tariff the e2e node used (the demo config, 1/1, with the e2e per-minute price)."""
    folder = tmp_path_factory.mktemp("e2e-config")
    config = load_config(str(write_demo_config(folder, agent_uri="sip:agent@127.0.0.1:40000", plan=DemoPlan())))
    base = tariff_for(config.profiles["demo"].billing, CallerClass.LANDLINE, first_call=False)
    return dataclasses.replace(base, per_minute=Decimal(e2e["per_minute"]))


def _affordable_s(tariff, balance_cents: int) -> int:
    """The most whole seconds ``balance_cents`` pays for under ``tariff`` (1/1 increments)."""
    s = 0
    while charge_cents(tariff, s + 1) <= balance_cents:
        s += 1
    return s


def _adds_up(result) -> None:
    ledger, record = result["ledger"], result["record"]
    credits = sum(e["amount_cents"] for e in ledger if e["kind"] in ("topup", "bonus"))
    debits = -sum(e["amount_cents"] for e in ledger if e["kind"] == "call_debit")
    refunds = sum(e["amount_cents"] for e in ledger if e["kind"] == "call_refund")
    assert debits - refunds == record["charge_cents"]
    assert result["balance_cents"] == credits - record["charge_cents"] == ledger[-1]["balance_after_cents"]
    assert all(e["balance_after_cents"] >= 0 for e in ledger)
    running = 0
    for e in ledger:
        running += e["amount_cents"]
        assert e["balance_after_cents"] == running


def test_no_credit_caller_hears_the_message_gets_bye_and_no_agent_is_rung(e2e):
    """A caller without an account is answered, hears the no-credit prompt (found by correlation in the
    carrier's decoded RTP), gets our BYE; the agent never gets an INVITE; no money moves."""
    r = e2e["no_credit"]
    assert r["carrier"]["final_status"] == 200 and r["carrier"]["ended_by"] == "remote"
    assert r["no_credit_score"] >= HEARD
    assert r["agent_invited"] is False
    assert r["record"]["end_reason"] == "no_credit" and r["record"]["charge_cents"] == 0
    assert r["ledger"] == [] and r["balance_cents"] in (None, 0)


def test_announced_minutes_are_what_the_credit_buys(e2e, tariff):
    """A caller with 10.00 EUR at 3.99/min hears remaining_minutes(2): the carrier's recording matches
    that wording (~1.0) and clearly not the one of any other number of minutes; then the agent is rung."""
    r = e2e["announce"]
    minutes = _affordable_s(tariff, e2e["announce_topup_cents"]) // 60
    assert minutes == 2
    scores = {int(n): s for n, s in r["minutes_scores"].items()}
    assert scores[minutes] >= HEARD
    assert max(s for n, s in scores.items() if n != minutes) < scores[minutes] - 0.2
    assert r["call"]["minutes"] == minutes
    assert r["agent_invited"] is True


def test_caller_hangup_charges_the_talked_seconds_and_refunds_the_rest(e2e, tariff):
    """The announce call ended by the carrier's BYE: the record charges the billed seconds at the tariff,
    the ledger (top-up, reservation debit, refund) adds up to the record and the balance, to the cent."""
    r = e2e["announce"]
    assert r["carrier"]["ended_by"] == "local" and r["record"]["end_reason"] == "caller_hangup"
    assert r["record"]["charge_cents"] == charge_cents(tariff, r["record"]["billed_s"])
    _adds_up(r)


def test_full_call_warning_heard_by_both_sides_over_the_conversation(e2e):
    """The warning 5 s before the end: "Ihr Guthaben reicht noch für fünf Sekunden" in the carrier's decoded
    audio (clearly not "noch eine Minute"), and the agent's short words "Guthaben reicht noch fünf Sekunden"
    (agent_warning "words", the default; no beeps) in the agent's, each found by correlation while the other
    side's tone still dominates what each heard (mixed, not replaced)."""
    r = e2e["full"]
    assert r["warn_before_s"] == 5
    assert r["warning_score_carrier"] >= HEARD
    assert r["warning_minute_score_carrier"] < r["warning_score_carrier"] - 0.2
    assert r["warning_words_score_agent"] >= HEARD
    assert r["warning_tone_score_agent"] < NOT_HEARD
    assert r["agent_tone_share_at_carrier"] >= 0.8
    assert r["carrier_tone_share_at_agent"] >= 0.8
    events = [what for _, what in r["call"]["events"]]
    assert sum(e.startswith("warning:") for e in events) >= 2       # once, then re-armed after the top-up


def test_a_30_s_warning_is_said_as_30_seconds_to_the_caller_and_in_short_words_to_the_agent(e2e, tariff):
    """warn_before_s = 30 and 33 s of credit: 3 s into the conversation the carrier hears "Ihr Guthaben reicht
    noch für dreißig Sekunden" (clearly not "eine Minute") and the agent "Guthaben reicht noch dreißig
    Sekunden" (no beeps), mixed over the other side's tone; the call goes on until the carrier hangs up."""
    r = e2e["warn30"]
    credits = sum(e["amount_cents"] for e in r["ledger"] if e["kind"] in ("topup", "bonus"))
    assert _affordable_s(tariff, credits) == 33
    assert r["warn_before_s"] == 30
    warnings = [(at, what) for at, what in r["call"]["events"] if what.startswith("warning:")]
    assert [what for _, what in warnings] == ["warning: credit ends in 30 s"]
    assert warnings[0][0] - r["call"]["charging_start_ms"] == pytest.approx(3000, abs=100)
    assert r["warning_score_carrier"] >= HEARD
    assert r["warning_minute_score_carrier"] < r["warning_score_carrier"] - 0.2
    assert r["warning_words_score_agent"] >= HEARD
    assert r["warning_tone_score_agent"] < NOT_HEARD
    assert r["agent_tone_share_at_carrier"] >= 0.8
    assert r["record"]["end_reason"] == "caller_hangup"


def test_full_call_topup_by_paypal_webhook_extends_the_call_and_is_announced(e2e):
    """A signed PayPal notification posted to /hooks/paypal during the call credits 20 + 2 cents
    (ledger rows from source paypal inside the call), the caller hears topped_up, and the call goes on
    past the time the first credit alone would have lasted."""
    r = e2e["full"]
    ok, how = r["midcall"]
    assert ok, how
    start = r["call"]["charging_start_ms"]
    paypal = [e for e in r["ledger"] if e["source"] == "paypal"]
    assert [(e["kind"], e["amount_cents"]) for e in paypal] == [("topup", 20), ("bonus", 2)]
    assert all(start <= e["at_ms"] <= r["record"]["end_ms"] for e in paypal)
    assert r["heard"]["topped-up message"][1] >= HEARD
    assert r["record"]["billed_s"] > 55 * 60 // 399            # longer than 55 cents buy at 3.99/min (8 s)


def test_full_call_cut_off_within_one_increment_of_the_computed_end(e2e, tariff):
    """The node says credit exhausted within one increment (1 s) of charging start + the seconds all
    credit (50+5+20+2 cents) buys; both legs get our BYE; billed seconds are exactly those seconds."""
    r = e2e["full"]
    credits = sum(e["amount_cents"] for e in r["ledger"] if e["kind"] in ("topup", "bonus"))
    assert credits == 77
    paid_s = _affordable_s(tariff, credits)
    exhausted = [at for at, what in r["call"]["events"] if what == "credit exhausted"]
    assert len(exhausted) == 1
    talked_s = (exhausted[0] - r["call"]["charging_start_ms"]) / 1000
    assert abs(talked_s - paid_s) <= r["increment_next_s"]
    assert r["record"]["end_reason"] == "credit_exhausted"
    assert r["record"]["billed_s"] == paid_s
    assert r["carrier"]["ended_by"] == "remote" and r["agent"]["ended_by"] == "remote"
    assert r["heard"]["final message (caller)"][1] >= HEARD and r["heard"]["final message (agent)"][1] >= HEARD


def test_full_call_ledger_and_record_add_up_to_the_cent(e2e, tariff):
    """Charge = tariff(billed seconds); debits - refunds = charge; balance = credits - charge, never below
    zero; every ledger row's balance is the running sum; the demo's own verdict finds nothing wrong."""
    r = e2e["full"]
    assert r["record"]["charge_cents"] == charge_cents(tariff, r["record"]["billed_s"])
    _adds_up(r)
    assert r["verdict"] == []
