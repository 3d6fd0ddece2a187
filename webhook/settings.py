"""The web side's settings: frozen dataclasses built by whoever reads the config.

``webhook/`` never reads ``b2bua``'s config itself; ``b2bua/node/webapp.py`` turns
the B2BUA's ``Config`` and the secrets file into a :class:`WebSettings`, anew
at each reload.  The parts of the web side hold a :data:`SettingsSource` and
call it at each request, so that a reload applies to the next request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from billing.profile import BillingProfile

#: the hosts PayPal serves its webhook signing certificates from
PAYPAL_CERT_ORIGINS = ("https://api.paypal.com", "https://api-m.paypal.com",
                       "https://api.sandbox.paypal.com", "https://api-m.sandbox.paypal.com")

METHODS = ("paypal", "klarna", "paysafecard")


@dataclass(frozen=True)
class MerchantAccount:
    """One merchant account at one payment provider (credentials from the secrets file).

    ``client_id``/``secret``: PayPal client credentials, Klarna API username and
    password, paysafecard API key (``secret``, ``client_id`` unused).
    ``webhook_id``: PayPal's id of the webhook registration (part of the signed string).
    """

    name: str
    client_id: str = field(repr=False, default="")
    secret: str = field(repr=False, default="")
    webhook_id: str = ""

    def __repr__(self) -> str:  # never print credentials
        return f"MerchantAccount({self.name!r})"


@dataclass(frozen=True)
class PageProfile:
    """What the web side needs of one billing profile."""

    name: str
    billing: BillingProfile
    button: str
    frame_ancestors: tuple[str, ...] = ()
    language: str = "de"
    #: payment method -> merchant account name
    payments: tuple[tuple[str, str], ...] = ()
    #: callers who withhold their number identify with a PIN: show it after a completed payment
    show_pin: bool = False

    def account_for(self, method: str) -> str | None:
        return dict(self.payments).get(method)

    @property
    def methods(self) -> tuple[str, ...]:
        names = dict(self.payments)
        return tuple(m for m in METHODS if m in names)


@dataclass(frozen=True)
class ProviderUrls:
    paypal: str = "https://api-m.paypal.com"
    klarna: str = "https://api.klarna.com"
    paysafecard: str = "https://api.paysafecard.com"


@dataclass(frozen=True)
class ConnectionLimits:
    """What one HTTP client may hold of the listener (see :mod:`webhook.connections`)."""

    #: a request's line and headers must arrive within this of its first byte
    header_timeout_s: int = 10
    #: a request's body must arrive within this of the end of its headers
    body_timeout_s: int = 30
    #: a connection that sends nothing this long is closed
    idle_timeout_s: int = 60
    #: open connections in all; one more is closed at once
    max_connections: int = 256
    #: open connections from one source address; one more is closed at once
    max_connections_per_source: int = 32


@dataclass(frozen=True)
class WebSettings:
    """Everything ``webhook.server.build_site`` needs besides the store and the reactor."""

    public_url: str
    profiles: tuple[PageProfile, ...]
    accounts: tuple[MerchantAccount, ...] = ()
    urls: ProviderUrls = ProviderUrls()
    paypal_cert_origins: tuple[str, ...] = PAYPAL_CERT_ORIGINS
    default_region: str = "DE"
    #: key the page signs its form tokens with (``[web] form_key`` of the secrets file; random per process
    #: when empty, and then a form does not survive a restart nor cross to another node)
    form_key: bytes = field(repr=False, default=b"")
    #: the key before the last rotation: tokens it signed are still accepted until they expire
    form_key_previous: bytes = field(repr=False, default=b"")
    max_body_bytes: int = 64 * 1024
    #: requests per client address per minute on the public page
    page_rate_per_min: int = 60
    provider_timeout_s: float = 10.0
    provider_attempts: int = 3
    provider_retry_delay_s: float = 0.5
    limits: ConnectionLimits = ConnectionLimits()

    def profile_by_button(self, button: str) -> PageProfile | None:
        for p in self.profiles:
            if p.button == button:
                return p
        return None

    def profile(self, name: str) -> PageProfile | None:
        for p in self.profiles:
            if p.name == name:
                return p
        return None

    def account(self, name: str) -> MerchantAccount | None:
        for a in self.accounts:
            if a.name == name:
                return a
        return None


#: the web settings in force, asked at each request (a reload swaps what it returns)
SettingsSource = Callable[[], WebSettings]


def settings_source(settings: Union[WebSettings, SettingsSource]) -> SettingsSource:
    """``settings`` as a source: fixed settings (tests, benchmarks) always answer themselves."""
    if isinstance(settings, WebSettings):
        return lambda: settings
    return settings


class ReadsSettings:
    """For the web side's parts: ``self.settings`` is what the source held in ``_settings`` answers now.

    A handler that awaits reads it once into a local, so that one request sees one config.
    """

    _settings: SettingsSource

    @property
    def settings(self) -> WebSettings:
        return self._settings()
