"""The web side's twisted.web Site: the top-up page, provider hooks, the balance API, health and metrics.

    site = build_site(settings, store, reactor)
    port = listen(site, reactor, "127.0.0.1", 8080)          # or with TLS files

Routes (the README lists them): ``/topup/<button>`` (GET form, POST steps),
``/topup/<button>/return/<ref>``, ``/topup/<button>/cancel/<ref>``,
``/hooks/paypal|klarna|paysafecard`` (POST), ``/api/v1/...`` and
``/api/v1/openapi.json``, ``/healthz``, ``/metrics`` (only to the bearer of ``[metrics] token``; see
:mod:`webhook.metrics_access`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from .api import BalanceApi
from .connections import GuardedSite
from .httpkit import (Answer, Ctx, LimitedRequest, error, json_answer, limited_request_class, loggable_path,
                      make_ctx, serve, write_answer)
from .metrics import Metrics
from .metrics_access import TokenSource, no_token, public_metrics_status
from .openapi import openapi_document
from .outgoing import Outgoing
from .page import TopupPage
from .payments import Payments
from .providers import Klarna, PayPal, Paysafecard, Rejected
from .ratelimit import RateLimiter
from .settings import METHODS, ReadsSettings, SettingsSource, WebSettings, settings_source

log = Logger(namespace="webhook.server")

_SEG = r"([A-Za-z0-9_.~%+\-]{1,100})"


#: what /healthz asks whether the node can take work: the problems (short texts), none when ready
Readiness = Callable[[], "list[str]"]


def no_problems() -> list[str]:
    return []


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    name: str
    handler: Callable
    limited: bool = False


def default_providers(settings: WebSettings, reactor) -> dict:
    """The real adapters, on treq with the settings' timeout and retries."""
    out = Outgoing(reactor, timeout_s=settings.provider_timeout_s, attempts=settings.provider_attempts,
                   retry_delay_s=settings.provider_retry_delay_s)
    return {"paypal": PayPal(out, settings.urls.paypal, cert_origins=settings.paypal_cert_origins),
            "klarna": Klarna(out, settings.urls.klarna),
            "paysafecard": Paysafecard(out, settings.urls.paysafecard)}


class LiveProviders(Mapping):
    """The real adapters for the settings in force: made afresh when a reload changes their URLs, timeouts
    or PayPal's certificate origins (credentials travel with each request, so they need no new adapter)."""

    def __init__(self, settings: SettingsSource, reactor) -> None:
        self._settings = settings
        self._reactor = reactor
        self._made: tuple[tuple, dict] | None = None

    def _current(self) -> dict:
        s = self._settings()
        key = (s.urls, s.paypal_cert_origins, s.provider_timeout_s, s.provider_attempts, s.provider_retry_delay_s)
        if self._made is None or self._made[0] != key:
            self._made = (key, default_providers(s, self._reactor))
        return self._made[1]

    def __getitem__(self, method: str):
        return self._current()[method]

    def __iter__(self):
        return iter(METHODS)

    def __len__(self) -> int:
        return len(METHODS)


