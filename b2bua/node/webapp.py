"""The web side for ``prepaid run``: :class:`webhook.WebSettings` from the B2BUA's config and secrets, and the Site.

    settings, off = served_web_settings(config, secrets, report)   # at start and at each reload
    port = start_web(lambda: holder.snapshot.web, store, reactor, config.http)

Merchant credentials and form keys come from the secrets file (``$PREPAID_SECRETS`` or
``[payments] secrets_file``, read by :func:`webhook.secrets.read_secrets`); a payment method
whose account lacks complete credentials (:mod:`b2bua.node.paysecrets`) is left off its page, and
is reported.
"""

from __future__ import annotations

import os

from webhook import PageProfile, ProviderUrls, WebSettings, build_site, listen
from webhook.secrets import Secrets, read_secrets
from webhook.metrics import Metrics
from webhook.metrics_access import TokenSource, no_token
from webhook.server import Readiness, no_problems
from webhook.settings import ConnectionLimits, SettingsSource

from .config import Config, HttpSettings
from .paysecrets import SecretsReport, check_payment_secrets


def _settings(config: Config, secrets: Secrets, report: SecretsReport) -> WebSettings:
    profiles = tuple(
        PageProfile(name=p.name, billing=p.billing, button=p.button, frame_ancestors=tuple(p.frame_ancestors),
                    language=p.language, payments=tuple(sorted(report.usable(p.name, p.payments).items())),
                    show_pin=p.withheld == "pin")
        for p in config.profiles.values())
    pay = config.payments
    return WebSettings(
        public_url=config.http.public_url, profiles=profiles, accounts=secrets.accounts,
        urls=ProviderUrls(paypal=pay.paypal_api_url, klarna=pay.klarna_api_url, paysafecard=pay.paysafecard_api_url),
        paypal_cert_origins=tuple(pay.paypal_cert_origins) or WebSettings.__dataclass_fields__[
            "paypal_cert_origins"].default,
        default_region=config.sip.default_region, form_key=secrets.form_key,
        form_key_previous=secrets.form_key_previous,
        limits=ConnectionLimits(header_timeout_s=config.http.header_timeout_s,
                                body_timeout_s=config.http.body_timeout_s,
                                idle_timeout_s=config.http.idle_timeout_s,
                                max_connections=config.http.max_connections,
                                max_connections_per_source=config.http.max_connections_per_source))


def served_web_settings(config: Config, secrets: Secrets,
                        report: SecretsReport) -> tuple[WebSettings, tuple[str, ...]]:
    """What the page serves: every payment method whose account has complete credentials (``report``, of
    :func:`b2bua.node.paysecrets.check_payment_secrets`); and, one line each, those left off and why.

    The example config names merchant accounts that no fresh machine has credentials for: the node
    must still serve calls, the balance API and the page (with the methods it can take).
    """
    off = tuple(f"payment method {o.method} of profile {o.profile} is off (not on its top-up page): {o.problem}"
                for o in report.off)
    return _settings(config, secrets, report), off


def web_settings(config: Config, environ=os.environ) -> WebSettings:
    """The web side's settings from ``config`` and its secrets file, read now (tests, the demo)."""
    return served_web_settings(config, read_secrets(config.payments.secrets_file, environ),
                               check_payment_secrets(config, environ))[0]


def start_web(settings: WebSettings | SettingsSource, store, reactor, http: HttpSettings, *,
              providers: dict | None = None, readiness: Readiness = no_problems, metrics: Metrics | None = None,
              metrics_token: TokenSource = no_token):
    """Listen on ``http`` (``[http]``; HTTPS when a certificate is configured); returns the listening port.

    ``settings`` is read at each request when it is a source (the node's holder: reloads apply);
    ``readiness`` (the node's problems, none when it can take work) decides /healthz; ``metrics`` is the
    node's registry, served on /metrics here only to a bearer of ``metrics_token()``.
    """
    site = build_site(settings, store, reactor, providers, readiness, metrics=metrics, metrics_token=metrics_token)
    return listen(site, reactor, http.address, http.port, tls_certificate=http.tls_certificate,
                  tls_private_key=http.tls_private_key)
