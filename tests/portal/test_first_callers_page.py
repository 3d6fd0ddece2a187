"""The portal's "First callers" page with ``context_for`` on a real store (SQLite and PostgreSQL): the list,
its search by number in any usual form and its pages; an operator removes and imports (each change an
audit row from the client's address); a provider sees the list but its POST is refused and changes nothing."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from twisted.web.template import flattenString

from b2bua.node.config import load_config
from billing.db import audit
from billing.profile import FirstCallerTariff
from tests.conftest import fired
from webhook.portal.pages import first_callers as page
from webhook.portal.pages import routes, strings
from webhook.portal.view import OPERATOR, PROVIDER, Html, PortalUser, Redirect, context_for

OPERATOR_USER = PortalUser("olga", OPERATOR, language="en")
PROVIDER_USER = PortalUser("paul", PROVIDER, ("demo",), language="de")


@pytest.fixture
def config():
    return load_config("conf/prepaid.toml")


@pytest.fixture
def profile(config):
    demo = config.profiles["demo"]
    offer = FirstCallerTariff(Decimal("0"), 300)
    return dataclasses.replace(demo, billing=dataclasses.replace(demo.billing, first_caller=offer))


def view(store, config, profile, user=OPERATOR_USER, **kw):
    """The page's answer for this request, and (for Html) its body as text."""
    kw.setdefault("csrf_token", "tok")
    ctx = context_for(user, profile, store, config, strings=strings(), client_address="192.0.2.7", **kw)
    answer = fired(page.first_callers(ctx))
    if isinstance(answer, Html):
        return answer, fired(flattenString(None, answer.body)).decode()
    return answer, ""


def listed(store) -> list[str]:
    return [row.number for row in fired(store.first_callers("demo", limit=1000)).rows]


def audit_rows(store):
    return fired(store.run(audit.entries, profile="demo"))


def test_the_page_is_in_the_menu():
    """The module is registered: its route and its menu label in both languages."""
    (route,) = [r for r in routes() if r.path == "first-callers"]
    assert route.methods == ("GET", "POST") and strings()["de"][route.nav] == "Erstanrufer"


def test_list_search_in_any_form_and_pages(store, config, profile, store_clock):
    """Imported numbers are listed newest first with their date; "030 1234 5601", "+49 30 12345601" and
    a part "12345601" find the same entry; 60 entries make two pages of 50."""
    numbers = [f"+4930123456{i:02d}" for i in range(60)]
    fired(store.add_first_callers("demo", numbers[:30], actor="test"))
    store_clock.advance(86400)
    fired(store.add_first_callers("demo", numbers[30:], actor="test"))
    answer, html = view(store, config, profile)
    assert answer.status == 200 and "60 entries, page 1 of 2" in html and html.count("<tr>") == 51
    assert "the first 5 minutes at €0.00 per minute" in html
    assert "+493012345659" in html and "+493012345625" not in html      # newest first: the 30 of the later day
    _, second = view(store, config, profile, query={"page": "2"})
    assert "+493012345625" in second and "+493012345659" not in second and "page 2 of 2" in second
    for query in ("030 1234 5601", "+49 30 12345601", "12345601"):
        _, found = view(store, config, profile, query={"q": query})
        assert "1 entries" in found and "+493012345601" in found, query
    _, none = view(store, config, profile, query={"q": "0151 999"})
    assert "No first callers found." in none


def test_operator_removes_an_entry_with_an_audit_row(store, config, profile):
    """POST remove: the number is off the list (it gets the offer again), a notice says so, and the audit
    row names the operator and the client's address; removing it again says it is not listed."""
    fired(store.add_first_callers("demo", ["+4930111222", "+4930111333"], actor="test"))
    answer, _ = view(store, config, profile, method="POST", form={"action": "remove", "number": "030 111222"})
    assert isinstance(answer, Redirect) and answer.location == "/p/demo/first-callers"
    assert answer.notice == "+4930111222 was removed and gets the offer again."
    assert listed(store) == ["+4930111333"]
    (row,) = [r for r in audit_rows(store) if r.action == "first_caller_remove"]
    assert (row.actor, row.source, row.subject) == ("portal:olga", "192.0.2.7", "+4930111222")
    again, _ = view(store, config, profile, method="POST", form={"action": "remove", "number": "+4930111222"})
    assert again.notice == "+4930111222 is not on the list."


