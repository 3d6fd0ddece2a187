"""Verified PayPal credits per second end to end, on SQLite and PostgreSQL.

Each credit is one signed ``PAYMENT.CAPTURE.COMPLETED`` POSTed to
``/hooks/paypal`` over loopback HTTP: the RSA-SHA256 signature check against
the (cached) certificate of a fake PayPal, the payment row looked up and
matched, the top-up and its bonus written to the ledger with the balance, the
payment's state moved, the answer written. ``--concurrency`` deliveries are
in flight at once; ``--count`` payments per backend (each a different caller).
The reference, measured in the same run on the same database: ``Store.topup``
called directly with the same concurrency (the ledger alone, no HTTP, no
signature, no payment row); the ratio says what the web side adds.

    .venv/bin/python bench/webhook.py [--count 300] [--concurrency 8] [--backends sqlite,postgresql]

PostgreSQL: ``$PREPAID_TEST_DATABASE_URL`` (default the local ``test`` database), in
a schema of its own, dropped afterwards. Writes ``bench/results/webhook.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402
import treq  # noqa: E402
from twisted.internet import defer, task  # noqa: E402
from twisted.web.client import Agent, HTTPConnectionPool  # noqa: E402
from twisted.web.server import Site  # noqa: E402

from billing.store import Store  # noqa: E402
from tests.webhook.fakes.paypal import FakePayPal  # noqa: E402
from tests.webhook.harness import ACCOUNTS, DEMO_BILLING, WEBHOOK_ID  # noqa: E402
from webhook.server import build_site  # noqa: E402
from webhook.settings import PageProfile, ProviderUrls, WebSettings  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"


def number(i: int) -> str:
    return f"+49151{i:08d}"


async def bounded(n: int, concurrency: int, make) -> None:
    """Run ``make(i)`` for i < n with at most ``concurrency`` in flight."""
    it = iter(range(n))

    async def worker():
        for i in it:
            await make(i)
    await defer.gatherResults([defer.ensureDeferred(worker()) for _ in range(concurrency)])


async def measure(reactor, url: str, count: int, concurrency: int) -> dict:
    fake = FakePayPal(reactor)
    fake_port = reactor.listenTCP(0, Site(fake), interface="127.0.0.1")
    fake.base_url = f"http://127.0.0.1:{fake_port.getHost().port}"
    store = Store.open(url, reactor, node_id="bench")
    await store.upgrade()
    settings = WebSettings(public_url="", accounts=ACCOUNTS, urls=ProviderUrls(paypal=fake.base_url),
                           paypal_cert_origins=(fake.base_url,),
                           profiles=(PageProfile("demo", DEMO_BILLING, "demo", (), "de", (("paypal", "demo-paypal"),)),))
    site = build_site(settings, store, reactor)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    base = f"http://127.0.0.1:{port.getHost().port}"
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = concurrency
    client = treq.client.HTTPClient(Agent(reactor, pool=pool))
    try:
        payments = []
        for i in range(count):
            payments.append(await site.app.payments.start("demo", number(i), 1000, "paypal"))
        deliveries = [fake.sign(fake.capture_event(f"CAP{i:08d}", p.reference, "10.00"), WEBHOOK_ID)
                      for i, p in enumerate(payments)]
        # warm the certificate cache and the connections with one extra payment
        warm = await site.app.payments.start("demo", "+4915199999999", 1000, "paypal")
        h, b = fake.sign(fake.capture_event("CAPWARM", warm.reference, "10.00"), WEBHOOK_ID)
        await treq.content(await client.post(base + "/hooks/paypal", data=b, headers={k: [v] for k, v in h.items()}))
        statuses: list[int] = []

        async def deliver(i):
            headers, body = deliveries[i]
            r = await client.post(base + "/hooks/paypal", data=body, headers={k: [v] for k, v in headers.items()})
            await treq.content(r)
            statuses.append(r.code)
        t0 = time.perf_counter()
        await bounded(count, concurrency, deliver)
        web_s = time.perf_counter() - t0
        credited = await store.run(lambda conn: conn.execute(sa.text(
            "select count(*), coalesce(sum(balance_cents), 0) from accounts where number like '+49151%' "
            "and number <> '+4915199999999'")).one())
        assert statuses.count(200) == count, statuses[:5]
        assert tuple(credited) == (count, count * 1100), tuple(credited)

        async def direct(i):
            await store.topup(DEMO_BILLING, f"+49160{i:08d}", 1000, source="bench", external_ref=f"ref-{i}",
                              actor="bench")
        t0 = time.perf_counter()
        await bounded(count, concurrency, direct)
        ref_s = time.perf_counter() - t0
    finally:
        await port.stopListening()
        await fake_port.stopListening()
        await pool.closeCachedConnections()
        store.close()
    web_rate, ref_rate = count / web_s, count / ref_s
    return {"count": count, "concurrency": concurrency, "verified_credits_per_s": round(web_rate, 1),
            "reference_topups_per_s": round(ref_rate, 1), "ratio": round(web_rate / ref_rate, 3)}


async def main(reactor, args) -> None:
    results = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            folder = tempfile.mkdtemp(prefix="bench-webhook-")
            results["sqlite"] = await measure(reactor, f"sqlite:///{folder}/bench.db", args.count, args.concurrency)
        else:
            from tests.conftest import pg_schema_url
            base = os.environ.get("PREPAID_TEST_DATABASE_URL") or DEFAULT_PG_URL
            schema = f"bench_{uuid.uuid4().hex[:16]}"
            engine = sa.create_engine(base)
            with engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            try:
                results["postgresql"] = await measure(reactor, pg_schema_url(base, schema), args.count,
                                                      args.concurrency)
            finally:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                engine.dispose()
        r = results[backend]
        print(f"{backend:10s} {r['verified_credits_per_s']:8.1f} verified PayPal credits/s end to end  "
              f"(reference Store.topup {r['reference_topups_per_s']:8.1f}/s, ratio {r['ratio']:.2f}; "
              f"{r['count']} payments, {r['concurrency']} in flight)")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "webhook.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, args)))
