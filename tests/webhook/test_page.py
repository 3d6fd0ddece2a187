"""The top-up page over HTTP: languages, framing policy, CSRF, number check, rate limit, PIN, health, metrics."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlencode

from webhook.secrets import SecretsInvalid, parse_secrets
from webhook.settings import MerchantAccount

from .harness import Env, run


def form_token(body: bytes) -> str:
    return re.search(rb'name="token" value="([^"]+)"', body).group(1).decode()


def submit(env, fields: dict, origin: str | None = "self"):
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if origin == "self":
        headers["Origin"] = env.base_url
    elif origin:
        headers["Origin"] = origin
    return env.call("POST", "/topup/demo", body=urlencode(fields).encode(), headers=headers)


def test_page_in_german_and_english_with_frame_ancestors(sqlite_env):
    """GET shows amounts with bonuses, the methods, CSP frame-ancestors from the profile; ?lang=en is English."""
    env = sqlite_env
    r = env.call("GET", "/topup/demo")
    assert r.status == 200 and r.headers["content-type"].startswith("text/html")
    assert "frame-ancestors http://127.0.0.1:1" in r.headers["content-security-policy"]
    text = r.body.decode()
    assert "Guthaben aufladen" in text and "10,00 EUR + 1,00 EUR Bonus" in text
    assert all(m in text for m in ("PayPal", "Klarna", "paysafecard"))
    en = env.call("GET", "/topup/demo?lang=en").body.decode()
    assert "Top up your credit" in en and "EUR 50.00 + EUR 10.00 bonus" in en
    assert env.call("GET", "/topup/nope").status == 404
    other = env.call("GET", "/topup/other")
    assert "frame-ancestors 'none'" in other.headers["content-security-policy"]


def test_csrf_number_check_and_confirmation(sqlite_env):
    """Posts from another origin or without a token are refused; a number is shown back nationally; pay redirects."""
    env = sqlite_env
    token = form_token(env.call("GET", "/topup/demo").body)
    fields = {"token": token, "lang": "de", "number": "0151/1234 5678", "amount": "2000", "method": "paypal"}
    assert submit(env, fields, origin=None).status == 403
    assert submit(env, fields, origin="http://127.0.0.1:1").status == 403
    assert submit(env, dict(fields, token="1.forged")).status == 400
    for number in ("12", "0151123"):  # no number at all; a possible but no valid German number
        bad = submit(env, dict(fields, number=number))
        assert bad.status == 400 and "keine gültige Telefonnummer" in bad.body.decode()
    assert submit(env, dict(fields, amount="1234")).status == 400
    confirm = submit(env, fields)
    assert confirm.status == 200
    assert '<dd id="national">01511 2345678</dd>' in confirm.body.decode()
    assert "20,00 EUR + 3,00 EUR Bonus" in confirm.body.decode()
    assert 'target="_top"' in confirm.body.decode()
    pay = submit(env, dict(fields, confirm="1", number="+4915112345678"))
    assert pay.status == 303 and pay.headers["location"].startswith(env.paypal.base_url + "/checkoutnow")
    assert env.balance("+4915112345678") is None


def test_typing_a_number_never_shows_a_balance(sqlite_env):
    """A number with credit typed into the page: the confirmation shows no balance and no PIN."""
    env = sqlite_env
    run(env.store.credit("demo", "+4915112345678", 4321, kind="manual", source="t", external_ref="m", actor="t"))
    token = form_token(env.call("GET", "/topup/demo").body)
    r = submit(env, {"token": token, "lang": "de", "number": "015112345678", "amount": "1000", "method": "klarna"})
    assert r.status == 200 and "43,21" not in r.body.decode() and 'id="pin"' not in r.body.decode()
    assert env.call("GET", "/topup/demo/return/AAAAAAAAAAAAAAAAAAAAAAAA").status == 404


def test_pin_shown_only_after_completed_payment(tmp_path):
    """With show_pin, the return page of a completed payment shows the customer PIN; a pending one does not."""
    env = Env(f"sqlite:///{tmp_path}/pin.db", show_pin=True)
    try:
        env.klarna.fraud_status = "PENDING"
        payment, location = env.start_payment("klarna")
        back = env.call("GET", "", url=location).headers["location"].split("127.0.0.1", 1)[1].split("/", 1)[1]
        pending = env.call("GET", "/" + back)
        assert pending.status == 200 and 'id="pin"' not in pending.body.decode()
        (order_id,) = env.klarna.orders
        env.klarna.orders[order_id]["fraud_status"] = "ACCEPTED"
        assert env.call("POST", "/hooks/klarna", body=('{"order_id": "%s"}' % order_id).encode()).status == 200
        done = env.call("GET", f"/topup/demo/return/{payment.reference}")
        account = run(env.store.account("demo", "+4915112345678"))
        assert account.pin and f'<dd id="pin">{account.pin}</dd>' in done.body.decode()
    finally:
        env.close()


def test_rate_limit_on_the_public_page(tmp_path):
    """More page requests per minute than allowed from one address get 429; health is not limited."""
    env = Env(f"sqlite:///{tmp_path}/rl.db", page_rate_per_min=3)
    try:
        statuses = [env.call("GET", "/topup/demo").status for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert env.call("GET", "/healthz").status == 200
    finally:
        env.close()


def test_health_metrics_and_unknown_paths(sqlite_env):
    """/healthz 200, request counters in the metrics, unknown path 404, wrong method 405."""
    env = sqlite_env
    assert env.call("GET", "/healthz").body == b"ok\n"
    env.call("GET", "/topup/demo")
    assert env.call("GET", "/nothing").status == 404
    assert env.call("DELETE", "/healthz").status == 405
    assert env.call("GET", "/metrics").status == 404     # no [metrics] token: not on the public port
    text = env.app.metrics.render().decode()
    assert "# TYPE prepaid_http_requests_total counter" in text
    assert 'prepaid_http_requests_total{route="page",status="200"} 1' in text


def test_secrets_file_and_no_secret_in_repr():
    """The secrets file gives merchant accounts; errors name file and key; repr never shows a secret."""
    accounts = parse_secrets('[accounts.demo-paypal]\nclient_id = "cid"\nsecret = "s3cr3t"\nwebhook_id = "WH"\n',
                             "secrets.toml")
    assert accounts == (MerchantAccount("demo-paypal", "cid", "s3cr3t", "WH"),)
    assert "s3cr3t" not in repr(accounts) and "cid" not in repr(accounts)
    try:
        parse_secrets('[accounts.x]\nsecret = 5\n', "secrets.toml")
        raise AssertionError("expected SecretsInvalid")
    except SecretsInvalid as exc:
        assert "secrets.toml:accounts.x.secret" in str(exc)


def test_logs_show_no_reference_token_or_server_version(sqlite_env, logged):
    """A return page hit with its reference, a query token and an Authorization header: neither the access
    log nor the refusal's log line holds the reference or a token; no answer names a server version."""
    env = sqlite_env
    payment = run(env.app.payments.start("demo", "+4915112345678", 1000, "klarna"))
    r = env.call("GET", f"/topup/demo/return/{payment.reference}?authorization_token=tok-secret",
                 headers={"Authorization": "Bearer api-secret"})
    assert r.status == 409 and "server" not in r.headers
    assert "server" not in env.call("GET", "/nothing").headers
    text = "\n".join(logged)
    assert "/topup/demo/return/-" in text and "refused 409" in text
    assert payment.reference not in text and "tok-secret" not in text and "api-secret" not in text
    assert "TwistedWeb" not in text


