"""The web side on real sockets in the test process: fakes, the store, the Site, and a client.

Everything listens on 127.0.0.1 port 0. The global reactor is driven by
:func:`run` (``reactor.iterate`` until a Deferred fires, bounded in time),
as the other socket tests of this suite do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from decimal import Decimal

import treq
from twisted.internet.address import IPv4Address
from twisted.internet.abstract import isIPAddress
from twisted.internet.interfaces import IHostnameResolver
from twisted.internet._resolver import HostResolution
from zope.interface import implementer
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred, gatherResults
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import Site

from billing.profile import BillingProfile, TopupOption
from tests.sipp.harness import free_port
from webhook.server import build_site
from webhook.settings import ConnectionLimits, MerchantAccount, PageProfile, ProviderUrls, WebSettings

from .fakes.klarna import FakeKlarna
from .fakes.paypal import FakePayPal
from .fakes.paysafecard import FakePaysafecard

WEBHOOK_ID = "8PT597110X687430LKGECATA"

DEMO_BILLING = BillingProfile(
    name="demo", landline_per_minute=Decimal("1.99"), mobile_per_minute=Decimal("2.49"),
    topups=(TopupOption(1000, 100), TopupOption(2000, 300), TopupOption(5000, 1000)), currency="EUR",
    provider="Demo Beratung GmbH")
OTHER_BILLING = BillingProfile(name="other", landline_per_minute=Decimal("0.99"),
                               mobile_per_minute=Decimal("0.99"), topups=(TopupOption(500, 0),))

ACCOUNTS = (MerchantAccount("demo-paypal", "pp-client", "pp-secret", WEBHOOK_ID),
            MerchantAccount("demo-klarna", "K123456_abc", "klarna-secret"),
            MerchantAccount("demo-paysafecard", "", "psc_test_key"))


@implementer(IHostnameResolver)
class LiteralResolver:
    """Resolves IP literals at once: the reactor's own resolver needs its thread pool, which only
    starts with ``reactor.run()`` (these tests drive the reactor with ``iterate``)."""

    def resolveHostName(self, receiver, hostName, portNumber=0, addressTypes=None, transportSemantics="TCP"):
        receiver.resolutionBegan(HostResolution(hostName))
        if isIPAddress(hostName):
            receiver.addressResolved(IPv4Address("TCP", hostName, portNumber))
        receiver.resolutionComplete()
        return receiver


def run(thing, timeout_s: float = 20.0):
    """Drive the global reactor until ``thing`` (Deferred or coroutine) has fired; its result."""
    d = thing if isinstance(thing, Deferred) else ensureDeferred(thing)
    box: list = []
    d.addBoth(box.append)
    deadline = time.monotonic() + timeout_s
    while not box:
        if time.monotonic() > deadline:
            d.cancel()
            raise AssertionError(f"not done within {timeout_s} s")
        reactor.iterate(0.005)
    result = box[0]
    from twisted.python.failure import Failure
    if isinstance(result, Failure):
        result.raiseException()
    return result


def settle(seconds: float) -> None:
    """Let the reactor run for a while (for things that should NOT happen, bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reactor.iterate(0.005)


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        import json
        return json.loads(self.body)


class Env:
    """Fakes + store + our Site on 127.0.0.1, for one test."""

    def __init__(self, store_url: str, *, frame_ancestors=("http://127.0.0.1:1",), timeout_s: float = 0.5,
                 attempts: int = 2, page_rate_per_min: int = 1000, show_pin: bool = False,
                 start_store: bool = True) -> None:
        from billing.store import Store
        self._resolver = reactor.nameResolver
        reactor.installNameResolver(LiteralResolver())
        self.ports = []
        self.paypal = FakePayPal(reactor)
        self.klarna = FakeKlarna(reactor)
        self.psc = FakePaysafecard(reactor)
        urls = {}
        for name, fake in (("paypal", self.paypal), ("klarna", self.klarna), ("paysafecard", self.psc)):
            port = reactor.listenTCP(0, Site(fake), interface="127.0.0.1")
            self.ports.append(port)
            fake.base_url = f"http://127.0.0.1:{port.getHost().port}"
            urls[name] = fake.base_url
        self.store = Store.open(store_url, reactor, node_id="web-test")
        run(self.store.upgrade())
        payments = (("paypal", "demo-paypal"), ("klarna", "demo-klarna"), ("paysafecard", "demo-paysafecard"))
        http_port = free_port()
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.settings = WebSettings(
            public_url=self.base_url, accounts=ACCOUNTS, urls=ProviderUrls(**urls),
            paypal_cert_origins=(self.paypal.base_url,),
            profiles=(PageProfile("demo", DEMO_BILLING, "demo", tuple(frame_ancestors), "de", payments, show_pin),
                      PageProfile("other", OTHER_BILLING, "other", (), "en", ())),
            page_rate_per_min=page_rate_per_min, provider_timeout_s=timeout_s, provider_attempts=attempts,
            provider_retry_delay_s=0.05,
            # tests send 100 requests at once from 127.0.0.1
            limits=ConnectionLimits(max_connections=1000, max_connections_per_source=1000))
        # read at each request, as the node's holder is: a test that sets ``env.settings`` "reloads"
        self.site = build_site(lambda: self.settings, self.store, reactor)
        self.app = self.site.app
        self.ports.append(reactor.listenTCP(http_port, self.site, interface="127.0.0.1"))
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.client = treq.client.HTTPClient(Agent(reactor, pool=self.pool))

    def close(self) -> None:
        for fake in (self.paypal, self.klarna, self.psc):
            fake.stop()
        run(gatherResults([d for d in (p.stopListening() for p in self.ports) if d is not None]))
        self.store.close()
        reactor.installNameResolver(self._resolver)

    async def request(self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None,
                      url: str | None = None) -> Reply:
        h = {k: [v] for k, v in (headers or {}).items()}
        response = await self.client.request(method, url or self.base_url + path, data=body, headers=h,
                                             allow_redirects=False)
        content = await treq.content(response)
        headers_out = {k.decode().lower(): v[0].decode() for k, v in response.headers.getAllRawHeaders()}
        return Reply(response.code, headers_out, content)

    def call(self, method: str, path: str, **kwargs) -> Reply:
        return run(self.request(method, path, **kwargs))

    def balance(self, number: str, profile: str = "demo") -> int | None:
        account = run(self.store.account(profile, number))
        return account.balance_cents if account is not None else None

    def start_payment(self, method: str, number: str = "+4915112345678", amount_cents: int = 1000):
        """A payments row and the provider's payment, as the page's pay step makes them: (payment, redirect url)."""
        page = self.app.page

        class _Req:
            def isSecure(self):
                return False

        from webhook.httpkit import Ctx
        ctx = Ctx(_Req(), "POST", (), {}, {"host": self.base_url.split("//", 1)[1]}, b"", "127.0.0.1")
        profile = self.settings.profile("demo")
        answer = run(page.pay(ctx, profile, "de", number, amount_cents, method))
        location = dict(answer.headers)["Location"]
        payment = run(self.store.run(lambda conn: None))  # keep the pool warm
        rows = run(self.store.run(_latest_payment))
        return rows, location


def _latest_payment(conn):
    import sqlalchemy as sa

    from billing.db import model
    from webhook.payments import _to_payment
    row = conn.execute(sa.select(model.payments).order_by(model.payments.c.id.desc()).limit(1)).one()
    return _to_payment(row)
