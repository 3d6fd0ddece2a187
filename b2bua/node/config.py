"""The prepaid config: its declared schema, and loading it into frozen dataclasses.

``load_config(path)`` reads one TOML file, validates it whole against
:data:`SCHEMA` plus the checks that span keys (a service number in two
profiles, an RTP range upside down...), and either returns a :class:`Config`
or raises :class:`~b2bua.node.schema.ConfigInvalid` listing every problem as
``file:key: reason``.  Nothing here keeps global state: the running server
holds the current ``Config`` and swaps it on a successful reload.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import textwrap
import tomllib
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from billing.pinguard import PinRule
from billing.profile import (DEFAULT_TIMEZONE, BillingProfile, ChargingStart, Fees, FirstCallerTariff,
                             Increment, TopupOption, offer_window_ms)

from media.library import PromptError, recording_frames
from media.tones import RINGBACK_CADENCES, ringback_for_region
from media.workers import default_workers, port_shares

from ..admission import AdmissionSettings
from ..callmedia import NO_RINGBACK, RINGBACK_FILE_MAX_S
from ..transport_tls import ca_bundle_problem
from .schema import (ConfigInvalid, ConfigProblem, Field, Invalid, Relative, Section, boolean, choice, decimal,
                     integer, ip_address, ip_network, list_of, mapping_of, nonempty_string, path, port, string,
                     validate)

DEFAULT_CONFIG_PATH = "conf/prepaid.toml"
CONFIG_ENV = "PREPAID_CONFIG"


# -- converters specific to prepaid ------------------------------------------

def increment(value: Any) -> Increment:
    text = string(value)
    try:
        first, nxt = (int(part) for part in text.split("/"))
    except ValueError:
        raise Invalid(f"must be FIRST/NEXT in seconds like \"60/60\" or \"1/1\", not {text!r}") from None
    if first < 1 or nxt < 1 or first > 3600 or nxt > 3600:
        raise Invalid(f"both parts must be 1..3600 seconds, not {text!r}")
    return Increment(first, nxt)


def _resolve_sqlite_file(url: str, folder: str) -> str:
    """A SQLite URL's relative database file as the config folder's; other URLs as they are."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        parsed = make_url(url)
    except ArgumentError:   # not a URL SQLAlchemy reads: opening the store says so at start
        return url
    database = parsed.database or ""
    if (parsed.get_backend_name() != "sqlite" or not database or database == ":memory:"
            or database.startswith("file:") or os.path.isabs(database)):
        return url
    return parsed.set(database=os.path.normpath(os.path.join(folder, database))).render_as_string(hide_password=False)


#: the store's SQLAlchemy URL; a SQLite file named relatively is the config folder's
store_url = Relative(nonempty_string, _resolve_sqlite_file)

#: what a profile's ``ringback`` names besides a music file: the tones of media.tones, or nothing
RINGBACK_NAMES = (*RINGBACK_CADENCES, NO_RINGBACK)


def _resolve_ringback(value: str, folder: str) -> str:
    """A music file named relatively is the config folder's; a tone's name (or "none") stays as it is."""
    return value if value in RINGBACK_NAMES else path.resolve(value, folder)


#: a profile's ringback: "de", "us", "uk", "none", or a music file (checked whole by _cross_checks)
ringback = Relative(nonempty_string, _resolve_ringback)


def charging_start(value: Any) -> ChargingStart:
    return ChargingStart(choice(*(c.value for c in ChargingStart))(value))


