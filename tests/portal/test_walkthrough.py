"""The portal walked through in headless Chromium, as a provider and as an operator would, against a real
``prepaid run``: every page used for what it is for, with the data put in by the real CLI (``prepaid
topup``, ``prepaid user add``) and call records written by the store's own functions.

One node and one browser serve the whole module (each test logs in afresh); every page visited is
photographed at 1280 and 390 px under the test's tmp folder, and at 390 px no page scrolls sideways.
"""

from __future__ import annotations

import csv
import datetime
import zoneinfo

import pytest

from billing.numbers import national

from .browser import PortalBrowser, call_record, http_status, running_portal

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: the demo profile's first-caller offer is on in this node: five free minutes
OFFER = {"first_caller_per_minute": '"0"', "first_caller_period_s": "300"}


@pytest.fixture(scope="module")
def node_and_browser(tmp_path_factory):
    """One ``prepaid run`` and one Chromium for the module, with a provider (English) and an operator (German)."""
    with running_portal(tmp_path_factory.mktemp("walk"), profile=OFFER) as browser:
        browser.add_user("anna", "provider", profiles="demo", language="en")
        browser.add_user("olga", "operator", language="de")
        yield browser


@pytest.fixture
def walk(node_and_browser, tmp_path) -> PortalBrowser:
    """The module's browser, logged out, its screenshots going to this test's tmp folder."""
    browser = node_and_browser
    browser.driver.delete_all_cookies()
    browser.shots = tmp_path / "shots"
    browser.shots.mkdir()
    return browser


def rows(b: PortalBrowser, css: str = "main table tbody tr") -> list[str]:
    return [row.text for row in b.driver.find_elements("css selector", css)]


def balance_cents(b: PortalBrowser, number: str) -> int | None:
    """The balance of ``number``'s account under the demo profile, read from the node's store (a subprocess
    of the CLI per look would double the walk's time); None when it has none."""
    found = b.node.rows("select balance_cents from accounts where profile = 'demo' and number = ?", number)
    return found[0][0] if found else None


def profile_now() -> datetime.datetime:
    """Now in the demo profile's zone, where the portal's days and months begin (not the test machine's)."""
    return datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Berlin"))


def notice(b: PortalBrowser) -> str:
    return b.text("main .notice")


def api_status(b: PortalBrowser, token: str, number: str) -> int:
    return http_status(f"{b.public}/api/v1/accounts/demo/{number}", {"Authorization": f"Bearer {token}"})


def test_a_provider_finds_a_customer_by_the_number_in_any_usual_form(walk):
    """A number topped up with 20 EUR (3 EUR bonus) is found on the customers page whether the provider
    types it nationally, internationally with spaces, with 00, or only its last digits; the row shows
    E.164, the national form and the balance with the bonus."""
    b = walk
    b.node.topup("+4915112340001", "20")
    b.login("anna")
    for typed in ("0151 12340001", "+49 151 12340001", "0049 151-12340001", "12340001"):
        b.get("/p/demo/customers")
        b.fill({"q": typed})
        b.submit("css selector", "form[role=search] button")
        found = rows(b)
        assert len(found) == 1 and "+4915112340001" in found[0], (typed, found)
        assert national("+4915112340001") in found[0] and "€23.00" in found[0], found
    b.shot("customers-search")
    b.get("/p/demo/customers")
    b.shot("customers")


def test_renumbering_without_a_merge_moves_the_account(walk):
    """The pencil opens the number edit; a new number that has no account takes the balance at once
    (no question), the old number has none left, and the list shows the new one with a notice."""
    b = walk
    b.node.topup("+4915112340002", "10")
    b.login("anna")
    b.get("/p/demo/customers?q=015112340002")
    b.submit("css selector", "main table a[aria-label='Change number']")
    assert b.driver.find_element("css selector", "main h1").text == "Change number: +4915112340002"
    b.shot("customer-edit")
    b.fill({"new": "0151 12340003"})
    b.submit("css selector", "main form button[type=submit]")
    assert notice(b) == "The number was changed; balance and transactions moved with it."
    assert ["+4915112340003" in row and "€11.00" in row for row in rows(b)] == [True]
    assert balance_cents(b, "+4915112340003") == 1100 and balance_cents(b, "+4915112340002") is None


