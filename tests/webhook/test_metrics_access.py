"""Where /metrics is served: on the portal's listener without a login; on the public one only to a bearer
of ``[metrics] token`` (no token configured: 404; a missing or wrong bearer: 401)."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from b2bua.node.nodemetrics import watch_store
from billing.store import Store
from tests.conftest import STORE_EPOCH_S, fired
from tests.portal.client import PortalClient, portal_config
from webhook.metrics import Metrics, parse_text
from webhook.metrics_access import MetricsTokenInvalid, public_metrics_status, read_metrics_token
from webhook.portal.server import build_portal_site

from .harness import WEBHOOK_ID

TOKEN = "t0ken-for-the-scraper-0123456789"


def test_public_metrics_status_needs_the_configured_bearer():
    """No token configured: the path does not exist (404); else only ``Bearer <token>`` (scheme in any case)."""
    assert public_metrics_status(f"Bearer {TOKEN}", "") == 404
    assert public_metrics_status("", TOKEN) == 401
    assert public_metrics_status(f"Basic {TOKEN}", TOKEN) == 401
    assert public_metrics_status(f"Bearer {TOKEN}x", TOKEN) == 401
    assert public_metrics_status(f"Bearer {TOKEN}", TOKEN) == 200
    assert public_metrics_status(f"bearer  {TOKEN} ", TOKEN) == 200


def test_token_comes_from_the_secrets_file(tmp_path):
    """``[metrics] token`` of the secrets file ($PREPAID_SECRETS wins); none configured: ""; a short token is
    refused naming file and key, never the value."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[metrics]\ntoken = "{TOKEN}"\n')
    assert read_metrics_token(str(secrets), {}) == TOKEN
    assert read_metrics_token("", {}) == ""
    assert read_metrics_token("", {"PREPAID_SECRETS": str(secrets)}) == TOKEN
    other = tmp_path / "other.toml"
    other.write_text('[accounts.x]\nsecret = "s"\n')
    assert read_metrics_token(str(other), {}) == ""
    other.write_text('[metrics]\ntoken = "short-one"\n')
    with pytest.raises(MetricsTokenInvalid) as caught:
        read_metrics_token(str(other), {})
    assert f"{other}:metrics.token:" in str(caught.value) and "short-one" not in str(caught.value)


def test_public_port_refuses_metrics_without_the_token(sqlite_env):
    """The public listener: 404 while no token is configured; with one, 401 (and WWW-Authenticate) without or
    with a wrong bearer, the Prometheus text with the right one."""
    env = sqlite_env
    env.call("GET", "/topup/demo")
    assert env.call("GET", "/metrics").status == 404
    env.app.metrics_token = lambda: TOKEN
    refused = env.call("GET", "/metrics")
    assert refused.status == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert env.call("GET", "/metrics", headers={"Authorization": "Bearer nope"}).status == 401
    ok = env.call("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200 and ok.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_text(ok.body.decode())
    assert samples[("prepaid_http_requests_total", (("route", "page"), ("status", "200")))] == 1


def test_a_notification_that_does_not_verify_is_counted_by_method(sqlite_env):
    """A Klarna notification that is not JSON is refused and counted as a verification failure of klarna."""
    env = sqlite_env
    assert env.call("POST", "/hooks/klarna", body=b"{not json").status == 400
    assert env.app.metrics.value("prepaid_webhook_verification_failures_total", method="klarna") == 1
    assert env.app.metrics.value("prepaid_webhook_verification_failures_total", method="paypal") == 0


def test_portal_serves_the_registry_it_is_given_without_login(tmp_path):
    """The portal's /metrics needs no login and renders the registry handed to it (the node's one), with the
    portal's connection figures labelled listener="portal"; other methods get 405."""
    clock = Clock()
    clock.advance(STORE_EPOCH_S)
    store = Store.open(f"sqlite:///{tmp_path}/p.db", clock, inline=True)
    fired(store.upgrade())
    metrics = Metrics()
    metrics.inc("prepaid_calls_total", outcome="talked", profile="demo")
    site = build_portal_site(store, lambda: portal_config(tmp_path), clock, metrics=metrics)
    client = PortalClient(site, clock)
    answer = client.get("/metrics")
    assert answer.status == 200 and answer.header("content-type").startswith("text/plain; version=0.0.4")
    samples = parse_text(answer.text)
    assert samples[("prepaid_calls_total", (("outcome", "talked"), ("profile", "demo")))] == 1
    assert ("prepaid_http_connections_open", (("listener", "portal"),)) in samples
    assert client.post("/metrics", {}).status == 405
    store.close()


def test_a_payment_credited_by_the_webhook_counts_as_a_top_up_once(env):
    """A PayPal capture notified (signed, by the fake PayPal) credits the payment: one top-up of 10 EUR by
    paypal in the node's figures (the bonus not in the amount); the same notification again counts nothing."""
    watch_store(env.app.metrics, env.store)
    payment, _ = env.start_payment("paypal")
    headers, body = env.paypal.sign(env.paypal.capture_event("CAP1", payment.reference, "10.00"), WEBHOOK_ID)
    for _ in range(2):
        assert env.call("POST", "/hooks/paypal", body=body, headers=headers).status == 200
    m = env.app.metrics
    assert m.value("prepaid_topups_total", method="paypal", profile="demo") == 1
    assert m.value("prepaid_topup_cents_total", method="paypal", profile="demo") == 1000
    assert m.value("prepaid_payment_credits_total", method="paypal") == 1
    assert m.value("prepaid_webhook_verification_failures_total") == 0
    assert m.value("prepaid_store_seconds") > 0 and m.value("prepaid_store_errors_total") == 0
