"""The portal's "New transaction" page (``transactions/new``): a manual top-up, correction credit or debit.

Three steps, each a plain HTML form (no JavaScript): the form; a confirmation that shows what will be
booked (a top-up's bonus, the balance before and after) and carries a one-time token; the booking,
answered with a redirect to the caller's transactions (POST, redirect, GET). The token is the ledger
reference, so a second submit of one confirmation books nothing more. Every step checks everything
again (hidden fields are the browser's): a valid number of its region, an amount within the profile's
``max_manual_cents``, a note for corrections, a balance that covers a debit. The booking goes through
``Store.manual``, which writes the audit row (``portal:<user>``, the client's address) with the ledger rows.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from twisted.web.template import tags

from billing.numbers import NumberRefused, entered, normalise

from ..view import Html, PortalContext, Redirect, Route

KINDS = ("topup", "credit", "debit")
NOTE_MAX_CHARS = 500
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Draft:
    """A transaction as the form asks for it, checked: E.164 number, cents, kind, note."""

    number: str
    amount_cents: int
    kind: str   # one of KINDS
    note: str


class Refused(Exception):
    """The form's input cannot be booked; the text says why, in the user's language."""


def caller_number(ctx: PortalContext, text: str, *, valid: bool = True) -> str:
    """``text`` (any usual form) as E.164 by the node's region; with ``valid`` (money is booked to it) it
    must be a valid number of its region, without (a filter) a possible one. Raises :class:`Refused`."""
    region = ctx.config.sip.default_region if ctx.config is not None else "DE"
    try:
        return entered(text, region) if valid else _possible(text, region)
    except NumberRefused:
        raise Refused(ctx.t("new_transaction_bad_number", number=text.strip())) from None


def _possible(text: str, region: str) -> str:
    number = normalise(text.strip(), region)
    if number is None:
        raise NumberRefused(text, "not_a_number", f"not a phone number: {text!r}")
    return number


def read_draft(ctx: PortalContext) -> Draft:
    """The form's fields as a :class:`Draft`, or :class:`Refused` with the first reason."""
    form = ctx.form
    number = caller_number(ctx, form.get("number", ""))
    amount = ctx.decimal_amount(form.get("amount", ""))
    if amount is None or amount <= 0 or (amount * 100) != (amount * 100).to_integral_value():
        raise Refused(ctx.t("new_transaction_bad_amount"))
    cents = int(amount * 100)
    limit = ctx.profile.billing.max_manual_cents
    if cents > limit:
        raise Refused(ctx.t("new_transaction_over_limit", amount=ctx.money(cents), limit=ctx.money(limit)))
    kind = form.get("kind", "")
    if kind not in KINDS:
        raise Refused(ctx.t("new_transaction_bad_kind"))
    note = form.get("note", "").strip()
    if kind != "topup" and not note:
        raise Refused(ctx.t("new_transaction_note_needed"))
    if len(note) > NOTE_MAX_CHARS:
        raise Refused(ctx.t("new_transaction_note_too_long", max=NOTE_MAX_CHARS))
    return Draft(number, cents, kind, note)


async def page(ctx: PortalContext):
    """GET: the form. POST ``step=check``: the confirmation. POST ``step=book``: book, then redirect."""
    if ctx.method != "POST":
        return _form(ctx)
    try:
        draft = read_draft(ctx)
        balance = await _balance(ctx, draft.number)
        if draft.kind == "debit" and draft.amount_cents > balance:
            raise Refused(ctx.t("new_transaction_below_zero", balance=ctx.money(balance)))
        if ctx.form.get("step") != "book":
            return _confirm(ctx, draft, balance)
        token = ctx.form.get("token", "")
        if not _TOKEN.match(token):
            raise Refused(ctx.t("new_transaction_bad_token"))
        return await _book(ctx, draft, token)
    except Refused as exc:
        return _form(ctx, str(exc), status=400)


async def _balance(ctx: PortalContext, number: str) -> int:
    account = await ctx.store.account(ctx.profile.name, number)
    return account.balance_cents if account is not None else 0


