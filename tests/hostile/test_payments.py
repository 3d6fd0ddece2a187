"""Attacks on the payment webhooks: forged, replayed and second-capture notifications credit once or not at all.

A real listener (our Site on 127.0.0.1 port 0, in this process, as tests/webhook
runs it) with the fake PayPal, Klarna and paysafecard servers speaking their
real API contracts, on SQLite and PostgreSQL. For each provider: forged
notifications (bad or missing signature, another merchant account, a tampered
amount, ids the provider does not know) get a 4xx with a reason and credit
nothing; the same notification 20 times (10 at once, 10 one after another)
credits once; a second money movement for one payment (another capture id of
the PayPal order, another Klarna order of the session, the return page racing
the notification) credits nothing more. After each attack the balance and the
ledger are read back, and one :func:`~tests.hostile.support.report` line is
printed with this (the serving) process's RSS and descriptors.
"""

from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import pytest
from twisted.internet.defer import ensureDeferred, gatherResults

from tests.hostile.support import report, resources
from tests.webhook.fakes.paypal import make_cert
from tests.webhook.harness import WEBHOOK_ID, Env, run

NUMBER = "+4915112345678"
#: how often a replayed notification is sent, and how many of those at once
REPLAYS, AT_ONCE = 20, 10
#: 10.00 EUR paid and the profile's 1.00 EUR bonus: what one payment credits
CREDITED = [("bonus", 100), ("topup", 1000)]


@pytest.fixture
def env(store_url):
    e = Env(store_url)
    yield e
    e.close()


def ledger(env) -> list[tuple[str, int]]:
    """The caller's ledger rows as (kind, amount), sorted; checks that the balance is their sum."""
    rows = run(env.store.transactions(profile="demo", number=NUMBER))
    assert (env.balance(NUMBER) or 0) == sum(r.amount_cents for r in rows)
    return sorted((r.kind, r.amount_cents) for r in rows)


def send_all(env, requests: list[tuple[str, str, bytes | None, dict | None]]):
    """Send (method, path, body, headers): the first AT_ONCE at once, the rest one after another; the replies."""
    replies = run(gatherResults([ensureDeferred(env.request(m, p, body=b, headers=h))
                                 for m, p, b, h in requests[:AT_ONCE]]), timeout_s=30)
    return replies + [env.call(m, p, body=b, headers=h) for m, p, b, h in requests[AT_ONCE:]]


def refused(replies) -> bool:
    """Every reply a 4xx with a reason in its JSON body."""
    return all(400 <= r.status < 500 and r.json().get("error") for r in replies)


def back_path(env, location: str) -> str:
    """Follow a provider's payment page (the customer pays) to our return path."""
    reply = env.call("GET", "", url=location)
    assert reply.status == 302
    parts = urlsplit(reply.headers["location"])
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


# -- PayPal ----------------------------------------------------------------------------------------


def paypal_hook(env, event: dict, **kw) -> tuple[str, str, bytes, dict]:
    headers, body = env.paypal.sign(event, kw.pop("webhook_id", WEBHOOK_ID), **kw)
    return "POST", "/hooks/paypal", body, headers


def test_paypal_forged_notifications_credit_nothing(env):
    """Signed by another key, unsigned, signed for another merchant account, amount tampered after signing,
    a cert URL off PayPal's hosts: each 4xx with a reason, no account, no ledger row."""
    before = resources(os.getpid())
    payment, _ = env.start_payment("paypal")
    good = env.paypal.capture_event("CAPF", payment.reference, "10.00", order_id=payment.provider_ref)
    other_key, _cert = make_cert()
    _m, _p, body, headers = paypal_hook(env, good)
    unsigned = {k: v for k, v in headers.items() if not k.startswith("PAYPAL-")}
    forged = [paypal_hook(env, good, key=other_key), ("POST", "/hooks/paypal", body, unsigned),
              paypal_hook(env, good, webhook_id="WH-ANOTHER-MERCHANT"),
              ("POST", "/hooks/paypal", body.replace(b'"10.00"', b'"90.00"'), headers),
              paypal_hook(env, good, cert_url="http://127.0.0.2:1/v1/notifications/certs/CERT-test")]
    replies = send_all(env, forged * 4)
    assert refused(replies), [(r.status, r.body) for r in replies]
    assert env.balance(NUMBER) is None and ledger(env) == []
    report("paypal forged", f"{len(replies)} forged notifications (bad/missing signature, other account, "
           f"tampered amount, foreign cert URL): {sorted({r.status for r in replies})}, nothing credited",
           before, resources(os.getpid()))


