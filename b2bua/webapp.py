"""The web side for ``prepaid run``: :class:`webhook.WebSettings` from the B2BUA's config, and the listening Site.

    port = start_web(config, store, reactor)          # stopListening() on shutdown

Merchant credentials come from ``$PREPAID_SECRETS`` or ``[payments] secrets_file``
(:mod:`b2bua.paysecrets`); a method whose account lacks them is left off the page.
"""

from __future__ import annotations

import os

from webhook import PageProfile, ProviderUrls, WebSettings, build_site, listen
from webhook.server import Readiness, no_problems
from webhook.settings import ConnectionLimits

from .config import Config
from .paysecrets import SecretsReport, check_payment_secrets


def web_settings(config: Config, environ=os.environ, *, form_key: bytes = b"",
                 secrets: SecretsReport | None = None) -> WebSettings:
    """The web side's settings from ``config`` and the secrets file (read now unless ``secrets`` is given):
    a payment method whose account lacks credentials is not among its profile's methods."""
    if secrets is None:
        secrets = check_payment_secrets(config, environ)
    accounts = secrets.accounts
    profiles = tuple(
        PageProfile(name=p.name, billing=p.billing, button=p.button, frame_ancestors=tuple(p.frame_ancestors),
                    language=p.language, payments=tuple(sorted(secrets.usable(p.name, p.payments).items())),
                    show_pin=p.withheld == "pin")
        for p in config.profiles.values())
    pay = config.payments
    return WebSettings(
        public_url=config.http.public_url, profiles=profiles, accounts=accounts,
        urls=ProviderUrls(paypal=pay.paypal_api_url, klarna=pay.klarna_api_url, paysafecard=pay.paysafecard_api_url),
        paypal_cert_origins=tuple(pay.paypal_cert_origins) or WebSettings.__dataclass_fields__[
            "paypal_cert_origins"].default,
        default_region=config.sip.default_region, form_key=form_key,
        limits=ConnectionLimits(header_timeout_s=config.http.header_timeout_s,
                                body_timeout_s=config.http.body_timeout_s,
                                idle_timeout_s=config.http.idle_timeout_s,
                                max_connections=config.http.max_connections,
                                max_connections_per_source=config.http.max_connections_per_source))


def start_web(config: Config, store, reactor, *, providers: dict | None = None, environ=os.environ,
              readiness: Readiness = no_problems, secrets: SecretsReport | None = None):
    """Listen on ``[http]`` (HTTPS when a certificate is configured); returns the listening port.

    ``readiness`` (the node's problems, none when it can take work) decides /healthz.
    """
    site = build_site(web_settings(config, environ, secrets=secrets), store, reactor, providers, readiness)
    http = config.http
    return listen(site, reactor, http.address, http.port, tls_certificate=http.tls_certificate,
                  tls_private_key=http.tls_private_key)
