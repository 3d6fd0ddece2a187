"""PayPal end to end against the fake: Orders v2 through the page's steps, and signed webhooks."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from twisted.internet.defer import gatherResults, ensureDeferred

from .fakes.paypal import make_cert
from .harness import WEBHOOK_ID, run

NUMBER = "+4915112345678"


def follow_approval(env, location: str) -> str:
    """The buyer approves at the fake; returns our return path PayPal redirects to."""
    reply = env.call("GET", "", url=location)
    assert reply.status == 302
    parts = urlsplit(reply.headers["location"])
    return f"{parts.path}?{parts.query}"


def hook(env, event: dict, *, webhook_id: str = WEBHOOK_ID, **kw):
    headers, body = env.paypal.sign(event, webhook_id, **kw)
    return env.call("POST", "/hooks/paypal", body=body, headers=headers)


def test_order_approve_return_credits_amount_and_bonus(env):
    """Create order -> approve at PayPal -> return: captured, 10 EUR + 1 EUR bonus credited, page says so."""
    payment, location = env.start_payment("paypal")
    assert location.startswith(env.paypal.base_url + "/checkoutnow?token=")
    order = env.paypal.orders[payment.provider_ref]
    assert order["unit"]["custom_id"] == payment.reference and order["unit"]["amount"] == {
        "currency_code": "EUR", "value": "10.00"}
    reply = env.call("GET", follow_approval(env, location))
    assert reply.status == 200, reply.body
    assert b'id="status"' in reply.body and "Guthaben ist angekommen".encode() in reply.body
    assert env.balance(NUMBER) == 1100
    # the capture's webhook arriving later credits nothing more
    capture = env.paypal.orders[payment.provider_ref]["capture"]
    assert hook(env, env.paypal.capture_event(capture["id"], payment.reference, "10.00")).status == 200
    assert env.balance(NUMBER) == 1100
    # reloading the return page neither captures again nor credits again
    assert env.call("GET", follow_approval(env, location)).status == 200
    assert env.balance(NUMBER) == 1100


def test_same_webhook_100_times_concurrently_credits_once(env):
    """One PAYMENT.CAPTURE.COMPLETED delivered 100 times at once: one top-up and one bonus row."""
    payment, _ = env.start_payment("paypal")
    headers, body = env.paypal.sign(env.paypal.capture_event("CAP100", payment.reference, "10.00"), WEBHOOK_ID)
    replies = run(gatherResults([ensureDeferred(env.request("POST", "/hooks/paypal", body=body, headers=headers))
                                 for _ in range(100)]), timeout_s=60)
    assert {r.status for r in replies} == {200}
    assert sum(r.json()["credited"] for r in replies) == 1
    assert env.balance(NUMBER) == 1100
    rows = run(env.store.transactions(profile="demo", number=NUMBER))
    assert sorted((r.kind, r.amount_cents) for r in rows) == [("bonus", 100), ("topup", 1000)]


def test_forged_wrong_amount_currency_reference_get_4xx_and_no_credit(env):
    """Forged signature, wrong webhook id, wrong amount, wrong currency, unknown reference: 4xx, nothing credited."""
    payment, _ = env.start_payment("paypal")
    good = env.paypal.capture_event("CAPX", payment.reference, "10.00")
    other_key, _cert = make_cert()
    assert hook(env, good, key=other_key).status == 401
    assert hook(env, good, webhook_id="WH-SOMEONE-ELSE").status == 401
    headers, body = env.paypal.sign(good, WEBHOOK_ID)
    tampered = body.replace(b'"10.00"', b'"50.00"')
    assert env.call("POST", "/hooks/paypal", body=tampered, headers=headers).status == 401
    assert hook(env, env.paypal.capture_event("CAPX", payment.reference, "20.00")).status == 422
    assert hook(env, env.paypal.capture_event("CAPX", payment.reference, "10.00", "USD")).status == 422
    assert hook(env, env.paypal.capture_event("CAPX", "no-such-reference", "10.00")).status == 404
    assert env.call("POST", "/hooks/paypal", body=b"{}", headers={"Content-Type": "application/json"}).status == 401
    assert env.balance(NUMBER) is None
    assert env.app.metrics.value("prepaid_notifications_rejected_total", method="paypal") == 7


def test_certificate_only_from_paypal_hosts_and_cached(sqlite_env):
    """A cert URL off the allowed origins is refused without being fetched; an allowed one is fetched once."""
    env = sqlite_env
    payment, _ = env.start_payment("paypal")
    evil = env.paypal.cert_url.replace("127.0.0.1", "localhost")
    before = len(env.paypal.requests)
    assert hook(env, env.paypal.capture_event("CAPC", payment.reference, "10.00"), cert_url=evil).status == 400
    assert len(env.paypal.requests) == before
    for n in range(3):
        assert hook(env, env.paypal.capture_event(f"CAPC{n}", payment.reference, "10.00")).status == 200
    fetched = [r for r in env.paypal.requests if r[1].startswith("/v1/notifications/certs/")]
    assert len(fetched) == 1


def test_provider_down_or_slow_no_credit_clear_log_then_retry_works(sqlite_env, logged):
    """Cert host down, then slow: 502, no credit, a log line naming PayPal; the redelivery then credits."""
    env = sqlite_env
    payment, _ = env.start_payment("paypal")
    headers, body = env.paypal.sign(env.paypal.capture_event("CAPD", payment.reference, "10.00"), WEBHOOK_ID)
    env.paypal.mode = "down"
    assert env.call("POST", "/hooks/paypal", body=body, headers=headers).status == 502
    assert env.balance(NUMBER) is None
    assert any("paypal certificate" in line and "HTTP 503" in line for line in logged)
    env.paypal.mode, env.paypal.slow_s = "slow", 3.0
    assert env.call("POST", "/hooks/paypal", body=body, headers=headers).status == 502
    assert any("paypal certificate" in line and "no answer within" in line for line in logged), [l for l in logged if "paypal" in l or "502" in l]
    assert env.balance(NUMBER) is None
    env.paypal.mode = "ok"
    assert env.call("POST", "/hooks/paypal", body=body, headers=headers).status == 200
    assert env.balance(NUMBER) == 1100


def test_one_failed_attempt_is_retried_within_the_call(sqlite_env):
    """A single 503 from PayPal while creating the order is retried: the customer still gets a redirect."""
    env = sqlite_env
    env.paypal.failures = 1
    payment, location = env.start_payment("paypal")
    assert location.startswith(env.paypal.base_url)
    assert payment.state.value == "redirected"


def test_refund_takes_back_as_far_as_balance_allows(env):
    """A full refund after 6 EUR were spent takes back the 5 EUR left; 6 EUR are recorded as a shortfall."""
    payment, _ = env.start_payment("paypal")
    assert hook(env, env.paypal.capture_event("CAPR", payment.reference, "10.00")).status == 200
    debit = run(env.store.debit("demo", NUMBER, 600, kind="api_debit", source="test", external_ref="d1", actor="t"))
    assert debit.applied
    refund = env.paypal.refund_event("REF1", "CAPR", payment.reference, "10.00")
    assert hook(env, refund).status == 200
    assert hook(env, refund).status == 200  # a repeat takes nothing more
    assert env.balance(NUMBER) == 0
    shortfalls = run(env.store.shortfalls(profile="demo"))
    assert [(s.source, s.amount_cents) for s in shortfalls] == [("paypal", 600)]


def test_paypal_down_when_paying_gives_502_and_a_failed_payment(sqlite_env):
    """The customer pressing pay while PayPal is down gets the error, the payment is marked failed, nothing credited."""
    env = sqlite_env
    env.paypal.mode = "down"
    try:
        env.start_payment("paypal")
        raise AssertionError("expected ProviderUnavailable")
    except Exception as exc:
        assert "paypal" in str(exc)
    from .harness import _latest_payment
    assert run(env.store.run(_latest_payment)).state.value == "failed"


def test_a_second_capture_id_for_one_order_credits_nothing_more(env, logged):
    """A correctly signed PAYMENT.CAPTURE.COMPLETED with a second capture id for an order already
    captured on return: 200 (PayPal stops retrying), nothing credited, a warning names both captures."""
    payment, location = env.start_payment("paypal")
    assert env.call("GET", follow_approval(env, location)).status == 200
    assert env.balance(NUMBER) == 1100
    first = env.paypal.orders[payment.provider_ref]["capture"]["id"]
    second = hook(env, env.paypal.capture_event("3C679366HH999999", payment.reference, "10.00",
                                                order_id=payment.provider_ref))
    assert second.status == 200 and second.json()["credited"] == 0
    third = hook(env, env.paypal.capture_event("3C679366HH999998", payment.reference, "10.00"))
    assert third.status == 200 and third.json()["credited"] == 0
    assert env.balance(NUMBER) == 1100
    rows = run(env.store.transactions(profile="demo", number=NUMBER))
    assert sorted((r.kind, r.amount_cents, r.external_ref) for r in rows) == [
        ("bonus", 100, f"{first}#bonus"), ("topup", 1000, first)]
    assert any("3C679366HH999999" in line and first in line for line in logged)


def test_a_capture_of_another_order_is_refused(env):
    """A signed capture whose related order is not the payment's order (its custom_id copied): 409, no credit."""
    payment, _ = env.start_payment("paypal")
    reply = hook(env, env.paypal.capture_event("CAPO", payment.reference, "10.00", order_id="5O190127TN999999"))
    assert reply.status == 409 and b"not the payment's order" in reply.body
    assert env.balance(NUMBER) is None


