"""The monthly settlement of a billing profile (or of all the profiles of one provider).

From the ledger of the month (``[first day 00:00, next month's first day)`` in the profile's
``timezone``, so a top-up at 00:30 in Berlin on the 1st is the new month's there, for the
``prepaid statement`` command and the portal alike: :func:`month_bounds_ms`):

- top-ups by payment method (the ledger row's source: ``paypal``, ``klarna``,
  ``paysafecard``, ``manual``), count and amount; bonuses granted;
- call revenue = call debits - call refunds, and the billed seconds of the
  calls settled in the month (``call_sessions.billed_s``);
- manual, API and correction credits and debits; reversals (taken from the
  balance) and shortfalls (the part of a reversal the balance could not cover);
- fees per ``BillingProfile.fees``: ``topup_percent`` of the paid top-ups
  (payment methods, not ``manual``), ``per_transaction_cents`` per paid top-up,
  ``platform_per_minute`` per billed minute. Each is computed exactly on the
  month's total per profile and rounded ONCE, half up, to cents (so a
  provider's statement is the sum of its profiles' statements);
- net payout = paid top-ups - reversed payments (taken + shortfall: that money
  went back to the payer either way) - fees.

Reconciliation: ``ledger_net_cents`` (the sum of every ledger row of the
month) equals the sum of the statement's ledger lines (top-ups + bonuses +
manual/API/correction amounts - call revenue - reversals); :attr:`reconciles`
says so, and the tests prove it to the cent against the ledger itself.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zoneinfo
from dataclasses import asdict, dataclass, fields
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from .db import model
from .money import format_cents
from .profile import BillingProfile

#: sources that are payments through a provider (fees apply); ``manual`` top-ups are booked by an operator
PAYMENT_METHODS = ("paypal", "klarna", "paysafecard")


def month_bounds_ms(month: str, timezone: str) -> tuple[int, int]:
    """``"2026-11"`` -> [its first day 00:00, the next month's first day 00:00) in ``timezone`` (an IANA
    name), in ms since the epoch; ValueError on a month that is not YYYY-MM."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        if len(month) != 7 or not 1 <= mon <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"a month is YYYY-MM, like 2026-11: {month!r}") from None
    zone = zoneinfo.ZoneInfo(timezone)
    start = dt.datetime(year, mon, 1, tzinfo=zone)
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=zone)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


@dataclass(frozen=True)
class MethodLine:
    """Top-ups of one payment method: how many and how much."""

    method: str
    count: int
    amount_cents: int


@dataclass(frozen=True)
class MonthFacts:
    """What the store says about one profile's month (sums of ledger rows by kind, and billed seconds)."""

    profile: str
    topups: tuple[MethodLine, ...]
    bonus_cents: int
    call_debit_cents: int  # positive: what calls took
    call_refund_cents: int
    billed_s: int
    manual_credit_cents: int
    manual_debit_cents: int  # positive
    api_credit_cents: int
    api_debit_cents: int  # positive
    correction_cents: int  # signed
    reversal_cents: int  # positive: taken from balances
    shortfall_cents: int
    ledger_net_cents: int  # the sum of every ledger row


def month_facts(conn, profile: str, since_ms: int, until_ms: int) -> MonthFacts:
    """One ``thd``: the sums of one profile's ledger, shortfalls and settled calls in [since_ms, until_ms)."""
    A, L, SF, S = model.accounts, model.ledger, model.shortfalls, model.call_sessions
    in_month = sa.and_(A.c.profile == profile, L.c.at_ms >= since_ms, L.c.at_ms < until_ms)
    sign = sa.case((L.c.amount_cents < 0, -1), else_=1)
    rows = conn.execute(
        sa.select(L.c.kind, L.c.source, sign.label("sign"), sa.func.count().label("n"),
                  sa.func.sum(L.c.amount_cents).label("total"))
        .join(A, A.c.id == L.c.account_id).where(in_month)
        .group_by(L.c.kind, L.c.source, sign)).all()
    sums: dict[tuple[str, int], int] = {}
    methods: dict[str, list[int]] = {}
    net = 0
    for r in rows:
        total = int(r.total or 0)
        net += total
        sums[(r.kind, int(r.sign))] = sums.get((r.kind, int(r.sign)), 0) + total
        if r.kind == "topup":
            line = methods.setdefault(r.source, [0, 0])
            line[0] += int(r.n)
            line[1] += total
    shortfall = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(SF.c.amount_cents), 0)).join(A, A.c.id == SF.c.account_id)
        .where(A.c.profile == profile, SF.c.at_ms >= since_ms, SF.c.at_ms < until_ms)).scalar_one()
    billed = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(S.c.billed_s), 0))
        .where(S.c.profile == profile, S.c.state == "settled", S.c.settled_ms >= since_ms,
               S.c.settled_ms < until_ms)).scalar_one()

    def s(kind: str, sign: int) -> int:
        return sums.get((kind, sign), 0)
    order = {m: i for i, m in enumerate(PAYMENT_METHODS + ("manual",))}
    return MonthFacts(
        profile=profile,
        topups=tuple(MethodLine(m, c, a) for m, (c, a) in sorted(methods.items(),
                                                                   key=lambda kv: (order.get(kv[0], 99), kv[0]))),
        bonus_cents=s("bonus", 1),
        call_debit_cents=-s("call_debit", -1),
        call_refund_cents=s("call_refund", 1),
        billed_s=int(billed),
        manual_credit_cents=s("manual", 1),
        manual_debit_cents=-s("manual", -1),
        api_credit_cents=s("api_credit", 1),
        api_debit_cents=-s("api_debit", -1),
        correction_cents=s("correction", 1) + s("correction", -1),
        reversal_cents=-s("reversal", -1),
        shortfall_cents=int(shortfall),
        ledger_net_cents=net,
    )


