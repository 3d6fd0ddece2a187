"""The web side reads its settings at each use: a reload's bonus is offered by the next form, and new provider
URLs get new adapters while unchanged settings keep the adapters (and their cached tokens)."""

from __future__ import annotations

from dataclasses import replace

from twisted.internet.task import Clock

from billing.profile import TopupOption
from webhook.page import TopupPage
from webhook.server import LiveProviders
from webhook.settings import PageProfile, ProviderUrls, WebSettings

from .harness import DEMO_BILLING

PAYPAL = (("paypal", "demo-paypal"),)
BASE = WebSettings(public_url="https://pay.example",
                   profiles=(PageProfile("demo", DEMO_BILLING, "demo", payments=PAYPAL),), form_key=b"k" * 32)


def test_the_page_offers_the_bonus_in_force():
    """The page reads its settings at each request: a profile's new bonus is what the next form offers."""
    clock = Clock()
    settings = {"s": BASE}
    node = TopupPage(lambda: settings["s"], payments=None, providers={}, metrics=None, clock=clock)
    assert "1,00 EUR Bonus" in node.form(node.profile("demo"), "de", 0)
    richer = replace(DEMO_BILLING, topups=(TopupOption(1000, 400),))
    settings["s"] = replace(settings["s"], profiles=(PageProfile("demo", richer, "demo", payments=PAYPAL),))
    form = node.form(node.profile("demo"), "de", 0)
    assert "4,00 EUR Bonus" in form and "1,00 EUR Bonus" not in form


def test_provider_adapters_follow_their_urls():
    """The adapters are made once per set of URLs: the same object while the settings keep them, a new one
    (talking to the new URL) after a reload changes PayPal's API URL."""
    settings = {"s": BASE}
    providers = LiveProviders(lambda: settings["s"], Clock())
    first = providers["paypal"]
    assert providers["paypal"] is first and first.api_url == "https://api-m.paypal.com"
    settings["s"] = replace(BASE, form_key=b"n" * 32)
    assert providers["paypal"] is first
    settings["s"] = replace(BASE, urls=ProviderUrls(paypal="https://api-m.sandbox.paypal.com"))
    assert providers["paypal"] is not first and providers["paypal"].api_url == "https://api-m.sandbox.paypal.com"
    assert sorted(providers) == ["klarna", "paypal", "paysafecard"]
