"""The web side for ``prepaid run``: :class:`webhook.WebSettings` from the B2BUA's config and secrets, and the Site.

    settings, unpaid = served_web_settings(config, secrets)   # at start and at each reload
    port = start_web(lambda: holder.snapshot.web, store, reactor, config.http)

Merchant credentials and form keys come from the secrets file (``$PREPAID_SECRETS`` or
``[payments] secrets_file``, read by :func:`webhook.secrets.read_secrets`); a profile
naming an account missing there has that method left off its page, and is reported.
"""

from __future__ import annotations

import dataclasses
import os

from webhook import PageProfile, ProviderUrls, WebSettings, build_site, listen
from webhook.secrets import Secrets, read_secrets
from webhook.server import Readiness, no_problems
from webhook.settings import ConnectionLimits, SettingsSource

from .config import Config, HttpSettings


class WebConfigError(Exception):
    """The web side cannot start with this config and secrets (the message says why)."""


def unpaid_methods(config: Config, secrets: Secrets) -> list[str]:
    """Each ``profiles.P.payments.METHOD: account 'A'`` whose account the secrets file does not name."""
    known = {a.name for a in secrets.accounts}
    return sorted({f"profiles.{p.name}.payments.{m}: account {a!r}" for p in config.profiles.values()
                   for m, a in p.payments.items() if a not in known})


def _settings(config: Config, secrets: Secrets) -> WebSettings:
    profiles = tuple(
        PageProfile(name=p.name, billing=p.billing, button=p.button, frame_ancestors=tuple(p.frame_ancestors),
                    language=p.language, payments=tuple(sorted(p.payments.items())), show_pin=p.withheld == "pin")
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


def web_settings(config: Config, environ=os.environ, *, secrets: Secrets | None = None) -> WebSettings:
    """The web side's settings from ``config`` and the secrets (read from the file when not given);
    raises :class:`WebConfigError` when a profile names an account without credentials."""
    secrets = read_secrets(config.payments.secrets_file, environ) if secrets is None else secrets
    missing = unpaid_methods(config, secrets)
    if missing:
        raise WebConfigError("merchant accounts without credentials in the secrets file: " + "; ".join(missing))
    return _settings(config, secrets)


def served_web_settings(config: Config, secrets: Secrets) -> tuple[WebSettings, list[str]]:
    """What the page serves: every payment method whose account has credentials; and those left off.

    The example config names merchant accounts that no fresh machine has credentials for: the node
    must still serve calls, the balance API and the page (with the methods it can take).
    """
    missing = unpaid_methods(config, secrets)
    known = {a.name for a in secrets.accounts}
    paid = {name: dataclasses.replace(p, payments={m: a for m, a in p.payments.items() if a in known})
            for name, p in config.profiles.items()}
    return _settings(dataclasses.replace(config, profiles=paid), secrets), missing


def start_web(settings: WebSettings | SettingsSource, store, reactor, http: HttpSettings, *,
              providers: dict | None = None, readiness: Readiness = no_problems):
    """Listen on ``http`` (``[http]``; HTTPS when a certificate is configured); returns the listening port.

    ``settings`` is read at each request when it is a source (the node's holder: reloads apply);
    ``readiness`` (the node's problems, none when it can take work) decides /healthz.
    """
    site = build_site(settings, store, reactor, providers, readiness)
    return listen(site, reactor, http.address, http.port, tls_certificate=http.tls_certificate,
                  tls_private_key=http.tls_private_key)
