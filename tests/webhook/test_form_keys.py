"""The top-up form's token: signed with ``[web] form_key`` and taken when signed with it or the previous key,
so that a form survives a restart, crosses to another node, and survives a key rotation; without a form_key
each process has a key of its own (as before), and says so once."""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from webhook.page import TOKEN_TTL_S, TopupPage
from webhook.secrets import SecretsInvalid, parse_secrets_file
from webhook.settings import WebSettings

KEY_A = b"a" * 32
KEY_B = b"b" * 32
BASE = WebSettings(public_url="https://pay.example", profiles=())


def page(settings: WebSettings, clock: Clock) -> TopupPage:
    """A page as one node's process has it (payments, providers and metrics play no part in tokens)."""
    return TopupPage(settings, payments=None, providers={}, metrics=None, clock=clock)


def test_a_form_of_one_process_is_taken_by_another_with_the_same_key():
    """Two processes (two nodes, or one before and after a restart) with one form_key take each other's forms;
    a process with another key refuses them."""
    clock = Clock()
    clock.advance(1_800_000_000)
    node_a, node_b = page(replace(BASE, form_key=KEY_A), clock), page(replace(BASE, form_key=KEY_A), clock)
    token = node_a.token("demo", int(clock.seconds()))
    clock.advance(600)
    assert node_b.token_ok("demo", token, int(clock.seconds()))
    assert not node_b.token_ok("other", token, int(clock.seconds()))
    assert not page(replace(BASE, form_key=KEY_B), clock).token_ok("demo", token, int(clock.seconds()))
    clock.advance(TOKEN_TTL_S)
    assert not node_b.token_ok("demo", token, int(clock.seconds()))


def test_rotation_takes_forms_signed_with_the_previous_key():
    """After a rotation (form_key B, form_key_previous A) forms signed with A are still taken and new forms
    are signed with B; once A is dropped, A's forms are refused."""
    clock = Clock()
    clock.advance(1_800_000_000)
    settings = {"s": replace(BASE, form_key=KEY_A)}
    node = TopupPage(lambda: settings["s"], payments=None, providers={}, metrics=None, clock=clock)
    old_form = node.token("demo", int(clock.seconds()))
    settings["s"] = replace(BASE, form_key=KEY_B, form_key_previous=KEY_A)       # a reload
    now = int(clock.seconds())
    assert node.token_ok("demo", old_form, now)
    new_form = node.token("demo", now)
    assert page(replace(BASE, form_key=KEY_B), clock).token_ok("demo", new_form, now)
    settings["s"] = replace(BASE, form_key=KEY_B)
    assert not node.token_ok("demo", old_form, now) and node.token_ok("demo", new_form, now)


def test_without_a_form_key_each_process_signs_alone_and_says_so_once():
    """No form_key: a process takes its own forms but not another's, and warns once (not per form)."""
    clock = Clock()
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        one, two = page(BASE, clock), page(BASE, clock)
        token = one.token("demo", 0)
        assert one.token_ok("demo", token, 10) and one.token_ok("demo", one.token("demo", 5), 10)
        assert not two.token_ok("demo", token, 10)
    finally:
        globalLogPublisher.removeObserver(events.append)
    warnings = [formatEvent(e) for e in events if "form_key" in formatEvent(e)]
    assert len(warnings) == 2      # one per process, however many forms
    assert "refused as expired" in warnings[0]


def test_form_keys_in_the_secrets_file():
    """``[web] form_key`` and ``form_key_previous`` are read as given; too short a key, or a previous key
    without a current one, is named file:key without its value."""
    secrets = parse_secrets_file(f'[web]\nform_key = "{"k" * 44}"\nform_key_previous = "{"p" * 44}"\n', "s.toml")
    assert (secrets.form_key, secrets.form_key_previous) == (b"k" * 44, b"p" * 44)
    assert "k" * 44 not in repr(secrets)
    for text, key in (('[web]\nform_key = "tiny"\n', "web.form_key"),
                      (f'[web]\nform_key_previous = "{"p" * 44}"\n', "web.form_key_previous"),
                      ('[web]\nform_key = 5\n', "web.form_key")):
        try:
            parse_secrets_file(text, "s.toml")
            raise AssertionError(f"expected SecretsInvalid for {text!r}")
        except SecretsInvalid as exc:
            assert str(exc).startswith(f"s.toml:{key}: ") and "tiny" not in str(exc) and "p" * 44 not in str(exc)


def test_the_example_secrets_file_parses_and_covers_the_example_config():
    """conf/secrets.example.toml is a valid secrets file with a form key and every account the example
    config's profiles name (so that copying both and filling in values is all an operator does)."""
    from b2bua.node.config import load_config
    from webhook.secrets import read_secrets
    secrets = read_secrets("conf/secrets.example.toml", {})
    assert len(secrets.form_key) >= 32
    named = {a for p in load_config("conf/prepaid.toml").profiles.values() for a in p.payments.values()}
    assert named <= {a.name for a in secrets.accounts}
