"""The portal's "New transaction" page on a real store (SQLite and PostgreSQL): the confirmation step,
the booking (once), the limit, notes, no balance below zero, and the audit row of each booking."""

from __future__ import annotations

import re

import pytest

from billing.db import audit
from webhook.portal.pages import new_transaction
from webhook.portal.view import Redirect

from .money_support import NUM, ctx, example_config, html, result


@pytest.fixture
def config():
    return example_config()


def post(store, config, lang="de", **form):
    return result(new_transaction.page, ctx(store, config, lang=lang, method="POST", form=form))


def confirm_then_book(store, config, **form):
    """Submit the form, read the confirmation's hidden fields, submit those: the booking's answer."""
    page = html(post(store, config, step="check", **form))
    fields = dict(re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)"', page))
    return post(store, config, **fields), fields


def balance(store, number=NUM, profile="demo"):
    out = []
    store.account(profile, number).addCallback(out.append)
    return out[0].balance_cents if out[0] else None


def test_the_form_carries_the_csrf_token_and_says_the_limit(store, config):
    """GET: a form (class form, POST to transactions/new) with the CSRF field, the kinds and the 500 € limit."""
    page = html(result(new_transaction.page, ctx(store, config)))
    assert '<form class="form" method="post" action="/p/demo/transactions/new">' in page
    assert '<input type="hidden" name="csrf" value="csrf-123"' in page
    assert "Aufladung (mit Bonus)" in page and "Korrektur: Belastung" in page and "500,00 €" in page


def test_a_topup_shows_its_bonus_before_booking_then_books_it_with_an_audit_row(store, config):
    """10 € to "0151 12345678": the confirmation shows 1 € bonus and 11 € after, books nothing; "Buchen"
    books 10 + 1 under the E.164 number, redirects to its transactions, and audits portal:anna from its address."""
    page = html(post(store, config, step="check", number="0151 12345678", amount="10", kind="topup"))
    assert "Transaktion bestätigen" in page and NUM in page
    assert "<td>1,00 €</td>" in page and "<td>11,00 €</td>" in page
    assert balance(store) is None
    answer, _ = confirm_then_book(store, config, number="0151 12345678", amount="10", kind="topup")
    assert isinstance(answer, Redirect) and answer.location == "/p/demo/transactions?number=%2B4915112345678"
    assert "11,00 €" in answer.notice and balance(store) == 1100
    rows = store.run(audit.entries, profile="demo").result
    assert [(a.actor, a.action, a.subject, a.source, a.before, a.after) for a in rows] == [
        ("portal:anna", "manual_topup", NUM, "192.0.2.7", "0", "1100")]


def test_a_double_submit_of_one_confirmation_books_once(store, config):
    """The same confirmation posted twice (same one-time token): one booking, the second says so."""
    first, fields = confirm_then_book(store, config, number=NUM, amount="20", kind="topup")
    second = post(store, config, **fields)
    assert isinstance(second, Redirect) and "schon gebucht" in second.notice
    assert balance(store) == 2300
    assert len(store.transactions("demo", NUM).result) == 2  # the top-up and its bonus
    assert len(store.run(audit.entries, profile="demo").result) == 1


@pytest.mark.parametrize("kind", ["topup", "credit", "debit"])
def test_over_the_limit_is_refused_with_a_message_and_nothing_booked(store, config, kind):
    """500,01 € is over the profile's max_manual (500 €): refused at the form and at the booking step."""
    store.topup(config.profiles["demo"].billing, NUM, 100, source="paypal", external_ref="p1", actor="t")
    page = html(post(store, config, step="check", number=NUM, amount="500,01", kind=kind, note="n"))
    assert "500,01 € ist mehr als die Grenze" in page and "Es wurde nichts gebucht" in page
    page = html(post(store, config, step="book", token="a" * 32, number=NUM, amount="500.01", kind=kind, note="n"))
    assert "Grenze" in page and balance(store) == 100


def test_a_correction_without_a_note_is_refused(store, config):
    """A correction credit with an empty note is the form again with the reason; nothing booked."""
    answer = post(store, config, step="book", token="b" * 32, number=NUM, amount="5", kind="credit", note="  ")
    assert answer.status == 400 and "braucht eine Notiz" in html(answer) and balance(store) is None


def test_a_debit_never_takes_a_balance_below_zero(store, config):
    """3 € balance: a 3,01 € debit is refused (confirmation and booking); 3 € is booked as a correction."""
    store.topup(config.profiles["demo"].billing, NUM, 300, source="paypal", external_ref="p1", actor="t")
    for step in ("check", "book"):
        page = html(post(store, config, step=step, token="c" * 32, number=NUM, amount="3,01", kind="debit",
                         note="Fehlbuchung"))
        assert "deckt die Belastung nicht" in page
    assert balance(store) == 300
    answer, _ = confirm_then_book(store, config, number=NUM, amount="3", kind="debit", note="Fehlbuchung")
    assert isinstance(answer, Redirect) and balance(store) == 0
    last = store.transactions("demo", NUM).result[0]
    assert (last.kind, last.amount_cents, last.actor, last.note) == ("correction", -300, "portal:anna", "Fehlbuchung")


@pytest.mark.parametrize("number", ["12345", "+49 30 1", "0151 1234567890123", "abc", "0151123"])
def test_numbers_that_are_not_valid_for_their_region_are_refused(store, config, number):
    """Impossible or invalid numbers get a clear message naming what was typed, in English too."""
    page = html(post(store, config, lang="en", step="check", number=number, amount="10", kind="topup"))
    assert "is not a valid phone number" in page and balance(store) is None


def test_html_in_a_note_is_shown_as_text(store, config):
    """A note with markup is escaped on the confirmation page."""
    page = html(post(store, config, step="check", number=NUM, amount="1", kind="credit", note="<script>x</script>"))
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