def _round_cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ProfileStatement:
    """One profile's month: the facts, the fees and the net payout (all cents)."""

    profile: str
    provider: str
    month: str
    currency: str
    topups: tuple[MethodLine, ...]
    topup_cents: int
    paid_topup_cents: int
    paid_topup_count: int
    bonus_cents: int
    call_debit_cents: int
    call_refund_cents: int
    call_revenue_cents: int
    billed_s: int
    manual_credit_cents: int
    manual_debit_cents: int
    api_credit_cents: int
    api_debit_cents: int
    correction_cents: int
    reversal_cents: int
    shortfall_cents: int
    fee_topup_percent_cents: int
    fee_per_transaction_cents: int
    fee_per_minute_cents: int
    fees_cents: int
    net_payout_cents: int
    ledger_net_cents: int

    @property
    def ledger_lines_cents(self) -> int:
        """The month's ledger as the statement's lines add it up."""
        return (self.topup_cents + self.bonus_cents + self.manual_credit_cents - self.manual_debit_cents
                + self.api_credit_cents - self.api_debit_cents + self.correction_cents
                - self.call_revenue_cents - self.reversal_cents)

    @property
    def reconciles(self) -> bool:
        """True when the statement's lines add up to the ledger's sum for the month, to the cent."""
        return self.ledger_lines_cents == self.ledger_net_cents


def profile_statement(profile: BillingProfile, month: str, facts: MonthFacts) -> ProfileStatement:
    """Fees and net for one profile's facts (pure; the rounding rule is the module docstring's)."""
    paid = [m for m in facts.topups if m.method in PAYMENT_METHODS]
    paid_cents = sum(m.amount_cents for m in paid)
    paid_count = sum(m.count for m in paid)
    fees = profile.fees
    fee_percent = _round_cents(Decimal(paid_cents) * fees.topup_percent / 100)
    fee_tx = fees.per_transaction_cents * paid_count
    fee_min = _round_cents(fees.platform_per_minute * 100 * facts.billed_s / 60)
    total_fees = fee_percent + fee_tx + fee_min
    return ProfileStatement(
        profile=profile.name, provider=profile.provider or profile.name, month=month, currency=profile.currency,
        topups=facts.topups, topup_cents=sum(m.amount_cents for m in facts.topups),
        paid_topup_cents=paid_cents, paid_topup_count=paid_count, bonus_cents=facts.bonus_cents,
        call_debit_cents=facts.call_debit_cents, call_refund_cents=facts.call_refund_cents,
        call_revenue_cents=facts.call_debit_cents - facts.call_refund_cents, billed_s=facts.billed_s,
        manual_credit_cents=facts.manual_credit_cents, manual_debit_cents=facts.manual_debit_cents,
        api_credit_cents=facts.api_credit_cents, api_debit_cents=facts.api_debit_cents,
        correction_cents=facts.correction_cents, reversal_cents=facts.reversal_cents,
        shortfall_cents=facts.shortfall_cents, fee_topup_percent_cents=fee_percent,
        fee_per_transaction_cents=fee_tx, fee_per_minute_cents=fee_min, fees_cents=total_fees,
        net_payout_cents=paid_cents - facts.reversal_cents - facts.shortfall_cents - total_fees,
        ledger_net_cents=facts.ledger_net_cents)


_SUMMED = tuple(f.name for f in fields(ProfileStatement) if f.name.endswith(("_cents", "_count", "_s")))