def test_operator_imports_a_list_and_hears_of_the_invalid_numbers(store, config, profile):
    """Textarea lines and a CSV file with a header: each number normalised, repeats and numbers already
    listed counted once, garbage reported; one audit row per number added."""
    fired(store.add_first_callers("demo", ["+4915112345678"], actor="test"))
    csv_file = "number;note\n+49 30 5550001;x\n0049 30 5550002;y\nhello;z\n"
    form = {"action": "import", "numbers": "0151 12345678\n030 5550001\n\n12\n", "file": csv_file}
    answer, _ = view(store, config, profile, method="POST", form=form)
    assert isinstance(answer, Redirect)
    assert answer.notice == "2 numbers added, 1 were on the list already. Not phone numbers: 12, hello"
    assert sorted(listed(store)) == ["+4915112345678", "+49305550001", "+49305550002"]
    added = [r.subject for r in audit_rows(store) if r.action == "first_caller_add" and r.actor == "portal:olga"]
    assert sorted(added) == ["+49305550001", "+49305550002"]


def test_forms_carry_the_csrf_token_and_only_operators_get_them(store, config, profile):
    """The operator's page has the remove and import forms with the CSRF token; the provider's has none."""
    fired(store.add_first_callers("demo", ["+4930111222"], actor="test"))
    _, html = view(store, config, profile)
    assert html.count('name="csrf" value="tok"') == 2 and 'name="file"' in html
    _, html = view(store, config, profile, user=PROVIDER_USER)
    assert 'name="csrf"' not in html and "+4930111222" in html and "Entfernen" not in html


def test_a_provider_cannot_remove_or_import(store, config, profile):
    """A provider's POST is refused with 403: the list and the audit log stay as they were."""
    fired(store.add_first_callers("demo", ["+4930111222"], actor="test"))
    before = audit_rows(store)
    for form in ({"action": "remove", "number": "+4930111222"}, {"action": "import", "numbers": "030 5550009"}):
        answer, html = view(store, config, profile, user=PROVIDER_USER, method="POST", form=form)
        assert isinstance(answer, Html) and answer.status == 403 and "Nur Betreiber" in html
    assert listed(store) == ["+4930111222"] and audit_rows(store) == before


def multipart_request(body: bytes, boundary: str):
    """A POST as Twisted's server builds it, with a ``multipart/form-data`` body."""
    import io

    from twisted.web.server import Request
    from twisted.web.test.requesthelper import DummyChannel
    request = Request(DummyChannel())
    request.content = io.BytesIO(body)
    request.requestHeaders.setRawHeaders(b"content-type", [f"multipart/form-data; boundary={boundary}".encode()])
    return request


def test_the_import_form_posted_with_its_file_reaches_the_page_as_fields():
    """The import form is multipart/form-data (it carries a file): the server reads its fields as a browser
    sends them, the CSRF token, the pasted list and the file's content as text, each once, so the import
    is not refused as a form without its token (it was, in Chromium: the body was read as urlencoded)."""
    from webhook.portal.server import form_fields
    boundary = "----WebKitFormBoundaryx7f3"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok-1\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nimport\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"numbers\"\r\n\r\n"
            "0151 12345678\r\n+49 30 1234567\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"list.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\nnumber\r\n0172 7654321\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nsecond\r\n"
            f"--{boundary}--\r\n").encode()
    fields = form_fields(multipart_request(body, boundary))
    assert fields == {"csrf": "tok-1", "action": "import", "numbers": "0151 12345678\r\n+49 30 1234567",
                      "file": "number\r\n0172 7654321"}
    numbers, invalid = page.parse_numbers(fields["numbers"], fields["file"])
    assert numbers == ["+4915112345678", "+49301234567", "+491727654321"] and invalid == []
