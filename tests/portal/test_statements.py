"""The portal's "Statements" page on a real store (SQLite and PostgreSQL): the settlement's own figures,
months in the profile's zone, the provider's visible profiles only, CSV and the printable page."""

from __future__ import annotations

import json
import os

import pytest

from b2bua.node.cli import main
from billing.settlement import build_statement
from webhook.portal.pages import statements
from webhook.portal.view import Csv

from .money_support import EXTRA, NUM, ROOT, ctx, example_config, html, result


@pytest.fixture
def config():
    return example_config()


@pytest.fixture
def booked(store, store_clock, config):
    """Nov 2026: PayPal 50 € (+10 bonus) and Klarna 20 € (+3) for demo on the 10th, 10 € manual; PayPal 20 € for
    demo2; PayPal 10 € for other (not the user's); and a PayPal 10 € at 23:30 UTC on 30 Nov (December in Berlin)."""
    p = {name: config.profiles[name].billing for name in ("demo", "demo2", "other")}
    store_clock.advance(9 * 86_400)
    store.topup(p["demo"], NUM, 5000, source="paypal", external_ref="A", actor="t")
    store.topup(p["demo"], NUM, 2000, source="klarna", external_ref="B", actor="t")
    store.topup(p["demo"], NUM, 1000, source="manual", external_ref="C", actor="t")
    store.topup(p["demo2"], NUM, 2000, source="paypal", external_ref="D", actor="t")
    store.topup(p["other"], NUM, 1000, source="paypal", external_ref="E", actor="t")
    store_clock.advance(21 * 86_400 - 1800)
    store.topup(p["demo"], NUM, 1000, source="paypal", external_ref="F", actor="t")
    return store


def cli_statement(store_url, tmp_path, capsys, *who, month="2026-11"):
    with open(os.path.join(ROOT, "conf", "prepaid.toml"), encoding="utf-8") as f:
        text = f.read().replace('url = "sqlite:///../var/prepaid.db"', f"url = {json.dumps(store_url)}") + EXTRA
    path = tmp_path / "prepaid.toml"
    path.write_text(text)
    capsys.readouterr()
    assert main(["statement", "--config", str(path), *who, "--month", month, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_figures_equal_prepaid_statement_for_the_same_month(booked, config, store_url, tmp_path, capsys):
    """The page's statement is `prepaid statement --profile demo --month 2026-11`'s, figure for figure (both
    cut the month in the profile's zone), and the page shows its paid top-ups and fees labelled for what they are."""
    c = ctx(booked, config, query={"month": "2026-11"})
    st = booked.run(build_statement, [config.profiles["demo"].billing], "2026-11", title="demo").result
    assert st.to_dict() == cli_statement(store_url, tmp_path, capsys, "--profile", "demo")
    text = html(result(statements.page, c))
    assert "Aufladungen, eingegangen auf Ihren eigenen Händlerkonten" in text
    assert "Gebühren, die Sie dem Betreiber schulden" in text
    assert st.total("paid_topup_cents") == 7000 and ">70,00 €<" in text     # 30 Nov 23:30 UTC is December
    assert f">{c.money(st.total('fees_cents'))}<" in text and "Stimmt mit dem Buchungsjournal überein." in text


def test_month_bounds_are_the_profiles_zone(booked, config):
    """The top-up at 23:30 UTC on 30 Nov is December in Berlin: November's paid top-ups are 70 €, not 80 €."""
    c = ctx(booked, config, query={"month": "2026-11"})
    text = html(result(statements.page, c))
    assert "Bezahlte Aufladungen gesamt</th><td class=\"num\">2</td><td class=\"num\">70,00 €</td>" in text
    text = html(result(statements.page, ctx(booked, config, query={"month": "2026-12"})))
    assert "<td class=\"num\">1</td><td class=\"num\">10,00 €</td>" in text


def test_the_providers_statement_has_only_the_users_profiles(booked, config, store_url, tmp_path, capsys):
    """scope=provider sums demo and demo2 (the user's), never other, though other has the same provider."""
    text = html(result(statements.page, ctx(booked, config, query={"month": "2026-11", "scope": "provider"})))
    assert "Profile: demo, demo2" in text and "other" not in text
    assert "<td class=\"num\">3</td><td class=\"num\">90,00 €</td>" in text  # 50 + 20 + 20 (30 Nov 23:30 UTC: Dec)
    whole = cli_statement(store_url, tmp_path, capsys, "--provider", "Demo Beratung GmbH")
    assert whole["totals"]["paid_topup_cents"] == 10000  # the CLI's provider statement includes other


def test_csv_and_printable_page(booked, config):
    """statements.csv is the settlement's CSV with German decimal commas; the print page is the figures alone
    in a "print" block, without the month picker."""
    out = result(statements.csv_page, ctx(booked, config, query={"month": "2026-11"}))
    assert isinstance(out, Csv) and out.filename == "statement-demo-2026-11.csv"
    assert out.rows[0] == ["Monat", "Profil", "Position", "Anzahl", "Betrag"]
    assert ["2026-11", "demo", "topup:paypal", "1", "50,00"] in out.rows
    assert ["2026-11", "demo", "paid_topup", "", "70,00"] in out.rows
    text = html(result(statements.print_page, ctx(booked, config, query={"month": "2026-11"})))
    assert '<div class="print statement">' in text and "<select" not in text and "70,00 €" in text


def test_a_topup_late_on_31_october_utc_is_novembers_in_berlin_for_the_cli_and_the_page(
        store, store_clock, config, store_url, tmp_path, capsys):
    """A PayPal top-up at 2026-10-31T23:30Z (00:30 on 1 Nov in Berlin, the demo profile's zone) is in
    November's statement and not in October's, on the page and in `prepaid statement` alike."""
    store_clock.rightNow = store_clock.seconds() - 1800            # 2026-10-31 23:30 UTC
    store.topup(config.profiles["demo"].billing, NUM, 2000, source="paypal", external_ref="late", actor="t")
    for month, cents in (("2026-11", 2000), ("2026-10", 0)):
        page = html(result(statements.page, ctx(store, config, query={"month": month})))
        assert f"Bezahlte Aufladungen gesamt</th><td class=\"num\">{cents // 2000}</td>" in page
        assert cli_statement(store_url, tmp_path, capsys, "--profile", "demo",
                             month=month)["totals"]["paid_topup_cents"] == cents
