"""``prepaid demo``: the demo config, the verdict on a call, and the real ``prepaid demo --once`` in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from b2bua.node.commands.demo import NEEDS_NUMPY
from b2bua.node.config import load_config
from demo.scenario import CALLER, DemoPlan, example_config_path, sipp_scenario, write_demo_config
from demo.report import DemoResult, verdict
from demo.phone import UaSummary
from billing.db.rows import CallRecord, LedgerEntry
from billing.profile import CallerClass
from billing.rating import charge_cents, tariff_for

ROOT = Path(__file__).resolve().parents[2]


def test_demo_config_is_the_example_on_free_ports_with_scaled_timing(tmp_path):
    """The demo config validates; store in the temporary folder, no fixed port of the example, the agent
    is the built-in one, 1/1 increments, the warning 5 s before the end, the demo top-ups with bonuses."""
    before = example_config_path().read_text()
    path = write_demo_config(tmp_path, agent_uri="sip:agent@127.0.0.1:40123", plan=DemoPlan())
    config = load_config(str(path))
    assert example_config_path().read_text() == before
    assert config.store.url == f"sqlite:///{tmp_path / 'prepaid.db'}"
    assert config.sip.udp_port not in (0, 5060, 5070, 8080) and config.http.port not in (5060, 5070, 8080)
    assert config.sip.address == config.http.address == config.media.address == "127.0.0.1"
    demo = config.profiles["demo"]
    assert demo.agents == ("sip:agent@127.0.0.1:40123",)
    assert demo.service_numbers == ("+493012345678",)
    b = demo.billing
    assert (str(b.increment), b.warn_before_s, b.charging_starts.value) == ("1/1", 5, "answer")
    assert (b.bonus_cents(50), b.bonus_cents(20), b.bonus_cents(1000)) == (5, 2, 0)
    assert b.landline_per_minute == Decimal("1.99")          # the example's tariff is kept


def test_sipp_scenario_calls_as_the_demo_caller(tmp_path):
    """The printed SIPp scenario is well-formed XML whose INVITE comes From the demo caller's number."""
    path = sipp_scenario(tmp_path)
    root = ET.parse(path).getroot()
    invite = root.find("send").text
    assert f"From: <sip:{CALLER}@[local_ip];user=phone>" in invite
    assert any(el.get("request") == "BYE" for el in root.iter("recv"))


def _result(*, charge_cents_: int, billed_s: int, balance_cents: int, refund_cents: int = 0,
            end_reason: str = "credit_exhausted") -> DemoResult:
    """A finished demo call as the verdict sees it: 55 + 22 cents credited, one debit, optional refund."""
    plan = DemoPlan()
    config = load_config(str(example_config_path()))
    t0 = 1_000_000
    ledger = [
        LedgerEntry(1, 1, "demo", CALLER, "topup", 50, 50, "demo", "r1", "demo", "before the call", None, t0 - 10),
        LedgerEntry(2, 1, "demo", CALLER, "bonus", 5, 55, "demo", "r1#bonus", "demo", "", None, t0 - 10),
        LedgerEntry(3, 1, "demo", CALLER, "call_debit", -53, 2, "call", "s:1", "node", "", "s", t0 + 7000),
        LedgerEntry(4, 1, "demo", CALLER, "topup", 20, 22, "demo", "r2", "demo", "during the call", None, t0 + 10000),
        LedgerEntry(5, 1, "demo", CALLER, "bonus", 2, 24, "demo", "r2#bonus", "demo", "", None, t0 + 10000),
        LedgerEntry(6, 1, "demo", CALLER, "call_debit", -23, 1, "call", "s:2", "node", "", "s", t0 + 18000),
    ]
    if refund_cents:
        ledger.append(LedgerEntry(7, 1, "demo", CALLER, "call_refund", refund_cents, 1 + refund_cents, "call",
                                  "s:refund", "node", "", "s", t0 + 31000))
    events = [(t0, "identified +493088776655 (from)"), (t0 + 5, "announcing 0 minute(s)"),
              (t0 + 5500, "ringback (de) while the agents ring"),
              (t0 + 7000, "ringback (de) until the agent answered after 1.5 s"), (t0 + 7000, "bridged"), (t0 + 7000, "charging started"), (t0 + 25000, "warning: credit ends in 5 s"),
              (t0 + 30000, "credit exhausted"), (t0 + 32000, "settled: ...")]
    call = SimpleNamespace(events=events, identity=SimpleNamespace(caller_class=CallerClass.LANDLINE),
                           session=SimpleNamespace(start_ms=t0 + 7000),
                           times=SimpleNamespace(invite_ms=t0, answer_ms=t0 + 5, end_ms=t0 + 32000))
    record = CallRecord("c1", "demo", "+493012345678", CALLER, "from", False, "landline", "a", "a", t0, t0 + 5,
                        t0 + 32000, end_reason, 200, 200, billed_s, charge_cents_, "s")
    summary = lambda name: UaSummary(name, "uac", 200, 0.0, 1.0, 30.0, "remote", "BYE received", 1, 1)
    heard = {w: (True, 0.0, 1.0) for w in ("announcement", "ringback (de)", "warning (agent)", "warning (spoken)",
                                           "agent's tone (caller)", "caller's tone (agent)")}
    return DemoResult(config=config, plan=plan, call=call, record=record, ledger=ledger,
                      balance_cents=balance_cents, carrier=summary("carrier"), agent=summary("agent"), heard=heard,
                      midcall="through the store", midcall_ok=True)


