"""`prepaid payments check` against the fake providers (good, bad credentials, down), and `prepaid payments urls`:
every URL it prints is served by a running app, and is the one the page sends to the provider."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from twisted.internet import reactor

from b2bua.node.cli import build_parser, main
from b2bua.node.commands.payments import BAD_CREDENTIALS, NO_CREDENTIALS, OK, UNREACHABLE, payments_check
from b2bua.node.config import load_config
from b2bua.netutil import free_port
from tests.sipp.harness import ROOT, subprocess_env

from .conftest import SECRETS
from .harness import run

def point_at(conf: str, urls: dict[str, str], *, secrets: str = SECRETS, public_url: str | None = None) -> str:
    """The example config (``conf``) with its provider URLs, secrets and public_url replaced; returns its path."""
    path = Path(conf)
    text = path.read_text()
    for method, url in urls.items():
        default = {"paypal": "https://api-m.paypal.com", "klarna": "https://api.klarna.com",
                   "paysafecard": "https://api.paysafecard.com"}[method]
        text = text.replace(f'{method}_api_url = "{default}"', f'{method}_api_url = "{url}"')
    if public_url is not None:
        text = text.replace('public_url = "http://127.0.0.1:8080"', f'public_url = "{public_url}"')
    path.write_text(text)
    (path.parent / "secrets.toml").write_text(secrets)
    return str(path)


def check(conf: str, *extra: str, timeout_s: str = "2") -> int:
    """`prepaid payments check` in this process, its providers on the global reactor that serves the fakes."""
    args = build_parser().parse_args(["payments", "check", "--config", conf, "--timeout-s", timeout_s, *extra])
    return payments_check(args, load_config(conf), run=lambda make: run(make(reactor)))


@pytest.fixture(autouse=True)
def no_env_secrets(monkeypatch):
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)


def test_good_credentials_are_ok(sqlite_env, conf, capsys):
    """The fakes' own credentials: each of the three accounts OK, exit 0; each provider was asked on its
    authentication endpoint (PayPal's token, Klarna's session read, paysafecard's payment read)."""
    env = sqlite_env
    conf = point_at(conf, {"paypal": env.paypal.base_url, "klarna": env.klarna.base_url,
                           "paysafecard": env.psc.base_url})
    assert check(conf) == 0
    assert capsys.readouterr().out.splitlines() == [
        "paypal demo-paypal (demo): OK", "klarna demo-klarna (demo): OK", "paysafecard demo-paysafecard (demo): OK"]
    assert ("POST", "/v1/oauth2/token") in env.paypal.requests
    assert any(m == "GET" and p.startswith("/payments/v1/sessions/") for m, p in env.klarna.requests)
    assert any(m == "GET" and p.startswith("/v1/payments/") for m, p in env.psc.requests)
    assert not env.klarna.sessions and not env.psc.payments and not env.paypal.orders  # nothing was created


def test_bad_credentials_down_and_missing(sqlite_env, conf, capsys):
    """A wrong PayPal secret: bad credentials; Klarna on a closed port: unreachable; paysafecard without a key in
    the secrets file: no credentials (not tried); exit 1; --json says the same."""
    env = sqlite_env
    closed = f"http://127.0.0.1:{free_port()}"
    secrets = SECRETS.replace('secret = "pp-secret"', 'secret = "wrong"').replace('secret = "psc_test_key"', "")
    conf = point_at(conf, {"paypal": env.paypal.base_url, "klarna": closed, "paysafecard": env.psc.base_url},
                    secrets=secrets)
    started = time.monotonic()
    assert check(conf) == 1
    assert time.monotonic() - started < 10
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("paypal demo-paypal (demo): bad credentials: paypal refused the credentials of "
                               "accounts.demo-paypal in ")
    assert lines[1].startswith("klarna demo-klarna (demo): unreachable: klarna credentials: ConnectionRefusedError")
    assert lines[2].startswith("paysafecard demo-paysafecard (demo): no credentials: ")
    assert "accounts.demo-paysafecard.secret: missing" in lines[2]
    assert not any(p.startswith("/v1/payments") for _m, p in env.psc.requests)
    assert check(conf, "--json") == 1
    results = {r["method"]: r["result"] for r in json.loads(capsys.readouterr().out)}
    assert results == {"paypal": BAD_CREDENTIALS, "klarna": UNREACHABLE, "paysafecard": NO_CREDENTIALS}


def test_bad_klarna_and_paysafecard_credentials(sqlite_env, conf, capsys):
    """Klarna's 401 to a wrong password and paysafecard's 401 to a wrong key are bad credentials; --profile
    limits the check to that profile's accounts."""
    env = sqlite_env
    secrets = SECRETS.replace('"klarna-secret"', '"nope"').replace('"psc_test_key"', '"psc_other"')
    conf = point_at(conf, {"paypal": env.paypal.base_url, "klarna": env.klarna.base_url,
                           "paysafecard": env.psc.base_url}, secrets=secrets)
    assert check(conf, "--profile", "demo", "--json") == 1
    results = {r["method"]: r["result"] for r in json.loads(capsys.readouterr().out)}
    assert results == {"paypal": OK, "klarna": BAD_CREDENTIALS, "paysafecard": BAD_CREDENTIALS}
    assert main(["payments", "check", "--config", conf, "--profile", "ghost"]) == 2
    assert "no profile 'ghost'" in capsys.readouterr().err


def test_the_command_in_its_own_process(sqlite_env, conf):
    """`python -m b2bua.node.cli payments check` as an operator runs it: good PayPal, Klarna with a wrong password,
    paysafecard down: one line each, exit 1, within its short deadline."""
    env = sqlite_env
    closed = f"http://127.0.0.1:{free_port()}"
    conf = point_at(conf, {"paypal": env.paypal.base_url, "klarna": env.klarna.base_url, "paysafecard": closed},
                    secrets=SECRETS.replace('"klarna-secret"', '"nope"'))
    proc = subprocess.Popen([sys.executable, "-m", "b2bua.node.cli", "payments", "check", "--config", conf],
                            cwd=ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        reactor.iterate(0.01)   # the fakes live in this process
    out, err = proc.communicate(timeout=5)
    assert proc.returncode == 1, err
    lines = out.splitlines()
    assert lines[0] == "paypal demo-paypal (demo): OK"
    assert lines[1].startswith("klarna demo-klarna (demo): bad credentials")
    assert lines[2].startswith("paysafecard demo-paysafecard (demo): unreachable")


def test_every_printed_url_is_served_and_is_what_the_page_sends(sqlite_env, conf, capsys):
    """`payments urls --profile demo --json`: each URL, with a real payment's reference (and an id for
    paysafecard's placeholder), is answered by the running app and not with 404 (webhooks: 405 to GET, a 4xx
    refusal to an empty POST); the return and cancel URLs are the ones the page sent PayPal for that payment."""
    env = sqlite_env
    conf = point_at(conf, {}, public_url=env.base_url)
    assert main(["payments", "urls", "--config", conf, "--profile", "demo", "--json"]) == 0
    urls = json.loads(capsys.readouterr().out)
    assert {u["method"] for u in urls} == {"paypal", "klarna", "paysafecard"}
    assert [u["url"] for u in urls if u["register"]] == [f"{env.base_url}/hooks/paypal"]
    payment, _location = env.start_payment("paypal")
    order = next(iter(env.paypal.orders.values()))
    by_role = {u["role"]: u["url"] for u in urls if u["method"] == "paypal"}
    assert order["return_url"] == by_role["return"].replace("{reference}", payment.reference) + "?lang=de"
    assert order["cancel_url"] == by_role["cancel"].replace("{reference}", payment.reference) + "?lang=de"
    for u in urls:
        url = u["url"].replace("{reference}", payment.reference).replace("{payment_id}", "pay_123_EUR")
        got = env.call("GET", "", url=url).status
        assert got != 404 and got < 500 or (u["role"] == "return" and got == 502), (u, got)
        if "/hooks/" in url:
            assert got == 405
            posted = env.call("POST", "", url=url, body=b"")
            # refused with the hook's own reason (paysafecard: 404, no such payment there), not the router's 404
            assert 400 <= posted.status < 500 and b"no such path" not in posted.body, (u, posted)
    assert main(["payments", "urls", "--config", conf, "--profile", "demo"]) == 0
    out = capsys.readouterr().out
    assert f"top-up page of profile demo: {env.base_url}/topup/demo" in out
    assert env.call("GET", "", url=f"{env.base_url}/topup/demo").status == 200


def test_a_provider_that_does_not_answer_in_time_is_unreachable(sqlite_env, conf, capsys):
    """Klarna takes 5 s to answer and the check allows 0.5 s: unreachable, said within about that deadline."""
    env = sqlite_env
    env.klarna.mode, env.klarna.slow_s = "slow", 5.0
    conf = point_at(conf, {"paypal": env.paypal.base_url, "klarna": env.klarna.base_url,
                           "paysafecard": env.psc.base_url})
    started = time.monotonic()
    assert check(conf, "--json", timeout_s="0.5") == 1
    assert time.monotonic() - started < 4
    results = {r["method"]: (r["result"], r["detail"]) for r in json.loads(capsys.readouterr().out)}
    assert results["klarna"] == (UNREACHABLE, "klarna credentials: no answer within 0.5 s (after 1 attempts)")
    assert results["paypal"][0] == OK and results["paysafecard"][0] == OK


def test_a_provider_answering_503_is_unreachable_not_bad_credentials(sqlite_env, conf, capsys):
    """paysafecard answers 503 to everything: that tells nothing of the key, so unreachable with the status."""
    env = sqlite_env
    env.psc.mode = "down"
    conf = point_at(conf, {"paypal": env.paypal.base_url, "klarna": env.klarna.base_url,
                           "paysafecard": env.psc.base_url})
    assert check(conf, "--json") == 1
    results = {r["method"]: (r["result"], r["detail"]) for r in json.loads(capsys.readouterr().out)}
    assert results["paysafecard"] == (UNREACHABLE, "paysafecard credentials: HTTP 503 (after 1 attempts)")
