"""HTML and formulas from the outside, shown by the portal: escaped on every page, defused in every CSV.

Markup gets into the store from many sides: a note typed in the portal, a caller's number as a carrier
sent it, a login name (one guessed at the login form, too), an API key's name. Every page that shows one
shows it as text (``&lt;script&gt;``), and no answer carries the markup itself. A CSV cell that a
spreadsheet would read as a formula (``= + - @``, tab, CR at its start) gets a leading ``'``; plain
numbers (amounts, E.164 numbers) stay as they are. SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from urllib.parse import quote

import pytest

from billing.db import calls as db_calls
from tests.conftest import fired
from webhook.portal.server import csv_cell

from .security_support import NUM_A, add_login, call_record, make_portal, token

SCRIPT = '<script>alert("x")</script>'
IMG = "<img src=x onerror=alert(1)>"
NAME = "<b>eve</b>"
RAW = (SCRIPT, IMG, NAME, "<script>", "<img", "<b>eve")


@pytest.fixture
def portal(store, store_clock):
    p = make_portal(store, store_clock)
    add_login(store, NAME, "operator")
    fired(store.run(db_calls.add_many, (call_record("demo", NUM_A, store.now_ms(), received=IMG),)))
    return p


def _book_with_note(browser, note: str) -> None:
    form = {"step": "book", "token": token(), "number": NUM_A, "amount": "1", "kind": "credit", "note": note}
    assert browser.post("/p/demo/transactions/new", {**form, "csrf": browser.csrf("/p/demo/")}).status == 303


def test_markup_from_every_side_is_shown_as_text_on_every_page(portal):
    """A note, a received number, a login name (also one guessed at the login form) and an API key name,
    each markup: on the pages that show them (transactions, calls, audit, API keys, lockouts, the frame
    with the user's name, a search that echoes its query) they appear escaped, and no answer holds them raw."""
    for _ in range(portal.config.portal.login_max_failures):          # the guessed name is listed on /lockouts
        portal.browser("198.51.100.40").login(SCRIPT, "wrong", advance_s=1.0)
    eve = portal.logged_in(NAME)
    _book_with_note(eve, SCRIPT)
    assert eve.post("/p/demo/apikeys/create", {"csrf": eve.csrf("/p/demo/"), "name": IMG}).status == 200
    shows = {
        "/p/demo/transactions": "&lt;script&gt;alert",
        "/p/demo/calls": "&lt;img src=x onerror=alert(1)&gt;",
        "/p/demo/audit": "&lt;b&gt;eve&lt;/b&gt;",
        "/audit": "&lt;script&gt;alert",
        "/p/demo/apikeys": "&lt;img src=x",
        "/lockouts": "&lt;script&gt;alert",
        "/p/demo/": "&lt;b&gt;eve&lt;/b&gt;",
        f"/p/demo/customers?q={quote(SCRIPT)}": "&lt;script&gt;",
        f"/p/demo/transactions?number={quote(SCRIPT)}": "&lt;script&gt;",
        f"/p/demo/first-callers?q={quote(SCRIPT)}": "&lt;script&gt;",
        f"/p/demo/calls?number={quote(SCRIPT)}": "&lt;script&gt;",
    }
    wrong = []
    for path, escaped in shows.items():
        answer = eve.get(path)
        raw = [r for r in RAW if r in answer.text]
        if answer.status not in (200, 400) or escaped not in answer.text or raw:
            wrong.append((path, answer.status, escaped in answer.text, raw))
    assert wrong == []


@pytest.mark.parametrize("cell, safe", [
    ("=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"), ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("-12,50", "-12,50"), ("+4915112345678", "+4915112345678"),
    ("1.234,56", "1.234,56"), ("note = fine", "note = fine"), ("", ""),
])
def test_a_csv_cell_that_starts_a_formula_gets_a_quote_and_numbers_stay(cell, safe):
    """= + - @ tab CR at the start: a leading '; a plain number (a sign, digits, decimal marks) is left."""
    assert csv_cell(cell) == safe


def test_the_csv_downloads_defuse_formulas_in_notes_and_numbers(portal):
    """A note "=HYPERLINK(...)" and a number received as "@SUM(1)" come out of transactions.csv and the
    calls' CSV with a leading ', while the amounts (-1.00 of a debit) and E.164 numbers stay plain."""
    fired(portal.store.run(db_calls.add_many, (call_record("demo", NUM_A, portal.store.now_ms() + 1,
                                                            received="@SUM(1)"),)))
    anna = portal.logged_in("anna")
    formula = '=HYPERLINK("http://evil.example","click")'
    form = {"step": "book", "token": token(), "number": NUM_A, "amount": "1", "kind": "debit", "note": formula}
    assert anna.post("/p/demo/transactions/new", {**form, "csrf": anna.csrf("/p/demo/")}).status == 303
    ledger = cells(anna.get("/p/demo/transactions.csv"))
    assert f"'{formula}" in ledger and formula not in ledger and "-1.00" in ledger and NUM_A in ledger
    calls = cells(anna.get("/p/demo/calls?format=csv"))
    assert "'@SUM(1)" in calls and "@SUM(1)" not in calls and NUM_A in calls


def cells(answer) -> set[str]:
    """Every cell of a CSV download, as a spreadsheet reads it (';' between fields)."""
    return {cell for row in csv.reader(io.StringIO(answer.body.decode("utf-8-sig")), delimiter=";") for cell in row}
