"""`prepaid check-config` reads the secrets file; `prepaid run` refuses with `[payments] require_all`, else the
page leaves a method without credentials off and the log says so once."""

from __future__ import annotations

import treq

from b2bua.node.cli import main
from b2bua.node.config import load_config
from b2bua.node.paysecrets import check_payment_secrets
from b2bua.node.webapp import served_web_settings, start_web, web_settings
from webhook.secrets import read_secrets

from .conftest import SECRETS
from .harness import LiteralResolver, run


def secrets_at(conf: str) -> str:
    from pathlib import Path
    return str(Path(conf).parent / "secrets.toml")


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def test_complete_secrets_pass(conf, capsys, monkeypatch):
    """Every account complete: the summary, a line for the secrets file, exit 0."""
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    assert main(["check-config", conf]) == 0
    out = capsys.readouterr().out
    assert f"secrets: every payment method the profiles name has credentials in\n    {secrets_at(conf)}" in out


def test_missing_secrets_file_is_a_problem(conf, capsys, monkeypatch):
    """The configured secrets file is not there: `file:(file): cannot read`, the methods it leaves off, exit 2."""
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    import os
    os.remove(secrets_at(conf))
    assert main(["check-config", conf]) == 2
    err = capsys.readouterr().err
    assert f"{secrets_at(conf)}:(file): cannot read: No such file or directory" in err
    assert "payment methods without credentials: demo/paypal, demo/klarna, demo/paysafecard (off on the top-up page)" \
        in err


def test_no_secrets_file_configured(tmp_path, capsys, monkeypatch):
    """The example config names accounts and no secrets file: its payments.secrets_file key is named, exit 2;
    with $PREPAID_SECRETS pointing at complete credentials it passes."""
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    assert main(["check-config", "conf/prepaid.toml"]) == 2
    err = capsys.readouterr().err
    assert "conf/prepaid.toml:payments.secrets_file: not set, nor $PREPAID_SECRETS: no credentials for the " \
           "merchant accounts the profiles name (demo-klarna, demo-paypal, demo-paysafecard)" in err
    (tmp_path / "s.toml").write_text(SECRETS)
    monkeypatch.setenv("PREPAID_SECRETS", str(tmp_path / "s.toml"))
    assert main(["check-config", "conf/prepaid.toml"]) == 0


def test_missing_incomplete_and_wrong_type(conf, capsys, monkeypatch):
    """A missing account, an incomplete one and a wrong type: each as file:key: reason, all in one run, exit 2."""
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    path = secrets_at(conf)
    write(path, SECRETS.replace("[accounts.demo-klarna]", "[accounts.typo-klarna]")
          .replace('webhook_id = "WH-1"\n', "").replace('secret = "psc_test_key"', "secret = 42"))
    assert main(["check-config", conf]) == 2
    err = capsys.readouterr().err
    assert f"{path}:accounts.demo-klarna: missing (named by profiles.demo.payments.klarna)" in err
    assert f"{path}:accounts.demo-paypal.webhook_id: missing: the Webhook ID" in err
    assert f"{path}:accounts.demo-paysafecard.secret: must be a string" in err
    assert f"{conf}: 3 problem(s)" in err


def test_env_secrets_file_wins(conf, tmp_path, capsys, monkeypatch):
    """$PREPAID_SECRETS is the file checked, not [payments] secrets_file."""
    other = tmp_path / "env-secrets.toml"
    other.write_text("[accounts.demo-paypal]\n")
    monkeypatch.setenv("PREPAID_SECRETS", str(other))
    assert main(["check-config", conf]) == 2
    assert f"{other}:accounts.demo-paypal.client_id: missing" in capsys.readouterr().err