class WebApp(ReadsSettings, Resource):
    """The one resource behind every path; dispatches on (method, path) through :attr:`routes`.

    ``settings`` is fixed :class:`WebSettings` or a source of the settings in force, asked at each request.
    """

    isLeaf = True

    def __init__(self, settings: WebSettings | SettingsSource, store, reactor, providers: dict | None = None,
                 readiness: Readiness = no_problems, *, metrics: Metrics | None = None,
                 metrics_token: TokenSource = no_token) -> None:
        """``metrics``: the node's registry (a fresh one by default); ``metrics_token`` the bearer token that
        /metrics asks for here ("" : /metrics is not served on this listener)."""
        super().__init__()
        self.readiness = readiness
        self._settings = source = settings_source(settings)
        self.store = store
        self.reactor = reactor
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics_token = metrics_token
        self.providers = providers if providers is not None else LiveProviders(source, reactor)
        self.payments = Payments(store, source)
        self.page = TopupPage(source, self.payments, self.providers, self.metrics, reactor)
        self.api = BalanceApi(source, store, self.metrics)
        self.limiter = RateLimiter(reactor, self.settings.page_rate_per_min)
        self._openapi = json.dumps(openapi_document(), indent=1).encode()
        acct = r"/accounts/" + _SEG + "/" + _SEG
        self.routes = (
            Route("GET", re.compile(r"^healthz$"), "healthz", self.healthz),
            Route("GET", re.compile(r"^metrics$"), "metrics", self.metrics_page),
            Route("GET", re.compile(r"^topup/" + _SEG + "$"), "page", self.page.show, True),
            Route("POST", re.compile(r"^topup/" + _SEG + "$"), "page", self.page.submit, True),
            Route("GET", re.compile(r"^topup/" + _SEG + r"/return/([A-Za-z0-9_\-]{1,64})$"), "return",
                  self.page.returned, True),
            Route("GET", re.compile(r"^topup/" + _SEG + r"/cancel/([A-Za-z0-9_\-]{1,64})$"), "cancel",
                  self.page.cancelled, True),
            Route("POST", re.compile(r"^hooks/(paypal|klarna|paysafecard)$"), "hook", self.hook),
            Route("GET", re.compile(r"^api/v1/openapi\.json$"), "openapi", self.openapi),
            Route("GET", re.compile(r"^api/v1" + acct + "$"), "api", self._api("account")),
            Route("GET", re.compile(r"^api/v1" + acct + "/transactions$"), "api", self._api("transactions")),
            Route("POST", re.compile(r"^api/v1" + acct + "/credit$"), "api", self._api("credit")),
            Route("POST", re.compile(r"^api/v1" + acct + "/debit$"), "api", self._api("debit")),
            Route("POST", re.compile(r"^api/v1" + acct + "/renumber$"), "api", self._api("renumber")),
        )

    # -- dispatch ---------------------------------------------------------------

    def render(self, request: LimitedRequest):
        ctx = make_ctx(request)
        path = "/".join(ctx.path)
        if request.too_large:
            return self._now(request, ctx, "too_large", error(413, "the body is too large"))
        method = "GET" if ctx.method == "HEAD" else ctx.method
        allowed = []
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            if route.limited and not self.limiter.allow(ctx.client):
                self.metrics.inc("prepaid_rate_limited_total")
                return self._now(request, ctx, route.name, error(429, "too many requests; wait a minute"))
            groups = match.groups()
            ctx.params = self._params(route, groups)
            return serve(request, route.handler, ctx, lambda c, a, n=route.name: self._count(n, a))
        if allowed:
            return self._now(request, ctx, "other", error(405, "method not allowed"),
                             (("Allow", ", ".join(sorted(set(allowed)))),))
        return self._now(request, ctx, "other", error(404, "no such path"))

    @staticmethod
    def _params(route: Route, groups: tuple) -> dict:
        from urllib.parse import unquote
        if route.name in ("page",):
            return {"button": groups[0]}
        if route.name in ("return", "cancel"):
            return {"button": groups[0], "reference": groups[1]}
        if route.name == "hook":
            return {"method": groups[0]}
        if route.name == "api":
            return {"profile": unquote(groups[0]), "number": unquote(groups[1])}
        return {}

    def _now(self, request, ctx: Ctx, name: str, answer: Answer, headers=()):
        if headers:
            answer = Answer(answer.status, answer.body, answer.content_type, answer.headers + tuple(headers))
        self._count(name, answer)
        write_answer(request, answer)
        return NOT_DONE_YET

    def _count(self, name: str, answer: Answer) -> None:
        self.metrics.inc("prepaid_http_requests_total", route=name, status=str(answer.status))

    def _api(self, operation: str):
        async def handler(ctx: Ctx) -> Answer:
            return await self.api.handle(ctx, operation)
        return handler

    # -- small pages ------------------------------------------------------------

    async def healthz(self, ctx: Ctx) -> Answer:
        """200 "ok" when the node can take work; 503 with the readiness input's problems when it cannot."""
        try:
            problems = list(self.readiness())
        except Exception:
            log.failure("the readiness check failed")
            problems = ["the readiness check failed"]
        if problems:
            return json_answer(503, {"ready": False, "problems": problems})
        return Answer(200, b"ok\n", "text/plain; charset=utf-8")

    async def metrics_page(self, ctx: Ctx) -> Answer:
        """Only with ``Authorization: Bearer <[metrics] token>`` (see :mod:`webhook.metrics_access`)."""
        status = public_metrics_status(ctx.header("authorization"), self.metrics_token())
        if status == 404:
            return error(404, "no such path")
        if status == 401:
            return Answer(401, b'{"error": "a bearer token is needed"}', "application/json",
                          (("WWW-Authenticate", 'Bearer realm="metrics"'),))
        return Answer(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")

    async def openapi(self, ctx: Ctx) -> Answer:
        return Answer(200, self._openapi, "application/json")

    # -- provider notifications -----------------------------------------------------

    def accounts_for(self, method: str):
        settings = self.settings
        names = {p.account_for(method) for p in settings.profiles} - {None}
        return tuple(a for a in settings.accounts if a.name in names)

    async def hook(self, ctx: Ctx) -> Answer:
        method = ctx.params["method"]
        provider = self.providers[method]
        try:
            try:
                events = await provider.on_notification(self.accounts_for(method), ctx.headers, ctx.body, ctx.query)
            except Rejected:
                self.metrics.inc("prepaid_webhook_verification_failures_total", method=method)
                raise
            credited = 0
            for event in events:
                booked = await self.payments.book(event)
                credited += booked.credited
        except Rejected:
            self.metrics.inc("prepaid_notifications_rejected_total", method=method)
            raise
        except Exception:
            self.metrics.inc("prepaid_provider_errors_total", method=method)
            raise
        if credited:
            self.metrics.inc("prepaid_payment_credits_total", credited, method=method)
        return json_answer(200, {"ok": True, "events": len(events), "credited": credited})


def access_log_line(timestamp: str, request) -> str:
    """An access log line without the query string (return URLs carry authorization tokens), client
    headers (Authorization, cookies), payment references or phone numbers (see :func:`loggable_path`)."""
    path = loggable_path(request.path.decode("ascii", "replace"))
    return (f'"{request.getClientAddress().host if hasattr(request.getClientAddress(), "host") else "-"}" '
            f'- - {timestamp} "{request.method.decode("ascii", "replace")} {path}" {request.code} '
            f'{request.sentLength or "-"}')


def build_site(settings: WebSettings | SettingsSource, store, reactor, providers: dict | None = None,
               readiness: Readiness = no_problems, *, metrics: Metrics | None = None,
               metrics_token: TokenSource = no_token) -> Site:
    """The Site serving every route; ``providers`` (method -> adapter) defaults to the real ones.

    ``settings``: fixed, or a source asked at each request (the node's config holder: reloads apply).
    The connection limits and the body size are those in force when the Site is built.

    ``readiness`` answers /healthz: the node's problems (RTP ports or descriptors running short...),
    none when it can take work. Connections are held to ``settings.limits`` (see :mod:`webhook.connections`).
    ``metrics`` is the node's registry; /metrics answers here only to a bearer of ``metrics_token()``.
    """
    app = WebApp(settings, store, reactor, providers, readiness, metrics=metrics, metrics_token=metrics_token)
    first = app.settings
    site = GuardedSite(app, first.limits, app.metrics, reactor=reactor, access_line=access_log_line)
    site.requestFactory = limited_request_class(first.max_body_bytes)
    site.displayTracebacks = False
    site.app = app
    return site


def listen(site: Site, reactor, address: str, port: int, *, tls_certificate: str = "", tls_private_key: str = ""):
    """Listen with ``site`` on (address, port): HTTPS when a certificate and key (PEM files) are given."""
    if tls_certificate:
        from twisted.internet import ssl
        with open(tls_certificate, "rb") as f:
            cert_pem = f.read()
        with open(tls_private_key, "rb") as f:
            key_pem = f.read()
        cert = ssl.PrivateCertificate.loadPEM(cert_pem + b"\n" + key_pem)
        return reactor.listenSSL(port, site, cert.options(), interface=address)
    return reactor.listenTCP(port, site, interface=address)


__all__ = ["build_site", "listen", "WebApp", "default_providers", "METHODS"]