def e164(value: Any) -> str:
    text = string(value)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise Invalid(f"not a phone number in international form (+49...): {text!r}") from None
    if not phonenumbers.is_possible_number(number):
        raise Invalid(f"not a possible phone number: {text!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def sip_uri(value: Any) -> str:
    text = nonempty_string(value)
    if not text.lower().startswith(("sip:", "sips:")):
        raise Invalid(f"must be a sip: or sips: URI, not {text!r}")
    return text


def region(value: Any) -> str:
    text = string(value).upper()
    if text not in phonenumbers.SUPPORTED_REGIONS:
        raise Invalid(f"not a region code that phonenumbers knows (like \"DE\"): {text!r}")
    return text


def calendar_date(value: Any) -> datetime.date:
    """A day: a TOML date (2026-12-01) or the same as a string ("2026-12-01")."""
    if isinstance(value, datetime.datetime):
        raise Invalid(f"must be a day like 2026-12-01 without a time, not {value!r}")
    if isinstance(value, datetime.date):
        return value
    text = string(value)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise Invalid(f"must be a day like 2026-12-01, not {text!r}") from None


def money_cents(value: Any) -> int:
    amount = decimal(Decimal("0"))(value)
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise Invalid(f"must not have fractions of a cent: {value!r}")
    return int(cents)


def origin(value: Any) -> str:
    text = nonempty_string(value)
    if not (text.startswith(("https://", "http://")) or text == "'self'"):
        raise Invalid(f"must be an origin like \"https://www.example.com\", not {text!r}")
    return text.rstrip("/")


def base_url(value: Any) -> str:
    """An http(s) URL without query or fragment (empty: none), with its trailing "/" taken off."""
    text = string(value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise Invalid(f"must be an http:// or https:// URL without query, like \"https://pay.example.com\", not {text!r}")
    return text.rstrip("/")


def timezone(value: Any) -> str:
    """An IANA time zone name that zoneinfo knows ("Europe/Berlin")."""
    text = nonempty_string(value)
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"not a time zone that zoneinfo knows (like \"Europe/Berlin\"): {text!r}") from None
    return text


# -- the schema -------------------------------------------------------------

PROFILE = Section("profile", "one billing profile", fields=(
    Field("service_numbers", list_of(e164, 1), "the numbers (E.164) that reach this profile"),
    Field("agents", list_of(sip_uri, 1), "SIP URIs of the agents, rung in the order of `hunting`"),
    Field("hunting", choice("order", "round_robin"), "how agents are tried", "order"),
    Field("ring_timeout_s", integer(1, 300), "seconds an agent may ring before the next is tried", 30),
    Field("landline_per_minute", decimal(Decimal("0")), "tariff for landline callers, per minute"),
    Field("mobile_per_minute", decimal(Decimal("0")), "tariff for mobile callers, per minute"),
    Field("increment", increment, "billing increments FIRST/NEXT in seconds", Increment(60, 60)),
    Field("charging_starts", charging_start, "when billed time starts", ChargingStart.ANSWER),
    Field("warn_before_s", integer(0, 3600), "seconds before the credit ends when the warning plays", 120),
    Field("connect_charge", money_cents, "charged once when charging starts", 0),
    Field("first_caller_per_minute", decimal(Decimal("0")), "tariff for a caller's first call (unset: none)", None),
    Field("first_caller_period_s", integer(1, 86400), "how long the first-caller tariff lasts in that call", 300),
    # a provider advertises the offer for a season: outside these days callers are rated as any other and
    # keep their first call for later; days in the profile's time zone (Europe/Berlin without `timezone`)
    Field("first_caller_from", calendar_date, "first day of the first-caller offer (unset: no start)", None),
    Field("first_caller_until", calendar_date, "last day of the first-caller offer, included (unset: no end)", None),
    Field("topups", mapping_of(money_cents, money_cents), "top-up amounts and the bonus for each, {\"10\" = \"1\"}", {}),
    Field("button", nonempty_string, "the top-up button's id, in /topup/<button>"),
    Field("frame_ancestors", list_of(origin), "websites allowed to embed the top-up page", ()),
    Field("answer_mode", choice("answer", "early_media", "agent"),
          "speak the minutes after answering, or as 183 early media; or no announcement: answer when the agent does",
          "answer"),
    Field("announce_tariff", boolean, "announce the per-minute tariff before the minutes", False),
    Field("withheld", choice("reject", "pin"), "a caller without a usable number: told to show it, or asked for a PIN", "reject"),
    Field("language", choice("de", "en"), "language of the announcements and the page", "de"),
    Field("agent_warning", choice("words", "tone"),
          "how the agent hears the credit warning: short spoken words, or three beeps", "words"),
    Field("prompts_dir", path, "a folder of own recordings that replace the built-in prompts", ""),
    Field("ringback", ringback, "what the caller hears while agents ring: the tone of \"de\" (425 Hz, 1 s on "
          "4 s off), \"us\" (440+480 Hz, 2 on 4 off) or \"uk\" (400+450 Hz, 0.4 0.2 0.4 2.0), a music file "
          "(looped), or \"none\" (unset: the tone of [sip] default_region)", None),
    Field("currency", choice("EUR"), "currency of tariffs and balances", "EUR"),
    Field("provider", string, "the provider this profile belongs to, for the statement", ""),
    Field("fee_topup_percent", decimal(Decimal("0")), "platform fee, percent of top-ups", Decimal("0")),
    Field("fee_per_transaction", money_cents, "platform fee per top-up transaction", 0),
    Field("fee_platform_per_minute", decimal(Decimal("0")), "platform fee per billed minute", Decimal("0")),
    Field("payments", mapping_of(choice("paypal", "klarna", "paysafecard"), nonempty_string),
          "payment method -> merchant account name (credentials in the secrets file)", {}),
    Field("timezone", timezone, "the zone of this profile's days and months: the times the portal shows, and "
          "where a month's statement begins and ends (portal and prepaid statement)", "Europe/Berlin"),
    Field("max_manual", money_cents,
          "the most one manual transaction (portal, prepaid topup/adjust, balance API) may credit or take, "
          "bonus not counted: a mistyped amount is refused instead of booked", 50_000),
))

SCHEMA = Section("prepaid", "the prepaid config", tables=(
    Section("node", "this process among several", fields=(
        Field("id", nonempty_string, "a name unique among the nodes sharing a store", ""),
        Field("log_level", choice("debug", "info", "warn", "error"),
              "least level logged: info gives a line per call and per event worth reading; debug every call's steps",
              "info"),
    ), required=False),
    Section("sip", "the SIP side", fields=(
        Field("address", ip_address, "address to listen on"),
        Field("udp_port", port, "UDP port (0: off)", 5060),
        Field("tcp_port", port, "TCP port (0: off)", 5060),
        Field("tls_port", port, "TLS port (0: off)", 0),
        Field("tls_certificate", path, "PEM certificate chain for TLS", ""),
        Field("tls_private_key", path, "PEM private key for TLS", ""),
        Field("tls_client_ca", path, "PEM CA bundle: when set, carriers must present a certificate it signed", ""),
        Field("tls_server_ca", path,
              "PEM CA bundle that servers the node connects to over TLS (agents, carriers) must be signed by; "
              "empty: the system's trust store", ""),
        Field("default_region", region, "region for numbers given without country code", "DE"),
        Field("max_call_duration_s", integer(60, 86400), "hard limit on any call", 14400),
        Field("session_expires_s", integer(90, 86400), "RFC 4028 session interval we ask for", 1800),
        Field("min_se_s", integer(90, 86400), "RFC 4028 smallest session interval we accept", 90),
        Field("user_agent", string, "our User-Agent and Server header", "prepaid"),
        Field("probe_interval_s", integer(0, 86400), "OPTIONS to every agent this often; unanswered ones are rung last (0: off)", 30),
        Field("connection_idle_timeout_s", integer(1, 86400),
              "a TCP/TLS connection that brings no whole message or keep-alive this long is closed "
              "(each open one holds a descriptor)", 120),
        Field("message_deadline_s", integer(1, 300),
              "once a message's first byte came on TCP/TLS, the whole message must come within this; "
              "else the connection is closed (a slowloris trickling a byte every few seconds)", 10),
        Field("max_connections", integer(1, 1_000_000),
              "TCP/TLS connections accepted from all sources together; one more is closed at once "
              "(descriptors are left for RTP, the store and HTTP)", 2048),
        Field("max_connections_per_source", integer(1, 1_000_000),
              "TCP/TLS connections accepted from one source address; one more is closed at once "
              "(a carrier or proxy needs a few, a flood from one address does not get them all)", 64),
    )),
    Section("carriers", "who may send calls and assert identities", fields=(
        Field("trusted", list_of(ip_network),
              "addresses and CIDR ranges whose calls we take and whose From and P-Asserted-Identity we believe", ()),
        Field("untrusted", choice("refuse", "pin"),
              "a call from any other address: refused (403), or answered and identified only by the customer PIN",
              "refuse"),
    )),
    Section("admission", "how many new calls a source address may start", fields=(
        Field("invites_per_s", integer(0, 100000), "new INVITEs a second per untrusted source address (0: no limit)", 10),
        Field("invite_burst", integer(1, 100000), "new INVITEs at once per untrusted source address", 20),
        Field("trusted_invites_per_s", integer(0, 100000),
              "new INVITEs a second per trusted carrier address (0: no limit)", 0),
        Field("trusted_invite_burst", integer(1, 100000), "new INVITEs at once per trusted carrier address", 200),
        Field("refusal_ports_percent", integer(0, 100),
              "share of the RTP port pairs that calls hearing only a refusal may hold; beyond it they get a SIP "
              "status without words", 20),
    ), required=False),
    Section("http", "the web side", fields=(
        Field("address", ip_address, "address to listen on"),
        Field("port", port, "port", 8080),
        Field("public_url", base_url,
              "the URL callers' browsers reach us at: the return and notify URLs sent to payment providers "
              "are built from it (needed when a profile takes payments)", ""),
        Field("tls_certificate", path, "PEM certificate: serve HTTPS", ""),
        Field("tls_private_key", path, "PEM private key for HTTPS", ""),
        Field("header_timeout_s", integer(1, 300),
              "a request's line and headers must arrive within this many seconds of its first byte "
              "(a client sending a byte at a time holds a descriptor until then)", 10),
        Field("body_timeout_s", integer(1, 3600),
              "a request's body must arrive within this many seconds of the end of its headers", 30),
        Field("idle_timeout_s", integer(1, 3600), "a connection that sends nothing this many seconds is closed", 60),
        Field("max_connections", integer(1, 100_000),
              "open HTTP connections at most; one more is closed at once (descriptors are shared with SIP and RTP)",
              256),
        Field("max_connections_per_source", integer(1, 100_000),
              "open HTTP connections from one address at most; one more is closed at once "
              "(behind a reverse proxy every client is its address: raise it to max_connections)", 32),
        Field("access_log", path,
              "a file for the access lines of the public and portal listeners, reopened on SIGHUP (empty: they "
              "are the node log's debug lines)", ""),
    )),
    Section("store", "where balances live", fields=(
        Field("url", store_url, "SQLAlchemy URL: sqlite:///../var/prepaid.db (a relative file is the config "
                                "folder's) or postgresql+psycopg://..."),
        Field("lease_s", integer(5, 3600), "how long a crashed node's calls stay open before another settles them", 60),
        Field("reconcile_interval_s", integer(1, 3600), "how often expired leases are looked for", 30),
        Field("renew_interval_s", integer(1, 600),
              "how often a node renews its calls' leases: a node that dies mid-call bills its calls up to the "
              "last renewal, so this is the most talk such a call goes unbilled (below lease_s / 2)", 5),
    )),
    Section("media", "the RTP relay", fields=(
        Field("address", ip_address, "address for RTP ports, given in our SDP"),
        Field("rtp_port_min", integer(1024, 65534), "lowest RTP port", 20000),
        Field("rtp_port_max", integer(1025, 65535), "highest RTP port", 29999),
        Field("silence_timeout_s", integer(5, 3600), "a leg that sends nothing this long is dead", 60),
        Field("workers", integer(0, 256),
              "media worker processes, each relaying the calls on its share of the RTP ports (0: relay in the "
              "node's own process); default: the cores but one, at least 1", default_workers()),
    )),
    Section("payments", "payment provider endpoints", fields=(
        Field("secrets_file", path, "file with merchant credentials (kept out of conf/); $PREPAID_SECRETS wins", ""),
        Field("require_all", boolean,
              "true: `prepaid run` refuses to start while a payment method a profile names lacks credentials; "
              "false: it starts, logs each such method once and leaves it off the top-up page", False),
        Field("paypal_api_url", string, "PayPal REST base URL", "https://api-m.paypal.com"),
        Field("klarna_api_url", string, "Klarna API base URL", "https://api.klarna.com"),
        Field("paysafecard_api_url", string, "paysafecard REST base URL", "https://api.paysafecard.com"),
        Field("paypal_cert_origins", list_of(origin), "origins PayPal webhook signing certificates are fetched from",
              ("https://api.paypal.com", "https://api-m.paypal.com", "https://api.sandbox.paypal.com",
               "https://api-m.sandbox.paypal.com")),
    ), required=False),
    Section("pin", "how many wrong customer PINs (profiles with withheld = \"pin\") a caller may type", fields=(
        Field("max_failures", integer(1, 100),
              "wrong PINs from one source address, or for one account, that lock PIN entry", 5),
        Field("carrier_max_failures", integer(1, 100000),
              "wrong PINs from one trusted carrier address (every withheld caller of that carrier shares it) "
              "that lock PIN entry from there", 50),
        Field("window_s", integer(1, 86400), "seconds within which those wrong PINs count together", 900),
        Field("lockout_s", integer(1, 604800), "seconds PIN entry stays locked after the last of them", 1800),
    ), required=False),
    Section("portal", "the provider portal: its own listener, logins and sessions", fields=(
        Field("address", ip_address, "address the portal listens on", "127.0.0.1"),
        Field("port", port, "port of the portal (0: one the system picks)", 8090),
        Field("public_url", base_url,
              "the URL browsers reach the portal at; https:// (a TLS proxy in front) marks its cookies Secure", ""),
        Field("tls_certificate", path, "PEM certificate: the portal serves HTTPS itself", ""),
        Field("tls_private_key", path, "PEM private key for the portal's HTTPS", ""),
        Field("session_idle_s", integer(60, 604800), "a login unused this many seconds has to log in again", 1800),
        Field("login_max_failures", integer(1, 1000),
              "wrong passwords for one user name, or from one address, that lock logging in", 5),
        Field("login_window_s", integer(1, 86400), "seconds within which those wrong passwords count together", 900),
        Field("login_lockout_s", integer(1, 604800), "seconds logging in stays locked after the last of them", 900),
    ), required=False),
    Section("profiles", "billing profiles by name", entry=PROFILE),
))


#: the config keys a running node reads only when it starts: listening addresses and ports, TLS files,
#: the store, the RTP port range, the connection limits its listeners were built with
RESTART_ONLY: tuple[str, ...] = (
    "node.id",
    "sip.address", "sip.udp_port", "sip.tcp_port", "sip.tls_port", "sip.tls_certificate", "sip.tls_private_key",
    "sip.tls_client_ca", "sip.tls_server_ca", "sip.user_agent", "sip.probe_interval_s",
    "sip.connection_idle_timeout_s", "sip.message_deadline_s", "sip.max_connections", "sip.max_connections_per_source",
    "http.address", "http.port", "http.tls_certificate", "http.tls_private_key", "http.header_timeout_s",
    "http.body_timeout_s", "http.idle_timeout_s", "http.max_connections", "http.max_connections_per_source",
    "portal.address", "portal.port", "portal.tls_certificate", "portal.tls_private_key",
    "store.url", "store.lease_s", "store.reconcile_interval_s", "store.renew_interval_s",
    "media.address", "media.rtp_port_min", "media.rtp_port_max", "media.silence_timeout_s", "media.workers",
)


#: keys an earlier version read, and the key that took each one's place: a file with the old one is told so
RENAMED: dict[str, str] = {"sip.tls_trusted_ca": "sip.tls_server_ca"}


def restart_only_summary() -> list[str]:
    """:data:`RESTART_ONLY` by section, for ``check-config``'s summary."""
    sections: dict[str, list[str]] = {}
    for key in RESTART_ONLY:
        section, name = key.split(".")
        sections.setdefault(section, []).append(name)
    lines = []
    for section, names in sections.items():
        lines.extend(textwrap.wrap(", ".join(names), width=98, initial_indent=f"    [{section}] ",
                                   subsequent_indent=" " * (len(section) + 7)))
    return lines


# -- the typed result ---------------------------------------------------------

@dataclass(frozen=True)
class SipSettings:
    address: str
    udp_port: int
    tcp_port: int
    tls_port: int
    tls_certificate: str
    tls_private_key: str
    tls_client_ca: str
    default_region: str
    max_call_duration_s: int
    session_expires_s: int
    min_se_s: int
    user_agent: str
    tls_server_ca: str = ""
    probe_interval_s: int = 30
    connection_idle_timeout_s: int = 120
    message_deadline_s: int = 10
    max_connections: int = 2048
    max_connections_per_source: int = 64


@dataclass(frozen=True)
class HttpSettings:
    address: str
    port: int
    public_url: str
    tls_certificate: str
    tls_private_key: str
    header_timeout_s: int
    body_timeout_s: int
    idle_timeout_s: int
    max_connections: int
    max_connections_per_source: int
    access_log: str = ""


@dataclass(frozen=True)
class StoreSettings:
    url: str
    lease_s: int
    reconcile_interval_s: int
    renew_interval_s: int = 5


@dataclass(frozen=True)
class MediaSettings:
    address: str
    rtp_port_min: int
    rtp_port_max: int
    silence_timeout_s: int
    #: media worker processes (0: the relay and player in the node's process); see media.workers
    workers: int = 0


@dataclass(frozen=True)
class PaymentSettings:
    secrets_file: str
    paypal_api_url: str
    klarna_api_url: str
    paysafecard_api_url: str
    paypal_cert_origins: tuple[str, ...] = ()
    #: refuse to start while a payment method a profile names lacks credentials
    require_all: bool = False


@dataclass(frozen=True)
class PinSettings:
    max_failures: int = 5
    window_s: int = 900
    lockout_s: int = 1800
    carrier_max_failures: int = 50

    def rule(self) -> PinRule:
        """The limit for a source address that is no trusted carrier, and for every account."""
        return PinRule(self.max_failures, self.window_s, self.lockout_s)

    def carrier_rule(self) -> PinRule:
        """The limit for a trusted carrier's address: all its withheld callers arrive from it, so a few
        mistyped PINs must not lock them all out (the per-account limit still holds)."""
        return PinRule(self.carrier_max_failures, self.window_s, self.lockout_s)


@dataclass(frozen=True)
class Profile:
    """One ``[profiles.NAME]``: the money side for ``billing/``, the rest for routing and the page."""

    name: str
    billing: BillingProfile
    service_numbers: tuple[str, ...]
    agents: tuple[str, ...]
    hunting: str
    ring_timeout_s: int
    button: str
    frame_ancestors: tuple[str, ...]
    answer_mode: str
    announce_tariff: bool
    withheld: str
    language: str
    prompts_dir: str
    payments: dict[str, str]
    #: what the caller hears while agents ring: "de", "us", "uk", "none", or a music file's absolute path
    ringback: str = "de"
    #: the zone the portal shows this profile's times in (IANA name)
    timezone: str = "Europe/Berlin"
    #: how the agent hears the credit warning: "words" (short, spoken, mixed) or "tone" (three beeps)
    agent_warning: str = "words"


@dataclass(frozen=True)
class PortalSettings:
    """``[portal]``: where the provider portal listens, and how its logins are kept and guarded."""

    address: str = "127.0.0.1"
    port: int = 8090
    public_url: str = ""
    tls_certificate: str = ""
    tls_private_key: str = ""
    session_idle_s: int = 1800
    login_max_failures: int = 5
    login_window_s: int = 900
    login_lockout_s: int = 900

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: the portal's own TLS, or a TLS proxy named by an https public_url."""
        return bool(self.tls_certificate) or self.public_url.startswith("https://")

    def login_rule(self) -> PinRule:
        """Wrong passwords per user name and per address: so many within the window lock for the lockout."""
        return PinRule(self.login_max_failures, self.login_window_s, self.login_lockout_s)


@dataclass(frozen=True)
class Config:
    path: str
    node_id: str
    sip: SipSettings
    trusted_carriers: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    http: HttpSettings
    store: StoreSettings
    media: MediaSettings
    payments: PaymentSettings
    profiles: dict[str, Profile]
    log_level: str = "info"
    pin: PinSettings = PinSettings()
    #: a call from outside ``trusted_carriers``: "refuse" (403) or "pin" (identified only by the customer PIN)
    untrusted: str = "refuse"
    admission: AdmissionSettings = AdmissionSettings()
    portal: PortalSettings = PortalSettings()

    def profile_for_number(self, e164_number: str) -> Profile | None:
        for profile in self.profiles.values():
            if e164_number in profile.service_numbers:
                return profile
        return None

    def profile_for_button(self, button: str) -> Profile | None:
        for profile in self.profiles.values():
            if profile.button == button:
                return profile
        return None

    def summary(self) -> str:
        """What this config would serve, for ``prepaid check-config``."""
        s = self.sip
        lines = [f"{self.path}: OK"]
        listen = [f"{proto} {s.address}:{p}" for proto, p in
                  (("udp", s.udp_port), ("tcp", s.tcp_port), ("tls", s.tls_port)) if p]
        lines.append(f"  SIP on {', '.join(listen) or 'no transport'}")
        lines.append(f"  trusted carriers: {', '.join(str(n) for n in self.trusted_carriers) or 'none'}; "
                     f"calls from elsewhere: {'PIN only' if self.untrusted == 'pin' else 'refused'}")
        lines.append(f"  HTTP on {self.http.address}:{self.http.port}")
        lines.append(f"  provider portal on {self.portal.address}:{self.portal.port}")
        lines.append(f"  store: {redact_url(self.store.url)}")
        workers = f"media workers: {self.media.workers}" if self.media.workers else "media in the node's process"
        lines.append(f"  RTP ports {self.media.rtp_port_min}-{self.media.rtp_port_max} on {self.media.address}, {workers}")
        for p in self.profiles.values():
            b = p.billing
            lines.append(
                f"  profile {p.name}: {', '.join(p.service_numbers)} -> {', '.join(p.agents)}; "
                f"{b.landline_per_minute} landline / {b.mobile_per_minute} mobile {b.currency}/min, "
                f"{b.increment}, charging from {b.charging_starts.value}, warning {b.warn_before_s} s before the end "
                f"(the agent hears {p.agent_warning}), "
                f"button {p.button!r}, ringback {p.ringback}")
        lines.append("  restart only (a reload applies every other setting, names a change to these and leaves them):")
        lines.extend(restart_only_summary())
        return "\n".join(lines)


def redact_url(url: str) -> str:
    """A store URL without its password, fit for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


def _cross_checks(raw: dict[str, Any], file: str) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    media = raw.get("media", {})
    store = raw.get("store", {})
    if "renew_interval_s" in store and "lease_s" in store and store["renew_interval_s"] * 2 > store["lease_s"]:
        problems.append(ConfigProblem(file, "store.renew_interval_s",
                                      "must be at most half of store.lease_s (a late renewal must not let "
                                      "another node settle a live call)"))
    if "rtp_port_min" in media and "rtp_port_max" in media and media["rtp_port_min"] >= media["rtp_port_max"]:
        problems.append(ConfigProblem(file, "media.rtp_port_max", "must be above media.rtp_port_min"))
    elif "rtp_port_min" in media and "rtp_port_max" in media and media.get("workers"):
        try:
            port_shares(media["rtp_port_min"], media["rtp_port_max"], media["workers"])
        except ValueError as exc:
            problems.append(ConfigProblem(file, "media.workers", str(exc)))
    sip = raw.get("sip", {})
    if sip.get("tls_port"):
        for key in ("tls_certificate", "tls_private_key"):
            if not sip.get(key):
                problems.append(ConfigProblem(file, f"sip.{key}", "needed when sip.tls_port is set"))
    for key in ("tls_client_ca", "tls_server_ca"):
        problem = ca_bundle_problem(sip[key]) if isinstance(sip.get(key), str) and sip[key] else None
        if problem is not None:
            problems.append(ConfigProblem(file, f"sip.{key}", problem))
    http = raw.get("http", {})
    if bool(http.get("tls_certificate")) != bool(http.get("tls_private_key")):
        problems.append(ConfigProblem(file, "http.tls_private_key", "HTTPS needs both tls_certificate and tls_private_key"))
    portal = raw.get("portal", {})
    if bool(portal.get("tls_certificate")) != bool(portal.get("tls_private_key")):
        problems.append(ConfigProblem(file, "portal.tls_private_key",
                                      "HTTPS needs both tls_certificate and tls_private_key"))
    paying = sorted(name for name, p in raw.get("profiles", {}).items() if p.get("payments"))
    if paying and "public_url" in http and not http["public_url"]:
        problems.append(ConfigProblem(
            file, "http.public_url", f"needed when a profile takes payments (profiles.{paying[0]}.payments): the "
            "return and notify URLs sent to the payment provider are built from it, never from a request's Host header"))
    for name, p in raw.get("profiles", {}).items():
        music = p.get("ringback")
        if music is not None and music not in RINGBACK_NAMES:
            try:
                recording_frames(music, max_s=RINGBACK_FILE_MAX_S)
            except PromptError as exc:
                problems.append(ConfigProblem(file, f"profiles.{name}.ringback", f"not a music file to play: {exc} "
                                              f"(or one of {', '.join(repr(n) for n in RINGBACK_NAMES)})"))
        first_day, last_day = p.get("first_caller_from"), p.get("first_caller_until")
        if isinstance(first_day, datetime.date) and isinstance(last_day, datetime.date) and last_day < first_day:
            problems.append(ConfigProblem(file, f"profiles.{name}.first_caller_until",
                                          f"{last_day} is before first_caller_from ({first_day})"))
    seen_numbers: dict[str, str] = {}
    seen_buttons: dict[str, str] = {}
    seen_accounts: dict[tuple[str, str], str] = {}
    for name, p in raw.get("profiles", {}).items():
        for number in p.get("service_numbers", ()):
            if number in seen_numbers:
                problems.append(ConfigProblem(file, f"profiles.{name}.service_numbers",
                                              f"{number} is already a service number of profile {seen_numbers[number]}"))
            seen_numbers[number] = name
        button = p.get("button")
        if button is not None:
            if button in seen_buttons:
                problems.append(ConfigProblem(file, f"profiles.{name}.button",
                                              f"{button!r} is already the button of profile {seen_buttons[button]}"))
            seen_buttons[button] = name
        provider = p.get("provider", "")
        for method, account in p.get("payments", {}).items():
            other = seen_accounts.get((method, account))
            if other is not None and other[1] != provider:
                problems.append(ConfigProblem(file, f"profiles.{name}.payments.{method}",
                                              f"merchant account {account!r} belongs to provider {other[1]!r} (profile {other[0]})"))
            seen_accounts[(method, account)] = (name, provider)
    if not raw.get("profiles") and "profiles" in raw:
        problems.append(ConfigProblem(file, "profiles", "at least one profile is needed"))
    return problems


def _profile(name: str, p: dict[str, Any], default_region: str) -> Profile:
    first = None
    if p["first_caller_per_minute"] is not None:
        from_ms, until_ms = offer_window_ms(p["first_caller_from"], p["first_caller_until"],
                                            p.get("timezone") or DEFAULT_TIMEZONE)
        first = FirstCallerTariff(p["first_caller_per_minute"], p["first_caller_period_s"], from_ms, until_ms)
    billing = BillingProfile(
        name=name,
        landline_per_minute=p["landline_per_minute"],
        mobile_per_minute=p["mobile_per_minute"],
        increment=p["increment"],
        charging_starts=p["charging_starts"],
        warn_before_s=p["warn_before_s"],
        connect_charge_cents=p["connect_charge"],
        first_caller=first,
        topups=tuple(TopupOption(a, b) for a, b in sorted(p["topups"].items())),
        fees=Fees(p["fee_topup_percent"], p["fee_per_transaction"], p["fee_platform_per_minute"]),
        currency=p["currency"],
        provider=p["provider"] or name,
        max_manual_cents=p["max_manual"],
        timezone=p["timezone"],
    )
    return Profile(
        name=name, billing=billing, service_numbers=p["service_numbers"], agents=p["agents"],
        hunting=p["hunting"], ring_timeout_s=p["ring_timeout_s"], button=p["button"],
        frame_ancestors=p["frame_ancestors"], answer_mode=p["answer_mode"],
        announce_tariff=p["announce_tariff"], withheld=p["withheld"], language=p["language"],
        prompts_dir=p["prompts_dir"], payments=dict(p["payments"]), timezone=p["timezone"],
        agent_warning=p["agent_warning"],
        ringback=p["ringback"] if p["ringback"] is not None else ringback_for_region(default_region),
    )


def parse_config(text: str, file: str, folder: str | None = None) -> Config:
    """Validate TOML ``text`` (named ``file`` in messages) into a :class:`Config`; with ``folder`` (the config
    file's), relative file names in it resolve against that folder."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid([ConfigProblem(file, "(syntax)", f"not valid TOML: {exc}")]) from None
    raw, problems = validate(doc, SCHEMA, file, folder=folder)
    problems = [ConfigProblem(p.file, p.key, f"{p.reason}: now {RENAMED[p.key]}") if p.key in RENAMED else p
                for p in problems]
    problems.extend(_cross_checks(raw, file))
    if problems:
        raise ConfigInvalid(problems)
    return Config(
        path=file,
        node_id=raw["node"]["id"] or socket.gethostname(),
        sip=SipSettings(**raw["sip"]),
        trusted_carriers=raw["carriers"]["trusted"],
        http=HttpSettings(**raw["http"]),
        store=StoreSettings(**raw["store"]),
        media=MediaSettings(**raw["media"]),
        payments=PaymentSettings(**raw["payments"]),
        profiles={name: _profile(name, p, raw["sip"]["default_region"]) for name, p in raw["profiles"].items()},
        log_level=raw["node"]["log_level"],
        pin=PinSettings(**raw["pin"]),
        untrusted=raw["carriers"]["untrusted"],
        admission=AdmissionSettings(**raw["admission"]),
        portal=PortalSettings(**raw["portal"]),
    )


def load_config(path: str) -> Config:
    """Read and validate the file at ``path``; raises ConfigInvalid with every problem."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigInvalid([ConfigProblem(path, "(file)", f"cannot read: {exc.strerror}")]) from None
    return parse_config(text, path, os.path.dirname(os.path.abspath(path)))


def default_config_path() -> str:
    return os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
