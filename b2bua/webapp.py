"""The web side for ``prepaid run``: :class:`webhook.WebSettings` from the B2BUA's config, and the listening Site.

    port = start_web(config, store, reactor)          # stopListening() on shutdown

Merchant credentials come from ``$PREPAID_SECRETS`` or ``[payments] secrets_file``;
a profile naming an account missing there is reported, not silently ignored.
"""

from __future__ import annotations

import os

from webhook import MerchantAccount, PageProfile, ProviderUrls, WebSettings, build_site, listen
from webhook.metrics import Metrics
from webhook.metrics_access import TokenSource, no_token
from webhook.secrets import load_secrets
from webhook.server import Readiness, no_problems
from webhook.settings import ConnectionLimits

from .config import Config


class WebConfigError(Exception):
    """The web side cannot start with this config and secrets (the message says why)."""


def web_settings(config: Config, environ=os.environ, *, form_key: bytes = b"") -> WebSettings:
    """The web side's settings from ``config`` and the secrets file."""
    accounts: tuple[MerchantAccount, ...] = load_secrets(config.payments.secrets_file, environ)
    known = {a.name for a in accounts}
    missing = sorted({f"profiles.{p.name}.payments.{m}: account {a!r}" for p in config.profiles.values()
                      for m, a in p.payments.items() if a not in known})
    if missing:
        raise WebConfigError("merchant accounts without credentials in the secrets file: " + "; ".join(missing))
    profiles = tuple(
        PageProfile(name=p.name, billing=p.billing, button=p.button, frame_ancestors=tuple(p.frame_ancestors),
                    language=p.language, payments=tuple(sorted(p.payments.items())), show_pin=p.withheld == "pin")
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
              readiness: Readiness = no_problems, metrics: Metrics | None = None,
              metrics_token: TokenSource = no_token):
    """Listen on ``[http]`` (HTTPS when a certificate is configured); returns the listening port.

    ``readiness`` (the node's problems, none when it can take work) decides /healthz; ``metrics`` is the
    node's registry, served on /metrics here only to a bearer of ``metrics_token()``.
    """
    site = build_site(web_settings(config, environ), store, reactor, providers, readiness, metrics=metrics,
                      metrics_token=metrics_token)
    http = config.http
    return listen(site, reactor, http.address, http.port, tls_certificate=http.tls_certificate,
                  tls_private_key=http.tls_private_key)
