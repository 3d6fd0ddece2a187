"""The frozen dataclasses the store hands out (made inside the DB thread from rows)."""

from __future__ import annotations

from dataclasses import dataclass


class StoreError(Exception):
    """An operation the store refused, with a reason fit for an operator."""


class NoAccount(StoreError):
    """The (profile, number) has no account."""


class NumberTaken(StoreError):
    """Renumbering onto a number that already has an account (without merge)."""


@dataclass(frozen=True)
class Account:
    """One caller's balance under one billing profile."""

    id: int
    profile: str
    number: str
    balance_cents: int
    pin: str | None
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class LedgerEntry:
    """One change of a balance. ``amount_cents`` is signed; the balance after it is ``balance_after_cents``."""

    id: int
    account_id: int
    profile: str
    number: str
    kind: str
    amount_cents: int
    balance_after_cents: int
    source: str
    external_ref: str
    actor: str
    note: str
    call_session_id: str | None
    at_ms: int
    payment_id: int | None = None  # the payment (``payments`` row) this row credits


@dataclass(frozen=True)
class CreditResult:
    """A credit or top-up: ``applied`` False when (source, external_ref) was seen before (nothing changed)."""

    applied: bool
    account: Account
    entries: tuple[LedgerEntry, ...]


@dataclass(frozen=True)
class DebitResult:
    """A debit: ``reason`` is None when applied, else ``"insufficient"``, ``"duplicate"`` or ``"no_account"``.

    ``account`` is the account as it stands afterwards (None for ``no_account``).
    """

    applied: bool
    reason: str | None
    account: Account | None
    entry: LedgerEntry | None = None


@dataclass(frozen=True)
class ReverseResult:
    """A reversal (refund, chargeback): what was taken back and what the balance could not cover."""

    applied: bool
    account: Account | None
    taken_cents: int
    shortfall_cents: int
    entry: LedgerEntry | None = None


@dataclass(frozen=True)
class CustomerRow:
    """An account with its number of top-ups and the time of the last one (None: never topped up)."""

    profile: str
    number: str
    balance_cents: int
    topups: int
    last_topup_ms: int | None


@dataclass(frozen=True)
class CallRecord:
    """One call as the B2BUA saw it (the itemised call list). ``id`` is None until stored."""

    call_id: str
    profile: str
    service_number: str
    caller: str | None
    identity_source: str  # from / pai / pin / none
    privacy: bool
    caller_class: str | None
    agent_tried: str | None
    agent_answered: str | None
    invite_ms: int
    answer_ms: int | None
    end_ms: int | None
    end_reason: str | None
    a_status: int | None
    b_status: int | None
    billed_s: int = 0
    charge_cents: int = 0
    call_session_id: str | None = None
    #: the number as the INVITE's From (or PAI) gave it: E.164 where it could be read, else the user part
    caller_received: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class Shortfall:
    """A reversal the balance could not cover, in part or at all."""

    id: int
    account_id: int
    source: str
    external_ref: str
    amount_cents: int
    at_ms: int


@dataclass(frozen=True)
class RenumberResult:
    """The account under its new number, and what moved."""

    account: Account
    merged: bool
    ledger_rows: int
    call_records: int