async def _book(ctx: PortalContext, draft: Draft, token: str):
    signed = -draft.amount_cents if draft.kind == "debit" else draft.amount_cents
    actor = f"portal:{ctx.user.name}"
    result = await ctx.store.manual(ctx.profile.billing, draft.number, signed,
                                    kind="topup" if draft.kind == "topup" else "correction",
                                    external_ref=f"portal-{token}", actor=actor, audit_actor=actor,
                                    address=ctx.client_address, note=draft.note)
    if result.reason == "duplicate":
        return Redirect(ctx.url("transactions", number=draft.number), ctx.t("new_transaction_already_booked"))
    if result.reason == "over_limit":
        raise Refused(ctx.t("new_transaction_over_limit", amount=ctx.money(draft.amount_cents),
                            limit=ctx.money(ctx.profile.billing.max_manual_cents)))
    if not result.applied:  # the balance fell between the confirmation and the booking
        raise Refused(ctx.t("new_transaction_below_zero", balance=ctx.money(result.before_cents)))
    return Redirect(ctx.url("transactions", number=draft.number),
                    ctx.t("new_transaction_booked", number=draft.number, amount=ctx.money(signed),
                          balance=ctx.money(result.account.balance_cents)))


def _hidden(name: str, value: str):
    return tags.input(type="hidden", name=name, value=value)


def _form(ctx: PortalContext, error: str = "", status: int = 200) -> Html:
    f = ctx.form
    kind = f.get("kind", "topup")
    choices = [tags.label(tags.input(type="radio", name="kind", value=k, **({"checked": "checked"} if k == kind else {})),
                          " ", ctx.t(f"new_transaction_kind_{k}")) for k in KINDS]
    amounts = ", ".join(ctx.money(o.amount_cents) + " + " + ctx.money(o.bonus_cents)
                        for o in ctx.profile.billing.topups if o.bonus_cents)
    body = [
        tags.p(error, class_="error", role="alert") if error else "",
        tags.form(
            _hidden("csrf", ctx.csrf_token), _hidden("step", "check"),
            tags.label(ctx.t("new_transaction_number"), tags.input(name="number", value=f.get("number", ""),
                                                                     required="required", inputmode="tel")),
            tags.label(ctx.t("new_transaction_amount"), tags.input(name="amount", value=f.get("amount", ""),
                                                                     required="required", inputmode="decimal")),
            tags.fieldset(tags.legend(ctx.t("new_transaction_kind")), *choices),
            tags.label(ctx.t("new_transaction_note"), tags.textarea(f.get("note", ""), name="note",
                                                                      maxlength=str(NOTE_MAX_CHARS))),
            tags.p(ctx.t("new_transaction_hint", limit=ctx.money(ctx.profile.billing.max_manual_cents)),
                   (" " + ctx.t("new_transaction_bonuses", amounts=amounts)) if amounts else "", class_="hint"),
            tags.button(ctx.t("new_transaction_check"), type="submit"),
            class_="form", method="post", action=ctx.url("transactions/new")),
    ]
    return Html(ctx.t("new_transaction_title"), body, status)


def _confirm(ctx: PortalContext, draft: Draft, balance: int) -> Html:
    bonus = ctx.profile.billing.bonus_cents(draft.amount_cents) if draft.kind == "topup" else 0
    signed = -draft.amount_cents if draft.kind == "debit" else draft.amount_cents
    rows = [("new_transaction_number", draft.number), ("new_transaction_kind", ctx.t(f"new_transaction_kind_{draft.kind}")),
            ("new_transaction_amount", ctx.money(signed))]
    if draft.kind == "topup":
        rows.append(("new_transaction_bonus", ctx.money(bonus)))
    rows += [("new_transaction_balance_before", ctx.money(balance)),
             ("new_transaction_balance_after", ctx.money(balance + signed + bonus))]
    if draft.note:
        rows.append(("new_transaction_note", draft.note))
    body = [
        tags.p(ctx.t("new_transaction_confirm_intro")),
        tags.table(tags.tbody(*(tags.tr(tags.th(ctx.t(k), scope="row"), tags.td(v)) for k, v in rows)),
                   class_="data confirm"),
        tags.form(
            _hidden("csrf", ctx.csrf_token), _hidden("step", "book"), _hidden("token", secrets.token_hex(16)),
            _hidden("number", draft.number), _hidden("amount", f"{draft.amount_cents // 100}.{draft.amount_cents % 100:02d}"),
            _hidden("kind", draft.kind), _hidden("note", draft.note),
            tags.button(ctx.t("new_transaction_book"), type="submit"),
            " ", tags.a(ctx.t("new_transaction_back"), href=ctx.url("transactions/new")),
            class_="form", method="post", action=ctx.url("transactions/new")),
    ]
    return Html(ctx.t("new_transaction_confirm_title"), body)


ROUTES = [Route("transactions/new", page, methods=("GET", "POST"), nav="new_transaction_nav")]