def test_renumbering_onto_a_number_with_an_account_shows_both_balances_and_merges_when_asked(walk):
    """The new number has an account: nothing changes yet, the page shows both numbers with their balances
    and asks; "Merge" then leaves one account with the sum of both."""
    b = walk
    b.node.topup("+4915112340004", "10")      # 11.00 with the bonus
    b.node.topup("+4915112340005", "20")      # 23.00
    b.login("anna")
    b.get("/p/demo/customers/edit?number=%2B4915112340004")
    b.fill({"new": "+49 151 12340005"})
    b.submit("css selector", "main form button[type=submit]")
    assert "+4915112340005 already has an account. Merge both accounts?" in b.text("main")
    shown = rows(b)
    assert len(shown) == 2 and "+4915112340004" in shown[0] and "€11.00" in shown[0], shown
    assert "+4915112340005" in shown[1] and "€23.00" in shown[1], shown
    assert balance_cents(b, "+4915112340004") == 1100, "asking changed something"
    b.shot("customer-merge-question")
    b.submit("xpath", "//main//button[text()='Merge']")
    assert notice(b) == "The accounts were merged."
    assert balance_cents(b, "+4915112340005") == 3400 and balance_cents(b, "+4915112340004") is None
    b.get("/p/demo/audit")
    assert any("portal:anna" in row and "merge +4915112340004" in row for row in rows(b)), rows(b)


def test_a_manual_top_up_shows_its_bonus_before_booking_and_an_over_limit_one_is_refused(walk):
    """A 20 EUR top-up typed nationally is confirmed first with its 3 EUR bonus and the balance after, then
    booked (the transactions page says so); 600 EUR is over the profile's 500 EUR limit: the form says so
    in words and nothing is booked."""
    b = walk
    b.login("anna")
    b.get("/p/demo/transactions/new")
    b.shot("new-transaction")
    b.fill({"number": "0170 1234567", "amount": "20"})
    b.submit("css selector", "main form button[type=submit]")
    confirm = rows(b, "table.confirm tr")
    assert "Bonus €3.00" in confirm and "Balance before €0.00" in confirm and "Balance after €23.00" in confirm, confirm
    assert balance_cents(b, "+491701234567") is None, "booked before confirming"
    b.shot("new-transaction-confirm")
    b.submit("xpath", "//main//button[text()='Book']")
    assert notice(b) == "Booked: €20.00 for +491701234567, balance now €23.00."
    assert balance_cents(b, "+491701234567") == 2300
    b.get("/p/demo/transactions/new")
    b.fill({"number": "+491701234567", "amount": "600"})
    b.submit("css selector", "main form button[type=submit]")
    assert b.text("main .error") == ("€600.00 is more than the limit for one manual transaction (€500.00). "
                                     "Nothing was booked.")
    b.shot("new-transaction-over-limit")
    assert balance_cents(b, "+491701234567") == 2300


def test_transactions_filtered_by_number_kind_and_day_and_downloaded_as_csv(walk):
    """Two top-ups of one number among others: the filter (number in national form, kind top-up, today)
    shows exactly them, and the CSV the browser downloads holds the same rows with amounts and bonuses."""
    b = walk
    b.node.topup("+4915112340006", "10")
    b.node.topup("+4915112340006", "50")
    b.node.topup("+4915112340016", "20")
    b.login("anna")
    b.get("/p/demo/transactions")
    b.fill({"number": "0151 12340006"})
    b.driver.find_element("css selector", "select[name=kind] option[value=topup]").click()
    today = profile_now().strftime("%Y-%m-%d")
    b.driver.execute_script("document.querySelector('input[name=from]').value = arguments[0];"
                            "document.querySelector('input[name=to]').value = arguments[0];", today)
    b.submit("css selector", "form.filter button")
    shown = rows(b)
    assert len(shown) == 2 and all("+4915112340006" in row for row in shown), shown
    assert "Manual €50.00 €10.00 €71.00" in shown[0] and "Manual €10.00 €1.00 €11.00" in shown[1], shown
    b.shot("transactions")
    saved = b.download("Download as CSV")
    with saved.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle, delimiter=";"))
    assert table[0][:6] == ["Created", "Number", "Method", "Amount", "Bonus", "Balance after"], table[0]
    assert [row[1:6] for row in table[1:]] == [["+4915112340006", "Manual", "50.00", "10.00", "71.00"],
                                               ["+4915112340006", "Manual", "10.00", "1.00", "11.00"]], table


