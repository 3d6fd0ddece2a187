"""The one interface every payment provider adapter speaks, and what flows through it.

An adapter does two things: start a payment (``create`` -> where to send the
customer) and turn what the provider tells us (a notification, or the
customer's return) into verified :class:`PaymentEvent`s. It never touches the
store: :mod:`webhook.payments` books events against our ``payments`` rows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Mapping, Protocol, runtime_checkable

from ..outgoing import ProviderUnavailable
from ..settings import MerchantAccount


class Rejected(Exception):
    """A notification or return we refuse (forged, malformed, unknown): answered 4xx, nothing credited."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class EventKind(enum.Enum):
    COMPLETED = "completed"      # money is ours: credit once
    REVERSED = "reversed"        # refunded or charged back: take back
    PENDING = "pending"          # nothing to do yet
    FAILED = "failed"            # declined, cancelled, expired


@dataclass(frozen=True)
class PaymentRequest:
    """What we ask a provider for: ``reference`` is ours (unique), amounts in cents."""

    reference: str
    amount_cents: int
    currency: str
    description: str
    account: MerchantAccount
    return_url: str
    cancel_url: str
    notify_url: str
    locale: str = "de-DE"
    customer_id: str = ""


@dataclass(frozen=True)
class Redirect:
    """Where to send the customer, and the provider's id of the payment (order, session, payment id)."""

    url: str
    provider_ref: str


@dataclass(frozen=True)
class PaymentEvent:
    """A verified fact about one payment.

    ``credit_ref`` is the provider's id of the money movement (capture id, order
    id, payment id): the ledger credits once per (method, credit_ref), and once
    per payment of ours whatever the credit_ref.
    ``reference`` is ours, when the provider echoes it (None: find it by ``provider_ref``).
    ``provider_ref`` is the provider's id of the payment as our ``payments`` row
    keeps it (PayPal order, paysafecard payment id), when the event names it; of a
    reversal, the id of the money movement it reverses.
    """

    method: str
    kind: EventKind
    credit_ref: str
    amount_cents: int
    currency: str
    reference: str | None = None
    provider_ref: str | None = None


@runtime_checkable
class Provider(Protocol):
    method: str

    async def create(self, request: PaymentRequest) -> Redirect:
        """Start a payment; raises ProviderUnavailable when the provider does not answer usefully."""

    async def on_return(self, request: PaymentRequest, provider_ref: str,
                        query: Mapping[str, str]) -> PaymentEvent:
        """The customer came back from the provider: finish the payment (capture, place the order).

        ``request`` is the payment as we asked for it (rebuilt from our row).
        """

    async def on_notification(self, accounts: tuple[MerchantAccount, ...], headers: Mapping[str, str],
                              body: bytes, query: Mapping[str, str]) -> list[PaymentEvent]:
        """A notification: verified (signature, or read back from the provider) before it is believed."""

    async def check_credentials(self, account: MerchantAccount) -> bool:
        """Try the account's credentials on the provider's cheapest authenticated call, changing nothing there:
        True when accepted, False when refused (401/403); ProviderUnavailable when there is no telling."""


#: what a provider answers to credentials it refuses
REFUSED = (401, 403)


def credentials_accepted(status: int, what: str) -> bool:
    """A read of something that does not exist, as a credentials check: 404 (or 200) says the credentials were
    accepted, :data:`REFUSED` that they were not; anything else tells nothing."""
    if status in REFUSED:
        return False
    if status in (200, 404):
        return True
    raise ProviderUnavailable(f"{what}: HTTP {status}")


def to_cents(value) -> int:
    """A provider's decimal amount (``"10.00"``, 10.0) in cents; Rejected when it is none."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Rejected(f"not an amount: {value!r}") from None
    cents = amount * 100
    if not amount.is_finite() or cents != cents.to_integral_value():
        raise Rejected(f"not an amount in cents: {value!r}")
    return int(cents)


def to_text(cents: int) -> str:
    """Cents as the decimal text providers want (``"10.00"``)."""
    return f"{cents // 100}.{cents % 100:02d}"