def test_verdict_accepts_a_call_whose_ledger_adds_up():
    """23 s at 1.99/min is 76 cents: 77 credited, 76 debited, balance 1 cent: nothing to complain about."""
    tariff = tariff_for(load_config(str(example_config_path())).profiles["demo"].billing, CallerClass.LANDLINE,
                        first_call=False)
    assert charge_cents(tariff, 23) == 76
    assert verdict(_result(charge_cents_=76, billed_s=23, balance_cents=1)) == []


def test_verdict_names_what_does_not_add_up():
    """A charge that is not the tariff's, a balance that is not credits minus charge, a call ended by the
    caller and a warning nobody heard are each named."""
    r = _result(charge_cents_=70, billed_s=23, balance_cents=7, refund_cents=6, end_reason="caller_hangup")
    r.heard["warning (agent)"] = (False, None, 0.1)
    why = "\n".join(verdict(r))
    assert "charge 70 cents != tariff for 23 s (76 cents)" in why
    assert "ended by caller_hangup" in why
    assert "not heard: warning (agent)" in why
    r2 = _result(charge_cents_=76, billed_s=23, balance_cents=5)
    assert any("balance 5 != credits 77 - charge 76" in w for w in verdict(r2))
    r4 = _result(charge_cents_=76, billed_s=23, balance_cents=1)
    r4.call.events = [e for e in r4.call.events if "ringback" not in e[1]]
    r4.heard["ringback (de)"] = (False, None, 0.2)
    assert verdict(r4) == ["the caller got no ringback while the agent rang", "not heard: ringback (de) (score 0.20)"]
    r3 = _result(charge_cents_=76, billed_s=23, balance_cents=1)
    r3.web_wired = True                      # the web side is there, but the top-up went through the store
    assert verdict(r3) == ["the mid-call top-up did not come through the PayPal webhook"]


