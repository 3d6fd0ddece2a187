"""What a portal page is given and what it gives back: the contract between the portal's server and its pages.

The portal (``webhook.portal.server``) does the HTTP: the login, the session
cookie, the CSRF token, the profile in the URL (``/p/<profile>/<page>``) checked
against the user's profiles (404 when it is not one of theirs), the layout and
the security headers.  A page is a plain function of a :class:`PortalContext`
that returns (or fires with) one of :class:`Html`, :class:`Csv` or
:class:`Redirect`; it builds its HTML with ``twisted.web.template.tags`` (which
escapes every string it is given), reads and writes through ``ctx.store`` (the
``billing.store.Store``) always under ``ctx.profile``, and says every word
through ``ctx.t`` (German and English, per user).

Pages are registered as :class:`Route` values by their modules under
``webhook/portal/pages/``; each module keeps its own strings (``STRINGS``).  A
page never decides who may see a profile: the server has, before it is called.
Tests build a context with :func:`context_for` and assert on the page's output.
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

OPERATOR = "operator"
PROVIDER = "provider"


@dataclass(frozen=True)
class PortalUser:
    """A portal login: an operator sees every profile, a provider only ``profiles``."""

    name: str
    role: str                        # OPERATOR or PROVIDER
    profiles: tuple[str, ...] = ()   # a provider's profiles; ignored for an operator
    language: str = "de"

    def may_see(self, profile: str) -> bool:
        return self.role == OPERATOR or profile in self.profiles

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


@dataclass(frozen=True)
class Html:
    """A page: its title (the tab and the heading) and its body (a ``twisted.web.template`` tag or a list)."""

    title: str
    body: Any
    status: int = 200


@dataclass(frozen=True)
class Csv:
    """A download: ``filename`` and rows (the first is the header), written as UTF-8 CSV with ';' for Excel."""

    filename: str
    rows: list[list[str]]


@dataclass(frozen=True)
class Redirect:
    """After a POST (PRG): where to go, and an optional notice shown once there (a ``ctx.t`` key's text)."""

    location: str
    notice: str = ""


#: page(ctx) -> Html | Csv | Redirect, or a Deferred (or coroutine) firing with one
Page = Callable[["PortalContext"], Any]


@dataclass(frozen=True)
class Route:
    """One page: ``/p/<profile>/<path>`` (``path`` may be "" for the overview), its methods and its menu label.

    ``nav`` is the ``ctx.t`` key of its menu entry (None: not in the menu); ``operator_only`` pages are 404 for
    providers; ``profile_scoped`` False makes it ``/<path>`` (pages above the profiles, e.g. the audit log of
    an operator, the list of profiles)."""

    path: str
    page: Page
    methods: tuple[str, ...] = ("GET",)
    nav: str | None = None
    operator_only: bool = False
    profile_scoped: bool = True


@dataclass(frozen=True)
class PortalContext:
    """Everything a page may use for one request."""

    user: PortalUser
    profile: Any                      # b2bua.node.config.Profile of the URL (None on pages that are not profile-scoped)
    store: Any                        # billing.store.Store
    config: Any                       # the b2bua.node.config.Config in force (read at each request: reloads apply)
    now_ms: int
    method: str = "GET"
    query: Mapping[str, str] = field(default_factory=dict)       # first value of each query argument
    form: Mapping[str, str] = field(default_factory=dict)        # first value of each form field (POST, CSRF checked)
    csrf_token: str = ""              # put into every form as <input type="hidden" name="csrf" value="...">
    client_address: str = ""          # for the audit log ("from where")
    strings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)    # language -> key -> text
    timezone: str = "Europe/Berlin"   # the profile's zone (config ``timezone``)
    base: str = ""                    # the URL prefix of this profile's pages, e.g. "/p/demo"
    config_loaded_ms: int | None = None   # when the config in force was loaded (None: not known to the server)

    @property
    def lang(self) -> str:
        return self.user.language

    def t(self, key: str, **values: Any) -> str:
        """The text of ``key`` in the user's language (English when the language lacks it), formatted."""
        text = self.strings.get(self.lang, {}).get(key) or self.strings.get("en", {}).get(key) or key
        return text.format(**values) if values else text

    def url(self, path: str = "", **query: Any) -> str:
        """A link to another page of this profile, with ``query`` arguments."""
        from urllib.parse import urlencode
        tail = f"/{path}" if path else "/"
        return f"{self.base}{tail}" + (("?" + urlencode({k: v for k, v in query.items() if v not in (None, "")}))
                                       if query else "")

    def money(self, cents: int) -> str:
        """``cents`` with the currency and two decimals in the user's language (1.234,56 € / €1,234.56)."""
        sign = "-" if cents < 0 else ""
        whole, part = divmod(abs(cents), 100)
        if self.lang == "de":
            return f"{sign}{whole:,}".replace(",", ".") + f",{part:02d} €"
        return f"{sign}€{whole:,}.{part:02d}"

    def when(self, ms: int | None) -> str:
        """A time in the profile's zone, as the user's language writes it ("" for None)."""
        if ms is None:
            return ""
        moment = datetime.datetime.fromtimestamp(ms / 1000, zoneinfo.ZoneInfo(self.timezone))
        return moment.strftime("%d.%m.%Y %H:%M" if self.lang == "de" else "%Y-%m-%d %H:%M")

    def decimal_amount(self, text: str) -> Decimal | None:
        """An amount typed in either language's way ("12,50", "12.50"); None when it is none."""
        cleaned = text.strip().replace("€", "").replace(" ", "")
        if "," in cleaned:
            cleaned = cleaned.replace(".", "").replace(",", ".")
        try:
            value = Decimal(cleaned)
        except ArithmeticError:
            return None
        return value if value.is_finite() else None


def context_for(user: PortalUser, profile, store, config, *, now_ms: int = 1_800_000_000_000,
                strings: Mapping[str, Mapping[str, str]] | None = None, **kw: Any) -> PortalContext:
    """A context as the server makes it (for pages' tests): ``profile`` is the config's Profile or its name."""
    if isinstance(profile, str):
        profile = config.profiles[profile]
    base = f"/p/{profile.name}" if profile is not None else ""
    return PortalContext(user=user, profile=profile, store=store, config=config, now_ms=now_ms,
                         strings=strings or {}, base=base, **kw)