def test_paypal_replayed_notification_credits_once(env):
    """One signed PAYMENT.CAPTURE.COMPLETED sent 20 times (10 at once): 200 each, one credit."""
    before = resources(os.getpid())
    payment, _ = env.start_payment("paypal")
    hook = paypal_hook(env, env.paypal.capture_event("CAPR", payment.reference, "10.00",
                                                     order_id=payment.provider_ref))
    replies = send_all(env, [hook] * REPLAYS)
    assert {r.status for r in replies} == {200}
    assert sum(r.json()["credited"] for r in replies) == 1
    assert ledger(env) == CREDITED
    report("paypal replay", f"one signed capture notification {REPLAYS} times ({AT_ONCE} at once): credited once",
           before, resources(os.getpid()))


def test_paypal_second_captures_of_one_order_credit_nothing_more(env):
    """The order captured on return, then 20 signed notifications each with another capture id of that
    order (10 at once), with and without the related order id: 200 each, nothing more credited."""
    before = resources(os.getpid())
    payment, location = env.start_payment("paypal")
    assert env.call("GET", back_path(env, location)).status == 200
    captures = [paypal_hook(env, env.paypal.capture_event(f"3C679366HH9{i:05d}", payment.reference, "10.00",
                                                          order_id=payment.provider_ref if i % 2 else None))
                for i in range(REPLAYS)]
    replies = send_all(env, captures)
    assert {r.status for r in replies} == {200}
    assert sum(r.json()["credited"] for r in replies) == 0
    assert ledger(env) == CREDITED
    report("paypal second capture", f"{REPLAYS} signed notifications with other capture ids of one captured "
           f"order: nothing more credited", before, resources(os.getpid()))


# -- Klarna ----------------------------------------------------------------------------------------


def klarna_hook(order_id, event_id: str = "e1") -> tuple[str, str, bytes, dict]:
    body = json.dumps({"order_id": order_id, "event_id": event_id, "event_type": "FRAUD_RISK_ACCEPTED"}).encode()
    return "POST", "/hooks/klarna", body, {"Content-Type": "application/json"}


def test_klarna_forged_notifications_credit_nothing(env):
    """Klarna signs nothing, so a notification is believed only as far as reading the order back says:
    an order Klarna does not know, a malformed or missing order id, not JSON, an order whose amount or
    reference is not the payment's: each 4xx with a reason, nothing credited."""
    before = resources(os.getpid())
    env.klarna.fraud_status = "PENDING"
    payment, location = env.start_payment("klarna")
    env.call("GET", back_path(env, location))
    (order_id,) = env.klarna.orders
    order = env.klarna.orders[order_id]
    order["fraud_status"] = "ACCEPTED"
    replies = send_all(env, [klarna_hook("0b1d9815-165e-42e2-8867-35bc03789e00"), klarna_hook("../../admin"),
                             klarna_hook(None), ("POST", "/hooks/klarna", b"not json", None)] * 3)
    order["order_amount"] = 5000
    replies += [env.call(*klarna_hook(order_id)[:2], body=klarna_hook(order_id)[2])]
    order["order_amount"], order["merchant_reference1"] = 1000, "someone-elses"
    replies += [env.call(*klarna_hook(order_id)[:2], body=klarna_hook(order_id)[2])]
    assert refused(replies), [(r.status, r.body) for r in replies]
    assert env.balance(NUMBER) is None and ledger(env) == []
    report("klarna forged", f"{len(replies)} notifications naming unknown, malformed or tampered orders: "
           f"{sorted({r.status for r in replies})}, nothing credited", before, resources(os.getpid()))