def test_a_chargeback_notified_twice_takes_back_once(env):
    """PAYMENT.CAPTURE.REVERSED delivered twice: the payment and its bonus taken back once, the ledger sums to 0."""
    payment, _ = env.start_payment("paypal")
    assert hook(env, env.paypal.capture_event("CAPB", payment.reference, "10.00")).status == 200
    reversal = env.paypal.capture_event("CAPB", payment.reference, "10.00", event_type="PAYMENT.CAPTURE.REVERSED")
    assert hook(env, reversal).status == 200
    assert hook(env, env.paypal.capture_event("CAPB", payment.reference, "10.00",
                                              event_type="PAYMENT.CAPTURE.REVERSED")).status == 200
    assert env.balance(NUMBER) == 0
    rows = run(env.store.transactions(profile="demo", number=NUMBER, kinds=("reversal",)))
    assert [(r.amount_cents, r.external_ref) for r in rows] == [(-1100, "reversal:CAPB")]


def test_two_partial_refunds_take_back_twice_each_once(env):
    """Two distinct partial refunds of one capture, each delivered twice: two debits (3 + 2 EUR), no more."""
    payment, _ = env.start_payment("paypal")
    assert hook(env, env.paypal.capture_event("CAPP", payment.reference, "10.00")).status == 200
    for refund in (env.paypal.refund_event("REFP1", "CAPP", payment.reference, "3.00"),
                   env.paypal.refund_event("REFP2", "CAPP", payment.reference, "2.00")):
        assert hook(env, refund).status == 200
        assert hook(env, refund).status == 200
    assert env.balance(NUMBER) == 600
    rows = run(env.store.transactions(profile="demo", number=NUMBER, kinds=("reversal",)))
    assert sorted(r.amount_cents for r in rows) == [-300, -200]
