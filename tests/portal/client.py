"""The portal's server in the test process, without sockets: requests through a DummyChannel, time on a Clock.

The store is inline (every Deferred fires at once) and the server's reactor is a ``task.Clock``, so a
whole request is answered before :meth:`PortalClient.request` returns, except where the server waits
(a wrong password is answered a second later: advance the clock).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from twisted.web.test.requesthelper import DummyChannel

from billing.db import portal as db
from webhook.portal.auth import hash_password
from webhook.portal.server import build_portal_site

OTHER_PROFILE = """
[profiles.other]
service_numbers = ["+493099999999"]
agents = ["sip:other@127.0.0.1:5071"]
landline_per_minute = "0.99"
mobile_per_minute = "0.99"
button = "other"
"""


def portal_config(tmp_path, **portal: str):
    """The example config with a second profile ``other`` and ``[portal]`` keys set (TOML values)."""
    from b2bua.node.config import parse_config
    text = open("conf/prepaid.toml", encoding="utf-8").read() + OTHER_PROFILE
    before, _, rest = text.partition("[portal]\n")
    section, _, after = rest.partition("\n[")
    for key, value in portal.items():
        section = re.sub(rf"(?m)^(# )?{key} = .*$", f"{key} = {value}", section, count=1)
    text = before + "[portal]\n" + section + "\n[" + after
    return parse_config(text, str(tmp_path / "prepaid.toml"))


@dataclass
class Response:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        return (self.headers.get(name.lower()) or [""])[0]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def _parse(raw: bytes) -> Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Response(status, headers, body)


class PortalClient:
    """A browser of sorts: keeps the cookies it is given, posts forms, reads the CSRF token from pages."""

    def __init__(self, site, clock, address: str = "192.0.2.10") -> None:
        self.site = site
        self.clock = clock
        self.address = address
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None, *, advance_s: float = 0.0,
                headers: dict | None = None) -> Response:
        channel = DummyChannel()
        channel.site = self.site
        channel.transport.client = ("TCP", self.address, 40000)
        from twisted.internet.address import IPv4Address
        channel.transport.getPeer = lambda: IPv4Address("TCP", self.address, 40000)
        request = self.site.requestFactory(channel)
        request.site = self.site
        body = urlencode(form or {}).encode()
        request.gotLength(len(body))
        request.handleContentChunk(body)
        if form is not None:
            request.requestHeaders.setRawHeaders(b"content-type", [b"application/x-www-form-urlencoded"])
        if self.cookies:
            request.requestHeaders.setRawHeaders(
                b"cookie", ["; ".join(f"{k}={v}" for k, v in self.cookies.items()).encode()])
        for name, value in {"accept-language": "en", **(headers or {})}.items():
            request.requestHeaders.setRawHeaders(name.encode(), [value.encode()])
        request.parseCookies()             # the channel does this when the headers are in
        request.requestReceived(method.encode(), path.encode(), b"HTTP/1.1")
        if advance_s:
            self.clock.advance(advance_s)
        raw = channel.transport.written.getvalue()
        assert raw, f"{method} {path}: no answer (yet)"
        response = _parse(raw)
        for value in response.headers.get("set-cookie", []):
            jar = SimpleCookie()
            jar.load(value)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, form: dict, **kw) -> Response:
        return self.request("POST", path, form, **kw)

    def csrf(self, path: str = "/") -> str:
        """The CSRF token in the forms of the page at ``path``."""
        match = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, name: str, password: str, **kw) -> Response:
        return self.post("/login", {"csrf": self.csrf("/"), "name": name, "password": password}, **kw)


def add_user(store, name: str, role: str, profiles: tuple[str, ...] = (), password: str = "correct horse",
             language: str = "en") -> None:
    from tests.conftest import fired
    fired(store.run(db.add_user, db.UserRow(name, role, profiles, language, hash_password(password)),
                    now_ms=store.now_ms(), actor="test"))


def portal_site(store, config, clock, routes, strings=None):
    return build_portal_site(store, lambda: config, clock, routes=routes, strings=strings or {})