@dataclass(frozen=True)
class Statement:
    """A month's statement for one profile or one provider: per-profile parts and their totals."""

    title: str
    month: str
    currency: str
    parts: tuple[ProfileStatement, ...]

    def total(self, name: str) -> int:
        """The sum of field ``name`` over the parts."""
        return sum(getattr(p, name) for p in self.parts)

    @property
    def topups(self) -> tuple[MethodLine, ...]:
        """Top-ups by method over all parts."""
        merged: dict[str, list[int]] = {}
        for p in self.parts:
            for m in p.topups:
                line = merged.setdefault(m.method, [0, 0])
                line[0] += m.count
                line[1] += m.amount_cents
        return tuple(MethodLine(k, c, a) for k, (c, a) in merged.items())

    @property
    def reconciles(self) -> bool:
        """True when every part reconciles with the ledger."""
        return all(p.reconciles for p in self.parts)

    def to_dict(self) -> dict:
        """The JSON form: totals, top-ups by method and each profile's part, all amounts in cents."""
        def part(p: ProfileStatement) -> dict:
            d = asdict(p)
            d["topups"] = [asdict(m) for m in p.topups]
            d["ledger_lines_cents"] = p.ledger_lines_cents
            d["reconciles"] = p.reconciles
            return d
        return {"title": self.title, "month": self.month, "currency": self.currency,
                "topups": [asdict(m) for m in self.topups],
                "totals": {name: self.total(name) for name in _SUMMED},
                "reconciles": self.reconciles, "profiles": [part(p) for p in self.parts]}


def build_statement(conn, profiles: list[BillingProfile], month: str, *, title: str) -> Statement:
    """One ``thd``: the statement of ``profiles`` (all one currency) for ``month``, each profile's part
    bounded by the month in that profile's ``timezone``."""
    currencies = {p.currency for p in profiles}
    if len(currencies) != 1:
        raise ValueError(f"profiles of one statement must share one currency, not {sorted(currencies)}")
    parts = tuple(profile_statement(p, month, month_facts(conn, p.name, *month_bounds_ms(month, p.timezone)))
                  for p in profiles)
    return Statement(title, month, currencies.pop(), parts)


# -- output ------------------------------------------------------------------

#: (label, field) of the statement's lines, in the order of the table and the CSV
LINES = (
    ("Bonuses granted", "bonus_cents"),
    ("Call debits", "call_debit_cents"),
    ("Call refunds", "call_refund_cents"),
    ("Call revenue", "call_revenue_cents"),
    ("Manual credits", "manual_credit_cents"),
    ("Manual debits", "manual_debit_cents"),
    ("API credits", "api_credit_cents"),
    ("API debits", "api_debit_cents"),
    ("Corrections", "correction_cents"),
    ("Reversals taken from balances", "reversal_cents"),
    ("Reversals not covered (shortfall)", "shortfall_cents"),
    ("Paid top-ups", "paid_topup_cents"),
    ("Fee: percent of paid top-ups", "fee_topup_percent_cents"),
    ("Fee: per paid top-up", "fee_per_transaction_cents"),
    ("Fee: platform per billed minute", "fee_per_minute_cents"),
    ("Fees", "fees_cents"),
    ("Net payout", "net_payout_cents"),
)


def _minutes(billed_s: int) -> str:
    return f"{billed_s // 60}:{billed_s % 60:02d}"


def to_table(st: Statement) -> str:
    """The statement as a plain text table."""
    rows: list[tuple[str, str]] = []
    for m in st.topups:
        rows.append((f"Top-ups {m.method} ({m.count})", format_cents(m.amount_cents)))
    rows.append(("Billed minutes (m:ss)", _minutes(st.total("billed_s"))))
    rows.extend((label, format_cents(st.total(name))) for label, name in LINES)
    width = max(len(label) for label, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    out = [f"Statement {st.title}, {st.month} ({st.currency}; profiles: {', '.join(p.profile for p in st.parts)})",
           ""]
    out.extend(f"{label.ljust(width)}  {value.rjust(vwidth)}" for label, value in rows)
    out.append("")
    out.append("Reconciles with the ledger: " + ("yes" if st.reconciles else "NO"))
    return "\n".join(out)


def to_csv(st: Statement) -> str:
    """One row per line and profile (plus ``total``): line, profile, count, amount (in the currency)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["month", "profile", "line", "count", "amount"])
    for p in st.parts + (None,):
        name = p.profile if p is not None else "total"
        methods = p.topups if p is not None else st.topups
        for m in methods:
            w.writerow([st.month, name, f"topup:{m.method}", m.count, format_cents(m.amount_cents)])
        billed = p.billed_s if p is not None else st.total("billed_s")
        w.writerow([st.month, name, "billed_seconds", billed, ""])
        for _label, field in LINES:
            value = getattr(p, field) if p is not None else st.total(field)
            w.writerow([st.month, name, field.removesuffix("_cents"), "", format_cents(value)])
    return buf.getvalue()


def to_json(st: Statement) -> str:
    """The statement as JSON (:meth:`Statement.to_dict`), amounts in cents."""
    return json.dumps(st.to_dict(), indent=2)