def test_a_refused_call_in_the_evn_leads_to_the_mistyped_number_and_fixes_it(walk):
    """The caller topped up a number one digit off their own and was refused for no credit: the EVN,
    filtered to "no credit", shows the call and, under it, the account a typo away with its balance and a
    link; following it and saving the caller's number moves the credit there, and the hint is gone."""
    b = walk
    b.node.topup("+4917698761234", "10")                   # the typo: ...1234 instead of ...2134
    b.add_calls(call_record("+4917698762134", ago_s=60, received="0176 98762134"),
                call_record("+4915112340001", ago_s=7200, talked_s=180, charge_cents=747))
    b.login("anna")
    b.get("/p/demo/calls")
    b.driver.find_element("css selector", "select[name=outcome] option[value=no_credit]").click()
    b.submit("css selector", "main form.form button")
    shown = rows(b)
    assert any("+4917698762134" in row and "no credit" in row for row in shown), shown
    hint = b.text("tr.hint")
    assert "This number has no account." in hint and "+4917698761234 (balance €11.00)" in hint, hint
    b.shot("calls-hint")
    b.submit("xpath", "//tr[@class='hint']//li[contains(., '+4917698761234')]/a")
    assert b.driver.find_element("css selector", "main h1").text == "Change number: +4917698761234"
    b.fill({"new": "0176 98762134"})
    b.submit("css selector", "main form button[type=submit]")
    assert notice(b) == "The number was changed; balance and transactions moved with it."
    assert balance_cents(b, "+4917698762134") == 1100
    b.get("/p/demo/calls?outcome=no_credit")
    assert not b.driver.find_elements("css selector", "tr.hint"), "the caller's number has an account now"
    b.get("/p/demo/calls")
    assert any("+4915112340001" in row and "talked" in row and "3:00" in row and "€7.47" in row
               for row in rows(b)), rows(b)
    b.shot("calls")


def test_a_statement_is_downloaded_as_csv_and_opened_for_printing(walk):
    """This month's statement of the profile: its page, its CSV (the month, the profile and the totals, the
    manual top-ups of this module's walk) and the printable page, which prints the statement without the
    menu."""
    b = walk
    b.node.topup("+4915112340008", "10")
    b.login("anna")
    b.get("/p/demo/statements")
    b.shot("statements")
    month = profile_now().strftime("%Y-%m")
    saved = b.download("Download as CSV")
    assert saved.name == f"statement-demo-{month}.csv", saved.name
    with saved.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.reader(handle, delimiter=";"))
    assert table[0] == ["month", "profile", "line", "count", "amount"], table[0]
    assert [row for row in table[1:] if row[0] != month or row[1] not in ("demo", "total")] == [], table
    manual = [row for row in table if row[1:3] == ["demo", "topup:manual"]]
    assert len(manual) == 1 and int(manual[0][3]) >= 1, table
    b.submit("link text", "Printable page")
    assert b.driver.title.startswith(f"Statement demo {month}")
    assert b.driver.find_elements("css selector", "main .print table.statement-fees")
    b.shot("statement-print")
    b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not b.driver.find_element("css selector", "nav.menu").is_displayed(), "the menu is printed"
        assert b.driver.find_element("css selector", "table.statement-fees").is_displayed()
    finally:
        b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_the_button_page_copies_the_snippet_and_previews_the_top_up_page(walk):
    """The copy button puts the snippet itself (the iframe of the public top-up page) on the clipboard and
    says so on the button; the preview frames the real top-up page of the node's public port."""
    b = walk
    b.login("anna")
    b.get("/p/demo/button")
    code = b.driver.find_element("id", "button-snippet").get_property("value")
    assert f'src="{b.public}/topup/demo' in code, code
    button = b.driver.find_element("css selector", "button[data-copy]")
    label = button.text
    button.click()
    b.wait_until(lambda: button.text != label, "the button does not show that it copied")
    assert b.clipboard() == code
    frame = b.driver.find_element("css selector", "main iframe")
    assert frame.get_attribute("src") == f"{b.public}/topup/demo?lang=de"
    assert not b.driver.find_elements("css selector", "main .warning"), "this node lets the portal frame the page"
    b.shot("button")
    b.driver.switch_to.frame(frame)
    try:
        assert b.driver.find_elements("css selector", "form"), "the preview shows no top-up page"
    finally:
        b.driver.switch_to.default_content()


