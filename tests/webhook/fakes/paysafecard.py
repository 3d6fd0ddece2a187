"""A fake paysafecard REST API (``/v1/payments``), Basic auth with the API key.

``POST /v1/payments`` ``{type: PAYSAFECARD, amount, currency, redirect:
{success_url, failure_url}, notification_url, customer: {id}}`` -> the payment
with ``status: INITIATED`` and ``redirect.auth_url``; the customer panel at
``auth_url`` makes it AUTHORIZED and sends the customer to ``success_url``
(``{payment_id}`` filled in); ``GET /v1/payments/{id}``; ``POST
/v1/payments/{id}/capture`` -> ``status: SUCCESS``, a second capture -> 400.
"""

from __future__ import annotations

import base64
import json
import uuid

from .base import FakeProvider


class FakePaysafecard(FakeProvider):
    def __init__(self, reactor, *, api_key="psc_test_key") -> None:
        super().__init__(reactor)
        self.api_key = api_key
        self.payments: dict[str, dict] = {}
        self.captures = 0

    def _auth(self, request) -> bool:
        header = request.getHeader("authorization") or ""
        return header == "Basic " + base64.b64encode(self.api_key.encode()).decode()

    def create(self, request, match, body):
        if not self._auth(request):
            return self._reply(request, 401, {"code": "invalid_api_key", "number": 10008})
        doc = json.loads(body)
        if doc.get("type") != "PAYSAFECARD":
            return self._reply(request, 400, {"code": "invalid_request_parameter", "param": "type"})
        pid = f"pay_1090001806_{uuid.uuid4().hex[:32]}_EUR"
        payment = {"object": "PAYMENT", "id": pid, "created": 1430137532383, "updated": 1430137532383,
                   "amount": doc["amount"], "currency": doc["currency"], "status": "INITIATED",
                   "type": "PAYSAFECARD", "redirect": dict(doc["redirect"],
                                                           auth_url=f"{self.base_url}/customer/pay/{pid}"),
                   "customer": doc.get("customer", {}), "notification_url": doc.get("notification_url"),
                   "card_details": []}
        self.payments[pid] = payment
        return self._reply(request, 201, payment)

    def customer_panel(self, request, match, body):
        """The customer enters a PIN: AUTHORIZED, and back to success_url."""
        payment = self.payments.get(match.group(1))
        if payment is None:
            return self._reply(request, 404, {"code": "invalid_payment"})
        payment["status"] = "AUTHORIZED"
        return self._redirect(request, payment["redirect"]["success_url"].replace("{payment_id}", payment["id"]))

    def authorize(self, pid: str) -> None:
        self.payments[pid]["status"] = "AUTHORIZED"

    def get(self, request, match, body):
        if not self._auth(request):
            return self._reply(request, 401, {"code": "invalid_api_key", "number": 10008})
        payment = self.payments.get(match.group(1))
        if payment is None:
            return self._reply(request, 404, {"code": "invalid_payment", "number": 2001})
        return self._reply(request, 200, payment)

    def capture(self, request, match, body):
        if not self._auth(request):
            return self._reply(request, 401, {"code": "invalid_api_key", "number": 10008})
        payment = self.payments.get(match.group(1))
        if payment is None:
            return self._reply(request, 404, {"code": "invalid_payment", "number": 2001})
        if payment["status"] != "AUTHORIZED":
            return self._reply(request, 400, {"code": "invalid_request", "number": 2017,
                                              "message": f"payment is {payment['status']}"})
        self.captures += 1
        payment["status"] = "SUCCESS"
        payment["card_details"] = [{"serial": "0000000009903166", "type": "00035", "country": "DE",
                                    "currency": "EUR", "amount": payment["amount"]}]
        return self._reply(request, 200, payment)

    routes = (
        ("POST", r"/v1/payments", create),
        ("GET", r"/customer/pay/([A-Za-z0-9_]+)", customer_panel),
        ("GET", r"/v1/payments/([A-Za-z0-9_]+)", get),
        ("POST", r"/v1/payments/([A-Za-z0-9_]+)/capture", capture),
    )
