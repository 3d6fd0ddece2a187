"""The balance API on the live Site: keys, profiles, credit/debit/transactions/renumber, idempotency."""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from billing.db import model
from webhook import apikeys

from .harness import run

NUMBER = "+4915112345678"
PATH = "/api/v1/accounts/demo/%2B4915112345678"


def make_key(env, profiles=("demo",)):
    key, token = run(env.store.run(apikeys.create, "Demo Beratung GmbH", profiles, env.store.now_ms()))
    return key, token


def post(env, token, path, doc, **headers):
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers}
    return env.call("POST", path, body=json.dumps(doc).encode(), headers=h)


def get(env, token, path):
    return env.call("GET", path, headers={"Authorization": f"Bearer {token}"})


def test_keys_are_stored_hashed_and_limited_to_their_profiles(env):
    """No key, a wrong or revoked key -> 401; a key of another profile -> 403; the row holds only the SHA-256."""
    key, token = make_key(env)
    _, other_token = make_key(env, ("other",))
    row = run(env.store.run(lambda c: c.execute(sa.select(model.api_keys).where(model.api_keys.c.id == key.id)).one()))
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.key_hash
    assert env.call("GET", PATH).status == 401
    assert get(env, token[:-1] + ("A" if token[-1] != "A" else "B"), PATH).status == 401
    assert get(env, other_token, PATH).status == 403
    assert get(env, token, PATH).status == 404  # allowed, but no account yet
    assert run(env.store.run(apikeys.revoke, key.id, env.store.now_ms()))
    assert get(env, token, PATH).status == 401


def test_credit_debit_transactions_renumber(env):
    """Credit once per reference; a debit beyond the balance is 409 'insufficient' and changes nothing."""
    _, token = make_key(env)
    r = post(env, token, PATH + "/credit", {"amount_cents": 500, "reference": "c-1", "note": "goodwill"})
    assert r.status == 200 and r.json()["applied"] is True and r.json()["account"]["balance_cents"] == 500
    r = post(env, token, PATH + "/credit", {"amount_cents": 500, "reference": "c-1"})
    assert r.status == 200 and r.json()["applied"] is False and env.balance(NUMBER) == 500
    r = post(env, token, PATH + "/debit", {"amount_cents": 501, "reference": "d-1"})
    assert r.status == 409 and r.json()["reason"] == "insufficient" and env.balance(NUMBER) == 500
    r = post(env, token, PATH + "/debit", {"amount_cents": 200, "reference": "d-2"})
    assert r.status == 200 and r.json()["account"]["balance_cents"] == 300
    assert post(env, token, "/api/v1/accounts/demo/+4930999999/debit",
                {"amount_cents": 1, "reference": "d-3"}).status == 404
    for bad in ({"amount_cents": 0, "reference": "x"}, {"amount_cents": True, "reference": "x"},
                {"amount_cents": 5}, {"amount_cents": 5, "reference": "has space"}):
        assert post(env, token, PATH + "/credit", bad).status == 400
    r = get(env, token, PATH + "/transactions?limit=10")
    assert r.status == 200
    assert [(t["kind"], t["amount_cents"]) for t in r.json()["transactions"]] == [("api_debit", -200),
                                                                               ("api_credit", 500)]
    r = post(env, token, PATH + "/renumber", {"new_number": "015122222222"})
    assert r.status == 200 and r.json()["account"]["number"] == "+4915122222222"
    assert get(env, token, "/api/v1/accounts/demo/015122222222").json()["balance_cents"] == 300
    post(env, token, PATH + "/credit", {"amount_cents": 100, "reference": "c-2"})
    r = post(env, token, PATH + "/renumber", {"new_number": "+4915122222222"})
    assert r.status == 409 and r.json()["reason"] == "number_taken"


def test_idempotency_key_replays_once_and_refuses_another_body(env):
    """Same Idempotency-Key + same body: the first answer again, booked once; another body: 422."""
    _, token = make_key(env)
    post(env, token, PATH + "/credit", {"amount_cents": 1000, "reference": "seed"})
    doc = {"amount_cents": 300, "reference": "svc-1"}
    first = post(env, token, PATH + "/debit", doc, **{"Idempotency-Key": "k-1"})
    again = post(env, token, PATH + "/debit", doc, **{"Idempotency-Key": "k-1"})
    assert first.status == again.status == 200
    assert first.body == again.body and again.headers.get("idempotent-replayed") == "true"
    assert env.balance(NUMBER) == 700
    other = post(env, token, PATH + "/debit", {"amount_cents": 301, "reference": "svc-1"}, **{"Idempotency-Key": "k-1"})
    assert other.status == 422 and env.balance(NUMBER) == 700