def test_an_api_key_is_shown_once_works_and_stops_working_when_revoked(walk):
    """A key made on the page is shown once; it opens the balance API; the list shows its name but never
    the token again; revoked, it is refused by the API."""
    b = walk
    b.node.topup("+4915112340009", "10")
    b.login("anna")
    b.get("/p/demo/apikeys")
    b.fill({"name": "CRM"})
    b.submit("css selector", "main form button[type=submit]")
    token = b.driver.find_element("id", "apikey-token").get_property("value")
    assert len(token) > 20
    b.shot("apikey-created")
    assert api_status(b, token, "+4915112340009") == 200
    b.submit("link text", "Back to the API keys")
    assert token not in b.driver.page_source
    listed = [row for row in rows(b) if row.startswith("CRM")]
    assert len(listed) == 1 and "never" not in listed[0], listed       # used just now
    b.shot("apikeys")
    b.submit("xpath", "//main//tr[td[1]='CRM']//button")
    assert notice(b) == "The key was revoked."
    assert "Revoked" in [row for row in rows(b) if row.startswith("CRM")][0]
    assert api_status(b, token, "+4915112340009") == 401
    b.get("/p/demo/audit")
    assert [row.split()[4] for row in rows(b) if "portal:anna" in row and "apikey" in row][:2] == [
        "apikey_revoke", "apikey_create"], rows(b)


def test_an_operator_walks_overview_tariffs_first_callers_and_audit_then_logs_out(walk):
    """In German: the overview with its figures and chart, the tariffs in force (first-caller offer too), the
    first callers (a pasted list and a CSV file imported, one removed), the profile's audit log (the portal's
    changes and the CLI's top-up) and that of all profiles; after logout the old session cookie gets the
    login page."""
    b = walk
    b.login("olga")
    b.get("/p/demo/")
    assert b.driver.find_elements("css selector", "main svg")
    b.shot("overview")
    b.get("/p/demo/tariffs")
    tariffs = b.text("main")
    assert "Festnetz 1,99 € pro Minute" in tariffs and "Mobilfunk 2,49 € pro Minute" in tariffs, tariffs
    assert "Erstanrufer 0,00 € pro Minute, die ersten 5 min" in tariffs and "20,00 € 3,00 €" in tariffs
    b.shot("tariffs")
    b.get("/p/demo/first-callers")
    upload = b.shots.parent / "first-callers.csv"
    upload.write_text("number;note\n0151 12340012;from the old system\n")
    b.driver.find_element("name", "numbers").send_keys("0151 12340010\n+49 151 12340011\n")
    b.driver.find_element("name", "file").send_keys(str(upload))
    b.submit("xpath", "//main//button[text()='Importieren']")
    assert notice(b) == "3 Nummern aufgenommen, 0 standen schon auf der Liste.", notice(b)
    listed = "\n".join(rows(b))
    assert all(n in listed for n in ("+4915112340010", "+4915112340011", "+4915112340012")), b.text("main")
    b.submit("xpath", "//main//tr[contains(., '+4915112340011')]//button")
    assert not any("+4915112340011" in row for row in rows(b))
    b.shot("first-callers")
    b.node.topup("+4915112340013", "10")
    b.get("/p/demo/audit")
    logged = rows(b)
    assert any("portal:olga" in row and "first_caller_remove +4915112340011" in row for row in logged), logged
    assert any("portal:olga" in row and "first_caller_add +4915112340012" in row for row in logged), logged
    assert any("+4915112340013" in row and "portal:" not in row for row in logged), logged     # the CLI's
    b.shot("audit")
    b.get("/audit")
    assert "olga" in "\n".join(rows(b))
    b.shot("audit-all")
    cookie = b.driver.get_cookie("portal_session")
    b.logout()
    b.driver.add_cookie({"name": "portal_session", "value": cookie["value"], "path": "/"})
    b.get("/p/demo/customers")
    assert b.driver.current_url == b.base + "/" and b.driver.find_elements("css selector", "form.login")
