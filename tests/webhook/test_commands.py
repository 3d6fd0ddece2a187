"""The B2BUA's side of the web: settings from the config and secrets, `prepaid button`, `prepaid apikey`."""

from __future__ import annotations

import json

from b2bua.node.cli import main
from b2bua.node.config import load_config
from b2bua.node.webapp import start_web, web_settings
from webhook import apikeys

from .harness import LiteralResolver, run


def test_settings_from_config_and_secrets(conf, tmp_path):
    """Profiles, frame ancestors, merchant accounts and cert origins come through; a method whose account is
    missing from the secrets file is not among the profile's methods."""
    config = load_config(conf)
    s = web_settings(config, environ={})
    demo = s.profile_by_button("demo")
    assert demo.frame_ancestors == ("http://127.0.0.1:8081",) and demo.methods == ("paypal", "klarna", "paysafecard")
    assert s.account("demo-paypal").webhook_id == "WH-1"
    assert "https://api-m.paypal.com" in s.paypal_cert_origins
    (tmp_path / "other.toml").write_text('[accounts.demo-paypal]\nclient_id = "x"\n')
    partial = web_settings(config, environ={"PREPAID_SECRETS": str(tmp_path / "other.toml")})
    assert partial.profile_by_button("demo").methods == ()


def test_start_web_serves_health(conf):
    """start_web listens where the config says (port 0 here) and answers /healthz."""
    import treq
    from twisted.internet import reactor

    from billing.store import Store
    config = load_config(conf)
    store = Store.open(config.store.url, reactor)
    run(store.upgrade())
    old = reactor.nameResolver
    reactor.installNameResolver(LiteralResolver())
    port = start_web(web_settings(config, environ={}), store, reactor, config.http)
    try:
        async def fetch():
            r = await treq.get(f"http://127.0.0.1:{port.getHost().port}/healthz", persistent=False)
            return r.code, await treq.content(r)
        assert run(fetch()) == (200, b"ok\n")
    finally:
        run(port.stopListening())
        store.close()
        reactor.installNameResolver(old)


def test_button_prints_the_iframe(conf, capsys):
    """`prepaid button --profile demo` prints an iframe of public_url/topup/demo in the profile's language."""
    assert main(["button", "--config", conf, "--profile", "demo"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('<iframe src="http://127.0.0.1:8080/topup/demo?lang=de"')
    assert main(["button", "--config", conf, "--profile", "nope"]) != 0


def test_apikey_create_list_revoke(conf, capsys):
    """create prints the token once (stored hashed, it authenticates); list hides it; revoke ends it."""
    assert main(["apikey", "create", "--config", conf, "--provider", "Demo GmbH", "--profile", "demo", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    from b2bua.node.commands.db import open_store
    store = open_store(load_config(conf))
    try:
        from tests.conftest import fired
        assert fired(store.run(apikeys.authenticate, created["token"])).profiles == ("demo",)
        assert main(["apikey", "list", "--config", conf, "--json"]) == 0
        listed = capsys.readouterr().out
        assert created["id"] in listed and created["token"] not in listed
        assert main(["apikey", "revoke", "--config", conf, created["id"]]) == 0
        assert fired(store.run(apikeys.authenticate, created["token"])) is None
        assert main(["apikey", "revoke", "--config", conf, created["id"]]) == 1
    finally:
        store.close()
    assert main(["apikey", "create", "--config", conf, "--provider", "X", "--profile", "ghost"]) == 2
