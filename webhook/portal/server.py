"""The provider portal's HTTP server: logins, sessions, CSRF, the profile in the URL, the layout, the headers.

    site = build_portal_site(store, lambda: holder.current, reactor)
    port = listen(site, reactor, portal.address, portal.port, ...)     # webhook.server.listen

Paths: ``/`` the login page (logged in: a redirect to the first profile's overview), ``POST /login``,
``POST /logout``, ``/static/<file>``, ``/metrics`` (the node's metrics, without a login),
``/p/<profile>/<path>`` the profile's pages and ``/<path>`` the pages above the profiles, both from
:func:`webhook.portal.pages.routes`. A profile that does not exist
or is not the user's, an ``operator_only`` page asked for by a provider, and an unknown URL all get the
same 404 page. Every POST must carry the session's CSRF token in the field ``csrf`` (the login form:
the token of its cookie), else 403 and nothing happens. The config is read at each request, so a
reload applies to the next one.
"""

from __future__ import annotations

import csv
import email
import email.policy
import hmac
import inspect
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from billing.db import portal as db

from ..connections import GuardedSite
from ..httpkit import LimitedRequest, client_host, limited_request_class, loggable_path
from ..metrics import Metrics
from ..server import access_log_line
from ..settings import ConnectionLimits
from . import auth, i18n, layout, pages
from .sessions import COOKIE, LOGIN_COOKIE, cookie, id_hash, new_token
from .view import Csv, Html, PortalContext, PortalUser, Redirect, Route

log = Logger(namespace="webhook.portal")

#: on every portal answer (with the CSP of :func:`content_security_policy`); pages add ``Cache-Control: no-store``
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
)

#: a wrong password is answered this much later (a guesser's pace, on top of the lockout)
LOGIN_FAILURE_DELAY_S = 1.0
#: the largest form the portal takes
MAX_BODY_BYTES = 64 * 1024
#: the most fields of a form that are read
MAX_FORM_FIELDS = 200

STATIC_DIR = Path(__file__).parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml", ".png": "image/png"}
_STATIC_NAME = re.compile(r"^[a-z0-9_-]{1,60}\.[a-z]{2,4}$")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")

#: paths of the server itself, never a page's
RESERVED = ("", "login", "logout", "static", "p", "metrics")


@dataclass(frozen=True)
class Visit:
    """A request's logged-in session: its hash, the row, and the user."""

    id_hash: str
    session: db.SessionRow
    user: PortalUser


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def content_security_policy(public_url: str) -> str:
    """The portal's CSP: everything from the portal itself, no inline script or style, never framed; it may
    frame only the public listener (``[http] public_url``), where the Button page's preview comes from."""
    origin = urlsplit(public_url) if public_url else None
    frames = f"frame-src {origin.scheme}://{origin.netloc}; " if origin and origin.scheme and origin.netloc else ""
    return f"default-src 'self'; {frames}frame-ancestors 'none'; form-action 'self'"


def form_fields(request) -> dict[str, str]:
    """A POST's fields as text, the first value of each (at most :data:`MAX_FORM_FIELDS`): from a urlencoded
    body, or from a ``multipart/form-data`` one, which forms with a file send (the first callers' import);
    a file field's value is the file's content. The query string is not part of the form."""
    request.content.seek(0)
    body = request.content.read()
    kind = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True,
                              max_num_fields=MAX_FORM_FIELDS))
    head = b"MIME-Version: 1.0\r\nContent-Type: " + request.getHeader("content-type").encode("latin-1") + b"\r\n"
    message = email.message_from_bytes(head + b"\r\n" + body, policy=email.policy.HTTP)
    fields: dict[str, str] = {}
    for part in (message.iter_parts() if message.is_multipart() else ()):
        name = part.get_param("name", header="content-disposition")
        if name and name not in fields and len(fields) < MAX_FORM_FIELDS:
            fields[name] = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    return fields


