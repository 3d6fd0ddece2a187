"""paysafecard end to end against the fake: payment -> customer panel -> capture on return or notification."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from twisted.internet.defer import ensureDeferred, gatherResults

from .harness import run

NUMBER = "+4915112345678"


def through_panel(env, location: str) -> str:
    reply = env.call("GET", "", url=location)
    assert reply.status == 302
    parts = urlsplit(reply.headers["location"])
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def test_payment_panel_return_captures_and_credits(env):
    """Created with amount 10.00 EUR and our URLs; the success return captures and credits 10 + 1 EUR."""
    payment, location = env.start_payment("paysafecard")
    psc = env.psc.payments[payment.provider_ref]
    assert psc["amount"] == 10.0 and psc["currency"] == "EUR"
    assert psc["notification_url"].endswith("/hooks/paysafecard?payment_id={payment_id}")
    reply = env.call("GET", through_panel(env, location))
    assert reply.status == 200 and b'class="ok"' in reply.body
    assert env.balance(NUMBER) == 1100 and env.psc.captures == 1
    assert env.call("POST", f"/hooks/paysafecard?payment_id={payment.provider_ref}").status == 200
    assert env.balance(NUMBER) == 1100 and env.psc.captures == 1


def test_notifications_and_returns_at_once_credit_once(env):
    """100 notifications and 20 success returns at the same moment: one capture, one credit."""
    payment, _ = env.start_payment("paysafecard")
    env.psc.authorize(payment.provider_ref)
    ds = []
    for i in range(100):
        ds.append(ensureDeferred(env.request("POST", f"/hooks/paysafecard?payment_id={payment.provider_ref}")))
        if i % 5 == 0:
            ds.append(ensureDeferred(env.request("GET", f"/topup/demo/return/{payment.reference}")))
    replies = run(gatherResults(ds), timeout_s=60)
    assert {r.status for r in replies} == {200}
    assert env.psc.captures == 1
    assert env.balance(NUMBER) == 1100
    rows = run(env.store.transactions(profile="demo", number=NUMBER))
    assert sorted((r.kind, r.amount_cents) for r in rows) == [("bonus", 100), ("topup", 1000)]


def test_forged_wrong_amount_currency_reference_get_4xx_and_no_credit(sqlite_env):
    """Unknown payment id, tampered amount or currency, a payment not made through us: 4xx, nothing credited."""
    env = sqlite_env
    payment, _ = env.start_payment("paysafecard")
    pid = payment.provider_ref
    assert env.call("POST", "/hooks/paysafecard?payment_id=pay_1090001806_forged_EUR").status == 404
    assert env.call("POST", "/hooks/paysafecard", body=b"{}").status == 400
    env.psc.payments[pid]["amount"] = 50.0
    env.psc.authorize(pid)
    assert env.call("POST", f"/hooks/paysafecard?payment_id={pid}").status == 422
    env.psc.payments[pid].update(amount=10.0, currency="CHF")
    assert env.call("POST", f"/hooks/paysafecard?payment_id={pid}").status == 422
    foreign = "pay_1090001806_foreign_EUR"
    env.psc.payments[foreign] = dict(env.psc.payments[pid], id=foreign, currency="EUR", status="AUTHORIZED")
    assert env.call("POST", f"/hooks/paysafecard?payment_id={foreign}").status == 404
    assert env.balance(NUMBER) is None


def test_paysafecard_down_or_slow_then_the_retry_works(sqlite_env, logged):
    """paysafecard down, then slow, at the notification: 502, no credit, a log; the next notification credits."""
    env = sqlite_env
    payment, _ = env.start_payment("paysafecard")
    env.psc.authorize(payment.provider_ref)
    path = f"/hooks/paysafecard?payment_id={payment.provider_ref}"
    env.psc.mode = "down"
    assert env.call("POST", path).status == 502
    assert any("paysafecard read" in line and "HTTP 503" in line for line in logged)
    env.psc.mode, env.psc.slow_s = "slow", 3.0
    assert env.call("POST", path).status == 502
    assert env.balance(NUMBER) is None
    env.psc.mode = "ok"
    assert env.call("POST", path).status == 200
    assert env.balance(NUMBER) == 1100


def test_a_payment_notified_twice_and_returned_credits_once(env):
    """One paysafecard payment notified twice (query and JSON body) and then returned: one capture, one credit."""
    payment, _ = env.start_payment("paysafecard")
    env.psc.authorize(payment.provider_ref)
    first = env.call("POST", f"/hooks/paysafecard?payment_id={payment.provider_ref}")
    second = env.call("POST", "/hooks/paysafecard", body=json.dumps({"mtid": payment.provider_ref}).encode())
    assert (first.status, first.json()["credited"]) == (200, 1)
    assert (second.status, second.json()["credited"]) == (200, 0)
    assert env.call("GET", f"/topup/demo/return/{payment.reference}").status == 200
    assert env.balance(NUMBER) == 1100 and env.psc.captures == 1
    rows = run(env.store.transactions(profile="demo", number=NUMBER))
    assert sorted((r.kind, r.amount_cents) for r in rows) == [("bonus", 100), ("topup", 1000)]
