"""PayPal: Orders v2 (create, capture on return) and webhooks verified before they are parsed.

Verification (PayPal's "self-verify" method): the signed string is
``transmission_id|transmission_time|webhook_id|crc32(raw body)`` with the
CRC32 in decimal; ``PAYPAL-TRANSMISSION-SIG`` is its RSA-SHA256 signature
(base64) under the certificate at ``PAYPAL-CERT-URL``, which is fetched only
from PayPal's own origins (configurable) and cached per URL.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Mapping
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..jsonbody import parse_json
from ..outgoing import Outgoing, ProviderUnavailable
from ..settings import MerchantAccount
from .base import REFUSED, EventKind, PaymentEvent, PaymentRequest, Redirect, Rejected, to_cents, to_text

#: seconds before its expiry an OAuth token is renewed
TOKEN_MARGIN_S = 60

_EVENT_KINDS = {
    "PAYMENT.CAPTURE.COMPLETED": EventKind.COMPLETED,
    "PAYMENT.CAPTURE.REFUNDED": EventKind.REVERSED,
    "PAYMENT.CAPTURE.REVERSED": EventKind.REVERSED,
    "PAYMENT.CAPTURE.DENIED": EventKind.FAILED,
    "PAYMENT.CAPTURE.PENDING": EventKind.PENDING,
}


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def signed_string(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    """What PayPal signs for one webhook delivery."""
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


class PayPal:
    method = "paypal"

    def __init__(self, outgoing: Outgoing, api_url: str, *, cert_origins: tuple[str, ...]) -> None:
        self.http = outgoing
        self.api_url = api_url.rstrip("/")
        self.cert_origins = {o for o in (_origin(c) for c in cert_origins) if o}
        self._certs: dict[str, rsa.RSAPublicKey] = {}
        #: access tokens by the whole account: credentials changed by a reload get a token of their own
        self._tokens: dict[MerchantAccount, tuple[str, float]] = {}

    # -- Orders v2 -----------------------------------------------------------------

    async def _token(self, account: MerchantAccount) -> str:
        now = self.http.reactor.seconds()
        cached = self._tokens.get(account)
        if cached and cached[1] > now:
            return cached[0]
        return await self._new_token(account, await self._token_reply(account))

    async def _token_reply(self, account: MerchantAccount):
        """OAuth2 client credentials: ``POST /v1/oauth2/token``, Basic client_id:secret."""
        return await self.http.request(
            "POST", f"{self.api_url}/v1/oauth2/token", what="paypal token",
            auth=(account.client_id, account.secret), data={"grant_type": "client_credentials"},
            headers={"Accept": ["application/json"]})

    async def check_credentials(self, account: MerchantAccount) -> bool:
        """A token for the client ID and secret (PayPal answers 401 ``invalid_client`` to wrong ones)."""
        reply = await self._token_reply(account)
        if reply.status in REFUSED:
            return False
        await self._new_token(account, reply)
        return True

    async def _new_token(self, account: MerchantAccount, reply) -> str:
        now = self.http.reactor.seconds()
        doc = reply.json()
        if reply.status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("access_token"), str):
            raise ProviderUnavailable(f"paypal token: HTTP {reply.status}")
        expires = doc.get("expires_in", 300)
        expires = expires if isinstance(expires, int) else 300
        self._tokens[account] = (doc["access_token"], now + max(0, expires - TOKEN_MARGIN_S))
        return doc["access_token"]

    async def _api(self, account: MerchantAccount, method: str, path: str, *, what: str, body=None,
                   request_id: str | None = None):
        token = await self._token(account)
        headers = {"Authorization": [f"Bearer {token}"], "Content-Type": ["application/json"],
                   "Prefer": ["return=representation"]}
        if request_id:
            headers["PayPal-Request-Id"] = [request_id]
        data = json.dumps(body).encode() if body is not None else None
        reply = await self.http.request(method, f"{self.api_url}{path}", what=what, headers=headers, data=data)
        if reply.status == 401:
            self._tokens.pop(account, None)
        return reply

    async def create(self, request: PaymentRequest) -> Redirect:
        amount = {"currency_code": request.currency, "value": to_text(request.amount_cents)}
        body = {
            "intent": "CAPTURE",
            "purchase_units": [{"reference_id": request.reference, "custom_id": request.reference,
                                "invoice_id": request.reference, "description": request.description[:127],
                                "amount": amount}],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": request.return_url, "cancel_url": request.cancel_url,
                "user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING", "locale": request.locale}}},
        }
        reply = await self._api(request.account, "POST", "/v2/checkout/orders", what="paypal create order",
                                body=body, request_id=f"create-{request.reference}")
        doc = reply.json()
        if reply.status not in (200, 201) or not isinstance(doc, dict):
            raise ProviderUnavailable(f"paypal create order: HTTP {reply.status}")
        for link in doc.get("links", ()):
            if isinstance(link, dict) and link.get("rel") in ("payer-action", "approve"):
                return Redirect(url=str(link.get("href")), provider_ref=str(doc.get("id")))
        raise ProviderUnavailable("paypal create order: no approve link in the answer")

    async def on_return(self, request: PaymentRequest, provider_ref: str,
                        query: Mapping[str, str]) -> PaymentEvent:
        """Capture the approved order (idempotent at PayPal by ``PayPal-Request-Id``)."""
        account = request.account
        token = query.get("token", "")
        if token and token != provider_ref:
            raise Rejected("the returned order is not this payment's order")
        reply = await self._api(account, "POST", f"/v2/checkout/orders/{provider_ref}/capture",
                                what="paypal capture", body={}, request_id=f"capture-{provider_ref}")
        doc = reply.json()
        if reply.status == 422 and isinstance(doc, dict) and _issue(doc) == "ORDER_ALREADY_CAPTURED":
            reply = await self._api(account, "GET", f"/v2/checkout/orders/{provider_ref}", what="paypal order")
            doc = reply.json()
        if reply.status == 422:
            return PaymentEvent(self.method, EventKind.PENDING, provider_ref, 0, "", provider_ref=provider_ref)
        if reply.status not in (200, 201) or not isinstance(doc, dict):
            raise ProviderUnavailable(f"paypal capture: HTTP {reply.status}")
        try:
            unit = doc["purchase_units"][0]
            capture = unit["payments"]["captures"][0]
        except (KeyError, IndexError, TypeError):
            return PaymentEvent(self.method, EventKind.PENDING, provider_ref, 0, "", provider_ref=provider_ref)
        return _capture_event(capture, EventKind.COMPLETED if capture.get("status") == "COMPLETED"
                              else EventKind.PENDING, fallback_ref=unit.get("custom_id"), provider_ref=provider_ref)

    # -- webhooks --------------------------------------------------------------------

    async def _cert_key(self, url: str) -> rsa.RSAPublicKey:
        origin = _origin(url)
        if origin is None or origin not in self.cert_origins:
            raise Rejected("PAYPAL-CERT-URL is not one of PayPal's certificate hosts")
        key = self._certs.get(url)
        if key is None:
            reply = await self.http.request("GET", url, what="paypal certificate")
            if reply.status != 200:
                raise ProviderUnavailable(f"paypal certificate: HTTP {reply.status}")
            try:
                cert = x509.load_pem_x509_certificate(reply.body)
            except ValueError:
                raise Rejected("PAYPAL-CERT-URL does not hold a PEM certificate") from None
            now = self.http.reactor.seconds()
            if not (cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp()):
                raise Rejected("the signing certificate is not valid now")
            key = cert.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise Rejected("the signing certificate has no RSA key")
            if len(self._certs) > 64:
                self._certs.clear()
            self._certs[url] = key
        return key

    async def verify(self, accounts: tuple[MerchantAccount, ...], headers: Mapping[str, str],
                     body: bytes) -> MerchantAccount:
        """The account whose webhook id the signature is made with; Rejected when none (before parsing)."""
        get = {k.lower(): v for k, v in headers.items()}.get
        tid, ttime = get("paypal-transmission-id", ""), get("paypal-transmission-time", "")
        sig, cert_url = get("paypal-transmission-sig", ""), get("paypal-cert-url", "")
        algo = get("paypal-auth-algo", "SHA256withRSA")
        if not (tid and ttime and sig and cert_url):
            raise Rejected("missing PAYPAL-TRANSMISSION-* or PAYPAL-CERT-URL headers", 401)
        if algo != "SHA256withRSA":
            raise Rejected(f"unsupported PAYPAL-AUTH-ALGO {algo!r}", 401)
        try:
            signature = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected("PAYPAL-TRANSMISSION-SIG is not base64", 401) from None
        key = await self._cert_key(cert_url)
        for account in accounts:
            if not account.webhook_id:
                continue
            try:
                key.verify(signature, signed_string(tid, ttime, account.webhook_id, body),
                           padding.PKCS1v15(), hashes.SHA256())
                return account
            except InvalidSignature:
                continue
        raise Rejected("signature does not verify", 401)

    async def on_notification(self, accounts: tuple[MerchantAccount, ...], headers: Mapping[str, str],
                              body: bytes, query: Mapping[str, str]) -> list[PaymentEvent]:
        await self.verify(accounts, headers, body)
        try:
            doc = parse_json(body)
            event_type = doc["event_type"]
            resource = doc["resource"]
        except (ValueError, KeyError, TypeError):
            raise Rejected("not a PayPal webhook event") from None
        kind = _EVENT_KINDS.get(event_type)
        if kind is None or not isinstance(resource, dict):
            return []
        if event_type == "PAYMENT.CAPTURE.REFUNDED":
            # the resource is the refund; its "up" link names the capture it refunds
            capture_id = next((str(l.get("href", "")).rstrip("/").rsplit("/", 1)[-1]
                               for l in resource.get("links", ()) if isinstance(l, dict) and l.get("rel") == "up"),
                              None)
            event = _capture_event(resource, kind)
            return [PaymentEvent(self.method, kind, f"refund:{event.credit_ref}", event.amount_cents,
                                 event.currency, reference=event.reference, provider_ref=capture_id)]
        event = _capture_event(resource, kind)
        if kind is EventKind.REVERSED:
            return [PaymentEvent(self.method, kind, f"reversal:{event.credit_ref}", event.amount_cents,
                                 event.currency, reference=event.reference, provider_ref=event.credit_ref)]
        return [event]


def _issue(doc: dict) -> str:
    details = doc.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("issue", ""))
    return ""


def _related_order(capture: dict) -> str | None:
    """The order a capture belongs to (``supplementary_data.related_ids.order_id``), when PayPal says."""
    related = capture.get("supplementary_data")
    related = related.get("related_ids") if isinstance(related, dict) else None
    order_id = related.get("order_id") if isinstance(related, dict) else None
    return order_id if isinstance(order_id, str) and order_id else None


def _capture_event(capture: dict, kind: EventKind, *, fallback_ref=None, provider_ref=None) -> PaymentEvent:
    try:
        amount = capture["amount"]
        cents = to_cents(amount["value"])
        currency = str(amount["currency_code"])
        capture_id = str(capture["id"])
    except (KeyError, TypeError):
        raise Rejected("capture without id or amount") from None
    reference = capture.get("custom_id") or capture.get("invoice_id") or fallback_ref
    if provider_ref is None:
        provider_ref = _related_order(capture)
    return PaymentEvent("paypal", kind, capture_id, cents, currency,
                        reference=str(reference) if reference else None, provider_ref=provider_ref)