class PortalServer(Resource):
    """The one resource behind every portal path."""

    isLeaf = True

    def __init__(self, store, config: Callable[[], Any], reactor, *, routes: list[Route] | None = None,
                 strings: Mapping[str, Mapping[str, str]] | None = None, metrics: Metrics | None = None,
                 config_loaded_ms: Callable[[], int | None] = lambda: None) -> None:
        super().__init__()
        #: the node's registry, served on ``/metrics`` without a login (operators firewall the portal's port)
        self.metrics = metrics if metrics is not None else Metrics()
        self.store = store
        self.config = config            # the config in force, read at each request
        self.config_loaded_ms = config_loaded_ms    # when that config was loaded (None: not known)
        self.reactor = reactor
        self.routes = pages.routes() if routes is None else list(routes)
        self.strings = i18n.strings(pages.strings() if strings is None else strings)

    # -- the request ------------------------------------------------------------------

    def render(self, request):
        d = ensureDeferred(self._serve(request))
        d.addErrback(lambda f: log.failure("portal {method} {path}: no answer written", f,
                                           method=request.method.decode("ascii", "replace"),
                                           path=loggable_path(request.path.decode("ascii", "replace"))))
        return NOT_DONE_YET

    async def _serve(self, request: LimitedRequest) -> None:
        method = request.method.decode("ascii", "replace").upper()
        path = request.path.decode("utf-8", "replace")
        if request.too_large:
            return self._write(request, self._plain(413, "the form is too large"))
        if path.startswith("/static/"):
            return self._write(request, self._static(method, path[len("/static/"):]))
        if path == "/metrics":
            return self._write(request, self._metrics(method))
        now_ms = int(self.reactor.seconds() * 1000)
        visit = await self._visit(request, now_ms)
        form = form_fields(request) if method == "POST" else {}
        answer = await self._dispatch(request, method, path, form, visit, now_ms)
        self._write(request, answer)

    async def _visit(self, request, now_ms: int) -> Visit | None:
        session_id = (request.getCookie(COOKIE.encode()) or b"").decode("ascii", "replace")
        if not session_id:
            return None
        idle_ms = self.config().portal.session_idle_s * 1000
        hashed = id_hash(session_id)
        found = await self.store.run(db.resume_session, hashed, now_ms=now_ms, idle_ms=idle_ms)
        if found is None:
            return None
        session, row = found
        return Visit(hashed, session, PortalUser(row.name, row.role, row.profiles, row.language))

    async def _dispatch(self, request, method: str, path: str, form: dict, visit: Visit | None,
                        now_ms: int) -> Answer:
        parts = path.strip("/").split("/", 2) if path.strip("/") else [""]
        head = parts[0]
        if path == "/":
            if method not in ("GET", "HEAD"):
                return await self._not_allowed(visit, ("GET",))
            return await self._home(request, visit)
        if path == "/login":
            if method != "POST":
                return self._see_other("/")
            return await self._login(request, form, now_ms)
        if path == "/logout":
            if method != "POST":
                return await self._not_allowed(visit, ("POST",))
            return await self._logout(form, visit)
        if head == "p" and len(parts) >= 2:
            if visit is None:
                return self._see_other("/")
            config = self.config()
            profile = config.profiles.get(parts[1])
            if profile is None or not visit.user.may_see(profile.name):
                return await self._not_found(visit)
            rest = parts[2].strip("/") if len(parts) > 2 else ""
            return await self._page(request, method, form, visit, now_ms, profile, rest)
        if head not in RESERVED and any(not r.profile_scoped and r.path.strip("/") == path.strip("/")
                                        for r in self.routes):
            if visit is None:
                return self._see_other("/")
            return await self._page(request, method, form, visit, now_ms, None, path.strip("/"))
        return await self._not_found(visit)

    # -- the server's own pages ---------------------------------------------------------

    def _t(self, lang: str) -> Callable[..., str]:
        def t(key: str, **values: Any) -> str:
            text = self.strings.get(lang, {}).get(key) or self.strings.get("en", {}).get(key) or key
            return text.format(**values) if values else text
        return t

    def _visible(self, user: PortalUser) -> list[str]:
        """The names of the profiles ``user`` may see, in the config's order."""
        return [name for name in self.config().profiles if user.may_see(name)]

    async def _home(self, request, visit: Visit | None) -> Answer:
        if visit is not None:
            visible = self._visible(visit.user)
            if visible:
                return self._see_other(f"/p/{quote(visible[0])}/")
            t = self._t(visit.user.language)
            return await self._html(visit, Html(t("portal.name"), layout.tags.p(t("portal.no_profiles"))),
                                    profile_name="", route=None)
        token = (request.getCookie(LOGIN_COOKIE.encode()) or b"").decode("ascii", "replace") or new_token()
        return await self._login_page(token, status=200, lang=_lang(request))

    async def _login_page(self, token: str, *, status: int, user_name: str = "", error: str = "",
                          note: str = "", lang: str = "de") -> Answer:
        t = self._t(lang)
        chrome = layout.Chrome(lang=lang, t=t)
        body = layout.login_form(t, token, user_name=user_name, error=error, note=note)
        html = await layout.flatten_page(layout.frame(chrome, t("portal.login.title"), body))
        return Answer(status, html, headers=(("Set-Cookie", cookie(LOGIN_COOKIE, token, secure=self._secure())),))

    async def _login(self, request, form: dict, now_ms: int) -> Answer:
        token = (request.getCookie(LOGIN_COOKIE.encode()) or b"").decode("ascii", "replace")
        if not token or not hmac.compare_digest(form.get("csrf", "").encode(), token.encode()):
            return await self._forbidden(None)
        name = form.get("name", "").strip()[:64]
        portal = self.config().portal
        outcome = await self.store.run(auth.login, name, form.get("password", ""), source=client_host(request),
                                       now_ms=now_ms, rule=portal.login_rule())
        if outcome.session is None:
            await deferLater(self.reactor, LOGIN_FAILURE_DELAY_S, lambda: None)
            lang = _lang(request)
            t = self._t(lang)
            return await self._login_page(token, status=401, user_name=name, error=t("portal.login.wrong"),
                                          note=t("portal.login.locked") if outcome.locked else "", lang=lang)
        earlier = (request.getCookie(COOKIE.encode()) or b"").decode("ascii", "replace")
        if earlier:                     # whatever session this browser had ends: one login, one new id
            await self.store.run(db.end_session, id_hash(earlier))
        log.info("portal: {user} logged in from {source}", user=outcome.user.name, source=client_host(request))
        session_cookie = cookie(COOKIE, outcome.session.id, secure=self._secure())
        return Answer(303, headers=(("Location", "/"), ("Set-Cookie", session_cookie),
                                    ("Set-Cookie", cookie(LOGIN_COOKIE, "", secure=self._secure(), max_age_s=0))))

    async def _logout(self, form: dict, visit: Visit | None) -> Answer:
        if visit is None:
            return self._see_other("/")
        if not _csrf_ok(form, visit):
            return await self._forbidden(visit)
        await self.store.run(db.end_session, visit.id_hash)
        return Answer(303, headers=(("Location", "/"),
                                    ("Set-Cookie", cookie(COOKIE, "", secure=self._secure(), max_age_s=0))))

    def _secure(self) -> bool:
        return self.config().portal.secure_cookies

    # -- pages ---------------------------------------------------------------------------------

    def _route(self, user: PortalUser, profile_scoped: bool, path: str) -> Route | None:
        for route in self.routes:
            if (route.profile_scoped == profile_scoped and route.path.strip("/") == path
                    and (user.is_operator or not route.operator_only)):
                return route
        return None

    async def _page(self, request, method: str, form: dict, visit: Visit, now_ms: int, profile,
                    path: str) -> Answer:
        route = self._route(visit.user, profile is not None, path)
        if route is None and profile is not None and path == "" and method in ("GET", "HEAD"):
            t = self._t(visit.user.language)        # no overview page registered (yet): the frame alone
            return await self._html(visit, Html(profile.name, layout.tags.p(t("portal.no_pages"))),
                                    profile_name=profile.name)
        if route is None:
            return await self._not_found(visit)
        if (method if method != "HEAD" else "GET") not in route.methods:
            return await self._not_allowed(visit, route.methods)
        if method == "POST" and not _csrf_ok(form, visit):
            return await self._forbidden(visit)
        config = self.config()
        query = {k: v for k, v in reversed(parse_qsl(request.uri.decode("utf-8", "replace").partition("?")[2],
                                                     keep_blank_values=True, max_num_fields=100))}
        ctx = PortalContext(
            user=visit.user, profile=profile, store=self.store, config=config, now_ms=now_ms, method=method,
            query=query, form={k: v for k, v in form.items() if k != "csrf"}, csrf_token=visit.session.csrf_token,
            client_address=client_host(request), strings=self.strings,
            timezone=profile.timezone if profile is not None else "Europe/Berlin",
            base=f"/p/{profile.name}" if profile is not None else "", config_loaded_ms=self.config_loaded_ms())
        try:
            result = route.page(ctx)
            if inspect.isawaitable(result):
                result = await result
            return await self._answer(result, visit, profile, route)
        except Exception:
            log.failure("portal page {method} {path} failed for user {user}", method=method,
                        path=loggable_path(request.path.decode("utf-8", "replace")), user=visit.user.name)
            return await self._error(visit)

    async def _answer(self, result, visit: Visit, profile, route: Route) -> Answer:
        if isinstance(result, Html):
            return await self._html(visit, result, profile_name=profile.name if profile is not None else "",
                                    route=route)
        if isinstance(result, Csv):
            return csv_answer(result)
        if isinstance(result, Redirect):
            if not result.location.startswith("/") or result.location.startswith("//"):
                raise ValueError(f"a page redirected off the portal: {result.location!r}")
            if result.notice:
                await self.store.run(db.set_notice, visit.id_hash, result.notice)
            return self._see_other(result.location)
        raise TypeError(f"a page returned {type(result).__name__}, not Html, Csv or Redirect")

    def _nav(self, user: PortalUser, profile_name: str, current: Route | None) -> tuple[layout.NavItem, ...]:
        t = self._t(user.language)
        items = []
        for route in self.routes:
            if route.nav is None or (route.operator_only and not user.is_operator):
                continue
            if route.profile_scoped:
                if not profile_name:
                    continue
                href = f"/p/{quote(profile_name)}/{route.path.strip('/')}"
            else:
                href = f"/{route.path.strip('/')}"
            items.append(layout.NavItem(t(route.nav), href, route is current))
        return tuple(items)

    async def _html(self, visit: Visit | None, page: Html, *, profile_name: str = "",
                    route: Route | None = None) -> Answer:
        if visit is None:
            lang = "de"
            chrome = layout.Chrome(lang=lang, t=self._t(lang))
        else:
            user = visit.user
            notice = await self.store.run(db.take_notice, visit.id_hash) if visit.session.notice else ""
            chrome = layout.Chrome(
                lang=user.language, t=self._t(user.language), user_name=user.name,
                csrf_token=visit.session.csrf_token, profile=profile_name,
                nav=self._nav(user, profile_name, route),
                profiles=tuple((name, f"/p/{quote(name)}/") for name in self._visible(user)),
                notice=self._t(user.language)(notice) if notice else "")     # a text key, or the text itself
        html = await layout.flatten_page(layout.frame(chrome, page.title, page.body))
        return Answer(page.status, html)

    async def _message(self, visit: Visit | None, status: int, key: str, headers=()) -> Answer:
        t = self._t(visit.user.language if visit is not None else "de")
        answer = await self._html(visit, Html(t(f"portal.{key}.title"), layout.tags.p(t(f"portal.{key}.text")),
                                              status=status))
        return Answer(answer.status, answer.body, answer.content_type, tuple(headers))

    def _not_found(self, visit: Visit | None):
        return self._message(visit, 404, "not_found")

    def _forbidden(self, visit: Visit | None):
        return self._message(visit, 403, "forbidden")

    def _error(self, visit: Visit | None):
        return self._message(visit, 500, "error")

    def _not_allowed(self, visit: Visit | None, methods):
        return self._message(visit, 405, "not_found", headers=(("Allow", ", ".join(methods)),))

    # -- plain answers --------------------------------------------------------------------------

    @staticmethod
    def _see_other(location: str) -> Answer:
        return Answer(303, headers=(("Location", location),))

    @staticmethod
    def _plain(status: int, text: str) -> Answer:
        return Answer(status, text.encode() + b"\n", "text/plain; charset=utf-8")

    def _static(self, method: str, name: str) -> Answer:
        if method not in ("GET", "HEAD") or not _STATIC_NAME.match(name):
            return self._plain(404, "no such file")
        path = STATIC_DIR / name
        kind = STATIC_TYPES.get(path.suffix)
        if kind is None or not path.is_file():
            return self._plain(404, "no such file")
        return Answer(200, path.read_bytes(), kind, (("Cache-Control", "max-age=300"),))

    def _metrics(self, method: str) -> Answer:
        if method not in ("GET", "HEAD"):
            return Answer(405, b"method not allowed\n", "text/plain; charset=utf-8", (("Allow", "GET"),))
        return Answer(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")

    def _write(self, request: LimitedRequest, answer: Answer) -> None:
        if not request.answerable:
            return
        request.setResponseCode(answer.status)
        request.setHeader("Content-Security-Policy", content_security_policy(self.config().http.public_url))
        for name, value in SECURITY_HEADERS:
            request.setHeader(name, value)
        request.setHeader("Cache-Control", "no-store")
        request.setHeader("Content-Type", answer.content_type)
        for name, value in answer.headers:
            if name == "Set-Cookie":
                request.responseHeaders.addRawHeader(name, value)
            else:
                request.setHeader(name, value)
        request.setHeader("Content-Length", str(len(answer.body)))
        if request.method != b"HEAD":
            request.write(answer.body)
        request.finish()


def _lang(request) -> str:
    """The login page's language before anyone is known: English when the browser prefers it, else German."""
    accepted = (request.getHeader("accept-language") or "").strip().lower()
    return "en" if accepted.startswith("en") else "de"


def _csrf_ok(form: Mapping[str, str], visit: Visit) -> bool:
    return hmac.compare_digest(form.get("csrf", "").encode(), visit.session.csrf_token.encode())


#: what a spreadsheet reads as the start of a formula (and tab, CR, which some read past to one)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: a plain number (a sign, digits, decimal marks) is no formula: amounts and E.164 numbers stay numbers
_PLAIN_NUMBER = re.compile(r"^[+-]?[0-9]+(?:[.,][0-9]+)*$")


def csv_cell(value: str) -> str:
    """``value`` safe for a spreadsheet: a cell that starts like a formula gets a leading ``'`` (so a note
    "=HYPERLINK(...)" or "@SUM(...)" is shown as the text it is), unless it is a plain number."""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(text):
        return "'" + text
    return text


def csv_answer(result: Csv) -> Answer:
    """A download: UTF-8 with a byte order mark and ';' between fields, as Excel opens it; every cell
    through :func:`csv_cell` (no formula from a note, a name or a number as received gets run)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerows([csv_cell(cell) for cell in row] for row in result.rows)
    filename = _FILENAME_UNSAFE.sub("_", result.filename) or "export.csv"
    return Answer(200, ("\ufeff" + out.getvalue()).encode("utf-8"), "text/csv; charset=utf-8",
                  (("Content-Disposition", f'attachment; filename="{filename}"'),))


def build_portal_site(store, config: Callable[[], Any], reactor, *, routes: list[Route] | None = None,
                      strings: Mapping[str, Mapping[str, str]] | None = None,
                      metrics: Metrics | None = None,
                      config_loaded_ms: Callable[[], int | None] = lambda: None) -> GuardedSite:
    """The portal's Site, held to the ``[http]`` connection limits of the config in force at start; ``metrics``
    is the node's registry (served on ``/metrics``; a fresh one by default); ``config_loaded_ms()`` says when
    the config in force was loaded (the tariffs page shows it)."""
    http = config().http
    limits = ConnectionLimits(header_timeout_s=http.header_timeout_s, body_timeout_s=http.body_timeout_s,
                              idle_timeout_s=http.idle_timeout_s, max_connections=http.max_connections,
                              max_connections_per_source=http.max_connections_per_source)
    server = PortalServer(store, config, reactor, routes=routes, strings=strings, metrics=metrics,
                          config_loaded_ms=config_loaded_ms)
    site = GuardedSite(server, limits, server.metrics, reactor=reactor, access_line=access_log_line, listener="portal")
    site.requestFactory = limited_request_class(MAX_BODY_BYTES)
    site.displayTracebacks = False
    site.server = server
    return site
