"""Klarna end to end against the fake: session -> Hosted Payment Page -> authorization -> order."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from twisted.internet.defer import ensureDeferred, gatherResults

from .harness import run

NUMBER = "+4915112345678"


def through_hpp(env, location: str) -> str:
    reply = env.call("GET", "", url=location)
    assert reply.status == 302
    parts = urlsplit(reply.headers["location"])
    return f"{parts.path}?{parts.query}"


def notify(env, order_id: str):
    body = json.dumps({"order_id": order_id, "event_id": "e1", "event_type": "FRAUD_RISK_ACCEPTED"}).encode()
    return env.call("POST", "/hooks/klarna", body=body, headers={"Content-Type": "application/json"})


def test_hpp_return_places_order_and_credits(env):
    """Session and HPP session made with our reference; the return places the order; 10 + 1 EUR credited once."""
    payment, location = env.start_payment("klarna")
    session = env.klarna.sessions[payment.provider_ref]["order"]
    assert session["order_amount"] == 1000 and session["merchant_reference1"] == payment.reference
    back = through_hpp(env, location)
    assert "authorization_token=" in back
    reply = env.call("GET", back)
    assert reply.status == 200 and b'class="ok"' in reply.body
    assert env.balance(NUMBER) == 1100
    (order_id,) = env.klarna.orders
    assert notify(env, order_id).status == 200
    assert env.balance(NUMBER) == 1100


def test_pending_order_then_100_concurrent_notifications_credit_once(env):
    """A PENDING fraud decision credits nothing; 100 notifications after ACCEPTED credit once."""
    env.klarna.fraud_status = "PENDING"
    payment, location = env.start_payment("klarna")
    reply = env.call("GET", through_hpp(env, location))
    assert reply.status == 200 and b'class="ok"' not in reply.body
    assert env.balance(NUMBER) is None
    (order_id,) = env.klarna.orders
    assert notify(env, order_id).status == 200 and env.balance(NUMBER) is None
    env.klarna.orders[order_id]["fraud_status"] = "ACCEPTED"
    body = json.dumps({"order_id": order_id, "event_type": "FRAUD_RISK_ACCEPTED"}).encode()
    replies = run(gatherResults([ensureDeferred(env.request("POST", "/hooks/klarna", body=body)) for _ in range(100)]),
                  timeout_s=60)
    assert {r.status for r in replies} == {200}
    assert sum(r.json()["credited"] for r in replies) == 1
    assert env.balance(NUMBER) == 1100


def test_forged_wrong_amount_currency_reference_get_4xx_and_no_credit(sqlite_env):
    """Unknown order id, bogus token, tampered amount or currency, a foreign reference: 4xx and nothing credited."""
    env = sqlite_env
    env.klarna.fraud_status = "PENDING"
    payment, location = env.start_payment("klarna")
    env.call("GET", through_hpp(env, location))
    (order_id,) = env.klarna.orders
    order = env.klarna.orders[order_id]
    order["fraud_status"] = "ACCEPTED"
    assert notify(env, "0b1d9815-165e-42e2-8867-35bc03789e00").status == 404
    assert env.call("POST", "/hooks/klarna", body=b"not json").status == 400
    order["order_amount"] = 5000
    assert notify(env, order_id).status == 422
    order["order_amount"], order["purchase_currency"] = 1000, "SEK"
    assert notify(env, order_id).status == 422
    order["purchase_currency"], order["merchant_reference1"] = "EUR", "someone-elses"
    assert notify(env, order_id).status == 404
    bogus = env.call("GET", f"/topup/demo/return/{payment.reference}?authorization_token=forged-token")
    assert bogus.status == 400
    assert env.balance(NUMBER) is None


def test_klarna_down_or_slow_then_the_retry_works(sqlite_env, logged):
    """Klarna down, then slow, when the customer returns: an error page, no credit, a log; a reload then credits."""
    env = sqlite_env
    payment, location = env.start_payment("klarna")
    back = through_hpp(env, location)
    env.klarna.mode = "down"
    assert env.call("GET", back).status == 502
    assert any("klarna place order" in line and "HTTP 503" in line for line in logged)
    env.klarna.mode, env.klarna.slow_s = "slow", 3.0
    assert env.call("GET", back).status == 502
    assert env.balance(NUMBER) is None
    env.klarna.mode = "ok"
    assert env.call("GET", back).status == 200
    assert env.balance(NUMBER) == 1100


def test_two_returns_at_once_both_show_the_credit(sqlite_env):
    """A double click on Klarna's return: the second finds the token used, yet both pages say the credit arrived."""
    env = sqlite_env
    payment, location = env.start_payment("klarna")
    back = through_hpp(env, location)
    replies = run(gatherResults([ensureDeferred(env.request("GET", back)) for _ in range(2)]))
    assert [r.status for r in replies] == [200, 200]
    assert all(b'class="ok"' in r.body for r in replies)
    assert env.balance(NUMBER) == 1100


def test_hpp_status_callback_without_order_is_acknowledged_and_credits_nothing(sqlite_env):
    """The HPP's status_update (an authorization token, no order yet) gets 200 and changes nothing."""
    env = sqlite_env
    env.start_payment("klarna")
    body = json.dumps({"event_id": "e2", "session": {"session_id": "hpp-1", "status": "COMPLETED",
                                                     "authorization_token": "tok"}}).encode()
    reply = env.call("POST", "/hooks/klarna", body=body)
    assert reply.status == 200 and reply.json()["events"] == 0
    assert env.balance(NUMBER) is None


def test_a_second_order_for_one_payment_credits_nothing_more(env):
    """The return placed an order and credited; a second order of the same session (our reference, the
    same amount, ACCEPTED at Klarna) notified twice with other event ids: 200, nothing more credited."""
    payment, location = env.start_payment("klarna")
    assert env.call("GET", through_hpp(env, location)).status == 200
    assert env.balance(NUMBER) == 1100
    (first,) = env.klarna.orders
    second = "0b1d9815-165e-42e2-8867-35bc03789e01"
    env.klarna.orders[second] = dict(env.klarna.orders[first], order_id=second)
    for event_id in ("e-1", "e-2"):
        body = json.dumps({"order_id": second, "event_id": event_id, "event_type": "FRAUD_RISK_ACCEPTED"}).encode()
        reply = env.call("POST", "/hooks/klarna", body=body)
        assert reply.status == 200 and reply.json()["credited"] == 0
    assert env.balance(NUMBER) == 1100
    rows = run(env.store.transactions(profile="demo", number=NUMBER))
    assert sorted((r.kind, r.external_ref) for r in rows) == [("bonus", f"{first}#bonus"), ("topup", first)]


def test_one_order_notified_with_different_event_ids_credits_once(env):
    """One ACCEPTED order notified three times, each with its own event id: one top-up and one bonus row."""
    env.klarna.fraud_status = "PENDING"
    payment, location = env.start_payment("klarna")
    env.call("GET", through_hpp(env, location))
    (order_id,) = env.klarna.orders
    env.klarna.orders[order_id]["fraud_status"] = "ACCEPTED"
    credited = 0
    for event_id in ("e-1", "e-2", "e-3"):
        body = json.dumps({"order_id": order_id, "event_id": event_id, "event_type": "FRAUD_RISK_ACCEPTED"}).encode()
        reply = env.call("POST", "/hooks/klarna", body=body)
        assert reply.status == 200
        credited += reply.json()["credited"]
    assert credited == 1 and env.balance(NUMBER) == 1100
