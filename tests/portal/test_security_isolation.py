"""Cross-profile isolation, page by page and action by action, through the whole portal on SQLite and PostgreSQL.

Anna is the provider of profile ``demo``; ``other`` is Bert's. The tables below are every page and every form
of the portal: Anna asking for ``other``'s customer, call, transaction, statement, first caller or API key,
by its URL or by a form field, gets 404 (the operator-only first-caller changes: 403, the page's own answer
to a provider), and the store's tables are the same afterwards to the row. Where Anna asks her own list for
something of ``other``'s (a number, a provider-wide statement), the answer is her own data and holds nothing
of ``other``'s. A test checks that the tables name every route, so a new page without a row fails here.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.conftest import fired
from webhook.portal import pages

from .security_support import (FC_A, FC_B, NUM_A, NUM_B, NUM_BOTH, OTHER_MARKS, make_portal, snapshot,
                               token)


@pytest.fixture
def portal(store, store_clock):
    return make_portal(store, store_clock)


def post_forms(portal) -> dict[str, dict]:
    """A form for each POST route that its profile's owner (or an operator) may send and that changes the
    store: the forms the cases below send to the wrong profile."""
    return {
        "customers/edit?number=" + quote(NUM_B): {"new": "+4917699999999"},
        "transactions/new": {"step": "book", "token": token(), "number": NUM_B, "amount": "5", "kind": "topup"},
        "first-callers": {"action": "remove", "number": FC_B},
        "first-callers#import": {"action": "import", "numbers": "+4916077777777"},
        "apikeys/create": {"name": "made-by-a-stranger"},
        "apikeys/revoke": {"key": portal.other_key},
    }


def _route_path(target: str) -> str:
    return target.split("?")[0].split("#")[0]


#: (who, method, path, form): the wrong profile in the URL, for every page (forms from post_forms)
def url_cases(portal) -> list[tuple[str, str, str, dict]]:
    cases = []
    for route in pages.routes():
        if not route.profile_scoped:
            continue
        cases.append(("anna", "GET", f"/p/other/{route.path}", {}))
    for target, form in post_forms(portal).items():
        cases.append(("anna", "POST", f"/p/other/{target.split('#')[0]}", form))
    cases += [("anna", "GET", "/p/other/statements.csv?scope=provider", {}),
              ("anna", "GET", "/p/other/calls?format=csv", {})]
    return cases


#: (who, method, path, form, status): another profile's thing named in a field of one's own profile's page
def field_cases(portal) -> list[tuple[str, str, str, dict, int]]:
    return [
        ("anna", "GET", f"/p/demo/customers/edit?number={quote(NUM_B)}", {}, 404),
        ("anna", "GET", "/p/demo/customers/edit?number=0176%2012345678", {}, 404),
        ("anna", "POST", f"/p/demo/customers/edit?number={quote(NUM_B)}", {"new": "+4917699999999"}, 404),
        ("anna", "POST", f"/p/demo/customers/edit?number={quote(NUM_B)}", {"new": NUM_A, "merge": "1"}, 404),
        ("anna", "POST", "/p/demo/apikeys/revoke", {"key": portal.other_key}, 404),
        ("anna", "POST", "/p/demo/first-callers", {"action": "remove", "number": FC_B}, 403),
        ("anna", "POST", "/p/demo/first-callers", {"action": "import", "numbers": FC_B}, 403),
        ("anna", "GET", "/lockouts", {}, 404),
        ("anna", "POST", "/lockouts", {"kind": "user", "value": "bert"}, 404),
        ("anna", "GET", "/audit", {}, 404),
        # an operator on demo's pages does not reach other's things either
        ("olga", "POST", f"/p/demo/customers/edit?number={quote(NUM_B)}", {"new": "+4917699999999"}, 404),
        ("olga", "POST", "/p/demo/apikeys/revoke", {"key": portal.other_key}, 404),
    ]


B = quote(NUM_B)
#: GET pages of Anna's own profile, asking for other's things: her data only
OWN_LISTS = [
    "", f"customers?q={B}", "customers?q=0176", "customers", f"customers/edit?number={quote(NUM_BOTH)}",
    "transactions", f"transactions?number={B}", "transactions.csv", f"transactions.csv?number={B}",
    "transactions/new", "calls", f"calls?number={B}", "calls?format=csv", f"calls?format=csv&number={B}",
    "statements", "statements?scope=provider", "statements.csv?scope=provider", "statements/print?scope=provider",
    "tariffs", "first-callers", "first-callers?q=0160%2099", "button", "apikeys", "audit",
    "audit?action=apikey_create",
]


#: the headers of every portal answer: no inline script, no framing, no sniffing, no referrer off the site
HEADERS = ["default-src 'self'; frame-src http://127.0.0.1:8080; frame-ancestors 'none'; form-action 'self'", "nosniff",
           "same-origin", "no-store"]


def test_the_tables_name_every_route_of_the_portal(portal):
    """Every profile-scoped route is asked for under the wrong profile, every GET route of the profile is in
    OWN_LISTS, every POST route has a form, and every page above the profiles is asked for by a provider."""
    routes = pages.routes()
    scoped_get = {r.path for r in routes if r.profile_scoped and "GET" in r.methods}
    scoped_post = {r.path for r in routes if r.profile_scoped and "POST" in r.methods}
    top = {r.path for r in routes if not r.profile_scoped}
    assert scoped_get <= {_route_path(p) for p in OWN_LISTS}
    assert scoped_post <= {_route_path(t) for t in post_forms(portal)}
    assert top <= {c[2].strip("/").split("?")[0] for c in field_cases(portal) if not c[2].startswith("/p/")}


def leaks(answer) -> list[str]:
    """The marks of other's data in an answer's text, leaving out attribute values (a search field and the
    links of a list echo what was typed, which is not other's data)."""
    text = re.sub(r'\s[\w:-]+="[^"]*"', "", answer.text)
    return [mark for mark in OTHER_MARKS if mark in text]


def _ask(browsers, who: str, method: str, path: str, form: dict):
    browser = browsers[who]
    if method == "GET":
        return browser.get(path)
    return browser.post(path, {**form, "csrf": browser.csrf("/p/demo/" if who != "bert" else "/p/other/")})


def _browsers(portal):
    return {name: portal.logged_in(name) for name in ("anna", "bert", "olga")}


def test_another_profiles_pages_and_forms_by_url_are_404_and_change_nothing(portal):
    """Every page and form of profile other, asked for by Anna with her session and her CSRF token: the
    portal's 404, no mark of other's data in it, and every table as it was."""
    browsers = _browsers(portal)
    before = snapshot(portal.store)
    wrong = []
    for who, method, path, form in url_cases(portal):
        answer = _ask(browsers, who, method, path, form)
        leaked = leaks(answer)
        if answer.status != 404 or leaked:
            wrong.append((method, path, answer.status, leaked))
    assert wrong == []
    assert snapshot(portal.store) == before


def test_another_profiles_things_named_in_a_field_are_404_and_change_nothing(portal):
    """other's customer, number and key named in the query or the form of a demo page: 404 (a provider's
    first-caller change: 403), nothing of other's in the answer, every table as it was."""
    browsers = _browsers(portal)
    before = snapshot(portal.store)
    wrong = []
    for who, method, path, form, status in field_cases(portal):
        answer = _ask(browsers, who, method, path, form)
        leaked = leaks(answer)
        if answer.status != status or leaked:
            wrong.append((who, method, path, answer.status, leaked))
    assert wrong == []
    assert snapshot(portal.store) == before


def test_own_lists_asked_for_other_profiles_things_show_none_of_them(portal):
    """Each GET page of demo, also with other's number as its filter or the provider-wide statement: 200,
    not one mark of other's data (numbers, notes, key names, amounts, service number) in it, and the security
    headers on each; demo's own customer is there where the page lists customers. Nothing changes."""
    anna = portal.logged_in("anna")
    before = snapshot(portal.store)
    wrong = []
    for path in OWN_LISTS:
        answer = anna.get(f"/p/demo/{path}")
        leaked = leaks(answer)
        headers = [answer.header(name) for name in ("content-security-policy", "x-content-type-options",
                                                    "referrer-policy", "cache-control")]
        if answer.status != 200 or leaked or headers != HEADERS:
            wrong.append((path, answer.status, leaked, headers))
    assert wrong == []
    assert NUM_A in anna.get("/p/demo/customers").text and FC_A in anna.get("/p/demo/first-callers").text
    assert snapshot(portal.store) == before


def test_the_same_forms_on_the_right_profile_do_change_the_store(portal):
    """The control of the tests above: each form of post_forms, sent by other's own provider (the first-caller
    changes: by an operator) to /p/other/, is taken and changes the store; so a 404 above is the refusal, not
    a form that could never work; and other's lists, seen by an operator, show the marks looked for above."""
    browsers = _browsers(portal)
    for path in ("transactions", "customers", "apikeys", "first-callers", "calls"):      # the marks are seen
        assert leaks(browsers["olga"].get(f"/p/other/{path}")), path
    for target, form in post_forms(portal).items():
        who = "olga" if target.startswith("first-callers") else "bert"
        before = snapshot(portal.store)
        answer = _ask(browsers, who, "POST", f"/p/other/{target.split('#')[0]}", form)
        assert answer.status in (200, 303), (target, answer.status)
        assert snapshot(portal.store) != before, target


def test_other_profiles_number_in_demos_forms_touches_only_demos_account(portal):
    """Accounts are per profile: a top-up for other's caller number booked on demo's page, and demo's account
    renumbered to that number, make and move demo's account of that number; other's account of it keeps
    its balance, ledger and number."""
    anna = portal.logged_in("anna")
    theirs = fired(portal.store.account("other", NUM_B))
    booked = anna.post("/p/demo/transactions/new", {"csrf": anna.csrf("/p/demo/"), "step": "book", "token": token(),
                                                    "number": NUM_B, "amount": "5", "kind": "topup"})
    assert booked.status == 303 and fired(portal.store.account("demo", NUM_B)).balance_cents == 500
    merged = anna.post(f"/p/demo/customers/edit?number={quote(NUM_A)}",
                       {"csrf": anna.csrf("/p/demo/"), "new": NUM_B, "merge": "1"})
    assert merged.status == 303 and fired(portal.store.account("demo", NUM_A)) is None
    assert fired(portal.store.account("other", NUM_B)) == theirs
    assert len(fired(portal.store.transactions("other", NUM_B))) == 1
