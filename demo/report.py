"""The demo's timeline and verdict: what happened in one scripted call, and whether it went as expected.

:func:`timeline` merges, relative to the carrier's INVITE, the call's own
events (``Call.events``), the caller's ledger rows, the phones' SIP events and
what they heard (found by correlation in their recordings).  :func:`verdict`
lists why the call did NOT go as expected (empty when it did): answered,
bridged, warned, cut off by the credit within an increment, the ledger adding
up to the cent (credits - charge = balance, charge = the tariff's for the
billed seconds, debits - refunds = charge), the mid-call top-up landed, and,
with media, the announcement, the warning and each other's voice heard.
"""

from __future__ import annotations

import os

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from billing.profile import CallerClass
from billing.rating import charge_cents, tariff_for

from b2bua.node.config import Config
from .phone import UaSummary

if TYPE_CHECKING:
    from .scenario import DemoPlan

__all__ = ["DemoResult", "timeline", "settlement_lines", "verdict", "report", "PROFILE"]

PROFILE = "demo"


@dataclass
class DemoResult:
    """Everything the timeline and the verdict are made of."""

    config: Config
    plan: DemoPlan
    ports: Any = None
    call: Any = None                        # b2bua.call.Call
    record: Any = None                      # billing CallRecord
    ledger: list = field(default_factory=list)      # LedgerEntry, oldest first
    balance_cents: int | None = None
    carrier: UaSummary | None = None
    agent: UaSummary | None = None
    heard: dict[str, tuple[bool, float | None, float]] = field(default_factory=dict)  # what -> (yes, at_s, score)
    media_wired: bool = True
    web_wired: bool = False
    midcall: str = ""                       # how the mid-call top-up went in (the webhook's answer)
    midcall_ok: bool = False
    error: str | None = None


# ---- the timeline and the verdict ------------------------------------------------------------------
def _money(cents: int, currency: str = "EUR") -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d} {currency}"


def _label(what: str) -> str | None:
    """A Call event as a timeline line (None: not shown)."""
    if what.startswith("identified"):
        return what
    if what.startswith("billing session"):
        return "billing session opened: " + what.split(": ", 1)[1]
    if what.startswith("announcing"):
        return "announced (" + what[len("announcing "):] + ")"
    if what.startswith("ringing agent"):
        return "agent rung: " + what[len("ringing agent "):]
    if what.startswith("warning:"):
        return "warned: " + what[len("warning: "):]
    if what == "credit exhausted":
        return "cut off: credit exhausted"
    if what.startswith("ended:"):
        return "call ended (" + what[len("ended: "):] + ")"
    if what.startswith("settled:"):
        return what
    return what


def timeline(result: DemoResult) -> list[tuple[float, str]]:
    """(seconds after the carrier's INVITE, what) in order of time."""
    start = result.carrier.invited_at if result.carrier is not None and result.carrier.invited_at else None
    items: list[tuple[float, str]] = []
    call = result.call
    if call is not None:
        start_ms = call.times.invite_ms
        start = start if start is not None else start_ms / 1000
        items += [(ms / 1000, label) for ms, what in call.events if (label := _label(what))]
    if start is None:
        return []
    currency = result.config.profiles[PROFILE].billing.currency
    for e in result.ledger:
        if e.kind in ("topup", "bonus"):
            when = "mid-call" if e.note == "during the call" or _during(e.at_ms, call) else "before the call"
            what = "topped up" if e.kind == "topup" else "bonus"
            via = f" via the {e.source} webhook" if e.actor.startswith("webhook:") else " through the store"
            items.append((e.at_ms / 1000, f"{what} {when}{via} (+{_money(e.amount_cents, currency)}), "
                                          f"balance {_money(e.balance_after_cents, currency)}"))
        elif e.kind == "call_debit":
            items.append((e.at_ms / 1000, f"debited ahead {_money(-e.amount_cents, currency)}, "
                                          f"balance {_money(e.balance_after_cents, currency)}"))
        elif e.kind == "call_refund":
            items.append((e.at_ms / 1000, f"refunded {_money(e.amount_cents, currency)}, "
                                          f"balance {_money(e.balance_after_cents, currency)}"))
    for summary in (result.carrier, result.agent):
        if summary is None:
            continue
        for at, what in summary.events:
            if what in ("BYE received", "BYE sent") or what.startswith("answered"):
                items.append((at, f"{summary.name}: {what}"))
    for what, (yes, at, score) in result.heard.items():
        if yes and at is not None and "'s tone" not in what:
            items.append((at, f"heard: {what} (correlation {score:.2f})"))
    items = [(at - start, what) for at, what in items]
    items.sort(key=lambda item: item[0])
    return items


def _during(at_ms: int, call) -> bool:
    if call is None or call.times.answer_ms is None:
        return False
    end = call.times.end_ms or at_ms + 1
    return call.times.answer_ms <= at_ms <= end


def settlement_lines(result: DemoResult) -> list[str]:
    """The money of the call: billed time, charge, debits, refund, the balance, and the check of the ledger."""
    currency = result.config.profiles[PROFILE].billing.currency
    rec = result.record
    credits = sum(e.amount_cents for e in result.ledger if e.kind in ("topup", "bonus"))
    debits = -sum(e.amount_cents for e in result.ledger if e.kind == "call_debit")
    refunds = sum(e.amount_cents for e in result.ledger if e.kind == "call_refund")
    lines = [f"credited {_money(credits, currency)} (top-ups and bonuses), debited ahead {_money(debits, currency)}, "
             f"refunded {_money(refunds, currency)}"]
    if rec is not None:
        lines.append(f"settled: {rec.billed_s} s billed, charge {_money(rec.charge_cents, currency)}, "
                     f"end reason {rec.end_reason}")
    if result.balance_cents is not None:
        lines.append(f"balance after the call {_money(result.balance_cents, currency)}")
    return lines


