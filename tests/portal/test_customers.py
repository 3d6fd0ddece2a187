"""The portal's "Prepaid-Kunden" and its number edit, on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from billing.db import audit
from billing.store import CallRecord
from tests.conftest import fired
from webhook.portal.pages import customers as page
from webhook.portal.view import Redirect

from .pagekit import config, context, render

NUM = "+4915112345678"
OTHER = "+491721234567"


@pytest.fixture
def cfg():
    return config()


def topup(store, cfg, number, cents, ref, profile="demo"):
    return fired(store.topup(cfg.profiles[profile].billing, number, cents, source="test", external_ref=ref,
                             actor="t"))


def call(store, number, invite_ms, profile="demo"):
    return fired(store.add_call_record(CallRecord(
        call_id=f"c-{number}-{invite_ms}", profile=profile, service_number="+493012345678", caller=number,
        identity_source="from", privacy=False, caller_class="mobile", agent_tried=None, agent_answered=None,
        invite_ms=invite_ms, answer_ms=None, end_ms=invite_ms + 60_000, end_reason="bye", a_status=200,
        b_status=200, billed_s=60, charge_cents=249)))


def test_search_in_national_form_finds_the_e164_account_with_its_figures(store, cfg):
    """"0151 12345678" finds +4915112345678; the row shows E.164 and national form, balance, number of top-ups,
    last top-up and last call, and a pencil link to the number edit; other numbers are not listed."""
    topup(store, cfg, NUM, 1000, "a")
    topup(store, cfg, NUM, 2000, "b")
    topup(store, cfg, OTHER, 1000, "c")
    call(store, NUM, 1_790_000_000_000)
    _, html = render(page.customers, context(store, cfg, query={"q": "0151 12345678"}))
    assert NUM in html and "01511 2345678" in html and OTHER not in html
    assert "34,00 €" in html and ">2<" in html                         # 10+1 and 20+3 bonus; two top-ups
    assert "/p/demo/customers/edit?number=%2B4915112345678" in html
    assert "21.09.2026 16:13" in html                                        # the last call (Berlin time)


def test_a_partial_number_matches_from_the_start_or_anywhere(store, cfg):
    """"0172" (national start) and "1234567" (digits anywhere) find +491721234567; "0151" does not."""
    topup(store, cfg, OTHER, 1000, "c")
    for q, found in (("0172", True), ("1234567", True), ("0151", False), ("+49172", True)):
        _, html = render(page.customers, context(store, cfg, query={"q": q}))
        assert (OTHER in html) is found, q


def test_sorting_by_balance_and_paging_by_fifty(store, cfg):
    """55 accounts: page 1 sorted by balance descending starts with the richest and links to page 2, which
    holds the last 5."""
    for i in range(55):
        fired(store.credit("demo", f"+4930555{i:04d}", 100 + i, kind="manual", source="m", external_ref=f"r{i}",
                           actor="t"))
    _, first = render(page.customers, context(store, cfg, query={"sort": "balance", "dir": "desc"}))
    assert first.index("+49305550054") < first.index("+49305550053") and "+49305550004" not in first
    assert "Seite 1 von 2" in first and "page=2" in first
    _, second = render(page.customers, context(store, cfg, query={"sort": "balance", "dir": "desc", "page": "2"}))
    assert second.count("/customers/edit?number=") == 5 and "+49305550000" in second


def test_a_providers_list_never_shows_another_profiles_numbers(store, cfg):
    """An account under profile ``other`` does not appear on ``demo``'s list, nor is its edit page found."""
    topup(store, cfg, NUM, 1000, "a")
    topup(store, cfg, OTHER, 1000, "o", profile="other")
    _, html = render(page.customers, context(store, cfg))
    assert NUM in html and OTHER not in html
    result, html = render(page.edit, context(store, cfg, query={"number": OTHER}))
    assert result.status == 404 and OTHER not in html


