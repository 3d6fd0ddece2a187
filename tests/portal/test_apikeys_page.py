"""The portal's "API keys": a key made there is shown once and works against the balance API, revoking it
stops it; both are audited; the list shows only the profile's keys with their last use; the CLI audits too."""

from __future__ import annotations

import re

from twisted.internet.defer import ensureDeferred

from billing.db.audit import entries
from tests.conftest import fired
from tests.webhook.harness import run
from webhook import apikeys as keys
from webhook.portal.pages import apikeys
from webhook.portal.view import Html, Redirect, context_for

from tests.webhook.conftest import env  # noqa: F401  (the live Site with its store, SQLite and PostgreSQL)

from .pages_support import EXAMPLE, example_config, html, provider

PATH = "/api/v1/accounts/demo/%2B4915112345678"


def page(env, handler, method="GET", **form):
    ctx = context_for(provider(), "demo", env.store, example_config(), now_ms=env.store.now_ms(), method=method,
                      form=form, csrf_token="tok-1", client_address="192.0.2.7", strings=apikeys.STRINGS)
    return run(ensureDeferred(handler(ctx)))


def get(env, token):
    return env.call("GET", PATH, headers={"Authorization": f"Bearer {token}"})


def test_a_key_made_in_the_portal_is_shown_once_works_and_revoked_stops(env):
    """POST create answers with the token (ppk_...) once; the list afterwards shows the name but never the
    token, and the last use once the API took it; the token reaches the balance API (404: no account yet,
    not 401); revoking answers with a redirect and the API says 401; both are audited as the portal user
    from the client's address."""
    made = page(env, apikeys.create_key, "POST", name="Shop <b>", csrf="tok-1")
    assert isinstance(made, Html)
    text = html(made)
    token = re.search(r'value="(ppk_[0-9a-f]{16}_[A-Za-z0-9_\-]+)"', text).group(1)
    assert "Shop &lt;b&gt;" in text
    listing = html(page(env, apikeys.keys_page))
    assert token not in listing and "Shop &lt;b&gt;" in listing and "never" in listing
    assert 'name="csrf" value="tok-1"' in listing
    assert get(env, token).status == 404
    key_id = token.split("_")[1]
    listing = html(page(env, apikeys.keys_page))
    assert "never" not in listing
    done = page(env, apikeys.revoke_key, "POST", key=key_id, csrf="tok-1")
    assert done == Redirect("/p/demo/apikeys", notice="The key was revoked.")
    assert get(env, token).status == 401
    audit = run(env.store.run(entries, profile="demo"))
    assert [(a.action, a.actor, a.source, a.subject) for a in audit] == [
        ("apikey_create", "portal:anna", "192.0.2.7", key_id), ("apikey_revoke", "portal:anna", "192.0.2.7", key_id)]


def test_only_the_profiles_keys_are_listed_and_revocable(env):
    """A key of another profile is neither listed nor revoked from this profile's page (404)."""
    other, _ = run(env.store.run(keys.create, "Other GmbH", ("other",), env.store.now_ms(), name="theirs"))
    assert "theirs" not in html(page(env, apikeys.keys_page))
    assert page(env, apikeys.revoke_key, "POST", key=other.id).status == 404
    assert run(env.store.run(keys.list_keys, "other"))[0].revoked_ms is None


def test_a_key_needs_a_name(env):
    """No name: the page again, with its reason, status 400, and no key made."""
    result = page(env, apikeys.create_key, "POST", name="  ")
    assert result.status == 400 and "Please give a name" in html(result)
    assert run(env.store.run(keys.list_keys)) == []


def test_last_use_is_stamped_at_most_once_a_minute(store):
    """Authenticating stamps last_used_ms; again within a minute leaves it; a minute later moves it."""
    key, token = fired(store.run(keys.create, "P", ("demo",), 1000))
    fired(store.run(keys.authenticate, token, 10_000))
    fired(store.run(keys.authenticate, token, 69_999))
    assert fired(store.run(keys.list_keys))[0].last_used_ms == 10_000
    fired(store.run(keys.authenticate, token, 70_000))
    assert fired(store.run(keys.list_keys))[0].last_used_ms == 70_000


def test_the_cli_audits_create_and_revoke(tmp_path, monkeypatch, capsys):
    """`prepaid apikey create` and `revoke` write audit rows with the operator as actor."""
    from b2bua.node.cli import main
    from billing.store import Store
    db = tmp_path / "cli.db"
    conf = tmp_path / "prepaid.toml"
    conf.write_text(EXAMPLE.read_text().replace(
        "sqlite:///../var/prepaid.db", f"sqlite:///{db}"))
    assert main(["apikey", "create", "--config", str(conf), "--provider", "Demo", "--profile", "demo"]) == 0
    key_id = re.search(r"key ([0-9a-f]{16})", capsys.readouterr().out).group(1)
    assert main(["apikey", "revoke", "--config", str(conf), key_id]) == 0
    store = Store.open(f"sqlite:///{db}", inline=True)
    try:
        audit = fired(store.run(entries, profile="demo"))
    finally:
        store.close()
    assert [(a.action, a.subject) for a in audit] == [("apikey_create", key_id), ("apikey_revoke", key_id)]
    assert all(a.actor.startswith("operator") for a in audit)