def test_demo_paypal_signs_as_paypal_does():
    """The demo's PayPal signature verifies with its certificate's key over PayPal's signed string, and a
    changed body does not verify (so /hooks/paypal checks something real)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from twisted.internet.task import Clock

    from demo.web import WEBHOOK_ID, DemoPayPal, demo_secrets
    from webhook.providers.paypal import signed_string
    from webhook.secrets import parse_secrets

    paypal = DemoPayPal(Clock())
    paypal.origin = "http://127.0.0.1:1"
    headers, body = paypal.sign(DemoPayPal.capture_completed("CAP-1", "ref-1", 20, "EUR"))
    assert headers["PAYPAL-CERT-URL"].startswith("http://127.0.0.1:1/")
    sig = __import__("base64").b64decode(headers["PAYPAL-TRANSMISSION-SIG"])
    key = paypal.cert.public_key()
    signed = lambda b: signed_string(headers["PAYPAL-TRANSMISSION-ID"], headers["PAYPAL-TRANSMISSION-TIME"],
                                     WEBHOOK_ID, b)
    key.verify(sig, signed(body), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        key.verify(sig, signed(body.replace(b"0.20", b"9.20")), padding.PKCS1v15(), hashes.SHA256())
    assert b'"value": "0.20"' in body and b'"custom_id": "ref-1"' in body
    accounts = parse_secrets(demo_secrets({"demo-paypal", "demo-klarna"}), "secrets.toml")
    assert {(a.name, a.webhook_id) for a in accounts} == {("demo-paypal", WEBHOOK_ID), ("demo-klarna", WEBHOOK_ID)}


@pytest.mark.slow
def test_prepaid_demo_once_goes_as_expected(tmp_path):
    """``prepaid demo --once`` from another working directory: exit 0, every step of the timeline in order,
    the audio heard, and the printed amounts add up (credits - charge = balance; charge = the tariff's)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "b2bua.node.cli", "demo", "--once", "--watchdog-s", "75"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    steps = ["topped up before the call", "identified +493088776655", "announced (", "agent rung",
             "bridged", "charging started", "topped up mid-call via the paypal webhook", "warned: credit ends in",
             "cut off: credit exhausted", "carrier: BYE received", "agent: BYE received", "settled:"]
    lines = out.splitlines()
    positions = []
    for step in steps:
        found = [i for i, line in enumerate(lines) if step in line]
        assert found, f"{step!r} missing from:\n{out}"
        positions.append(found[0])
    assert positions == sorted(positions), out
    times = {step: float(re.search(r"([+-]\d+\.\d+) s", lines[i]).group(1)) for step, i in zip(steps, positions)}
    topped_up = times["topped up mid-call via the paypal webhook"]
    assert times["charging started"] < topped_up < times["warned: credit ends in"]
    assert 'mid-call top-up: PayPal webhook POST /hooks/paypal: HTTP 200 {"credited": 1' in out
    m = re.search(r"settled: (\d+) s billed, (\d+) cents charged, (\d+) cents refunded", out)
    billed_s, charge, refund = map(int, m.groups())
    cut_after_s = times["cut off: credit exhausted"] - times["charging started"]
    assert abs(cut_after_s - billed_s) <= 1.5                     # cut off within one 1 s increment (+ jitter)
    assert times["cut off: credit exhausted"] - times["warned: credit ends in"] == pytest.approx(5, abs=0.5)
    credited = re.search(r"credited (\d+)\.(\d\d) EUR", out)
    credited_cents = int(credited.group(1)) * 100 + int(credited.group(2))
    balance = re.search(r"balance after the call (\d+)\.(\d\d) EUR", out)
    balance_cents = int(balance.group(1)) * 100 + int(balance.group(2))
    assert credited_cents == 50 + 5 + 20 + 2
    assert balance_cents == credited_cents - charge
    tariff = tariff_for(load_config(str(example_config_path())).profiles["demo"].billing, CallerClass.LANDLINE,
                        first_call=False)
    assert charge == charge_cents(tariff, billed_s)
    for heard in ("announcement: yes", "warning (agent): yes", "warning (spoken): yes",
                  "final message (caller): yes", "agent's tone (caller): yes", "caller's tone (agent): yes"):
        assert heard in out
    assert "RESULT: as expected" in out


def test_prepaid_demo_watchdog_ends_a_demo_that_takes_too_long(tmp_path):
    """With a watchdog shorter than the call, ``prepaid demo --once`` stops everything and exits 1 saying why."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "b2bua.node.cli", "demo", "--once", "--watchdog-s", "3"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "watchdog: the call did not finish within 3 s" in done.stderr
    assert "RESULT" not in done.stdout


def test_prepaid_demo_without_numpy_names_the_extra_and_exits_2(tmp_path):
    """Where numpy is not installed, ``prepaid demo`` says in one line to install the ``demo`` extra and exits 2
    (numpy made unimportable in the child; the node itself does not need it)."""
    code = ("import sys; sys.modules['numpy'] = None\n"
            "from b2bua.node.cli import main\n"
            "sys.exit(main(['demo', '--once', '--watchdog-s', '5']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [NEEDS_NUMPY]
    assert "prepaid[demo]" in NEEDS_NUMPY