def verdict(result: DemoResult) -> list[str]:
    """Why the call did NOT go as expected; empty when it did."""
    why: list[str] = []
    if result.error:
        return [result.error]
    c, a, call, rec = result.carrier, result.agent, result.call, result.record
    if c is None or c.final_status != 200:
        why.append(f"the carrier's call was not answered ({c.final_status if c else None})")
    if a is None or not a.answered:
        why.append("the agent was not rung or did not answer")
    if call is None or rec is None:
        why.append("no call record was written")
        return why
    events = [what for _, what in call.events]
    for needle, what in (("identified", "identified"), ("announcing", "announced"), ("bridged", "bridged"),
                         ("charging started", "charging started"), ("warning:", "warned"),
                         ("credit exhausted", "cut off by credit exhaustion"), ("settled:", "settled")):
        if not any(e.startswith(needle) for e in events):
            why.append(f"the call was never {what}")
    if rec.end_reason != "credit_exhausted":
        why.append(f"the call ended by {rec.end_reason}, not by the credit running out")
    if c is not None and c.ended_by != "remote":
        why.append(f"the carrier's leg was not ended by our BYE ({c.ended_by}: {c.reason})")
    if a is not None and a.ended_by != "remote":
        why.append(f"the agent's leg was not ended by our BYE ({a.ended_by}: {a.reason})")
    profile = result.config.profiles[PROFILE].billing
    plan = result.plan
    credits = sum(e.amount_cents for e in result.ledger if e.kind in ("topup", "bonus"))
    expected_credits = (plan.first_topup_cents + plan.first_bonus_cents + plan.midcall_topup_cents
                        + plan.midcall_bonus_cents)
    if credits != expected_credits:
        why.append(f"credited {credits} cents, expected {expected_credits} (both top-ups with their bonus)")
    midcall = [e for e in result.ledger if e.kind == "topup" and _during(e.at_ms, call)]
    if not midcall:
        why.append("no top-up landed during the call")
    if not result.midcall_ok:
        why.append(f"the mid-call top-up did not go as expected: {result.midcall}")
    elif result.web_wired and not any(e.source == "paypal" for e in midcall):
        why.append("the mid-call top-up did not come through the PayPal webhook")
    debits = -sum(e.amount_cents for e in result.ledger if e.kind == "call_debit")
    refunds = sum(e.amount_cents for e in result.ledger if e.kind == "call_refund")
    if debits - refunds != rec.charge_cents:
        why.append(f"debits {debits} - refunds {refunds} != charge {rec.charge_cents} cents")
    klass = call.identity.caller_class or CallerClass.LANDLINE
    expected_charge = charge_cents(tariff_for(profile, klass, first_call=False), rec.billed_s)
    if rec.charge_cents != expected_charge:
        why.append(f"charge {rec.charge_cents} cents != tariff for {rec.billed_s} s ({expected_charge} cents)")
    if result.balance_cents != credits - rec.charge_cents:
        why.append(f"balance {result.balance_cents} != credits {credits} - charge {rec.charge_cents}")
    if result.ledger and result.ledger[-1].balance_after_cents != result.balance_cents:
        why.append("the last ledger row's balance is not the account's balance")
    if result.balance_cents is not None and result.balance_cents < 0:
        why.append("the balance went below zero")
    charging = call.session.start_ms if call.session is not None else None
    if charging is not None and rec.end_ms is not None:
        talked_s = (rec.end_ms - charging) / 1000
        step = profile.increment.next_s
        if talked_s > rec.billed_s + step + 3.0:        # + the final message, which is not charged
            why.append(f"cut off {talked_s:.1f} s after charging started, {rec.billed_s} s were billed")
    ringback = os.path.basename(result.config.profiles[PROFILE].ringback)      # a music file: by its name
    if ringback != "none" and not any(e.startswith(f"ringback ({ringback})") for e in events):
        why.append("the caller got no ringback while the agent rang")
    if result.media_wired:
        tones = (f"ringback ({ringback})",) if f"ringback ({ringback})" in result.heard else ()
        for what in ("announcement", *tones, "warning (agent)", "warning (spoken)", "agent's tone (caller)",
                     "caller's tone (agent)"):
            yes, _, score = result.heard.get(what, (False, None, 0.0))
            if not yes:
                why.append(f"not heard: {what} (score {score:.2f})")
    return why


def report(result: DemoResult) -> list[str]:
    """The printed timeline: one line per step, then the money and what the phones heard."""
    lines = ["prepaid demo: one call from the built-in carrier to the service number, timeline from its INVITE",
             ""]
    lines += [f"  {at:+8.3f} s  {what}" for at, what in timeline(result)]
    lines.append("")
    lines += ["  " + line for line in settlement_lines(result)]
    lines.append(f"  mid-call top-up: {result.midcall}")
    lines.append("")
    if not result.media_wired:
        lines.append("  media not wired: nothing was heard")
    else:
        for what, (yes, _, score) in result.heard.items():
            lines.append(f"  {what}: {'yes' if yes else 'no'} (score {score:.2f})")
    for s in (result.carrier, result.agent):
        if s is not None:
            lines.append(f"  {s.name}: {s.packets_sent} RTP packets sent, {s.packets_received} received, "
                         f"ended by {s.ended_by} ({s.reason})")
    return lines
