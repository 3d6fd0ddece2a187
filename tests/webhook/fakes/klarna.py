"""A fake Klarna: Payments sessions, the Hosted Payment Page, authorizations -> order, order management.

Shapes as in Klarna's docs: ``POST /payments/v1/sessions`` -> ``{session_id,
client_token, payment_method_categories}``, ``GET /payments/v1/sessions/{id}``
reads it (404: no such session); ``POST /hpp/v1/sessions`` with
``payment_session_url`` and ``merchant_urls`` -> ``{session_id, redirect_url,
session_url}``; the HPP sends the customer to ``merchant_urls.success`` with
``{{session_id}}`` and ``{{authorization_token}}`` filled in;
``POST /payments/v1/authorizations/{token}/order`` -> ``{order_id,
redirect_url, fraud_status}``; ``GET /ordermanagement/v1/orders/{id}`` ->
``{order_id, status, fraud_status, order_amount, purchase_currency, merchant_reference1}``.
Basic auth with the merchant's API username and password.
"""

from __future__ import annotations

import json
import uuid

from .base import FakeProvider


class FakeKlarna(FakeProvider):
    def __init__(self, reactor, *, username="K123456_abc", password="klarna-secret") -> None:
        super().__init__(reactor)
        self.username, self.password = username, password
        self.sessions: dict[str, dict] = {}
        self.hpp: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}      # authorization_token -> payments session id
        self.orders: dict[str, dict] = {}
        #: the fraud decision new orders get
        self.fraud_status = "ACCEPTED"

    def _auth(self, request) -> bool:
        return self.basic_auth(request) == (self.username, self.password)

    def create_session(self, request, match, body):
        if not self._auth(request):
            return self._reply(request, 401, {"error_code": "UNAUTHORIZED"})
        doc = json.loads(body)
        sid = str(uuid.uuid4())
        self.sessions[sid] = {"order": doc, "status": "incomplete"}
        return self._reply(request, 200, {"session_id": sid, "client_token": "eyJhbGciOiJSUzI1NiJ9.fake",
                                          "payment_method_categories": [{"identifier": "pay_now",
                                                                         "name": "Sofort bezahlen"}]})

    def create_hpp(self, request, match, body):
        if not self._auth(request):
            return self._reply(request, 401, {"error_code": "UNAUTHORIZED"})
        doc = json.loads(body)
        sid = doc["payment_session_url"].rstrip("/").rsplit("/", 1)[-1]
        if sid not in self.sessions:
            return self._reply(request, 400, {"error_code": "BAD_VALUE", "error_messages": ["payment_session_url"]})
        hid = str(uuid.uuid4())
        self.hpp[hid] = {"session_id": sid, "merchant_urls": doc["merchant_urls"]}
        return self._reply(request, 201, {"session_id": hid, "redirect_url": f"{self.base_url}/hpp/pay/{hid}",
                                          "session_url": f"{self.base_url}/hpp/v1/sessions/{hid}",
                                          "expires_at": "2038-01-01T00:00:00Z"})

    def hpp_page(self, request, match, body):
        """The customer pays on the HPP: back to merchant_urls.success with the placeholders filled."""
        hpp = self.hpp.get(match.group(1))
        if hpp is None:
            return self._reply(request, 404, {"error_code": "NOT_FOUND"})
        token = str(uuid.uuid4())
        self.tokens[token] = hpp["session_id"]
        url = (hpp["merchant_urls"]["success"].replace("{{session_id}}", hpp["session_id"])
               .replace("{{authorization_token}}", token))
        return self._redirect(request, url)

    def read_session(self, request, match, body):
        """``GET /payments/v1/sessions/{id}``: 401 to wrong credentials, 404 to a session there is not."""
        if not self._auth(request):
            return self._reply(request, 401, {"error_code": "UNAUTHORIZED"})
        session = self.sessions.get(match.group(1))
        if session is None:
            return self._reply(request, 404, {"error_code": "NOT_FOUND", "error_messages": ["session not found"]})
        return self._reply(request, 200, dict(session["order"], status=session["status"]))

    def authorize(self, session_id: str) -> str:
        """An authorization token for a session, as if the customer had paid (for tests without the HPP)."""
        token = str(uuid.uuid4())
        self.tokens[token] = session_id
        return token

    def place_order(self, request, match, body):
        if not self._auth(request):
            return self._reply(request, 401, {"error_code": "UNAUTHORIZED"})
        token = match.group(1)
        sid = self.tokens.pop(token, None)
        if sid is None:
            return self._reply(request, 404, {"error_code": "NOT_FOUND",
                                              "error_messages": ["Invalid authorization token"]})
        doc = json.loads(body)
        oid = str(uuid.uuid4())
        self.orders[oid] = {"order_id": oid, "status": "AUTHORIZED", "fraud_status": self.fraud_status,
                            "order_amount": doc["order_amount"], "purchase_currency": doc["purchase_currency"],
                            "merchant_reference1": doc.get("merchant_reference1"), "session_id": sid}
        return self._reply(request, 200, {"order_id": oid, "redirect_url": f"{self.base_url}/confirmation/{oid}",
                                          "fraud_status": self.fraud_status,
                                          "authorized_payment_method": {"type": "direct_bank_transfer"}})

    def get_order(self, request, match, body):
        if not self._auth(request):
            return self._reply(request, 401, {"error_code": "UNAUTHORIZED"})
        order = self.orders.get(match.group(1))
        if order is None:
            return self._reply(request, 404, {"error_code": "NO_SUCH_ORDER"})
        return self._reply(request, 200, {k: v for k, v in order.items() if k != "session_id"})

    routes = (
        ("POST", r"/payments/v1/sessions", create_session),
        ("GET", r"/payments/v1/sessions/([0-9a-f\-]+)", read_session),
        ("POST", r"/hpp/v1/sessions", create_hpp),
        ("GET", r"/hpp/pay/([0-9a-f\-]+)", hpp_page),
        ("POST", r"/payments/v1/authorizations/([0-9a-f\-]+)/order", place_order),
        ("GET", r"/ordermanagement/v1/orders/([0-9a-f\-]+)", get_order),
    )