def test_renumber_moves_balance_and_ledger_audits_and_keeps_call_records(store, cfg):
    """POST a new number (national form): redirect with a notice in words; the account, its balance and ledger
    are under the new number, the call record keeps the number the call came from, and an audit row names the portal
    user, the client's address and both numbers."""
    topup(store, cfg, NUM, 1000, "a")
    old_call = call(store, NUM, 1_790_000_000_000)
    form = context(store, cfg, method="POST", query={"number": NUM}, form={"new": "0172 1234567", "csrf": "x"},
                   client_address="192.0.2.7")
    result, _ = render(page.edit, form)
    assert isinstance(result, Redirect)       # the notice in the user's words, not a text key
    assert result.notice == "Die Nummer wurde geändert; Guthaben und Buchungen sind umgezogen."
    assert fired(store.account("demo", NUM)) is None
    assert fired(store.account("demo", OTHER)).balance_cents == 1100
    assert {e.number for e in fired(store.transactions("demo"))} == {OTHER}
    assert fired(store.calls("demo", NUM)) == [old_call]
    [row] = fired(store.run(audit.entries, profile="demo"))
    assert (row.actor, row.source, row.action, row.subject, row.before, row.after) == (
        "portal:anna", "192.0.2.7", "renumber", NUM, f"{NUM}: 11.00", f"{OTHER}: 11.00")
    _, html = render(page.customers, context(store, cfg))
    assert OTHER in html and NUM not in html


def test_renumber_onto_a_taken_number_asks_then_merges(store, cfg):
    """The first POST changes nothing and shows both balances with a merge form (csrf, merge=1); the second
    merges: one account with both balances and both ledgers, and a ``merge`` audit row."""
    topup(store, cfg, NUM, 1000, "a")
    fired(store.credit("demo", OTHER, 250, kind="manual", source="m", external_ref="b", actor="t"))
    ask, html = render(page.edit, context(store, cfg, method="POST", query={"number": NUM}, form={"new": OTHER},
                                          csrf_token="tok"))
    assert ask.status == 200 and "11,00 €" in html and "2,50 €" in html
    assert 'name="merge" value="1"' in html and 'name="csrf" value="tok"' in html
    assert fired(store.account("demo", NUM)).balance_cents == 1100
    result, _ = render(page.edit, context(store, cfg, method="POST", query={"number": NUM},
                                          form={"new": OTHER, "merge": "1"}, client_address="192.0.2.7"))
    assert isinstance(result, Redirect) and result.notice == "Die Konten wurden zusammengeführt."
    assert fired(store.account("demo", NUM)) is None
    merged = fired(store.account("demo", OTHER))
    assert merged.balance_cents == 1350 and fired(store.ledger_sum(merged.id)) == 1350
    assert len(fired(store.transactions("demo", OTHER))) == 3
    [row] = fired(store.run(audit.entries, profile="demo"))
    assert (row.action, row.before, row.after) == ("merge", f"{NUM}: 11.00; {OTHER}: 2.50", f"{OTHER}: 13.50")


def test_the_edit_form_carries_csrf_and_refuses_a_non_number(store, cfg):
    """GET shows a labelled form with the CSRF field; a POST of text that is no number answers 400, the text
    escaped, and changes nothing."""
    topup(store, cfg, NUM, 1000, "a")
    _, html = render(page.edit, context(store, cfg, query={"number": NUM}, csrf_token="tok"))
    assert 'name="csrf" value="tok"' in html and '<label for="customers-new">' in html
    result, html = render(page.edit, context(store, cfg, method="POST", query={"number": NUM},
                                             form={"new": "<script>x</script>"}))
    assert result.status == 400 and "<script>" not in html and "&lt;script&gt;" in html
    result, _ = render(page.edit, context(store, cfg, method="POST", query={"number": NUM}, form={"new": "0151123"}))
    assert result.status == 400  # possible, but no valid German number: no account may move onto it
    assert fired(store.account("demo", NUM)).balance_cents == 1100
    assert fired(store.run(audit.entries, profile="demo")) == []


def test_a_search_text_with_html_is_escaped(store, cfg):
    """What the user typed into the search comes back escaped."""
    _, html = render(page.customers, context(store, cfg, query={"q": '"><b>1</b>'}))
    assert "<b>1</b>" not in html and "&lt;b&gt;" in html