STRINGS = {
    "de": {
        "new_transaction_nav": "Neue Transaktion",
        "new_transaction_title": "Neue Transaktion",
        "new_transaction_confirm_title": "Transaktion bestätigen",
        "new_transaction_confirm_intro": "Bitte prüfen Sie die Angaben. Gebucht wird erst mit „Buchen“.",
        "new_transaction_number": "Rufnummer des Anrufers",
        "new_transaction_amount": "Betrag",
        "new_transaction_kind": "Art",
        "new_transaction_kind_topup": "Aufladung (mit Bonus)",
        "new_transaction_kind_credit": "Korrektur: Gutschrift",
        "new_transaction_kind_debit": "Korrektur: Belastung",
        "new_transaction_note": "Notiz",
        "new_transaction_bonus": "Bonus",
        "new_transaction_balance_before": "Guthaben vorher",
        "new_transaction_balance_after": "Guthaben danach",
        "new_transaction_hint": "Höchstens {limit} je Transaktion. Korrekturen brauchen eine Notiz.",
        "new_transaction_bonuses": "Bonus bei Aufladung: {amounts}.",
        "new_transaction_check": "Weiter zur Bestätigung",
        "new_transaction_book": "Buchen",
        "new_transaction_back": "Ändern",
        "new_transaction_booked": "Gebucht: {amount} für {number}, Guthaben jetzt {balance}.",
        "new_transaction_already_booked": "Diese Transaktion war schon gebucht; es wurde nichts weiter gebucht.",
        "new_transaction_bad_number": "„{number}“ ist keine gültige Rufnummer. Bitte mit Vorwahl angeben, "
                                      "z. B. 0151 12345678 oder +49 151 12345678.",
        "new_transaction_bad_amount": "Bitte einen Betrag größer als 0 mit höchstens zwei Nachkommastellen angeben, "
                                      "z. B. 12,50.",
        "new_transaction_over_limit": "{amount} ist mehr als die Grenze für eine manuelle Transaktion ({limit}). "
                                      "Es wurde nichts gebucht.",
        "new_transaction_bad_kind": "Bitte die Art wählen: Aufladung, Gutschrift oder Belastung.",
        "new_transaction_note_needed": "Eine Korrektur braucht eine Notiz: warum wird gebucht?",
        "new_transaction_note_too_long": "Die Notiz darf höchstens {max} Zeichen lang sein.",
        "new_transaction_below_zero": "Das Guthaben ({balance}) deckt die Belastung nicht; ein Guthaben wird nie "
                                      "negativ. Es wurde nichts gebucht.",
        "new_transaction_bad_token": "Das Formular ist unvollständig; bitte neu beginnen.",
    },
    "en": {
        "new_transaction_nav": "New transaction",
        "new_transaction_title": "New transaction",
        "new_transaction_confirm_title": "Confirm transaction",
        "new_transaction_confirm_intro": "Please check. Nothing is booked until you press “Book”.",
        "new_transaction_number": "Caller's number",
        "new_transaction_amount": "Amount",
        "new_transaction_kind": "Kind",
        "new_transaction_kind_topup": "Top-up (with bonus)",
        "new_transaction_kind_credit": "Correction: credit",
        "new_transaction_kind_debit": "Correction: debit",
        "new_transaction_note": "Note",
        "new_transaction_bonus": "Bonus",
        "new_transaction_balance_before": "Balance before",
        "new_transaction_balance_after": "Balance after",
        "new_transaction_hint": "At most {limit} per transaction. Corrections need a note.",
        "new_transaction_bonuses": "Top-up bonuses: {amounts}.",
        "new_transaction_check": "Continue to confirmation",
        "new_transaction_book": "Book",
        "new_transaction_back": "Change",
        "new_transaction_booked": "Booked: {amount} for {number}, balance now {balance}.",
        "new_transaction_already_booked": "This transaction was booked before; nothing more was booked.",
        "new_transaction_bad_number": "“{number}” is not a valid phone number. Please give it with its area code, "
                                      "e.g. 0151 12345678 or +49 151 12345678.",
        "new_transaction_bad_amount": "Please give an amount above 0 with at most two decimals, e.g. 12.50.",
        "new_transaction_over_limit": "{amount} is more than the limit for one manual transaction ({limit}). "
                                      "Nothing was booked.",
        "new_transaction_bad_kind": "Please choose the kind: top-up, credit or debit.",
        "new_transaction_note_needed": "A correction needs a note: why is it booked?",
        "new_transaction_note_too_long": "The note may have at most {max} characters.",
        "new_transaction_below_zero": "The balance ({balance}) does not cover the debit; a balance never goes "
                                      "below zero. Nothing was booked.",
        "new_transaction_bad_token": "The form is incomplete; please start again.",
    },
}
