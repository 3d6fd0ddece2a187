"""Klarna Payments (Sofort's successor) through the Hosted Payment Page, so callers need no JS SDK.

create: ``POST /payments/v1/sessions`` (the order), then ``POST /hpp/v1/sessions``
-> ``redirect_url``. Return: the HPP sends the customer back with
``authorization_token``; ``POST /payments/v1/authorizations/{token}/order``
places the order. Whether it is paid is read back from Klarna itself
(``GET /ordermanagement/v1/orders/{order_id}``): credit when ``fraud_status``
is ACCEPTED, once per order id. Notifications (fraud decisions of pending
orders) carry only an order id and are believed only as far as that read says.
Basic auth with the merchant's API username and password.
"""

from __future__ import annotations

import json
import re
from typing import Mapping
from urllib.parse import quote

from ..jsonbody import parse_json
from ..outgoing import Outgoing, ProviderUnavailable
from ..settings import MerchantAccount
from .base import EventKind, PaymentEvent, PaymentRequest, Redirect, Rejected, credentials_accepted

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")

#: a session id no session has (the all-zero UUID), read to try credentials
CHECK_SESSION_ID = "00000000-0000-0000-0000-000000000000"


def order_body(request: PaymentRequest) -> dict:
    """The Klarna Payments order for one top-up (no tax: credit for a service)."""
    return {
        "purchase_country": request.locale.split("-")[-1].upper() if "-" in request.locale else "DE",
        "purchase_currency": request.currency,
        "locale": request.locale,
        "order_amount": request.amount_cents,
        "order_tax_amount": 0,
        "order_lines": [{"type": "digital", "reference": request.reference, "name": request.description[:255],
                         "quantity": 1, "unit_price": request.amount_cents, "tax_rate": 0,
                         "total_amount": request.amount_cents, "total_tax_amount": 0}],
        "merchant_reference1": request.reference,
        "intent": "buy",
    }


class Klarna:
    method = "klarna"

    def __init__(self, outgoing: Outgoing, api_url: str) -> None:
        self.http = outgoing
        self.api_url = api_url.rstrip("/")

    async def _call(self, account: MerchantAccount, method: str, path: str, *, what: str, body=None):
        headers = {"Content-Type": ["application/json"], "Accept": ["application/json"]}
        data = json.dumps(body).encode() if body is not None else None
        return await self.http.request(method, f"{self.api_url}{path}", what=what, headers=headers,
                                       data=data, auth=(account.client_id, account.secret))

    async def check_credentials(self, account: MerchantAccount) -> bool:
        """Read a payment session that does not exist (``GET /payments/v1/sessions/{id}``): Klarna answers 401
        to a wrong API username or password, and 404 to credentials it accepts; nothing is created."""
        reply = await self._call(account, "GET", f"/payments/v1/sessions/{CHECK_SESSION_ID}",
                                 what="klarna credentials")
        return credentials_accepted(reply.status, "klarna credentials")

    async def create(self, request: PaymentRequest) -> Redirect:
        reply = await self._call(request.account, "POST", "/payments/v1/sessions", what="klarna session",
                                 body=order_body(request))
        doc = reply.json()
        if reply.status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("session_id"), str):
            raise ProviderUnavailable(f"klarna session: HTTP {reply.status}")
        session_id = doc["session_id"]
        sep = "&" if "?" in request.return_url else "?"
        hpp = {
            "payment_session_url": f"{self.api_url}/payments/v1/sessions/{session_id}",
            "merchant_urls": {
                "success": f"{request.return_url}{sep}sid={{{{session_id}}}}&authorization_token={{{{authorization_token}}}}",
                "cancel": request.cancel_url, "back": request.cancel_url,
                "failure": request.cancel_url, "error": request.cancel_url,
                "status_update": request.notify_url,
            },
            "options": {"place_order_mode": "NONE"},
        }
        reply = await self._call(request.account, "POST", "/hpp/v1/sessions", what="klarna hpp session", body=hpp)
        doc = reply.json()
        if reply.status not in (200, 201) or not isinstance(doc, dict) or not isinstance(doc.get("redirect_url"), str):
            raise ProviderUnavailable(f"klarna hpp session: HTTP {reply.status}")
        return Redirect(url=doc["redirect_url"], provider_ref=session_id)

    async def _order_event(self, account: MerchantAccount, order_id: str) -> PaymentEvent | None:
        """The order as Klarna has it (None: not an order of this account)."""
        reply = await self._call(account, "GET", f"/ordermanagement/v1/orders/{quote(order_id, safe='')}",
                                 what="klarna read order")
        if reply.status in (401, 403, 404):
            return None
        doc = reply.json()
        if reply.status != 200 or not isinstance(doc, dict):
            raise ProviderUnavailable(f"klarna read order: HTTP {reply.status}")
        fraud = doc.get("fraud_status")
        status = doc.get("status")
        if status in ("CANCELLED",) or fraud == "REJECTED":
            kind = EventKind.FAILED
        elif fraud == "ACCEPTED":
            kind = EventKind.COMPLETED
        else:
            kind = EventKind.PENDING
        amount = doc.get("order_amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise Rejected("klarna order without an amount")
        return PaymentEvent(self.method, kind, order_id, amount, str(doc.get("purchase_currency", "")),
                            reference=doc.get("merchant_reference1") or None)

    async def on_return(self, request: PaymentRequest, provider_ref: str,
                        query: Mapping[str, str]) -> PaymentEvent:
        token = query.get("authorization_token", "")
        if not _TOKEN.match(token):
            raise Rejected("missing or malformed authorization_token")
        reply = await self._call(request.account, "POST", f"/payments/v1/authorizations/{token}/order",
                                 what="klarna place order", body=order_body(request))
        doc = reply.json()
        if reply.status in (400, 403, 404, 409):
            raise Rejected(f"klarna refused the order (HTTP {reply.status})", 409)
        if reply.status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("order_id"), str):
            raise ProviderUnavailable(f"klarna place order: HTTP {reply.status}")
        event = await self._order_event(request.account, doc["order_id"])
        if event is None:
            raise ProviderUnavailable("klarna place order: the new order cannot be read")
        return event

    async def on_notification(self, accounts: tuple[MerchantAccount, ...], headers: Mapping[str, str],
                              body: bytes, query: Mapping[str, str]) -> list[PaymentEvent]:
        try:
            doc = parse_json(body)
        except ValueError:
            raise Rejected("not JSON") from None
        order_id = doc.get("order_id") if isinstance(doc, dict) else None
        if order_id is None and isinstance(doc, dict) and isinstance(doc.get("session"), dict):
            order_id = doc["session"].get("order_id")
        if order_id is None and isinstance(doc, dict) and isinstance(doc.get("session"), dict) \
                and doc["session"].get("authorization_token"):
            # the HPP's status callback before any order exists: the order is placed on the customer's return
            return []
        if not isinstance(order_id, str) or not _TOKEN.match(order_id):
            raise Rejected("no order_id")
        for account in accounts:
            event = await self._order_event(account, order_id)
            if event is not None:
                return [event]
        raise Rejected("no such order at Klarna", 404)
