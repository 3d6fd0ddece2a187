"""paysafecard REST: create the payment, send the customer to ``auth_url``; capture when AUTHORIZED.

The notification and the customer's success return are handled alike: read
the payment (``GET /v1/payments/{id}``); when it is AUTHORIZED capture it
(``POST /v1/payments/{id}/capture``); credit once when the capture (or a
later read) says SUCCESS. When both arrive at the same moment, the second
capture is refused by paysafecard or answers SUCCESS again, and the ledger's
uniqueness on the payment id credits once. Basic auth with the API key.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Mapping
from urllib.parse import quote

from ..jsonbody import parse_json
from ..outgoing import Outgoing, ProviderUnavailable
from ..settings import MerchantAccount
from .base import (EventKind, PaymentEvent, PaymentRequest, Redirect, Rejected, credentials_accepted, to_cents,
                   to_text)

_ID = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")

#: a payment id no payment has, read to try the API key
CHECK_PAYMENT_ID = "pay_0000000000_prepaidcredentialcheck00000000_EUR"

_FAILED = frozenset({"EXPIRED", "CANCELED_MERCHANT", "CANCELED_CUSTOMER", "FAILED"})


class Paysafecard:
    method = "paysafecard"

    def __init__(self, outgoing: Outgoing, api_url: str) -> None:
        self.http = outgoing
        self.api_url = api_url.rstrip("/")

    async def _call(self, account: MerchantAccount, method: str, path: str, *, what: str, body=None):
        key = base64.b64encode(account.secret.encode()).decode()
        headers = {"Authorization": [f"Basic {key}"], "Content-Type": ["application/json"]}
        data = json.dumps(body).encode() if body is not None else None
        return await self.http.request(method, f"{self.api_url}{path}", what=what, headers=headers, data=data)

    async def check_credentials(self, account: MerchantAccount) -> bool:
        """Read a payment that does not exist (``GET /v1/payments/{id}``): paysafecard answers 401
        ``invalid_api_key`` to a wrong key, and 404 to a key it accepts; nothing is created."""
        reply = await self._call(account, "GET", f"/v1/payments/{CHECK_PAYMENT_ID}", what="paysafecard credentials")
        return credentials_accepted(reply.status, "paysafecard credentials")

    async def create(self, request: PaymentRequest) -> Redirect:
        body = {
            "type": "PAYSAFECARD",
            "amount": float(to_text(request.amount_cents)),
            "currency": request.currency,
            "redirect": {"success_url": request.return_url, "failure_url": request.cancel_url},
            "notification_url": request.notify_url,
            "customer": {"id": request.customer_id or request.reference},
        }
        reply = await self._call(request.account, "POST", "/v1/payments", what="paysafecard create", body=body)
        doc = reply.json()
        if reply.status not in (200, 201) or not isinstance(doc, dict):
            raise ProviderUnavailable(f"paysafecard create: HTTP {reply.status}")
        redirect = doc.get("redirect")
        if not isinstance(redirect, dict) or not isinstance(redirect.get("auth_url"), str) or not isinstance(doc.get("id"), str):
            raise ProviderUnavailable("paysafecard create: no auth_url in the answer")
        return Redirect(url=redirect["auth_url"], provider_ref=doc["id"])

    async def _settle(self, account: MerchantAccount, payment_id: str) -> PaymentEvent | None:
        """Read, capture when AUTHORIZED, and say what the payment is now (None: unknown to this account)."""
        path = f"/v1/payments/{quote(payment_id, safe='')}"
        reply = await self._call(account, "GET", path, what="paysafecard read")
        if reply.status in (401, 403, 404):
            return None
        doc = reply.json()
        if reply.status != 200 or not isinstance(doc, dict):
            raise ProviderUnavailable(f"paysafecard read: HTTP {reply.status}")
        if doc.get("status") == "AUTHORIZED":
            reply = await self._call(account, "POST", f"{path}/capture", what="paysafecard capture",
                                     body={"id": payment_id})
            captured = reply.json() if reply.status == 200 else None
            if isinstance(captured, dict) and captured.get("status") == "SUCCESS":
                doc = captured
            else:  # captured meanwhile by the other path, or refused: read again
                reply = await self._call(account, "GET", path, what="paysafecard read")
                doc = reply.json()
                if reply.status != 200 or not isinstance(doc, dict):
                    raise ProviderUnavailable(f"paysafecard read: HTTP {reply.status}")
        status = doc.get("status")
        kind = (EventKind.COMPLETED if status == "SUCCESS" else
                EventKind.FAILED if status in _FAILED else EventKind.PENDING)
        return PaymentEvent(self.method, kind, payment_id, to_cents(doc.get("amount")), str(doc.get("currency", "")),
                            provider_ref=payment_id)

    async def on_return(self, request: PaymentRequest, provider_ref: str,
                        query: Mapping[str, str]) -> PaymentEvent:
        event = await self._settle(request.account, provider_ref)
        if event is None:
            raise Rejected("paysafecard does not know this payment", 404)
        return event

    async def on_notification(self, accounts: tuple[MerchantAccount, ...], headers: Mapping[str, str],
                              body: bytes, query: Mapping[str, str]) -> list[PaymentEvent]:
        payment_id = query.get("payment_id") or query.get("mtid")
        if not payment_id and body:
            try:
                doc = parse_json(body)
            except ValueError:
                raise Rejected("not JSON") from None
            if isinstance(doc, dict):
                payment_id = doc.get("mtid") or doc.get("id") or doc.get("payment_id")
        if not isinstance(payment_id, str) or not _ID.match(payment_id):
            raise Rejected("no payment id")
        for account in accounts:
            event = await self._settle(account, payment_id)
            if event is not None:
                return [event]
        raise Rejected("no such payment at paysafecard", 404)
