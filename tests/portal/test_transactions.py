"""The portal's "Transactions" page and its CSV on a real store (SQLite and PostgreSQL): columns, bonus on its
top-up, filters, paging, escaping, German decimal commas, and never another profile's rows."""

from __future__ import annotations

import pytest

from webhook.portal.pages import transactions
from webhook.portal.view import Csv

from .money_support import NUM, ctx, example_config, html, result

OTHER_NUM = "+4930123456789"


@pytest.fixture
def config():
    return example_config()


@pytest.fixture
def booked(store, store_clock, config):
    """Nov 2026 (Berlin): a PayPal top-up of 10 € (+1 € bonus) on the 2nd, a portal correction with HTML in
    its note on the 3rd, a call debit on the 4th; a top-up of another number; rows of profile ``other``."""
    demo = config.profiles["demo"].billing
    store_clock.advance(86_400 + 3600)
    store.topup(demo, NUM, 1000, source="paypal", external_ref="PAY-1", actor="webhook:paypal")
    store_clock.advance(86_400)
    store.manual(demo, NUM, 250, kind="correction", external_ref="portal-x", actor="portal:anna",
                 audit_actor="portal:anna", note="<b>Kulanz</b>")
    store_clock.advance(86_400)
    store.debit("demo", NUM, 199, kind="call_debit", source="call", external_ref="s1:1", actor="node:a")
    store.topup(demo, OTHER_NUM, 2000, source="klarna", external_ref="K-1", actor="webhook:klarna")
    store.topup(config.profiles["other"].billing, NUM, 5000, source="paypal", external_ref="PAY-OTHER",
                actor="webhook:paypal", note="secret-of-other")
    return store


def page(store, config, lang="de", **query):
    return html(result(transactions.page, ctx(store, config, lang=lang, query=query)))


def test_rows_newest_first_with_method_bonus_balance_who_and_escaped_note(booked, config):
    """All of demo's rows, newest first; the bonus on its PayPal top-up's line (no line of its own), the
    correction's author and its note as text; nothing of profile other."""
    text = page(booked, config)
    assert '<table class="data">' in text and "<th scope=\"col\">Erstellt</th>" in text
    order = [text.index(f"<td>{s}</td>") for s in ("Klarna", "Anruf", "Manuell (Korrektur)", "PayPal")]
    assert order == sorted(order)
    assert "<td>PayPal</td><td class=\"num\">10,00 €</td><td class=\"num\">1,00 €</td>" \
           "<td class=\"num\">11,00 €</td>" in text
    assert "<td>portal:anna</td><td>&lt;b&gt;Kulanz&lt;/b&gt;</td>" in text and "<b>Kulanz" not in text
    assert "02.11.2026 02:00" in text  # 01:00 UTC in Berlin
    assert "secret-of-other" not in text and "50,00 €" not in text and text.count("<tr>") == 5


def test_filters_by_number_in_any_form_kind_and_days_in_the_profiles_zone(booked, config):
    """number "0151 12345678" leaves out the other caller; kind topup only top-ups; from/to are whole days."""
    text = page(booked, config, number="0151 12345678")
    assert "<td>Klarna" not in text and "<td>PayPal" in text and "<td>Anruf" in text
    text = page(booked, config, kind="topup")
    assert "<td>Klarna" in text and "<td>PayPal" in text and "<td>Anruf" not in text and "(Korrektur)" not in text
    text = page(booked, config, **{"from": "2026-11-03", "to": "03.11.2026"})
    assert "(Korrektur)" in text and "<td>PayPal" not in text and "<td>Anruf" not in text
    assert "ist kein Datum" in page(booked, config, **{"from": "morgen"})


def test_paging_links_keep_the_filter(booked, config, store_clock, monkeypatch):
    """With two rows a page, page 1 links to page 2 (filter kept), which has the older rows and a way back."""
    monkeypatch.setattr(transactions, "PAGE_ROWS", 2)
    text = page(booked, config, number=NUM)
    assert 'href="/p/demo/transactions?number=%2B4915112345678&amp;page=2"' in text and "<td>PayPal" not in text
    text = page(booked, config, number=NUM, page="2")
    assert "<td>PayPal" in text and "page=1" in text and "page=3" not in text


def test_csv_holds_the_filtered_rows_with_decimal_commas_for_german_users(booked, config):
    """transactions.csv: a header and one row per booking of the filter, German decimal commas; English dots."""
    out = result(transactions.csv_page, ctx(booked, config, query={"number": "0151-12345678"}))
    assert isinstance(out, Csv) and out.filename == "transactions.csv"
    assert out.rows[0] == ["Erstellt", "Rufnummer", "Zahlungsart", "Betrag", "Bonus", "Guthaben danach", "Von",
                           "Notiz"]
    assert out.rows[1:] == [
        ["04.11.2026 02:00", NUM, "Anruf", "-1,99", "", "11,51", "", ""],
        ["03.11.2026 02:00", NUM, "Manuell (Korrektur)", "2,50", "", "13,50", "portal:anna", "<b>Kulanz</b>"],
        ["02.11.2026 02:00", NUM, "PayPal", "10,00", "1,00", "11,00", "", ""]]
    out = result(transactions.csv_page, ctx(booked, config, lang="en", query={"kind": "topup"}))
    assert [r[2:6] for r in out.rows[1:]] == [["Klarna", "20.00", "3.00", "23.00"], ["PayPal", "10.00", "1.00", "11.00"]]
