"""The two listeners keep apart: the portal's port serves no webhook, top-up page or balance API, and the public
port serves no portal page, login or lockout list. Real sockets on 127.0.0.1 port 0, the real reactor."""

from __future__ import annotations

import pytest
from twisted.internet import reactor

from tests.webhook.harness import Env, run
from webhook.portal.server import build_portal_site

from .money_support import example_config


@pytest.fixture
def sites(tmp_path):
    """The public Site (with its fake payment providers) and the portal's, each on its own port."""
    env = Env(f"sqlite:///{tmp_path}/web.db")
    config = example_config()
    portal = reactor.listenTCP(0, build_portal_site(env.store, lambda: config, reactor), interface="127.0.0.1")
    try:
        yield env, f"http://127.0.0.1:{portal.getHost().port}"
    finally:
        run(portal.stopListening())
        env.close()


PUBLIC_PATHS = [("GET", "/topup/demo"), ("POST", "/hooks/paypal"), ("POST", "/hooks/klarna"),
                ("POST", "/hooks/paysafecard"), ("GET", "/api/v1/openapi.json"),
                ("GET", "/api/v1/accounts/demo/%2B4915112345678")]
PORTAL_PATHS = [("GET", "/p/demo/"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/lockouts"),
                ("GET", "/audit"), ("GET", "/p/demo/customers"), ("GET", "/static/portal.css")]


def test_the_portal_port_serves_none_of_the_public_paths(sites):
    """Webhooks, the top-up page and the balance API asked of the portal's port: the portal's 404, never the
    public answer; the portal itself answers its login page there."""
    env, portal = sites
    for method, path in PUBLIC_PATHS:
        reply = env.call(method, path, url=portal + path, body=b"{}" if method == "POST" else None)
        assert reply.status == 404 and b"topup" not in reply.body.lower(), (method, path, reply.status)
    assert b'action="/login"' in env.call("GET", "/", url=portal + "/").body
    assert env.call("GET", "/topup/demo").status == 200          # the public port has it


def test_the_public_port_serves_none_of_the_portals_paths(sites):
    """The portal's pages, its login and logout, the lockouts and its stylesheet asked of the public port: 404,
    and no portal cookie is set."""
    env, portal = sites
    for method, path in PORTAL_PATHS:
        reply = env.call(method, path, body=b"" if method == "POST" else None)
        assert reply.status == 404 and "portal_" not in reply.headers.get("set-cookie", ""), (method, path,
                                                                                               reply.status)
    assert env.call("GET", "/static/portal.css", url=portal + "/static/portal.css").status == 200
