"""The web side in a process of its own, for a real browser and schemathesis to talk to.

    python -m tests.webhook.serve DB_PATH

Starts the fakes, a store on the SQLite file DB_PATH, our Site, a page that
frames the top-up page from another origin (listed in frame_ancestors) and
one from an origin that is not listed, all on 127.0.0.1 port 0; creates an
API key; prints one JSON line with the URLs and the token; serves until
standard input closes (the test's end), or 120 s at most.
"""

from __future__ import annotations

import json
import sys

from twisted.internet import reactor, stdio
from twisted.internet.protocol import Protocol
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

MAX_LIFETIME_S = 120


def framing_site(target: str) -> Site:
    html = (f'<!doctype html><html><body><h1>Partner site</h1>'
            f'<iframe id="topup" src="{target}" width="500" height="700"></iframe></body></html>').encode()
    root = Resource()
    root.putChild(b"", Data(html, "text/html; charset=utf-8"))
    return Site(root)


class _Stdin(Protocol):
    def connectionLost(self, reason=None):
        if reactor.running:
            reactor.stop()


def main(db_path: str) -> None:
    from dataclasses import replace

    from tests.webhook.harness import Env
    from webhook import apikeys
    from webhook.server import build_site

    good = reactor.listenTCP(0, Site(Resource()), interface="127.0.0.1")
    evil = reactor.listenTCP(0, Site(Resource()), interface="127.0.0.1")
    good_url = f"http://127.0.0.1:{good.getHost().port}"
    evil_url = f"http://127.0.0.1:{evil.getHost().port}"
    env = Env(f"sqlite:///{db_path}", frame_ancestors=(good_url,), timeout_s=5.0)
    from tests.webhook.harness import run
    _key, token = run(env.store.run(apikeys.create, "Demo Beratung GmbH", ("demo",), env.store.now_ms()))
    target = f"{env.base_url}/topup/demo?lang=en"
    good.factory = framing_site(target)
    evil.factory = framing_site(target)
    print(json.dumps({"base_url": env.base_url, "good": good_url, "evil": evil_url, "token": token,
                      "paypal": env.paypal.base_url}), flush=True)
    stdio.StandardIO(_Stdin())
    reactor.callLater(MAX_LIFETIME_S, reactor.stop)
    reactor.run()
    env.store.close()


if __name__ == "__main__":
    main(sys.argv[1])
