"""What a billing profile says about money: tariffs, increments, bonuses, fees.

These frozen dataclasses are what ``billing/`` is handed by whoever reads the
config (the B2BUA's config loader); ``billing/`` never reads files itself.
Tariffs are exact ``Decimal`` amounts of the currency per minute; everything
that is already money is integer cents; durations are integer seconds.
"""

from __future__ import annotations

import datetime
import enum
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal


class ChargingStart(enum.Enum):
    """When the billed time of a call starts (a profile's ``charging_starts``: docs/config.md)."""

    AFTER_ANNOUNCEMENT = "after_announcement"
    ANSWER = "answer"
    ANSWER_10 = "answer+10"
    ANSWER_20 = "answer+20"
    ANSWER_30 = "answer+30"

    @property
    def delay_after_answer_s(self) -> int:
        """Seconds after the agent's answer (0 for ANSWER and AFTER_ANNOUNCEMENT)."""
        return {"answer+10": 10, "answer+20": 20, "answer+30": 30}.get(self.value, 0)


class CallerClass(enum.Enum):
    """Which tariff a caller's number falls under."""

    LANDLINE = "landline"
    MOBILE = "mobile"


@dataclass(frozen=True)
class Increment:
    """Billing increments: the first unit, then each further unit, in seconds (60/60, 1/1, 30/6)."""

    first_s: int
    next_s: int

    def __str__(self) -> str:
        return f"{self.first_s}/{self.next_s}"


@dataclass(frozen=True)
class FirstCallerTariff:
    """The first-caller offer: a different per-minute tariff for a caller's first call, for its first
    ``period_s`` seconds (``per_minute`` 0: free minutes, which need no credit and no account).

    The offer runs from ``from_ms`` (inclusive) until ``until_ms`` (exclusive), either open when None;
    :func:`offer_window_ms` turns the config's dates into these instants. A call that opens outside the
    window is rated as any other and does not put the caller on the first-caller list.
    """

    per_minute: Decimal
    period_s: int
    from_ms: int | None = None
    until_ms: int | None = None

    @property
    def free(self) -> bool:
        """Whether the offer is free minutes (nothing to pay for ``period_s``)."""
        return self.per_minute == 0

    def offered_at(self, now_ms: int) -> bool:
        """Whether a call opening at ``now_ms`` falls in the offer's date window."""
        return ((self.from_ms is None or now_ms >= self.from_ms)
                and (self.until_ms is None or now_ms < self.until_ms))


#: the zone of a profile's dates when it names none
DEFAULT_TIMEZONE = "Europe/Berlin"


def offer_window_ms(first_day: datetime.date | None, last_day: datetime.date | None,
                    timezone: str = DEFAULT_TIMEZONE) -> tuple[int | None, int | None]:
    """The offer's window as instants: from midnight starting ``first_day`` to midnight ending ``last_day``
    (both days included) in ``timezone``; None for a day not given."""
    zone = zoneinfo.ZoneInfo(timezone)

    def midnight_ms(day: datetime.date) -> int:
        return int(datetime.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp() * 1000)

    start = None if first_day is None else midnight_ms(first_day)
    end = None if last_day is None else midnight_ms(last_day + datetime.timedelta(days=1))
    return start, end


@dataclass(frozen=True)
class TopupOption:
    """One amount offered on the top-up page, and the fixed bonus credited with it."""

    amount_cents: int
    bonus_cents: int


@dataclass(frozen=True)
class Fees:
    """The platform's contract with the provider, for the monthly statement."""

    topup_percent: Decimal = Decimal("0")
    per_transaction_cents: int = 0
    platform_per_minute: Decimal = Decimal("0")


@dataclass(frozen=True)
class BillingProfile:
    """The money side of one ``[profiles.NAME]`` table."""

    name: str
    landline_per_minute: Decimal
    mobile_per_minute: Decimal
    increment: Increment = Increment(60, 60)
    charging_starts: ChargingStart = ChargingStart.ANSWER
    warn_before_s: int = 120
    connect_charge_cents: int = 0
    first_caller: FirstCallerTariff | None = None
    topups: tuple[TopupOption, ...] = ()
    fees: Fees = field(default_factory=Fees)
    currency: str = "EUR"
    #: who the statement is addressed to; several profiles may belong to one provider
    provider: str = ""
    #: the most one manual transaction (portal, ``prepaid topup``/``adjust``, the balance API) may move,
    #: bonus not counted: a typo of two zeros must not become a balance nobody paid for
    max_manual_cents: int = 50_000
    #: the profile's zone (IANA name): where its days and its statement's months begin and end
    timezone: str = DEFAULT_TIMEZONE

    def per_minute(self, caller_class: CallerClass) -> Decimal:
        """The ordinary tariff for a caller of this class."""
        if caller_class is CallerClass.MOBILE:
            return self.mobile_per_minute
        return self.landline_per_minute

    def bonus_cents(self, amount_cents: int) -> int:
        """The bonus for a top-up of exactly ``amount_cents``, else 0."""
        for option in self.topups:
            if option.amount_cents == amount_cents:
                return option.bonus_cents
        return 0
