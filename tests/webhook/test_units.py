"""Sans-I/O pieces of the web side, on task.Clock and plain values."""

from __future__ import annotations

import zlib

import pytest
from twisted.internet.task import Clock

from webhook.metrics import Metrics
from webhook.outgoing import Outgoing
from webhook.providers import Klarna, PayPal, Paysafecard, Provider, Rejected
from webhook.providers.base import to_cents, to_text
from webhook.providers.paypal import signed_string
from webhook.ratelimit import RateLimiter
from webhook.server import access_log_line


def test_rate_limiter_refills_with_the_clock():
    """3 per minute: the 4th request at once is refused, one more is allowed 20 s later; keys are separate."""
    clock = Clock()
    limiter = RateLimiter(clock, 3)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")
    clock.advance(20)
    assert limiter.allow("a") and not limiter.allow("a")


def test_rate_limiter_table_is_bounded():
    """Past max_keys the table drops idle buckets first and never grows beyond the bound."""
    clock = Clock()
    limiter = RateLimiter(clock, 60, max_keys=10)
    for i in range(100):
        limiter.allow(f"k{i}")
    assert len(limiter._buckets) <= 10


def test_paypal_signed_string_uses_decimal_crc32():
    """transmission_id|time|webhook_id|crc32 as an unsigned decimal, over the raw body bytes."""
    body = b'{"event_type":"PAYMENT.CAPTURE.COMPLETED"}'
    assert signed_string("t1", "2026-11-29T00:00:00Z", "WH", body) == \
        f"t1|2026-11-29T00:00:00Z|WH|{zlib.crc32(body)}".encode()


def test_amounts_between_provider_text_and_cents():
    """'10.00', 10.0 and '0.5' are cents exactly; fractions of a cent and garbage are Rejected."""
    assert to_cents("10.00") == 1000 and to_cents(10.0) == 1000 and to_cents("0.5") == 50
    assert to_text(1005) == "10.05"
    for bad in ("10.001", "abc", None, "NaN"):
        with pytest.raises(Rejected):
            to_cents(bad)


def test_every_adapter_provides_the_provider_interface():
    """PayPal, Klarna and paysafecard adapters all satisfy the one Provider protocol."""
    out = Outgoing(Clock(), agent=object())
    for adapter in (PayPal(out, "https://x", cert_origins=()), Klarna(out, "https://x"), Paysafecard(out, "https://x")):
        assert isinstance(adapter, Provider)
        assert adapter.method in ("paypal", "klarna", "paysafecard")


def test_metrics_text_format():
    """Counters render as Prometheus text with HELP, TYPE and escaped labels; unknown names are refused."""
    m = Metrics()
    m.inc("prepaid_payment_credits_total", method="pay\"pal")
    text = m.render().decode()
    assert '# TYPE prepaid_payment_credits_total counter' in text
    assert 'prepaid_payment_credits_total{method="pay\\"pal"} 1' in text
    with pytest.raises(KeyError):
        m.inc("nope")


def test_access_log_has_no_query_string_reference_or_number():
    """Return URLs carry provider tokens in the query, their last segment is the payment reference (the
    page shows the balance and PIN), API paths hold phone numbers: the log keeps none of them, and
    control characters in a path are escaped, not written."""
    from twisted.web.test.requesthelper import DummyRequest

    def line(path: bytes) -> str:
        request = DummyRequest([b"topup"])
        request.path = path
        request.uri = path + b"?authorization_token=secret-token"
        request.method = b"GET"
        request.code = 200
        request.sentLength = 10
        return access_log_line("[29/Nov/2026:03:00:00 +0000]", request)
    ret = line(b"/topup/demo/return/REF7secret")
    assert "secret" not in ret and '"GET /topup/demo/return/-" 200' in ret
    assert "/topup/demo/cancel/-" in line(b"/topup/demo/cancel/REF7secret")
    assert "4915112345678" not in line(b"/api/v1/accounts/demo/%2B4915112345678/transactions")
    assert "/api/v1/accounts/demo/-/transactions" in line(b"/api/v1/accounts/demo/%2B4915112345678/transactions")
    assert line(b"/x%0d%0afake 200 line").count("\n") == 0 and "/x\\x0d\\x0afake\\x20" in line(b"/x%0d%0afake 200")


def test_an_answer_to_a_client_that_went_away_is_not_written():
    """A client that closed its connection before the answer: the request says it is not answerable any
    more, and ``write_answer`` writes nothing (no status, no body) instead of writing into a gone channel."""
    from twisted.python.failure import Failure
    from twisted.web.test.requesthelper import DummyChannel

    from webhook.httpkit import LimitedRequest, json_answer, write_answer

    channel = DummyChannel()
    request = LimitedRequest(channel)
    assert request.answerable
    request.connectionLost(Failure(ConnectionError("client gone")))
    assert not request.answerable
    write_answer(request, json_answer(200, {"ok": True}))
    assert not request.startedWriting and channel.transport.written.getvalue() == b""
