"""The portal's frame around every page: head, brand, menu, the user, the profile picker, logout.

    html = yield flatten_page(frame(chrome, page.title, page.body))

Markup only, from ``twisted.web.template.tags`` (every string escaped); the look is
``static/portal.css``, its icon ``static/icon.svg`` and the small optional ``static/portal.js`` (copy
buttons), all files, since the Content-Security-Policy allows no inline script or style. Everything works
without JavaScript: the profile picker is a ``<details>`` list of links, logout a form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.web.template import Tag, flattenString, tags


@dataclass(frozen=True)
class NavItem:
    """A menu entry: its label, where it goes, and whether it is the page shown."""

    label: str
    href: str
    current: bool = False


@dataclass(frozen=True)
class Chrome:
    """What surrounds a page: the user's language and texts, and (when logged in) who, where, and the menu."""

    lang: str
    t: Callable[..., str]
    user_name: str = ""                            # "" when nobody is logged in
    csrf_token: str = ""
    profile: str = ""                              # the profile of the URL, if any
    nav: tuple[NavItem, ...] = ()
    profiles: tuple[tuple[str, str], ...] = ()     # (name, link) of every profile the user may see
    notice: str = ""


def _profile_picker(chrome: Chrome):
    if len(chrome.profiles) < 2:
        return tags.span(chrome.profile, class_="profile-name") if chrome.profile else ""
    links = [tags.li(tags.a(name, href=href, **({"aria-current": "page"} if name == chrome.profile else {})))
             for name, href in chrome.profiles]
    return tags.details(tags.summary(tags.span(chrome.t("portal.profile") + ": ", class_="label"),
                                     chrome.profile or chrome.t("portal.profiles")),
                        tags.ul(*links), class_="picker")


def _user_box(chrome: Chrome):
    if not chrome.user_name:
        return ""
    return tags.div(
        _profile_picker(chrome),
        tags.span(chrome.user_name, class_="user", title=chrome.t("portal.signed_in_as", name=chrome.user_name)),
        tags.form(tags.input(type="hidden", name="csrf", value=chrome.csrf_token),
                  tags.button(chrome.t("portal.logout"), type="submit", class_="link"),
                  method="post", action="/logout", class_="logout"),
        class_="who")


def frame(chrome: Chrome, title: str, body: Any):
    """The whole document of a page titled ``title`` with ``body``."""
    menu = ""
    if chrome.nav:
        menu = tags.nav(tags.ul(*[tags.li(tags.a(item.label, href=item.href,
                                                 **({"aria-current": "page"} if item.current else {})))
                                  for item in chrome.nav]), class_="menu", **{"aria-label": chrome.t("portal.area")})
    notice = tags.p(chrome.notice, class_="notice", role="status") if chrome.notice else ""
    return tags.html(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
            tags.title(f"{title} · {chrome.t('portal.name')}"),
            tags.link(rel="stylesheet", href="/static/portal.css"),
            tags.link(rel="icon", href="/static/icon.svg", type="image/svg+xml"),
            tags.script(src="/static/portal.js", defer="defer"),
        ),
        tags.body(
            tags.header(
                tags.div(tags.a(chrome.t("portal.name"), href="/", class_="brand"),
                         tags.span(chrome.t("portal.area"), class_="area"), class_="title"),
                _user_box(chrome), class_="top"),
            menu,
            Tag("main")(notice, tags.h1(title), body),      # twisted.web.template has no tags.main
        ),
        lang=chrome.lang)


def login_form(t: Callable[..., str], csrf_token: str, *, user_name: str = "", error: str = "", note: str = ""):
    """The login page's body: name, password, the login CSRF token; ``error`` and ``note`` above it."""
    return tags.form(
        tags.p(error, class_="error", role="alert") if error else "",
        tags.p(note, class_="error") if note else "",
        tags.input(type="hidden", name="csrf", value=csrf_token),
        tags.label(t("portal.login.user"), tags.input(type="text", name="name", value=user_name, required="required",
                                                      autocomplete="username", autocapitalize="none", id="name"),
                   **{"for": "name"}),
        tags.label(t("portal.login.password"), tags.input(type="password", name="password", required="required",
                                                          autocomplete="current-password", id="password"),
                   **{"for": "password"}),
        tags.button(t("portal.login.submit"), type="submit", id="login"),
        method="post", action="/login", class_="login")


def flatten_page(document) -> Deferred:
    """Fires with the document as UTF-8 bytes, with its doctype."""
    return flattenString(None, document).addCallback(lambda html: b"<!DOCTYPE html>\n" + html)