def test_a_host_header_pointing_elsewhere_does_not_reach_the_provider(sqlite_env):
    """The pay step with `Host: evil.example`: the return and notify URLs sent to the provider are the
    configured public URL's; with no public URL the page refuses to pay (503) and starts no payment."""
    env = sqlite_env
    token = form_token(env.call("GET", "/topup/demo").body)
    fields = {"token": token, "lang": "de", "number": "+4915112345678", "amount": "1000", "method": "paysafecard",
              "confirm": "1"}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": env.base_url, "Host": "evil.example"}
    pay = env.call("POST", "/topup/demo", body=urlencode(fields).encode(), headers=headers)
    assert pay.status == 303
    (created,) = env.psc.payments.values()
    assert created["redirect"]["success_url"].startswith(env.base_url + "/topup/demo/return/")
    assert created["notification_url"].startswith(env.base_url + "/hooks/paysafecard")
    assert "evil" not in str(created)
    env.settings = replace(env.settings, public_url="")
    refused = env.call("POST", "/topup/demo", body=urlencode(fields).encode(),
                       headers=dict(headers, Origin="http://evil.example"))
    assert refused.status == 503 and len(env.psc.payments) == 1


def test_a_payment_starts_only_for_one_of_the_profiles_amounts(sqlite_env):
    """The page offers 10, 20 and 50 EUR; a payment for 12.34 EUR (a crafted post, another part of the
    program) is refused with the reason before any row or provider order exists."""
    from webhook.providers.base import Rejected
    env = sqlite_env
    try:
        run(env.app.payments.start("demo", "+4915112345678", 1234, "paypal"))
        raise AssertionError("expected Rejected")
    except Rejected as exc:
        assert "1234 cents is not a top-up amount of profile demo" in str(exc)
    assert run(env.app.payments.start("demo", "+4915112345678", 2000, "paypal")).amount_cents == 2000
