"""Our side of a payment: a ``payments`` row per attempt, and verified events booked once.

A payment moves through :data:`TRANSITIONS`; a credit goes through
``Store.topup`` with ``source`` = the method, ``external_ref`` = the
provider's id of the money movement and ``payment_id`` = our row of the
payment, so the ledger's uniqueness credits once per payment at the provider:
however often and however concurrently the same event arrives, and whichever
of the provider's ids names it (a second capture of one PayPal order, a
second Klarna order of one session, the return page and the notification).
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from twisted.logger import Logger

from billing.db import model
from billing.db.ledger import find_entry, payment_entry

from .providers.base import EventKind, PaymentEvent, Rejected
from .settings import ReadsSettings, SettingsSource, WebSettings, settings_source

P = model.payments
log = Logger(namespace="webhook.payments")


class State(enum.Enum):
    CREATED = "created"
    REDIRECTED = "redirected"
    COMPLETED = "completed"
    FAILED = "failed"
    REVERSED = "reversed"


#: (state, event) -> next state; an event not in the table leaves the state as it is
TRANSITIONS: dict[tuple[State, str], State] = {
    (State.CREATED, "redirected"): State.REDIRECTED,
    (State.CREATED, "failed"): State.FAILED,
    (State.REDIRECTED, "failed"): State.FAILED,
    (State.CREATED, "completed"): State.COMPLETED,
    (State.REDIRECTED, "completed"): State.COMPLETED,
    (State.FAILED, "completed"): State.COMPLETED,  # a late capture after a cancelled return is still money
    (State.COMPLETED, "reversed"): State.REVERSED,
}


@dataclass(frozen=True)
class Payment:
    id: int
    method: str
    profile: str
    number: str
    amount_cents: int
    bonus_cents: int
    currency: str
    reference: str
    provider_ref: str | None
    state: State
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class Booked:
    """What booking an event did: ``credited`` only for the one delivery that changed the balance."""

    payment: Payment | None
    credited: bool
    balance_cents: int | None
    pin: str | None = None


def _to_payment(row) -> Payment:
    return Payment(id=row.id, method=row.method, profile=row.profile, number=row.number,
                   amount_cents=row.amount_cents, bonus_cents=row.bonus_cents, currency=row.currency,
                   reference=row.reference, provider_ref=row.provider_ref, state=State(row.state),
                   created_ms=row.created_ms, updated_ms=row.updated_ms)


def _insert(conn, values: dict) -> Payment:
    pid = conn.execute(sa.insert(P).values(**values).returning(P.c.id)).scalar_one()
    return _to_payment(conn.execute(sa.select(P).where(P.c.id == pid)).one())


def _find(conn, *, reference: str | None = None, method: str | None = None,
          provider_ref: str | None = None) -> Payment | None:
    if reference is not None:
        q = sa.select(P).where(P.c.reference == reference)
    else:
        q = sa.select(P).where(P.c.method == method, P.c.provider_ref == provider_ref)
    row = conn.execute(q).first()
    return _to_payment(row) if row is not None else None


def _move(conn, reference: str, event: str, now_ms: int, provider_ref: str | None = None) -> Payment | None:
    current = _find(conn, reference=reference)
    if current is None:
        return None
    nxt = TRANSITIONS.get((current.state, event), current.state)
    values = {"state": nxt.value, "updated_ms": now_ms}
    if provider_ref is not None:
        values["provider_ref"] = provider_ref
    conn.execute(sa.update(P).where(P.c.reference == reference).values(**values))
    return _find(conn, reference=reference)


class Payments(ReadsSettings):
    """Payment rows and booking, on a :class:`billing.store.Store`; profiles and bonuses as in force now."""

    def __init__(self, store, settings: WebSettings | SettingsSource) -> None:
        self.store = store
        self._settings = settings_source(settings)

    async def start(self, profile_name: str, number: str, amount_cents: int, method: str) -> Payment:
        """A new payment row for one of the profile's top-up amounts (:class:`Rejected` for any other: the
        amounts a caller can pay are the profile's, whatever a form post says)."""
        profile = self.settings.profile(profile_name)
        if amount_cents not in {o.amount_cents for o in profile.billing.topups}:
            raise Rejected(f"{amount_cents} cents is not a top-up amount of profile {profile_name}", 400)
        now = self.store.now_ms()
        values = dict(method=method, profile=profile_name, number=number, amount_cents=amount_cents,
                      bonus_cents=profile.billing.bonus_cents(amount_cents), currency=profile.billing.currency,
                      reference=secrets.token_urlsafe(18), provider_ref=None, state=State.CREATED.value,
                      created_ms=now, updated_ms=now)
        return await self.store.run(_insert, values)

    async def redirected(self, reference: str, provider_ref: str) -> Payment:
        return await self.store.run(_move, reference, "redirected", self.store.now_ms(), provider_ref)

    async def failed(self, reference: str) -> Payment | None:
        return await self.store.run(_move, reference, "failed", self.store.now_ms())

    async def find(self, reference: str) -> Payment | None:
        return await self.store.run(_find, reference=reference)

    async def _payment_for(self, event: PaymentEvent) -> Payment | None:
        payment = None
        if event.reference:
            payment = await self.store.run(_find, reference=event.reference)
        if payment is None and event.provider_ref:
            payment = await self.store.run(_find, method=event.method, provider_ref=event.provider_ref)
        return payment

    async def book(self, event: PaymentEvent) -> Booked:
        """Apply one verified event; Rejected (4xx) when it does not match a payment of ours."""
        if event.kind is EventKind.REVERSED:
            return await self._reverse(event)
        payment = await self._payment_for(event)
        if payment is None:
            raise Rejected(f"{event.method}: unknown payment reference", 404)
        if payment.method != event.method:
            raise Rejected(f"{event.method}: the payment was made with {payment.method}", 409)
        if event.kind is EventKind.FAILED:
            await self.failed(payment.reference)
            return Booked(payment, False, None)
        if event.kind is not EventKind.COMPLETED:
            return Booked(payment, False, None)
        if event.provider_ref is not None and payment.provider_ref is not None \
                and event.provider_ref != payment.provider_ref:
            raise Rejected(f"{event.method}: {event.provider_ref} is not the payment's order", 409)
        if event.currency != payment.currency:
            raise Rejected(f"{event.method}: currency {event.currency!r} is not the payment's", 422)
        if event.amount_cents != payment.amount_cents:
            raise Rejected(f"{event.method}: amount {event.amount_cents} is not the payment's", 422)
        profile = self.settings.profile(payment.profile)
        if profile is None:
            raise Rejected(f"{event.method}: the payment's profile is no longer configured", 409)
        result = await self.store.topup(profile.billing, payment.number, payment.amount_cents,
                                        source=event.method, external_ref=event.credit_ref,
                                        actor=f"webhook:{event.method}", note=f"payment {payment.reference}",
                                        payment_id=payment.id)
        payment = await self.store.run(_move, payment.reference, "completed", self.store.now_ms())
        if result.applied:
            log.info("{method} payment {reference}: credited {amount} + {bonus} cents to {profile}",
                     method=event.method, reference=payment.reference, amount=payment.amount_cents,
                     bonus=payment.bonus_cents, profile=payment.profile)
        else:
            await self._second_movement(payment, event)
        return Booked(payment, result.applied, result.account.balance_cents, result.account.pin)

    async def _second_movement(self, payment: Payment, event: PaymentEvent) -> None:
        """Say so when a payment already credited is named by another of the provider's ids.

        Nothing is credited for it; if the customer was really charged twice
        (a second capture of one order), the operator refunds it at the provider.
        """
        first = await self.store.run(payment_entry, payment.id)
        if first is not None and first.external_ref != event.credit_ref:
            log.warn("{method} payment {reference}: {second} names a payment already credited by {first}; "
                     "nothing credited for it (refund it at {method} if the customer paid twice)",
                     method=event.method, reference=payment.reference, second=event.credit_ref,
                     first=first.external_ref)

    async def _reverse(self, event: PaymentEvent) -> Booked:
        payment = await self._payment_for(event)
        profile_name = number = None
        if payment is not None:
            profile_name, number = payment.profile, payment.number
        elif event.provider_ref:
            entry = await self.store.run(find_entry, event.method, event.provider_ref)
            if entry is not None:
                profile_name, number = entry.profile, entry.number
        if profile_name is None:
            raise Rejected(f"{event.method}: reversal of an unknown payment", 404)
        amount = event.amount_cents
        if payment is not None and amount == payment.amount_cents:
            amount += payment.bonus_cents  # a full refund takes the bonus back too
        result = await self.store.reverse(profile_name, number, amount, source=event.method,
                                          external_ref=event.credit_ref, actor=f"webhook:{event.method}",
                                          note="refund or chargeback")
        if payment is not None:
            await self.store.run(_move, payment.reference, "reversed", self.store.now_ms())
        log.info("{method}: reversal {ref}: took back {taken} cents, shortfall {short}", method=event.method,
                 ref=event.credit_ref, taken=result.taken_cents, short=result.shortfall_cents)
        balance = result.account.balance_cents if result.account is not None else None
        return Booked(payment, False, balance)