def test_body_limit_bad_json_and_openapi(sqlite_env):
    """A body over the limit is 413, non-JSON 400; the OpenAPI document is served without a key."""
    env = sqlite_env
    _, token = make_key(env)
    big = b'{"amount_cents": 1, "reference": "' + b"x" * (70 * 1024) + b'"}'
    r = env.call("POST", PATH + "/credit", body=big, headers={"Authorization": f"Bearer {token}"})
    assert r.status == 413
    r = env.call("POST", PATH + "/credit", body=b"{nope", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 400
    doc = env.call("GET", "/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/api/v1/accounts/{profile}/{number}/debit" in doc["paths"]


def test_concurrent_retries_with_one_idempotency_key_take_effect_once(env):
    """20 identical POSTs with one Idempotency-Key at once: one debit; the others replay it or are told to retry."""
    from twisted.internet.defer import ensureDeferred, gatherResults
    _, token = make_key(env)
    post(env, token, PATH + "/credit", {"amount_cents": 1000, "reference": "seed"})
    body = json.dumps({"amount_cents": 100, "reference": "once"}).encode()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "same", "Content-Type": "application/json"}
    replies = run(gatherResults([ensureDeferred(env.request("POST", PATH + "/debit", body=body, headers=headers))
                                 for _ in range(20)]))
    assert {r.status for r in replies} <= {200, 409}
    assert all(r.json().get("applied") is True for r in replies if r.status == 200)
    assert env.balance(NUMBER) == 900
    late = env.call("POST", PATH + "/debit", body=body, headers=headers)
    assert late.status == 200 and late.headers.get("idempotent-replayed") == "true" and env.balance(NUMBER) == 900


def test_deeply_nested_json_is_400_with_a_reason_not_a_recursion_error(sqlite_env, logged):
    """A body of 30,000 nested arrays (json.loads would raise RecursionError: a 500) is refused with 400 and
    the reason; nothing is logged as an unexpected error, and the API answers the next request."""
    env = sqlite_env
    _, token = make_key(env)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in (b"[" * 30_000 + b"]" * 30_000, b'{"a":' * 40 + b"1" + b"}" * 40):
        r = env.call("POST", PATH + "/credit", body=body, headers=headers)
        assert r.status == 400 and r.json()["error"] == "the JSON is nested deeper than 32 levels"
    assert not any("unexpected error" in line for line in logged)
    r = post(env, token, PATH + "/credit", {"amount_cents": 100, "reference": "after"})
    assert r.status == 200 and env.balance(NUMBER) == 100


def test_credit_or_debit_over_the_profiles_manual_limit_is_refused_and_books_are_audited(env):
    """Over the profile's max_manual_cents (500.00 EUR by default) a credit or debit is 409 over_limit and
    books nothing; one within it writes an audit row: actor api:<key id>, the client's address, balances."""
    from billing.db import audit
    key, token = make_key(env)
    r = post(env, token, PATH + "/credit", {"amount_cents": 50_001, "reference": "big"})
    assert r.status == 409 and r.json()["reason"] == "over_limit" and r.json()["limit_cents"] == 50_000
    assert env.balance(NUMBER) is None
    assert post(env, token, PATH + "/credit", {"amount_cents": 50_000, "reference": "c-1"}).status == 200
    r = post(env, token, PATH + "/debit", {"amount_cents": 50_001, "reference": "d-big"})
    assert r.status == 409 and r.json()["reason"] == "over_limit" and env.balance(NUMBER) == 50_000
    assert post(env, token, PATH + "/debit", {"amount_cents": 200, "reference": "d-1", "note": "svc"}).status == 200
    rows = run(env.store.run(audit.entries, profile="demo"))
    assert [(a.actor, a.action, a.subject, a.source, a.before, a.after) for a in rows] == [
        (f"api:{key.id}", "api_credit", NUMBER, "127.0.0.1", "0", "50000"),
        (f"api:{key.id}", "api_debit", NUMBER, "127.0.0.1", "50000", "49800")]
    assert "ref=" + f"{key.id}:d-1" in rows[1].detail and "note=svc" in rows[1].detail


def test_a_credit_or_renumber_to_a_number_no_one_can_call_from_is_409_bad_number(env):
    """``+49151123`` (the ``0151123`` that was accepted before) is possible but no valid German number: a
    credit to it and a renumber onto it are 409 ``bad_number`` with the reason, and nothing is booked."""
    key, token = make_key(env)
    bad = PATH.replace("%2B4915112345678", "%2B49151123")
    r = post(env, token, bad + "/credit", {"amount_cents": 100, "reference": "r-1"})
    assert r.status == 409 and r.json()["reason"] == "bad_number" and "not a valid number of DE" in r.json()["error"]
    assert env.balance("+49151123") is None
    assert post(env, token, PATH + "/credit", {"amount_cents": 100, "reference": "r-2"}).status == 200
    r = post(env, token, PATH + "/renumber", {"new_number": "+49151123"})
    assert r.status == 409 and r.json()["reason"] == "bad_number" and env.balance(NUMBER) == 100


def test_a_debit_reusing_a_reference_on_a_number_without_account_is_404_not_500(env):
    """A credit with reference ``0`` to one number, then a debit with ``0`` to a number that has no account:
    the booking is refused as a duplicate with no account to show; that was a 500 (found by schemathesis)."""
    key, token = make_key(env)
    assert post(env, token, PATH + "/credit", {"amount_cents": 100, "reference": "0"}).status == 200
    other = PATH.replace("%2B4915112345678", "%2B4930123456")
    r = post(env, token, other + "/debit", {"amount_cents": 1, "reference": "0"})
    assert r.status == 404 and env.balance("+4930123456") is None and env.balance(NUMBER) == 100
