"""A fake PayPal: OAuth2 client credentials, Orders v2 (create, approve page, capture, get), webhook signing.

Shapes as in PayPal's REST docs: ``POST /v1/oauth2/token`` (Basic
client_id:secret, ``grant_type=client_credentials``) -> ``access_token``;
``POST /v2/checkout/orders`` -> ``{id, status: PAYER_ACTION_REQUIRED, links:
[{rel: payer-action, href}]}``; capture -> ``purchase_units[0].payments.captures[0]``
with ``custom_id``/``invoice_id``; an already captured order -> 422
``ORDER_ALREADY_CAPTURED``. Webhooks are signed like PayPal's: RSA-SHA256 over
``transmission_id|time|webhook_id|crc32(body)`` with a certificate served at
``/v1/notifications/certs/CERT-test``.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import uuid
from urllib.parse import parse_qs, urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from webhook.providers.paypal import signed_string

from .base import FakeProvider


def make_cert(common_name: str = "messageverificationcerts.paypal.com"):
    """A fresh RSA key and a self-signed certificate for it (valid from yesterday for a year)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    return key, cert


class FakePayPal(FakeProvider):
    def __init__(self, reactor, *, client_id="pp-client", secret="pp-secret", key_and_cert=None) -> None:
        super().__init__(reactor)
        self.client_id, self.secret = client_id, secret
        self.key, self.cert = key_and_cert or make_cert()
        self.orders: dict[str, dict] = {}
        self.tokens: set[str] = set()
        #: the client id of every token request, right or wrong (what a merchant's app sent us)
        self.client_ids: list[str] = []
        self._ids = itertools.count(1)

    # -- webhooks -----------------------------------------------------------------

    @property
    def cert_url(self) -> str:
        return f"{self.base_url}/v1/notifications/certs/CERT-test"

    def sign(self, event: dict, webhook_id: str, *, key=None, cert_url: str | None = None) -> tuple[dict, bytes]:
        """A webhook delivery (headers, raw body) signed as PayPal signs it."""
        body = json.dumps(event).encode()
        tid = str(uuid.uuid4())
        ttime = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        sig = (key or self.key).sign(signed_string(tid, ttime, webhook_id, body), padding.PKCS1v15(), hashes.SHA256())
        headers = {"PAYPAL-TRANSMISSION-ID": tid, "PAYPAL-TRANSMISSION-TIME": ttime,
                   "PAYPAL-TRANSMISSION-SIG": base64.b64encode(sig).decode(), "PAYPAL-AUTH-ALGO": "SHA256withRSA",
                   "PAYPAL-CERT-URL": cert_url or self.cert_url, "Content-Type": "application/json"}
        return headers, body

    @staticmethod
    def capture_event(capture_id: str, reference: str, value: str, currency: str = "EUR",
                      event_type: str = "PAYMENT.CAPTURE.COMPLETED", order_id: str | None = None) -> dict:
        """A capture's webhook event; with ``order_id`` its ``supplementary_data.related_ids`` names the order."""
        resource = {"id": capture_id, "status": "COMPLETED" if "COMPLETED" in event_type else "REVERSED",
                    "amount": {"currency_code": currency, "value": value},
                    "custom_id": reference, "invoice_id": reference, "final_capture": True, "links": []}
        if order_id is not None:
            resource["supplementary_data"] = {"related_ids": {"order_id": order_id}}
        return {"id": f"WH-{uuid.uuid4().hex[:16]}", "event_version": "1.0", "resource_type": "capture",
                "event_type": event_type, "summary": f"Payment {value} {currency}", "resource": resource}

    @staticmethod
    def refund_event(refund_id: str, capture_id: str, reference: str, value: str, currency: str = "EUR") -> dict:
        return {"id": f"WH-{uuid.uuid4().hex[:16]}", "event_version": "1.0", "resource_type": "refund",
                "event_type": "PAYMENT.CAPTURE.REFUNDED",
                "resource": {"id": refund_id, "status": "COMPLETED", "custom_id": reference, "invoice_id": reference,
                             "amount": {"currency_code": currency, "value": value},
                             "links": [{"rel": "up", "method": "GET",
                                        "href": f"https://api.paypal.com/v2/payments/captures/{capture_id}"}]}}

    # -- REST -----------------------------------------------------------------------

    def _authorized(self, request) -> bool:
        header = request.getHeader("authorization") or ""
        return header.startswith("Bearer ") and header[7:] in self.tokens

    def token(self, request, match, body):
        self.client_ids.append((self.basic_auth(request) or ("", ""))[0])
        if self.basic_auth(request) != (self.client_id, self.secret):
            return self._reply(request, 401, {"error": "invalid_client"})
        if parse_qs(body.decode()).get("grant_type") != ["client_credentials"]:
            return self._reply(request, 400, {"error": "unsupported_grant_type"})
        token = f"A21AA{uuid.uuid4().hex}"
        self.tokens.add(token)
        return self._reply(request, 200, {"scope": "https://uri.paypal.com/services/payments/payment",
                                          "access_token": token, "token_type": "Bearer",
                                          "app_id": "APP-80W284485P519543T", "expires_in": 32400,
                                          "nonce": uuid.uuid4().hex})

    def create_order(self, request, match, body):
        if not self._authorized(request):
            return self._reply(request, 401, {"name": "AUTHENTICATION_FAILURE"})
        doc = json.loads(body)
        unit = doc["purchase_units"][0]
        ctx = doc["payment_source"]["paypal"]["experience_context"]
        order_id = f"5O190127TN{next(self._ids):06d}"
        self.orders[order_id] = {"id": order_id, "status": "PAYER_ACTION_REQUIRED", "unit": unit,
                                 "return_url": ctx["return_url"], "cancel_url": ctx["cancel_url"], "capture": None}
        return self._reply(request, 200, {
            "id": order_id, "status": "PAYER_ACTION_REQUIRED",
            "payment_source": {"paypal": {}},
            "links": [{"href": f"{self.base_url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
                      {"href": f"{self.base_url}/checkoutnow?token={order_id}", "rel": "payer-action",
                       "method": "GET"}]})

    def approve_page(self, request, match, body):
        """The buyer logs in and approves: back to the merchant's return_url with token and PayerID."""
        order_id = request.args.get(b"token", [b""])[0].decode()
        order = self.orders.get(order_id)
        if order is None:
            return self._reply(request, 404, {"name": "RESOURCE_NOT_FOUND"})
        order["status"] = "APPROVED"
        sep = "&" if "?" in order["return_url"] else "?"
        return self._redirect(request, order["return_url"] + sep + urlencode({"token": order_id,
                                                                              "PayerID": "QYR5Z8XDVJNXQ"}))

    def _order_doc(self, order):
        unit = {"reference_id": order["unit"].get("reference_id"), "amount": order["unit"]["amount"],
                "custom_id": order["unit"].get("custom_id"), "invoice_id": order["unit"].get("invoice_id")}
        if order["capture"] is not None:
            unit["payments"] = {"captures": [order["capture"]]}
        return {"id": order["id"], "status": order["status"], "purchase_units": [unit],
                "payer": {"payer_id": "QYR5Z8XDVJNXQ"}}

    def capture(self, request, match, body):
        if not self._authorized(request):
            return self._reply(request, 401, {"name": "AUTHENTICATION_FAILURE"})
        order = self.orders.get(match.group(1))
        if order is None:
            return self._reply(request, 404, {"name": "RESOURCE_NOT_FOUND"})
        if order["status"] == "COMPLETED":
            return self._reply(request, 422, {"name": "UNPROCESSABLE_ENTITY",
                                              "details": [{"issue": "ORDER_ALREADY_CAPTURED"}]})
        if order["status"] != "APPROVED":
            return self._reply(request, 422, {"name": "UNPROCESSABLE_ENTITY",
                                              "details": [{"issue": "ORDER_NOT_APPROVED"}]})
        order["status"] = "COMPLETED"
        unit = order["unit"]
        order["capture"] = {"id": f"3C679366HH{next(self._ids):06d}", "status": "COMPLETED",
                            "amount": dict(unit["amount"]), "custom_id": unit.get("custom_id"),
                            "invoice_id": unit.get("invoice_id"), "final_capture": True,
                            "seller_protection": {"status": "ELIGIBLE"},
                            "supplementary_data": {"related_ids": {"order_id": order["id"]}}}
        return self._reply(request, 201, self._order_doc(order))

    def get_order(self, request, match, body):
        if not self._authorized(request):
            return self._reply(request, 401, {"name": "AUTHENTICATION_FAILURE"})
        order = self.orders.get(match.group(1))
        if order is None:
            return self._reply(request, 404, {"name": "RESOURCE_NOT_FOUND"})
        return self._reply(request, 200, self._order_doc(order))

    def cert_pem(self, request, match, body):
        request.setHeader("Content-Type", "application/x-pem-file")
        return self.cert.public_bytes(serialization.Encoding.PEM)

    routes = (
        ("POST", r"/v1/oauth2/token", token),
        ("POST", r"/v2/checkout/orders", create_order),
        ("GET", r"/checkoutnow", approve_page),
        ("POST", r"/v2/checkout/orders/([A-Z0-9]+)/capture", capture),
        ("GET", r"/v2/checkout/orders/([A-Z0-9]+)", get_order),
        ("GET", r"/v1/notifications/certs/CERT-test", cert_pem),
    )