def test_run_refuses_with_require_all(conf, capsys, monkeypatch):
    """`[payments] require_all = true` and a method without credentials: run exits 2 naming file:key and the
    setting, before it listens on anything."""
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    with open(conf, encoding="utf-8") as f:
        text = f.read()
    write(conf, text.replace("require_all = false", "require_all = true"))
    write(secrets_at(conf), SECRETS.replace('secret = "klarna-secret"', ""))
    assert main(["run", "--config", conf]) == 2
    err = capsys.readouterr().err
    assert f"{secrets_at(conf)}:accounts.demo-klarna.secret: missing: the Klarna API password" in err
    assert f"{conf}:payments.require_all: true, and 1 payment method(s) lack credentials" in err


def page_of(config):
    """(status, HTML) of /topup/demo served by start_web with the config's settings on 127.0.0.1."""
    from twisted.internet import reactor

    from billing.store import Store
    store = Store.open(config.store.url, reactor)
    run(store.upgrade())
    old = reactor.nameResolver
    reactor.installNameResolver(LiteralResolver())
    port = start_web(web_settings(config), store, reactor, config.http)
    try:
        async def page():
            r = await treq.get(f"http://127.0.0.1:{port.getHost().port}/topup/demo", persistent=False)
            return r.code, (await treq.content(r)).decode()
        return run(page())
    finally:
        run(port.stopListening())
        store.close()
        reactor.installNameResolver(old)


def off_lines(config) -> tuple[str, ...]:
    """What a node logs at start for the methods that are off (one line each)."""
    return served_web_settings(config, read_secrets(config.payments.secrets_file),
                               check_payment_secrets(config))[1]


def test_page_hides_a_method_without_credentials_and_says_it_once(conf, monkeypatch):
    """No PayPal credentials: the running page offers Klarna and paysafecard but no PayPal button, and the
    node's lines for methods that are off are one, about PayPal (naming the key), none about the others."""
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    write(secrets_at(conf), SECRETS.replace("[accounts.demo-paypal]", "[accounts.not-ours]"))
    status, body = page_of(load_config(conf))
    assert status == 200
    assert 'value="klarna"' in body and 'value="paysafecard"' in body and 'value="paypal"' not in body
    about = off_lines(load_config(conf))
    assert len(about) == 1
    assert "paypal" in about[0] and "profile demo" in about[0]
    assert f"{secrets_at(conf)}:accounts.demo-paypal: missing (named by profiles.demo.payments.paypal)" in about[0]


def test_a_page_without_any_method_says_so_instead_of_an_empty_box(conf, monkeypatch):
    """No secrets file at all (none configured): the page says top-ups are not available, with no form and no
    payment box; the log has one line per method. (A configured file that cannot be read stops the node.)"""
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    with open(conf, encoding="utf-8") as f:
        text = f.read()
    write(conf, text.replace(f'secrets_file = "{secrets_at(conf)}"', ""))
    status, body = page_of(load_config(conf))
    assert status == 200
    assert 'id="closed"' in body and "<form" not in body and 'name="method"' not in body
    assert len(off_lines(load_config(conf))) == 3


def test_a_node_without_secrets_serves_and_says_once_per_method(tmp_path, monkeypatch):
    """`prepaid run` on the example config without a secrets file: it gets ready, its page says top-ups are not
    available, and its output has exactly one stamped line per (profile, method) that is off, naming the key."""
    import json
    import re
    import urllib.request

    from tests.sipp.node import start_node
    monkeypatch.delenv("PREPAID_SECRETS", raising=False)
    node = start_node(tmp_path, agents=["sip:agent@127.0.0.1:5070"])
    try:
        ready = next(json.loads(line) for line in node.output[0].splitlines() if line.startswith('{"ready"'))
        with urllib.request.urlopen(f"http://127.0.0.1:{ready['ports']['http']}/topup/demo", timeout=10) as r:
            body = r.read().decode()
    finally:
        out = node.stop()
    assert 'id="closed"' in body
    off = [line for line in out.splitlines() if "is off (not on its top-up page)" in line]
    assert [re.search(r"payment method (\w+) of profile demo", line).group(1) for line in off] == \
        ["paypal", "klarna", "paysafecard"]
    assert all(re.match(r"\d{4}-\d\d-\d\d", line) and "payments.secrets_file: not set" in line for line in off)