def test_klarna_replayed_and_second_orders_credit_once(env):
    """The order credited on return; the same notification 20 times (10 at once), then a second order of
    the same payment notified 20 times with 20 event ids: 200 each, the payment credited once."""
    before = resources(os.getpid())
    payment, location = env.start_payment("klarna")
    assert env.call("GET", back_path(env, location)).status == 200
    (first,) = env.klarna.orders
    replayed = send_all(env, [klarna_hook(first)] * REPLAYS)
    second = "0b1d9815-165e-42e2-8867-35bc03789e01"
    env.klarna.orders[second] = dict(env.klarna.orders[first], order_id=second)
    seconds = send_all(env, [klarna_hook(second, f"e-{i}") for i in range(REPLAYS)])
    assert {r.status for r in replayed + seconds} == {200}
    assert sum(r.json()["credited"] for r in replayed + seconds) == 0
    assert ledger(env) == CREDITED
    report("klarna replay + second order", f"one order's notification {REPLAYS} times, a second order of the "
           f"payment {REPLAYS} times with other event ids: credited once", before, resources(os.getpid()))


# -- paysafecard -------------------------------------------------------------------------------------


def test_paysafecard_forged_notifications_credit_nothing(env):
    """Payment ids paysafecard does not know, malformed or missing ids, a payment whose amount was changed
    or that was not made through us: each 4xx with a reason, nothing captured, nothing credited."""
    before = resources(os.getpid())
    payment, _ = env.start_payment("paysafecard")
    pid = payment.provider_ref
    foreign = "pay_1090001806_foreign_EUR"
    env.psc.payments[foreign] = dict(env.psc.payments[pid], id=foreign, status="AUTHORIZED")
    forged = [("POST", "/hooks/paysafecard?payment_id=pay_1090001806_forged_EUR", None, None),
              ("POST", "/hooks/paysafecard?payment_id=..%2F..%2Fv1", None, None),
              ("POST", "/hooks/paysafecard", b"{}", None), ("POST", "/hooks/paysafecard", b"not json", None),
              ("POST", f"/hooks/paysafecard?payment_id={foreign}", None, None)]
    replies = send_all(env, forged * 3)
    env.psc.payments[pid]["amount"] = 50.0
    env.psc.authorize(pid)
    replies += [env.call("POST", f"/hooks/paysafecard?payment_id={pid}")]
    assert refused(replies), [(r.status, r.body) for r in replies]
    assert env.balance(NUMBER) is None and ledger(env) == []
    report("paysafecard forged", f"{len(replies)} notifications naming unknown, malformed, foreign or tampered "
           f"payments: {sorted({r.status for r in replies})}, nothing credited", before, resources(os.getpid()))


def test_paysafecard_replays_and_returns_at_once_credit_once(env):
    """One authorized payment: 20 notifications (10 at once, with returns racing them), then 5 more
    returns: one capture at paysafecard, one credit."""
    before = resources(os.getpid())
    payment, _ = env.start_payment("paysafecard")
    env.psc.authorize(payment.provider_ref)
    hook = ("POST", f"/hooks/paysafecard?payment_id={payment.provider_ref}", None, None)
    back = ("GET", f"/topup/demo/return/{payment.reference}", None, None)
    replies = send_all(env, [hook, back] * (AT_ONCE // 2) + [hook] * (REPLAYS - AT_ONCE // 2) + [back] * 5)
    assert {r.status for r in replies} == {200}
    assert env.psc.captures == 1
    assert ledger(env) == CREDITED
    report("paysafecard replay + return", f"{REPLAYS} notifications and {AT_ONCE // 2 + 5} returns of one "
           f"payment, {AT_ONCE} at once: captured once, credited once", before, resources(os.getpid()))
